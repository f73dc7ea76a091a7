/* ast_print.c - `nncc --emit=ast`: the parsed program as indented
 * S-expressions. Sits right after the parser; tests compare its output
 * with expected text, so the format below is stable.
 *
 * Items, one or more lines each, in source order:
 *   (const B (int 64))
 *   (def NAME (params P...) STMT...)   P is `x`, `(x TYPE)`, `(x = EXPR)`
 *                                      or `(x TYPE = EXPR)`
 *   (model NAME STMT...)
 *   (train NAME (KEY EXPR)...)
 * Statements and train keys go on their own lines, indented two spaces per
 * level; closing parentheses end the last line (Lisp style):
 *   (input x TYPE)            (param w TYPE [INIT])   (state m TYPE [INIT])
 *   (bind (h) EXPR)           (bind (h c) EXPR)       (output E...)
 *   (loss EXPR)               (return E...)           (for t LO HI STMT...)
 * Expressions, always on one line:
 *   (int 64)  (float 0.001)  (string "a\"b")  (bool true)  (name x)
 *   (binary + L R)   (unary - X)   (call F ARG...)   (kw axis (int 1))
 *   (index X SUB...)  (slice START STOP STEP) with `-` for an absent part
 *   (list ...)  (type f32 DIM...)  (type f32 []) for `f32[]`, (type f32)
 *   for a bare `f32`, and `...` for an ellipsis dimension.
 * Floats print in the shortest %.*g form that reads back to the same
 * double. Strings escape '"', '\' and newline as in the language, other
 * control bytes as \xNN; bytes >= 0x80 pass through (UTF-8). */
#include "frontend/frontend.h"

#include <stdlib.h>
#include <string.h>

static void print_double(FILE *out, double v) {
  char buf[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(buf, sizeof buf, "%.*g", prec, v);
    if (strtod(buf, NULL) == v) break;
  }
  fputs(buf, out);
}

static void print_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
    if (*c == '"' || *c == '\\') fprintf(out, "\\%c", *c);
    else if (*c == '\n') fputs("\\n", out);
    else if (*c < 0x20 || *c == 0x7f) fprintf(out, "\\x%02x", *c);
    else fputc(*c, out);
  }
  fputc('"', out);
}

/* An operator's spelling: tok_kind_name gives it quoted ("'+'"). */
static void print_op(FILE *out, TokKind op) {
  const char *q = tok_kind_name(op);
  size_t n = strlen(q);
  if (n >= 2 && q[0] == '\'') fprintf(out, "%.*s", (int)(n - 2), q + 1);
  else fputs(q, out);
}

/* Expression or `-` when absent (slice parts, partial trees). */
static void print_opt(FILE *out, const Ast *e) {
  if (e) ast_print_expr(out, e);
  else fputc('-', out);
}

static void print_items(FILE *out, Ast *const *items, int n) {
  for (int i = 0; i < n; i++) {
    fputc(' ', out);
    print_opt(out, items[i]);
  }
}

void ast_print_expr(FILE *out, const Ast *e) {
  if (!e) {
    fputc('-', out);
    return;
  }
  switch (e->kind) {
  case AST_INT: fprintf(out, "(int %lld)", (long long)e->ival); return;
  case AST_FLOAT:
    fputs("(float ", out);
    print_double(out, e->fval);
    fputc(')', out);
    return;
  case AST_STRING:
    fputs("(string ", out);
    print_string(out, e->str ? e->str : "");
    fputc(')', out);
    return;
  case AST_BOOL: fprintf(out, "(bool %s)", e->ival ? "true" : "false"); return;
  case AST_NAME: fprintf(out, "(name %s)", e->str); return;
  case AST_BINARY:
  case AST_UNARY:
    fputs(e->kind == AST_BINARY ? "(binary " : "(unary ", out);
    print_op(out, e->op);
    fputc(' ', out);
    print_opt(out, e->lhs);
    if (e->kind == AST_BINARY) {
      fputc(' ', out);
      print_opt(out, e->rhs);
    }
    fputc(')', out);
    return;
  case AST_CALL:
  case AST_INDEX:
    fputs(e->kind == AST_CALL ? "(call " : "(index ", out);
    print_opt(out, e->lhs);
    print_items(out, e->items, e->n_items);
    fputc(')', out);
    return;
  case AST_KWARG:
    fprintf(out, "(kw %s ", e->str);
    print_opt(out, e->lhs);
    fputc(')', out);
    return;
  case AST_SLICE:
    fputs("(slice ", out);
    print_opt(out, e->lhs);
    fputc(' ', out);
    print_opt(out, e->rhs);
    fputc(' ', out);
    print_opt(out, e->step);
    fputc(')', out);
    return;
  case AST_LIST:
    fputs("(list", out);
    print_items(out, e->items, e->n_items);
    fputc(')', out);
    return;
  case AST_TYPE:
    fprintf(out, "(type %s", dtype_name(e->dtype));
    if (e->has_dims && e->n_items == 0) fputs(" []", out);
    print_items(out, e->items, e->n_items);
    fputc(')', out);
    return;
  case AST_ELLIPSIS: fputs("...", out); return;
  }
  fputs("(?)", out);
}

static void indent(FILE *out, int level) {
  fputc('\n', out);
  for (int i = 0; i < level; i++) fputs("  ", out);
}

static void print_stmts(FILE *out, Stmt *const *body, int n, int level);

static void print_stmt(FILE *out, const Stmt *s, int level) {
  static const char *const names[] = {
      [ST_INPUT] = "input", [ST_PARAM] = "param", [ST_STATE] = "state", [ST_BIND] = "bind",
      [ST_FOR] = "for",     [ST_OUTPUT] = "output", [ST_LOSS] = "loss", [ST_RETURN] = "return",
  };
  fprintf(out, "(%s", (unsigned)s->kind < sizeof names / sizeof names[0] ? names[s->kind] : "?");
  switch (s->kind) {
  case ST_INPUT:
  case ST_PARAM:
  case ST_STATE:
    fprintf(out, " %s ", s->n_names > 0 ? s->names[0] : "?");
    print_opt(out, s->type);
    if (s->value) {
      fputc(' ', out);
      ast_print_expr(out, s->value);
    }
    break;
  case ST_BIND:
    fputs(" (", out);
    for (int i = 0; i < s->n_names; i++) fprintf(out, "%s%s", i ? " " : "", s->names[i]);
    fputs(") ", out);
    print_opt(out, s->value);
    break;
  case ST_FOR:
    fprintf(out, " %s ", s->n_names > 0 ? s->names[0] : "?");
    print_opt(out, s->lo);
    fputc(' ', out);
    print_opt(out, s->hi);
    print_stmts(out, s->body, s->n_body, level + 1);
    break;
  case ST_OUTPUT:
  case ST_RETURN: print_items(out, s->exprs, s->n_exprs); break;
  case ST_LOSS:
    fputc(' ', out);
    print_opt(out, s->value);
    break;
  }
  fputc(')', out);
}

static void print_stmts(FILE *out, Stmt *const *body, int n, int level) {
  for (int i = 0; i < n; i++) {
    indent(out, level);
    print_stmt(out, body[i], level);
  }
}

static void print_param(FILE *out, const DefParam *dp) {
  if (!dp->pattern && !dp->default_value) {
    fputs(dp->name, out);
    return;
  }
  fprintf(out, "(%s", dp->name);
  if (dp->pattern) {
    fputc(' ', out);
    ast_print_expr(out, dp->pattern);
  }
  if (dp->default_value) {
    fputs(" = ", out);
    ast_print_expr(out, dp->default_value);
  }
  fputc(')', out);
}

void ast_print_program(FILE *out, const Program *p) {
  for (int i = 0; p && i < p->n_items; i++) {
    const Item *it = p->items[i];
    switch (it->kind) {
    case ITEM_CONST:
      fprintf(out, "(const %s ", it->name);
      print_opt(out, it->value);
      break;
    case ITEM_DEF:
      fprintf(out, "(def %s (params", it->name);
      for (int k = 0; k < it->n_params; k++) {
        fputc(' ', out);
        print_param(out, &it->params[k]);
      }
      fputc(')', out);
      print_stmts(out, it->body, it->n_body, 1);
      break;
    case ITEM_MODEL:
      fprintf(out, "(model %s", it->name);
      print_stmts(out, it->body, it->n_body, 1);
      break;
    case ITEM_TRAIN:
      fprintf(out, "(train %s", it->name);
      for (int k = 0; k < it->n_keys; k++) {
        indent(out, 1);
        fprintf(out, "(%s ", it->keys[k].key);
        print_opt(out, it->keys[k].value);
        fputc(')', out);
      }
      break;
    }
    fputs(")\n", out);
  }
}
