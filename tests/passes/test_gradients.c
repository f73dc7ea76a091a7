/* test_gradients.c - every differentiable op against finite differences.
 *
 * Each case is a tiny model whose differentiable operands are params; its
 * loss is sum(op(...) * probe), with probe a random input, so that no op
 * is checked through a degenerate loss (sum(softmax(x)) is constant). The
 * reference evaluator runs in float64 and eval_gradcheck compares every
 * param gradient of ad_backward with central differences (per-op eps and
 * tolerance). Elementwise and reduction ops also run over random shapes
 * with broadcasting and size-1 dimensions. Then: a wrong rule must be
 * caught and located, a Hessian-vector product (grad of grad) must
 * match, and the evaluator must train examples/sine.nn. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "passes/passes.h"
#include "runtime/runtime.h"
#include "testutil.h"

static Arena arena;
static void teardown(void) {
  arena_free(&arena);
  ad_test_broken_op = -1;
}

/* Source -> training graph, lowered, not yet differentiated. */
static Graph *training_graph(const char *src, const char *stop_after) {
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(errors == 0, "%s\n%s", src, diag);
  free(diag);
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), null);
  PassOptions o = {.stop_after = stop_after, .verify_each = true, .out = null};
  ck_assert(pass_run_pipeline(m, &d, &o));
  fclose(null);
  for (int i = 0; i < m->n_graphs; i++)
    if (m->graphs[i]->training) return m->graphs[i];
  ck_abort_msg("no training graph for:\n%s", src);
  return NULL;
}

static int gradcheck_src(const char *src, double eps, double rtol, bool hvp, char **report) {
  Graph *g = training_graph(src, "lower");
  char *buf = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&buf, &len);
  GradcheckOptions o = {.seed = 11, .eps = eps, .rtol = rtol, .atol = 1e-9, .hvp = hvp, .out = out,
                        .path = "test.nn"};
  int rc = eval_gradcheck(g, &o);
  fclose(out);
  if (report) *report = buf;
  else free(buf);
  return rc;
}

/* ---------------------------------------------------------- every op */

typedef struct OpCase {
  const char *name;
  const char *decls;  /* params (and inputs) */
  const char *expr;   /* the value probed; its shape is `shape` */
  const char *shape;
  double eps, rtol;
} OpCase;

static const OpCase cases[] = {
    /* elementwise, one operand (log/sqrt/rsqrt on positive values) */
    {"neg", "param a: f32[3, 4] = normal(0, 1)", "-a", "3, 4", 1e-6, 1e-6},
    {"exp", "param a: f32[3, 4] = normal(0, 1)", "exp(a)", "3, 4", 1e-6, 1e-6},
    {"log", "param a: f32[3, 4] = uniform(0.5, 2)", "log(a)", "3, 4", 1e-6, 1e-6},
    {"sqrt", "param a: f32[3, 4] = uniform(0.5, 2)", "sqrt(a)", "3, 4", 1e-6, 1e-6},
    {"rsqrt", "param a: f32[3, 4] = uniform(0.5, 2)", "rsqrt(a)", "3, 4", 1e-6, 1e-6},
    {"abs", "param a: f32[3, 4] = normal(0, 1)", "abs(a)", "3, 4", 1e-6, 1e-6},
    {"square", "param a: f32[3, 4] = normal(0, 1)", "square(a)", "3, 4", 1e-6, 1e-6},
    {"relu", "param a: f32[3, 4] = normal(0, 1)", "relu(a)", "3, 4", 1e-6, 1e-6},
    {"leaky_relu", "param a: f32[3, 4] = normal(0, 1)", "leaky_relu(a, 0.2)", "3, 4", 1e-6, 1e-6},
    {"sigmoid", "param a: f32[3, 4] = normal(0, 1)", "sigmoid(a)", "3, 4", 1e-6, 1e-6},
    {"tanh", "param a: f32[3, 4] = normal(0, 1)", "tanh(a)", "3, 4", 1e-6, 1e-6},
    {"gelu", "param a: f32[3, 4] = normal(0, 1)", "gelu(a)", "3, 4", 1e-6, 1e-6},
    {"softplus", "param a: f32[3, 4] = normal(0, 1)", "softplus(a)", "3, 4", 1e-6, 1e-6},
    {"elu", "param a: f32[3, 4] = normal(0, 1)", "elu(a) + elu(a, alpha = 0.5)", "3, 4", 1e-6, 1e-6},
    {"selu", "param a: f32[3, 4] = normal(0, 1)", "selu(a)", "3, 4", 1e-6, 1e-6},
    {"silu", "param a: f32[3, 4] = normal(0, 1)", "silu(a)", "3, 4", 1e-6, 1e-6},
    {"hardtanh", "param a: f32[3, 4] = normal(0, 1)", "hardtanh(a) + hardtanh(a, -0.5, 0.7)", "3, 4", 1e-6, 1e-6},
    {"sin", "param a: f32[3, 4] = normal(0, 1)", "sin(a)", "3, 4", 1e-6, 1e-6},
    {"cos", "param a: f32[3, 4] = normal(0, 1)", "cos(a)", "3, 4", 1e-6, 1e-6},
    {"pow", "param a: f32[3, 4] = uniform(0.5, 2)", "a ** 3 + a ** -1.5", "3, 4", 1e-6, 1e-6},
    {"clamp", "param a: f32[3, 4] = normal(0, 1)", "clamp(a, -0.5, 0.7)", "3, 4", 1e-6, 1e-6},
    /* elementwise, two or three operands, broadcasting and size-1 dims */
    {"add", "param a: f32[2, 3, 4] = normal(0, 1)\n param b: f32[3, 1] = normal(0, 1)", "a + b", "2, 3, 4", 1e-6, 1e-6},
    {"sub", "param a: f32[1, 4] = normal(0, 1)\n param b: f32[3, 4] = normal(0, 1)", "a - b", "3, 4", 1e-6, 1e-6},
    {"mul", "param a: f32[3, 1] = normal(0, 1)\n param b: f32[1, 4] = normal(0, 1)", "a * b", "3, 4", 1e-6, 1e-6},
    {"div", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[4] = uniform(0.5, 2)", "a / b", "3, 4", 1e-6, 1e-6},
    {"maximum", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[4] = normal(0, 1)", "maximum(a, b)", "3, 4", 1e-6, 1e-6},
    {"minimum", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[3, 1] = normal(0, 1)", "minimum(a, b)", "3, 4", 1e-6, 1e-6},
    {"where", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[4] = normal(0, 1)", "where(a > 0, a * 2, b)", "3, 4", 1e-6, 1e-6},
    {"literal", "param a: f32[3, 4] = normal(0, 1)", "2 * a - 1 + a / 4", "3, 4", 1e-6, 1e-6},
    /* matmul: 2-d, batched with broadcasting, rank-1 operands */
    {"matmul", "param a: f32[3, 5] = normal(0, 1)\n param b: f32[5, 4] = normal(0, 1)", "a @ b", "3, 4", 1e-6, 1e-6},
    {"matmul_batched", "param a: f32[2, 1, 3, 5] = normal(0, 1)\n param b: f32[4, 5, 2] = normal(0, 1)", "a @ b", "2, 4, 3, 2", 1e-6, 1e-6},
    {"matmul_vector", "param a: f32[5] = normal(0, 1)\n param b: f32[2, 5, 3] = normal(0, 1)\n param c: f32[3] = normal(0, 1)", "(a @ b) @ c", "2", 1e-6, 1e-6},
    /* reductions */
    {"sum", "param a: f32[2, 3, 4] = normal(0, 1)", "sum(a, axis = [0, 2])", "3", 1e-6, 1e-6},
    {"mean", "param a: f32[2, 3, 4] = normal(0, 1)", "mean(a, axis = -1, keepdims = true)", "2, 3, 1", 1e-6, 1e-6},
    {"max", "param a: f32[2, 3, 4] = normal(0, 1)", "max(a, axis = 1)", "2, 4", 1e-6, 1e-6},
    {"min", "param a: f32[2, 3, 4] = normal(0, 1)", "min(a, axis = [1, 2], keepdims = true)", "2, 1, 1", 1e-6, 1e-6},
    {"sum_all", "param a: f32[2, 3] = normal(0, 1)", "reshape(sum(a), [1])", "1", 1e-6, 1e-6},
    {"logsumexp", "param a: f32[2, 3, 4] = normal(0, 1)", "logsumexp(a, axis = -1)", "2, 3", 1e-6, 1e-6},
    {"softmax", "param a: f32[3, 5] = normal(0, 1)", "softmax(a)", "3, 5", 1e-6, 1e-6},
    {"softmax_axis0", "param a: f32[3, 5] = normal(0, 1)", "softmax(a, axis = 0)", "3, 5", 1e-6, 1e-6},
    {"log_softmax", "param a: f32[3, 5] = normal(0, 1)", "log_softmax(a, axis = -1)", "3, 5", 1e-6, 1e-6},
    /* shape ops */
    {"reshape", "param a: f32[2, 6] = normal(0, 1)", "reshape(a, [3, -1])", "3, 4", 1e-6, 1e-6},
    {"transpose", "param a: f32[2, 3, 4] = normal(0, 1)", "transpose(a, [2, 0, 1])", "4, 2, 3", 1e-6, 1e-6},
    {"flatten", "param a: f32[2, 3, 2] = normal(0, 1)", "flatten(a)", "2, 6", 1e-6, 1e-6},
    {"slice", "param a: f32[4, 6] = normal(0, 1)", "a[1:4, 0:6:2]", "3, 3", 1e-6, 1e-6},
    {"index", "param a: f32[4, 5, 2] = normal(0, 1)", "a[:, -2]", "4, 2", 1e-6, 1e-6},
    {"concat", "param a: f32[2, 3] = normal(0, 1)\n param b: f32[2, 1] = normal(0, 1)", "concat([a, b, a], axis = 1)", "2, 7", 1e-6, 1e-6},
    {"stack", "param a: f32[2, 3] = normal(0, 1)\n param b: f32[2, 3] = normal(0, 1)", "stack([a, b], axis = -1)", "2, 3, 2", 1e-6, 1e-6},
    {"gather", "param t: f32[5, 3] = normal(0, 1)\n input i: i32[2, 4]", "gather(t, i)", "2, 4, 3", 1e-6, 1e-6},
    {"one_hot", "param a: f32[4, 3] = normal(0, 1)\n input i: i32[4]", "one_hot(i, 3) * a", "4, 3", 1e-6, 1e-6},
    /* convolution and pooling: stride, padding, size-1 kernels */
    {"conv2d", "param x: f32[2, 3, 5, 5] = normal(0, 1)\n param w: f32[4, 3, 3, 3] = normal(0, 1)", "conv2d(x, w)", "2, 4, 3, 3", 1e-6, 1e-6},
    {"conv2d_stride_pad", "param x: f32[1, 2, 6, 5] = normal(0, 1)\n param w: f32[3, 2, 3, 2] = normal(0, 1)", "conv2d(x, w, stride = [2, 1], pad = 1)", "1, 3, 3, 6", 1e-6, 1e-6},
    {"conv2d_1x1", "param x: f32[2, 4, 3, 3] = normal(0, 1)\n param w: f32[2, 4, 1, 1] = normal(0, 1)", "conv2d(x, w, stride = 2)", "2, 2, 2, 2", 1e-6, 1e-6},
    {"max_pool2d", "param x: f32[2, 2, 5, 6] = normal(0, 1)", "max_pool2d(x, 2)", "2, 2, 2, 3", 1e-6, 1e-6},
    {"max_pool2d_overlap", "param x: f32[1, 2, 5, 5] = normal(0, 1)", "max_pool2d(x, 3, stride = 1)", "1, 2, 3, 3", 1e-6, 1e-6},
    {"avg_pool2d", "param x: f32[2, 2, 5, 6] = normal(0, 1)", "avg_pool2d(x, [2, 3], stride = [1, 2])", "2, 2, 4, 2", 1e-6, 1e-6},
    /* normalization (training mode) and dropout (a fixed mask per step) */
    {"batch_norm_2d", "param x: f32[4, 3] = normal(0, 1)\n param g: f32[3] = normal(1, 0.2)\n param b: f32[3] = normal(0, 1)\n state m: f32[3] = zeros()\n state v: f32[3] = ones()", "batch_norm(x, g, b, m, v)", "4, 3", 1e-6, 1e-5},
    {"batch_norm_4d", "param x: f32[2, 3, 2, 2] = normal(0, 1)\n param g: f32[3] = normal(1, 0.2)\n param b: f32[3] = normal(0, 1)\n state m: f32[3] = zeros()\n state v: f32[3] = ones()", "batch_norm(x, g, b, m, v, eps = 1e-3)", "2, 3, 2, 2", 1e-6, 1e-5},
    {"layer_norm", "param x: f32[3, 5] = normal(0, 1)\n param g: f32[5] = normal(1, 0.2)\n param b: f32[5] = normal(0, 1)", "layer_norm(x, g, b)", "3, 5", 1e-6, 1e-5},
    {"dropout", "param x: f32[4, 5] = normal(0, 1)", "dropout(x, 0.3)", "4, 5", 1e-6, 1e-6},
    /* prelude layers */
    {"lstm_cell", "param x: f32[2, 3] = normal(0, 1)\n param h0: f32[2, 4] = normal(0, 1)\n param c0: f32[2, 4] = normal(0, 1)", "lstm_cell(x, h0, c0, 4)[1] + lstm_cell(x, h0, c0, 4)[0]", "2, 4", 1e-6, 1e-6},
    {"gru_cell", "param x: f32[2, 3] = normal(0, 1)\n param h0: f32[2, 4] = normal(0, 1)", "gru_cell(x, h0, 4)", "2, 4", 1e-6, 1e-6},
    {"weightnorm_dense", "param x: f32[2, 3] = normal(0, 1)", "weightnorm_dense(x, 4, tanh)", "2, 4", 1e-6, 1e-6},
    {"embedding_layernorm", "input i: i32[3]", "layernorm(embedding(i, 6, 4))", "3, 4", 1e-6, 1e-5},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

START_TEST(op_gradient) {
  const OpCase *c = &cases[_i];
  char src[2048];
  snprintf(src, sizeof src,
           "model m {\n %s\n input probe: f32[%s]\n y = %s\n loss sum(y * probe)\n}\n", c->decls,
           c->shape, c->expr);
  char *report = NULL;
  int rc = gradcheck_src(src, c->eps, c->rtol, false, &report);
  ck_assert_msg(rc == 0, "%s: gradcheck failed:\n%s\n%s", c->name, src, report);
  free(report);
}
END_TEST

/* The losses, each as the model's loss (their labels random but valid). */
static const char *const loss_cases[] = {
    "param p: f32[4, 3] = normal(0, 1)\n param t: f32[4, 3] = normal(0, 1)\n loss mse(p, t)",
    "param p: f32[4, 3] = normal(0, 2)\n param t: f32[4, 3] = normal(0, 1)\n loss huber(p, t, delta = 0.5)",
    "param z: f32[4, 3] = normal(0, 1)\n param t: f32[4, 3] = uniform(0, 1)\n loss binary_cross_entropy(z, t)",
    "param z: f32[4, 5] = normal(0, 1)\n input y: i32[4]\n loss cross_entropy(z, y)",
    "param z: f32[2, 3, 5] = normal(0, 1)\n input y: i32[2, 3]\n loss cross_entropy(z, y)",
    "param z: f32[4, 5] = normal(0, 1)\n input y: i32[4]\n loss nll(log_softmax(z), y)",
};

START_TEST(loss_gradient) {
  char src[1024];
  snprintf(src, sizeof src, "model m {\n %s\n}\n", loss_cases[_i]);
  char *report = NULL;
  int rc = gradcheck_src(src, 1e-6, 1e-6, false, &report);
  ck_assert_msg(rc == 0, "gradcheck failed:\n%s\n%s", src, report);
  free(report);
}
END_TEST

/* Random shapes: a random rank-1..3 shape, the other operand broadcast
 * from it (leading dims dropped, dims set to 1). */
static void random_shapes(uint64_t seed, char *a, char *b, char *out, size_t size) {
  int rank = 1 + (int)(rt_rand_u64(seed, 1, 0) % 3);
  int64_t dims[3], bd[3];
  int brank = rank - (int)(rt_rand_u64(seed, 2, 0) % (uint64_t)rank);
  for (int i = 0; i < rank; i++) dims[i] = 1 + (int64_t)(rt_rand_u64(seed, 3, (uint64_t)i) % 4);
  for (int i = 0; i < brank; i++) {
    int64_t d = dims[rank - brank + i];
    bd[i] = rt_rand_u64(seed, 4, (uint64_t)i) % 3 == 0 ? 1 : d;
  }
  size_t k = 0, kb = 0;
  for (int i = 0; i < rank; i++) k += (size_t)snprintf(a + k, size - k, i ? ", %lld" : "%lld", (long long)dims[i]);
  for (int i = 0; i < brank; i++) kb += (size_t)snprintf(b + kb, size - kb, i ? ", %lld" : "%lld", (long long)bd[i]);
  snprintf(out, size, "%s", a);
}

START_TEST(random_broadcast_shapes) {
  static const char *const exprs[] = {"a + b", "a - b", "a * b", "a / (b * b + 1)", "maximum(a, b)",
                                      "minimum(b, a)", "where(a > b, a, b * 3)"};
  for (int trial = 0; trial < 12; trial++) {
    char a[64], b[64], out[64];
    random_shapes(100 + (uint64_t)trial, a, b, out, sizeof a);
    const char *e = exprs[trial % 7];
    char src[1024];
    snprintf(src, sizeof src,
             "model m {\n param a: f32[%s] = normal(0, 1)\n param b: f32[%s] = normal(0, 1)\n"
             " input probe: f32[%s]\n loss sum((%s) * probe) + sum(mean(a * b, axis = -1, keepdims = true))\n}\n",
             a, b, out, e);
    char *report = NULL;
    int rc = gradcheck_src(src, 1e-6, 1e-6, false, &report);
    ck_assert_msg(rc == 0, "trial %d:\n%s\n%s", trial, src, report);
    free(report);
  }
}
END_TEST

/* stop_gradient is the identity forward and cuts the gradient: finite
 * differences cannot see that, so it is checked directly. */
START_TEST(stop_gradient_cuts) {
  Graph *g = training_graph("model m {\n param a: f32[3] = normal(0, 1)\n"
                            " loss sum(a * stop_gradient(a)) + sum(stop_gradient(a))\n}\n", "autodiff");
  Node *a = ir_find_var(g, "a"), *grad = NULL, *loss = NULL;
  for (int i = 0; i < g->n_nodes; i++) {
    if ((g->nodes[i]->roles & ROLE_GRAD) && g->nodes[i]->grad_of == a) grad = g->nodes[i];
    if (g->nodes[i]->roles & ROLE_LOSS) loss = g->nodes[i];
  }
  ck_assert(grad && loss);
  Interp *in = interp_new(g, false);
  double *av = interp_var(in, a);
  av[0] = 1, av[1] = -2, av[2] = 0.5;
  char err[128];
  ck_assert(interp_run(in, 0, err, sizeof err) == 0);
  ck_assert_double_eq_tol(interp_value(in, loss)[0], 1 + 4 + 0.25 + (1 - 2 + 0.5), 1e-12);
  for (int k = 0; k < 3; k++) ck_assert_double_eq_tol(interp_value(in, grad)[k], av[k], 1e-12);
  interp_free(in);
}
END_TEST

/* Finite differences must hold stop_gradient's output at its value at the
 * base point, as autodiff treats it: a constant. Otherwise they see
 * through it and every model that uses it fails, the blame on an
 * innocent mul (issue 8 item 4). A wrong rule elsewhere is still found. */
static const char *const stop_gradient_src =
    "model m {\n input x: f32[4, 3]\n input y: f32[4, 2]\n h = dense(x, 5, tanh)\n"
    " pred = dense(h, 2)\n target = stop_gradient(dense(h, 2))\n"
    " loss mse(pred * stop_gradient(pred), y) + mse(pred, target) + mean(stop_gradient(h) * h)\n}\n";

START_TEST(stop_gradient_held_in_differences) {
  char *report = NULL;
  int rc = gradcheck_src(stop_gradient_src, 1e-6, 1e-5, true, &report);
  ck_assert_msg(rc == 0, "gradcheck of a model with stop_gradient failed:\n%s", report);
  ck_assert_msg(strstr(report, "hessian-vector product") && !strstr(report, "FAIL"), "%s", report);
  free(report);
  ad_test_broken_op = OP_TANH;
  rc = gradcheck_src(stop_gradient_src, 1e-6, 1e-5, false, &report);
  ck_assert_msg(rc == 1, "gradcheck passed with a broken tanh rule:\n%s", report);
  ck_assert_msg(strstr(report, "made by the gradient rule of 'tanh' at test.nn:4:"), "%s", report);
  free(report);
}
END_TEST

/* --------------------------------------------- every op has a row */

/* Rows also checked to second order (a Hessian-vector product): their
 * backward graphs hold the ops that only autodiff makes (unslice,
 * scatter_add, the conv and pooling gradients, gelu's erf), whose own
 * rules this checks. */
static const char *const hvp_rows[] = {"slice", "gather", "conv2d_stride_pad", "max_pool2d_overlap",
                                       "avg_pool2d", "gelu"};
#define N_HVP_ROWS ((int)(sizeof hvp_rows / sizeof hvp_rows[0]))

static const OpCase *case_named(const char *name) {
  for (int i = 0; i < N_CASES; i++)
    if (!strcmp(cases[i].name, name)) return &cases[i];
  ck_abort_msg("no row named %s", name);
  return NULL;
}

static void row_source(const OpCase *c, char *src, size_t size) {
  snprintf(src, size, "model m {\n %s\n input probe: f32[%s]\n y = %s\n loss sum(y * probe)\n}\n",
           c->decls, c->shape, c->expr);
}

START_TEST(hvp_row) {
  const OpCase *c = case_named(hvp_rows[_i]);
  char src[2048];
  row_source(c, src, sizeof src);
  char *report = NULL;
  int rc = gradcheck_src(src, 1e-5, 1e-5, true, &report);
  ck_assert_msg(rc == 0 && !strstr(report, "FAIL"), "%s: second order:\n%s\n%s", c->name, src, report);
  free(report);
}
END_TEST

static void mark_ops(const Graph *g, bool *seen) {
  for (int i = 0; i < g->n_nodes; i++) seen[g->nodes[i]->op] = true;
}

/* Every op with a gradient rule (pass_has_gradient_rule, which
 * tests/ir/test_contract.c holds to ops.def's flags) is in the graph of a
 * row: the forward graph of an op or loss row, or the backward graph of
 * an hvp row. The test names every op that is not. */
START_TEST(every_op_has_a_row) {
  bool seen[OP_COUNT] = {0};
  char src[2048];
  for (int i = 0; i < N_CASES; i++) {
    row_source(&cases[i], src, sizeof src);
    mark_ops(training_graph(src, "lower"), seen);
  }
  for (int i = 0; i < (int)(sizeof loss_cases / sizeof loss_cases[0]); i++) {
    snprintf(src, sizeof src, "model m {\n %s\n}\n", loss_cases[i]);
    mark_ops(training_graph(src, "lower"), seen);
  }
  for (int i = 0; i < N_HVP_ROWS; i++) {
    row_source(case_named(hvp_rows[i]), src, sizeof src);
    mark_ops(training_graph(src, "autodiff"), seen);
  }
  /* made only by differentiating max_pool2d_grad, i.e. at second order:
   * its rule would be checked at third; the JIT test runs it */
  seen[OP_MAX_POOL2D_SELECT] = true;
  char missing[2048] = "";
  for (int op = 0; op < OP_COUNT; op++) {
    if (!pass_has_gradient_rule((Op)op) || seen[op]) continue;
    size_t k = strlen(missing);
    snprintf(missing + k, sizeof missing - k, " %s", op_info((Op)op)->name);
  }
  ck_assert_msg(!*missing, "ops with a gradient rule but no row in test_gradients.c:%s", missing);
}
END_TEST

/* ------------------------------------------------ a wrong rule is found */

START_TEST(wrong_rule_is_located) {
  char *src = tu_read_file(NNCC_SOURCE_DIR "/examples/sine.nn", NULL);
  ck_assert_ptr_nonnull(src);
  ad_test_broken_op = OP_TANH;
  char *report = NULL;
  /* sine.nn: h1 = dense(x, 32, tanh) at line 10 and h2 at line 11 */
  int rc = gradcheck_src(src, 1e-6, 1e-5, false, &report);
  ck_assert_msg(rc == 1, "gradcheck passed with a broken tanh rule:\n%s", report);
  ck_assert_msg(strstr(report, "FAIL"), "%s", report);
  ck_assert_msg(strstr(report, "first disagreeing node of the backward graph"), "%s", report);
  ck_assert_msg(strstr(report, "made by the gradient rule of 'tanh' at test.nn:11:"), "%s", report);
  free(report);
  free(src);
}
END_TEST

/* ----------------------------------------------------------- grad of grad */

START_TEST(hessian_vector_product) {
  const char *src =
      "model m {\n input x: f32[4, 3]\n input y: f32[4, 2]\n h = dense(x, 5, tanh)\n"
      " p = dense(h, 2, tanh)\n loss mse(p, y)\n}\n";
  char *report = NULL;
  int rc = gradcheck_src(src, 1e-5, 1e-5, true, &report);
  ck_assert_msg(rc == 0, "%s", report);
  ck_assert_msg(strstr(report, "hessian-vector product") && !strstr(report, "FAIL"), "%s", report);
  free(report);
}
END_TEST

/* ------------------------------------------- the evaluator trains sine */

START_TEST(reference_evaluator_trains_sine) {
  char *src = tu_read_file(NNCC_SOURCE_DIR "/examples/sine.nn", NULL);
  Graph *g = training_graph(src, NULL);
  free(src);
  Node *x = ir_find_var(g, "x"), *y = ir_find_var(g, "y"), *loss = NULL, *pred = NULL;
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i]->roles & ROLE_LOSS) loss = g->nodes[i];
    if (g->nodes[i]->roles & ROLE_OUTPUT) pred = g->nodes[i];
  }
  ck_assert(x && y && loss && pred);
  int64_t batch = x->type.dim[0];
  Interp *in = interp_new(g, true);
  interp_init(in, 1);
  enum { N = 4096 };
  static float xs[N], ys[N];
  rt_synth_sine(N, -M_PI, M_PI, 5, xs, ys);
  char err[256];
  double last = 0;
  int steps = 3000;
  for (int s = 0; s < steps; s++) {
    double *xv = interp_var(in, x), *yv = interp_var(in, y);
    for (int64_t k = 0; k < batch; k++) {
      int64_t j = (s * batch + k) % N;
      xv[k] = xs[j];
      yv[k] = ys[j];
    }
    ck_assert_msg(interp_run(in, INTERP_ASSIGN | INTERP_UPDATE, err, sizeof err) == 0, "%s", err);
    last = interp_value(in, loss)[0];
  }
  /* evaluate on a grid over [-pi, pi] */
  double mse = 0;
  int n_eval = 0;
  for (int chunk = 0; chunk < 8; chunk++) {
    double *xv = interp_var(in, x), *yv = interp_var(in, y);
    for (int64_t k = 0; k < batch; k++) {
      xv[k] = -M_PI + 2 * M_PI * (double)(chunk * batch + k) / (double)(8 * batch - 1);
      yv[k] = sin(xv[k]);
    }
    ck_assert(interp_run(in, 0, err, sizeof err) == 0);
    const double *p = interp_value(in, pred);
    for (int64_t k = 0; k < batch; k++, n_eval++) mse += (p[k] - yv[k]) * (p[k] - yv[k]);
  }
  mse /= n_eval;
  interp_free(in);
  ck_assert_msg(mse < 0.01, "sine MSE %g after %d Adam steps (last batch loss %g)", mse, steps, last);
}
END_TEST

int main(void) {
  Suite *s = suite_create("gradients");
  TCase *ops = tcase_create("ops");
  tcase_add_checked_fixture(ops, NULL, teardown);
  tcase_set_timeout(ops, 600);
  tcase_add_loop_test(ops, op_gradient, 0, N_CASES);
  tcase_add_loop_test(ops, loss_gradient, 0, (int)(sizeof loss_cases / sizeof loss_cases[0]));
  tcase_add_test(ops, random_broadcast_shapes);
  tcase_add_test(ops, stop_gradient_cuts);
  tcase_add_test(ops, stop_gradient_held_in_differences);
  tcase_add_loop_test(ops, hvp_row, 0, N_HVP_ROWS);
  tcase_add_test(ops, every_op_has_a_row);
  suite_add_tcase(s, ops);
  TCase *whole = tcase_create("models");
  tcase_add_checked_fixture(whole, NULL, teardown);
  tcase_set_timeout(whole, 600);
  tcase_add_test(whole, wrong_rule_is_located);
  tcase_add_test(whole, hessian_vector_product);
  tcase_add_test(whole, reference_evaluator_trains_sine);
  suite_add_tcase(s, whole);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
