/* test_target.c - the host target as LLVM sees it: a native target
 * exists, the CPU has a name, and LLVM is the version the build chose;
 * --target-cpu names are checked against the host target's CPUs, and
 * every name that passes really compiles (issue 8 item 8: 'bogus' and
 * 'nvptx64' aborted inside LLVM). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "testutil.h"

static bool host_is_x86_64(void) {
  CgHostInfo info;
  char err[128];
  return cg_host_info(&info, err, sizeof err) && !strncmp(info.triple, "x86_64", 6);
}

START_TEST(host_target_is_known) {
  CgHostInfo info;
  char err[128] = "";
  ck_assert_msg(cg_host_info(&info, err, sizeof err), "%s", err);
  ck_assert_msg(info.llvm_version[0] >= '1' && strchr(info.llvm_version, '.'), "%s", info.llvm_version);
  ck_assert_int_ge(atoi(info.llvm_version), 17); /* LLVM 14 must never be picked */
  ck_assert(strlen(info.triple) > 0);
  ck_assert(strlen(info.cpu) > 0);
  ck_assert(info.vector_bits == 128 || info.vector_bits == 256 || info.vector_bits == 512);
}
END_TEST

START_TEST(target_cpu_names_are_checked) {
  char msg[2048];
  ck_assert(cg_target_cpu_check(NULL, msg, sizeof msg));
  ck_assert(cg_target_cpu_check("native", msg, sizeof msg));
  if (!host_is_x86_64()) return;  /* the list is x86-64's */
  ck_assert(cg_target_cpu_check("x86-64-v3", msg, sizeof msg));
  ck_assert(cg_target_cpu_check("znver4", msg, sizeof msg));
  /* unknown: every CPU listed, for want of a close one */
  ck_assert(!cg_target_cpu_check("bogus", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "--target-cpu 'bogus' is not a CPU of x86-64; the CPUs are native, alderlake,"), "%s",
                msg);
  ck_assert_msg(strstr(msg, "skylake-avx512") && strstr(msg, "znver5"), "%s", msg);
  /* another target's, and a 32-bit x86 one: LLVM aborted on both */
  ck_assert(!cg_target_cpu_check("nvptx64", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "'nvptx64' is not a CPU of x86-64"), "%s", msg);
  ck_assert(!cg_target_cpu_check("i486", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "'i486' is not a CPU of x86-64"), "%s", msg);
  /* a typo: the closest name */
  ck_assert(!cg_target_cpu_check("skylake-avx51", msg, sizeof msg));
  ck_assert_msg(strstr(msg, "is not a CPU of x86-64; did you mean 'skylake-avx512'?"), "%s", msg);
  /* a small buffer truncates, never overflows */
  char tiny[16];
  ck_assert(!cg_target_cpu_check("bogus", tiny, sizeof tiny));
  ck_assert_int_eq((int)strlen(tiny), 15);
}
END_TEST

/* Every accepted name makes working code: the list holds no name this
 * LLVM lacks or cannot use for 64-bit code (either aborts here). */
START_TEST(every_listed_cpu_compiles) {
  int n = 0;
  const char *const *cpus = cg_target_cpus(&n);
  if (!host_is_x86_64()) return;
  ck_assert_int_gt(n, 50);
  const char *src = "model m {\n input x: f32[4]\n y = x * 2 + 1\n output y\n}\n";
  Arena a = {0};
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&a, src, &diag, &errors);
  ck_assert_msg(m && !errors, "%s", diag);
  free(diag);
  FILE *null = fopen("/dev/null", "w");
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), null);
  PassOptions po = {.out = null};
  ck_assert(pass_run_pipeline(m, &d, &po));
  for (int i = 0; i < n; i++) {
    char msg[256], err[512];
    ck_assert_msg(cg_target_cpu_check(cpus[i], msg, sizeof msg), "%s: %s", cpus[i], msg);
    CgOptions o = {.opt_level = 0, .target_cpu = cpus[i]};
    char *text = cg_emit_text(m, &o, CG_TEXT_ASM, err, sizeof err);
    ck_assert_msg(text, "%s: %s", cpus[i], err);
    free(text);
  }
  /* the code generator refuses a bad name itself, for callers that did
   * not check */
  char err[2048];
  CgOptions bad = {.target_cpu = "bogus"};
  ck_assert_ptr_null(cg_emit_text(m, &bad, CG_TEXT_ASM, err, sizeof err));
  ck_assert_msg(strstr(err, "'bogus' is not a CPU of x86-64"), "%s", err);
  ck_assert_ptr_null(cg_jit_new(m, &bad, err, sizeof err));
  fclose(null);
  arena_free(&a);
}
END_TEST

int main(void) {
  Suite *s = suite_create("codegen");
  TCase *tc = tcase_create("target");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, host_target_is_known);
  tcase_add_test(tc, target_cpu_names_are_checked);
  tcase_add_test(tc, every_listed_cpu_compiles);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
