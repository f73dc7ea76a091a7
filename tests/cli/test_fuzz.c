/* test_fuzz.c - robustness (SPEC §5, §6 "Limits and files"): no input
 * file, however malformed, crashes nncc, hangs it or makes it allocate
 * without bound; every run ends with exit 0 or 1.
 *
 * Seeds are every .nn file of examples/ plus the extra seeds in
 * tests/cli/fuzz/. A fuzz input is a seed with 1-12 random mutations
 * (truncation, duplication of a range or a line, swapping tokens or
 * ranges, deletion, insertion of punctuation, keywords, names, huge
 * numbers and odd statements, replacing numbers and names, byte flips,
 * splicing two seeds), or random bytes, random ASCII or a token soup.
 *
 *  1. in process (NNCC_FUZZ_ITERS inputs, default 3000): lex + parse +
 *     elaborate (frontend_compile, a fresh Arena each time); when that is
 *     clean: --emit=ast's printer, the whole pass pipeline with
 *     verify-after-each-pass, ir_verify (0 problems), the print -> ir_read
 *     -> ir_verify round trip, and ir_read of a mutated print (must not
 *     crash; what it accepts must verify). Then every number argument of
 *     the language at the edges of int64 (test_extreme_arguments). The
 *     ASan/UBSan build aborts on any memory error or overflow. Each input
 *     is written to /tmp/nncc-fuzz-fail-inproc-SEED-ITER.nn (or
 *     -extreme-T-V.nn) before it is compiled and removed when all went
 *     well, so whatever kills the test (signal, sanitizer, exit(), a hang:
 *     SIGALRM after NNCC_FUZZ_TIMEOUT s, default 30) leaves it behind.
 *  2. through the CLI (NNCC_FUZZ_CLI_ITERS runs, default 150): `nncc check
 *     FILE` must exit 0 or 1 within 20 s, not by a signal, without a
 *     sanitizer report or an internal error, with at most 50 errors; a
 *     failing input is saved to /tmp/nncc-fuzz-fail-N.nn.
 *  3. special inputs through the CLI, each with the exit it must give and
 *     what stderr must say: 1 MB lines, deep nesting, huge dimensions,
 *     unrolling and inlining past the limits, too many errors, recursion,
 *     huge files and many items, odd bytes, -D values, a missing file, a
 *     directory.
 * No nncc run may peak above NNCC_FUZZ_MAX_RSS_MB (default 2048); outside
 * sanitizer builds the address space is capped at NNCC_FUZZ_MAX_AS_MB
 * (default 4096) so a runaway allocation fails instead of swapping.
 *
 * Deterministic: the seed is fixed (NNCC_FUZZ_SEED overrides) and printed;
 * every phase prints its timing. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "passes/passes.h"
#include "testutil.h"

/* ------------------------------------------------------------ settings */

static uint64_t g_seed = 0x6e6e6363f022ULL;  /* fixed; NNCC_FUZZ_SEED overrides */
static long g_iters = 3000, g_cli_iters = 150;
static unsigned g_iter_timeout = 30;
static const int CLI_TIMEOUT = 20;
/* Peak RSS any one nncc run may reach. The biggest legitimate runs are
 * those at the 1,000,000-node expansion limit (about 1.5 GB when the
 * nodes come from inlining). */
static long g_max_rss_mb = 2048;

static long env_long(const char *name, long def) {
  const char *s = getenv(name);
  if (!s || !*s) return def;
  char *end;
  long v = strtol(s, &end, 0);
  return *end ? def : v;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* ------------------------------------------------------------- random */

typedef struct Rng {
  uint64_t s;
} Rng;

static uint64_t rng_next(Rng *r) { /* splitmix64 */
  uint64_t z = (r->s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

static size_t rng_below(Rng *r, size_t n) { return n ? (size_t)(rng_next(r) % n) : 0; }
static bool rng_chance(Rng *r, int percent) { return (int)rng_below(r, 100) < percent; }

/* ------------------------------------------------------------- buffer */

/* Growable byte buffer, always NUL-terminated past n. */
typedef struct Buf {
  char *p;
  size_t n, cap;
} Buf;

#define BUF_MAX ((size_t)256 << 10) /* mutated inputs stay below 256 KB */

static void buf_reserve(Buf *b, size_t n) {
  if (n + 1 <= b->cap) return;
  size_t cap = b->cap ? b->cap : 256;
  while (cap < n + 1) cap *= 2;
  b->p = realloc(b->p, cap);
  ck_assert(b->p != NULL);
  b->cap = cap;
}

static void buf_set(Buf *b, const char *s, size_t n) {
  buf_reserve(b, n);
  memcpy(b->p, s, n);
  b->n = n;
  b->p[n] = 0;
}

static void buf_insert(Buf *b, size_t at, const char *s, size_t n) {
  if (at > b->n) at = b->n;
  buf_reserve(b, b->n + n);
  memmove(b->p + at + n, b->p + at, b->n - at);
  memcpy(b->p + at, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void buf_erase(Buf *b, size_t at, size_t n) {
  if (at >= b->n) return;
  if (n > b->n - at) n = b->n - at;
  memmove(b->p + at, b->p + at + n, b->n - at - n);
  b->n -= n;
  b->p[b->n] = 0;
}

static void buf_puts(Buf *b, const char *s) { buf_insert(b, b->n, s, strlen(s)); }

static void buf_printf(Buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void buf_printf(Buf *b, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int k = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  buf_reserve(b, b->n + (size_t)k);
  vsnprintf(b->p + b->n, (size_t)k + 1, fmt, ap2);
  va_end(ap2);
  b->n += (size_t)k;
}

static void buf_repeat(Buf *b, const char *s, long times) {
  size_t k = strlen(s);
  buf_reserve(b, b->n + k * (size_t)times);
  for (long i = 0; i < times; i++) {
    memcpy(b->p + b->n, s, k);
    b->n += k;
  }
  b->p[b->n] = 0;
}

static void buf_free(Buf *b) {
  free(b->p);
  b->p = NULL;
  b->n = b->cap = 0;
}

static void write_file(const char *path, const char *p, size_t n) {
  FILE *f = fopen(path, "wb");
  if (f) fwrite(p, 1, n, f), fclose(f);
}

/* ------------------------------------------------------------- corpus */

typedef struct Seed {
  char *name;
  char *text;
  size_t len;
} Seed;

static Seed g_seeds[64];
static int g_n_seeds;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every *.nn of dir, sorted (determinism does not depend on readdir). */
static void load_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  char *names[64];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 64) {
    size_t k = strlen(e->d_name);
    if (k > 3 && !strcmp(e->d_name + k - 3, ".nn")) names[n++] = strdup(e->d_name);
  }
  closedir(d);
  qsort(names, (size_t)n, sizeof names[0], cmp_str);
  for (int i = 0; i < n; i++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    size_t len;
    char *text = tu_read_file(path, &len);
    if (text && g_n_seeds < 64) g_seeds[g_n_seeds++] = (Seed){strdup(path), text, len};
    else free(text);
    free(names[i]);
  }
}

static void load_corpus(void) {
  if (g_n_seeds) return;
  load_dir(NNCC_SOURCE_DIR "/examples");
  int n_examples = g_n_seeds;
  load_dir(NNCC_SOURCE_DIR "/tests/cli/fuzz");
  ck_assert_msg(n_examples >= 1, "no examples/*.nn under %s", NNCC_SOURCE_DIR);
}

/* ---------------------------------------------------------- dictionary */

static const char *const punct[] = {
    "(", ")", "[", "]", "{", "}", ",", ";", ":", ".", "..", "...", "=", "+", "-", "*", "**",
    "/", "//", "%", "@", "<", "<=", ">", ">=", "==", "!=", "\n", "#", "\"", "\\", "\t", "\r",
    "!", "$", "?", "`", "'", "&", "|", "^", "~", " ", "\n\n", "((", "))", "[[", "]]", "{{", "}}",
};

static const char *const keywords[] = {
    "const", "def", "model", "train", "input", "param", "state", "output", "loss",
    "for", "in", "return", "true", "false", "f32", "i32", "bool",
};

static const char *const names[] = {
    /* builtins */
    "exp", "log", "sqrt", "rsqrt", "abs", "neg", "square", "relu", "sigmoid", "tanh", "gelu",
    "softplus", "sin", "cos", "stop_gradient", "leaky_relu", "maximum", "minimum", "where",
    "clamp", "sum", "mean", "max", "min", "logsumexp", "argmax", "softmax", "log_softmax",
    "reshape", "transpose", "flatten", "concat", "stack", "one_hot", "gather", "zeros", "ones",
    "conv2d", "max_pool2d", "avg_pool2d", "batch_norm", "layer_norm", "dropout", "mse", "huber",
    "cross_entropy", "binary_cross_entropy", "nll",
    /* prelude */
    "identity", "dense", "conv", "batchnorm", "layernorm", "weightnorm_dense", "embedding",
    "rnn_cell", "lstm_cell", "gru_cell",
    /* initializers */
    "constant", "uniform", "normal", "xavier_uniform", "xavier_normal", "he_uniform",
    "he_normal",
    /* train blocks */
    "data", "eval", "optimizer", "schedule", "epochs", "shuffle", "seed", "metrics",
    "accuracy", "idx", "csv", "npy", "text", "sine", "spiral", "xor", "sgd", "adagrad",
    "rmsprop", "adam", "adamw", "step", "cosine", "lr", "momentum", "nesterov",
    "weight_decay", "beta1", "beta2", "eps", "alpha", "warmup", "gamma", "every", "n",
    "classes", "lo", "hi", "scale", "path",
    /* keyword arguments and common names */
    "axis", "keepdims", "slope", "shape", "perm", "stride", "pad", "k", "p", "delta", "act",
    "units", "filters", "x", "y", "h", "w", "b", "t", "B", "T", "H", "_", "pi", "self",
};

static const char *const numbers[] = {
    "0", "1", "-1", "2", "3", "7", "64", "0.0", ".5", "5.", "5e-3", "1e3", "-0", "1.0e-3",
    "255", "256", "257", "65536", "2147483647", "2147483648", "4294967296", "1000000",
    "1000000000", "4611686018427387904", "9223372036854775807", "9223372036854775808",
    "-9223372036854775808", "18446744073709551616", "99999999999999999999999999999999999999",
    "1e308", "1e309", "-1e309", "1e-400", "4.9e-324", "0x10", "1_000", "1e", "1e+", "1.2.3",
    "0..1000000", "0..1000000000", "2 ** 62", "2 ** 40", "10 ** 18", "2 ** 63", "(-2) ** 63",
    "2 ** -1", "0 ** -1", "1 / 0", "1 // 0", "1 % 0", "0.0 / 0.0", "-2 ** 0.5", "7 // -2",
    "-9223372036854775807 - 1", "9223372036854775807 + 1", "2147483648 * 2147483648",
};

/* Whole statements that reach the odd corners of elaboration and shape
 * inference; inserted at line starts. */
static const char *const lines[] = {
    "h = x[5:2]\n", "h = x[:, 100]\n", "h = x[-1000]\n", "h = x[0:2:0]\n", "h = x[::-1]\n",
    "h = x[:, :, :, :, :, :, :, :, :]\n", "h = x[x]\n", "h = x[1.5]\n", "h = x[..., 0]\n",
    "h = reshape(x, [1, 1, 1, 1, 1, 1, 1, 1, 1])\n", "h = reshape(x, [0])\n",
    "h = reshape(x, [-1])\n", "h = reshape(x, [-1, -1])\n", "h = reshape(x, [])\n",
    "h = zeros(f32[1, 1, 1, 1, 1, 1, 1, 1, 1])\n", "h = zeros(f32[0])\n", "h = zeros(f32[])\n",
    "input z: f32[1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n", "input z: f32[4611686018427387904]\n",
    "input z: f32[2 ** 40, 2 ** 40]\n", "input z: f32[65536, 65536]\n", "input z: f32[-1]\n",
    "input z: f32[0]\n", "input z: f32[64.0]\n", "input z: bool[3]\n", "input z: i32[]\n",
    "param z: f32[4611686018427387904] = zeros()\n", "param z: f32[3] = uniform(1, 0)\n",
    "param z: f32[3] = normal(0, -1)\n", "param z: f32[3] = constant()\n",
    "param z: f32[] = he_uniform()\n", "param z: i32[3] = zeros()\n",
    "state z: f32[3] = xavier_normal()\n", "h = transpose(x, [0, 0])\n",
    "h = transpose(x, [])\n", "h = transpose(x, [5, -7])\n", "h = sum(x, axis = 99)\n",
    "h = sum(x, axis = [0, 0])\n", "h = sum(x, axis = [])\n", "h = mean(x, axis = -99)\n",
    "h = softmax(x, axis = 5)\n", "h = argmax(x, axis = -100)\n", "h = x @ x\n",
    "h = x @ 1\n", "h = 1 @ x\n", "h = x ** x\n", "h = x ** 0.5\n", "h = x ** -1\n",
    "h = conv2d(x, x, stride = 0)\n", "h = conv2d(x, x, pad = -1)\n",
    "h = conv2d(zeros(f32[1, 1, 2, 2]), zeros(f32[1, 1, 9, 9]))\n", "h = max_pool2d(x, 0)\n",
    "h = max_pool2d(x, [1, 2, 3])\n", "h = avg_pool2d(zeros(f32[1, 1, 2, 2]), 5)\n",
    "h = one_hot(y, 0)\n", "h = one_hot(y, -5)\n", "h = one_hot(y, 4611686018427387904)\n",
    "h = one_hot(x, 3)\n", "h = concat([], axis = 0)\n", "h = concat([x, y], axis = 9)\n",
    "h = stack([x], axis = -9)\n", "h = stack([], axis = 0)\n", "h = gather(x, x)\n",
    "h = gather(zeros(f32[3]), y)\n", "h = dense(x, 0)\n", "h = dense(x, -1)\n",
    "h = dense(x, 4611686018427387904)\n", "h = dense(x, 65536)\n", "h = conv(x, 3, 100)\n",
    "h = conv(x, 0, 0)\n", "h = batchnorm(x)\n", "h = layernorm(x)\n", "h = embedding(y, 0, 0)\n",
    "h = lstm_cell(x, x, x, 0)\n", "h, c = lstm_cell(x, x, x, 4)\n", "h, c = gru_cell(x, x, 4)\n",
    "h, c, d = x\n", "h = clamp(x, 1, 0)\n", "h = dropout(x, 1.0)\n", "h = dropout(x, -1)\n",
    "h = leaky_relu(x, slope = 1e308)\n", "h = where(x, x, x)\n", "h = where(x > 0, 1, 2)\n",
    "h = x < y\n", "h = sum(x < y)\n", "h = mean(x == x)\n", "h = x + true\n",
    "h = relu\n", "h = relu(relu)\n", "h = h(h)\n", "h = x(1)\n", "h = dense\n",
    "h = \"str\" + x\n", "h = f32[3]\n", "h = [x, x]\n", "h = [[1, 2], [3]]\n",
    "h = mse(x, x)\n", "h = huber(x, x, delta = -1)\n", "h = cross_entropy(x, x)\n",
    "h = nll(y, y)\n", "h = binary_cross_entropy(x, y)\n", "loss x\n", "loss sum(x)\n",
    "loss 1\n", "loss\n", "output\n", "output x, x, x\n", "output 1\n",
    "for t in 0..1000000000 { h = h + 1 }\n", "for t in 5..0 { h = h + 1 }\n",
    "for t in 0..x { h = h + 1 }\n", "for t in 0..2.5 { h = h + 1 }\n",
    "for t in 0..1000 { for u in 0..1000 { for v in 0..1000 { h = h + 1 } } }\n",
    "for x in 0..3 { input q: f32[3] }\n", "return x\n", "def f(x) { return x }\n",
    "def f(x) { return f(x) }\n", "def g(x) { return g2(x) }\ndef g2(x) { return g(x) }\n",
    "model m2 { }\n", "train m2 { }\n", "const Q = Q\n", "const Q = 1, Q = 2\n",
    "const B = 0\n", "const B = 4611686018427387904\n", "const B = -1\n", "const B = 1.5\n",
    "x = 1\n", "input x: f32[3]\n", "param x: f32[3] = zeros()\n", "data = sine()\n",
    "optimizer = sgd()\n", "optimizer = adam(lr = -1)\n", "optimizer = adam(beta1 = 1)\n",
    "epochs = 0\n", "epochs = 4611686018427387904\n", "data = csv(\"/dev/null\", x = [5:1])\n",
    "data = idx(x = \"/\", y = \"\")\n", "data = text(\"\\\\\\n\")\n", "seed = -1\n",
    "metrics = [accuracy, accuracy, loss]\n", "schedule = step(0)\n", "schedule = cosine(-1)\n",
    "shuffle = 3\n", "eval = spiral(n = 0, classes = 0)\n", "data = sine(n = 1e300)\n",
    "h = reshape(x, [4, 4611686018427387904])\n", "h = x[::9223372036854775807]\n",
    "h = x[-9223372036854775807 - 1:]\n", "h = conv2d(x, x, pad = 4611686018427387904)\n",
    "h = max_pool2d(x, 2, stride = 9223372036854775807)\n", "h = one_hot(y, 2147483648)\n",
    "for t in -9223372036854775807 - 1..9223372036854775807 { h = h + 1 }\n",
};

/* ----------------------------------------------------------- mutation */

typedef struct Span {
  size_t at, len;
} Span;

/* Rough tokens of b (words, numbers, strings, comments, single bytes),
 * enough to swap or replace whole tokens. At most max spans. */
static int tokenize(const Buf *b, Span *out, int max) {
  int n = 0;
  size_t i = 0;
  while (i < b->n && n < max) {
    unsigned char c = (unsigned char)b->p[i];
    if (c == ' ' || c == '\t') {
      i++;
      continue;
    }
    size_t j = i + 1;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
        c == '.') {
      while (j < b->n) {
        unsigned char d = (unsigned char)b->p[j];
        if (!((d >= 'a' && d <= 'z') || (d >= 'A' && d <= 'Z') || (d >= '0' && d <= '9') ||
              d == '_' || d == '.'))
          break;
        j++;
      }
    } else if (c == '"') {
      while (j < b->n && b->p[j] != '"' && b->p[j] != '\n') j++;
      if (j < b->n && b->p[j] == '"') j++;
    } else if (c == '#') {
      while (j < b->n && b->p[j] != '\n') j++;
    }
    out[n++] = (Span){i, j - i};
    i = j;
  }
  return n;
}

static const char *pick(Rng *r, const char *const *list, size_t n) { return list[rng_below(r, n)]; }
#define PICK(r, arr) pick((r), (arr), sizeof(arr) / sizeof((arr)[0]))
#define PICK_INT(r, arr) ((arr)[rng_below((r), sizeof(arr) / sizeof((arr)[0]))])

static const char *random_word(Rng *r) {
  switch (rng_below(r, 4)) {
  case 0: return PICK(r, punct);
  case 1: return PICK(r, keywords);
  case 2: return PICK(r, names);
  default: return PICK(r, numbers);
  }
}

/* A random offset, biased towards line starts half the time. */
static size_t random_pos(Rng *r, const Buf *b, bool line_start) {
  size_t at = rng_below(r, b->n + 1);
  if (line_start) {
    while (at > 0 && b->p[at - 1] != '\n') at--;
  }
  return at;
}

enum {
  M_TRUNCATE, M_DUP_RANGE, M_SWAP_TOKENS, M_SWAP_RANGES, M_DELETE, M_INSERT_PUNCT,
  M_INSERT_KEYWORD, M_INSERT_NUMBER, M_INSERT_NAME, M_REPLACE_TOKEN, M_FLIP_BYTES,
  M_RANDOM_BYTES, M_INSERT_LINE, M_SPLICE, M_DELETE_TOKEN, M_DUP_LINE, M_REPLACE_NUMBER,
  M_REPLACE_NAME, M_COUNT
};

static const char *const mutation_names[M_COUNT] = {
    "truncate", "dup-range", "swap-tokens", "swap-ranges", "delete", "insert-punct",
    "insert-keyword", "insert-number", "insert-name", "replace-token", "flip-bytes",
    "random-bytes", "insert-line", "splice", "delete-token", "dup-line", "replace-number",
    "replace-name",
};

/* Mild mutations keep the program mostly well-formed, so that inputs
 * get past the parser into elaboration; they are drawn more often. */
static const int mild[] = {M_REPLACE_NUMBER, M_REPLACE_NAME, M_INSERT_LINE, M_DUP_LINE,
                           M_SWAP_TOKENS, M_DELETE_TOKEN, M_REPLACE_TOKEN};

static void mutate_once(Rng *r, Buf *b, int kind) {
  Span toks[4096];
  switch (kind) {
  case M_TRUNCATE:
    if (b->n) b->n = rng_below(r, b->n), b->p[b->n] = 0;
    break;
  case M_DUP_RANGE: {
    size_t at = rng_below(r, b->n + 1), len = rng_below(r, (b->n - at) + 1);
    if (rng_chance(r, 50) && len > 200) len = rng_below(r, 200) + 1;
    char *copy = malloc(len + 1);
    memcpy(copy, b->p + at, len);
    size_t times = rng_chance(r, 10) ? 1 + rng_below(r, 20) : 1;
    for (size_t k = 0; k < times && b->n + len < BUF_MAX; k++)
      buf_insert(b, rng_chance(r, 50) ? at : rng_below(r, b->n + 1), copy, len);
    free(copy);
    break;
  }
  case M_SWAP_TOKENS:
  case M_SWAP_RANGES: {
    Span s1, s2;
    if (kind == M_SWAP_TOKENS) {
      int n = tokenize(b, toks, 4096);
      if (n < 2) return;
      s1 = toks[rng_below(r, (size_t)n)];
      s2 = toks[rng_below(r, (size_t)n)];
    } else {
      if (b->n < 2) return;
      s1.at = rng_below(r, b->n);
      s1.len = 1 + rng_below(r, b->n - s1.at < 64 ? b->n - s1.at : 64);
      s2.at = rng_below(r, b->n);
      s2.len = 1 + rng_below(r, b->n - s2.at < 64 ? b->n - s2.at : 64);
    }
    if (s1.at > s2.at) {
      Span t = s1;
      s1 = s2;
      s2 = t;
    }
    if (s1.at + s1.len > s2.at) return; /* overlapping */
    Buf o = {0};
    buf_set(&o, b->p, s1.at);
    buf_insert(&o, o.n, b->p + s2.at, s2.len);
    buf_insert(&o, o.n, b->p + s1.at + s1.len, s2.at - s1.at - s1.len);
    buf_insert(&o, o.n, b->p + s1.at, s1.len);
    buf_insert(&o, o.n, b->p + s2.at + s2.len, b->n - s2.at - s2.len);
    buf_free(b);
    *b = o;
    break;
  }
  case M_DELETE: {
    size_t at = rng_below(r, b->n + 1);
    size_t len = rng_chance(r, 70) ? 1 + rng_below(r, 16) : rng_below(r, b->n - at + 1);
    buf_erase(b, at, len);
    break;
  }
  case M_INSERT_PUNCT:
  case M_INSERT_KEYWORD:
  case M_INSERT_NUMBER:
  case M_INSERT_NAME: {
    const char *w = kind == M_INSERT_PUNCT     ? PICK(r, punct)
                    : kind == M_INSERT_KEYWORD ? PICK(r, keywords)
                    : kind == M_INSERT_NUMBER  ? PICK(r, numbers)
                                               : PICK(r, names);
    size_t times = rng_chance(r, 5) ? 1 + rng_below(r, 300) : 1; /* deep nesting too */
    size_t at = rng_below(r, b->n + 1);
    for (size_t k = 0; k < times; k++) {
      if (kind != M_INSERT_PUNCT && rng_chance(r, 70)) buf_insert(b, at, " ", 1);
      buf_insert(b, at, w, strlen(w));
      if (kind != M_INSERT_PUNCT && rng_chance(r, 70)) buf_insert(b, at, " ", 1);
    }
    break;
  }
  case M_REPLACE_TOKEN: {
    int n = tokenize(b, toks, 4096);
    if (!n) return;
    Span s = toks[rng_below(r, (size_t)n)];
    const char *w = random_word(r);
    buf_erase(b, s.at, s.len);
    buf_insert(b, s.at, w, strlen(w));
    break;
  }
  case M_FLIP_BYTES: {
    size_t k = 1 + rng_below(r, 8);
    for (size_t i = 0; i < k && b->n; i++) {
      size_t at = rng_below(r, b->n);
      if (rng_chance(r, 50)) b->p[at] ^= (char)(1u << rng_below(r, 8));
      else b->p[at] = (char)rng_below(r, 256);
    }
    break;
  }
  case M_RANDOM_BYTES: {
    size_t k = 1 + rng_below(r, 32);
    char tmp[32];
    for (size_t i = 0; i < k; i++) tmp[i] = (char)rng_below(r, 256);
    buf_insert(b, rng_below(r, b->n + 1), tmp, k);
    break;
  }
  case M_INSERT_LINE: {
    const char *w = PICK(r, lines);
    buf_insert(b, random_pos(r, b, true), w, strlen(w));
    break;
  }
  case M_SPLICE: {
    const Seed *s = &g_seeds[rng_below(r, (size_t)g_n_seeds)];
    size_t at = rng_below(r, s->len + 1), len = rng_below(r, s->len - at + 1);
    buf_insert(b, random_pos(r, b, rng_chance(r, 50)), s->text + at, len);
    break;
  }
  case M_DELETE_TOKEN: {
    int n = tokenize(b, toks, 4096);
    if (!n) return;
    Span s = toks[rng_below(r, (size_t)n)];
    buf_erase(b, s.at, s.len);
    break;
  }
  case M_REPLACE_NUMBER:
  case M_REPLACE_NAME: {
    int n = tokenize(b, toks, 4096), cand[4096], k = 0;
    for (int i = 0; i < n; i++) {
      unsigned char c = (unsigned char)b->p[toks[i].at];
      bool digit = (c >= '0' && c <= '9') || (c == '.' && toks[i].len > 1);
      bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
      if (kind == M_REPLACE_NUMBER ? digit : alpha) cand[k++] = i;
    }
    if (!k) return;
    Span s = toks[cand[rng_below(r, (size_t)k)]];
    char word[128];
    if (kind == M_REPLACE_NUMBER) {
      snprintf(word, sizeof word, "%s", PICK(r, numbers));
    } else if (rng_chance(r, 50)) { /* another name of the same text */
      Span o = toks[cand[rng_below(r, (size_t)k)]];
      snprintf(word, sizeof word, "%.*s", (int)(o.len < 100 ? o.len : 100), b->p + o.at);
    } else {
      snprintf(word, sizeof word, "%s", rng_chance(r, 80) ? PICK(r, names) : PICK(r, keywords));
    }
    buf_erase(b, s.at, s.len);
    buf_insert(b, s.at, word, strlen(word));
    break;
  }
  case M_DUP_LINE: {
    size_t at = random_pos(r, b, true), end = at;
    while (end < b->n && b->p[end] != '\n') end++;
    if (end < b->n) end++;
    size_t len = end - at;
    char *copy = malloc(len + 1);
    memcpy(copy, b->p + at, len);
    size_t times = rng_chance(r, 10) ? 1 + rng_below(r, 50) : 1;
    for (size_t k = 0; k < times && b->n + len < BUF_MAX; k++) buf_insert(b, at, copy, len);
    free(copy);
    break;
  }
  }
  if (b->n > BUF_MAX) b->n = BUF_MAX, b->p[b->n] = 0;
}

/* Makes fuzz input number `iter` into b; `what` (>= 64 bytes) gets a
 * short description: the seed and the mutations applied. */
static void make_input(Rng *r, Buf *b, char *what, size_t what_size) {
  b->n = 0;
  buf_reserve(b, 0);
  b->p[0] = 0;
  int choice = (int)rng_below(r, 100);
  if (choice < 3) { /* random bytes */
    size_t n = rng_below(r, 4096);
    buf_reserve(b, n);
    for (size_t i = 0; i < n; i++) b->p[i] = (char)rng_below(r, 256);
    b->n = n;
    b->p[n] = 0;
    snprintf(what, what_size, "%zu random bytes", n);
    return;
  }
  if (choice < 6) { /* random printable ASCII and newlines */
    size_t n = rng_below(r, 4096);
    buf_reserve(b, n);
    for (size_t i = 0; i < n; i++)
      b->p[i] = rng_chance(r, 5) ? '\n' : (char)(32 + rng_below(r, 95));
    b->n = n;
    b->p[n] = 0;
    snprintf(what, what_size, "%zu random ASCII bytes", n);
    return;
  }
  if (choice < 12) { /* token soup */
    size_t n = rng_below(r, 400);
    for (size_t i = 0; i < n; i++) {
      buf_puts(b, random_word(r));
      buf_puts(b, rng_chance(r, 10) ? "\n" : " ");
    }
    snprintf(what, what_size, "soup of %zu random tokens", n);
    return;
  }
  const Seed *s = &g_seeds[rng_below(r, (size_t)g_n_seeds)];
  buf_set(b, s->text, s->len);
  const char *base = strrchr(s->name, '/');
  int k = snprintf(what, what_size, "%s +", base ? base + 1 : s->name);
  int c = (int)rng_below(r, 100);
  int n = c < 50 ? 1 : c < 80 ? 2 : 3 + (int)rng_below(r, 10);
  for (int i = 0; i < n; i++) {
    int m = rng_chance(r, 60) ? PICK_INT(r, mild) : (int)rng_below(r, M_COUNT);
    mutate_once(r, b, m);
    if (k > 0 && (size_t)k < what_size)
      k += snprintf(what + k, what_size - (size_t)k, " %s", mutation_names[m]);
  }
}

/* ------------------------------------------------ crash/hang reporting */

/* The in-process input being compiled, so that a crash, an abort (an
 * NNCC_ASSERT, or nncc_raise without a recovery point), exit() or a hang
 * can save it. */
static const char *volatile g_cur;
static volatile size_t g_cur_len;
static volatile sig_atomic_t g_in_iter;
static char g_cur_path[256];

static void save_current(const char *why) {
  if (!g_in_iter || !g_cur) return;
  g_in_iter = 0;
  int fd = open(g_cur_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd >= 0) {
    size_t off = 0;
    while (off < g_cur_len) {
      ssize_t k = write(fd, g_cur + off, g_cur_len - off);
      if (k <= 0) break;
      off += (size_t)k;
    }
    close(fd);
  }
  static const char pre[] = "\nnncc fuzz: ";
  (void)!write(2, pre, sizeof pre - 1);
  (void)!write(2, why, strlen(why));
  static const char mid[] = " while compiling the input saved to ";
  (void)!write(2, mid, sizeof mid - 1);
  (void)!write(2, g_cur_path, strlen(g_cur_path));
  (void)!write(2, "\n", 1);
}

static void on_signal(int sig) {
  save_current(sig == SIGALRM ? "hang (alarm: NNCC_FUZZ_TIMEOUT s for one input)"
               : sig == SIGABRT ? "abort (SIGABRT)"
               : sig == SIGSEGV ? "crash (SIGSEGV)"
               : sig == SIGBUS  ? "crash (SIGBUS)"
               : sig == SIGFPE  ? "crash (SIGFPE)"
                                : "crash (signal)");
  signal(sig == SIGALRM ? SIGABRT : sig, SIG_DFL);
  raise(sig == SIGALRM ? SIGABRT : sig);
}

static void on_exit_hook(void) { save_current("exit()"); }

static void on_sanitizer_death(void) { save_current("sanitizer report"); }

/* Present only in a sanitizer build. */
extern void __sanitizer_set_death_callback(void (*)(void)) __attribute__((weak));

static void install_handlers(void) {
  static const int sigs[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGABRT, SIGALRM};
  for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
    /* keep a sanitizer's own SEGV handler: it reports, then calls back */
    if (sigs[i] != SIGALRM && sigs[i] != SIGABRT && __sanitizer_set_death_callback) continue;
    signal(sigs[i], on_signal);
  }
  if (__sanitizer_set_death_callback) __sanitizer_set_death_callback(on_sanitizer_death);
  atexit(on_exit_hook);
}

/* --------------------------------------------------- in-process layer */

typedef struct Stats {
  long compiled_clean, frontend_errors, roundtrips, ir_mutants;
  double slowest;
  long slowest_iter;
} Stats;

/* Runs the whole in-process pipeline on src; returns NULL when all is
 * well, else a malloc'ed description of the problem. */
static char *inproc_one(Rng *r, const char *src, size_t len, FILE *devnull, Stats *st) {
  char *problem = NULL;
  Arena a = {0};
  char *dbuf = NULL;
  size_t dsize = 0;
  FILE *dout = open_memstream(&dbuf, &dsize);
  Diag d;
  diag_init(&d, "fuzz.nn", src, len, dout);
  ElabOptions opt = {0};
  opt.base_dir = NNCC_SOURCE_DIR "/examples";
  opt.max_nodes = 1000000;
  Program *prog = NULL;
  Module *m = frontend_compile(&a, &d, &opt, &prog);
  if (d.n_errors) {
    st->frontend_errors++;
    goto done;
  }
  if (!m) {
    problem = strdup("frontend_compile returned NULL without an error");
    goto done;
  }
  ast_print_program(devnull, prog);
  PassOptions po = {0};
  po.out = devnull;
  po.verify_each = true; /* a graph that breaks after a pass fails the pipeline here */
  /* a model near the expansion limit gets what `nncc check` runs: the
   * whole pipeline (lowering, autodiff) on 10^6 nodes takes tens of
   * seconds, which is not what this test measures */
  long frontend_nodes = 0;
  for (int i = 0; i < m->n_graphs; i++) frontend_nodes += m->graphs[i]->n_nodes;
  if (frontend_nodes > 200000) po.stop_after = "reach";
  if (!pass_run_pipeline(m, &d, &po)) {
    fflush(dout);
    if (asprintf(&problem, "the pass pipeline failed on a program the frontend accepted:\n%s",
                 dbuf ? dbuf : "") < 0)
      problem = NULL;
    goto done;
  }
  for (int i = 0; i < m->n_graphs; i++) {
    char *vbuf = NULL;
    size_t vsize = 0;
    FILE *vout = open_memstream(&vbuf, &vsize);
    int bad = ir_verify(m->graphs[i], vout);
    fclose(vout);
    if (bad) {
      if (asprintf(&problem, "ir_verify found %d problem(s) in model '%s':\n%s", bad,
                   m->graphs[i]->name, vbuf) < 0)
        problem = NULL;
      free(vbuf);
      goto done;
    }
    free(vbuf);
  }
  st->compiled_clean++;

  /* print -> read -> verify must round-trip; not for modules near the
   * reader's limit of 1,000,000 nodes in all (a lowered and
   * differentiated model near the expansion limit is well past it) */
  long total_nodes = 0;
  for (int i = 0; i < m->n_graphs; i++) total_nodes += m->graphs[i]->n_nodes;
  if (total_nodes > 200000) goto done;
  char *ir = NULL;
  size_t ir_len = 0;
  FILE *irf = open_memstream(&ir, &ir_len);
  ir_print_module(irf, m);
  fclose(irf);
  {
    Arena a2 = {0};
    char *rbuf = NULL;
    size_t rsize = 0;
    FILE *rout = open_memstream(&rbuf, &rsize);
    Diag d2;
    diag_init(&d2, "fuzz.ir", ir, ir_len, rout);
    Module *m2 = ir_read(&a2, &d2);
    fflush(rout);
    if (!m2 || d2.n_errors) {
      if (asprintf(&problem, "ir_read rejects what ir_print_module printed:\n%s", rbuf) < 0)
        problem = NULL;
    } else {
      for (int i = 0; i < m2->n_graphs && !problem; i++) {
        char *vbuf = NULL;
        size_t vsize = 0;
        FILE *vout = open_memstream(&vbuf, &vsize);
        int bad = ir_verify(m2->graphs[i], vout);
        fclose(vout);
        if (bad && asprintf(&problem, "ir_verify: %d problem(s) after the IR round trip:\n%s",
                            bad, vbuf) < 0)
          problem = NULL;
        free(vbuf);
      }
      if (!problem) st->roundtrips++;
    }
    fclose(rout);
    free(rbuf);
    arena_free(&a2);
  }
  /* ir_read of a mutated print: any diagnostics, but no crash, and what
   * reads cleanly verifies (but for a roleless var, see ir/read.c) */
  if (!problem) {
    Buf b = {0};
    buf_set(&b, ir, ir_len);
    int n = 1 + (int)rng_below(r, 3);
    for (int i = 0; i < n; i++) {
      int kind = (int)rng_below(r, M_COUNT);
      if (kind == M_INSERT_LINE || kind == M_SPLICE) kind = M_REPLACE_TOKEN;
      mutate_once(r, &b, kind);
    }
    /* a crash now is ir_read's: the IR text goes next to the input */
    char ir_path[300];
    snprintf(ir_path, sizeof ir_path, "%s.ir", g_cur_path);
    write_file(ir_path, b.p, b.n);
    Arena a3 = {0};
    Diag d3;
    diag_init(&d3, "fuzz.ir", b.p, b.n, devnull);
    Module *m3 = ir_read(&a3, &d3);
    if (m3 && !d3.n_errors) {
      for (int i = 0; i < m3->n_graphs && !problem; i++) {
        char *vbuf = NULL;
        size_t vsize = 0;
        FILE *vout = open_memstream(&vbuf, &vsize);
        int bad = ir_verify(m3->graphs[i], vout);
        fclose(vout);
        if (bad && !strstr(vbuf, "exactly one of the input, param and state roles") &&
            asprintf(&problem,
                     "ir_read accepted mutated IR text that does not verify:\n%s"
                     "(the IR text is in %s)",
                     vbuf, ir_path) < 0)
          problem = NULL;
        free(vbuf);
      }
    }
    st->ir_mutants++;
    arena_free(&a3);
    if (!problem) unlink(ir_path);
    buf_free(&b);
  }
  free(ir);
done:
  fclose(dout);
  free(dbuf);
  arena_free(&a);
  return problem;
}

/* inproc_one with the input first written to g_cur_path, where it stays
 * unless all went well: a sanitizer report ends the process without a
 * hook we could use (UBSan's) and must still leave the input behind.
 * A hang ends in SIGALRM after NNCC_FUZZ_TIMEOUT s. */
static char *inproc_guarded(Rng *r, const Buf *b, FILE *devnull, Stats *st) {
  write_file(g_cur_path, b->p, b->n);
  g_cur = b->p;
  g_cur_len = b->n;
  g_in_iter = 1;
  alarm(g_iter_timeout);
  char *problem = inproc_one(r, b->p, b->n, devnull, st);
  alarm(0);
  g_in_iter = 0;
  g_cur = NULL;
  if (!problem) unlink(g_cur_path);
  return problem;
}

/* Every integer or number argument of the language at the edges of
 * int64 and beyond (int64 overflow in shape arithmetic is undefined
 * behaviour: the UBSan build reports it), one statement at a time. */
static const char *const extreme_templates[] = {
    "h = reshape(x, [4, @])", "h = reshape(x, [@, -1])", "h = reshape(x, [-1, @])",
    "h = reshape(img, [@, @, @, @])", "h = conv2d(img, w, stride = @)", "h = conv2d(img, w, pad = @)",
    "h = conv2d(img, w, stride = [1, @], pad = [@, 0])", "h = max_pool2d(img, @)",
    "h = max_pool2d(img, 2, stride = @)", "h = avg_pool2d(img, [@, 1])", "h = one_hot(y, @)",
    "h = x[0:@]", "h = x[@:]", "h = x[@]", "h = x[::@]", "h = x[-3:@:@]", "h = x[:, @:@]",
    "h = x[@::-1]", "h = x[:@:-1]", "h = transpose(x, [@, 0])", "h = sum(x, axis = @)",
    "h = mean(x, axis = [0, @])", "h = argmax(x, axis = @)", "h = softmax(x, axis = @)",
    "h = concat([x, x], axis = @)", "h = stack([x, x], axis = @)", "h = dense(x, @)",
    "h = embedding(y, @, 2)", "h = embedding(y, 2, @)", "h = conv(img, @, 1)", "h = conv(img, 2, @)",
    "h = lstm_cell(x, x, x, @)", "h = gru_cell(x, x, @)", "h = rnn_cell(x, x, @)",
    "h = zeros(f32[@])", "h = ones(i32[@, 2])", "h = x ** @", "h = x * @", "h = x // @",
    "h = leaky_relu(x, @)", "h = clamp(x, @, @)", "h = dropout(x, @)", "h = huber(x, x, delta = @)",
    "h = layernorm(x, eps = @)", "h = batchnorm(img, momentum = @, eps = @)", "for t in @..@ { h = x }",
    "for t in -9223372036854775807 - 1..@ { h = x }", "for t in @..9223372036854775807 { h = x }",
    "param q: f32[3] = uniform(@, @)", "param q: f32[3] = normal(@, @)",
    "param q: f32[3] = constant(@)", "param q: f32[@, 2] = zeros()", "input q: i32[@]",
    /* in a train block (a line starting with '|') */
    "|data = csv(\"d.csv\", x = 0, y = @)", "|data = csv(\"d.csv\", x = [@:@], y = 1)",
    "|data = csv(\"d.csv\", x = [0:@], y = [@:2])", "|data = sine(n = @, lo = @, hi = @)",
    "|data = spiral(n = @, classes = @)", "|data = xor(n = @)", "|data = idx(x = \"a\", y = \"b\", scale = @)",
    "|epochs = @", "|seed = @", "|shuffle = @", "|schedule = step(@, gamma = @)",
    "|schedule = cosine(warmup = @)", "|optimizer = sgd(lr = @, momentum = @, weight_decay = @)",
    "|optimizer = adam(lr = @, beta1 = @, beta2 = @, eps = @)", "|optimizer = rmsprop(alpha = @)",
    "|optimizer = adagrad(lr = @, eps = @)", "|optimizer = adamw(weight_decay = @)",
};

static const char *const extreme_values[] = {
    "4611686018427387904", "9223372036854775807", "-9223372036854775807 - 1", "2147483648",
    "-4611686018427387904", "2147483647", "0", "-1", "1e308", "-1e308", "0.5",
};

START_TEST(test_extreme_arguments) {
  install_handlers();
  FILE *devnull = fopen("/dev/null", "w");
  ck_assert(devnull != NULL);
  Rng r = {g_seed};
  Stats st = {0};
  Buf b = {0};
  double t0 = now_s();
  int n = 0;
  for (size_t ti = 0; ti < sizeof extreme_templates / sizeof extreme_templates[0]; ti++) {
    for (size_t vi = 0; vi < sizeof extreme_values / sizeof extreme_values[0]; vi++) {
      const char *t = extreme_templates[ti];
      b.n = 0;
      if (*t == '|') {
        t++;
        buf_puts(&b,
                 "const B = 4\nmodel m {\n  input x: f32[B, 1]\n  input y: f32[B, 1]\n"
                 "  loss mse(dense(x, 1), y)\n}\ntrain m {\n");
        if (strncmp(t, "data", 4)) buf_puts(&b, "  data = sine()\n");
        if (strncmp(t, "optimizer", 9)) buf_puts(&b, "  optimizer = sgd(lr = 0.1)\n");
        buf_puts(&b, "  ");
      } else {
        buf_puts(&b,
                 "model m {\n  input x: f32[4, 3]\n  input y: i32[4]\n"
                 "  input img: f32[2, 3, 8, 8]\n  param w: f32[2, 3, 3, 3] = zeros()\n  ");
      }
      for (const char *p = t; *p; p++) {
        if (*p == '@') buf_puts(&b, extreme_values[vi]);
        else buf_insert(&b, b.n, p, 1);
      }
      if (t != extreme_templates[ti]) buf_puts(&b, "\n}\n"); /* a train block */
      else buf_puts(&b, "\n  loss sum(x) + sum(img) + sum(w) + sum(h)\n}\n");
      snprintf(g_cur_path, sizeof g_cur_path, "/tmp/nncc-fuzz-fail-extreme-%zu-%zu.nn", ti, vi);
      char *problem = inproc_guarded(&r, &b, devnull, &st);
      if (problem) {
        ck_abort_msg("extreme arguments '%s': %s\ninput saved to %s", b.p, problem, g_cur_path);
      }
      n++;
    }
  }
  g_cur = NULL;
  printf("fuzz extreme arguments: %d programs in %.2f s (%ld rejected, %ld clean)\n", n,
         now_s() - t0, st.frontend_errors, st.compiled_clean);
  fflush(stdout);
  buf_free(&b);
  fclose(devnull);
}
END_TEST

START_TEST(test_fuzz_inprocess) {
  load_corpus();
  install_handlers();
  FILE *devnull = fopen("/dev/null", "w");
  ck_assert(devnull != NULL);
  Rng r = {g_seed};
  Buf b = {0};
  Stats st = {0};
  double t0 = now_s();
  char what[256];
  for (long it = 0; it < g_iters; it++) {
    make_input(&r, &b, what, sizeof what);
    snprintf(g_cur_path, sizeof g_cur_path, "/tmp/nncc-fuzz-fail-inproc-%llu-%ld.nn",
             (unsigned long long)g_seed, it);
    double t1 = now_s();
    char *problem = inproc_guarded(&r, &b, devnull, &st);
    double dt = now_s() - t1;
    if (dt > st.slowest) st.slowest = dt, st.slowest_iter = it;
    if (problem) {
      ck_abort_msg("in-process fuzz iteration %ld (seed %llu; %s): %s\ninput saved to %s", it,
                   (unsigned long long)g_seed, what, problem, g_cur_path);
    }
  }
  g_cur = NULL;
  printf("fuzz in-process: %ld inputs in %.2f s (%ld rejected by the frontend, %ld clean, "
         "%ld IR round trips, %ld mutated IR texts read); slowest %.3f s (iteration %ld)\n",
         g_iters, now_s() - t0, st.frontend_errors, st.compiled_clean, st.roundtrips,
         st.ir_mutants, st.slowest, st.slowest_iter);
  fflush(stdout);
  buf_free(&b);
  fclose(devnull);
}
END_TEST

/* ----------------------------------------------------------- CLI layer */

/* What no run of nncc may print: sanitizer reports and internal errors. */
static const char *bad_stderr(const char *err) {
  static const char *const marks[] = {"AddressSanitizer", "LeakSanitizer",
                                      "UndefinedBehaviorSanitizer", "runtime error:",
                                      "internal error", "nncc: fatal", "assertion"};
  for (size_t i = 0; i < sizeof marks / sizeof marks[0]; i++)
    if (strstr(err, marks[i])) return marks[i];
  return NULL;
}

static int count_lines_with(const char *s, const char *needle) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, needle)); p += strlen(needle)) n++;
  return n;
}

static char *save_failure(const char *text, size_t len, int n) {
  char *path = malloc(64);
  snprintf(path, 64, "/tmp/nncc-fuzz-fail-%d.nn", n);
  FILE *f = fopen(path, "wb");
  if (f) fwrite(text, 1, len, f), fclose(f);
  return path;
}

/* Why the run is wrong (a static string), or NULL when it is fine. */
static const char *judge(const TuRun *res) {
  if (res->status == 124) return "timed out (hang?)";
  if (res->status >= 128) return "killed by a signal";
  if (res->status != 0 && res->status != 1) return "exit status is neither 0 nor 1";
  const char *mark = bad_stderr(res->err);
  if (mark) {
    static char why[128];
    snprintf(why, sizeof why, "stderr says '%s' (a sanitizer report, an internal or a fatal error)",
             mark);
    return why;
  }
  if (res->status == 1 && !strstr(res->err, "error")) return "exit 1 without an error message";
  if (res->status == 0 && strstr(res->err, ": error:")) return "exit 0 after an error message";
  if (count_lines_with(res->err, ": error:") > 51) return "more than 50 errors printed";
  return NULL;
}

/* Peak RSS in MB of the children this process has waited for: each
 * Check test runs in its own process, so this is the nncc run of the test
 * (or the shell around it, which is smaller). */
static long children_peak_mb(void) {
  struct rusage ru;
  return getrusage(RUSAGE_CHILDREN, &ru) == 0 ? ru.ru_maxrss / 1024 : -1;
}

static int g_fail_count;

START_TEST(test_fuzz_cli) {
  load_corpus();
  Rng r = {g_seed ^ 0xc11c11c11ULL};
  Buf b = {0};
  char what[256];
  double t0 = now_s(), slowest = 0;
  int n_ok = 0, n_err = 0;
  for (long it = 0; it < g_cli_iters; it++) {
    make_input(&r, &b, what, sizeof what);
    char *path = tu_temp_file(b.p, b.n, ".nn");
    ck_assert(path != NULL);
    char args[512];
    snprintf(args, sizeof args, "check %s", path);
    double t1 = now_s();
    TuRun res = tu_run(args, CLI_TIMEOUT);
    double dt = now_s() - t1;
    if (dt > slowest) slowest = dt;
    unlink(path);
    free(path);
    const char *why = judge(&res);
    if (why) {
      char *saved = save_failure(b.p, b.n, g_fail_count++);
      ck_abort_msg("nncc check on fuzz input %ld (seed %llu; %s): %s (status %d)\n"
                   "input saved to %s\n--- stderr (first 2000 bytes) ---\n%.2000s",
                   it, (unsigned long long)g_seed, what, why, res.status, saved, res.err);
    }
    if (res.status == 0) n_ok++;
    else n_err++;
    tu_run_free(&res);
  }
  long mb = children_peak_mb();
  printf("fuzz CLI: %ld runs of 'nncc check' in %.2f s (%d exit 0, %d exit 1); slowest %.3f s, "
         "peak RSS %ld MB\n", g_cli_iters, now_s() - t0, n_ok, n_err, slowest, mb);
  fflush(stdout);
  ck_assert_msg(mb <= g_max_rss_mb, "an nncc run took %ld MB (NNCC_FUZZ_MAX_RSS_MB %ld)", mb,
                g_max_rss_mb);
  buf_free(&b);
}
END_TEST

/* ------------------------------------------------------ special inputs */

typedef struct Special {
  const char *name;
  void (*make)(Buf *b);
  int want;               /* the exit status it must give; -1: 0 or 1 */
  const char *must_say;   /* in stderr, or NULL */
} Special;

static void sp_line_idents(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[2]\n  y = ");
  for (int i = 0; b->n < (1 << 20); i++) buf_printf(b, "x%d ", i);
  buf_puts(b, "\n  loss sum(x)\n}\n");
}

static void sp_line_idents_top(Buf *b) {
  while (b->n < (1 << 20)) buf_puts(b, "abc ");
  buf_puts(b, "\n");
}

static void sp_line_digits(Buf *b) {
  buf_puts(b, "const N = ");
  buf_repeat(b, "1234567890", 1 << 17);
  buf_puts(b, "\n");
}

static void sp_long_ident(Buf *b) { /* a 1 MB name, valid: "no model" */
  buf_puts(b, "const ");
  buf_repeat(b, "a", 1 << 20);
  buf_puts(b, " = 1\n");
}

static void sp_long_unknown_ident(Buf *b) { /* two 512 KB names, one letter apart */
  buf_puts(b, "model m {\n  input ");
  buf_repeat(b, "a", 1 << 19);
  buf_puts(b, ": f32[2]\n  loss sum(");
  buf_repeat(b, "a", (1 << 19) - 1);
  buf_puts(b, "b)\n}\n");
}

static void model_around(Buf *b, const char *open, const char *middle, const char *close,
                         int depth) {
  buf_puts(b, "model m {\n  input x: f32[2]\n  y = ");
  buf_repeat(b, open, depth);
  buf_puts(b, middle);
  buf_repeat(b, close, depth);
  buf_puts(b, "\n  loss sum(y)\n}\n");
}

static void sp_parens(Buf *b) { model_around(b, "(", "x", ")", 10000); }
static void sp_brackets(Buf *b) { model_around(b, "[", "x", "]", 10000); }
static void sp_braces(Buf *b) { model_around(b, "{", "x", "}", 10000); }
static void sp_calls(Buf *b) { model_around(b, "relu(", "x", ")", 10000); }
static void sp_minus(Buf *b) { model_around(b, "-", "x", "", 10000); }
static void sp_pow_chain(Buf *b) { model_around(b, "x ** ", "1", "", 10000); }
static void sp_index_chain(Buf *b) { model_around(b, "", "x", "[0:2]", 10000); }
static void sp_unclosed(Buf *b) { model_around(b, "(", "x", "", 100000); }

static void sp_plus_chain(Buf *b) {
  buf_puts(b, "const K = 1");
  buf_repeat(b, " + 1", 100000);
  buf_puts(b, "\nmodel m {\n  input x: f32[2]\n  y = x");
  buf_repeat(b, " + x", 100000);
  buf_puts(b, "\n  loss sum(y)\n}\n");
}

static void sp_braces_top(Buf *b) {
  buf_repeat(b, "{", 10000);
  buf_repeat(b, "}", 10000);
}

static void sp_blocks(Buf *b) { /* nested for blocks */
  buf_puts(b, "model m {\n  input x: f32[2]\n  y = x\n");
  buf_repeat(b, "for i in 0..1 {\n", 10000);
  buf_puts(b, "y = y + 1\n");
  buf_repeat(b, "}\n", 10000);
  buf_puts(b, "  loss sum(y)\n}\n");
}

static void sp_dim_2_62(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[4611686018427387904]\n  loss sum(x)\n}\n");
}

static void sp_dim_product(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[1099511627776, 1099511627776]\n  loss sum(x)\n}\n");
}

static void sp_dim_product_expr(Buf *b) {
  buf_puts(b, "const D = 2 ** 40\nmodel m {\n  input x: f32[D, D, D, D]\n  loss sum(x)\n}\n");
}

static void sp_dim_ops(Buf *b) { /* huge shapes made by ops, not declared */
  buf_puts(b,
           "model m {\n  input x: f32[65536]\n"
           "  y = reshape(x, [65536, 1]) @ reshape(x, [1, 65536])\n"
           "  z = one_hot(zeros(i32[65536]), 65536)\n"
           "  w = dense(x, 4611686018427387904)\n"
           "  loss sum(y) + sum(z) + sum(w)\n}\n");
}

static void sp_unroll(Buf *b) {
  buf_puts(b,
           "model m {\n  input x: f32[2]\n  h = x\n"
           "  for t in 0..1000000000 { h = h + 1 }\n  loss sum(h)\n}\n");
}

static void sp_unroll_nested(Buf *b) {
  buf_puts(b,
           "model m {\n  input x: f32[2]\n  h = x\n"
           "  for i in 0..1000 {\n    for j in 0..1000 {\n      for k in 0..1000 {\n"
           "        h = h + 1\n      }\n    }\n  }\n  loss sum(h)\n}\n");
}

/* Loops whose body makes no node: nothing counts against the node limit,
 * yet 10^9 iterations must not take minutes. */
static void sp_unroll_empty(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[2]\n  for t in 0..1000000000 { }\n  loss sum(x)\n}\n");
}

static void sp_unroll_const(Buf *b) {
  buf_puts(b,
           "model m {\n  input x: f32[2]\n  for t in 0..1000000000 { c = 1 }\n"
           "  loss sum(x)\n}\n");
}

static void sp_unroll_poisoned(Buf *b) { /* x is an error: h + 1 makes no node */
  buf_puts(b,
           "model m {\n  input x: f32[4294967296]\n  h = x\n"
           "  for t in 0..1000000000 { h = h + 1 }\n  loss sum(h)\n}\n");
}

/* The unrolling bound counts iterations; a long body that makes no node
 * must not turn 10^6 iterations into 3 * 10^8 statements. */
static void sp_unroll_poisoned_body(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[4294967296]\n  h = x\n  for t in 0..1000000 {\n");
  buf_repeat(b, "    h = h + 1\n", 300);
  buf_puts(b, "  }\n  loss sum(h)\n}\n");
}

static void sp_unroll_const_body(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[2]\n  for t in 0..1000000 {\n");
  buf_repeat(b, "    c = 1\n", 300);
  buf_puts(b, "  }\n  loss sum(x)\n}\n");
}

/* examples/char_rnn.nn with T = 65536: about 983,000 nodes, just under
 * the expansion limit, so every later pass gets a graph that size. */
static void sp_rnn_near_limit(Buf *b) {
  buf_puts(b,
           "const B = 16, T = 65536, V = 256, E = 32, H = 128\n"
           "model char_rnn {\n  input x: i32[B, T]\n  input y: i32[B, T]\n"
           "  emb = embedding(x, V, E)\n  h = zeros(f32[B, H])\n  total = zeros(f32[])\n"
           "  for t in 0..T {\n    h = rnn_cell(emb[:, t, :], h, H)\n    logits = dense(h, V)\n"
           "    total = total + cross_entropy(logits, y[:, t])\n  }\n"
           "  output logits\n  loss total / T\n}\n");
}

static void sp_unroll_defs(Buf *b) { /* expansion by inlining: 4^12 calls */
  buf_puts(b, "def f0(x) { return x + 1 }\n");
  for (int i = 1; i <= 12; i++)
    buf_printf(b, "def f%d(x) { return f%d(f%d(f%d(f%d(x)))) }\n", i, i - 1, i - 1, i - 1, i - 1);
  buf_puts(b, "model m {\n  input x: f32[2]\n  loss sum(f12(x))\n}\n");
}

static void sp_many_params(Buf *b) { /* 2^17 call sites of a def with a param */
  buf_puts(b, "def p0(x) {\n  param w: f32[1] = zeros()\n  return x + w\n}\n");
  for (int i = 1; i <= 17; i++)
    buf_printf(b, "def p%d(x) {\n  a = p%d(x)\n  b = p%d(a)\n  return b\n}\n", i, i - 1, i - 1);
  buf_puts(b, "model m {\n  input x: f32[1]\n  loss sum(p17(x))\n}\n");
}

static void sp_many_names(Buf *b) { /* 100,000 distinct value names */
  buf_puts(b, "model m {\n  input x: f32[2]\n");
  for (int i = 0; i < 100000; i++) buf_printf(b, "  y%d = x\n", i);
  buf_puts(b, "  loss sum(y99999)\n}\n");
}

static void sp_many_rebinds(Buf *b) { /* 50,000 statements re-binding one name */
  buf_puts(b, "model m {\n  input x: f32[2]\n  h = x\n");
  buf_repeat(b, "  h = h * 0.5\n", 50000);
  buf_puts(b, "  loss sum(h)\n}\n");
}

static void sp_many_models(Buf *b) { /* 1 MB: memory must stay linear */
  for (int i = 0; i < 20000; i++)
    buf_printf(b, "model m%d {\n  input x: f32[2]\n  loss sum(x)\n}\n", i);
}

static void sp_many_defs(Buf *b) {
  for (int i = 0; i < 20000; i++) buf_printf(b, "def fn%d(x) {\n  return x * %d\n}\n", i, i);
  buf_puts(b, "model m {\n  input x: f32[2]\n  h = x\n");
  for (int i = 0; i < 20000; i += 7) buf_printf(b, "  h = fn%d(h)\n", i);
  buf_puts(b, "  loss sum(h)\n}\n");
}

static void sp_many_outputs(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[2]\n  output x");
  buf_repeat(b, ", x", 100000);
  buf_puts(b, "\n  loss sum(x)\n}\n");
}

static void sp_many_trains(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[B, 1]\n  input y: f32[B, 1]\n  loss mse(x, y)\n}\n"
              "const B = 4\n");
  for (int i = 0; i < 10000; i++)
    buf_puts(b, "train m {\n  data = sine()\n  optimizer = sgd(lr = 0.1)\n}\n");
}

/* Constants are numbers: anything that would make a graph node is an
 * error at top level, where there is no graph. */
static void sp_const_tensor(Buf *b) { buf_puts(b, "const A = zeros(f32[2]) + 1\n"); }
static void sp_const_call(Buf *b) { buf_puts(b, "const A = relu(1)\n"); }
static void sp_const_bool(Buf *b) { buf_puts(b, "const A = 1 + true\n"); }

static void sp_reshape_huge(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[4]\n  y = reshape(x, [4, 4611686018427387904])\n"
              "  loss sum(y)\n}\n");
}

static void sp_csv_column_huge(Buf *b) {
  buf_puts(b,
           "const B = 4\nmodel m {\n  input x: f32[B, 1]\n  input y: f32[B, 1]\n"
           "  loss mse(x, y)\n}\ntrain m {\n  data = csv(\"d.csv\", x = 0, y = 9223372036854775807)\n"
           "  optimizer = sgd(lr = 0.1)\n}\n");
}

static void sp_slice_step_huge(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[4, 3]\n  h = x[::9223372036854775807]\n"
              "  loss sum(h)\n}\n");
}

static void sp_int_100_digits(Buf *b) {
  buf_puts(b, "const N = ");
  buf_repeat(b, "9", 100);
  buf_puts(b, "\nmodel m {\n  input x: f32[N]\n  loss sum(x)\n}\n");
}

static void sp_float_huge(Buf *b) {
  buf_puts(b, "const F = 1");
  buf_repeat(b, "0", 400);
  buf_puts(b, ".5e999999999999999999\nmodel m {\n  input x: f32[2]\n  loss sum(x * F)\n}\n");
}

static void sp_string_1mb(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[2]\n  input y: f32[2]\n  loss mse(x, y)\n}\n");
  buf_puts(b, "train m {\n  data = text(\"");
  buf_repeat(b, "a\\\"", (1 << 20) / 3);
  buf_puts(b, "\")\n  optimizer = sgd(lr = 0.1)\n}\n");
}

static void sp_string_unterminated(Buf *b) {
  buf_puts(b, "const S = \"");
  buf_repeat(b, "abcdefgh", 1 << 17);
}

static void sp_nul(Buf *b) {
  buf_reserve(b, 65536);
  memset(b->p, 0, 65536);
  b->n = 65536;
}

static void sp_random_64k(Buf *b) {
  Rng r = {g_seed ^ 0x64ULL};
  buf_reserve(b, 65536);
  for (int i = 0; i < 65536; i++) b->p[i] = (char)rng_below(&r, 256);
  b->n = 65536;
}

static void sp_comment_bytes(Buf *b) { /* comments may hold any bytes but NUL */
  Rng r = {g_seed ^ 0xc0ULL};
  for (int line = 0; line < 256; line++) {
    buf_puts(b, "# ");
    for (int i = 0; i < 200; i++) {
      char c = (char)(1 + rng_below(&r, 255));
      if (c != '\n') buf_insert(b, b->n, &c, 1);
    }
    buf_puts(b, "\n");
  }
}

static void sp_const_lines(Buf *b) {
  for (int i = 0; i < 100000; i++) buf_printf(b, "const X%d = %d\n", i, i);
}

static void sp_blank_lines(Buf *b) {
  buf_repeat(b, "\n", 1 << 20);
  buf_puts(b, "model m {\n  input x: f32[2]\n  loss sum(x)\n}\n");
}

static void sp_200_errors(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[2]\n");
  for (int i = 0; i < 200; i++) buf_printf(b, "  y%d = x + undefined_%d\n", i, i);
  buf_puts(b, "  loss sum(x)\n}\n");
}

static void sp_200_lex_errors(Buf *b) {
  for (int i = 0; i < 200; i++) buf_puts(b, "const A = 1 $ ` ?\n");
}

static void sp_200_syntax_errors(Buf *b) {
  for (int i = 0; i < 200; i++) buf_puts(b, "model m { input }\nconst = = =\n");
}

static void sp_many_warnings(Buf *b) { /* 20,000 params that do not reach the loss */
  buf_puts(b, "model m {\n  input x: f32[2]\n");
  for (int i = 0; i < 20000; i++) buf_printf(b, "  param p%d: f32[1] = zeros()\n", i);
  buf_puts(b, "  loss sum(x)\n}\n");
}

static void sp_mutual_recursion(Buf *b) {
  buf_puts(b,
           "def a(x) {\n  return b(x)\n}\ndef b(x) {\n  return a(x)\n}\n"
           "model m {\n  input x: f32[2]\n  loss sum(a(x))\n}\n");
}

static void sp_self_recursion(Buf *b) {
  buf_puts(b,
           "def f(x) {\n  return f(x + 1)\n}\n"
           "model m {\n  input x: f32[2]\n  loss sum(f(x))\n}\n");
}

static void sp_def_chain(Buf *b) {
  buf_puts(b, "def f0(x) {\n  return x + 1\n}\n");
  for (int i = 1; i <= 300; i++) buf_printf(b, "def f%d(x) {\n  return f%d(x)\n}\n", i, i - 1);
  buf_puts(b, "model m {\n  input x: f32[2]\n  loss sum(f300(x))\n}\n");
}

static void sp_const_chain(Buf *b) { /* 100,000 constants, each from the last */
  buf_puts(b, "const C0 = 1\n");
  for (int i = 1; i < 100000; i++) buf_printf(b, "const C%d = C%d + 1\n", i, i - 1);
  buf_puts(b, "model m {\n  input x: f32[2]\n  loss sum(x * C99999)\n}\n");
}

static void sp_const_cycle(Buf *b) {
  buf_puts(b, "const A = B + 1\nconst B = A + 1\nmodel m {\n  input x: f32[A]\n  loss sum(x)\n}\n");
}

static void sp_many_args(Buf *b) {
  buf_puts(b, "model m {\n  input x: f32[2]\n  y = relu(x");
  buf_repeat(b, ", x", 100000);
  buf_puts(b, ")\n  z = concat([x");
  buf_repeat(b, ", x", 100000);
  buf_puts(b, "])\n  loss sum(z)\n}\n");
}

static void sp_rank_9(Buf *b) {
  buf_puts(b,
           "model m {\n  input x: f32[1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
           "  y = reshape(zeros(f32[2]), [1, 1, 1, 1, 1, 1, 1, 1, 1, 2])\n"
           "  loss sum(x)\n}\n");
}

static void sp_crlf(Buf *b) { /* an example with CR LF line ends */
  size_t len;
  char *t = tu_read_file(NNCC_SOURCE_DIR "/examples/mlp.nn", &len);
  ck_assert(t != NULL);
  for (size_t i = 0; i < len; i++) {
    if (t[i] == '\n') buf_puts(b, "\r");
    buf_insert(b, b->n, t + i, 1);
  }
  free(t);
}

static void sp_bom(Buf *b) { buf_puts(b, "\xef\xbb\xbfmodel m {\n  input x: f32[2]\n  loss sum(x)\n}\n"); }

static void sp_comment_1mb(Buf *b) {
  buf_puts(b, "# ");
  buf_repeat(b, "comment ", 1 << 17);
  buf_puts(b, "\nmodel m {\n  input x: f32[2]\n  loss sum(x)\n}\n");
}

static void sp_odd_whitespace(Buf *b) {
  buf_puts(b, "model m {\f\n\tinput x: f32[2]\v\r\n  loss\tsum(x)\r}\r\n");
}

static void sp_odd_strings(Buf *b) {
  buf_puts(b,
           "model m {\n  input x: f32[B, 1]\n  input y: f32[B, 1]\n  loss mse(x, y)\n}\n"
           "const B = 2\ntrain m {\n  data = text(\"\\x\\\"\\\\\\n\\\")\n"
           "  optimizer = sgd(lr = 0.1)\n}\nconst S = \"\\");
}

static void sp_odd_numbers(Buf *b) {
  buf_puts(b,
           "const A = 1e99999, B = .e5, C = 5.., D = 1.5.5, E = 0x1F, F = 1__0, G = 9e-99999\n"
           "model m {\n  input x: f32[2]\n  loss sum(x)\n}\n");
}

static void sp_eof_in_block(Buf *b) { buf_puts(b, "model m {\n  input x: f32[2]\n  y = relu("); }

static void sp_64mb(Buf *b) { /* over the 64 MiB source limit */
  buf_reserve(b, (size_t)65 << 20);
  memset(b->p, ' ', (size_t)65 << 20);
  b->n = (size_t)65 << 20;
  b->p[b->n] = 0;
}

static void sp_empty(Buf *b) { (void)b; }

static void sp_comment_only(Buf *b) { buf_puts(b, "# nothing here\n# at all"); }

static const Special specials[] = {
    {"1 MB line of identifiers in a model", sp_line_idents, 1, "error"},
    {"1 MB line of identifiers at top level", sp_line_idents_top, 1, "error"},
    {"1 MB line of digits", sp_line_digits, 1, "error"},
    {"1 MB identifier", sp_long_ident, 0, "no model"},
    {"512 KB unknown name near a 512 KB name", sp_long_unknown_ident, 1, "error"},
    {"10,000 nested parentheses", sp_parens, 1, "error"},
    {"10,000 nested brackets", sp_brackets, 1, "error"},
    {"10,000 nested braces", sp_braces, 1, "error"},
    {"10,000 nested braces at top level", sp_braces_top, 1, "error"},
    {"10,000 nested calls", sp_calls, 1, "error"},
    {"10,000 unary minus", sp_minus, 1, "error"},
    {"10,000 '**' chain", sp_pow_chain, 1, "error"},
    {"10,000 slices chained", sp_index_chain, 1, "error"},
    {"100,000 unclosed parentheses", sp_unclosed, 1, "error"},
    {"100,000 '+' chain", sp_plus_chain, 1, "error"},
    {"10,000 nested for blocks", sp_blocks, 1, "error"},
    {"dimension 2^62", sp_dim_2_62, 1, "2^31"},
    {"dimension product 2^80", sp_dim_product, 1, "2^31"},
    {"dimension product 2^160 from constants", sp_dim_product_expr, 1, "error"},
    {"huge shapes made by ops", sp_dim_ops, 1, "error"},
    {"for loop of 10^9 iterations", sp_unroll, 1, "1000000"},
    {"nested for loops 1000x1000x1000", sp_unroll_nested, 1, "1000000"},
    {"empty for loop of 10^9 iterations", sp_unroll_empty, -1, NULL},
    {"for loop of 10^9 constant bindings", sp_unroll_const, -1, NULL},
    {"for loop of 10^9 over a poisoned value", sp_unroll_poisoned, 1, "2^31"},
    {"10^6 iterations of 300 poisoned statements", sp_unroll_poisoned_body, 1, "2^31"},
    {"10^6 iterations of 300 constant bindings", sp_unroll_const_body, -1, NULL},
    {"inlining 4^12 calls", sp_unroll_defs, 1, "1000000"},
    {"an RNN unrolled to just under the node limit", sp_rnn_near_limit, -1, NULL},
    {"131,072 parameter tensors", sp_many_params, 1, "100000"},
    {"100,000 distinct names", sp_many_names, 0, NULL},
    {"50,000 re-bindings", sp_many_rebinds, 0, NULL},
    {"20,000 models", sp_many_models, 0, NULL},
    {"20,000 defs", sp_many_defs, 0, NULL},
    {"100,000 outputs", sp_many_outputs, -1, NULL},
    {"10,000 train blocks", sp_many_trains, -1, NULL},
    {"constant holding a tensor op", sp_const_tensor, 1, "error"},
    {"constant calling a builtin", sp_const_call, 1, "error"},
    {"constant adding a bool", sp_const_bool, 1, "error"},
    {"reshape to [4, 2^62]", sp_reshape_huge, 1, "error"},
    {"csv column 2^63 - 1", sp_csv_column_huge, -1, NULL},
    {"slice step 2^63 - 1", sp_slice_step_huge, -1, NULL},
    {"integer literal of 100 digits", sp_int_100_digits, 1, "error"},
    {"float literal with a huge exponent", sp_float_huge, 1, "error"},
    {"1 MB string", sp_string_1mb, -1, NULL},
    {"1 MB unterminated string", sp_string_unterminated, 1, "error"},
    {"64 KB of NUL bytes", sp_nul, 1, "error"},
    {"64 KB of random bytes", sp_random_64k, 1, "error"},
    {"comments holding every byte but NUL", sp_comment_bytes, 0, "no model"},
    {"100,000 lines of constants", sp_const_lines, 0, "no model"},
    {"1 MB of blank lines", sp_blank_lines, 0, NULL},
    {"200 name errors", sp_200_errors, 1, "too many errors"},
    {"200 lexical errors", sp_200_lex_errors, 1, "too many errors"},
    {"400 syntax errors", sp_200_syntax_errors, 1, "too many errors"},
    {"20,000 unused params (warnings)", sp_many_warnings, 0, "warning"},
    {"mutual recursion a -> b -> a", sp_mutual_recursion, 1, "recurs"},
    {"self recursion", sp_self_recursion, 1, "recurs"},
    {"def chain f0..f300", sp_def_chain, -1, NULL},
    {"100,000 chained constants", sp_const_chain, 0, NULL},
    {"constants defined in a cycle", sp_const_cycle, 1, "error"},
    {"100,000 arguments", sp_many_args, 1, "error"},
    {"rank 9 and 10", sp_rank_9, 1, "error"},
    {"an example with CR LF line ends", sp_crlf, -1, NULL},
    {"UTF-8 byte order mark", sp_bom, 1, "error"},
    {"1 MB comment", sp_comment_1mb, 0, NULL},
    {"form feed, vertical tab, lone CR", sp_odd_whitespace, -1, NULL},
    {"odd string escapes and a string at EOF", sp_odd_strings, 1, "error"},
    {"odd numbers", sp_odd_numbers, 1, "error"},
    {"end of file inside a call", sp_eof_in_block, 1, "error"},
    {"65 MB file", sp_64mb, 1, "cannot read"},
    {"empty file", sp_empty, 0, "no model"},
    {"comment-only file", sp_comment_only, 0, "no model"},
};
#define N_SPECIALS ((int)(sizeof specials / sizeof specials[0]))

static void check_special_run(const char *name, const char *saved, const TuRun *res, double dt,
                              int want, const char *must_say) {
  long mb = children_peak_mb();
  printf("fuzz special: %-44s exit %3d  %6.2f s  %5ld MB\n", name, res->status, dt, mb);
  fflush(stdout);
  const char *why = judge(res);
  if (!why && mb > g_max_rss_mb) why = "peak RSS above NNCC_FUZZ_MAX_RSS_MB";
  if (!why && want >= 0 && res->status != want) why = "wrong exit status";
  if (!why && must_say && !strstr(res->err, must_say)) why = "stderr lacks the expected message";
  ck_assert_msg(!why,
                "special input '%s' (saved to %s): %s: exit %d (want %d), must say '%s'\n"
                "--- stderr (first 3000 bytes) ---\n%.3000s",
                name, saved, why, res->status, want, must_say ? must_say : "", res->err);
}

START_TEST(test_special) {
  const Special *s = &specials[_i];
  Buf b = {0};
  buf_reserve(&b, 0);
  b.p[0] = 0;
  s->make(&b);
  char *path = tu_temp_file(b.p, b.n, ".nn");
  ck_assert(path != NULL);
  char args[512];
  snprintf(args, sizeof args, "check %s", path);
  double t0 = now_s();
  TuRun res = tu_run(args, CLI_TIMEOUT);
  double dt = now_s() - t0;
  char saved[128] = "";
  if (judge(&res) || children_peak_mb() > g_max_rss_mb || (s->want >= 0 && res.status != s->want) ||
      (s->must_say && !strstr(res.err, s->must_say))) {
    char *p = save_failure(b.p, b.n, 1000 + _i);
    snprintf(saved, sizeof saved, "%s", p);
    free(p);
  }
  unlink(path);
  free(path);
  if (!strcmp(s->must_say ? s->must_say : "", "too many errors"))
    ck_assert_msg(count_lines_with(res.err, ": error:") <= 51,
                  "'%s': %d error lines printed, at most 50 (+1) allowed", s->name,
                  count_lines_with(res.err, ": error:"));
  check_special_run(s->name, saved, &res, dt, s->want, s->must_say);
  tu_run_free(&res);
  buf_free(&b);
}
END_TEST

/* -D values that make the example's shapes absurd: exit 1 (a compile
 * error) or 2 (a usage error), never a crash. */
static const char *const define_cases[] = {
    "-D B=4611686018427387904", "-D B=0", "-D B=-1", "-D B=1e400", "-D B=2147483648",
    "-D B=99999999999999999999999", "-D B=nan", "-D B=0.5", "-D B=", "-D =1", "-D B",
};

START_TEST(test_defines) {
  const char *d = define_cases[_i];
  char args[512];
  snprintf(args, sizeof args, "check %s " NNCC_SOURCE_DIR "/examples/mlp.nn", d);
  double t0 = now_s();
  TuRun res = tu_run(args, CLI_TIMEOUT);
  double dt = now_s() - t0;
  printf("fuzz special: %-44s exit %3d  %6.2f s\n", d, res.status, dt);
  fflush(stdout);
  ck_assert_msg(res.status >= 1 && res.status <= 2 && !bad_stderr(res.err),
                "nncc %s: exit %d (want 1 or 2)\n--- stderr ---\n%.2000s", args, res.status,
                res.err);
  tu_run_free(&res);
}
END_TEST

START_TEST(test_missing_file) {
  TuRun res = tu_run("check /nonexistent/nncc-fuzz/no-such-file.nn", CLI_TIMEOUT);
  check_special_run("missing file", "-", &res, 0, 1,
                    "cannot read '/nonexistent/nncc-fuzz/no-such-file.nn': ");
  tu_run_free(&res);
}
END_TEST

START_TEST(test_directory) {
  TuRun res = tu_run("check " NNCC_SOURCE_DIR "/examples", CLI_TIMEOUT);
  check_special_run("directory as input", "-", &res, 0, 1,
                    "cannot read '" NNCC_SOURCE_DIR "/examples': ");
  tu_run_free(&res);
}
END_TEST

START_TEST(test_unreadable) {
  if (geteuid() == 0) return; /* root reads anything */
  char *path = tu_temp_file("model m {}\n", 11, ".nn");
  chmod(path, 0);
  char args[512];
  snprintf(args, sizeof args, "check %s", path);
  TuRun res = tu_run(args, CLI_TIMEOUT);
  unlink(path);
  check_special_run("unreadable file", "-", &res, 0, 1, "cannot read '");
  tu_run_free(&res);
  free(path);
}
END_TEST

/* ---------------------------------------------------------------- main */

/* Sanitizer reports in nncc must not look like exit 1 (their default). */
static void sanitizer_exit_codes(void) {
  static const struct {
    const char *var, *add;
  } s[] = {{"ASAN_OPTIONS", "exitcode=86"}, {"UBSAN_OPTIONS", "exitcode=87:print_stacktrace=1"}};
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++) {
    const char *old = getenv(s[i].var);
    if (old && strstr(old, "exitcode")) continue;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s%s%s", old ? old : "", old && *old ? ":" : "", s[i].add);
    setenv(s[i].var, buf, 1);
  }
}

/* A safety net outside sanitizer builds (whose shadow memory needs a huge
 * address space): an nncc run, or the in-process fuzzer, that allocates
 * without bound fails malloc ("nncc: fatal: out of memory", caught as a
 * failure) instead of taking the machine down. */
static void limit_address_space(void) {
  if (__sanitizer_set_death_callback) return;
  long mb = env_long("NNCC_FUZZ_MAX_AS_MB", 4096);
  struct rlimit rl;
  if (mb <= 0 || getrlimit(RLIMIT_AS, &rl) != 0) return;
  rlim_t want = (rlim_t)mb << 20;
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > want) {
    rl.rlim_cur = want;
    setrlimit(RLIMIT_AS, &rl);
  }
}

static Suite *fuzz_suite(void) {
  Suite *s = suite_create("fuzz");
  TCase *tc = tcase_create("inprocess");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, test_fuzz_inprocess);
  tcase_add_test(tc, test_extreme_arguments);
  suite_add_tcase(s, tc);
  tc = tcase_create("cli");
  tcase_set_timeout(tc, 1200);
  tcase_add_test(tc, test_fuzz_cli);
  suite_add_tcase(s, tc);
  tc = tcase_create("special");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, test_special, 0, N_SPECIALS);
  tcase_add_loop_test(tc, test_defines, 0,
                      (int)(sizeof define_cases / sizeof define_cases[0]));
  tcase_add_test(tc, test_missing_file);
  tcase_add_test(tc, test_directory);
  tcase_add_test(tc, test_unreadable);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  g_seed = (uint64_t)env_long("NNCC_FUZZ_SEED", (long)g_seed);
  g_iters = env_long("NNCC_FUZZ_ITERS", g_iters);
  g_cli_iters = env_long("NNCC_FUZZ_CLI_ITERS", g_cli_iters);
  g_iter_timeout = (unsigned)env_long("NNCC_FUZZ_TIMEOUT", (long)g_iter_timeout);
  g_max_rss_mb = env_long("NNCC_FUZZ_MAX_RSS_MB", g_max_rss_mb);
  limit_address_space();
  printf("fuzz: seed %llu (NNCC_FUZZ_SEED), %ld in-process inputs (NNCC_FUZZ_ITERS), "
         "%ld CLI runs (NNCC_FUZZ_CLI_ITERS)\n"
         "fuzz: an in-process input that kills the test stays in "
         "/tmp/nncc-fuzz-fail-{inproc-SEED-ITER,extreme-T-V}.nn (.nn.ir: the IR text read)\n",
         (unsigned long long)g_seed, g_iters, g_cli_iters);
  fflush(stdout);
  sanitizer_exit_codes();
  double t0 = now_s();
  SRunner *sr = srunner_create(fuzz_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  printf("fuzz: whole test %.2f s\n", now_s() - t0);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
