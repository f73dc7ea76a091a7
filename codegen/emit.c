/* emit.c - graph IR to LLVM IR: one kernel function per ABI entry, one
 * loop nest per node over static shapes (see cg.h for the interface).
 *
 * Loops are emitted rotated (the body runs first: every dimension is at
 * least 1) with the innermost loop over the last, contiguous dimension
 * and constant trip counts, float math with reassoc/contract flags, so
 * that LLVM's loop vectorizer widens them. exp (and tanh and sigmoid,
 * built on it) is an inline polynomial that vectorizes (notes: 16x
 * glibc's expf), and so are log, log1p and erf (emit_math.c); sin and
 * cos call libm.
 *
 * A fused kernel (passes/fuse.c) is one function: see "fusion" below. */
#include "codegen/cg.h"
#include "codegen/emit_math.h"
#include "codegen/emit_prim.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- primitives */

static LLVMValueRef ci32(Cg *c, int64_t v) { return LLVMConstInt(c->i32, (unsigned long long)v, 1); }
static LLVMValueRef fneg(Cg *c, LLVMValueRef a) { return cg_fmf(LLVMBuildFNeg(c->b, a, "")); }
static LLVMValueRef fcmp(Cg *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(c->b, p, a, b, "");
}
static LLVMValueRef sel(Cg *c, LLVMValueRef k, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, k, a, b, "");
}

static LLVMValueRef intrinsic1(Cg *c, const char *name, LLVMValueRef x) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, &t, 1);
  return cg_fmf(LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->ctx, id, &t, 1), f, &x, 1, ""));
}

static LLVMValueRef intrinsic2(Cg *c, const char *name, LLVMValueRef x, LLVMValueRef y) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef t = LLVMTypeOf(x);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, &t, 1);
  LLVMValueRef args[2] = {x, y};
  return cg_fmf(LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->ctx, id, &t, 1), f, args, 2, ""));
}

/* float f(float) from libm */
static LLVMValueRef libm1(Cg *c, const char *name, LLVMValueRef x) {
  LLVMTypeRef ft = LLVMFunctionType(c->f32, &c->f32, 1, 0);
  LLVMValueRef f = LLVMGetNamedFunction(c->mod, name);
  if (!f) f = LLVMAddFunction(c->mod, name, ft);
  return LLVMBuildCall2(c->b, ft, f, &x, 1, "");
}

/* e^x as a polynomial (Cephes expf, 1.3 ulp): range reduction by ln 2,
 * degree-5 polynomial, the exponent put together in the bits. NaN stays
 * NaN, large x gives +inf, small x 0. */
static LLVMValueRef emit_exp(Cg *c, LLVMValueRef x) {
  LLVMValueRef lo = cg_f32(c, -87.3365), hi = cg_f32(c, 88.37);
  LLVMValueRef xc = sel(c, fcmp(c, LLVMRealOLT, x, lo), lo, x);
  xc = sel(c, fcmp(c, LLVMRealOGT, xc, hi), hi, xc);
  LLVMValueRef n = intrinsic1(c, "llvm.rint", cg_fmul(c, xc, cg_f32(c, 1.44269504088896341)));
  LLVMValueRef r = cg_fadd(c, cg_fmul(c, n, cg_f32(c, -0.693359375)), xc);
  r = cg_fadd(c, cg_fmul(c, n, cg_f32(c, 2.12194440e-4)), r);
  static const double p[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                             4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef y = cg_f32(c, p[0]);
  for (int i = 1; i < 6; i++) y = cg_fadd(c, cg_fmul(c, y, r), cg_f32(c, p[i]));
  y = cg_fadd(c, cg_fmul(c, y, cg_fmul(c, r, r)), cg_fadd(c, r, cg_f32(c, 1)));
  LLVMValueRef e = LLVMBuildFPToSI(c->b, n, c->i32, "");
  e = LLVMBuildShl(c->b, LLVMBuildAdd(c->b, e, ci32(c, 127), ""), ci32(c, 23), "");
  y = cg_fmul(c, y, LLVMBuildBitCast(c->b, e, c->f32, ""));
  y = sel(c, fcmp(c, LLVMRealOGT, x, cg_f32(c, 88.7228)), cg_f32(c, INFINITY), y);
  return sel(c, fcmp(c, LLVMRealUNO, x, x), x, y);
}

static LLVMValueRef emit_sigmoid(Cg *c, LLVMValueRef x) {
  return cg_fdiv(c, cg_f32(c, 1), cg_fadd(c, cg_f32(c, 1), emit_exp(c, fneg(c, x))));
}

/* tanh = 1 - 2 / (e^2x + 1): e^2x overflows to inf for large x (-> 1) */
static LLVMValueRef emit_tanh(Cg *c, LLVMValueRef x) {
  LLVMValueRef e = emit_exp(c, cg_fmul(c, x, cg_f32(c, 2)));
  return cg_fsub(c, cg_f32(c, 1), cg_fdiv(c, cg_f32(c, 2), cg_fadd(c, e, cg_f32(c, 1))));
}

/* A loop nest over dims[0..rank); idx[d] is each loop's variable. */
typedef struct Nest {
  CgLoop loops[IR_MAX_RANK];
  LLVMValueRef idx[IR_MAX_RANK];
  int rank;
} Nest;

static void nest_begin(Cg *c, Nest *ns, const int64_t *dims, int rank) {
  ns->rank = rank;
  for (int d = 0; d < rank; d++) ns->idx[d] = cg_loop_begin(c, &ns->loops[d], dims[d]);
}

/* The same with the outermost loop split over the node's tasks; `work`:
 * per element of the nest. */
static void nest_begin_parallel(Cg *c, Nest *ns, const int64_t *dims, int rank, int64_t work) {
  ns->rank = rank;
  int64_t inner = work;
  for (int d = 1; d < rank; d++) inner *= dims[d];
  for (int d = 0; d < rank; d++)
    ns->idx[d] = d == 0 ? cg_parallel_loop_begin(c, &ns->loops[d], dims[d], inner)
                        : cg_loop_begin(c, &ns->loops[d], dims[d]);
}

static void nest_end(Cg *c, Nest *ns) {
  for (int d = ns->rank - 1; d >= 0; d--) cg_loop_end(c, &ns->loops[d]);
}

/* sum_d idx[d] * strides[d] (+ base) */
static LLVMValueRef linear(Cg *c, LLVMValueRef *idx, const int64_t *strides, int rank, int64_t base) {
  LLVMValueRef v = cg_i64(c, base);
  for (int d = 0; d < rank; d++)
    if (strides[d]) v = cg_iadd(c, v, strides[d] == 1 ? idx[d] : cg_imul(c, idx[d], cg_i64(c, strides[d])));
  return v;
}

static void row_major(const Type *t, int64_t *strides) {
  int64_t s = 1;
  for (int d = t->rank - 1; d >= 0; d--) {
    strides[d] = s;
    s *= t->dim[d];
  }
}

/* Strides of operand t read at the index of an output of rank r, NumPy
 * broadcasting: size-1 and missing dims get stride 0. */
static void broadcast_strides(const Type *t, int r, const int64_t *out_dims, int64_t *strides) {
  int64_t own[IR_MAX_RANK] = {0};
  row_major(t, own);
  int lead = r - t->rank;
  for (int d = 0; d < r; d++) {
    int k = d - lead;
    strides[d] = k < 0 || (t->dim[k] == 1 && out_dims[d] != 1) ? 0 : own[k];
  }
}

/* -------------------------------------------------------- elementwise */

static LLVMValueRef to_f32(Cg *c, LLVMValueRef v, DType from) {
  if (from == DT_F32) return v;
  if (from == DT_I32) return LLVMBuildSIToFP(c->b, v, c->f32, "");
  return LLVMBuildUIToFP(c->b, v, c->f32, "");
}

static LLVMValueRef scalar(Cg *c, const Node *n, LLVMValueRef *a) {
  DType t = n->in[0]->type.dtype;
  bool f = t == DT_F32;
  LLVMValueRef x = a[0], zero = f ? cg_f32(c, 0) : ci32(c, 0);
  switch (n->op) {
  case OP_NEG: return f ? fneg(c, x) : LLVMBuildNeg(c->b, x, "");
  case OP_EXP: return emit_exp(c, x);
  case OP_LOG: return cg_log(c, x);
  case OP_SQRT: return intrinsic1(c, "llvm.sqrt", x);
  case OP_RSQRT: return cg_fdiv(c, cg_f32(c, 1), intrinsic1(c, "llvm.sqrt", x));
  case OP_ABS: return f ? intrinsic1(c, "llvm.fabs", x) : sel(c, LLVMBuildICmp(c->b, LLVMIntSLT, x, zero, ""), LLVMBuildNeg(c->b, x, ""), x);
  case OP_SQUARE: return f ? cg_fmul(c, x, x) : cg_imul(c, x, x);
  case OP_RELU:
    return f ? sel(c, fcmp(c, LLVMRealOGT, x, zero), x, sel(c, fcmp(c, LLVMRealUNO, x, x), x, zero))
             : sel(c, LLVMBuildICmp(c->b, LLVMIntSGT, x, zero, ""), x, zero);
  case OP_LEAKY_RELU: return sel(c, fcmp(c, LLVMRealOGT, x, zero), x, cg_fmul(c, x, cg_f32(c, n->attr[0].f)));
  case OP_SIGMOID: return emit_sigmoid(c, x);
  case OP_TANH: return emit_tanh(c, x);
  case OP_GELU:
    return cg_fmul(c, cg_fmul(c, x, cg_f32(c, 0.5)), cg_fadd(c, cg_f32(c, 1), cg_erf(c, cg_fmul(c, x, cg_f32(c, M_SQRT1_2)))));
  case OP_ERF: return cg_erf(c, x);
  case OP_FLOOR: return intrinsic1(c, "llvm.floor", x);
  case OP_SOFTPLUS:  /* log(1 + e^x), x for large x */
    return sel(c, fcmp(c, LLVMRealOGT, x, cg_f32(c, 20)), x, cg_log1p(c, emit_exp(c, x)));
  case OP_ELU: case OP_SELU: {  /* x above 0, alpha (e^x - 1) below; selu scaled */
    bool elu = n->op == OP_ELU;
    double alpha = elu ? n->attr[0].f : IR_SELU_ALPHA;
    LLVMValueRef neg = cg_fmul(c, cg_f32(c, alpha), cg_fsub(c, emit_exp(c, x), cg_f32(c, 1)));
    LLVMValueRef y = sel(c, fcmp(c, LLVMRealOGT, x, zero), x, neg);
    return elu ? y : cg_fmul(c, y, cg_f32(c, IR_SELU_SCALE));
  }
  case OP_SILU: return cg_fmul(c, x, emit_sigmoid(c, x));
  case OP_HARDTANH: {  /* as clamp: NaN stays NaN */
    LLVMValueRef lo = cg_f32(c, n->attr[0].f), hi = cg_f32(c, n->attr[1].f);
    LLVMValueRef y = sel(c, fcmp(c, LLVMRealOLT, x, lo), lo, x);
    return sel(c, fcmp(c, LLVMRealOGT, y, hi), hi, y);
  }
  case OP_SIN: return libm1(c, "sinf", x);
  case OP_COS: return libm1(c, "cosf", x);
  case OP_POW: {
    double p = n->attr[0].f;
    if (p == 2) return cg_fmul(c, x, x);
    if (p == 1) return x;
    if (p == 0.5) return intrinsic1(c, "llvm.sqrt", x);
    return intrinsic2(c, "llvm.pow", x, cg_f32(c, p));
  }
  case OP_CLAMP: {
    LLVMValueRef lo = cg_f32(c, n->attr[0].f), hi = cg_f32(c, n->attr[1].f);
    LLVMValueRef y = sel(c, fcmp(c, LLVMRealOLT, x, lo), lo, x);
    return sel(c, fcmp(c, LLVMRealOGT, y, hi), hi, y);
  }
  case OP_STOP_GRADIENT: return x;
  case OP_CAST: {
    DType to = n->type.dtype;
    if (to == t) return x;
    if (to == DT_F32) return to_f32(c, x, t);
    if (t == DT_F32) return LLVMBuildFPToSI(c->b, x, c->i32, "");
    return LLVMBuildZExt(c->b, x, c->i32, "");  /* bool -> i32 */
  }
  case OP_ADD: return f ? cg_fadd(c, x, a[1]) : cg_iadd(c, x, a[1]);
  case OP_SUB: return f ? cg_fsub(c, x, a[1]) : LLVMBuildSub(c->b, x, a[1], "");
  case OP_MUL: return f ? cg_fmul(c, x, a[1]) : cg_imul(c, x, a[1]);
  case OP_DIV: return cg_fdiv(c, x, a[1]);
  case OP_MAXIMUM:  /* NaN from either side wins, as torch.maximum */
    return f ? sel(c, fcmp(c, LLVMRealUNO, x, a[1]), cg_fadd(c, x, a[1]), sel(c, fcmp(c, LLVMRealOGE, x, a[1]), x, a[1]))
             : sel(c, LLVMBuildICmp(c->b, LLVMIntSGE, x, a[1], ""), x, a[1]);
  case OP_MINIMUM:
    return f ? sel(c, fcmp(c, LLVMRealUNO, x, a[1]), cg_fadd(c, x, a[1]), sel(c, fcmp(c, LLVMRealOLE, x, a[1]), x, a[1]))
             : sel(c, LLVMBuildICmp(c->b, LLVMIntSLE, x, a[1], ""), x, a[1]);
  case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ: case OP_NE: {
    static const LLVMRealPredicate fp[] = {LLVMRealOLT, LLVMRealOLE, LLVMRealOGT, LLVMRealOGE, LLVMRealOEQ, LLVMRealUNE};
    static const LLVMIntPredicate ip[] = {LLVMIntSLT, LLVMIntSLE, LLVMIntSGT, LLVMIntSGE, LLVMIntEQ, LLVMIntNE};
    int k = n->op - OP_LT;
    return f ? fcmp(c, fp[k], x, a[1]) : LLVMBuildICmp(c->b, ip[k], x, a[1], "");
  }
  case OP_WHERE: return sel(c, a[0], a[1], a[2]);
  case OP_BROADCAST: case OP_RESHAPE: return x;
  /* not elementwise */
  case OP_VAR: case OP_CONST: case OP_MATMUL: case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN:
  case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: case OP_TRANSPOSE:
  case OP_SLICE: case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D:
  case OP_MAX_POOL2D: case OP_AVG_POOL2D: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT:
  case OP_MSE: case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE:
  case OP_SCATTER_ADD: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT:
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
  case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE: case OP_COUNT:
    break;
  }
  NNCC_ASSERT(!"emit: not an elementwise op");
  return NULL;
}

/* out[i] = op(in_k[broadcast(i)]...) over the output's index space.
 * A reshape is the same loop with the input read linearly. */
static void emit_elementwise(Cg *c, const Node *n) {
  const Type *t = &n->type;
  int r = t->rank;
  int64_t ostr[IR_MAX_RANK], istr[4][IR_MAX_RANK];
  row_major(t, ostr);
  for (int k = 0; k < n->n_in && k < 4; k++) {
    if (n->op == OP_RESHAPE) memcpy(istr[k], ostr, sizeof ostr);
    else broadcast_strides(&n->in[k]->type, r, t->dim, istr[k]);
  }
  /* operands read at one element (scalars, e.g. lr or a scale) are loaded
   * before the loops: LLVM cannot hoist a load past the loop's stores
   * into the same slab, and would not vectorize */
  LLVMValueRef args[4], hoisted[4] = {NULL, NULL, NULL, NULL};
  for (int k = 0; k < n->n_in && r > 0; k++) {
    bool all_zero = true;
    for (int d = 0; d < r; d++) all_zero &= istr[k][d] == 0;
    if (all_zero) hoisted[k] = cg_load(c, n->in[k], cg_i64(c, 0));
  }
  Nest ns;
  nest_begin_parallel(c, &ns, t->dim, r, 1);
  for (int k = 0; k < n->n_in; k++)
    args[k] = hoisted[k] ? hoisted[k] : cg_load(c, n->in[k], linear(c, ns.idx, istr[k], r, 0));
  cg_store(c, n, linear(c, ns.idx, ostr, r, 0), scalar(c, n, args));
  nest_end(c, &ns);
}

/* ------------------------------------------------------------- matmul */

/* C[rows, cols] = A B over a region of one matrix product, i-k-j: the
 * inner loop runs along a row of B and of C, contiguous, so it
 * vectorizes. The edges of the blocked kernel, and small products. */
/* A[m, k] of matmul n; through a transpose view (ir/layout.c) the element
 * x[k, m] of the transpose's operand */
static LLVMValueRef mm_load_a(Cg *c, const Node *n, LLVMValueRef a0, LLVMValueRef m, LLVMValueRef k, int64_t M,
                              int64_t K) {
  const Node *a = n->in[0];
  if (c->home[a->id] == LAYOUT_VIEW) return cg_load(c, a->in[0], cg_iadd(c, a0, cg_iadd(c, cg_imul(c, k, cg_i64(c, M)), m)));
  return cg_load(c, a, cg_iadd(c, a0, cg_iadd(c, cg_imul(c, m, cg_i64(c, K)), k)));
}

static void matmul_region(Cg *c, const Node *n, LLVMValueRef a0, LLVMValueRef b0, LLVMValueRef c0, int64_t r0,
                          int64_t r1, LLVMValueRef jb, int64_t j0, int64_t j1, int64_t M, int64_t K, int64_t N) {
  if (r0 >= r1 || j0 >= j1) return;
  CgLoop lm, lk, ln;
  LLVMValueRef m = cg_iadd(c, cg_loop_begin(c, &lm, r1 - r0), cg_i64(c, r0));
  LLVMValueRef crow = cg_iadd(c, c0, cg_imul(c, m, cg_i64(c, N)));
  jb = cg_iadd(c, jb, cg_i64(c, j0));
  LLVMValueRef jz = cg_iadd(c, cg_loop_begin(c, &ln, j1 - j0), jb);
  cg_store(c, n, cg_iadd(c, crow, jz), cg_f32(c, 0));
  cg_loop_end(c, &ln);
  LLVMValueRef k = cg_loop_begin(c, &lk, K);
  LLVMValueRef av = mm_load_a(c, n, a0, m, k, M, K);
  LLVMValueRef brow = cg_iadd(c, b0, cg_imul(c, k, cg_i64(c, N)));
  LLVMValueRef j = cg_iadd(c, cg_loop_begin(c, &ln, j1 - j0), jb);
  LLVMValueRef ci = cg_iadd(c, crow, j);
  cg_store(c, n, ci, cg_fadd(c, cg_load(c, n, ci), cg_fmul(c, av, cg_load(c, n->in[1], cg_iadd(c, brow, j)))));
  cg_loop_end(c, &ln);
  cg_loop_end(c, &lk);
  cg_loop_end(c, &lm);
}

#define MM_MR 6                 /* rows of the register block; its columns
                                   are two vectors of c->vw floats */
#define MM_MC 48                /* rows of a cache block (A block in L2) */
#define MM_KC_BYTES 16384       /* a k block's panel of B (L1) */

static LLVMValueRef vec_ptr(Cg *c, const Node *n, LLVMValueRef idx) {
  return cg_ptr_at(c, c->home[n->id], DT_F32, idx);
}

static void fused_region(Cg *c, const Fused *F, LLVMValueRef *batch_idx, int batch_rank, LLVMValueRef row0,
                         int64_t rows, LLVMValueRef col0, int64_t cols);

/* The register-blocked kernel over rows [r0, r0 + blocks * mr) and
 * columns [0, Nb): each mr x 2vw block of C is mr * 2 vector
 * accumulators that stay in registers for the whole k loop; per k one row
 * of B (two vectors) and mr broadcast elements of A, mr * 2 FMAs. 6 x 16
 * (12 accumulators) is the largest tile that fits AVX2's 16 registers
 * with the B vectors and a broadcast, as in BLIS's haswell kernel; with
 * AVX-512 the vectors are 16 floats (6 x 32, 15 of 32 registers). The
 * column blocks run outermost so that a panel of B is reused by every
 * row block while it is in cache. */
/* One matmul_blocked call's constants and registers. */
typedef struct MmTile {
  const Node *n;
  LLVMValueRef a0, b0, c0, col0;
  int64_t M, K, N, r0;
  int mr, vw;
  LLVMTypeRef vt;
  LLVMValueRef acc[MM_MR][2], fma, mask;
  LLVMTypeRef fma_t;
  const Fused *F;
  LLVMValueRef *batch_idx;
  int batch_rank;
} MmTile;

/* The tile of C at (row, col) over k in [k0, k0 + klen): starts from zero
 * or, when `accumulate` (an i1) holds, from C; stores C; with `epilogue`
 * applies the fused rest to it (the tile is hot in L1). */
static void mm_tile(Cg *c, const MmTile *t, LLVMValueRef row, LLVMValueRef col, LLVMValueRef k0, int64_t klen,
                    LLVMValueRef accumulate, bool epilogue) {
  const Node *n = t->n;
  LLVMValueRef cidx[MM_MR][2];
  for (int r = 0; r < t->mr; r++)
    for (int q = 0; q < 2; q++) {
      cidx[r][q] = cg_iadd(c, t->c0, cg_iadd(c, cg_imul(c, cg_iadd(c, row, cg_i64(c, r)), cg_i64(c, t->N)),
                                             cg_iadd(c, col, cg_i64(c, q * t->vw))));
      LLVMValueRef init = LLVMConstNull(t->vt);
      if (accumulate != LLVMConstInt(c->i1, 0, 0)) {
        LLVMValueRef old = LLVMBuildLoad2(c->b, t->vt, vec_ptr(c, n, cidx[r][q]), "");
        LLVMSetAlignment(old, 4);
        init = sel(c, accumulate, old, init);
      }
      LLVMBuildStore(c->b, init, t->acc[r][q]);
    }
  CgLoop lk;
  LLVMValueRef k = cg_iadd(c, cg_loop_begin(c, &lk, klen), k0);
  LLVMValueRef bidx = cg_iadd(c, t->b0, cg_iadd(c, cg_imul(c, k, cg_i64(c, t->N)), col));
  LLVMValueRef bv[2];
  for (int q = 0; q < 2; q++) {
    bv[q] = LLVMBuildLoad2(c->b, t->vt, vec_ptr(c, n->in[1], cg_iadd(c, bidx, cg_i64(c, q * t->vw))), "");
    LLVMSetAlignment(bv[q], 4);
  }
  for (int r = 0; r < t->mr; r++) {
    LLVMValueRef a = mm_load_a(c, n, t->a0, cg_iadd(c, row, cg_i64(c, r)), k, t->M, t->K);
    LLVMValueRef splat = LLVMBuildInsertElement(c->b, LLVMGetUndef(t->vt), a, ci32(c, 0), "");
    splat = LLVMBuildShuffleVector(c->b, splat, LLVMGetUndef(t->vt), t->mask, "");
    for (int q = 0; q < 2; q++) {
      LLVMValueRef args[3] = {splat, bv[q], LLVMBuildLoad2(c->b, t->vt, t->acc[r][q], "")};
      LLVMBuildStore(c->b, LLVMBuildCall2(c->b, t->fma_t, t->fma, args, 3, ""), t->acc[r][q]);
    }
  }
  cg_loop_end(c, &lk);
  for (int r = 0; r < t->mr; r++)
    for (int q = 0; q < 2; q++) {
      LLVMValueRef st = LLVMBuildStore(c->b, LLVMBuildLoad2(c->b, t->vt, t->acc[r][q], ""), vec_ptr(c, n, cidx[r][q]));
      LLVMSetAlignment(st, 4);
    }
  if (epilogue && t->F) fused_region(c, t->F, t->batch_idx, t->batch_rank, row, t->mr, col, 2 * t->vw);
}

/* Tiles [tile0, tile0 + tiles) of rows x every column block, one k block. */
static void mm_rows(Cg *c, const MmTile *t, LLVMValueRef tile0, int64_t tiles, int64_t col_blocks, LLVMValueRef k0,
                    int64_t klen, LLVMValueRef accumulate, bool epilogue) {
  CgLoop lj, li;
  LLVMValueRef col = cg_iadd(c, cg_imul(c, cg_loop_begin(c, &lj, col_blocks), cg_i64(c, 2 * t->vw)), t->col0);
  LLVMValueRef tile = cg_iadd(c, cg_loop_begin(c, &li, tiles), tile0);
  mm_tile(c, t, cg_iadd(c, cg_imul(c, tile, cg_i64(c, t->mr)), cg_i64(c, t->r0)), col, k0, klen, accumulate, epilogue);
  cg_loop_end(c, &li);
  cg_loop_end(c, &lj);
}

/* One k block over all row tiles, in blocks of MM_MC rows. */
static void mm_k_block(Cg *c, const MmTile *t, int64_t blocks, int64_t col_blocks, LLVMValueRef k0, int64_t klen,
                       LLVMValueRef accumulate, bool epilogue) {
  int64_t per = MM_MC / t->mr, full = blocks / per, rest = blocks % per;
  if (full > 0) {
    CgLoop lb;
    LLVMValueRef tile0 = cg_imul(c, cg_loop_begin(c, &lb, full), cg_i64(c, per));
    mm_rows(c, t, tile0, per, col_blocks, k0, klen, accumulate, epilogue);
    cg_loop_end(c, &lb);
  }
  if (rest > 0) mm_rows(c, t, cg_i64(c, full * per), rest, col_blocks, k0, klen, accumulate, epilogue);
}

/* The register-blocked kernel over rows [r0, r0 + blocks * mr) and
 * columns [0, Nb): each mr x 2vw tile of C is mr * 2 vector accumulators
 * that stay in registers for a whole k loop; per k one row of B (two
 * vectors) and mr broadcast elements of A, mr * 2 FMAs. 6 x 16 (12
 * accumulators) is the largest tile that fits AVX2's 16 registers with
 * the B vectors and a broadcast, as in BLIS's haswell kernel; with
 * AVX-512 the vectors are 16 floats (6 x 32, 15 of 32 registers).
 * Large products are blocked for the caches as BLIS does, without
 * packing: k in blocks whose panel of B (kc x 2vw) fits in L1 next to the
 * A rows, rows in blocks of MM_MC whose A block stays in L2 while every
 * column block passes; the tiles of later k blocks start from C. Small
 * products are one k block and one row block (no C reloads). */
static void matmul_blocked(Cg *c, const Node *n, LLVMValueRef a0, LLVMValueRef b0, LLVMValueRef c0, int64_t r0,
                           int64_t blocks, int mr, LLVMValueRef col0, int64_t Nb, int64_t M, int64_t K, int64_t N,
                           const Fused *F, LLVMValueRef *batch_idx, int batch_rank) {
  MmTile t = {n, a0, b0, c0, col0, M, K, N, r0, mr, c->vw, LLVMVectorType(c->f32, (unsigned)c->vw), {{0}}, NULL, NULL,
              NULL, F, batch_idx, batch_rank};
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(c->b, first);
  else LLVMPositionBuilderAtEnd(c->b, entry);
  for (int r = 0; r < mr; r++)
    for (int q = 0; q < 2; q++) t.acc[r][q] = LLVMBuildAlloca(c->b, t.vt, "acc");
  LLVMPositionBuilderAtEnd(c->b, cur);
  unsigned fma_id = LLVMLookupIntrinsicID("llvm.fma", 8);
  t.fma = LLVMGetIntrinsicDeclaration(c->mod, fma_id, &t.vt, 1);
  t.fma_t = LLVMIntrinsicGetType(c->ctx, fma_id, &t.vt, 1);
  t.mask = LLVMConstNull(LLVMVectorType(c->i32, (unsigned)c->vw));
  /* kc: a 16 KB panel of B; blocked only when K is well above it */
  int64_t kc = MM_KC_BYTES / (int64_t)(2 * c->vw * 4);
  if (K <= 2 * kc) kc = K;
  int64_t last = K % kc ? K % kc : kc, full = (K - last) / kc, col_blocks = Nb / (2 * c->vw);
  LLVMValueRef no = LLVMConstInt(c->i1, 0, 0);
  if (full > 0) {
    CgLoop lk;
    LLVMValueRef kb = cg_loop_begin(c, &lk, full);
    LLVMValueRef later = LLVMBuildICmp(c->b, LLVMIntNE, kb, cg_i64(c, 0), "");
    mm_k_block(c, &t, blocks, col_blocks, cg_imul(c, kb, cg_i64(c, kc)), kc, later, false);
    cg_loop_end(c, &lk);
  }
  mm_k_block(c, &t, blocks, col_blocks, cg_i64(c, full * kc), last, full > 0 ? LLVMConstInt(c->i1, 1, 0) : no, true);
}

/* How a matmul's rows are blocked: M6 rows in 6-row tiles, then M4 in
 * 4-row tiles (in_memory: both operands are stored; else no tiles). */
typedef struct MmRows {
  int64_t M6, M4;
  bool in_memory;
} MmRows;

/* Columns [col0, col0 + width) of one matrix of C: the register-blocked
 * kernel where whole tiles fit, i-k-j on the right and bottom edges, and
 * the fused epilogue of the edges (the tiles apply their own). */
static void matmul_columns(Cg *c, const Node *n, const Fused *F, const MmRows *R, LLVMValueRef a0, LLVMValueRef b0,
                           LLVMValueRef c0, LLVMValueRef col0, int64_t width, int64_t M, int64_t K, int64_t N,
                           LLVMValueRef *batch_idx, int br) {
  int64_t Mb = R->in_memory ? R->M6 + R->M4 : 0, Nb = R->in_memory ? width / (2 * c->vw) * (2 * c->vw) : 0;
  if (Mb > 0 && Nb > 0) {
    if (R->M6) matmul_blocked(c, n, a0, b0, c0, 0, R->M6 / MM_MR, MM_MR, col0, Nb, M, K, N, F, batch_idx, br);
    if (R->M4) matmul_blocked(c, n, a0, b0, c0, R->M6, R->M4 / 4, 4, col0, Nb, M, K, N, F, batch_idx, br);
    matmul_region(c, n, a0, b0, c0, 0, Mb, col0, Nb, width, M, K, N);  /* right edge */
    matmul_region(c, n, a0, b0, c0, Mb, M, col0, 0, width, M, K, N);   /* bottom edge */
    if (F && Nb < width) fused_region(c, F, batch_idx, br, cg_i64(c, 0), Mb, cg_iadd(c, col0, cg_i64(c, Nb)), width - Nb);
    if (F && Mb < M) fused_region(c, F, batch_idx, br, cg_i64(c, Mb), M - Mb, col0, width);
  } else {
    matmul_region(c, n, a0, b0, c0, 0, M, col0, 0, width, M, K, N);
    if (F) fused_region(c, F, batch_idx, br, cg_i64(c, 0), M, col0, width);
  }
}

/* C[b.., m, n] = sum_k A[b.., m, k] B[b.., k, n], NumPy matmul: rank-1
 * operands promoted, batch dims broadcast. Per matrix: the register-
 * blocked kernel where whole blocks fit, i-k-j on the edges. */
static void emit_matmul(Cg *c, const Node *n, const Fused *F) {
  Type A = n->in[0]->type, B = n->in[1]->type;
  if (A.rank == 1) A = type_make(A.dtype, 2, (int64_t[]){1, A.dim[0]});
  if (B.rank == 1) B = type_make(B.dtype, 2, (int64_t[]){B.dim[0], 1});
  int64_t M = A.dim[A.rank - 2], K = A.dim[A.rank - 1], N = B.dim[B.rank - 1];
  Type batch_a = A, batch_b = B, batch;
  batch_a.rank -= 2;
  batch_b.rank -= 2;
  NNCC_ASSERT(ir_broadcast(&batch_a, &batch_b, &batch));
  int br = batch.rank;
  int64_t sa[IR_MAX_RANK] = {0}, sb[IR_MAX_RANK] = {0}, sc[IR_MAX_RANK] = {0};
  broadcast_strides(&batch_a, br, batch.dim, sa);
  broadcast_strides(&batch_b, br, batch.dim, sb);
  row_major(&batch, sc);
  bool in_memory = (c->home[n->in[0]->id] >= 0 || c->home[n->in[0]->id] == LAYOUT_VIEW) && c->home[n->in[1]->id] >= 0;
  /* rows in 6-row blocks, then a 4-row block when 4 or 5 are left; a
   * small M that 4 divides takes 4-row blocks only (one copy of the tile
   * code, and its epilogue, instead of two: compile time of unrolled
   * RNNs, whose batch is the M of every step) */
  MmRows R = {M / MM_MR * MM_MR, 0, in_memory};
  R.M4 = M - R.M6 >= 4 ? 4 : 0;
  if (M < 8 * MM_MR && M % 4 == 0 && M % MM_MR) R.M6 = 0, R.M4 = M;
  /* tasks: the matrices of a batch, else blocks of columns (each task
   * reads its own panel of B, the larger operand in a dense layer) */
  int64_t bw = 2 * c->vw, col_blocks = in_memory && R.M6 + R.M4 > 0 ? N / bw : 0;
  Nest ns;
  if (type_numel(&batch) >= 2) nest_begin_parallel(c, &ns, batch.dim, br, M * K * N);
  else nest_begin(c, &ns, batch.dim, br);
  LLVMValueRef a0 = cg_imul(c, linear(c, ns.idx, sa, br, 0), cg_i64(c, M * K));
  LLVMValueRef b0 = cg_imul(c, linear(c, ns.idx, sb, br, 0), cg_i64(c, K * N));
  LLVMValueRef c0 = cg_imul(c, linear(c, ns.idx, sc, br, 0), cg_i64(c, M * N));
  int64_t tasks = c->task && c->tasks == 0 ? cg_task_count(col_blocks, M * K * bw) : 1;
  if (c->task && c->tasks == 0) c->tasks = tasks;
  if (tasks > 1) {
    int64_t chunk = (col_blocks + tasks - 1) / tasks, width = chunk * bw, last = N - (tasks - 1) * width;
    LLVMValueRef col0 = cg_imul(c, c->task, cg_i64(c, width));
    if (last == width) {
      matmul_columns(c, n, F, &R, a0, b0, c0, col0, width, M, K, N, ns.idx, br);
    } else {  /* the last task's columns, with the right edge, are another loop nest */
      LLVMBasicBlockRef is_last = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "last_task"),
                        other = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "task"),
                        join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "tasks_done");
      LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, c->task, cg_i64(c, tasks - 1), ""), is_last, other);
      LLVMPositionBuilderAtEnd(c->b, is_last);
      matmul_columns(c, n, F, &R, a0, b0, c0, col0, last, M, K, N, ns.idx, br);
      LLVMBuildBr(c->b, join);
      LLVMPositionBuilderAtEnd(c->b, other);
      matmul_columns(c, n, F, &R, a0, b0, c0, col0, width, M, K, N, ns.idx, br);
      LLVMBuildBr(c->b, join);
      LLVMPositionBuilderAtEnd(c->b, join);
    }
  } else {
    matmul_columns(c, n, F, &R, a0, b0, c0, cg_i64(c, 0), N, M, K, N, ns.idx, br);
  }
  nest_end(c, &ns);
}

/* --------------------------------------------------------- reductions */

/* The kept and reduced dims of x for a reduction over `axes`. */
typedef struct Split {
  int64_t kept[IR_MAX_RANK], red[IR_MAX_RANK];      /* sizes */
  int64_t kstr[IR_MAX_RANK], rstr[IR_MAX_RANK];     /* strides in x */
  int kdim[IR_MAX_RANK], rdim[IR_MAX_RANK];         /* which dims of x */
  int nk, nr;
  int64_t count;                                    /* reduced elements */
} Split;

static void split_axes(const Type *x, const int64_t *axes, int n_axes, Split *s) {
  int64_t str[IR_MAX_RANK] = {0};
  row_major(x, str);
  s->nk = s->nr = 0;
  s->count = 1;
  for (int d = 0; d < x->rank; d++) {
    bool reduced = false;
    for (int k = 0; k < n_axes; k++) reduced |= axes[k] == d;
    if (reduced) {
      s->red[s->nr] = x->dim[d];
      s->rdim[s->nr] = d;
      s->rstr[s->nr++] = str[d];
      s->count *= x->dim[d];
    } else {
      s->kept[s->nk] = x->dim[d];
      s->kdim[s->nk] = d;
      s->kstr[s->nk++] = str[d];
    }
  }
}

static LLVMValueRef alloca_f32(Cg *c) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(c->b, first);
  else LLVMPositionBuilderAtEnd(c->b, entry);
  LLVMValueRef a = LLVMBuildAlloca(c->b, c->f32, "acc");
  LLVMPositionBuilderAtEnd(c->b, cur);
  return a;
}

static LLVMValueRef alloca_i32(Cg *c) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(c->b, first);
  else LLVMPositionBuilderAtEnd(c->b, entry);
  LLVMValueRef a = LLVMBuildAlloca(c->b, c->i32, "arg");
  LLVMPositionBuilderAtEnd(c->b, cur);
  return a;
}

typedef enum RedKind { RED_SUM, RED_MAX, RED_MIN } RedKind;

/* acc = fold over the reduced dims of f(x[kept, red]) */
static LLVMValueRef fused_body(Cg *c, const Fused *F, LLVMValueRef *idx, LLVMValueRef anchor);

/* acc = fold over the reduced dims of f(x[kept, red]); with F (a reduce
 * kernel) x's value comes from the kernel's loop at index (kept, red) */
static LLVMValueRef reduce_loop(Cg *c, const Node *x, const Split *s, LLVMValueRef base, RedKind kind,
                                LLVMValueRef (*f)(Cg *, LLVMValueRef, LLVMValueRef), LLVMValueRef farg,
                                const Fused *F, LLVMValueRef *kept_idx) {
  LLVMValueRef acc = alloca_f32(c);
  bool fx = x->type.dtype == DT_F32;
  LLVMBuildStore(c->b, cg_f32(c, kind == RED_SUM ? 0 : kind == RED_MAX ? -INFINITY : INFINITY), acc);
  Nest rn;
  nest_begin(c, &rn, s->red, s->nr);
  LLVMValueRef v;
  if (F) {
    LLVMValueRef idx[IR_MAX_RANK];
    for (int d = 0; d < s->nk; d++) idx[s->kdim[d]] = kept_idx[d];
    for (int d = 0; d < s->nr; d++) idx[s->rdim[d]] = rn.idx[d];
    v = fused_body(c, F, idx, NULL);
  } else {
    v = cg_load(c, x, cg_iadd(c, base, linear(c, rn.idx, s->rstr, s->nr, 0)));
  }
  if (!fx) v = to_f32(c, v, x->type.dtype);
  if (f) v = f(c, v, farg);
  LLVMValueRef a = LLVMBuildLoad2(c->b, c->f32, acc, "");
  /* max/min: a NaN sticks (a + v is NaN), as torch.max */
  LLVMValueRef r = kind == RED_SUM ? cg_fadd(c, a, v)
                   : sel(c, fcmp(c, LLVMRealUNO, a, v), cg_fadd(c, a, v),
                         kind == RED_MAX ? sel(c, fcmp(c, LLVMRealOGT, v, a), v, a)
                                         : sel(c, fcmp(c, LLVMRealOLT, v, a), v, a));
  LLVMBuildStore(c->b, r, acc);
  nest_end(c, &rn);
  return LLVMBuildLoad2(c->b, c->f32, acc, "");
}

static LLVMValueRef exp_minus(Cg *c, LLVMValueRef v, LLVMValueRef m) { return emit_exp(c, cg_fsub(c, v, m)); }

/* A reduction that keeps x's last dimension (a bias gradient, batch
 * norm's statistics: sum over axis 0) folds whole rows into the output:
 * reduced dims outside, kept dims inside, so the inner loop runs along
 * contiguous memory and vectorizes; folding one column at a time would
 * walk x with a stride, one dependent add per element (60x slower on a
 * [128, 512] sum over axis 0). Per element the fold order is the same. */
static void emit_reduce_rows(Cg *c, const Node *n, const Fused *F, const Split *s, RedKind kind) {
  const Node *x = n->in[0];
  int64_t kept = 1, kstr_out[IR_MAX_RANK] = {0};
  for (int d = 0; d < s->nk; d++) kept *= s->kept[d];
  Type kt = type_make(DT_F32, s->nk, s->kept);
  row_major(&kt, kstr_out);
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(c, &l, kept);
  cg_store(c, n, i, cg_f32(c, kind == RED_SUM ? 0 : kind == RED_MAX ? -INFINITY : INFINITY));
  cg_loop_end(c, &l);
  Nest rn, kn;
  nest_begin(c, &rn, s->red, s->nr);
  nest_begin(c, &kn, s->kept, s->nk);
  LLVMValueRef v;
  if (F) {
    LLVMValueRef idx[IR_MAX_RANK];
    for (int d = 0; d < s->nk; d++) idx[s->kdim[d]] = kn.idx[d];
    for (int d = 0; d < s->nr; d++) idx[s->rdim[d]] = rn.idx[d];
    v = fused_body(c, F, idx, NULL);
  } else {
    v = cg_load(c, x, cg_iadd(c, linear(c, rn.idx, s->rstr, s->nr, 0), linear(c, kn.idx, s->kstr, s->nk, 0)));
  }
  if (x->type.dtype != DT_F32) v = to_f32(c, v, x->type.dtype);
  LLVMValueRef at = linear(c, kn.idx, kstr_out, s->nk, 0), a = cg_load(c, n, at);
  LLVMValueRef r = kind == RED_SUM ? cg_fadd(c, a, v)
                   : sel(c, fcmp(c, LLVMRealUNO, a, v), cg_fadd(c, a, v),
                         kind == RED_MAX ? sel(c, fcmp(c, LLVMRealOGT, v, a), v, a)
                                         : sel(c, fcmp(c, LLVMRealOLT, v, a), v, a));
  cg_store(c, n, at, r);
  nest_end(c, &kn);
  nest_end(c, &rn);
  if (n->op == OP_MEAN) {
    i = cg_loop_begin(c, &l, kept);
    cg_store(c, n, i, cg_fmul(c, cg_load(c, n, i), cg_f32(c, 1.0 / (double)s->count)));
    cg_loop_end(c, &l);
  }
}

static void emit_reduce(Cg *c, const Node *n, const Fused *F) {
  const Node *x = n->in[0];
  Split s;
  split_axes(&x->type, n->attr[0].list, n->attr[0].n, &s);
  if (n->op != OP_LOGSUMEXP && n->type.dtype == DT_F32 && s.nk > 0 && s.nr > 0 &&
      s.kdim[s.nk - 1] == x->type.rank - 1 && c->home[n->id] >= 0) {
    emit_reduce_rows(c, n, F, &s, n->op == OP_MAX ? RED_MAX : n->op == OP_MIN ? RED_MIN : RED_SUM);
    return;
  }
  Nest kn;
  nest_begin(c, &kn, s.kept, s.nk);
  LLVMValueRef base = linear(c, kn.idx, s.kstr, s.nk, 0);
  int64_t kstr_out[IR_MAX_RANK] = {0};
  Type kt = type_make(DT_F32, s.nk, s.kept);
  row_major(&kt, kstr_out);
  LLVMValueRef out = linear(c, kn.idx, kstr_out, s.nk, 0);
  LLVMValueRef v = NULL;
  switch (n->op) {
  case OP_SUM: v = reduce_loop(c, x, &s, base, RED_SUM, NULL, NULL, F, kn.idx); break;
  case OP_MEAN: v = cg_fmul(c, reduce_loop(c, x, &s, base, RED_SUM, NULL, NULL, F, kn.idx), cg_f32(c, 1.0 / (double)s.count)); break;
  case OP_MAX: v = reduce_loop(c, x, &s, base, RED_MAX, NULL, NULL, F, kn.idx); break;
  case OP_MIN: v = reduce_loop(c, x, &s, base, RED_MIN, NULL, NULL, F, kn.idx); break;
  case OP_LOGSUMEXP: {
    LLVMValueRef m = reduce_loop(c, x, &s, base, RED_MAX, NULL, NULL, NULL, NULL);
    LLVMValueRef finite = fcmp(c, LLVMRealONE, m, cg_f32(c, -INFINITY));
    LLVMValueRef ms = sel(c, finite, m, cg_f32(c, 0));
    LLVMValueRef sum = reduce_loop(c, x, &s, base, RED_SUM, exp_minus, ms, NULL, NULL);
    v = cg_fadd(c, ms, cg_log(c, sum));
    break;
  }
  /* not a reduction */
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
  if (n->type.dtype == DT_I32) v = LLVMBuildFPToSI(c->b, v, c->i32, "");
  cg_store(c, n, out, v);
  nest_end(c, &kn);
}

/* softmax / log_softmax / argmax along one axis */

static const Node *fused_row_loss(const Fused *F);
static LLVMValueRef clamp_index(Cg *c, LLVMValueRef v, int64_t rows);

static void emit_axis_op(Cg *c, const Node *n, const Fused *F) {
  const Node *x = n->in[0];
  int64_t axis = n->attr[0].i;
  Split s;
  split_axes(&x->type, &axis, 1, &s);
  /* a fused cross_entropy / nll: mean over rows of logsumexp - x[label] */
  const Node *loss = F ? fused_row_loss(F) : NULL;
  LLVMValueRef loss_acc = NULL;
  if (loss) {
    loss_acc = alloca_f32(c);
    LLVMBuildStore(c->b, cg_f32(c, 0), loss_acc);
  }
  Nest kn;
  nest_begin(c, &kn, s.kept, s.nk);
  LLVMValueRef base = linear(c, kn.idx, s.kstr, s.nk, 0);
  int64_t len = s.red[0], step = s.rstr[0];
  if (n->op == OP_ARGMAX) {
    int64_t kstr_out[IR_MAX_RANK] = {0};
    Type kt = type_make(DT_F32, s.nk, s.kept);
    row_major(&kt, kstr_out);
    LLVMValueRef best = alloca_f32(c), arg = alloca_i32(c);
    LLVMBuildStore(c->b, cg_f32(c, -INFINITY), best);
    LLVMBuildStore(c->b, ci32(c, 0), arg);
    CgLoop l;
    LLVMValueRef i = cg_loop_begin(c, &l, len);
    LLVMValueRef v = to_f32(c, cg_load(c, x, cg_iadd(c, base, cg_imul(c, i, cg_i64(c, step)))), x->type.dtype);
    LLVMValueRef b = LLVMBuildLoad2(c->b, c->f32, best, "");
    /* the first maximum wins; the first NaN beats everything */
    LLVMValueRef better = LLVMBuildOr(c->b, fcmp(c, LLVMRealOGT, v, b),
                                      LLVMBuildAnd(c->b, fcmp(c, LLVMRealUNO, v, v), fcmp(c, LLVMRealORD, b, b), ""), "");
    LLVMBuildStore(c->b, sel(c, better, v, b), best);
    LLVMBuildStore(c->b, sel(c, better, LLVMBuildTrunc(c->b, i, c->i32, ""), LLVMBuildLoad2(c->b, c->i32, arg, "")), arg);
    cg_loop_end(c, &l);
    cg_store(c, n, linear(c, kn.idx, kstr_out, s.nk, 0), LLVMBuildLoad2(c->b, c->i32, arg, ""));
    nest_end(c, &kn);
    return;
  }
  LLVMValueRef m = reduce_loop(c, x, &s, base, RED_MAX, NULL, NULL, NULL, NULL);
  LLVMValueRef sum = reduce_loop(c, x, &s, base, RED_SUM, exp_minus, m, NULL, NULL);
  LLVMValueRef lse = cg_log(c, sum), inv = cg_fdiv(c, cg_f32(c, 1), sum);
  if (loss) {  /* the labels are indexed by the kept dims, row-major */
    int64_t kstr_out[IR_MAX_RANK] = {0};
    Type kt = type_make(DT_I32, s.nk, s.kept);
    row_major(&kt, kstr_out);
    LLVMValueRef label = clamp_index(c, cg_load(c, loss->in[1], linear(c, kn.idx, kstr_out, s.nk, 0)), len);
    LLVMValueRef picked = cg_load(c, x, cg_iadd(c, base, cg_imul(c, label, cg_i64(c, step))));
    LLVMValueRef term = cg_fsub(c, cg_fadd(c, m, lse), picked);
    LLVMBuildStore(c->b, cg_fadd(c, LLVMBuildLoad2(c->b, c->f32, loss_acc, ""), term), loss_acc);
  }
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(c, &l, len);
  LLVMValueRef at = cg_iadd(c, base, cg_imul(c, i, cg_i64(c, step)));
  LLVMValueRef d = cg_fsub(c, cg_load(c, x, at), m);
  LLVMValueRef y = n->op == OP_SOFTMAX ? cg_fmul(c, emit_exp(c, d), inv) : cg_fsub(c, d, lse);
  if (c->home[n->id] >= 0) cg_store(c, n, at, y);
  if (F) {  /* the fused rest, at (kept..., i): the axis is the last */
    LLVMValueRef idx[IR_MAX_RANK];
    for (int d2 = 0; d2 < s.nk; d2++) idx[d2] = kn.idx[d2];
    idx[s.nk] = i;
    fused_body(c, F, idx, y);
  }
  cg_loop_end(c, &l);
  nest_end(c, &kn);
  if (loss) {
    double rows = (double)type_numel(&loss->in[1]->type);
    cg_store(c, loss, cg_i64(c, 0), cg_fmul(c, LLVMBuildLoad2(c->b, c->f32, loss_acc, ""), cg_f32(c, 1.0 / rows)));
  }
}

/* ------------------------------------------------------ data movement */

static void emit_transpose(Cg *c, const Node *n) {
  const Type *t = &n->type;
  int64_t ostr[IR_MAX_RANK] = {0}, xstr[IR_MAX_RANK] = {0}, istr[IR_MAX_RANK] = {0};
  row_major(t, ostr);
  row_major(&n->in[0]->type, xstr);
  for (int d = 0; d < t->rank; d++) istr[d] = xstr[n->attr[0].list[d]];
  Nest ns;
  nest_begin(c, &ns, t->dim, t->rank);
  cg_store(c, n, linear(c, ns.idx, ostr, t->rank, 0), cg_load(c, n->in[0], linear(c, ns.idx, istr, t->rank, 0)));
  nest_end(c, &ns);
}

static void emit_slice(Cg *c, const Node *n) {
  const Type *t = &n->type;
  int64_t ostr[IR_MAX_RANK] = {0}, xstr[IR_MAX_RANK] = {0}, istr[IR_MAX_RANK] = {0}, base = 0;
  row_major(t, ostr);
  row_major(&n->in[0]->type, xstr);
  for (int d = 0; d < t->rank; d++) {
    istr[d] = xstr[d] * n->attr[2].list[d];
    base += xstr[d] * n->attr[0].list[d];
  }
  Nest ns;
  nest_begin(c, &ns, t->dim, t->rank);
  cg_store(c, n, linear(c, ns.idx, ostr, t->rank, 0), cg_load(c, n->in[0], linear(c, ns.idx, istr, t->rank, base)));
  nest_end(c, &ns);
}

static void fill(Cg *c, const Node *n, LLVMValueRef v) {
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(c, &l, type_numel(&n->type));
  cg_store(c, n, i, v);
  cg_loop_end(c, &l);
}

static LLVMValueRef zero_of(Cg *c, DType t) {
  return t == DT_F32 ? cg_f32(c, 0) : t == DT_I32 ? ci32(c, 0) : LLVMConstInt(c->i1, 0, 0);
}

static void emit_unslice(Cg *c, const Node *n) {
  const Type *g = &n->in[0]->type;
  fill(c, n, zero_of(c, n->type.dtype));
  int64_t gstr[IR_MAX_RANK] = {0}, ystr[IR_MAX_RANK] = {0}, ostr[IR_MAX_RANK] = {0}, base = 0;
  row_major(g, gstr);
  row_major(&n->type, ystr);
  for (int d = 0; d < g->rank; d++) {
    ostr[d] = ystr[d] * n->attr[1].list[d];
    base += ystr[d] * n->attr[0].list[d];
  }
  Nest ns;
  nest_begin(c, &ns, g->dim, g->rank);
  cg_store(c, n, linear(c, ns.idx, ostr, g->rank, base), cg_load(c, n->in[0], linear(c, ns.idx, gstr, g->rank, 0)));
  nest_end(c, &ns);
}

static void emit_concat(Cg *c, const Node *n) {
  int64_t axis = n->attr[0].i, offset = 0, ystr[IR_MAX_RANK];
  row_major(&n->type, ystr);
  for (int k = 0; k < n->n_in; k++) {
    const Type *t = &n->in[k]->type;
    int64_t istr[IR_MAX_RANK] = {0};
    row_major(t, istr);
    Nest ns;
    nest_begin(c, &ns, t->dim, t->rank);
    cg_store(c, n, linear(c, ns.idx, ystr, t->rank, offset * ystr[axis]),
          cg_load(c, n->in[k], linear(c, ns.idx, istr, t->rank, 0)));
    nest_end(c, &ns);
    offset += t->dim[axis];
  }
}

static void emit_one_hot(Cg *c, const Node *n) {
  int64_t depth = n->attr[0].i, count = type_numel(&n->in[0]->type);
  CgLoop l, k;
  LLVMValueRef i = cg_loop_begin(c, &l, count);
  LLVMValueRef label = cg_load(c, n->in[0], i);
  LLVMValueRef j = cg_loop_begin(c, &k, depth);
  LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildSExt(c->b, label, c->i64, ""), j, "");
  cg_store(c, n, cg_iadd(c, cg_imul(c, i, cg_i64(c, depth)), j), sel(c, hit, cg_f32(c, 1), cg_f32(c, 0)));
  cg_loop_end(c, &k);
  cg_loop_end(c, &l);
}

/* An index clamped into [0, rows): the runtime rejects out-of-range
 * input labels; this keeps a computed index from reading outside. */
static LLVMValueRef clamp_index(Cg *c, LLVMValueRef v, int64_t rows) {
  LLVMValueRef i = LLVMBuildSExt(c->b, v, c->i64, "");
  i = sel(c, LLVMBuildICmp(c->b, LLVMIntSLT, i, cg_i64(c, 0), ""), cg_i64(c, 0), i);
  return sel(c, LLVMBuildICmp(c->b, LLVMIntSGE, i, cg_i64(c, rows), ""), cg_i64(c, rows - 1), i);
}

static void emit_gather(Cg *c, const Node *n) {
  const Node *table = n->in[0], *idx = n->in[1];
  int64_t rows = table->type.dim[0], width = type_numel(&table->type) / rows;
  CgLoop l, k;
  LLVMValueRef i = cg_loop_begin(c, &l, type_numel(&idx->type));
  LLVMValueRef row = clamp_index(c, cg_load(c, idx, i), rows);
  LLVMValueRef j = cg_loop_begin(c, &k, width);
  cg_store(c, n, cg_iadd(c, cg_imul(c, i, cg_i64(c, width)), j), cg_load(c, table, cg_iadd(c, cg_imul(c, row, cg_i64(c, width)), j)));
  cg_loop_end(c, &k);
  cg_loop_end(c, &l);
}

static void emit_scatter_add(Cg *c, const Node *n) {
  const Node *g = n->in[0], *idx = n->in[1];
  int64_t rows = n->attr[0].i, width = type_numel(&n->type) / rows;
  fill(c, n, cg_f32(c, 0));
  CgLoop l, k;
  LLVMValueRef i = cg_loop_begin(c, &l, type_numel(&idx->type));
  LLVMValueRef row = clamp_index(c, cg_load(c, idx, i), rows);
  LLVMValueRef j = cg_loop_begin(c, &k, width);
  LLVMValueRef at = cg_iadd(c, cg_imul(c, row, cg_i64(c, width)), j);
  cg_store(c, n, at, cg_fadd(c, cg_load(c, n, at), cg_load(c, g, cg_iadd(c, cg_imul(c, i, cg_i64(c, width)), j))));
  cg_loop_end(c, &k);
  cg_loop_end(c, &l);
}

/* -------------------------------------------------------------- losses */

static LLVMValueRef sum_over(Cg *c, int64_t count, LLVMValueRef (*term)(Cg *, const Node *, LLVMValueRef),
                             const Node *n) {
  LLVMValueRef acc = alloca_f32(c);
  LLVMBuildStore(c->b, cg_f32(c, 0), acc);
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(c, &l, count);
  LLVMBuildStore(c->b, cg_fadd(c, LLVMBuildLoad2(c->b, c->f32, acc, ""), term(c, n, i)), acc);
  cg_loop_end(c, &l);
  return LLVMBuildLoad2(c->b, c->f32, acc, "");
}

static LLVMValueRef mse_term(Cg *c, const Node *n, LLVMValueRef i) {
  LLVMValueRef d = cg_fsub(c, cg_load(c, n->in[0], i), cg_load(c, n->in[1], i));
  return cg_fmul(c, d, d);
}

static LLVMValueRef huber_term(Cg *c, const Node *n, LLVMValueRef i) {
  double delta = n->attr[0].f;
  LLVMValueRef d = intrinsic1(c, "llvm.fabs", cg_fsub(c, cg_load(c, n->in[0], i), cg_load(c, n->in[1], i)));
  LLVMValueRef quad = cg_fmul(c, cg_f32(c, 0.5), cg_fmul(c, d, d));
  LLVMValueRef lin = cg_fmul(c, cg_f32(c, delta), cg_fsub(c, d, cg_f32(c, 0.5 * delta)));
  return sel(c, fcmp(c, LLVMRealOLE, d, cg_f32(c, delta)), quad, lin);
}

static LLVMValueRef bce_term(Cg *c, const Node *n, LLVMValueRef i) {
  LLVMValueRef z = cg_load(c, n->in[0], i), t = cg_load(c, n->in[1], i);
  LLVMValueRef relu = sel(c, fcmp(c, LLVMRealOGT, z, cg_f32(c, 0)), z, cg_f32(c, 0));
  LLVMValueRef tail = cg_log1p(c, emit_exp(c, fneg(c, intrinsic1(c, "llvm.fabs", z))));
  return cg_fadd(c, cg_fsub(c, relu, cg_fmul(c, z, t)), tail);
}

/* cross_entropy: mean over labels of logsumexp(z) - z[label]; nll: -logp[label] */
static void emit_class_loss(Cg *c, const Node *n) {
  const Node *z = n->in[0], *y = n->in[1];
  int64_t classes = z->type.dim[z->type.rank - 1], rows = type_numel(&y->type);
  LLVMValueRef acc = alloca_f32(c);
  LLVMBuildStore(c->b, cg_f32(c, 0), acc);
  CgLoop l;
  LLVMValueRef r = cg_loop_begin(c, &l, rows);
  LLVMValueRef base = cg_imul(c, r, cg_i64(c, classes));
  LLVMValueRef label = clamp_index(c, cg_load(c, y, r), classes);
  LLVMValueRef picked = cg_load(c, z, cg_iadd(c, base, label));
  LLVMValueRef term;
  if (n->op == OP_CROSS_ENTROPY) {
    Split s = {.red = {classes}, .rstr = {1}, .nr = 1, .count = classes};
    LLVMValueRef m = reduce_loop(c, z, &s, base, RED_MAX, NULL, NULL, NULL, NULL);
    LLVMValueRef sum = reduce_loop(c, z, &s, base, RED_SUM, exp_minus, m, NULL, NULL);
    term = cg_fsub(c, cg_fadd(c, m, cg_log(c, sum)), picked);
  } else {
    term = fneg(c, picked);
  }
  LLVMBuildStore(c->b, cg_fadd(c, LLVMBuildLoad2(c->b, c->f32, acc, ""), term), acc);
  cg_loop_end(c, &l);
  cg_store(c, n, cg_i64(c, 0), cg_fmul(c, LLVMBuildLoad2(c->b, c->f32, acc, ""), cg_f32(c, 1.0 / (double)rows)));
}

static void emit_pair_loss(Cg *c, const Node *n) {
  int64_t count = type_numel(&n->in[0]->type);
  LLVMValueRef (*term)(Cg *, const Node *, LLVMValueRef) =
      n->op == OP_MSE ? mse_term : n->op == OP_HUBER ? huber_term : bce_term;
  cg_store(c, n, cg_i64(c, 0), cg_fmul(c, sum_over(c, count, term, n), cg_f32(c, 1.0 / (double)count)));
}

/* --------------------------------------------------------------- random */

static void emit_dropout_mask(Cg *c, const Node *n) {
  LLVMTypeRef args[4] = {c->i64, c->i64, c->i64, c->f64};
  LLVMTypeRef ft = LLVMFunctionType(c->f64, args, 4, 0);
  LLVMValueRef f = LLVMGetNamedFunction(c->mod, "rt_dropout_mask");
  if (!f) f = LLVMAddFunction(c->mod, "rt_dropout_mask", ft);
  LLVMValueRef step = LLVMBuildFPToUI(c->b, cg_load(c, n->in[0], cg_i64(c, 0)), c->i64, "");
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(c, &l, type_numel(&n->type));
  LLVMValueRef a[4] = {cg_i64(c, n->attr[1].i), step, i, LLVMConstReal(c->f64, n->attr[0].f)};
  LLVMValueRef v = LLVMBuildCall2(c->b, ft, f, a, 4, "");
  cg_store(c, n, i, LLVMBuildFPTrunc(c->b, v, c->f32, ""));
  cg_loop_end(c, &l);
}

/* ------------------------------------------------------ check_numerics */

/* CgOptions.check_numerics: each f32 value is checked once computed, and
 * the int32 slot at c->numerics_slot keeps the least code 2 * (node
 * index) + (inf ? 1 : 0) of a non-finite one (runtime/model.h). Kernels
 * run their nodes in id order, so the least index is the first node
 * that made a nan or inf. A stored value is scanned by the runtime's
 * rt_check_finite right after its node function; a value a fused kernel
 * keeps in registers is checked inline (numerics_inline), since nothing
 * else ever sees it. Fusion and the memory plan stay as they are: a
 * stored value is still live when it is scanned (its users come later),
 * and what is checked is the code that runs without the flag. */

static bool numerics_checked(const Node *n) {
  return n->type.dtype == DT_F32 && n->op != OP_VAR && n->op != OP_CONST;
}

static LLVMValueRef numerics_slot_ptr(Cg *c) {
  LLVMValueRef off = cg_i64(c, c->numerics_slot);
  return LLVMBuildGEP2(c->b, c->i8, c->slab, &off, 1, "");
}

static void numerics_scan(Cg *c, const Node *n) {
  if (!numerics_checked(n) || c->home[n->id] < 0) return;
  LLVMTypeRef args[4] = {c->ptr, c->i64, c->i32, c->ptr};
  LLVMTypeRef ft = LLVMFunctionType(c->void_t, args, 4, 0);
  LLVMValueRef f = LLVMGetNamedFunction(c->mod, "rt_check_finite");
  if (!f) f = LLVMAddFunction(c->mod, "rt_check_finite", ft);
  LLVMValueRef a[4] = {cg_ptr_at(c, c->home[n->id], DT_F32, cg_i64(c, 0)), cg_i64(c, type_numel(&n->type)),
                       ci32(c, c->numerics_base + n->id), numerics_slot_ptr(c)};
  LLVMBuildCall2(c->b, ft, f, a, 4, "");
}

/* v: element of n that no store will hold. No fast-math flags on the
 * compares: they must see the nan. */
static void numerics_inline(Cg *c, const Node *n, LLVMValueRef v) {
  if (!numerics_checked(n) || !v) return;
  LLVMValueRef is_nan = LLVMBuildFCmp(c->b, LLVMRealUNO, v, v, "");
  LLVMValueRef bad = LLVMBuildFCmp(c->b, LLVMRealUGE, intrinsic1(c, "llvm.fabs", v), cg_f32(c, INFINITY), "");
  int64_t code = 2 * (int64_t)(c->numerics_base + n->id);
  LLVMValueRef mine = LLVMBuildSelect(c->b, is_nan, ci32(c, code), ci32(c, code + 1), "");
  LLVMValueRef p = numerics_slot_ptr(c), cur = LLVMBuildLoad2(c->b, c->i32, p, "");
  LLVMValueRef lower = LLVMBuildAnd(c->b, bad, LLVMBuildICmp(c->b, LLVMIntSLT, mine, cur, ""), "");
  LLVMBuildStore(c->b, LLVMBuildSelect(c->b, lower, mine, cur, ""), p);
}

/* -------------------------------------------------------------- fusion */

/* A fused kernel (passes/fuse.c): nodes [first, end) of the graph, an
 * anchor first (matmul, conv2d, softmax) or none, then elementwise nodes over the
 * loop's shape. In each iteration every operand from outside is loaded
 * before any member is stored, so a member may overwrite a value the
 * kernel reads at the same index; members used outside are stored, the
 * rest stay in registers. */
struct Fused {
  const Graph *g;
  int first, end, from;     /* members; `from`: the first non-anchor */
  KernelKind kind;
  const Type *loop;
  LLVMValueRef *hoisted;    /* per operand slot (member * 3 + j): a load
                               before the loops, for operands read at one
                               element (LLVM cannot hoist past the stores) */
};

#define FUSED_SLOTS 3  /* operands of an elementwise node (where) */

static bool in_kernel(const Fused *F, const Node *x) { return x->id >= F->first && x->id < F->end; }

static bool is_row_loss(const Node *n) { return n->op == OP_CROSS_ENTROPY || n->op == OP_NLL; }

/* A member not computed per element of the loop: a softmax kernel's row
 * loss (emit_axis_op's, per row) or a reduce kernel's reduction (the
 * reduce loop's). */
static bool not_per_element(const Node *n) { return is_row_loss(n) || ir_kernel_reduction(n); }

static const Node *fused_row_loss(const Fused *F) {
  for (int i = F->from; i < F->end; i++)
    if (is_row_loss(F->g->nodes[i])) return F->g->nodes[i];
  return NULL;
}

static void fused_hoist(Cg *c, Fused *F) {
  int r = F->loop->rank;
  for (int i = F->from; i < F->end; i++) {
    const Node *m = F->g->nodes[i];
    if (m->op == OP_ONE_HOT || not_per_element(m)) continue;
    for (int j = 0; j < m->n_in; j++) {
      const Node *x = m->in[j];
      int64_t str[IR_MAX_RANK] = {0};
      if (in_kernel(F, x)) continue;
      broadcast_strides(&x->type, r, F->loop->dim, str);
      bool all_zero = true;
      for (int d = 0; d < r; d++) all_zero &= str[d] == 0;
      if (all_zero) F->hoisted[(i - F->first) * FUSED_SLOTS + j] = cg_load(c, x, cg_i64(c, 0));
    }
  }
}

/* The members' values at index idx of the loop; anchor: a softmax
 * anchor's value (a matmul or conv2d anchor is read back from memory,
 * where its tile or row has just been stored). Returns, in a reduce
 * kernel, the value the final reduction folds (its own loop is
 * emit_reduce's). */
static LLVMValueRef fused_body(Cg *c, const Fused *F, LLVMValueRef *idx, LLVMValueRef anchor) {
  int r = F->loop->rank, count = F->end - F->first;
  int64_t ostr[IR_MAX_RANK] = {0};
  row_major(F->loop, ostr);
  LLVMValueRef at = linear(c, idx, ostr, r, 0);
  LLVMValueRef *vals = nncc_calloc((size_t)count, sizeof *vals), *args = nncc_calloc((size_t)count * FUSED_SLOTS, sizeof *args);
  if (F->kind == KERNEL_SOFTMAX) vals[0] = anchor;
  if (F->kind == KERNEL_MATMUL || F->kind == KERNEL_CONV) vals[0] = cg_load(c, F->g->nodes[F->first], at);
  /* every load first */
  for (int i = F->from; i < F->end; i++) {
    const Node *m = F->g->nodes[i];
    LLVMValueRef *a = &args[(i - F->first) * FUSED_SLOTS];
    if (not_per_element(m)) continue;
    if (m->op == OP_ONE_HOT) {  /* the label at the leading indices */
      int64_t lstr[IR_MAX_RANK] = {0};
      row_major(&m->in[0]->type, lstr);
      a[0] = cg_load(c, m->in[0], linear(c, idx, lstr, r - 1, 0));
      continue;
    }
    for (int j = 0; j < m->n_in; j++) {
      const Node *x = m->in[j];
      if (in_kernel(F, x)) continue;
      LLVMValueRef h = F->hoisted[(i - F->first) * FUSED_SLOTS + j];
      int64_t str[IR_MAX_RANK] = {0};
      broadcast_strides(&x->type, r, F->loop->dim, str);
      a[j] = h ? h : cg_load(c, x, linear(c, idx, str, r, 0));
    }
  }
  for (int i = F->from; i < F->end; i++) {
    const Node *m = F->g->nodes[i];
    LLVMValueRef *a = &args[(i - F->first) * FUSED_SLOTS];
    if (not_per_element(m)) continue;
    if (m->op == OP_ONE_HOT) {
      LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, LLVMBuildSExt(c->b, a[0], c->i64, ""), idx[r - 1], "");
      vals[i - F->first] = sel(c, hit, cg_f32(c, 1), cg_f32(c, 0));
      continue;
    }
    for (int j = 0; j < m->n_in; j++)
      if (in_kernel(F, m->in[j])) a[j] = vals[m->in[j]->id - F->first];
    vals[i - F->first] = scalar(c, m, a);
  }
  for (int i = F->from; i < F->end; i++) {
    const Node *m = F->g->nodes[i];
    if (c->home[i] >= 0 && !not_per_element(m)) cg_store(c, m, at, vals[i - F->first]);
  }
  for (int i = F->first; i < F->end && c->numerics_slot >= 0; i++)
    if (c->home[i] == LAYOUT_IN_REGISTERS && !not_per_element(F->g->nodes[i]))
      numerics_inline(c, F->g->nodes[i], vals[i - F->first]);
  const Node *last = F->g->nodes[F->end - 1];
  LLVMValueRef folded = F->kind == KERNEL_REDUCE ? vals[last->in[0]->id - F->first] : NULL;
  nncc_free(vals);
  nncc_free(args);
  return folded;
}

static void fused_at(Cg *c, const Fused *F, LLVMValueRef *idx) { fused_body(c, F, idx, NULL); }

/* The epilogue over rows [row0, row0 + rows) and columns [col0, col0 +
 * cols) of one matrix of a matmul kernel (batch_idx: the matrix). */
static void fused_region(Cg *c, const Fused *F, LLVMValueRef *batch_idx, int batch_rank, LLVMValueRef row0,
                         int64_t rows, LLVMValueRef col0, int64_t cols) {
  LLVMValueRef idx[IR_MAX_RANK];
  for (int d = 0; d < batch_rank; d++) idx[d] = batch_idx[d];
  CgLoop lr, lc;
  idx[batch_rank] = cg_iadd(c, cg_loop_begin(c, &lr, rows), row0);
  idx[batch_rank + 1] = cg_iadd(c, cg_loop_begin(c, &lc, cols), col0);
  fused_body(c, F, idx, NULL);
  cg_loop_end(c, &lc);
  cg_loop_end(c, &lr);
}

static void emit_fused(Cg *c, int first, int end) {
  Fused F = {c->g, first, end, first, ir_kernel_kind(c->g, first, NULL), &c->g->nodes[first]->type, NULL};
  const Node *head = c->g->nodes[first];
  if (F.kind == KERNEL_MATMUL || F.kind == KERNEL_CONV || F.kind == KERNEL_SOFTMAX) F.from = first + 1;
  F.hoisted = nncc_calloc((size_t)(end - first) * FUSED_SLOTS, sizeof *F.hoisted);
  fused_hoist(c, &F);
  if (F.kind == KERNEL_MATMUL) {
    emit_matmul(c, head, &F);
  } else if (F.kind == KERNEL_CONV) {
    CgEpilogue e = {&F, fused_at};
    cg_emit_conv_fused(c, head, &e);
  } else if (F.kind == KERNEL_SOFTMAX) {
    emit_axis_op(c, head, &F);
  } else if (F.kind == KERNEL_REDUCE) {
    emit_reduce(c, c->g->nodes[end - 1], &F);
  } else {
    Nest ns;
    nest_begin_parallel(c, &ns, F.loop->dim, F.loop->rank, 1);
    fused_body(c, &F, ns.idx, NULL);
    nest_end(c, &ns);
  }
  nncc_free(F.hoisted);
}

/* ------------------------------------------------------------- kernels */

static bool emit_node(Cg *c, const Node *n) {
  if (op_info(n->op)->flags & OPF_ELEMWISE) {
    emit_elementwise(c, n);
    return true;
  }
  switch (n->op) {
  case OP_VAR: return true;
  case OP_CONST:
    if (c->home[n->id] >= 0) fill(c, n, cg_load(c, n, cg_i64(c, 0)));  /* a constant with a role */
    return true;
  case OP_ASSIGN: case OP_UPDATE: return true;  /* at the end */
  case OP_MATMUL: emit_matmul(c, n, NULL); return true;
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: emit_reduce(c, n, NULL); return true;
  case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX: emit_axis_op(c, n, NULL); return true;
  case OP_RESHAPE: case OP_BROADCAST: emit_elementwise(c, n); return true;
  case OP_TRANSPOSE: emit_transpose(c, n); return true;
  case OP_SLICE: emit_slice(c, n); return true;
  case OP_UNSLICE: emit_unslice(c, n); return true;
  case OP_CONCAT: emit_concat(c, n); return true;
  case OP_ONE_HOT: emit_one_hot(c, n); return true;
  case OP_GATHER: emit_gather(c, n); return true;
  case OP_SCATTER_ADD: emit_scatter_add(c, n); return true;
  case OP_MSE: case OP_HUBER: case OP_BCE: emit_pair_loss(c, n); return true;
  case OP_CROSS_ENTROPY: case OP_NLL: emit_class_loss(c, n); return true;
  case OP_DROPOUT_MASK: emit_dropout_mask(c, n); return true;
  case OP_CONV2D: case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT: case OP_MAX_POOL2D:
  case OP_AVG_POOL2D: case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD:
    return cg_emit_conv(c, n);
  /* elementwise: above, by their flags; lowered ops (lower.c) never reach codegen */
  case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT: case OP_ABS: case OP_SQUARE:
  case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH: case OP_GELU: case OP_SOFTPLUS:
  case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP: case OP_ERF: case OP_FLOOR:
  case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV:
  case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT: case OP_GE: case OP_EQ:
  case OP_NE: case OP_WHERE: case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT:
  case OP_ELU: case OP_SELU: case OP_SILU: case OP_HARDTANH: case OP_COUNT:
    break;
  }
  return false;
}

static void copy_values(Cg *c, int64_t from, int64_t to, const Type *t) {
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(c, &l, type_numel(t));
  LLVMValueRef v = LLVMBuildLoad2(c->b, cg_storage_type(c, t->dtype), cg_ptr_at(c, from, t->dtype, i), "");
  LLVMBuildStore(c->b, v, cg_ptr_at(c, to, t->dtype, i));
  cg_loop_end(c, &l);
}

/* The nodes a kernel runs: what its roots need (ir_entry_masks, one rule for
 * codegen and the fuse pass). */
static char *kernel_nodes(const Graph *g, CgKernel k) {
  unsigned *entries = ir_entry_masks(g);
  char *want = nncc_calloc((size_t)g->n_nodes + 1, 1);
  for (int i = 0; i < g->n_nodes; i++) want[i] = (entries[i] >> k) & 1;
  nncc_free(entries);
  return want;
}

/* A kernel `void k(ptr slab, ptr pool)`, or (internal) a node function
 * `void f(ptr slab, i64 task)`. */
static LLVMValueRef new_function(Cg *c, const char *name, bool internal) {
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, internal ? c->task_fn_t : c->kernel_t);
  LLVMAddAttributeAtIndex(fn, 1, LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noalias", 7), 0));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("nounwind", 8), 0));
#ifdef NNCC_TSAN  /* the TSan build: jit.c runs LLVM's tsan pass, which instruments these */
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("sanitize_thread", 15), 0));
#endif
  if (internal) {
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(c->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
  }
  return fn;
}

/* The function computing node n, or the fused kernel that starts at n
 * and ends before node `end` (made on first use), and its task count. */
static LLVMValueRef node_function(Cg *c, const Node *n, int end, int graph_index, int64_t *tasks) {
  if (c->node_fns[n->id]) {
    *tasks = c->node_tasks[n->id];
    return c->node_fns[n->id];
  }
  char name[160];
  if (n->kernel)
    snprintf(name, sizeof name, "%s_g%d_k%d_%s_%d", c->prefix ? c->prefix : "nncc", graph_index, n->kernel,
             op_info(n->op)->name, n->id);
  else
    snprintf(name, sizeof name, "%s_g%d_%s_%d", c->prefix ? c->prefix : "nncc", graph_index,
             op_info(n->op)->name, n->id);
  LLVMValueRef kernel = c->fn, kernel_slab = c->slab;
  LLVMBasicBlockRef at = LLVMGetInsertBlock(c->b);
  c->fn = new_function(c, name, true);
  c->slab = LLVMGetParam(c->fn, 0);
  /* check_numerics' inline checks update one slot: not from two threads */
  c->task = c->numerics_slot >= 0 ? NULL : LLVMGetParam(c->fn, 1);
  c->tasks = 0;
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, c->fn, "entry"));
  if (n->kernel) emit_fused(c, n->id, end);
  else if (!emit_node(c, n))  /* batch_norm, layer_norm, dropout: lowered before codegen */
    nncc_raise("internal error: no code generation for '%s' (an op the lower pass removes)", op_info(n->op)->name);
  LLVMBuildRetVoid(c->b);
  c->node_fns[n->id] = c->fn;
  c->node_tasks[n->id] = c->tasks > 1 ? c->tasks : 1;
  c->fn = kernel;
  c->slab = kernel_slab;
  c->task = NULL;
  LLVMPositionBuilderAtEnd(c->b, at);
  *tasks = c->node_tasks[n->id];
  return c->node_fns[n->id];
}

/* f(slab, 0), or its tasks on the pool */
static void call_node_function(Cg *c, LLVMValueRef f, int64_t tasks, LLVMValueRef pool) {
  if (tasks <= 1) {
    LLVMValueRef args[2] = {c->slab, cg_i64(c, 0)};
    LLVMBuildCall2(c->b, c->task_fn_t, f, args, 2, "");
    return;
  }
  LLVMTypeRef params[4] = {c->ptr, c->ptr, c->ptr, c->i64};
  LLVMTypeRef ft = LLVMFunctionType(c->void_t, params, 4, 0);
  LLVMValueRef pf = LLVMGetNamedFunction(c->mod, "rt_parallel_for");
  if (!pf) pf = LLVMAddFunction(c->mod, "rt_parallel_for", ft);
  LLVMValueRef args[4] = {pool, f, c->slab, cg_i64(c, tasks)};
  LLVMBuildCall2(c->b, ft, pf, args, 4, "");
}

static bool has_code(const Cg *c, const Node *n) {
  return n->op != OP_VAR && n->op != OP_ASSIGN && n->op != OP_UPDATE && !(n->op == OP_CONST && !n->roles) &&
         c->home[n->id] != LAYOUT_VIEW;
}

bool cg_emit_kernel(Cg *c, const LayoutModel *cm, CgKernel k, const char *fn_name) {
  const Graph *g = k <= CG_EVALUATE ? cm->eval : cm->train;
  if (!g || (k == CG_EVALUATE && cm->loss_index < 0)) return false;
  c->g = g;
  c->home = k <= CG_EVALUATE ? cm->home_eval : cm->home_train;
  c->numerics_slot = cm->numerics_offset;
  c->numerics_base = k <= CG_EVALUATE ? 0 : cm->eval->n_nodes;
  if (c->node_fns_graph != g) {
    nncc_free(c->node_fns);
    nncc_free(c->node_tasks);
    c->node_fns = nncc_calloc((size_t)g->n_nodes + 1, sizeof(LLVMValueRef));
    c->node_tasks = nncc_calloc((size_t)g->n_nodes + 1, sizeof(int64_t));
    c->node_fns_graph = g;
  }
  c->fn = new_function(c, fn_name, false);
  c->slab = LLVMGetParam(c->fn, 0);
  LLVMValueRef pool = LLVMGetParam(c->fn, 1);
  c->task = NULL;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "entry");
  LLVMPositionBuilderAtEnd(c->b, entry);
  char *want = kernel_nodes(g, k);
  int graph_index = k <= CG_EVALUATE ? 0 : 1;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    int end = i + 1;
    if (n->kernel) {  /* a fused kernel runs whole or not at all (fuse.c) */
      if (i > 0 && g->nodes[i - 1]->kernel == n->kernel) continue;
      bool any = false;
      for (; end < g->n_nodes && g->nodes[end]->kernel == n->kernel; end++) any |= want[end];
      if (!want[i] && !any) continue;
    } else if (!want[i] || !has_code(c, n)) {
      continue;
    }
    int64_t tasks;
    LLVMValueRef f = node_function(c, n, end, graph_index, &tasks);
    call_node_function(c, f, tasks, pool);
    for (int j = i; j < end && c->numerics_slot >= 0; j++) numerics_scan(c, g->nodes[j]);
  }
  /* the end of the step: copies into ABI slots, then state writes */
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!want[i] || !n->roles || c->home[i] < 0) continue;
    for (int t = 0; t < cm->n_tensors; t++) {
      const LayoutTensor *ct = &cm->tensors[t];
      bool is_slot = ((n->roles & ROLE_OUTPUT) && ct->role == NNCC_OUTPUT && !strcmp(ct->name, n->out_name)) ||
                     ((n->roles & ROLE_LOSS) && t == cm->loss_index);
      if (is_slot && ct->offset != c->home[i]) copy_values(c, c->home[i], ct->offset, &n->type);
    }
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!want[i] || (n->op != OP_ASSIGN && n->op != OP_UPDATE)) continue;
    const Node *v = n->in[1];
    if (c->home[v->id] < 0) fill(c, n->in[0], cg_load(c, v, cg_i64(c, 0)));
    else if (c->home[v->id] != c->home[n->in[0]->id]) copy_values(c, c->home[v->id], c->home[n->in[0]->id], &v->type);
  }
  nncc_free(want);
  LLVMBuildRetVoid(c->b);
  return true;
}
