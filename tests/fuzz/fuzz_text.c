/* fuzz_text.c - libFuzzer harness of the byte-level text loader
 * (runtime/data.c rt_load_text). The input is T (u16, the window
 * length; 0 is left in: the loader must refuse it), then the file.
 *
 * Oracle, beyond ASan/UBSan and LeakSanitizer: fuzz_check_dataset (a
 * refusal names the file and leaves no data set; a success gives two
 * i32 columns of width T, every value readable), and y is x shifted by
 * one byte (the file may be gzip-compressed: gzread reads both). */
#include "fuzz.h"
#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  int64_t t = (int64_t)fuzz_take(&data, &size, 2);
  const char *path = fuzz_memfile(data, size);
  rt_dataset ds;
  char err[512] = "";
  int rc = rt_load_text(path, t, &ds, err, sizeof err);
  rt_column_spec cols[2] = {{.is_int = true, .width = t}, {.is_int = true, .width = t}};
  fuzz_check_dataset(rc, err, path, &ds, cols, 2);
  /* windows tile the (decompressed) bytes: y[k] = byte k + 1 = x[k + 1] */
  if (!rc)
    for (int64_t k = 0; k + 1 < ds.n * t; k++)
      if (ds.columns[1].i[k] != ds.columns[0].i[k + 1])
        fuzz_fail("y[%lld] is not x[%lld]", (long long)k, (long long)k + 1);
  rt_dataset_free(&ds);
  return 0;
}
