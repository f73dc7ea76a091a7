/* test_interp.c - the reference evaluator (eval/interp.c): each test
 * builds a small graph node by node (or from .nn source), runs it, and
 * compares values with a hand computation or with plain loops written
 * independently here. The transposed ops (conv and pooling gradients,
 * scatter_add, unslice) are checked as exact adjoints of their forward
 * ops: <f(x), g> == <x, f^T(g)> on random data. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "runtime/runtime.h"
#include "testutil.h"

/* -------------------------------------------------------------- fixture */

static Arena arena;
static Graph *g;
static Interp *it;
static int n_vars;
static const SrcLoc L = {3, 7};

static void setup(void) {
  memset(&arena, 0, sizeof arena);
  g = ir_graph_new(&arena, "t");
  it = NULL;
  n_vars = 0;
}

static void teardown(void) {
  interp_free(it);
  arena_free(&arena);
}

/* "f32[2,3]", "i32[]", "bool[4]" -> Type. */
static Type T(const char *s) {
  DType dt = !strncmp(s, "f32", 3) ? DT_F32 : !strncmp(s, "i32", 3) ? DT_I32
           : !strncmp(s, "bool", 4) ? DT_BOOL : DT_ERR;
  ck_assert_msg(dt != DT_ERR, "bad type text %s", s);
  const char *p = strchr(s, '[');
  ck_assert_ptr_nonnull(p);
  int64_t dims[IR_MAX_RANK];
  int rank = 0;
  for (p++; *p && *p != ']';) {
    char *end;
    dims[rank++] = strtoll(p, &end, 10);
    p = *end == ',' ? end + 1 : end;
  }
  return type_make(dt, rank, dims);
}

static Node *var(const char *type, unsigned role) {
  return ir_var(g, arena_printf(&arena, "v%d", n_vars++), role, T(type), L);
}
static Node *V(const char *type) { return var(type, ROLE_INPUT); }

/* A node whose attributes the caller sets before calling done(). */
static Node *op(Op o, int n_in, ...) {
  Node *ins[8];
  va_list ap;
  va_start(ap, n_in);
  for (int i = 0; i < n_in; i++) ins[i] = va_arg(ap, Node *);
  va_end(ap);
  return ir_node_new(g, o, ins, n_in, L);
}

static Node *done(Node *n) {
  ck_assert_msg(ir_infer(n, NULL), "ir_infer failed on %s", op_info(n->op)->name);
  return n;
}
#define OP1(o, a) done(op(o, 1, a))
#define OP2(o, a, b) done(op(o, 2, a, b))

#define LIST(n, k, ...)                                                        \
  ir_set_list(g, n, k, (int64_t[]){__VA_ARGS__},                            \
              (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))

static int64_t numel(const Node *n) { return type_numel(&n->type); }

/* Makes the evaluator for the graph as built so far. */
static void start(bool round_f32) {
  interp_free(it);
  it = interp_new(g, round_f32);
}

static void set(const Node *v, const double *values) {
  memcpy(interp_var(it, v), values, sizeof(double) * (size_t)numel(v));
}

/* Fills a var with N(0, 1) draws from stream `salt`. */
static void set_random(const Node *v, uint64_t salt) {
  double *p = interp_var(it, v);
  for (int64_t k = 0; k < numel(v); k++) p[k] = rt_rand_normal(1234, salt, (uint64_t)k);
}

static void run(void) {
  char err[256] = "";
  ck_assert_msg(interp_run(it, 0, err, sizeof err) == 0, "%s", err);
}

static const double *get(const Node *n) { return interp_value(it, n); }

static void expect_(const Node *n, const double *want, int64_t count, double tol, int line) {
  ck_assert_msg(numel(n) == count, "line %d: %lld values, want %lld", line, (long long)numel(n),
                (long long)count);
  const double *v = get(n);
  for (int64_t k = 0; k < count; k++)
    ck_assert_msg(fabs(v[k] - want[k]) <= tol * (1 + fabs(want[k])),
                  "line %d: element %lld is %.17g, want %.17g", line, (long long)k, v[k], want[k]);
}
#define EXPECT(n, tol, ...)                                                     \
  expect_(n, (double[]){__VA_ARGS__}, (int64_t)(sizeof((double[]){__VA_ARGS__}) / sizeof(double)), \
          tol, __LINE__)

static double dot(const double *a, const double *b, int64_t n) {
  double s = 0;
  for (int64_t k = 0; k < n; k++) s += a[k] * b[k];
  return s;
}

#define TIGHT 1e-12

/* --------------------------------------------------------- elementwise */

START_TEST(broadcasting_add) {
  Node *a = V("f32[2,3]"), *b = V("f32[3]"), *c = V("f32[2,1]"), *d = V("f32[1,3]");
  Node *ab = OP2(OP_ADD, a, b), *cd = OP2(OP_SUB, c, d);
  Node *s = V("f32[]"), *as = OP2(OP_MUL, s, a);
  start(false);
  set(a, (double[]){1, 2, 3, 4, 5, 6});
  set(b, (double[]){10, 20, 30});
  set(c, (double[]){1, 2});
  set(d, (double[]){100, 200, 300});
  set(s, (double[]){-2});
  run();
  EXPECT(ab, TIGHT, 11, 22, 33, 14, 25, 36);
  EXPECT(cd, TIGHT, -99, -199, -299, -98, -198, -298);
  EXPECT(as, TIGHT, -2, -4, -6, -8, -10, -12);
}
END_TEST

START_TEST(compare_and_where) {
  Node *a = V("f32[2,2]"), *b = V("f32[2]");
  Node *lt = OP2(OP_LT, a, b), *ne = OP2(OP_NE, a, b), *ge = OP2(OP_GE, a, b);
  Node *w = done(op(OP_WHERE, 3, lt, a, b));
  Node *mx = OP2(OP_MAXIMUM, a, b), *mn = OP2(OP_MINIMUM, a, b), *dv = OP2(OP_DIV, a, b);
  start(false);
  set(a, (double[]){1, 5, 3, 2});
  set(b, (double[]){2, 2});
  run();
  ck_assert_int_eq(lt->type.dtype, DT_BOOL);
  EXPECT(lt, 0, 1, 0, 0, 0);
  EXPECT(ne, 0, 1, 1, 1, 0);
  EXPECT(ge, 0, 0, 1, 1, 1);
  EXPECT(w, 0, 1, 2, 2, 2);
  EXPECT(mx, 0, 2, 5, 3, 2);
  EXPECT(mn, 0, 1, 2, 2, 2);
  EXPECT(dv, TIGHT, 0.5, 2.5, 1.5, 1);
}
END_TEST

START_TEST(unary_ops) {
  Node *x = V("f32[5]");
  Node *gelu = OP1(OP_GELU, x), *sp = OP1(OP_SOFTPLUS, x), *sg = OP1(OP_SIGMOID, x);
  Node *rs = OP1(OP_RSQRT, OP1(OP_ABS, x)), *sq = OP1(OP_SQUARE, x), *relu = OP1(OP_RELU, x);
  Node *lr = op(OP_LEAKY_RELU, 1, x);
  lr->attr[0].f = 0.1;
  done(lr);
  Node *cl = op(OP_CLAMP, 1, x);
  cl->attr[0].f = -1;
  cl->attr[1].f = 2;
  done(cl);
  Node *pw = op(OP_POW, 1, OP1(OP_ABS, x));
  pw->attr[0].f = 1.5;
  done(pw);
  Node *ci = op(OP_CAST, 1, x);
  ci->type.dtype = DT_I32;
  done(ci);
  Node *cb = op(OP_CAST, 1, OP2(OP_GT, x, x));
  cb->type.dtype = DT_F32;
  done(cb);
  start(false);
  double v[5] = {-2.7, -0.5, 0.25, 3, 30};
  set(x, v);
  run();
  for (int k = 0; k < 5; k++) {
    double t = v[k];
    ck_assert_double_eq_tol(get(gelu)[k], 0.5 * t * (1 + erf(t / sqrt(2))), 1e-15);
    ck_assert_double_eq_tol(get(sp)[k], log(1 + exp(t)), 1e-12);
    ck_assert_double_eq_tol(get(sg)[k], 1 / (1 + exp(-t)), 1e-15);
    ck_assert_double_eq_tol(get(rs)[k], 1 / sqrt(fabs(t)), 1e-15);
    ck_assert_double_eq_tol(get(pw)[k], pow(fabs(t), 1.5), 1e-12);
  }
  EXPECT(sq, TIGHT, 7.29, 0.25, 0.0625, 9, 900);
  EXPECT(relu, 0, 0, 0, 0.25, 3, 30);
  EXPECT(lr, TIGHT, -0.27, -0.05, 0.25, 3, 30);
  EXPECT(cl, 0, -1, -0.5, 0.25, 2, 2);
  EXPECT(ci, 0, -2, 0, 0, 3, 30);  /* truncation toward zero */
  EXPECT(cb, 0, 0, 0, 0, 0, 0);
}
END_TEST

START_TEST(i32_arithmetic_is_exact_and_wraps) {
  Node *a = V("i32[3]"), *b = V("i32[3]");
  Node *mul = OP2(OP_MUL, a, b), *add = OP2(OP_ADD, a, b);  /* i32 '/' is an error */
  start(false);
  set(a, (double[]){65536, -7, 2147483647});
  set(b, (double[]){65536, 2, 1});
  run();
  EXPECT(mul, 0, 0, -14, 2147483647);         /* 2^32 wraps to 0 */
  EXPECT(add, 0, 65536 * 2, -5, -2147483648.0);
}
END_TEST

/* --------------------------------------------------------------- matmul */

START_TEST(matmul_batched_and_rank1) {
  Node *a = V("f32[2,1,2,3]"), *b = V("f32[4,3,2]");
  Node *ab = OP2(OP_MATMUL, a, b);
  Node *v = V("f32[3]"), *m = V("f32[3,2]"), *m2 = V("f32[2,3]");
  Node *vm = OP2(OP_MATMUL, v, m), *mv = OP2(OP_MATMUL, m2, v), *vv = OP2(OP_MATMUL, v, v);
  Node *bv = OP2(OP_MATMUL, b, V("f32[2]"));
  start(false);
  set_random(a, 1);
  set_random(b, 2);
  set(v, (double[]){1, 2, 3});
  set(m, (double[]){1, 0, 0, 1, 1, 1});
  set(m2, (double[]){1, 1, 1, 0, 1, -1});
  set(bv->in[1], (double[]){2, -1});
  run();
  char buf[TYPE_STR_MAX];
  ck_assert_str_eq(type_str(&ab->type, buf, sizeof buf), "f32[2,4,2,2]");
  const double *A = interp_var(it, a), *B = interp_var(it, b), *C = get(ab);
  for (int p = 0; p < 2; p++)
    for (int q = 0; q < 4; q++)
      for (int i = 0; i < 2; i++)
        for (int j = 0; j < 2; j++) {
          double s = 0;
          for (int k = 0; k < 3; k++) s += A[(p * 2 + i) * 3 + k] * B[(q * 3 + k) * 2 + j];
          ck_assert_double_eq_tol(C[((p * 4 + q) * 2 + i) * 2 + j], s, 1e-12);
        }
  EXPECT(vm, TIGHT, 4, 5);
  EXPECT(mv, TIGHT, 6, -1);
  ck_assert_int_eq(vv->type.rank, 0);
  EXPECT(vv, TIGHT, 14);
  ck_assert_str_eq(type_str(&bv->type, buf, sizeof buf), "f32[4,3]");
  for (int q = 0; q < 4; q++)
    for (int i = 0; i < 3; i++)
      ck_assert_double_eq_tol(get(bv)[q * 3 + i], 2 * B[(q * 3 + i) * 2] - B[(q * 3 + i) * 2 + 1],
                              1e-12);
}
END_TEST

/* ----------------------------------------------------------- reductions */

/* Reductions over axes {0, 2} of x [2,3,4], with and without keepdims,
 * against loops written out here. */
START_TEST(reductions_with_keepdims) {
  Node *x = V("f32[2,3,4]");
  Op ops[] = {OP_SUM, OP_MEAN, OP_MAX, OP_MIN, OP_LOGSUMEXP};
  Node *r[5][2];
  for (int o = 0; o < 5; o++)
    for (int keep = 0; keep < 2; keep++) {
      r[o][keep] = op(ops[o], 1, x);
      LIST(r[o][keep], 0, 2, 0);  /* unsorted: ir_infer sorts */
      r[o][keep]->attr[1].i = keep;
      done(r[o][keep]);
    }
  Node *all = op(OP_SUM, 1, x);
  LIST(all, 0, 0, 1, 2);
  done(all);
  start(false);
  set_random(x, 3);
  run();
  const double *X = interp_var(it, x);
  char buf[TYPE_STR_MAX];
  ck_assert_str_eq(type_str(&r[0][1]->type, buf, sizeof buf), "f32[1,3,1]");
  ck_assert_str_eq(type_str(&r[0][0]->type, buf, sizeof buf), "f32[3]");
  double total = 0;
  for (int j = 0; j < 3; j++) {
    double s = 0, mx = -INFINITY, mn = INFINITY, e = 0;
    for (int i = 0; i < 2; i++)
      for (int k = 0; k < 4; k++) {
        double v = X[(i * 3 + j) * 4 + k];
        s += v;
        mx = fmax(mx, v);
        mn = fmin(mn, v);
        e += exp(v);
      }
    total += s;
    double want[5] = {s, s / 8, mx, mn, log(e)};
    for (int o = 0; o < 5; o++)
      for (int keep = 0; keep < 2; keep++)
        ck_assert_double_eq_tol(get(r[o][keep])[j], want[o], 1e-12);
  }
  ck_assert_int_eq(all->type.rank, 0);
  ck_assert_double_eq_tol(get(all)[0], total, 1e-12);
}
END_TEST

START_TEST(logsumexp_is_stable) {
  Node *x = V("f32[3]");
  Node *l = op(OP_LOGSUMEXP, 1, x);
  LIST(l, 0, 0);
  done(l);
  start(false);
  set(x, (double[]){1000, 1000, -INFINITY});
  run();
  EXPECT(l, TIGHT, 1000 + log(2));
}
END_TEST

START_TEST(argmax_takes_the_first_max) {
  Node *x = V("f32[2,4]");
  Node *a = op(OP_ARGMAX, 1, x);
  a->attr[0].i = 1;
  done(a);
  Node *k = op(OP_ARGMAX, 1, x);
  k->attr[0].i = 0;
  k->attr[1].i = 1;
  done(k);
  start(false);
  set(x, (double[]){1, 7, 7, 2, -1, 7, 8, -5});
  run();
  ck_assert_int_eq(a->type.dtype, DT_I32);
  EXPECT(a, 0, 1, 2);
  EXPECT(k, 0, 0, 0, 1, 0);  /* the tie in column 1 goes to row 0 */
}
END_TEST

START_TEST(softmax_and_log_softmax) {
  Node *x = V("f32[3,4]");
  Node *sm = op(OP_SOFTMAX, 1, x), *ls = op(OP_LOG_SOFTMAX, 1, x), *s0 = op(OP_SOFTMAX, 1, x);
  sm->attr[0].i = 1;
  ls->attr[0].i = -1;
  s0->attr[0].i = 0;
  done(sm);
  done(ls);
  done(s0);
  start(false);
  set_random(x, 4);
  interp_var(it, x)[0] = 800;  /* would overflow exp without the max shift */
  run();
  const double *X = interp_var(it, x);
  for (int i = 0; i < 3; i++) {
    double s = 0, m = -INFINITY, e = 0;
    for (int j = 0; j < 4; j++) m = fmax(m, X[i * 4 + j]);
    for (int j = 0; j < 4; j++) e += exp(X[i * 4 + j] - m);
    for (int j = 0; j < 4; j++) {
      s += get(sm)[i * 4 + j];
      ck_assert_double_eq_tol(get(ls)[i * 4 + j], X[i * 4 + j] - m - log(e), 1e-12);
      ck_assert_double_eq_tol(exp(get(ls)[i * 4 + j]), get(sm)[i * 4 + j], 1e-12);
    }
    ck_assert_double_eq_tol(s, 1, 1e-12);
  }
  for (int j = 0; j < 4; j++) {
    double s = 0;
    for (int i = 0; i < 3; i++) s += get(s0)[i * 4 + j];
    ck_assert_double_eq_tol(s, 1, 1e-12);
  }
  ck_assert_double_eq_tol(get(sm)[0], 1, 1e-12);
}
END_TEST

/* ------------------------------------------------------- data movement */

START_TEST(reshape_transpose_broadcast) {
  Node *x = V("f32[2,3]");
  Node *r = op(OP_RESHAPE, 1, x);
  LIST(r, 0, 3, 2);
  done(r);
  Node *t = op(OP_TRANSPOSE, 1, x);
  LIST(t, 0, 1, 0);
  done(t);
  Node *y = V("f32[2,3,4]");
  Node *t3 = op(OP_TRANSPOSE, 1, y);
  LIST(t3, 0, 2, 0, 1);  /* out dim i = in dim perm[i]: [4,2,3] */
  done(t3);
  Node *b = op(OP_BROADCAST, 1, V("f32[3,1]"));
  LIST(b, 0, 2, 3, 2);
  done(b);
  start(false);
  set(x, (double[]){1, 2, 3, 4, 5, 6});
  set_random(y, 5);
  set(b->in[0], (double[]){7, 8, 9});
  run();
  EXPECT(r, 0, 1, 2, 3, 4, 5, 6);
  EXPECT(t, 0, 1, 4, 2, 5, 3, 6);
  EXPECT(b, 0, 7, 7, 8, 8, 9, 9, 7, 7, 8, 8, 9, 9);
  const double *Y = interp_var(it, y);
  for (int k = 0; k < 4; k++)
    for (int i = 0; i < 2; i++)
      for (int j = 0; j < 3; j++)
        ck_assert(get(t3)[(k * 2 + i) * 3 + j] == Y[(i * 3 + j) * 4 + k]);
}
END_TEST

START_TEST(slice_unslice_round_trip) {
  Node *x = V("f32[4,5]");
  Node *s = op(OP_SLICE, 1, x);
  LIST(s, 0, 1, 0);
  LIST(s, 1, 4, 5);
  LIST(s, 2, 2, 2);
  done(s);
  Node *u = op(OP_UNSLICE, 1, s);
  LIST(u, 0, 1, 0);
  LIST(u, 1, 2, 2);
  LIST(u, 2, 4, 5);
  done(u);
  start(false);
  double v[20];
  for (int k = 0; k < 20; k++) v[k] = k;
  set(x, v);
  run();
  EXPECT(s, 0, 5, 7, 9, 15, 17, 19);
  EXPECT(u, 0, 0, 0, 0, 0, 0, 5, 0, 7, 0, 9, 0, 0, 0, 0, 0, 15, 0, 17, 0, 19);
}
END_TEST

START_TEST(concat_on_an_axis) {
  Node *a = V("f32[2,1]"), *b = V("f32[2,3]");
  Node *c = op(OP_CONCAT, 2, a, b);
  c->attr[0].i = 1;
  done(c);
  Node *d = op(OP_CONCAT, 3, a, a, a);
  d->attr[0].i = 0;
  done(d);
  start(false);
  set(a, (double[]){1, 2});
  set(b, (double[]){3, 4, 5, 6, 7, 8});
  run();
  EXPECT(c, 0, 1, 3, 4, 5, 2, 6, 7, 8);
  EXPECT(d, 0, 1, 2, 1, 2, 1, 2);
}
END_TEST

START_TEST(one_hot_gather_scatter_add) {
  Node *i = V("i32[2,2]"), *tab = V("f32[4,3]");
  Node *oh = op(OP_ONE_HOT, 1, i);
  oh->attr[0].i = 4;
  done(oh);
  Node *ga = OP2(OP_GATHER, tab, i);
  Node *gr = V("f32[2,2,3]");
  Node *sc = op(OP_SCATTER_ADD, 2, gr, i);
  sc->attr[0].i = 4;
  done(sc);
  start(false);
  set(i, (double[]){3, 0, 3, 1});
  set_random(tab, 6);
  set_random(gr, 7);
  run();
  EXPECT(oh, 0, 0, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0);
  const double *tb = interp_var(it, tab), *G = interp_var(it, gr);
  int rows[4] = {3, 0, 3, 1};
  for (int j = 0; j < 4; j++)
    for (int e = 0; e < 3; e++) ck_assert(get(ga)[j * 3 + e] == tb[rows[j] * 3 + e]);
  for (int e = 0; e < 3; e++) {
    ck_assert_double_eq_tol(get(sc)[3 * 3 + e], G[0 * 3 + e] + G[2 * 3 + e], 1e-15);
    ck_assert(get(sc)[2 * 3 + e] == 0);
  }
  /* the adjoint pair: <gather(T, i), G> == <T, scatter_add(G, i)> */
  ck_assert_double_eq_tol(dot(get(ga), G, 12), dot(tb, get(sc), 12), 1e-12);
}
END_TEST

/* ----------------------------------------------- convolution, pooling */

static Node *conv_like(Op o, Node *a, Node *b, int64_t sh, int64_t sw, int64_t ph, int64_t pw,
                       int64_t e0, int64_t e1) {
  Node *n = op(o, 2, a, b);
  LIST(n, 0, sh, sw);
  LIST(n, 1, ph, pw);
  if (o != OP_CONV2D) LIST(n, 2, e0, e1);
  return done(n);
}

START_TEST(conv2d_known_values) {
  Node *x = V("f32[1,1,3,3]"), *w = V("f32[1,1,2,2]"), *k3 = V("f32[1,1,3,3]");
  Node *y = conv_like(OP_CONV2D, x, w, 1, 1, 0, 0, 0, 0);
  Node *z = conv_like(OP_CONV2D, x, k3, 2, 2, 1, 1, 0, 0);
  start(false);
  set(x, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
  set(w, (double[]){1, 0, 0, -1});
  set(k3, (double[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
  run();
  EXPECT(y, 0, -4, -4, -4, -4);
  EXPECT(z, 0, 12, 16, 24, 28);  /* stride 2, pad 1: corners of the padded image */
}
END_TEST

/* conv2d on random data against the formula written out here, and its
 * two gradients as its exact adjoints. */
START_TEST(conv2d_and_its_adjoints) {
  Node *x = V("f32[2,3,5,6]"), *w = V("f32[4,3,3,2]");
  Node *y = conv_like(OP_CONV2D, x, w, 2, 1, 1, 1, 0, 0);
  char buf[TYPE_STR_MAX];
  ck_assert_str_eq(type_str(&y->type, buf, sizeof buf), "f32[2,4,3,7]");
  Node *gy = V("f32[2,4,3,7]");
  Node *dx = conv_like(OP_CONV2D_GRAD_INPUT, gy, w, 2, 1, 1, 1, 5, 6);
  Node *dw = conv_like(OP_CONV2D_GRAD_WEIGHT, x, gy, 2, 1, 1, 1, 3, 2);
  start(false);
  set_random(x, 8);
  set_random(w, 9);
  set_random(gy, 10);
  run();
  const double *X = interp_var(it, x), *W = interp_var(it, w), *Gy = interp_var(it, gy);
  for (int n = 0; n < 2; n++)
    for (int o = 0; o < 4; o++)
      for (int i = 0; i < 3; i++)
        for (int j = 0; j < 7; j++) {
          double s = 0;
          for (int c = 0; c < 3; c++)
            for (int a = 0; a < 3; a++)
              for (int b = 0; b < 2; b++) {
                int r = i * 2 + a - 1, q = j + b - 1;
                if (r >= 0 && r < 5 && q >= 0 && q < 6)
                  s += X[((n * 3 + c) * 5 + r) * 6 + q] * W[((o * 3 + c) * 3 + a) * 2 + b];
              }
          ck_assert_double_eq_tol(get(y)[((n * 4 + o) * 3 + i) * 7 + j], s, 1e-12);
        }
  double fwd = dot(get(y), Gy, numel(y));
  ck_assert_double_eq_tol(dot(X, get(dx), numel(x)), fwd, 1e-10);
  ck_assert_double_eq_tol(dot(W, get(dw), numel(w)), fwd, 1e-10);
}
END_TEST

static Node *pool_like(Op o, Node *a, Node *b, int64_t k, int64_t s, int64_t h, int64_t w) {
  Node *n = b ? op(o, 2, a, b) : op(o, 1, a);
  LIST(n, 0, k, k);
  LIST(n, 1, s, s);
  if (o == OP_AVG_POOL2D_GRAD) LIST(n, 2, h, w);
  return done(n);
}

START_TEST(max_pool2d_known_values) {
  Node *x = V("f32[1,1,4,4]");
  Node *m = pool_like(OP_MAX_POOL2D, x, NULL, 2, 2, 0, 0);
  Node *a = pool_like(OP_AVG_POOL2D, x, NULL, 2, 2, 0, 0);
  Node *m3 = pool_like(OP_MAX_POOL2D, x, NULL, 3, 1, 0, 0);
  start(false);
  set(x, (double[]){1, 5, 2, 0, 3, 4, 8, 1, 0, 0, 1, 1, 9, 2, 1, 7});
  run();
  EXPECT(m, 0, 5, 8, 9, 7);
  EXPECT(a, TIGHT, 13 / 4.0, 11 / 4.0, 11 / 4.0, 10 / 4.0);
  EXPECT(m3, 0, 8, 8, 9, 8);
}
END_TEST

/* max_pool2d_grad puts g at each window's first maximum (ties: the first
 * in row-major order), accumulating over overlapping windows;
 * max_pool2d_select reads there; they are each other's adjoint. */
START_TEST(max_pool2d_grad_and_select) {
  Node *x = V("f32[1,1,3,3]"), *gp = V("f32[1,1,2,2]");
  Node *gr = pool_like(OP_MAX_POOL2D_GRAD, x, gp, 2, 1, 0, 0);
  Node *h = V("f32[1,1,3,3]");
  Node *sel = pool_like(OP_MAX_POOL2D_SELECT, x, h, 2, 1, 0, 0);
  start(false);
  set(x, (double[]){1, 1, 0, 1, 1, 0, 0, 0, 0});  /* ties everywhere */
  set(gp, (double[]){1, 10, 100, 1000});
  set(h, (double[]){1, 2, 3, 4, 5, 6, 7, 8, 9});
  run();
  /* windows' first maxima: (0,0), (0,1), (1,0), (1,1) */
  EXPECT(gr, 0, 1, 10, 0, 100, 1000, 0, 0, 0, 0);
  EXPECT(sel, 0, 1, 2, 4, 5);
  ck_assert_double_eq_tol(dot(get(sel), interp_var(it, gp), 4), dot(interp_var(it, h), get(gr), 9),
                          1e-12);
}
END_TEST

START_TEST(pool_adjoints_on_random_data) {
  Node *x = V("f32[2,3,7,6]"), *gp = V("f32[2,3,3,2]"), *h = V("f32[2,3,7,6]");
  Node *gr = pool_like(OP_MAX_POOL2D_GRAD, x, gp, 3, 2, 0, 0);
  Node *sel = pool_like(OP_MAX_POOL2D_SELECT, x, h, 3, 2, 0, 0);
  Node *avg = pool_like(OP_AVG_POOL2D, h, NULL, 3, 2, 0, 0);
  Node *ag = pool_like(OP_AVG_POOL2D_GRAD, gp, NULL, 3, 2, 7, 6);
  start(false);
  set_random(x, 11);
  set_random(gp, 12);
  set_random(h, 13);
  run();
  const double *G = interp_var(it, gp), *H = interp_var(it, h);
  ck_assert_double_eq_tol(dot(get(sel), G, 36), dot(H, get(gr), numel(h)), 1e-12);
  ck_assert_double_eq_tol(dot(get(avg), G, 36), dot(H, get(ag), numel(h)), 1e-12);
  /* select at x's own maxima is max_pool2d of x */
  Node *mp = pool_like(OP_MAX_POOL2D, x, NULL, 3, 2, 0, 0);
  start(false);
  set_random(x, 11);
  memcpy(interp_var(it, h), interp_var(it, x), sizeof(double) * (size_t)numel(x));
  run();
  for (int k = 0; k < 36; k++) ck_assert(get(sel)[k] == get(mp)[k]);
}
END_TEST

/* ------------------------------------------------------- normalization */

START_TEST(batch_norm_layer_norm_dropout_in_evaluation) {
  Node *x = V("f32[2,2,1,2]");
  Node *gm = var("f32[2]", ROLE_PARAM), *bt = var("f32[2]", ROLE_PARAM);
  Node *mu = var("f32[2]", ROLE_STATE), *vr = var("f32[2]", ROLE_STATE);
  Node *bn = op(OP_BATCH_NORM, 5, x, gm, bt, mu, vr);
  bn->attr[0].f = 0.1;
  bn->attr[1].f = 1e-5;
  done(bn);
  Node *y = V("f32[2,3]"), *lg = var("f32[3]", ROLE_PARAM), *lb = var("f32[3]", ROLE_PARAM);
  Node *ln = op(OP_LAYER_NORM, 3, y, lg, lb);
  ln->attr[0].f = 1e-5;
  done(ln);
  Node *dr = op(OP_DROPOUT, 1, y);
  dr->attr[0].f = 0.5;
  done(dr);
  start(false);
  set(x, (double[]){1, 2, 3, 4, 5, 6, 7, 8});
  set(gm, (double[]){2, 3});
  set(bt, (double[]){0.5, -1});
  set(mu, (double[]){1, 2});
  set(vr, (double[]){4, 9});
  set(y, (double[]){1, 2, 3, 2, 2, 2});
  set(lg, (double[]){1, 1, 2});
  set(lb, (double[]){0, 0, 1});
  run();
  double s0 = 2 / sqrt(4 + 1e-5), s1 = 3 / sqrt(9 + 1e-5);
  EXPECT(bn, 1e-12, 0.5, 1 * s0 + 0.5, 1 * s1 - 1, 2 * s1 - 1, 4 * s0 + 0.5, 5 * s0 + 0.5,
         5 * s1 - 1, 6 * s1 - 1);
  double iv = 1 / sqrt(2.0 / 3 + 1e-5), i0 = 1 / sqrt(1e-5);
  EXPECT(ln, 1e-12, -iv, 0, 2 * iv + 1, 0 * i0, 0, 1);
  EXPECT(dr, 0, 1, 2, 3, 2, 2, 2);
}
END_TEST

START_TEST(dropout_mask_matches_the_runtime) {
  Node *step = V("f32[]");
  Node *m = op(OP_DROPOUT_MASK, 1, step);
  m->attr[0].f = 0.25;
  m->attr[1].i = -12345;
  LIST(m, 2, 4, 8);
  done(m);
  start(false);
  set(step, (double[]){7});
  run();
  for (uint64_t k = 0; k < 32; k++)
    ck_assert(get(m)[k] == rt_dropout_mask((uint64_t)(int64_t)-12345, 7, k, 0.25));
}
END_TEST

/* --------------------------------------------------------------- losses */

START_TEST(pair_losses) {
  Node *p = V("f32[2,2]"), *t = V("f32[2,2]");
  Node *mse = OP2(OP_MSE, p, t), *bce = OP2(OP_BCE, p, t);
  Node *hub = op(OP_HUBER, 2, p, t);
  hub->attr[0].f = 1;
  done(hub);
  start(false);
  set(p, (double[]){0.5, 3, -2, 0});
  set(t, (double[]){1, 0, 0, 0});
  run();
  EXPECT(mse, TIGHT, (0.25 + 9 + 4 + 0) / 4);
  EXPECT(hub, TIGHT, (0.125 + 2.5 + 1.5 + 0) / 4);
  double want = 0;
  double z[4] = {0.5, 3, -2, 0}, y[4] = {1, 0, 0, 0};
  for (int k = 0; k < 4; k++) {
    double s = 1 / (1 + exp(-z[k]));  /* -(y log s + (1-y) log(1-s)) */
    want -= y[k] * log(s) + (1 - y[k]) * log(1 - s);
  }
  EXPECT(bce, 1e-12, want / 4);
}
END_TEST

START_TEST(class_losses) {
  Node *z = V("f32[2,3]"), *y = V("i32[2]");
  Node *ce = OP2(OP_CROSS_ENTROPY, z, y), *nll = OP2(OP_NLL, z, y);
  Node *z3 = V("f32[2,2,2]"), *y3 = V("i32[2,2]");
  Node *ce3 = OP2(OP_CROSS_ENTROPY, z3, y3);
  start(false);
  set(z, (double[]){1, 2, 3, 0, 0, 0});
  set(y, (double[]){2, 0});
  set(z3, (double[]){0, 0, 0, 1, 1, 0, 5, 5});
  set(y3, (double[]){0, 1, 0, 1});
  run();
  double row0 = log(exp(1) + exp(2) + exp(3)) - 3, row1 = log(3);
  EXPECT(ce, 1e-12, (row0 + row1) / 2);
  EXPECT(nll, TIGHT, -(3 + 0) / 2.0);
  double l2 = log(2), l1 = log(1 + exp(1));
  EXPECT(ce3, 1e-12, (l2 + (l1 - 1) + (l1 - 1) + l2) / 4);  /* mean over all 4 labels */
}
END_TEST

START_TEST(out_of_range_labels_are_errors) {
  Node *z = V("f32[2,3]"), *y = V("i32[2]");
  OP2(OP_CROSS_ENTROPY, z, y);
  start(false);
  set(y, (double[]){1, 3});
  char err[256] = "";
  ck_assert_int_ne(interp_run(it, 0, err, sizeof err), 0);
  ck_assert_str_eq(err, "label 3 is out of range for 3 classes in cross_entropy at line 3:7");
  set(y, (double[]){-1, 0});
  ck_assert_int_ne(interp_run(it, 0, err, sizeof err), 0);
  ck_assert_msg(strstr(err, "label -1 is out of range"), "%s", err);
  set(y, (double[]){2, 0});
  ck_assert_int_eq(interp_run(it, 0, err, sizeof err), 0);
}
END_TEST

START_TEST(out_of_range_indices_are_errors) {
  Node *i = V("i32[3]"), *tab = V("f32[4,2]"), *j = V("i32[2]"), *k = V("i32[2]");
  OP2(OP_GATHER, tab, i);
  Node *oh = op(OP_ONE_HOT, 1, j);
  oh->attr[0].i = 5;
  done(oh);
  Node *sc = op(OP_SCATTER_ADD, 2, V("f32[2]"), k);
  sc->attr[0].i = 5;
  done(sc);
  start(false);
  char err[256] = "";
  set(i, (double[]){0, 4, 1});
  ck_assert_int_ne(interp_run(it, 0, err, sizeof err), 0);
  ck_assert_str_eq(err, "index 4 is out of range for 4 rows in gather at line 3:7");
  set(i, (double[]){0, 3, 1});
  set(j, (double[]){0, 5});
  ck_assert_int_ne(interp_run(it, 0, err, sizeof err), 0);
  ck_assert_str_eq(err, "label 5 is out of range for 5 classes in one_hot at line 3:7");
  set(j, (double[]){0, 4});
  set(k, (double[]){-2, 0});
  ck_assert_int_ne(interp_run(it, 0, err, sizeof err), 0);
  ck_assert_str_eq(err, "index -2 is out of range for 5 rows in scatter_add at line 3:7");
  set(k, (double[]){4, 0});
  ck_assert_int_eq(interp_run(it, 0, err, sizeof err), 0);
  ck_assert_str_eq(err, "");
}
END_TEST

/* ------------------------------------------------------- state writes */

/* A state updated from itself: every read of the step saw the old value,
 * and the write lands only when its flag is given. */
START_TEST(writes_apply_at_the_end) {
  Node *s = var("f32[2]", ROLE_STATE), *w = var("f32[2]", ROLE_PARAM);
  Node *one = ir_const(g, DT_F32, 1, L);
  done(one);
  Node *s1 = OP2(OP_ADD, s, one);
  Node *as = OP2(OP_ASSIGN, s, s1);
  Node *after = OP2(OP_MUL, s, w);  /* after the assign in node order: still old s */
  Node *up = OP2(OP_UPDATE, w, OP2(OP_SUB, w, s));
  start(false);
  set(s, (double[]){1, 2});
  set(w, (double[]){10, 20});
  char err[64];
  ck_assert_int_eq(interp_run(it, 0, err, sizeof err), 0);
  EXPECT(as, 0, 2, 3);
  EXPECT(s, 0, 1, 2);  /* no flags: nothing written */
  EXPECT(w, 0, 10, 20);
  ck_assert_int_eq(interp_run(it, INTERP_ASSIGN, err, sizeof err), 0);
  EXPECT(after, 0, 10, 40);
  EXPECT(s, 0, 2, 3);
  EXPECT(w, 0, 10, 20);
  ck_assert_int_eq(interp_run(it, INTERP_ASSIGN | INTERP_UPDATE, err, sizeof err), 0);
  EXPECT(after, 0, 20, 60);  /* read s = [2,3] */
  EXPECT(up, 0, 8, 17);
  EXPECT(s, 0, 3, 4);
  EXPECT(w, 0, 8, 17);
}
END_TEST

START_TEST(writes_read_old_values_even_when_swapping) {
  Node *a = var("f32[1]", ROLE_STATE), *b = var("f32[1]", ROLE_STATE);
  OP2(OP_ASSIGN, a, b);
  OP2(OP_ASSIGN, b, a);
  start(false);
  set(a, (double[]){1});
  set(b, (double[]){2});
  char err[64];
  ck_assert_int_eq(interp_run(it, INTERP_ASSIGN, err, sizeof err), 0);
  EXPECT(a, 0, 2);
  EXPECT(b, 0, 1);
}
END_TEST

/* ------------------------------------------------ init, rounding, API */

START_TEST(init_from_the_runtime) {
  Node *w = var("f32[20,10]", ROLE_PARAM), *c = var("f32[3]", ROLE_STATE), *x = V("f32[2]");
  Node *z = var("f32[2]", ROLE_PARAM);
  w->init = INIT_HE_UNIFORM;
  c->init = INIT_CONSTANT;
  c->init_arg[0] = 0.5;
  start(false);
  set(x, (double[]){4, 4});
  set(z, (double[]){4, 4});
  interp_init(it, 42);
  double bound = sqrt(6.0 / 20), s2 = 0;
  const double *W = interp_var(it, w);
  for (int k = 0; k < 200; k++) {
    ck_assert(fabs(W[k]) <= bound);
    ck_assert(W[k] == (double)(float)rt_init_value(RT_INIT_HE_UNIFORM, w->init_arg, 20, 10, 42,
                                                   rt_stream_of(w->name), (uint64_t)k));
    s2 += W[k] * W[k];
  }
  ck_assert_double_eq_tol(s2 / 200, bound * bound / 3, 0.3 * bound * bound / 3);
  EXPECT(c, 0, 0.5, 0.5, 0.5);
  EXPECT(x, 0, 0, 0);
  EXPECT(z, 0, 0, 0);  /* no initializer: zeros */
  double first[200];
  memcpy(first, W, sizeof first);
  interp_init(it, 42);
  ck_assert(memcmp(first, interp_var(it, w), sizeof first) == 0);
  interp_init(it, 43);
  ck_assert(memcmp(first, interp_var(it, w), sizeof first) != 0);
}
END_TEST

START_TEST(round_f32_rounds_each_result) {
  Node *x = V("f32[1]");
  Node *third = ir_const(g, DT_F32, 1.0 / 3, L);
  done(third);
  Node *sum = OP2(OP_ADD, x, ir_const(g, DT_F32, 1e-9, L));
  Node *i = V("i32[1]"), *ii = OP2(OP_ADD, i, i);
  start(true);
  set(x, (double[]){1});
  set(i, (double[]){16777217});  /* 2^24 + 1: not a float, but i32 stays exact */
  run();
  EXPECT(third, 0, (double)(float)(1.0 / 3));
  EXPECT(sum, 0, 1);
  EXPECT(ii, 0, 33554434);
  start(false);
  set(x, (double[]){1});
  run();
  EXPECT(third, 0, 1.0 / 3);
  EXPECT(sum, 0, 1 + 1e-9);
}
END_TEST

START_TEST(override_replaces_a_value) {
  Node *x = V("f32[2]");
  Node *e = OP1(OP_EXP, x), *s = OP2(OP_MUL, e, e);
  start(false);
  set(x, (double[]){0, 1});
  interp_override(it, e, (double[]){3, 4});
  run();
  EXPECT(e, 0, 3, 4);
  EXPECT(s, 0, 9, 16);
  interp_override(it, e, NULL);
  run();
  EXPECT(s, 1e-15, 1, exp(2));
}
END_TEST

/* A model from source, through the frontend, evaluated end to end. */
START_TEST(model_from_source) {
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena,
                         "model m {\n"
                         "  input x: f32[2, 3]\n"
                         "  input y: i32[2]\n"
                         "  param w: f32[3, 4] = he_uniform()\n"
                         "  h = relu(x @ w)\n"
                         "  output h\n"
                         "  loss cross_entropy(h, y)\n"
                         "}\n",
                         &diag, &errors);
  ck_assert_msg(errors == 0, "%s", diag);
  free(diag);
  g = m->graphs[0];
  start(true);
  interp_init(it, 7);
  Node *x = ir_find_var(g, "x"), *w = ir_find_var(g, "w"), *y = ir_find_var(g, "y");
  set(x, (double[]){1, -1, 0.5, 0, 2, -3});
  set(y, (double[]){3, 1});
  run();
  const Node *h = NULL, *loss = NULL;
  for (int k = 0; k < g->n_nodes; k++) {
    if (g->nodes[k]->roles & ROLE_OUTPUT) h = g->nodes[k];
    if (g->nodes[k]->roles & ROLE_LOSS) loss = g->nodes[k];
  }
  ck_assert_ptr_nonnull(h);
  ck_assert_ptr_nonnull(loss);
  const double *X = interp_var(it, x), *W = interp_var(it, w);
  double want = 0;
  int label[2] = {3, 1};
  for (int r = 0; r < 2; r++) {
    double row[4], e = 0;
    for (int j = 0; j < 4; j++) {
      double s = 0;
      for (int k = 0; k < 3; k++) s += X[r * 3 + k] * W[k * 4 + j];
      row[j] = (double)(float)fmax((double)(float)s, 0);
      ck_assert_double_eq_tol(get(h)[r * 4 + j], row[j], 1e-7);
      e += exp(row[j]);
    }
    want += log(e) - row[label[r]];
  }
  ck_assert_double_eq_tol(get(loss)[0], want / 2, 1e-6);
}
END_TEST

int main(void) {
  Suite *s = suite_create("interp");
  struct {
    const char *name;
    const TTest *tests[8];
  } groups[] = {
      {"elementwise", {broadcasting_add, compare_and_where, unary_ops, i32_arithmetic_is_exact_and_wraps}},
      {"matmul", {matmul_batched_and_rank1}},
      {"reduce", {reductions_with_keepdims, logsumexp_is_stable, argmax_takes_the_first_max,
                  softmax_and_log_softmax}},
      {"movement", {reshape_transpose_broadcast, slice_unslice_round_trip, concat_on_an_axis,
                    one_hot_gather_scatter_add}},
      {"conv_pool", {conv2d_known_values, conv2d_and_its_adjoints, max_pool2d_known_values,
                     max_pool2d_grad_and_select, pool_adjoints_on_random_data}},
      {"norm", {batch_norm_layer_norm_dropout_in_evaluation, dropout_mask_matches_the_runtime}},
      {"loss", {pair_losses, class_losses, out_of_range_labels_are_errors,
                out_of_range_indices_are_errors}},
      {"state", {writes_apply_at_the_end, writes_read_old_values_even_when_swapping,
                 init_from_the_runtime, round_f32_rounds_each_result, override_replaces_a_value,
                 model_from_source}},
  };
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
    TCase *tc = tcase_create(groups[i].name);
    tcase_add_checked_fixture(tc, setup, teardown);
    for (int k = 0; k < 8 && groups[i].tests[k]; k++) tcase_add_test(tc, groups[i].tests[k]);
    suite_add_tcase(s, tc);
  }
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
