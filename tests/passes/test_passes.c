/* test_passes.c - the pass manager and the passes: each test builds a
 * small graph (from .nn source), runs the pipeline or one pass, and
 * asserts one fact. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "passes/passes.h"
#include "testutil.h"

static Arena arena;
static void teardown(void) { arena_free(&arena); }

static Module *compile(const char *src) {
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(errors == 0, "%s", diag);
  free(diag);
  return m;
}

static Diag quiet(FILE *f) {
  Diag d;
  diag_init(&d, "test.nn", "", 0, f);
  return d;
}

START_TEST(dce_removes_unused_and_keeps_interface) {
  Module *m = compile("model m {\n input x: f32[4]\n param w: f32[4]\n unused = exp(x) * 3\n"
                      " y = x * w\n output y\n}\n");
  Graph *g = m->graphs[0];
  int before = g->n_nodes;
  FILE *null = fopen("/dev/null", "w");
  Diag d = quiet(null);
  ck_assert(pass_dce(g, &d));
  fclose(null);
  ck_assert_int_eq(g->n_nodes, before - 3); /* exp, const 3, mul */
  ck_assert_int_eq(ir_verify(g, stderr), 0);
  ck_assert_ptr_nonnull(ir_find_var(g, "w"));
  for (int i = 0; i < g->n_nodes; i++) ck_assert_int_eq(g->nodes[i]->id, i);
}
END_TEST

START_TEST(reach_warns_for_unused_param) {
  Module *m = compile("model m {\n input x: f32[4]\n param w: f32[4]\n param v: f32[4]\n"
                      " loss sum(x * w) + sum(stop_gradient(v))\n}\n");
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  Diag d = quiet(mem);
  ck_assert(pass_check_reach(m->graphs[0], &d));
  fclose(mem);
  ck_assert_int_eq(d.n_warnings, 1);
  ck_assert_msg(strstr(buf, "param 'v' cannot reach the loss"), "%s", buf);
  free(buf);
}
END_TEST

START_TEST(shapes_pass_catches_a_wrong_type) {
  Module *m = compile("model m {\n input x: f32[4, 3]\n y = relu(x)\n output y\n}\n");
  Graph *g = m->graphs[0];
  g->nodes[g->n_nodes - 1]->type.dim[1] = 7; /* corrupt the relu's type */
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  Diag d = quiet(mem);
  ck_assert(!pass_infer_shapes(g, &d));
  fclose(mem);
  ck_assert_msg(strstr(buf, "has type f32[4,7] but its rule gives f32[4,3]"), "%s", buf);
  free(buf);
}
END_TEST

START_TEST(pipeline_prints_after_named_pass) {
  Module *m = compile("model m {\n input x: f32[4]\n y = exp(x)\n output y\n}\n");
  char *buf = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&buf, &len);
  FILE *null = fopen("/dev/null", "w");
  Diag d = quiet(null);
  PassOptions o = {.print_after = "dce", .verify_each = true, .out = mem};
  ck_assert(pass_run_pipeline(m, &d, &o));
  fclose(mem);
  fclose(null);
  ck_assert_msg(strstr(buf, "# *** IR after dce ***") && !strstr(buf, "after shapes"), "%s", buf);
  ck_assert_msg(strstr(buf, "%y = exp %x : f32[4]"), "%s", buf);
  free(buf);
}
END_TEST

START_TEST(pass_table_is_consistent) {
  int n;
  const Pass *p = pass_list(&n);
  ck_assert_int_ge(n, 3);
  for (int i = 0; i < n; i++) {
    ck_assert_ptr_eq(pass_by_name(p[i].name), &p[i]);
    ck_assert(p[i].run != NULL || p[i].run_module != NULL);
  }
  ck_assert_ptr_null(pass_by_name("nosuchpass"));
}
END_TEST

/* An unknown stop-after pass is an internal error, not "run every pass". */
START_TEST(unknown_stop_after_is_an_internal_error) {
  Module *m = compile("model m {\n input x: f32[4]\n y = exp(x)\n output y\n}\n");
  Diag d = quiet(stderr);
  PassOptions po = {.stop_after = "nosuchpass", .out = stderr};
  NnccCatch rp;
  nncc_catch_push(&rp);
  volatile bool returned = false;
  if (!setjmp(rp.jmp)) {
    pass_run_pipeline(m, &d, &po);
    returned = true;
    nncc_catch_pop(&rp);
  }
  ck_assert_msg(!returned, "the pipeline ran with an unknown stop-after pass");
  ck_assert_str_eq(rp.msg, "internal error: stop after unknown pass 'nosuchpass'");
}
END_TEST

int main(void) {
  Suite *s = suite_create("passes");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, dce_removes_unused_and_keeps_interface);
  tcase_add_test(tc, reach_warns_for_unused_param);
  tcase_add_test(tc, shapes_pass_catches_a_wrong_type);
  tcase_add_test(tc, pipeline_prints_after_named_pass);
  tcase_add_test(tc, pass_table_is_consistent);
  tcase_add_test(tc, unknown_stop_after_is_an_internal_error);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
