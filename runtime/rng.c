/* rng.c - the counter-based random number generator that compiled
 * models, the reference evaluator and the CLI share, and the dropout mask
 * drawn from it.
 *
 * Every word is a pure function of (seed, stream, counter): a hash, not a
 * state machine, so a value never depends on which thread asked for it or
 * in what order. The key is the seed and the stream, each through its own
 * 64-bit finalizer (so seed s, stream t and seed t, stream s differ); the
 * counter then walks a SplitMix64 sequence under that key, and a second,
 * different finalizer decorrelates neighbouring keys. */
#include "runtime/runtime.h"

#include <math.h>

#define GOLDEN 0x9e3779b97f4a7c15ULL  /* 2^64 / phi: SplitMix64's increment */

/* SplitMix64's finalizer (Stafford's Mix13). */
static uint64_t mix_splitmix(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* MurmurHash3's fmix64: different constants and shifts, so composing it
 * with the SplitMix finalizer does not cancel either. */
static uint64_t mix_murmur(uint64_t z) {
  z ^= z >> 33;
  z *= 0xff51afd7ed558ccdULL;
  z ^= z >> 33;
  z *= 0xc4ceb9fe1a85ec53ULL;
  return z ^ (z >> 33);
}

uint64_t rt_rand_u64(uint64_t seed, uint64_t stream, uint64_t k) {
  uint64_t key = mix_splitmix(seed ^ 0x6a09e667f3bcc909ULL) ^
                 mix_murmur(stream + 0xbb67ae8584caa73bULL);
  uint64_t z = mix_splitmix(key + (k + 1) * GOLDEN);
  return mix_murmur(z ^ (key >> 17) ^ (key << 47));
}

double rt_rand_uniform(uint64_t seed, uint64_t stream, uint64_t k) {
  return (double)(rt_rand_u64(seed, stream, k) >> 11) * 0x1.0p-53;
}

/* Box-Muller, cosine branch only, so that element k owns words 2k and
 * 2k+1 and no value is cached between calls. 1 - u1 is in (0, 1]: the
 * logarithm never sees 0. */
double rt_rand_normal(uint64_t seed, uint64_t stream, uint64_t k) {
  double u1 = rt_rand_uniform(seed, stream, 2 * k);
  double u2 = rt_rand_uniform(seed, stream, 2 * k + 1);
  double r = sqrt(-2.0 * log(1.0 - u1));
  return r * cos(6.283185307179586476925 * u2);
}

/* FNV-1a, 64 bits. */
uint64_t rt_stream_of(const char *name) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (const unsigned char *p = (const unsigned char *)name; p && *p; p++) {
    h ^= *p;
    h *= 0x100000001b3ULL;
  }
  return h;
}

/* The step is the stream, so every step draws a fresh mask and forward
 * and backward of one step, asking with the same (salt, step, k), agree. */
double rt_dropout_mask(uint64_t salt, uint64_t step, uint64_t k, double p) {
  if (!(p > 0)) return 1.0;
  double u = rt_rand_uniform(salt, step, k);
  return u < p ? 0.0 : 1.0 / (1.0 - p);
}
