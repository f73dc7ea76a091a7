/* data.c - the data sources of train blocks (SPEC §2.7): IDX (MNIST),
 * CSV, NPY, byte-level text and the synthetic sets, each turned into an
 * rt_dataset of columns the trainer feeds to the model's inputs.
 *
 * Every file goes through zlib's gzread, which reads uncompressed files
 * transparently, so `x.idx.gz`, `x.npy.gz` and `data.csv.gz` work as well
 * as the raw files; only regular files are opened (a FIFO would block).
 * Nothing is trusted: every read is checked for truncation, every count
 * for overflow against a fixed element cap, every value against its
 * column (finite and within f32, an int32, a label below its bound), and
 * every failure returns "FILE: reason" with the line or record in the
 * caller's buffer. Nothing here prints or exits. */
#include "runtime/data.h"
#include "runtime/util.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "runtime/runtime.h"

/* No column holds more values than this: a header that promises more is
 * refused before anything is allocated (SPEC §5: no allocation without
 * bound). */
#define MAX_ELEMS ((int64_t)1 << 31)
#define CHUNK (1 << 20) /* bytes per read; a multiple of every element size */

/* at most 40 bytes of a file's text in a message */
static const char *show(const char *s, size_t len, char out[48]) { return rt_show(s, len, 40, out); }

void rt_dataset_free(rt_dataset *ds) {
  if (!ds) return;
  for (int c = 0; c < ds->n_columns && ds->columns; c++) {
    free(ds->columns[c].f);
    free(ds->columns[c].i);
  }
  free(ds->columns);
  *ds = (rt_dataset){0};
}

/* Allocates n * width values for column c. */
static int column_alloc(rt_column *c, bool is_int, int64_t width, int64_t n, const char *what,
                        char *err, size_t err_size) {
  c->is_int = is_int;
  c->width = width;
  size_t bytes = (size_t)(n * width) * 4;
  void *p = malloc(bytes ? bytes : 1);
  if (!p) return rt_fail(err, err_size, "%s: out of memory (%zu bytes)", what, bytes);
  if (is_int) c->i = p;
  else c->f = p;
  return 0;
}

/* Resizes column c (is_int set) to hold `values` values. */
static int column_reserve(rt_column *c, int64_t values, const char *what, char *err,
                          size_t err_size) {
  size_t bytes = (size_t)values * 4;
  void *p = realloc(c->is_int ? (void *)c->i : (void *)c->f, bytes ? bytes : 1);
  if (!p) return rt_fail(err, err_size, "%s: out of memory (%zu bytes)", what, bytes);
  if (c->is_int) c->i = p;
  else c->f = p;
  return 0;
}

static int dataset_begin(rt_dataset *out, int n_cols, const char *what, char *err,
                         size_t err_size) {
  *out = (rt_dataset){0};
  if (n_cols <= 0) return rt_fail(err, err_size, "%s: no columns requested", what);
  out->columns = calloc((size_t)n_cols, sizeof *out->columns);
  if (!out->columns) return rt_fail(err, err_size, "%s: out of memory", what);
  out->n_columns = n_cols;
  return 0;
}

static int check_width(const rt_column_spec *s, const char *what, char *err, size_t err_size) {
  if (s->width < 1 || s->width > MAX_ELEMS)
    return rt_fail(err, err_size, "%s: bad column width %lld", what, (long long)s->width);
  return 0;
}

/* ------------------------------------------------------ reading files */

static const char *file_kind(mode_t m) {
  return S_ISFIFO(m)   ? " (a FIFO)"
         : S_ISDIR(m)  ? " (a directory)"
         : S_ISCHR(m)  ? " (a character device)"
         : S_ISBLK(m)  ? " (a block device)"
         : S_ISSOCK(m) ? " (a socket)"
                       : "";
}

/* Opens path for gzread; open(2) first so that a missing file reports
 * errno's reason (gzopen's errno is not documented). Only regular files:
 * the open does not block (O_NONBLOCK, so a FIFO without a writer does
 * not hang us) and fstat refuses FIFOs, directories and devices before
 * anything is read; then O_NONBLOCK is cleared. *size (when asked) is
 * the file's size in bytes. */
static gzFile open_gz(const char *path, int64_t *size, char *err, size_t err_size) {
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    rt_fail(err, err_size, "%s: cannot open: %s", path, strerror(errno));
    return NULL;
  }
  struct stat st;
  int flags = 0;
  bool ok = fstat(fd, &st) == 0;
  if (ok && !S_ISREG(st.st_mode)) {
    rt_fail(err, err_size, "%s: not a regular file%s", path, file_kind(st.st_mode));
    close(fd);
    return NULL;
  }
  if (!ok || (flags = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) < 0) {
    rt_fail(err, err_size, "%s: cannot open: %s", path, strerror(errno));
    close(fd);
    return NULL;
  }
  if (size) *size = (int64_t)st.st_size;
  gzFile gz = gzdopen(fd, "rb");
  if (!gz) {
    close(fd);
    rt_fail(err, err_size, "%s: cannot open: out of memory", path);
    return NULL;
  }
  gzbuffer(gz, 128 * 1024);
  return gz;
}

/* Reads up to len bytes; *got is what arrived. A gzip stream that ends
 * early is not an error here: the caller reports the short count as
 * truncation. Returns nonzero on a real read error or corrupt data. */
static int read_some(gzFile gz, const char *path, void *buf, size_t len, size_t *got,
                     char *err, size_t err_size) {
  *got = 0;
  while (*got < len) {
    size_t want = len - *got;
    if (want > CHUNK) want = CHUNK;
    int r = gzread(gz, (char *)buf + *got, (unsigned)want);
    if (r > 0) {
      *got += (size_t)r;
      continue;
    }
    if (r == 0) return 0;
    int code;
    const char *msg = gzerror(gz, &code);
    if (code == Z_BUF_ERROR) return 0;  /* "unexpected end of file" */
    if (code == Z_ERRNO) return rt_fail(err, err_size, "%s: cannot read: %s", path, strerror(errno));
    /* zlib names the stream "<fd:3>: "; the path is named already */
    const char *colon = msg && msg[0] == '<' ? strstr(msg, ": ") : NULL;
    if (colon) msg = colon + 2;
    return rt_fail(err, err_size, "%s: corrupt gzip data (%s)", path, msg ? msg : "?");
  }
  return 0;
}

/* Reads exactly len bytes of `what` (header, data). */
static int read_exact(gzFile gz, const char *path, void *buf, size_t len, const char *what,
                      char *err, size_t err_size) {
  size_t got;
  if (read_some(gz, path, buf, len, &got, err, err_size)) return 1;
  if (got < len)
    return rt_fail(err, err_size, "%s: truncated: expected %zu bytes of %s, got %zu", path, len,
                what, got);
  return 0;
}

/* The whole file, NUL-terminated (the terminator not counted), at most
 * `cap` bytes. */
static int read_all(const char *path, int64_t cap, char **buf, int64_t *len, char *err,
                    size_t err_size) {
  *buf = NULL;
  *len = 0;
  gzFile gz = open_gz(path, NULL, err, err_size);
  if (!gz) return 1;
  size_t n = 0, size = 1 << 16;
  char *b = malloc(size);
  int rc = b ? 0 : rt_fail(err, err_size, "%s: out of memory", path);
  while (!rc) {
    if (size - n < 2) {  /* full: grow, to at most cap + 2 so that cap + 1 bytes show */
      size_t ns = (int64_t)size * 2 > cap + 2 ? (size_t)cap + 2 : size * 2;
      char *nb = realloc(b, ns);
      if (!nb) {
        rc = rt_fail(err, err_size, "%s: out of memory", path);
        break;
      }
      b = nb;
      size = ns;
    }
    size_t want = size - n - 1, got;
    rc = read_some(gz, path, b + n, want, &got, err, err_size);
    n += got;
    if (!rc && (int64_t)n > cap)
      rc = rt_fail(err, err_size, "%s: too large (the limit is %lld bytes)", path, (long long)cap);
    if (got < want) break;  /* end of file */
  }
  gzclose(gz);
  if (rc) {
    free(b);
    return 1;
  }
  b[n] = 0;
  *buf = b;
  *len = (int64_t)n;
  return 0;
}

/* ------------------------------------------- binary elements (IDX, NPY) */

typedef enum ElemType { EL_U8, EL_I8, EL_I16, EL_I32, EL_I64, EL_F32, EL_F64 } ElemType;

static const int elem_size[] = {1, 1, 2, 4, 8, 4, 8};

static uint64_t load_bits(const unsigned char *p, int size, bool big_endian) {
  uint64_t v = 0;
  for (int b = 0; b < size; b++) v |= (uint64_t)p[big_endian ? size - 1 - b : b] << (8 * b);
  return v;
}

/* Where a binary column's values come from, for messages. */
typedef struct Source {
  const char *path;
  const char *unit;  /* what a sample is called: "record" (IDX), "row" (NPY) */
  int64_t n;         /* samples in the file */
  int64_t bound;     /* > 0: int values must lie in [0, bound) */
  double scale;
} Source;

/* "FILE: record 8 of 60000 (0-based)[, value 3 of 784]: what" for value
 * index `at` of a column `width` values wide. */
static int elem_fail(const Source *src, int64_t width, int64_t at, char *err, size_t err_size,
                     const char *fmt, ...) __attribute__((format(printf, 6, 7)));
static int elem_fail(const Source *src, int64_t width, int64_t at, char *err, size_t err_size,
                     const char *fmt, ...) {
  char what[160], value[64] = "";
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  if (width > 1)
    snprintf(value, sizeof value, ", value %lld of %lld", (long long)(at % width),
             (long long)width);
  return rt_fail(err, err_size, "%s: %s %lld of %lld (0-based)%s: %s", src->path, src->unit,
                 (long long)(at / width), (long long)src->n, value, what);
}

/* Stores `count` elements of type t from raw into column c, starting at
 * value index `first`. Integer columns take integers (and integral
 * floats) in int32 range, and in [0, bound) when a bound is given; float
 * columns take finite values that are still finite f32 values after
 * multiplying by the scale. */
static int store_elems(const unsigned char *raw, int64_t count, int64_t first, ElemType t,
                       bool big_endian, rt_column *c, const Source *src, char *err,
                       size_t err_size) {
  int es = elem_size[t];
  double scale = src->scale;
  for (int64_t k = 0; k < count; k++) {
    uint64_t bits = load_bits(raw + k * es, es, big_endian);
    bool is_float = t == EL_F32 || t == EL_F64;
    int64_t iv = 0;
    double fv = 0;
    switch (t) {
    case EL_U8: iv = (uint8_t)bits; break;
    case EL_I8: iv = (int8_t)(uint8_t)bits; break;
    case EL_I16: iv = (int16_t)(uint16_t)bits; break;
    case EL_I32: iv = (int32_t)(uint32_t)bits; break;
    case EL_I64: iv = (int64_t)bits; break;
    case EL_F32: {
      uint32_t u = (uint32_t)bits;
      float f;
      memcpy(&f, &u, 4);
      fv = f;
      break;
    }
    case EL_F64: memcpy(&fv, &bits, 8); break;
    }
    int64_t at = first + k;
    if (c->is_int) {
      if (is_float) {
        if (!(fv == floor(fv) && fv >= INT32_MIN && fv <= INT32_MAX))
          return elem_fail(src, c->width, at, err, err_size, "%g is not an int32 value", fv);
        iv = (int64_t)fv;
      } else if (iv < INT32_MIN || iv > INT32_MAX) {
        return elem_fail(src, c->width, at, err, err_size, "%lld is not an int32 value",
                         (long long)iv);
      }
      if (src->bound > 0 && (iv < 0 || iv >= src->bound))
        return elem_fail(src, c->width, at, err, err_size,
                         "label %lld is out of range [0, %lld)", (long long)iv,
                         (long long)src->bound);
      c->i[at] = (int32_t)iv;
    } else {
      double v = is_float ? fv : (double)iv;
      if (!isfinite(v))
        return elem_fail(src, c->width, at, err, err_size, "%g is not a finite number", v);
      double scaled = v * scale;
      if (!(fabs(scaled) <= FLT_MAX)) {  /* compared in double: the cast would be undefined */
        if (scale == 1.0 || !(fabs(v) <= FLT_MAX))
          return elem_fail(src, c->width, at, err, err_size, "%g overflows f32", v);
        return elem_fail(src, c->width, at, err, err_size,
                         "%g times the scale %g overflows f32", v, scale);
      }
      c->f[at] = (float)scaled;
    }
  }
  return 0;
}

/* Reads n * width elements of type t from gz into a fresh column. A raw
 * (not gzipped) file of file_size bytes too short for them is refused
 * before the column is allocated: a header is not trusted with memory. */
static int read_column(gzFile gz, const Source *src, ElemType t, bool big_endian,
                       int64_t file_size, const rt_column_spec *s, rt_column *c, char *err,
                       size_t err_size) {
  const char *path = src->path;
  int64_t n = src->n;
  int es = elem_size[t];
  int64_t total = n * s->width, done = 0;
  z_off_t pos = gztell(gz);
  bool direct = gzdirect(gz);
  if (direct && pos >= 0 && file_size - (int64_t)pos < total * es)
    return rt_fail(err, err_size, "%s: truncated: expected %lld bytes of data, got %lld", path,
                   (long long)(total * es), (long long)(file_size - (int64_t)pos));
  /* a gzip stream's length is not known before it is read: the column
   * grows with the data that arrives rather than as the header says */
  int64_t cap = direct || total < (1 << 18) ? total : (1 << 18);
  c->is_int = s->is_int;
  c->width = s->width;
  if (column_reserve(c, cap, path, err, err_size)) return 1;
  unsigned char *buf = malloc(CHUNK);
  if (!buf) return rt_fail(err, err_size, "%s: out of memory", path);
  int rc = 0;
  while (!rc && done < total) {
    int64_t count = total - done;
    if (count > CHUNK / es) count = CHUNK / es;
    size_t got;
    rc = read_some(gz, path, buf, (size_t)(count * es), &got, err, err_size);
    if (!rc && got < (size_t)(count * es))
      rc = rt_fail(err, err_size, "%s: truncated: expected %lld bytes of data, got %lld", path,
                (long long)(total * es), (long long)(done * es + (int64_t)got));
    if (!rc && done + count > cap) {
      cap = cap * 2 > total ? total : cap * 2;
      if (cap < done + count) cap = done + count;
      rc = column_reserve(c, cap, path, err, err_size);
    }
    if (!rc)
      rc = store_elems(buf, count, done, t, big_endian, c, src, err, err_size);
    done += count;
  }
  free(buf);
  return rc;
}

/* n = dims[0] samples of dims[1..] values each; refuses more than
 * MAX_ELEMS values in all and a per-sample count other than the width. */
static int check_dims(const char *path, const int64_t *dims, int rank, const rt_column_spec *s,
                      int64_t *n, char *err, size_t err_size) {
  int64_t per = 1, total = dims[0];
  for (int d = 1; d < rank; d++) {
    if (dims[d] != 0 && per > MAX_ELEMS / dims[d]) per = MAX_ELEMS + 1;
    else per *= dims[d];
  }
  if (per > MAX_ELEMS || (per && total > MAX_ELEMS / per))
    return rt_fail(err, err_size, "%s: too large: more than 2^31 values", path);
  if (per != s->width)
    return rt_fail(err, err_size, "%s: a sample has %lld values but the input needs %lld", path,
                (long long)per, (long long)s->width);
  if (total == 0) return rt_fail(err, err_size, "%s: no samples", path);
  *n = total;
  return 0;
}

/* Every column's file must hold as many samples as the first. */
static int check_n(const rt_column_spec *cols, int c, int64_t n, int64_t n0, char *err,
                   size_t err_size) {
  if (c > 0 && n != n0)
    return rt_fail(err, err_size, "%s: %lld samples but %s has %lld", cols[0].path, (long long)n0,
                cols[c].path, (long long)n);
  return 0;
}

/* ------------------------------------------------------------------ IDX */

#define IDX_MAX_RANK 8 /* MNIST has 1 and 3; more is a corrupt header */

/* The file must end after n records: bytes after them mean the header's
 * dims do not describe the file. Counts at most 64 MiB of them (of a gzip
 * stream, which could inflate without bound). */
static int check_end(gzFile gz, const char *path, int64_t n, const char *unit, char *err,
                     size_t err_size) {
  enum { MAX_COUNT = 64 << 20 };
  char buf[4096];
  size_t extra = 0, got;
  do {
    if (read_some(gz, path, buf, sizeof buf, &got, err, err_size)) return 1;
    extra += got;
  } while (got == sizeof buf && extra < MAX_COUNT);
  if (!extra) return 0;
  return rt_fail(err, err_size, "%s: %s%zu trailing byte%s after %lld %s", path,
                 got == sizeof buf ? "at least " : "", extra, extra == 1 ? "" : "s",
                 (long long)n, unit);
}

/* magic: 0x00 0x00 TYPE NDIMS, then NDIMS big-endian u32 dims, then the
 * values, big-endian, row-major. */
static int load_idx_column(const rt_column_spec *cols, int c, double scale, rt_dataset *out,
                           char *err, size_t err_size) {
  const rt_column_spec *s = &cols[c];
  int64_t file_size = 0;
  gzFile gz = open_gz(s->path, &file_size, err, err_size);
  if (!gz) return 1;
  unsigned char magic[4], dimb[4 * IDX_MAX_RANK];
  int64_t dims[IDX_MAX_RANK];
  int rc = read_exact(gz, s->path, magic, 4, "header", err, err_size);
  ElemType t = EL_U8;
  int rank = 0;
  if (!rc && (magic[0] || magic[1]))
    rc = rt_fail(err, err_size, "%s: not an IDX file (bad magic 0x%02x%02x%02x%02x)", s->path,
                 magic[0], magic[1], magic[2], magic[3]);
  if (!rc) {
    rank = magic[3];
    switch (magic[2]) {
    case 0x08: t = EL_U8; break;
    case 0x09: t = EL_I8; break;
    case 0x0B: t = EL_I16; break;
    case 0x0C: t = EL_I32; break;
    case 0x0D: t = EL_F32; break;
    case 0x0E: t = EL_F64; break;
    default:
      rc = rt_fail(err, err_size,
                   "%s: unsupported IDX type byte 0x%02x (0x08 u8, 0x09 i8, 0x0b i16, 0x0c i32, "
                   "0x0d f32, 0x0e f64)",
                   s->path, magic[2]);
      break;
    }
  }
  if (!rc && (rank < 1 || rank > IDX_MAX_RANK))
    rc = rt_fail(err, err_size,
                 "%s: bad IDX rank %d in magic 0x%02x%02x%02x%02x (ranks 1 to %d are supported)",
                 s->path, rank, magic[0], magic[1], magic[2], magic[3], IDX_MAX_RANK);
  if (!rc) rc = read_exact(gz, s->path, dimb, (size_t)rank * 4, "header", err, err_size);
  int64_t n = 0;
  if (!rc) {
    for (int d = 0; d < rank; d++) dims[d] = (int64_t)load_bits(dimb + 4 * d, 4, true);
    rc = check_dims(s->path, dims, rank, s, &n, err, err_size);
  }
  if (!rc) rc = check_n(cols, c, n, out->n, err, err_size);
  if (!rc) {
    out->n = n;
    Source src = {s->path, "record", n, s->is_int ? s->label_bound : 0, scale};
    rc = read_column(gz, &src, t, true, file_size, s, &out->columns[c], err, err_size);
  }
  if (!rc) rc = check_end(gz, s->path, n, "records", err, err_size);
  gzclose(gz);
  return rc;
}

int rt_load_idx(const rt_column_spec *cols, int n_cols, double scale, rt_dataset *out,
                char *err, size_t err_size) {
  if (dataset_begin(out, n_cols, "idx", err, err_size)) return 1;
  for (int c = 0; c < n_cols; c++) {
    if (check_width(&cols[c], cols[c].path ? cols[c].path : "idx", err, err_size) ||
        (!cols[c].path && rt_fail(err, err_size, "idx: column %d has no file", c)) ||
        load_idx_column(cols, c, scale, out, err, err_size)) {
      rt_dataset_free(out);
      return 1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------ NPY */

/* The header is a Python dict literal:
 *   {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 784), }
 * npy_dict = '{' [item {',' item} [',']] '}'
 * item     = string ':' (string | 'True' | 'False' | '(' [int {',' int} [',']] ')') */
typedef struct NpyHeader {
  char descr[16];
  int fortran;       /* -1 until seen */
  int rank;          /* -1 until seen */
  int64_t dims[32];
} NpyHeader;

typedef struct Cursor {
  const char *p, *end;
} Cursor;

static void skip_ws(Cursor *c) {
  while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
    c->p++;
}

static bool eat(Cursor *c, char ch) {
  skip_ws(c);
  if (c->p < c->end && *c->p == ch) {
    c->p++;
    return true;
  }
  return false;
}

/* A quoted string without escapes (npy's keys and dtypes have none). */
static bool py_string(Cursor *c, const char **s, size_t *len) {
  skip_ws(c);
  if (c->p >= c->end || (*c->p != '\'' && *c->p != '"')) return false;
  char q = *c->p++;
  *s = c->p;
  while (c->p < c->end && *c->p != q) {
    if (*c->p == '\\') return false;
    c->p++;
  }
  if (c->p >= c->end) return false;
  *len = (size_t)(c->p - *s);
  c->p++;
  return true;
}

static bool py_word(Cursor *c, const char *w) {
  skip_ws(c);
  size_t n = strlen(w);
  if ((size_t)(c->end - c->p) < n || memcmp(c->p, w, n)) return false;
  c->p += n;
  return true;
}

static bool py_shape(Cursor *c, NpyHeader *h, const char **why) {
  if (!eat(c, '(')) return false;
  h->rank = 0;
  while (!eat(c, ')')) {
    skip_ws(c);
    if (c->p >= c->end || *c->p < '0' || *c->p > '9') return false;
    int64_t v = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
      if (v > MAX_ELEMS) {
        *why = "a dimension is larger than 2^31";
        return false;
      }
      v = v * 10 + (*c->p++ - '0');
    }
    if (h->rank == 32) {
      *why = "more than 32 dimensions";
      return false;
    }
    h->dims[h->rank++] = v;
    if (!eat(c, ',')) {
      if (!eat(c, ')')) return false;
      break;
    }
  }
  return true;
}

static int parse_npy_header(const char *path, const char *text, size_t len, NpyHeader *h,
                            char *err, size_t err_size) {
  Cursor c = {text, text + len};
  const char *why = NULL;
  h->descr[0] = 0;
  h->fortran = h->rank = -1;
  bool ok = eat(&c, '{');
  while (ok && !eat(&c, '}')) {
    const char *key, *val;
    size_t klen, vlen;
    ok = py_string(&c, &key, &klen) && eat(&c, ':');
    if (!ok) break;
    if (klen == 5 && !memcmp(key, "descr", 5)) {
      ok = py_string(&c, &val, &vlen);
      if (ok && vlen >= sizeof h->descr) vlen = sizeof h->descr - 1;
      if (ok) memcpy(h->descr, val, vlen), h->descr[vlen] = 0;
      if (!ok && (skip_ws(&c), c.p < c.end && *c.p == '['))
        return rt_fail(err, err_size, "%s: structured arrays are not supported", path);
    } else if (klen == 13 && !memcmp(key, "fortran_order", 13)) {
      if (py_word(&c, "True")) h->fortran = 1;
      else if (py_word(&c, "False")) h->fortran = 0;
      else ok = false;
    } else if (klen == 5 && !memcmp(key, "shape", 5)) {
      ok = py_shape(&c, h, &why);
    } else {
      ok = false;
      why = "unknown key";
    }
    if (ok && !eat(&c, ',')) {
      ok = eat(&c, '}');
      break;
    }
  }
  if (ok && (!h->descr[0] || h->fortran < 0 || h->rank < 0)) {
    ok = false;
    why = "'descr', 'fortran_order' or 'shape' missing";
  }
  if (!ok) {
    char shown[48];
    return rt_fail(err, err_size, "%s: bad NPY header (%s): %s", path, why ? why : "syntax",
                show(text, len, shown));
  }
  return 0;
}

static int npy_type(const char *path, const char *descr, ElemType *t, char *err,
                    size_t err_size) {
  static const struct { const char *d; ElemType t; } known[] = {
      {"<f4", EL_F32}, {"<f8", EL_F64}, {"<i4", EL_I32}, {"<i8", EL_I64},
      {"|u1", EL_U8},  {"<u1", EL_U8},  {"|i1", EL_I8},  {"<i2", EL_I16},
  };
  for (size_t k = 0; k < sizeof known / sizeof known[0]; k++)
    if (!strcmp(descr, known[k].d)) {
      *t = known[k].t;
      return 0;
    }
  char shown[48];
  if (descr[0] == '>')
    return rt_fail(err, err_size, "%s: big-endian data ('%s') is not supported", path,
                show(descr, strlen(descr), shown));
  return rt_fail(err, err_size, "%s: unsupported dtype '%s' (use f4, f8, i4, i8 or u1)", path,
              show(descr, strlen(descr), shown));
}

/* "\x93NUMPY" major minor, a little-endian header length (u16 in v1, u32
 * in v2 and v3), the header dict, then the data. */
static int load_npy_column(const rt_column_spec *cols, int c, rt_dataset *out, char *err,
                           size_t err_size) {
  const rt_column_spec *s = &cols[c];
  int64_t file_size = 0;
  gzFile gz = open_gz(s->path, &file_size, err, err_size);
  if (!gz) return 1;
  unsigned char pre[12];
  char *text = NULL;
  int rc = read_exact(gz, s->path, pre, 10, "header", err, err_size);
  if (!rc && memcmp(pre, "\x93NUMPY", 6))
    rc = rt_fail(err, err_size, "%s: not an NPY file (bad magic)", s->path);
  if (!rc && (pre[6] < 1 || pre[6] > 3))
    rc = rt_fail(err, err_size, "%s: unsupported NPY version %d.%d", s->path, pre[6], pre[7]);
  size_t hlen = 0;
  if (!rc) {
    if (pre[6] == 1) {
      hlen = (size_t)load_bits(pre + 8, 2, false);
    } else {
      rc = read_exact(gz, s->path, pre + 10, 2, "header", err, err_size);
      hlen = (size_t)load_bits(pre + 8, 4, false);
      if (!rc && hlen > (1 << 20))
        rc = rt_fail(err, err_size, "%s: bad NPY header (%zu bytes long)", s->path, hlen);
    }
  }
  if (!rc && !(text = malloc(hlen + 1))) rc = rt_fail(err, err_size, "%s: out of memory", s->path);
  if (!rc) rc = read_exact(gz, s->path, text, hlen, "header", err, err_size);
  NpyHeader h;
  ElemType t = EL_U8;
  int64_t n = 0;
  if (!rc) rc = parse_npy_header(s->path, text, hlen, &h, err, err_size);
  if (!rc) rc = npy_type(s->path, h.descr, &t, err, err_size);
  if (!rc && h.fortran) {
    int big = 0;
    for (int d = 0; d < h.rank; d++) big += h.dims[d] > 1;
    if (big > 1)  /* with one dimension above 1 the layouts agree */
      rc = rt_fail(err, err_size, "%s: Fortran-order arrays are not supported", s->path);
  }
  if (!rc && h.rank == 0)
    rc = rt_fail(err, err_size, "%s: a 0-d array has no samples", s->path);
  if (!rc) rc = check_dims(s->path, h.dims, h.rank, s, &n, err, err_size);
  if (!rc) rc = check_n(cols, c, n, out->n, err, err_size);
  if (!rc) {
    out->n = n;
    Source src = {s->path, "row", n, s->is_int ? s->label_bound : 0, 1.0};
    rc = read_column(gz, &src, t, false, file_size, s, &out->columns[c], err, err_size);
  }
  free(text);
  gzclose(gz);
  return rc;
}

int rt_load_npy(const rt_column_spec *cols, int n_cols, rt_dataset *out, char *err,
                size_t err_size) {
  if (dataset_begin(out, n_cols, "npy", err, err_size)) return 1;
  for (int c = 0; c < n_cols; c++) {
    if (check_width(&cols[c], cols[c].path ? cols[c].path : "npy", err, err_size) ||
        (!cols[c].path && rt_fail(err, err_size, "npy: column %d has no file", c)) ||
        load_npy_column(cols, c, out, err, err_size)) {
      rt_dataset_free(out);
      return 1;
    }
  }
  return 0;
}

/* ------------------------------------------------------------------ CSV */

typedef struct Field {
  const char *s;
  size_t len;  /* trimmed of blanks */
} Field;

static bool is_blank(char ch) { return ch == ' ' || ch == '\t' || ch == '\r'; }

/* Parses a whole field as a number. Leading blanks are trimmed first, so
 * strtod cannot run on into the next line. */
static bool parse_number(Field f, double *v) {
  if (f.len == 0) return false;
  char *end;
  errno = 0;
  *v = strtod(f.s, &end);
  /* ERANGE: overflow gives ±HUGE_VAL (refused below as not finite);
   * underflow gives a tiny or zero value, which is fine */
  return end == f.s + f.len;
}

/* Splits [p, e) at commas into *fields (grown as needed). */
static int split_fields(const char *p, const char *e, Field **fields, size_t *cap,
                        size_t *n_out) {
  size_t n = 0;
  for (;;) {
    const char *q = p;
    while (q < e && *q != ',') q++;
    const char *a = p, *b = q;
    while (a < b && is_blank(*a)) a++;
    while (b > a && is_blank(b[-1])) b--;
    if (n == *cap) {
      size_t nc = *cap ? *cap * 2 : 16;
      Field *nf = realloc(*fields, nc * sizeof *nf);
      if (!nf) return 1;
      *fields = nf;
      *cap = nc;
    }
    (*fields)[n++] = (Field){a, (size_t)(b - a)};
    if (q == e) break;
    p = q + 1;
  }
  *n_out = n;
  return 0;
}

/* Makes room for row `rows` in every column (capacity *cap rows). */
static int csv_grow(rt_dataset *out, int64_t rows, int64_t *cap, const char *path, char *err,
                    size_t err_size) {
  if (rows < *cap) return 0;
  int64_t nc = *cap ? *cap * 2 : 1024;
  for (int c = 0; c < out->n_columns; c++) {
    const rt_column *col = &out->columns[c];
    if (nc * col->width > MAX_ELEMS) nc = MAX_ELEMS / col->width;
    if (nc <= rows) return rt_fail(err, err_size, "%s: too large: more than 2^31 values", path);
  }
  for (int c = 0; c < out->n_columns; c++) {
    rt_column *col = &out->columns[c];
    void *old = col->is_int ? (void *)col->i : (void *)col->f;
    void *np = realloc(old, (size_t)(nc * col->width) * 4);
    if (!np) return rt_fail(err, err_size, "%s: out of memory", path);
    if (col->is_int) col->i = np;
    else col->f = np;
  }
  *cap = nc;
  return 0;
}

/* Stores row `row` (line `line`) from its fields. On the first non-blank
 * line (`first`), a field that is not a number says why it is no header. */
static int csv_store(rt_dataset *out, const rt_column_spec *cols, const Field *fields,
                     int64_t row, int64_t line, bool first, const char *path, char *err,
                     size_t err_size) {
  for (int c = 0; c < out->n_columns; c++) {
    rt_column *col = &out->columns[c];
    int64_t bound = col->is_int ? cols[c].label_bound : 0;
    for (int64_t j = cols[c].col_lo; j < cols[c].col_hi; j++) {
      Field f = fields[j];
      char shown[48];
      double v;
      bool number = parse_number(f, &v);
      const char *why = !number       ? "is not a number"
                        : !isfinite(v) ? "is not a finite number"
                        : col->is_int && (v != floor(v) || v < INT32_MIN || v > INT32_MAX)
                            ? "is not an integer"
                        : !col->is_int && !(fabs(v) <= FLT_MAX) ? "overflows f32"
                                                                 : NULL;
      if (why) {
        char note[80] = "";
        if (first && !number)
          snprintf(note, sizeof note, " (line %lld holds numbers, so it is data, not a header)",
                   (long long)line);
        return rt_fail(err, err_size, "%s:%lld: column %lld: '%s' %s%s", path, (long long)line,
                       (long long)j, show(f.s, f.len, shown), why, note);
      }
      if (bound > 0 && (v < 0 || v >= (double)bound))
        return rt_fail(err, err_size, "%s:%lld: column %lld: label %lld is out of range [0, %lld)",
                       path, (long long)line, (long long)j, (long long)v, (long long)bound);
      int64_t at = row * col->width + (j - cols[c].col_lo);
      if (col->is_int) col->i[at] = (int32_t)v;
      else col->f[at] = (float)v;
    }
  }
  return 0;
}

/* The header rule: the first non-blank line is a header when none of its
 * fields in the columns the binding uses is a number (strtod reads the
 * whole field); names and empty fields are not numbers. A first line with
 * at least one number there is data, so one bad field in a first data
 * row is an error naming line and column, not a header silently dropped.
 * (The other fields of a line, ids or names beside the numbers, decide
 * nothing.) A file whose used columns hold nothing but numbers even on
 * the first line has no header. */
static bool csv_is_header(const rt_column_spec *cols, int n_cols, const Field *fields) {
  double v;
  for (int c = 0; c < n_cols; c++)
    for (int64_t j = cols[c].col_lo; j < cols[c].col_hi; j++)
      if (parse_number(fields[j], &v)) return false;
  return true;
}

/* The rows of buf[0..len): blank lines skipped, the first non-blank line
 * a header by csv_is_header's rule. Every line, the header too, has as
 * many fields as the binding uses (the highest column used + 1), or more
 * when a column spec allows extra columns; then fields outside the used
 * columns are not looked at (a CSV may carry ids or names beside the
 * numbers). */
static int csv_rows(const char *buf, int64_t len, const rt_column_spec *cols, int64_t need,
                    rt_dataset *out, const char *path, char *err, size_t err_size) {
  Field *fields = NULL;
  size_t fcap = 0, nf;
  int64_t rows = 0, row_cap = 0, line = 0;
  bool first = true, extra_ok = false;
  for (int c = 0; c < out->n_columns; c++) extra_ok |= cols[c].allow_extra_columns;
  int rc = 0;
  const char *p = buf, *end = buf + len;
  if (len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) p += 3;  /* UTF-8 byte order mark */
  while (!rc && p < end) {
    const char *s = p, *e = memchr(p, '\n', (size_t)(end - p));
    if (!e) e = end;
    p = e < end ? e + 1 : end;
    line++;
    while (s < e && is_blank(*s)) s++;
    if (s == e) continue;  /* blank */
    if (split_fields(s, e, &fields, &fcap, &nf)) {
      rc = rt_fail(err, err_size, "%s: out of memory", path);
      break;
    }
    if ((int64_t)nf < need || ((int64_t)nf > need && !extra_ok)) {
      rc = rt_fail(err, err_size, "%s:%lld: expected %s%lld columns, found %zu", path,
                   (long long)line, extra_ok ? "at least " : "", (long long)need, nf);
      break;
    }
    bool at_first = first;
    if (first) {
      first = false;
      if (csv_is_header(cols, out->n_columns, fields)) continue;
    }
    rc = csv_grow(out, rows, &row_cap, path, err, err_size);
    if (!rc) rc = csv_store(out, cols, fields, rows, line, at_first, path, err, err_size);
    rows++;
  }
  free(fields);
  if (!rc && rows == 0) rc = rt_fail(err, err_size, "%s: no data rows", path);
  out->n = rows;
  return rc;
}

int rt_load_csv(const char *path, const rt_column_spec *cols, int n_cols, rt_dataset *out,
                char *err, size_t err_size) {
  if (!path) path = "csv";
  if (dataset_begin(out, n_cols, path, err, err_size)) return 1;
  int64_t need = 0;
  int rc = 0;
  for (int c = 0; c < n_cols && !rc; c++) {
    const rt_column_spec *s = &cols[c];
    rc = check_width(s, path, err, err_size);
    if (!rc && (s->col_lo < 0 || s->col_hi <= s->col_lo || s->col_hi > 1000000))
      rc = rt_fail(err, err_size, "%s: bad column range [%lld:%lld]", path, (long long)s->col_lo,
                (long long)s->col_hi);
    if (!rc && s->col_hi - s->col_lo != s->width)
      rc = rt_fail(err, err_size, "%s: columns [%lld:%lld] give %lld values but the input needs %lld",
                path, (long long)s->col_lo, (long long)s->col_hi,
                (long long)(s->col_hi - s->col_lo), (long long)s->width);
    if (s->col_hi > need) need = s->col_hi;
    out->columns[c].is_int = s->is_int;
    out->columns[c].width = s->width;
  }
  char *buf = NULL;
  int64_t len;
  if (!rc) rc = read_all(path, MAX_ELEMS, &buf, &len, err, err_size);
  if (!rc) rc = csv_rows(buf, len, cols, need, out, path, err, err_size);
  free(buf);
  if (rc) rt_dataset_free(out);
  return rc;
}

/* ----------------------------------------------------------------- text */

int rt_load_text(const char *path, int64_t t, rt_dataset *out, char *err, size_t err_size) {
  *out = (rt_dataset){0};
  if (t < 1 || t > MAX_ELEMS)
    return rt_fail(err, err_size, "%s: bad window length %lld", path, (long long)t);
  char *buf;
  int64_t len;
  if (read_all(path, MAX_ELEMS, &buf, &len, err, err_size)) return 1;
  if (len < t + 1) {
    free(buf);
    return rt_fail(err, err_size, "%s: %lld bytes, fewer than the %lld a window of %lld needs",
                path, (long long)len, (long long)(t + 1), (long long)t);
  }
  int64_t n = (len - 1) / t;  /* windows at 0, t, 2t, ...: the last y ends at i+t+1 <= len */
  int rc = dataset_begin(out, 2, path, err, err_size);
  for (int c = 0; c < 2 && !rc; c++)
    rc = column_alloc(&out->columns[c], true, t, n, path, err, err_size);
  if (!rc) {
    const unsigned char *b = (const unsigned char *)buf;
    for (int64_t w = 0; w < n; w++)
      for (int64_t k = 0; k < t; k++) {
        out->columns[0].i[w * t + k] = b[w * t + k];
        out->columns[1].i[w * t + k] = b[w * t + k + 1];
      }
    out->n = n;
  }
  free(buf);
  if (rc) rt_dataset_free(out);
  return rc;
}

/* ------------------------------------------------------------ synthetic */

int rt_load_synthetic(const char *kind, int64_t n, int64_t classes, double lo, double hi,
                      uint64_t seed, rt_dataset *out, char *err, size_t err_size) {
  *out = (rt_dataset){0};
  if (!kind) kind = "(null)";
  int which = !strcmp(kind, "sine")     ? 0
              : !strcmp(kind, "spiral") ? 1
              : !strcmp(kind, "xor")    ? 2
                                        : -1;
  if (which < 0)
    return rt_fail(err, err_size, "unknown synthetic data set '%s' (sine, spiral or xor)", kind);
  if (n < 1) return rt_fail(err, err_size, "%s: n must be positive, not %lld", kind, (long long)n);
  if (n > MAX_ELEMS / 2)
    return rt_fail(err, err_size, "%s: n = %lld is too large (the limit is 2^30)", kind,
                (long long)n);
  if (which == 0 && !(isfinite(lo) && isfinite(hi)))
    return rt_fail(err, err_size, "sine: the range [%g, %g] is not finite", lo, hi);
  if (which == 1 && (classes < 1 || classes > 1000000))
    return rt_fail(err, err_size, "spiral: classes must be between 1 and 1000000, not %lld",
                (long long)classes);
  if (dataset_begin(out, 2, kind, err, err_size)) return 1;
  bool y_int = which == 1;
  int64_t x_width = which == 0 ? 1 : 2;
  if (column_alloc(&out->columns[0], false, x_width, n, kind, err, err_size) ||
      column_alloc(&out->columns[1], y_int, 1, n, kind, err, err_size)) {
    rt_dataset_free(out);
    return 1;
  }
  rt_column *x = &out->columns[0], *y = &out->columns[1];
  if (which == 0) rt_synth_sine(n, lo, hi, seed, x->f, y->f);
  else if (which == 1) rt_synth_spiral(n, (int)classes, seed, x->f, y->i);
  else rt_synth_xor(n, seed, x->f, y->f);
  out->n = n;
  return 0;
}

/* -------------------------------------------------------------- shuffle */

/* Fisher-Yates; swap k draws word k of stream epoch + 1000, so an epoch's
 * order is a pure function of (seed, epoch). The modulo's bias is below
 * n / 2^64. */
void rt_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch) {
  for (int64_t i = 0; i < n; i++) order[i] = i;
  for (int64_t k = n - 1; k > 0; k--) {
    int64_t j = (int64_t)(rt_rand_u64(seed, epoch + 1000, (uint64_t)k) % (uint64_t)(k + 1));
    int64_t tmp = order[k];
    order[k] = order[j];
    order[j] = tmp;
  }
}
