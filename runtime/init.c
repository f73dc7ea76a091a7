/* init.c - parameter initializers: PyTorch's formulas, with fan-in and
 * fan-out taken from nncc's layouts (docs/design.md), each element drawn
 * from the counter-based RNG at its own index, so an initial value depends
 * only on (seed, tensor name, element) and not on fill order. */
#include "runtime/runtime.h"

#include <math.h>

/* Rank 2 is [in, out] (used as x @ w); rank >= 3 is [Cout, Cin, k...];
 * rank 1 uses its one dim for both. A scalar has fans 1 (PyTorch refuses
 * fewer than two dims; a scalar param still needs something). */
void rt_init_fans(int rank, const int64_t *shape, double *fan_in, double *fan_out) {
  double in = 1, out = 1;
  if (rank == 1) {
    in = out = (double)shape[0];
  } else if (rank == 2) {
    in = (double)shape[0];
    out = (double)shape[1];
  } else if (rank >= 3) {
    double field = 1;
    for (int i = 2; i < rank; i++) field *= (double)shape[i];
    in = (double)shape[1] * field;
    out = (double)shape[0] * field;
  }
  if (fan_in) *fan_in = in;
  if (fan_out) *fan_out = out;
}

double rt_init_value(int kind, const double args[2], double fan_in, double fan_out,
                     uint64_t seed, uint64_t stream, uint64_t k) {
  double a0 = args ? args[0] : 0, a1 = args ? args[1] : 0;
  double bound, std;
  switch (kind) {
  case RT_INIT_ONES: return 1.0;
  case RT_INIT_CONSTANT: return a0;
  case RT_INIT_UNIFORM: return a0 + (a1 - a0) * rt_rand_uniform(seed, stream, k);
  case RT_INIT_NORMAL: return a0 + a1 * rt_rand_normal(seed, stream, k);
  case RT_INIT_XAVIER_UNIFORM:
    bound = sqrt(6.0 / (fan_in + fan_out));
    return -bound + 2.0 * bound * rt_rand_uniform(seed, stream, k);
  case RT_INIT_XAVIER_NORMAL:
    std = sqrt(2.0 / (fan_in + fan_out));
    return std * rt_rand_normal(seed, stream, k);
  case RT_INIT_HE_UNIFORM:
    bound = sqrt(6.0 / fan_in);
    return -bound + 2.0 * bound * rt_rand_uniform(seed, stream, k);
  case RT_INIT_HE_NORMAL:
    std = sqrt(2.0 / fan_in);
    return std * rt_rand_normal(seed, stream, k);
  default: return 0.0;  /* none, zeros */
  }
}

void rt_init_fill_f32(int kind, const double args[2], int rank, const int64_t *shape,
                      uint64_t seed, uint64_t stream, float *out) {
  double fan_in, fan_out;
  rt_init_fans(rank, shape, &fan_in, &fan_out);
  int64_t numel = 1;
  for (int i = 0; i < rank; i++) numel *= shape[i];
  for (int64_t k = 0; k < numel; k++)
    out[k] = (float)rt_init_value(kind, args, fan_in, fan_out, seed, stream, (uint64_t)k);
}
