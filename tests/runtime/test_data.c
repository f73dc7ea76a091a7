/* test_data.c - the data sources of train blocks (runtime/data.c): IDX
 * (raw and gzipped, every element type), CSV, NPY, text windows, the
 * synthetic sets and the epoch shuffle, each with the errors a bad file
 * must give: the file's name and what is wrong with it. */
#include <check.h>
#include <ftw.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/data.h"
#include "runtime/runtime.h"

/* ------------------------------------------------------------ fixtures */

static char dir[64];  /* a fresh directory per test (Check forks each test) */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void setup(void) {
  strcpy(dir, "/tmp/nncc_data_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) { nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *path_in(const char *name) {
  static char buf[32][256];  /* a test keeps a few paths alive at once */
  static int next;
  char *p = buf[next++ % 32];
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

static void assert_msg(const char *err, const char *path, const char *rest) {
  char want[512];
  snprintf(want, sizeof want, "%s: %s", path, rest);
  ck_assert_str_eq(err, want);
}

/* "PATH:LINE: rest" */
static void assert_line_msg(const char *err, const char *path, int line, const char *rest) {
  char want[512];
  snprintf(want, sizeof want, "%s:%d: %s", path, line, rest);
  ck_assert_str_eq(err, want);
}

/* An IDX file: type code, dims, then `count` values as big-endian
 * elements of `esize` bytes taken from v[] (integers or float bits). */
static void write_idx(const char *path, int type, int rank, const uint32_t *dims,
                      const uint64_t *v, int count, int esize, bool gz, int cut) {
  unsigned char b[4096];
  size_t n = 0;
  b[n++] = 0, b[n++] = 0, b[n++] = (unsigned char)type, b[n++] = (unsigned char)rank;
  for (int d = 0; d < rank; d++)
    for (int k = 3; k >= 0; k--) b[n++] = (unsigned char)(dims[d] >> (8 * k));
  for (int i = 0; i < count; i++)
    for (int k = esize - 1; k >= 0; k--) b[n++] = (unsigned char)(v[i] >> (8 * k));
  spit(path, b, n - (size_t)cut, gz);
}

static uint64_t f32_bits(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  return u;
}

static uint64_t f64_bits(double d) {
  uint64_t u;
  memcpy(&u, &d, 8);
  return u;
}

/* 3 images of 2x2 ubyte pixels and 3 ubyte labels. */
static void write_mnist_like(const char *x, const char *y, bool gz) {
  uint32_t dx[] = {3, 2, 2}, dy[] = {3};
  uint64_t px[12], lb[] = {7, 0, 9};
  for (int k = 0; k < 12; k++) px[k] = (uint64_t)(k * 20);
  write_idx(x, 0x08, 3, dx, px, 12, 1, gz, 0);
  write_idx(y, 0x08, 1, dy, lb, 3, 1, gz, 0);
}

/* ------------------------------------------------------------------ IDX */

static void check_mnist_like(bool gz) {
  const char *x = path_in(gz ? "x.idx.gz" : "x.idx"), *y = path_in(gz ? "y.idx.gz" : "y.idx");
  write_mnist_like(x, y, gz);
  rt_column_spec cols[2] = {{.path = x, .width = 4}, {.path = y, .is_int = true, .width = 1}};
  rt_dataset ds;
  char err[256] = "";
  ck_assert_msg(rt_load_idx(cols, 2, 1.0 / 255, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 3);
  ck_assert_int_eq(ds.n_columns, 2);
  ck_assert(!ds.columns[0].is_int && ds.columns[0].width == 4);
  for (int k = 0; k < 12; k++) ck_assert_float_eq_tol(ds.columns[0].f[k], k * 20 / 255.0, 1e-6);
  ck_assert(ds.columns[1].is_int && ds.columns[1].width == 1);
  ck_assert_int_eq(ds.columns[1].i[0], 7);
  ck_assert_int_eq(ds.columns[1].i[2], 9);
  rt_dataset_free(&ds);
  ck_assert_ptr_null(ds.columns);
}

START_TEST(idx_raw) { check_mnist_like(false); }
END_TEST

START_TEST(idx_gzip) { check_mnist_like(true); }
END_TEST

START_TEST(idx_element_types) {
  uint32_t d2[] = {2, 2}, d1[] = {2};
  char err[256] = "";
  rt_dataset ds;
  struct {
    int type, esize;
    uint64_t v[4];
    float want[4];
  } cases[] = {
      {0x09, 1, {0xff, 0x80, 0x7f, 0x01}, {-1, -128, 127, 1}},
      {0x0B, 2, {0xfffe, 0x7fff, 0x0100, 0x8000}, {-2, 32767, 256, -32768}},
      {0x0C, 4, {0xffffffff, 100000, 0, 0x80000000}, {-1, 100000, 0, -2147483648.0f}},
      {0x0D, 4, {f32_bits(1.5f), f32_bits(-2.25f), f32_bits(0), f32_bits(1e30f)},
       {1.5f, -2.25f, 0, 1e30f}},
      {0x0E, 8, {f64_bits(0.1), f64_bits(-3), f64_bits(7), f64_bits(1e-3)}, {0.1f, -3, 7, 1e-3f}},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    const char *p = path_in("t.idx");
    write_idx(p, cases[c].type, 2, d2, cases[c].v, 4, cases[c].esize, c % 2, 0);
    rt_column_spec col = {.path = p, .width = 2};
    ck_assert_msg(rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err) == 0, "%s", err);
    ck_assert_int_eq(ds.n, 2);
    for (int k = 0; k < 4; k++) ck_assert_float_eq(ds.columns[0].f[k], cases[c].want[k]);
    rt_dataset_free(&ds);
  }
  /* int labels stored as int32 and as integral doubles */
  const char *p = path_in("l.idx");
  uint64_t labels[] = {3, 0x7fffffff};
  write_idx(p, 0x0C, 1, d1, labels, 2, 4, false, 0);
  rt_column_spec col = {.path = p, .is_int = true, .width = 1};
  ck_assert_msg(rt_load_idx(&col, 1, 1.0 / 255, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.columns[0].i[0], 3);
  ck_assert_int_eq(ds.columns[0].i[1], 0x7fffffff);
  rt_dataset_free(&ds);
  uint64_t dl[] = {f64_bits(4), f64_bits(2.5)};
  write_idx(p, 0x0E, 1, d1, dl, 2, 8, false, 0);
  ck_assert_int_ne(rt_load_idx(&col, 1, 1.0, &ds, err, sizeof err), 0);
  assert_msg(err, p, "record 1 of 2 (0-based): 2.5 is not an int32 value");
  ck_assert_ptr_null(ds.columns);
}
END_TEST

START_TEST(idx_errors) {
  char err[256];
  rt_dataset ds;
  const char *x = path_in("x.idx"), *y = path_in("y.idx");
  write_mnist_like(x, y, false);
  rt_column_spec cols[2] = {{.path = x, .width = 4}, {.path = y, .is_int = true, .width = 1}};

  const char *absent = path_in("absent.gz");
  rt_column_spec miss = {.path = absent, .width = 4};
  ck_assert_int_ne(rt_load_idx(&miss, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, absent, "cannot open: No such file or directory");

  rt_column_spec wide = {.path = x, .width = 5};
  ck_assert_int_ne(rt_load_idx(&wide, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, x, "a sample has 4 values but the input needs 5");

  const char *bad = path_in("bad.idx");
  spit(bad, "\x01\x02\x03\x04rest", 8, false);
  rt_column_spec b1 = {.path = bad, .width = 4};
  ck_assert_int_ne(rt_load_idx(&b1, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, bad, "not an IDX file (bad magic 0x01020304)");
  spit(bad, "\x00\x00\x0a\x01\x00\x00\x00\x01x", 9, false);  /* unknown type 0x0a */
  ck_assert_int_ne(rt_load_idx(&b1, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, bad,
             "unsupported IDX type byte 0x0a (0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, 0x0d f32, "
             "0x0e f64)");
  spit(bad, "\x00\x00", 2, false);
  ck_assert_int_ne(rt_load_idx(&b1, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, bad, "truncated: expected 4 bytes of header, got 2");

  /* data cut short, raw and gzipped */
  uint32_t dx[] = {3, 2, 2};
  uint64_t px[12] = {0};
  for (int gz = 0; gz < 2; gz++) {
    const char *t = path_in(gz ? "t.idx.gz" : "t.idx");
    write_idx(t, 0x08, 3, dx, px, 12, 1, gz, 7);
    rt_column_spec c = {.path = t, .width = 4};
    ck_assert_int_ne(rt_load_idx(&c, 1, 1, &ds, err, sizeof err), 0);
    assert_msg(err, t, "truncated: expected 12 bytes of data, got 5");
    write_idx(t, 0x08, 3, dx, px, 12, 1, gz, 12 + 6);  /* into the dims */
    ck_assert_int_ne(rt_load_idx(&c, 1, 1, &ds, err, sizeof err), 0);
    assert_msg(err, t, "truncated: expected 12 bytes of header, got 6");
  }
  /* a gzip stream cut in the middle */
  const char *gzp = path_in("cut.gz");
  {
    /* incompressible data, so that half the file is about half the data */
    unsigned char plain[1000], raw[4096];
    uint32_t r = 12345;
    for (int k = 0; k < 1000; k++) plain[k] = (unsigned char)((r = r * 1103515245u + 12345u) >> 24);
    gzFile f = gzopen(gzp, "wb");
    unsigned char hdr[8] = {0, 0, 8, 1, 0, 0, 0x03, 0xe8};
    gzwrite(f, hdr, 8);
    gzwrite(f, plain, 1000);
    gzclose(f);
    FILE *fp = fopen(gzp, "rb");
    size_t n = fread(raw, 1, sizeof raw, fp);
    fclose(fp);
    spit(gzp, raw, n / 2, false);
  }
  rt_column_spec gc = {.path = gzp, .width = 1};
  ck_assert_int_ne(rt_load_idx(&gc, 1, 1, &ds, err, sizeof err), 0);
  ck_assert_msg(strstr(err, gzp) == err && strstr(err, "truncated: expected 1000 bytes of data"),
                "%s", err);

  /* gzip magic, then garbage */
  spit(gzp, "\x1f\x8b\x08\x00garbage-garbage-garbage", 27, false);
  ck_assert_int_ne(rt_load_idx(&gc, 1, 1, &ds, err, sizeof err), 0);
  ck_assert_msg(strstr(err, gzp) == err && strstr(err, ": corrupt gzip data ("), "%s", err);

  /* files that disagree on n */
  const char *y2 = path_in("y2.idx");
  uint32_t d2[] = {2};
  uint64_t l2[] = {1, 2};
  write_idx(y2, 0x08, 1, d2, l2, 2, 1, false, 0);
  cols[1].path = y2;
  ck_assert_int_ne(rt_load_idx(cols, 2, 1, &ds, err, sizeof err), 0);
  char want[512];
  snprintf(want, sizeof want, "%s: 3 samples but %s has 2", x, y2);
  ck_assert_str_eq(err, want);
  ck_assert_ptr_null(ds.columns);

  /* a header that promises more than 2^31 values: refused unallocated */
  const char *huge = path_in("huge.idx");
  uint32_t dh[] = {0xffffffffu, 784};
  write_idx(huge, 0x08, 2, dh, NULL, 0, 1, false, 0);
  rt_column_spec hc = {.path = huge, .width = 784};
  ck_assert_int_ne(rt_load_idx(&hc, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, huge, "too large: more than 2^31 values");
  uint32_t dz[] = {0, 4};
  write_idx(huge, 0x08, 2, dz, NULL, 0, 1, false, 0);
  ck_assert_int_ne(rt_load_idx(&hc, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, huge, "a sample has 4 values but the input needs 784");
  hc.width = 4;
  ck_assert_int_ne(rt_load_idx(&hc, 1, 1, &ds, err, sizeof err), 0);
  assert_msg(err, huge, "no samples");

  /* a directory is not a file */
  rt_column_spec dc = {.path = dir, .width = 1};
  ck_assert_int_ne(rt_load_idx(&dc, 1, 1, &ds, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, dir));
}
END_TEST

/* ------------------------------------------------------------------ CSV */

START_TEST(csv_with_header) {
  const char *p = path_in("iris.csv");
  spit_text(p,
            "sepal_l, sepal_w,petal_l,petal_w,class\n"
            "5.1,3.5,1.4,0.2,0\r\n"
            "\n"
            "  \t \n"
            "6.2, 2.9 ,4.3,1.3,1\n"
            "7.7,3.0,6.1,2.3,2,extra,fields\n"
            "-1e-3,.5,+2,0x10,2");  /* no final newline */
  /* the row with extra fields needs allow_extra_columns (test_data_errors.c) */
  rt_column_spec cols[2] = {{.col_lo = 0, .col_hi = 4, .width = 4},
                            {.col_lo = 4, .col_hi = 5, .is_int = true, .width = 1,
                             .allow_extra_columns = true}};
  rt_dataset ds;
  char err[256] = "";
  ck_assert_msg(rt_load_csv(p, cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 4);
  ck_assert_float_eq(ds.columns[0].f[0], 5.1f);
  ck_assert_float_eq(ds.columns[0].f[5], 2.9f);
  ck_assert_float_eq(ds.columns[0].f[12], -1e-3f);
  ck_assert_float_eq(ds.columns[0].f[15], 16.0f);
  int32_t want[] = {0, 1, 2, 2};
  for (int k = 0; k < 4; k++) ck_assert_int_eq(ds.columns[1].i[k], want[k]);
  rt_dataset_free(&ds);
  /* without a header; columns picked out of order */
  spit_text(p, "1,2,3\n4,5,6\n");
  rt_column_spec c2[2] = {{.col_lo = 2, .col_hi = 3, .width = 1},
                          {.col_lo = 0, .col_hi = 2, .width = 2}};
  ck_assert_msg(rt_load_csv(p, c2, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 2);
  ck_assert_float_eq(ds.columns[0].f[1], 6);
  ck_assert_float_eq(ds.columns[1].f[2], 4);
  rt_dataset_free(&ds);
  /* gzipped */
  const char *gz = path_in("d.csv.gz");
  spit(gz, "a,b\n1,2\n", 8, true);
  ck_assert_msg(rt_load_csv(gz, c2 + 1, 1, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 1);
  rt_dataset_free(&ds);
}
END_TEST

START_TEST(csv_many_rows) {
  const char *p = path_in("big.csv");
  FILE *f = fopen(p, "w");
  for (int r = 0; r < 5000; r++) fprintf(f, "%d,%d.5\n", r, r);
  fclose(f);
  rt_column_spec cols[2] = {{.col_lo = 1, .col_hi = 2, .width = 1},
                            {.col_lo = 0, .col_hi = 1, .is_int = true, .width = 1}};
  rt_dataset ds;
  char err[256] = "";
  ck_assert_msg(rt_load_csv(p, cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 5000);
  ck_assert_int_eq(ds.columns[1].i[4999], 4999);
  ck_assert_float_eq(ds.columns[0].f[4999], 4999.5f);
  rt_dataset_free(&ds);
}
END_TEST

START_TEST(csv_errors) {
  const char *p = path_in("d.csv");
  rt_column_spec cols[2] = {{.col_lo = 0, .col_hi = 4, .width = 4},
                            {.col_lo = 4, .col_hi = 5, .is_int = true, .width = 1}};
  rt_dataset ds;
  char err[256];
  spit_text(p, "a,b,c,d,e\n1,2,3,4,0\n1,2,3\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_line_msg(err, p, 3, "expected 5 columns, found 3");
  ck_assert_ptr_null(ds.columns);
  spit_text(p, "1,2,3,4,0\n\n1,2,abc,4,1\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_line_msg(err, p, 3, "column 2: 'abc' is not a number");
  spit_text(p, "1,2,3,4,0\n1,2,,4,1\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_line_msg(err, p, 2, "column 2: '' is not a number");
  spit_text(p, "1,2,3,4,0\n1,2,3,4,1.5\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_line_msg(err, p, 2, "column 4: '1.5' is not an integer");
  spit_text(p, "1,2,3,4,0\n1,2,nan,4,1\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_line_msg(err, p, 2, "column 2: 'nan' is not a finite number");
  spit_text(p, "x,y,z,w,label\n\n");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_msg(err, p, "no data rows");
  spit_text(p, "");
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_msg(err, p, "no data rows");
  /* binary garbage and a NUL inside a field */
  spit(p, "1,2,3,4,0\n1,2\0003,3,4,0\n", 22, false);
  ck_assert_int_ne(rt_load_csv(p, cols, 2, &ds, err, sizeof err), 0);
  assert_line_msg(err, p, 2, "column 1: '2?3' is not a number");
  /* a width that does not match the range */
  rt_column_spec w = {.col_lo = 0, .col_hi = 4, .width = 3};
  ck_assert_int_ne(rt_load_csv(p, &w, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "columns [0:4] give 4 values but the input needs 3");
  const char *absent = path_in("absent.csv");
  ck_assert_int_ne(rt_load_csv(absent, cols, 2, &ds, err, sizeof err), 0);
  assert_msg(err, absent, "cannot open: No such file or directory");
}
END_TEST

/* ------------------------------------------------------------------ NPY */

/* A v1.0 .npy file: the dict padded with spaces and a newline to a
 * 64-byte boundary, as NumPy writes it, then `len` data bytes. */
static void write_npy(const char *path, const char *dict, const void *data, size_t len,
                      size_t cut) {
  unsigned char b[4096];
  size_t dl = strlen(dict), total = (10 + dl + 1 + 63) / 64 * 64, hl = total - 10;
  memcpy(b, "\x93NUMPY\x01\x00", 8);
  b[8] = (unsigned char)(hl & 0xff), b[9] = (unsigned char)(hl >> 8);
  memcpy(b + 10, dict, dl);
  memset(b + 10 + dl, ' ', hl - dl - 1);
  b[total - 1] = '\n';
  memcpy(b + total, data, len);
  spit(path, b, total + len - cut, false);
}

START_TEST(npy_types) {
  rt_dataset ds;
  char err[256] = "";
  const char *x = path_in("x.npy"), *y = path_in("y.npy");
  float xf[6] = {1, 2, 3, 4, 5, 6.5f};
  int64_t yi[3] = {2, 0, 1};
  write_npy(x, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", xf, sizeof xf, 0);
  write_npy(y, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }", yi, sizeof yi, 0);
  rt_column_spec cols[2] = {{.path = x, .width = 2}, {.path = y, .is_int = true, .width = 1}};
  ck_assert_msg(rt_load_npy(cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 3);
  ck_assert_float_eq(ds.columns[0].f[5], 6.5f);
  ck_assert_int_eq(ds.columns[1].i[0], 2);
  ck_assert_int_eq(ds.columns[1].i[2], 1);
  rt_dataset_free(&ds);
  /* u1 pixels into f32, f8 into f32, i4 into an int column; a shape
   * reshaped to the width (3 samples of 2x2) */
  unsigned char u[12] = {0, 255, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  write_npy(x, "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), }", u, 12, 0);
  cols[0].width = 4;
  double d[3] = {0.25, -1, 1e10};
  write_npy(y, "{\"descr\": \"<f8\", \"fortran_order\": False, \"shape\": (3, 1)}", d, sizeof d, 0);
  cols[1].is_int = false;
  ck_assert_msg(rt_load_npy(cols, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_float_eq(ds.columns[0].f[1], 255);
  ck_assert_float_eq(ds.columns[1].f[0], 0.25f);
  ck_assert_float_eq(ds.columns[1].f[2], 1e10f);
  rt_dataset_free(&ds);
  int32_t i4[2] = {-5, 70000};
  write_npy(y, "{'descr': '<i4', 'fortran_order': True, 'shape': (2,), }", i4, sizeof i4, 0);
  rt_column_spec c1 = {.path = y, .is_int = true, .width = 1};
  ck_assert_msg(rt_load_npy(&c1, 1, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.columns[0].i[0], -5);
  ck_assert_int_eq(ds.columns[0].i[1], 70000);
  rt_dataset_free(&ds);
}
END_TEST

START_TEST(npy_errors) {
  rt_dataset ds;
  char err[256];
  const char *p = path_in("a.npy");
  float f[6] = {0};
  rt_column_spec c = {.path = p, .width = 2};
  spit(p, "NUMPY\x01\x00garbage", 14, false);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "not an NPY file (bad magic)");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f, sizeof f, 14);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "truncated: expected 24 bytes of data, got 10");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), }", f, 0, 30);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "truncated: expected 118 bytes of header, got 88");
  write_npy(p, "{'descr': '>f4', 'fortran_order': False, 'shape': (3, 2), }", f, sizeof f, 0);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "big-endian data ('>f4') is not supported");
  write_npy(p, "{'descr': '<c8', 'fortran_order': False, 'shape': (3, 2), }", f, sizeof f, 0);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "unsupported dtype '<c8' (use f4, f8, i4, i8 or u1)");
  write_npy(p, "{'descr': '<f4', 'fortran_order': True, 'shape': (3, 2), }", f, sizeof f, 0);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "Fortran-order arrays are not supported");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f, sizeof f, 0);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "a sample has 3 values but the input needs 2");
  write_npy(p, "{'descr': '<f4', 'fortran_order': False, 'shape': (), }", f, 4, 0);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "a 0-d array has no samples");
  write_npy(p, "{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (3,), }", f, 12, 0);
  ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "structured arrays are not supported");
  static const char *bad[] = {
      "{'descr': '<f4', 'fortran_order': False}",
      "{'descr': '<f4', 'fortran_order': Maybe, 'shape': (3, 2)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3, -2)}",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 2), 'x': 1}",
      "['descr']",
      "{'descr': '<f4', 'fortran_order': False, 'shape': (99999999999999999999, 2)}",
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    write_npy(p, bad[k], f, sizeof f, 0);
    ck_assert_int_ne(rt_load_npy(&c, 1, &ds, err, sizeof err), 0);
    char want[300];
    snprintf(want, sizeof want, "%s: bad NPY header", p);
    ck_assert_msg(!strncmp(err, want, strlen(want)), "%s -> %s", bad[k], err);
  }
  /* i8 out of int32 range in a label column */
  int64_t big[2] = {1, (int64_t)1 << 40};
  write_npy(p, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", big, sizeof big, 0);
  rt_column_spec ci = {.path = p, .is_int = true, .width = 1};
  ck_assert_int_ne(rt_load_npy(&ci, 1, &ds, err, sizeof err), 0);
  assert_msg(err, p, "row 1 of 2 (0-based): 1099511627776 is not an int32 value");
}
END_TEST

/* ----------------------------------------------------------------- text */

START_TEST(text_windows) {
  const char *p = path_in("t.txt");
  spit_text(p, "hello world");  /* 11 bytes, t = 4: windows at 0 and 4 */
  rt_dataset ds;
  char err[256] = "";
  ck_assert_msg(rt_load_text(p, 4, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 2);
  ck_assert_int_eq(ds.n_columns, 2);
  ck_assert(ds.columns[0].is_int && ds.columns[1].is_int);
  ck_assert_int_eq(ds.columns[0].width, 4);
  const char *x = "hello wo", *y = "ello wor";
  for (int k = 0; k < 8; k++) {
    ck_assert_int_eq(ds.columns[0].i[k], x[k]);
    ck_assert_int_eq(ds.columns[1].i[k], y[k]);
  }
  rt_dataset_free(&ds);
  /* bytes above 127 are tokens 128..255, not negative */
  spit(p, "\xff\x80\x01", 3, false);
  ck_assert_msg(rt_load_text(p, 2, &ds, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(ds.n, 1);
  ck_assert_int_eq(ds.columns[0].i[0], 255);
  ck_assert_int_eq(ds.columns[1].i[0], 128);
  ck_assert_int_eq(ds.columns[1].i[1], 1);
  rt_dataset_free(&ds);
  /* exactly t + 1 bytes: one window */
  spit_text(p, "abcde");
  ck_assert_int_eq(rt_load_text(p, 4, &ds, err, sizeof err), 0);
  ck_assert_int_eq(ds.n, 1);
  rt_dataset_free(&ds);
  ck_assert_int_ne(rt_load_text(p, 5, &ds, err, sizeof err), 0);
  assert_msg(err, p, "5 bytes, fewer than the 6 a window of 5 needs");
  ck_assert_ptr_null(ds.columns);
  const char *absent = path_in("absent.txt");
  ck_assert_int_ne(rt_load_text(absent, 5, &ds, err, sizeof err), 0);
  assert_msg(err, absent, "cannot open: No such file or directory");
}
END_TEST

/* ------------------------------------------------------------ synthetic */

START_TEST(synthetic_sets) {
  rt_dataset ds;
  char err[256] = "";
  float x[200], y[100];
  int32_t yi[100];
  ck_assert_int_eq(rt_load_synthetic("sine", 100, 0, -3, 3, 5, &ds, err, sizeof err), 0);
  rt_synth_sine(100, -3, 3, 5, x, y);
  ck_assert(ds.n == 100 && ds.n_columns == 2);
  ck_assert(!ds.columns[0].is_int && ds.columns[0].width == 1 && !ds.columns[1].is_int &&
            ds.columns[1].width == 1);
  ck_assert_mem_eq(ds.columns[0].f, x, 100 * sizeof(float));
  ck_assert_mem_eq(ds.columns[1].f, y, 100 * sizeof(float));
  rt_dataset_free(&ds);
  ck_assert_int_eq(rt_load_synthetic("spiral", 100, 3, 0, 0, 5, &ds, err, sizeof err), 0);
  rt_synth_spiral(100, 3, 5, x, yi);
  ck_assert(ds.columns[0].width == 2 && ds.columns[1].is_int && ds.columns[1].width == 1);
  ck_assert_mem_eq(ds.columns[0].f, x, 200 * sizeof(float));
  ck_assert_mem_eq(ds.columns[1].i, yi, 100 * sizeof(int32_t));
  rt_dataset_free(&ds);
  ck_assert_int_eq(rt_load_synthetic("xor", 100, 0, 0, 0, 5, &ds, err, sizeof err), 0);
  rt_synth_xor(100, 5, x, y);
  ck_assert(ds.columns[0].width == 2 && !ds.columns[1].is_int && ds.columns[1].width == 1);
  ck_assert_mem_eq(ds.columns[0].f, x, 200 * sizeof(float));
  ck_assert_mem_eq(ds.columns[1].f, y, 100 * sizeof(float));
  rt_dataset_free(&ds);

  ck_assert_int_ne(rt_load_synthetic("moons", 100, 0, 0, 0, 5, &ds, err, sizeof err), 0);
  ck_assert_str_eq(err, "unknown synthetic data set 'moons' (sine, spiral or xor)");
  ck_assert_int_ne(rt_load_synthetic("sine", 0, 0, 0, 1, 5, &ds, err, sizeof err), 0);
  ck_assert_str_eq(err, "sine: n must be positive, not 0");
  ck_assert_int_ne(rt_load_synthetic("spiral", 10, 0, 0, 1, 5, &ds, err, sizeof err), 0);
  ck_assert_str_eq(err, "spiral: classes must be between 1 and 1000000, not 0");
  ck_assert_int_ne(rt_load_synthetic("xor", (int64_t)1 << 40, 0, 0, 1, 5, &ds, err, sizeof err),
                   0);
  ck_assert_ptr_null(ds.columns);
}
END_TEST

/* -------------------------------------------------------------- shuffle */

START_TEST(shuffle_is_a_seeded_permutation) {
  enum { N = 1000 };
  int64_t a[N], b[N], c[N];
  rt_shuffle(a, N, 42, 0);
  rt_shuffle(b, N, 42, 0);
  ck_assert_mem_eq(a, b, sizeof a);
  char seen[N] = {0};
  int fixed = 0;
  for (int k = 0; k < N; k++) {
    ck_assert(a[k] >= 0 && a[k] < N && !seen[a[k]]);
    seen[a[k]] = 1;
    fixed += a[k] == k;
  }
  ck_assert_int_lt(fixed, 10);  /* ~1 expected */
  rt_shuffle(c, N, 42, 1);
  ck_assert(memcmp(a, c, sizeof a) != 0);
  rt_shuffle(c, N, 43, 0);
  ck_assert(memcmp(a, c, sizeof a) != 0);
  /* the documented construction */
  int64_t d[5] = {0, 1, 2, 3, 4}, e[5];
  for (int64_t k = 4; k > 0; k--) {
    int64_t j = (int64_t)(rt_rand_u64(7, 3 + 1000, (uint64_t)k) % (uint64_t)(k + 1));
    int64_t t = d[k];
    d[k] = d[j];
    d[j] = t;
  }
  rt_shuffle(e, 5, 7, 3);
  ck_assert_mem_eq(d, e, sizeof d);
  rt_shuffle(e, 1, 7, 3);
  ck_assert_int_eq(e[0], 0);
  rt_shuffle(e, 0, 7, 3);
}
END_TEST

int main(void) {
  Suite *s = suite_create("data");
  TCase *files = tcase_create("files");
  tcase_add_checked_fixture(files, setup, teardown);
  tcase_add_test(files, idx_raw);
  tcase_add_test(files, idx_gzip);
  tcase_add_test(files, idx_element_types);
  tcase_add_test(files, idx_errors);
  tcase_add_test(files, csv_with_header);
  tcase_add_test(files, csv_many_rows);
  tcase_add_test(files, csv_errors);
  tcase_add_test(files, npy_types);
  tcase_add_test(files, npy_errors);
  tcase_add_test(files, text_windows);
  suite_add_tcase(s, files);
  TCase *gen = tcase_create("generated");
  tcase_add_test(gen, synthetic_sets);
  tcase_add_test(gen, shuffle_is_a_seeded_permutation);
  suite_add_tcase(s, gen);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
