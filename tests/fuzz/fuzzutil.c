/* fuzzutil.c - the helpers of fuzz.h: a memfd as the file a loader
 * opens, NUL-terminated copies, /dev/null, the oracle's abort, and what
 * several harnesses (and fuzz_seeds) share. */
#include "fuzz.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "runtime/data.h"
#include "runtime/nncc.h"
#include "runtime/safetensors.h"

const char *fuzz_memfile(const uint8_t *data, size_t size) {
  static int fd = -1;
  static char path[64];
  if (fd < 0) {
    fd = memfd_create("nncc-fuzz", MFD_CLOEXEC);
    if (fd < 0) fuzz_fail("memfd_create failed");
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  /* a loader opens the path afresh: a new file offset at 0 each time */
  if (ftruncate(fd, 0) != 0) fuzz_fail("ftruncate failed");
  size_t done = 0;
  while (done < size) {
    ssize_t w = pwrite(fd, data + done, size - done, (off_t)done);
    if (w <= 0) fuzz_fail("pwrite failed");
    done += (size_t)w;
  }
  return path;
}

char *fuzz_cstring(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  if (!s) fuzz_fail("out of memory");
  if (size) memcpy(s, data, size);
  s[size] = 0;
  return s;
}

FILE *fuzz_devnull(void) {
  static FILE *f;
  if (!f && !(f = fopen("/dev/null", "w"))) fuzz_fail("cannot open /dev/null");
  return f;
}

_Noreturn void fuzz_fail(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "fuzz: oracle: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  abort();
}

uint64_t fuzz_take(const uint8_t **data, size_t *size, int bytes) {
  uint64_t v = 0;
  for (int k = 0; k < bytes && *size > 0; k++) {
    v |= (uint64_t)**data << (8 * k);
    (*data)++;
    (*size)--;
  }
  return v;
}

/* ------------------------------------------------ shared by harnesses */

static const int64_t st_shape_w[] = {2, 3}, st_shape_b[] = {3}, st_shape_z[] = {0};

void fuzz_st_tensors(rt_st_tensor t[FUZZ_ST_TENSORS], float w[6], float b[3], int32_t *step) {
  t[0] = (rt_st_tensor){"w", NNCC_F32, 2, st_shape_w, w};
  t[1] = (rt_st_tensor){"b", NNCC_F32, 1, st_shape_b, b};
  t[2] = (rt_st_tensor){"train:step", NNCC_I32, 0, NULL, step};
  t[3] = (rt_st_tensor){"z", NNCC_F32, 1, st_shape_z, NULL};
}

void fuzz_check_dataset(int rc, const char *err, const char *path, const rt_dataset *ds,
                        const rt_column_spec *cols, int n_cols) {
  if (rc) {
    if (!strstr(err, path)) fuzz_fail("the message does not name the file: '%s'", err);
    if (ds->n_columns || ds->columns) fuzz_fail("a refused file left a data set: '%s'", err);
    return;
  }
  if (ds->n <= 0) fuzz_fail("a data set of %lld samples", (long long)ds->n);
  if (ds->n_columns != n_cols) fuzz_fail("%d columns, not %d", ds->n_columns, n_cols);
  volatile double sum = 0;
  for (int c = 0; c < n_cols; c++) {
    const rt_column *col = &ds->columns[c];
    if (col->is_int != cols[c].is_int || col->width != cols[c].width)
      fuzz_fail("column %d is not what was asked for", c);
    if (col->is_int ? !col->i : !col->f) fuzz_fail("column %d has no values", c);
    for (int64_t k = 0; k < ds->n * col->width; k++) sum += col->is_int ? col->i[k] : col->f[k];
  }
}

int fuzz_binary_columns(const uint8_t **data, size_t *size, rt_column_spec cols[2]) {
  unsigned flags = (unsigned)fuzz_take(data, size, 1);
  int64_t width = (int64_t)fuzz_take(data, size, 2);
  cols[0] = (rt_column_spec){.is_int = flags & FUZZ_COL_INT, .width = width};
  cols[1] = (rt_column_spec){.is_int = flags & FUZZ_COL2_INT, .width = width};
  return flags & FUZZ_TWO_COLS ? 2 : 1;
}
