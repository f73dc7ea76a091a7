/* test_pool.c - the runtime's thread pool (runtime/pool.h): every task of
 * every dispatch runs exactly once and before rt_parallel_for returns,
 * on 1, 2, 3 and 7 threads and without a pool; thousands of back-to-back
 * dispatches (workers racing from one job to the next) and dispatches
 * after the workers fell asleep; the caller's floating-point control
 * state in the workers; the thread count's range and default. Run under
 * ThreadSanitizer by the CI's TSan build. */
#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "runtime/pool.h"

#define MAX_TASKS 64

/* The slab of the test tasks: a run count per task and the generation
 * of the dispatch each task last saw. */
typedef struct Slab {
  _Atomic int runs[MAX_TASKS];
  int seen[MAX_TASKS];
  int generation;
  unsigned mxcsr[MAX_TASKS];
  _Atomic int64_t n;     /* the dispatch's task count while it runs, else 0 */
  _Atomic int strays;    /* tasks run outside their dispatch or past its count */
} Slab;

static void count_task(char *slab, int64_t task) {
  Slab *s = (Slab *)slab;
  if (task < 0 || task >= atomic_load_explicit(&s->n, memory_order_relaxed)) {
    atomic_fetch_add(&s->strays, 1);
    return;
  }
  atomic_fetch_add(&s->runs[task], 1);
  s->seen[task] = s->generation;  /* plain write: one task, one thread */
#if defined(__x86_64__)
  s->mxcsr[task] = _mm_getcsr() & 0xffc0u;
#endif
}

static void dispatch_and_check(rt_pool *p, Slab *s, int64_t n) {
  memset(s->runs, 0, sizeof s->runs);
  s->generation++;
  atomic_store(&s->n, n);
  rt_parallel_for(p, count_task, (char *)s, n);
  atomic_store(&s->n, 0);
  ck_assert_int_eq(atomic_load(&s->strays), 0);
  for (int64_t t = 0; t < n; t++) {
    ck_assert_int_eq(atomic_load(&s->runs[t]), 1);
    ck_assert_int_eq(s->seen[t], s->generation);
  }
  for (int64_t t = n; t < MAX_TASKS; t++) ck_assert_int_eq(atomic_load(&s->runs[t]), 0);
}

START_TEST(every_task_once_on_every_thread_count) {
  static const int counts[] = {1, 2, 3, 7};
  for (int c = 0; c < 4; c++) {
    rt_pool *p = rt_pool_create(counts[c]);
    ck_assert_ptr_nonnull(p);
    ck_assert_int_eq(rt_pool_threads(p), counts[c]);
    Slab s = {0};
    for (int round = 0; round < 5000; round++) dispatch_and_check(p, &s, 1 + round % MAX_TASKS);
    dispatch_and_check(p, &s, 0);
    rt_pool_destroy(p);
  }
}
END_TEST

START_TEST(no_pool_runs_on_the_caller) {
  Slab s = {0};
  ck_assert_int_eq(rt_pool_threads(NULL), 1);
  dispatch_and_check(NULL, &s, 17);
  dispatch_and_check(NULL, &s, 0);
  rt_pool_destroy(NULL);
}
END_TEST

START_TEST(dispatch_after_workers_sleep) {
  rt_pool *p = rt_pool_create(3);
  ck_assert_ptr_nonnull(p);
  Slab s = {0};
  for (int round = 0; round < 5; round++) {
    struct timespec pause = {0, 2000000};  /* 2 ms: past the workers' spin */
    nanosleep(&pause, NULL);
    dispatch_and_check(p, &s, 9);
  }
  rt_pool_destroy(p);
  rt_pool_destroy(rt_pool_create(4));  /* destroyed before any job */
}
END_TEST

START_TEST(workers_take_the_callers_fp_control) {
#if defined(__x86_64__)
  rt_pool *p = rt_pool_create(2);
  ck_assert_ptr_nonnull(p);
  unsigned old = _mm_getcsr();
  Slab s = {0};
  for (int mode = 0; mode < 2; mode++) {
    _mm_setcsr(mode ? (old | 0x8040u) : (old & ~0x8040u));  /* FTZ and DAZ on, then off */
    unsigned want = _mm_getcsr() & 0xffc0u;
    for (int round = 0; round < 50; round++) {
      dispatch_and_check(p, &s, MAX_TASKS);
      for (int t = 0; t < MAX_TASKS; t++) ck_assert_uint_eq(s.mxcsr[t], want);
    }
  }
  _mm_setcsr(old);
  rt_pool_destroy(p);
#endif
}
END_TEST

START_TEST(thread_counts_range_and_default) {
  ck_assert_ptr_null(rt_pool_create(0));
  ck_assert_ptr_null(rt_pool_create(-3));
  ck_assert_ptr_null(rt_pool_create(RT_POOL_MAX_THREADS + 1));
  setenv("NNCC_THREADS", "3", 1);
  ck_assert_int_eq(rt_default_threads(), 3);
  static const char *const bad[] = {"0", "-1", "2x", "", "100000"};
  unsetenv("NNCC_THREADS");
  int cpus = rt_default_threads();
  ck_assert_int_ge(cpus, 1);
  for (int i = 0; i < 5; i++) {
    setenv("NNCC_THREADS", bad[i], 1);
    ck_assert_int_eq(rt_default_threads(), cpus);  /* ignored: the CPUs */
  }
  unsetenv("NNCC_THREADS");
}
END_TEST

int main(void) {
  Suite *s = suite_create("pool");
  TCase *tc = tcase_create("pool");
  tcase_set_timeout(tc, 300);
  tcase_add_test(tc, every_task_once_on_every_thread_count);
  tcase_add_test(tc, no_pool_runs_on_the_caller);
  tcase_add_test(tc, dispatch_after_workers_sleep);
  tcase_add_test(tc, workers_take_the_callers_fp_control);
  tcase_add_test(tc, thread_counts_range_and_default);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
