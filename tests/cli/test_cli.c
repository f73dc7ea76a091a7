/* test_cli.c - the command line (SPEC §3, §5, §6), through the real
 * nncc binary.
 *
 * Every test runs NNCC_BIN through tu_run and asserts the exact exit code
 * (0 ok, 1 compile error, 2 usage error) and the key parts of what it
 * prints. Files the tests write live in one temporary directory per test
 * case (mkdtemp), removed when the case ends.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <dirent.h>
#include <ftw.h>
#include <glob.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passes/passes.h"
#include "testutil.h"

#define EXAMPLES NNCC_SOURCE_DIR "/examples"
#define MLP EXAMPLES "/mlp.nn"
#define TIMEOUT_S 120

/* ---------------------------------------------------------------- helpers */

static char base_dir[256];  /* this test case's temporary directory */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
  (void)st;
  (void)flag;
  (void)ftw;
  chmod(path, 0700);
  return remove(path);
}

static void make_base_dir(void) {
  snprintf(base_dir, sizeof base_dir, "/tmp/nncc_cli_XXXXXX");
  if (!mkdtemp(base_dir)) {
    perror("mkdtemp");
    exit(1);
  }
}

static void remove_base_dir(void) {
  if (base_dir[0]) nftw(base_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* A fresh directory under base_dir (malloc'ed path). */
static char *fresh_dir(void) {
  char *d = malloc(strlen(base_dir) + 16);
  sprintf(d, "%s/dXXXXXX", base_dir);
  ck_assert_msg(mkdtemp(d) != NULL, "mkdtemp failed");
  return d;
}

/* Writes `text` to DIR/NAME; returns the malloc'ed path. */
static char *write_file(const char *dir, const char *name, const char *text) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  sprintf(p, "%s/%s", dir, name);
  FILE *f = fopen(p, "wb");
  ck_assert_msg(f != NULL, "cannot create %s", p);
  fputs(text, f);
  ck_assert_int_eq(fclose(f), 0);
  return p;
}

static char *read_all(const char *path) {
  char *s = tu_read_file(path, NULL);
  ck_assert_msg(s != NULL, "cannot read %s", path);
  return s;
}

static bool exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

/* Runs nncc with printf-formatted arguments. */
static TuRun nncc(const char *fmt, ...) {
  char args[4096];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(args, sizeof args, fmt, ap);
  va_end(ap);
  return tu_run(args, TIMEOUT_S);
}

#define EXPECT_STATUS(r, code, what)                                                          \
  ck_assert_msg((r).status == (code), "%s: exit %d, expected %d\nstdout:\n%.2000s\nstderr:\n%.2000s", \
                (what), (r).status, (code), (r).out, (r).err)

#define EXPECT_HAS(hay, needle, what)                                                   \
  ck_assert_msg(strstr((hay), (needle)) != NULL, "%s: expected '%s' in:\n%.3000s", (what), \
                (needle), (hay))

#define EXPECT_LACKS(hay, needle, what)                                                     \
  ck_assert_msg(strstr((hay), (needle)) == NULL, "%s: did not expect '%s' in:\n%.3000s", (what), \
                (needle), (hay))

static int count_of(const char *hay, const char *needle) {
  int n = 0;
  for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle)) n++;
  return n;
}

/* A line of `text` that starts with `first` (a whole word) and contains
 * `rest`. */
static bool has_line(const char *text, const char *first, const char *rest) {
  size_t fl = strlen(first);
  for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    const char *end = strchr(l, '\n');
    size_t len = end ? (size_t)(end - l) : strlen(l);
    if (len > fl && !strncmp(l, first, fl) && (l[fl] == ' ' || l[fl] == '\t')) {
      char *line = strndup(l, len);
      bool ok = strstr(line, rest) != NULL;
      free(line);
      if (ok) return true;
    }
  }
  return false;
}

/* Entries of `dir` whose name starts with `prefix`. */
static int entries_with_prefix(const char *dir, const char *prefix) {
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "opendir %s", dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, prefix, strlen(prefix))) n++;
  closedir(d);
  return n;
}

static int entries(const char *dir) {
  DIR *d = opendir(dir);
  ck_assert_msg(d != NULL, "opendir %s", dir);
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)))
    if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) n++;
  closedir(d);
  return n;
}

/* The example programs, examples/<name>.nn. */
static glob_t examples(void) {
  glob_t g;
  ck_assert_int_eq(glob(EXAMPLES "/*.nn", 0, NULL, &g), 0);
  ck_assert_msg(g.gl_pathc >= 1, "no examples found in " EXAMPLES);
  return g;
}

/* Names of the models a file defines: lines "model NAME {". */
static int model_names(const char *path, char names[][64], int max) {
  char *src = read_all(path);
  int n = 0;
  for (const char *l = src; l && *l && n < max; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
    if (strncmp(l, "model ", 6)) continue;
    const char *p = l + 6;
    while (*p == ' ') p++;
    size_t k = 0;
    while ((p[k] == '_' || (p[k] >= 'a' && p[k] <= 'z') || (p[k] >= 'A' && p[k] <= 'Z') ||
            (p[k] >= '0' && p[k] <= '9')) && k < 63)
      k++;
    memcpy(names[n], p, k);
    names[n][k] = 0;
    n++;
  }
  free(src);
  return n;
}

/* A program with an unknown name at 4:16. */
static const char bad_src[] =
    "const B = 4\n"
    "model m {\n"
    "  input x: f32[B, 3]\n"
    "  h = relu(x @ q)\n"
    "  output h\n"
    "}\n";

/* A syntax error at 3:11. */
static const char syntax_src[] =
    "const B = 4\n"
    "model m {\n"
    "  input x f32[B, 3]\n"
    "  output x\n"
    "}\n";

/* Two models in one file. */
static const char two_models_src[] =
    "const B = 4\n"
    "model alpha {\n"
    "  input x: f32[B, 3]\n"
    "  input y: f32[B, 2]\n"
    "  p = dense(x, 2)\n"
    "  output p\n"
    "  loss mse(p, y)\n"
    "}\n"
    "model beta {\n"
    "  input x: f32[B, 5]\n"
    "  input y: f32[B, 1]\n"
    "  q = dense(x, 1)\n"
    "  output q\n"
    "  loss mse(q, y)\n"
    "}\n";

/* Param `u` does not reach the loss (6:9). */
static const char unreachable_src[] =
    "const B = 4\n"
    "model m {\n"
    "  input x: f32[B, 3]\n"
    "  input y: f32[B, 2]\n"
    "  param w: f32[3, 2] = he_normal()\n"
    "  param u: f32[3, 2] = zeros()\n"
    "  p = x @ w\n"
    "  output p\n"
    "  loss mse(p, y)\n"
    "}\n";

/* --------------------------------------------------------------- examples */

START_TEST(examples_check) {
  glob_t g = examples();
  for (size_t i = 0; i < g.gl_pathc; i++) {
    TuRun r = nncc("check %s", g.gl_pathv[i]);
    EXPECT_STATUS(r, 0, g.gl_pathv[i]);
    ck_assert_msg(r.err[0] == 0, "check %s: unexpected stderr:\n%s", g.gl_pathv[i], r.err);
    tu_run_free(&r);
  }
  globfree(&g);
}
END_TEST

START_TEST(examples_emit_ir) {
  glob_t g = examples();
  for (size_t i = 0; i < g.gl_pathc; i++) {
    const char *f = g.gl_pathv[i];
    TuRun r = nncc("%s --emit=ir", f);
    EXPECT_STATUS(r, 0, f);
    ck_assert_msg(!strncmp(r.out, "# nncc graph IR", 15), "%s: IR does not begin with the header:\n%.500s",
                  f, r.out);
    char names[8][64];
    int n = model_names(f, names, 8);
    ck_assert_msg(n >= 1, "%s defines no model?", f);
    for (int k = 0; k < n; k++) {
      char want[600];
      snprintf(want, sizeof want, "graph %s ", names[k]);
      EXPECT_HAS(r.out, want, f);
    }
    tu_run_free(&r);
  }
  globfree(&g);
}
END_TEST

START_TEST(examples_emit_ast) {
  glob_t g = examples();
  for (size_t i = 0; i < g.gl_pathc; i++) {
    const char *f = g.gl_pathv[i];
    TuRun r = nncc("%s --emit=ast", f);
    EXPECT_STATUS(r, 0, f);
    ck_assert_msg(r.out[0] == '(', "%s: AST does not start with '(':\n%.300s", f, r.out);
    char names[8][64];
    int n = model_names(f, names, 8);
    for (int k = 0; k < n; k++) {
      char want[600];
      snprintf(want, sizeof want, "(model %s", names[k]);
      EXPECT_HAS(r.out, want, f);
    }
    tu_run_free(&r);
  }
  globfree(&g);
}
END_TEST

START_TEST(examples_verify_each) {
  glob_t g = examples();
  for (size_t i = 0; i < g.gl_pathc; i++) {
    const char *f = g.gl_pathv[i];
    TuRun r = nncc("%s --emit=ir --verify-each", f);
    EXPECT_STATUS(r, 0, f);
    EXPECT_LACKS(r.err, "error", f);
    EXPECT_HAS(r.out, "# nncc graph IR", f);
    tu_run_free(&r);
    /* the whole pipeline, verified after each pass */
    r = nncc("%s --print-after-all --verify-each", f);
    EXPECT_STATUS(r, 0, f);
    EXPECT_LACKS(r.err, "error", f);
    tu_run_free(&r);
  }
  globfree(&g);
}
END_TEST

START_TEST(mlp_params) {
  TuRun r = nncc("%s --emit=params", MLP);
  EXPECT_STATUS(r, 0, "--emit=params");
  ck_assert_msg(has_line(r.out, "h.w", "f32[784,128]"), "h.w f32[784,128] missing:\n%s", r.out);
  ck_assert_msg(has_line(r.out, "h.b", "f32[128]"), "h.b f32[128] missing:\n%s", r.out);
  ck_assert_msg(has_line(r.out, "logits.w", "f32[128,10]"), "logits.w f32[128,10] missing:\n%s", r.out);
  ck_assert_msg(has_line(r.out, "logits.b", "f32[10]"), "logits.b f32[10] missing:\n%s", r.out);
  EXPECT_HAS(r.out, "101770 trainable values", "--emit=params total");
  EXPECT_HAS(r.out, "mlp", "--emit=params model name");
  ck_assert_msg(r.err[0] == 0, "unexpected stderr:\n%s", r.err);
  tu_run_free(&r);
}
END_TEST

START_TEST(mlp_ast) {
  TuRun r = nncc("%s --emit=ast", MLP);
  EXPECT_STATUS(r, 0, "--emit=ast");
  EXPECT_HAS(r.out, "(const B (int 64))", "ast");
  EXPECT_HAS(r.out, "(model mlp", "ast");
  EXPECT_HAS(r.out, "(input x", "ast");
  EXPECT_HAS(r.out, "dense", "ast");
  EXPECT_HAS(r.out, "(loss", "ast");
  EXPECT_HAS(r.out, "(train mlp", "ast");
  tu_run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ usage */

START_TEST(usage_no_arguments) {
  TuRun r = nncc("");
  EXPECT_STATUS(r, 2, "no arguments");
  EXPECT_HAS(r.err, "nncc: error:", "no arguments");
  tu_run_free(&r);
}
END_TEST

START_TEST(usage_unknown_option) {
  TuRun r = nncc("--bogus-option %s --emit=ir", MLP);
  EXPECT_STATUS(r, 2, "unknown option");
  EXPECT_HAS(r.err, "--bogus-option", "unknown option");
  ck_assert_msg(r.out[0] == 0, "unknown option printed to stdout:\n%s", r.out);
  tu_run_free(&r);
  r = nncc("check %s --bogus-option", MLP);
  EXPECT_STATUS(r, 2, "unknown option after check");
  EXPECT_HAS(r.err, "--bogus-option", "unknown option after check");
  tu_run_free(&r);
}
END_TEST

START_TEST(usage_unknown_emit_stage) {
  TuRun r = nncc("%s --emit=nosuchstage", MLP);
  EXPECT_STATUS(r, 2, "unknown --emit stage");
  EXPECT_HAS(r.err, "nosuchstage", "unknown --emit stage");
  ck_assert_msg(r.out[0] == 0, "stdout:\n%s", r.out);
  tu_run_free(&r);
}
END_TEST

START_TEST(usage_unknown_pass) {
  TuRun r = nncc("%s --print-after=nosuchpass", MLP);
  EXPECT_STATUS(r, 2, "--print-after=nosuchpass");
  EXPECT_HAS(r.err, "nosuchpass", "--print-after=nosuchpass");
  ck_assert_msg(r.out[0] == 0, "stdout:\n%s", r.out);
  tu_run_free(&r);
}
END_TEST

START_TEST(usage_two_inputs) {
  TuRun r = nncc("check %s %s/sine.nn", MLP, EXAMPLES);
  EXPECT_STATUS(r, 2, "check with two files");
  EXPECT_HAS(r.err, "nncc: error:", "two files");
  tu_run_free(&r);
  r = nncc("%s %s/sine.nn --emit=ir", MLP, EXAMPLES);
  EXPECT_STATUS(r, 2, "--emit=ir with two files");
  ck_assert_msg(r.out[0] == 0, "stdout:\n%s", r.out);
  tu_run_free(&r);
}
END_TEST

START_TEST(usage_nothing_to_do) {
  /* a file and no action is a usage error, not a silent success */
  TuRun r = nncc("%s", MLP);
  EXPECT_STATUS(r, 2, "file without an action");
  EXPECT_HAS(r.err, "nncc: error:", "file without an action");
  tu_run_free(&r);
}
END_TEST

START_TEST(help_lists_passes) {
  TuRun r = nncc("--help");
  EXPECT_STATUS(r, 0, "--help");
  EXPECT_HAS(r.out, "usage", "--help");
  EXPECT_HAS(r.out, "--emit=", "--help");
  EXPECT_HAS(r.out, "check", "--help");
  int n;
  const Pass *ps = pass_list(&n);
  ck_assert_int_ge(n, 1);
  for (int i = 0; i < n; i++) EXPECT_HAS(r.out, ps[i].name, "--help pass list");
  EXPECT_HAS(r.out, "shapes", "--help pass list");
  tu_run_free(&r);
}
END_TEST

START_TEST(version) {
  TuRun r = nncc("--version");
  EXPECT_STATUS(r, 0, "--version");
  EXPECT_HAS(r.out, "nncc", "--version");
  EXPECT_HAS(r.out, "LLVM 1", "--version");
  ck_assert_msg(has_line(r.out, "host:", "cpu "), "--version: no host cpu line:\n%s", r.out);
  tu_run_free(&r);
}
END_TEST

/* ------------------------------------------------------------ input files */

START_TEST(missing_file) {
  char *dir = fresh_dir();
  char path[512], want[700];
  snprintf(path, sizeof path, "%s/nosuch.nn", dir);
  snprintf(want, sizeof want, "nncc: error: cannot read '%s': No such file or directory", path);
  TuRun r = nncc("check %s", path);
  EXPECT_STATUS(r, 1, "missing file");
  EXPECT_HAS(r.err, want, "missing file");
  tu_run_free(&r);
  r = nncc("%s --emit=ir", path);
  EXPECT_STATUS(r, 1, "missing file --emit=ir");
  EXPECT_HAS(r.err, want, "missing file --emit=ir");
  ck_assert_msg(r.out[0] == 0, "stdout:\n%s", r.out);
  tu_run_free(&r);
  free(dir);
}
END_TEST

START_TEST(directory_input) {
  char *dir = fresh_dir();
  char want[700];
  snprintf(want, sizeof want, "nncc: error: cannot read '%s': it is a directory", dir);
  TuRun r = nncc("check %s", dir);
  EXPECT_STATUS(r, 1, "directory input");
  EXPECT_HAS(r.err, want, "directory input");
  tu_run_free(&r);
  r = nncc("%s --emit=ir", dir);
  EXPECT_STATUS(r, 1, "directory input --emit=ir");
  EXPECT_HAS(r.err, want, "directory input --emit=ir");
  tu_run_free(&r);
  free(dir);
}
END_TEST

START_TEST(unreadable_file) {
  if (geteuid() == 0) return; /* root reads a mode-000 file anyway */
  char *dir = fresh_dir();
  char *path = write_file(dir, "locked.nn", unreachable_src);
  ck_assert_int_eq(chmod(path, 0), 0);
  char want[700];
  snprintf(want, sizeof want, "nncc: error: cannot read '%s': Permission denied", path);
  TuRun r = nncc("check %s", path);
  EXPECT_STATUS(r, 1, "unreadable file");
  EXPECT_HAS(r.err, want, "unreadable file");
  tu_run_free(&r);
  chmod(path, 0600);
  free(path);
  free(dir);
}
END_TEST

START_TEST(malformed_program) {
  char *dir = fresh_dir();
  char *path = write_file(dir, "bad.nn", bad_src);
  char want[700];
  snprintf(want, sizeof want, "%s:4:16: error:", path);
  const char *forms[] = {"check %s", "%s --emit=ir", "%s --emit=params"};
  for (int i = 0; i < 3; i++) {
    TuRun r = nncc(forms[i], path);
    EXPECT_STATUS(r, 1, forms[i]);
    EXPECT_HAS(r.err, want, forms[i]);
    EXPECT_HAS(r.err, "unknown name 'q'", forms[i]);
    EXPECT_HAS(r.err, "h = relu(x @ q)", forms[i]); /* the source line */
    EXPECT_HAS(r.err, "^", forms[i]);               /* and a caret */
    tu_run_free(&r);
  }
  /* a syntax error fails --emit=ast too */
  char *syn = write_file(dir, "syntax.nn", syntax_src);
  snprintf(want, sizeof want, "%s:3:11: error:", syn);
  TuRun r = nncc("%s --emit=ast", syn);
  EXPECT_STATUS(r, 1, "--emit=ast on a syntax error");
  EXPECT_HAS(r.err, want, "--emit=ast on a syntax error");
  tu_run_free(&r);
  r = nncc("check %s", syn);
  EXPECT_STATUS(r, 1, "check on a syntax error");
  EXPECT_HAS(r.err, want, "check on a syntax error");
  tu_run_free(&r);
  free(syn);
  free(path);
  free(dir);
}
END_TEST

START_TEST(errors_are_collected) {
  char *dir = fresh_dir();
  char *path = write_file(dir, "two.nn",
                          "const B = 4\n"
                          "model m {\n"
                          "  input x: f32[B, 3]\n"
                          "  input y: f32[B, 3]\n"
                          "  h = relu(x @ q)\n"
                          "  k = zz + x\n"
                          "  output h\n"
                          "  loss mse(h, y)\n"
                          "}\n");
  char w1[700], w2[700];
  snprintf(w1, sizeof w1, "%s:5:16: error:", path);
  snprintf(w2, sizeof w2, "%s:6:7: error:", path);
  TuRun r = nncc("check %s", path);
  EXPECT_STATUS(r, 1, "two errors");
  EXPECT_HAS(r.err, w1, "first error");
  EXPECT_HAS(r.err, w2, "second error");
  tu_run_free(&r);
  free(path);
  free(dir);
}
END_TEST

START_TEST(empty_and_comment_only) {
  char *dir = fresh_dir();
  char *files[2] = {write_file(dir, "empty.nn", ""),
                    write_file(dir, "comments.nn", "# only a comment\n\n   # and another\n")};
  for (int i = 0; i < 2; i++) {
    TuRun r = nncc("check %s", files[i]);
    EXPECT_STATUS(r, 0, files[i]);
    EXPECT_HAS(r.err, "warning: no model", files[i]);
    EXPECT_LACKS(r.err, "error", files[i]);
    tu_run_free(&r);

    char so[600];
    snprintf(so, sizeof so, "%s/out%d.so", dir, i);
    r = nncc("%s -o %s", files[i], so);
    EXPECT_STATUS(r, 1, "-o on a file without a model");
    EXPECT_HAS(r.err, "error", "-o on a file without a model");
    ck_assert_msg(!exists(so), "%s was created", so);
    tu_run_free(&r);
    free(files[i]);
  }
  ck_assert_int_eq(entries_with_prefix(dir, "out"), 0);
  free(dir);
}
END_TEST

START_TEST(unreachable_param_warning) {
  char *dir = fresh_dir();
  char *path = write_file(dir, "warn.nn", unreachable_src);
  char loc[700];
  snprintf(loc, sizeof loc, "%s:6:9: warning:", path);
  TuRun r = nncc("check %s", path);
  EXPECT_STATUS(r, 0, "unreachable param");
  EXPECT_HAS(r.err, "warning: param 'u' cannot reach the loss", "unreachable param");
  EXPECT_HAS(r.err, loc, "unreachable param location");
  EXPECT_LACKS(r.err, "'w' cannot reach", "reachable param");
  EXPECT_LACKS(r.err, "error", "unreachable param");
  tu_run_free(&r);
  r = nncc("%s --emit=ir", path);
  EXPECT_STATUS(r, 0, "unreachable param --emit=ir");
  EXPECT_HAS(r.err, "warning: param 'u' cannot reach the loss", "unreachable param --emit=ir");
  EXPECT_HAS(r.out, "# nncc graph IR", "unreachable param --emit=ir");
  tu_run_free(&r);
  free(path);
  free(dir);
}
END_TEST

/* -------------------------------------------------------------------- -D */

START_TEST(define_changes_batch) {
  TuRun base = nncc("%s --emit=ir", MLP);
  EXPECT_STATUS(base, 0, "mlp --emit=ir");
  EXPECT_HAS(base.out, "f32[64,784]", "default batch");
  tu_run_free(&base);

  const char *forms[] = {"%s --emit=ir -D B=8", "%s --emit=ir -DB=8", "-D B=8 %s --emit=ir",
                         "-DB=8 %s --emit=ir", "--emit=ir -D B=8 %s"};
  for (int i = 0; i < 5; i++) {
    TuRun r = nncc(forms[i], MLP);
    EXPECT_STATUS(r, 0, forms[i]);
    EXPECT_HAS(r.out, "f32[8,784]", forms[i]);
    EXPECT_HAS(r.out, "i32[8]", forms[i]);
    EXPECT_LACKS(r.out, "f32[64,784]", forms[i]);
    tu_run_free(&r);
  }
}
END_TEST

START_TEST(define_with_check) {
  const char *forms[] = {"check %s -D B=8", "check -D B=8 %s", "check -DB=8 %s", "check %s -DB=8"};
  for (int i = 0; i < 4; i++) {
    TuRun r = nncc(forms[i], MLP);
    EXPECT_STATUS(r, 0, forms[i]);
    ck_assert_msg(r.err[0] == 0, "%s: stderr:\n%s", forms[i], r.err);
    tu_run_free(&r);
  }
  /* a -D that makes the program wrong is a compile error */
  TuRun r = nncc("check %s -D B=0", MLP);
  EXPECT_STATUS(r, 1, "check -D B=0");
  EXPECT_HAS(r.err, "error:", "check -D B=0");
  tu_run_free(&r);
}
END_TEST

/* SPEC §6: "-D NAME=VALUE is accepted by every subcommand anywhere on the
 * line" - that includes before the subcommand. */
START_TEST(define_before_subcommand) {
  TuRun r = nncc("-D B=8 check %s", MLP);
  EXPECT_STATUS(r, 0, "-D B=8 check FILE");
  ck_assert_msg(r.err[0] == 0, "stderr:\n%s", r.err);
  tu_run_free(&r);
  r = nncc("-DB=8 check %s", MLP);
  EXPECT_STATUS(r, 0, "-DB=8 check FILE");
  tu_run_free(&r);
}
END_TEST

START_TEST(define_unknown_name) {
  const char *forms[] = {"check %s -D NOSUCHCONST=8", "%s --emit=ir -DNOSUCHCONST=8",
                         "-D NOSUCHCONST=8 %s --emit=params"};
  for (int i = 0; i < 3; i++) {
    TuRun r = nncc(forms[i], MLP);
    EXPECT_STATUS(r, 2, forms[i]);
    EXPECT_HAS(r.err, "NOSUCHCONST", forms[i]);
    EXPECT_HAS(r.err, "nncc: error:", forms[i]);
    ck_assert_msg(r.out[0] == 0, "%s: stdout:\n%.500s", forms[i], r.out);
    tu_run_free(&r);
  }
}
END_TEST

START_TEST(define_not_a_number) {
  const char *forms[] = {"check %s -D B=twelve", "%s --emit=ir -DB=twelve", "check %s -D B=8x"};
  const char *named[] = {"twelve", "twelve", "8x"};
  for (int i = 0; i < 3; i++) {
    TuRun r = nncc(forms[i], MLP);
    EXPECT_STATUS(r, 2, forms[i]);
    EXPECT_HAS(r.err, named[i], forms[i]);
    EXPECT_HAS(r.err, "B", forms[i]);
    tu_run_free(&r);
  }
  TuRun r = nncc("check %s -D B=", MLP);
  EXPECT_STATUS(r, 2, "-D B= (empty value)");
  tu_run_free(&r);
}
END_TEST

START_TEST(define_without_equals) {
  const char *forms[] = {"check %s -D B", "check %s -DB", "%s --emit=ir -D B", "check %s -D",
                         "check %s -D =8"};
  for (int i = 0; i < 5; i++) {
    TuRun r = nncc(forms[i], MLP);
    EXPECT_STATUS(r, 2, forms[i]);
    EXPECT_HAS(r.err, "nncc: error:", forms[i]);
    tu_run_free(&r);
  }
}
END_TEST

/* ---------------------------------------------------------------- --model */

START_TEST(model_selects_one) {
  char *dir = fresh_dir();
  char *path = write_file(dir, "two.nn", two_models_src);
  TuRun r = nncc("%s --emit=ir", path);
  EXPECT_STATUS(r, 0, "two models");
  EXPECT_HAS(r.out, "graph alpha ", "two models");
  EXPECT_HAS(r.out, "graph beta ", "two models");
  tu_run_free(&r);

  r = nncc("%s --emit=ir --model beta", path);
  EXPECT_STATUS(r, 0, "--model beta");
  EXPECT_HAS(r.out, "graph beta ", "--model beta");
  EXPECT_LACKS(r.out, "graph alpha ", "--model beta");
  tu_run_free(&r);

  r = nncc("--model=alpha %s --emit=ir", path);
  EXPECT_STATUS(r, 0, "--model=alpha");
  EXPECT_HAS(r.out, "graph alpha ", "--model=alpha");
  EXPECT_LACKS(r.out, "graph beta ", "--model=alpha");
  tu_run_free(&r);

  r = nncc("%s --emit=params --model alpha", path);
  EXPECT_STATUS(r, 0, "--emit=params --model alpha");
  ck_assert_msg(has_line(r.out, "p.w", "f32[3,2]"), "p.w missing:\n%s", r.out);
  EXPECT_LACKS(r.out, "q.w", "--emit=params --model alpha");
  tu_run_free(&r);

  r = nncc("check %s --model beta -D B=2", path);
  EXPECT_STATUS(r, 0, "check --model beta -D B=2");
  tu_run_free(&r);

  r = nncc("%s --emit=ir --model beta -D B=2", path);
  EXPECT_STATUS(r, 0, "--model beta -D B=2");
  EXPECT_HAS(r.out, "f32[2,5]", "--model beta -D B=2");
  tu_run_free(&r);
  free(path);
  free(dir);
}
END_TEST

START_TEST(model_unknown) {
  char *dir = fresh_dir();
  char *path = write_file(dir, "two.nn", two_models_src);
  const char *forms[] = {"%s --emit=ir --model nosuchmodel", "check %s --model nosuchmodel"};
  for (int i = 0; i < 2; i++) {
    TuRun r = nncc(forms[i], path);
    EXPECT_STATUS(r, 2, forms[i]);
    EXPECT_HAS(r.err, "nosuchmodel", forms[i]);
    ck_assert_msg(r.out[0] == 0, "%s: stdout:\n%.500s", forms[i], r.out);
    tu_run_free(&r);
  }
  free(path);
  free(dir);
}
END_TEST

/* ----------------------------------------------------------------- passes */

START_TEST(print_after_each_pass) {
  int n;
  const Pass *ps = pass_list(&n);
  for (int i = 0; i < n; i++) {
    TuRun r = nncc("%s --print-after=%s", MLP, ps[i].name);
    EXPECT_STATUS(r, 0, ps[i].name);
    char want[128];
    snprintf(want, sizeof want, "# *** IR after %s ***", ps[i].name);
    ck_assert_msg(count_of(r.out, want) == 1, "--print-after=%s: '%s' %d times in:\n%.2000s",
                  ps[i].name, want, count_of(r.out, want), r.out);
    ck_assert_msg(count_of(r.out, "# *** IR after ") == 1, "--print-after=%s printed other passes:\n%.2000s",
                  ps[i].name, r.out);
    EXPECT_HAS(r.out, "graph mlp ", ps[i].name);
    tu_run_free(&r);
  }
  TuRun r = nncc("%s --print-after=shapes", MLP);
  EXPECT_STATUS(r, 0, "--print-after=shapes");
  ck_assert_msg(!strncmp(r.out, "# *** IR after shapes ***", 25), "header first:\n%.300s", r.out);
  EXPECT_HAS(r.out, "f32[64,784]", "--print-after=shapes");
  tu_run_free(&r);
}
END_TEST

START_TEST(print_after_all) {
  int n;
  const Pass *ps = pass_list(&n);
  TuRun r = nncc("%s --print-after-all", MLP);
  EXPECT_STATUS(r, 0, "--print-after-all");
  const char *prev = r.out;
  for (int i = 0; i < n; i++) {
    char want[128];
    snprintf(want, sizeof want, "# *** IR after %s ***", ps[i].name);
    const char *at = strstr(prev, want);
    ck_assert_msg(at != NULL, "--print-after-all: '%s' missing (or out of order) in:\n%.3000s", want,
                  r.out);
    prev = at + 1;
  }
  ck_assert_int_eq(count_of(r.out, "# *** IR after "), n);
  tu_run_free(&r);
}
END_TEST

START_TEST(time_passes) {
  TuRun r = nncc("%s --time-passes", MLP);
  EXPECT_STATUS(r, 0, "--time-passes");
  EXPECT_HAS(r.err, "shapes", "--time-passes");
  EXPECT_HAS(r.err, "reach", "--time-passes");
  EXPECT_HAS(r.err, "total", "--time-passes");
  tu_run_free(&r);

  /* with the whole pipeline run, every pass is in the table */
  int n;
  const Pass *ps = pass_list(&n);
  r = nncc("%s --time-passes --print-after-all", MLP);
  EXPECT_STATUS(r, 0, "--time-passes --print-after-all");
  for (int i = 0; i < n; i++) EXPECT_HAS(r.err, ps[i].name, "--time-passes table");
  EXPECT_LACKS(r.out, "total", "--time-passes writes the table to stderr");
  tu_run_free(&r);

  r = nncc("%s --emit=ir --time-passes", MLP);
  EXPECT_STATUS(r, 0, "--emit=ir --time-passes");
  EXPECT_HAS(r.err, "shapes", "--emit=ir --time-passes");
  ck_assert_msg(!strncmp(r.out, "# nncc graph IR", 15), "stdout stays the IR:\n%.300s", r.out);
  tu_run_free(&r);
}
END_TEST

/* --------------------------------------------------------------------- -o */

START_TEST(output_file_matches_stdout) {
  char *dir = fresh_dir();
  const char *stages[] = {"ir", "params", "ast"};
  for (int i = 0; i < 3; i++) {
    char out[600];
    snprintf(out, sizeof out, "%s/mlp.%s", dir, stages[i]);
    TuRun ref = nncc("%s --emit=%s", MLP, stages[i]);
    EXPECT_STATUS(ref, 0, stages[i]);
    TuRun r = nncc("%s --emit=%s -o %s", MLP, stages[i], out);
    EXPECT_STATUS(r, 0, stages[i]);
    ck_assert_msg(r.out[0] == 0, "-o %s: stdout not empty:\n%.300s", stages[i], r.out);
    char *got = read_all(out);
    ck_assert_msg(!strcmp(got, ref.out), "--emit=%s -o: file differs from stdout", stages[i]);
    ck_assert_msg(strlen(got) > 0, "--emit=%s -o: empty file", stages[i]);
    free(got);
    tu_run_free(&r);
    tu_run_free(&ref);
  }
  /* -o before the file, and an existing OUT is replaced */
  char *out = write_file(dir, "replace.ir", "sentinel\n");
  TuRun r = nncc("-o %s %s --emit=ir", out, MLP);
  EXPECT_STATUS(r, 0, "-o before FILE");
  char *got = read_all(out);
  ck_assert_msg(!strncmp(got, "# nncc graph IR", 15), "OUT not replaced:\n%.200s", got);
  EXPECT_LACKS(got, "sentinel", "replaced OUT");
  free(got);
  tu_run_free(&r);
  ck_assert_int_eq(entries_with_prefix(dir, "replace.ir.tmp"), 0);
  ck_assert_int_eq(entries_with_prefix(dir, "mlp.ir.tmp"), 0);
  free(out);
  free(dir);
}
END_TEST

START_TEST(output_cannot_write) {
  char *dir = fresh_dir();
  TuRun r = nncc("%s --emit=ir -o %s/nosuchdir/out.ir", MLP, dir);
  EXPECT_STATUS(r, 1, "-o into a missing directory");
  EXPECT_HAS(r.err, "cannot write", "-o into a missing directory");
  EXPECT_HAS(r.err, "nosuchdir/out.ir", "-o names the file");
  tu_run_free(&r);
  ck_assert_int_eq(entries(dir), 0);

  /* OUT is a directory: an error, and no temporary left next to it */
  char sub[600];
  snprintf(sub, sizeof sub, "%s/sub", dir);
  ck_assert_int_eq(mkdir(sub, 0700), 0);
  r = nncc("%s --emit=ir -o %s", MLP, sub);
  EXPECT_STATUS(r, 1, "-o onto a directory");
  EXPECT_HAS(r.err, "cannot write", "-o onto a directory");
  tu_run_free(&r);
  ck_assert_int_eq(entries(dir), 1);
  ck_assert_int_eq(entries(sub), 0);
  free(dir);
}
END_TEST

START_TEST(output_untouched_on_failure) {
  char *dir = fresh_dir();
  char *bad = write_file(dir, "bad.nn", bad_src);
  char *syn = write_file(dir, "syntax.nn", syntax_src);
  char *out = write_file(dir, "out.ir", "sentinel content\n");
  struct {
    const char *fmt;
    const char *file;
    int status;
  } cases[] = {
      {"%s --emit=ir -o %s", bad, 1},
      {"%s --emit=params -o %s", bad, 1},
      {"%s --emit=ast -o %s", syn, 1},
      {"%s --emit=ir -o %s", syn, 1},
      {"%s --emit=ir -D NOSUCHCONST=1 -o %s", MLP, 2},
      {"%s --emit=ir --model nosuchmodel -o %s", MLP, 2},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    TuRun r = nncc(cases[i].fmt, cases[i].file, out);
    EXPECT_STATUS(r, cases[i].status, cases[i].fmt);
    char *got = read_all(out);
    ck_assert_msg(!strcmp(got, "sentinel content\n"), "%s: OUT was changed to:\n%.300s",
                  cases[i].fmt, got);
    free(got);
    ck_assert_msg(entries_with_prefix(dir, "out.ir.tmp") == 0, "%s: temporary file left behind",
                  cases[i].fmt);
    ck_assert_msg(entries(dir) == 3, "%s: stray files in the output directory", cases[i].fmt);
    tu_run_free(&r);
  }
  free(bad);
  free(syn);
  free(out);
  free(dir);
}
END_TEST

/* ------------------------------------------------------- not yet available
 * Stages this version does not have yet (the .so output, fusion dumps):
 * exit 2 with "not available". Update when they land. */

/* --emit=fused: the IR after the fuse pass, kernel blocks and a summary;
 * --no-fuse turns the pass off; --emit=opt is the IR before it. */
START_TEST(emit_fused_shows_kernels) {
  TuRun r = nncc("%s --emit=fused", MLP);
  EXPECT_STATUS(r, 0, "--emit=fused");
  EXPECT_HAS(r.out, "# nncc graph IR", "--emit=fused");
  EXPECT_HAS(r.out, "  kernel k1 matmul f32[64,128] {", "--emit=fused: the first layer's epilogue");
  EXPECT_HAS(r.out, "    %h = relu", "--emit=fused: relu inside the kernel");
  EXPECT_HAS(r.out, "kernel k3 softmax f32[64,10] {", "--emit=fused: the cross-entropy gradient");
  EXPECT_HAS(r.out, "# mlp.train: 9 kernels hold", "--emit=fused: the summary");
  tu_run_free(&r);
  r = nncc("%s --emit=fused --no-fuse", MLP);
  EXPECT_STATUS(r, 0, "--no-fuse");
  EXPECT_LACKS(r.out, "kernel k", "--no-fuse");
  EXPECT_HAS(r.out, "# mlp.train: 0 kernels hold 0 of", "--no-fuse");
  tu_run_free(&r);
  r = nncc("%s --emit=opt", MLP);
  EXPECT_STATUS(r, 0, "--emit=opt");
  EXPECT_LACKS(r.out, "kernel k", "--emit=opt is before fusion");
  tu_run_free(&r);
}
END_TEST

/* d loss / d input is in a compiled model by default (the ABI's grad()),
 * left out with --no-input-grads (train, eval and bench leave it out). */
START_TEST(input_grads_option) {
  TuRun r = nncc("%s --emit=fused", MLP);
  EXPECT_STATUS(r, 0, "default");
  EXPECT_HAS(r.out, "grad logits.b=%d.logits.b, logits.w=%d.logits.w, h.b=%d.h.b, x=%d.x, h.w=%d.h.w", "default");
  tu_run_free(&r);
  r = nncc("%s --emit=fused --no-input-grads", MLP);
  EXPECT_STATUS(r, 0, "--no-input-grads");
  EXPECT_HAS(r.out, "grad logits.b=%d.logits.b, logits.w=%d.logits.w, h.b=%d.h.b, h.w=%d.h.w\n", "--no-input-grads");
  EXPECT_LACKS(r.out, "%d.x", "--no-input-grads");
  tu_run_free(&r);
}
END_TEST

START_TEST(emit_dot_draws_kernels_as_clusters) {
  TuRun r = nncc("%s --emit=dot", MLP);
  EXPECT_STATUS(r, 0, "--emit=dot");
  EXPECT_HAS(r.out, "digraph nncc {", "--emit=dot");
  EXPECT_HAS(r.out, "subgraph cluster_g1_k1 {", "--emit=dot: a kernel of mlp.train");
  EXPECT_HAS(r.out, "label=\"k1 matmul f32[64,128]\"", "--emit=dot: the kernel's label");
  EXPECT_HAS(r.out, "g1_n26 -> g1_n27;", "--emit=dot: an edge");
  ck_assert_msg(r.out[strlen(r.out) - 2] == '}', "--emit=dot: the digraph is closed");
  tu_run_free(&r);
}
END_TEST

START_TEST(remarks_fusion_explain_decisions) {
  TuRun r = nncc("%s --emit=llvm --remarks=fusion", MLP);
  EXPECT_STATUS(r, 0, "--remarks=fusion");
  EXPECT_HAS(r.err, "mlp.nn:10:7: remark: mlp.train: fused 'relu' (h) into the epilogue of the matmul kernel of 'matmul'",
             "--remarks=fusion: a fused epilogue");
  EXPECT_HAS(r.err, "remark: mlp.train: did not fuse 'sum' (d.h.b) with its operand 'where': only an elementwise loop "
             "ends with a reduction", "--remarks=fusion: a reduction");
  EXPECT_HAS(r.err, "did not fuse 'div' into the loop of 'add': the operand f32[] broadcasts to f32[10]",
             "--remarks=fusion: a broadcast operand");
  tu_run_free(&r);
  r = nncc("%s --emit=llvm", MLP);
  EXPECT_LACKS(r.err, "remark", "no remarks unless asked");
  tu_run_free(&r);
  r = nncc("%s --remarks=everything", MLP);
  EXPECT_STATUS(r, 2, "--remarks=everything");
  EXPECT_HAS(r.err, "unknown remark kind 'everything' (known: fusion)", "--remarks=everything");
  tu_run_free(&r);
}
END_TEST

/* -o model.so with the options SPEC §3 documents: a library and header */
START_TEST(shared_library_with_options) {
  char *dir = fresh_dir();
  const char *forms[] = {"%s -o %s/x.so -O2", "%s -o %s/x.so --header %s/x.h --target-cpu native -O3"};
  for (int i = 0; i < 2; i++) {
    TuRun r = nncc(forms[i], MLP, dir, dir);
    EXPECT_STATUS(r, 0, forms[i]);
    tu_run_free(&r);
  }
  ck_assert_int_eq(entries(dir), 2);  /* x.so and x.h, no temporaries */
  TuRun r = nncc("%s -o %s/nodir/x.so", MLP, dir);
  EXPECT_STATUS(r, 1, "-o into a missing directory");
  tu_run_free(&r);
  char path[700];
  snprintf(path, sizeof path, "%s/x.so", dir);
  unlink(path);
  snprintf(path, sizeof path, "%s/x.h", dir);
  unlink(path);
  rmdir(dir);
  free(dir);
}
END_TEST

/* Code generation refuses a module LLVM would take hours on, with a
 * compile error and nothing written (the limit lowered for the test). */
START_TEST(codegen_size_limit) {
  char *dir = fresh_dir();
  setenv("NNCC_MAX_CODEGEN_OPS", "5", 1);
  TuRun r = nncc("%s -o %s/x.so --header %s/x.h", MLP, dir, dir);
  EXPECT_STATUS(r, 1, "-o over the limit");
  EXPECT_HAS(r.err, "the model is too large to compile: 35 operations after differentiation and fusion (at most 5;",
             "-o over the limit");
  tu_run_free(&r);
  r = nncc("train %s/examples/spiral.nn --quiet", NNCC_SOURCE_DIR);
  EXPECT_STATUS(r, 1, "train over the limit");
  EXPECT_HAS(r.err, "too large to compile", "train over the limit");
  tu_run_free(&r);
  unsetenv("NNCC_MAX_CODEGEN_OPS");
  ck_assert_int_eq(entries(dir), 0);
  rmdir(dir);
  free(dir);
}
END_TEST

/* ---------------------------------------------------- gradients (issue 3) */

START_TEST(gradcheck_passes_and_prints_a_table) {
  TuRun r = nncc("gradcheck -D B=4 %s/examples/sine.nn --hvp", NNCC_SOURCE_DIR);
  EXPECT_STATUS(r, 0, "gradcheck sine");
  EXPECT_HAS(r.out, "gradcheck of model 'sine'", "gradcheck sine");
  EXPECT_HAS(r.out, "h1.w", "gradcheck sine");
  EXPECT_HAS(r.out, "hessian-vector product", "gradcheck sine");
  EXPECT_LACKS(r.out, "FAIL", "gradcheck sine");
  tu_run_free(&r);
}
END_TEST

/* Every example's gradients, at smaller sizes (-D) to keep CI fast: the
 * ops and the graph shape are the same as at full size. */
START_TEST(gradcheck_every_example) {
  const char *runs[] = {"-D B=4 %s/examples/mlp.nn", "-D B=2 %s/examples/lenet.nn",
                        "-D B=2 -D T=3 %s/examples/char_rnn.nn", "%s/examples/sine.nn",
                        "%s/examples/spiral.nn"};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    char args[512];
    snprintf(args, sizeof args, runs[i], NNCC_SOURCE_DIR);
    TuRun r = nncc("gradcheck %s", args);
    EXPECT_STATUS(r, 0, args);
    EXPECT_HAS(r.out, "result", args);
    EXPECT_LACKS(r.out, "FAIL", args);
    tu_run_free(&r);
  }
}
END_TEST

/* --jit: the compiled gradients (float32, after every pass and LLVM)
 * against float64 finite differences. A wrong rule making it fail needs
 * ad_test_broken_op, which only the unit tests can set
 * (tests/tools/test_libnncc.c). */
START_TEST(gradcheck_through_the_jit) {
  const char *runs[] = {"%s/examples/spiral.nn", "-D B=2 %s/examples/lenet.nn",
                        "-D B=2 -D T=3 %s/examples/char_rnn.nn"};
  for (size_t i = 0; i < sizeof runs / sizeof runs[0]; i++) {
    char args[512];
    snprintf(args, sizeof args, runs[i], NNCC_SOURCE_DIR);
    TuRun r = nncc("gradcheck %s --jit", args);
    EXPECT_STATUS(r, 0, args);
    EXPECT_HAS(r.out, "through the JIT", args);
    EXPECT_HAS(r.out, "(loss)", args);
    EXPECT_LACKS(r.out, "FAIL", args);
    tu_run_free(&r);
  }
  TuRun r = nncc("gradcheck %s --jit --hvp", MLP);
  EXPECT_STATUS(r, 2, "--jit --hvp");
  tu_run_free(&r);
  r = nncc("train %s --jit", MLP);
  EXPECT_STATUS(r, 2, "train --jit");
  EXPECT_HAS(r.err, "--jit is not an option of 'nncc train' (it is one of: gradcheck)", "train --jit");
  tu_run_free(&r);
}
END_TEST

/* stop_gradient's output is held at its base-point value while taking
 * differences, in every mode (issue 8 item 4): before, each of these
 * failed and blamed the mul. */
START_TEST(gradcheck_with_stop_gradient) {
  char *dir = fresh_dir();
  char *path = write_file(dir, "sg.nn",
                          "model m {\n  input x: f32[4, 3]\n  input y: f32[4, 2]\n  h = dense(x, 5, tanh)\n"
                          "  pred = dense(h, 2)\n  loss mse(pred * stop_gradient(pred), y) + mean(stop_gradient(h) * h)\n}\n");
  const char *modes[] = {"", "--hvp", "--jit"};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    TuRun r = nncc("gradcheck %s %s", path, modes[i]);
    EXPECT_STATUS(r, 0, modes[i]);
    EXPECT_LACKS(r.out, "FAIL", modes[i]);
    EXPECT_LACKS(r.err, "gives a wrong result", modes[i]);
    tu_run_free(&r);
  }
  unlink(path);
  free(path);
  rmdir(dir);
  free(dir);
}
END_TEST

/* elu, selu, silu and hardtanh (PyTorch's defaults and explicit ones)
 * pass gradcheck in every mode: the reference evaluator, grad of grad,
 * and the compiled gradients through the JIT. */
START_TEST(gradcheck_activations) {
  char *dir = fresh_dir();
  char *path = write_file(dir, "act.nn",
                          "model m {\n  input x: f32[4, 3]\n  input t: f32[4, 2]\n"
                          "  h = dense(x, 5, elu) + selu(dense(x, 5)) + silu(dense(x, 5))\n"
                          "  h = h + hardtanh(dense(x, 5) * 2) + hardtanh(dense(x, 5), -0.5, 0.7)\n"
                          "  p = dense(elu(h, alpha = 0.3), 2)\n  loss mse(p, t)\n}\n");
  const char *modes[] = {"", "--hvp", "--jit"};
  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
    TuRun r = nncc("gradcheck %s %s", path, modes[i]);
    EXPECT_STATUS(r, 0, modes[i]);
    EXPECT_HAS(r.out, "result", modes[i]);
    EXPECT_LACKS(r.out, "FAIL", modes[i]);
    tu_run_free(&r);
  }
  unlink(path);
  free(path);
  rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(gradcheck_without_loss_fails) {
  char *dir = fresh_dir();
  char path[700];
  snprintf(path, sizeof path, "%s/noloss.nn", dir);
  FILE *f = fopen(path, "w");
  fputs("model m {\n  input x: f32[2, 3]\n  y = dense(x, 4)\n  output y\n}\n", f);
  fclose(f);
  TuRun r = nncc("gradcheck %s", path);
  EXPECT_STATUS(r, 1, "gradcheck without loss");
  EXPECT_HAS(r.err, "has no loss", "gradcheck without loss");
  tu_run_free(&r);
  unlink(path);
  rmdir(dir);
  free(dir);
}
END_TEST

START_TEST(emit_grad_prints_training_graphs) {
  TuRun r = nncc("%s --emit=grad", MLP);
  EXPECT_STATUS(r, 0, "--emit=grad");
  EXPECT_HAS(r.out, "graph mlp.train", "--emit=grad");
  EXPECT_HAS(r.out, "  grad ", "--emit=grad");
  EXPECT_HAS(r.out, "h.w=%", "--emit=grad");
  EXPECT_LACKS(r.out, "update ", "--emit=grad");  /* the optimizer comes later */
  tu_run_free(&r);
  r = nncc("%s --emit=opt", MLP);
  EXPECT_STATUS(r, 0, "--emit=opt");
  EXPECT_HAS(r.out, "graph mlp ", "--emit=opt");
  EXPECT_HAS(r.out, "graph mlp.train", "--emit=opt");
  EXPECT_HAS(r.out, "h.w:exp_avg", "--emit=opt");  /* adam's moments */
  EXPECT_HAS(r.out, " update %", "--emit=opt");
  tu_run_free(&r);
  r = nncc("%s --emit=memory", MLP);
  EXPECT_STATUS(r, 0, "--emit=memory");
  EXPECT_HAS(r.out, "# memory plan of model mlp: one slab of", "--emit=memory");
  EXPECT_HAS(r.out, "training graph mlp.train: scratch", "--emit=memory");
  EXPECT_HAS(r.out, "d loss / d h.w", "--emit=memory");
  EXPECT_HAS(r.out, "  not stored: 52 values kept in registers by fused kernels", "--emit=memory: fusion");
  EXPECT_HAS(r.out, "2 transposes read through; written in place into their state: 13 values", "--emit=memory");
  EXPECT_HAS(r.out, "f32[784,128]  (in place)", "--emit=memory: the weight's update");
  tu_run_free(&r);
}
END_TEST

/* ------------------------------------------------------------------ suite */

static Suite *cli_suite(void) {
  Suite *s = suite_create("cli");
  struct {
    const char *name;
    const TTest *tests[16];
  } groups[] = {
      {"examples",
       {examples_check, examples_emit_ir, examples_emit_ast, examples_verify_each, mlp_params,
        mlp_ast}},
      {"usage",
       {usage_no_arguments, usage_unknown_option, usage_unknown_emit_stage, usage_unknown_pass,
        usage_two_inputs, usage_nothing_to_do, help_lists_passes, version}},
      {"input",
       {missing_file, directory_input, unreadable_file, malformed_program, errors_are_collected,
        empty_and_comment_only, unreachable_param_warning}},
      {"defines",
       {define_changes_batch, define_with_check, define_before_subcommand, define_unknown_name,
        define_not_a_number, define_without_equals}},
      {"model", {model_selects_one, model_unknown}},
      {"passes", {print_after_each_pass, print_after_all, time_passes}},
      {"output", {output_file_matches_stdout, output_cannot_write, output_untouched_on_failure}},
      {"fusion", {emit_fused_shows_kernels, emit_dot_draws_kernels_as_clusters, remarks_fusion_explain_decisions,
                  input_grads_option, shared_library_with_options, codegen_size_limit}},
      {"gradients",
       {gradcheck_passes_and_prints_a_table, gradcheck_every_example, gradcheck_through_the_jit,
        gradcheck_with_stop_gradient, gradcheck_activations, gradcheck_without_loss_fails,
        emit_grad_prints_training_graphs}},
  };
  for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
    TCase *tc = tcase_create(groups[i].name);
    tcase_add_unchecked_fixture(tc, make_base_dir, remove_base_dir);
    tcase_set_timeout(tc, 300);
    for (int k = 0; k < 16 && groups[i].tests[k]; k++) tcase_add_test(tc, groups[i].tests[k]);
    suite_add_tcase(s, tc);
  }
  return s;
}

int main(void) {
  Suite *s = cli_suite();
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
