/* test_runtime.c - the runtime's RNG, initializers, dropout masks and
 * synthetic data: determinism, independence of seeds and streams, and the
 * moments each distribution promises, checked over many draws. */
#include <check.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"

#define DRAWS 100000

/* Mean and variance of f(seed, stream, k) over k < DRAWS. */
static void moments(double (*f)(uint64_t, uint64_t, uint64_t), uint64_t seed, uint64_t stream,
                    double *mean, double *var) {
  double s = 0, s2 = 0;
  for (uint64_t k = 0; k < DRAWS; k++) {
    double v = f(seed, stream, k);
    s += v;
    s2 += v * v;
  }
  *mean = s / DRAWS;
  *var = s2 / DRAWS - *mean * *mean;
}

/* ------------------------------------------------------------------ rng */

START_TEST(rand_is_a_pure_function) {
  for (uint64_t k = 0; k < 100; k++) {
    ck_assert_uint_eq(rt_rand_u64(42, 7, k), rt_rand_u64(42, 7, k));
    ck_assert(rt_rand_uniform(42, 7, k) == rt_rand_uniform(42, 7, k));
    ck_assert(rt_rand_normal(42, 7, k) == rt_rand_normal(42, 7, k));
  }
  /* order of calls does not matter */
  uint64_t late = rt_rand_u64(1, 2, 99);
  for (uint64_t k = 0; k < 99; k++) (void)rt_rand_u64(1, 2, k);
  ck_assert_uint_eq(rt_rand_u64(1, 2, 99), late);
}
END_TEST

START_TEST(seeds_streams_and_counters_differ) {
  int same_seed = 0, same_stream = 0, swapped = 0, same_k = 0;
  for (uint64_t k = 0; k < 1000; k++) {
    same_seed += rt_rand_u64(1, 5, k) == rt_rand_u64(2, 5, k);
    same_stream += rt_rand_u64(1, 5, k) == rt_rand_u64(1, 6, k);
    swapped += rt_rand_u64(3, 4, k) == rt_rand_u64(4, 3, k);
    same_k += rt_rand_u64(1, 5, k) == rt_rand_u64(1, 5, k + 1);
  }
  ck_assert_int_eq(same_seed, 0);
  ck_assert_int_eq(same_stream, 0);
  ck_assert_int_eq(swapped, 0);
  ck_assert_int_eq(same_k, 0);
  /* a neighbouring stream is not a shifted copy of this one */
  int shifted = 0;
  for (uint64_t k = 0; k + 1 < 1000; k++) shifted += rt_rand_u64(0, 0, k + 1) == rt_rand_u64(0, 1, k);
  ck_assert_int_eq(shifted, 0);
}
END_TEST

START_TEST(bits_are_balanced) {
  /* each of the 64 bits is set about half the time, even for seed 0,
   * stream 0 and small counters */
  int ones[64] = {0};
  const int n = 20000;
  for (int k = 0; k < n; k++) {
    uint64_t w = rt_rand_u64(0, 0, (uint64_t)k);
    for (int b = 0; b < 64; b++) ones[b] += (int)((w >> b) & 1);
  }
  for (int b = 0; b < 64; b++) ck_assert_msg(abs(ones[b] - n / 2) < 500, "bit %d: %d", b, ones[b]);
}
END_TEST

START_TEST(uniform_moments) {
  double mean, var;
  moments(rt_rand_uniform, 123, rt_stream_of("w"), &mean, &var);
  ck_assert_double_eq_tol(mean, 0.5, 0.005);
  ck_assert_double_eq_tol(var, 1.0 / 12, 0.002);
  for (uint64_t k = 0; k < DRAWS; k++) {
    double u = rt_rand_uniform(9, 9, k);
    ck_assert(u >= 0 && u < 1);
  }
}
END_TEST

START_TEST(normal_moments) {
  double mean, var;
  moments(rt_rand_normal, 7, 3, &mean, &var);
  ck_assert_double_eq_tol(mean, 0, 0.015);
  ck_assert_double_eq_tol(var, 1, 0.02);
  /* the tail is there: about 0.27% beyond 3 sigma */
  int tail = 0;
  for (uint64_t k = 0; k < DRAWS; k++) tail += fabs(rt_rand_normal(7, 3, k)) > 3;
  ck_assert_int_gt(tail, 150);
  ck_assert_int_lt(tail, 400);
}
END_TEST

START_TEST(stream_of_is_fnv1a) {
  ck_assert_uint_eq(rt_stream_of(""), 0xcbf29ce484222325ULL);
  ck_assert_uint_eq(rt_stream_of("a"), 0xaf63dc4c8601ec8cULL);
  ck_assert_uint_ne(rt_stream_of("h1.w"), rt_stream_of("h1.b"));
}
END_TEST

/* --------------------------------------------------------- initializers */

START_TEST(fans_follow_the_layouts) {
  double in, out;
  int64_t v[] = {10};
  rt_init_fans(1, v, &in, &out);
  ck_assert(in == 10 && out == 10);
  int64_t m[] = {784, 128};
  rt_init_fans(2, m, &in, &out);
  ck_assert(in == 784 && out == 128);
  int64_t c[] = {16, 3, 5, 5};  /* [Cout, Cin, kh, kw] */
  rt_init_fans(4, c, &in, &out);
  ck_assert(in == 3 * 25 && out == 16 * 25);
  rt_init_fans(0, NULL, &in, &out);
  ck_assert(in == 1 && out == 1);
}
END_TEST

START_TEST(simple_initializers) {
  double args[2] = {2.5, 0};
  ck_assert(rt_init_value(RT_INIT_NONE, NULL, 1, 1, 0, 0, 3) == 0);
  ck_assert(rt_init_value(RT_INIT_ZEROS, NULL, 1, 1, 0, 0, 3) == 0);
  ck_assert(rt_init_value(RT_INIT_ONES, NULL, 1, 1, 0, 0, 3) == 1);
  ck_assert(rt_init_value(RT_INIT_CONSTANT, args, 1, 1, 0, 0, 3) == 2.5);
  double lohi[2] = {-3, -1}, sum = 0;
  for (uint64_t k = 0; k < DRAWS; k++) {
    double v = rt_init_value(RT_INIT_UNIFORM, lohi, 1, 1, 5, 6, k);
    ck_assert(v >= -3 && v < -1);
    sum += v;
  }
  ck_assert_double_eq_tol(sum / DRAWS, -2, 0.01);
  double ms[2] = {1, 0.5}, s = 0, s2 = 0;
  for (uint64_t k = 0; k < DRAWS; k++) {
    double v = rt_init_value(RT_INIT_NORMAL, ms, 1, 1, 5, 6, k);
    s += v;
    s2 += v * v;
  }
  double mean = s / DRAWS;
  ck_assert_double_eq_tol(mean, 1, 0.01);
  ck_assert_double_eq_tol(s2 / DRAWS - mean * mean, 0.25, 0.01);
}
END_TEST

/* Each fan-scaled initializer: values in range (uniform) and the variance
 * PyTorch's formula gives: bound^2 / 3 for uniform, std^2 for normal. */
START_TEST(fan_scaled_initializers) {
  struct {
    int kind;
    double want_var;
    double bound;  /* 0: unbounded */
  } cases[] = {
      {RT_INIT_HE_UNIFORM, 2.0 / 50, sqrt(6.0 / 50)},
      {RT_INIT_HE_NORMAL, 2.0 / 50, 0},
      {RT_INIT_XAVIER_UNIFORM, 2.0 / 80, sqrt(6.0 / 80)},
      {RT_INIT_XAVIER_NORMAL, 2.0 / 80, 0},
  };
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    double s = 0, s2 = 0;
    for (uint64_t k = 0; k < DRAWS; k++) {
      double v = rt_init_value(cases[c].kind, NULL, 50, 30, 11, 12, k);
      if (cases[c].bound) ck_assert(fabs(v) <= cases[c].bound);
      s += v;
      s2 += v * v;
    }
    double mean = s / DRAWS, var = s2 / DRAWS - mean * mean;
    ck_assert_double_eq_tol(mean, 0, 0.003);
    ck_assert_msg(fabs(var / cases[c].want_var - 1) < 0.03, "kind %d: var %g, want %g",
                  cases[c].kind, var, cases[c].want_var);
  }
}
END_TEST

START_TEST(fill_matches_value) {
  int64_t shape[] = {6, 4};
  float out[24], again[24];
  rt_init_fill_f32(RT_INIT_HE_UNIFORM, NULL, 2, shape, 42, rt_stream_of("w"), out);
  rt_init_fill_f32(RT_INIT_HE_UNIFORM, NULL, 2, shape, 42, rt_stream_of("w"), again);
  ck_assert(memcmp(out, again, sizeof out) == 0);
  for (int k = 0; k < 24; k++) {
    double v = rt_init_value(RT_INIT_HE_UNIFORM, NULL, 6, 4, 42, rt_stream_of("w"), (uint64_t)k);
    ck_assert(out[k] == (float)v);
    ck_assert(fabs(out[k]) <= sqrt(6.0 / 6));
  }
  rt_init_fill_f32(RT_INIT_HE_UNIFORM, NULL, 2, shape, 43, rt_stream_of("w"), again);
  ck_assert(memcmp(out, again, sizeof out) != 0);
}
END_TEST

/* -------------------------------------------------------------- dropout */

START_TEST(dropout_mask_rate_and_scale) {
  double p = 0.3;
  int zeros = 0;
  for (uint64_t k = 0; k < DRAWS; k++) {
    double m = rt_dropout_mask(77, 5, k, p);
    ck_assert(m == 0 || m == 1 / (1 - p));
    zeros += m == 0;
  }
  ck_assert_double_eq_tol((double)zeros / DRAWS, p, 0.005);
  /* the mean is kept: E[mask] = 1 */
  for (uint64_t k = 0; k < 100; k++) ck_assert(rt_dropout_mask(77, 5, k, 0) == 1);
  /* another step draws another mask */
  int same = 0;
  for (uint64_t k = 0; k < 1000; k++) same += rt_dropout_mask(77, 5, k, 0.5) == rt_dropout_mask(77, 6, k, 0.5);
  ck_assert_int_lt(same, 600);
}
END_TEST

/* ------------------------------------------------------- synthetic data */

START_TEST(sine_data) {
  enum { N = 1000 };
  static float x[N], y[N], x2[N], y2[N];
  rt_synth_sine(N, -M_PI, M_PI, 3, x, y);
  rt_synth_sine(N, -M_PI, M_PI, 3, x2, y2);
  ck_assert(memcmp(x, x2, sizeof x) == 0 && memcmp(y, y2, sizeof y) == 0);
  for (int i = 0; i < N; i++) {
    ck_assert(x[i] >= (float)-M_PI && x[i] <= (float)M_PI);
    ck_assert_float_eq_tol(y[i], sinf(x[i]), 1e-6);
  }
  rt_synth_sine(N, -M_PI, M_PI, 4, x2, y2);
  ck_assert(memcmp(x, x2, sizeof x) != 0);
}
END_TEST

START_TEST(spiral_data) {
  enum { N = 3001, C = 3 };
  static float x[2 * N], x2[2 * N];
  static int32_t y[N], y2[N];
  rt_synth_spiral(N, C, 42, x, y);
  rt_synth_spiral(N, C, 42, x2, y2);
  ck_assert(memcmp(x, x2, sizeof x) == 0 && memcmp(y, y2, sizeof y) == 0);
  int count[C] = {0};
  for (int i = 0; i < N; i++) {
    ck_assert(y[i] >= 0 && y[i] < C);
    count[y[i]]++;
    double r = hypot(x[2 * i], x[2 * i + 1]);
    ck_assert(r <= 1 + 1e-6);
  }
  ck_assert_int_eq(count[0], 1001);  /* the remainder goes to the first class */
  ck_assert_int_eq(count[1], 1000);
  ck_assert_int_eq(count[2], 1000);
  /* shuffled: the first 100 points are not all of one class */
  int first[C] = {0};
  for (int i = 0; i < 100; i++) first[y[i]]++;
  for (int c = 0; c < C; c++) ck_assert_int_gt(first[c], 10);
  rt_synth_spiral(N, C, 43, x2, y2);
  ck_assert(memcmp(x, x2, sizeof x) != 0);
}
END_TEST

START_TEST(xor_data) {
  enum { N = 4000 };
  static float x[2 * N], y[N];
  rt_synth_xor(N, 1, x, y);
  int pos = 0;
  for (int i = 0; i < N; i++) {
    ck_assert(fabsf(x[2 * i]) <= 1 && fabsf(x[2 * i + 1]) <= 1);
    ck_assert(y[i] == (x[2 * i] * x[2 * i + 1] > 0 ? 1.0f : 0.0f));
    pos += y[i] == 1;
  }
  ck_assert_int_gt(pos, N / 2 - 200);
  ck_assert_int_lt(pos, N / 2 + 200);
}
END_TEST

int main(void) {
  Suite *s = suite_create("runtime");
  TCase *rng = tcase_create("rng");
  tcase_add_test(rng, rand_is_a_pure_function);
  tcase_add_test(rng, seeds_streams_and_counters_differ);
  tcase_add_test(rng, bits_are_balanced);
  tcase_add_test(rng, uniform_moments);
  tcase_add_test(rng, normal_moments);
  tcase_add_test(rng, stream_of_is_fnv1a);
  suite_add_tcase(s, rng);
  TCase *init = tcase_create("init");
  tcase_add_test(init, fans_follow_the_layouts);
  tcase_add_test(init, simple_initializers);
  tcase_add_test(init, fan_scaled_initializers);
  tcase_add_test(init, fill_matches_value);
  tcase_add_test(init, dropout_mask_rate_and_scale);
  suite_add_tcase(s, init);
  TCase *data = tcase_create("synth");
  tcase_add_test(data, sine_data);
  tcase_add_test(data, spiral_data);
  tcase_add_test(data, xor_data);
  suite_add_tcase(s, data);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
