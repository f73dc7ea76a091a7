/* autodiff.c - reverse-mode automatic differentiation as a graph pass.
 *
 * From a scalar y, walk the graph backward (ids descending is reverse
 * topological order) and append, for every node y depends on, the nodes
 * computing its adjoint d y / d node. The rules live in one table keyed
 * by op and build the adjoints from ordinary ops - no opaque "grad" op
 * that only codegen understands - so the backward graph is fused and
 * compiled like the forward, and autodiff can run again on a graph that
 * already holds a backward pass (grad of grad, Hessian-vector products).
 * Fan-out accumulates: a node used twice gets the sum of both adjoints.
 * Broadcasting is undone by summing over the broadcast axes.
 *
 * pass_autodiff runs this from the loss of every training graph with
 * respect to every param and f32 input (SPEC §4: grad(i) is valid for
 * both) and marks the results ROLE_GRAD. */
#include "passes/build.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

int ad_test_broken_op = -1;

typedef struct AD {
  Builder b;
  Node **adj;      /* adjoint per node id of the original graph */
  char *needs;     /* depends on a wrt var and reaches y */
  int n;           /* node count before the backward pass */
} AD;

/* Adds `c`, the contribution of node n to the adjoint of its k-th operand. */
static void give(AD *ad, Node *n, int k, Node *c) {
  Node *x = n->in[k];
  if (!c || !ad->needs[x->id]) return;
  if ((int)n->op == ad_test_broken_op && k == 0) c = b_scale(&ad->b, c, 1.5);  /* tests only */
  NNCC_ASSERT(type_eq(&c->type, &x->type));
  ad->adj[x->id] = ad->adj[x->id] ? b_add(&ad->b, ad->adj[x->id], c) : c;
}

static bool want(const AD *ad, const Node *n, int k) { return ad->needs[n->in[k]->id] != 0; }

/* Contribution through an elementwise op: g * local, summed back to the
 * operand's shape when the op broadcast it. */
static void give_ew(AD *ad, Node *n, int k, Node *c) {
  if (c) give(ad, n, k, b_unbroadcast(&ad->b, c, &n->in[k]->type));
}

/* ------------------------------------------------------- elementwise */

static void rule_unary(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  Node *x = n->in[0], *c = NULL;
  switch (n->op) {
  case OP_NEG: c = b_neg(b, g); break;
  case OP_EXP: c = b_mul(b, g, n); break;
  case OP_LOG: c = b_div(b, g, x); break;
  case OP_SQRT: c = b_div(b, g, b_scale(b, n, 2)); break;
  case OP_RSQRT: c = b_mul(b, g, b_scale(b, b_div(b, n, x), -0.5)); break;  /* -x^-3/2 / 2 */
  case OP_ABS: {
    Node *zero = b_f(b, 0);
    Node *sign = b_where(b, b_op2(b, OP_GT, x, zero), b_f(b, 1),
                         b_where(b, b_op2(b, OP_LT, x, zero), b_f(b, -1), zero));
    c = b_mul(b, g, sign);
    break;
  }
  case OP_SQUARE: c = b_mul(b, g, b_scale(b, x, 2)); break;
  case OP_RELU: c = b_where(b, b_op2(b, OP_GT, x, b_f(b, 0)), g, b_f(b, 0)); break;
  case OP_LEAKY_RELU:
    c = b_where(b, b_op2(b, OP_GT, x, b_f(b, 0)), g, b_scale(b, g, n->attr[0].f));
    break;
  case OP_SIGMOID: c = b_mul(b, g, b_mul(b, n, b_sub(b, b_f(b, 1), n))); break;
  case OP_TANH: c = b_mul(b, g, b_sub(b, b_f(b, 1), b_op1(b, OP_SQUARE, n))); break;
  case OP_GELU: {
    /* d/dx x Phi(x) = Phi(x) + x phi(x), the exact (erf) form */
    Node *cdf = b_scale(b, b_add(b, b_f(b, 1), b_op1(b, OP_ERF, b_scale(b, x, M_SQRT1_2))), 0.5);
    Node *pdf = b_scale(b, b_op1(b, OP_EXP, b_scale(b, b_op1(b, OP_SQUARE, x), -0.5)),
                        0.5 * M_2_SQRTPI * M_SQRT1_2);  /* 1/sqrt(2 pi) */
    c = b_mul(b, g, b_add(b, cdf, b_mul(b, x, pdf)));
    break;
  }
  case OP_ERF:
    c = b_mul(b, g, b_scale(b, b_op1(b, OP_EXP, b_neg(b, b_op1(b, OP_SQUARE, x))), M_2_SQRTPI));
    break;
  case OP_SOFTPLUS: c = b_mul(b, g, b_op1(b, OP_SIGMOID, x)); break;
  case OP_ELU: case OP_SELU: {
    /* alpha e^x below 0 (torch's elu_backward at x <= 0), 1 above; selu scaled */
    bool elu = n->op == OP_ELU;
    double alpha = elu ? n->attr[0].f : IR_SELU_ALPHA, scale = elu ? 1 : IR_SELU_SCALE;
    c = b_where(b, b_op2(b, OP_GT, x, b_f(b, 0)), b_scale(b, g, scale),
                b_mul(b, g, b_scale(b, b_op1(b, OP_EXP, x), alpha * scale)));
    break;
  }
  case OP_SILU: {
    /* d/dx x s(x) = s (1 + x (1 - s)) */
    Node *s = b_op1(b, OP_SIGMOID, x);
    c = b_mul(b, g, b_mul(b, s, b_add(b, b_f(b, 1), b_mul(b, x, b_sub(b, b_f(b, 1), s)))));
    break;
  }
  case OP_HARDTANH: {
    /* torch's hardtanh_backward: g strictly inside (min_val, max_val), 0 at and beyond */
    Node *zero = b_f(b, 0);
    c = b_where(b, b_op2(b, OP_LE, x, b_f(b, n->attr[0].f)), zero,
                b_where(b, b_op2(b, OP_GE, x, b_f(b, n->attr[1].f)), zero, g));
    break;
  }
  case OP_SIN: c = b_mul(b, g, b_op1(b, OP_COS, x)); break;
  case OP_COS: c = b_neg(b, b_mul(b, g, b_op1(b, OP_SIN, x))); break;
  case OP_POW: {
    double p = n->attr[0].f;
    Node *d = p == 1 ? b_f(b, 1) : p == 2 ? b_scale(b, x, 2) : b_scale(b, b_pow(b, x, p - 1), p);
    c = b_mul(b, g, d);
    break;
  }
  case OP_CLAMP: {
    /* torch.clamp passes the gradient where lo <= x <= hi */
    Node *zero = b_f(b, 0);
    c = b_where(b, b_op2(b, OP_LT, x, b_f(b, n->attr[0].f)), zero,
                b_where(b, b_op2(b, OP_GT, x, b_f(b, n->attr[1].f)), zero, g));
    break;
  }
  /* not one-operand elementwise: rule_of routes no other op here */
  case OP_VAR: case OP_CONST: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD:
  case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE:
  case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM:
  case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
  case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D: case OP_MAX_POOL2D:
  case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT: case OP_MSE:
  case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE:
  case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_COUNT:
    NNCC_ASSERT(0);
  }
  give_ew(ad, n, 0, c);
}

static void rule_binary(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  Node *x = n->in[0], *y = n->in[1];
  switch (n->op) {
  case OP_ADD:
    give_ew(ad, n, 0, g);
    give_ew(ad, n, 1, g);
    break;
  case OP_SUB:
    give_ew(ad, n, 0, g);
    if (want(ad, n, 1)) give_ew(ad, n, 1, b_neg(b, g));
    break;
  case OP_MUL:
    if (want(ad, n, 0)) give_ew(ad, n, 0, b_mul(b, g, y));
    if (want(ad, n, 1)) give_ew(ad, n, 1, b_mul(b, g, x));
    break;
  case OP_DIV:
    if (want(ad, n, 0)) give_ew(ad, n, 0, b_div(b, g, y));
    if (want(ad, n, 1)) give_ew(ad, n, 1, b_neg(b, b_mul(b, g, b_div(b, n, y))));  /* -x/y^2 */
    break;
  case OP_MAXIMUM:
  case OP_MINIMUM: {
    /* the winner takes g; at a tie each side takes half (SPEC §6) */
    Op wins = n->op == OP_MAXIMUM ? OP_GT : OP_LT, loses = n->op == OP_MAXIMUM ? OP_LT : OP_GT;
    Node *zero = b_f(b, 0), *half = b_scale(b, g, 0.5);
    Node *tie = b_op2(b, OP_EQ, x, y);
    if (want(ad, n, 0)) give_ew(ad, n, 0, b_where(b, b_op2(b, wins, x, y), g, b_where(b, tie, half, zero)));
    if (want(ad, n, 1)) give_ew(ad, n, 1, b_where(b, b_op2(b, loses, x, y), g, b_where(b, tie, half, zero)));
    break;
  }
  /* not two-operand elementwise: rule_of routes no other op here */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_LT: case OP_LE:
  case OP_GT: case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM:
  case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
  case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D: case OP_MAX_POOL2D:
  case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT: case OP_MSE:
  case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE:
  case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU:
  case OP_HARDTANH: case OP_COUNT:
    NNCC_ASSERT(0);
  }
}

static void rule_where(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  Node *zero = b_f(b, 0);
  if (want(ad, n, 1)) give_ew(ad, n, 1, b_where(b, n->in[0], g, zero));
  if (want(ad, n, 2)) give_ew(ad, n, 2, b_where(b, n->in[0], zero, g));
}

/* ------------------------------------------------------------ matmul */

static Node *swap_last2(Builder *b, Node *x) {
  int64_t perm[IR_MAX_RANK];
  int r = x->type.rank;
  for (int i = 0; i < r; i++) perm[i] = i;
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return b_transpose(b, x, perm);
}

/* NumPy matmul: rank-1 operands are promoted ([k] -> [1,k] on the left,
 * [k,1] on the right) and batch dimensions broadcast; the adjoints are
 * g @ B^T and A^T @ g on the promoted shapes, summed over broadcast batch
 * dimensions and reshaped back. */
static void rule_matmul(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  Node *a = n->in[0], *w = n->in[1];
  Node *A = a, *B = w;
  if (a->type.rank == 1) A = b_reshape(b, a, (int64_t[]){1, a->type.dim[0]}, 2);
  if (w->type.rank == 1) B = b_reshape(b, w, (int64_t[]){w->type.dim[0], 1}, 2);
  /* the promoted product's shape: batch dims broadcast, then [m, n] */
  Type batch_a = A->type, batch_b = B->type, batch;
  batch_a.rank -= 2;
  batch_b.rank -= 2;
  NNCC_ASSERT(ir_broadcast(&batch_a, &batch_b, &batch));
  int64_t dims[IR_MAX_RANK];
  int r = batch.rank;
  for (int i = 0; i < r; i++) dims[i] = batch.dim[i];
  dims[r] = A->type.dim[A->type.rank - 2];
  dims[r + 1] = B->type.dim[B->type.rank - 1];
  Node *G = b_reshape(b, g, dims, r + 2);
  if (want(ad, n, 0)) {
    Node *ga = b_op2(b, OP_MATMUL, G, swap_last2(b, B));
    give(ad, n, 0, b_reshape_as(b, b_unbroadcast(b, ga, &A->type), &a->type));
  }
  if (want(ad, n, 1)) {
    Node *gb = b_op2(b, OP_MATMUL, swap_last2(b, A), G);
    give(ad, n, 1, b_reshape_as(b, b_unbroadcast(b, gb, &B->type), &w->type));
  }
}

/* -------------------------------------------------------- reductions */

static void rule_reduce(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  Node *x = n->in[0];
  const int64_t *axes = n->attr[0].list;
  int na = n->attr[0].n;
  bool keep = n->attr[1].i != 0;
  Node *gk = keep ? g : b_keepdims(b, g, &x->type, axes, na);
  Node *yk = keep ? n : NULL;
  switch (n->op) {
  case OP_SUM: give(ad, n, 0, b_broadcast(b, gk, &x->type)); break;
  case OP_MEAN: {
    double count = 1;
    for (int k = 0; k < na; k++) count *= (double)x->type.dim[axes[k]];
    give(ad, n, 0, b_broadcast(b, b_scale(b, gk, 1 / count), &x->type));
    break;
  }
  case OP_MAX:
  case OP_MIN: {
    /* every element equal to the extreme shares the gradient evenly */
    if (!yk) yk = b_keepdims(b, n, &x->type, axes, na);
    Node *mask = b_where(b, b_op2(b, OP_EQ, x, yk), b_f(b, 1), b_f(b, 0));
    Node *count = b_reduce(b, OP_SUM, mask, axes, na, true);
    give(ad, n, 0, b_mul(b, mask, b_div(b, gk, count)));
    break;
  }
  case OP_LOGSUMEXP:
    if (!yk) yk = b_keepdims(b, n, &x->type, axes, na);
    give(ad, n, 0, b_mul(b, gk, b_op1(b, OP_EXP, b_sub(b, x, yk))));
    break;
  /* not a reduction: rule_of routes no other op here */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_ARGMAX:
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST:
  case OP_SLICE: case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D:
  case OP_MAX_POOL2D: case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT:
  case OP_MSE: case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE:
  case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU:
  case OP_HARDTANH: case OP_COUNT:
    NNCC_ASSERT(0);
  }
}

static void rule_softmax(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  int64_t axis = n->attr[0].i;
  if (n->op == OP_SOFTMAX) {
    Node *dot = b_reduce(b, OP_SUM, b_mul(b, g, n), &axis, 1, true);
    give(ad, n, 0, b_mul(b, n, b_sub(b, g, dot)));
  } else {
    Node *sum = b_reduce(b, OP_SUM, g, &axis, 1, true);
    give(ad, n, 0, b_sub(b, g, b_mul(b, b_op1(b, OP_EXP, n), sum)));
  }
}

/* --------------------------------------------------------- data movement */

static void rule_shape(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  Node *x = n->in[0];
  switch (n->op) {
  case OP_RESHAPE: give(ad, n, 0, b_reshape_as(b, g, &x->type)); break;
  case OP_TRANSPOSE: {
    int64_t inv[IR_MAX_RANK];
    for (int i = 0; i < n->attr[0].n; i++) inv[n->attr[0].list[i]] = i;
    give(ad, n, 0, b_transpose(b, g, inv));
    break;
  }
  case OP_BROADCAST: give(ad, n, 0, b_unbroadcast(b, g, &x->type)); break;
  case OP_SLICE: {
    Node *u = ir_node_new(b->g, OP_UNSLICE, &g, 1, b->loc);
    ir_set_list(b->g, u, 0, n->attr[0].list, n->attr[0].n);
    ir_set_list(b->g, u, 1, n->attr[2].list, n->attr[2].n);
    ir_set_list(b->g, u, 2, x->type.dim, x->type.rank);
    NNCC_ASSERT(ir_infer(u, NULL));
    give(ad, n, 0, u);
    break;
  }
  case OP_UNSLICE: {
    int64_t end[IR_MAX_RANK];
    for (int i = 0; i < x->type.rank; i++)
      end[i] = n->attr[0].list[i] + (x->type.dim[i] - 1) * n->attr[1].list[i] + 1;
    give(ad, n, 0, b_slice(b, g, n->attr[0].list, end, n->attr[1].list));
    break;
  }
  case OP_CONCAT: {
    int64_t axis = n->attr[0].i, offset = 0;
    int r = n->type.rank;
    for (int k = 0; k < n->n_in; k++) {
      int64_t begin[IR_MAX_RANK], end[IR_MAX_RANK], step[IR_MAX_RANK];
      for (int i = 0; i < r; i++) begin[i] = 0, end[i] = n->type.dim[i], step[i] = 1;
      begin[axis] = offset;
      end[axis] = offset + n->in[k]->type.dim[axis];
      offset = end[axis];
      if (want(ad, n, k)) give(ad, n, k, b_slice(b, g, begin, end, step));
    }
    break;
  }
  case OP_GATHER: {
    Node *ins[2] = {g, n->in[1]};
    Node *s = ir_node_new(b->g, OP_SCATTER_ADD, ins, 2, b->loc);
    s->attr[0].i = x->type.dim[0];
    NNCC_ASSERT(ir_infer(s, NULL));
    give(ad, n, 0, s);
    break;
  }
  case OP_SCATTER_ADD: give(ad, n, 0, b_op2(b, OP_GATHER, g, n->in[1])); break;
  /* not data movement: rule_of routes no other op here */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM: case OP_MEAN:
  case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_ONE_HOT: case OP_CONV2D: case OP_MAX_POOL2D: case OP_AVG_POOL2D:
  case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT: case OP_MSE: case OP_HUBER:
  case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_CONV2D_GRAD_INPUT:
  case OP_CONV2D_GRAD_WEIGHT: case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT:
  case OP_AVG_POOL2D_GRAD: case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU:
  case OP_SELU: case OP_SILU: case OP_HARDTANH: case OP_COUNT:
    NNCC_ASSERT(0);
  }
}

/* ------------------------------------------------ convolution, pooling */

static Node *with_lists(Builder *b, Op op, Node *x, Node *y, const Attr *a0, const Attr *a1,
                        const int64_t *a2) {
  Node *ins[2] = {x, y};
  Node *n = ir_node_new(b->g, op, ins, y ? 2 : 1, b->loc);
  ir_set_list(b->g, n, 0, a0->list, a0->n);
  ir_set_list(b->g, n, 1, a1->list, a1->n);
  if (a2) ir_set_list(b->g, n, 2, a2, 2);
  if (!ir_infer(n, NULL)) nncc_raise("internal error: ill-typed '%s' in autodiff", op_info(op)->name);
  return n;
}

/* conv2d and its two transposes close under differentiation:
 *   y  = conv2d(x, w)            dx = grad_input(g, w)    dw = grad_weight(x, g)
 *   dx = grad_input(h, w)        dh = conv2d(g, w)        dw = grad_weight(g, h)
 *   dw = grad_weight(x, h)       dh = conv2d(x, g)        dx = grad_input(h, g) */
static void rule_conv(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  const Attr *stride = &n->attr[0], *pad = &n->attr[1];
  Node *p = n->in[0], *q = n->in[1];
  switch (n->op) {
  case OP_CONV2D:
    if (want(ad, n, 0))
      give(ad, n, 0, with_lists(b, OP_CONV2D_GRAD_INPUT, g, q, stride, pad, &p->type.dim[2]));
    if (want(ad, n, 1))
      give(ad, n, 1, with_lists(b, OP_CONV2D_GRAD_WEIGHT, p, g, stride, pad, &q->type.dim[2]));
    break;
  case OP_CONV2D_GRAD_INPUT:  /* p = h (a gradient), q = w */
    if (want(ad, n, 0)) give(ad, n, 0, with_lists(b, OP_CONV2D, g, q, stride, pad, NULL));
    if (want(ad, n, 1))
      give(ad, n, 1, with_lists(b, OP_CONV2D_GRAD_WEIGHT, g, p, stride, pad, &q->type.dim[2]));
    break;
  case OP_CONV2D_GRAD_WEIGHT:  /* p = x, q = h */
    if (want(ad, n, 0))
      give(ad, n, 0, with_lists(b, OP_CONV2D_GRAD_INPUT, q, g, stride, pad, &p->type.dim[2]));
    if (want(ad, n, 1)) give(ad, n, 1, with_lists(b, OP_CONV2D, p, g, stride, pad, NULL));
    break;
  /* not a convolution: rule_of routes no other op here */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM: case OP_MEAN:
  case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
  case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_MAX_POOL2D: case OP_AVG_POOL2D:
  case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT: case OP_MSE: case OP_HUBER:
  case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE: case OP_SCATTER_ADD:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU:
  case OP_HARDTANH: case OP_COUNT:
    NNCC_ASSERT(0);
  }
}

/* max pooling routes the gradient to each window's first maximum (as
 * PyTorch); the routing (grad) and its transpose (select) are linear in
 * their second operand and constant in x. */
static void rule_pool(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  const Attr *kernel = &n->attr[0], *stride = &n->attr[1];
  Node *x = n->in[0];
  switch (n->op) {
  case OP_MAX_POOL2D: give(ad, n, 0, with_lists(b, OP_MAX_POOL2D_GRAD, x, g, kernel, stride, NULL)); break;
  case OP_MAX_POOL2D_GRAD: give(ad, n, 1, with_lists(b, OP_MAX_POOL2D_SELECT, x, g, kernel, stride, NULL)); break;
  case OP_MAX_POOL2D_SELECT: give(ad, n, 1, with_lists(b, OP_MAX_POOL2D_GRAD, x, g, kernel, stride, NULL)); break;
  case OP_AVG_POOL2D:
    give(ad, n, 0, with_lists(b, OP_AVG_POOL2D_GRAD, g, NULL, kernel, stride, &x->type.dim[2]));
    break;
  case OP_AVG_POOL2D_GRAD: give(ad, n, 0, with_lists(b, OP_AVG_POOL2D, g, NULL, kernel, stride, NULL)); break;
  /* not pooling: rule_of routes no other op here */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM: case OP_MEAN:
  case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
  case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D: case OP_BATCH_NORM:
  case OP_LAYER_NORM: case OP_DROPOUT: case OP_MSE: case OP_HUBER: case OP_CROSS_ENTROPY:
  case OP_BCE: case OP_NLL: case OP_UNSLICE: case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT:
  case OP_CONV2D_GRAD_WEIGHT: case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU:
  case OP_SELU: case OP_SILU: case OP_HARDTANH: case OP_COUNT:
    NNCC_ASSERT(0);
  }
}

/* ---------------------------------------------------------------- losses */

static void rule_loss(AD *ad, Node *n, Node *g) {
  Builder *b = &ad->b;
  Node *p = n->in[0], *t = n->in[1];
  double count = (double)type_numel(&p->type);
  switch (n->op) {
  case OP_MSE: {
    Node *c = b_mul(b, g, b_scale(b, b_sub(b, p, t), 2 / count));
    if (want(ad, n, 0)) give(ad, n, 0, c);
    if (want(ad, n, 1)) give(ad, n, 1, b_neg(b, c));
    break;
  }
  case OP_HUBER: {
    double delta = n->attr[0].f;
    Node *c = b_mul(b, g, b_scale(b, b_clamp(b, b_sub(b, p, t), -delta, delta), 1 / count));
    if (want(ad, n, 0)) give(ad, n, 0, c);
    if (want(ad, n, 1)) give(ad, n, 1, b_neg(b, c));
    break;
  }
  case OP_BCE:  /* mean(softplus(z) - z t): dz = sigmoid(z) - t, dt = -z */
    if (want(ad, n, 0))
      give(ad, n, 0, b_mul(b, g, b_scale(b, b_sub(b, b_op1(b, OP_SIGMOID, p), t), 1 / count)));
    if (want(ad, n, 1)) give(ad, n, 1, b_mul(b, g, b_scale(b, p, -1 / count)));
    break;
  case OP_CROSS_ENTROPY:
  case OP_NLL: {
    /* mean over the labels: dz = (softmax(z) - onehot(y)) / N; nll: -onehot/N */
    int64_t classes = p->type.dim[p->type.rank - 1];
    double labels = (double)type_numel(&t->type);
    Node *onehot = b_one_hot(b, t, classes);
    Node *d = n->op == OP_NLL ? b_neg(b, onehot)
                              : b_sub(b, b_softmax(b, OP_SOFTMAX, p, p->type.rank - 1), onehot);
    give(ad, n, 0, b_mul(b, g, b_scale(b, d, 1 / labels)));
    break;
  }
  /* not a loss: rule_of routes no other op here */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM: case OP_MEAN:
  case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
  case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D: case OP_MAX_POOL2D:
  case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT: case OP_UNSLICE:
  case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU:
  case OP_HARDTANH: case OP_COUNT:
    NNCC_ASSERT(0);
  }
}

/* --------------------------------------------------------------- table */

typedef void (*Rule)(AD *ad, Node *n, Node *g);

/* The rules of the ops that the flags in ops.def do not route (below). */
static const Rule rules[OP_COUNT] = {
    [OP_WHERE] = rule_where, [OP_MATMUL] = rule_matmul,
    [OP_SOFTMAX] = rule_softmax, [OP_LOG_SOFTMAX] = rule_softmax,
    [OP_RESHAPE] = rule_shape, [OP_TRANSPOSE] = rule_shape, [OP_BROADCAST] = rule_shape,
    [OP_SLICE] = rule_shape, [OP_UNSLICE] = rule_shape, [OP_CONCAT] = rule_shape,
    [OP_GATHER] = rule_shape, [OP_SCATTER_ADD] = rule_shape,
    [OP_CONV2D] = rule_conv, [OP_CONV2D_GRAD_INPUT] = rule_conv, [OP_CONV2D_GRAD_WEIGHT] = rule_conv,
    [OP_MAX_POOL2D] = rule_pool, [OP_MAX_POOL2D_GRAD] = rule_pool,
    [OP_MAX_POOL2D_SELECT] = rule_pool, [OP_AVG_POOL2D] = rule_pool,
    [OP_AVG_POOL2D_GRAD] = rule_pool,
};

/* The gradient rule of op, from its flags where they say it: none for
 * leaves and OPF_NOGRAD ops (stop_gradient, cast, floor, comparisons,
 * argmax, one_hot, dropout_mask, state writes) and for OPF_LOWERED ops,
 * which lower.c removes before autodiff; rule_unary and rule_binary for
 * elementwise ops of one and two operands, rule_reduce for reductions,
 * rule_loss for losses; the table above for the rest. Every other op has
 * a rule: tests/ir/test_contract.c checks it over OP_COUNT. */
static Rule rule_of(Op op) {
  const OpInfo *info = op_info(op);
  if (info->flags & (OPF_LEAF | OPF_NOGRAD | OPF_LOWERED)) return NULL;
  if ((info->flags & OPF_ELEMWISE) && info->arity == 1) return rule_unary;
  if ((info->flags & OPF_ELEMWISE) && info->arity == 2) return rule_binary;
  if (info->flags & OPF_REDUCE) return rule_reduce;
  if (info->flags & OPF_LOSS) return rule_loss;
  return rules[op];
}

bool pass_has_gradient_rule(Op op) { return rule_of(op) != NULL; }

/* Does op k of n carry a gradient at all? (i32/bool operands never do.) */
static bool differentiable_edge(const Node *n, int k) {
  if (n->in[k]->type.dtype != DT_F32) return false;
  if (op_info(n->op)->flags & (OPF_LEAF | OPF_NOGRAD)) return false;
  NNCC_ASSERT(rule_of(n->op) && "autodiff: an op without a gradient rule (ops.def, rule_of)");
  if (n->op == OP_WHERE && k == 0) return false;
  if ((n->op == OP_MAX_POOL2D_GRAD || n->op == OP_MAX_POOL2D_SELECT) && k == 0) return false;
  return true;
}

Node **ad_backward(Graph *g, Node *y, Node *const *wrt, int n_wrt) {
  int n = g->n_nodes;
  AD ad = {.b = {g, y->loc}, .n = n};
  ad.adj = ARENA_ARRAY(g->arena, Node *, n);
  ad.needs = nncc_calloc((size_t)n, 1);
  char *from_wrt = nncc_calloc((size_t)n, 1), *to_y = nncc_calloc((size_t)n, 1);
  for (int i = 0; i < n_wrt; i++) from_wrt[wrt[i]->id] = 1;
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    for (int k = 0; k < x->n_in && !from_wrt[i]; k++)
      if (from_wrt[x->in[k]->id] && differentiable_edge(x, k)) from_wrt[i] = 1;
  }
  to_y[y->id] = 1;
  for (int i = y->id; i >= 0; i--) {
    Node *x = g->nodes[i];
    if (!to_y[i]) continue;
    for (int k = 0; k < x->n_in; k++)
      if (differentiable_edge(x, k)) to_y[x->in[k]->id] = 1;
  }
  for (int i = 0; i < n; i++) ad.needs[i] = from_wrt[i] && to_y[i];
  nncc_free(from_wrt);
  nncc_free(to_y);

  if (ad.needs[y->id]) ad.adj[y->id] = b_fill(&ad.b, 1, &y->type);
  for (int i = y->id; i >= 0; i--) {
    Node *x = g->nodes[i];
    Rule rule = rule_of(x->op);
    if (!ad.adj[i] || !rule) continue;
    ad.b.loc = x->loc;  /* backward nodes point at the forward op's token */
    rule(&ad, x, ad.adj[i]);
  }
  nncc_free(ad.needs);
  return ad.adj;
}

/* Every param and f32 input of a training graph gets ROLE_GRAD (the
 * inputs not with no_input_grads); one the loss does not reach gets zeros
 * (the reach pass warned about it). */
static bool autodiff_graph(Graph *g, bool no_input_grads) {
  Node *loss = NULL;
  int n = g->n_nodes, n_wrt = 0;
  Node **wrt = nncc_calloc((size_t)n + 1, sizeof(Node *));
  for (int i = 0; i < n; i++) {
    Node *x = g->nodes[i];
    if (x->roles & ROLE_LOSS) loss = x;
    if (x->op == OP_VAR && x->type.dtype == DT_F32 &&
        (x->roles & (no_input_grads ? ROLE_PARAM : ROLE_PARAM | ROLE_INPUT)))
      wrt[n_wrt++] = x;
  }
  if (!loss) {
    nncc_free(wrt);
    return true;
  }
  Node **adj = ad_backward(g, loss, wrt, n_wrt);
  for (int i = 0; i < n_wrt; i++) {
    Node *v = wrt[i], *grad = adj[v->id];
    Builder b = {g, v->loc};
    /* a var's gradient is its own node: never shared with another var's
     * or with a forward value */
    if (!grad) grad = b_fill(&b, 0, &v->type);
    else if (grad->roles || grad->op == OP_VAR || grad->op == OP_CONST || grad->id < n)
      grad = b_mul(&b, grad, b_f(&b, 1));
    grad->roles |= ROLE_GRAD;
    grad->grad_of = v;
    if (!grad->name) grad->name = arena_printf(g->arena, "d.%s", v->name);
  }
  nncc_free(wrt);
  return true;
}

bool pass_autodiff(Module *m, Diag *d, const PassOptions *o) {
  (void)d;
  for (int i = 0; i < m->n_graphs; i++)
    if (m->graphs[i]->training && !autodiff_graph(m->graphs[i], o && o->no_input_grads)) return false;
  return true;
}
