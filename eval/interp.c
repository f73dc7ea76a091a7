/* interp.c - the reference evaluator: graph IR run by plain C loops, one
 * node at a time in id (topological) order, every value a row-major array
 * of doubles.
 *
 * It is the oracle that generated code is tested against and the engine
 * of `nncc gradcheck`, so each op is written the obvious way, straight
 * from its definition (NumPy / PyTorch semantics), never for speed. It
 * shares the RNG, the initializers and the dropout masks with compiled
 * models through runtime/runtime.h, so both draw the same numbers.
 *
 * Storage: a var owns a persistent buffer (interp_var) that the caller
 * fills and that assign/update write; every other node owns a scratch
 * buffer rewritten by each run. A node's value is its buffer, or the
 * override buffer when interp_override set one; so after a run with
 * writes, a var's value shows what was written (every node read the old
 * one). Nodes appended to the graph after interp_new are not evaluated:
 * a caller that grows the graph makes a new evaluator.
 *
 * Dtypes: f32 values are doubles (rounded to float after every node when
 * round_f32); i32 values are exact integers with 32-bit wrap-around, as
 * LLVM's i32 arithmetic; bool values are 0 and 1. */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/eval.h"
#include "runtime/runtime.h"

/* ir's InitKind and the runtime's rt_init_kind are one list
 * (runtime/init_kinds.def); a cast between them is the identity. */
#define INIT(e, name, nargs) \
  static_assert((int)INIT_##e == (int)RT_INIT_##e, "InitKind and rt_init_kind differ at " #e);
#include "runtime/init_kinds.def"
#undef INIT
static_assert((int)INIT_COUNT == (int)RT_INIT_COUNT, "InitKind and rt_init_kind differ");

struct Interp {
  const Graph *g;
  int n_nodes;        /* g's nodes when made: later additions are not seen */
  bool round_f32;
  double **buf;       /* per node: a var's storage, else its scratch result */
  double **over;      /* per node: override values, or NULL */
  int64_t *numel;     /* per node */
};

/* ------------------------------------------------------------ helpers */

/* Scratch: out of memory unwinds (ir.h), interp_free frees. */
static void *xcalloc(size_t n, size_t size) { return nncc_calloc(n ? n : 1, size ? size : 1); }

/* What users of n read. */
static double *val(const Interp *in, const Node *n) {
  return in->over[n->id] ? in->over[n->id] : in->buf[n->id];
}

/* Row-major strides of a type. */
static void strides_of(const Type *t, int64_t *st) {
  int64_t s = 1;
  for (int i = t->rank - 1; i >= 0; i--) {
    st[i] = s;
    s *= t->dim[i];
  }
}

/* Strides of operand type `a` read through broadcasting into `out`:
 * dims aligned at the right, a missing or size-1 dim gets stride 0. */
static void bcast_strides(const Type *out, const Type *a, int64_t *st) {
  int64_t own[IR_MAX_RANK];
  strides_of(a, own);
  for (int i = 0; i < out->rank; i++) {
    int ia = i - (out->rank - a->rank);
    st[i] = ia >= 0 && a->dim[ia] != 1 ? own[ia] : 0;
  }
}

/* The operand offset of output element k, given per-dim strides. */
static int64_t offset_of(int64_t k, const Type *out, const int64_t *st) {
  int64_t off = 0;
  for (int i = out->rank - 1; i >= 0; i--) {
    off += (k % out->dim[i]) * st[i];
    k /= out->dim[i];
  }
  return off;
}

/* i32 arithmetic wraps modulo 2^32 as the generated code's does. */
static double wrap_i32(int64_t v) { return (double)(int32_t)(uint32_t)(uint64_t)v; }

/* An i32 value held as a double, as an integer; a caller that wrote
 * garbage into an i32 input gets 0 rather than undefined behaviour. */
static int64_t as_int(double v) { return v > -9e18 && v < 9e18 ? (int64_t)v : 0; }

/* f32 -> i32 truncates toward zero; NaN and out-of-range values give
 * INT32_MIN, what x86's cvttss2si produces. */
static double f2i(double v) {
  if (!(v > -2147483649.0 && v < 2147483648.0)) return (double)INT32_MIN;
  return trunc(v);
}

__attribute__((format(printf, 4, 5)))
static int fail(char *err, size_t size, const Node *n, const char *fmt, ...) {
  if (err && size) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(err, size, fmt, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < size)
      snprintf(err + k, size - (size_t)k, " in %s at line %d:%d", op_info(n->op)->name,
               n->loc.line, n->loc.col);
  }
  return 1;
}

/* A class label or row index held as a double: in 0..limit-1? */
static bool index_ok(double v, int64_t limit) { return v >= 0 && v < (double)limit && v == trunc(v); }

/* ---------------------------------------------------------- elementwise */

/* One element of a one-operand op: ir_scalar's arithmetic, with i32 in
 * two's complement (wrapping) as generated code does it. */
static double unary(const Node *n, double x) {
  bool i32 = n->type.dtype == DT_I32;
  double r;
  if (i32) {
    if (n->op == OP_NEG) return wrap_i32(-as_int(x));
    if (n->op == OP_ABS) return wrap_i32(llabs(as_int(x)));
    if (n->op == OP_SQUARE) return wrap_i32((int64_t)((uint64_t)as_int(x) * (uint64_t)as_int(x)));
  }
  if (n->op == OP_CAST) {
    if (n->in[0]->type.dtype == DT_BOOL) return x != 0;
    return n->type.dtype == DT_I32 && n->in[0]->type.dtype == DT_F32 ? f2i(x) : x;
  }
  bool ok = ir_scalar(n->op, n->attr, &x, &r);
  NNCC_ASSERT(ok && "interp: not a unary op");
  return i32 && n->op == OP_CLAMP ? trunc(r) : r;
}

/* i32 division truncates toward zero (C and LLVM sdiv); dividing by zero,
 * undefined there, gives 0 here. */
static double binary(Op op, DType dt, double a, double b) {
  if (dt == DT_I32) {
    int64_t x = as_int(a), y = as_int(b);
    if (op == OP_ADD) return wrap_i32(x + y);
    if (op == OP_SUB) return wrap_i32(x - y);
    if (op == OP_MUL) return wrap_i32((int64_t)((uint64_t)x * (uint64_t)y));
    if (op == OP_DIV) return y == 0 ? 0.0 : wrap_i32(x / y);
  }
  double x[2] = {a, b}, r;
  bool ok = ir_scalar(op, NULL, x, &r);
  NNCC_ASSERT(ok && "interp: not a binary op");
  return r;
}

/* Binary and ternary elementwise ops with NumPy broadcasting. */
static void eval_broadcast(const Interp *in, const Node *n, double *out) {
  int64_t st[3][IR_MAX_RANK];
  const double *x[3];
  for (int k = 0; k < n->n_in; k++) {
    bcast_strides(&n->type, &n->in[k]->type, st[k]);
    x[k] = val(in, n->in[k]);
  }
  DType dt = n->in[n->n_in - 1]->type.dtype;  /* the operands' dtype (not where's cond) */
  int64_t total = type_numel(&n->type);
  for (int64_t i = 0; i < total; i++) {
    double a = x[0][offset_of(i, &n->type, st[0])];
    double b = x[1][offset_of(i, &n->type, st[1])];
    if (n->op == OP_WHERE) {
      double c = x[2][offset_of(i, &n->type, st[2])];
      out[i] = a != 0 ? b : c;
    } else {
      out[i] = binary(n->op, dt, a, b);
    }
  }
}

/* --------------------------------------------------------------- matmul */

/* NumPy matmul: rank-1 operands promoted ([k] -> [1,k] on the left,
 * [k,1] on the right), batch dims broadcast. The result's dims are the
 * batch dims then M and N with the promoted 1s dropped, which leaves the
 * linear order of [batch, M, N] unchanged. */
static void eval_matmul(const Interp *in, const Node *n, double *out) {
  const Type *ta = &n->in[0]->type, *tb = &n->in[1]->type;
  const double *a = val(in, n->in[0]), *b = val(in, n->in[1]);
  int64_t M = ta->rank > 1 ? ta->dim[ta->rank - 2] : 1, K = ta->dim[ta->rank - 1];
  int64_t N = tb->rank > 1 ? tb->dim[tb->rank - 1] : 1;
  int ba = ta->rank > 2 ? ta->rank - 2 : 0, bb = tb->rank > 2 ? tb->rank - 2 : 0;
  Type batch_a = type_make(DT_F32, ba, ta->dim), batch_b = type_make(DT_F32, bb, tb->dim), batch;
  NNCC_ASSERT(ir_broadcast(&batch_a, &batch_b, &batch));
  int64_t sa[IR_MAX_RANK], sb[IR_MAX_RANK];
  bcast_strides(&batch, &batch_a, sa);
  bcast_strides(&batch, &batch_b, sb);
  int64_t nb = type_numel(&batch);
  for (int64_t q = 0; q < nb; q++) {
    const double *A = a + offset_of(q, &batch, sa) * M * K;
    const double *B = b + offset_of(q, &batch, sb) * K * N;
    double *C = out + q * M * N;
    for (int64_t i = 0; i < M; i++)
      for (int64_t j = 0; j < N; j++) {
        double s = 0;
        for (int64_t k = 0; k < K; k++) s += A[i * K + k] * B[k * N + j];
        C[i * N + j] = s;
      }
  }
}

/* ----------------------------------------------------------- reductions */

/* Output index of input element k: the input's coordinates with the
 * reduced axes dropped. keepdims only adds 1s, which leaves the linear
 * order alone, so one mapping serves both. */
typedef struct Reducer {
  Type kept;                 /* the input's shape with reduced dims set to 1 */
  int64_t st[IR_MAX_RANK];   /* strides of `kept`, 0 on reduced axes */
  int64_t count;             /* elements per output */
} Reducer;

static Reducer reducer(const Type *x, const int64_t *axes, int n_axes) {
  Reducer r;
  r.kept = *x;
  r.count = 1;
  for (int i = 0; i < n_axes; i++) {
    r.count *= x->dim[axes[i]];
    r.kept.dim[axes[i]] = 1;
  }
  strides_of(&r.kept, r.st);
  for (int i = 0; i < n_axes; i++) r.st[axes[i]] = 0;
  return r;
}

static void eval_reduce(const Interp *in, const Node *n, double *out) {
  const Type *tx = &n->in[0]->type;
  const double *x = val(in, n->in[0]);
  Reducer r = reducer(tx, n->attr[0].list, n->attr[0].n);
  int64_t total = type_numel(tx), nout = type_numel(&n->type);
  double init = n->op == OP_MAX || n->op == OP_LOGSUMEXP ? -INFINITY : n->op == OP_MIN ? INFINITY : 0;
  for (int64_t o = 0; o < nout; o++) out[o] = init;
  for (int64_t k = 0; k < total; k++) {  /* max first; sums for sum/mean */
    double *o = &out[offset_of(k, tx, r.st)], v = x[k];
    switch (n->op) {
    case OP_SUM: case OP_MEAN: *o += v; break;
    /* a NaN, once seen, stays (NumPy's max and min propagate it) */
    case OP_MAX: case OP_LOGSUMEXP: if (!isnan(*o) && (v > *o || isnan(v))) *o = v; break;
    case OP_MIN: if (!isnan(*o) && (v < *o || isnan(v))) *o = v; break;
    /* not a reduction */
    case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
    case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
    case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
    case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
    case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
    case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_ARGMAX:
    case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST:
    case OP_SLICE: case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D:
    case OP_MAX_POOL2D: case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM:
    case OP_DROPOUT: case OP_MSE: case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL:
    case OP_UNSLICE: case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
    case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
    case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU:
    case OP_HARDTANH: case OP_COUNT:
      NNCC_ASSERT(!"interp: not a reduction");
    }
  }
  if (n->op == OP_MEAN)
    for (int64_t o = 0; o < nout; o++) out[o] /= (double)r.count;
  if (n->op == OP_SUM && n->type.dtype == DT_I32)
    for (int64_t o = 0; o < nout; o++) out[o] = wrap_i32(as_int(out[o]));
  if (n->op == OP_LOGSUMEXP) {
    /* stable: max + log(sum(exp(x - max))); an infinite max is the
     * answer itself (all -inf gives -inf, as PyTorch) */
    double *sum = xcalloc((size_t)nout, sizeof *sum);
    for (int64_t k = 0; k < total; k++) {
      int64_t o = offset_of(k, tx, r.st);
      if (isfinite(out[o])) sum[o] += exp(x[k] - out[o]);
    }
    for (int64_t o = 0; o < nout; o++)
      if (isfinite(out[o])) out[o] += log(sum[o]);
    nncc_free(sum);
  }
}

/* An axis op's view of its operand: outer x len x inner. */
static void axis_split(const Type *t, int64_t axis, int64_t *outer, int64_t *len, int64_t *inner) {
  *outer = *inner = 1;
  for (int i = 0; i < axis; i++) *outer *= t->dim[i];
  *len = t->dim[axis];
  for (int i = (int)axis + 1; i < t->rank; i++) *inner *= t->dim[i];
}

/* First index of the maximum; a NaN counts as the maximum (NumPy). */
static void eval_argmax(const Interp *in, const Node *n, double *out) {
  const double *x = val(in, n->in[0]);
  int64_t outer, len, inner;
  axis_split(&n->in[0]->type, n->attr[0].i, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const double *row = x + o * len * inner + i;
      int64_t best = 0;
      for (int64_t j = 1; j < len && !isnan(row[best * inner]); j++)
        if (row[j * inner] > row[best * inner] || isnan(row[j * inner])) best = j;
      out[o * inner + i] = (double)best;
    }
}

static void eval_softmax(const Interp *in, const Node *n, double *out) {
  const double *x = val(in, n->in[0]);
  int64_t outer, len, inner;
  axis_split(&n->type, n->attr[0].i, &outer, &len, &inner);
  for (int64_t o = 0; o < outer; o++)
    for (int64_t i = 0; i < inner; i++) {
      const double *row = x + o * len * inner + i;
      double *dst = out + o * len * inner + i;
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < len; j++) m = fmax(m, row[j * inner]);
      if (!isfinite(m)) m = 0;  /* all -inf (or an inf): let the NaN show */
      for (int64_t j = 0; j < len; j++) s += exp(row[j * inner] - m);
      for (int64_t j = 0; j < len; j++)
        dst[j * inner] = n->op == OP_SOFTMAX ? exp(row[j * inner] - m) / s
                                             : row[j * inner] - m - log(s);
    }
}

/* ------------------------------------------------------ data movement */

static void eval_transpose(const Interp *in, const Node *n, double *out) {
  const Type *tx = &n->in[0]->type;
  const double *x = val(in, n->in[0]);
  int64_t own[IR_MAX_RANK], st[IR_MAX_RANK];
  strides_of(tx, own);
  for (int i = 0; i < n->type.rank; i++) st[i] = own[n->attr[0].list[i]];  /* out dim i = in dim perm[i] */
  int64_t total = type_numel(&n->type);
  for (int64_t k = 0; k < total; k++) out[k] = x[offset_of(k, &n->type, st)];
}

static void eval_broadcast_to(const Interp *in, const Node *n, double *out) {
  const double *x = val(in, n->in[0]);
  int64_t st[IR_MAX_RANK];
  bcast_strides(&n->type, &n->in[0]->type, st);
  int64_t total = type_numel(&n->type);
  for (int64_t k = 0; k < total; k++) out[k] = x[offset_of(k, &n->type, st)];
}

/* slice reads x[begin + i*step]; unslice writes there. `small` is the
 * strided side's type, `big` the other; returns the big-side offset of
 * small-side element k. */
static int64_t strided_offset(int64_t k, const Type *small, const Type *big, const int64_t *begin,
                              const int64_t *step) {
  int64_t st[IR_MAX_RANK], off = 0;
  strides_of(big, st);
  for (int i = small->rank - 1; i >= 0; i--) {
    off += (begin[i] + (k % small->dim[i]) * step[i]) * st[i];
    k /= small->dim[i];
  }
  return off;
}

static void eval_slice(const Interp *in, const Node *n, double *out) {
  const double *x = val(in, n->in[0]);
  int64_t total = type_numel(&n->type);
  for (int64_t k = 0; k < total; k++)
    out[k] = x[strided_offset(k, &n->type, &n->in[0]->type, n->attr[0].list, n->attr[2].list)];
}

static void eval_unslice(const Interp *in, const Node *n, double *out) {
  const double *x = val(in, n->in[0]);
  int64_t total = type_numel(&n->in[0]->type);
  memset(out, 0, sizeof(double) * (size_t)type_numel(&n->type));
  for (int64_t k = 0; k < total; k++)
    out[strided_offset(k, &n->in[0]->type, &n->type, n->attr[0].list, n->attr[1].list)] = x[k];
}

static void eval_concat(const Interp *in, const Node *n, double *out) {
  int64_t outer, len, inner;
  axis_split(&n->type, n->attr[0].i, &outer, &len, &inner);
  int64_t at = 0;  /* position along the axis where operand k starts */
  for (int k = 0; k < n->n_in; k++) {
    const double *x = val(in, n->in[k]);
    int64_t lk = n->in[k]->type.dim[n->attr[0].i];
    for (int64_t o = 0; o < outer; o++)
      memcpy(out + (o * len + at) * inner, x + o * lk * inner, sizeof(double) * (size_t)(lk * inner));
    at += lk;
  }
}

/* An out-of-range index is an error, as in PyTorch (never a zero row). */
static int eval_one_hot(const Interp *in, const Node *n, double *out, char *err, size_t size) {
  const double *x = val(in, n->in[0]);
  int64_t depth = n->attr[0].i, total = type_numel(&n->in[0]->type);
  memset(out, 0, sizeof(double) * (size_t)(total * depth));
  for (int64_t k = 0; k < total; k++) {
    if (!index_ok(x[k], depth))
      return fail(err, size, n, "label %.17g is out of range for %lld classes", x[k], (long long)depth);
    out[k * depth + (int64_t)x[k]] = 1;
  }
  return 0;
}

/* gather(table [V, ...], idx) -> [idx..., ...]: row idx[j] of the table. */
static int eval_gather(const Interp *in, const Node *n, double *out, char *err, size_t size) {
  const Type *tt = &n->in[0]->type;
  const double *table = val(in, n->in[0]), *idx = val(in, n->in[1]);
  int64_t rows = tt->dim[0], row = type_numel(tt) / rows, total = type_numel(&n->in[1]->type);
  for (int64_t j = 0; j < total; j++) {
    if (!index_ok(idx[j], rows))
      return fail(err, size, n, "index %.17g is out of range for %lld rows", idx[j], (long long)rows);
    memcpy(out + j * row, table + (int64_t)idx[j] * row, sizeof(double) * (size_t)row);
  }
  return 0;
}

/* scatter_add(g [idx..., ...], idx) -> [rows, ...]: the transpose of gather. */
static int eval_scatter_add(const Interp *in, const Node *n, double *out, char *err, size_t size) {
  const double *g = val(in, n->in[0]), *idx = val(in, n->in[1]);
  int64_t rows = n->attr[0].i, total = type_numel(&n->in[1]->type);
  int64_t row = type_numel(&n->type) / rows;
  memset(out, 0, sizeof(double) * (size_t)type_numel(&n->type));
  for (int64_t j = 0; j < total; j++) {
    if (!index_ok(idx[j], rows))
      return fail(err, size, n, "index %.17g is out of range for %lld rows", idx[j], (long long)rows);
    double *dst = out + (int64_t)idx[j] * row;
    for (int64_t e = 0; e < row; e++) dst[e] += g[j * row + e];
  }
  return 0;
}

/* ----------------------------------------------- convolution, pooling */

/* The sizes of a conv: x [N,C,H,W], w [O,C,KH,KW], y [N,O,OH,OW]. */
typedef struct Conv {
  int64_t N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw;
} Conv;

static Conv conv_dims(const Type *x, const Type *w, const Type *y, const Node *n) {
  Conv c = {x->dim[0], x->dim[1], x->dim[2], x->dim[3], w->dim[0], w->dim[2], w->dim[3],
            y->dim[2], y->dim[3], n->attr[0].list[0], n->attr[0].list[1],
            n->attr[1].list[0], n->attr[1].list[1]};
  return c;
}

/* One loop nest serves conv2d and both of its transposes: every
 * (n, o, c, i, j, a, b) with an in-range input pixel pairs x, w and y;
 * `which` names the array that accumulates the product of the other two.
 * Written once, the three are exact adjoints by construction of the loop,
 * and the tests check that independently. */
enum { CONV_Y, CONV_X, CONV_W };

static void conv_loop(const Conv *c, int which, double *x, double *w, double *y) {
  for (int64_t n = 0; n < c->N; n++)
    for (int64_t o = 0; o < c->O; o++)
      for (int64_t ch = 0; ch < c->C; ch++)
        for (int64_t i = 0; i < c->OH; i++)
          for (int64_t j = 0; j < c->OW; j++)
            for (int64_t a = 0; a < c->KH; a++) {
              int64_t r = i * c->sh + a - c->ph;
              if (r < 0 || r >= c->H) continue;  /* zero padding */
              for (int64_t b = 0; b < c->KW; b++) {
                int64_t s = j * c->sw + b - c->pw;
                if (s < 0 || s >= c->W) continue;
                double *px = &x[((n * c->C + ch) * c->H + r) * c->W + s];
                double *pw = &w[((o * c->C + ch) * c->KH + a) * c->KW + b];
                double *py = &y[((n * c->O + o) * c->OH + i) * c->OW + j];
                if (which == CONV_Y) *py += *px * *pw;
                else if (which == CONV_X) *px += *py * *pw;
                else *pw += *px * *py;
              }
            }
}

static void eval_conv(const Interp *in, const Node *n, double *out) {
  const Type *t0 = &n->in[0]->type, *t1 = &n->in[1]->type;
  double *a = val(in, n->in[0]), *b = val(in, n->in[1]);
  memset(out, 0, sizeof(double) * (size_t)type_numel(&n->type));
  if (n->op == OP_CONV2D) {  /* (x, w) -> y */
    Conv c = conv_dims(t0, t1, &n->type, n);
    conv_loop(&c, CONV_Y, a, b, out);
  } else if (n->op == OP_CONV2D_GRAD_INPUT) {  /* (g, w) -> dx */
    Conv c = conv_dims(&n->type, t1, t0, n);
    conv_loop(&c, CONV_X, out, b, a);
  } else {  /* (x, g) -> dw */
    Conv c = conv_dims(t0, &n->type, t1, n);
    conv_loop(&c, CONV_W, a, out, b);
  }
}

/* The pooling geometry, no padding, floor mode; x is [N,C,H,W]. */
typedef struct Pool {
  int64_t NC, H, W, OH, OW, kh, kw, sh, sw;
} Pool;

static Pool pool_dims(const Type *x, const Type *y, const Node *n) {
  Pool p = {x->dim[0] * x->dim[1], x->dim[2], x->dim[3], y->dim[2], y->dim[3],
            n->attr[0].list[0], n->attr[0].list[1], n->attr[1].list[0], n->attr[1].list[1]};
  return p;
}

/* The offset (in x) of window (q, i, j)'s first maximum, row-major in the
 * window; a NaN wins, as max_pool2d propagates it. */
static int64_t window_argmax(const Pool *p, const double *x, int64_t q, int64_t i, int64_t j) {
  int64_t best = (q * p->H + i * p->sh) * p->W + j * p->sw;
  for (int64_t a = 0; a < p->kh; a++)
    for (int64_t b = 0; b < p->kw; b++) {
      int64_t at = (q * p->H + i * p->sh + a) * p->W + j * p->sw + b;
      if (x[at] > x[best] || (isnan(x[at]) && !isnan(x[best]))) best = at;
    }
  return best;
}

static void eval_pool(const Interp *in, const Node *n, double *out) {
  const double *x = val(in, n->in[0]);
  int64_t total = type_numel(&n->type);
  bool grad = n->op == OP_MAX_POOL2D_GRAD || n->op == OP_AVG_POOL2D_GRAD;
  /* the window geometry is that of the un-pooled side */
  const Type *big = grad ? &n->type : &n->in[0]->type, *small = grad ? &n->in[n->n_in - 1]->type : &n->type;
  Pool p = pool_dims(big, small, n);
  const double *h = n->n_in > 1 ? val(in, n->in[1]) : NULL;
  if (grad) memset(out, 0, sizeof(double) * (size_t)total);
  double area = (double)(p.kh * p.kw);
  for (int64_t q = 0; q < p.NC; q++)
    for (int64_t i = 0; i < p.OH; i++)
      for (int64_t j = 0; j < p.OW; j++) {
        int64_t o = (q * p.OH + i) * p.OW + j;
        switch (n->op) {
        case OP_MAX_POOL2D: out[o] = x[window_argmax(&p, x, q, i, j)]; break;
        case OP_MAX_POOL2D_GRAD: out[window_argmax(&p, x, q, i, j)] += h[o]; break;
        case OP_MAX_POOL2D_SELECT: out[o] = h[window_argmax(&p, x, q, i, j)]; break;
        case OP_AVG_POOL2D:
        case OP_AVG_POOL2D_GRAD: {
          double s = 0;
          for (int64_t a = 0; a < p.kh; a++)
            for (int64_t b = 0; b < p.kw; b++) {
              int64_t at = (q * p.H + i * p.sh + a) * p.W + j * p.sw + b;
              if (n->op == OP_AVG_POOL2D) s += x[at];
              else out[at] += x[o] / area;  /* x is g here */
            }
          if (n->op == OP_AVG_POOL2D) out[o] = s / area;
          break;
        }
        /* not pooling */
        case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT:
        case OP_RSQRT: case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU:
        case OP_SIGMOID: case OP_TANH: case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS:
        case OP_POW: case OP_CLAMP: case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT:
        case OP_CAST: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_MAXIMUM:
        case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE:
        case OP_WHERE: case OP_MATMUL: case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN:
        case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_RESHAPE:
        case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT: case OP_ONE_HOT:
        case OP_GATHER: case OP_CONV2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT:
        case OP_MSE: case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL:
        case OP_UNSLICE: case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT:
        case OP_CONV2D_GRAD_WEIGHT: case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE:
        case OP_ELU: case OP_SELU: case OP_SILU: case OP_HARDTANH: case OP_COUNT:
          NNCC_ASSERT(!"interp: not a pooling op");
        }
      }
}

/* ------------------------------------------------------- normalization */

/* Evaluation mode: the running statistics; lowering makes the training
 * form out of ordinary ops. Channels on axis 1. */
static void eval_batch_norm(const Interp *in, const Node *n, double *out) {
  const Type *t = &n->type;
  const double *x = val(in, n->in[0]), *gamma = val(in, n->in[1]), *beta = val(in, n->in[2]);
  const double *mean = val(in, n->in[3]), *var = val(in, n->in[4]);
  int64_t C = t->dim[1], inner = t->rank == 4 ? t->dim[2] * t->dim[3] : 1, total = type_numel(t);
  for (int64_t k = 0; k < total; k++) {
    int64_t c = (k / inner) % C;
    out[k] = (x[k] - mean[c]) / sqrt(var[c] + n->attr[1].f) * gamma[c] + beta[c];
  }
}

/* Over the last axis, biased variance. */
static void eval_layer_norm(const Interp *in, const Node *n, double *out) {
  const double *x = val(in, n->in[0]), *gamma = val(in, n->in[1]), *beta = val(in, n->in[2]);
  int64_t C = n->type.dim[n->type.rank - 1], rows = type_numel(&n->type) / C;
  for (int64_t r = 0; r < rows; r++) {
    const double *row = x + r * C;
    double mu = 0, var = 0;
    for (int64_t c = 0; c < C; c++) mu += row[c];
    mu /= (double)C;
    for (int64_t c = 0; c < C; c++) var += (row[c] - mu) * (row[c] - mu);
    var /= (double)C;
    double inv = 1.0 / sqrt(var + n->attr[0].f);
    for (int64_t c = 0; c < C; c++) out[r * C + c] = (row[c] - mu) * inv * gamma[c] + beta[c];
  }
}

static void eval_dropout_mask(const Interp *in, const Node *n, double *out) {
  double step = val(in, n->in[0])[0];
  uint64_t s = step > 0 && step < 1.8e19 ? (uint64_t)step : 0;
  int64_t total = type_numel(&n->type);
  for (int64_t k = 0; k < total; k++)
    out[k] = rt_dropout_mask((uint64_t)n->attr[1].i, s, (uint64_t)k, n->attr[0].f);
}

/* --------------------------------------------------------------- losses */

/* Scalar results, PyTorch's reduction='mean'. */
static void eval_pair_loss(const Interp *in, const Node *n, double *out) {
  const double *p = val(in, n->in[0]), *t = val(in, n->in[1]);
  int64_t total = type_numel(&n->in[0]->type);
  double s = 0, delta = n->attr[0].f;
  for (int64_t k = 0; k < total; k++) {
    double d = p[k] - t[k], z = p[k];
    switch (n->op) {
    case OP_MSE: s += d * d; break;
    case OP_HUBER: s += fabs(d) <= delta ? 0.5 * d * d : delta * (fabs(d) - 0.5 * delta); break;
    case OP_BCE: s += fmax(z, 0) - z * t[k] + log1p(exp(-fabs(z))); break;
    /* not a pairwise loss */
    case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
    case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
    case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
    case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
    case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
    case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM: case OP_MEAN:
    case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
    case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
    case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D: case OP_MAX_POOL2D:
    case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT:
    case OP_CROSS_ENTROPY: case OP_NLL: case OP_UNSLICE: case OP_SCATTER_ADD:
    case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT: case OP_MAX_POOL2D_GRAD:
    case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD: case OP_DROPOUT_MASK: case OP_ASSIGN:
    case OP_UPDATE: case OP_ELU: case OP_SELU: case OP_SILU: case OP_HARDTANH: case OP_COUNT:
      NNCC_ASSERT(!"interp: not a pairwise loss");
    }
  }
  out[0] = s / (double)total;
}

/* cross_entropy(logits [..., C], labels [...]), nll(logp, labels): the
 * mean over every label element. */
static int eval_class_loss(const Interp *in, const Node *n, double *out, char *err, size_t size) {
  const Type *tz = &n->in[0]->type;
  const double *z = val(in, n->in[0]), *y = val(in, n->in[1]);
  int64_t C = tz->dim[tz->rank - 1], rows = type_numel(tz) / C;
  double s = 0;
  for (int64_t r = 0; r < rows; r++) {
    if (!index_ok(y[r], C))
      return fail(err, size, n, "label %.17g is out of range for %lld classes", y[r], (long long)C);
    const double *row = z + r * C;
    double picked = row[(int64_t)y[r]];
    if (n->op == OP_NLL) {
      s -= picked;
      continue;
    }
    double m = -INFINITY, e = 0;
    for (int64_t c = 0; c < C; c++) m = fmax(m, row[c]);
    if (!isfinite(m)) m = 0;
    for (int64_t c = 0; c < C; c++) e += exp(row[c] - m);
    s += m + log(e) - picked;
  }
  out[0] = s / (double)rows;
  return 0;
}

/* ------------------------------------------------------------ one node */

static int eval_node(Interp *in, const Node *n, double *out, char *err, size_t size) {
  int64_t total = in->numel[n->id];
  const OpInfo *info = op_info(n->op);
  if ((info->flags & OPF_ELEMWISE) && n->n_in == 1) {
    const double *x = val(in, n->in[0]);
    for (int64_t k = 0; k < total; k++) out[k] = unary(n, x[k]);
    return 0;
  }
  if (info->flags & OPF_ELEMWISE) {
    eval_broadcast(in, n, out);
    return 0;
  }
  switch (n->op) {
  case OP_CONST:
    for (int64_t k = 0; k < total; k++) out[k] = n->attr[0].f;
    return 0;
  case OP_MATMUL: eval_matmul(in, n, out); return 0;
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP:
    eval_reduce(in, n, out);
    return 0;
  case OP_ARGMAX: eval_argmax(in, n, out); return 0;
  case OP_SOFTMAX: case OP_LOG_SOFTMAX: eval_softmax(in, n, out); return 0;
  case OP_RESHAPE: case OP_DROPOUT: case OP_ASSIGN: case OP_UPDATE: {
    /* the same data; a write's value is its value operand, copied now so
     * that the writes at the end see what was read during the run */
    const Node *src = n->in[n->op == OP_ASSIGN || n->op == OP_UPDATE ? 1 : 0];
    memcpy(out, val(in, src), sizeof(double) * (size_t)total);
    return 0;
  }
  case OP_TRANSPOSE: eval_transpose(in, n, out); return 0;
  case OP_BROADCAST: eval_broadcast_to(in, n, out); return 0;
  case OP_SLICE: eval_slice(in, n, out); return 0;
  case OP_UNSLICE: eval_unslice(in, n, out); return 0;
  case OP_CONCAT: eval_concat(in, n, out); return 0;
  case OP_ONE_HOT: return eval_one_hot(in, n, out, err, size);
  case OP_GATHER: return eval_gather(in, n, out, err, size);
  case OP_SCATTER_ADD: return eval_scatter_add(in, n, out, err, size);
  case OP_CONV2D: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
    eval_conv(in, n, out);
    return 0;
  case OP_MAX_POOL2D: case OP_AVG_POOL2D: case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT:
  case OP_AVG_POOL2D_GRAD:
    eval_pool(in, n, out);
    return 0;
  case OP_BATCH_NORM: eval_batch_norm(in, n, out); return 0;
  case OP_LAYER_NORM: eval_layer_norm(in, n, out); return 0;
  case OP_DROPOUT_MASK: eval_dropout_mask(in, n, out); return 0;
  case OP_MSE: case OP_HUBER: case OP_BCE: eval_pair_loss(in, n, out); return 0;
  case OP_CROSS_ENTROPY: case OP_NLL: return eval_class_loss(in, n, out, err, size);
  /* elementwise: evaluated above, by their flags */
  case OP_VAR: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_ABS:
  case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH: case OP_GELU:
  case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP: case OP_ERF:
  case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB: case OP_MUL:
  case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT: case OP_GE:
  case OP_EQ: case OP_NE: case OP_WHERE: case OP_ELU: case OP_SELU: case OP_SILU: case OP_HARDTANH:
  case OP_COUNT:
    break;
  }
  NNCC_ASSERT(!"interp: op without an evaluation rule");
  return 1;
}

/* -------------------------------------------------------------- the API */

Interp *interp_new(const Graph *g, bool round_f32) {
  Interp *in = xcalloc(1, sizeof *in);
  int n = g->n_nodes;
  in->g = g;
  in->n_nodes = n;
  in->round_f32 = round_f32;
  in->buf = xcalloc((size_t)n, sizeof *in->buf);
  in->over = xcalloc((size_t)n, sizeof *in->over);
  in->numel = xcalloc((size_t)n, sizeof *in->numel);
  for (int i = 0; i < n; i++) {
    const Node *node = g->nodes[i];
    NNCC_ASSERT(node->id == i && node->type.dtype != DT_ERR);
    in->numel[i] = type_numel(&node->type);
    in->buf[i] = xcalloc((size_t)in->numel[i], sizeof(double));
  }
  return in;
}

void interp_free(Interp *in) {
  if (!in) return;
  for (int i = 0; i < in->n_nodes; i++) {
    nncc_free(in->buf[i]);
    nncc_free(in->over[i]);
  }
  nncc_free(in->buf);
  nncc_free(in->over);
  nncc_free(in->numel);
  nncc_free(in);
}

double *interp_var(Interp *in, const Node *var) {
  NNCC_ASSERT(var->op == OP_VAR && var->id < in->n_nodes && in->g->nodes[var->id] == var);
  return in->buf[var->id];
}

/* f32 vars start at the float the compiled model's create() would store
 * (rt_init_fill_f32), in both modes, so both start from the same point. */
void interp_init(Interp *in, uint64_t seed) {
  for (int i = 0; i < in->n_nodes; i++) {
    const Node *n = in->g->nodes[i];
    if (n->op != OP_VAR) continue;
    double *v = in->buf[i];
    if (!(n->roles & (ROLE_PARAM | ROLE_STATE))) {
      memset(v, 0, sizeof(double) * (size_t)in->numel[i]);
      continue;
    }
    double fan_in, fan_out;
    rt_init_fans(n->type.rank, n->type.dim, &fan_in, &fan_out);
    uint64_t stream = rt_stream_of(n->name ? n->name : "");
    for (int64_t k = 0; k < in->numel[i]; k++) {
      double x = rt_init_value((int)n->init, n->init_arg, fan_in, fan_out, seed, stream, (uint64_t)k);
      v[k] = n->type.dtype == DT_F32 ? (double)(float)x : n->type.dtype == DT_I32 ? f2i(x) : x != 0;
    }
  }
}

int interp_run(Interp *in, unsigned flags, char *err, size_t err_size) {
  const Graph *g = in->g;
  if (err && err_size) err[0] = '\0';
  for (int i = 0; i < in->n_nodes; i++) {
    const Node *n = g->nodes[i];
    double *out = in->buf[i];
    bool f32 = n->type.dtype == DT_F32;
    if (in->over[i]) continue;  /* users read the override */
    if (n->op == OP_VAR) {
      /* a var's storage is what f32 storage would hold */
      if (in->round_f32 && f32)
        for (int64_t k = 0; k < in->numel[i]; k++) out[k] = (double)(float)out[k];
      continue;
    }
    if (eval_node(in, n, out, err, err_size)) return 1;
    if (in->round_f32 && f32)
      for (int64_t k = 0; k < in->numel[i]; k++) out[k] = (double)(float)out[k];
  }
  for (int i = 0; i < in->n_nodes; i++) {
    const Node *n = g->nodes[i];
    bool apply = (n->op == OP_ASSIGN && (flags & INTERP_ASSIGN)) ||
                 (n->op == OP_UPDATE && (flags & INTERP_UPDATE));
    if (apply)
      memcpy(in->buf[n->in[0]->id], val(in, n), sizeof(double) * (size_t)in->numel[i]);
  }
  return 0;
}

const double *interp_value(const Interp *in, const Node *n) {
  NNCC_ASSERT(n->id < in->n_nodes && in->g->nodes[n->id] == n);
  return val(in, n);
}

void interp_override(Interp *in, const Node *n, const double *values) {
  NNCC_ASSERT(n->id < in->n_nodes && in->g->nodes[n->id] == n);
  nncc_free(in->over[n->id]);
  in->over[n->id] = NULL;
  if (!values) return;
  in->over[n->id] = xcalloc((size_t)in->numel[n->id], sizeof(double));
  memcpy(in->over[n->id], values, sizeof(double) * (size_t)in->numel[n->id]);
}
