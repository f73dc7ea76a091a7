/* emit_math.c - log, log1p and erf as inline LLVM IR. A call to libm's
 * logf stops LLVM's loop vectorizer; straight-line float and i32 code
 * with selects for the special cases vectorizes like emit.c's exp.
 * Each function works on one float; the loop around it is widened.
 * Accuracy against libm in double: tests/codegen/test_math.c. */
#include "codegen/emit_math.h"

#include <math.h>

static LLVMValueRef ci32(Cg *c, int32_t v) { return LLVMConstInt(c->i32, (unsigned long long)(int64_t)v, 1); }
static LLVMValueRef fcmp(Cg *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildFCmp(c->b, p, a, b, "");
}
static LLVMValueRef sel(Cg *c, LLVMValueRef k, LLVMValueRef a, LLVMValueRef b) {
  return LLVMBuildSelect(c->b, k, a, b, "");
}
static LLVMValueRef as_i32(Cg *c, LLVMValueRef f) { return LLVMBuildBitCast(c->b, f, c->i32, ""); }
static LLVMValueRef as_f32(Cg *c, LLVMValueRef i) { return LLVMBuildBitCast(c->b, i, c->f32, ""); }

/* p[0] x^(n-1) + ... + p[n-1], Horner */
static LLVMValueRef poly(Cg *c, LLVMValueRef x, const double *p, int n) {
  LLVMValueRef y = cg_f32(c, p[0]);
  for (int i = 1; i < n; i++) y = cg_fadd(c, cg_fmul(c, y, x), cg_f32(c, p[i]));
  return y;
}

/* Cephes logf: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log(m) = f -
 * f^2/2 + f^3 P(f) with f = m - 1 (exact), and e ln 2 added in two parts
 * so that the large term carries no rounding error. */
LLVMValueRef cg_log(Cg *c, LLVMValueRef x) {
  /* a denormal has too few mantissa bits for the split: scale it up */
  LLVMValueRef denormal = fcmp(c, LLVMRealOLT, x, cg_f32(c, 0x1p-126));
  LLVMValueRef xs = sel(c, denormal, cg_fmul(c, x, cg_f32(c, 0x1p23)), x);
  LLVMValueRef bias = sel(c, denormal, ci32(c, 126 + 23), ci32(c, 126));
  LLVMValueRef bits = as_i32(c, xs);
  /* frexp: m in [1/2, 1) */
  LLVMValueRef e = LLVMBuildSub(c->b, LLVMBuildLShr(c->b, bits, ci32(c, 23), ""), bias, "");
  LLVMValueRef m = as_f32(c, LLVMBuildOr(c->b, LLVMBuildAnd(c->b, bits, ci32(c, 0x007fffff), ""),
                                         ci32(c, 0x3f000000), ""));
  LLVMValueRef below = fcmp(c, LLVMRealOLT, m, cg_f32(c, M_SQRT1_2));
  e = LLVMBuildSub(c->b, e, LLVMBuildZExt(c->b, below, c->i32, ""), "");
  LLVMValueRef f = cg_fsub(c, sel(c, below, cg_fmul(c, m, cg_f32(c, 2)), m), cg_f32(c, 1));
  LLVMValueRef ef = LLVMBuildSIToFP(c->b, e, c->f32, "");

  static const double p[] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                             -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                             2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
  LLVMValueRef z = cg_fmul(c, f, f);
  LLVMValueRef y = cg_fmul(c, cg_fmul(c, poly(c, f, p, 9), f), z);
  y = cg_fadd(c, y, cg_fmul(c, ef, cg_f32(c, -2.12194440e-4)));
  y = cg_fsub(c, y, cg_fmul(c, z, cg_f32(c, 0.5)));
  LLVMValueRef r = cg_fadd(c, cg_fadd(c, f, y), cg_fmul(c, ef, cg_f32(c, 0.693359375)));

  r = sel(c, fcmp(c, LLVMRealOEQ, x, cg_f32(c, INFINITY)), x, r);
  r = sel(c, fcmp(c, LLVMRealOLT, x, cg_f32(c, 0)), cg_f32(c, NAN), r);
  r = sel(c, fcmp(c, LLVMRealOEQ, x, cg_f32(c, 0)), cg_f32(c, -INFINITY), r);
  return sel(c, fcmp(c, LLVMRealUNO, x, x), x, r);
}

/* log(u) x / (u - 1) with u = 1 + x rounded: the quotient corrects the
 * rounding of u (Goldberg, "What every computer scientist should know
 * about floating-point arithmetic", thm. 4). Built without fast-math
 * flags: with reassoc LLVM folds (1 + x) - 1 to x, and turns
 * log(u) (x / d) into (log(u) x) / d, which overflows for x > 2^121. */
LLVMValueRef cg_log1p(Cg *c, LLVMValueRef x) {
  LLVMValueRef u = LLVMBuildFAdd(c->b, cg_f32(c, 1), x, "");
  LLVMValueRef d = LLVMBuildFSub(c->b, u, cg_f32(c, 1), "");
  LLVMValueRef r = LLVMBuildFMul(c->b, cg_log(c, u), LLVMBuildFDiv(c->b, x, d, ""), "");
  r = sel(c, fcmp(c, LLVMRealOEQ, d, cg_f32(c, 0)), x, r);         /* |x| < ulp(1)/2 */
  return sel(c, fcmp(c, LLVMRealOEQ, x, cg_f32(c, INFINITY)), x, r);  /* not inf/inf */
}

/* Eigen's generic_fast_erf_float: x P(x^2) / Q(x^2) on [-4, 4], where
 * erf is 1 to float precision outside. NaN passes through the clamp. */
LLVMValueRef cg_erf(Cg *c, LLVMValueRef x) {
  LLVMValueRef xc = sel(c, fcmp(c, LLVMRealOGT, x, cg_f32(c, 4)), cg_f32(c, 4), x);
  xc = sel(c, fcmp(c, LLVMRealOLT, xc, cg_f32(c, -4)), cg_f32(c, -4), xc);
  static const double alpha[] = {-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                                 -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                                 -1.60960333262415e-02};
  static const double beta[] = {-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                                -7.37332916720468e-03, -1.42647390514189e-02};
  LLVMValueRef x2 = cg_fmul(c, xc, xc);
  LLVMValueRef p = cg_fmul(c, xc, poly(c, x2, alpha, 7));
  return cg_fdiv(c, p, poly(c, x2, beta, 5));
}
