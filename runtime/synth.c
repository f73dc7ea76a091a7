/* synth.c - the synthetic data sets of train blocks (sine, spiral, xor),
 * generated from the counter-based RNG so that a seed names one data set
 * on every machine. Each set draws from its own fixed stream numbers. */
#include "runtime/runtime.h"

#include <math.h>

enum {
  STREAM_SINE = 1,           /* sine: x */
  STREAM_SPIRAL_NOISE = 2,   /* spiral: angle noise, one normal per point */
  STREAM_SPIRAL_SHUFFLE = 3, /* spiral: Fisher-Yates swaps */
  STREAM_XOR = 4,            /* xor: x0, x1 at counters 2i, 2i+1 */
};

void rt_synth_sine(int64_t n, double lo, double hi, uint64_t seed, float *x, float *y) {
  for (int64_t i = 0; i < n; i++) {
    double v = lo + (hi - lo) * rt_rand_uniform(seed, STREAM_SINE, (uint64_t)i);
    x[i] = (float)v;
    y[i] = (float)sin(v);
  }
}

/* cs231n's spiral: class c's arm sweeps angle 4c .. 4c+4 as the radius
 * grows from 0 to 1, with N(0, 0.2^2) angle noise. Points are made class
 * by class (the first n % classes classes get one more), then shuffled so
 * that every batch mixes the classes. */
void rt_synth_spiral(int64_t n, int classes, uint64_t seed, float *x, int32_t *y) {
  if (n <= 0 || classes <= 0) return;
  int64_t i = 0;
  for (int c = 0; c < classes; c++) {
    int64_t m = n / classes + (c < n % classes ? 1 : 0);
    for (int64_t j = 0; j < m; j++, i++) {
      double r = m > 1 ? (double)j / (double)(m - 1) : 0.0;
      double t = c * 4.0 + 4.0 * r + 0.2 * rt_rand_normal(seed, STREAM_SPIRAL_NOISE, (uint64_t)i);
      x[2 * i] = (float)(r * sin(t));
      x[2 * i + 1] = (float)(r * cos(t));
      y[i] = c;
    }
  }
  for (int64_t a = n - 1; a > 0; a--) {
    double u = rt_rand_uniform(seed, STREAM_SPIRAL_SHUFFLE, (uint64_t)a);
    int64_t b = (int64_t)(u * (double)(a + 1));
    if (b > a) b = a;  /* u < 1, but (a + 1) * u may round up */
    float x0 = x[2 * a], x1 = x[2 * a + 1];
    int32_t ya = y[a];
    x[2 * a] = x[2 * b];
    x[2 * a + 1] = x[2 * b + 1];
    y[a] = y[b];
    x[2 * b] = x0;
    x[2 * b + 1] = x1;
    y[b] = ya;
  }
}

void rt_synth_xor(int64_t n, uint64_t seed, float *x, float *y) {
  for (int64_t i = 0; i < n; i++) {
    double x0 = -1.0 + 2.0 * rt_rand_uniform(seed, STREAM_XOR, 2 * (uint64_t)i);
    double x1 = -1.0 + 2.0 * rt_rand_uniform(seed, STREAM_XOR, 2 * (uint64_t)i + 1);
    x[2 * i] = (float)x0;
    x[2 * i + 1] = (float)x1;
    y[i] = x0 * x1 > 0 ? 1.0f : 0.0f;
  }
}
