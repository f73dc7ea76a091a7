/* test_parse.c - Check tests of the parser (frontend/parse.c) and the AST
 * printer (frontend/ast_print.c): each construct parsed and printed,
 * precedence, locations, error messages with line:col, recovery, and the
 * nesting and size limits. */
#include "frontend/frontend.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

typedef struct Parsed {
  Arena arena;
  Program *prog;
  int n_errors;
  char *ast;     /* ast_print_program output */
  char *errors;  /* the "t.nn:L:C: error: ..." lines, joined by '\n' */
} Parsed;

/* Keeps the header line of each diagnostic, drops source line and caret. */
static char *error_lines(const char *diag) {
  char *out = calloc(1, strlen(diag) + 1);
  const char *line = diag;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (!strncmp(line, "t.nn", 4)) {
      if (*out) strcat(out, "\n");
      strncat(out, line, len);
    }
    line += len + (end ? 1 : 0);
  }
  return out;
}

static Parsed parse_n(const char *src, size_t len) {
  Parsed r = {0};
  char *diag = NULL, *ast = NULL;
  size_t dsize = 0, asize = 0;
  FILE *mem = open_memstream(&diag, &dsize);
  Diag d;
  diag_init(&d, "t.nn", src, len, mem);
  int n;
  Token *toks = lex(&r.arena, &d, &n);
  r.prog = parse_program(&r.arena, &d, toks, n);
  fclose(mem);
  r.n_errors = d.n_errors;
  r.errors = error_lines(diag);
  free(diag);
  FILE *out = open_memstream(&ast, &asize);
  ast_print_program(out, r.prog);
  fclose(out);
  r.ast = ast;
  return r;
}

static Parsed parse_s(const char *src) { return parse_n(src, strlen(src)); }

static void parsed_free(Parsed *r) {
  arena_free(&r->arena);
  free(r->ast);
  free(r->errors);
}

/* Parses src and compares the printed AST (no errors expected). */
static void check_ast(const char *src, const char *want) {
  Parsed r = parse_s(src);
  ck_assert_msg(r.n_errors == 0, "parsing [%s]: unexpected errors:\n%s", src, r.errors);
  ck_assert_msg(!strcmp(r.ast, want), "parsing [%s]\n--- got:\n%s--- want:\n%s", src, r.ast, want);
  parsed_free(&r);
}

/* Parses src and compares the error lines exactly. */
static void check_errors(const char *src, const char *want) {
  Parsed r = parse_s(src);
  ck_assert_msg(!strcmp(r.errors, want), "parsing [%s]\n--- got errors:\n%s\n--- want:\n%s", src,
                r.errors, want);
  parsed_free(&r);
}

/* ------------------------------------------------------------- constructs */

START_TEST(test_const) {
  check_ast("const B = 64, H = 128\nconst lr = 1e-3; const s = \"x\"\n",
            "(const B (int 64))\n(const H (int 128))\n(const lr (float 0.001))\n"
            "(const s (string \"x\"))\n");
  check_ast("", "");
  check_ast("# only a comment\n\n", "");
}
END_TEST

START_TEST(test_def) {
  check_ast("def dense(x: f32[n, k], units, act = identity) {\n"
            "  param w: f32[k, units] = he_uniform()\n"
            "  param b: f32[units]\n"
            "  return act(x @ w + b)\n"
            "}\n"
            "def lstm(x: f32[..., n], h, c: f32[], hidden: i32 = 2,) {\n"
            "  state s: f32 = zeros(); return h, c }\n"
            "def nothing() {\n}\n",
            "(def dense (params (x (type f32 (name n) (name k))) units (act = (name identity)))\n"
            "  (param w (type f32 (name k) (name units)) (call (name he_uniform)))\n"
            "  (param b (type f32 (name units)))\n"
            "  (return (call (name act) (binary + (binary @ (name x) (name w)) (name b)))))\n"
            "(def lstm (params (x (type f32 ... (name n))) h (c (type f32 [])) "
            "(hidden (type i32) = (int 2)))\n"
            "  (state s (type f32) (call (name zeros)))\n"
            "  (return (name h) (name c)))\n"
            "(def nothing (params))\n");
}
END_TEST

START_TEST(test_model) {
  check_ast("model mlp {\n"
            "  input  x: f32[B, 784]                 # fed by the caller\n"
            "  input  y: i32[B]\n"
            "  param  w1: f32[784, 128] = he_normal()\n"
            "  state  m: f32[128] = zeros()\n"
            "  h = relu(x @ w1 + b1)\n"
            "  h1 = dense(h, 10,\n"
            "             act = relu)\n"
            "  output logits, probs\n"
            "  loss cross_entropy(logits, y)\n"
            "}\n",
            "(model mlp\n"
            "  (input x (type f32 (name B) (int 784)))\n"
            "  (input y (type i32 (name B)))\n"
            "  (param w1 (type f32 (int 784) (int 128)) (call (name he_normal)))\n"
            "  (state m (type f32 (int 128)) (call (name zeros)))\n"
            "  (bind (h) (call (name relu) (binary + (binary @ (name x) (name w1)) (name b1))))\n"
            "  (bind (h1) (call (name dense) (name h) (int 10) (kw act (name relu))))\n"
            "  (output (name logits) (name probs))\n"
            "  (loss (call (name cross_entropy) (name logits) (name y))))\n");
  /* brace on its own line, empty model, one-line model with ';' */
  check_ast("model a\n{\n}\nmodel b {}\nmodel c { x = 1; y = 2 }\n",
            "(model a)\n(model b)\n(model c\n  (bind (x) (int 1))\n  (bind (y) (int 2)))\n");
}
END_TEST

START_TEST(test_for) {
  check_ast("model rnn {\n"
            "  input x: f32[B, T, 8]; input y: i32[B]\n"
            "  h = zeros(f32[B, H])\n"
            "  for t in 0..T {\n"
            "    for u in 1..t+1 { h = h * 2 }\n"
            "    h, c = lstm_cell(x[:, t, :], h, c, H)\n"
            "  }\n"
            "  output h\n"
            "  loss mean(h ** 2)\n"
            "}",
            "(model rnn\n"
            "  (input x (type f32 (name B) (name T) (int 8)))\n"
            "  (input y (type i32 (name B)))\n"
            "  (bind (h) (call (name zeros) (type f32 (name B) (name H))))\n"
            "  (for t (int 0) (name T)\n"
            "    (for u (int 1) (binary + (name t) (int 1))\n"
            "      (bind (h) (binary * (name h) (int 2))))\n"
            "    (bind (h c) (call (name lstm_cell) (index (name x) (slice - - -) (name t) "
            "(slice - - -)) (name h) (name c) (name H))))\n"
            "  (output (name h))\n"
            "  (loss (call (name mean) (binary ** (name h) (int 2)))))\n");
}
END_TEST

START_TEST(test_train) {
  check_ast("train mlp {\n"
            "  data      = idx(x = \"train-images-idx3-ubyte.gz\", scale = 1/255)\n"
            "  optimizer = adam(lr = 1e-3); epochs = 5\n"
            "\n"
            "  eval = csv(\"f.csv\", x = [0:4], y = 4)\n"
            "  shuffle   = true\n"
            "  metrics   = [accuracy] }\n"
            "train m\n{\n}\n",
            "(train mlp\n"
            "  (data (call (name idx) (kw x (string \"train-images-idx3-ubyte.gz\")) "
            "(kw scale (binary / (int 1) (int 255)))))\n"
            "  (optimizer (call (name adam) (kw lr (float 0.001))))\n"
            "  (epochs (int 5))\n"
            "  (eval (call (name csv) (string \"f.csv\") (kw x (list (slice (int 0) (int 4) -))) "
            "(kw y (int 4))))\n"
            "  (shuffle (bool true))\n"
            "  (metrics (list (name accuracy))))\n"
            "(train m)\n");
}
END_TEST

/* ------------------------------------------------------------- expressions */

START_TEST(test_expressions) {
  static const struct {
    const char *src, *ast;
  } cases[] = {
      {"1 + 2 * 3", "(binary + (int 1) (binary * (int 2) (int 3)))"},
      {"a - b - c", "(binary - (binary - (name a) (name b)) (name c))"},
      {"-x**2", "(unary - (binary ** (name x) (int 2)))"},
      {"2**-1", "(binary ** (int 2) (unary - (int 1)))"},
      {"a**b**c", "(binary ** (name a) (binary ** (name b) (name c)))"},
      {"x @ w + b", "(binary + (binary @ (name x) (name w)) (name b))"},
      {"a // b % c", "(binary % (binary // (name a) (name b)) (name c))"},
      {"a / b * c", "(binary * (binary / (name a) (name b)) (name c))"},
      {"a + b < c * d", "(binary < (binary + (name a) (name b)) (binary * (name c) (name d)))"},
      {"-(a) + +a", "(binary + (unary - (name a)) (unary + (name a)))"},
      {"f(x)(y)[0]", "(index (call (call (name f) (name x)) (name y)) (int 0))"},
      {"x[:, t]", "(index (name x) (slice - - -) (name t))"},
      {"x[:, 0:10]", "(index (name x) (slice - - -) (slice (int 0) (int 10) -))"},
      {"x[1:2:3, ::2, -1, 0,]", "(index (name x) (slice (int 1) (int 2) (int 3)) "
                                "(slice - - (int 2)) (unary - (int 1)) (int 0))"},
      {"x[:]", "(index (name x) (slice - - -))"},
      {"x[1:]", "(index (name x) (slice (int 1) - -))"},
      {"[0:4]", "(list (slice (int 0) (int 4) -))"},
      {"[]", "(list)"},
      {"[1, 2,]", "(list (int 1) (int 2))"},
      {"[[1], [a, b]]", "(list (list (int 1)) (list (name a) (name b)))"},
      {"zeros(f32[3, 4]) + f32[] + i32 + bool[2]",
       "(binary + (binary + (binary + (call (name zeros) (type f32 (int 3) (int 4))) "
       "(type f32 [])) (type i32)) (type bool (int 2)))"},
      {"f(a, b = 1,)", "(call (name f) (name a) (kw b (int 1)))"},
      {"f()", "(call (name f))"},
      {"f(\n  a,\n  b\n)", "(call (name f) (name a) (name b))"},
      {"\"a\\\"b\\\\c\\n\"", "(string \"a\\\"b\\\\c\\n\")"},
      {"true == false", "(binary == (bool true) (bool false))"},
      {"0.1 + 1e-3 + 5. + .5", "(binary + (binary + (binary + (float 0.1) (float 0.001)) "
                               "(float 5)) (float 0.5))"},
      {"1e20 - 0.30000000000000004 - 1e-300",
       "(binary - (binary - (float 1e+20) (float 0.30000000000000004)) (float 1e-300))"},
      {"a >= b", "(binary >= (name a) (name b))"},
      {"a > b", "(binary > (name a) (name b))"},
      {"a != b", "(binary != (name a) (name b))"},
      {"a <= (b < c)", "(binary <= (name a) (binary < (name b) (name c)))"},
      {"(((a)))", "(name a)"},
      {"9223372036854775807", "(int 9223372036854775807)"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char src[256], want[512];
    snprintf(src, sizeof src, "const c = %s\n", cases[i].src);
    snprintf(want, sizeof want, "(const c %s)\n", cases[i].ast);
    check_ast(src, want);
  }
}
END_TEST

START_TEST(test_ast_print_expr) {
  Parsed r = parse_s("const c = f(x[0:2], axis=-1)");
  ck_assert_int_eq(r.n_errors, 0);
  char *buf = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&buf, &size);
  ast_print_expr(out, r.prog->items[0]->value);
  ast_print_expr(out, NULL);
  fclose(out);
  ck_assert_str_eq(buf, "(call (name f) (index (name x) (slice (int 0) (int 2) -)) "
                        "(kw axis (unary - (int 1))))-");
  free(buf);
  parsed_free(&r);
}
END_TEST

/* ------------------------------------------------------------- locations */

START_TEST(test_locations) {
  Parsed r = parse_s("const B = 64\n"
                     "model m {\n"
                     "  input x: f32[B]\n"
                     "  h, c = f(x, axis = 1) + y[0]\n"
                     "  for t in 0..3 { loss x }\n"
                     "}\n");
  ck_assert_int_eq(r.n_errors, 0);
  ck_assert_int_eq(r.prog->n_items, 2);
  Item *k = r.prog->items[0], *m = r.prog->items[1];
  ck_assert(k->kind == ITEM_CONST && k->loc.line == 1 && k->loc.col == 1);
  ck_assert(k->name_loc.line == 1 && k->name_loc.col == 7);
  ck_assert(k->value->loc.line == 1 && k->value->loc.col == 11);
  ck_assert(m->kind == ITEM_MODEL && m->loc.line == 2 && m->loc.col == 1);
  ck_assert(m->name_loc.line == 2 && m->name_loc.col == 7);
  ck_assert_int_eq(m->n_body, 3);
  Stmt *in = m->body[0], *bind = m->body[1], *loop = m->body[2];
  ck_assert(in->kind == ST_INPUT && in->loc.line == 3 && in->loc.col == 3);
  ck_assert(in->name_locs[0].line == 3 && in->name_locs[0].col == 9);
  ck_assert(in->type->loc.col == 12 && in->type->has_dims && in->type->n_items == 1);
  ck_assert(bind->kind == ST_BIND && bind->loc.line == 4 && bind->loc.col == 3);
  ck_assert_int_eq(bind->n_names, 2);
  ck_assert_str_eq(bind->names[1], "c");
  ck_assert_int_eq(bind->name_locs[1].col, 6);
  Ast *plus = bind->value;  /* binaries at the operator */
  ck_assert(plus->kind == AST_BINARY && plus->op == TK_PLUS && plus->loc.col == 25);
  Ast *call = plus->lhs;  /* calls at the callee's name */
  ck_assert(call->kind == AST_CALL && call->loc.col == 10 && call->n_items == 2);
  ck_assert(call->lhs->kind == AST_NAME && call->lhs->loc.col == 10);
  Ast *kw = call->items[1];  /* keyword arguments at the keyword */
  ck_assert(kw->kind == AST_KWARG && kw->loc.col == 15 && !strcmp(kw->str, "axis"));
  Ast *ix = plus->rhs;  /* indexing at the '[' */
  ck_assert(ix->kind == AST_INDEX && ix->loc.col == 28);
  ck_assert(loop->kind == ST_FOR && loop->loc.line == 5 && loop->loc.col == 3);
  ck_assert(loop->name_locs[0].col == 7 && loop->n_body == 1);
  ck_assert(loop->body[0]->kind == ST_LOSS && loop->body[0]->loc.col == 19);
  parsed_free(&r);
}
END_TEST

/* ------------------------------------------------------------- errors */

START_TEST(test_errors) {
  static const struct {
    const char *src, *err;
  } cases[] = {
      {"model m {\n  x = f(a b)\n}", "t.nn:2:11: error: expected ')' but found identifier 'b'"},
      {"model m {\n  x = 1 +\n}", "t.nn:2:10: error: expected an expression but found newline"},
      {"model m {\n  x = (1 + }", "t.nn:2:12: error: expected an expression but found '}'"},
      {"model m {\n  loss = 3\n}",
       "t.nn:2:3: error: 'loss' is a keyword and cannot be used as a name"},
      {"model m {\n  h, output = f(x)\n}",
       "t.nn:2:6: error: 'output' is a keyword and cannot be used as a name"},
      {"model m {\n  z = a < b < c\n}", "t.nn:2:13: error: comparisons cannot be chained"},
      {"model m {\n  w = f(a=1, 2)\n}",
       "t.nn:2:14: error: positional argument follows keyword argument"},
      {"model m {\n  w = f(in=1)\n}",
       "t.nn:2:9: error: 'in' is a keyword and cannot be used as a name"},
      {"model m {\n  input x: float[3]\n}",
       "t.nn:2:12: error: expected a type but found identifier 'float'"},
      {"model m {\n  3 = 4\n}", "t.nn:2:3: error: expected a statement but found integer '3'"},
      {"model m {\n  output\n}", "t.nn:2:9: error: expected an expression but found newline"},
      {"model m {\n  input x: f32 = 3\n}",
       "t.nn:2:16: error: expected newline or ';' but found '='"},
      {"model m {\n  param w f32\n}", "t.nn:2:11: error: expected ':' but found 'f32'"},
      {"model m {\n  b = 1 c = 2\n}",
       "t.nn:2:9: error: expected newline or ';' but found identifier 'c'"},
      {"model m {\n  f(x)\n}",
       "t.nn:2:3: error: a call is not a statement; bind its value to a name: 'h = f(...)'"},
      /* Python habits: what to write instead */
      {"model m {\n  for i in range(n) {}\n}",
       "t.nn:2:12: error: there is no range(); write 'for i in 0..n'"},
      {"model m {\n  for i in range(2, (n + 1)) {}\n}",
       "t.nn:2:12: error: there is no range(); write 'for i in 2..(n + 1)'"},
      {"model m {\n  for i in (range)(3) {}\n}",
       "t.nn:2:23: error: expected '..' but found '{'"},
      {"model m {\n  if(x > 0) { h = x }\n}",
       "t.nn:2:3: error: there is no 'if' statement; use where(cond, a, b) to select elementwise, "
       "or a const and -D NAME=VALUE to choose at compile time"},
      {"model m {\n  if = 3; while = 4; print = 5\n}", ""},
      {"model m {\n  while x > 0 {}\n}",
       "t.nn:2:3: error: there is no 'while' loop; loops are unrolled at compile time: "
       "'for i in 0..N { ... }' with a constant N"},
      {"model m {\n  f = lambda x: x\n}",
       "t.nn:2:7: error: there is no 'lambda'; write a def and pass it by name: 'act = my_fn'"},
      {"model m {\n  lambda = 1; y = lambda + 1\n}", ""},
      {"def f(x):\n  return x\n",
       "t.nn:1:9: error: a block is written in braces, '{ ... }', not after ':'"},
      {"train m:\n  epochs = 1\n",
       "t.nn:1:8: error: a block is written in braces, '{ ... }', not after ':'"},
      {"from nncc import dense",
       "t.nn:1:1: error: there is no 'import'; the built-in ops and the prelude's layers "
       "(dense, conv, ...) are always visible, and a file holds its own defs"},
      {"model m {\n  for 1 in 0..3 {}\n}",
       "t.nn:2:7: error: expected a loop variable but found integer '1'"},
      {"model m {\n  for i in 0 to 3 {}\n}",
       "t.nn:2:14: error: expected '..' but found identifier 'to'"},
      {"model m {\n  x = 1", "t.nn:2:8: error: expected '}' but found end of file"},
      {"model m {\n  x = 1\nmodel n {\n}", "t.nn:3:1: error: expected '}' but found 'model'"},
      {"model\n", "t.nn:1:6: error: expected a model name but found newline"},
      {"model m x", "t.nn:1:9: error: expected '{' but found identifier 'x'"},
      {"def loss() {}", "t.nn:1:5: error: 'loss' is a keyword and cannot be used as a name"},
      {"def f(a = 1, b) { return a }",
       "t.nn:1:14: error: parameter 'b' without a default follows a parameter with a default"},
      {"def f(x,, y) {}", "t.nn:1:9: error: expected a parameter name but found ','"},
      {"def f(x: f32[n k]) {}", "t.nn:1:16: error: expected ']' but found identifier 'k'"},
      {"const A 3", "t.nn:1:9: error: expected '=' after const name but found integer '3'"},
      {"const in = 4", "t.nn:1:7: error: 'in' is a keyword and cannot be used as a name"},
      {"const A = 1, = 2", "t.nn:1:14: error: expected a constant name but found '='"},
      {"const A = 1 B = 2",
       "t.nn:1:13: error: expected newline or ';' but found identifier 'B'"},
      {"x = 1",
       "t.nn:1:1: error: expected 'const', 'def', 'model' or 'train' but found identifier 'x'"},
      {"}", "t.nn:1:1: error: expected 'const', 'def', 'model' or 'train' but found '}'"},
      {"train t { data = 1 2 }",
       "t.nn:1:20: error: expected newline or ';' but found integer '2'"},
      {"train t { 1 = 2 }", "t.nn:1:11: error: expected a setting name but found integer '1'"},
      {"train { }", "t.nn:1:7: error: expected a model name but found '{'"},
      {"model m { x = [1, 2 }", "t.nn:1:21: error: expected ']' but found '}'"},
      {"model m { x = y[] }", "t.nn:1:17: error: expected an expression but found ']'"},
      {"model m { x = y[1:2:3:4] }", "t.nn:1:22: error: expected ']' but found ':'"},
      {"model m { x = (a, b) }", "t.nn:1:17: error: expected ')' but found ','"},
      {"model m { x = input + 1 }",
       "t.nn:1:15: error: 'input' is a keyword and cannot be used as a name"},
      {"model m { x = f(a)(b c) }", "t.nn:1:22: error: expected ')' but found identifier 'c'"},
      {"model m { x = 1 } junk",
       "t.nn:1:19: error: expected 'const', 'def', 'model' or 'train' but found identifier "
       "'junk'"},
      {"model m { x = a... }", "t.nn:1:16: error: expected newline or ';' but found '...'"},
      {"model m { x = \"s\" \"t\" }", "t.nn:1:19: error: expected newline or ';' but found string"},
      {"model m { x = 1.5 2.5 }", "t.nn:1:19: error: expected newline or ';' but found number '2.5'"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) check_errors(cases[i].src, cases[i].err);
}
END_TEST

START_TEST(test_lex_errors_do_not_cascade) {
  /* the lexer's placeholder tokens keep the parser quiet */
  check_errors("model m {\n  x = 12abc + 1\n  s = \"abc\n}",
               "t.nn:2:7: error: invalid number '12abc'\nt.nn:3:7: error: unterminated string");
  check_errors("model m { x = 1 $ + 2 }", "t.nn:1:17: error: unexpected character '$'");
}
END_TEST

START_TEST(test_one_error_per_statement) {
  Parsed r = parse_s("model m {\n  x = f(a b c d e) ) ] (\n}\n");
  ck_assert_int_eq(r.n_errors, 1);
  parsed_free(&r);
}
END_TEST

START_TEST(test_recovery) {
  /* errors in three statements, two items, then a good model: all
   * reported, the good parts kept */
  Parsed r = parse_s("const A 3\n"
                     "model m {\n"
                     "  x = f(a b)\n"
                     "  y = 2\n"
                     "  z = a < b < c; w = 1\n"
                     "  for i in 0.. {\n"
                     "    q = 1\n"
                     "  }\n"
                     "  loss = 3\n"
                     "}\n"
                     "def f(a = 1, b) { return a }\n"
                     "model ok { output 1 }\n");
  ck_assert_str_eq(r.errors,
                   "t.nn:1:9: error: expected '=' after const name but found integer '3'\n"
                   "t.nn:3:11: error: expected ')' but found identifier 'b'\n"
                   "t.nn:5:13: error: comparisons cannot be chained\n"
                   "t.nn:6:16: error: expected an expression but found '{'\n"
                   "t.nn:9:3: error: 'loss' is a keyword and cannot be used as a name\n"
                   "t.nn:11:14: error: parameter 'b' without a default follows a parameter "
                   "with a default");
  ck_assert_str_eq(r.ast, "(model m\n  (bind (y) (int 2))\n  (bind (w) (int 1)))\n"
                          "(model ok\n  (output (int 1)))\n");
  parsed_free(&r);
  /* an error inside a for body, the body is still closed properly */
  r = parse_s("model m {\n  for i in 0..3 { a = 1 +\n  }\n  b = )\n}\nmodel n {}\n");
  ck_assert_str_eq(r.errors, "t.nn:2:26: error: expected an expression but found newline\n"
                             "t.nn:4:7: error: expected an expression but found ')'");
  ck_assert_str_eq(r.ast, "(model m\n  (for i (int 0) (int 3)))\n(model n)\n");
  parsed_free(&r);
  /* a missing '}' before the next item: one error, the next item parsed */
  r = parse_s("model m {\n  x = 1\nmodel n {\n  y = 2\n}\n");
  ck_assert_str_eq(r.errors, "t.nn:3:1: error: expected '}' but found 'model'");
  ck_assert_str_eq(r.ast, "(model n\n  (bind (y) (int 2)))\n");
  parsed_free(&r);
  /* a broken statement running into the end: only one error */
  r = parse_s("model m {\n  for i in 0..3 {\n    x = (1 +");
  ck_assert_int_eq(r.n_errors, 1);
  parsed_free(&r);
}
END_TEST

START_TEST(test_no_eof_token) {
  /* a token array without the final EOF is read as if it had one */
  Arena a = {0};
  Diag d;
  char *buf = NULL;
  size_t size = 0;
  FILE *mem = open_memstream(&buf, &size);
  diag_init(&d, "t.nn", "", 0, mem);
  Program *p = parse_program(&a, &d, NULL, 0);
  ck_assert_int_eq(p->n_items, 0);
  Token t = {.kind = TK_KW_MODEL, .loc = {1, 1}, .start = "model", .len = 5, .str = "model"};
  p = parse_program(&a, &d, &t, 1);
  ck_assert_int_eq(p->n_items, 0);
  ck_assert_int_eq(d.n_errors, 1);
  fclose(mem);
  free(buf);
  arena_free(&a);
}
END_TEST

/* ------------------------------------------------------------- limits */

/* "model m {\n  x = " + n copies of open + core + n copies of close + "\n}\n" */
static char *nested(int n, const char *open, const char *core, const char *close) {
  size_t lo = strlen(open), lc = strlen(close);
  char *s = malloc((lo + lc) * (size_t)n + strlen(core) + 64);
  size_t k = (size_t)sprintf(s, "model m {\n  x = ");
  for (int i = 0; i < n; i++, k += lo) memcpy(s + k, open, lo);
  k += (size_t)sprintf(s + k, "%s", core);
  for (int i = 0; i < n; i++, k += lc) memcpy(s + k, close, lc);
  sprintf(s + k, "\n}\nmodel after {}\n");
  return s;
}

static void check_too_deep(int n, const char *open, const char *core, const char *close) {
  char *src = nested(n, open, core, close);
  Parsed r = parse_s(src);
  ck_assert_int_eq(r.n_errors, 1);
  ck_assert_msg(strstr(r.errors, "error: nesting is too deep (more than 256 levels)") != NULL,
                "%s", r.errors);
  ck_assert_int_eq(r.prog->n_items, 0);  /* parsing stopped: `after` is not seen */
  parsed_free(&r);
  free(src);
}

START_TEST(test_nesting_limit) {
  check_too_deep(10000, "(", "1", ")");
  check_too_deep(10000, "[", "1", "]");
  check_too_deep(10000, "-", "1", "");
  check_too_deep(10000, "f(", "1", ")");
  check_too_deep(10000, "2**", "1", "");
  check_too_deep(10000, "", "a", "[0]");
  check_too_deep(10000, "", "a", "(0)");
  check_too_deep(10000, "zeros(f32[", "1", "])");
  check_too_deep(100000, "1 + ", "1", "");  /* a left-deep chain is deep too */
  /* the error points at the bracket that opens level 257 (the model's
   * block is level 1) */
  char *src = nested(300, "(", "1", ")");
  Parsed r = parse_s(src);
  ck_assert_str_eq(r.errors, "t.nn:2:262: error: nesting is too deep (more than 256 levels)");
  parsed_free(&r);
  free(src);
  /* items before the deep one are kept */
  src = nested(10000, "(", "1", ")");
  char *with_const = malloc(strlen(src) + 32);
  sprintf(with_const, "const A = 1\n%s", src);
  r = parse_s(with_const);
  ck_assert_int_eq(r.n_errors, 1);
  ck_assert_str_eq(r.ast, "(const A (int 1))\n");
  parsed_free(&r);
  free(with_const);
  free(src);
}
END_TEST

START_TEST(test_nesting_within_limit) {
  char *src = nested(250, "(", "1", ")");
  Parsed r = parse_s(src);
  ck_assert_int_eq(r.n_errors, 0);
  ck_assert_int_eq(r.prog->n_items, 2);
  parsed_free(&r);
  free(src);
  src = nested(250, "-", "1", "");
  r = parse_s(src);
  ck_assert_int_eq(r.n_errors, 0);
  parsed_free(&r);
  free(src);
}
END_TEST

START_TEST(test_nested_blocks) {
  size_t n = 10000;
  char *src = malloc(n * 32 + 64);
  size_t k = (size_t)sprintf(src, "model m {\n");
  for (size_t i = 0; i < n; i++) k += (size_t)sprintf(src + k, "for i in 0..2 {\n");
  for (size_t i = 0; i < n; i++) k += (size_t)sprintf(src + k, "}\n");
  sprintf(src + k, "}\n");
  Parsed r = parse_s(src);
  ck_assert_str_eq(r.errors, "t.nn:257:15: error: nesting is too deep (more than 256 levels)");
  parsed_free(&r);
  free(src);
}
END_TEST

START_TEST(test_long_line) {
  /* a 1 MB line: a list of 250,000 numbers, then a 1 MB string */
  size_t n = 1 << 20;
  char *src = malloc(2 * n + 128);
  size_t k = (size_t)sprintf(src, "model m {\n  x = [");
  int count = 0;
  while (k < n) {
    memcpy(src + k, "1.5,", 4);
    k += 4;
    count++;
  }
  k += (size_t)sprintf(src + k, "]\n  s = \"");
  memset(src + k, 'a', n);
  k += n;
  k += (size_t)sprintf(src + k, "\"\n}\n");
  Parsed r = parse_n(src, k);
  ck_assert_int_eq(r.n_errors, 0);
  ck_assert_int_eq(r.prog->n_items, 1);
  Stmt *s = r.prog->items[0]->body[0];
  ck_assert_int_eq(s->value->kind, AST_LIST);
  ck_assert_int_eq(s->value->n_items, count);
  ck_assert_int_eq((int)strlen(r.prog->items[0]->body[1]->value->str), (int)n);
  parsed_free(&r);
  free(src);
}
END_TEST

START_TEST(test_garbage) {
  /* random bytes and random token soup: errors, no crash, no hang */
  static const char *const vocab[] = {
      "(", ")", "[", "]", "{", "}", ",", ";", ":", "..", "...", "=", "+", "-", "**", "@",
      "<", "==", "\n", "\n", "const", "def", "model", "train", "input", "param", "output",
      "loss", "for", "in", "return", "f32", "x", "y", "1", "0.5", "\"s\"", "\"u", "$"};
  unsigned x = 7;
  for (int round = 0; round < 300; round++) {
    char src[4096];
    size_t k = 0;
    while (k < sizeof src - 16) {
      x = x * 1103515245u + 12345u;
      const char *w = vocab[(x >> 16) % (sizeof vocab / sizeof vocab[0])];
      k += (size_t)sprintf(src + k, "%s ", w);
      if ((x >> 8) % 97 == 0) break;
    }
    Parsed r = parse_n(src, k);
    ck_assert_int_eq(r.prog->n_items >= 0, 1);
    parsed_free(&r);
  }
  char bytes[65536];
  for (size_t i = 0; i < sizeof bytes; i++) {
    x = x * 1103515245u + 12345u;
    bytes[i] = (char)(x >> 16);
  }
  Parsed r = parse_n(bytes, sizeof bytes);
  ck_assert_int_gt(r.n_errors, 0);
  parsed_free(&r);
}
END_TEST

static Suite *parse_suite(void) {
  Suite *s = suite_create("parse");
  TCase *tc = tcase_create("parse");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_const);
  tcase_add_test(tc, test_def);
  tcase_add_test(tc, test_model);
  tcase_add_test(tc, test_for);
  tcase_add_test(tc, test_train);
  tcase_add_test(tc, test_expressions);
  tcase_add_test(tc, test_ast_print_expr);
  tcase_add_test(tc, test_locations);
  tcase_add_test(tc, test_errors);
  tcase_add_test(tc, test_lex_errors_do_not_cascade);
  tcase_add_test(tc, test_one_error_per_statement);
  tcase_add_test(tc, test_recovery);
  tcase_add_test(tc, test_no_eof_token);
  tcase_add_test(tc, test_nesting_limit);
  tcase_add_test(tc, test_nesting_within_limit);
  tcase_add_test(tc, test_nested_blocks);
  tcase_add_test(tc, test_long_line);
  tcase_add_test(tc, test_garbage);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(parse_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
