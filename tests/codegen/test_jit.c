/* test_jit.c - JIT-compiled models against the reference evaluator
 * (eval/interp.c), for every op, forward, backward and the update.
 *
 * Each case is .nn source run through the whole pass pipeline and the JIT
 * (cg_jit_new); an Interp on the same graphs, rounding every node to f32,
 * is the oracle. Both start from create(seed) / interp_init(seed), which
 * share the initializers and the RNG, so the params must agree exactly;
 * both get the same random inputs. Then, each time against the Interp:
 *   backward    the loss, every output, every gradient, every state
 *               (batch_norm's running statistics are assigned);
 *   train_step  twice from a fresh start: the loss and every param and
 *               state after each step (the optimizer's update as graph);
 *   forward     and evaluate, on the evaluation graph, with the params
 *               and states the training steps left.
 * The cases: every differentiable op (the table of test_gradients.c, the
 * loss probed by a random input), conv and pooling with strides, padding
 * and ties, the losses, the prelude layers, ops without a gradient,
 * models with batch_norm and dropout, every optimizer and schedule; then
 * the 8 conv and pooling ops built directly as IR (max_pool2d_select is
 * only made by grad of grad) over assorted geometries. */
#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "eval/eval.h"
#include "passes/passes.h"
#include "runtime/model.h"
#include "runtime/runtime.h"
#include "testutil.h"

#define SEED 7            /* create() and interp_init() */
#define INPUT_SEED 1234   /* the inputs */
/* f32 code against an evaluator that rounds each node's result to f32
 * but sums in double: a few ulp per node, relative to max(1, |value|) */
#define TOL 1e-4

static Arena arena;

static void teardown(void) {
  arena_free(&arena);
  memset(&arena, 0, sizeof arena);
}

/* --------------------------------------------------------------- setup */

typedef struct Compiled {
  const char *src;             /* for failure messages */
  Module *m;
  Graph *eval, *train;         /* train: NULL without a loss */
  CgJit *jit;
  const nncc_model_api *api;
} Compiled;

/* -O2 for the host; a test may force the 512-bit matmul tiles */
static CgOptions jit_options = {.opt_level = 2};

static void jit_module(Compiled *k) {
  for (int i = 0; i < k->m->n_graphs && !k->eval; i++)
    if (!k->m->graphs[i]->training) k->eval = k->m->graphs[i];
  ck_assert_ptr_nonnull(k->eval);
  for (int i = 0; i < k->m->n_graphs; i++)
    if (k->m->graphs[i]->training && !strcmp(k->m->graphs[i]->model, k->eval->model)) k->train = k->m->graphs[i];
  char err[512];
  k->jit = cg_jit_new(k->m, &jit_options, err, sizeof err);
  ck_assert_msg(k->jit, "cg_jit_new: %s\n%s", err, k->src);
  k->api = cg_jit_model(k->jit, k->eval->model);
  ck_assert_ptr_nonnull(k->api);
}

static Compiled compile(const char *src) {
  Compiled k = {.src = src};
  char *diag = NULL;
  int errors = 0;
  k.m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(k.m && errors == 0, "%s\n%s", src, diag ? diag : "");
  free(diag);
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), null);
  PassOptions o = {.out = null};
  ck_assert_msg(pass_run_pipeline(k.m, &d, &o), "the pass pipeline failed:\n%s", src);
  fclose(null);
  jit_module(&k);
  return k;
}

static int64_t numel_of(const nncc_tensor_info *t) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++) n *= t->shape[d];
  return n;
}

static double elem(const nncc_tensor_info *t, const void *p, int64_t k) {
  return t->dtype == NNCC_I32 ? (double)((const int32_t *)p)[k] : (double)((const float *)p)[k];
}

static const Node *find_role(const Graph *g, unsigned role, const char *name) {
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!(n->roles & role)) continue;
    if (role == ROLE_LOSS) return n;
    if (role == ROLE_OUTPUT && !strcmp(n->out_name, name)) return n;
    if (role == ROLE_GRAD && !strcmp(n->grad_of->name, name)) return n;
  }
  return NULL;
}

/* Input element k: normal f32 (a name starting with q: multiples of 0.5,
 * for ties in max pooling); i32 in [0, label bound), or small values of
 * both signs where nothing bounds it. */
static double input_value(const nncc_model *mm, const nncc_tensor_info *t, int32_t i, int64_t k) {
  if (t->dtype == NNCC_I32) {
    int64_t bound = rt_model_desc_of(mm)->tensors[i].label_bound;
    return bound > 0 ? (double)((k * 7 + 3) % bound) : (double)(k % 5 - 2);
  }
  double v = rt_rand_normal(INPUT_SEED, rt_stream_of(t->name), (uint64_t)k);
  if (t->name[0] == 'q') v = round(2 * v) / 2;
  return (double)(float)v;
}

/* The same inputs into the model and into the Interp's vars of g. */
static void set_inputs(const Compiled *k, nncc_model *mm, Interp *in, const Graph *g) {
  const nncc_model_api *api = k->api;
  for (int32_t i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    if (t->role != NNCC_INPUT) continue;
    void *p = api->data(mm, i);
    const Node *v = ir_find_var(g, t->name);
    double *iv = v ? interp_var(in, v) : NULL;
    for (int64_t e = 0; e < numel_of(t); e++) {
      double x = input_value(mm, t, i, e);
      if (t->dtype == NNCC_I32) ((int32_t *)p)[e] = (int32_t)x;
      else ((float *)p)[e] = (float)x;
      if (iv) iv[e] = x;
    }
  }
}

/* train:total_steps (a cosine schedule) set alike in both */
static void set_total_steps(const Compiled *k, nncc_model *mm, Interp *in, const Graph *g) {
  const Node *v = ir_find_var(g, "train:total_steps");
  if (!v) return;
  ck_assert_int_eq(k->api->set_hyper(mm, "total_steps", 6), 0);
  interp_var(in, v)[0] = 6;
}

/* Outputs, the loss and gradients are NaN before a kernel runs, so that
 * a value the kernel forgot to write cannot pass. */
static void poison(const Compiled *k, nncc_model *mm) {
  const nncc_model_api *api = k->api;
  for (int32_t i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    int64_t n = numel_of(t);
    if ((t->role == NNCC_OUTPUT || t->role == NNCC_LOSS) && t->dtype == NNCC_F32)
      for (int64_t e = 0; e < n; e++) ((float *)api->data(mm, i))[e] = NAN;
    if ((t->role == NNCC_OUTPUT || t->role == NNCC_LOSS) && t->dtype == NNCC_I32)
      for (int64_t e = 0; e < n; e++) ((int32_t *)api->data(mm, i))[e] = -12345;
    float *g = api->grad(mm, i);
    if (g)
      for (int64_t e = 0; e < n; e++) g[e] = NAN;
  }
}

/* |got - want| <= tol * max(1, |want|) everywhere; the failure names the
 * worst element. */
static void expect_close(const Compiled *k, const char *what, const nncc_tensor_info *t, const void *got,
                         const double *want, double tol) {
  int64_t n = numel_of(t), worst = -1, bad = 0;
  double worst_ratio = 0;
  for (int64_t e = 0; e < n; e++) {
    double g = elem(t, got, e), w = want[e];
    if (isnan(g) && isnan(w)) continue;
    double err = fabs(g - w), lim = tol * fmax(1, fabs(w));
    if (err <= lim) continue;
    bad++;
    double ratio = isnan(err) ? INFINITY : err / (lim > 0 ? lim : 1e-300);
    if (worst < 0 || ratio > worst_ratio) worst = e, worst_ratio = ratio;
  }
  if (worst >= 0)
    ck_abort_msg("%s of '%s': %lld of %lld elements differ; worst [%lld]: jit %.9g, reference %.9g (tol %g)\n%s",
                 what, t->name, (long long)bad, (long long)n, (long long)worst, elem(t, got, worst),
                 want[worst], tol, k->src);
}

/* Every param and state the graph holds: the model's against the Interp's. */
static void expect_vars(const Compiled *k, nncc_model *mm, Interp *in, const Graph *g, const char *when,
                        double tol) {
  const nncc_model_api *api = k->api;
  for (int32_t i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    if (t->role != NNCC_PARAM && t->role != NNCC_STATE) continue;
    const Node *v = ir_find_var(g, t->name);
    if (!v) continue;
    expect_close(k, when, t, api->data(mm, i), interp_var(in, v), tol);
  }
}

static void expect_outputs(const Compiled *k, nncc_model *mm, Interp *in, const Graph *g, const char *when,
                           double tol, bool with_loss) {
  const nncc_model_api *api = k->api;
  for (int32_t i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    const Node *n = t->role == NNCC_OUTPUT ? find_role(g, ROLE_OUTPUT, t->name)
                    : t->role == NNCC_LOSS && with_loss ? find_role(g, ROLE_LOSS, NULL)
                                                        : NULL;
    if (!n) continue;
    expect_close(k, when, t, api->data(mm, i), interp_value(in, n), tol);
  }
}

static void run_interp(const Compiled *k, Interp *in, unsigned flags) {
  char err[256];
  ck_assert_msg(interp_run(in, flags, err, sizeof err) == 0, "interp_run: %s\n%s", err, k->src);
}

static void expect_ok(const Compiled *k, nncc_model *mm, int rc, const char *what) {
  ck_assert_msg(rc == 0, "%s failed (%d): %s\n%s", what, rc, k->api->last_error(mm), k->src);
}

/* ------------------------------------------------------ the whole check */

static void check_compiled(const Compiled *k, double tol) {
  const nncc_model_api *api = k->api;
  nncc_model *mm = NULL;
  if (k->train) {
    /* backward: the loss, outputs, every gradient, the assigned states */
    mm = api->create(SEED);
    ck_assert_ptr_nonnull(mm);
    Interp *in = interp_new(k->train, true);
    interp_init(in, SEED);
    expect_vars(k, mm, in, k->train, "initial value", 0);  /* the same initializers: exact */
    set_inputs(k, mm, in, k->train);
    poison(k, mm);
    expect_ok(k, mm, api->backward(mm), "backward");
    run_interp(k, in, INTERP_ASSIGN);
    expect_outputs(k, mm, in, k->train, "backward", tol, true);
    int n_grads = 0;
    for (int32_t i = 0; i < api->n_tensors; i++) {
      const nncc_tensor_info *t = &api->tensors[i];
      float *g = api->grad(mm, i);
      if (t->role == NNCC_PARAM) ck_assert_msg(g, "no gradient for param '%s'\n%s", t->name, k->src);
      if (!g) continue;
      const Node *gn = find_role(k->train, ROLE_GRAD, t->name);
      ck_assert_msg(gn, "no gradient node for '%s'", t->name);
      expect_close(k, "gradient", t, g, interp_value(in, gn), tol);
      n_grads++;
    }
    ck_assert_msg(n_grads > 0, "no gradients at all\n%s", k->src);
    expect_vars(k, mm, in, k->train, "after backward", tol);
    api->destroy(mm);
    interp_free(in);

    /* two train steps from a fresh start */
    mm = api->create(SEED);
    in = interp_new(k->train, true);
    interp_init(in, SEED);
    set_total_steps(k, mm, in, k->train);
    for (int step = 0; step < 2; step++) {
      set_inputs(k, mm, in, k->train);
      poison(k, mm);
      expect_ok(k, mm, api->train_step(mm), "train_step");
      run_interp(k, in, INTERP_ASSIGN | INTERP_UPDATE);
      expect_outputs(k, mm, in, k->train, step ? "train_step 2" : "train_step 1", tol, true);
      expect_vars(k, mm, in, k->train, step ? "after train_step 2" : "after train_step 1", tol);
    }
    interp_free(in);
  } else {
    mm = api->create(SEED);
    ck_assert_ptr_nonnull(mm);
  }

  /* evaluation mode, from the params and states training left */
  Interp *ev = interp_new(k->eval, true);
  interp_init(ev, SEED);
  for (int32_t i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    const Node *v = ir_find_var(k->eval, t->name);
    if (!v || (t->role != NNCC_PARAM && t->role != NNCC_STATE)) continue;
    double *dst = interp_var(ev, v);
    for (int64_t e = 0; e < numel_of(t); e++) dst[e] = elem(t, api->data(mm, i), e);
  }
  set_inputs(k, mm, ev, k->eval);
  run_interp(k, ev, 0);
  poison(k, mm);
  expect_ok(k, mm, api->forward(mm), "forward");
  expect_outputs(k, mm, ev, k->eval, "forward", tol, false);
  if (k->train) {
    poison(k, mm);
    expect_ok(k, mm, api->evaluate(mm), "evaluate");
    expect_outputs(k, mm, ev, k->eval, "evaluate", tol, true);
  }
  interp_free(ev);
  api->destroy(mm);
  cg_jit_free(k->jit);
}

static void check_source(const char *src, double tol) {
  Compiled k = compile(src);
  check_compiled(&k, tol > 0 ? tol : TOL);
}

/* ----------------------------------------------------------- every op */

typedef struct OpCase {
  const char *name;
  const char *decls;  /* params and inputs */
  const char *expr;   /* the value probed; its shape is `shape` */
  const char *shape;
  double tol;         /* 0: TOL */
} OpCase;

/* test_gradients.c's table (each differentiable operand a param), plus
 * conv and pooling geometries, ties, and the prelude layers. */
static const OpCase op_cases[] = {
    {"neg", "param a: f32[3, 4] = normal(0, 1)", "-a", "3, 4", 0},
    {"exp", "param a: f32[3, 4] = normal(0, 1)", "exp(a)", "3, 4", 0},
    {"log", "param a: f32[3, 4] = uniform(0.5, 2)", "log(a)", "3, 4", 0},
    {"sqrt", "param a: f32[3, 4] = uniform(0.5, 2)", "sqrt(a)", "3, 4", 0},
    {"rsqrt", "param a: f32[3, 4] = uniform(0.5, 2)", "rsqrt(a)", "3, 4", 0},
    {"abs", "param a: f32[3, 4] = normal(0, 1)", "abs(a)", "3, 4", 0},
    {"square", "param a: f32[3, 4] = normal(0, 1)", "square(a)", "3, 4", 0},
    {"relu", "param a: f32[3, 4] = normal(0, 1)", "relu(a)", "3, 4", 0},
    {"leaky_relu", "param a: f32[3, 4] = normal(0, 1)", "leaky_relu(a, 0.2)", "3, 4", 0},
    {"sigmoid", "param a: f32[3, 4] = normal(0, 1)", "sigmoid(a)", "3, 4", 0},
    {"tanh", "param a: f32[3, 4] = normal(0, 1)", "tanh(a)", "3, 4", 0},
    {"gelu", "param a: f32[3, 4] = normal(0, 1)", "gelu(a)", "3, 4", 0},
    {"softplus", "param a: f32[3, 4] = normal(0, 1)", "softplus(a)", "3, 4", 0},
    {"elu", "param a: f32[3, 4] = normal(0, 1)", "elu(a) + elu(a, alpha = 0.5)", "3, 4", 0},
    {"selu", "param a: f32[3, 4] = normal(0, 1)", "selu(a)", "3, 4", 0},
    {"silu", "param a: f32[3, 4] = normal(0, 1)", "silu(a)", "3, 4", 0},
    {"hardtanh", "param a: f32[3, 4] = normal(0, 1)", "hardtanh(a) + hardtanh(a, -0.5, 0.7)", "3, 4", 0},
    {"sin", "param a: f32[3, 4] = normal(0, 1)", "sin(a)", "3, 4", 0},
    {"cos", "param a: f32[3, 4] = normal(0, 1)", "cos(a)", "3, 4", 0},
    {"pow", "param a: f32[3, 4] = uniform(0.5, 2)", "a ** 3 + a ** -1.5", "3, 4", 0},
    {"clamp", "param a: f32[3, 4] = normal(0, 1)", "clamp(a, -0.5, 0.7)", "3, 4", 0},
    {"stop_gradient", "param a: f32[3, 4] = normal(0, 1)", "a * stop_gradient(a) + stop_gradient(a)", "3, 4", 0},
    {"add", "param a: f32[2, 3, 4] = normal(0, 1)\n param b: f32[3, 1] = normal(0, 1)", "a + b", "2, 3, 4", 0},
    {"sub", "param a: f32[1, 4] = normal(0, 1)\n param b: f32[3, 4] = normal(0, 1)", "a - b", "3, 4", 0},
    {"mul", "param a: f32[3, 1] = normal(0, 1)\n param b: f32[1, 4] = normal(0, 1)", "a * b", "3, 4", 0},
    {"div", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[4] = uniform(0.5, 2)", "a / b", "3, 4", 0},
    {"maximum", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[4] = normal(0, 1)", "maximum(a, b)", "3, 4", 0},
    {"minimum", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[3, 1] = normal(0, 1)", "minimum(a, b)", "3, 4", 0},
    {"where", "param a: f32[3, 4] = normal(0, 1)\n param b: f32[4] = normal(0, 1)", "where(a > 0, a * 2, b)", "3, 4", 0},
    {"literal", "param a: f32[3, 4] = normal(0, 1)", "2 * a - 1 + a / 4", "3, 4", 0},
    {"matmul", "param a: f32[3, 5] = normal(0, 1)\n param b: f32[5, 4] = normal(0, 1)", "a @ b", "3, 4", 0},
    {"matmul_batched", "param a: f32[2, 1, 3, 5] = normal(0, 1)\n param b: f32[4, 5, 2] = normal(0, 1)", "a @ b", "2, 4, 3, 2", 0},
    {"matmul_vector", "param a: f32[5] = normal(0, 1)\n param b: f32[2, 5, 3] = normal(0, 1)\n param c: f32[3] = normal(0, 1)", "(a @ b) @ c", "2", 0},
    {"matmul_wide", "param a: f32[3, 20] = normal(0, 1)\n param b: f32[20, 37] = normal(0, 1)", "a @ b", "3, 37", 0},
    /* register blocks of 4 x 16 with a row and a column edge, batched */
    {"matmul_blocked", "param a: f32[2, 9, 7] = normal(0, 1)\n param b: f32[7, 35] = normal(0, 1)", "a @ b", "2, 9, 35", 0},
    {"sum", "param a: f32[2, 3, 4] = normal(0, 1)", "sum(a, axis = [0, 2])", "3", 0},
    {"mean", "param a: f32[2, 3, 4] = normal(0, 1)", "mean(a, axis = -1, keepdims = true)", "2, 3, 1", 0},
    {"max", "param a: f32[2, 3, 4] = normal(0, 1)", "max(a, axis = 1)", "2, 4", 0},
    {"min", "param a: f32[2, 3, 4] = normal(0, 1)", "min(a, axis = [1, 2], keepdims = true)", "2, 1, 1", 0},
    {"sum_all", "param a: f32[2, 3] = normal(0, 1)", "reshape(sum(a), [1])", "1", 0},
    {"logsumexp", "param a: f32[2, 3, 4] = normal(0, 1)", "logsumexp(a, axis = -1)", "2, 3", 0},
    {"softmax", "param a: f32[3, 5] = normal(0, 1)", "softmax(a)", "3, 5", 0},
    {"softmax_axis0", "param a: f32[3, 5] = normal(0, 1)", "softmax(a, axis = 0)", "3, 5", 0},
    {"log_softmax", "param a: f32[3, 5] = normal(0, 1)", "log_softmax(a, axis = -1)", "3, 5", 0},
    {"reshape", "param a: f32[2, 6] = normal(0, 1)", "reshape(a, [3, -1])", "3, 4", 0},
    {"transpose", "param a: f32[2, 3, 4] = normal(0, 1)", "transpose(a, [2, 0, 1])", "4, 2, 3", 0},
    {"flatten", "param a: f32[2, 3, 2] = normal(0, 1)", "flatten(a)", "2, 6", 0},
    {"slice", "param a: f32[4, 6] = normal(0, 1)", "a[1:4, 0:6:2]", "3, 3", 0},
    {"index", "param a: f32[4, 5, 2] = normal(0, 1)", "a[:, -2]", "4, 2", 0},
    {"concat", "param a: f32[2, 3] = normal(0, 1)\n param b: f32[2, 1] = normal(0, 1)", "concat([a, b, a], axis = 1)", "2, 7", 0},
    {"stack", "param a: f32[2, 3] = normal(0, 1)\n param b: f32[2, 3] = normal(0, 1)", "stack([a, b], axis = -1)", "2, 3, 2", 0},
    {"gather", "param t: f32[5, 3] = normal(0, 1)\n input i: i32[2, 4]", "gather(t, i)", "2, 4, 3", 0},
    {"one_hot", "param a: f32[4, 3] = normal(0, 1)\n input i: i32[4]", "one_hot(i, 3) * a", "4, 3", 0},
    /* convolution and pooling: stride, padding, size-1 kernels, rows
     * longer than a vector (the vector loop and its remainder) */
    {"conv2d", "param x: f32[2, 3, 5, 5] = normal(0, 1)\n param w: f32[4, 3, 3, 3] = normal(0, 1)", "conv2d(x, w)", "2, 4, 3, 3", 0},
    {"conv2d_stride_pad", "param x: f32[1, 2, 6, 5] = normal(0, 1)\n param w: f32[3, 2, 3, 2] = normal(0, 1)", "conv2d(x, w, stride = [2, 1], pad = 1)", "1, 3, 3, 6", 0},
    {"conv2d_1x1", "param x: f32[2, 4, 3, 3] = normal(0, 1)\n param w: f32[2, 4, 1, 1] = normal(0, 1)", "conv2d(x, w, stride = 2)", "2, 2, 2, 2", 0},
    {"conv2d_wide_pad", "param x: f32[1, 2, 4, 21] = normal(0, 1)\n param w: f32[3, 2, 3, 3] = normal(0, 1)", "conv2d(x, w, pad = 1)", "1, 3, 4, 21", 0},
    {"conv2d_stride_w", "param x: f32[2, 2, 5, 11] = normal(0, 1)\n param w: f32[2, 2, 2, 3] = normal(0, 1)", "conv2d(x, w, stride = [1, 3], pad = [0, 2])", "2, 2, 4, 5", 0},
    {"conv2d_big_pad", "param x: f32[1, 1, 3, 3] = normal(0, 1)\n param w: f32[2, 1, 3, 3] = normal(0, 1)", "conv2d(x, w, stride = 2, pad = 2)", "1, 2, 3, 3", 0},
    {"conv2d_pad_only_cols", "param x: f32[1, 2, 4, 1] = normal(0, 1)\n param w: f32[2, 2, 2, 3] = normal(0, 1)", "conv2d(x, w, stride = [1, 3], pad = [1, 2])", "1, 2, 5, 1", 0},
    {"max_pool2d", "param x: f32[2, 2, 5, 6] = normal(0, 1)", "max_pool2d(x, 2)", "2, 2, 2, 3", 0},
    {"max_pool2d_overlap", "param x: f32[1, 2, 5, 5] = normal(0, 1)", "max_pool2d(x, 3, stride = 1)", "1, 2, 3, 3", 0},
    {"max_pool2d_wide", "param x: f32[1, 3, 7, 20] = normal(0, 1)", "max_pool2d(x, [3, 2], stride = [2, 1])", "1, 3, 3, 19", 0},
    {"max_pool2d_ties", "input qx: f32[2, 2, 6, 6]\n param a: f32[2, 2, 1, 1] = uniform(0.5, 2)", "max_pool2d(qx * a, [3, 2], stride = [1, 2])", "2, 2, 4, 3", 0},
    {"avg_pool2d", "param x: f32[2, 2, 5, 6] = normal(0, 1)", "avg_pool2d(x, [2, 3], stride = [1, 2])", "2, 2, 4, 2", 0},
    {"avg_pool2d_wide", "param x: f32[1, 2, 6, 20] = normal(0, 1)", "avg_pool2d(x, 3, stride = 1)", "1, 2, 4, 18", 0},
    /* normalization (training mode) and dropout (a fixed mask per step) */
    {"batch_norm_2d", "param x: f32[4, 3] = normal(0, 1)\n param g: f32[3] = normal(1, 0.2)\n param b: f32[3] = normal(0, 1)\n state m: f32[3] = zeros()\n state v: f32[3] = ones()", "batch_norm(x, g, b, m, v)", "4, 3", 0},
    {"batch_norm_4d", "param x: f32[2, 3, 2, 2] = normal(0, 1)\n param g: f32[3] = normal(1, 0.2)\n param b: f32[3] = normal(0, 1)\n state m: f32[3] = zeros()\n state v: f32[3] = ones()", "batch_norm(x, g, b, m, v, eps = 1e-3)", "2, 3, 2, 2", 0},
    {"layer_norm", "param x: f32[3, 5] = normal(0, 1)\n param g: f32[5] = normal(1, 0.2)\n param b: f32[5] = normal(0, 1)", "layer_norm(x, g, b)", "3, 5", 0},
    {"dropout", "param x: f32[4, 5] = normal(0, 1)", "dropout(x, 0.3)", "4, 5", 0},
    /* prelude layers (f32 inputs get gradients too) */
    {"dense", "input x: f32[3, 5]", "dense(x, 4, relu)", "3, 4", 0},
    {"conv_layer", "input x: f32[2, 2, 6, 6]", "conv(x, 3, 3, pad = 1, act = tanh)", "2, 3, 6, 6", 0},
    {"batchnorm_layer", "input x: f32[4, 3, 2, 2]", "batchnorm(x, momentum = 0.2)", "4, 3, 2, 2", 0},
    {"rnn_cell", "input x: f32[2, 3]\n input h: f32[2, 4]", "rnn_cell(x, h, 4)", "2, 4", 0},
    {"lstm_cell", "param x: f32[2, 3] = normal(0, 1)\n param h0: f32[2, 4] = normal(0, 1)\n param c0: f32[2, 4] = normal(0, 1)", "lstm_cell(x, h0, c0, 4)[1] + lstm_cell(x, h0, c0, 4)[0]", "2, 4", 0},
    {"gru_cell", "param x: f32[2, 3] = normal(0, 1)\n param h0: f32[2, 4] = normal(0, 1)", "gru_cell(x, h0, 4)", "2, 4", 0},
    {"weightnorm_dense", "param x: f32[2, 3] = normal(0, 1)", "weightnorm_dense(x, 4, tanh)", "2, 4", 0},
    {"embedding_layernorm", "input i: i32[3]", "layernorm(embedding(i, 6, 4))", "3, 4", 0},
};
#define N_OP_CASES ((int)(sizeof op_cases / sizeof op_cases[0]))

START_TEST(op_case) {
  const OpCase *c = &op_cases[_i];
  char src[2048];
  snprintf(src, sizeof src,
           "# %s\nmodel m {\n %s\n input probe: f32[%s]\n y = %s\n output y\n loss sum(y * probe)\n}\n",
           c->name, c->decls, c->shape, c->expr);
  check_source(src, c->tol);
}
END_TEST

/* ---------------------------------------------- losses, whole models */

static const char *const loss_cases[] = {
    "param p: f32[4, 3] = normal(0, 1)\n param t: f32[4, 3] = normal(0, 1)\n loss mse(p, t)",
    "param p: f32[4, 3] = normal(0, 2)\n param t: f32[4, 3] = normal(0, 1)\n loss huber(p, t, delta = 0.5)",
    "param z: f32[4, 3] = normal(0, 1)\n param t: f32[4, 3] = uniform(0, 1)\n loss binary_cross_entropy(z, t)",
    "param z: f32[4, 5] = normal(0, 1)\n input y: i32[4]\n loss cross_entropy(z, y)",
    "param z: f32[2, 3, 5] = normal(0, 1)\n input y: i32[2, 3]\n loss cross_entropy(z, y)",
    "param z: f32[4, 5] = normal(0, 1)\n input y: i32[4]\n loss nll(log_softmax(z), y)",
};

START_TEST(loss_case) {
  char src[1024];
  snprintf(src, sizeof src, "model m {\n %s\n}\n", loss_cases[_i]);
  check_source(src, 0);
}
END_TEST

typedef struct ModelCase {
  const char *name;
  const char *src;
  double tol;
} ModelCase;

#define XOR_MODEL                                                                          \
  "model m {\n input x: f32[4, 2]\n input y: f32[4, 1]\n h = dense(x, 5, tanh)\n"          \
  " p = dense(h, 1)\n output p\n loss mse(p, y)\n}\n"

static const ModelCase model_cases[] = {
    {"lenet",
     "model m {\n input x: f32[2, 1, 8, 8]\n input y: i32[2]\n"
     " c1 = conv(x, 3, 3, pad = 1, act = relu)\n p1 = max_pool2d(c1, 2)\n"
     " c2 = conv(p1, 4, 3, act = relu)\n p2 = avg_pool2d(c2, 2)\n"
     " z = dense(flatten(p2), 3)\n output z\n loss cross_entropy(z, y)\n}\n", 0},
    {"batchnorm_dropout",
     "model m {\n input x: f32[4, 6]\n input y: i32[4]\n h = dense(x, 8, relu)\n"
     " h = batchnorm(h)\n h = dropout(h, 0.25)\n z = dense(h, 3)\n output z\n"
     " loss cross_entropy(z, y)\n}\n", 0},
    {"conv_batchnorm_dropout",
     "model m {\n input x: f32[2, 2, 5, 5]\n input t: f32[2, 3, 3, 3]\n"
     " c = conv(x, 3, 3, act = relu)\n c = batchnorm(c, momentum = 0.2)\n"
     " c = dropout(c, 0.5)\n output c\n loss mse(c, t)\n}\n", 0},
    /* ops without a gradient, i32 and bool values as outputs */
    {"no_gradient_ops",
     "model m {\n input a: f32[3, 5]\n input i: i32[3, 4]\n param w: f32[5, 4] = normal(0, 1)\n"
     " z = a @ w\n k = argmax(z, axis = -1)\n n = sum(z > 0, axis = 1)\n"
     " q = mean(z <= 0.5)\n j = i * 3 - abs(i - 2) + (-i) + square(i)\n"
     " e = where(z < 0, z, 0) + where(z >= 1, 1, 0) + where(z == z, 0, 1) + where(z != 0, 0, 1)\n"
     " r = max(z, axis = 0) + min(z, axis = 0)\n"
     " output k, n, q, j, e, r\n loss sum(e * z) + sum(r)\n}\n", 0},
    {"forward_only", "model m {\n input x: f32[2, 3]\n h = dense(x, 4, sigmoid)\n output h\n}\n", 0},
    {"char_rnn",
     "model m {\n input x: i32[2, 3]\n input y: i32[2, 3]\n emb = embedding(x, 7, 4)\n"
     " h = zeros(f32[2, 5])\n total = zeros(f32[])\n for t in 0..3 {\n"
     "  h = rnn_cell(emb[:, t, :], h, 5)\n  logits = dense(h, 7)\n"
     "  total = total + cross_entropy(logits, y[:, t])\n }\n output logits\n loss total / 3\n}\n", 0},
    /* every optimizer and schedule */
    {"sgd", XOR_MODEL "train m {\n data = xor(n = 16)\n optimizer = sgd(lr = 0.1, momentum = 0.9, nesterov = true, weight_decay = 0.01)\n}\n", 0},
    {"sgd_momentum", XOR_MODEL "train m {\n data = xor(n = 16)\n optimizer = sgd(lr = 0.1, momentum = 0.5)\n schedule = step(every = 1, gamma = 0.5)\n}\n", 0},
    {"adam", XOR_MODEL "train m {\n data = xor(n = 16)\n optimizer = adam(lr = 0.01, weight_decay = 0.1)\n schedule = cosine(warmup = 1)\n}\n", 0},
    {"adamw", XOR_MODEL "train m {\n data = xor(n = 16)\n optimizer = adamw(lr = 0.01)\n schedule = cosine()\n}\n", 0},
    {"rmsprop", XOR_MODEL "train m {\n data = xor(n = 16)\n optimizer = rmsprop(lr = 0.01, momentum = 0.9)\n}\n", 0},
    {"adagrad", XOR_MODEL "train m {\n data = xor(n = 16)\n optimizer = adagrad(lr = 0.1)\n}\n", 0},
};
#define N_MODEL_CASES ((int)(sizeof model_cases / sizeof model_cases[0]))

START_TEST(model_case) {
  check_source(model_cases[_i].src, model_cases[_i].tol);
}
END_TEST

/* ------------------------------------------------------------- fusion */

/* Programs whose graphs fuse (passes/fuse.c) in every way codegen emits:
 * matmul epilogues over blocked tiles and both edges, batched; softmax
 * rows with the cross-entropy gradient and one_hot; loops with broadcast
 * operands and bool values stored for later; the optimizer update in
 * place. Each must make at least `kernels` fused kernels (so the test
 * cannot pass by not fusing) and agree with the reference evaluator. */
typedef struct FusionCase {
  const char *name;
  const char *src;
  int kernels;   /* at least, over both graphs */
} FusionCase;

static const FusionCase fusion_cases[] = {
    {"epilogue_edges",  /* 11 x 37: a 6-row and a 4-row block, 32 columns; edges of 1 row and 5 columns */
     "model m {\n input x: f32[11, 13]\n input t: f32[11, 37]\n h = dense(x, 37, tanh)\n"
     " g = gelu(h * 0.5 + 1) - sigmoid(h)\n output g\n loss mse(g, t)\n}\n", 3},
    {"cache_blocked",  /* K 600: k blocks of 256 (128 with 512-bit tiles) then 88; 54 rows: a 48-row block and 6 */
     "model m {\n input x: f32[55, 600]\n input t: f32[55, 40]\n h = dense(x, 40, relu) * 0.5\n"
     " output h\n loss mse(h, t)\n}\n", 2},
    {"conv_epilogue",  /* the register-blocked conv (stride 1) and the general nest (stride 2) */
     "model m {\n input x: f32[2, 3, 9, 11]\n c = conv(x, 5, 3, pad = 1, act = tanh) * 0.5\n"
     " d = conv(x, 4, 3, stride = 2, act = relu)\n output c, d\n loss mean(c * c) + mean(d)\n}\n", 3},
    {"four_row_tiles",  /* M 20 < 48, 4 | 20: 4-row tiles only (5 of them) */
     "model m {\n input x: f32[20, 9]\n input t: f32[20, 33]\n h = sigmoid(dense(x, 33)) - 0.5\n"
     " output h\n loss mse(h, t)\n}\n", 2},
    {"epilogue_small",  /* smaller than one tile: the edge path only */
     "model m {\n input x: f32[3, 5]\n input t: f32[3, 7]\n z = relu(dense(x, 7)) + x @ ones(f32[5, 7])\n"
     " output z\n loss mse(z, t)\n}\n", 2},
    {"batched_epilogue",
     "model m {\n input a: f32[2, 5, 6]\n param w: f32[6, 33] = normal(0, 0.3)\n param b: f32[33] = normal(0, 1)\n"
     " input t: f32[2, 5, 33]\n y = leaky_relu(a @ w + b, 0.1) * 2\n output y\n loss mse(y, t)\n}\n", 2},
    {"softmax_cross_entropy",
     "model m {\n input x: f32[6, 2]\n input y: i32[6]\n z = dense(x, 5)\n p = softmax(z)\n"
     " output p\n loss cross_entropy(z, y)\n}\n"
     "train m {\n data = spiral(n = 6, classes = 5)\n optimizer = sgd(lr = 0.1, momentum = 0.9)\n}\n", 3},
    {"log_softmax_loop",
     "model m {\n input x: f32[4, 6]\n input y: i32[4]\n l = log_softmax(dense(x, 3)) * 2 - 1\n"
     " q = where(l > -3, exp(l), 0)\n output q\n loss nll(l, y) + mean(q)\n}\n", 2},
    {"nll_log_softmax",
     "model m {\n input x: f32[5, 3]\n input y: i32[5]\n l = log_softmax(dense(x, 4))\n output l\n"
     " loss nll(l, y)\n}\n", 2},
    {"broadcast_loop",
     "model m {\n input a: f32[3, 4, 5]\n param b: f32[4, 1] = normal(0, 1)\n param c: f32[5] = normal(0, 1)\n"
     " u = a * b + c\n m2 = u > 0\n v = where(m2, u, -u) / (abs(c) + 1)\n s = sum(v * v)\n"
     " w = where(m2, 1, 0) * v\n output w, s\n loss s + mean(w)\n}\n", 2},
};
#define N_FUSION_CASES ((int)(sizeof fusion_cases / sizeof fusion_cases[0]))

/* The same with AVX-512's 6 x 32 matmul tiles (on an AVX2 host LLVM
 * splits each 16-float vector in two: slower, equally exact). */
START_TEST(fusion_case_512) {
  jit_options.vector_bits = 512;
  Compiled k = compile(fusion_cases[_i].src);
  check_compiled(&k, TOL);
  jit_options.vector_bits = 0;
}
END_TEST

START_TEST(fusion_case) {
  const FusionCase *fc = &fusion_cases[_i];
  Compiled k = compile(fc->src);
  int kernels = 0;
  for (int g = 0; g < k.m->n_graphs; g++) kernels += k.m->graphs[g]->n_kernels;
  ck_assert_msg(kernels >= fc->kernels, "%s: %d fused kernels, expected at least %d", fc->name, kernels, fc->kernels);
  check_compiled(&k, TOL);
}
END_TEST

/* ------------------------------------------------------ random shapes */

/* Programs of a few templates at seeded random shapes, each checked like
 * the model cases (forward, every gradient, two train steps against the
 * reference): matmul epilogues at sizes around the tile and cache-block
 * edges, batched matmul, broadcasting elementwise chains, reductions,
 * softmax with cross-entropy, conv. The seed is fixed (NNCC_TEST_SEED
 * overrides) and every failure prints its program. */
#define RANDOM_PROGRAMS 24

static uint64_t rng_state;
static int64_t pick(int64_t lo, int64_t hi) {  /* uniform in [lo, hi] */
  rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return lo + (int64_t)((rng_state >> 33) % (uint64_t)(hi - lo + 1));
}

static void random_program(char *buf, size_t size) {
  switch (pick(0, 5)) {
  case 0: {  /* a dense layer and its epilogue; K large sometimes (k blocks) */
    int64_t M = pick(1, 60), K = pick(0, 3) ? pick(1, 40) : pick(500, 700), N = pick(1, 70);
    snprintf(buf, size,
             "model m {\n input x: f32[%lld, %lld]\n input t: f32[%lld, %lld]\n"
             " h = dense(x, %lld, tanh) * 2 - sigmoid(x @ ones(f32[%lld, %lld]))\n output h\n loss mse(h, t)\n}\n",
             (long long)M, (long long)K, (long long)M, (long long)N, (long long)N, (long long)K, (long long)N);
    break;
  }
  case 1: {  /* batched matmul */
    int64_t B = pick(1, 3), M = pick(1, 13), K = pick(1, 20), N = pick(1, 40);
    snprintf(buf, size,
             "model m {\n input a: f32[%lld, %lld, %lld]\n param w: f32[%lld, %lld] = normal(0, 0.5)\n"
             " param c: f32[%lld] = normal(0, 1)\n input t: f32[%lld, %lld, %lld]\n y = relu(a @ w + c)\n"
             " output y\n loss mse(y, t)\n}\n",
             (long long)B, (long long)M, (long long)K, (long long)K, (long long)N, (long long)N, (long long)B,
             (long long)M, (long long)N);
    break;
  }
  case 2: {  /* a broadcasting elementwise chain */
    int64_t d0 = pick(1, 9), d1 = pick(1, 9), d2 = pick(1, 40);
    snprintf(buf, size,
             "model m {\n param a: f32[%lld, %lld, %lld] = normal(0, 1)\n param b: f32[%lld, 1] = normal(0, 1)\n"
             " param c: f32[%lld] = uniform(0.5, 2)\n y = a * b + exp(-abs(a)) / (1 + b * b) - log(c) * gelu(a)\n"
             " output y\n loss mean(y * y)\n}\n",
             (long long)d0, (long long)d1, (long long)d2, (long long)d1, (long long)d2);
    break;
  }
  case 3: {  /* reductions over a random axis */
    int64_t d0 = pick(1, 12), d1 = pick(1, 12), d2 = pick(1, 30), ax = pick(0, 2);
    snprintf(buf, size,
             "model m {\n param a: f32[%lld, %lld, %lld] = normal(0, 1)\n"
             " y = a - max(a, axis = %lld, keepdims = true) + mean(square(a), axis = %lld, keepdims = true)\n"
             " output y\n loss sum(softplus(y)) / %lld\n}\n",
             (long long)d0, (long long)d1, (long long)d2, (long long)ax, (long long)(2 - ax),
             (long long)(d0 * d1 * d2));
    break;
  }
  case 4: {  /* softmax and cross-entropy */
    int64_t M = pick(1, 40), K = pick(1, 20), C = pick(2, 40);
    snprintf(buf, size,
             "model m {\n input x: f32[%lld, %lld]\n input y: i32[%lld]\n z = dense(x, %lld)\n p = softmax(z)\n"
             " output p\n loss cross_entropy(z, y)\n}\n",
             (long long)M, (long long)K, (long long)M, (long long)C);
    break;
  }
  default: {  /* conv */
    int64_t Nn = pick(1, 3), C = pick(1, 4), H = pick(3, 12), W = pick(3, 30), O = pick(1, 9), k = pick(1, 3);
    int64_t stride = pick(1, 2), pad = pick(0, 1);
    snprintf(buf, size,
             "model m {\n input x: f32[%lld, %lld, %lld, %lld]\n c = conv(x, %lld, %lld, stride = %lld, pad = %lld, act = relu)\n"
             " output c\n loss mean(c * c)\n}\n",
             (long long)Nn, (long long)C, (long long)H, (long long)W, (long long)O, (long long)k, (long long)stride,
             (long long)pad);
    break;
  }
  }
}

START_TEST(random_shapes) {
  const char *env = getenv("NNCC_TEST_SEED");
  uint64_t seed = env ? strtoull(env, NULL, 10) : 20261129;
  rng_state = seed * 2654435761ULL + (uint64_t)_i;
  char src[1024];
  random_program(src, sizeof src);
  printf("random_shapes %d (NNCC_TEST_SEED=%llu):\n%s", _i, (unsigned long long)seed, src);
  check_source(src, 0);
}
END_TEST

/* ------------------------------------------- conv and pooling as IR */

/* One geometry: x [N,C,H,W], w [O,C,KH,KW]; the pools use the same
 * kernel and stride (when the kernel fits) and no padding. */
typedef struct Geom {
  int64_t N, C, H, W, O, KH, KW, sh, sw, ph, pw;
} Geom;

static const Geom geoms[] = {
    {2, 3, 7, 9, 2, 3, 2, 2, 1, 1, 2},
    {1, 2, 5, 20, 3, 3, 3, 1, 1, 0, 0},   /* rows longer than a vector */
    {2, 1, 4, 4, 1, 1, 1, 2, 2, 0, 0},
    {1, 2, 6, 19, 2, 2, 3, 1, 3, 2, 1},
    {1, 1, 3, 3, 2, 3, 3, 1, 1, 2, 2},    /* padding wider than the input */
    {1, 2, 4, 1, 2, 2, 3, 1, 3, 1, 2},    /* kernel columns that see only padding */
    {3, 2, 8, 33, 2, 2, 2, 2, 1, 0, 1},
    /* the register-blocked paths (stride_w 1): channel blocks with a
     * remainder, rows of several vector chunks, widths that are and are
     * not multiples of 8, and the shapes of bench/lenet.nn */
    {2, 1, 28, 28, 8, 5, 5, 1, 1, 2, 2},
    {2, 8, 14, 14, 16, 5, 5, 1, 1, 0, 0},
    {2, 3, 6, 12, 13, 3, 3, 1, 1, 0, 0},   /* OW 10, 13 channels: blocks 5, 5, 3 */
    {1, 2, 5, 10, 3, 3, 3, 1, 1, 0, 0},    /* OW 8 */
    {1, 3, 4, 37, 7, 3, 5, 1, 1, 1, 2},    /* OW 37: chunks of 4 and 1 vectors */
    {2, 3, 9, 14, 1, 4, 1, 1, 1, 2, 0},
    {1, 2, 7, 19, 5, 3, 4, 2, 1, 3, 1},    /* stride_h 2, rows fully in padding */
    {1, 1, 3, 70, 2, 2, 3, 1, 1, 0, 0},    /* OW 68: grad_weight falls back */
    {1, 1, 3, 15, 2, 1, 13, 1, 1, 0, 0},   /* KW 13: grad_weight falls back */
    /* kernel == stride: the vectorized max pools (a block of 8 windows,
     * then the rest; rows and columns past the last window) */
    {2, 3, 28, 28, 2, 2, 2, 2, 2, 0, 0},   /* OW 14: blocks 8 and 6 */
    {1, 2, 7, 35, 2, 3, 3, 3, 3, 0, 0},    /* kw 3: OW 11, a row and 2 columns left */
    {2, 2, 5, 9, 1, 2, 1, 2, 1, 0, 0},     /* kw 1: OW 9, a row left */
    {1, 1, 6, 41, 1, 1, 5, 1, 5, 0, 0},    /* kw 5: OW 8, a column left */
    {1, 1, 3, 17, 1, 3, 8, 3, 8, 0, 0},    /* kw 8 (a vector a window) */
    {1, 2, 4, 9, 1, 2, 9, 2, 9, 0, 0},     /* kw 9: the general path */
};
#define N_GEOMS ((int)(sizeof geoms / sizeof geoms[0]))

static const SrcLoc LOC = {1, 1};

static Node *ir_input(Graph *g, const char *name, int64_t a, int64_t b, int64_t c, int64_t d) {
  return ir_var(g, name, ROLE_INPUT, type_make(DT_F32, 4, (int64_t[]){a, b, c, d}), LOC);
}

static Node *ir_op(Graph *g, Op op, Node *x, Node *y, const int64_t *l0, const int64_t *l1, const int64_t *l2) {
  Node *ins[2] = {x, y};
  Node *n = ir_node_new(g, op, ins, y ? 2 : 1, LOC);
  const int64_t *lists[3] = {l0, l1, l2};
  for (int k = 0; k < 3; k++)
    if (lists[k]) ir_set_list(g, n, k, lists[k], 2);
  ck_assert_msg(ir_infer(n, NULL), "ir_infer failed on %s", op_info(op)->name);
  return n;
}

static int n_outputs;
static void mark_output(Node *n) {
  n->roles |= ROLE_OUTPUT;
  n->out_index = n_outputs;
  n->out_name = arena_printf(&arena, "y%d_%s", n_outputs++, op_info(n->op)->name);
}

/* Every op of the family in one evaluation graph, forward only: JIT
 * forward against the Interp. Inputs named q.. hold ties. */
START_TEST(conv_ir_geometry) {
  const Geom *G = &geoms[_i];
  Graph *g = ir_graph_new(&arena, "m");
  g->model = "m";
  n_outputs = 0;
  int64_t OH = (G->H + 2 * G->ph - G->KH) / G->sh + 1, OW = (G->W + 2 * G->pw - G->KW) / G->sw + 1;
  int64_t stride[2] = {G->sh, G->sw}, pad[2] = {G->ph, G->pw}, kernel[2] = {G->KH, G->KW};
  int64_t size[2] = {G->H, G->W};
  Node *x = ir_input(g, "qx", G->N, G->C, G->H, G->W);
  Node *w = ir_input(g, "w", G->O, G->C, G->KH, G->KW);
  Node *gc = ir_input(g, "gc", G->N, G->O, OH, OW);
  mark_output(ir_op(g, OP_CONV2D, x, w, stride, pad, NULL));
  mark_output(ir_op(g, OP_CONV2D_GRAD_INPUT, gc, w, stride, pad, size));
  mark_output(ir_op(g, OP_CONV2D_GRAD_WEIGHT, x, gc, stride, pad, kernel));
  if (G->KH <= G->H && G->KW <= G->W) {
    int64_t PH = (G->H - G->KH) / G->sh + 1, PW = (G->W - G->KW) / G->sw + 1;
    Node *gp = ir_input(g, "gp", G->N, G->C, PH, PW);
    Node *h = ir_input(g, "h", G->N, G->C, G->H, G->W);
    mark_output(ir_op(g, OP_MAX_POOL2D, x, NULL, kernel, stride, NULL));
    mark_output(ir_op(g, OP_AVG_POOL2D, x, NULL, kernel, stride, NULL));
    mark_output(ir_op(g, OP_MAX_POOL2D_GRAD, x, gp, kernel, stride, NULL));
    mark_output(ir_op(g, OP_MAX_POOL2D_SELECT, x, h, kernel, stride, NULL));
    mark_output(ir_op(g, OP_AVG_POOL2D_GRAD, gp, NULL, kernel, stride, size));
  }
  FILE *null = fopen("/dev/null", "w");
  ck_assert_int_eq(ir_verify(g, null), 0);
  fclose(null);
  Compiled k = {.src = "(conv and pooling ops as IR)"};
  k.m = ARENA_NEW(&arena, Module);
  k.m->arena = &arena;
  ir_module_add(k.m, g);
  jit_module(&k);
  ck_assert_ptr_null(k.train);
  check_compiled(&k, TOL);
}
END_TEST

/* A NaN in a max pool window: the first NaN is the maximum, as
 * max_pool2d propagates it; its gradient goes there. */
START_TEST(max_pool_nan) {
  Compiled k = compile("model m {\n input x: f32[1, 1, 2, 4]\n input g: f32[1, 1, 1, 2]\n"
                       " param s: f32[1] = ones()\n y = max_pool2d(x * s, 2)\n output y\n"
                       " loss sum(y * g)\n}\n");
  const nncc_model_api *api = k.api;
  nncc_model *mm = api->create(1);
  int32_t ix = -1, ig = -1, iy = -1;
  for (int32_t i = 0; i < api->n_tensors; i++) {
    if (!strcmp(api->tensors[i].name, "x")) ix = i;
    if (!strcmp(api->tensors[i].name, "g")) ig = i;
    if (!strcmp(api->tensors[i].name, "y")) iy = i;
  }
  ck_assert(ix >= 0 && ig >= 0 && iy >= 0);
  const float xs[8] = {1, 2, 5, NAN, 3, NAN, 4, 6};  /* windows {1,2,3,nan}, {5,nan,4,6} */
  memcpy(api->data(mm, ix), xs, sizeof xs);
  float *g = api->data(mm, ig);
  g[0] = g[1] = 1;
  ck_assert_int_eq(api->forward(mm), 0);
  const float *y = api->data(mm, iy);
  ck_assert(isnan(y[0]) && isnan(y[1]));
  /* the loss is NaN: an error code, but the gradients are written */
  ck_assert_int_ne(api->backward(mm), 0);
  const float *dx = api->grad(mm, ix);
  for (int e = 0; e < 8; e++) ck_assert_msg(dx[e] == (e == 3 || e == 5 ? 1 : 0), "dx[%d] = %g", e, dx[e]);
  api->destroy(mm);
  cg_jit_free(k.jit);
}
END_TEST

/* ------------------------------------------------ every op has a case */

static void mark_module_ops(const char *src, bool *seen) {
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(m && errors == 0, "%s\n%s", src, diag ? diag : "");
  free(diag);
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), null);
  PassOptions o = {.out = null};
  ck_assert_msg(pass_run_pipeline(m, &d, &o), "the pass pipeline failed:\n%s", src);
  fclose(null);
  for (int i = 0; i < m->n_graphs; i++)
    for (int j = 0; j < m->graphs[i]->n_nodes; j++) seen[m->graphs[i]->nodes[j]->op] = true;
}

/* Every op reaches codegen and the evaluator in some case above: in the
 * graphs, after the whole pipeline, of an op, loss or model case, or in
 * conv_ir_geometry (the 8 conv and pooling ops as IR). OPF_LOWERED ops
 * never reach codegen: lower.c replaces them (their cases run what they
 * become). The test names every op that has no case. */
START_TEST(every_op_has_a_case) {
  bool seen[OP_COUNT] = {0};
  char src[2048];
  for (int i = 0; i < N_OP_CASES; i++) {
    const OpCase *c = &op_cases[i];
    snprintf(src, sizeof src, "model m {\n %s\n input probe: f32[%s]\n y = %s\n output y\n loss sum(y * probe)\n}\n",
             c->decls, c->shape, c->expr);
    mark_module_ops(src, seen);
  }
  for (int i = 0; i < (int)(sizeof loss_cases / sizeof loss_cases[0]); i++) {
    snprintf(src, sizeof src, "model m {\n %s\n}\n", loss_cases[i]);
    mark_module_ops(src, seen);
  }
  for (int i = 0; i < N_MODEL_CASES; i++) mark_module_ops(model_cases[i].src, seen);
  static const Op geometry_ops[] = {OP_CONV2D, OP_CONV2D_GRAD_INPUT, OP_CONV2D_GRAD_WEIGHT, OP_MAX_POOL2D,
                                    OP_AVG_POOL2D, OP_MAX_POOL2D_GRAD, OP_MAX_POOL2D_SELECT, OP_AVG_POOL2D_GRAD};
  for (int i = 0; i < (int)(sizeof geometry_ops / sizeof geometry_ops[0]); i++) seen[geometry_ops[i]] = true;
  char missing[2048] = "";
  for (int op = 0; op < OP_COUNT; op++) {
    if (seen[op] || (op_info((Op)op)->flags & OPF_LOWERED)) continue;
    size_t k = strlen(missing);
    snprintf(missing + k, sizeof missing - k, " %s", op_info((Op)op)->name);
  }
  ck_assert_msg(!*missing, "ops that no case of test_jit.c runs through codegen and the evaluator:%s",
                missing);
}
END_TEST

int main(void) {
  Suite *s = suite_create("jit");
  TCase *ops = tcase_create("ops");
  tcase_add_checked_fixture(ops, NULL, teardown);
  tcase_set_timeout(ops, 120);
  tcase_add_loop_test(ops, op_case, 0, N_OP_CASES);
  tcase_add_loop_test(ops, loss_case, 0, (int)(sizeof loss_cases / sizeof loss_cases[0]));
  tcase_add_loop_test(ops, conv_ir_geometry, 0, N_GEOMS);
  tcase_add_test(ops, max_pool_nan);
  tcase_add_test(ops, every_op_has_a_case);
  suite_add_tcase(s, ops);
  TCase *models = tcase_create("models");
  tcase_add_checked_fixture(models, NULL, teardown);
  tcase_set_timeout(models, 120);
  tcase_add_loop_test(models, model_case, 0, N_MODEL_CASES);
  tcase_add_loop_test(models, fusion_case, 0, N_FUSION_CASES);
  tcase_add_loop_test(models, fusion_case_512, 0, N_FUSION_CASES);
  tcase_add_loop_test(models, random_shapes, 0, RANDOM_PROGRAMS);
  suite_add_tcase(s, models);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
