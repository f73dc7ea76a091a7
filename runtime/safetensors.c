/* safetensors.c - checkpoints in the safetensors format (safetensors.h):
 *
 *   u64 N (little-endian) | N bytes of JSON, space-padded to a multiple
 *   of 8 | data: each tensor's little-endian bytes at data_offsets
 *   [begin, end), relative to the start of the data.
 *
 * Saving goes through outfile.h: a temporary beside PATH renamed over it
 * (a device or FIFO is written in place, a symlink's target replaced), so
 * a failed save leaves the old checkpoint as it was. Loading reads the
 * whole file, parses the header with the small JSON parser below, checks
 * every entry against the model, and only then copies data into the
 * caller's buffers: a bad file never leaves a half-loaded model.
 *
 * Linked into every generated library: libc only. */
#include "runtime/safetensors.h"
#include "runtime/util.h"
#include "runtime/outfile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/nncc.h"

#define MAX_FILE ((uint64_t)4 << 30)     /* larger checkpoints are refused */
#define MAX_HEADER ((uint64_t)100 << 20) /* the reference implementation's limit */
#define MAX_DEPTH 64                     /* JSON nesting */
#define MAX_RANK 64
#define MAX_VALUES ((int64_t)4 << 20)    /* JSON values in a header: ~400k tensors */

/* at most 60 bytes of a file's text in a message */
static const char *show(const char *s, size_t len, char out[68]) { return rt_show(s, len, 60, out); }

static bool host_is_little_endian(void) {
  const uint16_t one = 1;
  unsigned char b;
  memcpy(&b, &one, 1);
  return b == 1;
}

/* F32 and I32 are both 4-byte words: on a big-endian host, a copy swaps
 * each word (the file is little-endian either way). */
static void copy_le32(void *dst, const void *src, size_t bytes) {
  if (bytes == 0) return;  /* an empty tensor may have no buffer */
  memcpy(dst, src, bytes);
  if (host_is_little_endian()) return;
  unsigned char *d = dst;
  for (size_t k = 0; k + 4 <= bytes; k += 4) {
    unsigned char t0 = d[k], t1 = d[k + 1];
    d[k] = d[k + 3];
    d[k + 1] = d[k + 2];
    d[k + 2] = t1;
    d[k + 3] = t0;
  }
}

static const char *dtype_name(int32_t dtype) {
  return dtype == NNCC_F32 ? "F32" : dtype == NNCC_I32 ? "I32" : NULL;
}

/* Bytes per element of the dtypes safetensors defines (0: unknown), so
 * that a file of another tool can still be checked for consistency. */
static int dtype_size(const char *s, size_t len) {
  static const struct { const char *name; int size; } sizes[] = {
      {"F64", 8}, {"F32", 4}, {"F16", 2},  {"BF16", 2}, {"I64", 8},    {"I32", 4},
      {"I16", 2}, {"I8", 1},  {"U64", 8},  {"U32", 4},  {"U16", 2},    {"U8", 1},
      {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
  };
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++)
    if (strlen(sizes[k].name) == len && !memcmp(sizes[k].name, s, len)) return sizes[k].size;
  return 0;
}

/* Prints a shape as [3,4] into out. */
static const char *shape_str(const int64_t *shape, int rank, char *out, size_t size) {
  size_t n = 0;
  n += (size_t)snprintf(out, size, "[");
  for (int d = 0; d < rank && n < size; d++)
    n += (size_t)snprintf(out + n, size - n, "%s%lld", d ? "," : "", (long long)shape[d]);
  if (n < size) snprintf(out + n, size - n, "]");
  return out;
}

/* numel * 4 of a tensor to save, or -1 on a bad shape or overflow. */
static int64_t tensor_bytes(const rt_st_tensor *t) {
  if (t->rank < 0 || t->rank > MAX_RANK || (t->rank > 0 && !t->shape)) return -1;
  int64_t n = 4;
  for (int d = 0; d < t->rank; d++) {
    if (t->shape[d] < 0) return -1;
    if (t->shape[d] && n > INT64_MAX / 8 / t->shape[d]) return -1;
    n *= t->shape[d];
  }
  return n;
}

/* ============================================================== saving */

typedef struct Buf {
  char *s;
  size_t len, cap;
  bool oom;
} Buf;

static void buf_put(Buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t nc = b->cap ? b->cap : 256;
    while (b->len + n + 1 > nc) nc *= 2;
    char *ns = realloc(b->s, nc);
    if (!ns) {
      b->oom = true;
      return;
    }
    b->s = ns;
    b->cap = nc;
  }
  memcpy(b->s + b->len, s, n);
  b->len += n;
  b->s[b->len] = 0;
}

static void buf_printf(Buf *b, const char *fmt, ...) {
  char tmp[64];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  buf_put(b, tmp, (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

/* A JSON string: quotes, backslashes and control bytes escaped; other
 * bytes (UTF-8) as they are. */
static void buf_json_string(Buf *b, const char *s) {
  buf_put(b, "\"", 1);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\') {
      char e[2] = {'\\', (char)*p};
      buf_put(b, e, 2);
    } else if (*p < 0x20) {
      buf_printf(b, "\\u%04x", *p);
    } else {
      buf_put(b, (const char *)p, 1);
    }
  }
  buf_put(b, "\"", 1);
}

int rt_st_save(const char *path, const char *model, const rt_st_tensor *t, int n, char *err,
               size_t err_size) {
  return rt_st_save_meta(path, model, NULL, 0, t, n, err, err_size);
}

int rt_st_save_meta(const char *path, const char *model, const rt_st_meta *meta, int n_meta,
                    const rt_st_tensor *t, int n, char *err, size_t err_size) {
  if (!path) return rt_fail(err, err_size, "checkpoint: no path");
  if (n < 0 || (n > 0 && !t)) return rt_fail(err, err_size, "%s: no tensors", path);
  /* the header, with offsets in the order given */
  Buf h = {0};
  buf_put(&h, "{\"__metadata__\":{\"format\":\"nncc\",\"model\":", 41);
  buf_json_string(&h, model ? model : "");
  for (int i = 0; i < n_meta; i++) {
    if (!meta[i].key || !meta[i].value || !strcmp(meta[i].key, "format") || !strcmp(meta[i].key, "model")) continue;
    buf_put(&h, ",", 1);
    buf_json_string(&h, meta[i].key);
    buf_put(&h, ":", 1);
    buf_json_string(&h, meta[i].value);
  }
  buf_put(&h, "}", 1);
  int64_t offset = 0;
  for (int i = 0; i < n; i++) {
    const char *dt = dtype_name(t[i].dtype), *why = NULL;
    int64_t bytes = tensor_bytes(&t[i]);
    if (!t[i].name || !t[i].name[0]) why = "a tensor without a name";
    else if (!strcmp(t[i].name, "__metadata__")) why = "a tensor named __metadata__";
    else if (!dt) why = "a tensor of unknown dtype";
    else if (bytes < 0) why = "a tensor of bad shape";
    else if (bytes > 0 && !t[i].data) why = "a tensor without data";
    else if ((uint64_t)offset + (uint64_t)bytes > MAX_FILE) why = "more than 4 GiB";
    for (int j = 0; j < i && !why; j++)
      if (!strcmp(t[i].name, t[j].name)) why = "a tensor named twice";
    if (why) {
      free(h.s);
      return rt_fail(err, err_size, "%s: cannot save %s (tensor %d%s%s)", path, why, i,
                  t[i].name ? " " : "", t[i].name ? t[i].name : "");
    }
    buf_put(&h, ",", 1);
    buf_json_string(&h, t[i].name);
    buf_printf(&h, ":{\"dtype\":\"%s\",\"shape\":[", dt);
    for (int d = 0; d < t[i].rank; d++)
      buf_printf(&h, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
    buf_printf(&h, "],\"data_offsets\":[%lld,", (long long)offset);
    offset += bytes;
    buf_printf(&h, "%lld]}", (long long)offset);
  }
  buf_put(&h, "}", 1);
  while (!h.oom && h.len % 8) buf_put(&h, " ", 1);  /* data starts 8-byte aligned */
  if (h.oom) {
    free(h.s);
    return rt_fail(err, err_size, "%s: out of memory", path);
  }

  rt_outfile out;
  if (rt_out_open(&out, path, 0666, err, err_size)) {
    free(h.s);
    return 1;
  }
  FILE *f = out.f;
  errno = 0;  /* so that a failed fwrite's reason is its own */
  unsigned char size[8];
  for (int k = 0; k < 8; k++) size[k] = (unsigned char)((uint64_t)h.len >> (8 * k));
  bool ok = fwrite(size, 1, 8, f) == 8 && fwrite(h.s, 1, h.len, f) == h.len;
  unsigned char chunk[1 << 14];
  for (int i = 0; i < n && ok; i++) {
    int64_t bytes = tensor_bytes(&t[i]);
    for (int64_t at = 0; at < bytes && ok; at += (int64_t)sizeof chunk) {
      size_t m = bytes - at < (int64_t)sizeof chunk ? (size_t)(bytes - at) : sizeof chunk;
      copy_le32(chunk, (const char *)t[i].data + at, m);
      ok = fwrite(chunk, 1, m, f) == m;
    }
  }
  free(h.s);
  if (!ok) {
    int e = errno ? errno : EIO;
    rt_out_abort(&out);
    return rt_fail(err, err_size, "%s: cannot write: %s", path, strerror(e));
  }
  return rt_out_commit(&out, err, err_size);
}

/* ========================================================= JSON parser */

typedef enum JKind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } JKind;

typedef struct JStr {
  char *s;     /* NUL-terminated; may hold NULs from \u0000 */
  size_t len;
} JStr;

typedef struct JVal {
  JKind kind;
  bool is_int;          /* J_NUM written without fraction or exponent, fits int64 */
  int64_t i;
  double d;             /* J_NUM; J_BOOL: 0 or 1 */
  JStr str;             /* J_STR */
  int n, cap;           /* J_ARR, J_OBJ: items */
  struct JVal *items;
  JStr *keys;           /* J_OBJ */
} JVal;

typedef struct JParser {
  const char *p, *start, *end;
  int depth;
  int64_t values;       /* parsed so far: bounds memory (~80 bytes a value) */
  char msg[160];        /* the first error */
} JParser;

static bool jerr(JParser *jp, const char *what) {
  if (!jp->msg[0])
    snprintf(jp->msg, sizeof jp->msg, "%s at byte %td", what, jp->p - jp->start);
  return false;
}

static void jfree(JVal *v) {
  if (v->kind == J_STR) free(v->str.s);
  if (v->kind == J_ARR || v->kind == J_OBJ) {
    for (int k = 0; k < v->n; k++) {
      jfree(&v->items[k]);
      if (v->keys) free(v->keys[k].s);
    }
    free(v->items);
    free(v->keys);
  }
  *v = (JVal){0};
}

static void jws(JParser *jp) {
  while (jp->p < jp->end &&
         (*jp->p == ' ' || *jp->p == '\t' || *jp->p == '\n' || *jp->p == '\r'))
    jp->p++;
}

static int hex4(const char *p) {
  int v = 0;
  for (int k = 0; k < 4; k++) {
    char c = p[k];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
    if (d < 0) return -1;
    v = v * 16 + d;
  }
  return v;
}

/* string = '"' { char | '\' escape } '"' ; escape = ["\/bfnrt] | 'u' hex4 */
static bool jstring(JParser *jp, JStr *out) {
  if (jp->p >= jp->end || *jp->p != '"') return jerr(jp, "expected a string");
  const char *q = ++jp->p;
  while (q < jp->end && *q != '"') q += *q == '\\' && q + 1 < jp->end ? 2 : 1;
  if (q >= jp->end) return jerr(jp, "unterminated string");
  char *s = malloc((size_t)(q - jp->p) + 1), *o = s;  /* decoding never grows */
  if (!s) return jerr(jp, "out of memory");
  while (jp->p < q) {
    unsigned char c = (unsigned char)*jp->p;
    if (c < 0x20) {
      free(s);
      return jerr(jp, "control character in a string");
    }
    if (c != '\\') {
      *o++ = (char)c;
      jp->p++;
      continue;
    }
    char e = jp->p[1];
    jp->p += 2;
    const char *simple = strchr("\"\\/bfnrt", e);
    if (e && simple) {
      *o++ = "\"\\/\b\f\n\r\t"[simple - "\"\\/bfnrt"];
      continue;
    }
    int u = e == 'u' && q - jp->p >= 4 ? hex4(jp->p) : -1;
    if (u < 0) {
      free(s);
      jp->p -= 2;
      return jerr(jp, "bad escape in a string");
    }
    jp->p += 4;
    if (u >= 0xD800 && u <= 0xDBFF) {  /* a surrogate pair */
      int lo = q - jp->p >= 6 && jp->p[0] == '\\' && jp->p[1] == 'u' ? hex4(jp->p + 2) : -1;
      if (lo < 0xDC00 || lo > 0xDFFF) {
        free(s);
        return jerr(jp, "unpaired surrogate in a string");
      }
      jp->p += 6;
      u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
    } else if (u >= 0xDC00 && u <= 0xDFFF) {
      free(s);
      return jerr(jp, "unpaired surrogate in a string");
    }
    /* UTF-8: at most 4 bytes for at least 6 escape characters read */
    if (u < 0x80) {
      *o++ = (char)u;
    } else if (u < 0x800) {
      *o++ = (char)(0xC0 | u >> 6);
      *o++ = (char)(0x80 | (u & 0x3F));
    } else if (u < 0x10000) {
      *o++ = (char)(0xE0 | u >> 12);
      *o++ = (char)(0x80 | ((u >> 6) & 0x3F));
      *o++ = (char)(0x80 | (u & 0x3F));
    } else {
      *o++ = (char)(0xF0 | u >> 18);
      *o++ = (char)(0x80 | ((u >> 12) & 0x3F));
      *o++ = (char)(0x80 | ((u >> 6) & 0x3F));
      *o++ = (char)(0x80 | (u & 0x3F));
    }
  }
  jp->p = q + 1;
  *o = 0;
  out->s = s;
  out->len = (size_t)(o - s);
  return true;
}

/* number = ['-'] ('0' | [1-9] digits) ['.' digits] [('e'|'E') ['+'|'-'] digits] */
static bool jnumber(JParser *jp, JVal *v) {
  const char *p = jp->p, *e = jp->end;
  bool neg = p < e && *p == '-';
  p += neg;
  const char *int_start = p;
  if (p < e && *p == '0') p++;
  else if (p < e && *p >= '1' && *p <= '9') while (p < e && *p >= '0' && *p <= '9') p++;
  else return jerr(jp, "bad number");
  const char *int_end = p;
  bool frac = false;
  if (p < e && *p == '.') {
    frac = true;
    p++;
    if (p >= e || *p < '0' || *p > '9') return jerr(jp, "bad number");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  if (p < e && (*p == 'e' || *p == 'E')) {
    frac = true;
    p++;
    if (p < e && (*p == '+' || *p == '-')) p++;
    if (p >= e || *p < '0' || *p > '9') return jerr(jp, "bad number");
    while (p < e && *p >= '0' && *p <= '9') p++;
  }
  v->kind = J_NUM;
  v->is_int = !frac;
  uint64_t u = 0;
  for (const char *d = int_start; d < int_end && v->is_int; d++) {
    if (u > (UINT64_MAX - 9) / 10) v->is_int = false;
    u = u * 10 + (uint64_t)(*d - '0');
  }
  if (v->is_int && u > (uint64_t)INT64_MAX + neg) v->is_int = false;
  if (v->is_int) v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
  char tmp[64];
  size_t len = (size_t)(p - jp->p);
  if (len < sizeof tmp) {
    memcpy(tmp, jp->p, len);
    tmp[len] = 0;
    v->d = strtod(tmp, NULL);
  } else {
    v->d = v->is_int ? (double)v->i : 0;  /* a 64-digit float: only its integer-ness matters */
  }
  jp->p = p;
  return true;
}

static bool jvalue(JParser *jp, JVal *v);
static int *sorted_keys(const JVal *obj, const JStr **dup);

/* Appends an item (and its key) to an array or object. */
static JVal *jpush(JParser *jp, JVal *v, JStr key) {
  if (v->n == v->cap) {
    int nc = v->cap ? v->cap * 2 : 4;
    JVal *ni = realloc(v->items, sizeof *ni * (size_t)nc);
    if (ni) v->items = ni;
    JStr *nk = v->kind == J_OBJ ? realloc(v->keys, sizeof *nk * (size_t)nc) : NULL;
    if (nk) v->keys = nk;
    if (!ni || (v->kind == J_OBJ && !nk)) {
      jerr(jp, "out of memory");
      return NULL;
    }
    v->cap = nc;
  }
  if (v->kind == J_OBJ) v->keys[v->n] = key;
  v->items[v->n] = (JVal){0};
  return &v->items[v->n++];
}

/* array = '[' [value {',' value}] ']' ; object = '{' [string ':' value {',' ...}] '}' */
static bool jcontainer(JParser *jp, JVal *v, bool obj) {
  if (++jp->depth > MAX_DEPTH) return jerr(jp, "nested too deeply");
  v->kind = obj ? J_OBJ : J_ARR;
  char close = obj ? '}' : ']';
  jp->p++;
  jws(jp);
  if (jp->p < jp->end && *jp->p == close) {
    jp->p++;
    jp->depth--;
    return true;
  }
  for (;;) {
    JStr key = {0};
    jws(jp);
    if (obj) {
      if (!jstring(jp, &key)) return false;
      jws(jp);
      if (jp->p >= jp->end || *jp->p != ':') {
        free(key.s);
        return jerr(jp, "expected ':'");
      }
      jp->p++;
    }
    JVal *item = jpush(jp, v, key);
    if (!item) {
      free(key.s);
      return false;
    }
    if (!jvalue(jp, item)) return false;
    jws(jp);
    if (jp->p < jp->end && *jp->p == ',') {
      jp->p++;
      continue;
    }
    if (jp->p < jp->end && *jp->p == close) {
      jp->p++;
      jp->depth--;
      if (obj) {  /* JSON leaves duplicate keys open; a checkpoint may not have them */
        const JStr *dup = NULL;
        int *sorted = sorted_keys(v, &dup);
        free(sorted);
        if (dup) {
          char shown[68];
          char what[100];
          snprintf(what, sizeof what, "duplicate key '%s'", show(dup->s, dup->len, shown));
          return jerr(jp, what);
        }
        if (!sorted) return jerr(jp, "out of memory");
      }
      return true;
    }
    return jerr(jp, obj ? "expected ',' or '}'" : "expected ',' or ']'");
  }
}

static bool jvalue(JParser *jp, JVal *v) {
  jws(jp);
  if (++jp->values > MAX_VALUES) return jerr(jp, "too many values");
  if (jp->p >= jp->end) return jerr(jp, "unexpected end");
  switch (*jp->p) {
  case '{': return jcontainer(jp, v, true);
  case '[': return jcontainer(jp, v, false);
  case '"':
    v->kind = J_STR;
    return jstring(jp, &v->str);
  }
  static const struct { const char *word; JKind kind; double d; } words[] = {
      {"true", J_BOOL, 1}, {"false", J_BOOL, 0}, {"null", J_NULL, 0}};
  for (size_t k = 0; k < 3; k++) {
    size_t n = strlen(words[k].word);
    if ((size_t)(jp->end - jp->p) >= n && !memcmp(jp->p, words[k].word, n)) {
      v->kind = words[k].kind;
      v->d = words[k].d;
      jp->p += n;
      return true;
    }
  }
  if (*jp->p == '-' || (*jp->p >= '0' && *jp->p <= '9')) return jnumber(jp, v);
  return jerr(jp, "expected a value");
}

static int cmp_jstr(const JStr *a, const JStr *b) {
  size_t n = a->len < b->len ? a->len : b->len;
  int c = memcmp(a->s, b->s, n);
  return c ? c : (a->len > b->len) - (a->len < b->len);
}

/* Item indices sorted by key: duplicate detection and lookup stay
 * O(n log n) however many tensors a (hostile) header names. */
static void merge_sort(int *idx, int *tmp, int n, const JStr *keys) {
  if (n < 2) return;
  int h = n / 2;
  merge_sort(idx, tmp, h, keys);
  merge_sort(idx + h, tmp, n - h, keys);
  int a = 0, b = h, o = 0;
  while (a < h && b < n)  /* stable: ties keep the earlier item first */
    tmp[o++] = cmp_jstr(&keys[idx[b]], &keys[idx[a]]) < 0 ? idx[b++] : idx[a++];
  while (a < h) tmp[o++] = idx[a++];
  while (b < n) tmp[o++] = idx[b++];
  memcpy(idx, tmp, sizeof *idx * (size_t)n);
}

/* The object's item indices sorted by key (malloc'ed); NULL when out of
 * memory or on a duplicate key (then *dup is set). */
static int *sorted_keys(const JVal *obj, const JStr **dup) {
  int n = obj->n;
  int *idx = malloc(sizeof *idx * (size_t)(n ? n : 1));
  int *tmp = malloc(sizeof *tmp * (size_t)(n ? n : 1));
  if (!idx || !tmp) {
    free(idx);
    free(tmp);
    return NULL;
  }
  for (int k = 0; k < n; k++) idx[k] = k;
  merge_sort(idx, tmp, n, obj->keys);
  free(tmp);
  for (int k = 1; k < n; k++)
    if (!cmp_jstr(&obj->keys[idx[k - 1]], &obj->keys[idx[k]])) {
      *dup = &obj->keys[idx[k]];
      free(idx);
      return NULL;
    }
  return idx;
}

/* The item of obj under key, or NULL. Linear: only for small objects. */
static const JVal *jget(const JVal *obj, const char *key) {
  size_t len = strlen(key);
  for (int k = 0; k < obj->n; k++)
    if (obj->keys[k].len == len && !memcmp(obj->keys[k].s, key, len)) return &obj->items[k];
  return NULL;
}

/* ============================================================= loading */

/* One tensor of the file, checked for form. */
typedef struct Entry {
  const JStr *name;
  const JStr *dtype;
  int rank;
  int64_t shape[MAX_RANK];
  uint64_t begin, end;
  bool used;             /* matched by a requested tensor */
} Entry;

static bool nonneg_int(const JVal *v) { return v->kind == J_NUM && v->is_int && v->i >= 0; }

/* Checks one header entry's form: {"dtype": S, "shape": [ints], "data_offsets": [b, e]}. */
static const char *check_entry(const JStr *name, const JVal *v, Entry *e) {
  e->name = name;
  if (v->kind != J_OBJ) return "is not an object";
  const JVal *dt = jget(v, "dtype"), *sh = jget(v, "shape"), *off = jget(v, "data_offsets");
  if (!dt || dt->kind != J_STR) return "has no \"dtype\" string";
  if (!sh || sh->kind != J_ARR) return "has no \"shape\" array";
  if (!off || off->kind != J_ARR || off->n != 2 || !nonneg_int(&off->items[0]) ||
      !nonneg_int(&off->items[1]) || off->items[0].i > off->items[1].i)
    return "has no \"data_offsets\" [begin, end]";
  if (sh->n > MAX_RANK) return "has too many dimensions";
  e->dtype = &dt->str;
  e->rank = sh->n;
  uint64_t numel = 1;
  for (int d = 0; d < sh->n; d++) {
    if (!nonneg_int(&sh->items[d])) return "has a bad \"shape\"";
    e->shape[d] = sh->items[d].i;
    if (e->shape[d] && numel > MAX_FILE / (uint64_t)e->shape[d]) numel = MAX_FILE + 1;
    else numel *= (uint64_t)e->shape[d];
  }
  e->begin = (uint64_t)off->items[0].i;
  e->end = (uint64_t)off->items[1].i;
  int es = dtype_size(e->dtype->s, e->dtype->len);
  if (es && numel * (uint64_t)es != e->end - e->begin)
    return "has \"data_offsets\" that disagree with its shape";
  return NULL;
}

static int entry_cmp_begin(const void *a, const void *b) {
  const Entry *x = *(const Entry *const *)a, *y = *(const Entry *const *)b;
  return (x->begin > y->begin) - (x->begin < y->begin);
}

/* Reads the whole file into *buf (size *size). */
static int read_file(const char *path, unsigned char **buf, uint64_t *size, char *err,
                     size_t err_size) {
  /* O_NONBLOCK: opening a FIFO must not wait for a writer; what is not
   * a regular file is refused before anything blocks on it */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return rt_fail(err, err_size, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return rt_fail(err, err_size, "%s: not a regular file%s", path,
                   S_ISFIFO(st.st_mode) ? " (a FIFO)" : S_ISDIR(st.st_mode) ? " (a directory)" : "");
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    int e = errno;
    close(fd);
    return rt_fail(err, err_size, "%s: cannot open: %s", path, strerror(e));
  }
  if ((uint64_t)st.st_size > MAX_FILE) {
    fclose(f);
    return rt_fail(err, err_size, "%s: too large (%lld bytes; the limit is 4 GiB)", path,
                (long long)st.st_size);
  }
  *size = (uint64_t)st.st_size;
  *buf = malloc(*size ? *size : 1);
  if (!*buf) {
    fclose(f);
    return rt_fail(err, err_size, "%s: out of memory (%llu bytes)", path,
                (unsigned long long)*size);
  }
  size_t got = fread(*buf, 1, *size, f);
  int e = ferror(f) ? errno : 0;
  fclose(f);
  if (got != *size) {  /* changed under us, or a read error */
    free(*buf);
    *buf = NULL;
    return rt_fail(err, err_size, "%s: cannot read: %s", path, e ? strerror(e) : "short read");
  }
  return 0;
}

/* Checks the parsed header against the request; 0 when every tensor can
 * be copied, with match[i] the root item that holds t[i]. entries[k]
 * describes root item k; `order` lists the items other than
 * __metadata__, sorted by name. `data_len` is the size of the data. */
static int check_header(const char *path, const char *model, const JVal *root,
                        uint64_t data_len, const rt_st_tensor *t, int n, Entry *entries,
                        const int *order, int n_order, int *match, const bool *required,
                        bool *found, char *err, size_t err_size) {
  char a[68], b[68];
  const JVal *meta = NULL;
  /* form of every entry, before anything is compared */
  for (int k = 0; k < root->n; k++) {
    const JStr *key = &root->keys[k];
    const JVal *v = &root->items[k];
    if (key->len == 12 && !memcmp(key->s, "__metadata__", 12)) {
      meta = v;
      bool ok = v->kind == J_OBJ;
      for (int m = 0; ok && m < v->n; m++) ok = v->items[m].kind == J_STR;
      if (!ok)
        return rt_fail(err, err_size, "%s: bad header: __metadata__ must map strings to strings",
                    path);
      continue;
    }
    const char *why = check_entry(key, v, &entries[k]);
    if (why)
      return rt_fail(err, err_size, "%s: bad header: tensor '%s' %s", path,
                  show(key->s, key->len, a), why);
  }
  /* the data: every tensor inside it, no two overlapping */
  Entry **by_begin = malloc(sizeof *by_begin * (size_t)(n_order ? n_order : 1));
  if (!by_begin) return rt_fail(err, err_size, "%s: out of memory", path);
  for (int k = 0; k < n_order; k++) by_begin[k] = &entries[order[k]];
  qsort(by_begin, (size_t)n_order, sizeof *by_begin, entry_cmp_begin);
  int rc = 0;
  uint64_t reach = 0;
  const Entry *reacher = NULL;
  for (int k = 0; k < n_order && !rc; k++) {
    const Entry *e = by_begin[k];
    if (e->end > data_len)
      rc = rt_fail(err, err_size,
                "%s: truncated: tensor '%s' ends at byte %llu of the data, which has %llu",
                path, show(e->name->s, e->name->len, a), (unsigned long long)e->end,
                (unsigned long long)data_len);
    else if (e->begin < reach && e->end > e->begin)
      rc = rt_fail(err, err_size, "%s: bad header: tensors '%s' and '%s' overlap", path,
                show(reacher->name->s, reacher->name->len, a), show(e->name->s, e->name->len, b));
    if (e->end > reach) {
      reach = e->end;
      reacher = e;
    }
  }
  free(by_begin);
  if (rc) return 1;
  /* the model */
  if (model) {
    const JVal *name = meta ? jget(meta, "model") : NULL;
    if (!name)
      return rt_fail(err, err_size, "%s: not an nncc checkpoint (no model name in __metadata__)",
                  path);
    if (name->str.len != strlen(model) || memcmp(name->str.s, model, name->str.len))
      return rt_fail(err, err_size, "%s: a checkpoint of model '%s', not '%s'", path,
                  show(name->str.s, name->str.len, a), model);
  }
  /* every requested tensor, found by binary search over the sorted names */
  for (int i = 0; i < n; i++) {
    JStr want = {(char *)t[i].name, strlen(t[i].name)};
    int lo = 0, hi = n_order;
    while (lo < hi) {
      int mid = (lo + hi) / 2;
      if (cmp_jstr(&root->keys[order[mid]], &want) < 0) lo = mid + 1;
      else hi = mid;
    }
    if (lo == n_order || cmp_jstr(&root->keys[order[lo]], &want)) {
      if (found && !required[i]) {  /* a partial load may go without it */
        found[i] = false;
        match[i] = -1;
        continue;
      }
      return rt_fail(err, err_size, "%s: no tensor '%s'", path, t[i].name);
    }
    if (found) found[i] = true;
    Entry *e = &entries[order[lo]];
    e->used = true;
    match[i] = order[lo];
    const char *dt = dtype_name(t[i].dtype);
    if (!dt || e->dtype->len != strlen(dt) || memcmp(e->dtype->s, dt, e->dtype->len))
      return rt_fail(err, err_size, "%s: tensor '%s' has dtype %s, the model has %s", path,
                  t[i].name, show(e->dtype->s, e->dtype->len, a), dt ? dt : "?");
    bool same = e->rank == t[i].rank;
    for (int d = 0; same && d < e->rank; d++) same = e->shape[d] == t[i].shape[d];
    if (!same) {
      char s1[256], s2[256];
      return rt_fail(err, err_size, "%s: tensor '%s' has shape %s, the model has %s", path,
                  t[i].name, shape_str(e->shape, e->rank, s1, sizeof s1),
                  shape_str(t[i].shape, t[i].rank, s2, sizeof s2));
    }
  }
  for (int k = 0; k < n_order && !found; k++)  /* a partial load ignores the rest */
    if (!entries[order[k]].used)
      return rt_fail(err, err_size, "%s: unexpected tensor '%s'", path,
                  show(root->keys[order[k]].s, root->keys[order[k]].len, a));
  return 0;
}

/* The 8-byte size and the JSON header of buf[0..size); *hlen its length. */
static int read_header(const char *path, const unsigned char *buf, uint64_t size, JVal *root,
                       uint64_t *hlen, char *err, size_t err_size) {
  if (size < 8)
    return rt_fail(err, err_size, "%s: truncated: %llu bytes, fewer than the 8 of the header size",
                path, (unsigned long long)size);
  *hlen = 0;
  for (int k = 0; k < 8; k++) *hlen |= (uint64_t)buf[k] << (8 * k);
  if (*hlen > MAX_HEADER)
    return rt_fail(err, err_size, "%s: bad header: %llu bytes long (the limit is 100 MiB)", path,
                (unsigned long long)*hlen);
  if (*hlen > size - 8)
    return rt_fail(err, err_size, "%s: truncated: a header of %llu bytes, but only %llu follow",
                path, (unsigned long long)*hlen, (unsigned long long)(size - 8));
  const char *h = (const char *)buf + 8;
  JParser jp = {h, h, h + *hlen, 0, 0, ""};
  bool ok = jvalue(&jp, root);
  if (ok) {
    jws(&jp);  /* the padding */
    if (jp.p != jp.end) ok = jerr(&jp, "trailing characters");
  }
  if (ok && root->kind != J_OBJ) {
    jp.p = jp.start;
    ok = jerr(&jp, "not a JSON object");
  }
  if (!ok) return rt_fail(err, err_size, "%s: bad header: %s", path, jp.msg);
  return 0;
}

/* The __metadata__ object of a parsed header as a list (malloc'ed). */
static int collect_meta(const char *path, const JVal *root, rt_st_meta_list *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  const JVal *meta = jget(root, "__metadata__");
  if (!meta || meta->kind != J_OBJ || meta->n == 0) return 0;
  size_t bytes = 0;
  for (int k = 0; k < meta->n; k++) bytes += meta->keys[k].len + meta->items[k].str.len + 2;
  out->items = calloc((size_t)meta->n, sizeof *out->items);
  out->store = malloc(bytes);
  if (!out->items || !out->store) {
    rt_st_meta_free(out);
    return rt_fail(err, err_size, "%s: out of memory", path);
  }
  char *p = out->store;
  for (int k = 0; k < meta->n; k++) {
    const JStr *key = &meta->keys[k], *val = &meta->items[k].str;
    memcpy(p, key->s, key->len);
    p[key->len] = 0;
    out->items[k].key = p;
    p += key->len + 1;
    memcpy(p, val->s, val->len);
    p[val->len] = 0;
    out->items[k].value = p;
    p += val->len + 1;
  }
  out->n = meta->n;
  return 0;
}

void rt_st_meta_free(rt_st_meta_list *l) {
  free(l->items);
  free(l->store);
  memset(l, 0, sizeof *l);
}

const char *rt_st_meta_get(const rt_st_meta_list *l, const char *key) {
  for (int k = 0; l && k < l->n; k++)
    if (!strcmp(l->items[k].key, key)) return l->items[k].value;
  return NULL;
}

int rt_st_read_meta(const char *path, rt_st_meta_list *out, char *err, size_t err_size) {
  memset(out, 0, sizeof *out);
  unsigned char *buf = NULL;
  uint64_t size = 0, hlen = 0;
  if (read_file(path, &buf, &size, err, err_size)) return 1;
  JVal root = {0};
  int rc = read_header(path, buf, size, &root, &hlen, err, err_size);
  if (!rc) {
    const JVal *meta = jget(&root, "__metadata__");
    bool ok = !meta || meta->kind == J_OBJ;
    for (int m = 0; ok && meta && m < meta->n; m++) ok = meta->items[m].kind == J_STR;
    rc = ok ? collect_meta(path, &root, out, err, err_size)
            : rt_fail(err, err_size, "%s: bad header: __metadata__ must map strings to strings", path);
  }
  jfree(&root);
  free(buf);
  return rc;
}

int rt_st_load(const char *path, const char *model, rt_st_tensor *t, int n, char *err,
               size_t err_size) {
  return rt_st_load_meta(path, model, t, n, NULL, err, err_size);
}

static int load(const char *path, const char *model, rt_st_tensor *t, int n, const bool *required, bool *found,
                rt_st_meta_list *meta, char *err, size_t err_size);

int rt_st_load_meta(const char *path, const char *model, rt_st_tensor *t, int n, rt_st_meta_list *meta,
                    char *err, size_t err_size) {
  return load(path, model, t, n, NULL, NULL, meta, err, err_size);
}

int rt_st_load_some(const char *path, rt_st_tensor *t, int n, const bool *required, bool *found, char *err,
                    size_t err_size) {
  return load(path, NULL, t, n, required, found, NULL, err, err_size);
}

static int load(const char *path, const char *model, rt_st_tensor *t, int n, const bool *required, bool *found,
                rt_st_meta_list *meta, char *err, size_t err_size) {
  if (meta) memset(meta, 0, sizeof *meta);
  if (!path) return rt_fail(err, err_size, "checkpoint: no path");
  if (n < 0 || (n > 0 && !t)) return rt_fail(err, err_size, "%s: no tensors", path);
  for (int i = 0; i < n; i++)
    if (!t[i].name || tensor_bytes(&t[i]) < 0 || (tensor_bytes(&t[i]) > 0 && !t[i].data))
      return rt_fail(err, err_size, "%s: cannot load into tensor %d (bad name, shape or buffer)",
                  path, i);
  unsigned char *buf = NULL;
  uint64_t size = 0, hlen = 0;
  if (read_file(path, &buf, &size, err, err_size)) return 1;
  JVal root = {0};
  int rc = read_header(path, buf, size, &root, &hlen, err, err_size);
  Entry *entries = NULL;
  int *sorted = NULL, *order = NULL, *match = NULL, n_order = 0;
  if (!rc) {
    const JStr *dup = NULL;
    char a[68];
    size_t items = (size_t)(root.n ? root.n : 1);
    sorted = sorted_keys(&root, &dup);
    entries = calloc(items, sizeof *entries);
    order = malloc(sizeof *order * items);
    match = malloc(sizeof *match * (size_t)(n ? n : 1));
    if (dup)
      rc = rt_fail(err, err_size, "%s: bad header: '%s' appears twice", path,
                show(dup->s, dup->len, a));
    else if (!sorted || !entries || !order || !match)
      rc = rt_fail(err, err_size, "%s: out of memory", path);
  }
  if (!rc) {
    for (int k = 0; k < root.n; k++) {
      const JStr *key = &root.keys[sorted[k]];
      if (!(key->len == 12 && !memcmp(key->s, "__metadata__", 12))) order[n_order++] = sorted[k];
    }
    rc = check_header(path, model, &root, size - 8 - hlen, t, n, entries, order, n_order, match,
                      required, found, err, err_size);
  }
  if (!rc && meta) rc = collect_meta(path, &root, meta, err, err_size);
  if (!rc) {  /* everything checked: now copy */
    const unsigned char *data = buf + 8 + hlen;
    for (int i = 0; i < n; i++) {
      if (match[i] < 0) continue;  /* absent from a partial load */
      const Entry *e = &entries[match[i]];
      copy_le32(t[i].data, data + e->begin, (size_t)(e->end - e->begin));
    }
  }
  free(sorted);
  free(entries);
  free(order);
  free(match);
  jfree(&root);
  free(buf);
  return rc;
}
