/* emit_conv.c - LLVM IR loop nests for convolution and pooling (NCHW,
 * weights [Cout, Cin, kh, kw]) and their gradients; called by emit.c's
 * emit_node. The semantics are eval/interp.c's, op for op: zero
 * padding for conv2d, no padding and floor mode for pooling, max pooling
 * routes to the first maximum of each window in row-major order (a NaN
 * wins, as max_pool2d propagates it).
 *
 * Every nest has static trip counts and keeps a row (the last,
 * contiguous dimension) innermost, so that with stride_w == 1 the inner
 * loop is a unit-stride axpy or dot product that LLVM vectorizes.
 * Padding never costs a per-element branch: the kernel columns b are
 * unrolled at emission time, which makes the valid columns of each b a
 * constant range. Where every b is valid (the middle of a row) one loop
 * does all KW taps; on the padded edges each tap has its own short loop.
 * A padded kernel row is skipped by one branch per output row. Slab
 * loads that do not depend on the inner loop (weights) are made before
 * it: LLVM cannot hoist them over the loop's stores into the same slab,
 * and left inside they stop the vectorizer.
 *
 * Those nests are the general case. With stride_w 1 (conv2d_grad_input:
 * stride 1) the three convolutions take the register-blocked nests of
 * "fast paths" below instead, which keep a block of outputs in vector
 * registers over the whole reduction (5-7x faster on bench/lenet.nn).
 * Max pooling with kernel == stride likewise has a vectorized nest that
 * writes its gradient in one pass ("non-overlapping max pooling"). */
#include "codegen/cg.h"
#include "codegen/emit_prim.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------- primitives */
/* The shared emission helpers (cg_load, cg_loop_begin, ...) are emit_prim.c's,
 * declared in emit_prim.h; the ones below are only the convolutions'. */

/* a * k + b, with k and b constants (k == 0 or b == 0 folded) */
static LLVMValueRef affine(Cg *c, LLVMValueRef a, int64_t k, int64_t b) {
  LLVMValueRef v = k == 1 ? a : LLVMBuildMul(c->b, a, cg_i64(c, k), "");
  return b ? cg_iadd(c, v, cg_i64(c, b)) : v;
}

/* n[idx] += v */
static void accumulate(Cg *c, const Node *n, LLVMValueRef idx, LLVMValueRef v) {
  cg_store(c, n, idx, cg_fadd(c, cg_load(c, n, idx), v));
}

static LLVMValueRef entry_alloca(Cg *c, LLVMTypeRef t) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
  LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(c->fn);
  LLVMValueRef first = LLVMGetFirstInstruction(entry);
  if (first) LLVMPositionBuilderBefore(c->b, first);
  else LLVMPositionBuilderAtEnd(c->b, entry);
  LLVMValueRef a = LLVMBuildAlloca(c->b, t, "");
  LLVMPositionBuilderAtEnd(c->b, cur);
  return a;
}

/* ---------------------------------------------------------------- loops */

/* if (0 <= v < bound) { ... }: returns the join block for guard_end */
static LLVMBasicBlockRef guard_begin(Cg *c, LLVMValueRef v, int64_t bound) {
  LLVMBasicBlockRef then = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "in");
  LLVMBasicBlockRef join = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "join");
  LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntULT, v, cg_i64(c, bound), ""), then, join);
  LLVMPositionBuilderAtEnd(c->b, then);
  return join;
}

static void guard_end(Cg *c, LLVMBasicBlockRef join) {
  LLVMBuildBr(c->b, join);
  LLVMPositionBuilderAtEnd(c->b, join);
}

/* n[first + i] = 0 for i < count: the slice of a node a task owns (an
 * image, a plane) before it accumulates into it */
static void zero_slice(Cg *c, const Node *n, LLVMValueRef first, int64_t count) {
  CgLoop l;
  LLVMValueRef i = cg_loop_begin(c, &l, count);
  cg_store(c, n, cg_iadd(c, first, i), cg_f32(c, 0));
  cg_loop_end(c, &l);
}

/* floor(a / d) and ceil(a / d) for d > 0 and any a */
static int64_t floor_div(int64_t a, int64_t d) { return a >= 0 ? a / d : -((-a + d - 1) / d); }
static int64_t ceil_div(int64_t a, int64_t d) { return -floor_div(-a, d); }

/* ---------------------------------------------------------- convolution */

/* x [N,C,H,W], w [O,C,KH,KW], y [N,O,OH,OW] (interp.c's Conv) */
typedef struct Conv {
  int64_t N, C, H, W, O, KH, KW, OH, OW, sh, sw, ph, pw;
  bool row_pad;  /* some kernel row can fall outside [0, H) */
} Conv;

static Conv conv_dims(const Type *x, const Type *w, const Type *y, const Node *n) {
  Conv k = {x->dim[0], x->dim[1], x->dim[2], x->dim[3], w->dim[0], w->dim[2], w->dim[3],
            y->dim[2], y->dim[3], n->attr[0].list[0], n->attr[0].list[1],
            n->attr[1].list[0], n->attr[1].list[1], false};
  k.row_pad = k.ph > 0 || (k.OH - 1) * k.sh + k.KH - 1 - k.ph >= k.H;
  return k;
}

/* The output columns [lo, hi) whose input column j*sw + b - pw lies in
 * [0, W) for kernel column b; empty when lo >= hi. */
static void col_range(const Conv *k, int64_t b, int64_t *lo, int64_t *hi) {
  *lo = ceil_div(k->pw - b, k->sw);
  if (*lo < 0) *lo = 0;
  *hi = floor_div(k->W - 1 + k->pw - b, k->sw) + 1;
  if (*hi > k->OW) *hi = k->OW;
}

/* The input row r = i*sh + a - ph of output row i and kernel row a, and
 * the guard that skips it when it is padding (NULL when none can be). */
static LLVMValueRef conv_row(Cg *c, const Conv *k, LLVMValueRef i, LLVMValueRef a, LLVMBasicBlockRef *join) {
  LLVMValueRef r = cg_iadd(c, affine(c, i, k->sh, -k->ph), a);
  *join = k->row_pad ? guard_begin(c, r, k->H) : NULL;
  return r;
}

static void conv_row_end(Cg *c, LLVMBasicBlockRef join) {
  if (join) guard_end(c, join);
}

/* The output columns j of kernel column b as a range of the inner loop's
 * variable d: d = j, or (by_input) the input column d = j + b - pw that
 * a stride-1 gather walks. */
static void tap_range(const Conv *k, bool by_input, int64_t b, int64_t *lo, int64_t *hi) {
  col_range(k, b, lo, hi);
  if (by_input) *lo += b - k->pw, *hi += b - k->pw;
}

/* Where every kernel column is valid: [lo, hi), or lo == hi == INT64_MAX
 * when that is empty (then the edge loops cover everything). */
static void middle_range(const Conv *k, bool by_input, int64_t *lo, int64_t *hi) {
  *lo = INT64_MIN, *hi = INT64_MAX;
  for (int64_t b = 0; b < k->KW; b++) {
    int64_t l, h;
    tap_range(k, by_input, b, &l, &h);
    if (l > *lo) *lo = l;
    if (h < *hi) *hi = h;
  }
  if (*lo >= *hi) *lo = *hi = INT64_MAX;
}

/* One row of taps: dst[drow + d] += sum_b src[srow + d*ds + b*bs + soff] w[wrow + b].
 * In the middle range all KW taps go into one loop, so that dst is
 * loaded and stored once per KW products; on the padded edges each tap
 * runs alone over the columns where it is valid. */
static void row_taps(Cg *c, const Conv *k, bool by_input, const Node *dst, LLVMValueRef drow, const Node *src,
                     LLVMValueRef srow, int64_t ds, int64_t bs, int64_t soff, const Node *w, LLVMValueRef wrow) {
  int64_t mid_lo, mid_hi;
  middle_range(k, by_input, &mid_lo, &mid_hi);
  /* the weights are read before the loops (see the top of the file) */
  LLVMValueRef *wv = nncc_calloc((size_t)k->KW, sizeof *wv);
  NNCC_ASSERT(wv);
  for (int64_t b = 0; b < k->KW; b++) wv[b] = cg_load(c, w, affine(c, wrow, 1, b));
  CgLoop l;
  if (mid_lo < mid_hi) {
    LLVMValueRef d = affine(c, cg_loop_begin(c, &l, mid_hi - mid_lo), 1, mid_lo);
    LLVMValueRef acc = cg_load(c, dst, cg_iadd(c, drow, d));
    for (int64_t b = 0; b < k->KW; b++) {
      LLVMValueRef sv = cg_load(c, src, cg_iadd(c, srow, affine(c, d, ds, b * bs + soff)));
      acc = cg_fadd(c, acc, cg_fmul(c, sv, wv[b]));
    }
    cg_store(c, dst, cg_iadd(c, drow, d), acc);
    cg_loop_end(c, &l);
  }
  for (int64_t b = 0; b < k->KW; b++) {
    int64_t lo, hi;
    tap_range(k, by_input, b, &lo, &hi);
    int64_t edge[2][2] = {{lo, hi < mid_lo ? hi : mid_lo}, {lo > mid_hi ? lo : mid_hi, hi}};
    for (int e = 0; e < 2; e++) {
      if (edge[e][0] >= edge[e][1]) continue;
      LLVMValueRef d = affine(c, cg_loop_begin(c, &l, edge[e][1] - edge[e][0]), 1, edge[e][0]);
      LLVMValueRef sv = cg_load(c, src, cg_iadd(c, srow, affine(c, d, ds, b * bs + soff)));
      accumulate(c, dst, cg_iadd(c, drow, d), cg_fmul(c, sv, wv[b]));
      cg_loop_end(c, &l);
    }
  }
  nncc_free(wv);
}

/* row offsets: ((p*P + q)*Q + r)*R */
static LLVMValueRef row_of(Cg *c, LLVMValueRef p, int64_t P, LLVMValueRef q, int64_t Q, LLVMValueRef r, int64_t R) {
  return affine(c, cg_iadd(c, affine(c, cg_iadd(c, affine(c, p, P, 0), q), Q, 0), r), R, 0);
}

/* y[n,o,i,j] = sum_{c,a,b} x[n,c,i*sh+a-ph,j*sw+b-pw] w[o,c,a,b]:
 * per output row and (c, a), the KW taps of a row of x added into it. */
static void fused_row(Cg *c, const CgEpilogue *F, LLVMValueRef n, int64_t D, LLVMValueRef row, int64_t DW);

/* The tasks are images; a fused epilogue (F) runs over each image once
 * it is computed. */
static void emit_conv2d(Cg *c, const Node *node, const CgEpilogue *F) {
  const Node *x = node->in[0], *w = node->in[1];
  Conv k = conv_dims(&x->type, &w->type, &node->type, node);
  CgLoop ln, lo, li, lc, la, lj;
  LLVMValueRef n = cg_parallel_loop_begin(c, &ln, k.N, k.O * k.OH * k.OW * k.C * k.KH * k.KW);
  LLVMValueRef o = cg_loop_begin(c, &lo, k.O);
  LLVMValueRef i = cg_loop_begin(c, &li, k.OH);
  LLVMValueRef yrow = row_of(c, n, k.O, o, k.OH, i, k.OW);
  LLVMValueRef j = cg_loop_begin(c, &lj, k.OW);
  cg_store(c, node, cg_iadd(c, yrow, j), cg_f32(c, 0));
  cg_loop_end(c, &lj);
  LLVMValueRef ch = cg_loop_begin(c, &lc, k.C);
  LLVMValueRef a = cg_loop_begin(c, &la, k.KH);
  LLVMBasicBlockRef join;
  LLVMValueRef r = conv_row(c, &k, i, a, &join);
  row_taps(c, &k, false, node, yrow, x, row_of(c, n, k.C, ch, k.H, r, k.W), k.sw, 1, -k.pw, w,
           row_of(c, o, k.C, ch, k.KH, a, k.KW));
  conv_row_end(c, join);
  cg_loop_end(c, &la);
  cg_loop_end(c, &lc);
  cg_loop_end(c, &li);
  cg_loop_end(c, &lo);
  if (F) {
    LLVMValueRef row = cg_loop_begin(c, &li, k.OH);
    fused_row(c, F, n, k.O, row, k.OW);
    cg_loop_end(c, &li);
  }
  cg_loop_end(c, &ln);
}

/* conv2d_grad_input(g, w) -> dx, the transpose of emit_conv2d's loop:
 * with stride_w 1 a row of dx gathers its KW taps from a row of g
 * (dx[s] += g[s + pw - b] w[b]); with a wider stride each tap scatters
 * a row of g into every sw-th element of a row of dx. */
static void emit_conv2d_grad_input(Cg *c, const Node *node) {
  const Node *g = node->in[0], *w = node->in[1];
  Conv k = conv_dims(&node->type, &w->type, &g->type, node);
  CgLoop ln, lo, li, lc, la, lj;
  LLVMValueRef n = cg_parallel_loop_begin(c, &ln, k.N, k.O * k.OH * k.OW * k.C * k.KH * k.KW);
  zero_slice(c, node, affine(c, n, k.C * k.H * k.W, 0), k.C * k.H * k.W);
  LLVMValueRef o = cg_loop_begin(c, &lo, k.O);
  LLVMValueRef i = cg_loop_begin(c, &li, k.OH);
  LLVMValueRef grow = row_of(c, n, k.O, o, k.OH, i, k.OW);
  LLVMValueRef ch = cg_loop_begin(c, &lc, k.C);
  LLVMValueRef a = cg_loop_begin(c, &la, k.KH);
  LLVMBasicBlockRef join;
  LLVMValueRef r = conv_row(c, &k, i, a, &join);
  LLVMValueRef xrow = row_of(c, n, k.C, ch, k.H, r, k.W), wrow = row_of(c, o, k.C, ch, k.KH, a, k.KW);
  if (k.sw == 1) {
    row_taps(c, &k, true, node, xrow, g, grow, 1, -1, k.pw, w, wrow);
  } else {
    for (int64_t b = 0; b < k.KW; b++) {
      int64_t lo_j, hi_j;
      col_range(&k, b, &lo_j, &hi_j);
      if (lo_j >= hi_j) continue;
      LLVMValueRef wv = cg_load(c, w, affine(c, wrow, 1, b));
      LLVMValueRef jj = affine(c, cg_loop_begin(c, &lj, hi_j - lo_j), 1, lo_j);
      LLVMValueRef gv = cg_load(c, g, cg_iadd(c, grow, jj));
      accumulate(c, node, cg_iadd(c, xrow, affine(c, jj, k.sw, b - k.pw)), cg_fmul(c, gv, wv));
      cg_loop_end(c, &lj);
    }
  }
  conv_row_end(c, join);
  cg_loop_end(c, &la);
  cg_loop_end(c, &lc);
  cg_loop_end(c, &li);
  cg_loop_end(c, &lo);
  cg_loop_end(c, &ln);
}

/* conv2d_grad_weight(x, g) -> dw[o,c,a,b] = sum_{n,i,j} x[n,c,i*sh+a-ph,j*sw+b-pw] g[n,o,i,j]:
 * per (o, c, a), KW dot products of a row of g with shifted rows of x,
 * summed in registers; in the middle range one loop feeds all KW sums
 * from one load of g. */
static void emit_conv2d_grad_weight(Cg *c, const Node *node) {
  const Node *x = node->in[0], *g = node->in[1];
  Conv k = conv_dims(&x->type, &node->type, &g->type, node);
  int64_t mid_lo, mid_hi;
  middle_range(&k, false, &mid_lo, &mid_hi);
  LLVMValueRef *acc = nncc_calloc((size_t)k.KW, sizeof *acc);
  NNCC_ASSERT(acc);
  for (int64_t b = 0; b < k.KW; b++) acc[b] = entry_alloca(c, c->f32);
  CgLoop lo, lc, la, ln, li, lj;
  LLVMValueRef o = cg_parallel_loop_begin(c, &lo, k.O, k.C * k.KH * k.KW * k.N * k.OH * k.OW);
  LLVMValueRef ch = cg_loop_begin(c, &lc, k.C);
  LLVMValueRef a = cg_loop_begin(c, &la, k.KH);
  for (int64_t b = 0; b < k.KW; b++) LLVMBuildStore(c->b, cg_f32(c, 0), acc[b]);
  LLVMValueRef n = cg_loop_begin(c, &ln, k.N);
  LLVMValueRef i = cg_loop_begin(c, &li, k.OH);
  LLVMBasicBlockRef join;
  LLVMValueRef r = conv_row(c, &k, i, a, &join);
  LLVMValueRef xrow = row_of(c, n, k.C, ch, k.H, r, k.W), grow = row_of(c, n, k.O, o, k.OH, i, k.OW);
  if (mid_lo < mid_hi) {
    LLVMValueRef j = affine(c, cg_loop_begin(c, &lj, mid_hi - mid_lo), 1, mid_lo);
    LLVMValueRef gv = cg_load(c, g, cg_iadd(c, grow, j));
    for (int64_t b = 0; b < k.KW; b++) {
      LLVMValueRef p = cg_fmul(c, cg_load(c, x, cg_iadd(c, xrow, affine(c, j, k.sw, b - k.pw))), gv);
      LLVMBuildStore(c->b, cg_fadd(c, LLVMBuildLoad2(c->b, c->f32, acc[b], ""), p), acc[b]);
    }
    cg_loop_end(c, &lj);
  }
  for (int64_t b = 0; b < k.KW; b++) {
    int64_t lo_j, hi_j;
    col_range(&k, b, &lo_j, &hi_j);
    int64_t edge[2][2] = {{lo_j, hi_j < mid_lo ? hi_j : mid_lo}, {lo_j > mid_hi ? lo_j : mid_hi, hi_j}};
    for (int e = 0; e < 2; e++) {
      if (edge[e][0] >= edge[e][1]) continue;
      LLVMValueRef j = affine(c, cg_loop_begin(c, &lj, edge[e][1] - edge[e][0]), 1, edge[e][0]);
      LLVMValueRef p = cg_fmul(c, cg_load(c, x, cg_iadd(c, xrow, affine(c, j, k.sw, b - k.pw))), cg_load(c, g, cg_iadd(c, grow, j)));
      LLVMBuildStore(c->b, cg_fadd(c, LLVMBuildLoad2(c->b, c->f32, acc[b], ""), p), acc[b]);
      cg_loop_end(c, &lj);
    }
  }
  conv_row_end(c, join);
  cg_loop_end(c, &li);
  cg_loop_end(c, &ln);
  LLVMValueRef wrow = row_of(c, o, k.C, ch, k.KH, a, k.KW);
  for (int64_t b = 0; b < k.KW; b++) cg_store(c, node, affine(c, wrow, 1, b), LLVMBuildLoad2(c->b, c->f32, acc[b], ""));
  cg_loop_end(c, &la);
  cg_loop_end(c, &lc);
  cg_loop_end(c, &lo);
  nncc_free(acc);
}

/* ------------------------------------------- register-blocked fast paths */
/* With stride_w == 1 (and for conv2d_grad_input stride 1), the nests
 * above are replaced by register-blocked ones: the accumulators of a
 * block of output channels x a few 8-float vectors of an output row stay
 * in registers over the whole reduction, every tap being one broadcast
 * weight times one vector of a source row (llvm.fma). The kernel columns
 * and the vectors of a row are unrolled at emission time, so the lanes a
 * vector may read (those of real output columns whose source column is
 * not padding) are a constant range: a full vector is a plain load, a
 * partial one llvm.masked.load with zeros, an empty one no code. Junk
 * lanes past the end of a row are computed on zeros and never stored. */

#define VW 8          /* floats per vector (AVX2) */
#define MAX_ACC 12    /* vector accumulators per block: 16 ymm registers less loads */

static LLVMTypeRef vec_t(Cg *c) { return LLVMVectorType(c->f32, VW); }

static LLVMValueRef elem_ptr(Cg *c, const Node *n, LLVMValueRef idx) {
  LLVMValueRef off = cg_iadd(c, cg_i64(c, c->home[n->id]), LLVMBuildMul(c->b, idx, cg_i64(c, 4), ""));
  return LLVMBuildGEP2(c->b, c->i8, c->slab, &off, 1, "");
}

/* lanes [lo, hi) on */
static LLVMValueRef lane_mask(Cg *c, int64_t lo, int64_t hi) {
  LLVMValueRef bits[VW];
  for (int64_t l = 0; l < VW; l++) bits[l] = LLVMConstInt(c->i1, l >= lo && l < hi, 0);
  return LLVMConstVector(bits, VW);
}

static LLVMValueRef masked_intrinsic(Cg *c, const char *name, LLVMTypeRef *fn_t) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LLVMTypeRef ts[2] = {vec_t(c), c->ptr};
  *fn_t = LLVMIntrinsicGetType(c->ctx, id, ts, 2);
  return LLVMGetIntrinsicDeclaration(c->mod, id, ts, 2);
}

/* n[idx + l] for the lanes l in [lo, hi), zero elsewhere; NULL when empty */
static LLVMValueRef vload(Cg *c, const Node *n, LLVMValueRef idx, int64_t lo, int64_t hi) {
  if (lo < 0) lo = 0;
  if (hi > VW) hi = VW;
  if (lo >= hi) return NULL;
  LLVMValueRef p = elem_ptr(c, n, idx);
  if (lo == 0 && hi == VW) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, vec_t(c), p, "");
    LLVMSetAlignment(v, 4);
    return v;
  }
  LLVMTypeRef ft;
  LLVMValueRef f = masked_intrinsic(c, "llvm.masked.load", &ft);
  LLVMValueRef args[4] = {p, LLVMConstInt(c->i32, 4, 0), lane_mask(c, lo, hi), LLVMConstNull(vec_t(c))};
  return LLVMBuildCall2(c->b, ft, f, args, 4, "");
}

/* n[idx + l] = v[l] for the lanes l in [0, hi) */
static void vstore(Cg *c, const Node *n, LLVMValueRef idx, LLVMValueRef v, int64_t hi) {
  LLVMValueRef p = elem_ptr(c, n, idx);
  if (hi >= VW) {
    LLVMSetAlignment(LLVMBuildStore(c->b, v, p), 4);
    return;
  }
  LLVMTypeRef ft;
  LLVMValueRef f = masked_intrinsic(c, "llvm.masked.store", &ft);
  LLVMValueRef args[4] = {v, p, LLVMConstInt(c->i32, 4, 0), lane_mask(c, 0, hi)};
  LLVMBuildCall2(c->b, ft, f, args, 4, "");
}

static LLVMValueRef splat(Cg *c, LLVMValueRef s) {
  LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetUndef(vec_t(c)), s, LLVMConstInt(c->i32, 0, 0), "");
  return LLVMBuildShuffleVector(c->b, v, LLVMGetUndef(vec_t(c)), LLVMConstNull(LLVMVectorType(c->i32, VW)), "");
}

/* *acc += a * b */
static void fma_into(Cg *c, LLVMValueRef acc, LLVMValueRef a, LLVMValueRef b) {
  LLVMTypeRef vt = vec_t(c);
  unsigned id = LLVMLookupIntrinsicID("llvm.fma", 8);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, &vt, 1);
  LLVMValueRef args[3] = {a, b, LLVMBuildLoad2(c->b, vt, acc, "")};
  LLVMBuildStore(c->b, LLVMBuildCall2(c->b, LLVMIntrinsicGetType(c->ctx, id, &vt, 1), f, args, 3, ""), acc);
}

static bool stored(Cg *c, const Node *n) { return c->home[n->id] >= 0; }

/* The block sizes of a blocked dimension of extent D with at most `most`
 * per block: `full` blocks of `ob` in a loop, then one of `rem`. */
static void blocks(int64_t D, int64_t most, int64_t *ob, int64_t *full, int64_t *rem) {
  if (most < 1) most = 1;
  int64_t nb = (D + most - 1) / most;
  *ob = (D + nb - 1) / nb;
  *full = D / *ob, *rem = D % *ob;
}

/* dst[n, d, row, col] = sum_{s, a, b} src[n, s, row*rs + a*as + roff, col + b*as + coff] w[d*wd + s*ws + a*KW + b]:
 * conv2d (as = 1) and, with the kernel flipped (as = -1), conv2d_grad_input. */
typedef struct Direct {
  const Node *dst, *src, *w;
  int64_t N, D, DH, DW, S, SH, SW, KH, KW;
  int64_t rs, as, roff, coff, wd, ws;
} Direct;

/* Output channels [d0, d0 + ob) x columns [j0, j0 + VW*nv) of one row. */
static void direct_block(Cg *c, const Direct *k, LLVMValueRef n, LLVMValueRef row, LLVMValueRef d0, int64_t ob,
                         int64_t j0, int64_t nv) {
  LLVMValueRef acc[MAX_ACC];
  for (int64_t q = 0; q < ob * nv; q++) {
    acc[q] = entry_alloca(c, vec_t(c));
    LLVMBuildStore(c->b, LLVMConstNull(vec_t(c)), acc[q]);
  }
  int64_t rlo = k->roff + (k->as < 0 ? -(k->KH - 1) : 0), rhi = (k->DH - 1) * k->rs + k->roff + (k->as > 0 ? k->KH - 1 : 0);
  CgLoop ls, la;
  LLVMValueRef s = cg_loop_begin(c, &ls, k->S);
  LLVMValueRef a = cg_loop_begin(c, &la, k->KH);
  LLVMValueRef sr = cg_iadd(c, affine(c, row, k->rs, k->roff), affine(c, a, k->as, 0));
  LLVMBasicBlockRef join = rlo < 0 || rhi >= k->SH ? guard_begin(c, sr, k->SH) : NULL;
  LLVMValueRef srow = row_of(c, n, k->S, s, k->SH, sr, k->SW);
  LLVMValueRef wbase = cg_iadd(c, cg_iadd(c, affine(c, d0, k->wd, 0), affine(c, s, k->ws, 0)), affine(c, a, k->KW, 0));
  for (int64_t b = 0; b < k->KW; b++) {
    LLVMValueRef xv[MAX_ACC];
    for (int64_t v = 0; v < nv; v++) {
      int64_t col = j0 + v * VW + b * k->as + k->coff;  /* the source column of lane 0 */
      int64_t hi = k->DW - j0 - v * VW;
      if (k->SW - col < hi) hi = k->SW - col;
      xv[v] = vload(c, k->src, affine(c, srow, 1, col), -col, hi);
    }
    for (int64_t o = 0; o < ob; o++) {
      LLVMValueRef wv = NULL;
      for (int64_t v = 0; v < nv; v++) {
        if (!xv[v]) continue;
        if (!wv) wv = splat(c, cg_load(c, k->w, affine(c, wbase, 1, o * k->wd + b)));
        fma_into(c, acc[o * nv + v], wv, xv[v]);
      }
    }
  }
  if (join) guard_end(c, join);
  cg_loop_end(c, &la);
  cg_loop_end(c, &ls);
  for (int64_t o = 0; o < ob; o++) {
    LLVMValueRef drow = row_of(c, n, k->D, affine(c, d0, 1, o), k->DH, row, k->DW);
    for (int64_t v = 0; v < nv; v++)
      vstore(c, k->dst, affine(c, drow, 1, j0 + v * VW), LLVMBuildLoad2(c->b, vec_t(c), acc[o * nv + v], ""),
             k->DW - j0 - v * VW);
  }
}

/* A fused conv2d kernel's epilogue over output row `row` of image n, all
 * channels and columns: the row was just computed and is in L1. */
static void fused_row(Cg *c, const CgEpilogue *F, LLVMValueRef n, int64_t D, LLVMValueRef row, int64_t DW) {
  CgLoop ld, lj;
  LLVMValueRef idx[4] = {n, cg_loop_begin(c, &ld, D), row, NULL};
  idx[3] = cg_loop_begin(c, &lj, DW);
  F->at(c, F->F, idx);
  cg_loop_end(c, &lj);
  cg_loop_end(c, &ld);
}

static void emit_direct(Cg *c, const Direct *k, const CgEpilogue *F) {
  int64_t JV = (k->DW + VW - 1) / VW;
  CgLoop ln, lr, lb;
  LLVMValueRef n = cg_parallel_loop_begin(c, &ln, k->N, k->D * k->DH * k->DW * k->S * k->KH * k->KW);
  LLVMValueRef row = cg_loop_begin(c, &lr, k->DH);
  for (int64_t j0v = 0; j0v < JV; j0v += 4) {
    int64_t nv = JV - j0v < 4 ? JV - j0v : 4, ob, full, rem;
    blocks(k->D, MAX_ACC / nv, &ob, &full, &rem);
    if (full > 0) {
      LLVMValueRef d0 = affine(c, cg_loop_begin(c, &lb, full), ob, 0);
      direct_block(c, k, n, row, d0, ob, j0v * VW, nv);
      cg_loop_end(c, &lb);
    }
    if (rem > 0) direct_block(c, k, n, row, cg_i64(c, full * ob), rem, j0v * VW, nv);
  }
  if (F) fused_row(c, F, n, k->D, row, k->DW);
  cg_loop_end(c, &lr);
  cg_loop_end(c, &ln);
}

static bool fast_conv2d(Cg *c, const Node *node, const CgEpilogue *F) {
  const Node *x = node->in[0], *w = node->in[1];
  Conv k = conv_dims(&x->type, &w->type, &node->type, node);
  if (k.sw != 1 || !stored(c, x) || !stored(c, w) || k.KW > 16) return false;
  Direct d = {node, x, w, k.N, k.O, k.OH, k.OW, k.C, k.H, k.W, k.KH, k.KW,
              k.sh, 1, -k.ph, -k.pw, k.C * k.KH * k.KW, k.KH * k.KW};
  emit_direct(c, &d, F);
  return true;
}

/* dx[n, c, r, s] = sum_{o, a, b} g[n, o, r + ph - a, s + pw - b] w[o, c, a, b] (stride 1) */
static bool fast_conv2d_grad_input(Cg *c, const Node *node) {
  const Node *g = node->in[0], *w = node->in[1];
  Conv k = conv_dims(&node->type, &w->type, &g->type, node);
  if (k.sh != 1 || k.sw != 1 || !stored(c, g) || !stored(c, w) || k.KW > 16) return false;
  Direct d = {node, g, w, k.N, k.C, k.H, k.W, k.O, k.OH, k.OW, k.KH, k.KW,
              1, -1, k.ph, k.pw, k.KH * k.KW, k.C * k.KH * k.KW};
  emit_direct(c, &d, NULL);
  return true;
}

/* dw[o0 + o, ch, a, b] for o < ob: per (n, i), each vector of a row of g
 * meets the KW shifted vectors of a row of x; KW x ob vector sums,
 * added across their lanes at the end. */
static void grad_weight_block(Cg *c, const Conv *k, const Node *node, LLVMValueRef ch, LLVMValueRef a,
                              LLVMValueRef o0, int64_t ob) {
  const Node *x = node->in[0], *g = node->in[1];
  LLVMValueRef acc[MAX_ACC];
  for (int64_t q = 0; q < ob * k->KW; q++) {
    acc[q] = entry_alloca(c, vec_t(c));
    LLVMBuildStore(c->b, LLVMConstNull(vec_t(c)), acc[q]);
  }
  CgLoop ln, li;
  LLVMValueRef n = cg_loop_begin(c, &ln, k->N);
  LLVMValueRef i = cg_loop_begin(c, &li, k->OH);
  LLVMBasicBlockRef join;
  LLVMValueRef r = conv_row(c, k, i, a, &join);
  LLVMValueRef xrow = row_of(c, n, k->C, ch, k->H, r, k->W), grow = row_of(c, n, k->O, o0, k->OH, i, k->OW);
  for (int64_t j0 = 0; j0 < k->OW; j0 += VW) {
    LLVMValueRef gv[MAX_ACC];
    for (int64_t o = 0; o < ob; o++) gv[o] = vload(c, g, affine(c, grow, 1, o * k->OH * k->OW + j0), 0, k->OW - j0);
    for (int64_t b = 0; b < k->KW; b++) {
      int64_t col = j0 + b - k->pw, hi = k->OW - j0;
      if (k->W - col < hi) hi = k->W - col;
      LLVMValueRef xv = vload(c, x, affine(c, xrow, 1, col), -col, hi);
      if (!xv) continue;
      for (int64_t o = 0; o < ob; o++) fma_into(c, acc[o * k->KW + b], xv, gv[o]);
    }
  }
  conv_row_end(c, join);
  cg_loop_end(c, &li);
  cg_loop_end(c, &ln);
  unsigned id = LLVMLookupIntrinsicID("llvm.vector.reduce.fadd", 23);
  LLVMTypeRef vt = vec_t(c);
  LLVMValueRef f = LLVMGetIntrinsicDeclaration(c->mod, id, &vt, 1);
  LLVMTypeRef ft = LLVMIntrinsicGetType(c->ctx, id, &vt, 1);
  for (int64_t o = 0; o < ob; o++) {
    LLVMValueRef wrow = row_of(c, affine(c, o0, 1, o), k->C, ch, k->KH, a, k->KW);
    for (int64_t b = 0; b < k->KW; b++) {
      LLVMValueRef args[2] = {cg_f32(c, 0), LLVMBuildLoad2(c->b, vt, acc[o * k->KW + b], "")};
      cg_store(c, node, affine(c, wrow, 1, b), cg_fmf(LLVMBuildCall2(c->b, ft, f, args, 2, "")));
    }
  }
}

static bool fast_conv2d_grad_weight(Cg *c, const Node *node) {
  const Node *x = node->in[0], *g = node->in[1];
  Conv k = conv_dims(&x->type, &node->type, &g->type, node);
  if (k.sw != 1 || !stored(c, x) || !stored(c, g) || k.KW > MAX_ACC || k.OW > 8 * VW) return false;
  int64_t ob, full, rem;
  blocks(k.O, MAX_ACC / k.KW, &ob, &full, &rem);
  /* the tasks: (input channel, kernel row) pairs, each a slice of dw */
  CgLoop lca, lo;
  LLVMValueRef ca = cg_parallel_loop_begin(c, &lca, k.C * k.KH, k.O * k.KW * k.N * k.OH * k.OW);
  LLVMValueRef ch = LLVMBuildSDiv(c->b, ca, cg_i64(c, k.KH), ""), a = LLVMBuildSRem(c->b, ca, cg_i64(c, k.KH), "");
  if (full > 0) {
    LLVMValueRef o0 = affine(c, cg_loop_begin(c, &lo, full), ob, 0);
    grad_weight_block(c, &k, node, ch, a, o0, ob);
    cg_loop_end(c, &lo);
  }
  if (rem > 0) grad_weight_block(c, &k, node, ch, a, cg_i64(c, full * ob), rem);
  cg_loop_end(c, &lca);
  return true;
}

/* -------------------------------------------------------------- pooling */

/* The window geometry of the un-pooled side x [N,C,H,W] and the pooled
 * side [N,C,OH,OW] (interp.c's Pool); no padding, floor mode. */
typedef struct Pool {
  int64_t NC, H, W, OH, OW, kh, kw, sh, sw;
} Pool;

static Pool pool_dims(const Type *big, const Type *small, const Node *n) {
  Pool p = {big->dim[0] * big->dim[1], big->dim[2], big->dim[3], small->dim[2], small->dim[3],
            n->attr[0].list[0], n->attr[0].list[1], n->attr[1].list[0], n->attr[1].list[1]};
  return p;
}

/* v replaces the running maximum m: v > m, or v is the first NaN */
static LLVMValueRef beats(Cg *c, LLVMValueRef v, LLVMValueRef m) {
  return LLVMBuildAnd(c->b, LLVMBuildFCmp(c->b, LLVMRealUGT, v, m, ""),
                      LLVMBuildFCmp(c->b, LLVMRealORD, m, m, ""), "");
}

/* The x offset of window (q, i, j)'s first maximum, row-major in the window. */
static LLVMValueRef window_argmax(Cg *c, const Pool *p, const Node *x, LLVMValueRef q, LLVMValueRef i,
                                  LLVMValueRef j) {
  LLVMValueRef best = entry_alloca(c, c->f32), at = entry_alloca(c, c->i64);
  LLVMValueRef start = cg_iadd(c, affine(c, cg_iadd(c, affine(c, q, p->H, 0), affine(c, i, p->sh, 0)), p->W, 0),
                            affine(c, j, p->sw, 0));
  LLVMBuildStore(c->b, cg_load(c, x, start), best);
  LLVMBuildStore(c->b, start, at);
  CgLoop la, lb;
  LLVMValueRef a = cg_loop_begin(c, &la, p->kh);
  LLVMValueRef row = cg_iadd(c, start, affine(c, a, p->W, 0));
  LLVMValueRef b = cg_loop_begin(c, &lb, p->kw);
  LLVMValueRef here = cg_iadd(c, row, b);
  LLVMValueRef v = cg_load(c, x, here), m = LLVMBuildLoad2(c->b, c->f32, best, "");
  LLVMValueRef better = beats(c, v, m);
  LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, v, m, ""), best);
  LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, here, LLVMBuildLoad2(c->b, c->i64, at, ""), ""), at);
  cg_loop_end(c, &lb);
  cg_loop_end(c, &la);
  return LLVMBuildLoad2(c->b, c->i64, at, "");
}

/* max_pool2d and avg_pool2d, row at a time: per output row, the window
 * elements (a, b) folded into it in row-major order, j innermost. The
 * fold keeps the first maximum, so the value is that of window_argmax. */
static void emit_pool(Cg *c, const Node *node) {
  const Node *x = node->in[0];
  Pool p = pool_dims(&x->type, &node->type, node);
  bool is_max = node->op == OP_MAX_POOL2D;
  CgLoop lq, li, la, lb, lj;
  LLVMValueRef q = cg_parallel_loop_begin(c, &lq, p.NC, p.OH * p.OW * p.kh * p.kw);
  LLVMValueRef i = cg_loop_begin(c, &li, p.OH);
  LLVMValueRef yrow = affine(c, cg_iadd(c, affine(c, q, p.OH, 0), i), p.OW, 0);
  LLVMValueRef xrow0 = affine(c, cg_iadd(c, affine(c, q, p.H, 0), affine(c, i, p.sh, 0)), p.W, 0);
  LLVMValueRef j = cg_loop_begin(c, &lj, p.OW);
  cg_store(c, node, cg_iadd(c, yrow, j), is_max ? cg_load(c, x, cg_iadd(c, xrow0, affine(c, j, p.sw, 0))) : cg_f32(c, 0));
  cg_loop_end(c, &lj);
  LLVMValueRef a = cg_loop_begin(c, &la, p.kh);
  LLVMValueRef b = cg_loop_begin(c, &lb, p.kw);
  LLVMValueRef xrow = cg_iadd(c, cg_iadd(c, xrow0, affine(c, a, p.W, 0)), b);
  j = cg_loop_begin(c, &lj, p.OW);
  LLVMValueRef at = cg_iadd(c, yrow, j), v = cg_load(c, x, cg_iadd(c, xrow, affine(c, j, p.sw, 0)));
  LLVMValueRef m = cg_load(c, node, at);
  cg_store(c, node, at, is_max ? LLVMBuildSelect(c->b, beats(c, v, m), v, m, "") : cg_fadd(c, m, v));
  cg_loop_end(c, &lj);
  cg_loop_end(c, &lb);
  cg_loop_end(c, &la);
  if (!is_max) {
    j = cg_loop_begin(c, &lj, p.OW);
    at = cg_iadd(c, yrow, j);
    cg_store(c, node, at, cg_fdiv(c, cg_load(c, node, at), cg_f32(c, (double)(p.kh * p.kw))));
    cg_loop_end(c, &lj);
  }
  cg_loop_end(c, &li);
  cg_loop_end(c, &lq);
}

/* max_pool2d_grad(x, g) -> dx: g to each window's first max;
 * max_pool2d_select(x, h) -> y: h at each window's first max. */
static void emit_max_pool_route(Cg *c, const Node *node) {
  const Node *x = node->in[0], *h = node->in[1];
  bool grad = node->op == OP_MAX_POOL2D_GRAD;
  Pool p = pool_dims(&x->type, grad ? &h->type : &node->type, node);
  CgLoop lq, li, lj;
  LLVMValueRef q = cg_parallel_loop_begin(c, &lq, p.NC, p.OH * p.OW * p.kh * p.kw);
  if (grad) zero_slice(c, node, affine(c, q, p.H * p.W, 0), p.H * p.W);
  LLVMValueRef i = cg_loop_begin(c, &li, p.OH);
  LLVMValueRef j = cg_loop_begin(c, &lj, p.OW);
  LLVMValueRef o = cg_iadd(c, affine(c, cg_iadd(c, affine(c, q, p.OH, 0), i), p.OW, 0), j);
  LLVMValueRef at = window_argmax(c, &p, x, q, i, j);
  if (grad) accumulate(c, node, at, cg_load(c, h, o));
  else cg_store(c, node, o, cg_load(c, h, at));
  cg_loop_end(c, &lj);
  cg_loop_end(c, &li);
  cg_loop_end(c, &lq);
}

/* avg_pool2d_grad(g) -> dx: g / (kh kw) added over each window; per
 * window element (a, b), a strided row of dx gets a row of g. */
static void emit_avg_pool_grad(Cg *c, const Node *node) {
  const Node *g = node->in[0];
  Pool p = pool_dims(&node->type, &g->type, node);
  CgLoop lq, li, la, lb, lj;
  LLVMValueRef q = cg_parallel_loop_begin(c, &lq, p.NC, p.OH * p.OW * p.kh * p.kw);
  zero_slice(c, node, affine(c, q, p.H * p.W, 0), p.H * p.W);
  LLVMValueRef i = cg_loop_begin(c, &li, p.OH);
  LLVMValueRef grow = affine(c, cg_iadd(c, affine(c, q, p.OH, 0), i), p.OW, 0);
  LLVMValueRef a = cg_loop_begin(c, &la, p.kh);
  LLVMValueRef b = cg_loop_begin(c, &lb, p.kw);
  LLVMValueRef xrow = cg_iadd(c, affine(c, cg_iadd(c, affine(c, q, p.H, 0), cg_iadd(c, affine(c, i, p.sh, 0), a)), p.W, 0), b);
  LLVMValueRef j = cg_loop_begin(c, &lj, p.OW);
  LLVMValueRef share = cg_fdiv(c, cg_load(c, g, cg_iadd(c, grow, j)), cg_f32(c, (double)(p.kh * p.kw)));
  accumulate(c, node, cg_iadd(c, xrow, affine(c, j, p.sw, 0)), share);
  cg_loop_end(c, &lj);
  cg_loop_end(c, &lb);
  cg_loop_end(c, &la);
  cg_loop_end(c, &li);
  cg_loop_end(c, &lq);
}

/* Non-overlapping max pooling (kernel == stride, kw <= VW), vectorized
 * along the output row: a block of VW windows of one output row reads
 * its kh rows of x as kw contiguous vectors each, and shuffles split them
 * into the kw vectors of window columns b (lane l: column l*kw + b).
 * The running maximum and the index a*kw + b of where it is are vectors,
 * folded in interp.c's row-major window order with `beats`, so ties and
 * NaNs go where window_argmax sends them. max_pool2d_grad then writes
 * every element of dx once, in the same nest: g where the index matches,
 * 0 elsewhere, shuffled back into rows; the rows and columns past the
 * last window (floor mode) get zeros. No zero fill and no scalar window
 * loops: bench/lenet.nn's pools take 1/6 of their time in train_step
 * (max_pool2d_grad 9x less), 1/2.6 in forward. max_pool2d_select, rare
 * (second derivatives), folds h's values alongside. */

/* base, with each lane l whose from[l] lies in source vector `want`
 * (from[l] / VW == want; -1: none) taken from lane from[l] % VW of src */
static LLVMValueRef shuffle_in(Cg *c, LLVMValueRef base, LLVMValueRef src, const int64_t *from, int64_t want) {
  LLVMValueRef m[VW];
  bool any = false;
  for (int64_t l = 0; l < VW; l++) {
    bool take = from[l] >= 0 && from[l] / VW == want;
    any |= take;
    m[l] = LLVMConstInt(c->i32, (unsigned long long)(take ? VW + from[l] % VW : l), 0);
  }
  return any ? LLVMBuildShuffleVector(c->b, base, src, LLVMConstVector(m, VW), "") : base;
}

/* window column b of a block of nout windows: lane l = element l*kw + b
 * of the row vectors v[0..nvec) (lanes >= nout zero) */
static LLVMValueRef split_col(Cg *c, LLVMValueRef *v, int64_t nvec, int64_t kw, int64_t b, int64_t nout) {
  int64_t from[VW];
  for (int64_t l = 0; l < VW; l++) from[l] = l < nout ? l * kw + b : -1;
  LLVMValueRef r = LLVMConstNull(vec_t(c));
  for (int64_t s = 0; s < nvec; s++) r = shuffle_in(c, r, v[s], from, s);
  return r;
}

/* the inverse: row vector s, lane m = lane e/kw of u[e % kw], e = s*VW + m */
static LLVMValueRef merge_cols(Cg *c, LLVMValueRef *u, int64_t kw, int64_t s, int64_t nout) {
  LLVMValueRef r = LLVMConstNull(vec_t(c));
  for (int64_t b = 0; b < kw; b++) {
    int64_t from[VW];
    for (int64_t m = 0; m < VW; m++) {
      int64_t e = s * VW + m;
      from[m] = e % kw == b && e / kw < nout ? e / kw : -1;
    }
    r = shuffle_in(c, r, u[b], from, 0);
  }
  return r;
}

static LLVMValueRef splat_i32(Cg *c, LLVMValueRef s) {
  LLVMTypeRef vt = LLVMVectorType(c->i32, VW);
  LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetUndef(vt), s, LLVMConstInt(c->i32, 0, 0), "");
  return LLVMBuildShuffleVector(c->b, v, LLVMGetUndef(vt), LLVMConstNull(vt), "");
}

/* The windows [j0, j0 + nout) of output row i of plane q. */
static void max_pool_block(Cg *c, const Pool *p, const Node *node, LLVMValueRef q, LLVMValueRef i, LLVMValueRef j0,
                           int64_t nout) {
  const Node *x = node->in[0], *h = node->n_in > 1 ? node->in[1] : NULL;
  bool grad = node->op == OP_MAX_POOL2D_GRAD, sel = node->op == OP_MAX_POOL2D_SELECT;
  int64_t kw = p->kw, n = nout * kw, nvec = (n + VW - 1) / VW;
  LLVMTypeRef it = LLVMVectorType(c->i32, VW);
  LLVMValueRef o = cg_iadd(c, affine(c, cg_iadd(c, affine(c, q, p->OH, 0), i), p->OW, 0), j0);
  LLVMValueRef x0 = cg_iadd(c, affine(c, cg_iadd(c, affine(c, q, p->H, 0), affine(c, i, p->kh, 0)), p->W, 0),
                            affine(c, j0, kw, 0));
  LLVMValueRef best = entry_alloca(c, vec_t(c)), at = entry_alloca(c, it), hv = sel ? entry_alloca(c, vec_t(c)) : NULL;
  LLVMValueRef xv[VW], hr[VW];
  for (int64_t s = 0; s < nvec; s++) xv[s] = vload(c, x, affine(c, x0, 1, s * VW), 0, n - s * VW);
  LLVMBuildStore(c->b, split_col(c, xv, nvec, kw, 0, nout), best);
  LLVMBuildStore(c->b, LLVMConstNull(it), at);
  if (sel) {
    for (int64_t s = 0; s < nvec; s++) hr[s] = vload(c, h, affine(c, x0, 1, s * VW), 0, n - s * VW);
    LLVMBuildStore(c->b, split_col(c, hr, nvec, kw, 0, nout), hv);
  }
  /* the fold; (0, 0) against itself changes nothing */
  CgLoop la;
  LLVMValueRef a = cg_loop_begin(c, &la, p->kh);
  LLVMValueRef row = cg_iadd(c, x0, affine(c, a, p->W, 0));
  LLVMValueRef a_kw = LLVMBuildTrunc(c->b, affine(c, a, kw, 0), c->i32, "");
  for (int64_t s = 0; s < nvec; s++) xv[s] = vload(c, x, affine(c, row, 1, s * VW), 0, n - s * VW);
  if (sel)
    for (int64_t s = 0; s < nvec; s++) hr[s] = vload(c, h, affine(c, row, 1, s * VW), 0, n - s * VW);
  for (int64_t b = 0; b < kw; b++) {
    LLVMValueRef v = split_col(c, xv, nvec, kw, b, nout), m = LLVMBuildLoad2(c->b, vec_t(c), best, "");
    LLVMValueRef better = beats(c, v, m);
    LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, v, m, ""), best);
    LLVMValueRef idx = splat_i32(c, LLVMBuildAdd(c->b, a_kw, LLVMConstInt(c->i32, (unsigned long long)b, 0), ""));
    LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, idx, LLVMBuildLoad2(c->b, it, at, ""), ""), at);
    if (sel) {
      LLVMValueRef hb = split_col(c, hr, nvec, kw, b, nout);
      LLVMBuildStore(c->b, LLVMBuildSelect(c->b, better, hb, LLVMBuildLoad2(c->b, vec_t(c), hv, ""), ""), hv);
    }
  }
  cg_loop_end(c, &la);
  if (!grad) {
    vstore(c, node, o, LLVMBuildLoad2(c->b, vec_t(c), sel ? hv : best, ""), nout);
    return;
  }
  /* dx: g at the maximum, 0 elsewhere, row by row */
  LLVMValueRef gv = vload(c, h, o, 0, nout), idx = LLVMBuildLoad2(c->b, it, at, "");
  a = cg_loop_begin(c, &la, p->kh);
  row = cg_iadd(c, x0, affine(c, a, p->W, 0));
  a_kw = LLVMBuildTrunc(c->b, affine(c, a, kw, 0), c->i32, "");
  LLVMValueRef u[VW];
  for (int64_t b = 0; b < kw; b++) {
    LLVMValueRef here = splat_i32(c, LLVMBuildAdd(c->b, a_kw, LLVMConstInt(c->i32, (unsigned long long)b, 0), ""));
    u[b] = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, idx, here, ""), gv, LLVMConstNull(vec_t(c)), "");
  }
  for (int64_t s = 0; s < nvec; s++) vstore(c, node, affine(c, row, 1, s * VW), merge_cols(c, u, kw, s, nout), n - s * VW);
  cg_loop_end(c, &la);
}

static bool fast_max_pool(Cg *c, const Node *node) {
  const Node *x = node->in[0], *h = node->n_in > 1 ? node->in[1] : NULL;
  bool grad = node->op == OP_MAX_POOL2D_GRAD;
  Pool p = pool_dims(&x->type, grad ? &h->type : &node->type, node);
  if (p.kh != p.sh || p.kw != p.sw || p.kw > VW || !stored(c, x) || (h && !stored(c, h))) return false;
  int64_t full = p.OW / VW, rem = p.OW % VW;
  CgLoop lq, li, lj, la, lz;
  LLVMValueRef q = cg_parallel_loop_begin(c, &lq, p.NC, p.OH * p.OW * p.kh * p.kw);
  LLVMValueRef i = cg_loop_begin(c, &li, p.OH);
  if (full > 0) {
    LLVMValueRef j0 = affine(c, cg_loop_begin(c, &lj, full), VW, 0);
    max_pool_block(c, &p, node, q, i, j0, VW);
    cg_loop_end(c, &lj);
  }
  if (rem > 0) max_pool_block(c, &p, node, q, i, cg_i64(c, full * VW), rem);
  if (grad && p.W > p.OW * p.kw) {  /* the columns past the last window */
    LLVMValueRef a = cg_loop_begin(c, &la, p.kh);
    LLVMValueRef row = affine(c, cg_iadd(c, affine(c, q, p.H, 0), cg_iadd(c, affine(c, i, p.kh, 0), a)), p.W, 0);
    for (int64_t col = p.OW * p.kw; col < p.W; col++) cg_store(c, node, affine(c, row, 1, col), cg_f32(c, 0));
    cg_loop_end(c, &la);
  }
  cg_loop_end(c, &li);
  if (grad && p.H > p.OH * p.kh) {  /* the rows past the last window */
    LLVMValueRef e = cg_loop_begin(c, &lz, (p.H - p.OH * p.kh) * p.W);
    cg_store(c, node, cg_iadd(c, affine(c, q, p.H * p.W, p.OH * p.kh * p.W), e), cg_f32(c, 0));
    cg_loop_end(c, &lz);
  }
  cg_loop_end(c, &lq);
  return true;
}

/* ------------------------------------------------------------------ API */

bool cg_emit_conv(Cg *c, const Node *n) {
  switch (n->op) {
  case OP_CONV2D: if (!fast_conv2d(c, n, NULL)) emit_conv2d(c, n, NULL); return true;
  case OP_CONV2D_GRAD_INPUT: if (!fast_conv2d_grad_input(c, n)) emit_conv2d_grad_input(c, n); return true;
  case OP_CONV2D_GRAD_WEIGHT: if (!fast_conv2d_grad_weight(c, n)) emit_conv2d_grad_weight(c, n); return true;
  case OP_MAX_POOL2D: if (!fast_max_pool(c, n)) emit_pool(c, n); return true;
  case OP_AVG_POOL2D: emit_pool(c, n); return true;
  case OP_MAX_POOL2D_GRAD: case OP_MAX_POOL2D_SELECT: if (!fast_max_pool(c, n)) emit_max_pool_route(c, n); return true;
  case OP_AVG_POOL2D_GRAD: emit_avg_pool_grad(c, n); return true;
  /* not convolution or pooling */
  case OP_VAR: case OP_CONST: case OP_NEG: case OP_EXP: case OP_LOG: case OP_SQRT: case OP_RSQRT:
  case OP_ABS: case OP_SQUARE: case OP_RELU: case OP_LEAKY_RELU: case OP_SIGMOID: case OP_TANH:
  case OP_GELU: case OP_SOFTPLUS: case OP_SIN: case OP_COS: case OP_POW: case OP_CLAMP:
  case OP_ERF: case OP_FLOOR: case OP_STOP_GRADIENT: case OP_CAST: case OP_ADD: case OP_SUB:
  case OP_MUL: case OP_DIV: case OP_MAXIMUM: case OP_MINIMUM: case OP_LT: case OP_LE: case OP_GT:
  case OP_GE: case OP_EQ: case OP_NE: case OP_WHERE: case OP_MATMUL: case OP_SUM: case OP_MEAN:
  case OP_MAX: case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX:
  case OP_LOG_SOFTMAX: case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE:
  case OP_CONCAT: case OP_ONE_HOT: case OP_GATHER: case OP_BATCH_NORM: case OP_LAYER_NORM:
  case OP_DROPOUT: case OP_MSE: case OP_HUBER: case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL:
  case OP_UNSLICE: case OP_SCATTER_ADD: case OP_DROPOUT_MASK: case OP_ASSIGN: case OP_UPDATE:
  case OP_ELU: case OP_SELU: case OP_SILU: case OP_HARDTANH: case OP_COUNT:
    return false;
  }
  return false;
}

void cg_emit_conv_fused(Cg *c, const Node *n, const CgEpilogue *F) {
  if (!fast_conv2d(c, n, F)) emit_conv2d(c, n, F);
}
