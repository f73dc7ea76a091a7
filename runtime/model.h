/* model.h - the generic half of a compiled model: everything of the
 * nncc_model_api (nncc.h) that is the same for every model, driven by a
 * descriptor that code generation emits as constant data. The other half
 * is generated: four kernels over one memory slab and a `create` thunk.
 *
 * The slab holds every tensor of the model at a fixed, 64-byte aligned
 * byte offset: inputs, params, their gradients, states (running stats,
 * optimizer moments, train:step, train:lr), outputs, the loss, and the
 * scratch the kernels use. A kernel is `void kernel(char *slab)`: it
 * reads and writes only there, and never allocates.
 *
 * This file is linked into every generated .so (it depends on libc and
 * libm only) and into the nncc binary for the JIT. */
#ifndef NNCC_RUNTIME_MODEL_H
#define NNCC_RUNTIME_MODEL_H

#include <stdint.h>

#include "runtime/nncc.h"

typedef void (*rt_kernel)(char *slab);

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
} rt_model_desc;

/* Allocates the slab (64-byte aligned, zeroed) and initializes every param
 * and state by its initializer with `seed`. NULL when out of memory. */
nncc_model *rt_model_create(const rt_model_desc *d, uint64_t seed);

/* The generic entries of nncc_model_api; `api->create` must be the
 * model's own thunk (it alone knows the descriptor). */
void rt_model_api_fill(nncc_model_api *api, const rt_model_desc *d,
                       nncc_model *(*create)(uint64_t seed));

/* The descriptor behind a model instance. */
const rt_model_desc *rt_model_desc_of(const nncc_model *m);

#endif
