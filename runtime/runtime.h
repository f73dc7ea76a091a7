/* runtime.h - what compiled models, the reference evaluator and the CLI
 * need at run time and share so that they agree bit for bit: the
 * counter-based RNG, parameter initializers, dropout masks, synthetic
 * data sets. Knows nothing of the compiler (no IR types here).
 *
 * Every random number is a pure function of (seed, stream, counter): no
 * hidden state, so results do not depend on thread count or call order. */
#ifndef NNCC_RUNTIME_H
#define NNCC_RUNTIME_H

#include <stdbool.h>
#include <stdint.h>

/* ------------------------------------------------------------------ rng */

/* The k-th 64-bit random word of stream `stream` under `seed`. */
uint64_t rt_rand_u64(uint64_t seed, uint64_t stream, uint64_t k);
/* Uniform in [0, 1) with 53 random bits. */
double rt_rand_uniform(uint64_t seed, uint64_t stream, uint64_t k);
/* Standard normal (Box-Muller over words 2k and 2k+1). */
double rt_rand_normal(uint64_t seed, uint64_t stream, uint64_t k);
/* A stable stream id for a tensor name (FNV-1a), so a tensor's initial
 * values do not change when other tensors are added or reordered. */
uint64_t rt_stream_of(const char *name);

/* --------------------------------------------------------- initializers */

/* runtime/init_kinds.def, which ir/ir.h's InitKind comes from too. */
typedef enum rt_init_kind {
#define INIT(e, name, nargs) RT_INIT_##e,
#include "runtime/init_kinds.def"
#undef INIT
  RT_INIT_COUNT
} rt_init_kind;

/* fan_in / fan_out for nncc's layouts (docs/design.md): rank 2 [in, out];
 * rank >= 3 [Cout, Cin, k...] -> Cin*k, Cout*k; rank 1 -> dim 0 both. */
void rt_init_fans(int rank, const int64_t *shape, double *fan_in, double *fan_out);
/* Element k of a tensor initialized by `kind` with `args` (constant v;
 * uniform lo, hi; normal mean, std), PyTorch's formulas: xavier_uniform
 * U(±sqrt(6/(in+out))), xavier_normal N(0, 2/(in+out)), he_uniform
 * U(±sqrt(6/in)), he_normal N(0, 2/in) (kaiming, gain sqrt 2). */
double rt_init_value(int kind, const double args[2], double fan_in, double fan_out,
                     uint64_t seed, uint64_t stream, uint64_t k);
/* Fills out[0..numel) with rt_init_value. */
void rt_init_fill_f32(int kind, const double args[2], int rank, const int64_t *shape,
                      uint64_t seed, uint64_t stream, float *out);

/* -------------------------------------------------------------- dropout */

/* Element k of the dropout mask drawn at training step `step` by the
 * dropout whose salt is `salt`: 0 with probability p, else 1/(1-p). */
double rt_dropout_mask(uint64_t salt, uint64_t step, uint64_t k, double p);

/* ------------------------------------------------------ synthetic data */

/* sine: x ~ U[lo, hi], y = sin(x); x[n], y[n]. */
void rt_synth_sine(int64_t n, double lo, double hi, uint64_t seed, float *x, float *y);
/* spiral: `classes` interleaved arms with noise (cs231n's), x[n,2] in
 * about [-1, 1], y[n] in 0..classes-1. */
void rt_synth_spiral(int64_t n, int classes, uint64_t seed, float *x, int32_t *y);
/* xor: x ~ U[-1, 1]^2, y = 1 when x0 * x1 > 0 else 0; x[n,2], y[n]. */
void rt_synth_xor(int64_t n, uint64_t seed, float *x, float *y);

#endif
