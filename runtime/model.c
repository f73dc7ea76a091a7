/* model.c - the generic half of every compiled model (model.h): one
 * instance is a descriptor (constant data emitted by codegen) plus one
 * 64-byte aligned slab holding every tensor. This file owns the slab,
 * initializes params and states, checks inputs before a kernel runs,
 * checks the loss after, and reads and writes checkpoints. It owns the
 * instance's thread pool (pool.h) too. Linked into every generated .so
 * and into the JIT: libc, libm and libpthread only.
 *
 * Entry points never abort (SPEC §4). They return 0 or one of the codes
 * below and leave a message for last_error(); a successful call does not
 * clear it (last_error is "the last failing call", "" before any). */
#include "runtime/model.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "runtime/safetensors.h"

/* Error codes of the nncc_model_api entry points. */
enum {
  RT_OK = 0,
  RT_ERR_ARG = 1,        /* NULL model, bad index, unknown or invalid hyperparameter */
  RT_ERR_INPUT = 2,      /* an i32 input (a label) outside [0, label_bound) */
  RT_ERR_NO_LOSS = 3,    /* evaluate/backward/train_step on a model without a loss */
  RT_ERR_NONFINITE = 4,  /* the loss came out nan or inf; with check_numerics, any value */
  RT_ERR_CHECKPOINT = 5, /* save or load failed (message from safetensors.c) */
  RT_ERR_NOMEM = 6,      /* a temporary buffer could not be allocated */
};

#define SLAB_ALIGN 64

struct nncc_model {
  const rt_model_desc *desc;  /* constant, owned by the generated library */
  char *slab;                 /* desc->slab_bytes rounded up to SLAB_ALIGN */
  rt_pool *pool;              /* NULL: one thread (none could be started) */
  char last_error[256];       /* "" until a call fails; written by const entries too */
};

/* ------------------------------------------------------------- helpers */

static const char *model_name(const rt_model_desc *d) {
  return d->name ? d->name : "?";
}

/* Records the message of a failing call and returns its code. Takes a
 * const model because save() is const in the ABI: every nncc_model is
 * malloc'ed by rt_model_create, never a const object, so writing through
 * the cast is defined. The message buffer is the one mutable part. */
static int fail(const nncc_model *cm, int code, const char *fmt, ...) {
  nncc_model *m = (nncc_model *)cm;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(m->last_error, sizeof m->last_error, fmt, ap);
  va_end(ap);
  return code;
}

static int64_t numel_of(const nncc_tensor_info *t) {
  int64_t n = 1;
  for (int32_t i = 0; i < t->rank; i++) n *= t->shape[i];
  return n;
}

static bool index_ok(const nncc_model *m, int32_t i) {
  return i >= 0 && i < m->desc->n_tensors;
}

static void *ptr_of(const nncc_model *m, int32_t i) {
  return m->slab + m->desc->tensors[i].offset;
}

/* The scalar state i (f32 or i32) as a double. */
static double scalar_get(const nncc_model *m, int32_t i) {
  if (m->desc->infos[i].dtype == NNCC_I32) return *(const int32_t *)ptr_of(m, i);
  return *(const float *)ptr_of(m, i);
}

static void scalar_set(nncc_model *m, int32_t i, double v) {
  if (m->desc->infos[i].dtype == NNCC_I32)
    *(int32_t *)ptr_of(m, i) = (int32_t)v;
  else
    *(float *)ptr_of(m, i) = (float)v;
}

/* ------------------------------------------------------ create, destroy */

/* An i32 state with an initializer (rare: a counter starting at a
 * constant). Values are truncated and clamped into int32's range. */
static void init_i32(const nncc_tensor_info *t, const rt_tensor_desc *td, uint64_t seed,
                     int32_t *out) {
  double fan_in, fan_out;
  rt_init_fans(t->rank, t->shape, &fan_in, &fan_out);
  int64_t n = numel_of(t);
  for (int64_t k = 0; k < n; k++) {
    double v = rt_init_value(td->init_kind, td->init_args, fan_in, fan_out, seed, td->stream,
                             (uint64_t)k);
    if (isnan(v)) v = 0;
    out[k] = (int32_t)fmax(INT32_MIN, fmin(INT32_MAX, v));
  }
}

nncc_model *rt_model_create(const rt_model_desc *d, uint64_t seed) {
  if (!d || d->slab_bytes < 0 || d->n_tensors < 0) return NULL;
  if ((uint64_t)d->slab_bytes > (uint64_t)SIZE_MAX - 2 * SLAB_ALIGN) return NULL;
  /* aligned_alloc wants a multiple of the alignment, and not 0 */
  size_t bytes = ((size_t)d->slab_bytes + SLAB_ALIGN - 1) / SLAB_ALIGN * SLAB_ALIGN;
  if (bytes == 0) bytes = SLAB_ALIGN;

  nncc_model *m = calloc(1, sizeof *m);
  if (!m) return NULL;
  m->desc = d;
  m->slab = aligned_alloc(SLAB_ALIGN, bytes);
  if (!m->slab) {
    free(m);
    return NULL;
  }
  memset(m->slab, 0, bytes);

  for (int32_t i = 0; i < d->n_tensors; i++) {
    const nncc_tensor_info *t = &d->infos[i];
    const rt_tensor_desc *td = &d->tensors[i];
    /* the descriptor is generated: a bad one is a compiler bug */
    assert(td->offset >= 0 && td->offset % SLAB_ALIGN == 0 &&
           td->offset + td->nbytes <= d->slab_bytes && td->nbytes >= numel_of(t) * 4);
    assert(td->grad_offset == -1 ||
           (td->grad_offset >= 0 && td->grad_offset + td->nbytes <= d->slab_bytes));
    if (t->role != NNCC_PARAM && t->role != NNCC_STATE) continue;
    if (td->init_kind == RT_INIT_NONE || td->init_kind == RT_INIT_ZEROS) continue;  /* 0 already */
    if (t->dtype == NNCC_I32)
      init_i32(t, td, seed, (int32_t *)(m->slab + td->offset));
    else
      rt_init_fill_f32(td->init_kind, td->init_args, t->rank, t->shape, seed, td->stream,
                       (float *)(m->slab + td->offset));
  }
  /* no threads to be had is no failure: the kernels run on the caller's */
  int threads = rt_default_threads();
  if (threads > 1) m->pool = rt_pool_create(threads);
  return m;
}

static void model_destroy(nncc_model *m) {
  if (!m) return;
  rt_pool_destroy(m->pool);
  free(m->slab);
  free(m);
}

/* ---------------------------------------------------------- data, grad */

static void *model_data(nncc_model *m, int32_t i) {
  if (!m) return NULL;
  if (!index_ok(m, i)) {
    fail(m, RT_ERR_ARG, "tensor index %d is out of range [0, %d)", (int)i,
         (int)m->desc->n_tensors);
    return NULL;
  }
  return ptr_of(m, i);
}

/* NULL for a tensor without a gradient is the ABI's answer, not a
 * failure: last_error is left alone then. */
static float *model_grad(nncc_model *m, int32_t i) {
  if (!m) return NULL;
  if (!index_ok(m, i)) {
    fail(m, RT_ERR_ARG, "tensor index %d is out of range [0, %d)", (int)i,
         (int)m->desc->n_tensors);
    return NULL;
  }
  int64_t off = m->desc->tensors[i].grad_offset;
  return off < 0 ? NULL : (float *)(m->slab + off);
}

/* ------------------------------------------------------------- running */

/* Every i32 input with a label bound must lie in [0, bound): a kernel
 * indexes with it (one_hot, gather, cross_entropy) and would read or
 * write out of bounds otherwise. Checked before every kernel call. */
static int check_inputs(nncc_model *m) {
  const rt_model_desc *d = m->desc;
  for (int32_t i = 0; i < d->n_tensors; i++) {
    const nncc_tensor_info *t = &d->infos[i];
    int64_t bound = d->tensors[i].label_bound;
    if (t->role != NNCC_INPUT || t->dtype != NNCC_I32 || bound <= 0) continue;
    const int32_t *v = ptr_of(m, i);
    int64_t n = numel_of(t);
    for (int64_t k = 0; k < n; k++)
      if (v[k] < 0 || v[k] >= bound)
        return fail(m, RT_ERR_INPUT, "input '%s': value %d at index %lld is out of range [0, %lld)",
                    t->name, (int)v[k], (long long)k, (long long)bound);
  }
  return RT_OK;
}

/* Runs a loss kernel: inputs checked first, the loss checked after. The
 * step reported is train:step as it was before the call (the number of
 * updates done so far); a train_step with a non-finite loss has already
 * applied its update, which the caller may undo by loading a checkpoint. */
/* ------------------------------------------------------ check_numerics */

void rt_check_finite(const float *p, int64_t n, int32_t index, int32_t *slot) {
  for (int64_t k = 0; k < n; k++)
    if (!isfinite(p[k])) {
      int32_t code = 2 * index + (isinf(p[k]) ? 1 : 0);
      if (code < *slot) *slot = code;
      return;
    }
}

/* Runs kernel k; with check_numerics, fails the call naming the first
 * node that produced a nan or inf (model.h). The message says "at step
 * N" where the model has a step counter. */
static int run_checked(nncc_model *m, rt_kernel k, bool has_step, double step) {
  const rt_model_desc *d = m->desc;
  /* on when there is a node table: a zeroed descriptor leaves it off */
  int32_t *slot = d->nodes && d->numerics_offset >= 0 ? (int32_t *)(m->slab + d->numerics_offset) : NULL;
  if (slot) *slot = INT32_MAX;
  k(m->slab, m->pool);
  if (!slot || *slot == INT32_MAX) return RT_OK;
  int32_t index = *slot / 2;
  const char *what = *slot % 2 ? "inf" : "nan";
  char node[160] = "an unknown node", at[32] = "";
  if (d->nodes && index >= 0 && index < d->n_nodes) {
    const rt_node_desc *n = &d->nodes[index];
    const char *src = d->source && d->source[0] ? d->source : NULL;
    char loc[96] = "";
    if (n->line > 0 && src) snprintf(loc, sizeof loc, ", %s:%d:%d", src, (int)n->line, (int)n->col);
    else if (n->line > 0) snprintf(loc, sizeof loc, ", line %d:%d", (int)n->line, (int)n->col);
    if (n->name && n->name[0])
      snprintf(node, sizeof node, "'%s' (%s%s%s)", n->name, n->op, loc, n->backward ? ", backward pass" : "");
    else
      snprintf(node, sizeof node, "%%%d (%s%s%s)", (int)n->id, n->op, loc, n->backward ? ", backward pass" : "");
  }
  if (has_step) snprintf(at, sizeof at, " at step %.15g", step);
  return fail(m, RT_ERR_NONFINITE, "non-finite value (%s) first produced by %s%s", what, node, at);
}

static int run_loss_kernel(nncc_model *m, rt_kernel k) {
  if (!m) return RT_ERR_ARG;
  const rt_model_desc *d = m->desc;
  if (!k) return fail(m, RT_ERR_NO_LOSS, "model '%s' has no loss", model_name(d));
  int rc = check_inputs(m);
  if (rc) return rc;
  bool has_step = index_ok(m, d->step_index);
  double step = has_step ? scalar_get(m, d->step_index) : 0;
  rc = run_checked(m, k, has_step, step);
  if (rc) return rc;
  if (!index_ok(m, d->loss_index)) return RT_OK;
  float loss = *(const float *)ptr_of(m, d->loss_index);
  if (isfinite(loss)) return RT_OK;
  const char *what = isnan(loss) ? "nan" : loss > 0 ? "inf" : "-inf";
  if (has_step)
    return fail(m, RT_ERR_NONFINITE, "non-finite loss (%s) at step %.15g", what, step);
  return fail(m, RT_ERR_NONFINITE, "non-finite loss (%s)", what);
}

static int model_forward(nncc_model *m) {
  if (!m) return RT_ERR_ARG;
  if (!m->desc->forward)
    return fail(m, RT_ERR_ARG, "model '%s' has no forward kernel", model_name(m->desc));
  int rc = check_inputs(m);
  if (rc) return rc;
  bool has_step = index_ok(m, m->desc->step_index);
  return run_checked(m, m->desc->forward, has_step, has_step ? scalar_get(m, m->desc->step_index) : 0);
}

static int model_evaluate(nncc_model *m) {
  return run_loss_kernel(m, m ? m->desc->evaluate : NULL);
}

static int model_backward(nncc_model *m) {
  return run_loss_kernel(m, m ? m->desc->backward : NULL);
}

static int model_train_step(nncc_model *m) {
  return run_loss_kernel(m, m ? m->desc->train_step : NULL);
}

/* ------------------------------------------------------ hyperparameters */

/* lr: finite and >= 0. step: a whole number >= 0 that the state holds
 * exactly (f32: up to 2^24). total_steps: a whole number >= 1; a model
 * whose schedule does not use it has no such state, and setting it is
 * then a no-op (a trainer may set it for every model). */
static int model_set_hyper(nncc_model *m, const char *name, double v) {
  if (!m) return RT_ERR_ARG;
  const rt_model_desc *d = m->desc;
  if (!name) return fail(m, RT_ERR_ARG, "hyperparameter name is NULL");
  int32_t idx;
  double lo, hi;
  bool whole;
  if (strcmp(name, "lr") == 0) {
    idx = d->lr_index, lo = 0, hi = INFINITY, whole = false;
  } else if (strcmp(name, "step") == 0) {
    idx = d->step_index, lo = 0, hi = 16777216.0, whole = true;
  } else if (strcmp(name, "total_steps") == 0) {
    idx = d->total_steps_index, lo = 1, hi = 16777216.0, whole = true;
  } else {
    return fail(m, RT_ERR_ARG, "unknown hyperparameter '%s' (known: lr, step, total_steps)", name);
  }
  if (!(v >= lo && v < hi) || (whole && v != floor(v)))
    return fail(m, RT_ERR_ARG, "hyperparameter '%s': invalid value %g (%s)", name, v,
                whole ? (lo > 0 ? "want a whole number >= 1" : "want a whole number >= 0")
                      : "want a finite number >= 0");
  if (!index_ok(m, idx)) {
    if (strcmp(name, "total_steps") == 0) return RT_OK;
    return fail(m, RT_ERR_ARG, "model '%s' has no hyperparameter '%s' (it has no training graph)",
                model_name(d), name);
  }
  scalar_set(m, idx, v);
  return RT_OK;
}

/* ---------------------------------------------------------- checkpoints */

/* The persistent tensors (params, states: optimizer moments, train:step,
 * train:lr) as safetensors entries pointing into the slab. *n is set to
 * their count; NULL when out of memory (a model with none gets a
 * one-entry array so that NULL always means failure). */
static rt_st_tensor *persistent_tensors(const nncc_model *m, int *n) {
  const rt_model_desc *d = m->desc;
  rt_st_tensor *t = malloc(sizeof *t * ((size_t)d->n_tensors + 1));
  if (!t) return NULL;
  int c = 0;
  for (int32_t i = 0; i < d->n_tensors; i++) {
    if (!d->tensors[i].persistent) continue;
    const nncc_tensor_info *info = &d->infos[i];
    t[c++] = (rt_st_tensor){info->name, info->dtype, info->rank, info->shape, ptr_of(m, i)};
  }
  *n = c;
  return t;
}

int rt_model_save_meta(const nncc_model *m, const char *path, const rt_st_meta *meta, int n_meta) {
  if (!m) return RT_ERR_ARG;
  if (!path) return fail(m, RT_ERR_ARG, "checkpoint path is NULL");
  int n;
  rt_st_tensor *t = persistent_tensors(m, &n);
  rt_st_meta *all = malloc(sizeof *all * ((size_t)n_meta + 1));
  if (!t || !all) {
    free(t);
    free(all);
    return fail(m, RT_ERR_NOMEM, "%s: out of memory", path);
  }
  int k = 0;
  if (m->desc->fingerprint && m->desc->fingerprint[0]) all[k++] = (rt_st_meta){"fingerprint", m->desc->fingerprint};
  for (int i = 0; i < n_meta; i++)
    if (meta[i].key && strcmp(meta[i].key, "fingerprint")) all[k++] = meta[i];
  char err[sizeof m->last_error] = "";
  int rc = rt_st_save_meta(path, model_name(m->desc), all, k, t, n, err, sizeof err);
  free(t);
  free(all);
  if (rc) return fail(m, RT_ERR_CHECKPOINT, "%s", err[0] ? err : "cannot write checkpoint");
  return RT_OK;
}

static int model_save(const nncc_model *m, const char *path) {
  return rt_model_save_meta(m, path, NULL, 0);
}

/* A temporary copy of the persistent tensors: t[k].data points into the
 * returned buffer, in the order persistent_tensors() lists them. */
static char *staging_buffer(const nncc_model *m, rt_st_tensor *t) {
  const rt_model_desc *d = m->desc;
  size_t total = 0;
  for (int32_t i = 0; i < d->n_tensors; i++)
    if (d->tensors[i].persistent) total += (size_t)d->tensors[i].nbytes;
  char *tmp = malloc(total ? total : 1);
  if (!tmp) return NULL;
  size_t at = 0;
  for (int32_t i = 0, k = 0; i < d->n_tensors; i++) {
    if (!d->tensors[i].persistent) continue;
    t[k++].data = tmp + at;
    at += (size_t)d->tensors[i].nbytes;
  }
  return tmp;
}

/* Reads into a temporary copy and copies into the slab only when the
 * whole file was good: a failed load leaves the model untouched, even if
 * the reader failed halfway. What must agree, in the order it is
 * checked: the model name, the tensor list (names, dtypes, shapes), the
 * graph fingerprint. */
static int model_load(nncc_model *m, const char *path) {
  if (!m) return RT_ERR_ARG;
  if (!path) return fail(m, RT_ERR_ARG, "checkpoint path is NULL");
  const rt_model_desc *d = m->desc;
  int n;
  rt_st_tensor *t = persistent_tensors(m, &n);
  char *tmp = t ? staging_buffer(m, t) : NULL;
  if (!tmp) {
    free(t);
    return fail(m, RT_ERR_NOMEM, "%s: out of memory", path);
  }
  char err[sizeof m->last_error] = "";
  rt_st_meta_list meta;
  int rc = rt_st_load_meta(path, model_name(d), t, n, &meta, err, sizeof err);
  const char *want = d->fingerprint ? d->fingerprint : "";
  if (rc == 0 && want[0]) {
    const char *have = rt_st_meta_get(&meta, "fingerprint");
    if (!have) {
      rc = 1;
      snprintf(err, sizeof err, "%s: the checkpoint has no graph fingerprint (written by another tool or an "
               "older nncc): it cannot be told from another graph with the same tensors", path);
    } else if (strcmp(have, want)) {
      rc = 1;
      snprintf(err, sizeof err, "%s: a checkpoint of another graph of model '%s': the tensors agree, the graph "
               "or its training setup differs (fingerprint %.32s, this model's is %s)", path, model_name(d), have, want);
    }
  }
  rt_st_meta_free(&meta);
  if (rc == 0) {
    size_t at = 0;
    for (int32_t i = 0; i < d->n_tensors; i++) {
      if (!d->tensors[i].persistent) continue;
      memcpy(ptr_of(m, i), tmp + at, (size_t)d->tensors[i].nbytes);
      at += (size_t)d->tensors[i].nbytes;
    }
  }
  free(tmp);
  free(t);
  if (rc) return fail(m, RT_ERR_CHECKPOINT, "%s", err[0] ? err : "cannot read checkpoint");
  return RT_OK;
}

/* An optimizer or trainer state is named PARAM:SLOT or train:NAME. */
static bool is_training_state(const nncc_tensor_info *t) {
  return t->role == NNCC_STATE && strchr(t->name, ':');
}

int rt_model_load_weights(nncc_model *m, const char *path, int *n_loaded) {
  if (!m) return RT_ERR_ARG;
  if (!path) return fail(m, RT_ERR_ARG, "checkpoint path is NULL");
  const rt_model_desc *d = m->desc;
  int n;
  rt_st_tensor *t = persistent_tensors(m, &n);
  char *tmp = t ? staging_buffer(m, t) : NULL;
  bool *required = calloc((size_t)n + 1, sizeof *required), *found = calloc((size_t)n + 1, sizeof *found);
  if (!tmp || !required || !found) {
    free(t);
    free(tmp);
    free(required);
    free(found);
    return fail(m, RT_ERR_NOMEM, "%s: out of memory", path);
  }
  /* params must all be there; running statistics are taken when present;
   * optimizer moments and train:* stay as create() made them. The request
   * keeps the persistent tensors' order: slot[w] is the tensor id of t[w]. */
  int32_t *slot = malloc(sizeof *slot * ((size_t)n + 1));
  int w = 0, loaded = 0;
  for (int32_t i = 0, k = 0; slot && i < d->n_tensors; i++) {
    if (!d->tensors[i].persistent) continue;
    const nncc_tensor_info *info = &d->infos[i];
    if (!is_training_state(info)) {
      t[w] = t[k];
      required[w] = info->role == NNCC_PARAM;
      slot[w++] = i;
    }
    k++;
  }
  char err[sizeof m->last_error] = "";
  int rc = 1;
  if (slot) rc = rt_st_load_some(path, t, w, required, found, err, sizeof err);
  else snprintf(err, sizeof err, "%s: out of memory", path);
  for (int r = 0; rc == 0 && r < w; r++)
    if (found[r]) {
      memcpy(ptr_of(m, slot[r]), t[r].data, (size_t)d->tensors[slot[r]].nbytes);
      loaded++;
    }
  free(slot);
  free(tmp);
  free(t);
  free(required);
  free(found);
  if (rc) return fail(m, RT_ERR_CHECKPOINT, "%s", err[0] ? err : "cannot read checkpoint");
  if (n_loaded) *n_loaded = loaded;
  return RT_OK;
}

/* ------------------------------------------------------------- threads */

/* A new pool before the old one goes: on failure the instance keeps
 * running as it did. */
static int model_set_threads(nncc_model *m, int32_t n) {
  if (!m) return RT_ERR_ARG;
  if (n < 1 || n > RT_POOL_MAX_THREADS)
    return fail(m, RT_ERR_ARG, "thread count %d is out of range [1, %d]", (int)n, RT_POOL_MAX_THREADS);
  if (n == rt_pool_threads(m->pool)) return RT_OK;
  rt_pool *p = NULL;
  if (n > 1 && !(p = rt_pool_create(n)))
    return fail(m, RT_ERR_NOMEM, "cannot start %d threads", (int)n);
  rt_pool_destroy(m->pool);
  m->pool = p;
  return RT_OK;
}

static int32_t model_threads(const nncc_model *m) { return m ? rt_pool_threads(m->pool) : 0; }

/* ------------------------------------------------------------ the table */

static const char *model_last_error(const nncc_model *m) {
  return m ? m->last_error : "model is NULL";
}

const rt_model_desc *rt_model_desc_of(const nncc_model *m) {
  return m ? m->desc : NULL;
}

void rt_model_api_fill(nncc_model_api *api, const rt_model_desc *d,
                       nncc_model *(*create)(uint64_t seed)) {
  if (!api || !d) return;
  memset(api, 0, sizeof *api);
  api->abi_version = NNCC_ABI_VERSION;
  api->name = d->name;
  api->n_tensors = d->n_tensors;
  api->tensors = d->infos;
  api->create = create;
  api->destroy = model_destroy;
  api->data = model_data;
  api->grad = model_grad;
  api->forward = model_forward;
  api->evaluate = model_evaluate;
  api->backward = model_backward;
  api->train_step = model_train_step;
  api->set_hyper = model_set_hyper;
  api->save = model_save;
  api->load = model_load;
  api->last_error = model_last_error;
  api->fingerprint = d->fingerprint ? d->fingerprint : "";
  api->set_threads = model_set_threads;
  api->threads = model_threads;
}
