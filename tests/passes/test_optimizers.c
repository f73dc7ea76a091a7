/* test_optimizers.c - the optimizer step as compiled graph against
 * PyTorch's documented algorithms (torch.optim: SGD, Adagrad, RMSprop,
 * Adam, AdamW) and the learning-rate schedules, written out here
 * independently in double.
 *
 * The problem: loss = 0.5 * sum((w - t)^2), so the gradient is w - t.
 * Several steps run through the reference evaluator (float64); the
 * parameter after every step must agree to 1e-9 relative, and the
 * optimizer's state tensors carry PyTorch's slot names. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "passes/passes.h"
#include "testutil.h"

#define N 4
#define STEPS 7

typedef struct OptCase {
  const char *optimizer;  /* as written in the train block */
  const char *schedule;
  int kind;               /* which reference below */
  double lr, momentum, wd, b1, b2, eps, alpha;
  int nesterov;
  int sched;              /* 0 constant, 1 step, 2 cosine */
  int every;
  double gamma;
  int warmup;
  double total;
  const char *slots[3];
} OptCase;

enum { SGD, ADAGRAD, RMSPROP, ADAM, ADAMW };

static const OptCase cases[] = {
    {"sgd(lr = 0.1)", "constant", SGD, 0.1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, {NULL}},
    {"sgd(lr = 0.05, momentum = 0.9)", "constant", SGD, 0.05, 0.9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
     {"w:momentum_buffer"}},
    {"sgd(lr = 0.05, momentum = 0.8, nesterov = true, weight_decay = 0.01)", "constant", SGD, 0.05,
     0.8, 0.01, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, {"w:momentum_buffer"}},
    {"adagrad(lr = 0.1)", "constant", ADAGRAD, 0.1, 0, 0, 0, 0, 1e-10, 0, 0, 0, 0, 0, 0, 0, {"w:sum"}},
    {"adagrad(lr = 0.2, eps = 1e-3, weight_decay = 0.1)", "constant", ADAGRAD, 0.2, 0, 0.1, 0, 0, 1e-3,
     0, 0, 0, 0, 0, 0, 0, {"w:sum"}},
    {"rmsprop()", "constant", RMSPROP, 0.01, 0, 0, 0, 0, 1e-8, 0.99, 0, 0, 0, 0, 0, 0, {"w:square_avg"}},
    {"rmsprop(lr = 0.02, alpha = 0.9, momentum = 0.5)", "constant", RMSPROP, 0.02, 0.5, 0, 0, 0, 1e-8,
     0.9, 0, 0, 0, 0, 0, 0, {"w:square_avg", "w:momentum_buffer"}},
    {"adam()", "constant", ADAM, 1e-3, 0, 0, 0.9, 0.999, 1e-8, 0, 0, 0, 0, 0, 0, 0,
     {"w:exp_avg", "w:exp_avg_sq"}},
    {"adam(lr = 0.05, beta1 = 0.5, beta2 = 0.9, eps = 1e-6, weight_decay = 0.1)", "constant", ADAM, 0.05,
     0, 0.1, 0.5, 0.9, 1e-6, 0, 0, 0, 0, 0, 0, 0, {"w:exp_avg", "w:exp_avg_sq"}},
    {"adamw(lr = 0.05)", "constant", ADAMW, 0.05, 0, 0.01, 0.9, 0.999, 1e-8, 0, 0, 0, 0, 0, 0, 0,
     {"w:exp_avg", "w:exp_avg_sq"}},
    {"sgd(lr = 0.1)", "step(every = 2, gamma = 0.5)", SGD, 0.1, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0.5, 0, 0, {NULL}},
    {"adam(lr = 0.1)", "cosine(warmup = 3)", ADAM, 0.1, 0, 0, 0.9, 0.999, 1e-8, 0, 0, 2, 0, 0, 3, 10,
     {"w:exp_avg"}},
    {"sgd(lr = 0.1)", "cosine", SGD, 0.1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 5, {NULL}},
};
#define N_CASES ((int)(sizeof cases / sizeof cases[0]))

/* The learning rate of step t (1-based), as a scheduler would set it. */
static double lr_at(const OptCase *c, int t) {
  if (c->sched == 1) return c->lr * pow(c->gamma, floor((t - 1) / (double)c->every));
  if (c->sched == 2) {
    if (t <= c->warmup) return c->lr * t / (double)c->warmup;
    double span = fmax(c->total - c->warmup, 1);
    double progress = fmin((t - 1 - c->warmup) / span, 1);
    return c->lr * 0.5 * (1 + cos(M_PI * progress));
  }
  return c->lr;
}

/* PyTorch's algorithms, as documented for torch.optim (no dampening, no
 * lr_decay, not centered, no amsgrad). */
static void reference_step(const OptCase *c, int t, double *w, const double *target, double *s1,
                           double *s2) {
  double lr = lr_at(c, t);
  for (int i = 0; i < N; i++) {
    double g = w[i] - target[i];
    switch (c->kind) {
    case SGD:
      if (c->wd) g += c->wd * w[i];
      if (c->momentum) {
        s1[i] = t == 1 ? g : c->momentum * s1[i] + g;
        g = c->nesterov ? g + c->momentum * s1[i] : s1[i];
      }
      w[i] -= lr * g;
      break;
    case ADAGRAD:
      if (c->wd) g += c->wd * w[i];
      s1[i] += g * g;
      w[i] -= lr * g / (sqrt(s1[i]) + c->eps);
      break;
    case RMSPROP: {
      s1[i] = c->alpha * s1[i] + (1 - c->alpha) * g * g;
      double avg = sqrt(s1[i]) + c->eps;
      if (c->momentum > 0) {
        s2[i] = c->momentum * s2[i] + g / avg;
        w[i] -= lr * s2[i];
      } else {
        w[i] -= lr * g / avg;
      }
      break;
    }
    case ADAM:
    case ADAMW: {
      if (c->kind == ADAMW) w[i] *= 1 - lr * c->wd;
      else if (c->wd) g += c->wd * w[i];
      s1[i] = c->b1 * s1[i] + (1 - c->b1) * g;
      s2[i] = c->b2 * s2[i] + (1 - c->b2) * g * g;
      double bc1 = 1 - pow(c->b1, t), bc2 = 1 - pow(c->b2, t);
      double denom = sqrt(s2[i]) / sqrt(bc2) + c->eps;
      w[i] -= lr / bc1 * s1[i] / denom;
      break;
    }
    }
  }
}

START_TEST(optimizer_matches_pytorch) {
  const OptCase *c = &cases[_i];
  char src[1024];
  snprintf(src, sizeof src,
           "model m {\n input x: f32[4, 1]\n input y: f32[4, 1]\n param w: f32[%d] = zeros()\n"
           " input t: f32[%d]\n loss 0.5 * sum(square(w - t))\n}\n"
           "train m {\n data = sine(n = 64)\n optimizer = %s\n schedule = %s\n}\n",
           N, N, c->optimizer, c->schedule);
  /* sine feeds x and y, which the train block needs; the loss ignores them */
  Arena arena = {0};
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(errors == 0, "%s\n%s", src, diag);
  free(diag);
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), null);
  PassOptions po = {.verify_each = true, .out = null};
  ck_assert(pass_run_pipeline(m, &d, &po));
  fclose(null);
  Graph *g = NULL;
  for (int i = 0; i < m->n_graphs; i++)
    if (m->graphs[i]->training) g = m->graphs[i];
  ck_assert_ptr_nonnull(g);
  for (int k = 0; k < 3 && c->slots[k]; k++)
    ck_assert_msg(ir_find_var(g, c->slots[k]), "%s: no state '%s'", c->optimizer, c->slots[k]);
  ck_assert_ptr_nonnull(ir_find_var(g, "train:step"));
  ck_assert_ptr_nonnull(ir_find_var(g, "train:lr"));

  Interp *in = interp_new(g, false);
  interp_init(in, 3);
  Node *w = ir_find_var(g, "w"), *t = ir_find_var(g, "t");
  double ref[N], target[N], s1[N] = {0}, s2[N] = {0};
  for (int i = 0; i < N; i++) {
    ref[i] = interp_var(in, w)[i] = 0.3 * i - 0.4;
    target[i] = interp_var(in, t)[i] = 1.0 - 0.7 * i;
  }
  interp_var(in, ir_find_var(g, "train:lr"))[0] = c->lr;  /* exact, not rounded to f32 */
  Node *total = ir_find_var(g, "train:total_steps");
  if (total) interp_var(in, total)[0] = c->total;
  char err[128];
  for (int step = 1; step <= STEPS; step++) {
    ck_assert(interp_run(in, INTERP_ASSIGN | INTERP_UPDATE, err, sizeof err) == 0);
    reference_step(c, step, ref, target, s1, s2);
    const double *got = interp_var(in, w);
    for (int i = 0; i < N; i++)
      ck_assert_msg(fabs(got[i] - ref[i]) <= 1e-9 * fmax(1, fabs(ref[i])),
                    "%s %s: step %d w[%d] = %.15g, PyTorch's rule gives %.15g", c->optimizer,
                    c->schedule, step, i, got[i], ref[i]);
  }
  ck_assert_double_eq_tol(interp_var(in, ir_find_var(g, "train:step"))[0], STEPS, 1e-15);
  interp_free(in);
  arena_free(&arena);
}
END_TEST

/* set_hyper("lr") is a write to train:lr: the next step uses it. */
START_TEST(lr_is_a_state) {
  const char *src = "model m {\n param w: f32[2] = ones()\n loss sum(w)\n}\n";
  Arena arena = {0};
  Module *m = tu_compile(&arena, src, NULL, NULL);
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), null);
  PassOptions po = {.out = null};
  ck_assert(pass_run_pipeline(m, &d, &po));
  fclose(null);
  Graph *g = m->graphs[m->n_graphs - 1];
  ck_assert(g->training);
  Interp *in = interp_new(g, false);
  interp_init(in, 1);
  Node *w = ir_find_var(g, "w"), *lr = ir_find_var(g, "train:lr");
  ck_assert_double_eq_tol(interp_var(in, lr)[0], 0.01, 1e-9);  /* no train block: sgd(0.01) */
  interp_var(in, lr)[0] = 0.25;
  char err[64];
  ck_assert(interp_run(in, INTERP_UPDATE, err, sizeof err) == 0);
  ck_assert_double_eq_tol(interp_var(in, w)[0], 0.75, 1e-12);
  interp_free(in);
  arena_free(&arena);
}
END_TEST

/* backward() applies assigns (running statistics) but never updates. */
START_TEST(batch_norm_running_stats) {
  const char *src = "model m {\n input x: f32[4, 2]\n y = batchnorm(x, momentum = 0.5)\n loss sum(y * y)\n}\n";
  Arena arena = {0};
  Module *m = tu_compile(&arena, src, NULL, NULL);
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), null);
  PassOptions po = {.out = null};
  ck_assert(pass_run_pipeline(m, &d, &po));
  fclose(null);
  Graph *g = m->graphs[m->n_graphs - 1];
  Interp *in = interp_new(g, false);
  interp_init(in, 1);
  double xs[8] = {1, 10, 2, 20, 3, 30, 6, 60};
  memcpy(interp_var(in, ir_find_var(g, "x")), xs, sizeof xs);
  char err[64];
  ck_assert(interp_run(in, INTERP_ASSIGN, err, sizeof err) == 0);
  const double *mean = interp_var(in, ir_find_var(g, "y.mean")), *var = interp_var(in, ir_find_var(g, "y.var"));
  /* channel 0: 1 2 3 6 -> mean 3, unbiased var 14/3; running = 0.5 old + 0.5 batch */
  ck_assert_double_eq_tol(mean[0], 1.5, 1e-12);
  ck_assert_double_eq_tol(mean[1], 15, 1e-12);
  ck_assert_double_eq_tol(var[0], 0.5 + 0.5 * 14.0 / 3.0, 1e-12);
  ck_assert_double_eq_tol(interp_var(in, ir_find_var(g, "y.gamma"))[0], 1, 1e-15);  /* no update */
  interp_free(in);
  arena_free(&arena);
}
END_TEST

int main(void) {
  Suite *s = suite_create("optimizers");
  TCase *tc = tcase_create("pytorch");
  tcase_add_loop_test(tc, optimizer_matches_pytorch, 0, N_CASES);
  tcase_add_test(tc, lr_is_a_state);
  tcase_add_test(tc, batch_norm_running_stats);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
