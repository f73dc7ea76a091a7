/* test_target_cli.c - --target-cpu through the real nncc binary: a name
 * that is not a CPU of the host target is a usage error (exit 2) with a
 * suggestion or the list, for every command that compiles, where LLVM
 * used to abort with exit 134 (issue 8 item 8). */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "testutil.h"

#define EXAMPLES NNCC_SOURCE_DIR "/examples"

static TuRun nncc(const char *fmt, ...) {
  char args[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  return tu_run(args, 120);
}

#define EXPECT_STATUS(r, code, what)                                                                \
  ck_assert_msg((r).status == (code), "%s: exit %d, expected %d\nstdout:\n%.2000s\nstderr:\n%.2000s", \
                (what), (r).status, (code), (r).out, (r).err)
#define EXPECT_HAS(hay, needle, what) \
  ck_assert_msg(strstr((hay), (needle)) != NULL, "%s: expected '%s' in:\n%.3000s", (what), (needle), (hay))

static bool host_is_x86_64(void) {
  CgHostInfo info;
  char err[128];
  return cg_host_info(&info, err, sizeof err) && !strncmp(info.triple, "x86_64", 6);
}

START_TEST(unknown_cpu_is_a_usage_error) {
  if (!host_is_x86_64()) return;
  const char *runs[] = {
      "--target-cpu bogus " EXAMPLES "/mlp.nn -o /nonexistent/x.so",
      "train --target-cpu nvptx64 " EXAMPLES "/sine.nn --epochs 1 --quiet",
      EXAMPLES "/sine.nn --emit=asm --target-cpu i486",
      "bench --target-cpu bogus " EXAMPLES "/sine.nn",
  };
  const char *names[] = {"bogus", "nvptx64", "i486", "bogus"};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    TuRun r = nncc("%s", runs[i]);
    EXPECT_STATUS(r, 2, runs[i]);
    char want[128];
    snprintf(want, sizeof want, "nncc: error: --target-cpu '%s' is not a CPU of x86-64;", names[i]);
    EXPECT_HAS(r.err, want, runs[i]);
    EXPECT_HAS(r.err, "skylake-avx512", runs[i]);  /* the list */
    tu_run_free(&r);
  }
  TuRun r = nncc("%s/sine.nn --emit=asm --target-cpu znver", EXAMPLES);
  EXPECT_STATUS(r, 2, "znver");
  EXPECT_HAS(r.err, "nncc: error: --target-cpu 'znver' is not a CPU of x86-64; did you mean 'znver1'?", "znver");
  tu_run_free(&r);
  r = nncc("%s/sine.nn --emit=asm --target-cpu x86-64-v3", EXAMPLES);
  EXPECT_STATUS(r, 0, "x86-64-v3");
  tu_run_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("target_cli");
  TCase *tc = tcase_create("target_cpu");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, unknown_cpu_is_a_usage_error);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
