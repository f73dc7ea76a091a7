/* test_threads.c - results do not depend on the thread count: the same
 * model, seed and inputs on 1, 2, 3 and 7 threads give bit-identical
 * outputs, losses, gradients and updated params and optimizer state
 * (every tensor of the ABI table, byte for byte) after a few train steps,
 * on the examples and on conv/matmul/pool shapes that do not divide the
 * tile sizes or the task counts. Also: the thread count is the instance's
 * (set_threads/threads), and bad counts are refused with a message. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "tools/libnncc.h"

static const int thread_counts[] = {1, 2, 3, 7};
#define N_COUNTS (int)(sizeof thread_counts / sizeof thread_counts[0])
#define STEPS 3

static int64_t numel(const nncc_tensor_info *t) {
  int64_t n = 1;
  for (int d = 0; d < t->rank; d++) n *= t->shape[d];
  return n;
}

/* Inputs from a fixed generator: f32 in [-1, 1), i32 labels 0 or 1
 * (every classifier here has at least two classes). */
static void fill_inputs(const nncc_model_api *api, nncc_model *m) {
  uint64_t s = 0x9e3779b97f4a7c15u;
  for (int i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    if (t->role != NNCC_INPUT) continue;
    int64_t n = numel(t);
    if (t->dtype == NNCC_I32) {
      int32_t *p = api->data(m, i);
      for (int64_t k = 0; k < n; k++) p[k] = (int32_t)(k % 2);
    } else {
      float *p = api->data(m, i);
      for (int64_t k = 0; k < n; k++) {
        s = s * 6364136223846793005u + 1442695040888963407u;
        p[k] = (float)((double)(s >> 40) / (double)(1u << 24) * 2.0 - 1.0);
      }
    }
  }
}

/* Every tensor's bytes and every gradient's, concatenated (malloc'ed). */
static char *snapshot(const nncc_model_api *api, nncc_model *m, size_t *size) {
  size_t total = 0;
  for (int i = 0; i < api->n_tensors; i++) total += (size_t)numel(&api->tensors[i]) * 4 * 2;
  char *out = calloc(total + 1, 1), *p = out;
  ck_assert_ptr_nonnull(out);
  for (int i = 0; i < api->n_tensors; i++) {
    size_t bytes = (size_t)numel(&api->tensors[i]) * 4;
    memcpy(p, api->data(m, i), bytes);
    p += bytes;
    float *g = api->grad(m, i);
    if (g) memcpy(p, g, bytes);
    p += bytes;
  }
  *size = total;
  return out;
}

/* The name of the first tensor whose bytes differ, for the message. */
static const char *first_difference(const nncc_model_api *api, const char *a, const char *b) {
  size_t at = 0;
  for (int i = 0; i < api->n_tensors; i++) {
    size_t bytes = (size_t)numel(&api->tensors[i]) * 4;
    if (memcmp(a + at, b + at, bytes)) return api->tensors[i].name;
    if (memcmp(a + at + bytes, b + at + bytes, bytes)) return "a gradient";
    at += 2 * bytes;
  }
  return "?";
}

static char *run_on(const nncc_model_api *api, int threads, size_t *size) {
  nncc_model *m = api->create(7);
  ck_assert_ptr_nonnull(m);
  ck_assert_int_eq(api->set_threads(m, threads), 0);
  ck_assert_int_eq(api->threads(m), threads);
  fill_inputs(api, m);
  bool has_loss = false;
  for (int i = 0; i < api->n_tensors; i++) has_loss |= api->tensors[i].role == NNCC_LOSS;
  for (int s = 0; s < STEPS; s++) {
    int rc = has_loss ? api->train_step(m) : api->forward(m);
    ck_assert_msg(rc == 0, "%s: step %d on %d threads: %s", api->name, s, threads, api->last_error(m));
  }
  if (has_loss) ck_assert_int_eq(api->evaluate(m), 0);  /* outputs in evaluation mode too */
  char *snap = snapshot(api, m, size);
  api->destroy(m);
  return snap;
}

static void check_model(nncc_jit *j, const char *what) {
  const nncc_model_api *api = nncc_jit_model(j, NULL);
  ck_assert_ptr_nonnull(api);
  size_t size1;
  char *one = run_on(api, 1, &size1);
  for (int k = 1; k < N_COUNTS; k++) {
    size_t size;
    char *other = run_on(api, thread_counts[k], &size);
    ck_assert_uint_eq(size, size1);
    ck_assert_msg(!memcmp(one, other, size), "%s: %d threads differ from 1 thread first in %s", what,
                  thread_counts[k], first_difference(api, one, other));
    free(other);
  }
  free(one);
}

static void check_file(const char *rel) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", NNCC_SOURCE_DIR, rel);
  char *diag = NULL;
  nncc_jit *j = nncc_compile_file(path, NULL, &diag);
  ck_assert_msg(j != NULL, "%s", diag ? diag : "");
  free(diag);
  check_model(j, rel);
  nncc_jit_free(j);
}

static void check_source(const char *name, const char *src) {
  char *diag = NULL;
  nncc_jit *j = nncc_compile_string(name, src, NULL, &diag);
  ck_assert_msg(j != NULL, "%s", diag ? diag : "");
  free(diag);
  check_model(j, name);
  nncc_jit_free(j);
}

START_TEST(examples_identical_on_every_thread_count) {
  check_file("examples/mlp.nn");
  check_file("examples/lenet.nn");
  check_file("examples/spiral.nn");
  check_file("examples/sine.nn");
  check_file("bench/mlp_wide_bn.nn");
}
END_TEST

/* Convolutions whose every stride, pad, size and channel count is odd, a
 * generic (strided) path and the register-blocked one, pooling of both
 * kinds, matmuls whose columns leave a last task wider than the rest and
 * an edge, and a batch of 1. */
START_TEST(odd_shapes_identical_on_every_thread_count) {
  check_source("odd_conv.nn",
               "model odd {\n"
               "  input x: f32[5, 3, 23, 19]\n"
               "  input y: i32[5]\n"
               "  c1 = conv(x, 7, 3, pad = 1, act = relu)\n"      /* stride 1: blocked */
               "  c2 = conv(c1, 9, 5, stride = 2, pad = 3)\n"     /* stride 2: generic */
               "  c3 = conv(c2, 5, 3, stride = 3, pad = 2, act = tanh)\n"
               "  p = max_pool2d(c1, 2)\n"
               "  q = avg_pool2d(c1, 3, stride = 2)\n"
               "  f = concat([flatten(c3), flatten(p), flatten(q)], axis = 1)\n"
               "  h = dense(f, 77, relu)\n"
               "  logits = dense(h, 3)\n"
               "  output logits\n"
               "  loss cross_entropy(logits, y)\n"
               "}\n");
  check_source("odd_matmul.nn",
               "model wide {\n"
               "  input x: f32[37, 301]\n"
               "  input y: f32[37, 1000]\n"
               "  h = dense(x, 1000, gelu)\n"
               "  z = dense(h, 1000)\n"
               "  output z\n"
               "  loss mse(z, y)\n"
               "}\n");
  check_source("batch1.nn",
               "model one {\n"
               "  input x: f32[1, 2, 31, 31]\n"
               "  input y: i32[1]\n"
               "  c = conv(x, 33, 5, pad = 2, act = relu)\n"
               "  p = max_pool2d(c, 3)\n"
               "  logits = dense(flatten(p), 2)\n"
               "  output logits\n"
               "  loss cross_entropy(logits, y)\n"
               "}\n");
}
END_TEST

START_TEST(thread_count_is_set_and_checked) {
  char *diag = NULL;
  nncc_jit *j = nncc_compile_string("t.nn",
                                    "model t {\n  input x: f32[4, 3]\n  y = dense(x, 2)\n  output y\n}\n",
                                    NULL, &diag);
  ck_assert_msg(j != NULL, "%s", diag ? diag : "");
  free(diag);
  const nncc_model_api *api = nncc_jit_model(j, NULL);
  ck_assert_uint_eq(api->abi_version, 2);
  nncc_model *m = api->create(1);
  ck_assert_int_ge(api->threads(m), 1);
  ck_assert_int_eq(api->set_threads(m, 3), 0);
  ck_assert_int_eq(api->threads(m), 3);
  ck_assert_int_ne(api->set_threads(m, 0), 0);
  ck_assert_msg(strstr(api->last_error(m), "out of range") != NULL, "%s", api->last_error(m));
  ck_assert_int_ne(api->set_threads(m, 100000), 0);
  ck_assert_int_eq(api->threads(m), 3);  /* a refused count changes nothing */
  ck_assert_int_eq(api->forward(m), 0);
  ck_assert_int_eq(api->set_threads(m, 1), 0);
  ck_assert_int_eq(api->threads(m), 1);
  ck_assert_int_eq(api->forward(m), 0);
  api->destroy(m);
  /* NNCC_THREADS is create()'s default */
  setenv("NNCC_THREADS", "5", 1);
  m = api->create(1);
  ck_assert_int_eq(api->threads(m), 5);
  api->destroy(m);
  setenv("NNCC_THREADS", "zero", 1);  /* not a count: the CPUs instead */
  m = api->create(1);
  ck_assert_int_ge(api->threads(m), 1);
  api->destroy(m);
  unsetenv("NNCC_THREADS");
  nncc_jit_free(j);
}
END_TEST

int main(void) {
  Suite *s = suite_create("threads");
  TCase *tc = tcase_create("threads");
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, examples_identical_on_every_thread_count);
  tcase_add_test(tc, odd_shapes_identical_on_every_thread_count);
  tcase_add_test(tc, thread_count_is_set_and_checked);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
