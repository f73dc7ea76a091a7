/* test_data_errors.c - what runtime/data.c refuses at load time (issue 8,
 * items 7 and 9): files that are not regular files (a FIFO would block
 * forever), labels outside the model's class range, values that are not
 * finite or overflow f32, CSV header detection, rows with too many or too
 * few fields, and IDX headers or sizes that make no sense. Every message
 * names the file and the position. */
#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/data.h"

/* ------------------------------------------------------------ fixtures */

static char dir[64];  /* a fresh directory per test (Check forks each test) */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void setup(void) {
  strcpy(dir, "/tmp/nncc_data_err_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *path_in(const char *name) {
  static char buf[16][256];
  static int next;
  char *p = buf[next++ % 16];
  snprintf(p, 256, "%s/%s", dir, name);
  return p;
}

static void spit(const char *path, const void *data, size_t len, bool gz) {
  if (gz) {
    gzFile f = gzopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    if (len) ck_assert_int_eq(gzwrite(f, data, (unsigned)len), (int)len);
    ck_assert_int_eq(gzclose(f), Z_OK);
    return;
  }
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

static void spit_text(const char *path, const char *text) { spit(path, text, strlen(text), false); }

/* err must be "PATH: rest" (line < 0) or "PATH:LINE: rest" */
static void expect(const char *err, const char *path, int line, const char *rest) {
  char want[512];
  if (line < 0) snprintf(want, sizeof want, "%s: %s", path, rest);
  else snprintf(want, sizeof want, "%s:%d: %s", path, line, rest);
  ck_assert_str_eq(err, want);
}

/* IDX: magic 0 0 type rank, big-endian u32 dims, `count` elements of
 * `esize` bytes (big-endian) from v, then `extra` zero bytes. */
static void write_idx(const char *path, int type, int rank, const uint32_t *dims,
                      const uint64_t *v, int count, int esize, int extra, bool gz) {
  unsigned char b[4096];
  size_t n = 0;
  b[n++] = 0, b[n++] = 0, b[n++] = (unsigned char)type, b[n++] = (unsigned char)rank;
  for (int d = 0; d < rank; d++)
    for (int k = 3; k >= 0; k--) b[n++] = (unsigned char)(dims[d] >> (8 * k));
  for (int i = 0; i < count; i++)
    for (int k = esize - 1; k >= 0; k--) b[n++] = (unsigned char)(v[i] >> (8 * k));
  memset(b + n, 0, (size_t)extra);
  spit(path, b, n + (size_t)extra, gz);
}

/* NPY v1.0 with the dict padded to a 64-byte boundary, as NumPy writes. */
static void write_npy(const char *path, const char *dict, const void *data, size_t len) {
  unsigned char b[4096];
  size_t dl = strlen(dict), total = (10 + dl + 1 + 63) / 64 * 64, hl = total - 10;
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)(hl & 0xff), b[9] = (unsigned char)(hl >> 8);
  memcpy(b + 10, dict, dl);
  memset(b + 10 + dl, ' ', hl - dl - 1);
  b[total - 1] = '\n';
  memcpy(b + total, data, len);
  spit(path, b, total + len, false);
}

static uint64_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

/* ------------------------------------------- not a regular file (item 1) */

/* Without the check, opening a FIFO for reading blocks until a writer
 * comes: the test would hang (and fail on the tcase timeout). */
START_TEST(fifo_is_refused) {
  rt_dataset ds;
  char err[512];
  const char *names[] = {"x.idx", "x.idx.gz", "d.csv", "x.npy", "t.txt"};
  for (size_t k = 0; k < sizeof names / sizeof names[0]; k++) {
    const char *p = path_in(names[k]);
    ck_assert_int_eq(mkfifo(p, 0600), 0);
    rt_column_spec col = {.path = p, .col_lo = 0, .col_hi = 1, .width = 1};
    int rc = k < 2    ? rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err)
             : k == 2 ? rt_load_csv(p, &col, 1, &ds, err, sizeof err)
             : k == 3 ? rt_load_npy(&col, 1, &ds, err, sizeof err)
                      : rt_load_text(p, 4, &ds, err, sizeof err);
    ck_assert_int_ne(rc, 0);
    expect(err, p, -1, "not a regular file (a FIFO)");
    ck_assert_ptr_null(ds.columns);
  }
}
END_TEST

START_TEST(directory_and_device_are_refused) {
  rt_dataset ds;
  char err[512];
  rt_column_spec col = {.path = dir, .width = 1};
  ck_assert_int_ne(rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, dir, -1, "not a regular file (a directory)");
  ck_assert_int_ne(rt_load_text("/dev/null", 4, &ds, err, sizeof err), 0);
  expect(err, "/dev/null", -1, "not a regular file (a character device)");
  /* a symlink to a regular file is fine */
  const char *t = path_in("t.txt"), *l = path_in("link.txt");
  spit_text(t, "hello world");
  ck_assert_int_eq(symlink(t, l), 0);
  ck_assert_msg(rt_load_text(l, 4, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 2);
  rt_dataset_free(&ds);
}
END_TEST

/* ------------------------------------------------------- labels (item 2) */

START_TEST(labels_out_of_range_idx) {
  rt_dataset ds;
  char err[512];
  const char *y = path_in("y.idx"), *yg = path_in("y.idx.gz");
  uint32_t d[] = {4};
  uint64_t v[] = {0, 9, 10, 3};
  write_idx(y, 0x08, 1, d, v, 4, 1, 0, false);
  write_idx(yg, 0x08, 1, d, v, 4, 1, 0, true);
  rt_column_spec col = {.path = y, .is_int = true, .width = 1, .label_bound = 10};
  ck_assert_int_ne(rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, y, -1, "record 2 of 4 (0-based): label 10 is out of range [0, 10)");
  ck_assert_ptr_null(ds.columns);
  col.path = yg;
  ck_assert_int_ne(rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, yg, -1, "record 2 of 4 (0-based): label 10 is out of range [0, 10)");
  /* negative (int32 labels), and a record of two labels */
  uint32_t d2[] = {2, 2};
  uint64_t v2[] = {1, 2, 0, 0xffffffffu};
  write_idx(y, 0x0C, 2, d2, v2, 4, 4, 0, false);
  rt_column_spec c2 = {.path = y, .is_int = true, .width = 2, .label_bound = 3};
  ck_assert_int_ne(rt_load_idx(&c2, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, y, -1, "record 1 of 2 (0-based), value 1 of 2: label -1 is out of range [0, 3)");
  /* in range: loads; bound 0 checks nothing */
  col.path = y;
  write_idx(y, 0x08, 1, d, v, 4, 1, 0, false);
  col.label_bound = 11;
  ck_assert_msg(rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err) == 0, "%s", err);
  rt_dataset_free(&ds);
  col.label_bound = 0;
  ck_assert_msg(rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.columns[0].i[2], 10);
  rt_dataset_free(&ds);
}
END_TEST

START_TEST(labels_out_of_range_csv_npy) {
  rt_dataset ds;
  char err[512];
  const char *p = path_in("labels.csv");
  spit_text(p, "a,b,c,d,label\n1,2,3,4,0\n\n1,2,3,4,9\n1,2,3,4,10\n");
  rt_column_spec cols[2] = {{.col_lo = 0, .col_hi = 4, .width = 4},
                            {.col_lo = 4, .col_hi = 5, .is_int = true, .width = 1,
                             .label_bound = 10}};
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 5, "column 4: label 10 is out of range [0, 10)");
  ck_assert_ptr_null(ds.columns);
  spit_text(p, "1,2,3,4,-2\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 1, "column 4: label -2 is out of range [0, 10)");
  spit_text(p, "1,2,3,4,9\n");
  ck_assert_msg(rt_load_csv(p, cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  rt_dataset_free(&ds);

  const char *y = path_in("y.npy");
  int64_t yi[3] = {2, 0, 5};
  write_npy(y, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", yi, sizeof yi);
  rt_column_spec c = {.path = y, .is_int = true, .width = 1, .label_bound = 5};
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  expect(err, y, -1, "row 2 of 3 (0-based): label 5 is out of range [0, 5)");
  c.label_bound = 6;
  ck_assert_msg(rt_load_npy(&c, 1, &ds, err, sizeof err) == 0, "%s", err);
  rt_dataset_free(&ds);
}
END_TEST

/* ----------------------------------------- non-finite, f32 range (item 3) */

START_TEST(csv_values_beyond_f32) {
  rt_dataset ds;
  char err[512];
  const char *p = path_in("d.csv");
  rt_column_spec cols[2] = {{.col_lo = 0, .col_hi = 2, .width = 2},
                            {.col_lo = 2, .col_hi = 3, .width = 1}};
  spit_text(p, "x0,x1,y\n1,2,3\n1,1e39,3\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 3, "column 1: '1e39' overflows f32");
  spit_text(p, "1,2,-3.5e38\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 1, "column 2: '-3.5e38' overflows f32");
  spit_text(p, "1,2,3\ninf,2,3\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 2, "column 0: 'inf' is not a finite number");
  spit_text(p, "1,2,3\n1,2,-NaN\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 2, "column 2: '-NaN' is not a finite number");
  /* the largest float and tiny values are fine */
  spit_text(p, "3.4028234e38,1e-50,-1e-39\n");
  ck_assert_msg(rt_load_csv(p, cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert(isfinite(ds.columns[0].f[0]));
  rt_dataset_free(&ds);
}
END_TEST

START_TEST(npy_idx_values_beyond_f32) {
  rt_dataset ds;
  char err[512];
  const char *x = path_in("x.npy");
  rt_column_spec c = {.path = x, .width = 2};
  float f[6] = {1, 2, 3, NAN, 5, 6};
  write_npy(x, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f, sizeof f);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  expect(err, x, -1, "row 1 of 3 (0-based), value 1 of 2: nan is not a finite number");
  f[3] = 4, f[4] = -INFINITY;
  write_npy(x, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f, sizeof f);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  expect(err, x, -1, "row 2 of 3 (0-based), value 0 of 2: -inf is not a finite number");
  double d[4] = {1, 2, 3, 1e39};
  write_npy(x, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", d, sizeof d);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  expect(err, x, -1, "row 1 of 2 (0-based), value 1 of 2: 1e+39 overflows f32");
  d[3] = 1e300 * 1e300;
  write_npy(x, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", d, sizeof d);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  expect(err, x, -1, "row 1 of 2 (0-based), value 1 of 2: inf is not a finite number");
  d[3] = 1e-300; /* underflow to 0 is fine */
  write_npy(x, "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }", d, sizeof d);
  ck_assert_msg(rt_load_npy(&c, 1, &ds, err, sizeof err) == 0, "%s", err);
  rt_dataset_free(&ds);

  /* IDX floats too, and a scale that pushes a value past f32 */
  const char *p = path_in("x.idx");
  uint32_t dims[] = {2};
  uint64_t v[] = {f32_bits(1), f32_bits(NAN)};
  write_idx(p, 0x0D, 1, dims, v, 2, 4, 0, false);
  rt_column_spec ic = {.path = p, .width = 1};
  ck_assert_int_ne(rt_load_idx(&ic, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, p, -1, "record 1 of 2 (0-based): nan is not a finite number");
  v[1] = f32_bits(3e38f);
  write_idx(p, 0x0D, 1, dims, v, 2, 4, 0, false);
  ck_assert_int_ne(rt_load_idx(&ic, 1, 10.0, &ds, err, sizeof err), 0);
  expect(err, p, -1, "record 1 of 2 (0-based): 3e+38 times the scale 10 overflows f32");
}
END_TEST

/* --------------------------------------- CSV header and row length (item 4) */

START_TEST(csv_header_rule) {
  rt_dataset ds;
  char err[512];
  const char *p = path_in("d.csv");
  rt_column_spec cols[2] = {{.col_lo = 0, .col_hi = 4, .width = 4},
                            {.col_lo = 4, .col_hi = 5, .is_int = true, .width = 1}};
  /* data with one bad field on line 1 is data, not a header */
  spit_text(p, "1,2,abc,4,0\n1,2,3,4,0\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 1,
         "column 2: 'abc' is not a number (line 1 holds numbers, so it is data, not a header)");
  ck_assert_ptr_null(ds.columns);
  spit_text(p, "\n\n1,,3,4,0\n1,2,3,4,0\n");  /* the first non-blank line */
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 3,
         "column 1: '' is not a number (line 3 holds numbers, so it is data, not a header)");
  /* a header: no field of the columns used is a number */
  spit_text(p, "a,b,,d,label\n1,2,3,4,0\n");
  ck_assert_msg(rt_load_csv(p, cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 1);
  rt_dataset_free(&ds);
  /* a second header-like line is a bad data row */
  spit_text(p, "a,b,c,d,e\nf,g,h,i,j\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 2, "column 0: 'f' is not a number");
  /* fields outside the columns used decide nothing */
  rt_column_spec mid = {.col_lo = 1, .col_hi = 3, .width = 2};
  spit_text(p, "7,x,y\nid1,2,3\n");
  ck_assert_msg(rt_load_csv(p, &mid, 1, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 1);
  ck_assert_float_eq(ds.columns[0].f[0], 2);
  rt_dataset_free(&ds);
}
END_TEST

START_TEST(csv_row_length) {
  rt_dataset ds;
  char err[512];
  const char *p = path_in("d.csv");
  rt_column_spec cols[2] = {{.col_lo = 0, .col_hi = 4, .width = 4},
                            {.col_lo = 4, .col_hi = 5, .is_int = true, .width = 1}};
  spit_text(p, "a,b,c,d,e\n1,2,3,4,0\n1,2,3,4,0,5,6\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 3, "expected 5 columns, found 7");
  ck_assert_ptr_null(ds.columns);
  spit_text(p, "a,b,c,d,e,f\n1,2,3,4,0\n");  /* the header counts too */
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 1, "expected 5 columns, found 6");
  spit_text(p, "1,2,3,4,0\n1,2,3,4,0,\n");  /* a trailing comma is an empty field */
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 2, "expected 5 columns, found 6");
  spit_text(p, "1,2,3,4,0\n1,2,3,4\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 2, "expected 5 columns, found 4");
  /* allowed: extra fields are not looked at; short rows still fail */
  cols[1].allow_extra_columns = true;
  spit_text(p, "a,b,c,d,e\n1,2,3,4,0,name\n5,6,7,8,1\n");
  ck_assert_msg(rt_load_csv(p, cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 2);
  ck_assert_int_eq(ds.columns[1].i[1], 1);
  rt_dataset_free(&ds);
  spit_text(p, "1,2,3,4,0,9\n1,2,3\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  expect(err, p, 2, "expected at least 5 columns, found 3");
}
END_TEST

/* --------------------------------------------------------- IDX (item 5) */

START_TEST(idx_trailing_bytes) {
  rt_dataset ds;
  char err[512];
  uint32_t dims[] = {3, 2};
  uint64_t v[6] = {1, 2, 3, 4, 5, 6};
  for (int gz = 0; gz < 2; gz++) {
    const char *p = path_in(gz ? "x.idx.gz" : "x.idx");
    write_idx(p, 0x08, 2, dims, v, 6, 1, 5, gz);
    rt_column_spec c = {.path = p, .width = 2};
    ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
    expect(err, p, -1, "5 trailing bytes after 3 records");
    ck_assert_ptr_null(ds.columns);
    write_idx(p, 0x08, 2, dims, v, 6, 1, 1, gz);
    ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
    expect(err, p, -1, "1 trailing byte after 3 records");
    write_idx(p, 0x08, 2, dims, v, 6, 1, 0, gz);
    ck_assert_msg(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err) == 0, "%s", err);
    rt_dataset_free(&ds);
  }
}
END_TEST

START_TEST(idx_bad_header_bytes) {
  rt_dataset ds;
  char err[512];
  const char *p = path_in("x.idx");
  rt_column_spec c = {.path = p, .width = 1};
  spit(p, "\x00\x00\x08\x00\x00\x00\x00\x01x", 9, false);
  ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, p, -1, "bad IDX rank 0 in magic 0x00000800 (ranks 1 to 8 are supported)");
  spit(p, "\x00\x00\x08\x09", 4, false);
  ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, p, -1, "bad IDX rank 9 in magic 0x00000809 (ranks 1 to 8 are supported)");
  spit(p, "\x00\x00\x0a\x01\x00\x00\x00\x01x", 9, false);
  ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, p, -1,
         "unsupported IDX type byte 0x0a (0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, "
         "0x0e f64)");
  spit(p, "\x00\x00\xff\x01", 4, false);
  ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, p, -1,
         "unsupported IDX type byte 0xff (0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, "
         "0x0e f64)");
}
END_TEST

/* A raw file whose header promises more data than the file holds is
 * refused before the column is allocated: under a 1 GiB address-space
 * limit the 8 GiB column could not be. */
START_TEST(idx_size_checked_before_allocating) {
  rt_dataset ds;
  char err[512];
  const char *p = path_in("x.idx");
  uint32_t dims[] = {(1u << 29) - 1, 4};
  uint64_t v[4] = {0};
  write_idx(p, 0x0D, 2, dims, v, 4, 4, 0, false);
#if !defined(__SANITIZE_ADDRESS__)  /* ASan reserves terabytes of shadow */
  struct rlimit lim = {1ul << 30, 1ul << 30};
  ck_assert_int_eq(setrlimit(RLIMIT_AS, &lim), 0);
#endif
  rt_column_spec c = {.path = p, .width = 4};
  ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, p, -1, "truncated: expected 8589934576 bytes of data, got 16");
  /* gzipped: the size is not known up front; the column grows with the
   * data instead */
  const char *g = path_in("x.idx.gz");
  write_idx(g, 0x0D, 2, dims, v, 4, 4, 0, true);
  c.path = g;
  ck_assert_int_ne(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err), 0);
  expect(err, g, -1, "truncated: expected 8589934576 bytes of data, got 16");
  ck_assert_ptr_null(ds.columns);
}
END_TEST

/* The growing column of a gzip stream holds what a raw file gives. */
START_TEST(idx_gzip_column_grows) {
  enum { N = 700001 };
  unsigned char *b = malloc(8 + N);
  memcpy(b, "\x00\x00\x08\x01", 4);
  b[4] = (unsigned char)(N >> 24), b[5] = (unsigned char)(N >> 16);
  b[6] = (unsigned char)(N >> 8), b[7] = (unsigned char)N;
  for (int k = 0; k < N; k++) b[8 + k] = (unsigned char)(k * 7 + k / 251);
  const char *g = path_in("y.idx.gz");
  spit(g, b, 8 + N, true);
  rt_dataset ds;
  char err[512];
  rt_column_spec c = {.path = g, .is_int = true, .width = 1};
  ck_assert_msg(rt_load_idx(&c, 1, 1.0, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, N);
  for (int k = 0; k < N; k++) ck_assert_int_eq(ds.columns[0].i[k], b[8 + k]);
  rt_dataset_free(&ds);
  free(b);
}
END_TEST

int main(void) {
  Suite *s = suite_create("data_errors");
  TCase *tc = tcase_create("errors");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 20);  /* a FIFO that blocks fails here instead of hanging */
  tcase_add_test(tc, fifo_is_refused);
  tcase_add_test(tc, directory_and_device_are_refused);
  tcase_add_test(tc, labels_out_of_range_idx);
  tcase_add_test(tc, labels_out_of_range_csv_npy);
  tcase_add_test(tc, csv_values_beyond_f32);
  tcase_add_test(tc, npy_idx_values_beyond_f32);
  tcase_add_test(tc, csv_header_rule);
  tcase_add_test(tc, csv_row_length);
  tcase_add_test(tc, idx_trailing_bytes);
  tcase_add_test(tc, idx_bad_header_bytes);
  tcase_add_test(tc, idx_size_checked_before_allocating);
  tcase_add_test(tc, idx_gzip_column_grows);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
