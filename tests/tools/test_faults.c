/* test_faults.c - out of memory and internal errors come back as errors
 * (ir.h, "errors"): with nncc_alloc_fail_after, every allocation nncc
 * makes while compiling a program fails in turn, and each compile must
 * return NULL with "out of memory" in its diagnostics, without a crash,
 * an exit or a leak (CI runs this under LeakSanitizer); then the model
 * instance's own allocation fails (runtime/model.c: create returns
 * NULL). The driver gets the same through NNCC_FAIL_ALLOC, and an
 * internal error in codegen comes back from cg_jit_new. LLVM's own
 * allocations are not injected: LLVM aborts on out of memory by design. */
#include <check.h>
#include <malloc.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "passes/passes.h"
#include "testutil.h"
#include "tools/libnncc.h"

/* rt_model_create's slab comes from aligned_alloc, which this test
 * defines (the executable's definition wins, for LLVM's aligned new too):
 * it fails once when armed, else it is glibc's memalign, as glibc's own
 * aligned_alloc is (any power of two; ASan intercepts it). */
static bool fail_aligned_alloc;

void *aligned_alloc(size_t alignment, size_t size) {
  if (fail_aligned_alloc) {
    fail_aligned_alloc = false;
    return NULL;
  }
  return memalign(alignment, size);
}

/* Two layers, a loss and an optimizer: every pass and every kernel kind
 * (matmul, loop, softmax row loss) has work to do. */
static const char *const mlp_src =
    "model mlp {\n"
    "  input x: f32[8, 2]\n"
    "  input y: i32[8]\n"
    "  h = dense(x, 16, relu)\n"
    "  logits = dense(h, 3)\n"
    "  output logits\n"
    "  loss cross_entropy(logits, y)\n"
    "}\n"
    "train mlp {\n"
    "  data = spiral(n = 64, classes = 3)\n"
    "  optimizer = adam(lr = 1e-2)\n"
    "}\n";

/* Compiles src with the n-th allocation failing, for n = 0, 1, ... until
 * a compile no longer reaches an armed failure; returns how many failed.
 * Each failed compile must give NULL and "out of memory". The last,
 * successful, one is returned in *ok_jit. */
static int fail_each_allocation(const char *src, nncc_jit **ok_jit) {
  nncc_compile_options o = NNCC_COMPILE_DEFAULTS;
  o.opt_level = 0;  /* LLVM's time, not ours, and not under test */
  for (int n = 0;; n++) {
    char *diag = NULL;
    nncc_alloc_fail_after(n);
    nncc_jit *j = nncc_compile_string("faults.nn", src, &o, &diag);
    bool fired = nncc_alloc_fail_after(-1) < 0;
    if (!fired) {
      ck_assert_msg(j != NULL, "compile without an injected failure failed:\n%s", diag ? diag : "");
      free(diag);
      *ok_jit = j;
      return n;
    }
    ck_assert_msg(j == NULL, "allocation %d failed, but the compile succeeded", n);
    /* "nncc: error: out of memory", or "... code generation failed: out of memory" */
    ck_assert_msg(diag && strstr(diag, "nncc: error: ") && strstr(diag, "out of memory\n"),
                  "allocation %d: diagnostics:\n%s", n, diag ? diag : "(none)");
    free(diag);
  }
}

/* First in the suite: the prelude is parsed (and cached) by the first
 * compile of the process, so this one fails its allocations too. */
START_TEST(every_allocation_of_the_front_end_and_prelude) {
  nncc_jit *j = NULL;
  int n = fail_each_allocation("const N = 3\n", &j);
  ck_assert_int_gt(n, 5);
  nncc_jit_free(j);
}
END_TEST

START_TEST(every_allocation_of_an_mlp_compile) {
  nncc_jit_free(nncc_compile_string("warm.nn", "const N = 3\n", NULL, NULL));  /* the prelude, cached */
  nncc_jit *j = NULL;
  int n = fail_each_allocation(mlp_src, &j);
  ck_assert_int_gt(n, 100);  /* arena blocks, and every pass's scratch */
  const nncc_model_api *api = nncc_jit_model(j, "mlp");
  ck_assert_ptr_nonnull(api);

  /* the instance's slab cannot be had: NULL, and its struct not leaked */
  fail_aligned_alloc = true;
  ck_assert_ptr_null(api->create(1));
  ck_assert(!fail_aligned_alloc);

  nncc_model *m = api->create(1);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(api->train_step(m), 0);
  api->destroy(m);
  nncc_jit_free(j);
}
END_TEST

/* Recovery points nest: an error frees what the inner one made (scratch,
 * an arena that got its first block inside) and leaves the outer one's. */
START_TEST(recovery_points_nest) {
  Arena outer_arena = {0}, inner_arena = {0};
  NnccCatch outer, inner;
  nncc_catch_push(&outer);
  if (setjmp(outer.jmp)) ck_abort_msg("the error reached the outer recovery point: %s", outer.msg);
  char *kept = arena_strdup(&outer_arena, "kept");
  int *volatile scratch = nncc_calloc(4, sizeof *scratch);  /* changes after the inner setjmp */
  nncc_catch_push(&inner);
  if (!setjmp(inner.jmp)) {
    arena_alloc(&inner_arena, 100);
    nncc_malloc(100);         /* freed by the error: LeakSanitizer would say */
    scratch = nncc_realloc(scratch, 1000);  /* made outside: survives */
    arena_alloc(&outer_arena, 1 << 20);     /* a block of an outer arena: survives */
    nncc_raise("internal error: test %d", 42);
  }
  ck_assert_str_eq(inner.msg, "internal error: test 42");
  ck_assert_ptr_null(inner_arena.head);
  ck_assert_str_eq(kept, "kept");
  scratch[999 / sizeof *scratch] = 1;
  nncc_free(scratch);

  /* out of memory from the injection, in a scratch block */
  nncc_catch_push(&inner);
  if (!setjmp(inner.jmp)) {
    nncc_alloc_fail_after(0);
    nncc_malloc(1);
    ck_abort_msg("nncc_malloc returned with an injected failure");
  }
  ck_assert_str_eq(inner.msg, "out of memory");
  nncc_catch_pop(&inner);  /* already popped: a no-op */
  nncc_catch_pop(&outer);
  arena_free(&outer_arena);
}
END_TEST

/* An op the lower pass removes reaches codegen: an internal error, which
 * cg_jit_new returns instead of exiting. */
START_TEST(internal_error_in_codegen_comes_back) {
  Arena a = {0};
  char *diag = NULL;
  int n_errors = 0;
  Module *m = tu_compile(&a,
                         "model drop {\n"
                         "  input x: f32[4, 8]\n"
                         "  h = dropout(x, p = 0.5)\n"
                         "  output h\n"
                         "}\n",
                         &diag, &n_errors);
  ck_assert_msg(m && n_errors == 0, "%s", diag ? diag : "");
  free(diag);
  char err[512] = "";
  CgOptions co = {.opt_level = 0};
  NnccCatch rp;  /* cg_jit_new recovers by itself; this catches a bug that escapes */
  nncc_catch_push(&rp);
  if (setjmp(rp.jmp)) ck_abort_msg("the error escaped cg_jit_new: %s", rp.msg);
  CgJit *j = cg_jit_new(m, &co, err, sizeof err);
  nncc_catch_pop(&rp);
  ck_assert_ptr_null(j);
  ck_assert_msg(strstr(err, "internal error: no code generation for 'dropout'"), "%s", err);
  arena_free(&a);
}
END_TEST

/* The driver: NNCC_FAIL_ALLOC=N fails its N-th allocation; the exit code
 * is 1 with "out of memory", never a signal or LeakSanitizer's 23. N
 * doubles (every allocation would be a few thousand processes). */
START_TEST(driver_reports_out_of_memory) {
  const char *file = NNCC_SOURCE_DIR "/examples/spiral.nn";
  int runs = 0;
  for (long n = 0;; n = n ? 2 * n : 1, runs++) {
    char v[32];
    snprintf(v, sizeof v, "%ld", n);
    setenv("NNCC_FAIL_ALLOC", v, 1);
    char args[1024];
    snprintf(args, sizeof args, "%s --emit=llvm -O0", file);
    TuRun r = tu_run(args, 120);
    unsetenv("NNCC_FAIL_ALLOC");
    if (r.status == 0) {
      tu_run_free(&r);
      break;
    }
    ck_assert_msg(r.status == 1 && strstr(r.err, "nncc: error: out of memory"),
                  "NNCC_FAIL_ALLOC=%ld: exit %d\n%.3000s", n, r.status, r.err);
    tu_run_free(&r);
    ck_assert_int_lt(n, 1L << 24);
  }
  ck_assert_int_gt(runs, 5);
}
END_TEST

static Suite *faults_suite(void) {
  Suite *s = suite_create("faults");
  TCase *tc = tcase_create("faults");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, every_allocation_of_the_front_end_and_prelude);
  tcase_add_test(tc, every_allocation_of_an_mlp_compile);
  tcase_add_test(tc, recovery_points_nest);
  tcase_add_test(tc, internal_error_in_codegen_comes_back);
  tcase_add_test(tc, driver_reports_out_of_memory);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(faults_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
