/* emit_math.h - internal to codegen/: log, log1p and erf of one float as
 * inline LLVM IR (no libm call), so that the loops around them vectorize.
 * Each takes and returns a scalar `float` value at c's insertion point. */
#ifndef NNCC_CODEGEN_EMIT_MATH_H
#define NNCC_CODEGEN_EMIT_MATH_H

#include "codegen/emit_prim.h"

/* Cephes logf, 1.6 ulp; log(0) = -inf, log(x < 0) = NaN, log(+inf) =
 * +inf, denormal x as accurate as normal x. */
LLVMValueRef cg_log(Cg *c, LLVMValueRef x);
/* log(1 + x) without the cancellation for small |x|, 2.9 ulp. */
LLVMValueRef cg_log1p(Cg *c, LLVMValueRef x);
/* erf as a rational function on [-4, 4] (Eigen's float erf), 3.8e-7
 * absolute; erf(+-inf) = +-1. */
LLVMValueRef cg_erf(Cg *c, LLVMValueRef x);

#endif
