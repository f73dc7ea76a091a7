/* test_elab.c - elaboration: constants, def inlining and parameter
 * scoping (SPEC §2.4), for unrolling, shape patterns, train blocks. Each
 * test compiles a small program and asserts one fact about the graph. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ir/train_spec.h"
#include "testutil.h"

static Arena arena;

static Module *compile_ok(const char *src) {
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(errors == 0, "unexpected errors:\n%s", diag);
  free(diag);
  return m;
}

/* The diagnostics of a program expected to fail. */
static char *compile_fail(const char *src) {
  char *diag = NULL;
  int errors = 0;
  tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(errors > 0, "expected an error for:\n%s", src);
  return diag;
}

static Node *var(Module *m, const char *name) {
  Node *n = ir_find_var(m->graphs[0], name);
  ck_assert_msg(n != NULL, "no var '%s'", name);
  return n;
}

static int count_op(const Graph *g, Op op) {
  int k = 0;
  for (int i = 0; i < g->n_nodes; i++) k += g->nodes[i]->op == op;
  return k;
}

static void teardown(void) { arena_free(&arena); }

START_TEST(param_scope_from_bound_name) {
  Module *m = compile_ok("model m {\n input x: f32[4, 3]\n h1 = dense(x, 5, relu)\n"
                         " h2 = dense(h1, 2)\n output h2\n}\n");
  ck_assert_int_eq(var(m, "h1.w")->type.dim[0], 3);
  ck_assert_int_eq(var(m, "h1.w")->type.dim[1], 5);
  ck_assert_int_eq(var(m, "h2.w")->type.dim[0], 5);
  ck_assert_int_eq(var(m, "h1.b")->init, INIT_ZEROS);
  ck_assert_int_eq(var(m, "h1.w")->init, INIT_HE_UNIFORM);
}
END_TEST

START_TEST(second_call_site_same_name_gets_suffix) {
  Module *m = compile_ok("model m {\n input x: f32[4, 3]\n h = dense(x, 5)\n h = dense(h, 5)\n"
                         " h = dense(h, 5)\n output h\n}\n");
  var(m, "h.w");
  var(m, "h_2.w");
  var(m, "h_3.b");
}
END_TEST

START_TEST(for_body_call_site_shares_params) {
  Module *m = compile_ok("const T = 5\nmodel m {\n input x: f32[2, T, 3]\n h = zeros(f32[2, 4])\n"
                         " for t in 0..T { h = rnn_cell(x[:, t, :], h, 4) }\n output h\n}\n");
  Graph *g = m->graphs[0];
  int params = 0;
  for (int i = 0; i < g->n_nodes; i++) params += (g->nodes[i]->roles & ROLE_PARAM) != 0;
  ck_assert_int_eq(params, 3); /* wx, wh, b once, shared by 5 steps */
  var(m, "h.wx");
  ck_assert_int_eq(count_op(g, OP_TANH), 5);
}
END_TEST

START_TEST(nested_def_scopes_prefix_caller) {
  Module *m = compile_ok("def block(x, n) {\n a = dense(x, n, relu)\n return dense(a, n)\n}\n"
                         "model m {\n input x: f32[4, 3]\n b1 = block(x, 6)\n b2 = block(b1, 6)\n"
                         " output b2\n}\n");
  var(m, "b1.a.w");
  var(m, "b1.dense.w"); /* an unbound call is scoped by the def's name */
  var(m, "b2.a.w");
}
END_TEST

START_TEST(calls_without_params_take_no_scope) {
  Module *m = compile_ok("model m {\n input x: f32[4, 3]\n h = identity(x)\n h = dense(h, 2)\n"
                         " output h\n}\n");
  var(m, "h.w"); /* not h_2.w */
}
END_TEST

START_TEST(shape_pattern_binds_and_checks) {
  Module *m = compile_ok("def f(x: f32[n, k], y: f32[k]) {\n param w: f32[k, n] = zeros()\n"
                         " return x + y\n}\nmodel m {\n input a: f32[2, 3]\n input b: f32[3]\n"
                         " c = f(a, b)\n output c\n}\n");
  ck_assert_int_eq(var(m, "c.w")->type.dim[0], 3);
  ck_assert_int_eq(var(m, "c.w")->type.dim[1], 2);
  char *d = compile_fail("def f(x: f32[n, k], y: f32[k]) { return x + y }\nmodel m {\n"
                         " input a: f32[2, 3]\n input b: f32[4]\n c = f(a, b)\n output c\n}\n");
  ck_assert_msg(strstr(d, "'k' is already 3"), "%s", d);
  free(d);
}
END_TEST

START_TEST(constants_python_semantics) {
  Module *m = compile_ok("const A = 7 // 2, B = -7 // 2, C = -7 % 3, D = 2 ** 10, E = 1 / 4\n"
                         "model m {\n input x: f32[A, 0 - B, C, D]\n output x\n}\n");
  Node *x = var(m, "x");
  ck_assert_int_eq(x->type.dim[0], 3);
  ck_assert_int_eq(x->type.dim[1], 4);
  ck_assert_int_eq(x->type.dim[2], 2);
  ck_assert_int_eq(x->type.dim[3], 1024);
}
END_TEST

START_TEST(literal_takes_other_operand_dtype) {
  Module *m = compile_ok("model m {\n input y: i32[4]\n z = y + 1\n output z\n}\n");
  Graph *g = m->graphs[0];
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == OP_CONST) ck_assert_int_eq(g->nodes[i]->type.dtype, DT_I32);
  char *d = compile_fail("model m {\n input y: i32[4]\n z = y + 0.5\n output z\n}\n");
  ck_assert_msg(strstr(d, "0.5 is not an integer"), "%s", d);
  free(d);
}
END_TEST

START_TEST(indexing_slices_and_drops_dims) {
  Module *m = compile_ok("model m {\n input x: f32[4, 5, 6]\n a = x[:, 1]\n b = x[-1, 1:4, ::2]\n"
                         " output a, b\n}\n");
  Graph *g = m->graphs[0];
  Node *a = NULL, *b = NULL;
  for (int i = 0; i < g->n_nodes; i++) {
    if (g->nodes[i]->out_name && !strcmp(g->nodes[i]->out_name, "a")) a = g->nodes[i];
    if (g->nodes[i]->out_name && !strcmp(g->nodes[i]->out_name, "b")) b = g->nodes[i];
  }
  ck_assert_ptr_nonnull(a);
  ck_assert_ptr_nonnull(b);
  ck_assert_int_eq(a->type.rank, 2);
  ck_assert_int_eq(a->type.dim[1], 6);
  ck_assert_int_eq(b->type.rank, 2);
  ck_assert_int_eq(b->type.dim[0], 3);
  ck_assert_int_eq(b->type.dim[1], 3);
}
END_TEST

START_TEST(tuple_return_destructures) {
  Module *m = compile_ok("model m {\n input x: f32[2, 3]\n h = zeros(f32[2, 4])\n c = zeros(f32[2, 4])\n"
                         " h, c = lstm_cell(x, h, c, 4)\n output h, c\n}\n");
  ck_assert_int_eq(var(m, "h.wx")->type.dim[1], 16);
  ck_assert_int_eq(var(m, "h.b")->type.dim[0], 16);
}
END_TEST

START_TEST(functions_as_arguments) {
  Module *m = compile_ok("def apply(f, x) { return f(x) }\nmodel m {\n input x: f32[3]\n"
                         " y = apply(tanh, x)\n z = dense(x, 2, act = sigmoid)\n output y, z\n}\n");
  ck_assert_int_eq(count_op(m->graphs[0], OP_TANH), 1);
  ck_assert_int_eq(count_op(m->graphs[0], OP_SIGMOID), 1);
}
END_TEST

START_TEST(user_def_shadows_prelude_with_warning) {
  char *diag = NULL;
  int errors = 0;
  tu_compile(&arena, "def dense(x, n) { return x }\nmodel m {\n input x: f32[3]\n y = dense(x, 2)\n"
             " output y\n}\n", &diag, &errors);
  ck_assert_int_eq(errors, 0);
  ck_assert_msg(strstr(diag, "warning: def 'dense' shadows the prelude"), "%s", diag);
  free(diag);
}
END_TEST

START_TEST(errors_are_collected) {
  char *d = compile_fail("model m {\n input x: f32[2, 3]\n a = x + zeros(f32[3, 2])\n b = relu(q)\n"
                         " c = x @ x\n output a\n}\n");
  ck_assert_msg(strstr(d, "test.nn:3:8: error: cannot add f32[2,3] and f32[3,2]"), "%s", d);
  ck_assert_msg(strstr(d, "test.nn:4:11: error: unknown name 'q'"), "%s", d);
  ck_assert_msg(strstr(d, "test.nn:5:8: error: cannot multiply matrices"), "%s", d);
  free(d);
}
END_TEST

START_TEST(node_limit_stops_unrolling) {
  char *d = compile_fail("model m {\n input x: f32[2]\n h = x\n for t in 0..100000000 { h = h + 1 }\n"
                         " output h\n}\n");
  ck_assert_msg(strstr(d, "more than 1000000 nodes"), "%s", d);
  free(d);
}
END_TEST

START_TEST(train_block_validated) {
  Module *m = compile_ok("model m {\n input x: f32[8, 2]\n input y: i32[8]\n l = dense(x, 3)\n"
                         " loss cross_entropy(l, y)\n}\ntrain m {\n data = spiral(n = 64)\n"
                         " optimizer = adamw(lr = 2e-3)\n schedule = cosine(warmup = 10)\n epochs = 3\n"
                         " metrics = [accuracy]\n}\n");
  ck_assert_int_eq(m->n_trains, 1);
  TrainSpec *t = m->trains[0];
  ck_assert_str_eq(optimizer_name(t->optimizer), "adamw");
  ck_assert_double_eq_tol(t->lr, 2e-3, 1e-12);
  ck_assert_double_eq_tol(t->weight_decay, 0.01, 1e-12); /* PyTorch's AdamW default */
  ck_assert_double_eq_tol(t->beta2, 0.999, 1e-12);
  ck_assert_str_eq(schedule_name(t->schedule), "cosine");
  ck_assert_int_eq(t->warmup, 10);
  ck_assert_int_eq(t->epochs, 3);
  ck_assert(t->shuffle);
  ck_assert(t->metric_accuracy);
  ck_assert_int_eq(t->data->n, 64);
  ck_assert_int_eq(t->data->classes, 3);
}
END_TEST

START_TEST(optimizer_ranges_as_pytorch) {
  const char *bad[] = {"sgd(lr = -1)", "adam(beta1 = 1.0)", "adam(eps = -1e-8)",
                       "sgd(lr = 0.1, momentum = -0.5)", "sgd(lr = 0.1, nesterov = true)",
                       "rmsprop(alpha = -1)", "sgd()"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char src[512];
    snprintf(src, sizeof src, "model m {\n input x: f32[8, 2]\n input y: i32[8]\n"
             " loss cross_entropy(dense(x, 3), y)\n}\ntrain m {\n data = spiral()\n optimizer = %s\n}\n",
             bad[i]);
    char *d = compile_fail(src);
    free(d);
  }
}
END_TEST

Suite *elab_suite(void) {
  Suite *s = suite_create("elab");
  TCase *tc = tcase_create("core");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_add_test(tc, param_scope_from_bound_name);
  tcase_add_test(tc, second_call_site_same_name_gets_suffix);
  tcase_add_test(tc, for_body_call_site_shares_params);
  tcase_add_test(tc, nested_def_scopes_prefix_caller);
  tcase_add_test(tc, calls_without_params_take_no_scope);
  tcase_add_test(tc, shape_pattern_binds_and_checks);
  tcase_add_test(tc, constants_python_semantics);
  tcase_add_test(tc, literal_takes_other_operand_dtype);
  tcase_add_test(tc, indexing_slices_and_drops_dims);
  tcase_add_test(tc, tuple_return_destructures);
  tcase_add_test(tc, functions_as_arguments);
  tcase_add_test(tc, user_def_shadows_prelude_with_warning);
  tcase_add_test(tc, errors_are_collected);
  tcase_add_test(tc, node_limit_stops_unrolling);
  tcase_add_test(tc, train_block_validated);
  tcase_add_test(tc, optimizer_ranges_as_pytorch);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(elab_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
