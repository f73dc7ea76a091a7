/* test_contract.c - ops.def is a contract: what its flags promise, every
 * op keeps, checked over OP_COUNT and naming the op that does not.
 *   - autodiff has a gradient rule exactly for the ops that are not
 *     leaves, OPF_NOGRAD or OPF_LOWERED (a missing rule would silently
 *     make the gradient zero);
 *   - ir_scalar, the arithmetic that folding and the reference evaluator
 *     share, defines every elementwise op but cast, and nothing else;
 *   - the flags agree with the arities they imply.
 * The rest of the contract is checked where the cases are: every op has a
 * row in the gradient test (tests/passes/test_gradients.c,
 * every_op_has_a_row) and in the JIT-vs-reference test, which runs
 * codegen and the evaluator on it (tests/codegen/test_jit.c, likewise);
 * every per-op switch names every op (-Wswitch, no `default:`). */
#include <check.h>
#include <stdio.h>
#include <string.h>

#include "ir/ir.h"
#include "passes/passes.h"

/* Appends op's name to a list of culprits. */
static void blame(char *list, size_t size, Op op) {
  size_t k = strlen(list);
  snprintf(list + k, size - k, " %s", op_info(op)->name);
}

START_TEST(gradient_rule_exactly_for_differentiable_ops) {
  char missing[2048] = "", extra[2048] = "";
  for (int i = 0; i < OP_COUNT; i++) {
    unsigned f = op_info((Op)i)->flags;
    bool want = !(f & (OPF_LEAF | OPF_NOGRAD | OPF_LOWERED));
    bool has = pass_has_gradient_rule((Op)i);
    if (want && !has) blame(missing, sizeof missing, (Op)i);
    if (!want && has) blame(extra, sizeof extra, (Op)i);
  }
  ck_assert_msg(!*missing, "no gradient rule (passes/autodiff.c rule_of), and not flagged OPF_NOGRAD:%s",
                missing);
  ck_assert_msg(!*extra, "a gradient rule for an op flagged leaf, OPF_NOGRAD or OPF_LOWERED:%s", extra);
}
END_TEST

START_TEST(scalar_semantics_for_every_elementwise_op) {
  char missing[2048] = "", extra[2048] = "";
  Attr at[IR_MAX_ATTRS];
  memset(at, 0, sizeof at);
  at[0].f = -1, at[1].f = 1;  /* leaky_relu's slope, clamp's bounds, ... */
  const double x[3] = {0.5, 0.25, 1};
  for (int i = 0; i < OP_COUNT; i++) {
    bool want = (op_info((Op)i)->flags & OPF_ELEMWISE) && i != OP_CAST;
    double v;
    bool has = ir_scalar((Op)i, at, x, &v);
    if (want && !has) blame(missing, sizeof missing, (Op)i);
    if (!want && has) blame(extra, sizeof extra, (Op)i);
  }
  ck_assert_msg(!*missing, "elementwise, but no arithmetic in ir/scalar.c:%s", missing);
  ck_assert_msg(!*extra, "arithmetic in ir/scalar.c for an op not flagged OPF_ELEMWISE:%s", extra);
}
END_TEST

START_TEST(flags_agree_with_arity) {
  char bad[2048] = "";
  for (int i = 0; i < OP_COUNT; i++) {
    const OpInfo *o = op_info((Op)i);
    unsigned f = o->flags;
    bool ok = true;
    if ((f & OPF_LEAF) && o->arity != 0) ok = false;
    if (!(f & OPF_LEAF) && o->arity == 0) ok = false;
    if ((f & OPF_ELEMWISE) && (o->arity < 1 || o->arity > 3)) ok = false;
    if ((f & OPF_COMPARE) && !((f & OPF_ELEMWISE) && o->arity == 2 && (f & OPF_NOGRAD))) ok = false;
    if ((f & (OPF_LOSS | OPF_REDUCE)) && o->arity != ((f & OPF_LOSS) ? 2 : 1)) ok = false;
    if ((f & OPF_LOWERED) && (f & (OPF_NOGRAD | OPF_ELEMWISE | OPF_EFFECT))) ok = false;
    if ((f & OPF_EFFECT) && !(f & OPF_NOGRAD)) ok = false;
    if (!ok) blame(bad, sizeof bad, (Op)i);
  }
  ck_assert_msg(!*bad, "flags that contradict the arity or each other (ir/ops.def):%s", bad);
}
END_TEST

static Suite *contract_suite(void) {
  Suite *s = suite_create("contract");
  TCase *tc = tcase_create("ops.def");
  tcase_add_test(tc, gradient_rule_exactly_for_differentiable_ops);
  tcase_add_test(tc, scalar_semantics_for_every_elementwise_op);
  tcase_add_test(tc, flags_agree_with_arity);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(contract_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
