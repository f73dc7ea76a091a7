/* scalar.c - what every elementwise op computes on one element: the one
 * statement of each op's arithmetic, shared by constant folding
 * (passes/simplify.c) and the reference evaluator (eval/interp.c).
 * Generated code (codegen/emit.c) computes the same in f32; where LLVM
 * has no exact counterpart the NaN rules below are the ones it follows.
 *
 * Values are doubles; an f32 op is evaluated in double and the caller
 * rounds. The switch names every op, so a new op in ops.def that is
 * elementwise but has no arithmetic here fails to compile (-Wswitch). */
#include "ir/ir.h"

#include <math.h>

/* The NaN rule, once: maximum and minimum propagate NaN from either side
 * (NumPy and torch.maximum; C's fmax would drop it). */
static double nan_max(double a, double b) { return isnan(a) || isnan(b) ? NAN : a > b ? a : b; }
static double nan_min(double a, double b) { return isnan(a) || isnan(b) ? NAN : a < b ? a : b; }

static double sigmoid(double a) { return a >= 0 ? 1 / (1 + exp(-a)) : exp(a) / (1 + exp(a)); }

/* torch.clamp: NaN stays NaN (fmin/fmax would drop it). */
static double clamp(double a, double lo, double hi) { return isnan(a) ? a : a < lo ? lo : a > hi ? hi : a; }

bool ir_scalar(Op op, const Attr *at, const double *x, double *out) {
  double a = x[0];
  switch (op) {
  case OP_NEG: *out = -a; return true;
  case OP_EXP: *out = exp(a); return true;
  case OP_LOG: *out = log(a); return true;
  case OP_SQRT: *out = sqrt(a); return true;
  case OP_RSQRT: *out = 1 / sqrt(a); return true;
  case OP_ABS: *out = fabs(a); return true;
  case OP_SQUARE: *out = a * a; return true;
  case OP_RELU: *out = a > 0 || isnan(a) ? a : 0; return true;  /* NaN stays NaN, as torch.relu */
  case OP_LEAKY_RELU: *out = a > 0 ? a : at[0].f * a; return true;
  case OP_SIGMOID: *out = sigmoid(a); return true;
  case OP_TANH: *out = tanh(a); return true;
  case OP_GELU: *out = 0.5 * a * (1 + erf(a / sqrt(2.0))); return true;
  case OP_SOFTPLUS: *out = a > 20 ? a : log1p(exp(a)); return true;
  case OP_ELU: *out = a > 0 ? a : at[0].f * expm1(a); return true;  /* torch: alpha = 1 */
  case OP_SELU: *out = IR_SELU_SCALE * (a > 0 ? a : IR_SELU_ALPHA * expm1(a)); return true;
  case OP_SILU: *out = a * sigmoid(a); return true;
  case OP_HARDTANH: *out = clamp(a, at[0].f, at[1].f); return true;  /* torch: -1, 1 */
  case OP_SIN: *out = sin(a); return true;
  case OP_COS: *out = cos(a); return true;
  case OP_POW: *out = pow(a, at[0].f); return true;
  case OP_CLAMP: *out = clamp(a, at[0].f, at[1].f); return true;
  case OP_ERF: *out = erf(a); return true;
  case OP_FLOOR: *out = floor(a); return true;
  case OP_STOP_GRADIENT: *out = a; return true;
  case OP_ADD: *out = a + x[1]; return true;
  case OP_SUB: *out = a - x[1]; return true;
  case OP_MUL: *out = a * x[1]; return true;
  case OP_DIV: *out = a / x[1]; return true;  /* x/0 is inf or NaN, as at run time */
  case OP_MAXIMUM: *out = nan_max(a, x[1]); return true;
  case OP_MINIMUM: *out = nan_min(a, x[1]); return true;
  case OP_LT: *out = a < x[1]; return true;
  case OP_LE: *out = a <= x[1]; return true;
  case OP_GT: *out = a > x[1]; return true;
  case OP_GE: *out = a >= x[1]; return true;
  case OP_EQ: *out = a == x[1]; return true;
  case OP_NE: *out = a != x[1]; return true;
  case OP_WHERE: *out = a != 0 ? x[1] : x[2]; return true;
  /* a cast's value depends on the dtypes, which the caller knows */
  case OP_CAST:
  /* not elementwise */
  case OP_VAR: case OP_CONST: case OP_MATMUL: case OP_SUM: case OP_MEAN: case OP_MAX:
  case OP_MIN: case OP_LOGSUMEXP: case OP_ARGMAX: case OP_SOFTMAX: case OP_LOG_SOFTMAX:
  case OP_RESHAPE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_SLICE: case OP_CONCAT:
  case OP_ONE_HOT: case OP_GATHER: case OP_CONV2D: case OP_MAX_POOL2D: case OP_AVG_POOL2D:
  case OP_BATCH_NORM: case OP_LAYER_NORM: case OP_DROPOUT: case OP_MSE: case OP_HUBER:
  case OP_CROSS_ENTROPY: case OP_BCE: case OP_NLL: case OP_UNSLICE: case OP_SCATTER_ADD:
  case OP_CONV2D_GRAD_INPUT: case OP_CONV2D_GRAD_WEIGHT: case OP_MAX_POOL2D_GRAD:
  case OP_MAX_POOL2D_SELECT: case OP_AVG_POOL2D_GRAD: case OP_DROPOUT_MASK: case OP_ASSIGN:
  case OP_UPDATE: case OP_COUNT:
    return false;
  }
  return false;
}
