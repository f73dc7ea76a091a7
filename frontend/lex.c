/* lex.c - the lexer: the bytes of a .nn source -> an array of tokens that
 * ends in TK_EOF. First stage of the frontend (lex -> parse -> elaborate).
 *
 * One linear pass, no recursion, no backtracking beyond one byte of
 * look-ahead, so a 1 MB line or a 10 MB file costs time proportional to
 * its size. Lexical errors go to the Diag; the lexer skips the offending
 * bytes and goes on, so one run reports every lexical error (SPEC §5).
 * Where a token was malformed but its kind is clear (a bad number, an
 * unterminated string) a placeholder token is still emitted, so the
 * parser does not add a second error for the same mistake.
 *
 * Newlines are tokens (they end statements) except inside () and [],
 * where they continue the statement (SPEC §6). Braces never appear inside
 * () or [] in valid code, so a '{' or '}' closes any brackets left open:
 * an unclosed '(' then swallows at most the rest of its block instead of
 * the rest of the file. */
#include "frontend/frontend.h"

#include <stdarg.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- tables */

static const char *const kind_names[TK_COUNT] = {
#define X(e, s) s,
    TOKEN_KINDS(X)
#undef X
};

const char *tok_kind_name(TokKind k) {
  return (unsigned)k < TK_COUNT ? kind_names[k] : "?";
}

/* Keywords are reserved everywhere (SPEC §6 Scope). */
static const struct {
  const char *word;
  TokKind kind;
} keywords[] = {
    {"const", TK_KW_CONST}, {"def", TK_KW_DEF},       {"model", TK_KW_MODEL},
    {"train", TK_KW_TRAIN}, {"input", TK_KW_INPUT},   {"param", TK_KW_PARAM},
    {"state", TK_KW_STATE}, {"output", TK_KW_OUTPUT}, {"loss", TK_KW_LOSS},
    {"for", TK_KW_FOR},     {"in", TK_KW_IN},         {"return", TK_KW_RETURN},
    {"true", TK_KW_TRUE},   {"false", TK_KW_FALSE},   {"f32", TK_KW_F32},
    {"i32", TK_KW_I32},     {"bool", TK_KW_BOOL},
};

/* Longest text of a token quoted in a message; longer runs are cut with
 * "..." so a 1 MB bad number does not make a 1 MB diagnostic. */
#define QUOTE_MAX 40

/* ------------------------------------------------------------- state */

typedef struct Lexer {
  Arena *arena;
  Diag *diag;
  const char *src;
  size_t len;
  size_t pos;         /* next byte to read */
  size_t line_start;  /* offset of the first byte of the current line */
  int line;           /* 1-based */
  int depth;          /* open '(' and '[': newlines inside are dropped */
  Token *toks;        /* scratch (nncc_realloc) while lexing (realloc is amortized
                         O(1) and wastes nothing), copied to the arena */
  int n, cap;
  int *bad_lines;     /* lines with a lexical error, ascending (scratch) */
  int n_bad, cap_bad;
} Lexer;

static bool is_digit(int c) { return c >= '0' && c <= '9'; }
static bool is_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
static bool is_alnum(int c) { return is_alpha(c) || is_digit(c); }

/* The byte at offset i, or 0 past the end: the source need not be
 * NUL-terminated (d->len is authoritative), and a real NUL byte is
 * handled before any look-ahead depends on it. */
static int at(const Lexer *L, size_t i) { return i < L->len ? (unsigned char)L->src[i] : 0; }

/* Every offset a token spans lies on the current line: only the newline
 * case advances `line`, and strings and comments stop at a newline. */
static SrcLoc loc_of(const Lexer *L, size_t off) {
  return (SrcLoc){L->line, (int)(off - L->line_start) + 1};
}

/* A lexical error. Its line is remembered: the tokens of that line are
 * flagged so the parser stays quiet there instead of adding a second,
 * consequential error for the same mistake. */
static void lex_err(Lexer *L, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void lex_err(Lexer *L, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(L->diag, loc, fmt, ap);
  va_end(ap);
  if (L->n_bad && L->bad_lines[L->n_bad - 1] >= loc.line) return;
  if (L->n_bad == L->cap_bad) {
    L->cap_bad = L->cap_bad ? 2 * L->cap_bad : 16;
    L->bad_lines = nncc_realloc(L->bad_lines, sizeof(int) * (size_t)L->cap_bad);
  }
  L->bad_lines[L->n_bad++] = loc.line;
}

/* Writes s[0..n) into buf (QUOTE_MAX + 4 bytes), cut with "..." if long. */
static const char *clip(char *buf, const char *s, size_t n) {
  if (n <= QUOTE_MAX) {
    memcpy(buf, s, n);
    buf[n] = 0;
  } else {
    memcpy(buf, s, QUOTE_MAX);
    memcpy(buf + QUOTE_MAX, "...", 4);
  }
  return buf;
}

static Token *push(Lexer *L, TokKind kind, size_t start, size_t end) {
  if (L->n == L->cap) {
    L->cap = L->cap ? L->cap * 2 : 256;
    L->toks = nncc_realloc(L->toks, sizeof(Token) * (size_t)L->cap);
  }
  Token *t = &L->toks[L->n++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  t->loc = loc_of(L, start);
  t->start = L->src + start;
  t->len = (int)(end - start);
  return t;
}

/* ------------------------------------------------------------- numbers */

/* number := digits ['.' digits?] [exp] | '.' digits [exp]
 *   exp  := ('e'|'E') ['+'|'-'] digits
 * A '.' followed by another '.' is not part of the number: `0..T` is 0,
 * '..', T. A number running straight into a letter, digit or '_' (`12abc`,
 * `1e`, `1e+`) is one invalid token covering the whole run. */
static void lex_number(Lexer *L) {
  size_t s = L->pos, p = s;
  bool is_float = false, ok = true;
  while (is_digit(at(L, p))) p++;
  if (at(L, p) == '.' && at(L, p + 1) != '.') {
    is_float = true;
    p++;
    while (is_digit(at(L, p))) p++;
  }
  if (at(L, p) == 'e' || at(L, p) == 'E') {
    is_float = true;
    p++;
    if (at(L, p) == '+' || at(L, p) == '-') p++;
    size_t digits = p;
    while (is_digit(at(L, p))) p++;
    if (p == digits) ok = false;
  }
  if (is_alnum(at(L, p))) ok = false;
  char q[QUOTE_MAX + 4];
  if (!ok) {
    while (is_alnum(at(L, p))) p++;
    lex_err(L, loc_of(L, s), "invalid number '%s'", clip(q, L->src + s, p - s));
    /* placeholder of the kind it looked like: no second error from the parser */
    push(L, is_float ? TK_FLOAT : TK_INT, s, p);
    L->pos = p;
    return;
  }
  Token *t = push(L, is_float ? TK_FLOAT : TK_INT, s, p);
  if (!is_float) {
    int64_t v = 0;
    for (size_t i = s; i < p; i++) {
      int dig = L->src[i] - '0';
      if (v > (INT64_MAX - dig) / 10) {
        lex_err(L, t->loc, "integer literal '%s' is too large",
                   clip(q, L->src + s, p - s));
        v = 0;
        break;
      }
      v = v * 10 + dig;
    }
    t->ival = v;
    t->fval = (double)v;
  } else {
    /* strtod needs a terminated copy: the source need not end in NUL */
    char small[64];
    char *buf = p - s < sizeof small ? small : nncc_malloc(p - s + 1);
    memcpy(buf, L->src + s, p - s);
    buf[p - s] = 0;
    t->fval = strtod(buf, NULL);
    if (buf != small) nncc_free(buf);
    if (isinf(t->fval)) {
      lex_err(L, t->loc, "number literal '%s' is too large", clip(q, L->src + s, p - s));
      t->fval = 0;
    }
  }
  L->pos = p;
}

/* ------------------------------------------------------------- strings */

/* string := '"' (char | '\"' | '\\' | '\n')* '"', on one line. Any byte
 * but NUL and newline may appear, non-ASCII included (UTF-8 paths). An
 * unterminated string is reported at its opening quote; the newline that
 * ended it is left for the main loop. */
static void lex_string(Lexer *L) {
  size_t s = L->pos, p = s + 1;
  /* first pass: find the end, so the decoded value fits one allocation */
  while (p < L->len && L->src[p] != '"' && L->src[p] != '\n') {
    if (L->src[p] == '\\' && p + 1 < L->len && L->src[p + 1] != '\n') p++;
    p++;
  }
  bool closed = p < L->len && L->src[p] == '"';
  size_t end = closed ? p + 1 : p;
  char *val = arena_alloc(L->arena, p - s);
  size_t n = 0;
  for (size_t i = s + 1; i < p; i++) {
    char c = L->src[i];
    if (c == 0) {
      lex_err(L, loc_of(L, i), "NUL byte in source");
      continue;
    }
    if (c != '\\') {
      val[n++] = c;
      continue;
    }
    if (i + 1 >= p) break;  /* a '\' right before the newline or end: unterminated */
    char e = L->src[++i];
    if (e == 0) {
      lex_err(L, loc_of(L, i), "NUL byte in source");
    } else if (e == '"' || e == '\\') {
      val[n++] = e;
    } else if (e == 'n') {
      val[n++] = '\n';
    } else if ((unsigned char)e >= 0x20 && (unsigned char)e < 0x7f) {
      lex_err(L, loc_of(L, i - 1), "unknown escape '\\%c' in string", e);
    } else {
      lex_err(L, loc_of(L, i - 1), "unknown escape ('\\' and byte 0x%02x) in string",
                 (unsigned char)e);
    }
  }
  val[n] = 0;
  if (!closed) {
    lex_err(L, loc_of(L, s), "unterminated string");
    L->depth = 0;  /* the string ate any ')': let the newline end the statement */
  }
  Token *t = push(L, TK_STRING, s, end);
  t->str = val;
  L->pos = end;
}

/* ------------------------------------------------------------- main loop */

static void newline(Lexer *L, size_t s, size_t n) {
  /* dropped inside () and [], collapsed when repeated, and dropped at the
   * start of the file: the parser sees at most one in a row */
  if (L->depth == 0 && L->n > 0 && L->toks[L->n - 1].kind != TK_NEWLINE)
    push(L, TK_NEWLINE, s, s + n);
  L->pos = s + n;
  L->line++;
  L->line_start = L->pos;
}

/* Operators, longest match first. Returns false for a byte that starts
 * no operator. */
static bool lex_operator(Lexer *L) {
  size_t s = L->pos;
  int c = at(L, s), c1 = at(L, s + 1);
  TokKind k;
  size_t n = 1;
  switch (c) {
  case '(': k = TK_LPAREN; L->depth++; break;
  case ')': k = TK_RPAREN; if (L->depth > 0) L->depth--; break;
  case '[': k = TK_LBRACKET; L->depth++; break;
  case ']': k = TK_RBRACKET; if (L->depth > 0) L->depth--; break;
  case '{': k = TK_LBRACE; L->depth = 0; break;
  case '}': k = TK_RBRACE; L->depth = 0; break;
  case ',': k = TK_COMMA; break;
  case ';': k = TK_SEMI; break;
  case ':': k = TK_COLON; break;
  case '.':
    if (c1 == '.' && at(L, s + 2) == '.') k = TK_ELLIPSIS, n = 3;
    else if (c1 == '.') k = TK_DOTDOT, n = 2;
    else k = TK_DOT;
    break;
  case '=': if (c1 == '=') k = TK_EQ, n = 2; else k = TK_ASSIGN; break;
  case '+': k = TK_PLUS; break;
  case '-': k = TK_MINUS; break;
  case '*': if (c1 == '*') k = TK_STARSTAR, n = 2; else k = TK_STAR; break;
  case '/': if (c1 == '/') k = TK_SLASHSLASH, n = 2; else k = TK_SLASH; break;
  case '%': k = TK_PERCENT; break;
  case '@': k = TK_AT; break;
  case '<': if (c1 == '=') k = TK_LE, n = 2; else k = TK_LT; break;
  case '>': if (c1 == '=') k = TK_GE, n = 2; else k = TK_GT; break;
  case '!': if (c1 == '=') { k = TK_NE; n = 2; break; } return false;
  default: return false;
  }
  push(L, k, s, s + n);
  L->pos = s + n;
  return true;
}

static void lex_ident(Lexer *L) {
  size_t s = L->pos, p = s;
  while (is_alnum(at(L, p))) p++;
  size_t n = p - s;
  Token *t = push(L, TK_IDENT, s, p);
  for (size_t i = 0; i < sizeof keywords / sizeof keywords[0]; i++) {
    if (strlen(keywords[i].word) == n && !memcmp(keywords[i].word, L->src + s, n)) {
      t->kind = keywords[i].kind;
      t->str = keywords[i].word;  /* static: lets messages name the keyword */
      break;
    }
  }
  if (t->kind == TK_IDENT) t->str = arena_strndup(L->arena, L->src + s, n);
  L->pos = p;
}

/* A byte that starts no token. A run of non-ASCII bytes is one error (one
 * UTF-8 character is several bytes; a binary file would otherwise make an
 * error per byte). */
static void bad_byte(Lexer *L) {
  size_t s = L->pos;
  unsigned char c = (unsigned char)L->src[s];
  SrcLoc loc = loc_of(L, s);
  L->pos++;
  if (c == 0) {
    lex_err(L, loc, "NUL byte in source");
  } else if (c >= 0x80) {
    while (L->pos < L->len && (unsigned char)L->src[L->pos] >= 0x80) L->pos++;
    lex_err(L, loc, "unexpected byte 0x%02x", c);
  } else if (c < 0x20 || c == 0x7f) {
    lex_err(L, loc, "unexpected byte 0x%02x", c);
  } else {
    lex_err(L, loc, "unexpected character '%c'", c);
  }
}

Token *lex(Arena *a, Diag *d, int *n_tokens) {
  Lexer L = {.arena = a, .diag = d, .src = d->src ? d->src : "", .len = d->src ? d->len : 0,
             .line = 1};
  while (L.pos < L.len) {
    size_t s = L.pos;
    int c = (unsigned char)L.src[s];
    if (c == ' ' || c == '\t' || c == '\f' || c == '\v' || (c == '\r' && at(&L, s + 1) != '\n')) {
      L.pos++;
    } else if (c == '\n') {
      newline(&L, s, 1);
    } else if (c == '\r') {  /* "\r\n": one newline */
      newline(&L, s, 2);
    } else if (c == '#') {  /* comment: any bytes but NUL, up to the newline */
      size_t p = s + 1;
      while (p < L.len && L.src[p] != '\n') {
        if (L.src[p] == 0) lex_err(&L, loc_of(&L, p), "NUL byte in source");
        p++;
      }
      L.pos = p;
    } else if (is_digit(c) || (c == '.' && is_digit(at(&L, s + 1)))) {
      lex_number(&L);
    } else if (is_alpha(c)) {
      lex_ident(&L);
    } else if (c == '"') {
      lex_string(&L);
    } else if (!lex_operator(&L)) {
      bad_byte(&L);
    }
  }
  /* EOF points just past the last byte: after a final newline that is
   * column 1 of the next line (SPEC §6) */
  push(&L, TK_EOF, L.len, L.len);
  Token *out = ARENA_ARRAY(a, Token, L.n);
  memcpy(out, L.toks, sizeof(Token) * (size_t)L.n);
  nncc_free(L.toks);
  for (int i = 0, b = 0; i < L.n && b < L.n_bad; i++) {
    while (b < L.n_bad && L.bad_lines[b] < out[i].loc.line) b++;
    if (b < L.n_bad && L.bad_lines[b] == out[i].loc.line) out[i].lex_error = true;
  }
  nncc_free(L.bad_lines);
  if (n_tokens) *n_tokens = L.n;
  return out;
}
