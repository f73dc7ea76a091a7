/* fuzz_csv.c - libFuzzer harness of the CSV loader (runtime/data.c
 * rt_load_csv). The input is a config prefix, then the file:
 *   N (u8: 1 + N % 3 columns), then per column LO (u8) WIDTH (u8) FLAGS
 *   (u8, bit 0: i32): the column takes fields [LO, LO + WIDTH).
 * A width of 0 (a bad range) is left in: the loader must refuse it.
 *
 * Oracle, beyond ASan/UBSan and LeakSanitizer: fuzz_check_dataset (a
 * refusal names the file and leaves no data set; a success gives the
 * columns asked for, every value readable). */
#include "fuzz.h"
#include "runtime/data.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  rt_column_spec cols[3];
  int n = 1 + (int)(fuzz_take(&data, &size, 1) % 3);
  for (int c = 0; c < n; c++) {
    int64_t lo = (int64_t)fuzz_take(&data, &size, 1);
    int64_t width = (int64_t)fuzz_take(&data, &size, 1);
    bool is_int = fuzz_take(&data, &size, 1) & 1;
    cols[c] = (rt_column_spec){.col_lo = lo, .col_hi = lo + width, .is_int = is_int,
                               .width = width};
  }
  const char *path = fuzz_memfile(data, size);
  rt_dataset ds;
  char err[512] = "";
  int rc = rt_load_csv(path, cols, n, &ds, err, sizeof err);
  fuzz_check_dataset(rc, err, path, &ds, cols, n);
  rt_dataset_free(&ds);
  return 0;
}
