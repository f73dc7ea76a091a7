/* build.h - internal to passes/: a small node builder for passes that
 * write new graph (lowering, autodiff, the optimizer). Every node is
 * typed by ir_infer as it is made; a rule that builds an ill-typed node
 * is a compiler bug and stops with an internal error. New nodes take the
 * builder's location: the user's token of the op that caused them. */
#ifndef NNCC_PASSES_BUILD_H
#define NNCC_PASSES_BUILD_H

#include "passes/passes.h"

typedef struct Builder {
  Graph *g;
  SrcLoc loc;
} Builder;

Node *b_op(Builder *b, Op op, Node *const *ins, int n);
Node *b_op1(Builder *b, Op op, Node *x);
Node *b_op2(Builder *b, Op op, Node *x, Node *y);
Node *b_op3(Builder *b, Op op, Node *x, Node *y, Node *z);
Node *b_f(Builder *b, double v);                       /* f32[] constant */
Node *b_fill(Builder *b, double v, const Type *t);     /* constant of type t */
Node *b_add(Builder *b, Node *x, Node *y);
Node *b_sub(Builder *b, Node *x, Node *y);
Node *b_mul(Builder *b, Node *x, Node *y);
Node *b_div(Builder *b, Node *x, Node *y);
Node *b_neg(Builder *b, Node *x);
Node *b_scale(Builder *b, Node *x, double s);          /* x * s */
Node *b_where(Builder *b, Node *c, Node *x, Node *y);
Node *b_pow(Builder *b, Node *x, double p);
Node *b_clamp(Builder *b, Node *x, double lo, double hi);
Node *b_reshape(Builder *b, Node *x, const int64_t *dims, int rank);
Node *b_reshape_as(Builder *b, Node *x, const Type *t);  /* same element count */
Node *b_broadcast(Builder *b, Node *x, const Type *t);
Node *b_reduce(Builder *b, Op op, Node *x, const int64_t *axes, int n, bool keepdims);
Node *b_transpose(Builder *b, Node *x, const int64_t *perm);
Node *b_slice(Builder *b, Node *x, const int64_t *begin, const int64_t *end, const int64_t *step);
Node *b_softmax(Builder *b, Op op, Node *x, int64_t axis);
Node *b_one_hot(Builder *b, Node *labels, int64_t depth);
/* Sums g down to `target`'s shape: the adjoint of NumPy broadcasting. */
Node *b_unbroadcast(Builder *b, Node *g, const Type *target);
/* x with the reduced axes put back as size 1 (a keepdims=false result
 * reshaped to keepdims=true), to broadcast against the input. */
Node *b_keepdims(Builder *b, Node *x, const Type *input, const int64_t *axes, int n);
/* A state var made by a pass (optimizer moments, the step counter). */
Node *b_state(Builder *b, const char *name, const Type *t, InitKind init, double arg);

#endif
