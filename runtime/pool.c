/* pool.c - the runtime's thread pool (pool.h).
 *
 * One dispatch = one node's tasks. Workers and the caller claim task
 * indices from one atomic word that holds (generation << 32 | next task),
 * so a thread that woke late, or was descheduled in the middle, can never
 * claim a task of a job that has moved on: its compare-and-swap names the
 * old generation and fails. The caller publishes a job in three steps:
 * the new generation with next = OPENING (every claim of the old job now
 * fails, and nobody claims from the new one yet), then the job's fields,
 * then next = 0. Without the first step a thread that read the old word
 * and then the new task count could still claim a task of the old job
 * (found by tests/runtime/test_pool.c's TSan run: a task ran after its
 * dispatch had returned). The caller waits
 * for the count of finished tasks, not for the workers, so a worker that
 * is not scheduled at all (7 threads on 2 cores) costs nothing but its
 * unclaimed share, which the others take.
 *
 * Idle workers spin for a short while (a step's next parallel node is
 * usually microseconds away), then sleep on a condition variable; the
 * caller signals only when one sleeps. Job fields are atomics (relaxed)
 * so that the benign read of a stale job before a failing CAS is not a
 * data race (ThreadSanitizer agrees). */
#include "runtime/pool.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define cpu_relax() _mm_pause()
/* the control half of MXCSR (rounding, FTZ, DAZ, masks), not the sticky flags */
#define FP_CONTROL_MASK 0xffc0u
static unsigned fp_control_get(void) { return _mm_getcsr() & FP_CONTROL_MASK; }
static void fp_control_set(unsigned v) {
  if ((_mm_getcsr() & FP_CONTROL_MASK) != v) _mm_setcsr((_mm_getcsr() & ~FP_CONTROL_MASK) | v);
}
#else
#define cpu_relax() ((void)0)
static unsigned fp_control_get(void) { return 0; }
static void fp_control_set(unsigned v) { (void)v; }
#endif

/* how long an idle worker spins before it sleeps, and how long the caller
 * spins on unfinished tasks before it yields its core */
#define WORKER_SPIN_NS 200000
#define CALLER_SPIN_ROUNDS 4096
/* the task index of a generation whose job is being written */
#define OPENING UINT32_MAX

struct rt_pool {
  int threads;
  pthread_t *workers;
  uint32_t generation;          /* the caller's: last published job */
  _Atomic uint64_t claim;       /* generation << 32 | next task index */
  _Atomic(rt_task_fn) fn;       /* the job of the current generation */
  _Atomic(char *) slab;
  _Atomic int64_t n_tasks;
  _Atomic unsigned fp_control;
  _Atomic int64_t done;         /* tasks of the current job finished */
  _Atomic int sleepers;         /* workers in pthread_cond_wait (or about to be) */
  _Atomic bool stop;
  pthread_mutex_t mutex;
  pthread_cond_t wake;
};

static uint32_t generation_of(uint64_t claim) { return (uint32_t)(claim >> 32); }

static int64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Claims and runs tasks of job `gen` until none is left (or the job is
 * another's already). */
static void run_tasks(rt_pool *p, uint32_t gen, bool worker) {
  for (;;) {
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    if (generation_of(c) != gen) return;
    if ((uint32_t)c == OPENING) {  /* the caller is writing the job: nanoseconds */
      cpu_relax();
      continue;
    }
    int64_t next = (int64_t)(uint32_t)c;
    /* acquire: a field of a later job read here implies that job's
     * OPENING word is what the compare-and-swap below meets */
    if (next >= atomic_load_explicit(&p->n_tasks, memory_order_acquire)) return;
    rt_task_fn fn = atomic_load_explicit(&p->fn, memory_order_acquire);
    char *slab = atomic_load_explicit(&p->slab, memory_order_acquire);
    unsigned fp = atomic_load_explicit(&p->fp_control, memory_order_acquire);
    /* success proves the job read above is generation gen's: a later job
     * is opened only after all of gen's tasks, this one included, ran */
    if (!atomic_compare_exchange_weak_explicit(&p->claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire))
      continue;
    if (worker) fp_control_set(fp);
    fn(slab, next);
    atomic_fetch_add_explicit(&p->done, 1, memory_order_release);
  }
}

/* Waits for a generation other than `seen` (or stop); returns it. */
static uint32_t wait_for_job(rt_pool *p, uint32_t seen) {
  int64_t until = now_ns() + WORKER_SPIN_NS;
  for (unsigned i = 1;; i++) {
    uint64_t c = atomic_load_explicit(&p->claim, memory_order_acquire);
    if (generation_of(c) != seen || atomic_load(&p->stop)) return generation_of(c);
    cpu_relax();
    if (i % 256 == 0 && now_ns() > until) break;
  }
  pthread_mutex_lock(&p->mutex);
  /* seq_cst against the caller's (store claim; load sleepers): either we
   * see its job here or it sees us and broadcasts under the mutex */
  atomic_fetch_add(&p->sleepers, 1);
  uint32_t gen;
  while ((gen = generation_of(atomic_load(&p->claim))) == seen && !atomic_load(&p->stop))
    pthread_cond_wait(&p->wake, &p->mutex);
  atomic_fetch_sub(&p->sleepers, 1);
  pthread_mutex_unlock(&p->mutex);
  return gen;
}

static void *worker_main(void *arg) {
  rt_pool *p = arg;
  uint32_t seen = 0;
  for (;;) {
    uint32_t gen = wait_for_job(p, seen);
    if (atomic_load(&p->stop)) return NULL;
    run_tasks(p, gen, true);
    seen = gen;
  }
}

rt_pool *rt_pool_create(int threads) {
  if (threads < 1 || threads > RT_POOL_MAX_THREADS) return NULL;
  rt_pool *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->threads = 1;
  if (pthread_mutex_init(&p->mutex, NULL)) {
    free(p);
    return NULL;
  }
  if (pthread_cond_init(&p->wake, NULL)) {
    pthread_mutex_destroy(&p->mutex);
    free(p);
    return NULL;
  }
  if (threads > 1 && !(p->workers = calloc((size_t)threads - 1, sizeof *p->workers))) {
    rt_pool_destroy(p);
    return NULL;
  }
  /* workers take no signals: the application's handlers (the trainer's
   * SIGINT) run on its own threads */
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  for (int i = 0; i < threads - 1; i++) {
    if (pthread_create(&p->workers[i], NULL, worker_main, p)) break;
    p->threads++;
  }
  pthread_sigmask(SIG_SETMASK, &old, NULL);
  if (p->threads != threads) {
    rt_pool_destroy(p);
    return NULL;
  }
  return p;
}

void rt_pool_destroy(rt_pool *p) {
  if (!p) return;
  pthread_mutex_lock(&p->mutex);
  atomic_store(&p->stop, true);
  pthread_cond_broadcast(&p->wake);
  pthread_mutex_unlock(&p->mutex);
  for (int i = 0; i < p->threads - 1; i++) pthread_join(p->workers[i], NULL);
  free(p->workers);
  pthread_cond_destroy(&p->wake);
  pthread_mutex_destroy(&p->mutex);
  free(p);
}

int rt_pool_threads(const rt_pool *p) { return p ? p->threads : 1; }

void rt_parallel_for(rt_pool *p, rt_task_fn fn, char *slab, int64_t n_tasks) {
  if (!p || p->threads == 1 || n_tasks <= 1 || n_tasks >= OPENING) {
    for (int64_t t = 0; t < n_tasks; t++) fn(slab, t);
    return;
  }
  uint32_t gen = ++p->generation;
  if (gen == 0) gen = ++p->generation;  /* 0 is the workers' "nothing seen yet" */
  atomic_store(&p->claim, (uint64_t)gen << 32 | OPENING);  /* closes the old job */
  atomic_store_explicit(&p->fn, fn, memory_order_release);
  atomic_store_explicit(&p->slab, slab, memory_order_release);
  atomic_store_explicit(&p->n_tasks, n_tasks, memory_order_release);
  atomic_store_explicit(&p->fp_control, fp_control_get(), memory_order_release);
  atomic_store_explicit(&p->done, 0, memory_order_relaxed);
  atomic_store(&p->claim, (uint64_t)gen << 32);  /* seq_cst: opens the job */
  if (atomic_load(&p->sleepers) > 0) {
    pthread_mutex_lock(&p->mutex);
    pthread_cond_broadcast(&p->wake);
    pthread_mutex_unlock(&p->mutex);
  }
  run_tasks(p, gen, false);
  for (unsigned i = 1; atomic_load_explicit(&p->done, memory_order_acquire) < n_tasks; i++) {
    cpu_relax();
    if (i % CALLER_SPIN_ROUNDS == 0) sched_yield();  /* a worker holding a task was descheduled */
  }
}

int rt_default_threads(void) {
  const char *env = getenv("NNCC_THREADS");
  if (env && *env) {
    char *end;
    long v = strtol(env, &end, 10);
    if (*end == '\0' && v >= 1 && v <= RT_POOL_MAX_THREADS) return (int)v;
  }
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    int n = CPU_COUNT(&set);
    if (n >= 1) return n > RT_POOL_MAX_THREADS ? RT_POOL_MAX_THREADS : n;
  }
  return 1;
}
