/* infer.c - the shape and dtype rules of every op in ops.def.
 *
 * ir_infer computes a node's type from its operands and attributes. The
 * frontend calls it as it builds each node, ir_read on every parsed node,
 * passes on the nodes they make, and ir_verify to recheck a whole graph;
 * so it must be idempotent, and the attribute normalization it does
 * (negative axes made positive, reduction axes sorted) must leave an
 * already-normal node unchanged.
 *
 * Errors are user errors: reported at the node's location, naming every
 * shape involved, and the node is poisoned (DT_ERR) so that nodes built on
 * it stay silent instead of cascading. */
#include "ir/ir.h"

#include <string.h>

/* ------------------------------------------------------------ messages */

/* type_str into a value, so a message can format a type in place: the
 * temporary lives until the end of the full expression (C11 6.2.4p8). */
typedef struct TStr {
  char s[TYPE_STR_MAX];
} TStr;

static TStr tstr(const Type *t) {
  TStr r;
  type_str(t, r.s, sizeof r.s);
  return r;
}

/* Both shapes of a two-operand mismatch. Every such message names both,
 * so that the user sees which operand is the odd one out. */
typedef struct Pair {
  char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
} Pair;

static Pair pair(const Type *a, const Type *b) {
  Pair p;
  type_str(a, p.a, sizeof p.a);
  type_str(b, p.b, sizeof p.b);
  return p;
}

/* An int list as the user wrote it, "[4,2]"; long lists are cut short. */
typedef struct LStr {
  char s[160];
} LStr;

static LStr lstr(const int64_t *v, int n) {
  LStr r;
  size_t k = 0, size = sizeof r.s;
  r.s[k++] = '[';
  for (int i = 0; i < n; i++) {
    if (k + 24 >= size) {
      k += (size_t)snprintf(r.s + k, size - k, ",...");
      break;
    }
    k += (size_t)snprintf(r.s + k, size - k, i ? ",%lld" : "%lld", (long long)v[i]);
  }
  snprintf(r.s + k, size - k, "]");
  return r;
}

static const char *opname(const Node *n) { return op_info(n->op)->name; }

/* Reports a user error at the node, poisons it, and returns false, so a
 * rule can say `return fail(...)`. */
__attribute__((format(printf, 3, 4)))
static bool fail(Node *n, Diag *d, const char *fmt, ...) {
  if (d) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror(d, n->loc, fmt, ap);
    va_end(ap);
  }
  n->type.dtype = DT_ERR;
  return false;
}

/* What "cannot ... A and B" says for each two-operand elementwise op. */
static const char *binary_verb(Op op) {
  switch (op) {
  case OP_ADD: return "add";
  case OP_SUB: return "subtract";
  case OP_MUL: return "multiply";
  case OP_DIV: return "divide";
  case OP_MAXIMUM: return "apply 'maximum' to";
  case OP_MINIMUM: return "apply 'minimum' to";
  case OP_WHERE: return "select between";
  case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: return "compare";
  /* not two-operand elementwise */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_MATMUL: case OP_SUM:
  case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
  case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D: case OP_MAX_POOL2D:
  case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT: case OP_MSE:
  case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE:
  case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU:
  case OP_HARDTANH: case OP_COUNT:
    break;
  }
  NNCC_ASSERT(!"binary_verb: not a two-operand elementwise op");
  return "";
}

/* The source spelling of a comparison, for "... with '<'". */
static const char *compare_symbol(Op op) {
  switch (op) {
  case OP_LT: return "<";
  case OP_LE: return "<=";
  case OP_GT: return ">";
  case OP_GE: return ">=";
  case OP_EQ: return "==";
  case OP_NE: return "!=";
  /* not comparisons */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_WHERE: case OP_MATMUL:
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX:
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST:
  case OP_SLICE: case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D:
  case OP_MAX_POOL2D: case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT:
  case OP_MSE: case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE:
  case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU:
  case OP_HARDTANH: case OP_COUNT:
    break;
  }
  NNCC_ASSERT(!"compare_symbol: not a comparison");
  return "";
}

/* The dtype demanded of a single operand: f32 only, or f32 and i32. */
static bool need_dtype(Node *n, Diag *d, const Type *t, bool allow_i32) {
  if (t->dtype == DT_F32 || (allow_i32 && t->dtype == DT_I32)) return true;
  return fail(n, d, "'%s' needs %s, got %s", opname(n), allow_i32 ? "f32 or i32" : "f32",
              tstr(t).s);
}

/* Stores the result after the checks every result needs. The rules below
 * make no dim below 1 from valid operands, but an operand typed by hand
 * and never checked could carry one; that must not reach codegen. */
static bool finish(Node *n, Diag *d, const Type *t) {
  for (int i = 0; i < t->rank; i++)
    if (t->dim[i] < 1) return fail(n, d, "tensor %s has a dimension smaller than 1", tstr(t).s);
  if (type_numel(t) > IR_MAX_ELEMS)
    return fail(n, d, "tensor %s has more than 2^31 elements", tstr(t).s);
  n->type = *t;
  return true;
}

/* A type under construction; rank checked by the caller. */
static Type blank(DType dt) {
  Type t;
  memset(&t, 0, sizeof t);
  t.dtype = dt;
  return t;
}

static bool rank_fits(Node *n, Diag *d, int rank) {
  if (rank <= IR_MAX_RANK) return true;
  return fail(n, d, "result of '%s' would have rank %d, more than %d", opname(n), rank,
              IR_MAX_RANK);
}

/* Turns a possibly negative axis into 0..rank-1 in place. */
static bool norm_axis(Node *n, Diag *d, int64_t *axis, const Type *t) {
  if (*axis < -t->rank || *axis >= t->rank)
    return fail(n, d, "axis %lld is out of range for %s", (long long)*axis, tstr(t).s);
  if (*axis < 0) *axis += t->rank;
  return true;
}

/* A shape given as an attribute (reshape, broadcast): rank and dims as a
 * type's. Elaboration has already resolved reshape's -1. */
static bool shape_attr(Node *n, Diag *d, const Attr *a, DType dt, Type *out) {
  if (a->n > IR_MAX_RANK)
    return fail(n, d, "'%s' target shape %s has rank %d, more than %d", opname(n),
                lstr(a->list, a->n).s, a->n, IR_MAX_RANK);
  for (int i = 0; i < a->n; i++)
    if (a->list[i] < 1)
      return fail(n, d, "'%s' target shape %s has a dimension smaller than 1", opname(n),
                  lstr(a->list, a->n).s);
  *out = type_make(dt, a->n, a->list);
  return true;
}

/* A two-int attribute of the 2-d ops (stride, pad, kernel): each value at
 * least lo, and at most 2^31 so that the size arithmetic cannot overflow. */
static bool two_ints(Node *n, Diag *d, int k, int64_t lo, int64_t out[2]) {
  const Attr *a = &n->attr[k];
  const char *what = op_info(n->op)->attr_name[k];
  if (a->n != 2 || a->list[0] < lo || a->list[1] < lo)
    return fail(n, d, "'%s' %s must be two integers >= %lld, got %s", opname(n), what,
                (long long)lo, lstr(a->list, a->n).s);
  if (a->list[0] > IR_MAX_ELEMS || a->list[1] > IR_MAX_ELEMS)
    return fail(n, d, "'%s' %s %s is too large", opname(n), what, lstr(a->list, 2).s);
  out[0] = a->list[0];
  out[1] = a->list[1];
  return true;
}

/* ------------------------------------------------------------- leaves */

/* Vars and consts come typed from the builder; what is checked here is
 * what a declaration could have got wrong. */
static bool infer_leaf(Node *n, Diag *d) {
  Type *t = &n->type;
  if (t->dtype == DT_ERR) return false;  /* the declaration already failed */
  if (t->rank < 0 || t->rank > IR_MAX_RANK)
    return fail(n, d, "tensor rank %d is out of range 0..%d", t->rank, IR_MAX_RANK);
  Type copy = *t;
  return finish(n, d, &copy);
}

/* --------------------------------------------------------- elementwise */

static bool infer_unary(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  /* clamp's bounds are floats: it is f32 only, like the other math */
  bool i32_ok = n->op == OP_NEG || n->op == OP_ABS || n->op == OP_SQUARE || n->op == OP_RELU;
  if (!need_dtype(n, d, x, i32_ok)) return false;
  /* NaN bounds fail this test too, on purpose */
  if (n->op == OP_CLAMP && !(n->attr[0].f <= n->attr[1].f))
    return fail(n, d, "'clamp' lower bound %g is greater than upper bound %g", n->attr[0].f,
                n->attr[1].f);
  return finish(n, d, x);
}

/* The target dtype lives in the node's own type, set by whoever built it;
 * `target` was read before anything could overwrite it. */
static bool infer_cast(Node *n, Diag *d, DType target) {
  const Type *x = &n->in[0]->type;
  if (target != DT_F32 && target != DT_I32)
    return fail(n, d, "'cast' target must be f32 or i32, got %s", dtype_name(target));
  Type t = *x;
  t.dtype = target;
  return finish(n, d, &t);
}

/* "cannot add f32[2] and i32[2]: no implicit conversion ..." - the
 * language has no promotion, so this is the one message for a mix. */
static bool fail_mix(Node *n, Diag *d, const char *verb, const Type *a, const Type *b) {
  Pair p = pair(a, b);
  return fail(n, d, "cannot %s %s and %s: no implicit conversion between %s and %s", verb,
              p.a, p.b, dtype_name(a->dtype), dtype_name(b->dtype));
}

/* add sub mul div maximum minimum, and the comparisons */
static bool infer_binary(Node *n, Diag *d) {
  const Type *a = &n->in[0]->type, *b = &n->in[1]->type;
  const char *verb = binary_verb(n->op);
  bool compare = op_info(n->op)->flags & OPF_COMPARE;
  if (a->dtype != b->dtype) return fail_mix(n, d, verb, a, b);
  if (n->op == OP_DIV && a->dtype == DT_I32) {  /* truncate or floor? neither: say so */
    Pair p = pair(a, b);
    return fail(n, d, "cannot divide %s and %s: '/' needs f32 (integer division of tensors is not defined)",
                p.a, p.b);
  }
  if (a->dtype == DT_BOOL) {
    Pair p = pair(a, b);
    if (!compare)
      return fail(n, d, "cannot %s %s and %s: '%s' needs f32 or i32", verb, p.a, p.b,
                  opname(n));
    if (n->op != OP_EQ && n->op != OP_NE)
      return fail(n, d, "cannot compare %s and %s with '%s': bool has no order", p.a, p.b,
                  compare_symbol(n->op));
  }
  Type t;
  if (!ir_broadcast(a, b, &t)) {
    Pair p = pair(a, b);
    return fail(n, d, "cannot %s %s and %s", verb, p.a, p.b);
  }
  if (compare) t.dtype = DT_BOOL;
  return finish(n, d, &t);
}

static bool infer_where(Node *n, Diag *d) {
  const Type *c = &n->in[0]->type, *a = &n->in[1]->type, *b = &n->in[2]->type;
  if (c->dtype != DT_BOOL)
    return fail(n, d, "'where' condition must be bool, got %s", tstr(c).s);
  if (a->dtype != b->dtype) return fail_mix(n, d, "select between", a, b);
  Type ab, t;
  if (!ir_broadcast(a, b, &ab) || !ir_broadcast(c, &ab, &t)) {
    Pair p = pair(a, b);
    return fail(n, d, "cannot broadcast 'where' operands %s, %s and %s", tstr(c).s, p.a, p.b);
  }
  t.dtype = a->dtype;
  return finish(n, d, &t);
}

/* -------------------------------------------------------------- matmul */

/* NumPy matmul: a rank-1 lhs is [1,k] and a rank-1 rhs [k,1], with the
 * added 1 dropped from the result; all but the last two dims are batch
 * dims, broadcast against each other. */
static bool infer_matmul(Node *n, Diag *d) {
  const Type *a = &n->in[0]->type, *b = &n->in[1]->type;
  Pair p = pair(a, b);
  if (a->rank == 0 || b->rank == 0)
    return fail(n, d, "cannot multiply matrices %s and %s: scalars have no matrix product",
                p.a, p.b);
  if (a->dtype != DT_F32 || b->dtype != DT_F32)
    return fail(n, d, "cannot multiply matrices %s and %s: '@' needs f32", p.a, p.b);
  int64_t k1 = a->dim[a->rank - 1];
  int64_t k2 = b->rank == 1 ? b->dim[0] : b->dim[b->rank - 2];
  if (k1 != k2)
    return fail(n, d, "cannot multiply matrices %s and %s: inner dimensions %lld and %lld differ",
                p.a, p.b, (long long)k1, (long long)k2);
  int ba = a->rank > 2 ? a->rank - 2 : 0, bb = b->rank > 2 ? b->rank - 2 : 0;
  Type batch_a = type_make(DT_F32, ba, a->dim), batch_b = type_make(DT_F32, bb, b->dim);
  Type t;
  if (!ir_broadcast(&batch_a, &batch_b, &t))
    return fail(n, d, "cannot multiply matrices %s and %s: batch dimensions %s and %s differ",
                p.a, p.b, lstr(a->dim, ba).s, lstr(b->dim, bb).s);
  if (a->rank > 1) t.dim[t.rank++] = a->dim[a->rank - 2];
  if (b->rank > 1) t.dim[t.rank++] = b->dim[b->rank - 1];
  return finish(n, d, &t);
}

/* ---------------------------------------------------------- reductions */

/* sum mean max min logsumexp. The axes are left normalized: positive,
 * sorted, distinct, so later passes need not care how they were written.
 * An empty list reduces nothing; the frontend spells "all" explicitly. */
static bool infer_reduce(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  bool i32_ok = n->op == OP_SUM || n->op == OP_MAX || n->op == OP_MIN;
  if (!need_dtype(n, d, x, i32_ok)) return false;
  int64_t *ax = n->attr[0].list;
  int count = n->attr[0].n;
  for (int i = 0; i < count; i++)
    if (!norm_axis(n, d, &ax[i], x)) return false;
  for (int i = 1; i < count; i++)  /* insertion sort: at most 8 valid axes */
    for (int j = i; j > 0 && ax[j - 1] > ax[j]; j--) {
      int64_t tmp = ax[j];
      ax[j] = ax[j - 1];
      ax[j - 1] = tmp;
    }
  for (int i = 1; i < count; i++)
    if (ax[i] == ax[i - 1])
      return fail(n, d, "duplicate axis %lld in '%s' over %s", (long long)ax[i], opname(n),
                  tstr(x).s);
  bool keep = n->attr[1].i != 0;
  Type t = blank(x->dtype);
  for (int i = 0, j = 0; i < x->rank; i++) {
    bool reduced = j < count && ax[j] == i;
    if (reduced) j++;
    if (!reduced) t.dim[t.rank++] = x->dim[i];
    else if (keep) t.dim[t.rank++] = 1;
  }
  return finish(n, d, &t);
}

static bool infer_argmax(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  if (!need_dtype(n, d, x, true)) return false;
  if (!norm_axis(n, d, &n->attr[0].i, x)) return false;
  Type t = blank(DT_I32);
  for (int i = 0; i < x->rank; i++) {
    if (i != n->attr[0].i) t.dim[t.rank++] = x->dim[i];
    else if (n->attr[1].i) t.dim[t.rank++] = 1;
  }
  return finish(n, d, &t);
}

/* softmax, log_softmax: same type, along one axis */
static bool infer_softmax(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  if (!need_dtype(n, d, x, false)) return false;
  if (!norm_axis(n, d, &n->attr[0].i, x)) return false;
  return finish(n, d, x);
}

/* ---------------------------------------------------------------- shape */

/* Data movement works on any dtype. */
static bool infer_reshape(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  Type t;
  if (!shape_attr(n, d, &n->attr[0], x->dtype, &t)) return false;
  if (type_numel(&t) != type_numel(x))
    return fail(n, d, "cannot reshape %s (%lld elements) to %s (%lld elements)", tstr(x).s,
                (long long)type_numel(x), lstr(t.dim, t.rank).s, (long long)type_numel(&t));
  return finish(n, d, &t);
}

static bool infer_transpose(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  const Attr *perm = &n->attr[0];
  bool seen[IR_MAX_RANK] = {false};
  bool ok = perm->n == x->rank;
  for (int i = 0; ok && i < perm->n; i++) {
    int64_t p = perm->list[i];
    ok = p >= 0 && p < x->rank && !seen[p];
    if (ok) seen[p] = true;
  }
  if (!ok)
    return fail(n, d, "'transpose' permutation %s does not fit %s", lstr(perm->list, perm->n).s,
                tstr(x).s);
  Type t = blank(x->dtype);
  t.rank = x->rank;
  for (int i = 0; i < x->rank; i++) t.dim[i] = x->dim[perm->list[i]];
  return finish(n, d, &t);
}

/* numpy.broadcast_to: the target must be exactly what broadcasting the
 * operand against it gives, so it can only add dims and stretch 1s. */
static bool infer_broadcast_to(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  Type t, got;
  if (!shape_attr(n, d, &n->attr[0], x->dtype, &t)) return false;
  if (x->rank > t.rank || !ir_broadcast(x, &t, &got) || !type_eq(&got, &t))
    return fail(n, d, "cannot broadcast %s to %s", tstr(x).s, lstr(t.dim, t.rank).s);
  return finish(n, d, &t);
}

/* Bounds come resolved from elaboration (no negatives, no omissions):
 * a slice out of range is an error, never clamped. */
static bool infer_slice(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  const Attr *b = &n->attr[0], *e = &n->attr[1], *s = &n->attr[2];
  for (int k = 0; k < 3; k++)
    if (n->attr[k].n != x->rank)
      return fail(n, d, "'slice' of %s needs %d %s values, got %d", tstr(x).s, x->rank,
                  op_info(n->op)->attr_name[k], n->attr[k].n);
  Type t = blank(x->dtype);
  t.rank = x->rank;
  for (int i = 0; i < x->rank; i++) {
    int64_t lo = b->list[i], hi = e->list[i], step = s->list[i];
    if (lo < 0 || hi > x->dim[i] || lo > hi)
      return fail(n, d, "slice %lld:%lld is out of range for dimension %d of %s", (long long)lo,
                  (long long)hi, i, tstr(x).s);
    if (lo == hi)
      return fail(n, d, "slice %lld:%lld is empty for dimension %d of %s", (long long)lo,
                  (long long)hi, i, tstr(x).s);
    if (step < 1)
      return fail(n, d, "slice step %lld must be at least 1 for dimension %d of %s",
                  (long long)step, i, tstr(x).s);
    t.dim[i] = (hi - lo - 1) / step + 1;  /* ceil, without overflow */
    if (t.dim[i] == 1) s->list[i] = 1, e->list[i] = lo + 1;  /* normal form: any step picks one */
  }
  return finish(n, d, &t);
}

static bool infer_concat(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  if (x->rank == 0) return fail(n, d, "cannot concat scalar %s", tstr(x).s);
  if (!norm_axis(n, d, &n->attr[0].i, x)) return false;
  int axis = (int)n->attr[0].i;
  Type t = *x;
  for (int k = 1; k < n->n_in; k++) {
    const Type *y = &n->in[k]->type;
    if (y->dtype != x->dtype) return fail_mix(n, d, "concat", x, y);
    bool ok = y->rank == x->rank;
    for (int i = 0; ok && i < x->rank; i++) ok = i == axis || y->dim[i] == x->dim[i];
    if (!ok) {
      Pair p = pair(x, y);
      return fail(n, d, "cannot concat %s and %s on axis %d", p.a, p.b, axis);
    }
    t.dim[axis] += y->dim[axis];  /* each <= 2^31: no overflow for any n_in */
  }
  return finish(n, d, &t);
}

static bool infer_one_hot(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  int64_t depth = n->attr[0].i;
  if (x->dtype != DT_I32) return fail(n, d, "'one_hot' needs i32 indices, got %s", tstr(x).s);
  if (depth < 1) return fail(n, d, "'one_hot' depth must be at least 1, got %lld", (long long)depth);
  if (!rank_fits(n, d, x->rank + 1)) return false;
  Type t = *x;
  t.dtype = DT_F32;
  t.dim[t.rank++] = depth;
  return finish(n, d, &t);
}

/* gather(table, idx): one row of the table per index - an embedding. */
static bool infer_gather(Node *n, Diag *d) {
  const Type *tab = &n->in[0]->type, *idx = &n->in[1]->type;
  if (tab->dtype != DT_F32 || tab->rank < 1)
    return fail(n, d, "'gather' table must be f32 of rank >= 1, got %s", tstr(tab).s);
  if (idx->dtype != DT_I32)
    return fail(n, d, "'gather' indices must be i32, got %s", tstr(idx).s);
  if (!rank_fits(n, d, idx->rank + tab->rank - 1)) return false;
  Type t = *idx;
  t.dtype = DT_F32;
  for (int i = 1; i < tab->rank; i++) t.dim[t.rank++] = tab->dim[i];
  return finish(n, d, &t);
}

/* ---------------------------------------------------------- convolution */

/* x [N,C,H,W] and w [Cout,Cin,kh,kw], NCHW as PyTorch. */
static bool infer_conv2d(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type, *w = &n->in[1]->type;
  int64_t stride[2], pad[2];
  if (x->dtype != DT_F32 || x->rank != 4)
    return fail(n, d, "conv2d input must be f32[N,C,H,W], got %s", tstr(x).s);
  if (w->dtype != DT_F32 || w->rank != 4)
    return fail(n, d, "conv2d weight must be f32[Cout,Cin,kh,kw], got %s", tstr(w).s);
  Pair p = pair(x, w);
  if (x->dim[1] != w->dim[1])
    return fail(n, d, "conv2d input %s has %lld channels but weight %s expects %lld", p.a,
                (long long)x->dim[1], p.b, (long long)w->dim[1]);
  if (!two_ints(n, d, 0, 1, stride) || !two_ints(n, d, 1, 0, pad)) return false;
  /* every term is at most 2^31 (two_ints, and the operands' own checks) */
  int64_t h = x->dim[2] + 2 * pad[0] - w->dim[2], wd = x->dim[3] + 2 * pad[1] - w->dim[3];
  if (h < 0 || wd < 0)
    return fail(n, d, "conv2d weight %s does not fit input %s with pad %s", p.b, p.a,
                lstr(pad, 2).s);
  int64_t dims[4] = {x->dim[0], w->dim[0], h / stride[0] + 1, wd / stride[1] + 1};
  Type t = type_make(DT_F32, 4, dims);
  return finish(n, d, &t);
}

/* max_pool2d, avg_pool2d: no padding; a partial window is dropped. */
static bool infer_pool2d(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  int64_t kernel[2], stride[2];
  if (x->dtype != DT_F32 || x->rank != 4)
    return fail(n, d, "'%s' needs f32[N,C,H,W], got %s", opname(n), tstr(x).s);
  if (!two_ints(n, d, 0, 1, kernel) || !two_ints(n, d, 1, 1, stride)) return false;
  if (kernel[0] > x->dim[2] || kernel[1] > x->dim[3])
    return fail(n, d, "'%s' kernel %s does not fit input %s", opname(n), lstr(kernel, 2).s,
                tstr(x).s);
  int64_t dims[4] = {x->dim[0], x->dim[1], (x->dim[2] - kernel[0]) / stride[0] + 1,
                     (x->dim[3] - kernel[1]) / stride[1] + 1};
  Type t = type_make(DT_F32, 4, dims);
  return finish(n, d, &t);
}

/* ------------------------------------------------------- normalization */

/* Each per-channel operand (gamma, beta, running stats) must be f32[c]. */
static bool need_vector(Node *n, Diag *d, int k, const char *what, int64_t c) {
  const Type *v = &n->in[k]->type, *x = &n->in[0]->type;
  if (v->dtype == DT_F32 && v->rank == 1 && v->dim[0] == c) return true;
  Pair p = pair(x, v);
  return fail(n, d, "'%s' %s must be f32[%lld] for input %s, got %s", opname(n), what,
              (long long)c, p.a, p.b);
}

/* Channels on axis 1, as PyTorch's BatchNorm1d/2d. */
static bool infer_batch_norm(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  static const char *const names[] = {"gamma", "beta", "mean", "var"};
  if (x->dtype != DT_F32 || (x->rank != 2 && x->rank != 4))
    return fail(n, d, "'batch_norm' needs f32[N,C] or f32[N,C,H,W], got %s", tstr(x).s);
  for (int k = 1; k < 5; k++)
    if (!need_vector(n, d, k, names[k - 1], x->dim[1])) return false;
  double momentum = n->attr[0].f, eps = n->attr[1].f;
  if (!(momentum >= 0 && momentum <= 1))
    return fail(n, d, "'batch_norm' momentum must be in [0, 1], got %g", momentum);
  if (!(eps > 0)) return fail(n, d, "'batch_norm' eps must be positive, got %g", eps);
  return finish(n, d, x);
}

/* Over the last axis only. */
static bool infer_layer_norm(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  if (x->dtype != DT_F32 || x->rank < 1)
    return fail(n, d, "'layer_norm' needs f32 of rank >= 1, got %s", tstr(x).s);
  int64_t c = x->dim[x->rank - 1];
  if (!need_vector(n, d, 1, "gamma", c) || !need_vector(n, d, 2, "beta", c)) return false;
  if (!(n->attr[0].f > 0))
    return fail(n, d, "'layer_norm' eps must be positive, got %g", n->attr[0].f);
  return finish(n, d, x);
}

static bool infer_dropout(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type;
  if (!need_dtype(n, d, x, false)) return false;
  double p = n->attr[0].f;
  if (!(p >= 0 && p < 1)) return fail(n, d, "'dropout' p must be in [0, 1), got %g", p);
  return finish(n, d, x);
}

/* ------------------------------------------- ops autodiff introduces */

/* unslice: the transpose of slice - the operand placed into zeros of
 * `shape` at begin, begin+step, ... */
static bool infer_unslice(Node *n, Diag *d) {
  const Type *g = &n->in[0]->type;
  const Attr *b = &n->attr[0], *st = &n->attr[1];
  Type t;
  if (!shape_attr(n, d, &n->attr[2], g->dtype, &t)) return false;
  if (b->n != g->rank || st->n != g->rank || t.rank != g->rank)
    return fail(n, d, "'unslice' of %s needs begin, step and shape of rank %d", tstr(g).s, g->rank);
  for (int i = 0; i < g->rank; i++) {
    int64_t lo = b->list[i], step = st->list[i];
    if (lo < 0 || step < 1 || step > IR_MAX_ELEMS ||
        lo + (g->dim[i] - 1) * step >= t.dim[i])
      return fail(n, d, "'unslice' of %s does not fit shape %s in dimension %d", tstr(g).s,
                  lstr(t.dim, t.rank).s, i);
  }
  return finish(n, d, &t);
}

/* scatter_add(g, idx): the transpose of gather - row idx[...] of the
 * result sums every g[...] that gather took from it. */
static bool infer_scatter_add(Node *n, Diag *d) {
  const Type *g = &n->in[0]->type, *idx = &n->in[1]->type;
  int64_t rows = n->attr[0].i;
  if (idx->dtype != DT_I32) return fail(n, d, "'scatter_add' indices must be i32, got %s", tstr(idx).s);
  if (g->dtype != DT_F32 || g->rank < idx->rank)
    return fail(n, d, "'scatter_add' values %s do not fit indices %s", tstr(g).s, tstr(idx).s);
  for (int i = 0; i < idx->rank; i++)
    if (g->dim[i] != idx->dim[i]) {
      Pair p = pair(g, idx);
      return fail(n, d, "'scatter_add' values %s do not fit indices %s", p.a, p.b);
    }
  if (rows < 1) return fail(n, d, "'scatter_add' rows must be at least 1, got %lld", (long long)rows);
  if (!rank_fits(n, d, g->rank - idx->rank + 1)) return false;
  Type t = blank(DT_F32);
  t.dim[t.rank++] = rows;
  for (int i = idx->rank; i < g->rank; i++) t.dim[t.rank++] = g->dim[i];
  return finish(n, d, &t);
}

/* The output size of a window op along one axis (-1: does not fit). */
static int64_t window_out(int64_t size, int64_t pad, int64_t k, int64_t stride) {
  int64_t span = size + 2 * pad - k;
  return span < 0 ? -1 : span / stride + 1;
}

static bool need_nchw(Node *n, Diag *d, const Type *t, const char *what) {
  if (t->dtype == DT_F32 && t->rank == 4) return true;
  return fail(n, d, "'%s' %s must be f32[N,C,H,W], got %s", opname(n), what, tstr(t).s);
}

/* conv2d_grad_input(g, w): d loss / d x of y = conv2d(x, w), x of spatial
 * size `size`. */
static bool infer_conv2d_grad_input(Node *n, Diag *d) {
  const Type *g = &n->in[0]->type, *w = &n->in[1]->type;
  int64_t stride[2], pad[2], size[2];
  if (!need_nchw(n, d, g, "gradient") || !need_nchw(n, d, w, "weight")) return false;
  if (!two_ints(n, d, 0, 1, stride) || !two_ints(n, d, 1, 0, pad) || !two_ints(n, d, 2, 1, size))
    return false;
  if (g->dim[1] != w->dim[0] || window_out(size[0], pad[0], w->dim[2], stride[0]) != g->dim[2] ||
      window_out(size[1], pad[1], w->dim[3], stride[1]) != g->dim[3]) {
    Pair p = pair(g, w);
    return fail(n, d, "'conv2d_grad_input' gradient %s does not fit weight %s and size %s", p.a,
                p.b, lstr(size, 2).s);
  }
  int64_t dims[4] = {g->dim[0], w->dim[1], size[0], size[1]};
  Type t = type_make(DT_F32, 4, dims);
  return finish(n, d, &t);
}

/* conv2d_grad_weight(x, g): d loss / d w of y = conv2d(x, w). */
static bool infer_conv2d_grad_weight(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type, *g = &n->in[1]->type;
  int64_t stride[2], pad[2], kernel[2];
  if (!need_nchw(n, d, x, "input") || !need_nchw(n, d, g, "gradient")) return false;
  if (!two_ints(n, d, 0, 1, stride) || !two_ints(n, d, 1, 0, pad) || !two_ints(n, d, 2, 1, kernel))
    return false;
  if (g->dim[0] != x->dim[0] || window_out(x->dim[2], pad[0], kernel[0], stride[0]) != g->dim[2] ||
      window_out(x->dim[3], pad[1], kernel[1], stride[1]) != g->dim[3]) {
    Pair p = pair(x, g);
    return fail(n, d, "'conv2d_grad_weight' input %s does not fit gradient %s", p.a, p.b);
  }
  int64_t dims[4] = {g->dim[1], x->dim[1], kernel[0], kernel[1]};
  Type t = type_make(DT_F32, 4, dims);
  return finish(n, d, &t);
}

/* The pooled type of x, or false. */
static bool pooled(Node *n, Diag *d, const Type *x, int64_t size_h, int64_t size_w, Type *out) {
  int64_t kernel[2], stride[2];
  if (!two_ints(n, d, 0, 1, kernel) || !two_ints(n, d, 1, 1, stride)) return false;
  int64_t oh = window_out(size_h, 0, kernel[0], stride[0]), ow = window_out(size_w, 0, kernel[1], stride[1]);
  if (oh < 1 || ow < 1)
    return fail(n, d, "'%s' kernel %s does not fit size [%lld,%lld]", opname(n), lstr(kernel, 2).s,
                (long long)size_h, (long long)size_w);
  int64_t dims[4] = {x->dim[0], x->dim[1], oh, ow};
  *out = type_make(DT_F32, 4, dims);
  return true;
}

/* max_pool2d_grad(x, g) -> like x; max_pool2d_select(x, h) -> pooled. */
static bool infer_max_pool2d_aux(Node *n, Diag *d) {
  const Type *x = &n->in[0]->type, *o = &n->in[1]->type;
  Type p;
  if (!need_nchw(n, d, x, "input") || !need_nchw(n, d, o, "operand")) return false;
  if (!pooled(n, d, x, x->dim[2], x->dim[3], &p)) return false;
  const Type *want = n->op == OP_MAX_POOL2D_GRAD ? &p : x;
  if (!type_eq(o, want)) {
    Pair pr = pair(x, o);
    return fail(n, d, "'%s' operands %s and %s do not fit", opname(n), pr.a, pr.b);
  }
  return finish(n, d, n->op == OP_MAX_POOL2D_GRAD ? x : &p);
}

/* avg_pool2d_grad(g): each window's gradient spread evenly over it. */
static bool infer_avg_pool2d_grad(Node *n, Diag *d) {
  const Type *g = &n->in[0]->type;
  int64_t size[2];
  Type p;
  if (!need_nchw(n, d, g, "gradient") || !two_ints(n, d, 2, 1, size)) return false;
  if (!pooled(n, d, g, size[0], size[1], &p)) return false;
  if (!type_eq(&p, g))
    return fail(n, d, "'avg_pool2d_grad' gradient %s does not fit size %s", tstr(g).s,
                lstr(size, 2).s);
  int64_t dims[4] = {g->dim[0], g->dim[1], size[0], size[1]};
  Type t = type_make(DT_F32, 4, dims);
  return finish(n, d, &t);
}

/* dropout_mask(step) -> f32[shape] of 0 and 1/(1-p). */
static bool infer_dropout_mask(Node *n, Diag *d) {
  const Type *step = &n->in[0]->type;
  Type t;
  if (step->dtype != DT_F32 || step->rank != 0)
    return fail(n, d, "'dropout_mask' needs the step counter f32[], got %s", tstr(step).s);
  double p = n->attr[0].f;
  if (!(p >= 0 && p < 1)) return fail(n, d, "'dropout_mask' p must be in [0, 1), got %g", p);
  if (!shape_attr(n, d, &n->attr[2], DT_F32, &t)) return false;
  return finish(n, d, &t);
}

/* assign/update(var, value): the var takes the value after the step. */
static bool infer_write(Node *n, Diag *d) {
  const Node *v = n->in[0];
  const Type *vt = &v->type, *x = &n->in[1]->type;
  unsigned ok_roles = n->op == OP_UPDATE ? (ROLE_PARAM | ROLE_STATE) : ROLE_STATE;
  if (v->op != OP_VAR || !(v->roles & ok_roles))
    return fail(n, d, "'%s' writes a %s var, not %s", opname(n),
                n->op == OP_UPDATE ? "param or state" : "state", op_info(v->op)->name);
  if (!type_eq(vt, x)) {
    Pair p = pair(vt, x);
    return fail(n, d, "'%s' of %s cannot take a value of type %s", opname(n), p.a, p.b);
  }
  return finish(n, d, vt);
}

/* --------------------------------------------------------------- losses */

/* mse, huber, binary_cross_entropy: no broadcasting, because a silently
 * broadcast [64,1] against [64] is the classic wrong-loss bug. */
static bool infer_pair_loss(Node *n, Diag *d) {
  const Type *a = &n->in[0]->type, *b = &n->in[1]->type;
  if (!need_dtype(n, d, a, false) || !need_dtype(n, d, b, false)) return false;
  if (!type_eq(a, b)) {
    Pair p = pair(a, b);
    return fail(n, d, "'%s' needs equal shapes, got %s and %s", opname(n), p.a, p.b);
  }
  if (n->op == OP_HUBER && !(n->attr[0].f > 0))
    return fail(n, d, "'huber' delta must be positive, got %g", n->attr[0].f);
  Type t = type_scalar(DT_F32);
  return finish(n, d, &t);
}

/* cross_entropy, nll: class index labels of shape logits.shape[:-1]. */
static bool infer_class_loss(Node *n, Diag *d) {
  const Type *z = &n->in[0]->type, *y = &n->in[1]->type;
  if (z->dtype != DT_F32 || z->rank < 1)
    return fail(n, d, "'%s' needs f32 logits of rank >= 1, got %s", opname(n), tstr(z).s);
  Type want = type_make(DT_I32, z->rank - 1, z->dim);
  if (!type_eq(y, &want))
    return fail(n, d, "'%s' labels must be %s for logits %s, got %s", opname(n), tstr(&want).s,
                tstr(z).s, tstr(y).s);
  Type t = type_scalar(DT_F32);
  return finish(n, d, &t);
}

/* ---------------------------------------------------------- entry points */

bool ir_broadcast(const Type *a, const Type *b, Type *out) {
  Type t = blank(a->dtype);
  t.rank = a->rank > b->rank ? a->rank : b->rank;
  /* align trailing dims; a missing leading dim counts as 1 */
  for (int i = 0; i < t.rank; i++) {
    int ia = i - (t.rank - a->rank), ib = i - (t.rank - b->rank);
    int64_t da = ia >= 0 ? a->dim[ia] : 1, db = ib >= 0 ? b->dim[ib] : 1;
    if (da != db && da != 1 && db != 1) return false;
    t.dim[i] = da == 1 ? db : da;
  }
  *out = t;
  return true;
}

bool ir_infer(Node *n, Diag *d) {
  DType cast_to = n->type.dtype;  /* CAST's target, before anything overwrites it */
  const OpInfo *info = op_info(n->op);
  if (info->arity >= 0 && n->n_in != info->arity)
    return fail(n, d, "'%s' takes %d operand%s, got %d", info->name, info->arity,
                info->arity == 1 ? "" : "s", n->n_in);
  if (info->arity < 0 && n->n_in < 1)
    return fail(n, d, "'%s' needs at least one operand", info->name);
  for (int i = 0; i < n->n_in; i++)
    if (n->in[i]->type.dtype == DT_ERR) {
      n->type.dtype = DT_ERR;  /* poisoned: the first error was reported */
      return false;
    }

  /* elementwise ops by their flags and arity; cast and where by name */
  if ((info->flags & OPF_ELEMWISE) && info->arity == 1 && n->op != OP_CAST) return infer_unary(n, d);
  if ((info->flags & OPF_ELEMWISE) && info->arity == 2) return infer_binary(n, d);
  switch (n->op) {
  case OP_VAR:
  case OP_CONST: return infer_leaf(n, d);
  case OP_CAST: return infer_cast(n, d, cast_to);
  case OP_WHERE: return infer_where(n, d);
  case OP_MATMUL: return infer_matmul(n, d);
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP:
    return infer_reduce(n, d);
  case OP_ARGMAX: return infer_argmax(n, d);
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: return infer_softmax(n, d);
  case OP_RESHAPE: return infer_reshape(n, d);
  case OP_TRANSPOSE: return infer_transpose(n, d);
  case OP_BROADCAST: return infer_broadcast_to(n, d);
  case OP_SLICE: return infer_slice(n, d);
  case OP_CONCAT: return infer_concat(n, d);
  case OP_ONE_HOT: return infer_one_hot(n, d);
  case OP_GATHER: return infer_gather(n, d);
  case OP_CONV2D: return infer_conv2d(n, d);
  case OP_MAX_POOL2D: case OP_AVG_POOL2D: return infer_pool2d(n, d);
  case OP_BATCH_NORM: return infer_batch_norm(n, d);
  case OP_LAYER_NORM: return infer_layer_norm(n, d);
  case OP_DROPOUT: return infer_dropout(n, d);
  case OP_MSE: case OP_HUBER: case OP_BCE: return infer_pair_loss(n, d);
  case OP_CROSS_ENTROPY: case OP_NLL: return infer_class_loss(n, d);
  case OP_UNSLICE: return infer_unslice(n, d);
  case OP_SCATTER_ADD: return infer_scatter_add(n, d);
  case OP_CONV2D_GRAD_INPUT: return infer_conv2d_grad_input(n, d);
  case OP_CONV2D_GRAD_WEIGHT: return infer_conv2d_grad_weight(n, d);
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: return infer_max_pool2d_aux(n, d);
  case OP_AVG_POOL2D_GRAD: return infer_avg_pool2d_grad(n, d);
  case OP_DROPOUT_MASK: return infer_dropout_mask(n, d);
  case OP_ASSIGN: case OP_UPDATE: return infer_write(n, d);
  /* one- and two-operand elementwise: routed above by their flags */
  case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SQUARE:
  case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH: case OP_GELU: case OP_SOFTPLUS:
  case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP: case OP_ERF: case OP_FLOOR:
  case OP_STOP_GRADIENT: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM:
  case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
  case OP_ELU: case OP_SELU: case OP_SILU: case OP_HARDTANH: case OP_COUNT:
    break;
  }
  NNCC_ASSERT(!"ir_infer: op without a shape rule");
  return false;
}
