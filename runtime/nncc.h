/* nncc.h - the ABI of a model compiled by nncc (SPEC §4), for the AOT
 * shared library (`nncc model.nn -o model.so`) and the JIT alike.
 * The only public header nncc installs; it needs nothing but <stdint.h>.
 * Members may be appended at the end of a struct; the order is fixed. */
#ifndef NNCC_H
#define NNCC_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define NNCC_ABI_VERSION 2  /* 2: set_threads, threads */

typedef enum { NNCC_F32 = 1, NNCC_I32 = 2 } nncc_dtype;
typedef enum { NNCC_INPUT = 1, NNCC_PARAM, NNCC_STATE, NNCC_OUTPUT, NNCC_LOSS } nncc_role;

typedef struct {
  const char *name;       /* "x", "h1.w", "w1:exp_avg" */
  int32_t role, dtype, rank;
  const int64_t *shape;
} nncc_tensor_info;

/* One instance: params, grads, optimizer state, scratch. */
typedef struct nncc_model nncc_model;

typedef struct nncc_model_api {
  uint32_t abi_version;
  const char *name;
  int32_t n_tensors;
  const nncc_tensor_info *tensors;
  nncc_model *(*create)(uint64_t seed);      /* params initialized; NULL on failure */
  void (*destroy)(nncc_model *);
  void *(*data)(nncc_model *, int32_t i);    /* row-major storage of tensor i, 64-byte aligned */
  float *(*grad)(nncc_model *, int32_t i);   /* d loss / d tensor i (PARAM, f32 INPUT); else NULL */
  int (*forward)(nncc_model *);              /* evaluation mode: inputs -> outputs */
  int (*evaluate)(nncc_model *);             /* evaluation mode: outputs and loss */
  int (*backward)(nncc_model *);             /* training mode: loss and all gradients, no update */
  int (*train_step)(nncc_model *);           /* backward + optimizer update, one call */
  int (*set_hyper)(nncc_model *, const char *name, double v);  /* "lr", ... */
  int (*save)(const nncc_model *, const char *path);           /* safetensors */
  int (*load)(nncc_model *, const char *path);
  const char *(*last_error)(const nncc_model *);
  /* appended after SPEC's fixed order: */
  const char *fingerprint;  /* 16 hex digits: the model's graph and training setup
                               (checkpoints carry it; load refuses another's) */
  /* ABI version 2: the instance's thread pool. create() starts it with
   * NNCC_THREADS or the CPUs the process may use; results are
   * bit-identical for every thread count. set_threads (n >= 1) replaces
   * the pool; not while another thread is inside a call on the same
   * instance. */
  int (*set_threads)(nncc_model *, int32_t n);
  int32_t (*threads)(const nncc_model *);
} nncc_model_api;

/* Exported by every compiled library (prefix changeable with --prefix). */
const nncc_model_api *nncc_module(const char *model_name /* NULL: the first */);

#ifdef __cplusplus
}
#endif

#endif
