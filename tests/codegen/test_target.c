/* test_target.c - the host target as LLVM sees it: a native target
 * exists, the CPU has a name, and LLVM is the version the build chose. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"

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

int main(void) {
  Suite *s = suite_create("codegen");
  TCase *tc = tcase_create("target");
  tcase_add_test(tc, host_target_is_known);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
