/* model.h - the generic half of a compiled model: everything of the
 * nncc_model_api (nncc.h) that is the same for every model, driven by a
 * descriptor that code generation emits as constant data. The other half
 * is generated: four kernels over one memory slab and a `create` thunk.
 *
 * The slab holds every tensor of the model at a fixed, 64-byte aligned
 * byte offset: inputs, params, their gradients, states (running stats,
 * optimizer moments, train:step, train:lr), outputs, the loss, and the
 * scratch the kernels use. A kernel is `void kernel(char *slab, rt_pool
 * *pool)`: it reads and writes only the slab, never allocates, and hands
 * the parallel nodes' tasks to the model's thread pool (pool.h).
 *
 * This file is linked into every generated .so (it depends on libc, libm
 * and libpthread only) and into the nncc binary for the JIT. */
#ifndef NNCC_RUNTIME_MODEL_H
#define NNCC_RUNTIME_MODEL_H

#include <stdint.h>

#include "runtime/nncc.h"
#include "runtime/pool.h"

typedef void (*rt_kernel)(char *slab, rt_pool *pool);

typedef struct rt_tensor_desc {
  int64_t offset;       /* byte offset in the slab */
  int64_t grad_offset;  /* of d loss / d tensor (PARAM, f32 INPUT), or -1 */
  int64_t nbytes;
  int32_t init_kind;    /* rt_init_kind (runtime.h), for PARAM and STATE */
  double init_args[2];
  uint64_t stream;      /* RNG stream: rt_stream_of(name) */
  int64_t label_bound;  /* i32 INPUT: values must lie in [0, bound); 0 = any */
  int32_t persistent;   /* saved in checkpoints: params and states */
} rt_tensor_desc;

/* A node of the compiled graphs, for --check-numerics messages. */
typedef struct rt_node_desc {
  const char *name;     /* the bound name ("h"), "" if none */
  const char *op;       /* "log" */
  int32_t id;           /* the node's id in its graph (--emit=fused) */
  int32_t line, col;    /* of the .nn token that made it; line 0: none */
  int32_t backward;     /* made by autodiff or the optimizer, not the forward pass */
} rt_node_desc;

typedef struct rt_model_desc {
  const char *name;
  int32_t n_tensors;
  const nncc_tensor_info *infos;  /* the ABI's tensor table, index = tensor id */
  const rt_tensor_desc *tensors;  /* same indices */
  int64_t slab_bytes;
  rt_kernel forward;              /* evaluation mode: inputs -> outputs */
  rt_kernel evaluate;             /* evaluation mode: outputs and loss; NULL without a loss */
  rt_kernel backward;             /* training mode: loss, grads, running stats; NULL without a loss */
  rt_kernel train_step;           /* backward + optimizer update; NULL without a loss */
  int32_t loss_index;             /* tensor id of the loss, or -1 */
  int32_t lr_index;               /* the state train:lr, or -1 */
  int32_t step_index;             /* the state train:step, or -1 */
  int32_t total_steps_index;      /* the state train:total_steps, or -1 */
  const char *fingerprint;        /* the graph fingerprint (passes/fingerprint.c), "" if none */
  /* check_numerics (CgOptions): every kernel checks each f32 value it
   * computes and keeps in numerics_offset's int32 the least code
   * 2 * (node index) + (1 for inf, 0 for nan) of a non-finite one, or
   * INT32_MAX; node index = id in the evaluation graph, or the
   * evaluation graph's node count + id in the training graph. */
  int64_t numerics_offset;        /* byte offset of that int32, or -1 */
  const rt_node_desc *nodes;      /* by node index; NULL: nothing is checked */
  const char *source;             /* the .nn file named in messages, "" if unknown */
  int32_t n_nodes;                /* entries of nodes */
} rt_model_desc;

/* Allocates the slab (64-byte aligned, zeroed) and initializes every param
 * and state by its initializer with `seed`. NULL when out of memory. */
nncc_model *rt_model_create(const rt_model_desc *d, uint64_t seed);

/* The generic entries of nncc_model_api; `api->create` must be the
 * model's own thunk (it alone knows the descriptor). */
void rt_model_api_fill(nncc_model_api *api, const rt_model_desc *d,
                       nncc_model *(*create)(uint64_t seed));

/* save() with more __metadata__ entries (the trainer's run state); the
 * fingerprint is always written. Returns the ABI's error codes. */
struct rt_st_meta;
int rt_model_save_meta(const nncc_model *m, const char *path, const struct rt_st_meta *meta, int n_meta);
/* Weights only (--init-from, --load-weights): every PARAM by name, dtype
 * and shape, running statistics (states without ':') when present; the
 * model name, the fingerprint, optimizer moments and train:* of the file
 * are ignored. *n_loaded counts the tensors read. */
int rt_model_load_weights(nncc_model *m, const char *path, int *n_loaded);

/* Generated code under check_numerics: if p[0..n) holds a nan or inf,
 * lowers *slot to 2 * index + (the first such is inf). */
void rt_check_finite(const float *p, int64_t n, int32_t index, int32_t *slot);

/* The descriptor behind a model instance. */
const rt_model_desc *rt_model_desc_of(const nncc_model *m);

#endif
