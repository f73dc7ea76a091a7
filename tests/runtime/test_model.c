/* test_model.c - the generic half of a compiled model (runtime/model.c),
 * driven by a descriptor written by hand with hand-written C kernels, the
 * way codegen's output would drive it: slab layout and initialization,
 * label checks before a kernel runs, loss checks after, hyperparameters,
 * checkpoints that round-trip and fail without touching the model, and
 * NULL tolerance of every entry. */
#include <check.h>
#include <sys/stat.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/model.h"
#include "runtime/runtime.h"

/* ------------------------------------------------------ the tiny model */

/* tensor ids and slab offsets (64-byte aligned, as the planner gives) */
enum { X, Y, W, LR, STEP, OUT, LOSS, N_TENSORS };
#define OFF_X 0
#define OFF_DX 64
#define OFF_Y 128
#define OFF_W 192
#define OFF_DW 256
#define OFF_LR 320
#define OFF_STEP 384
#define OFF_OUT 448
#define OFF_LOSS 512
#define SLAB_BYTES 516  /* not a multiple of 64: create rounds it up */

static const int64_t shape2[] = {2};

static const nncc_tensor_info infos[N_TENSORS] = {
  [X] = {"x", NNCC_INPUT, NNCC_F32, 1, shape2},
  [Y] = {"y", NNCC_INPUT, NNCC_I32, 1, shape2},
  [W] = {"w", NNCC_PARAM, NNCC_F32, 1, shape2},
  [LR] = {"train:lr", NNCC_STATE, NNCC_F32, 0, NULL},
  [STEP] = {"train:step", NNCC_STATE, NNCC_F32, 0, NULL},
  [OUT] = {"out", NNCC_OUTPUT, NNCC_F32, 1, shape2},
  [LOSS] = {"loss", NNCC_LOSS, NNCC_F32, 0, NULL},
};

static int kernel_calls;  /* every kernel counts itself */

#define F(slab, off) ((float *)((slab) + (off)))
#define I(slab, off) ((int32_t *)((slab) + (off)))

/* out = x * w */
static void k_forward(char *s, rt_pool *pool) {
  (void)pool;
  kernel_calls++;
  for (int k = 0; k < 2; k++) F(s, OFF_OUT)[k] = F(s, OFF_X)[k] * F(s, OFF_W)[k];
}

/* loss = sum(out) + 0.5 sum(y); a kernel that trusts its labels, as a
 * gather would */
static void loss_of(char *s) {
  float l = 0;
  for (int k = 0; k < 2; k++) {
    F(s, OFF_OUT)[k] = F(s, OFF_X)[k] * F(s, OFF_W)[k];
    l += F(s, OFF_OUT)[k] + 0.5f * (float)I(s, OFF_Y)[k];
  }
  *F(s, OFF_LOSS) = l;
}

static void k_evaluate(char *s, rt_pool *pool) {
  (void)pool;
  kernel_calls++;
  loss_of(s);
}

/* d loss / d x = w, d loss / d w = x */
static void k_backward(char *s, rt_pool *pool) {
  (void)pool;
  kernel_calls++;
  loss_of(s);
  for (int k = 0; k < 2; k++) {
    F(s, OFF_DX)[k] = F(s, OFF_W)[k];
    F(s, OFF_DW)[k] = F(s, OFF_X)[k];
  }
}

/* sgd: w -= lr dw; step += 1 */
static void k_train_step(char *s, rt_pool *pool) {
  (void)pool;
  k_backward(s, pool);  /* counts this call */
  for (int k = 0; k < 2; k++) F(s, OFF_W)[k] -= *F(s, OFF_LR) * F(s, OFF_DW)[k];
  *F(s, OFF_STEP) += 1;
}

static rt_tensor_desc tdescs[N_TENSORS];
static rt_model_desc desc;
static nncc_model_api api;

static nncc_model *tiny_create(uint64_t seed) {
  return rt_model_create(&desc, seed);
}

/* Built at run time: rt_stream_of is a function, not a constant. */
static void setup(void) {
  rt_tensor_desc none = {.grad_offset = -1};
  for (int i = 0; i < N_TENSORS; i++) tdescs[i] = none;
  tdescs[X].offset = OFF_X, tdescs[X].grad_offset = OFF_DX, tdescs[X].nbytes = 8;
  tdescs[Y].offset = OFF_Y, tdescs[Y].nbytes = 8, tdescs[Y].label_bound = 3;
  tdescs[W] = (rt_tensor_desc){OFF_W, OFF_DW, 8, RT_INIT_HE_UNIFORM, {0, 0}, rt_stream_of("w"), 0, 1};
  tdescs[LR] = (rt_tensor_desc){OFF_LR, -1, 4, RT_INIT_CONSTANT, {0.1, 0}, rt_stream_of("train:lr"), 0, 1};
  tdescs[STEP] = (rt_tensor_desc){OFF_STEP, -1, 4, RT_INIT_ZEROS, {0, 0}, rt_stream_of("train:step"), 0, 1};
  tdescs[OUT].offset = OFF_OUT, tdescs[OUT].nbytes = 8;
  tdescs[LOSS].offset = OFF_LOSS, tdescs[LOSS].nbytes = 4;
  desc = (rt_model_desc){
    .name = "tiny", .n_tensors = N_TENSORS, .infos = infos, .tensors = tdescs,
    .slab_bytes = SLAB_BYTES, .forward = k_forward, .evaluate = k_evaluate,
    .backward = k_backward, .train_step = k_train_step, .loss_index = LOSS,
    .lr_index = LR, .step_index = STEP, .total_steps_index = -1,
  };
  rt_model_api_fill(&api, &desc, tiny_create);
  kernel_calls = 0;
}

static float *fdata(nncc_model *m, int i) {
  return api.data(m, i);
}

static void set_inputs(nncc_model *m, float x0, float x1, int32_t y0, int32_t y1) {
  fdata(m, X)[0] = x0, fdata(m, X)[1] = x1;
  int32_t *y = api.data(m, Y);
  y[0] = y0, y[1] = y1;
}

/* A fresh file name in the temporary directory; malloc'ed. */
static char *temp_path(const char *suffix) {
  const char *dir = getenv("TMPDIR");
  char tmpl[4096];
  snprintf(tmpl, sizeof tmpl, "%s/nncc_model_XXXXXX", dir && *dir ? dir : "/tmp");
  int fd = mkstemp(tmpl);
  ck_assert_int_ge(fd, 0);
  close(fd);
  unlink(tmpl);
  size_t n = strlen(tmpl) + strlen(suffix) + 1;
  char *p = malloc(n);
  snprintf(p, n, "%s%s", tmpl, suffix);
  return p;
}

static void write_bytes(const char *path, const void *b, size_t n) {
  FILE *f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(b, 1, n, f), n);
  fclose(f);
}

static char *read_bytes(const char *path, size_t *n) {
  FILE *f = fopen(path, "rb");
  ck_assert_ptr_nonnull(f);
  fseek(f, 0, SEEK_END);
  long len = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *b = malloc((size_t)len + 1);
  ck_assert_uint_eq(fread(b, 1, (size_t)len, f), (size_t)len);
  fclose(f);
  *n = (size_t)len;
  return b;
}

/* ------------------------------------------------------ create and api */

START_TEST(api_table_is_filled) {
  ck_assert_uint_eq(api.abi_version, NNCC_ABI_VERSION);
  ck_assert_str_eq(api.name, "tiny");
  ck_assert_int_eq(api.n_tensors, N_TENSORS);
  ck_assert_ptr_eq(api.tensors, infos);
  ck_assert_ptr_eq(api.create, tiny_create);
  ck_assert(api.destroy && api.data && api.grad && api.forward && api.evaluate && api.backward &&
            api.train_step && api.set_hyper && api.save && api.load && api.last_error);
  nncc_model *m = api.create(1);
  ck_assert_ptr_nonnull(m);
  ck_assert_ptr_eq(rt_model_desc_of(m), &desc);
  ck_assert_str_eq(api.last_error(m), "");
  api.destroy(m);
}
END_TEST

START_TEST(create_initializes_params_by_seed) {
  nncc_model *a = api.create(7), *b = api.create(7), *c = api.create(8);
  float want[2];
  rt_init_fill_f32(RT_INIT_HE_UNIFORM, tdescs[W].init_args, 1, shape2, 7, rt_stream_of("w"), want);
  ck_assert(memcmp(fdata(a, W), want, sizeof want) == 0);
  ck_assert(memcmp(fdata(a, W), fdata(b, W), sizeof want) == 0);
  ck_assert(memcmp(fdata(a, W), fdata(c, W), sizeof want) != 0);
  /* he_uniform over fan_in 2: within sqrt(3) */
  for (int k = 0; k < 2; k++) ck_assert(fabsf(fdata(a, W)[k]) <= sqrtf(3.0f));
  ck_assert(*fdata(a, LR) == 0.1f);
  ck_assert(*fdata(a, STEP) == 0.0f);
  /* everything else starts at zero */
  for (int k = 0; k < 2; k++) {
    ck_assert(fdata(a, X)[k] == 0 && fdata(a, OUT)[k] == 0 && api.grad(a, W)[k] == 0);
    ck_assert_int_eq(((int32_t *)api.data(a, Y))[k], 0);
  }
  ck_assert(*fdata(a, LOSS) == 0);
  ck_assert_int_eq(kernel_calls, 0);
  api.destroy(a);
  api.destroy(b);
  api.destroy(c);
}
END_TEST

START_TEST(pointers_are_aligned_and_distinct) {
  nncc_model *m = api.create(1);
  void *p[2 * N_TENSORS];
  int n = 0;
  for (int i = 0; i < N_TENSORS; i++) {
    p[n] = api.data(m, i);
    ck_assert_ptr_nonnull(p[n]);
    ck_assert_uint_eq((uintptr_t)p[n] % 64, 0);
    n++;
  }
  for (int i = 0; i < N_TENSORS; i++) {
    float *g = api.grad(m, i);
    if (i == X || i == W) {
      ck_assert_ptr_nonnull(g);
      ck_assert_uint_eq((uintptr_t)g % 64, 0);
      p[n++] = g;
    } else {
      ck_assert_ptr_null(g);
    }
  }
  for (int i = 0; i < n; i++)
    for (int j = i + 1; j < n; j++) ck_assert_ptr_ne(p[i], p[j]);
  ck_assert_str_eq(api.last_error(m), "");  /* a NULL grad is no failure */
  api.destroy(m);
}
END_TEST

START_TEST(bad_indices_are_errors) {
  nncc_model *m = api.create(1);
  ck_assert_ptr_null(api.data(m, -1));
  ck_assert_str_eq(api.last_error(m), "tensor index -1 is out of range [0, 7)");
  ck_assert_ptr_null(api.data(m, N_TENSORS));
  ck_assert_str_eq(api.last_error(m), "tensor index 7 is out of range [0, 7)");
  ck_assert_ptr_null(api.grad(m, 100));
  ck_assert_str_eq(api.last_error(m), "tensor index 100 is out of range [0, 7)");
  api.destroy(m);
}
END_TEST

START_TEST(null_model_is_tolerated) {
  api.destroy(NULL);
  ck_assert_ptr_null(api.data(NULL, 0));
  ck_assert_ptr_null(api.grad(NULL, 0));
  ck_assert_int_ne(api.forward(NULL), 0);
  ck_assert_int_ne(api.evaluate(NULL), 0);
  ck_assert_int_ne(api.backward(NULL), 0);
  ck_assert_int_ne(api.train_step(NULL), 0);
  ck_assert_int_ne(api.set_hyper(NULL, "lr", 0.1), 0);
  ck_assert_int_ne(api.save(NULL, "/nonexistent/x"), 0);
  ck_assert_int_ne(api.load(NULL, "/nonexistent/x"), 0);
  ck_assert_ptr_nonnull(api.last_error(NULL));
  ck_assert_ptr_null(rt_model_desc_of(NULL));
  ck_assert_ptr_null(rt_model_create(NULL, 1));
  rt_model_api_fill(NULL, &desc, tiny_create);  /* no crash */
  nncc_model *m = api.create(1);
  ck_assert_int_ne(api.set_hyper(m, NULL, 0.1), 0);
  ck_assert_int_ne(api.save(m, NULL), 0);
  ck_assert_int_ne(api.load(m, NULL), 0);
  api.destroy(m);
  ck_assert_int_eq(kernel_calls, 0);
}
END_TEST

/* ------------------------------------------------------------- running */

START_TEST(forward_evaluate_backward_train_step) {
  nncc_model *m = api.create(3);
  float w0 = fdata(m, W)[0], w1 = fdata(m, W)[1];
  set_inputs(m, 2, -1, 1, 2);
  ck_assert_int_eq(api.forward(m), 0);
  ck_assert_int_eq(kernel_calls, 1);
  ck_assert(fdata(m, OUT)[0] == 2 * w0 && fdata(m, OUT)[1] == -w1);

  ck_assert_int_eq(api.evaluate(m), 0);
  ck_assert(*fdata(m, LOSS) == 2 * w0 - w1 + 1.5f);

  ck_assert_int_eq(api.backward(m), 0);
  ck_assert(api.grad(m, W)[0] == 2 && api.grad(m, W)[1] == -1);
  ck_assert(api.grad(m, X)[0] == w0 && api.grad(m, X)[1] == w1);
  ck_assert(fdata(m, W)[0] == w0);  /* no update */

  ck_assert_int_eq(api.train_step(m), 0);
  ck_assert(fdata(m, W)[0] == w0 - 0.1f * 2.0f);
  ck_assert(fdata(m, W)[1] == w1 - 0.1f * -1.0f);
  ck_assert(*fdata(m, STEP) == 1);
  ck_assert_int_eq(kernel_calls, 4);
  ck_assert_str_eq(api.last_error(m), "");
  api.destroy(m);
}
END_TEST

START_TEST(out_of_range_label_is_an_error) {
  nncc_model *m = api.create(1);
  int (*entry[])(nncc_model *) = {api.forward, api.evaluate, api.backward, api.train_step};
  for (int e = 0; e < 4; e++) {
    set_inputs(m, 1, 1, 0, 3);
    ck_assert_int_eq(entry[e](m), 2);
    ck_assert_str_eq(api.last_error(m), "input 'y': value 3 at index 1 is out of range [0, 3)");
    set_inputs(m, 1, 1, -1, 0);
    ck_assert_int_eq(entry[e](m), 2);
    ck_assert_str_eq(api.last_error(m), "input 'y': value -1 at index 0 is out of range [0, 3)");
  }
  ck_assert_int_eq(kernel_calls, 0);
  ck_assert(*fdata(m, STEP) == 0);
  /* the bound is exclusive, 0 and bound - 1 pass */
  set_inputs(m, 1, 1, 0, 2);
  ck_assert_int_eq(api.train_step(m), 0);
  ck_assert_int_eq(kernel_calls, 1);
  api.destroy(m);
}
END_TEST

START_TEST(non_finite_loss_is_an_error) {
  nncc_model *m = api.create(1);
  set_inputs(m, 1, 1, 0, 0);
  ck_assert_int_eq(api.train_step(m), 0);
  ck_assert_int_eq(api.train_step(m), 0);
  fdata(m, X)[0] = NAN;
  ck_assert_int_eq(api.train_step(m), 4);
  ck_assert_str_eq(api.last_error(m), "non-finite loss (nan) at step 2");
  ck_assert_int_eq(api.evaluate(m), 4);
  ck_assert_int_eq(api.backward(m), 4);
  ck_assert_str_eq(api.last_error(m), "non-finite loss (nan) at step 3");
  /* forward has no loss to check */
  ck_assert_int_eq(api.forward(m), 0);

  nncc_model *n = api.create(1);
  fdata(n, X)[0] = INFINITY;
  fdata(n, W)[0] = 1;
  ck_assert_int_eq(api.evaluate(n), 4);
  ck_assert_str_eq(api.last_error(n), "non-finite loss (inf) at step 0");
  api.destroy(n);
  api.destroy(m);
}
END_TEST

START_TEST(model_without_loss) {
  desc.evaluate = desc.backward = desc.train_step = NULL;
  desc.loss_index = desc.lr_index = desc.step_index = -1;
  nncc_model *m = api.create(1);
  ck_assert_int_eq(api.evaluate(m), 3);
  ck_assert_str_eq(api.last_error(m), "model 'tiny' has no loss");
  ck_assert_int_eq(api.backward(m), 3);
  ck_assert_int_eq(api.train_step(m), 3);
  ck_assert_int_eq(kernel_calls, 0);
  ck_assert_int_eq(api.forward(m), 0);
  ck_assert_int_ne(api.set_hyper(m, "lr", 0.1), 0);
  ck_assert_str_eq(api.last_error(m), "model 'tiny' has no hyperparameter 'lr' (it has no training graph)");
  api.destroy(m);
}
END_TEST

/* An i32 state with an initializer is filled with rt_init_value cast to
 * int32, and step reads and writes it as an integer. */
START_TEST(i32_state_is_initialized) {
  static nncc_tensor_info infos_i32[N_TENSORS];
  memcpy(infos_i32, infos, sizeof infos);
  infos_i32[STEP].dtype = NNCC_I32;
  tdescs[STEP].init_kind = RT_INIT_CONSTANT;
  tdescs[STEP].init_args[0] = 7.9;
  desc.infos = infos_i32;
  nncc_model *m = api.create(1);
  ck_assert_int_eq(*(int32_t *)api.data(m, STEP), 7);
  fdata(m, X)[0] = NAN;
  ck_assert_int_eq(api.evaluate(m), 4);
  ck_assert_str_eq(api.last_error(m), "non-finite loss (nan) at step 7");
  ck_assert_int_eq(api.set_hyper(m, "step", 3), 0);
  ck_assert_int_eq(*(int32_t *)api.data(m, STEP), 3);
  api.destroy(m);
}
END_TEST

/* ------------------------------------------------------ hyperparameters */

START_TEST(set_hyper_lr_changes_the_update) {
  nncc_model *m = api.create(5);
  float w0 = fdata(m, W)[0];
  set_inputs(m, 1, 0, 0, 0);
  ck_assert_int_eq(api.set_hyper(m, "lr", 0.5), 0);
  ck_assert(*fdata(m, LR) == 0.5f);
  ck_assert_int_eq(api.train_step(m), 0);
  ck_assert(fdata(m, W)[0] == w0 - 0.5f);
  ck_assert_int_eq(api.set_hyper(m, "lr", 0), 0);
  ck_assert_int_eq(api.train_step(m), 0);
  ck_assert(fdata(m, W)[0] == w0 - 0.5f);
  ck_assert_int_eq(api.set_hyper(m, "step", 10), 0);
  ck_assert(*fdata(m, STEP) == 10);
  /* the model's schedule does not use total_steps: accepted, no state */
  ck_assert_int_eq(api.set_hyper(m, "total_steps", 100), 0);
  api.destroy(m);
}
END_TEST

START_TEST(bad_hyperparameters_are_errors) {
  nncc_model *m = api.create(5);
  ck_assert_int_ne(api.set_hyper(m, "foo", 1), 0);
  ck_assert_str_eq(api.last_error(m), "unknown hyperparameter 'foo' (known: lr, step, total_steps)");
  ck_assert_int_ne(api.set_hyper(m, "lr", NAN), 0);
  ck_assert_int_ne(api.set_hyper(m, "lr", -0.1), 0);
  ck_assert_str_eq(api.last_error(m),
                   "hyperparameter 'lr': invalid value -0.1 (want a finite number >= 0)");
  ck_assert_int_ne(api.set_hyper(m, "lr", INFINITY), 0);
  ck_assert_int_ne(api.set_hyper(m, "step", 1.5), 0);
  ck_assert_int_ne(api.set_hyper(m, "step", -1), 0);
  ck_assert_int_ne(api.set_hyper(m, "total_steps", 0), 0);
  ck_assert(*fdata(m, LR) == 0.1f);
  ck_assert(*fdata(m, STEP) == 0);
  api.destroy(m);
}
END_TEST

/* ---------------------------------------------------------- checkpoints */

static bool persistent_equal(nncc_model *a, nncc_model *b) {
  for (int i = 0; i < N_TENSORS; i++)
    if (tdescs[i].persistent &&
        memcmp(api.data(a, i), api.data(b, i), (size_t)tdescs[i].nbytes) != 0)
      return false;
  return true;
}

START_TEST(save_then_load_round_trips) {
  nncc_model *a = api.create(1), *b = api.create(2);
  set_inputs(a, 1, 2, 0, 1);
  api.set_hyper(a, "lr", 0.25);
  for (int s = 0; s < 3; s++) ck_assert_int_eq(api.train_step(a), 0);
  ck_assert(!persistent_equal(a, b));
  char *path = temp_path(".safetensors");
  ck_assert_int_eq(api.save(a, path), 0);
  ck_assert_int_eq(api.load(b, path), 0);
  ck_assert(persistent_equal(a, b));
  ck_assert(*fdata(b, STEP) == 3 && *fdata(b, LR) == 0.25f);
  /* inputs are not part of a checkpoint */
  ck_assert(fdata(b, X)[0] == 0);
  /* b now trains exactly as a does */
  set_inputs(b, 1, 2, 0, 1);
  ck_assert_int_eq(api.train_step(a), 0);
  ck_assert_int_eq(api.train_step(b), 0);
  ck_assert(persistent_equal(a, b));
  unlink(path);
  free(path);
  api.destroy(a);
  api.destroy(b);
}
END_TEST

/* A failed load leaves every byte of the slab as it was. */
static void load_fails_untouched(nncc_model *m, const char *path) {
  char before[SLAB_BYTES];
  memcpy(before, api.data(m, 0), SLAB_BYTES);
  ck_assert_int_ne(api.load(m, path), 0);
  ck_assert_str_ne(api.last_error(m), "");
  ck_assert(memcmp(before, api.data(m, 0), SLAB_BYTES) == 0);
}

START_TEST(bad_checkpoints_leave_the_model_unchanged) {
  nncc_model *a = api.create(1), *b = api.create(2);
  set_inputs(a, 1, 2, 0, 1);
  ck_assert_int_eq(api.train_step(a), 0);
  char *path = temp_path(".safetensors"), *bad = temp_path(".safetensors");
  ck_assert_int_eq(api.save(a, path), 0);
  size_t n;
  char *bytes = read_bytes(path, &n);
  ck_assert_uint_gt(n, 16);
  set_inputs(b, 3, 4, 2, 2);

  load_fails_untouched(b, "/nonexistent/dir/ckpt.safetensors");
  ck_assert_ptr_nonnull(strstr(api.last_error(b), "/nonexistent/dir/ckpt.safetensors"));
  /* truncated at every length from empty to one byte short */
  for (size_t len = 0; len < n; len += len < 64 ? 1 : 7) {
    write_bytes(bad, bytes, len);
    load_fails_untouched(b, bad);
  }
  write_bytes(bad, bytes, n - 1);
  load_fails_untouched(b, bad);
  /* garbage */
  char junk[300];
  for (size_t k = 0; k < sizeof junk; k++) junk[k] = (char)(k * 37 + 11);
  write_bytes(bad, junk, sizeof junk);
  load_fails_untouched(b, bad);
  /* a corrupt length prefix */
  bytes[0] ^= 0x55;
  write_bytes(bad, bytes, n);
  load_fails_untouched(b, bad);

  /* the good file still loads */
  ck_assert_int_eq(api.load(b, path), 0);
  ck_assert(persistent_equal(a, b));
  unlink(path);
  unlink(bad);
  free(bytes);
  free(path);
  free(bad);
  api.destroy(a);
  api.destroy(b);
}
END_TEST

START_TEST(save_failure_is_an_error) {
  nncc_model *m = api.create(1);
  ck_assert_int_ne(api.save(m, "/nonexistent/dir/ckpt.safetensors"), 0);
  ck_assert_str_ne(api.last_error(m), "");
  api.destroy(m);
}
END_TEST

/* The ABI's save() to a device that is full: an error naming ENOSPC
 * (it returned 0 before, having replaced nothing and written nothing),
 * and /dev/full is still a device. */
START_TEST(save_to_a_full_device_is_an_error) {
  nncc_model *m = api.create(1);
  ck_assert_int_eq(api.save(m, "/dev/full"), 5);
  ck_assert_msg(strstr(api.last_error(m), "No space left on device"), "%s", api.last_error(m));
  struct stat st;
  ck_assert(stat("/dev/full", &st) == 0 && S_ISCHR(st.st_mode));
  api.destroy(m);
}
END_TEST

/* A checkpoint of another graph (same tensors, another fingerprint) is
 * refused by load() and taken by rt_model_load_weights(); a checkpoint
 * without a fingerprint is refused when the model has one. */
START_TEST(fingerprints_guard_load) {
  desc.fingerprint = "00000000000000aa";
  rt_model_api_fill(&api, &desc, tiny_create);
  ck_assert_str_eq(api.fingerprint, "00000000000000aa");
  nncc_model *a = api.create(1);
  set_inputs(a, 1, 2, 0, 1);
  ck_assert_int_eq(api.train_step(a), 0);
  char *path = temp_path(".safetensors");
  ck_assert_int_eq(api.save(a, path), 0);
  desc.fingerprint = "00000000000000bb";
  nncc_model *b = api.create(2);
  load_fails_untouched(b, path);
  ck_assert_msg(strstr(api.last_error(b), "another graph") && strstr(api.last_error(b), "00000000000000aa"), "%s",
                api.last_error(b));
  int n = 0;
  ck_assert_int_eq(rt_model_load_weights(b, path, &n), 0);
  ck_assert_int_eq(n, 1);  /* w; train:lr and train:step stay fresh */
  ck_assert(fdata(b, W)[0] == fdata(a, W)[0] && fdata(b, W)[1] == fdata(a, W)[1]);
  ck_assert(*fdata(b, STEP) == 0);
  /* no fingerprint in the file */
  desc.fingerprint = NULL;
  nncc_model *c = api.create(1);
  ck_assert_int_eq(api.save(c, path), 0);
  desc.fingerprint = "00000000000000bb";
  load_fails_untouched(b, path);
  ck_assert_msg(strstr(api.last_error(b), "no graph fingerprint"), "%s", api.last_error(b));
  desc.fingerprint = NULL;
  unlink(path);
  free(path);
  api.destroy(a);
  api.destroy(b);
  api.destroy(c);
}
END_TEST

int main(void) {
  Suite *s = suite_create("model");
  TCase *tc = tcase_create("model");
  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, api_table_is_filled);
  tcase_add_test(tc, create_initializes_params_by_seed);
  tcase_add_test(tc, pointers_are_aligned_and_distinct);
  tcase_add_test(tc, bad_indices_are_errors);
  tcase_add_test(tc, null_model_is_tolerated);
  tcase_add_test(tc, forward_evaluate_backward_train_step);
  tcase_add_test(tc, out_of_range_label_is_an_error);
  tcase_add_test(tc, non_finite_loss_is_an_error);
  tcase_add_test(tc, model_without_loss);
  tcase_add_test(tc, i32_state_is_initialized);
  tcase_add_test(tc, set_hyper_lr_changes_the_update);
  tcase_add_test(tc, bad_hyperparameters_are_errors);
  tcase_add_test(tc, save_then_load_round_trips);
  tcase_add_test(tc, bad_checkpoints_leave_the_model_unchanged);
  tcase_add_test(tc, save_failure_is_an_error);
  tcase_add_test(tc, save_to_a_full_device_is_an_error);
  tcase_add_test(tc, fingerprints_guard_load);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
