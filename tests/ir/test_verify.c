/* test_verify.c - the IR verifier (ir/verify.c).
 *
 * A sound graph verifies silently; each corruption a buggy pass could
 * make is reported once, as "verify: node %id (op) at line:col: ...",
 * and counted. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

static SrcLoc L(int line, int col) { return (SrcLoc){line, col}; }

static Type T2(DType dt, int64_t a, int64_t b) {
  int64_t d[2] = {a, b};
  return type_make(dt, 2, d);
}

static Type T1(DType dt, int64_t a) { return type_make(dt, 1, &a); }

static Node *fin(Node *n) {
  ck_assert(ir_infer(n, NULL));
  return n;
}

static Node *op2(Graph *g, Op o, Node *a, Node *b, SrcLoc loc) {
  Node *ins[2] = {a, b};
  return ir_node_new(g, o, ins, b ? 2 : 1, loc);
}

/* Node ids:
 *   0 x input f32[4,3]   1 w param f32[3,2]   2 b param f32[2]
 *   3 matmul f32[4,2]    4 add f32[4,2]       5 relu "h" f32[4,2]
 *   6 sum axes=[1,0] f32[] (loss)             7 y input i32[4]
 *   8 cast(y) f32[4] */
static Graph *small_graph(Arena *a) {
  Graph *g = ir_graph_new(a, "small");
  Node *x = ir_var(g, "x", ROLE_INPUT, T2(DT_F32, 4, 3), L(2, 3));
  Node *w = ir_var(g, "w", ROLE_PARAM, T2(DT_F32, 3, 2), L(3, 3));
  w->init = INIT_HE_UNIFORM;
  Node *b = ir_var(g, "b", ROLE_PARAM, T1(DT_F32, 2), L(4, 3));
  Node *mm = fin(op2(g, OP_MATMUL, x, w, L(5, 7)));
  Node *add = fin(op2(g, OP_ADD, mm, b, L(5, 11)));
  Node *h = fin(op2(g, OP_RELU, add, NULL, L(5, 3)));
  h->name = "h";
  Node *s = op2(g, OP_SUM, h, NULL, L(6, 8));
  int64_t axes[2] = {1, 0};  /* not normalized: verify must not sort them */
  ir_set_list(g, s, 0, axes, 2);
  s->type = type_scalar(DT_F32);
  s->roles |= ROLE_LOSS;
  Node *y = ir_var(g, "y", ROLE_INPUT, T1(DT_I32, 4), L(7, 3));
  Node *c = op2(g, OP_CAST, y, NULL, L(8, 3));
  c->type.dtype = DT_F32;
  fin(c);
  return g;
}

/* Runs the verifier; its report into *text (malloc'ed). */
static int verify(const Graph *g, char **text) {
  size_t len = 0;
  FILE *f = open_memstream(text, &len);
  int n = ir_verify(g, f);
  fclose(f);
  return n;
}

static void expect(const Graph *g, int count, const char *line) {
  char *text = NULL;
  int n = verify(g, &text);
  ck_assert_msg(n == count, "want %d problems, got %d:\n%s", count, n, text);
  ck_assert_msg(strstr(text, line), "want\n%s\ngot\n%s", line, text);
  free(text);
}

START_TEST(test_sound_graph) {
  Arena a = {0};
  Graph *g = small_graph(&a);
  char *text = NULL;
  ck_assert_int_eq(verify(g, &text), 0);
  ck_assert_str_eq(text, "");
  free(text);
  /* the copy ir_infer normalized was the verifier's, not the graph's */
  ck_assert_int_eq(g->nodes[6]->attr[0].list[0], 1);
  ck_assert_int_eq(g->nodes[6]->attr[0].list[1], 0);
  Graph *empty = ir_graph_new(&a, "empty");
  ck_assert_int_eq(verify(empty, &text), 0);
  free(text);
  arena_free(&a);
}
END_TEST

START_TEST(test_wrong_id) {
  Arena a = {0};
  Graph *g = small_graph(&a);
  g->nodes[5]->id = 7;
  /* relu at index 5 with id 7, and sum's operand no longer found at its id */
  char *text = NULL;
  ck_assert_int_eq(verify(g, &text), 2);
  ck_assert_msg(strstr(text, "verify: node %5 (relu) at 5:3: id is 7 but the node is at index 5\n"),
                "%s", text);
  ck_assert_msg(strstr(text, "verify: node %6 (sum) at 6:8: operand 0 (id 7) is not a node of this graph\n"),
                "%s", text);
  free(text);
  arena_free(&a);
}
END_TEST

START_TEST(test_wrong_type) {
  Arena a = {0};
  Graph *g = small_graph(&a);
  g->nodes[4]->type = T1(DT_F32, 5);
  /* reported at the add only: relu and sum, built on it, stay quiet */
  expect(g, 1, "verify: node %4 (add) at 5:11: type is f32[5] but ir_infer gives f32[4,2]\n");
  g->nodes[4]->type = T2(DT_F32, 4, 2);
  g->nodes[8]->type = T1(DT_I32, 4);  /* a cast may keep its dtype */
  expect(g, 0, "");
  g->nodes[8]->type = T1(DT_BOOL, 4);
  expect(g, 1, "verify: node %8 (cast) at 8:3: ir_infer rejects it (stored type bool[4])\n");
  g->nodes[8]->type.dtype = DT_ERR;
  expect(g, 1, "verify: node %8 (cast) at 8:3: type is poisoned (DT_ERR)\n");
  g->nodes[8]->type = T1(DT_F32, 0);
  expect(g, 1, "verify: node %8 (cast) at 8:3: malformed type f32[0]\n");
  g->nodes[8]->type.rank = 99;
  expect(g, 1, "verify: node %8 (cast) at 8:3: malformed type f32[rank 99]\n");
  arena_free(&a);
}
END_TEST

START_TEST(test_losses) {
  Arena a = {0};
  Graph *g = small_graph(&a);
  g->nodes[5]->roles |= ROLE_LOSS;
  char *text = NULL;
  ck_assert_int_eq(verify(g, &text), 2);
  ck_assert_msg(strstr(text, "verify: node %5 (relu) at 5:3: the loss has type f32[4,2], not f32[]\n"),
                "%s", text);
  ck_assert_msg(strstr(text, "verify: node %6 (sum) at 6:8: a second loss (the first is %5)\n"),
                "%s", text);
  free(text);
  arena_free(&a);
}
END_TEST

START_TEST(test_operands) {
  Arena a = {0};
  Graph *g = small_graph(&a);
  g->nodes[3]->in[1] = g->nodes[5];
  expect(g, 1, "verify: node %3 (matmul) at 5:7: operand 1 is %5, which does not come before it\n");
  g->nodes[3]->in[1] = NULL;
  expect(g, 1, "verify: node %3 (matmul) at 5:7: operand 1 is NULL\n");
  Graph *other = small_graph(&a);
  g->nodes[3]->in[1] = other->nodes[1];
  expect(g, 1, "verify: node %3 (matmul) at 5:7: operand 1 (id 1) is not a node of this graph\n");
  g->nodes[3]->in[1] = g->nodes[1];
  g->nodes[4]->n_in = 1;
  expect(g, 1, "verify: node %4 (add) at 5:11: has 1 operand, 'add' takes 2\n");
  g->nodes[4]->n_in = 2;
  g->nodes[4]->in = NULL;
  expect(g, 1, "verify: node %4 (add) at 5:11: bad operand array (n_in 2)\n");
  arena_free(&a);
}
END_TEST

START_TEST(test_attrs_and_roles) {
  Arena a = {0};
  Graph *g = small_graph(&a);
  g->nodes[6]->attr[0].list = NULL;
  expect(g, 1, "verify: node %6 (sum) at 6:8: attribute 'axes' has 2 elements but no storage\n");
  g = small_graph(&a);
  g->nodes[6]->attr[1].i = 2;
  expect(g, 1, "verify: node %6 (sum) at 6:8: bool attribute 'keepdims' is 2\n");
  g = small_graph(&a);
  g->nodes[1]->roles = ROLE_PARAM | ROLE_STATE;
  expect(g, 1, "verify: node %1 (var) at 3:3: a var needs exactly one of the input, param and "
               "state roles (roles 0x6)\n");
  g->nodes[1]->roles = 0;
  expect(g, 1, "verify: node %1 (var) at 3:3: a var needs exactly one");
  g->nodes[1]->roles = ROLE_PARAM;
  g->nodes[5]->roles = ROLE_PARAM | ROLE_OUTPUT;
  expect(g, 1, "verify: node %5 (relu) at 5:3: only a var may have the input, param or state role "
               "(roles 0xa)\n");
  g->nodes[5]->roles = 0;
  g->nodes[5]->init = INIT_ZEROS;
  expect(g, 1, "verify: node %5 (relu) at 5:3: only a var may have an initializer\n");
  g->nodes[5]->init = INIT_NONE;
  g->nodes[2]->name = "w";
  expect(g, 1, "verify: node %2 (var) at 4:3: var name 'w' is already used by %1\n");
  arena_free(&a);
}
END_TEST

START_TEST(test_many_problems) {
  Arena a = {0};
  Graph *g = small_graph(&a);
  g->nodes[0]->id = 3;
  g->nodes[5]->roles |= ROLE_LOSS;
  g->nodes[7]->type.dtype = DT_ERR;
  g->nodes[2] = NULL;
  char *text = NULL;
  int n = verify(g, &text);
  /* %0 id; %2 NULL; %3 operand %0 not found; %4 operand %2 NULL; %5 loss
   * type; %6 second loss; %7 poisoned. Each once, one line each. */
  ck_assert_msg(n == 7, "%d problems:\n%s", n, text);
  int lines = 0;
  for (char *p = text; *p; p++) lines += *p == '\n';
  ck_assert_int_eq(lines, 7);
  ck_assert(strstr(text, "verify: node %2 (null) at 0:0: node is NULL\n"));
  ck_assert(strstr(text, "verify: node %7 (var) at 7:3: type is poisoned (DT_ERR)\n"));
  free(text);
  arena_free(&a);
}
END_TEST

/* What the reader builds verifies, and so does a graph after edits made
 * the way a pass makes them (new node, retyped through ir_infer). */
START_TEST(test_read_graph_verifies) {
  static const char text[] =
      "graph g {\n"
      "  %x = input : f32[2,3]\n"
      "  %w = param : f32[3,4] init=normal(0, 0.02)\n"
      "  %1 = matmul %x, %w : f32[2,4]\n"
      "  %s = softmax %1 axis=-1 : f32[2,4]\n"
      "  %l = mean %s axes=[-1,0] keepdims=false : f32[]\n"
      "  loss %l\n"
      "}\n";
  Arena a = {0};
  Diag d;
  diag_init(&d, "t.ir", text, sizeof text - 1, stderr);
  Module *m = ir_read(&a, &d);
  ck_assert_ptr_nonnull(m);
  Graph *g = m->graphs[0];
  ck_assert_int_eq(ir_verify(g, stderr), 0);
  Node *e = fin(op2(g, OP_EXP, g->nodes[3], NULL, g->nodes[3]->loc));
  ck_assert_int_eq(e->id, 5);
  ck_assert_int_eq(ir_verify(g, stderr), 0);
  arena_free(&a);
}
END_TEST

static Suite *verify_suite(void) {
  Suite *s = suite_create("ir_verify");
  TCase *tc = tcase_create("verify");
  tcase_add_test(tc, test_sound_graph);
  tcase_add_test(tc, test_wrong_id);
  tcase_add_test(tc, test_wrong_type);
  tcase_add_test(tc, test_losses);
  tcase_add_test(tc, test_operands);
  tcase_add_test(tc, test_attrs_and_roles);
  tcase_add_test(tc, test_many_problems);
  tcase_add_test(tc, test_read_graph_verifies);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(verify_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed != 0;
}
