/* build.c - the node builder of build.h. */
#include "passes/build.h"

#include <string.h>

Node *b_op(Builder *b, Op op, Node *const *ins, int n) {
  Node *x = ir_node_new(b->g, op, ins, n, b->loc);
  if (!ir_infer(x, NULL)) {
    char t0[TYPE_STR_MAX] = "", t1[TYPE_STR_MAX] = "";
    if (n > 0) type_str(&ins[0]->type, t0, sizeof t0);
    if (n > 1) type_str(&ins[1]->type, t1, sizeof t1);
    nncc_raise("internal error: a pass built an ill-typed '%s' from %s %s at %d:%d",
               op_info(op)->name, t0, t1, b->loc.line, b->loc.col);
  }
  return x;
}

Node *b_op1(Builder *b, Op op, Node *x) { return b_op(b, op, &x, 1); }
Node *b_op2(Builder *b, Op op, Node *x, Node *y) {
  Node *ins[2] = {x, y};
  return b_op(b, op, ins, 2);
}
Node *b_op3(Builder *b, Op op, Node *x, Node *y, Node *z) {
  Node *ins[3] = {x, y, z};
  return b_op(b, op, ins, 3);
}

Node *b_f(Builder *b, double v) {
  Node *c = ir_const(b->g, DT_F32, v, b->loc);
  return c;
}

Node *b_fill(Builder *b, double v, const Type *t) {
  Node *c = ir_const(b->g, t->dtype, v, b->loc);
  c->type = *t;
  return c;
}

Node *b_add(Builder *b, Node *x, Node *y) { return b_op2(b, OP_ADD, x, y); }
Node *b_sub(Builder *b, Node *x, Node *y) { return b_op2(b, OP_SUB, x, y); }
Node *b_mul(Builder *b, Node *x, Node *y) { return b_op2(b, OP_MUL, x, y); }
Node *b_div(Builder *b, Node *x, Node *y) { return b_op2(b, OP_DIV, x, y); }
Node *b_neg(Builder *b, Node *x) { return b_op1(b, OP_NEG, x); }
Node *b_scale(Builder *b, Node *x, double s) { return s == 1 ? x : b_mul(b, x, b_f(b, s)); }
Node *b_where(Builder *b, Node *c, Node *x, Node *y) { return b_op3(b, OP_WHERE, c, x, y); }

Node *b_pow(Builder *b, Node *x, double p) {
  Node *n = ir_node_new(b->g, OP_POW, &x, 1, b->loc);
  n->attr[0].f = p;
  NNCC_ASSERT(ir_infer(n, NULL));
  return n;
}

Node *b_clamp(Builder *b, Node *x, double lo, double hi) {
  Node *n = ir_node_new(b->g, OP_CLAMP, &x, 1, b->loc);
  n->attr[0].f = lo;
  n->attr[1].f = hi;
  NNCC_ASSERT(ir_infer(n, NULL));
  return n;
}

static Node *with_list(Builder *b, Op op, Node *x, const int64_t *v, int count) {
  Node *n = ir_node_new(b->g, op, &x, 1, b->loc);
  ir_set_list(b->g, n, 0, v, count);
  if (!ir_infer(n, NULL)) nncc_raise("internal error: a pass built an ill-typed '%s'", op_info(op)->name);
  return n;
}

Node *b_reshape(Builder *b, Node *x, const int64_t *dims, int rank) {
  Type t = type_make(x->type.dtype, rank, dims);
  if (type_eq(&t, &x->type)) return x;
  return with_list(b, OP_RESHAPE, x, dims, rank);
}

Node *b_reshape_as(Builder *b, Node *x, const Type *t) { return b_reshape(b, x, t->dim, t->rank); }

Node *b_broadcast(Builder *b, Node *x, const Type *t) {
  if (x->type.rank == t->rank && !memcmp(x->type.dim, t->dim, sizeof(int64_t) * (size_t)t->rank)) return x;
  return with_list(b, OP_BROADCAST, x, t->dim, t->rank);
}

Node *b_reduce(Builder *b, Op op, Node *x, const int64_t *axes, int n, bool keepdims) {
  Node *r = ir_node_new(b->g, op, &x, 1, b->loc);
  ir_set_list(b->g, r, 0, axes, n);
  r->attr[1].i = keepdims;
  if (!ir_infer(r, NULL)) nncc_raise("internal error: a pass built an ill-typed '%s'", op_info(op)->name);
  return r;
}

Node *b_transpose(Builder *b, Node *x, const int64_t *perm) {
  return with_list(b, OP_TRANSPOSE, x, perm, x->type.rank);
}

Node *b_slice(Builder *b, Node *x, const int64_t *begin, const int64_t *end, const int64_t *step) {
  int r = x->type.rank;
  bool whole = true;
  for (int i = 0; i < r; i++) whole &= begin[i] == 0 && end[i] == x->type.dim[i] && step[i] == 1;
  if (whole) return x;
  Node *n = ir_node_new(b->g, OP_SLICE, &x, 1, b->loc);
  ir_set_list(b->g, n, 0, begin, r);
  ir_set_list(b->g, n, 1, end, r);
  ir_set_list(b->g, n, 2, step, r);
  NNCC_ASSERT(ir_infer(n, NULL));
  return n;
}

Node *b_softmax(Builder *b, Op op, Node *x, int64_t axis) {
  Node *n = ir_node_new(b->g, op, &x, 1, b->loc);
  n->attr[0].i = axis;
  NNCC_ASSERT(ir_infer(n, NULL));
  return n;
}

Node *b_one_hot(Builder *b, Node *labels, int64_t depth) {
  Node *n = ir_node_new(b->g, OP_ONE_HOT, &labels, 1, b->loc);
  n->attr[0].i = depth;
  NNCC_ASSERT(ir_infer(n, NULL));
  return n;
}

Node *b_unbroadcast(Builder *b, Node *g, const Type *target) {
  const Type *t = &g->type;
  if (type_eq(t, target)) return g;
  int lead = t->rank - target->rank;
  NNCC_ASSERT(lead >= 0);
  int64_t axes[IR_MAX_RANK];
  int n = 0;
  for (int i = 0; i < t->rank; i++)
    if (i < lead || (target->dim[i - lead] == 1 && t->dim[i] != 1)) axes[n++] = i;
  Node *s = n ? b_reduce(b, OP_SUM, g, axes, n, false) : g;
  return b_reshape_as(b, s, target);
}

Node *b_keepdims(Builder *b, Node *x, const Type *input, const int64_t *axes, int n) {
  int64_t dims[IR_MAX_RANK];
  for (int i = 0; i < input->rank; i++) dims[i] = input->dim[i];
  for (int k = 0; k < n; k++) dims[axes[k]] = 1;
  return b_reshape(b, x, dims, input->rank);
}

Node *b_state(Builder *b, const char *name, const Type *t, InitKind init, double arg) {
  Node *v = ir_var(b->g, name, ROLE_STATE, *t, b->loc);
  v->init = init;
  v->init_arg[0] = arg;
  return v;
}
