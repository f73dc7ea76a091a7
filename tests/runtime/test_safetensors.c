/* test_safetensors.c - checkpoints (runtime/safetensors.c): a round trip,
 * the exact on-disk layout (parsed here by hand), atomic saving (failed
 * saves leave no temporary file and the old checkpoint intact), and every
 * way a file can be wrong: truncation, another model, missing, extra and
 * mismatched tensors, malformed headers. A failed load must not touch the
 * model's buffers. */
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "runtime/nncc.h"
#include "runtime/safetensors.h"

/* ------------------------------------------------------------ fixtures */

static char dir[64];  /* a fresh directory per test (Check forks each test) */

static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb, (void)flag, (void)ftw;
  return remove(p);
}

static void setup(void) {
  strcpy(dir, "/tmp/nncc_st_XXXXXX");
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

/* Entries of `dir` whose name contains `part`. */
static int count_files(const char *d, const char *part) {
  DIR *dp = opendir(d);
  if (!dp) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(dp)))
    if (strstr(e->d_name, part)) n++;
  closedir(dp);
  return n;
}

static unsigned char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  unsigned char *b = malloc((size_t)n + 1);
  ck_assert_uint_eq(fread(b, 1, (size_t)n, f), (size_t)n);
  fclose(f);
  b[n] = 0;
  *len = (size_t)n;
  return b;
}

static void spit(const char *path, const void *data, size_t len) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, len, f), len);
  fclose(f);
}

/* A file of the given JSON header (padded to 8) and data. */
static void write_st(const char *path, const char *json, const void *data, size_t data_len) {
  size_t n = strlen(json), padded = (n + 7) / 8 * 8;
  unsigned char *b = calloc(1, 8 + padded + data_len);
  for (int k = 0; k < 8; k++) b[k] = (unsigned char)((uint64_t)padded >> (8 * k));
  memcpy(b + 8, json, n);
  memset(b + 8 + n, ' ', padded - n);
  if (data_len) memcpy(b + 8 + padded, data, data_len);
  spit(path, b, 8 + padded + data_len);
  free(b);
}

/* The model of most tests: two f32 params, an i32 scalar, an empty one. */
static const int64_t shape_w[] = {3, 4}, shape_b[] = {4}, shape_e[] = {0, 3};
static float w[12], b[4];
static int32_t step;

static void model_tensors(rt_st_tensor t[4], float *wd, float *bd, int32_t *sd) {
  t[0] = (rt_st_tensor){"h.w", NNCC_F32, 2, shape_w, wd};
  t[1] = (rt_st_tensor){"h.b", NNCC_F32, 1, shape_b, bd};
  t[2] = (rt_st_tensor){"train:step", NNCC_I32, 0, NULL, sd};
  t[3] = (rt_st_tensor){"empty", NNCC_F32, 2, shape_e, NULL};
}

static void fill_model(void) {
  for (int k = 0; k < 12; k++) w[k] = 0.5f * (float)k - 3.25f;
  for (int k = 0; k < 4; k++) b[k] = 1e-3f * (float)(k + 1);
  step = 1234567;
}

/* Saves the model to name, as model "mlp"; returns its path. */
static const char *save_model(const char *name) {
  fill_model();
  rt_st_tensor t[4];
  model_tensors(t, w, b, &step);
  char err[256] = "";
  const char *p = path_in(name);
  ck_assert_msg(rt_st_save(p, "mlp", t, 4, err, sizeof err) == 0, "%s", err);
  return p;
}

/* Loads path into sentinel-filled buffers as model `model`; returns the
 * status and the message; checks a failure left the buffers alone. */
static int load_model(const char *path, const char *model, char *err, size_t err_size) {
  float w2[12], b2[4];
  int32_t s2 = -1;
  for (int k = 0; k < 12; k++) w2[k] = -99;
  for (int k = 0; k < 4; k++) b2[k] = -99;
  rt_st_tensor t[4];
  model_tensors(t, w2, b2, &s2);
  err[0] = 0;
  int rc = rt_st_load(path, model, t, 4, err, err_size);
  if (rc) {
    ck_assert_msg(err[0], "failure without a message");
    for (int k = 0; k < 12; k++) ck_assert(w2[k] == -99);
    for (int k = 0; k < 4; k++) ck_assert(b2[k] == -99);
    ck_assert_int_eq(s2, -1);
  }
  return rc;
}

static void assert_msg(const char *err, const char *path, const char *rest) {
  char want[512];
  snprintf(want, sizeof want, "%s: %s", path, rest);
  ck_assert_str_eq(err, want);
}

/* ---------------------------------------------------------- round trip */

START_TEST(round_trip) {
  const char *p = save_model("m.safetensors");
  float w2[12] = {0}, b2[4] = {0};
  int32_t s2 = 0;
  rt_st_tensor t[4];
  model_tensors(t, w2, b2, &s2);
  char err[256] = "";
  ck_assert_msg(rt_st_load(p, "mlp", t, 4, err, sizeof err) == 0, "%s", err);
  ck_assert_mem_eq(w2, w, sizeof w);
  ck_assert_mem_eq(b2, b, sizeof b);
  ck_assert_int_eq(s2, step);
  /* the order of the request does not matter */
  rt_st_tensor r[4] = {t[3], t[2], t[1], t[0]};
  memset(w2, 0, sizeof w2);
  ck_assert_msg(rt_st_load(p, "mlp", r, 4, err, sizeof err) == 0, "%s", err);
  ck_assert_mem_eq(w2, w, sizeof w);
  /* saving over an existing checkpoint replaces it */
  w[0] = 42;
  rt_st_tensor t2[4];
  model_tensors(t2, w, b, &step);
  ck_assert_int_eq(rt_st_save(p, "mlp", t2, 4, err, sizeof err), 0);
  ck_assert_int_eq(rt_st_load(p, "mlp", t, 4, err, sizeof err), 0);
  ck_assert(w2[0] == 42);
  ck_assert_int_eq(count_files(dir, ".tmp"), 0);
}
END_TEST

START_TEST(layout_is_safetensors) {
  const char *p = save_model("m.safetensors");
  size_t len;
  unsigned char *f = slurp(p, &len);
  ck_assert_uint_ge(len, 8);
  uint64_t n = 0;
  for (int k = 0; k < 8; k++) n |= (uint64_t)f[k] << (8 * k);
  ck_assert_uint_eq(n % 8, 0);
  ck_assert_uint_eq(len, 8 + n + 48 + 16 + 4);  /* h.w, h.b, train:step, empty */
  char *json = strndup((char *)f + 8, n);
  /* the JSON, then only space padding */
  const char *expect =
      "{\"__metadata__\":{\"format\":\"nncc\",\"model\":\"mlp\"},"
      "\"h.w\":{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]},"
      "\"h.b\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[48,64]},"
      "\"train:step\":{\"dtype\":\"I32\",\"shape\":[],\"data_offsets\":[64,68]},"
      "\"empty\":{\"dtype\":\"F32\",\"shape\":[0,3],\"data_offsets\":[68,68]}}";
  size_t el = strlen(expect);
  ck_assert_uint_ge(n, el);
  ck_assert_uint_lt(n - el, 8);
  ck_assert_int_eq(memcmp(json, expect, el), 0);
  for (size_t k = el; k < n; k++) ck_assert_int_eq(json[k], ' ');
  /* the data: little-endian words at the offsets */
  const unsigned char *data = f + 8 + n;
  for (int k = 0; k < 12; k++) {
    uint32_t bits;
    memcpy(&bits, &w[k], 4);
    for (int j = 0; j < 4; j++) ck_assert_uint_eq(data[4 * k + j], (bits >> (8 * j)) & 0xff);
  }
  for (int j = 0; j < 4; j++)
    ck_assert_uint_eq(data[64 + j], ((uint32_t)step >> (8 * j)) & 0xff);
  free(json);
  free(f);
}
END_TEST

/* Another tool's file: keys in another order, whitespace, escapes, extra
 * metadata, __metadata__ last. */
START_TEST(reads_other_writers) {
  float data[6] = {1, 2, 3, 4, 5, 6};
  const char *p = path_in("other.safetensors");
  write_st(p,
           "{ \"b\" : {\"data_offsets\": [16, 24], \"shape\": [2], \"dtype\": \"F32\"},\n"
           "  \"a\\u00e9\": {\"dtype\":\"F32\",\"shape\":[1,4],\"data_offsets\":[0,16]},\n"
           "  \"__metadata__\": {\"format\": \"pt\", \"model\": \"m\\\"q\", \"x\": \"y\"} }",
           data, sizeof data);
  float a[4] = {0}, bb[2] = {0};
  const int64_t sa[] = {1, 4}, sb[] = {2};
  rt_st_tensor t[2] = {{"a\xc3\xa9", NNCC_F32, 2, sa, a}, {"b", NNCC_F32, 1, sb, bb}};
  char err[256] = "";
  ck_assert_msg(rt_st_load(p, "m\"q", t, 2, err, sizeof err) == 0, "%s", err);
  ck_assert(a[0] == 1 && a[3] == 4 && bb[0] == 5 && bb[1] == 6);
  /* model NULL: any model */
  ck_assert_msg(rt_st_load(p, NULL, t, 2, err, sizeof err) == 0, "%s", err);
}
END_TEST

/* ----------------------------------------------------------- atomicity */

START_TEST(save_into_missing_directory) {
  fill_model();
  rt_st_tensor t[4];
  model_tensors(t, w, b, &step);
  char err[256] = "";
  const char *p = path_in("nope/m.safetensors");
  ck_assert_int_ne(rt_st_save(p, "mlp", t, 4, err, sizeof err), 0);
  assert_msg(err, p, "cannot write: No such file or directory");
  ck_assert_int_eq(count_files(dir, "."), 2);  /* only . and .. */
}
END_TEST

/* A directory is not replaced: the save fails before anything is
 * written, and no temporary file is left. */
START_TEST(failed_rename_leaves_nothing) {
  const char *p = path_in("ckpt");
  ck_assert_int_eq(mkdir(p, 0755), 0);
  fill_model();
  rt_st_tensor t[4];
  model_tensors(t, w, b, &step);
  char err[512] = "";
  ck_assert_int_ne(rt_st_save(p, "mlp", t, 4, err, sizeof err), 0);
  ck_assert_msg(strncmp(err, p, strlen(p)) == 0 && strstr(err, "it is a directory"), "%s", err);
  ck_assert_int_eq(count_files(dir, ".tmp"), 0);
  struct stat st;
  ck_assert(stat(p, &st) == 0 && S_ISDIR(st.st_mode));
}
END_TEST

/* A write that fails midway (file size limit) leaves the old checkpoint
 * intact and no temporary file. */
START_TEST(failed_write_keeps_old_checkpoint) {
  const char *p = save_model("m.safetensors");
  pid_t pid = fork();
  if (pid == 0) {
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit rl = {4096, 4096};
    setrlimit(RLIMIT_FSIZE, &rl);
    static float big[100000];
    int64_t shape[] = {100000};
    rt_st_tensor t[1] = {{"big", NNCC_F32, 1, shape, big}};
    char err[256] = "";
    int rc = rt_st_save(p, "mlp", t, 1, err, sizeof err);
    char want[300];
    snprintf(want, sizeof want, "%s: cannot write: File too large", p);
    _exit(rc != 0 && !strcmp(err, want) ? 0 : 1);
  }
  int status;
  ck_assert_int_eq(waitpid(pid, &status, 0), pid);
  ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  ck_assert_int_eq(count_files(dir, ".tmp"), 0);
  char err[256];
  ck_assert_msg(load_model(p, "mlp", err, sizeof err) == 0, "%s", err);
}
END_TEST

START_TEST(bad_save_requests) {
  fill_model();
  rt_st_tensor t[4];
  model_tensors(t, w, b, &step);
  const char *p = path_in("m.safetensors");
  char err[256];
  t[1].name = "h.w";
  ck_assert_int_ne(rt_st_save(p, "mlp", t, 4, err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "named twice"));
  model_tensors(t, w, b, &step);
  t[0].dtype = 7;
  ck_assert_int_ne(rt_st_save(p, "mlp", t, 4, err, sizeof err), 0);
  model_tensors(t, w, b, &step);
  t[0].data = NULL;
  ck_assert_int_ne(rt_st_save(p, "mlp", t, 4, err, sizeof err), 0);
  ck_assert_int_eq(count_files(dir, "."), 2);
}
END_TEST

/* ----------------------------------------------------------- bad files */

START_TEST(missing_file) {
  char err[256];
  const char *p = path_in("absent");
  ck_assert_int_ne(load_model(p, "mlp", err, sizeof err), 0);
  assert_msg(err, p, "cannot open: No such file or directory");
}
END_TEST

START_TEST(truncated_at_many_lengths) {
  const char *p = save_model("m.safetensors");
  size_t len;
  unsigned char *f = slurp(p, &len);
  uint64_t n = 0;
  for (int k = 0; k < 8; k++) n |= (uint64_t)f[k] << (8 * k);
  size_t cuts[] = {0, 1, 7, 8, 9, 20, 8 + n - 1, 8 + n, 8 + n + 1, 8 + n + 47, len - 1};
  for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
    const char *q = path_in("cut");
    spit(q, f, cuts[c]);
    char err[256];
    ck_assert_int_ne(load_model(q, "mlp", err, sizeof err), 0);
    char want[300];
    snprintf(want, sizeof want, "%s: truncated: ", q);
    ck_assert_msg(!strncmp(err, want, strlen(want)), "cut at %zu: %s", cuts[c], err);
  }
  /* the exact messages */
  const char *q = path_in("cut");
  char err[256], want[300];
  spit(q, f, 5);
  load_model(q, "mlp", err, sizeof err);
  assert_msg(err, q, "truncated: 5 bytes, fewer than the 8 of the header size");
  spit(q, f, 8 + n - 1);
  load_model(q, "mlp", err, sizeof err);
  snprintf(want, sizeof want, "truncated: a header of %llu bytes, but only %llu follow",
           (unsigned long long)n, (unsigned long long)(n - 1));
  assert_msg(err, q, want);
  spit(q, f, 8 + n + 47);
  load_model(q, "mlp", err, sizeof err);
  assert_msg(err, q, "truncated: tensor 'h.w' ends at byte 48 of the data, which has 47");
  free(f);
}
END_TEST

START_TEST(header_size_beyond_file) {
  const char *p = path_in("h");
  unsigned char f[40] = {0};
  f[0] = 0xe8, f[1] = 0x03;  /* 1000 */
  memcpy(f + 8, "{}", 2);
  spit(p, f, sizeof f);
  char err[256];
  ck_assert_int_ne(load_model(p, "mlp", err, sizeof err), 0);
  assert_msg(err, p, "truncated: a header of 1000 bytes, but only 32 follow");
  memset(f, 0xff, 8);  /* 2^64 - 1 */
  spit(p, f, sizeof f);
  ck_assert_int_ne(load_model(p, "mlp", err, sizeof err), 0);
  ck_assert_msg(strstr(err, "bad header") && strstr(err, "limit"), "%s", err);
}
END_TEST

START_TEST(another_model) {
  const char *p = save_model("m.safetensors");
  char err[256];
  ck_assert_int_ne(load_model(p, "cnn", err, sizeof err), 0);
  assert_msg(err, p, "a checkpoint of model 'mlp', not 'cnn'");
  /* no model name at all */
  const char *q = path_in("nometa");
  float d[1] = {0};
  write_st(q, "{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", d, 4);
  ck_assert_int_ne(load_model(q, "mlp", err, sizeof err), 0);
  assert_msg(err, q, "not an nncc checkpoint (no model name in __metadata__)");
}
END_TEST

START_TEST(missing_tensor) {
  const char *p = save_model("m.safetensors");
  float w2[12], b2[4], z[2] = {-7, -7};
  int32_t s2;
  rt_st_tensor t[5];
  model_tensors(t, w2, b2, &s2);
  const int64_t sz[] = {2};
  t[4] = (rt_st_tensor){"h.z", NNCC_F32, 1, sz, z};
  char err[256];
  ck_assert_int_ne(rt_st_load(p, "mlp", t, 5, err, sizeof err), 0);
  assert_msg(err, p, "no tensor 'h.z'");
  ck_assert(z[0] == -7);
}
END_TEST

START_TEST(extra_tensor) {
  const char *p = save_model("m.safetensors");
  float w2[12] = {0};
  rt_st_tensor t[1] = {{"h.w", NNCC_F32, 2, shape_w, w2}};
  char err[256];
  ck_assert_int_ne(rt_st_load(p, "mlp", t, 1, err, sizeof err), 0);
  assert_msg(err, p, "unexpected tensor 'empty'");  /* the first by name */
  ck_assert(w2[0] == 0);
}
END_TEST

START_TEST(wrong_shape) {
  const char *p = save_model("m.safetensors");
  float w2[16], b2[4] = {-5, -5, -5, -5};
  int32_t s2;
  rt_st_tensor t[4];
  model_tensors(t, w2, b2, &s2);
  const int64_t s44[] = {4, 4}, s12[] = {12};
  /* h.b comes first in the request and is right: still not written */
  rt_st_tensor r[4] = {t[1], t[0], t[2], t[3]};
  r[1].shape = s44;
  char err[256];
  ck_assert_int_ne(rt_st_load(p, "mlp", r, 4, err, sizeof err), 0);
  assert_msg(err, p, "tensor 'h.w' has shape [3,4], the model has [4,4]");
  ck_assert(b2[0] == -5);
  r[1].shape = s12;
  r[1].rank = 1;
  ck_assert_int_ne(rt_st_load(p, "mlp", r, 4, err, sizeof err), 0);
  assert_msg(err, p, "tensor 'h.w' has shape [3,4], the model has [12]");
}
END_TEST

START_TEST(wrong_dtype) {
  const char *p = save_model("m.safetensors");
  float w2[12], b2[4];
  int32_t s2;
  rt_st_tensor t[4];
  model_tensors(t, w2, b2, &s2);
  t[0].dtype = NNCC_I32;
  char err[256];
  ck_assert_int_ne(rt_st_load(p, "mlp", t, 4, err, sizeof err), 0);
  assert_msg(err, p, "tensor 'h.w' has dtype F32, the model has I32");
}
END_TEST

/* Malformed headers: each must be refused as a bad header. */
START_TEST(garbage_headers) {
  static const char *bad[] = {
      "not json at all",
      "",
      "{",
      "{\"a\":}",
      "{\"a\" 1}",
      "{\"a\":1,}",
      "[1,2]",
      "{\"a\":\"unterminated}",
      "{\"a\":\"bad \\q escape\"}",
      "{\"a\":\"\\ud800 lone\"}",
      "{\"a\":01}",
      "{\"a\":-}",
      "{\"a\":1.}",
      "{\"a\":tru}",
      "{} {}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"__metadata__\":{}}",
      "{\"__metadata__\":{\"model\":3}}",
      "{\"__metadata__\":{\"model\":\"mlp\",\"model\":\"x\"}}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"x\":3}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"x\":{\"dtype\":\"F32\",\"shape\":[-1],"
      "\"data_offsets\":[0,4]}}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
      "\"data_offsets\":[4,0]}}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"x\":{\"dtype\":\"F32\",\"shape\":[2],"
      "\"data_offsets\":[0,4]}}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
      "\"data_offsets\":[0,4]},\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[2,6]}}",
      "{\"__metadata__\":{\"model\":\"mlp\"},\"x\":{\"dtype\":\"F32\",\"shape\":[1],"
      "\"data_offsets\":[0,99999999999999999999]}}",
      "{\"a\":\"ctl\x01\"}",
  };
  char zeros[16] = {0};
  char err[256];
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    const char *p = path_in("bad");
    write_st(p, bad[k], zeros, sizeof zeros);
    ck_assert_msg(load_model(p, "mlp", err, sizeof err) != 0, "accepted: %s", bad[k]);
    char want[300];
    snprintf(want, sizeof want, "%s: bad header: ", p);
    ck_assert_msg(!strncmp(err, want, strlen(want)), "%s -> %s", bad[k], err);
  }
  /* deep nesting is refused, not recursed into */
  size_t depth = 100000;
  char *deep = malloc(depth + 1);
  memset(deep, '[', depth);
  deep[depth] = 0;
  const char *p = path_in("deep");
  write_st(p, deep, NULL, 0);
  free(deep);
  ck_assert_int_ne(load_model(p, "mlp", err, sizeof err), 0);
  ck_assert_ptr_nonnull(strstr(err, "nested too deeply"));
  /* one exact message */
  write_st(p, "{\"a\" 1}", NULL, 0);
  load_model(p, "mlp", err, sizeof err);
  assert_msg(err, p, "bad header: expected ':' at byte 5");
  write_st(p, "{\"a\":1,\"b\":2,\"a\":3}", NULL, 0);
  load_model(p, "mlp", err, sizeof err);
  assert_msg(err, p, "bad header: duplicate key 'a' at byte 19");
}
END_TEST

/* Random damage to a good file: never a crash, never a partial load. */
START_TEST(mutations_never_crash) {
  const char *p = save_model("m.safetensors");
  size_t len;
  unsigned char *f = slurp(p, &len);
  unsigned char *g = malloc(len);
  uint64_t x = 88172645463325252ULL;
  int accepted = 0;
  for (int iter = 0; iter < 600; iter++) {
    memcpy(g, f, len);
    int edits = 1 + iter % 4;
    for (int e = 0; e < edits; e++) {
      x ^= x << 13, x ^= x >> 7, x ^= x << 17;
      size_t at = (size_t)(x % (iter % 2 ? 8 + 200 : len));
      if (at >= len) at = len - 1;
      g[at] = (unsigned char)(x >> 40);
    }
    const char *q = path_in("mut");
    spit(q, g, len - (iter % 3 == 0 ? (x >> 20) % 16 : 0));
    char err[256];
    accepted += load_model(q, "mlp", err, sizeof err) == 0;
  }
  ck_assert_int_lt(accepted, 600);
  free(g);
  free(f);
}
END_TEST

int main(void) {
  Suite *s = suite_create("safetensors");
  TCase *good = tcase_create("format");
  tcase_add_checked_fixture(good, setup, teardown);
  tcase_add_test(good, round_trip);
  tcase_add_test(good, layout_is_safetensors);
  tcase_add_test(good, reads_other_writers);
  suite_add_tcase(s, good);
  TCase *atomic = tcase_create("atomic");
  tcase_add_checked_fixture(atomic, setup, teardown);
  tcase_add_test(atomic, save_into_missing_directory);
  tcase_add_test(atomic, failed_rename_leaves_nothing);
  tcase_add_test(atomic, failed_write_keeps_old_checkpoint);
  tcase_add_test(atomic, bad_save_requests);
  suite_add_tcase(s, atomic);
  TCase *bad = tcase_create("bad files");
  tcase_add_checked_fixture(bad, setup, teardown);
  tcase_add_test(bad, missing_file);
  tcase_add_test(bad, truncated_at_many_lengths);
  tcase_add_test(bad, header_size_beyond_file);
  tcase_add_test(bad, another_model);
  tcase_add_test(bad, missing_tensor);
  tcase_add_test(bad, extra_tensor);
  tcase_add_test(bad, wrong_shape);
  tcase_add_test(bad, wrong_dtype);
  tcase_add_test(bad, garbage_headers);
  tcase_add_test(bad, mutations_never_crash);
  suite_add_tcase(s, bad);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
