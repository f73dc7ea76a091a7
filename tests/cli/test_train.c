/* test_train.c - `nncc train` / `nncc eval` end to end through the CLI:
 * real training to a real result (seeded), checkpoints, the CSV log,
 * and bad data and checkpoints (an error naming the file, exit 3, and no
 * file half-written). Fashion-MNIST is used when Debian's
 * dataset-fashion-mnist is installed; otherwise that test says so. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"

#define EX NNCC_SOURCE_DIR "/examples"
#define FMNIST "/usr/share/datasets/fashion-mnist"

static TuRun nncc(const char *fmt, ...) {
  char args[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  return tu_run(args, 600);
}

static char *tmpdir(void) {
  char *d = strdup("/tmp/nncc_train_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(d));
  return d;
}

static void rm_rf(const char *dir) {
  char cmd[600];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* The number after `key` in a line like "final: loss 0.1 accuracy 0.9". */
static double metric(const char *out, const char *key) {
  const char *p = strstr(out, key);
  ck_assert_msg(p != NULL, "no '%s' in:\n%s", key, out);
  return strtod(p + strlen(key), NULL);
}

START_TEST(sine_trains_below_0_01) {
  TuRun r = nncc("train %s/sine.nn --epochs 10 --quiet", EX);
  ck_assert_msg(r.status == 0, "exit %d\n%s", r.status, r.err);
  double mse = metric(r.out, "eval_loss ");
  ck_assert_msg(mse < 0.01, "sine eval MSE %g", mse);
  tu_run_free(&r);
}
END_TEST

START_TEST(spiral_above_95_percent) {
  TuRun r = nncc("train %s/spiral.nn --epochs 10 --quiet", EX);
  ck_assert_msg(r.status == 0, "exit %d\n%s", r.status, r.err);
  double acc = metric(r.out, "eval_accuracy ");
  ck_assert_msg(acc > 0.95, "spiral eval accuracy %g", acc);
  tu_run_free(&r);
}
END_TEST

START_TEST(progress_lines_and_seed) {
  TuRun a = nncc("train %s/spiral.nn --epochs 2 --seed 5", EX);
  TuRun b = nncc("train %s/spiral.nn --epochs 2 --seed 5 --quiet", EX);
  ck_assert_int_eq(a.status, 0);
  ck_assert_msg(strstr(a.err, "epoch 1/2") && strstr(a.err, "epoch 2/2") && strstr(a.err, "samples/s") &&
                    strstr(a.err, "acc"),
                "%s", a.err);
  ck_assert_str_eq(b.err, "");
  ck_assert_str_eq(a.out, b.out);  /* seeded: the same result */
  tu_run_free(&a);
  tu_run_free(&b);
}
END_TEST

START_TEST(save_resume_eval_and_log) {
  char *d = tmpdir();
  TuRun r = nncc("train %s/spiral.nn --epochs 3 --quiet --save %s/ck.safetensors --log %s/m.csv", EX, d, d);
  ck_assert_msg(r.status == 0, "%s", r.err);
  double acc = metric(r.out, "eval_accuracy ");
  tu_run_free(&r);
  char path[700];
  snprintf(path, sizeof path, "%s/m.csv", d);
  char *csv = tu_read_file(path, NULL);
  ck_assert_ptr_nonnull(csv);
  ck_assert_msg(!strncmp(csv, "epoch,loss,accuracy,eval_loss,eval_accuracy", 43) && strstr(csv, "\n3,"), "%s", csv);
  free(csv);
  /* eval of the checkpoint gives the accuracy training ended with */
  r = nncc("eval %s/spiral.nn --load %s/ck.safetensors", EX, d);
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(fabs(metric(r.out, "accuracy ") - acc) < 1e-9, "%s vs %g", r.out, acc);
  tu_run_free(&r);
  /* resuming continues the run (planned for 3 epochs, extended to 4)
   * from the checkpoint: a lower loss than a fresh run's first epoch */
  r = nncc("train %s/spiral.nn --epochs 4 --quiet --resume %s/ck.safetensors", EX, d);
  ck_assert_msg(r.status == 0, "%s", r.err);
  TuRun fresh = nncc("train %s/spiral.nn --epochs 1 --quiet", EX);
  ck_assert_msg(metric(r.out, "final: loss ") < metric(fresh.out, "final: loss "), "%s\n%s", r.out, fresh.out);
  tu_run_free(&r);
  tu_run_free(&fresh);
  rm_rf(d);
  free(d);
}
END_TEST

/* ------------------------------------------------------------ bad input */

static const char *idx_model =
    "model m {\n input x: f32[4, 4]\n input y: i32[4]\n loss cross_entropy(dense(x, 3), y)\n}\n"
    "train m {\n data = idx(x = \"x.idx\", y = \"y.idx\")\n optimizer = sgd(lr = 0.1)\n}\n";

/* An IDX file of n samples of `w` bytes each (or labels when w == 0). */
static void write_idx(const char *path, int n, int w, int truncate_by) {
  FILE *f = fopen(path, "wb");
  unsigned char hdr[12] = {0, 0, 8, (unsigned char)(w ? 2 : 1), 0, 0, 0, (unsigned char)n};
  fwrite(hdr, 1, 4 + 4, f);
  if (w) {
    unsigned char d[4] = {0, 0, 0, (unsigned char)w};
    fwrite(d, 1, 4, f);
  }
  int bytes = n * (w ? w : 1) - truncate_by;
  for (int i = 0; i < bytes; i++) fputc(w ? i % 200 : i % 3, f);
  fclose(f);
}

START_TEST(missing_and_truncated_idx) {
  char *d = tmpdir();
  char p[700];
  snprintf(p, sizeof p, "%s/m.nn", d);
  write_file(p, idx_model);
  char yp[700], xp[700], ck[700];
  snprintf(yp, sizeof yp, "%s/y.idx", d);
  snprintf(xp, sizeof xp, "%s/x.idx", d);
  snprintf(ck, sizeof ck, "%s/keep.safetensors", d);
  write_file(ck, "precious");
  write_idx(yp, 8, 0, 0);
  TuRun r = nncc("train %s --save %s", p, ck);
  ck_assert_msg(r.status == 3, "exit %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "x.idx") && strstr(r.err, "No such file"), "%s", r.err);
  tu_run_free(&r);
  write_idx(xp, 8, 4, 5);
  r = nncc("train %s --save %s", p, ck);
  ck_assert_msg(r.status == 3, "exit %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "x.idx") && strstr(r.err, "truncated"), "%s", r.err);
  tu_run_free(&r);
  char *kept = tu_read_file(ck, NULL);
  ck_assert_str_eq(kept, "precious");  /* nothing overwritten */
  free(kept);
  write_idx(xp, 8, 4, 0);
  r = nncc("train %s --quiet", p);
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  tu_run_free(&r);
  rm_rf(d);
  free(d);
}
END_TEST

START_TEST(csv_with_a_bad_row) {
  char *d = tmpdir();
  char p[700], csv[700];
  snprintf(p, sizeof p, "%s/m.nn", d);
  snprintf(csv, sizeof csv, "%s/d.csv", d);
  write_file(p, "model m {\n input x: f32[2, 2]\n input y: f32[2, 1]\n loss mse(dense(x, 1), y)\n}\n"
                "train m {\n data = csv(\"d.csv\", x = [0:2], y = 2)\n optimizer = sgd(lr = 0.1)\n}\n");
  write_file(csv, "a,b,c\n1,2,3\n4,5,6\n7,oops,9\n1,1,1\n");
  TuRun r = nncc("train %s", p);
  ck_assert_msg(r.status == 3, "exit %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "d.csv:4") && strstr(r.err, "oops"), "%s", r.err);
  tu_run_free(&r);
  write_file(csv, "a,b,c\n1,2,3\n4,5,6\n7,8,9\n1,1,1\n");
  r = nncc("train %s --quiet", p);
  ck_assert_msg(r.status == 0, "exit %d: %s", r.status, r.err);
  tu_run_free(&r);
  rm_rf(d);
  free(d);
}
END_TEST

START_TEST(bad_checkpoints) {
  char *d = tmpdir();
  char ck[700], other[700];
  snprintf(ck, sizeof ck, "%s/sine.safetensors", d);
  TuRun r = nncc("train %s/sine.nn --epochs 1 --quiet --save %s", EX, ck);
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  /* a checkpoint of another model */
  r = nncc("eval %s/spiral.nn --load %s", EX, ck);
  ck_assert_msg(r.status == 3, "exit %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, ck), "%s", r.err);
  tu_run_free(&r);
  /* truncated */
  size_t len;
  char *bytes = tu_read_file(ck, &len);
  snprintf(other, sizeof other, "%s/cut.safetensors", d);
  FILE *f = fopen(other, "wb");
  fwrite(bytes, 1, len / 2, f);
  fclose(f);
  free(bytes);
  r = nncc("eval %s/sine.nn --load %s", EX, other);
  ck_assert_msg(r.status == 3, "exit %d: %s", r.status, r.err);
  ck_assert_msg(strstr(r.err, "cut.safetensors"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("train %s/sine.nn --resume %s/none.safetensors", EX, d);
  ck_assert_msg(r.status == 3 && strstr(r.err, "none.safetensors"), "exit %d: %s", r.status, r.err);
  tu_run_free(&r);
  rm_rf(d);
  free(d);
}
END_TEST

/* ----------------------------------------------------------- real data */

START_TEST(fashion_mnist_one_epoch) {
  struct stat st;
  if (stat(FMNIST "/train-images-idx3-ubyte.gz", &st) != 0) {
    printf("SKIPPED: fashion_mnist_one_epoch: %s is not installed (apt-get install dataset-fashion-mnist)\n",
           FMNIST);
    return;
  }
  TuRun r = nncc("train %s/mlp.nn --epochs 1 --quiet", EX);
  ck_assert_msg(r.status == 0, "exit %d\n%s", r.status, r.err);
  double acc = metric(r.out, "eval_accuracy ");
  ck_assert_msg(acc > 0.80, "Fashion-MNIST test accuracy %g after one epoch", acc);
  tu_run_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("train");
  TCase *tc = tcase_create("cli");
  tcase_set_timeout(tc, 900);
  tcase_add_test(tc, sine_trains_below_0_01);
  tcase_add_test(tc, spiral_above_95_percent);
  tcase_add_test(tc, progress_lines_and_seed);
  tcase_add_test(tc, save_resume_eval_and_log);
  tcase_add_test(tc, missing_and_truncated_idx);
  tcase_add_test(tc, csv_with_a_bad_row);
  tcase_add_test(tc, bad_checkpoints);
  tcase_add_test(tc, fashion_mnist_one_epoch);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
