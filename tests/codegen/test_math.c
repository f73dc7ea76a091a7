/* test_math.c - the inline log, log1p and erf of codegen/emit_math.c
 * against libm in double. One evaluation graph, built as IR, holds log,
 * erf and softplus (the way to log1p: log1p(e^x)) of one input of 2^17
 * floats: every binade of both signs, denormals included, a dense sweep
 * of [-6, 6] and the special values. It is JIT-compiled at the default
 * -O level, so the fast-math flags and the vectorized loop are the ones
 * real models get. The bounds are what the code meets, with a little
 * room (measured: log 1.55 ulp, erf 3.3e-7 absolute). */
#include <check.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "testutil.h"

#define N (1 << 17)

static const float specials[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, FLT_MIN, FLT_MAX, 0x1p-149f,
                                 -0x1p-149f, 1.0f, -1.0f, 4.0f, -4.0f, 20.0f, -20.0f, 0x1p-24f};
#define N_SPECIALS ((int)(sizeof specials / sizeof specials[0]))

static float bits_to_float(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

/* [0, N/2): positive bit patterns evenly spaced from the smallest
 * denormal to FLT_MAX; [N/2, 3N/4): the same, negative; then [-6, 6]
 * evenly; the specials last. */
static void fill_inputs(float *x) {
  const uint32_t max_bits = 0x7f7fffffu;
  int k = 0;
  for (int i = 0; i < N / 2; i++) x[k++] = bits_to_float(1 + (uint32_t)((uint64_t)i * (max_bits - 1) / (N / 2 - 1)));
  for (int i = 0; i < N / 4; i++) x[k++] = -bits_to_float(1 + (uint32_t)((uint64_t)i * (max_bits - 1) / (N / 4 - 1)));
  int dense = N / 4 - N_SPECIALS;
  for (int i = 0; i < dense; i++) x[k++] = (float)(-6.0 + 12.0 * i / (dense - 1));
  for (int i = 0; i < N_SPECIALS; i++) x[k++] = specials[i];
}

/* The spacing of floats at |r| (denormal spacing below FLT_MIN). */
static double ulp(double r) {
  double a = fabs(r);
  if (a < FLT_MIN) return 0x1p-149;
  if (a > FLT_MAX) a = FLT_MAX;
  int e;
  frexp(a, &e);
  return ldexp(1.0, e - 24);
}

static bool same(double got, double want) {
  return isnan(want) ? isnan(got) : got == want;
}

/* ------------------------------------------------------------- the JIT */

static Arena arena;
static float xs[N];
static const float *out_log, *out_erf, *out_softplus;
static CgJit *jit;
static const nncc_model_api *api;
static nncc_model *model;

static void output(Graph *g, Op op, Node *x, int index, const char *name) {
  Node *n = ir_node_new(g, op, &x, 1, (SrcLoc){1, 1});
  ck_assert(ir_infer(n, NULL));
  n->roles |= ROLE_OUTPUT;
  n->out_index = index;
  n->out_name = name;
}

static int32_t tensor_index(const char *name) {
  for (int32_t i = 0; i < api->n_tensors; i++)
    if (!strcmp(api->tensors[i].name, name)) return i;
  ck_abort_msg("no tensor %s", name);
  return -1;
}

/* Runs log, erf and softplus of xs once for all the tests. */
static void setup(void) {
  Graph *g = ir_graph_new(&arena, "m");
  g->model = "m";
  Node *x = ir_var(g, "x", ROLE_INPUT, type_make(DT_F32, 1, (int64_t[]){N}), (SrcLoc){1, 1});
  output(g, OP_LOG, x, 0, "log");
  output(g, OP_ERF, x, 1, "erf");
  output(g, OP_SOFTPLUS, x, 2, "softplus");
  Module *m = ARENA_NEW(&arena, Module);
  m->arena = &arena;
  ir_module_add(m, g);
  char err[512];
  jit = cg_jit_new(m, NULL, err, sizeof err);
  ck_assert_msg(jit, "cg_jit_new: %s", err);
  api = cg_jit_model(jit, "m");
  model = api->create(1);
  fill_inputs(xs);
  memcpy(api->data(model, tensor_index("x")), xs, sizeof xs);
  ck_assert_int_eq(api->forward(model), 0);
  out_log = api->data(model, tensor_index("log"));
  out_erf = api->data(model, tensor_index("erf"));
  out_softplus = api->data(model, tensor_index("softplus"));
}

static void teardown(void) {
  api->destroy(model);
  cg_jit_free(jit);
  arena_free(&arena);
  memset(&arena, 0, sizeof arena);
}

/* --------------------------------------------------------------- tests */

START_TEST(log_within_2_ulp) {
  double worst = 0;
  float at = 0;
  for (int k = 0; k < N; k++) {
    double x = xs[k], want = log(x), got = out_log[k];
    if (!isfinite(want)) {
      ck_assert_msg(same(got, want), "log(%a) = %a, want %a", x, got, want);
      continue;
    }
    double e = fabs(got - want) / ulp(want);
    if (e > worst) worst = e, at = xs[k];
  }
  printf("log: max %.2f ulp at %a\n", worst, (double)at);
  ck_assert_msg(worst < 2, "log: %.2f ulp at %a", worst, (double)at);
}
END_TEST

START_TEST(log_special_values) {
  for (int k = N - N_SPECIALS; k < N; k++) {
    double x = xs[k], got = out_log[k];
    if (x == 0) ck_assert_msg(got == -INFINITY, "log(%g) = %g", x, got);
    if (x < 0 || isnan(x)) ck_assert_msg(isnan(got), "log(%g) = %g", x, got);
    if (x == INFINITY) ck_assert_msg(got == INFINITY, "log(inf) = %g", got);
    if (x == 1) ck_assert_msg(got == 0, "log(1) = %g", got);
    if (x == 0x1p-149) ck_assert_msg(got == (float)log(0x1p-149), "log(2^-149) = %a", got);
  }
}
END_TEST

/* absolute error everywhere; relative error where erf is small (down
 * to 2^-100: the code must not flush small results) */
START_TEST(erf_within_4e_7) {
  double worst_abs = 0, worst_rel = 0;
  float at_abs = 0, at_rel = 0;
  for (int k = 0; k < N; k++) {
    double x = xs[k], want = erf(x), got = out_erf[k];
    if (isnan(x)) continue;
    double e = fabs(got - want);
    if (e > worst_abs) worst_abs = e, at_abs = xs[k];
    if (fabs(x) >= 0x1p-100 && fabs(x) < 1 && e / fabs(want) > worst_rel) worst_rel = e / fabs(want), at_rel = xs[k];
  }
  printf("erf: max abs %.3g at %a, max rel (2^-100 <= |x| < 1) %.3g at %a\n", worst_abs, (double)at_abs,
         worst_rel, (double)at_rel);
  ck_assert_msg(worst_abs < 4e-7, "erf: abs error %.3g at %a", worst_abs, (double)at_abs);
  ck_assert_msg(worst_rel < 4e-7, "erf: rel error %.3g at %a", worst_rel, (double)at_rel);
}
END_TEST

START_TEST(erf_special_values) {
  for (int k = N - N_SPECIALS; k < N; k++) {
    double x = xs[k], got = out_erf[k];
    if (isnan(x)) ck_assert_msg(isnan(got), "erf(nan) = %g", got);
    if (isinf(x)) ck_assert_msg(got == (x > 0 ? 1 : -1), "erf(%g) = %a", x, got);
    if (x == 0) ck_assert_msg(got == 0, "erf(0) = %g", got);
  }
}
END_TEST

/* softplus = log1p(e^x) up to 20 (x beyond): log1p sees (0, e^20], and
 * tiny arguments for very negative x, where the plain log(1 + y) would
 * give 0. The bound includes exp's error (1.3 ulp). Below -87.3 exp
 * stops at FLT_MIN, so there only the absolute error is small. */
START_TEST(softplus_within_4_ulp) {
  double worst = 0;
  float at = 0;
  for (int k = 0; k < N; k++) {
    double x = xs[k], want = fmax(x, 0) + log1p(exp(-fabs(x))), got = out_softplus[k];
    if (!isfinite(x)) continue;
    double e = fabs(got - want) / ulp(want);
    if (x < -87.3) {
      ck_assert_msg(fabs(got - want) < 0x1p-125, "softplus(%a) = %a, want %a", x, got, want);
      continue;
    }
    if (e > worst) worst = e, at = xs[k];
  }
  printf("softplus: max %.2f ulp at %a\n", worst, (double)at);
  ck_assert_msg(worst < 4, "softplus: %.2f ulp at %a", worst, (double)at);
}
END_TEST

START_TEST(softplus_special_values) {
  for (int k = N - N_SPECIALS; k < N; k++) {
    double x = xs[k], got = out_softplus[k];
    if (isnan(x)) ck_assert_msg(isnan(got), "softplus(nan) = %g", got);
    if (x == INFINITY) ck_assert_msg(got == INFINITY, "softplus(inf) = %g", got);
    /* emit_exp clamps its argument at -87.3: e^x stays near FLT_MIN */
    if (x == -INFINITY) ck_assert_msg(got >= 0 && got < 0x1p-125, "softplus(-inf) = %g", got);
    if (x == 0) ck_assert_msg(got == (float)M_LN2, "softplus(0) = %a", got);
  }
}
END_TEST

int main(void) {
  Suite *s = suite_create("math");
  TCase *tc = tcase_create("libm");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, log_within_2_ulp);
  tcase_add_test(tc, log_special_values);
  tcase_add_test(tc, erf_within_4e_7);
  tcase_add_test(tc, erf_special_values);
  tcase_add_test(tc, softplus_within_4_ulp);
  tcase_add_test(tc, softplus_special_values);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
