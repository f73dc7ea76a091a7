/* read.c - the reader of the graph IR text that print.c writes.
 *
 * Golden tests, bug reports and `nncc --emit=ir` dumps are read back with
 * ir_read, which rebuilds the graphs through the ordinary builder and runs
 * ir_infer on every node, so a dump edited by hand is checked exactly like
 * a graph the frontend made: a printed type that is not what the op gives
 * is an error, and so are the graph invariants of ir_verify that text can
 * break (one f32[] loss, unique var names, the fusion rules of kernel
 * blocks), so that whatever reads cleanly
 * also verifies - except a `var` without a role, which the printer writes
 * for such a var and the reader accepts back. The text may be anything (a truncated file, random bytes):
 * every problem is a diagnostic at its line:col in the IR text, the reader
 * keeps going to the end to report them all, and returns NULL if there was
 * any. Nothing in here recurses, every loop consumes input, and the
 * limits below bound the memory used.
 *
 * The grammar, one construct per line (`#` comments, blank lines ignored):
 *   module := { graph }
 *   graph  := 'graph' WORD [LOC] '{' NL { line NL } '}'
 *   line   := node | output | loss
 * with the node, attribute, type and location rules above each parse
 * function. Tokens: WORD [A-Za-z_][A-Za-z0-9_.]*, VALUE '%' [A-Za-z0-9_.:]+,
 * NUM (an optionally negative decimal number, or -inf), punctuation. */
#include "ir/ir_internal.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define READ_MAX_NODES 1000000           /* as the frontend's expansion limit */
#define READ_MAX_LIST 64                 /* elements of one attribute list */
#define READ_MAX_DIM ((int64_t)1 << 62)  /* infer then applies IR_MAX_ELEMS */

/* ---------------------------------------------------------------- lexer */

typedef enum RTokKind {
  RT_EOF,
  RT_NL,
  RT_WORD,   /* op, attribute, dtype, graph and output names, true, inf */
  RT_VALUE,  /* %name: s/len is the name without the '%' (may be empty) */
  RT_NUM,
  RT_PUNCT,  /* one of = , : [ ] ( ) { } @ */
  RT_BAD,    /* any other byte */
} RTokKind;

typedef struct RTok {
  RTokKind kind;
  const char *s;  /* into the IR text */
  size_t len;
  SrcLoc loc;
} RTok;

typedef struct Reader {
  Arena *a;
  Diag *d;
  const char *src;
  size_t len, pos;
  size_t line_start;   /* offset of the current line, for columns */
  int line;
  RTok tok;            /* the current token */
  Module *m;
  Graph *g;            /* the graph being read */
  IrNameMap *values;   /* printed name -> Node *, or &poisoned */
  IrNameMap *graphs;   /* graph names, for duplicates */
  IrNameMap *vars;     /* var names of g -> Node *, for duplicates */
  bool has_loss;       /* of g */
  int n_outputs;       /* of g: the next out_index */
  int kernel;          /* the open `kernel` block's number, or 0 */
  long n_nodes;        /* in the whole module, against READ_MAX_NODES */
  bool fatal;          /* a limit was hit: stop reading */
  Node **ins;          /* operand scratch, grown as needed */
  int cap_ins;
} Reader;

/* The value of a name whose line failed: later uses of it fail silently
 * instead of piling "undefined value" errors on the first one. */
static char poisoned;

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_word_char(int c) { return is_alpha(c) || is_digit(c) || c == '.'; }
static bool is_value_char(int c) { return is_word_char(c) || c == ':'; }

/* Columns count bytes from 1; an absurdly long line saturates. */
static SrcLoc loc_at(const Reader *R, size_t pos) {
  size_t col = pos - R->line_start + 1;
  return (SrcLoc){R->line, col > INT_MAX ? INT_MAX : (int)col};
}

static void next(Reader *R) {
  const char *s = R->src;
  size_t n = R->len, p = R->pos;
  while (p < n && (s[p] == ' ' || s[p] == '\t' || s[p] == '\r' || s[p] == '\f' || s[p] == '\v'))
    p++;
  if (p < n && s[p] == '#')
    while (p < n && s[p] != '\n') p++;
  RTok *t = &R->tok;
  t->s = s + p;
  t->loc = loc_at(R, p);
  if (p >= n) {
    t->kind = RT_EOF;
    t->len = 0;
    R->pos = p;
    return;
  }
  unsigned char c = (unsigned char)s[p];
  size_t q = p + 1;
  if (c == '\n') {
    t->kind = RT_NL;
    if (R->line < INT_MAX) R->line++;
    R->line_start = q;
  } else if (c == '%') {
    while (q < n && is_value_char((unsigned char)s[q])) q++;
    t->kind = RT_VALUE;
    t->s = s + p + 1;
  } else if (is_alpha(c)) {
    while (q < n && is_word_char((unsigned char)s[q])) q++;
    t->kind = RT_WORD;
  } else if (is_digit(c) || (c == '-' && q < n && (is_digit(s[q]) || s[q] == '.' || s[q] == 'i')) ||
             (c == '.' && q < n && is_digit(s[q]))) {
    /* NUM := '-'? ('inf' | DIGITS ['.' DIGITS] [('e'|'E') ['+'|'-'] DIGITS]) */
    q = p + (c == '-');
    if (n - q >= 3 && !memcmp(s + q, "inf", 3)) {
      q += 3;
    } else {
      while (q < n && is_digit(s[q])) q++;
      if (q < n && s[q] == '.')
        for (q++; q < n && is_digit(s[q]);) q++;
      if (q < n && (s[q] == 'e' || s[q] == 'E')) {
        size_t r = q + 1;
        if (r < n && (s[r] == '+' || s[r] == '-')) r++;
        if (r < n && is_digit(s[r]))
          for (q = r; q < n && is_digit(s[q]);) q++;
      }
    }
    t->kind = RT_NUM;
  } else if (c && strchr("=,:[](){}@", c)) {
    t->kind = RT_PUNCT;
  } else {
    t->kind = RT_BAD;
  }
  t->len = q - (size_t)(t->s - s);
  R->pos = q;
}

/* ------------------------------------------------------------- helpers */

/* Token text in messages is cut to this many bytes. */
#define SHOW 40
static int show_len(size_t len) { return len > SHOW ? SHOW : (int)len; }

/* "end of line", "'foo'", "byte 0x80", ... for "expected X, found Y". */
static const char *tok_desc(const RTok *t, char *buf, size_t size) {
  const char *dots = t->len > SHOW ? "..." : "";
  switch (t->kind) {
  case RT_EOF: return "end of input";
  case RT_NL: return "end of line";
  case RT_VALUE: snprintf(buf, size, "'%%%.*s%s'", show_len(t->len), t->s, dots); break;
  case RT_WORD:
  case RT_NUM: snprintf(buf, size, "'%.*s%s'", show_len(t->len), t->s, dots); break;
  case RT_PUNCT: snprintf(buf, size, "'%c'", *t->s); break;
  case RT_BAD: {
    unsigned char c = (unsigned char)*t->s;
    if (c >= 32 && c < 127) snprintf(buf, size, "'%c'", c);
    else snprintf(buf, size, "byte 0x%02x", c);
    break;
  }
  }
  return buf;
}

__attribute__((format(printf, 3, 4)))
static bool err(Reader *R, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(R->d, loc, fmt, ap);
  va_end(ap);
  return false;
}

static bool expected(Reader *R, const char *what) {
  char buf[SHOW + 16];
  return err(R, R->tok.loc, "expected %s, found %s", what, tok_desc(&R->tok, buf, sizeof buf));
}

static bool is_punct(const Reader *R, char c) {
  return R->tok.kind == RT_PUNCT && *R->tok.s == c;
}

static bool is_word(const RTok *t, const char *w) {
  return t->kind == RT_WORD && t->len == strlen(w) && !memcmp(t->s, w, t->len);
}

static bool accept(Reader *R, char c) {
  if (!is_punct(R, c)) return false;
  next(R);
  return true;
}

static bool expect(Reader *R, char c, const char *what) {
  return accept(R, c) || expected(R, what);
}

static bool at_eol(const Reader *R) { return R->tok.kind == RT_NL || R->tok.kind == RT_EOF; }

static bool expect_eol(Reader *R) { return at_eol(R) || expected(R, "end of line"); }

/* Error recovery: drop the rest of the line; the newline stays current. */
static void skip_line(Reader *R) {
  while (!at_eol(R)) next(R);
}

/* A word copied into buf for table lookups; false when too long to be
 * any name in a table (the lookup then just fails). */
static bool word_buf(const RTok *t, char *buf, size_t size) {
  if (t->len >= size) return false;
  memcpy(buf, t->s, t->len);
  buf[t->len] = 0;
  return true;
}

/* " (did you mean 'x'?)" or "", for an unknown name among cands. */
static const char *suggest(const RTok *t, const char *const *cands, int n, char *buf, size_t size) {
  char name[65];
  const char *best = word_buf(t, name, sizeof name) ? diag_closest(name, cands, n) : NULL;
  if (!best) return "";
  snprintf(buf, size, "; did you mean '%s'?", best);
  return buf;
}

/* --------------------------------------------------------------- values */

/* INT := '-'? DIGITS, in int64 range */
static bool parse_int(Reader *R, int64_t *out, const char *what) {
  RTok t = R->tok;
  if (t.kind != RT_NUM) return expected(R, what);
  bool neg = t.s[0] == '-';
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;
  size_t i = neg;
  if (i == t.len) return expected(R, what);
  for (; i < t.len; i++) {
    if (!is_digit(t.s[i])) return expected(R, what);
    unsigned digit = (unsigned)(t.s[i] - '0');
    if (v > (limit - digit) / 10)
      return err(R, t.loc, "integer '%.*s' is out of range", show_len(t.len), t.s);
    v = v * 10 + digit;
  }
  *out = !neg ? (int64_t)v : v == 0 ? 0 : -(int64_t)(v - 1) - 1;
  next(R);
  return true;
}

/* FLOAT := NUM | 'inf' | 'nan'  (as the printer writes them: strtod's
 * decimal syntax, the shortest digits that give back the same double) */
static bool parse_float(Reader *R, double *out, const char *what) {
  RTok t = R->tok;
  if (is_word(&t, "inf")) {
    *out = INFINITY;
  } else if (is_word(&t, "nan")) {
    *out = NAN;
  } else if (t.kind == RT_NUM) {
    char buf[64], *end;
    if (t.len >= sizeof buf) return err(R, t.loc, "number '%.*s...' is too long", SHOW, t.s);
    memcpy(buf, t.s, t.len);
    buf[t.len] = 0;
    errno = 0;
    double v = strtod(buf, &end);
    if (end != buf + t.len) return expected(R, what);
    if (errno == ERANGE && isinf(v) && strcmp(buf, "-inf") != 0)
      return err(R, t.loc, "number '%s' is out of range", buf);
    *out = v;
  } else {
    return expected(R, what);
  }
  next(R);
  return true;
}

/* LIST := '[' [INT {',' INT}] ']' */
static bool parse_list(Reader *R, int64_t *v, int *n) {
  *n = 0;
  if (!expect(R, '[', "'['")) return false;
  if (accept(R, ']')) return true;
  for (;;) {
    if (*n == READ_MAX_LIST)
      return err(R, R->tok.loc, "list longer than %d elements", READ_MAX_LIST);
    if (!parse_int(R, &v[(*n)++], "an integer")) return false;
    if (accept(R, ']')) return true;
    if (!expect(R, ',', "',' or ']'")) return false;
  }
}

/* TYPE := ('f32' | 'i32' | 'bool') '[' [DIM {',' DIM}] ']' */
static bool parse_type(Reader *R, Type *t) {
  memset(t, 0, sizeof *t);
  RTok w = R->tok;
  if (w.kind == RT_BAD && *w.s == '?')
    return err(R, w.loc, "a poisoned type '?' cannot be read back");
  if (w.kind != RT_WORD) return expected(R, "a type");
  if (is_word(&w, "f32")) t->dtype = DT_F32;
  else if (is_word(&w, "i32")) t->dtype = DT_I32;
  else if (is_word(&w, "bool")) t->dtype = DT_BOOL;
  else
    return err(R, w.loc, "unknown dtype '%.*s' (expected f32, i32 or bool)", show_len(w.len), w.s);
  next(R);
  if (!expect(R, '[', "'[' after the dtype")) return false;
  if (accept(R, ']')) return true;
  for (;;) {
    SrcLoc dl = R->tok.loc;
    int64_t v;
    if (t->rank == IR_MAX_RANK) return err(R, dl, "type has a rank above %d", IR_MAX_RANK);
    if (!parse_int(R, &v, "a dimension")) return false;
    if (v < 1) return err(R, dl, "dimension %lld is less than 1", (long long)v);
    if (v > READ_MAX_DIM) return err(R, dl, "dimension %lld is above 2^62", (long long)v);
    t->dim[t->rank++] = v;
    if (accept(R, ']')) return true;
    if (!expect(R, ',', "',' or ']' in the type")) return false;
  }
}

/* LOC := '@' INT ':' INT   (a .nn source location, line >= 1) */
static bool parse_loc(Reader *R, SrcLoc *loc) {
  int64_t line, col;
  next(R);  /* '@' */
  SrcLoc at = R->tok.loc;
  if (!parse_int(R, &line, "a line number")) return false;
  if (line < 1 || line > INT_MAX) return err(R, at, "line number %lld is out of range", (long long)line);
  if (!expect(R, ':', "':' in the location")) return false;
  at = R->tok.loc;
  if (!parse_int(R, &col, "a column number")) return false;
  if (col < 0 || col > INT_MAX) return err(R, at, "column number %lld is out of range", (long long)col);
  *loc = (SrcLoc){(int)line, (int)col};
  return true;
}

/* A use of a value: VALUE, defined on an earlier line of this graph. A
 * use of a poisoned name fails without a message of its own. */
static bool parse_use(Reader *R, Node **out) {
  RTok t = R->tok;
  if (t.kind != RT_VALUE || t.len == 0) return expected(R, "a value ('%name')");
  void **slot = ir_namemap_get(R->values, t.s, t.len);
  if (!slot)
    return err(R, t.loc, "use of undefined value '%%%.*s'", show_len(t.len), t.s);
  if (*slot == &poisoned) return false;
  *out = *slot;
  next(R);
  return true;
}

/* --------------------------------------------------------------- nodes */

/* The node name behind a printed one: %7 for node 7 is unnamed, and
 * "h.2" is "h" when ".2" is exactly the suffix print.c would have chosen
 * (the first free one); otherwise the name really ends in ".2". */
static const char *node_name(Reader *R, const RTok *t, int id) {
  char idbuf[24];
  int k = snprintf(idbuf, sizeof idbuf, "%d", id);
  if (t->len == (size_t)k && !memcmp(t->s, idbuf, (size_t)k)) return NULL;
  size_t dot = t->len;
  while (dot > 0 && t->s[dot - 1] != '.') dot--;
  size_t nd = t->len - dot;  /* digits after the last '.' */
  bool canonical = dot >= 2 && nd >= 1 && nd <= 18 && t->s[dot] != '0';
  for (size_t i = dot; canonical && i < t->len; i++) canonical = is_digit(t->s[i]);
  if (canonical) {
    uint64_t suffix = 0;  /* at most 18 digits: no overflow */
    for (size_t i = dot; i < t->len; i++) suffix = suffix * 10 + (uint64_t)(t->s[i] - '0');
    size_t blen = dot - 1;
    if (ir_namemap_get(R->values, t->s, blen) &&
        ir_namemap_first_free(R->values, t->s, blen) == suffix)
      return arena_strndup(R->a, t->s, blen);
  }
  return arena_strndup(R->a, t->s, t->len);
}

/* The op names and var role words, for "did you mean". */
static const char *const *op_words(int *n) {
  static const char *words[OP_COUNT + 3];
  if (!words[0]) {
    for (int o = 0; o < OP_COUNT; o++) words[o] = op_info((Op)o)->name;
    words[OP_COUNT] = "input";
    words[OP_COUNT + 1] = "param";
    words[OP_COUNT + 2] = "state";
  }
  *n = OP_COUNT + 3;
  return words;
}

/* init := 'init' '=' WORD '(' [FLOAT {',' FLOAT}] ')' */
static bool parse_init(Reader *R, InitKind *kind, double args[2]) {
  static const char *names[INIT_COUNT];
  if (!names[0])
    for (int k = 0; k < INIT_COUNT; k++) names[k] = init_name((InitKind)k);
  next(R);  /* 'init' */
  if (!expect(R, '=', "'=' after 'init'")) return false;
  RTok w = R->tok;
  char buf[32], hint[64];
  if (w.kind != RT_WORD) return expected(R, "an initializer name");
  *kind = word_buf(&w, buf, sizeof buf) ? init_by_name(buf) : INIT_COUNT;
  if (*kind == INIT_COUNT)
    return err(R, w.loc, "unknown initializer '%.*s'%s", show_len(w.len), w.s,
               suggest(&w, names, INIT_COUNT, hint, sizeof hint));
  next(R);
  if (!expect(R, '(', "'(' after the initializer name")) return false;
  int n = 0, want = init_nargs(*kind);
  if (!accept(R, ')'))
    for (;;) {
      if (n == 2) return err(R, w.loc, "too many arguments for initializer '%s'", buf);
      if (!parse_float(R, &args[n++], "a number")) return false;
      if (accept(R, ')')) break;
      if (!expect(R, ',', "',' or ')'")) return false;
    }
  if (n != want)
    return err(R, w.loc, "initializer '%s' takes %d argument%s, got %d", buf, want,
               want == 1 ? "" : "s", n);
  return true;
}

/* The attributes of `info`, in any order, each exactly once:
 *   attrs := { WORD '=' (INT | FLOAT | 'true' | 'false' | LIST) } */
static bool parse_attrs(Reader *R, const RTok *optok, const OpInfo *info, Attr *attrs,
                        int64_t lists[][READ_MAX_LIST]) {
  bool seen[IR_MAX_ATTRS] = {false};
  char hint[64];
  while (R->tok.kind == RT_WORD) {
    RTok an = R->tok;
    int k = 0;
    while (k < info->n_attrs && !is_word(&an, info->attr_name[k])) k++;
    if (k == info->n_attrs && (is_word(&an, "f32") || is_word(&an, "i32") || is_word(&an, "bool")))
      return expected(R, "':' before the type");  /* the ':' was left out */
    if (k == info->n_attrs)
      return err(R, an.loc, "'%.*s' has no attribute '%.*s'%s", show_len(optok->len), optok->s,
                 show_len(an.len), an.s, suggest(&an, info->attr_name, info->n_attrs, hint, sizeof hint));
    if (seen[k]) return err(R, an.loc, "duplicate attribute '%s'", info->attr_name[k]);
    seen[k] = true;
    next(R);
    if (!expect(R, '=', "'=' after the attribute name")) return false;
    Attr *a = &attrs[k];
    bool ok = true;
    switch (info->attr_kind[k]) {
    case ATTR_INT: ok = parse_int(R, &a->i, "an integer"); break;
    case ATTR_FLOAT: ok = parse_float(R, &a->f, "a number"); break;
    case ATTR_LIST:
      ok = parse_list(R, lists[k], &a->n);
      a->list = lists[k];
      break;
    case ATTR_BOOL:
      if (is_word(&R->tok, "true") || is_word(&R->tok, "false")) {
        a->i = is_word(&R->tok, "true");
        next(R);
      } else {
        ok = expected(R, "true or false");
      }
      break;
    }
    if (!ok) return false;
  }
  bool ok = true;
  for (int k = 0; k < info->n_attrs; k++)
    if (!seen[k])
      ok = err(R, optok->loc, "missing attribute '%s' for '%.*s'", info->attr_name[k],
               show_len(optok->len), optok->s);
  return ok;
}

/* The operands: VALUE {',' VALUE}, into R->ins. */
static bool parse_operands(Reader *R, int *n_in) {
  *n_in = 0;
  if (R->tok.kind != RT_VALUE) return true;
  for (;;) {
    if (*n_in == R->cap_ins) {
      R->cap_ins = R->cap_ins ? 2 * R->cap_ins : 8;
      R->ins = nncc_realloc(R->ins, sizeof(Node *) * (size_t)R->cap_ins);
    }
    if (!parse_use(R, &R->ins[*n_in])) return false;
    ++*n_in;
    if (!accept(R, ',')) return true;
  }
}

/* node := VALUE '=' OPWORD [operands] attrs ':' TYPE [init] [LOC]
 * OPWORD := an op name of ops.def, or 'input' | 'param' | 'state' for a
 * var with that role. On success the node is in the graph, even when
 * ir_infer or the printed type then disagree (reported, not fatal: later
 * lines can still be checked against it). */
static bool parse_node_line(Reader *R, const RTok *name) {
  if (!expect(R, '=', "'=' after the value name")) return false;
  RTok optok = R->tok;
  Op op;
  unsigned roles = 0;
  if (optok.kind != RT_WORD) return expected(R, "an op name");
  if (is_word(&optok, "input")) op = OP_VAR, roles = ROLE_INPUT;
  else if (is_word(&optok, "param")) op = OP_VAR, roles = ROLE_PARAM;
  else if (is_word(&optok, "state")) op = OP_VAR, roles = ROLE_STATE;
  else {
    char buf[32], hint[64];
    int nw;
    const char *const *words = op_words(&nw);
    op = word_buf(&optok, buf, sizeof buf) ? op_by_name(buf) : OP_COUNT;
    if (op == OP_COUNT)
      return err(R, optok.loc, "unknown op '%.*s'%s", show_len(optok.len), optok.s,
                 suggest(&optok, words, nw, hint, sizeof hint));
  }
  next(R);
  const OpInfo *info = op_info(op);

  int n_in;
  if (!parse_operands(R, &n_in)) return false;
  if (info->arity >= 0 && n_in != info->arity)
    return err(R, optok.loc, "'%.*s' takes %d operand%s, got %d", show_len(optok.len), optok.s,
               info->arity, info->arity == 1 ? "" : "s", n_in);
  if (info->arity < 0 && n_in < 1)
    return err(R, optok.loc, "'%s' takes at least 1 operand, got 0", info->name);

  Attr attrs[IR_MAX_ATTRS];
  int64_t lists[IR_MAX_ATTRS][READ_MAX_LIST];
  memset(attrs, 0, sizeof attrs);
  if (!parse_attrs(R, &optok, info, attrs, lists)) return false;

  if (!expect(R, ':', "':' before the type")) return false;
  SrcLoc tloc = R->tok.loc;
  Type printed;
  if (!parse_type(R, &printed)) return false;

  InitKind init = INIT_NONE;
  double init_arg[2] = {0, 0};
  if (is_word(&R->tok, "init")) {
    if (op != OP_VAR) return err(R, R->tok.loc, "only a var may have an initializer");
    if (!parse_init(R, &init, init_arg)) return false;
  }
  SrcLoc loc = {0, 0};
  if (is_punct(R, '@') && !parse_loc(R, &loc)) return false;
  if (!expect_eol(R)) return false;

  if (R->n_nodes >= READ_MAX_NODES) {
    R->fatal = true;
    return err(R, name->loc, "more than %d nodes", READ_MAX_NODES);
  }
  R->n_nodes++;
  Node *n = ir_node_new(R->g, op, R->ins, n_in, loc);
  for (int k = 0; k < info->n_attrs; k++) {
    if (info->attr_kind[k] == ATTR_LIST) ir_set_list(R->g, n, k, attrs[k].list, attrs[k].n);
    else n->attr[k] = attrs[k];
  }
  n->name = node_name(R, name, n->id);
  if (op == OP_VAR && n->name) {
    void **first = ir_namemap_get(R->vars, n->name, strlen(n->name));
    if (first)
      err(R, name->loc, "var name '%s' is already used by %%%d", n->name, ((Node *)*first)->id);
    else
      ir_namemap_put(R->vars, n->name, strlen(n->name), n);
  }
  n->roles = roles;
  n->kernel = R->kernel;
  if (R->kernel > R->g->n_kernels) R->g->n_kernels = R->kernel;
  n->init = init;
  n->init_arg[0] = init_arg[0];
  n->init_arg[1] = init_arg[1];
  ir_namemap_put(R->values, name->s, name->len, n);

  /* the printed type is the input of the leaves and cast (cast's target
   * dtype); for every other op it is what the rule must give */
  if (op == OP_VAR || op == OP_CONST || op == OP_CAST) n->type = printed;
  n->loc = optok.loc;  /* so that shape errors point into this text */
  bool ok = ir_infer(n, R->d);
  n->loc = loc;
  if (ok && !type_eq(&n->type, &printed)) {
    char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
    err(R, tloc, "type mismatch for %%%.*s: printed %s but the op gives %s", show_len(name->len),
        name->s, type_str(&printed, a, sizeof a), type_str(&n->type, b, sizeof b));
  }
  return true;
}

static bool parse_node(Reader *R) {
  RTok name = R->tok;
  if (name.len == 0) return err(R, name.loc, "expected a value name after '%%'");
  if (ir_namemap_get(R->values, name.s, name.len))
    return err(R, name.loc, "redefinition of '%%%.*s'", show_len(name.len), name.s);
  next(R);
  if (parse_node_line(R, &name)) return true;
  ir_namemap_put(R->values, name.s, name.len, &poisoned);
  return false;
}

/* output := 'output' WORD '=' VALUE {',' WORD '=' VALUE} */
static bool parse_output(Reader *R) {
  next(R);  /* 'output' */
  for (;;) {
    RTok w = R->tok;
    if (w.kind != RT_WORD) return expected(R, "an output name");
    next(R);
    if (!expect(R, '=', "'=' after the output name")) return false;
    RTok v = R->tok;
    Node *n;
    if (!parse_use(R, &n)) return false;
    if (n->roles & ROLE_OUTPUT)
      return err(R, v.loc, "'%%%.*s' is already an output", show_len(v.len), v.s);
    n->roles |= ROLE_OUTPUT;
    n->out_name = arena_strndup(R->a, w.s, w.len);
    n->out_index = R->n_outputs++;
    if (!accept(R, ',')) return expect_eol(R);
  }
}

/* loss := 'loss' VALUE */
static bool parse_loss(Reader *R) {
  next(R);  /* 'loss' */
  RTok v = R->tok;
  Node *n;
  if (!parse_use(R, &n)) return false;
  if (R->has_loss) return err(R, v.loc, "a graph has at most one loss");
  R->has_loss = true;
  n->roles |= ROLE_LOSS;
  Type scalar = type_scalar(DT_F32);
  if (n->type.dtype != DT_ERR && !type_eq(&n->type, &scalar)) {
    char buf[TYPE_STR_MAX];
    return err(R, v.loc, "the loss %%%.*s has type %s, not f32[]", show_len(v.len), v.s,
               type_str(&n->type, buf, sizeof buf));
  }
  return expect_eol(R);
}

/* grad := 'grad' WORD '=' VALUE { ',' WORD '=' VALUE }
 * VALUE is the gradient of the var named WORD. */
static bool parse_grad(Reader *R) {
  next(R);  /* 'grad' */
  for (;;) {
    RTok w = R->tok;
    if (w.kind != RT_WORD) return expected(R, "a var name");
    next(R);
    if (!expect(R, '=', "'=' after the var name")) return false;
    RTok v = R->tok;
    Node *n;
    if (!parse_use(R, &n)) return false;
    void **var = ir_namemap_get(R->vars, w.s, w.len);
    if (!var || !*var) return err(R, w.loc, "no var named '%.*s'", show_len(w.len), w.s);
    Node *of = *var;
    if (n->roles & ROLE_GRAD)
      return err(R, v.loc, "'%%%.*s' is already a gradient", show_len(v.len), v.s);
    if (!type_eq(&n->type, &of->type) && n->type.dtype != DT_ERR) {
      char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
      return err(R, v.loc, "the gradient of '%.*s' must have its type %s, got %s", show_len(w.len),
                 w.s, type_str(&of->type, a, sizeof a), type_str(&n->type, b, sizeof b));
    }
    n->roles |= ROLE_GRAD;
    n->grad_of = of;
    if (!accept(R, ',')) return expect_eol(R);
  }
}

/* kernel := 'kernel' 'k'NUMBER KIND TYPE '{'  - opens a block of nodes
 * that the fuse pass made one kernel; '}' closes it. The kind and type are
 * what the nodes imply (the verifier checks the nodes themselves). */
static bool parse_kernel(Reader *R) {
  RTok kw = R->tok;
  next(R);  /* 'kernel' */
  if (R->kernel) return err(R, kw.loc, "a kernel block cannot hold another");
  RTok w = R->tok;
  char buf[32];
  char *end = NULL;
  long k = w.kind == RT_WORD && word_buf(&w, buf, sizeof buf) && buf[0] == 'k' ? strtol(buf + 1, &end, 10) : 0;
  if (!end || *end || end == buf + 1 || k < 1 || k > READ_MAX_NODES)
    return expected(R, "a kernel name such as k1");
  next(R);
  RTok kind = R->tok;
  if (!is_word(&kind, "loop") && !is_word(&kind, "matmul") && !is_word(&kind, "softmax") && !is_word(&kind, "conv") &&
      !is_word(&kind, "reduce"))
    return expected(R, "a kernel kind (loop, matmul, softmax, conv, reduce)");
  next(R);
  Type t;
  if (!parse_type(R, &t)) return false;
  if (!expect(R, '{', "'{' after the kernel's type") || !expect_eol(R)) return false;
  R->kernel = (int)k;
  return true;
}

/* --------------------------------------------------------------- graphs */

/* graph := 'graph' WORD [LOC] '{' NL { line NL } '}'
 * A bad header line is reported and the body read all the same, so that
 * one typo does not turn every node line into an error. */
static void parse_graph(Reader *R) {
  next(R);  /* 'graph' */
  Graph *g = ir_graph_new(R->a, "?");
  RTok w = R->tok;
  int errors_before = R->d->n_errors;
  bool ok = w.kind == RT_WORD || expected(R, "a graph name");
  if (ok) {
    g->name = arena_strndup(R->a, w.s, w.len);
    if (!ir_namemap_put(R->graphs, w.s, w.len, g))
      err(R, w.loc, "duplicate graph '%.*s'", show_len(w.len), w.s);
    next(R);
  }
  if (ok && is_punct(R, '@')) ok = parse_loc(R, &g->loc);
  ok = ok && expect(R, '{', "'{' after the graph name") && expect_eol(R);
  if (!ok) skip_line(R);

  ir_module_add(R->m, g);
  R->g = g;
  R->values = ir_namemap_new();
  R->vars = ir_namemap_new();
  R->has_loss = false;
  R->n_outputs = 0;
  R->kernel = 0;
  while (!R->fatal) {
    while (R->tok.kind == RT_NL) next(R);
    RTok t = R->tok;
    bool line_ok;
    if (t.kind == RT_EOF) {
      err(R, t.loc, "expected '}' to close graph '%s', found end of input", g->name);
      break;
    }
    if (accept(R, '}')) {
      if (!expect_eol(R)) skip_line(R);
      if (!R->kernel) break;
      R->kernel = 0;  /* the end of a kernel block */
      continue;
    }
    if (is_word(&t, "graph")) {
      err(R, t.loc, "expected '}' to close graph '%s' before the next graph", g->name);
      break;
    }
    if (t.kind == RT_VALUE) line_ok = parse_node(R);
    else if (is_word(&t, "output")) line_ok = parse_output(R);
    else if (is_word(&t, "loss")) line_ok = parse_loss(R);
    else if (is_word(&t, "grad")) line_ok = parse_grad(R);
    else if (is_word(&t, "kernel")) line_ok = parse_kernel(R);
    else line_ok = expected(R, "a node, 'output', 'loss', 'grad', 'kernel' or '}'");
    if (!line_ok) skip_line(R);
  }
  /* the kernel blocks, now that all their nodes are read (and sound):
   * the fusion rules of ir_verify, so that what reads cleanly verifies */
  if (g->n_kernels && R->d->n_errors == errors_before && !R->fatal) {
    char *why = NULL;
    size_t why_len = 0;
    FILE *f = open_memstream(&why, &why_len);
    int bad = f ? ir_verify_kernels(g, f) : 0;
    if (f) fclose(f);
    if (!f) {
      err(R, w.loc, "graph '%s': out of memory", g->name);
    } else if (bad) {  /* the first problem, without "verify: " and the newline */
      const char *msg = strncmp(why, "verify: ", 8) ? why : why + 8;
      err(R, w.loc, "graph '%s' breaks the fusion rules: %.*s", g->name,
          (int)strcspn(msg, "\n"), msg);
    }
    free(why);
  }
  ir_namemap_free(R->values);
  ir_namemap_free(R->vars);
  R->values = R->vars = NULL;
}

/* module := { graph } */
Module *ir_read(Arena *a, Diag *d) {
  Reader R;
  memset(&R, 0, sizeof R);
  R.a = a;
  R.d = d;
  R.src = d->src ? d->src : "";
  R.len = d->src ? d->len : 0;
  R.line = 1;
  R.m = ARENA_NEW(a, Module);
  R.m->arena = a;
  R.graphs = ir_namemap_new();
  int errors_before = d->n_errors;
  next(&R);
  while (!R.fatal) {
    while (R.tok.kind == RT_NL) next(&R);
    if (R.tok.kind == RT_EOF) break;
    if (is_word(&R.tok, "graph")) {
      parse_graph(&R);
    } else {
      expected(&R, "'graph'");
      skip_line(&R);
    }
  }
  ir_namemap_free(R.graphs);
  nncc_free(R.ins);
  return d->n_errors > errors_before ? NULL : R.m;
}
