/* fuzz_safetensors.c - libFuzzer harness of the checkpoint reader
 * (runtime/safetensors.c rt_st_load): the input is the file, loaded into
 * the tensors of a model "fuzz" (fuzz_st_tensors in fuzz.h; fuzz_seeds.c saves
 * checkpoints of it with rt_st_save as seeds).
 *
 * Oracle, beyond ASan/UBSan: a refused file leaves every buffer as it was
 * ("all are checked before any is written") and gets a message that
 * names the file. */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "runtime/nncc.h"
#include "runtime/safetensors.h"

#define SENTINEL 0xA5

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *path = fuzz_memfile(data, size);
  float w[6], b[3];
  int32_t step;
  memset(w, SENTINEL, sizeof w);
  memset(b, SENTINEL, sizeof b);
  memset(&step, SENTINEL, sizeof step);
  rt_st_tensor t[FUZZ_ST_TENSORS];
  fuzz_st_tensors(t, w, b, &step);
  char err[512] = "";
  if (rt_st_load(path, "fuzz", t, FUZZ_ST_TENSORS, err, sizeof err)) {
    if (!strstr(err, path)) fuzz_fail("the message does not name the file: '%s'", err);
    unsigned char *bufs[] = {(unsigned char *)w, (unsigned char *)b, (unsigned char *)&step};
    size_t sizes[] = {sizeof w, sizeof b, sizeof step};
    for (int k = 0; k < 3; k++)
      for (size_t i = 0; i < sizes[k]; i++)
        if (bufs[k][i] != SENTINEL) fuzz_fail("a refused checkpoint was partly loaded: '%s'", err);
  }
  return 0;
}
