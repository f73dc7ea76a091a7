/* test_aot.c - `nncc model.nn -o model.so --header model.h` end to end:
 * the library depends on libc and libm only, a C program compiles
 * against the header and links the .so, and the library loaded through
 * nncc_module() trains, saves and loads with exactly the numbers of the
 * JIT (the same LLVM module, the same target). */
#include <check.h>
#include <dlfcn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "testutil.h"

static char dir[] = "/tmp/nncc_aot_XXXXXX";

static void run_ok(const char *cmd) {
  int st = system(cmd);
  ck_assert_msg(st == 0, "command failed (%d): %s", st, cmd);
}

/* Deterministic inputs, then steps of train_step; the losses and the
 * final parameters are what both builds must agree on. */
static void drive(const nncc_model_api *api, nncc_model *m, float *losses, int steps) {
  for (int i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    if (t->role != NNCC_INPUT) continue;
    int64_t n = 1;
    for (int d = 0; d < t->rank; d++) n *= t->shape[d];
    if (t->dtype == NNCC_I32) {
      int32_t *y = api->data(m, i);
      for (int64_t k = 0; k < n; k++) y[k] = (int32_t)(k * 7 % 10);
    } else {
      float *x = api->data(m, i);
      for (int64_t k = 0; k < n; k++) x[k] = (float)((k * 37 % 101) / 101.0);
    }
  }
  for (int s = 0; s < steps; s++) {
    ck_assert_int_eq(api->train_step(m), 0);
    int li = -1;
    for (int i = 0; i < api->n_tensors; i++)
      if (api->tensors[i].role == NNCC_LOSS) li = i;
    losses[s] = *(float *)api->data(m, li);
  }
}

START_TEST(library_matches_jit) {
  ck_assert_ptr_nonnull(mkdtemp(dir));
  char args[1024];
  snprintf(args, sizeof args, "-D B=8 %s/examples/mlp.nn -o %s/mlp.so --header %s/mlp.h", NNCC_SOURCE_DIR, dir, dir);
  TuRun r = tu_run(args, 300);
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);

  /* libc and libm only */
  char cmd[2048];
  snprintf(cmd, sizeof cmd, "ldd %s/mlp.so | grep -v -E 'linux-vdso|libc.so|libm.so|ld-linux' | grep -q . && exit 1; exit 0", dir);
  run_ok(cmd);

  /* a C program against the header, linked with the .so */
  snprintf(cmd, sizeof cmd,
           "cat > %s/main.c <<'X'\n#include \"mlp.h\"\n#include <stdio.h>\nint main(void) {\n"
           "  const nncc_model_api *api = nncc_module(NULL);\n  nncc_model *m = api->create(1);\n"
           "  float *x = api->data(m, MLP_X);\n  for (int i = 0; i < 8 * 784; i++) x[i] = 0.5f;\n"
           "  int rc = api->train_step(m);\n  printf(\"%%d %%s %%g\\n\", rc, api->name, *(float *)api->data(m, MLP_LOSS));\n"
           "  api->destroy(m);\n  return rc || MLP_N_TENSORS != api->n_tensors;\n}\nX\n"
           "cc -std=c11 -Wall -Werror -o %s/main %s/main.c %s/mlp.so && cd %s && ./main",
           dir, dir, dir, dir, dir);
  run_ok(cmd);

  /* the library through dlopen vs the JIT, same inputs and seed */
  char so[600];
  snprintf(so, sizeof so, "%s/mlp.so", dir);
  void *h = dlopen(so, RTLD_NOW | RTLD_LOCAL);
  ck_assert_msg(h != NULL, "%s", dlerror());
  const nncc_model_api *(*entry)(const char *) = (const nncc_model_api *(*)(const char *))dlsym(h, "nncc_module");
  ck_assert_ptr_nonnull(entry);
  const nncc_model_api *lib = entry("mlp");
  ck_assert_ptr_nonnull(lib);
  ck_assert_ptr_eq(entry(NULL), lib);
  ck_assert_ptr_null(entry("nosuch"));
  ck_assert_int_eq(lib->abi_version, NNCC_ABI_VERSION);

  Arena a = {0};
  char *src = tu_read_file(NNCC_SOURCE_DIR "/examples/mlp.nn", NULL);
  ConstOverride ov = {.name = "B", .is_int = true, .ival = 8, .value = 8};
  ElabOptions eo = {.overrides = &ov, .n_overrides = 1, .base_dir = "."};
  Diag d;
  diag_init(&d, "mlp.nn", src, strlen(src), stderr);
  Module *mod = frontend_compile(&a, &d, &eo, NULL);
  ck_assert(mod && d.n_errors == 0);
  PassOptions po = {0};
  ck_assert(pass_run_pipeline(mod, &d, &po));
  char err[512];
  CgOptions co = {.opt_level = 2};
  CgJit *jit = cg_jit_new(mod, &co, err, sizeof err);
  ck_assert_msg(jit != NULL, "%s", err);
  const nncc_model_api *jt = cg_jit_model(jit, "mlp");
  ck_assert_int_eq(jt->n_tensors, lib->n_tensors);

  nncc_model *ml = lib->create(42), *mj = jt->create(42);
  float ll[4], lj[4];
  drive(lib, ml, ll, 4);
  drive(jt, mj, lj, 4);
  for (int s = 0; s < 4; s++) ck_assert_msg(ll[s] == lj[s], "step %d: library %g, JIT %g", s, ll[s], lj[s]);
  for (int i = 0; i < lib->n_tensors; i++) {
    const nncc_tensor_info *t = &lib->tensors[i];
    ck_assert_str_eq(t->name, jt->tensors[i].name);
    if (t->role != NNCC_PARAM) continue;
    int64_t n = 1;
    for (int k = 0; k < t->rank; k++) n *= t->shape[k];
    ck_assert_msg(!memcmp(lib->data(ml, i), jt->data(mj, i), (size_t)n * 4), "param %s differs", t->name);
  }
  /* save from the library, load into the JIT: the next step agrees */
  char ck[700];
  snprintf(ck, sizeof ck, "%s/ck.safetensors", dir);
  ck_assert_int_eq(lib->save(ml, ck), 0);
  nncc_model *mj2 = jt->create(7);
  ck_assert_msg(jt->load(mj2, ck) == 0, "%s", jt->last_error(mj2));
  drive(lib, ml, ll, 1);
  drive(jt, mj2, lj, 1);
  ck_assert_msg(ll[0] == lj[0], "after load: library %g, JIT %g", ll[0], lj[0]);
  lib->destroy(ml);
  jt->destroy(mj);
  jt->destroy(mj2);
  cg_jit_free(jit);
  arena_free(&a);
  free(src);
  dlclose(h);
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  run_ok(cmd);
}
END_TEST

int main(void) {
  Suite *s = suite_create("aot");
  TCase *tc = tcase_create("so");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, library_matches_jit);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
