/* test_runs.c - nothing lost, nothing silently wrong (issue 8): a run
 * resumed after a SIGKILL ends byte-identical to the uninterrupted one,
 * evaluation counts every sample, checkpoints know their graph, outputs
 * never replace what they point at, a late failure keeps what was done,
 * FIFOs do not hang, and the command line refuses what it would ignore.
 * Through the real nncc binary, in a temporary directory per case. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define EX NNCC_SOURCE_DIR "/examples"

static TuRun nncc(const char *fmt, ...) {
  char args[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  return tu_run(args, 300);
}

static char dir[64];

static void setup(void) {
  snprintf(dir, sizeof dir, "/tmp/nncc_runs_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
  ck_assert_int_eq(system(cmd), 0);
}

static char *at(const char *name) {
  static char buf[4][256];
  static int k;
  k = (k + 1) % 4;
  snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
  return buf[k];
}

static void write_file(const char *path, const char *text) {
  FILE *f = fopen(path, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

static char *slurp(const char *path, size_t *len) {
  char *s = tu_read_file(path, len);
  ck_assert_msg(s != NULL, "cannot read %s", path);
  return s;
}

static double metric(const char *out, const char *key) {
  const char *p = strstr(out, key);
  ck_assert_msg(p != NULL, "no '%s' in:\n%s", key, out);
  return strtod(p + strlen(key), NULL);
}

/* Files in dir whose name contains "tmp" (left-over temporaries). */
static int temporaries(void) {
  DIR *d = opendir(dir);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += strstr(e->d_name, ".tmp") != NULL;
  if (d) closedir(d);
  return n;
}

/* ------------------------------------------------------------- resume */

/* spiral with a cosine schedule and dropout: the lr, the data order and
 * the dropout masks all depend on where the run is */
static const char *cosine_spiral =
    "const B = 50\n"
    "model spiral {\n"
    "  input x: f32[B, 2]\n  input y: i32[B]\n"
    "  h = dropout(dense(x, 32, relu), 0.1)\n"
    "  logits = dense(h, 3)\n  output logits\n  loss cross_entropy(logits, y)\n}\n"
    "train spiral {\n"
    "  data = spiral(n = 600, classes = 3)\n  eval = spiral(n = 310, classes = 3)\n"
    "  optimizer = adam(lr = 0.01)\n  schedule = cosine(warmup = 5)\n  epochs = 4\n  seed = 3\n"
    "  metrics = [accuracy]\n}\n";

/* Item 1: a run SIGKILLed right after its k-th checkpoint - the end of
 * an epoch, or a --save-every step inside one (NNCC_KILL_AFTER_CHECKPOINT
 * makes the kill land exactly there) - then resumed, ends with the
 * checkpoint and the final metrics of the uninterrupted run, byte for
 * byte, and its log has each epoch once. 12 steps an epoch, a
 * checkpoint every 5 steps too: checkpoints at steps 5, 10, 12, 15, ... */
START_TEST(resume_after_sigkill_is_byte_identical) {
  write_file(at("m.nn"), cosine_spiral);
  TuRun r = nncc("train %s --quiet --save %s --log %s", at("m.nn"), at("full.ck"), at("full.csv"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  char *full_out = strdup(r.out);
  tu_run_free(&r);
  size_t la;
  char *a = slurp(at("full.ck"), &la);
  const int cuts[] = {3, 2, 7};  /* after epoch 1; mid-epoch 1 (step 10); mid-epoch 3 (step 25) */
  for (int c = 0; c < 3; c++) {
    unlink(at("cut.ck"));
    unlink(at("cut.csv"));
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "NNCC_KILL_AFTER_CHECKPOINT=%d %s train %s --quiet --save %s --save-every 5 --log %s",
             cuts[c], NNCC_BIN, at("m.nn"), at("cut.ck"), at("cut.csv"));
    int st = system(cmd);
    ck_assert_msg(WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) == 128 + SIGKILL), "cut %d: not killed (%d)",
                  cuts[c], st);
    r = nncc("train %s --quiet --resume %s --save %s --log %s", at("m.nn"), at("cut.ck"), at("cut.ck"),
             at("cut.csv"));
    ck_assert_msg(r.status == 0, "%s", r.err);
    ck_assert_str_eq(r.out, full_out);  /* the same final metrics */
    tu_run_free(&r);
    size_t lb;
    char *b = slurp(at("cut.ck"), &lb);
    ck_assert_msg(la == lb && !memcmp(a, b, la), "cut %d: resumed checkpoint differs from the uninterrupted run's",
                  cuts[c]);
    free(b);
    /* the log: each epoch once, with the uninterrupted run's metrics (all
     * but the last column, samples/s) */
    char *csv = slurp(at("cut.csv"), NULL), *want = slurp(at("full.csv"), NULL);
    for (int e = 1; e <= 4; e++) {
      char row[16];
      snprintf(row, sizeof row, "\n%d,", e);
      const char *p = strstr(csv, row), *q = strstr(want, row);
      ck_assert_msg(p && !strstr(p + 1, row) && q, "cut %d: epoch %d not once in\n%s", cuts[c], e, csv);
      const char *pe = strrchr(p, ','), *qe = strrchr(q, ',');
      for (const char *t = p + 1; *t && *t != '\n'; t++) pe = *t == ',' ? t : pe;
      for (const char *t = q + 1; *t && *t != '\n'; t++) qe = *t == ',' ? t : qe;
      ck_assert_msg(pe - p == qe - q && !memcmp(p, q, (size_t)(pe - p)), "cut %d: epoch %d differs:\n%s\nvs\n%s",
                    cuts[c], e, csv, want);
    }
    free(csv);
    free(want);
  }
  free(a);
  free(full_out);
}
END_TEST

/* The planned length is the checkpoint's: the old bug trained at lr 0. */
START_TEST(resume_keeps_the_plan) {
  write_file(at("m.nn"), cosine_spiral);
  TuRun r = nncc("train %s --quiet --epochs 2 --save %s", at("m.nn"), at("a.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  size_t l0, l1;
  char *before = slurp(at("a.ck"), &l0);
  r = nncc("train %s --resume %s --save %s", at("m.nn"), at("a.ck"), at("b.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.err, "complete"), "a run resumed at its end says so:\n%s", r.err);
  tu_run_free(&r);
  /* extending the run moves the parameters (the schedule is not at 0) */
  r = nncc("train %s --quiet --resume %s --epochs 3 --save %s", at("m.nn"), at("a.ck"), at("c.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  char *after = slurp(at("c.ck"), &l1);
  ck_assert_msg(l0 == l1 && memcmp(before, after, l0), "the resumed run did not change the checkpoint");
  free(before);
  free(after);
  /* --seed against the run's seed is an error */
  r = nncc("train %s --quiet --resume %s --seed 99", at("m.nn"), at("a.ck"));
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, "seed"), "%s", r.err);
  tu_run_free(&r);
}
END_TEST

/* ------------------------------------------------- every sample counts */

static const char *csv_model =
    "const B = 8\n"
    "model m {\n  input x: f32[B, 2]\n  input y: i32[B]\n  logits = dense(x, 2)\n  output logits\n"
    "  loss cross_entropy(logits, y)\n}\n"
    "train m {\n  data = csv(\"d.csv\", x = [0:2], y = 2)\n  optimizer = sgd(lr = 0.1)\n  epochs = 2\n"
    "  metrics = [accuracy]\n}\n";

/* Item 2: 21 samples in batches of 8: the eval says 21, and the loss and
 * accuracy equal those of a batch of 1 over the same samples. */
START_TEST(eval_counts_every_sample) {
  FILE *f = fopen(at("d.csv"), "w");
  for (int i = 0; i < 21; i++) fprintf(f, "%g,%g,%d\n", (i % 7) * 0.3 - 1, (i % 5) * 0.2 - 0.4, i % 3 == 0);
  fclose(f);
  write_file(at("m.nn"), csv_model);
  TuRun r = nncc("train %s --quiet --save %s", at("m.nn"), at("m.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  r = nncc("eval %s --load %s", at("m.nn"), at("m.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.out, "(21 samples)"), "%s", r.out);
  double loss = metric(r.out, "loss "), acc = metric(r.out, "accuracy ");
  tu_run_free(&r);
  /* B = 1: no remainder; the same params (their shapes do not depend on B) */
  r = nncc("eval %s --load-weights %s -D B=1", at("m.nn"), at("m.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  ck_assert_msg(strstr(r.out, "(21 samples)"), "%s", r.out);
  ck_assert_msg(fabs(metric(r.out, "loss ") - loss) < 1e-5, "B=1 %s vs %g", r.out, loss);
  ck_assert_msg(fabs(metric(r.out, "accuracy ") - acc) < 1e-9, "B=1 %s vs %g", r.out, acc);
  tu_run_free(&r);
}
END_TEST

/* ------------------------------------------------- checkpoint identity */

/* Item 3: spiral with relu swapped for tanh has the same tensors; its
 * checkpoint is refused (saying so), unless only the weights are asked
 * for; changing the optimizer still lets --init-from take the weights. */
START_TEST(checkpoint_of_another_graph) {
  char *src = slurp(EX "/spiral.nn", NULL);
  write_file(at("relu.nn"), src);
  char *p = strstr(src, "relu");
  ck_assert_ptr_nonnull(p);
  char other[8192];
  snprintf(other, sizeof other, "%.*stanh%s", (int)(p - src), src, p + 4);
  write_file(at("tanh.nn"), other);
  free(src);
  /* the data of spiral.nn is synthetic: no paths to fix */
  TuRun r = nncc("train %s --quiet --epochs 1 --save %s", at("relu.nn"), at("relu.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  r = nncc("eval %s --load %s", at("tanh.nn"), at("relu.ck"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "another graph") && strstr(r.err, "--load-weights"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("train %s --quiet --resume %s", at("tanh.nn"), at("relu.ck"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "another graph") && strstr(r.err, "--init-from"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("eval %s --load-weights %s", at("tanh.nn"), at("relu.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  /* another optimizer: other state tensors, the weights still load */
  char *relu = slurp(at("relu.nn"), NULL);
  char *opt = strstr(relu, "optimizer");
  ck_assert_ptr_nonnull(opt);
  char *eol = strchr(opt, '\n');
  snprintf(other, sizeof other, "%.*soptimizer = sgd(lr = 0.05, momentum = 0.9)%s", (int)(opt - relu), relu, eol);
  write_file(at("sgd.nn"), other);
  free(relu);
  r = nncc("train %s --quiet --epochs 1 --init-from %s", at("sgd.nn"), at("relu.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  r = nncc("train %s --quiet --epochs 1 --resume %s", at("sgd.nn"), at("relu.ck"));
  ck_assert_int_eq(r.status, 3);
  tu_run_free(&r);
  /* the .so and its header carry the fingerprint */
  r = nncc("%s -o %s --header %s", at("relu.nn"), at("relu.so"), at("relu.h"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  char *h = slurp(at("relu.h"), NULL);
  const char *hf = strstr(h, "#define SPIRAL_FINGERPRINT \"");
  ck_assert_msg(hf, "%s", h);
  char *ck = slurp(at("relu.ck"), NULL);
  const char *cf = strstr(ck + 8, "\"fingerprint\":\"");
  ck_assert_msg(cf, "no fingerprint in the checkpoint");
  /* the JIT that trained (no input gradients) and the .so (with them)
   * have the same fingerprint */
  ck_assert_msg(!strncmp(hf + strlen("#define SPIRAL_FINGERPRINT \""), cf + strlen("\"fingerprint\":\""), 16),
                "header %.60s vs checkpoint %.40s", hf, cf);
  free(h);
  free(ck);
  /* a comment and a blank line do not change it: the checkpoint loads */
  char *relu2 = slurp(at("relu.nn"), NULL);
  snprintf(other, sizeof other, "# a comment\n\n%s", relu2);
  free(relu2);
  write_file(at("relu2.nn"), other);
  r = nncc("eval %s --load %s", at("relu2.nn"), at("relu.ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
}
END_TEST

/* -------------------------------------------------------- output files */

/* Item 5: a device stays a device, a symlink a symlink; /dev/full is an
 * error; a failed save keeps the old checkpoint; no temporary remains. */
START_TEST(outputs_respect_what_they_point_at) {
  struct stat st;
  TuRun r = nncc("train %s/spiral.nn --quiet --epochs 1 --log /dev/null --save %s", EX, at("ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  ck_assert_int_eq(stat("/dev/null", &st), 0);
  ck_assert_msg(S_ISCHR(st.st_mode), "/dev/null is no longer a device");
  /* a symlink keeps being one; the file it names is replaced */
  write_file(at("target.csv"), "old\n");
  ck_assert_int_eq(symlink("target.csv", at("link.csv")), 0);
  r = nncc("train %s/spiral.nn --quiet --epochs 1 --log %s", EX, at("link.csv"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  ck_assert_int_eq(lstat(at("link.csv"), &st), 0);
  ck_assert_msg(S_ISLNK(st.st_mode), "the symlink was replaced");
  char *csv = slurp(at("target.csv"), NULL);
  ck_assert_msg(!strncmp(csv, "epoch,", 6), "%s", csv);
  free(csv);
  /* --emit -o through a symlink too */
  ck_assert_int_eq(symlink("ir.txt", at("ir.link")), 0);
  r = nncc("%s/spiral.nn --emit=ir -o %s", EX, at("ir.link"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  ck_assert_int_eq(lstat(at("ir.link"), &st), 0);
  ck_assert(S_ISLNK(st.st_mode));
  ck_assert_int_eq(stat(at("ir.txt"), &st), 0);
  /* a full disk: an error, found before training (the check), or at save */
  r = nncc("train %s/spiral.nn --quiet --epochs 1 --save /dev/full", EX);
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "/dev/full") && strstr(r.err, "No space left"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("%s/spiral.nn --emit=ir -o /dev/full", EX);
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "No space left"), "%s", r.err);
  tu_run_free(&r);
  /* a save that cannot happen leaves the old checkpoint as it was */
  size_t l0, l1;
  char *old = slurp(at("ck"), &l0);
  ck_assert_int_eq(chmod(dir, 0500), 0);
  if (access(at("probe"), W_OK) != 0 && geteuid() != 0) {
    r = nncc("train %s/spiral.nn --quiet --epochs 1 --save %s", EX, at("ck"));
    ck_assert_int_eq(r.status, 3);
    tu_run_free(&r);
  }
  ck_assert_int_eq(chmod(dir, 0700), 0);
  char *now = slurp(at("ck"), &l1);
  ck_assert(l0 == l1 && !memcmp(old, now, l0));
  free(old);
  free(now);
  ck_assert_int_eq(temporaries(), 0);
}
END_TEST

/* Item 5: a process killed while saving leaves no temporary behind
 * (O_TMPFILE: the file has no name until it is complete). */
START_TEST(killed_saves_leave_no_temporary) {
  write_file(at("m.nn"), cosine_spiral);
  char cmd[1024];
  for (int k = 0; k < 5; k++) {
    snprintf(cmd, sizeof cmd, "timeout -s KILL 0.%d %s train %s --quiet --save %s --save-every 1 >/dev/null 2>&1",
             3 + k, NNCC_BIN, at("m.nn"), at("ck"));
    int st = system(cmd);
    (void)st;
  }
  ck_assert_int_eq(temporaries(), 0);
}
END_TEST

/* Fault injection: the disk fills up during a save (a 1 MiB tmpfs that
 * a filler file leaves ~4 KB of): the save fails with the reason, exit 3,
 * the old checkpoint is intact, no temporary remains. Needs mount(2)
 * (root, not in every container): skipped with a message otherwise. */
START_TEST(full_disk_during_save_keeps_the_old_checkpoint) {
  char mnt[300], cmd[2048];
  snprintf(mnt, sizeof mnt, "%s/small", dir);
  ck_assert_int_eq(mkdir(mnt, 0700), 0);
  snprintf(cmd, sizeof cmd, "mount -t tmpfs -o size=1m tmpfs '%s' 2>/dev/null", mnt);
  if (system(cmd) != 0) {
    fprintf(stderr, "full_disk_during_save: SKIPPED (cannot mount a tmpfs here)\n");
    return;
  }
  /* a checkpoint of a model whose save is ~50 KB */
  write_file(at("w.nn"), "const B = 16\nmodel m {\n input x: f32[B, 2]\n input y: i32[B]\n"
                         " logits = dense(dense(x, 96, relu), 3)\n output logits\n loss cross_entropy(logits, y)\n}\n"
                         "train m {\n data = spiral(n = 64)\n optimizer = adam()\n}\n");
  char ck[400];
  snprintf(ck, sizeof ck, "%s/ck", mnt);
  TuRun r = nncc("train %s --quiet --save %s", at("w.nn"), ck);
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  size_t l0, l1;
  char *old = slurp(ck, &l0);
  /* fill the rest of the file system but a few KB */
  snprintf(cmd, sizeof cmd, "dd if=/dev/zero of='%s/filler' bs=4k 2>/dev/null; truncate -s -8k '%s/filler'", mnt,
           mnt);
  int st = system(cmd);
  (void)st;
  r = nncc("train %s --quiet --save %s --seed 7", at("w.nn"), ck);
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "No space left on device"), "%s", r.err);
  tu_run_free(&r);
  char *now = slurp(ck, &l1);
  ck_assert_msg(l0 == l1 && !memcmp(old, now, l0), "the old checkpoint changed");
  free(old);
  free(now);
  DIR *d = opendir(mnt);
  int n = 0;
  for (struct dirent *e; d && (e = readdir(d));) n += e->d_name[0] != '.';
  if (d) closedir(d);
  ck_assert_int_eq(n, 2);  /* ck and filler: no temporary */
  snprintf(cmd, sizeof cmd, "umount '%s'", mnt);
  ck_assert_int_eq(system(cmd), 0);
}
END_TEST

/* ------------------------------------------------------- late failures */

/* Item 6: a bad --save or --log path is found before any training; a
 * divergence in epoch 2 keeps epoch 1's checkpoint and log row, and says
 * where it stopped. */
START_TEST(late_failures_keep_the_work) {
  TuRun r = nncc("train %s/spiral.nn --epochs 3 --save %s/no/such/dir/ck", EX, dir);
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "--save") && !strstr(r.err, "epoch 1"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("train %s/spiral.nn --epochs 3 --log %s", EX, dir);
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "--log") && strstr(r.err, "directory") && !strstr(r.err, "epoch 1"), "%s", r.err);
  tu_run_free(&r);
  /* lr grows with the step schedule until the loss overflows */
  write_file(at("d.nn"),
             "const B = 50\nmodel m {\n input x: f32[B, 2]\n input y: i32[B]\n"
             " logits = dense(dense(x, 16, relu), 3)\n output logits\n loss cross_entropy(logits, y)\n}\n"
             "train m {\n data = spiral(n = 600)\n optimizer = sgd(lr = 0.001)\n"
             " schedule = step(every = 12, gamma = 1e30)\n epochs = 4\n metrics = [accuracy]\n}\n");
  r = nncc("train %s --save %s --log %s", at("d.nn"), at("ck"), at("log.csv"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "non-finite") && strstr(r.err, "epoch 2") && strstr(r.err, "last good checkpoint"),
                "%s", r.err);
  tu_run_free(&r);
  char *csv = slurp(at("log.csv"), NULL);
  ck_assert_msg(strstr(csv, "\n1,") && !strstr(csv, "\n2,"), "%s", csv);
  free(csv);
  /* the checkpoint is epoch 1's, and a good one */
  r = nncc("eval %s --load %s", at("d.nn"), at("ck"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
}
END_TEST

/* Item 9: a label out of range names its file and line at load time
 * (before: "input 'y': value 5 at index 3", a position in a shuffled
 * batch, found by the model mid-training). */
START_TEST(bad_label_names_file_and_line) {
  FILE *f = fopen(at("d.csv"), "w");
  for (int i = 0; i < 20; i++) fprintf(f, "%g,%g,%d\n", i * 0.1, -i * 0.1, i == 13 ? 5 : i % 2);
  fclose(f);
  write_file(at("m.nn"), csv_model);
  TuRun r = nncc("train %s --quiet", at("m.nn"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "d.csv:14") && strstr(r.err, "label 5") && strstr(r.err, "[0, 2)"), "%s", r.err);
  tu_run_free(&r);
}
END_TEST

/* Item 10: a non-finite loss names epoch and step; --check-numerics the
 * op and its line. */
START_TEST(check_numerics_names_the_op) {
  write_file(at("n.nn"), "const B = 10\nmodel m {\n input x: f32[B, 1]\n input y: f32[B, 1]\n"
                         " p = dense(x, 1)\n q = log(p - 100)\n output q\n loss mse(q, y)\n}\n"
                         "train m {\n data = sine(n = 40)\n optimizer = sgd(lr = 0.01)\n}\n");
  TuRun r = nncc("train %s --quiet", at("n.nn"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "epoch 1, batch 1 of 4") && strstr(r.err, "non-finite loss"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("train %s --quiet --check-numerics", at("n.nn"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "log, ") && strstr(r.err, "n.nn:6:"), "%s", r.err);
  tu_run_free(&r);
}
END_TEST

/* ------------------------------------------------------------- FIFOs */

/* Item 7: a FIFO as the program, a checkpoint: an error, not a hang. */
START_TEST(fifos_do_not_hang) {
  ck_assert_int_eq(mkfifo(at("f.nn"), 0600), 0);
  TuRun r = nncc("check %s", at("f.nn"));
  ck_assert_int_eq(r.status, 1);
  ck_assert_msg(strstr(r.err, "not a regular file"), "%s", r.err);
  tu_run_free(&r);
  ck_assert_int_eq(mkfifo(at("ck"), 0600), 0);
  r = nncc("eval %s/spiral.nn --load %s", EX, at("ck"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "not a regular file"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("train %s/spiral.nn --epochs 1 --resume %s", EX, at("ck"));
  ck_assert_int_eq(r.status, 3);
  tu_run_free(&r);
  /* a FIFO without a reader as an output: an error at once */
  r = nncc("train %s/spiral.nn --epochs 1 --log %s", EX, at("ck"));
  ck_assert_int_eq(r.status, 3);
  ck_assert_msg(strstr(r.err, "FIFO"), "%s", r.err);
  tu_run_free(&r);
}
END_TEST

/* -------------------------------------------------------- command line */

/* Item 11: --prefix is a C identifier; every command has --help; an
 * option the command does not use is an error. */
START_TEST(command_line_refuses_what_it_would_ignore) {
  TuRun r = nncc("%s/spiral.nn -o %s --prefix 9lives", EX, at("x.so"));
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, "C identifier"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("%s/spiral.nn -o %s --prefix my-model", EX, at("x.so"));
  ck_assert_int_eq(r.status, 2);
  tu_run_free(&r);
  const char *cmds[] = {"train", "eval", "check", "gradcheck", "bench"};
  for (int i = 0; i < 5; i++) {
    r = nncc("%s --help", cmds[i]);
    ck_assert_msg(r.status == 0 && strstr(r.out, "usage: nncc") && strstr(r.out, "options:"), "%s --help: %s%s",
                  cmds[i], r.out, r.err);
    tu_run_free(&r);
  }
  r = nncc("train --help");
  ck_assert_msg(strstr(r.out, "--resume") && strstr(r.out, "--save-every") && !strstr(r.out, "--load "), "%s", r.out);
  tu_run_free(&r);
  r = nncc("eval %s/spiral.nn --load x --epochs 3", EX);
  ck_assert_int_eq(r.status, 2);
  ck_assert_msg(strstr(r.err, "--epochs is not an option of 'nncc eval'"), "%s", r.err);
  tu_run_free(&r);
  r = nncc("check %s/spiral.nn --save x", EX);
  ck_assert_int_eq(r.status, 2);
  tu_run_free(&r);
  r = nncc("%s/spiral.nn --emit=ir --epochs 3", EX);
  ck_assert_int_eq(r.status, 2);
  tu_run_free(&r);
  r = nncc("train %s/spiral.nn --save-every 10", EX);
  ck_assert_int_eq(r.status, 2);
  tu_run_free(&r);
}
END_TEST

/* The README's first program works when copied (its data paths resolve
 * against the .nn file's directory: Fashion-MNIST's files beside it). */
START_TEST(readme_first_program) {
  char *readme = slurp(NNCC_SOURCE_DIR "/README.md", NULL);
  char *start = strstr(readme, "## A first program");
  ck_assert_ptr_nonnull(start);
  char *code = strstr(start, "    const B");
  ck_assert_ptr_nonnull(code);
  char *end = code;  /* the indented block ends at the first unindented paragraph */
  while ((end = strstr(end + 1, "\n\n")) && end[2] == ' ') {
  }
  ck_assert_ptr_nonnull(end);
  /* the indented block, de-indented */
  FILE *f = fopen(at("mlp.nn"), "w");
  for (char *p = code; p < end;) {
    char *nl = strchr(p, '\n');
    if (!nl || nl > end) nl = end;
    fprintf(f, "%.*s\n", (int)(nl - p > 4 ? nl - p - 4 : 0), nl - p > 4 ? p + 4 : p);
    p = nl + 1;
  }
  fclose(f);
  free(readme);
  TuRun r = nncc("check %s", at("mlp.nn"));
  ck_assert_msg(r.status == 0, "%s", r.err);
  tu_run_free(&r);
  if (access("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz", R_OK) != 0) {
    fprintf(stderr, "readme_first_program: training SKIPPED (dataset-fashion-mnist is not installed)\n");
    return;
  }
  r = nncc("train %s --epochs 1 --quiet", at("mlp.nn"));
  ck_assert_msg(r.status == 0 && metric(r.out, "accuracy ") > 0.7, "%s%s", r.out, r.err);
  tu_run_free(&r);
}
END_TEST

int main(void) {
  Suite *s = suite_create("runs");
  TCase *tc = tcase_create("runs");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_set_timeout(tc, 600);
  tcase_add_test(tc, resume_after_sigkill_is_byte_identical);
  tcase_add_test(tc, resume_keeps_the_plan);
  tcase_add_test(tc, eval_counts_every_sample);
  tcase_add_test(tc, checkpoint_of_another_graph);
  tcase_add_test(tc, outputs_respect_what_they_point_at);
  tcase_add_test(tc, killed_saves_leave_no_temporary);
  tcase_add_test(tc, full_disk_during_save_keeps_the_old_checkpoint);
  tcase_add_test(tc, late_failures_keep_the_work);
  tcase_add_test(tc, fifos_do_not_hang);
  tcase_add_test(tc, bad_label_names_file_and_line);
  tcase_add_test(tc, check_numerics_names_the_op);
  tcase_add_test(tc, command_line_refuses_what_it_would_ignore);
  tcase_add_test(tc, readme_first_program);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
