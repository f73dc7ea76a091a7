/* test_simplify.c - the fold, algebra and cse passes (passes/simplify.c).
 * Each test builds a small graph, from .nn source or from graph IR text
 * (for ops the language does not spell: cast, broadcast, dropout_mask,
 * assign, grads), runs one pass and asserts what it did. run() also
 * checks the two facts every test needs: the graph verifies, and a second
 * run of the pass changes nothing. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "passes/passes.h"
#include "testutil.h"

static Arena arena;
static void teardown(void) { arena_free(&arena); }

/* ------------------------------------------------------------- helpers */

static Graph *compile(const char *src) {
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(m && errors == 0, "%s", diag ? diag : "");
  free(diag);
  return m->graphs[0];
}

/* A graph from IR text: `body` is the lines between the braces. */
static Graph *read_ir(const char *body) {
  char *text = arena_printf(&arena, "# nncc graph IR\ngraph m {\n%s}\n", body);
  char *errs = NULL;
  size_t len = 0;
  FILE *mem = open_memstream(&errs, &len);
  Diag d;
  diag_init(&d, "test.ir", text, strlen(text), mem);
  Module *m = ir_read(&arena, &d);
  fclose(mem);
  ck_assert_msg(m && d.n_errors == 0, "%s", errs);
  free(errs);
  return m->graphs[0];
}

/* The printed graph (malloc'ed). */
static char *show(const Graph *g) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  ir_print_graph(f, g);
  fclose(f);
  return buf;
}

/* Runs the pass, checks the graph verifies and that running it again
 * changes nothing. */
static void run(PassFn pass, Graph *g) {
  Diag d;
  diag_init(&d, "test.nn", "", 0, stderr);
  ck_assert(pass(g, &d));
  char *once = show(g);
  ck_assert_msg(ir_verify(g, stderr) == 0, "does not verify:\n%s", once);
  for (int i = 0; i < g->n_nodes; i++) ck_assert_int_eq(g->nodes[i]->id, i);
  ck_assert(pass(g, &d));
  char *twice = show(g);
  ck_assert_msg(!strcmp(once, twice), "not idempotent:\n%s\nthen:\n%s", once, twice);
  ck_assert_int_eq(d.n_errors, 0);
  free(once);
  free(twice);
}

static void run_dce(Graph *g) {
  Diag d;
  diag_init(&d, "test.nn", "", 0, stderr);
  ck_assert(pass_dce(g, &d));
}

/* The node bound to `name` (the last one, as a re-binding shadows). */
static Node *named(const Graph *g, const char *name) {
  Node *found = NULL;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->name && !strcmp(g->nodes[i]->name, name)) found = g->nodes[i];
  ck_assert_msg(found != NULL, "no node named '%s'", name);
  return found;
}

static Node *output(const Graph *g, const char *out_name) {
  for (int i = 0; i < g->n_nodes; i++) {
    Node *n = g->nodes[i];
    if ((n->roles & ROLE_OUTPUT) && n->out_name && !strcmp(n->out_name, out_name)) return n;
  }
  ck_abort_msg("no output '%s'", out_name);
  return NULL;
}

static int count_op(const Graph *g, Op op) {
  int k = 0;
  for (int i = 0; i < g->n_nodes; i++) k += g->nodes[i]->op == op;
  return k;
}

static int count_roles(const Graph *g, unsigned role) {
  int k = 0;
  for (int i = 0; i < g->n_nodes; i++) k += (g->nodes[i]->roles & role) != 0;
  return k;
}

static void assert_const(const Node *n, const char *type, double v) {
  char buf[TYPE_STR_MAX];
  ck_assert_msg(n->op == OP_CONST, "%s is a %s, not a const", n->name ? n->name : "?",
                op_info(n->op)->name);
  ck_assert_str_eq(type_str(&n->type, buf, sizeof buf), type);
  if (isnan(v)) ck_assert_msg(isnan(n->attr[0].f), "want NaN, got %g", n->attr[0].f);
  else ck_assert_msg(n->attr[0].f == v, "want %.17g, got %.17g", v, n->attr[0].f);
}

/* ================================================================ fold */

START_TEST(fold_elementwise) {
  Graph *g = compile("model m {\n input x: f32[4]\n a = exp(2.0) + x\n"
                     " b = sqrt(ones(f32[3])) * 2 - 0.5\n o = ones(f32[])\n"
                     " c = where(o < 2, o * 3, o * 4)\n d = -relu(o * -3)\n"
                     " e = clamp(o * 10, 0, 1)\n f = (o * 2) ** 3\n"
                     " output a, b, c, d, e, f\n}\n");
  run(pass_fold, g);
  Node *a = output(g, "a");
  ck_assert_int_eq(a->op, OP_ADD);
  assert_const(a->in[0], "f32[]", (double)(float)exp(2.0));
  assert_const(output(g, "b"), "f32[3]", 1.5);
  assert_const(output(g, "c"), "f32[]", 3);
  assert_const(output(g, "d"), "f32[]", 0);
  assert_const(output(g, "e"), "f32[]", 1);
  assert_const(output(g, "f"), "f32[]", 8);
  ck_assert_str_eq(output(g, "b")->name, "b");
}
END_TEST

START_TEST(fold_rounds_to_f32) {
  Graph *g = compile("model m {\n a = ones(f32[]) / 3\n b = exp(ones(f32[]) * 200)\n"
                     " output a, b\n}\n");
  run(pass_fold, g);
  assert_const(output(g, "a"), "f32[]", (double)(1.0f / 3.0f));
  assert_const(output(g, "b"), "f32[]", INFINITY);  /* exp(200) overflows f32 */
}
END_TEST

START_TEST(fold_keeps_inf_and_nan) {
  Graph *g = read_ir("  %one = const value=1 : f32[]\n  %zero = const value=0 : f32[]\n"
                     "  %a = div %one, %zero : f32[]\n  %b = div %zero, %zero : f32[]\n"
                     "  %c = log %zero : f32[]\n  %d = sub %a, %a : f32[]\n"
                     "  output a=%a, b=%b, c=%c, d=%d\n");
  run(pass_fold, g);
  assert_const(output(g, "a"), "f32[]", INFINITY);
  assert_const(output(g, "b"), "f32[]", NAN);
  assert_const(output(g, "c"), "f32[]", -INFINITY);
  assert_const(output(g, "d"), "f32[]", NAN);
}
END_TEST

START_TEST(fold_i32_and_bool) {
  Graph *g = read_ir("  %seven = const value=7 : i32[]\n  %two = const value=2 : i32[]\n"
                     "  %zero = const value=0 : i32[]\n  %big = const value=2147483647 : i32[]\n"
                     "  %a = mul %seven, %two : i32[]\n  %b = neg %seven : i32[]\n"
                     "  %c = sub %zero, %big : i32[]\n  %d = add %big, %seven : i32[]\n"
                     "  %e = lt %two, %seven : bool[]\n  %f = eq %e, %e : bool[]\n"
                     "  %g = where %e, %two, %seven : i32[]\n"
                     "  output a=%a, b=%b, c=%c, d=%d, e=%e, f=%f, g=%g\n");
  run(pass_fold, g);
  assert_const(output(g, "a"), "i32[]", 14);
  assert_const(output(g, "b"), "i32[]", -7);
  assert_const(output(g, "c"), "i32[]", -2147483647);
  ck_assert_int_eq(output(g, "d")->op, OP_ADD);  /* overflow: left to run time */
  assert_const(output(g, "e"), "bool[]", 1);
  assert_const(output(g, "f"), "bool[]", 1);
  assert_const(output(g, "g"), "i32[]", 2);
}
END_TEST

START_TEST(fold_cast) {
  Graph *g = read_ir("  %p = const value=2.7 : f32[3]\n  %q = const value=-2.7 : f32[]\n"
                     "  %n = const value=nan : f32[]\n  %t = const value=1 : bool[]\n"
                     "  %a = cast %p : i32[3]\n  %b = cast %q : i32[]\n  %c = cast %n : i32[]\n"
                     "  %d = cast %t : f32[]\n  %e = cast %a : f32[3]\n"
                     "  output a=%a, b=%b, c=%c, d=%d, e=%e\n");
  run(pass_fold, g);
  assert_const(output(g, "a"), "i32[3]", 2);
  assert_const(output(g, "b"), "i32[]", -2);
  ck_assert_int_eq(output(g, "c")->op, OP_CAST);  /* NaN has no i32 value */
  assert_const(output(g, "d"), "f32[]", 1);
  assert_const(output(g, "e"), "f32[3]", 2);
}
END_TEST

START_TEST(fold_data_movement_and_reductions) {
  Graph *g = compile("model m {\n o = ones(f32[2, 3]) * 2\n a = reshape(o, [3, 2])\n"
                     " b = transpose(o)\n c = o[0:1, 1:3]\n d = sum(o, axis = 1)\n"
                     " e = mean(o)\n f = max(o, axis = 0, keepdims = true)\n"
                     " h = sum(o)\n output a, b, c, d, e, f, h\n}\n");
  run(pass_fold, g);
  assert_const(output(g, "a"), "f32[3,2]", 2);
  assert_const(output(g, "b"), "f32[3,2]", 2);
  assert_const(output(g, "c"), "f32[1,2]", 2);
  assert_const(output(g, "d"), "f32[2]", 6);
  assert_const(output(g, "e"), "f32[]", 2);
  assert_const(output(g, "f"), "f32[1,3]", 2);
  assert_const(output(g, "h"), "f32[]", 12);
}
END_TEST

START_TEST(fold_broadcast_and_i32_sum) {
  Graph *g = read_ir("  %c = const value=3 : i32[4]\n  %a = broadcast %c shape=[2,4] : i32[2,4]\n"
                     "  %s = sum %a axes=[0,1] keepdims=false : i32[]\n"
                     "  %m = min %a axes=[1] keepdims=false : i32[2]\n"
                     "  output a=%a, s=%s, m=%m\n");
  run(pass_fold, g);
  assert_const(output(g, "a"), "i32[2,4]", 3);
  assert_const(output(g, "s"), "i32[]", 24);
  assert_const(output(g, "m"), "i32[2]", 3);
}
END_TEST

START_TEST(fold_leaves_vars_effects_and_masks) {
  Graph *g = read_ir("  %x = input : f32[4]\n  %s = state : f32[4]\n"
                     "  %step = const value=3 : f32[]\n  %one = const value=1 : f32[4]\n"
                     "  %a = add %x, %one : f32[4]\n"
                     "  %m = dropout_mask %step p=0.5 seed=1 shape=[4] : f32[4]\n"
                     "  %w = assign %s, %one : f32[4]\n"
                     "  %u = exp %one : f32[4]\n"
                     "  output a=%a, m=%m, u=%u\n");
  run(pass_fold, g);
  ck_assert_int_eq(output(g, "a")->op, OP_ADD);
  ck_assert_int_eq(output(g, "m")->op, OP_DROPOUT_MASK);
  ck_assert_int_eq(count_op(g, OP_ASSIGN), 1);
  ck_assert_int_eq(count_op(g, OP_VAR), 2);
  assert_const(output(g, "u"), "f32[4]", (double)(float)exp(1.0));
}
END_TEST

START_TEST(fold_moves_the_loss) {
  Graph *g = compile("model m {\n input x: f32[4]\n loss sum(ones(f32[4]) * 3)\n}\n");
  run(pass_fold, g);
  ck_assert_int_eq(count_roles(g, ROLE_LOSS), 1);
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->roles & ROLE_LOSS) assert_const(g->nodes[i], "f32[]", 12);
}
END_TEST

/* ============================================================= algebra */

START_TEST(algebra_identities_give_x) {
  Graph *g = compile("model m {\n input x: f32[4]\n a = x * 1\n b = 1 * a\n c = b + 0\n"
                     " d = 0 + c\n e = d - 0\n f = e / 1\n h = -(-f)\n i = h ** 1\n"
                     " y = exp(i)\n output y\n}\n");
  run(pass_algebra, g);
  Node *y = output(g, "y");
  ck_assert_int_eq(y->op, OP_EXP);
  ck_assert_ptr_eq(y->in[0], named(g, "x"));
  run_dce(g);
  ck_assert_int_eq(g->n_nodes, 2);
}
END_TEST

START_TEST(algebra_keeps_broadcasting_identities) {
  /* x * ones(f32[3,4]) is f32[3,4]: x itself would lose a dimension */
  Graph *g = compile("model m {\n input x: f32[4]\n input s: f32[]\n a = x * ones(f32[3, 4])\n"
                     " b = s + zeros(f32[2])\n c = 0 - s * ones(f32[2])\n output a, b, c\n}\n");
  run(pass_algebra, g);
  ck_assert_int_eq(output(g, "a")->op, OP_MUL);
  ck_assert_int_eq(output(g, "b")->op, OP_ADD);
  ck_assert_int_eq(output(g, "c")->op, OP_NEG);  /* the operand already has the shape */
}
END_TEST

START_TEST(algebra_negation_rules) {
  Graph *g = compile("model m {\n input x: f32[4]\n input y: f32[4]\n a = 0 - x\n b = x * -1\n"
                     " c = x + (-y)\n d = (-y) + x\n output a, b, c, d\n}\n");
  run(pass_algebra, g);
  Node *x = named(g, "x"), *y = named(g, "y");
  Node *a = output(g, "a"), *b = output(g, "b"), *c = output(g, "c"), *d = output(g, "d");
  ck_assert_int_eq(a->op, OP_NEG);
  ck_assert_ptr_eq(a->in[0], x);
  ck_assert_int_eq(b->op, OP_NEG);
  ck_assert_ptr_eq(b->in[0], x);
  ck_assert_int_eq(c->op, OP_SUB);
  ck_assert_ptr_eq(c->in[0], x);
  ck_assert_ptr_eq(c->in[1], y);
  ck_assert_int_eq(d->op, OP_SUB);
  ck_assert_ptr_eq(d->in[0], x);
  ck_assert_ptr_eq(d->in[1], y);
  /* the new nodes stand where the old ones stood */
  ck_assert_int_eq(a->loc.line, 4);
  ck_assert_int_eq(d->loc.line, 7);
}
END_TEST

/* The backward of a split: adjacent unslices summed become one concat
 * (then the whole-shape unslice goes); a gap or an overlap keeps them.
 * Values are checked with the reference evaluator. */
START_TEST(algebra_unslices_become_concat) {
  Graph *g = read_ir("  %a = input : f32[2,3]\n  %b = input : f32[2,3]\n  %c = input : f32[2,2]\n"
                     "  %ua = unslice %a begin=[0,0] step=[1,1] shape=[2,8] : f32[2,8]\n"
                     "  %ub = unslice %b begin=[0,3] step=[1,1] shape=[2,8] : f32[2,8]\n"
                     "  %uc = unslice %c begin=[0,6] step=[1,1] shape=[2,8] : f32[2,8]\n"
                     "  %s = add %ua, %ub : f32[2,8]\n  %y = add %s, %uc : f32[2,8]\n"
                     "  %gap = add %ua, %uc : f32[2,8]\n"
                     "  output y=%y, gap=%gap\n");
  Interp *before = interp_new(g, false);
  for (int k = 0; k < 3; k++) {
    Node *v = g->nodes[k];
    double *x = interp_var(before, v);
    for (int64_t i = 0; i < type_numel(&v->type); i++) x[i] = 10 * k + (double)i + 1;
  }
  char err[128];
  ck_assert_int_eq(interp_run(before, 0, err, sizeof err), 0);
  double want[16];
  memcpy(want, interp_value(before, output(g, "y")), sizeof want);
  interp_free(before);
  run(pass_algebra, g);
  Node *y = output(g, "y"), *gap = output(g, "gap");
  ck_assert_int_eq(y->op, OP_CONCAT);  /* the whole [2,8]: no unslice left */
  ck_assert_int_eq(y->n_in, 3);
  ck_assert_int_eq(gap->op, OP_ADD);   /* columns 3..5 are zeros: not a concat */
  Interp *after = interp_new(g, false);
  for (int k = 0; k < 3; k++) {
    Node *v = g->nodes[k];
    double *x = interp_var(after, v);
    for (int64_t i = 0; i < type_numel(&v->type); i++) x[i] = 10 * k + (double)i + 1;
  }
  ck_assert_int_eq(interp_run(after, 0, err, sizeof err), 0);
  const double *got = interp_value(after, y);
  for (int i = 0; i < 16; i++) ck_assert_msg(got[i] == want[i], "element %d: %g, want %g", i, got[i], want[i]);
  interp_free(after);
}
END_TEST

START_TEST(algebra_transposes) {
  Graph *g = compile("model m {\n input x: f32[2, 3, 4]\n a = transpose(transpose(x))\n"
                     " b = transpose(transpose(x, [1, 2, 0]), [1, 0, 2])\n"
                     " c = transpose(x, [0, 1, 2])\n"
                     " d = transpose(transpose(transpose(x, [1, 2, 0]), [1, 2, 0]), [1, 2, 0])\n"
                     " output a, b, c, d\n}\n");
  run(pass_algebra, g);
  Node *x = named(g, "x");
  /* a, c and d are x: as x is an input, the first output moves onto it
   * and the other two keep an identity */
  ck_assert_ptr_eq(output(g, "a"), x);
  Node *b = output(g, "b");
  ck_assert_int_eq(b->op, OP_TRANSPOSE);
  ck_assert_ptr_eq(b->in[0], x);
  /* x.transpose(1,2,0).transpose(1,0,2) = x.transpose(2,1,0) */
  ck_assert_int_eq(b->attr[0].list[0], 2);
  ck_assert_int_eq(b->attr[0].list[1], 1);
  ck_assert_int_eq(b->attr[0].list[2], 0);
  char buf[TYPE_STR_MAX];
  ck_assert_str_eq(type_str(&b->type, buf, sizeof buf), "f32[4,3,2]");
  Node *c = output(g, "c"), *d = output(g, "d");
  ck_assert_ptr_eq(c->in[0], x);
  ck_assert_int_eq(d->op, OP_TRANSPOSE);  /* its inner pair folded into one */
  ck_assert_ptr_eq(d->in[0]->in[0], x);
}
END_TEST

START_TEST(algebra_reshapes_and_broadcasts) {
  Graph *g = read_ir("  %x = input : f32[2,6]\n  %a = reshape %x shape=[3,4] : f32[3,4]\n"
                     "  %b = reshape %a shape=[12] : f32[12]\n  %c = reshape %a shape=[2,6] : f32[2,6]\n"
                     "  %d = reshape %x shape=[2,6] : f32[2,6]\n"
                     "  %e = broadcast %x shape=[2,6] : f32[2,6]\n"
                     "  %v = input : f32[3]\n  %f = broadcast %v shape=[2,3] : f32[2,3]\n"
                     "  %h = broadcast %f shape=[4,2,3] : f32[4,2,3]\n"
                     "  %y = add %c, %d : f32[2,6]\n  %z = add %y, %e : f32[2,6]\n"
                     "  output b=%b, z=%z, h=%h\n");
  run(pass_algebra, g);
  Node *x = named(g, "x"), *v = named(g, "v");
  Node *b = output(g, "b"), *z = output(g, "z"), *h = output(g, "h");
  ck_assert_int_eq(b->op, OP_RESHAPE);
  ck_assert_ptr_eq(b->in[0], x);
  ck_assert_ptr_eq(z->in[1], x);
  ck_assert_ptr_eq(z->in[0]->in[0], x);
  ck_assert_ptr_eq(z->in[0]->in[1], x);
  ck_assert_int_eq(h->op, OP_BROADCAST);
  ck_assert_ptr_eq(h->in[0], v);
}
END_TEST

START_TEST(algebra_pow_where_cast_reduce) {
  Graph *g = read_ir("  %x = input : f32[4]\n  %c = input : bool[4]\n"
                     "  %a = pow %x exponent=2 : f32[4]\n  %b = pow %x exponent=0.5 : f32[4]\n"
                     "  %d = pow %x exponent=-0.5 : f32[4]\n  %e = pow %x exponent=3 : f32[4]\n"
                     "  %f = where %c, %a, %a : f32[4]\n  %h = cast %b : f32[4]\n"
                     "  %i = sum %d axes=[] keepdims=false : f32[4]\n"
                     "  %j = stop_gradient %e : f32[4]\n"
                     "  output f=%f, h=%h, i=%i, j=%j\n");
  run(pass_algebra, g);
  Node *x = named(g, "x");
  Node *f = output(g, "f"), *h = output(g, "h"), *i = output(g, "i"), *j = output(g, "j");
  ck_assert_int_eq(f->op, OP_SQUARE);
  ck_assert_int_eq(h->op, OP_SQRT);
  ck_assert_int_eq(i->op, OP_RSQRT);
  ck_assert_int_eq(j->op, OP_STOP_GRADIENT);  /* never removed */
  ck_assert_int_eq(j->in[0]->op, OP_POW);
  ck_assert_ptr_eq(f->in[0], x);
  ck_assert_str_eq(f->name, "a");  /* the square stands for a, then for f */
  ck_assert_str_eq(f->out_name, "f");
}
END_TEST

START_TEST(algebra_where_broadcast_condition_stays) {
  Graph *g = read_ir("  %x = input : f32[4]\n  %c = input : bool[3,4]\n"
                     "  %f = where %c, %x, %x : f32[3,4]\n  output f=%f\n");
  run(pass_algebra, g);
  ck_assert_int_eq(output(g, "f")->op, OP_WHERE);
}
END_TEST

START_TEST(algebra_output_names_survive) {
  /* a is replaced by x (a var may become an output); b cannot move onto x
   * as well and stays; the loss moves onto the sum */
  Graph *g = compile("model m {\n input x: f32[4]\n a = x * 1\n b = x + 0\n"
                     " output a, b\n loss sum(x) * 1\n}\n");
  run(pass_algebra, g);
  Node *x = named(g, "x");
  ck_assert_ptr_eq(output(g, "a"), x);
  ck_assert_int_eq(output(g, "b")->op, OP_ADD);
  ck_assert_int_eq(count_roles(g, ROLE_OUTPUT), 2);
  ck_assert_int_eq(count_roles(g, ROLE_LOSS), 1);
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->roles & ROLE_LOSS) ck_assert_int_eq(g->nodes[i]->op, OP_SUM);
  ck_assert_int_eq(output(g, "a")->out_index, 0);
  ck_assert_int_eq(output(g, "b")->out_index, 1);
}
END_TEST

START_TEST(algebra_grads_never_merge) {
  Graph *g = read_ir("  %w = param : f32[4]\n  %v = param : f32[4]\n  %x = input : f32[4]\n"
                     "  %one = const value=1 : f32[]\n  %t = exp %x : f32[4]\n"
                     "  %gw = mul %t, %one : f32[4]\n  %gv = mul %t, %one : f32[4]\n"
                     "  %gx = mul %x, %one : f32[4]\n"
                     "  %l = sum %gx axes=[0] keepdims=false : f32[]\n"
                     "  %u = mul %w, %v : f32[4]\n  %p = sum %u axes=[0] keepdims=false : f32[]\n"
                     "  loss %p\n  grad w=%gw, v=%gv, x=%gx\n");
  run(pass_algebra, g);
  ck_assert_int_eq(count_roles(g, ROLE_GRAD), 3);
  Node *t = named(g, "t");
  ck_assert(t->roles & ROLE_GRAD);  /* the first grad moved onto exp */
  ck_assert_ptr_eq(t->grad_of, named(g, "w"));
  ck_assert_int_eq(named(g, "gv")->op, OP_MUL);
  ck_assert_int_eq(named(g, "gx")->op, OP_MUL);  /* a grad never moves onto a var */
}
END_TEST

START_TEST(algebra_reaches_a_fixed_point) {
  /* each rewrite exposes the next: pow 1 -> neg(neg) -> x * 1 */
  Graph *g = compile("model m {\n input x: f32[4]\n a = -(-(x ** 1)) * 1\n"
                     " y = relu(a)\n output y\n}\n");
  run(pass_algebra, g);
  ck_assert_ptr_eq(output(g, "y")->in[0], named(g, "x"));
}
END_TEST

/* ================================================================= cse */

START_TEST(cse_merges_equal_values) {
  Graph *g = compile("model m {\n input x: f32[4]\n a = exp(x) * 2\n b = exp(x) * 2\n"
                     " y = a + b\n output y\n}\n");
  run(pass_cse, g);
  Node *y = output(g, "y");
  ck_assert_ptr_eq(y->in[0], y->in[1]);
  run_dce(g);
  ck_assert_int_eq(count_op(g, OP_EXP), 1);
  ck_assert_int_eq(count_op(g, OP_CONST), 1);
}
END_TEST

START_TEST(cse_compares_attributes) {
  Graph *g = read_ir("  %x = input : f32[4]\n  %pz = const value=0 : f32[]\n"
                     "  %nz = const value=-0 : f32[]\n  %i = const value=0 : i32[]\n"
                     "  %s = const value=0 : f32[4]\n"
                     "  %a = leaky_relu %x slope=0.1 : f32[4]\n  %b = leaky_relu %x slope=0.2 : f32[4]\n"
                     "  %c = leaky_relu %x slope=0.1 : f32[4]\n"
                     "  %m = reshape %x shape=[2,2] : f32[2,2]\n  %n = reshape %x shape=[4,1] : f32[4,1]\n"
                     "  %p = sum %m axes=[0] keepdims=false : f32[2]\n"
                     "  %q = sum %m axes=[1] keepdims=false : f32[2]\n"
                     "  %r = sum %m axes=[0] keepdims=true : f32[1,2]\n"
                     "  output pz=%pz, nz=%nz, i=%i, s=%s, a=%a, b=%b, c=%c, n=%n, p=%p, q=%q, r=%r\n");
  run(pass_cse, g);
  /* only c merges into a, and it cannot: both are outputs */
  ck_assert_int_eq(g->n_nodes, 13);
  ck_assert_int_eq(count_roles(g, ROLE_OUTPUT), 11);
}
END_TEST

START_TEST(cse_moves_output_onto_the_survivor) {
  Graph *g = compile("model m {\n input x: f32[4]\n h = tanh(x)\n y = tanh(x)\n"
                     " z = h * 2\n output y, z\n}\n");
  run(pass_cse, g);
  Node *y = output(g, "y");
  ck_assert_ptr_eq(y, named(g, "h"));
  ck_assert_ptr_eq(output(g, "z")->in[0], y);
  ck_assert_int_eq(count_op(g, OP_TANH), 1);
}
END_TEST

START_TEST(cse_never_merges_vars_effects_dropout) {
  Graph *g = read_ir("  %x = input : f32[4]\n  %x2 = input : f32[4]\n  %s = state : f32[4]\n"
                     "  %step = input : f32[]\n"
                     "  %a = assign %s, %x : f32[4]\n  %b = assign %s, %x : f32[4]\n"
                     "  %d1 = dropout %x p=0.5 : f32[4]\n  %d2 = dropout %x p=0.5 : f32[4]\n"
                     "  %m1 = dropout_mask %step p=0.5 seed=7 shape=[4] : f32[4]\n"
                     "  %m2 = dropout_mask %step p=0.5 seed=7 shape=[4] : f32[4]\n"
                     "  %m3 = dropout_mask %step p=0.5 seed=8 shape=[4] : f32[4]\n"
                     "  %y1 = add %d1, %d2 : f32[4]\n  %y2 = add %m1, %m2 : f32[4]\n"
                     "  %y3 = add %y2, %m3 : f32[4]\n  %y4 = add %y3, %x2 : f32[4]\n"
                     "  output y1=%y1, y4=%y4\n");
  run(pass_cse, g);
  ck_assert_int_eq(count_op(g, OP_VAR), 4);
  ck_assert_int_eq(count_op(g, OP_ASSIGN), 2);
  ck_assert_int_eq(count_op(g, OP_DROPOUT), 2);
  ck_assert_int_eq(count_op(g, OP_DROPOUT_MASK), 2);  /* same seed: the same mask */
  Node *y2 = named(g, "y2");
  ck_assert_ptr_eq(y2->in[0], y2->in[1]);
}
END_TEST

START_TEST(cse_grads_never_merge) {
  Graph *g = read_ir("  %w = param : f32[4]\n  %v = param : f32[4]\n"
                     "  %gw = exp %w : f32[4]\n  %gv = exp %w : f32[4]\n"
                     "  %u = mul %w, %v : f32[4]\n  %p = sum %u axes=[0] keepdims=false : f32[]\n"
                     "  loss %p\n  grad w=%gw, v=%gv\n");
  run(pass_cse, g);
  ck_assert_int_eq(count_op(g, OP_EXP), 2);
  ck_assert_int_eq(count_roles(g, ROLE_GRAD), 2);
}
END_TEST

START_TEST(cse_cascades_in_one_sweep) {
  Graph *g = compile("model m {\n input x: f32[4]\n a = sigmoid(exp(x) + 1)\n"
                     " b = sigmoid(exp(x) + 1)\n y = a * b\n output y\n}\n");
  run(pass_cse, g);
  Node *y = output(g, "y");
  ck_assert_ptr_eq(y->in[0], y->in[1]);
}
END_TEST

/* ============================================================ together */

START_TEST(fold_algebra_cse_dce_together) {
  Graph *g = compile("model m {\n input x: f32[4]\n k = exp(zeros(f32[]))\n a = x * k\n"
                     " b = x * exp(zeros(f32[]))\n y = a - b\n output y\n}\n");
  run(pass_fold, g);
  run(pass_algebra, g);
  run(pass_cse, g);
  run_dce(g);
  Node *y = output(g, "y");
  ck_assert_int_eq(y->op, OP_SUB);
  ck_assert_ptr_eq(y->in[0], named(g, "x"));
  ck_assert_ptr_eq(y->in[1], named(g, "x"));
  ck_assert_int_eq(g->n_nodes, 2);
  ck_assert_int_eq(ir_verify(g, stderr), 0);
}
END_TEST

/* ========================================================== semantics */

/* The same values in, the same values out: the reference evaluator runs
 * a module before and after fold, algebra, cse and dce, with the same
 * inputs and initial params, and every output, loss, gradient and var
 * written by the step must agree (to float rounding: folding computes in
 * double). Training graphs come from the pipeline's lower, autodiff and
 * optimizer passes, so dropout masks, batch statistics and updates are
 * covered too. */

static Module *pipeline_module(const char *src) {
  char *diag = NULL;
  int errors = 0;
  Module *m = tu_compile(&arena, src, &diag, &errors);
  ck_assert_msg(m && errors == 0, "%s", diag ? diag : "");
  free(diag);
  Diag d;
  diag_init(&d, "test.nn", "", 0, stderr);
  PassOptions o = {.stop_after = "optimizer", .out = stderr};
  ck_assert(pass_run_pipeline(m, &d, &o));
  return m;
}

/* Inputs: f32 in [-1, 1) from a fixed LCG; i32 and bool 0, a valid
 * label and index everywhere. */
static void fill_inputs(Interp *in, const Graph *g) {
  uint64_t s = 12345;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_VAR || !(n->roles & ROLE_INPUT)) continue;
    double *v = interp_var(in, n);
    for (int64_t k = 0; k < type_numel(&n->type); k++) {
      s = s * 6364136223846793005ull + 1442695040888963407ull;
      v[k] = n->type.dtype == DT_F32 ? (double)(s >> 11) * 0x1p-52 - 1 : 0;
    }
  }
}

/* The node of `g` that plays n's part (in another copy of the graph). */
static const Node *counterpart(const Graph *g, const Node *n) {
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *c = g->nodes[i];
    if (n->op == OP_VAR && c->op == OP_VAR && !strcmp(c->name, n->name)) return c;
    if ((n->roles & ROLE_OUTPUT) && (c->roles & ROLE_OUTPUT) && !strcmp(c->out_name, n->out_name))
      return c;
    if ((n->roles & ROLE_LOSS) && (c->roles & ROLE_LOSS)) return c;
    if ((n->roles & ROLE_GRAD) && (c->roles & ROLE_GRAD) && !strcmp(c->grad_of->name, n->grad_of->name))
      return c;
  }
  return NULL;
}

static void assert_close(const char *what, const double *a, const double *b, int64_t n) {
  for (int64_t k = 0; k < n; k++) {
    bool same = (isnan(a[k]) && isnan(b[k])) || a[k] == b[k] ||
                fabs(a[k] - b[k]) <= 1e-4 * fmax(1, fabs(a[k]));
    ck_assert_msg(same, "%s[%lld]: %.9g before, %.9g after", what, (long long)k, a[k], b[k]);
  }
}

static void assert_same_semantics(const char *src) {
  Module *ref = pipeline_module(src), *opt = pipeline_module(src);
  ck_assert_int_eq(ref->n_graphs, opt->n_graphs);
  for (int gi = 0; gi < opt->n_graphs; gi++) {
    Graph *g = opt->graphs[gi], *r = ref->graphs[gi];
    run(pass_fold, g);
    run(pass_algebra, g);
    run(pass_cse, g);
    run_dce(g);
    ck_assert_int_eq(ir_verify(g, stderr), 0);
    Interp *ir = interp_new(r, true), *io = interp_new(g, true);
    interp_init(ir, 7);
    interp_init(io, 7);
    fill_inputs(ir, r);
    fill_inputs(io, g);
    char err[256];
    unsigned flags = INTERP_ASSIGN | INTERP_UPDATE;
    ck_assert_msg(interp_run(ir, flags, err, sizeof err) == 0, "%s", err);
    ck_assert_msg(interp_run(io, flags, err, sizeof err) == 0, "%s", err);
    int compared = 0;
    for (int i = 0; i < r->n_nodes; i++) {
      const Node *n = r->nodes[i];
      if (!(n->roles & (ROLE_OUTPUT | ROLE_LOSS | ROLE_GRAD)) && n->op != OP_VAR) continue;
      const Node *c = counterpart(g, n);
      ck_assert_msg(c != NULL, "%s: %%%d has no counterpart", r->name, i);
      const double *a = n->op == OP_VAR ? interp_var(ir, n) : interp_value(ir, n);
      const double *b = c->op == OP_VAR && n->op == OP_VAR ? interp_var(io, c) : interp_value(io, c);
      char what[256];
      snprintf(what, sizeof what, "%s: %s", r->name,
               n->op == OP_VAR ? n->name : n->out_name ? n->out_name : "loss or grad");
      assert_close(what, a, b, type_numel(&n->type));
      compared++;
    }
    ck_assert_int_gt(compared, 0);
    interp_free(ir);
    interp_free(io);
  }
}

START_TEST(semantics_of_the_examples) {
  static const char *const names[] = {"char_rnn", "lenet", "mlp", "sine", "spiral"};
  for (int e = 0; e < 5; e++) {
    char path[1024];
    snprintf(path, sizeof path, "%s/examples/%s.nn", NNCC_SOURCE_DIR, names[e]);
    size_t len;
    char *src = tu_read_file(path, &len);
    ck_assert_msg(src != NULL, "cannot read %s", path);
    assert_same_semantics(src);
    free(src);
  }
}
END_TEST

START_TEST(semantics_of_simplifiable_code) {
  assert_same_semantics(
      "model m {\n input x: f32[4, 1]\n input y: f32[4, 1]\n"
      " param w: f32[1, 3] = uniform(-1, 1)\n"
      " param b: f32[3] = uniform(-1, 1)\n state s: f32[3] = ones()\n"
      " k = exp(zeros(f32[])) * 2\n h = (x @ w) * 1 + b * (k / 2)\n"
      " h2 = transpose(transpose(h)) + 0\n h3 = -(-relu(h2)) ** 2\n"
      " h4 = dropout(h3, p = 0.25) + dropout(h3, p = 0.25)\n"
      " h5 = batch_norm(h4, ones(f32[3]), zeros(f32[3]), s, s)\n"
      " a = reshape(reshape(h5 - (-h), [12]), [4, 3])\n"
      " c = sum(a * a, axis = 1, keepdims = true) + sum(a * a, axis = 1, keepdims = true)\n"
      " output h, c\n loss mse(c, y) * 1\n}\n"
"train m {\n optimizer = adam(lr = 0.01)\n data = sine(n = 16)\n}\n");
}
END_TEST

int main(void) {
  Suite *s = suite_create("simplify");
  TCase *tc = tcase_create("simplify");
  tcase_add_checked_fixture(tc, NULL, teardown);
  tcase_set_timeout(tc, 300);  /* the evaluator runs lenet in double, unoptimized */
  tcase_add_test(tc, fold_elementwise);
  tcase_add_test(tc, fold_rounds_to_f32);
  tcase_add_test(tc, fold_keeps_inf_and_nan);
  tcase_add_test(tc, fold_i32_and_bool);
  tcase_add_test(tc, fold_cast);
  tcase_add_test(tc, fold_data_movement_and_reductions);
  tcase_add_test(tc, fold_broadcast_and_i32_sum);
  tcase_add_test(tc, fold_leaves_vars_effects_and_masks);
  tcase_add_test(tc, fold_moves_the_loss);
  tcase_add_test(tc, algebra_identities_give_x);
  tcase_add_test(tc, algebra_keeps_broadcasting_identities);
  tcase_add_test(tc, algebra_negation_rules);
  tcase_add_test(tc, algebra_transposes);
  tcase_add_test(tc, algebra_unslices_become_concat);
  tcase_add_test(tc, algebra_reshapes_and_broadcasts);
  tcase_add_test(tc, algebra_pow_where_cast_reduce);
  tcase_add_test(tc, algebra_where_broadcast_condition_stays);
  tcase_add_test(tc, algebra_output_names_survive);
  tcase_add_test(tc, algebra_grads_never_merge);
  tcase_add_test(tc, algebra_reaches_a_fixed_point);
  tcase_add_test(tc, cse_merges_equal_values);
  tcase_add_test(tc, cse_compares_attributes);
  tcase_add_test(tc, cse_moves_output_onto_the_survivor);
  tcase_add_test(tc, cse_never_merges_vars_effects_dropout);
  tcase_add_test(tc, cse_grads_never_merge);
  tcase_add_test(tc, cse_cascades_in_one_sweep);
  tcase_add_test(tc, fold_algebra_cse_dce_together);
  tcase_add_test(tc, semantics_of_the_examples);
  tcase_add_test(tc, semantics_of_simplifiable_code);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
