/* fuzz_seeds.c - writes the seed corpora of the harnesses, one directory
 * each under OUT (tests/fuzz/run.sh calls it before fuzzing):
 *
 *   fuzz_seeds OUT FILE...
 *
 *   frontend/     every FILE as given (the .nn files of the tree)
 *   ir/           for each FILE the front end accepts, the IR as
 *                 `--emit=ir` prints it and as `--emit=fused` does
 *   safetensors/  checkpoints of fuzz.h's model written by rt_st_save,
 *                 and a few that are wrong in one way each
 *   idx/ npy/ csv/ text/  small valid files of each format (raw and
 *                 gzip-compressed), behind the config prefix of their
 *                 harness (fuzz.h, fuzz_csv.c, fuzz_text.c)
 *
 * Generated rather than committed, so that the seeds follow the formats
 * as the code writes them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zlib.h>

#include "frontend/frontend.h"
#include "fuzz.h"
#include "passes/passes.h"
#include "runtime/nncc.h"
#include "runtime/safetensors.h"

#define MAX_IR_SEED (32 * 1024) /* larger dumps make slow seeds (run.sh: -max_len) */

static const char *out_dir;

static void make_dir(const char *sub) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", out_dir, sub);
  if (mkdir(path, 0777) && errno != EEXIST) fuzz_fail("cannot create %s", path);
}

/* Writes prefix then body to OUT/sub/name. */
static void put(const char *sub, const char *name, const void *prefix, size_t plen,
                const void *body, size_t len) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%s/%s", out_dir, sub, name);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(prefix, 1, plen, f) != plen || fwrite(body, 1, len, f) != len || fclose(f))
    fuzz_fail("cannot write %s", path);
}

/* body gzip-compressed (malloc'ed, *out_len bytes). */
static unsigned char *gzip(const void *body, size_t len, size_t *out_len) {
  z_stream z = {0};
  if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    fuzz_fail("deflateInit2 failed");
  size_t cap = deflateBound(&z, len);
  unsigned char *out = malloc(cap);
  z.next_in = (unsigned char *)body;
  z.avail_in = (unsigned)len;
  z.next_out = out;
  z.avail_out = (unsigned)cap;
  if (deflate(&z, Z_FINISH) != Z_STREAM_END) fuzz_fail("deflate failed");
  *out_len = z.total_out;
  deflateEnd(&z);
  return out;
}

/* put, and the same body gzip-compressed as NAME.gz */
static void put_both(const char *sub, const char *name, const void *prefix, size_t plen,
                     const void *body, size_t len) {
  put(sub, name, prefix, plen, body, len);
  size_t zlen;
  unsigned char *z = gzip(body, len, &zlen);
  char gz_name[256];
  snprintf(gz_name, sizeof gz_name, "%s.gz", name);
  put(sub, gz_name, prefix, plen, z, zlen);
  free(z);
}

static char *read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *s = malloc(cap);
  for (size_t k; (k = fread(s + n, 1, cap - n - 1, f)) > 0;) {
    n += k;
    if (cap - n < 2) s = realloc(s, cap *= 2);
  }
  fclose(f);
  s[n] = 0;
  *len = n;
  return s;
}

/* ------------------------------------------------------ frontend, IR */

/* Writes the module's IR as OUT/ir/NAME.SUFFIX.ir when it is small. */
static void put_ir(const char *name, const char *suffix, const Module *m) {
  char *ir = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&ir, &len);
  ir_print_module(f, m);
  fclose(f);
  char file[512];
  snprintf(file, sizeof file, "%s.%s.ir", name, suffix);
  if (len <= MAX_IR_SEED) put("ir", file, "", 0, ir, len);
  free(ir);
}

static void source_seeds(const char *path) {
  size_t len;
  char *src = read_file(path, &len);
  if (!src) return;
  /* the path with '/' as '_': tests/errors/x.nn -> tests_errors_x.nn */
  char name[512];
  snprintf(name, sizeof name, "%s", path);
  for (char *p = name; *p; p++)
    if (*p == '/') *p = '_';
  put("frontend", name, "", 0, src, len);
  /* --emit=ir: stop after reach; --emit=fused: the whole pipeline */
  for (int whole = 0; whole < 2; whole++) {
    Arena a = {0};
    Diag d;
    diag_init(&d, path, src, len, fuzz_devnull());
    ElabOptions eo = {.base_dir = ".", .max_nodes = 20000};
    Module *m = frontend_compile(&a, &d, &eo, NULL);
    PassOptions po = {.stop_after = whole ? NULL : "reach", .out = fuzz_devnull()};
    if (!d.n_errors && m && m->n_graphs && pass_run_pipeline(m, &d, &po))
      put_ir(name, whole ? "fused" : "reach", m);
    arena_free(&a);
  }
  free(src);
}

/* ------------------------------------------------------- safetensors */

static void safetensors_seeds(void) {
  float w[6] = {1, -2, 3.5f, 0, 1e-3f, -7}, b[3] = {0.5f, 0.25f, -1};
  int32_t step = 42;
  rt_st_tensor t[FUZZ_ST_TENSORS];
  fuzz_st_tensors(t, w, b, &step);
  static const int64_t wrong_shape[] = {3, 2};
  struct { const char *name, *model; int n; bool transpose; } cases[] = {
      {"fuzz.safetensors", "fuzz", FUZZ_ST_TENSORS, false},  /* loads */
      {"other_model.safetensors", "other", FUZZ_ST_TENSORS, false},
      {"missing_tensor.safetensors", "fuzz", FUZZ_ST_TENSORS - 1, false},
      {"wrong_shape.safetensors", "fuzz", FUZZ_ST_TENSORS, true},
  };
  char dir[4096], err[512];
  snprintf(dir, sizeof dir, "%s/safetensors", out_dir);
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, cases[k].name);
    t[0].shape = cases[k].transpose ? wrong_shape : t[0].shape;
    if (rt_st_save(path, cases[k].model, t, cases[k].n, err, sizeof err)) fuzz_fail("%s", err);
    fuzz_st_tensors(t, w, b, &step);
  }
  /* another tool's file: no metadata, an extra F16 tensor, padding */
  static const char other[] =
      "{\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,12]},"
      "\"h\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[12,16]}}    ";
  unsigned char hdr[8] = {(unsigned char)(sizeof other - 1)};
  unsigned char body[sizeof other - 1 + 16] = {0};
  memcpy(body, other, sizeof other - 1);
  put("safetensors", "no_metadata.safetensors", hdr, 8, body, sizeof body);
}

/* -------------------------------------------------------- data files */

static void be32(unsigned char *p, uint32_t v) {
  for (int k = 0; k < 4; k++) p[k] = (unsigned char)(v >> (24 - 8 * k));
}

static void idx_seeds(void) {
  /* 2 images of 2x3 u8 pixels, as f32 of width 6; labels u8[4] as i32 */
  unsigned char images[4 + 12 + 12] = {0, 0, 0x08, 3};
  be32(images + 4, 2), be32(images + 8, 2), be32(images + 12, 3);
  for (int k = 0; k < 12; k++) images[16 + k] = (unsigned char)(k * 21);
  unsigned char cfg_images[3] = {0, 6, 0};
  put_both("idx", "images.idx", cfg_images, 3, images, sizeof images);
  unsigned char labels[4 + 4 + 4] = {0, 0, 0x08, 1, 0, 0, 0, 4, 3, 1, 4, 1};
  unsigned char cfg_labels[3] = {FUZZ_COL_INT, 1, 0};
  put_both("idx", "labels.idx", cfg_labels, 3, labels, sizeof labels);
  /* f32 (0x0D) big-endian [3, 2] as x and y columns, and i32 (0x0C) [2] */
  unsigned char f32[4 + 8 + 24] = {0, 0, 0x0D, 2};
  be32(f32 + 4, 3), be32(f32 + 8, 2);
  float vals[6] = {0, 1, -1.5f, 2, 3, 1e30f};
  for (int k = 0; k < 6; k++) {
    uint32_t u;
    memcpy(&u, &vals[k], 4);
    be32(f32 + 12 + 4 * k, u);
  }
  unsigned char cfg_f32[3] = {FUZZ_TWO_COLS, 2, 0};
  put("idx", "f32.idx", cfg_f32, 3, f32, sizeof f32);
  unsigned char i32[4 + 4 + 8] = {0, 0, 0x0C, 1};
  be32(i32 + 4, 2), be32(i32 + 8, 7), be32(i32 + 12, 0xFFFFFFFF);
  unsigned char cfg_i32[3] = {FUZZ_COL_INT | FUZZ_TWO_COLS | FUZZ_COL2_INT, 1, 0};
  put("idx", "i32.idx", cfg_i32, 3, i32, sizeof i32);
}

/* An NPY file: magic, version, header padded to 64 bytes, data. */
static void npy_seed(const char *name, int version, const char *dict, const void *data,
                     size_t len, unsigned flags, unsigned width, bool both) {
  unsigned char file[512];
  size_t pre = version == 1 ? 10 : 12;
  size_t hlen = strlen(dict) + 1;
  while ((pre + hlen) % 64) hlen++;
  memcpy(file, "\x93NUMPY", 6);
  file[6] = (unsigned char)version, file[7] = 0;
  for (size_t k = 0; k < pre - 8; k++) file[8 + k] = (unsigned char)(hlen >> (8 * k));
  memset(file + pre, ' ', hlen);
  memcpy(file + pre, dict, strlen(dict));
  file[pre + hlen - 1] = '\n';
  memcpy(file + pre + hlen, data, len);
  unsigned char cfg[3] = {(unsigned char)flags, (unsigned char)width, (unsigned char)(width >> 8)};
  if (both) put_both("npy", name, cfg, 3, file, pre + hlen + len);
  else put("npy", name, cfg, 3, file, pre + hlen + len);
}

static void npy_seeds(void) {
  float f4[6] = {0, 1, 2, -3, 4.5f, 5};
  npy_seed("f4.npy", 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", f4,
           sizeof f4, 0, 3, true);
  int64_t i8[4] = {3, 1, 0, 2};
  npy_seed("i8.npy", 1, "{'descr': '<i8', 'fortran_order': False, 'shape': (4,), }", i8,
           sizeof i8, FUZZ_COL_INT, 1, true);
  double f8[3] = {0.5, -0.25, 1e300};
  npy_seed("f8_v2.npy", 2, "{'descr': '<f8', 'fortran_order': True, 'shape': (1, 3), }", f8,
           sizeof f8, 0, 3, false);
  unsigned char u1[8] = {0, 255, 7, 9, 1, 2, 3, 4};
  npy_seed("u1_two_columns.npy", 3,
           "{\"descr\": \"|u1\", \"fortran_order\": False, \"shape\": (2, 2, 2)}", u1, sizeof u1,
           FUZZ_TWO_COLS | FUZZ_COL2_INT, 4, false);
  int32_t i4[2] = {-1, 65536};
  npy_seed("i4.npy", 1, "{'descr': '<i4', 'fortran_order': False, 'shape': (2,), }", i4,
           sizeof i4, FUZZ_COL_INT, 1, false);
}

static void csv_seeds(void) {
  static const char with_header[] =
      "x1,x2,label,name\n"
      "0.5,-1.25,1,a\n"
      "1e-3, 2 ,0,b\r\n"
      "\n"
      "3,4,2,c\n";
  unsigned char cfg2[7] = {1, 0, 2, 0, 2, 1, 1};  /* x = [0,2) f32, y = [2,3) i32 */
  put_both("csv", "header.csv", cfg2, 7, with_header, sizeof with_header - 1);
  static const char plain[] = "\xEF\xBB\xBF" "1,2,3\n4,5,6\n7,8,9";
  unsigned char cfg1[4] = {0, 1, 2, 0};  /* one f32 column of fields [1, 3) */
  put("csv", "bom.csv", cfg1, 4, plain, sizeof plain - 1);
  unsigned char cfg3[10] = {2, 0, 1, 1, 1, 1, 0, 2, 1, 1};
  put("csv", "three_columns.csv", cfg3, 10, plain + 3, sizeof plain - 4);
}

static void text_seeds(void) {
  static const char text[] = "First Citizen:\nBefore we proceed any further, hear me speak.\n";
  unsigned char t4[2] = {4, 0}, t1[2] = {1, 0}, t16[2] = {16, 0};
  put_both("text", "t4.txt", t4, 2, text, sizeof text - 1);
  put("text", "t1.txt", t1, 2, "ab", 2);
  put("text", "t16.txt", t16, 2, text, sizeof text - 1);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: fuzz_seeds OUT [FILE...]\n");
    return 2;
  }
  out_dir = argv[1];
  if (mkdir(out_dir, 0777) && errno != EEXIST) fuzz_fail("cannot create %s", out_dir);
  const char *subs[] = {"frontend", "ir", "safetensors", "idx", "npy", "csv", "text"};
  for (size_t k = 0; k < sizeof subs / sizeof subs[0]; k++) make_dir(subs[k]);
  for (int i = 2; i < argc; i++) source_seeds(argv[i]);
  safetensors_seeds();
  idx_seeds();
  npy_seeds();
  csv_seeds();
  text_seeds();
  return 0;
}
