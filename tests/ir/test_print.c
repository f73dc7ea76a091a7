/* test_print.c - the IR printer and reader (ir/print.c, ir/read.c).
 *
 * The printer's exact text on a hand-built graph; print -> read -> print
 * round trips over graphs that use every attribute kind, initializers
 * with arguments, outputs, a loss, re-bound names and awkward floats; the
 * reader's diagnostics (message and line:col in the IR text); and reading
 * truncated, mutated and random text without crashing. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

/* ------------------------------------------------------------- helpers */

static SrcLoc L(int line, int col) { return (SrcLoc){line, col}; }

/* Runs ir_infer on a node built by a test; the tests build only valid
 * graphs, so a failure is a bug in the test or in infer. */
static Node *fin(Node *n) {
  ck_assert_msg(ir_infer(n, NULL), "ir_infer rejected a %s", op_info(n->op)->name);
  return n;
}

static Node *op(Graph *g, Op o, const char *name, SrcLoc loc, int n_in, Node *a, Node *b,
                Node *c) {
  Node *ins[3] = {a, b, c};
  Node *n = ir_node_new(g, o, ins, n_in, loc);
  n->name = name;
  return n;
}

static void list(Graph *g, Node *n, int k, int count, const int64_t *v) {
  ir_set_list(g, n, k, v, count);
}
#define LIST(g, n, k, ...)                                                         \
  list((g), (n), (k), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)), \
       (int64_t[]){__VA_ARGS__})

static Type T(DType dt, int rank, ...) {
  int64_t d[IR_MAX_RANK];
  va_list ap;
  va_start(ap, rank);
  for (int i = 0; i < rank; i++) d[i] = va_arg(ap, int64_t);
  va_end(ap);
  return type_make(dt, rank, d);
}

static char *graph_text(const Graph *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print_graph(f, g);
  fclose(f);
  return buf;
}

static char *module_text(const Module *m) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print_module(f, m);
  fclose(f);
  return buf;
}

/* Reads `text`; the diagnostics go to *diag_text (malloc'ed). */
static Module *read_text(Arena *a, const char *text, size_t len, char **diag_text, int *n_errors) {
  size_t dlen = 0;
  FILE *f = open_memstream(diag_text, &dlen);
  Diag d;
  diag_init(&d, "t.ir", text, len, f);
  Module *m = ir_read(a, &d);
  fclose(f);
  if (n_errors) *n_errors = d.n_errors;
  return m;
}

/* ------------------------------------------------------------- graphs */

/* The ir.h example, made concrete. */
static Graph *mlp_graph(Arena *a) {
  Graph *g = ir_graph_new(a, "mlp");
  g->loc = L(2, 1);
  Node *x = ir_var(g, "x", ROLE_INPUT, T(DT_F32, 2, 64, 784), L(3, 9));
  Node *w1 = ir_var(g, "w1", ROLE_PARAM, T(DT_F32, 2, 784, 128), L(4, 9));
  w1->init = INIT_HE_NORMAL;
  Node *b1 = ir_var(g, "b1", ROLE_PARAM, T(DT_F32, 1, 128), L(5, 9));
  b1->init = INIT_ZEROS;
  Node *mean = ir_var(g, "bn.mean", ROLE_STATE, T(DT_F32, 1, 128), L(7, 3));
  mean->init = INIT_ZEROS;
  Node *mm = fin(op(g, OP_MATMUL, NULL, L(6, 11), 2, x, w1, NULL));
  Node *add = fin(op(g, OP_ADD, NULL, L(6, 15), 2, mm, b1, NULL));
  Node *h = fin(op(g, OP_RELU, "h", L(6, 7), 1, add, NULL, NULL));
  Node *s = op(g, OP_SUM, "h", L(7, 7), 1, h, NULL, NULL);
  LIST(g, s, 0, 1);
  s->attr[1].i = 0;
  fin(s);
  Node *k = ir_const(g, DT_F32, 0.5, L(8, 12));
  Node *mul = fin(op(g, OP_MUL, NULL, L(8, 10), 2, s, k, NULL));
  Node *r = op(g, OP_RESHAPE, NULL, L(9, 3), 1, mul, NULL, NULL);
  LIST(g, r, 0, 64, 1);
  fin(r);
  Node *u = ir_var(g, "u", ROLE_PARAM, T(DT_F32, 1, 3), L(0, 0));
  u->init = INIT_UNIFORM;
  u->init_arg[0] = -0.1;
  u->init_arg[1] = 0.1;
  Node *l = op(g, OP_MEAN, "l", L(10, 8), 1, r, NULL, NULL);
  LIST(g, l, 0, 0, 1);
  fin(l);
  h->roles |= ROLE_OUTPUT;
  h->out_name = "logits";
  r->roles |= ROLE_OUTPUT;
  l->roles |= ROLE_LOSS;
  return g;
}

static const char mlp_text[] =
    "graph mlp @2:1 {\n"
    "  %x = input : f32[64,784] @3:9\n"
    "  %w1 = param : f32[784,128] init=he_normal() @4:9\n"
    "  %b1 = param : f32[128] init=zeros() @5:9\n"
    "  %bn.mean = state : f32[128] init=zeros() @7:3\n"
    "  %4 = matmul %x, %w1 : f32[64,128] @6:11\n"
    "  %5 = add %4, %b1 : f32[64,128] @6:15\n"
    "  %h = relu %5 : f32[64,128] @6:7\n"
    "  %h.1 = sum %h axes=[1] keepdims=false : f32[64] @7:7\n"
    "  %8 = const value=0.5 : f32[] @8:12\n"
    "  %9 = mul %h.1, %8 : f32[64] @8:10\n"
    "  %10 = reshape %9 shape=[64,1] : f32[64,1] @9:3\n"
    "  %u = param : f32[3] init=uniform(-0.1, 0.1)\n"
    "  %l = mean %10 axes=[0,1] keepdims=false : f32[] @10:8\n"
    "  output logits=%h, out10=%10\n"
    "  loss %l\n"
    "}\n";

/* Every op family and attribute kind, initializers with arguments, a
 * scoped var with ':', re-bound names and the floats that are easy to get
 * wrong. Types come from ir_infer, as in the frontend. */
static Graph *kitchen_graph(Arena *a) {
  Graph *g = ir_graph_new(a, "kitchen");
  g->loc = L(1, 1);
  Node *x = ir_var(g, "x", ROLE_INPUT, T(DT_F32, 4, 2, 3, 8, 8), L(2, 3));
  Node *w = ir_var(g, "conv.w", ROLE_PARAM, T(DT_F32, 4, 4, 3, 3, 3), L(3, 3));
  w->init = INIT_XAVIER_UNIFORM;
  Node *c = op(g, OP_CONV2D, NULL, L(4, 5), 2, x, w, NULL);
  LIST(g, c, 0, 1, 1);
  LIST(g, c, 1, 1, 1);
  fin(c);
  Node *mp = op(g, OP_MAX_POOL2D, NULL, L(5, 5), 1, c, NULL, NULL);
  LIST(g, mp, 0, 2, 2);
  LIST(g, mp, 1, 2, 2);
  fin(mp);
  Node *ap = op(g, OP_AVG_POOL2D, NULL, L(6, 5), 1, mp, NULL, NULL);
  LIST(g, ap, 0, 2, 2);
  LIST(g, ap, 1, 1, 1);
  fin(ap);
  Node *gamma = ir_var(g, "bn.gamma", ROLE_PARAM, T(DT_F32, 1, 4), L(7, 3));
  gamma->init = INIT_ONES;
  Node *beta = ir_var(g, "bn.beta", ROLE_PARAM, T(DT_F32, 1, 4), L(7, 3));
  beta->init = INIT_CONSTANT;
  beta->init_arg[0] = 1.0 / 3;
  Node *mean = ir_var(g, "bn.mean", ROLE_STATE, T(DT_F32, 1, 4), L(7, 3));
  mean->init = INIT_ZEROS;
  Node *var = ir_var(g, "bn.var", ROLE_STATE, T(DT_F32, 1, 4), L(7, 3));
  var->init = INIT_ONES;
  Node *ins[5] = {ap, gamma, beta, mean, var};
  Node *bn = ir_node_new(g, OP_BATCH_NORM, ins, 5, L(8, 5));
  bn->attr[0].f = 0.1;
  bn->attr[1].f = 1e-5;
  fin(bn);
  Node *r = op(g, OP_RESHAPE, NULL, L(9, 5), 1, bn, NULL, NULL);
  LIST(g, r, 0, 2, 36);
  fin(r);
  Node *g2 = ir_var(g, "ln.gamma", ROLE_PARAM, T(DT_F32, 1, 36), L(10, 3));
  g2->init = INIT_NORMAL;
  g2->init_arg[0] = 1;
  g2->init_arg[1] = 0.02;
  Node *b2 = ir_var(g, "ln.beta", ROLE_PARAM, T(DT_F32, 1, 36), L(10, 3));
  b2->init = INIT_UNIFORM;
  b2->init_arg[0] = -1.0 / 255;
  b2->init_arg[1] = 1e-8;
  Node *ln = op(g, OP_LAYER_NORM, NULL, L(11, 5), 3, r, g2, b2);
  ln->attr[0].f = 1e-5;
  fin(ln);
  Node *dr = op(g, OP_DROPOUT, NULL, L(12, 5), 1, ln, NULL, NULL);
  dr->attr[0].f = 0.25;
  fin(dr);
  Node *h = op(g, OP_LEAKY_RELU, "h", L(13, 5), 1, dr, NULL, NULL);
  h->attr[0].f = 0.01;
  fin(h);
  Node *h1 = op(g, OP_POW, "h", L(14, 5), 1, h, NULL, NULL);
  h1->attr[0].f = 2;
  fin(h1);
  Node *h2 = op(g, OP_CLAMP, "h", L(15, 5), 1, h1, NULL, NULL);
  h2->attr[0].f = -INFINITY;
  h2->attr[1].f = INFINITY;
  fin(h2);
  /* awkward floats, each a const */
  const double vals[] = {0.1, 1e-08, 1.0 / 255, -0.0, 1e300, 5e-324, 123456789012345678.0,
                         NAN, INFINITY, -INFINITY, 2.5e-7, 1.0 / 3};
  Node *k[12];
  for (int i = 0; i < 12; i++) k[i] = ir_const(g, DT_F32, vals[i], L(16, 1 + i));
  Node *m = fin(op(g, OP_MUL, NULL, L(17, 5), 2, h2, k[2], NULL));
  Node *sm = op(g, OP_SOFTMAX, "probs", L(18, 5), 1, m, NULL, NULL);
  sm->attr[0].i = 1;
  fin(sm);
  Node *lsm = op(g, OP_LOG_SOFTMAX, NULL, L(19, 5), 1, sm, NULL, NULL);
  lsm->attr[0].i = 1;
  fin(lsm);
  Node *am = op(g, OP_ARGMAX, NULL, L(20, 5), 1, lsm, NULL, NULL);
  am->attr[0].i = 1;
  am->attr[1].i = 1;
  fin(am);
  Node *tr = op(g, OP_TRANSPOSE, NULL, L(21, 5), 1, lsm, NULL, NULL);
  LIST(g, tr, 0, 1, 0);
  fin(tr);
  Node *sl = op(g, OP_SLICE, NULL, L(22, 5), 1, tr, NULL, NULL);
  LIST(g, sl, 0, 0, 0);
  LIST(g, sl, 1, 36, 2);
  LIST(g, sl, 2, 2, 1);
  fin(sl);
  Node *cc = op(g, OP_CONCAT, NULL, L(23, 5), 3, sl, sl, sl);
  cc->attr[0].i = 0;
  fin(cc);
  Node *ids = ir_var(g, "ids", ROLE_INPUT, T(DT_I32, 1, 5), L(24, 3));
  Node *oh = op(g, OP_ONE_HOT, NULL, L(25, 5), 1, ids, NULL, NULL);
  oh->attr[0].i = 7;
  fin(oh);
  Node *table = ir_var(g, "emb.table", ROLE_PARAM, T(DT_F32, 2, 10, 4), L(26, 3));
  table->init = INIT_HE_UNIFORM;
  Node *ga = fin(op(g, OP_GATHER, NULL, L(27, 5), 2, table, ids, NULL));
  Node *bc = op(g, OP_BROADCAST, NULL, L(28, 5), 1, ga, NULL, NULL);
  LIST(g, bc, 0, 3, 5, 4);
  fin(bc);
  Node *one = ir_var(g, "one", ROLE_INPUT, T(DT_F32, 1, 1), L(29, 3));
  Node *rs = op(g, OP_RESHAPE, NULL, L(30, 5), 1, one, NULL, NULL);
  /* shape=[] : attr[0] stays the empty list */
  fin(rs);
  Node *ca = op(g, OP_CAST, NULL, L(31, 5), 1, am, NULL, NULL);
  ca->type.dtype = DT_F32;
  fin(ca);
  Node *cmp = fin(op(g, OP_GT, NULL, L(32, 5), 2, h2, k[0], NULL));
  Node *wh = fin(op(g, OP_WHERE, NULL, L(33, 5), 3, cmp, h2, k[1]));
  Node *s = op(g, OP_SUM, NULL, L(34, 5), 1, wh, NULL, NULL);
  LIST(g, s, 0, 0, 1);
  fin(s);
  Node *mx = op(g, OP_MAX, NULL, L(35, 5), 1, wh, NULL, NULL);
  mx->attr[1].i = 1;  /* axes=[]: reduces nothing */
  fin(mx);
  Node *st = ir_var(g, "w1:exp_avg", ROLE_STATE, T(DT_F32, 1, 2), L(0, 0));
  st->init = INIT_ZEROS;
  /* names that look like uniquifier suffixes */
  Node *z2 = fin(op(g, OP_ABS, "z.2", L(37, 1), 1, rs, NULL, NULL));
  Node *z = fin(op(g, OP_ABS, "z", L(38, 1), 1, z2, NULL, NULL));
  Node *z_ = fin(op(g, OP_ABS, "z", L(39, 1), 1, z, NULL, NULL));
  Node *q = fin(op(g, OP_NEG, "q", L(40, 1), 1, z_, NULL, NULL));
  Node *q1 = fin(op(g, OP_NEG, "q.1", L(41, 1), 1, q, NULL, NULL));
  Node *q_ = fin(op(g, OP_NEG, "q", L(42, 1), 1, q1, NULL, NULL));
  Node *labels = ir_var(g, "y", ROLE_INPUT, T(DT_I32, 1, 2), L(43, 3));
  Node *ce = fin(op(g, OP_CROSS_ENTROPY, "ce", L(44, 5), 2, m, labels, NULL));
  Node *total = fin(op(g, OP_ADD, "total", L(45, 5), 2, ce, q_, NULL));
  Node *hub = op(g, OP_HUBER, NULL, L(46, 5), 2, m, m, NULL);
  hub->attr[0].f = 1;
  fin(hub);
  sm->roles |= ROLE_OUTPUT;
  am->roles |= ROLE_OUTPUT;  /* no name at all: out<id> */
  cc->roles |= ROLE_OUTPUT;
  cc->out_name = "cat";
  total->roles |= ROLE_LOSS;
  (void)oh, (void)bc, (void)s, (void)mx, (void)ca, (void)hub;
  return g;
}

/* No locations, no outputs, no loss. */
static Graph *bare_graph(Arena *a) {
  Graph *g = ir_graph_new(a, "bare");
  Node *x = ir_var(g, "x", ROLE_INPUT, T(DT_F32, 0), L(0, 0));
  Node *y = fin(op(g, OP_EXP, NULL, L(0, 0), 1, x, NULL, NULL));
  fin(op(g, OP_ADD, NULL, L(0, 0), 2, y, y, NULL));
  return g;
}

/* print -> read -> print gives the same text, the read graph verifies,
 * and node names survive. */
static void check_round_trip(const Graph *g) {
  char *text = graph_text(g);
  Arena a = {0};
  char *diag = NULL;
  Module *m = read_text(&a, text, strlen(text), &diag, NULL);
  ck_assert_msg(m != NULL, "reading back failed:\n%s\ntext:\n%s", diag, text);
  ck_assert_int_eq(m->n_graphs, 1);
  char *again = graph_text(m->graphs[0]);
  ck_assert_str_eq(again, text);
  ck_assert_int_eq(ir_verify(m->graphs[0], stderr), 0);
  ck_assert_int_eq(m->graphs[0]->n_nodes, g->n_nodes);
  free(again);
  free(diag);
  free(text);
  arena_free(&a);
}

/* --------------------------------------------------------------- tests */

START_TEST(test_print_exact) {
  Arena a = {0};
  Graph *g = mlp_graph(&a);
  ck_assert_int_eq(ir_verify(g, stderr), 0);
  char *text = graph_text(g);
  ck_assert_str_eq(text, mlp_text);
  free(text);
  Module m = {.arena = &a};
  ir_module_add(&m, g);
  text = module_text(&m);
  ck_assert(!strncmp(text, "# nncc graph IR\ngraph mlp @2:1 {\n", 33));
  free(text);
  arena_free(&a);
}
END_TEST

START_TEST(test_print_floats_and_lists) {
  Arena a = {0};
  Graph *g = kitchen_graph(&a);
  ck_assert_int_eq(ir_verify(g, stderr), 0);
  char *text = graph_text(g);
  static const char *const want[] = {
      "= const value=0.1 : f32[] @16:1\n",
      "= const value=1e-08 : f32[] @16:2\n",
      "= const value=0.00392156862745098 : f32[] @16:3\n",
      "= const value=-0 : f32[] @16:4\n",
      "= const value=1e+300 : f32[] @16:5\n",
      "= const value=4.94065645841247e-324 : f32[] @16:6\n",
      "= const value=1.2345678901234568e+17 : f32[] @16:7\n",
      "= const value=nan : f32[] @16:8\n",
      "= const value=inf : f32[] @16:9\n",
      "= const value=-inf : f32[] @16:10\n",
      "= const value=2.5e-07 : f32[] @16:11\n",
      "= const value=0.3333333333333333 : f32[] @16:12\n",  /* 15 digits are not enough */
      "clamp %h.1 lo=-inf hi=inf : f32[2,36] @15:5\n",
      "%bn.beta = param : f32[4] init=constant(0.3333333333333333) @7:3\n",
      "init=uniform(-0.00392156862745098, 1e-08)",
      "slice %",
      " begin=[0,0] end=[36,2] step=[2,1] : f32[18,2] @22:5\n",
      "argmax %", " axis=1 keepdims=true : i32[2,1]",
      "max %", " axes=[] keepdims=true : f32[2,36]",
      "%z.2 = abs", "%z = abs %z.2", "%z.1 = abs %z ", "%q = neg %z.1 ",
      "%q.1 = neg %q ", "%q.2 = neg %q.1 ",
      "%w1:exp_avg = state : f32[2] init=zeros()\n",
  };
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    ck_assert_msg(strstr(text, want[i]), "missing '%s' in:\n%s", want[i], text);
  ck_assert(strstr(text, "  output probs=%probs, out"));
  ck_assert(strstr(text, ", cat=%"));
  ck_assert(strstr(text, "  loss %total\n}\n"));
  free(text);
  arena_free(&a);
}
END_TEST

START_TEST(test_round_trip_graphs) {
  Arena a = {0};
  check_round_trip(mlp_graph(&a));
  check_round_trip(kitchen_graph(&a));
  check_round_trip(bare_graph(&a));
  check_round_trip(ir_graph_new(&a, "empty"));
  arena_free(&a);
}
END_TEST

/* Reading the golden text and printing it gives it back byte for byte,
 * and the graph read has what the text says. */
START_TEST(test_read_golden) {
  Arena a = {0};
  char *diag = NULL;
  Module *m = read_text(&a, mlp_text, strlen(mlp_text), &diag, NULL);
  ck_assert_msg(m != NULL, "%s", diag);
  Graph *g = m->graphs[0];
  ck_assert_str_eq(g->name, "mlp");
  ck_assert_int_eq(g->loc.line, 2);
  ck_assert_int_eq(g->n_nodes, 13);
  Node *s = g->nodes[7];
  ck_assert_int_eq(s->op, OP_SUM);
  ck_assert_str_eq(s->name, "h");  /* the ".1" was the printer's */
  ck_assert_int_eq(s->attr[0].n, 1);
  ck_assert_int_eq(s->attr[0].list[0], 1);
  ck_assert_int_eq(s->attr[1].i, 0);
  ck_assert_int_eq(s->loc.line, 7);
  ck_assert_int_eq(s->loc.col, 7);
  ck_assert_ptr_null(g->nodes[4]->name);
  ck_assert_int_eq(g->nodes[1]->roles, ROLE_PARAM);
  ck_assert_int_eq(g->nodes[1]->init, INIT_HE_NORMAL);
  ck_assert_int_eq(g->nodes[11]->init, INIT_UNIFORM);
  ck_assert(g->nodes[11]->init_arg[0] == -0.1 && g->nodes[11]->init_arg[1] == 0.1);
  ck_assert_int_eq(g->nodes[11]->loc.line, 0);
  ck_assert_int_eq(g->nodes[6]->roles, ROLE_OUTPUT);
  ck_assert_str_eq(g->nodes[6]->out_name, "logits");
  ck_assert_int_eq(g->nodes[12]->roles, ROLE_LOSS);
  ck_assert(ir_find_var(g, "bn.mean") == g->nodes[3]);
  ck_assert_int_eq(g->nodes[3]->roles, ROLE_STATE);
  char *text = graph_text(g);
  ck_assert_str_eq(text, mlp_text);
  free(text);
  free(diag);
  arena_free(&a);
}
END_TEST

/* Two graphs, comments, blank lines, CRLF; the module prints back in the
 * canonical form. */
START_TEST(test_round_trip_module) {
  Arena a = {0};
  Module m = {.arena = &a};
  ir_module_add(&m, mlp_graph(&a));
  ir_module_add(&m, kitchen_graph(&a));
  char *text = module_text(&m);
  char *diag = NULL;
  Arena b = {0};
  Module *m2 = read_text(&b, text, strlen(text), &diag, NULL);
  ck_assert_msg(m2 != NULL, "%s", diag);
  ck_assert_int_eq(m2->n_graphs, 2);
  char *again = module_text(m2);
  ck_assert_str_eq(again, text);
  free(again);
  free(diag);

  static const char messy[] =
      "# a comment\r\n\r\n   \t\n"
      "graph bare {   # trailing comment\r\n"
      "\n"
      "  %x = input : f32[]   # the input\n"
      "%1 = exp %x : f32[]\r\n"
      "    %2 = add %1,%1 : f32[]\n"
      "}";
  Arena c = {0};
  Module *m3 = read_text(&c, messy, strlen(messy), &diag, NULL);
  ck_assert_msg(m3 != NULL, "%s", diag);
  free(diag);
  again = module_text(m3);
  ck_assert_str_eq(again,
                   "# nncc graph IR\n"
                   "graph bare {\n"
                   "  %x = input : f32[]\n"
                   "  %1 = exp %x : f32[]\n"
                   "  %2 = add %1, %1 : f32[]\n"
                   "}\n");
  free(again);
  free(text);
  arena_free(&a);
  arena_free(&b);
  arena_free(&c);
}
END_TEST

/* ------------------------------------------------------ reader errors */

#define PRE "graph g {\n  %x = input : f32[3]\n"

static const struct {
  const char *text;
  const char *want;   /* in the diagnostics */
  int n_errors;       /* 0: do not check the count */
} read_errors[] = {
    {PRE "  %y = relu %foo : f32[3]\n}\n", "t.ir:3:13: error: use of undefined value '%foo'\n", 1},
    {PRE "  %y = rleu %x : f32[3]\n}\n", "t.ir:3:8: error: unknown op 'rleu'; did you mean 'relu'?\n", 1},
    {PRE "  %y = frobnicate %x : f32[3]\n}\n", "t.ir:3:8: error: unknown op 'frobnicate'\n", 1},
    {PRE "  %y = matmul %x : f32[3]\n}\n", "t.ir:3:8: error: 'matmul' takes 2 operands, got 1\n", 1},
    {PRE "  %y = input %x : f32[3]\n}\n", "t.ir:3:8: error: 'input' takes 0 operands, got 1\n", 1},
    {PRE "  %y = concat axis=0 : f32[3]\n}\n", "t.ir:3:8: error: 'concat' takes at least 1 operand, got 0\n", 1},
    {PRE "  %s = sum %x axes=[0] : f32[]\n}\n", "t.ir:3:8: error: missing attribute 'keepdims' for 'sum'\n", 1},
    {PRE "  %s = sum %x axis=[0] keepdims=false : f32[]\n}\n",
     "t.ir:3:15: error: 'sum' has no attribute 'axis'; did you mean 'axes'?\n", 1},
    {PRE "  %s = sum %x axes=[0] axes=[0] keepdims=false : f32[]\n}\n",
     "t.ir:3:24: error: duplicate attribute 'axes'\n", 1},
    {PRE "  %s = sum %x axes=[0] keepdims=1 : f32[]\n}\n",
     "t.ir:3:33: error: expected true or false, found '1'\n", 1},
    {PRE "  %s = softmax %x axis=0.5 : f32[3]\n}\n",
     "t.ir:3:24: error: expected an integer, found '0.5'\n", 1},
    {PRE "  %z = input : f64[3]\n}\n", "t.ir:3:16: error: unknown dtype 'f64' (expected f32, i32 or bool)\n", 1},
    {PRE "  %z = input : ?[3]\n}\n", "t.ir:3:16: error: a poisoned type '?' cannot be read back\n", 1},
    {PRE "  %z = input f32[3]\n}\n", "t.ir:3:14: error: expected ':' before the type, found 'f32'\n", 1},
    {PRE "  %y = relu %x : f32[2]\n}\n",
     "t.ir:3:18: error: type mismatch for %y: printed f32[2] but the op gives f32[3]\n", 1},
    {PRE "  %y = sum %x axes=[0] keepdims=true : f32[]\n}\n",
     "t.ir:3:40: error: type mismatch for %y: printed f32[] but the op gives f32[1]\n", 1},
    {PRE "  %y = one_hot %x depth=3 : f32[3,3]\n}\n",
     "t.ir:3:8: error: 'one_hot' needs i32 indices, got f32[3]\n", 1},
    {PRE "  %z = input : f32[1,1,1,1,1,1,1,1,1]\n}\n", "t.ir:3:36: error: type has a rank above 8\n", 1},
    {PRE "  %z = input : f32[0]\n}\n", "t.ir:3:20: error: dimension 0 is less than 1\n", 1},
    {PRE "  %z = input : f32[-4]\n}\n", "t.ir:3:20: error: dimension -4 is less than 1\n", 1},
    {PRE "  %z = input : f32[4611686018427387905]\n}\n",
     "t.ir:3:20: error: dimension 4611686018427387905 is above 2^62\n", 1},
    {PRE "  %z = input : f32[4611686018427387904]\n}\n",
     "t.ir:3:8: error: tensor f32[4611686018427387904] has more than 2^31 elements\n", 1},
    {PRE "  %z = input : f32[99999999999999999999]\n}\n",
     "t.ir:3:20: error: integer '99999999999999999999' is out of range\n", 1},
    {PRE "  %c = const value=1e999 : f32[]\n}\n", "t.ir:3:20: error: number '1e999' is out of range\n", 1},
    {PRE "  %r = reshape %x shape=[1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,"
         "1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1] : f32[3]\n}\n",
     "t.ir:3:154: error: list longer than 64 elements\n", 1},
    {PRE "  %r = reshape %x shape=[[3]] : f32[3]\n}\n", "t.ir:3:26: error: expected an integer, found '['\n", 1},
    {PRE "  %w = param : f32[3] init=unifrom(0, 1)\n}\n",
     "t.ir:3:28: error: unknown initializer 'unifrom'; did you mean 'uniform'?\n", 1},
    {PRE "  %w = param : f32[3] init=uniform(0)\n}\n",
     "t.ir:3:28: error: initializer 'uniform' takes 2 arguments, got 1\n", 1},
    {PRE "  %w = param : f32[3] init=uniform(0, 1, 2)\n}\n",
     "t.ir:3:28: error: too many arguments for initializer 'uniform'\n", 1},
    {PRE "  %y = relu %x : f32[3] init=zeros()\n}\n", "t.ir:3:25: error: only a var may have an initializer\n", 1},
    {PRE "  %y = relu %x : f32[3] @0:1\n}\n", "t.ir:3:26: error: line number 0 is out of range\n", 1},
    {PRE "  %y = relu %x : f32[3] junk\n}\n", "t.ir:3:25: error: expected end of line, found 'junk'\n", 1},
    {PRE "  %x = input : f32[3]\n}\n", "t.ir:3:3: error: redefinition of '%x'\n", 1},
    {PRE "  % = input : f32[3]\n}\n", "t.ir:3:3: error: expected a value name after '%'\n", 1},
    {PRE "  %s = sum %x axes=[0] keepdims=false : f32[]\n  loss %s\n  loss %s\n}\n",
     "t.ir:5:8: error: a graph has at most one loss\n", 1},
    {PRE "  output a=%x, b=%x\n}\n", "t.ir:3:18: error: '%x' is already an output\n", 1},
    {PRE "  loss %x\n}\n", "t.ir:3:8: error: the loss %x has type f32[3], not f32[]\n", 1},
    {PRE "  %x.1 = param : f32[3]\n}\n", "t.ir:3:3: error: var name 'x' is already used by %0\n", 1},
    {PRE "  output\n}\n", "t.ir:3:9: error: expected an output name, found end of line\n", 1},
    {PRE "  frob\n}\n", "t.ir:3:3: error: expected a node, 'output', 'loss', 'grad', 'kernel' or '}', found 'frob'\n", 1},
    /* an error poisons its name: the use on the next line stays silent */
    {PRE "  %y = relu %foo : f32[3]\n  %z = relu %y : f32[3]\n  output z=%z\n}\n",
     "t.ir:3:13: error: use of undefined value '%foo'\n", 1},
    /* errors on several lines are all reported */
    {PRE "  %y = rleu %x : f32[3]\n  %z = relu %x : f32[4]\n}\n",
     "t.ir:4:18: error: type mismatch for %z: printed f32[4] but the op gives f32[3]\n", 2},
    {"\x01\xffgraph g {\n}\n", "t.ir:1:1: error: expected 'graph', found byte 0x01\n", 2},
    {"graph g {\n  %x = input : f32[3] \x80\n}\n", "t.ir:2:23: error: expected end of line, found byte 0x80\n", 1},
    {"graph g {\n  %x = input : f32[3",
     "t.ir:2:21: error: expected ',' or ']' in the type, found end of input\n"
     "    %x = input : f32[3\n"
     "                      ^\n"
     "t.ir:2:21: error: expected '}' to close graph 'g', found end of input\n", 2},
    {"graph g {\n  %x = inp", "t.ir:2:8: error: unknown op 'inp'", 2},
    {"graph", "t.ir:1:6: error: expected a graph name, found end of input\n", 2},
    {"graph a {\ngraph b {\n}\n", "t.ir:2:1: error: expected '}' to close graph 'a' before the next graph\n", 1},
    {"graph a {\n}\ngraph a {\n}\n", "t.ir:3:7: error: duplicate graph 'a'\n", 1},
    {"graph a {\n} x\n", "t.ir:2:3: error: expected end of line, found 'x'\n", 1},
    {"model m {\n}\n", "t.ir:1:1: error: expected 'graph', found 'model'\n", 2},
    /* kernel blocks that ir_verify would refuse (found by tests/fuzz) */
    {PRE "  kernel k1 loop f32[3] {\n    %a = relu %x : f32[3]\n  }\n  %b = exp %a : f32[3]\n"
         "  kernel k1 loop f32[3] {\n    %c = relu %b : f32[3]\n  }\n}\n",
     "t.ir:1:7: error: graph 'g' breaks the fusion rules: node %3 (relu) at 0:0: kernel k1 is "
     "not contiguous or not numbered in order (expected k2)\n", 1},
    {PRE "  kernel k1 loop f32[3] {\n    %a = relu %x : f32[3]\n    %m = softmax %a axis=0 : f32[3]\n"
         "  }\n}\n",
     "t.ir:1:7: error: graph 'g' breaks the fusion rules: node %2 (softmax) at 0:0: 'softmax' is "
     "not elementwise and cannot be in kernel k1\n", 1},
};

START_TEST(test_read_errors) {
  Arena a = {0};
  char *diag = NULL;
  int n_errors;
  const char *text = read_errors[_i].text;
  Module *m = read_text(&a, text, strlen(text), &diag, &n_errors);
  ck_assert_msg(m == NULL, "case %d read without error", _i);
  ck_assert_msg(strstr(diag, read_errors[_i].want), "case %d: want\n%s\ngot\n%s", _i,
                read_errors[_i].want, diag);
  if (read_errors[_i].n_errors)
    ck_assert_msg(n_errors == read_errors[_i].n_errors, "case %d: %d errors:\n%s", _i, n_errors,
                  diag);
  free(diag);
  arena_free(&a);
}
END_TEST

/* Empty and comment-only text is an empty module, not an error. */
START_TEST(test_read_empty) {
  Arena a = {0};
  char *diag = NULL;
  Module *m = read_text(&a, "", 0, &diag, NULL);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(m->n_graphs, 0);
  free(diag);
  m = read_text(&a, "# nothing\n\n", 11, &diag, NULL);
  ck_assert_ptr_nonnull(m);
  free(diag);
  Diag d;
  diag_init(&d, "t.ir", NULL, 0, stderr);
  ck_assert_ptr_nonnull(ir_read(&a, &d));
  arena_free(&a);
}
END_TEST

/* A var without an input/param/state role (which the verifier rejects)
 * still prints, as `var`, and reads back. */
START_TEST(test_var_without_role) {
  Arena a = {0};
  Graph *g = ir_graph_new(&a, "g");
  ir_var(g, "t", 0, T(DT_BOOL, 1, 3), L(36, 3));
  char *text = graph_text(g);
  ck_assert_str_eq(text, "graph g {\n  %t = var : bool[3] @36:3\n}\n");
  char *diag = NULL;
  Module *m = read_text(&a, text, strlen(text), &diag, NULL);
  ck_assert_msg(m != NULL, "%s", diag);
  ck_assert_int_eq(m->graphs[0]->nodes[0]->op, OP_VAR);
  ck_assert_int_eq(m->graphs[0]->nodes[0]->roles, 0);
  char *again = graph_text(m->graphs[0]);
  ck_assert_str_eq(again, text);
  free(again);
  free(diag);
  free(text);
  arena_free(&a);
}
END_TEST

/* ------------------------------------------------------ robustness */

static unsigned long long rng_state;
static unsigned rnd(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (unsigned)(rng_state >> 33);
}

/* Reads text that may be anything; returns whether it read cleanly. */
static bool read_anything(const char *text, size_t len) {
  Arena a = {0};
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "t.ir", text, len, null);
  Module *m = ir_read(&a, &d);
  bool ok = m != NULL;
  if (m)  /* whatever reads cleanly verifies */
    for (int i = 0; i < m->n_graphs; i++) ck_assert_int_eq(ir_verify(m->graphs[i], stderr), 0);
  fclose(null);
  arena_free(&a);
  return ok;
}

START_TEST(test_read_truncated) {
  Arena a = {0};
  char *text = graph_text(kitchen_graph(&a));
  size_t len = strlen(text);
  /* every prefix; NUL-free copies so the reader cannot rely on a NUL */
  for (size_t n = 0; n < len; n++) {
    char *copy = malloc(n + 1);
    memcpy(copy, text, n);
    bool ok = read_anything(copy, n);
    ck_assert_msg(!ok || n == 0 || n == len - 1, "prefix of %zu bytes read cleanly", n);
    free(copy);
  }
  ck_assert(read_anything(text, len));
  free(text);
  arena_free(&a);
}
END_TEST

START_TEST(test_read_mutated) {
  Arena a = {0};
  char *text = graph_text(kitchen_graph(&a));
  size_t len = strlen(text);
  char *buf = malloc(len);
  rng_state = 42;
  static const char interesting[] = "%=,:[](){}@#\n-.0123456789e\x00\xff";
  for (int iter = 0; iter < 3000; iter++) {
    memcpy(buf, text, len);
    int edits = 1 + (int)(rnd() % 4);
    for (int e = 0; e < edits; e++) {
      size_t at = rnd() % len;
      buf[at] = (rnd() & 1) ? (char)rnd() : interesting[rnd() % (sizeof interesting - 1)];
    }
    read_anything(buf, len);
  }
  free(buf);
  free(text);
  arena_free(&a);
}
END_TEST

START_TEST(test_read_garbage) {
  rng_state = 7;
  enum { N = 1 << 16 };
  char *buf = malloc(N);
  for (int iter = 0; iter < 20; iter++) {
    for (int i = 0; i < N; i++) buf[i] = (char)rnd();
    ck_assert(!read_anything(buf, N));
  }
  /* one long line of operands, a long name, many dims */
  size_t n = 0, cap = 3u << 20;
  char *big = malloc(cap);
  n += (size_t)sprintf(big + n, "graph g {\n  %%x = input : f32[1]\n  %%y = concat ");
  for (int i = 0; i < 200000; i++) n += (size_t)sprintf(big + n, i ? ", %%x" : "%%x");
  n += (size_t)sprintf(big + n, " axis=0 : f32[200000]\n  %%");
  for (int i = 0; i < 1000000; i++) big[n++] = 'a';
  n += (size_t)sprintf(big + n, " = input : f32[");
  for (int i = 0; i < 100000; i++) n += (size_t)sprintf(big + n, "1,");
  n += (size_t)sprintf(big + n, "1]\n}\n");
  ck_assert(n < cap);
  Arena a = {0};
  char *diag = NULL;
  int n_errors;
  Module *m = read_text(&a, big, n, &diag, &n_errors);
  ck_assert_ptr_null(m);
  ck_assert_int_eq(n_errors, 1);
  ck_assert_msg(strstr(diag, "type has a rank above 8"), "%s", diag);
  free(diag);
  arena_free(&a);
  /* many errors: the diagnostics stop at the limit */
  n = 0;
  n += (size_t)sprintf(big + n, "graph g {\n");
  for (int i = 0; i < 10000; i++) n += (size_t)sprintf(big + n, "  %%y%d = relu %%nope : f32[1]\n", i);
  n += (size_t)sprintf(big + n, "}\n");
  m = read_text(&a, big, n, &diag, &n_errors);
  ck_assert_ptr_null(m);
  ck_assert_int_eq(n_errors, 10000);
  ck_assert(strstr(diag, "too many errors"));
  free(diag);
  arena_free(&a);
  free(big);
  free(buf);
}
END_TEST

/* Many nodes sharing one name: the suffix search must stay linear. */
START_TEST(test_many_rebindings) {
  Arena a = {0};
  Graph *g = ir_graph_new(&a, "chain");
  Node *h = ir_var(g, "h", ROLE_INPUT, T(DT_F32, 1, 4), L(1, 1));
  for (int i = 0; i < 100000; i++) h = fin(op(g, OP_RELU, "h", L(2, 1), 1, h, NULL, NULL));
  char *text = graph_text(g);
  ck_assert(strstr(text, "  %h.100000 = relu %h.99999 : f32[4] @2:1\n"));
  Arena b = {0};
  char *diag = NULL;
  Module *m = read_text(&b, text, strlen(text), &diag, NULL);
  ck_assert_msg(m != NULL, "%s", diag);
  ck_assert_str_eq(m->graphs[0]->nodes[100000]->name, "h");
  char *again = graph_text(m->graphs[0]);
  ck_assert_str_eq(again, text);
  free(again);
  free(diag);
  free(text);
  arena_free(&a);
  arena_free(&b);
}
END_TEST

static Suite *print_suite(void) {
  Suite *s = suite_create("ir_print");
  TCase *tc = tcase_create("print");
  tcase_add_test(tc, test_print_exact);
  tcase_add_test(tc, test_print_floats_and_lists);
  tcase_add_test(tc, test_round_trip_graphs);
  tcase_add_test(tc, test_read_golden);
  tcase_add_test(tc, test_round_trip_module);
  tcase_add_loop_test(tc, test_read_errors, 0, (int)(sizeof read_errors / sizeof read_errors[0]));
  tcase_add_test(tc, test_read_empty);
  tcase_add_test(tc, test_var_without_role);
  suite_add_tcase(s, tc);
  TCase *rb = tcase_create("robustness");
  tcase_set_timeout(rb, 120);
  tcase_add_test(rb, test_read_truncated);
  tcase_add_test(rb, test_read_mutated);
  tcase_add_test(rb, test_read_garbage);
  tcase_add_test(rb, test_many_rebindings);
  suite_add_tcase(s, rb);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(print_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
