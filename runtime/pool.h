/* pool.h - the thread pool of a compiled model: created once with the
 * model (rt_model_create), never during a step, and shared by its
 * kernels. A kernel hands it one node at a time: `n_tasks` independent
 * pieces of that node (blocks of rows, output channels, images), fixed at
 * compile time from the shapes alone. Which thread runs which task never
 * changes a result: every output element is computed by exactly one task,
 * with the same code and in the same order, whatever the thread count
 * (reductions across tasks are not split). So 1, 2 or 7 threads give
 * bit-identical outputs, gradients and updates.
 *
 * pthreads only; linked into every generated .so (libc, libm, libpthread). */
#ifndef NNCC_RUNTIME_POOL_H
#define NNCC_RUNTIME_POOL_H

#include <stdint.h>

typedef struct rt_pool rt_pool;

/* A piece of a node's work: task in [0, n_tasks) over the model's slab. */
typedef void (*rt_task_fn)(char *slab, int64_t task);

/* The most threads a pool runs (the caller included). */
#define RT_POOL_MAX_THREADS 1024  /* SPEC §3's --threads range */

/* A pool of `threads` threads, the caller counting as one (threads - 1
 * workers are started; 1 starts none). NULL when threads are out of range
 * or cannot be started; callers fall back to running on their own
 * thread (rt_parallel_for with a NULL pool). */
rt_pool *rt_pool_create(int threads);
void rt_pool_destroy(rt_pool *p);
int rt_pool_threads(const rt_pool *p);  /* 1 for NULL */

/* Runs fn(slab, t) for every t in [0, n_tasks) and returns when all have
 * finished. The caller takes part; idle threads claim the next task in
 * order. Workers run with the caller's floating-point control state
 * (MXCSR on x86-64), so denormal handling cannot differ between tasks.
 * Not reentrant: one dispatch at a time per pool (one model instance is
 * not to be stepped from two threads at once, SPEC §4). */
void rt_parallel_for(rt_pool *p, rt_task_fn fn, char *slab, int64_t n_tasks);

/* The default thread count: NNCC_THREADS when it is a number in
 * [1, RT_POOL_MAX_THREADS], else the CPUs this process may run on
 * (sched_getaffinity), at least 1. */
int rt_default_threads(void);

#endif
