/* test_libnncc.c - the library API (tools/libnncc.h): compile a string or
 * a file, then drive the model only through its nncc_model_api, as an
 * application would; diagnostics and -D defines; and gradcheck of the
 * compiled gradients (`nncc gradcheck --jit`), which must pass and must
 * catch a gradient rule broken on purpose (ad_test_broken_op, reachable
 * from tests only). */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "eval/eval.h"
#include "passes/passes.h"
#include "testutil.h"
#include "tools/libnncc.h"

/* The tensor named `name`, or fails the test. */
static int tensor(const nncc_model_api *api, const char *name) {
  for (int i = 0; i < api->n_tensors; i++)
    if (!strcmp(api->tensors[i].name, name)) return i;
  ck_abort_msg("no tensor '%s' in model '%s'", name, api->name);
  return -1;
}

static int loss_tensor(const nncc_model_api *api) {
  for (int i = 0; i < api->n_tensors; i++)
    if (api->tensors[i].role == NNCC_LOSS) return i;
  ck_abort_msg("model '%s' has no loss", api->name);
  return -1;
}

/* A linear regression: y = 2 x0 - x1 + 0.5 exactly representable. */
static const char *const linear_src =
    "const B = 8\n"
    "model lin {\n"
    "  input x: f32[B, 2]\n"
    "  input y: f32[B, 1]\n"
    "  pred = dense(x, 1)\n"
    "  output pred\n"
    "  loss mse(pred, y)\n"
    "}\n";

START_TEST(string_model_forward_and_training) {
  char *diag = (char *)"untouched";
  nncc_jit *j = nncc_compile_string("lin.nn", linear_src, NULL, &diag);
  ck_assert_msg(j != NULL, "%s", diag);
  ck_assert_ptr_null(diag);  /* nothing to report */
  const nncc_model_api *api = nncc_jit_model(j, NULL);
  ck_assert_ptr_nonnull(api);
  ck_assert_int_eq(api->abi_version, NNCC_ABI_VERSION);
  ck_assert_str_eq(api->name, "lin");
  ck_assert_ptr_eq(nncc_jit_model(j, "lin"), api);
  ck_assert_ptr_null(nncc_jit_model(j, "other"));

  nncc_model *m = api->create(1);
  ck_assert_ptr_nonnull(m);
  int x = tensor(api, "x"), y = tensor(api, "y"), w = tensor(api, "pred.w"), b = tensor(api, "pred.b");
  int pred = -1, loss = loss_tensor(api);
  for (int i = 0; i < api->n_tensors; i++)
    if (api->tensors[i].role == NNCC_OUTPUT) pred = i;
  ck_assert_int_ge(pred, 0);
  float *xv = api->data(m, x), *yv = api->data(m, y);
  for (int r = 0; r < 8; r++) {
    xv[2 * r] = (float)(r - 4) * 0.25f;
    xv[2 * r + 1] = (float)((r * 3) % 5) * 0.5f - 1.0f;
    yv[r] = 2 * xv[2 * r] - xv[2 * r + 1] + 0.5f;
  }
  /* forward with known weights: pred = x @ [1, 2] + 0.5 */
  float *wv = api->data(m, w), *bv = api->data(m, b);
  wv[0] = 1, wv[1] = 2, bv[0] = 0.5f;
  ck_assert_int_eq(api->forward(m), 0);
  const float *pv = api->data(m, pred);
  for (int r = 0; r < 8; r++)
    ck_assert_float_eq_tol(pv[r], xv[2 * r] + 2 * xv[2 * r + 1] + 0.5f, 1e-6f);

  /* 50 steps of plain SGD (no train block) must bring the loss down */
  ck_assert_int_eq(api->set_hyper(m, "lr", 0.2), 0);
  ck_assert_int_eq(api->train_step(m), 0);
  float first = *(float *)api->data(m, loss);
  for (int s = 1; s < 50; s++) ck_assert_int_eq(api->train_step(m), 0);
  ck_assert_int_eq(api->evaluate(m), 0);
  float last = *(float *)api->data(m, loss);
  ck_assert_msg(first > 0.1f && last < first * 0.05f, "loss %g -> %g after 50 steps", first, last);
  ck_assert_float_eq_tol(wv[0], 2.0f, 0.2f);
  ck_assert_float_eq_tol(wv[1], -1.0f, 0.2f);
  /* backward fills the gradients without moving the params */
  float w0 = wv[0];
  ck_assert_int_eq(api->backward(m), 0);
  ck_assert_ptr_nonnull(api->grad(m, w));
  ck_assert_float_eq(wv[0], w0);
  api->destroy(m);
  nncc_jit_free(j);
}
END_TEST

START_TEST(compile_error_gives_located_diagnostics) {
  const char *src = "model m {\n  input x: f32[2, 3]\n  y = relu(xx)\n  output y\n}\n";
  char *diag = NULL;
  nncc_jit *j = nncc_compile_string("bad.nn", src, NULL, &diag);
  ck_assert_ptr_null(j);
  ck_assert_ptr_nonnull(diag);
  ck_assert_msg(strstr(diag, "bad.nn:3:12: error: ") != NULL, "%s", diag);
  ck_assert_msg(strstr(diag, "did you mean 'x'") != NULL, "%s", diag);
  /* the source line, and a caret under xx on the next */
  const char *xx = strstr(diag, "y = relu(xx)\n"), *line = xx;
  ck_assert_msg(xx != NULL, "%s", diag);
  xx += strlen("y = relu(");
  while (line > diag && line[-1] != '\n') line--;
  const char *caret = strchr(xx, '\n') + 1 + (xx - line);
  ck_assert_msg(*caret == '^', "%s", diag);
  free(diag);
  /* NULL diagnostics is allowed */
  ck_assert_ptr_null(nncc_compile_string("bad.nn", src, NULL, NULL));

  diag = NULL;
  ck_assert_ptr_null(nncc_compile_file("/nonexistent/model.nn", NULL, &diag));
  ck_assert_msg(diag && strstr(diag, "cannot read '/nonexistent/model.nn'"), "%s", diag);
  free(diag);
}
END_TEST

START_TEST(defines_override_constants) {
  const char *defs[] = {"B=5"};
  nncc_compile_options o = NNCC_COMPILE_DEFAULTS;
  o.defines = defs;
  o.n_defines = 1;
  o.opt_level = 1;
  char *diag = NULL;
  nncc_jit *j = nncc_compile_string("lin.nn", linear_src, &o, &diag);
  ck_assert_msg(j != NULL, "%s", diag);
  const nncc_model_api *api = nncc_jit_model(j, NULL);
  const nncc_tensor_info *x = &api->tensors[tensor(api, "x")];
  ck_assert_int_eq(x->rank, 2);
  ck_assert_int_eq(x->shape[0], 5);
  ck_assert_int_eq(x->shape[1], 2);
  nncc_jit_free(j);

  /* an integer outside int64 is an error, as in the driver (strtoll
   * clamps it: B would silently be INT64_MAX) */
  const char *unknown[] = {"C=5"}, *malformed[] = {"B"}, *not_number[] = {"B=five"},
             *too_large[] = {"B=99999999999999999999"};
  const char *const *bad[] = {unknown, malformed, not_number, too_large};
  const char *why[] = {"-D C: no constant with that name", "-D needs NAME=VALUE", "not a number",
                       "-D B=99999999999999999999: the integer is too large"};
  for (int k = 0; k < 4; k++) {
    o.defines = bad[k];
    diag = NULL;
    ck_assert_ptr_null(nncc_compile_string("lin.nn", linear_src, &o, &diag));
    ck_assert_msg(diag && strstr(diag, why[k]), "%s: %s", why[k], diag);
    free(diag);
  }
}
END_TEST

/* A target_cpu that is not a CPU of the host target is an error in the
 * diagnostics, not an abort inside LLVM (issue 8 item 8). */
START_TEST(unknown_target_cpu_is_an_error) {
  CgHostInfo info;
  char err[128];
  if (!cg_host_info(&info, err, sizeof err) || strncmp(info.triple, "x86_64", 6)) return;
  nncc_compile_options o = NNCC_COMPILE_DEFAULTS;
  o.target_cpu = "nvptx64";
  char *diag = NULL;
  ck_assert_ptr_null(nncc_compile_string("lin.nn", linear_src, &o, &diag));
  ck_assert_msg(diag && strstr(diag, "nncc: error: --target-cpu 'nvptx64' is not a CPU of x86-64;"), "%s", diag);
  free(diag);
  o.target_cpu = "x86-64-v2";
  diag = NULL;
  nncc_jit *j = nncc_compile_string("lin.nn", linear_src, &o, &diag);
  ck_assert_msg(j != NULL, "%s", diag);
  nncc_jit_free(j);
}
END_TEST

START_TEST(compile_file_sine) {
  char *diag = NULL;
  nncc_jit *j = nncc_compile_file(NNCC_SOURCE_DIR "/examples/sine.nn", NULL, &diag);
  ck_assert_msg(j != NULL, "%s", diag);
  free(diag);
  const nncc_model_api *api = nncc_jit_model(j, "sine");
  ck_assert_ptr_nonnull(api);
  ck_assert_ptr_eq(nncc_jit_model(j, NULL), api);
  int x = tensor(api, "x"), y = tensor(api, "y"), loss = loss_tensor(api);
  ck_assert_int_eq(api->tensors[x].shape[0], 64);
  nncc_model *m = api->create(3);
  float *xv = api->data(m, x), *yv = api->data(m, y);
  for (int r = 0; r < 64; r++) {
    xv[r] = (float)(r - 32) / 10.0f;
    yv[r] = sinf(xv[r]);
  }
  ck_assert_int_eq(api->train_step(m), 0);
  float first = *(float *)api->data(m, loss);
  for (int s = 0; s < 100; s++) ck_assert_int_eq(api->train_step(m), 0);
  float last = *(float *)api->data(m, loss);
  ck_assert_msg(isfinite(first) && last < first, "loss %g -> %g", first, last);
  api->destroy(m);
  nncc_jit_free(j);
  nncc_jit_free(NULL);
}
END_TEST

/* ------------------------------------------------------ check_numerics */

/* sqrt of a negative at line 5 (h is a tanh, so h - 100 < 0): a nan in
 * the middle of the forward pass, fused with the ops around it. */
static const char *const nan_src =
    "model m {\n"
    "  input x: f32[4, 3]\n"
    "  input y: f32[4, 2]\n"
    "  h = dense(x, 5, tanh)\n"
    "  s = sqrt(h - 100)\n"
    "  t = s * 2 + 1\n"
    "  pred = dense(t, 2)\n"
    "  output pred\n"
    "  loss mse(pred, y)\n"
    "}\n";

/* The forward pass is finite (sqrt(0) = 0) but sqrt's gradient at 0 is
 * inf: the first non-finite value is made by the backward pass. relu's
 * gradient then drops it, so without the flag this trains: the check
 * reports every nan or inf made, used or not (as JAX's debug_nans). */
static const char *const nan_backward_src =
    "model m {\n"
    "  input x: f32[4, 3]\n"
    "  input y: f32[4, 2]\n"
    "  h = dense(x, 5, tanh)\n"
    "  s = sqrt(relu(h - 5))\n"
    "  pred = dense(s + h, 2)\n"
    "  output pred\n"
    "  loss mse(pred, y)\n"
    "}\n";

static nncc_model *numerics_model(const char *src, bool check, nncc_jit **j, const nncc_model_api **api) {
  nncc_compile_options o = NNCC_COMPILE_DEFAULTS;
  o.check_numerics = check;
  char *diag = NULL;
  *j = nncc_compile_string("nan.nn", src, &o, &diag);
  ck_assert_msg(*j != NULL, "%s", diag);
  free(diag);
  *api = nncc_jit_model(*j, NULL);
  nncc_model *m = (*api)->create(1);
  float *x = (*api)->data(m, tensor(*api, "x"));
  for (int k = 0; k < 12; k++) x[k] = (float)(k % 5) * 0.3f - 0.6f;
  return m;
}

/* issue 8 item 10: a non-finite loss must be traceable to the op */
START_TEST(check_numerics_names_the_first_op) {
  nncc_jit *j;
  const nncc_model_api *api;
  /* without the flag: only the loss is checked, as before */
  nncc_model *m = numerics_model(nan_src, false, &j, &api);
  ck_assert_int_eq(api->forward(m), 0);
  ck_assert_int_eq(api->train_step(m), 4);
  ck_assert_msg(strstr(api->last_error(m), "non-finite loss (nan)"), "%s", api->last_error(m));
  api->destroy(m);
  nncc_jit_free(j);

  m = numerics_model(nan_src, true, &j, &api);
  ck_assert_int_eq(api->forward(m), 4);
  ck_assert_msg(strstr(api->last_error(m), "non-finite value (nan) first produced by 's' (sqrt, nan.nn:5:7)"), "%s",
                api->last_error(m));
  ck_assert_int_eq(api->evaluate(m), 4);
  ck_assert_msg(strstr(api->last_error(m), "by 's' (sqrt, nan.nn:5:7)"), "%s", api->last_error(m));
  ck_assert_int_eq(api->train_step(m), 4);
  ck_assert_msg(strstr(api->last_error(m), "non-finite value (nan) first produced by 's' (sqrt, nan.nn:5:7) at step 0"),
                "%s", api->last_error(m));
  /* the step's update is kept (nan): now the first matmul makes one */
  ck_assert_int_eq(api->evaluate(m), 4);
  ck_assert_msg(strstr(api->last_error(m), "(matmul, nan.nn:4:7) at step 1"), "%s", api->last_error(m));
  api->destroy(m);
  nncc_jit_free(j);

  m = numerics_model(nan_backward_src, true, &j, &api);
  ck_assert_int_eq(api->forward(m), 0);  /* finite */
  ck_assert_int_eq(api->backward(m), 4);
  ck_assert_msg(strstr(api->last_error(m), "nan.nn:5:") && strstr(api->last_error(m), "backward pass)"), "%s",
                api->last_error(m));
  api->destroy(m);
  nncc_jit_free(j);
}
END_TEST

/* The same through a shared library (cg_write_library): the node table
 * and the slot travel in the descriptor as data. */
START_TEST(check_numerics_in_a_library) {
  Arena a = {0};
  char *diag = NULL;
  int errors = 0;
  Module *mod = tu_compile(&a, nan_src, &diag, &errors);
  ck_assert_msg(errors == 0, "%s", diag);
  free(diag);
  Diag d;
  diag_init(&d, "nan.nn", nan_src, strlen(nan_src), stderr);
  PassOptions po = {.out = stderr};
  ck_assert(pass_run_pipeline(mod, &d, &po));
  char dir[] = "/tmp/nncc_numerics_XXXXXX", so[64], rt[600], err[512];
  ck_assert_ptr_nonnull(mkdtemp(dir));
  snprintf(so, sizeof so, "%s/m.so", dir);
  snprintf(rt, sizeof rt, "%s", NNCC_BIN);
  snprintf(strrchr(rt, '/') + 1, sizeof rt - (size_t)(strrchr(rt, '/') + 1 - rt), "libnncc_rt.a");
  CgOptions co = {.opt_level = 1, .check_numerics = true, .source_name = "nan.nn"};
  CgLibrary lib = {.so_path = so, .runtime_lib = rt};
  ck_assert_msg(cg_write_library(mod, &co, &lib, err, sizeof err) == 0, "%s", err);
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "%s", dlerror());
  const nncc_model_api *(*entry)(const char *) = (const nncc_model_api *(*)(const char *))dlsym(h, "nncc_module");
  const nncc_model_api *api = entry(NULL);
  nncc_model *m = api->create(1);
  float *x = api->data(m, tensor(api, "x"));
  for (int k = 0; k < 12; k++) x[k] = (float)(k % 5) * 0.3f - 0.6f;
  ck_assert_int_eq(api->train_step(m), 4);
  ck_assert_msg(strstr(api->last_error(m), "first produced by 's' (sqrt, nan.nn:5:7) at step 0"), "%s",
                api->last_error(m));
  api->destroy(m);
  dlclose(h);
  unlink(so);
  rmdir(dir);
  arena_free(&a);
}
END_TEST

/* ------------------------------------------ gradcheck of compiled code */

static const char *const tanh_src =
    "model t {\n"
    "  input x: f32[4, 3]\n"
    "  input y: i32[4]\n"
    "  h = dense(x, 5, tanh)\n"
    "  logits = dense(h, 3)\n"
    "  output logits\n"
    "  loss cross_entropy(logits, y)\n"
    "}\n";

/* eval_gradcheck of tanh_src's compiled model; the rule of `broken` is
 * wrong while the JIT compiles and, with broken_reference, while the
 * reference differentiates too. */
static int gradcheck_jit(int broken, bool broken_reference, char **report) {
  Arena a = {0};
  char *diag = NULL;
  int errors = 0;
  Module *mod = tu_compile(&a, tanh_src, &diag, &errors);
  ck_assert_msg(errors == 0, "%s", diag);
  free(diag);
  Diag d;
  diag_init(&d, "test.nn", tanh_src, strlen(tanh_src), stderr);
  PassOptions po = {.stop_after = "lower", .out = stderr};
  ck_assert(pass_run_pipeline(mod, &d, &po));
  Graph *g = NULL;
  for (int i = 0; i < mod->n_graphs; i++)
    if (mod->graphs[i]->training) g = mod->graphs[i];
  ck_assert_ptr_nonnull(g);

  ad_test_broken_op = broken;
  nncc_jit *j = nncc_compile_string("test.nn", tanh_src, NULL, NULL);
  ck_assert_ptr_nonnull(j);
  if (!broken_reference) ad_test_broken_op = -1;
  size_t len = 0;
  FILE *out = open_memstream(report, &len);
  GradcheckOptions o = {.seed = 5, .eps = 1e-6, .rtol = 1e-5, .atol = 1e-8, .out = out, .path = "test.nn",
                        .jit = nncc_jit_model(j, "t"), .jit_rtol = 1e-2, .jit_atol = 1e-5};
  int rc = eval_gradcheck(g, &o);
  fclose(out);
  ad_test_broken_op = -1;
  nncc_jit_free(j);
  arena_free(&a);
  return rc;
}

START_TEST(gradcheck_jit_agrees) {
  char *report = NULL;
  int rc = gradcheck_jit(-1, false, &report);
  ck_assert_msg(rc == 0, "%s", report);
  ck_assert_msg(strstr(report, "through the JIT") && strstr(report, "h.w ") && strstr(report, "x (input)"),
                "%s", report);
  ck_assert_msg(!strstr(report, "FAIL"), "%s", report);
  free(report);
}
END_TEST

START_TEST(gradcheck_jit_catches_a_wrong_rule) {
  char *report = NULL;
  int rc = gradcheck_jit(OP_TANH, true, &report);
  ck_assert_msg(rc == 1, "gradcheck --jit passed with a broken tanh rule:\n%s", report);
  ck_assert_msg(strstr(report, "FAIL"), "%s", report);
  ck_assert_msg(strstr(report, "made by the gradient rule of 'tanh' at test.nn:4:"), "%s", report);
  free(report);
  /* only the compiled code wrong: the float64 reference is right */
  rc = gradcheck_jit(OP_TANH, false, &report);
  ck_assert_msg(rc == 1, "%s", report);
  ck_assert_msg(strstr(report, "the compiled gradients are wrong"), "%s", report);
  free(report);
}
END_TEST

static Suite *libnncc_suite(void) {
  Suite *s = suite_create("libnncc");
  TCase *tc = tcase_create("api");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, string_model_forward_and_training);
  tcase_add_test(tc, compile_error_gives_located_diagnostics);
  tcase_add_test(tc, defines_override_constants);
  tcase_add_test(tc, compile_file_sine);
  tcase_add_test(tc, unknown_target_cpu_is_an_error);
  tcase_add_test(tc, check_numerics_names_the_first_op);
  tcase_add_test(tc, check_numerics_in_a_library);
  suite_add_tcase(s, tc);
  tc = tcase_create("gradcheck_jit");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, gradcheck_jit_agrees);
  tcase_add_test(tc, gradcheck_jit_catches_a_wrong_rule);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(libnncc_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
