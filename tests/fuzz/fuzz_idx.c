/* fuzz_idx.c - libFuzzer harness of the IDX loader (runtime/data.c
 * rt_load_idx): IDX (MNIST) files, raw or gzip-compressed. The input is a config prefix (fuzz.h
 * fuzz_binary_columns: which columns, i32 or f32, the width a sample
 * must have), then the file.
 *
 * Oracle, beyond ASan/UBSan and LeakSanitizer: fuzz_check_dataset (a
 * refusal names the file and leaves no data set; a success gives the
 * columns asked for, every value readable). */
#include "fuzz.h"
#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt_column_spec cols[2];
  int n = fuzz_binary_columns(&data, &size, cols);
  const char *path = fuzz_memfile(data, size);
  cols[0].path = cols[1].path = path;
  rt_dataset ds;
  char err[512] = "";
  int rc = rt_load_idx(cols, n, 1.0 / 255, &ds, err, sizeof err);
  fuzz_check_dataset(rc, err, path, &ds, cols, n);
  rt_dataset_free(&ds);
  return 0;
}
