/* parse.c - recursive-descent parser: tokens -> the AST of frontend.h
 * (Program / Item / Stmt / Ast). Second stage of the frontend, between
 * lex.c and the elaborator; it checks syntax only (names, shapes, duplicate
 * keys and the like are the elaborator's job).
 *
 * Errors. Every message is reported to the Diag and parsing goes on:
 *  - One error per statement: the first error sets `panic`, which keeps
 *    the rest of that statement quiet; the statement is dropped and the
 *    parser skips to the next NEWLINE or ';' at the same brace depth (or
 *    the '}' closing the block). At top level it skips to the next line
 *    that starts with const, def, model or train.
 *  - Nesting is limited (SPEC §6): brackets, blocks, prefix operators,
 *    '**' and every operator of a left-associative chain count one level,
 *    so the C stack depth here and the height of every AST handed to later
 *    (recursive) stages stay bounded. Level 257 is one error, after which
 *    `stop` makes every token look like end of file: all loops end and the
 *    recursion unwinds at once, and the program parsed so far is returned.
 *  - Every loop iteration consumes a token or leaves the loop, so no input
 *    can make the parser spin. */
#include "frontend/frontend.h"

#include <string.h>

#define MAX_NEST 256

typedef struct Parser {
  Arena *arena;
  Diag *diag;
  const Token *toks;
  int n, pos;        /* toks[pos] is the next token */
  int depth;         /* nesting level now (see the header comment) */
  bool panic;        /* an error was reported in this statement: stay quiet */
  bool stop;         /* nesting limit hit: ignore the rest of the file */
  bool in_train;     /* in a train block: `loss` may name the metric */
  Token eof;         /* what peek returns at the end or once stopped */
} Parser;

/* ------------------------------------------------------------- tokens */

static const Token *peek(const Parser *p) {
  if (p->stop || p->pos >= p->n) return &p->eof;
  return &p->toks[p->pos];
}

/* One token of look-ahead past peek(): `name =` starts a keyword
 * argument, `loss =` misuses a keyword. */
static const Token *peek2(const Parser *p) {
  if (p->stop || p->pos + 1 >= p->n) return &p->eof;
  return &p->toks[p->pos + 1];
}

static const Token *next(Parser *p) {
  const Token *t = peek(p);
  if (t->kind != TK_EOF) p->pos++;
  return t;
}

static bool at(const Parser *p, TokKind k) { return peek(p)->kind == k; }

static bool accept(Parser *p, TokKind k) {
  if (!at(p, k)) return false;
  next(p);
  return true;
}

static bool is_keyword(TokKind k) { return k >= TK_KW_CONST && k <= TK_KW_BOOL; }

static bool is_item_keyword(TokKind k) {
  return k == TK_KW_CONST || k == TK_KW_DEF || k == TK_KW_MODEL || k == TK_KW_TRAIN;
}

/* Does the next token start a line? (top-level recovery points) */
static bool at_line_start(const Parser *p) {
  return p->pos == 0 || (p->pos <= p->n && p->toks[p->pos - 1].kind == TK_NEWLINE);
}

/* ------------------------------------------------------------- errors */

static void error_at(Parser *p, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void error_at(Parser *p, SrcLoc loc, const char *fmt, ...) {
  if (p->panic || p->stop) return;
  p->panic = true;
  /* the lexer already reported this line: a parse error here would only
   * be its echo (a skipped byte leaves a hole in the statement) */
  if (p->pos < p->n && p->toks[p->pos].lex_error && p->toks[p->pos].loc.line == loc.line) return;
  if (p->pos > 0 && p->toks[p->pos - 1].lex_error && p->toks[p->pos - 1].loc.line == loc.line) return;
  va_list ap;
  va_start(ap, fmt);
  diag_verror(p->diag, loc, fmt, ap);
  va_end(ap);
}

/* "identifier 'foo'", "integer '12'", "newline", "')'" for messages. */
static const char *describe(const Token *t, char *buf, size_t size) {
  int n = t->len > 32 ? 32 : t->len;
  const char *more = t->len > 32 ? "..." : "";
  switch (t->kind) {
  case TK_IDENT:
  case TK_INT:
  case TK_FLOAT:
    snprintf(buf, size, "%s '%.*s%s'", tok_kind_name(t->kind), n, t->start, more);
    return buf;
  default:
    return tok_kind_name(t->kind);
  }
}

/* "expected WHAT but found TOKEN", at the token found. */
static void expected(Parser *p, const char *what) {
  char buf[96];
  const Token *t = peek(p);
  error_at(p, t->loc, "expected %s but found %s", what, describe(t, buf, sizeof buf));
}

static bool expect(Parser *p, TokKind k) {
  if (accept(p, k)) return true;
  expected(p, tok_kind_name(k));
  return false;
}

static void keyword_as_name(Parser *p, const Token *t) {
  error_at(p, t->loc, "'%.*s' is a keyword and cannot be used as a name", t->len, t->start);
}

/* Python habits. Words the language does not have, met where a statement
 * or an item starts (they lex as identifiers: `if = 3` still binds a
 * name), get a message saying what to write instead of "expected '='". */
static const char no_if[] = "; use where(cond, a, b) to select elementwise, or a const and "
                            "-D NAME=VALUE to choose at compile time";
static const struct {
  const char *word;
  const char *msg, *more;
} python_words[] = {
    {"if", "there is no 'if' statement", no_if},
    {"elif", "there is no 'if'/'elif' statement", no_if},
    {"else", "there is no 'if'/'else' statement", no_if},
    {"while", "there is no 'while' loop; loops are unrolled at compile time: 'for i in 0..N { ... }' "
              "with a constant N", ""},
    {"import", "there is no 'import'; the built-in ops and the prelude's layers (dense, conv, ...) "
               "are always visible, and a file holds its own defs", ""},
    {"from", "there is no 'import'; the built-in ops and the prelude's layers (dense, conv, ...) "
             "are always visible, and a file holds its own defs", ""},
    {"print", "there is no print(); make the value an output to see it: 'output NAME'", ""},
};

/* Reports t if it is one of python_words; false if it is not. */
static bool python_word(Parser *p, const Token *t) {
  if (t->kind != TK_IDENT) return false;
  for (size_t i = 0; i < sizeof python_words / sizeof python_words[0]; i++)
    if (!strcmp(t->str, python_words[i].word)) {
      error_at(p, t->loc, "%s%s", python_words[i].msg, python_words[i].more);
      return true;
    }
  return false;
}

/* The source text of tokens [from, to) as written, or NULL when it is
 * empty or too long to quote in a message. */
static const char *tokens_text(Parser *p, int from, int to) {
  if (from >= to || to > p->n) return NULL;
  const Token *a = &p->toks[from], *b = &p->toks[to - 1];
  long len = (long)(b->start + b->len - a->start);
  if (len <= 0 || len > 40 || memchr(a->start, '\n', (size_t)len)) return NULL;
  return arena_printf(p->arena, "%.*s", (int)len, a->start);
}

/* `for i in range(...)`: the call's tokens are [from, to). Says which
 * range to write, from the call's own arguments when there are one or
 * two. */
static void range_call(Parser *p, const char *var, int from, int to) {
  const char *args[3] = {NULL, NULL, NULL};
  int n = 0, depth = 0, start = from + 2;  /* past `range (` */
  for (int i = start; i < to - 1 && n < 3; i++) {
    TokKind k = p->toks[i].kind;
    if (k == TK_LPAREN || k == TK_LBRACKET) depth++;
    if (k == TK_RPAREN || k == TK_RBRACKET) depth--;
    if (k == TK_COMMA && depth == 0) {
      args[n++] = tokens_text(p, start, i);
      start = i + 1;
    }
  }
  if (n < 3 && start < to - 1) args[n++] = tokens_text(p, start, to - 1);
  SrcLoc loc = p->toks[from].loc;
  if (n == 1 && args[0])
    error_at(p, loc, "there is no range(); write 'for %s in 0..%s'", var, args[0]);
  else if (n == 2 && args[0] && args[1])
    error_at(p, loc, "there is no range(); write 'for %s in %s..%s'", var, args[0], args[1]);
  else
    error_at(p, loc, "there is no range(); write 'for %s in LO..HI' (HI excluded, steps of 1)", var);
}

/* A name being declared or bound; `what` says which ("a model name"). */
static const char *expect_name(Parser *p, const char *what, SrcLoc *loc) {
  const Token *t = peek(p);
  if (t->kind == TK_IDENT) {
    next(p);
    if (loc) *loc = t->loc;
    return t->str;
  }
  if (is_keyword(t->kind)) keyword_as_name(p, t);
  else expected(p, what);
  return NULL;
}

/* Statements and keys end at a newline, a ';', the block's '}' (left for
 * the block) or the end of the file. */
static void end_of_stmt(Parser *p) {
  TokKind k = peek(p)->kind;
  if (k == TK_NEWLINE || k == TK_SEMI || k == TK_RBRACE || k == TK_EOF) return;
  expected(p, "newline or ';'");
}

/* Enters one nesting level, opened by the token at `loc`; false (after one
 * error for the whole file) when that would pass MAX_NEST. On false the
 * level was not entered. */
static bool nest_enter(Parser *p, SrcLoc loc) {
  if (p->depth >= MAX_NEST) {
    if (!p->stop) diag_error(p->diag, loc, "nesting is too deep (more than %d levels)", MAX_NEST);
    p->stop = true;
    p->panic = true;
    return false;
  }
  p->depth++;
  return true;
}

static void nest_leave(Parser *p) { p->depth--; }

/* Skips the rest of a broken statement: to the next NEWLINE or ';' at the
 * same brace depth, or the '}' that closes the block (both left in place),
 * or a line starting with a top-level keyword (a '}' was missing). */
static void sync_stmt(Parser *p) {
  int braces = 0;
  for (;;) {
    TokKind k = peek(p)->kind;
    if (k == TK_EOF) return;
    if ((k == TK_NEWLINE || k == TK_SEMI) && braces == 0) return;
    if (k == TK_RBRACE) {
      if (braces == 0) return;
      braces--;
    }
    if (k == TK_LBRACE) braces++;
    if (is_item_keyword(k) && at_line_start(p)) return;
    next(p);
  }
}

/* After a broken statement or train key (`before` is where it started):
 * skips the rest of it and clears the panic, so the next statement may
 * report. When the skip ran into the end of the file or the next item,
 * the panic stays: the enclosing block's missing '}' is a consequence
 * not worth a second error, and the enclosing item is dropped. */
static void recover_stmt(Parser *p, int before) {
  if (p->stop) return;
  sync_stmt(p);
  if (p->pos == before) next(p);  /* progress, whatever the statement did */
  if (at(p, TK_EOF) || (is_item_keyword(peek(p)->kind) && at_line_start(p))) return;
  p->panic = false;
}

/* Skips to the next line that starts with const, def, model or train. */
static void sync_item(Parser *p) {
  while (!at(p, TK_EOF) && !(is_item_keyword(peek(p)->kind) && at_line_start(p))) next(p);
}

/* ------------------------------------------------------------- building */

/* Growable arrays live in the arena: doubling keeps the total copied
 * linear, and nothing needs freeing on an error path. */
static void *grow(Arena *a, void *arr, int n, int *cap, size_t elem) {
  if (n < *cap) return arr;
  int nc = *cap ? *cap * 2 : 4;
  void *na = arena_alloc(a, elem * (size_t)nc);
  if (n) memcpy(na, arr, elem * (size_t)n);
  *cap = nc;
  return na;
}

#define PUSH(p, arr, n, cap, x)                                        \
  do {                                                                 \
    (arr) = grow((p)->arena, (arr), (n), &(cap), sizeof *(arr));       \
    (arr)[(n)++] = (x);                                                \
  } while (0)

static Ast *new_ast(Parser *p, AstKind kind, SrcLoc loc) {
  Ast *e = ARENA_NEW(p->arena, Ast);
  e->kind = kind;
  e->loc = loc;
  return e;
}

static Ast *new_binary(Parser *p, const Token *op, Ast *lhs, Ast *rhs) {
  Ast *e = new_ast(p, AST_BINARY, op->loc);
  e->op = op->kind;
  e->lhs = lhs;
  e->rhs = rhs;
  return e;
}

static Stmt *new_stmt(Parser *p, StmtKind kind, SrcLoc loc) {
  Stmt *s = ARENA_NEW(p->arena, Stmt);
  s->kind = kind;
  s->loc = loc;
  return s;
}

/* ------------------------------------------------------------- expressions */

static Ast *parse_expr(Parser *p);
static Ast *parse_unary(Parser *p);

static bool is_dtype(TokKind k) { return k == TK_KW_F32 || k == TK_KW_I32 || k == TK_KW_BOOL; }

/* type := ('f32'|'i32'|'bool') ['[' [dim (',' dim)* [',']] ']']
 * dim  := expr | '...'
 * `...` is accepted in any type; only def parameter patterns allow it, and
 * the elaborator says so. */
static Ast *parse_type(Parser *p) {
  const Token *t = peek(p);
  if (!is_dtype(t->kind)) {
    expected(p, "a type");
    return NULL;
  }
  next(p);
  Ast *ty = new_ast(p, AST_TYPE, t->loc);
  ty->dtype = t->kind == TK_KW_F32 ? DT_F32 : t->kind == TK_KW_I32 ? DT_I32 : DT_BOOL;
  if (!at(p, TK_LBRACKET)) return ty;
  if (!nest_enter(p, next(p)->loc)) return NULL;
  ty->has_dims = true;
  int cap = 0;
  while (!at(p, TK_RBRACKET)) {
    Ast *dim;
    if (at(p, TK_ELLIPSIS)) dim = new_ast(p, AST_ELLIPSIS, next(p)->loc);
    else dim = parse_expr(p);
    if (!dim) break;
    PUSH(p, ty->items, ty->n_items, cap, dim);
    if (!accept(p, TK_COMMA)) break;
  }
  nest_leave(p);
  return expect(p, TK_RBRACKET) ? ty : NULL;
}

static bool at_sub_end(const Parser *p) { return at(p, TK_COMMA) || at(p, TK_RBRACKET); }

/* sub := expr | [expr] ':' [expr] [':' [expr]]
 * Subscripts and list items share it: `x[:, 0:10]`, csv("f", x = [0:4]). */
static Ast *parse_sub(Parser *p) {
  SrcLoc loc = peek(p)->loc;
  Ast *start = NULL;
  if (!at(p, TK_COLON)) {
    start = parse_expr(p);
    if (!start || !at(p, TK_COLON)) return start;
  }
  next(p);  /* ':' */
  Ast *s = new_ast(p, AST_SLICE, loc);
  s->lhs = start;
  if (!at_sub_end(p) && !at(p, TK_COLON) && !(s->rhs = parse_expr(p))) return NULL;
  if (accept(p, TK_COLON) && !at_sub_end(p) && !(s->step = parse_expr(p))) return NULL;
  return s;
}

/* Parses `sub (',' sub)* [',']` up to the closing ']' (consumed) into
 * e->items; `allow_empty` for list literals. */
static Ast *parse_subs(Parser *p, Ast *e, bool allow_empty) {
  int cap = 0;
  if (!(allow_empty && at(p, TK_RBRACKET))) {
    do {
      if (e->n_items > 0 && at(p, TK_RBRACKET)) break;  /* trailing comma */
      Ast *s = parse_sub(p);
      if (!s) return NULL;
      PUSH(p, e->items, e->n_items, cap, s);
    } while (accept(p, TK_COMMA));
  }
  return expect(p, TK_RBRACKET) ? e : NULL;
}

/* args := [arg (',' arg)* [',']]
 * arg  := IDENT '=' expr | expr        (keyword arguments come last) */
static Ast *parse_call(Parser *p, Ast *callee) {
  next(p);  /* '(' */
  Ast *call = new_ast(p, AST_CALL, callee->loc);  /* at the callee: `dense(` */
  call->lhs = callee;
  int cap = 0;
  bool seen_kw = false;
  while (!at(p, TK_RPAREN)) {
    const Token *t = peek(p);
    Ast *arg;
    if ((t->kind == TK_IDENT || is_keyword(t->kind)) && peek2(p)->kind == TK_ASSIGN) {
      if (t->kind != TK_IDENT) {
        keyword_as_name(p, t);
        return NULL;
      }
      next(p);
      next(p);
      arg = new_ast(p, AST_KWARG, t->loc);
      arg->str = t->str;
      if (!(arg->lhs = parse_expr(p))) return NULL;
      seen_kw = true;
    } else {
      if (seen_kw) {
        error_at(p, t->loc, "positional argument follows keyword argument");
        return NULL;
      }
      if (!(arg = parse_expr(p))) return NULL;
    }
    PUSH(p, call->items, call->n_items, cap, arg);
    if (!accept(p, TK_COMMA)) break;
  }
  return expect(p, TK_RPAREN) ? call : NULL;
}

/* primary := INT | FLOAT | STRING | 'true' | 'false' | IDENT
 *          | '(' expr ')' | '[' [sub (',' sub)* [',']] ']' | type */
static Ast *parse_primary(Parser *p) {
  const Token *t = peek(p);
  Ast *e;
  switch (t->kind) {
  case TK_INT:
  case TK_FLOAT:
    next(p);
    e = new_ast(p, t->kind == TK_INT ? AST_INT : AST_FLOAT, t->loc);
    e->ival = t->ival;
    e->fval = t->fval;
    return e;
  case TK_KW_LOSS:
    if (!p->in_train) {
      keyword_as_name(p, t);
      return NULL;
    }
    next(p);  /* metrics = [accuracy, loss] */
    e = new_ast(p, AST_NAME, t->loc);
    e->str = "loss";
    return e;
  case TK_STRING:
    next(p);
    e = new_ast(p, AST_STRING, t->loc);
    e->str = t->str ? t->str : "";
    return e;
  case TK_KW_TRUE:
  case TK_KW_FALSE:
    next(p);
    e = new_ast(p, AST_BOOL, t->loc);
    e->ival = t->kind == TK_KW_TRUE;
    return e;
  case TK_IDENT:
    if (!strcmp(t->str, "lambda") && (peek2(p)->kind == TK_IDENT || peek2(p)->kind == TK_COLON)) {
      error_at(p, t->loc, "there is no 'lambda'; write a def and pass it by name: 'act = my_fn'");
      return NULL;
    }
    next(p);
    e = new_ast(p, AST_NAME, t->loc);
    e->str = t->str;
    return e;
  case TK_LPAREN:
    if (!nest_enter(p, next(p)->loc)) return NULL;
    e = parse_expr(p);
    nest_leave(p);
    return e && expect(p, TK_RPAREN) ? e : NULL;
  case TK_LBRACKET:
    if (!nest_enter(p, next(p)->loc)) return NULL;
    e = parse_subs(p, new_ast(p, AST_LIST, t->loc), true);
    nest_leave(p);
    return e;
  case TK_KW_F32:
  case TK_KW_I32:
  case TK_KW_BOOL:
    return parse_type(p);  /* a type as a value: zeros(f32[3, 4]) */
  default:
    if (is_keyword(t->kind)) keyword_as_name(p, t);
    else expected(p, "an expression");
    return NULL;
  }
}

/* postfix := primary ( '(' args ')' | '[' subs ']' )*
 * Each suffix wraps the expression so far: one nesting level each. */
static Ast *parse_postfix(Parser *p) {
  Ast *e = parse_primary(p);
  int levels = 0;
  while (e && (at(p, TK_LPAREN) || at(p, TK_LBRACKET))) {
    if (!nest_enter(p, peek(p)->loc)) {
      e = NULL;
      break;
    }
    levels++;
    if (at(p, TK_LPAREN)) {
      e = parse_call(p, e);
    } else {
      Ast *ix = new_ast(p, AST_INDEX, next(p)->loc);  /* at the '[' */
      ix->lhs = e;
      e = parse_subs(p, ix, false);
    }
  }
  p->depth -= levels;
  return e;
}

/* power := postfix ['**' unary]
 * Right-associative and tighter than unary minus on its left: -x**2 is
 * -(x**2), 2**-1 and a**b**c = a**(b**c) work. */
static Ast *parse_power(Parser *p) {
  Ast *base = parse_postfix(p);
  if (!base || !at(p, TK_STARSTAR)) return base;
  const Token *op = next(p);
  if (!nest_enter(p, op->loc)) return NULL;
  Ast *exp = parse_unary(p);
  nest_leave(p);
  return exp ? new_binary(p, op, base, exp) : NULL;
}

/* unary := ('-'|'+') unary | power */
static Ast *parse_unary(Parser *p) {
  if (!at(p, TK_MINUS) && !at(p, TK_PLUS)) return parse_power(p);
  const Token *op = next(p);
  if (!nest_enter(p, op->loc)) return NULL;
  Ast *x = parse_unary(p);
  nest_leave(p);
  if (!x) return NULL;
  Ast *e = new_ast(p, AST_UNARY, op->loc);
  e->op = op->kind;
  e->lhs = x;
  return e;
}

static bool is_mult_op(TokKind k) {
  return k == TK_STAR || k == TK_SLASH || k == TK_SLASHSLASH || k == TK_PERCENT || k == TK_AT;
}

static bool is_add_op(TokKind k) { return k == TK_PLUS || k == TK_MINUS; }

static bool is_compare_op(TokKind k) {
  return k == TK_LT || k == TK_LE || k == TK_GT || k == TK_GE || k == TK_EQ || k == TK_NE;
}

/* One left-associative level: operand (op operand)*. Each operator deepens
 * the left spine of the tree by one, so each counts as a nesting level. */
static Ast *parse_left_assoc(Parser *p, Ast *(*operand)(Parser *), bool (*is_op)(TokKind)) {
  Ast *lhs = operand(p);
  int levels = 0;
  while (lhs && is_op(peek(p)->kind)) {
    const Token *op = next(p);
    if (!nest_enter(p, op->loc)) {
      lhs = NULL;
      break;
    }
    levels++;
    Ast *rhs = operand(p);
    lhs = rhs ? new_binary(p, op, lhs, rhs) : NULL;
  }
  p->depth -= levels;
  return lhs;
}

/* mult := unary (('*'|'/'|'//'|'%'|'@') unary)* */
static Ast *parse_mult(Parser *p) { return parse_left_assoc(p, parse_unary, is_mult_op); }

/* additive := mult (('+'|'-') mult)* */
static Ast *parse_additive(Parser *p) { return parse_left_assoc(p, parse_mult, is_add_op); }

/* compare := additive [('<'|'<='|'>'|'>='|'=='|'!=') additive]
 * Non-associative: `a < b < c` means something else in Python and in C, so
 * it is an error rather than a guess. */
static Ast *parse_compare(Parser *p) {
  Ast *lhs = parse_additive(p);
  if (!lhs || !is_compare_op(peek(p)->kind)) return lhs;
  const Token *op = next(p);
  Ast *rhs = parse_additive(p);
  if (!rhs) return NULL;
  if (is_compare_op(peek(p)->kind)) {
    error_at(p, peek(p)->loc, "comparisons cannot be chained");
    return NULL;
  }
  return new_binary(p, op, lhs, rhs);
}

/* expr := compare */
static Ast *parse_expr(Parser *p) { return parse_compare(p); }

/* ------------------------------------------------------------- statements */

static Stmt **parse_block(Parser *p, int *n_out);

/* expr (',' expr)*  into s->exprs (output, return) */
static bool parse_expr_list(Parser *p, Stmt *s) {
  int cap = 0;
  do {
    Ast *e = parse_expr(p);
    if (!e) return false;
    PUSH(p, s->exprs, s->n_exprs, cap, e);
  } while (accept(p, TK_COMMA));
  return true;
}

/* Appends a name and its location (two arrays kept at one capacity). */
static void add_name(Parser *p, Stmt *s, const char *name, SrcLoc loc, int *cap) {
  int cap2 = *cap;
  s->names = grow(p->arena, s->names, s->n_names, cap, sizeof *s->names);
  s->name_locs = grow(p->arena, s->name_locs, s->n_names, &cap2, sizeof *s->name_locs);
  s->names[s->n_names] = name;
  s->name_locs[s->n_names++] = loc;
}

/* stmt := 'input' IDENT ':' type
 *       | 'param' IDENT ':' type ['=' expr]
 *       | 'state' IDENT ':' type ['=' expr]
 *       | 'output' expr (',' expr)*
 *       | 'loss' expr
 *       | 'return' expr (',' expr)*
 *       | 'for' IDENT 'in' expr '..' expr block
 *       | IDENT (',' IDENT)* '=' expr
 * Returns NULL after an error (p->panic is set). */
static Stmt *parse_stmt(Parser *p) {
  const Token *t = peek(p);
  TokKind after = peek2(p)->kind;
  /* `loss = ...`, `input, x = ...`: a keyword where a name is bound */
  if (is_keyword(t->kind) && (after == TK_ASSIGN || after == TK_COMMA)) {
    keyword_as_name(p, t);
    return NULL;
  }
  Stmt *s;
  int cap = 0;
  SrcLoc loc;
  const char *name;
  switch (t->kind) {
  case TK_KW_INPUT:
  case TK_KW_PARAM:
  case TK_KW_STATE:
    next(p);
    s = new_stmt(p, t->kind == TK_KW_INPUT ? ST_INPUT : t->kind == TK_KW_PARAM ? ST_PARAM : ST_STATE,
                 t->loc);
    if (!(name = expect_name(p, "a name", &loc))) return NULL;
    add_name(p, s, name, loc, &cap);
    if (!expect(p, TK_COLON) || !(s->type = parse_type(p))) return NULL;
    if (s->kind != ST_INPUT && accept(p, TK_ASSIGN) && !(s->value = parse_expr(p))) return NULL;
    return s;
  case TK_KW_OUTPUT:
  case TK_KW_RETURN:
    next(p);
    s = new_stmt(p, t->kind == TK_KW_OUTPUT ? ST_OUTPUT : ST_RETURN, t->loc);
    return parse_expr_list(p, s) ? s : NULL;
  case TK_KW_LOSS:
    next(p);
    s = new_stmt(p, ST_LOSS, t->loc);
    return (s->value = parse_expr(p)) ? s : NULL;
  case TK_KW_FOR:
    next(p);
    s = new_stmt(p, ST_FOR, t->loc);
    if (!(name = expect_name(p, "a loop variable", &loc))) return NULL;
    add_name(p, s, name, loc, &cap);
    if (!expect(p, TK_KW_IN)) return NULL;
    int lo_from = p->pos;
    if (!(s->lo = parse_expr(p))) return NULL;
    if (!at(p, TK_DOTDOT) && s->lo->kind == AST_CALL && s->lo->lhs->kind == AST_NAME &&
        !strcmp(s->lo->lhs->str, "range") && p->toks[lo_from].kind == TK_IDENT &&
        p->toks[lo_from + 1].kind == TK_LPAREN) {  /* not `(range)(10)` */
      range_call(p, name, lo_from, p->pos);
      return NULL;
    }
    if (!expect(p, TK_DOTDOT) || !(s->hi = parse_expr(p))) return NULL;
    s->body = parse_block(p, &s->n_body);
    return p->panic ? NULL : s;
  case TK_IDENT:
    if (after != TK_ASSIGN && after != TK_COMMA) {
      if (python_word(p, t)) return NULL;
      if (after == TK_LPAREN) {
        error_at(p, t->loc, "a call is not a statement; bind its value to a name: 'h = %s(...)'",
                 t->str);
        return NULL;
      }
    }
    s = new_stmt(p, ST_BIND, t->loc);
    do {
      if (!(name = expect_name(p, "a name", &loc))) return NULL;
      add_name(p, s, name, loc, &cap);
    } while (accept(p, TK_COMMA));
    if (!expect(p, TK_ASSIGN)) return NULL;
    return (s->value = parse_expr(p)) ? s : NULL;
  default:
    expected(p, "a statement");
    return NULL;
  }
}

/* The '{' that opens a block; Python's ':' gets its own message. */
static bool expect_brace(Parser *p) {
  if (at(p, TK_COLON)) {
    error_at(p, peek(p)->loc, "a block is written in braces, '{ ... }', not after ':'");
    return false;
  }
  return expect(p, TK_LBRACE);
}

/* block := '{' stmt* '}'   statements separated by NEWLINE or ';'
 * A newline before the '{' is allowed (brace on its own line). A block
 * counts one nesting level. After an error in a statement, the statement
 * is dropped and parsing resumes after it. */
static Stmt **parse_block(Parser *p, int *n_out) {
  Stmt **body = NULL;
  int n = 0, cap = 0;
  *n_out = 0;
  accept(p, TK_NEWLINE);
  SrcLoc brace = peek(p)->loc;
  if (!expect_brace(p) || !nest_enter(p, brace)) return NULL;
  for (;;) {
    const Token *t = peek(p);
    if (t->kind == TK_RBRACE) {
      next(p);
      break;
    }
    if (t->kind == TK_NEWLINE || t->kind == TK_SEMI) {
      next(p);
      continue;
    }
    if (t->kind == TK_EOF || is_item_keyword(t->kind)) {
      expected(p, "'}'");  /* unclosed block; the top level resumes here */
      break;
    }
    int before = p->pos;
    Stmt *s = parse_stmt(p);
    if (s && !p->panic) end_of_stmt(p);
    if (p->panic) recover_stmt(p, before);
    else
      PUSH(p, body, n, cap, s);
  }
  nest_leave(p);
  *n_out = n;
  return body;
}

/* ------------------------------------------------------------- items */

typedef struct ItemVec {
  Item **items;
  int n, cap;
} ItemVec;

/* const_decl := 'const' IDENT '=' expr (',' IDENT '=' expr)*
 * One ITEM_CONST per name, each located at the 'const' keyword. */
static void parse_const(Parser *p, ItemVec *out) {
  SrcLoc kw = next(p)->loc;
  do {
    Item *it = ARENA_NEW(p->arena, Item);
    it->kind = ITEM_CONST;
    it->loc = kw;
    if (!(it->name = expect_name(p, "a constant name", &it->name_loc))) return;
    if (!at(p, TK_ASSIGN)) {
      expected(p, "'=' after const name");
      return;
    }
    next(p);
    if (!(it->value = parse_expr(p))) return;
    PUSH(p, out->items, out->n, out->cap, it);
  } while (accept(p, TK_COMMA));
  end_of_stmt(p);
}

/* def   := 'def' IDENT '(' [param (',' param)* [',']] ')' block
 * param := IDENT [':' type] ['=' expr]
 * A parameter without a default may not follow one with a default. */
static Item *parse_def(Parser *p) {
  Item *it = ARENA_NEW(p->arena, Item);
  it->kind = ITEM_DEF;
  it->loc = next(p)->loc;
  if (!(it->name = expect_name(p, "a function name", &it->name_loc))) return NULL;
  if (!expect(p, TK_LPAREN)) return NULL;
  int cap = 0;
  bool seen_default = false;
  while (!at(p, TK_RPAREN)) {
    DefParam dp = {0};
    if (!(dp.name = expect_name(p, "a parameter name", &dp.loc))) return NULL;
    if (accept(p, TK_COLON) && !(dp.pattern = parse_type(p))) return NULL;
    if (accept(p, TK_ASSIGN)) {
      if (!(dp.default_value = parse_expr(p))) return NULL;
      seen_default = true;
    } else if (seen_default) {
      error_at(p, dp.loc, "parameter '%s' without a default follows a parameter with a default",
               dp.name);
      return NULL;
    }
    PUSH(p, it->params, it->n_params, cap, dp);
    if (!accept(p, TK_COMMA)) break;
  }
  if (!expect(p, TK_RPAREN)) return NULL;
  it->body = parse_block(p, &it->n_body);
  return p->panic ? NULL : it;
}

/* model := 'model' IDENT block */
static Item *parse_model(Parser *p) {
  Item *it = ARENA_NEW(p->arena, Item);
  it->kind = ITEM_MODEL;
  it->loc = next(p)->loc;
  if (!(it->name = expect_name(p, "a model name", &it->name_loc))) return NULL;
  it->body = parse_block(p, &it->n_body);
  return p->panic ? NULL : it;
}

/* train := 'train' IDENT '{' (NEWLINE | ';' | IDENT '=' expr)* '}'
 * Each key ends at a newline, ';' or the '}'. Which keys are known and
 * whether one repeats is the elaborator's business. */
static Item *parse_train(Parser *p) {
  Item *it = ARENA_NEW(p->arena, Item);
  it->kind = ITEM_TRAIN;
  it->loc = next(p)->loc;
  if (!(it->name = expect_name(p, "a model name", &it->name_loc))) return NULL;
  accept(p, TK_NEWLINE);
  SrcLoc brace = peek(p)->loc;
  if (!expect_brace(p) || !nest_enter(p, brace)) return NULL;
  int cap = 0;
  for (;;) {
    const Token *t = peek(p);
    if (t->kind == TK_RBRACE) {
      next(p);
      break;
    }
    if (t->kind == TK_NEWLINE || t->kind == TK_SEMI) {
      next(p);
      continue;
    }
    if (t->kind == TK_EOF || is_item_keyword(t->kind)) {
      expected(p, "'}'");
      break;
    }
    int before = p->pos;
    TrainKey k = {0};
    p->in_train = true;
    if ((k.key = expect_name(p, "a setting name", &k.loc)) && expect(p, TK_ASSIGN) &&
        (k.value = parse_expr(p)))
      end_of_stmt(p);
    p->in_train = false;
    if (p->panic) recover_stmt(p, before);
    else PUSH(p, it->keys, it->n_keys, cap, k);
  }
  nest_leave(p);
  return p->panic ? NULL : it;
}

/* program := (NEWLINE | ';' | item)* EOF
 * item    := const_decl | def | model | train */
Program *parse_program(Arena *a, Diag *d, const Token *toks, int n_tokens) {
  Parser P = {.arena = a, .diag = d, .toks = toks, .n = toks ? n_tokens : 0};
  Parser *p = &P;
  /* the lexer always ends the array with EOF; a missing one is treated as
   * if it were there */
  if (p->n > 0 && toks[p->n - 1].kind == TK_EOF) p->eof = toks[p->n - 1];
  else p->eof = (Token){.kind = TK_EOF, .loc = {1, 1}, .start = "", .len = 0};
  ItemVec out = {0};
  while (!at(p, TK_EOF)) {
    const Token *t = peek(p);
    if (t->kind == TK_NEWLINE || t->kind == TK_SEMI) {
      next(p);
      continue;
    }
    int before = p->pos;
    Item *it = NULL;
    switch (t->kind) {
    case TK_KW_CONST: parse_const(p, &out); break;
    case TK_KW_DEF: it = parse_def(p); break;
    case TK_KW_MODEL: it = parse_model(p); break;
    case TK_KW_TRAIN: it = parse_train(p); break;
    default:
      if (!python_word(p, t)) expected(p, "'const', 'def', 'model' or 'train'");
      break;
    }
    if (p->panic) {
      if (p->stop) break;
      if (p->pos == before) next(p);
      sync_item(p);
      p->panic = false;
    } else if (it) {
      PUSH(p, out.items, out.n, out.cap, it);
    }
  }
  Program *prog = ARENA_NEW(a, Program);
  prog->items = out.items;
  prog->n_items = out.n;
  return prog;
}
