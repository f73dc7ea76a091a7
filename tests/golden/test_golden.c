/* test_golden.c - the golden-file runner. A golden test is one
 * self-contained file:
 *
 *   tests/golden/.../NAME.nn   a program, then the expected results as comments
 *   tests/errors/NAME.nn       the same, for malformed programs (exit 1 default)
 *
 *     # ARGS: --emit=ir        nncc arguments before the file (default
 *                              --emit=ir; `check` for tests/errors)
 *     # EXIT: 1                expected exit code (0; 1 in tests/errors)
 *     # FILE: ../x.nn          run on this file instead (relative to the
 *                              golden's directory): goldens of examples/
 *     # CHECK: <line>          expected stdout, every line, in order
 *     # STDERR: <line>         expected stderr, every line, in order
 *
 * nncc runs in the file's directory on its bare name, so messages read
 * "name.nn:3:7: error: ...", with --verify-each (ir_verify after every
 * pass). Outputs that are graph IR are also read back
 * with ir_read and printed again: the text must survive the round trip.
 *
 * Expected lines are updated deliberately, never silently: run with
 * NNCC_UPDATE_GOLDEN=1 to rewrite them from the current output, then
 * review the diff (git diff tests/) before committing. */
#include <check.h>
#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#define MAX_FILES 1024

static char *files[MAX_FILES];
static int n_files;

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void scan(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)) && n_files < MAX_FILES) {
    size_t len = strlen(e->d_name);
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (e->d_name[0] == '.') continue;
    if (e->d_type == DT_DIR) {
      scan(path);
      continue;
    }
    if (len > 3 && !strcmp(e->d_name + len - 3, ".nn")) files[n_files++] = strdup(path);
  }
  closedir(d);
}

/* Appends text to a growing buffer. */
typedef struct Buf {
  char *s;
  size_t n, cap;
} Buf;

static void buf_add(Buf *b, const char *s, size_t n) {
  if (b->n + n + 1 > b->cap) {
    b->cap = (b->n + n + 1) * 2;
    b->s = realloc(b->s, b->cap);
  }
  memcpy(b->s + b->n, s, n);
  b->n += n;
  b->s[b->n] = 0;
}

static bool starts(const char *line, const char *prefix) {
  return !strncmp(line, prefix, strlen(prefix));
}

/* The directive's text after "# KEY:" and one optional space. */
static const char *directive(const char *line, const char *key) {
  if (!starts(line, key)) return NULL;
  line += strlen(key);
  return *line == ' ' ? line + 1 : line;
}

/* Adds `text` (lines) to `out` as "# KEY: line" comments. */
static void add_directives(Buf *out, const char *key, const char *text) {
  const char *p = text;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t len = nl ? (size_t)(nl - p) : strlen(p);
    buf_add(out, key, strlen(key));
    if (len) buf_add(out, " ", 1);
    buf_add(out, p, len);
    buf_add(out, "\n", 1);
    p += len + (nl ? 1 : 0);
  }
}

/* First line where a and b differ, for the failure message. */
static char *first_diff(const char *want, const char *got) {
  int line = 1;
  const char *a = want, *b = got;
  while (*a && *a == *b) {
    if (*a == '\n') line++;
    a++, b++;
  }
  const char *ae = strchr(a, '\n'), *be = strchr(b, '\n');
  /* back up to the start of the line */
  while (a > want && a[-1] != '\n') a--, b--;
  ae = strchr(a, '\n');
  be = strchr(b, '\n');
  char *msg = malloc(2048);
  snprintf(msg, 2048, "line %d:\n  want: %.*s\n  got:  %.*s", line,
           (int)(ae ? ae - a : (long)strlen(a)) > 900 ? 900 : (int)(ae ? ae - a : (long)strlen(a)), a,
           (int)(be ? be - b : (long)strlen(b)) > 900 ? 900 : (int)(be ? be - b : (long)strlen(b)), b);
  return msg;
}

/* print -> read -> print must give the same text. */
static void check_round_trip(const char *path, const char *ir) {
  Arena a = {0};
  char *errs = NULL;
  size_t errs_len = 0;
  FILE *mem = open_memstream(&errs, &errs_len);
  Diag d;
  diag_init(&d, "golden.ir", ir, strlen(ir), mem);
  Module *m = ir_read(&a, &d);
  fclose(mem);
  ck_assert_msg(m && d.n_errors == 0, "%s: the IR does not read back:\n%s", path, errs);
  char *again = NULL;
  size_t again_len = 0;
  FILE *out = open_memstream(&again, &again_len);
  ir_print_module(out, m);
  fclose(out);
  for (int i = 0; i < m->n_graphs; i++)
    ck_assert_msg(ir_verify(m->graphs[i], stderr) == 0, "%s: read-back IR does not verify", path);
  /* comments after the last graph (--emit=fused's summary) are not IR */
  const char *end = strrchr(ir, '}');
  size_t ir_len = end ? (size_t)(end - ir) + 2 : strlen(ir);
  if (strlen(again) != ir_len || strncmp(again, ir, ir_len)) {
    char *msg = first_diff(ir, again);
    ck_abort_msg("%s: print -> read -> print differs at %s", path, msg);
  }
  free(again);
  free(errs);
  arena_free(&a);
}

START_TEST(golden_file) {
  const char *path = files[_i];
  size_t len;
  char *text = tu_read_file(path, &len);
  ck_assert_msg(text != NULL, "cannot read %s", path);
  bool is_error_test = strstr(path, "/errors/") != NULL;
  const char *args = is_error_test ? "check" : "--emit=ir";
  int want_exit = is_error_test ? 1 : 0;
  Buf want_out = {0}, want_err = {0}, program = {0};
  buf_add(&want_out, "", 0);
  buf_add(&want_err, "", 0);
  char args_buf[512] = "", target[512] = "";
  /* by length, not as a C string: a test may hold a NUL byte */
  for (char *line = text; line < text + len;) {
    char *nl = memchr(line, '\n', (size_t)(text + len - line));
    size_t n = nl ? (size_t)(nl - line) : (size_t)(text + len - line);
    char save = line[n];
    line[n] = 0;
    const char *v;
    if ((v = directive(line, "# CHECK:"))) {
      buf_add(&want_out, v, strlen(v));
      buf_add(&want_out, "\n", 1);
    } else if ((v = directive(line, "# STDERR:"))) {
      buf_add(&want_err, v, strlen(v));
      buf_add(&want_err, "\n", 1);
    } else {
      if ((v = directive(line, "# ARGS:"))) snprintf(args_buf, sizeof args_buf, "%s", v);
      if ((v = directive(line, "# EXIT:"))) want_exit = atoi(v);
      if ((v = directive(line, "# FILE:"))) snprintf(target, sizeof target, "%s", v);
      buf_add(&program, line, n);
      buf_add(&program, "\n", 1);
    }
    line[n] = save;
    line += n + (nl ? 1 : 0);
  }
  if (args_buf[0]) args = args_buf;

  char dir[1024];
  snprintf(dir, sizeof dir, "%s", path);
  char *slash = strrchr(dir, '/');
  *slash = 0;
  /* run in the file's directory so messages name the bare file */
  char full[4096];
  snprintf(full, sizeof full, "%s --verify-each %s", args, target[0] ? target : slash + 1);
  char cwd[1024];
  ck_assert(getcwd(cwd, sizeof cwd) != NULL);
  ck_assert(chdir(dir) == 0);
  TuRun r = tu_run(full, 60);
  ck_assert(chdir(cwd) == 0);

  if (getenv("NNCC_UPDATE_GOLDEN")) {
    /* rewrite: the program part, then the current results */
    while (program.n >= 2 && program.s[program.n - 1] == '\n' && program.s[program.n - 2] == '\n')
      program.s[--program.n] = 0;
    if (program.n && program.s[program.n - 1] != '\n') buf_add(&program, "\n", 1);
    Buf out = {0};
    buf_add(&out, program.s, program.n);
    if (r.status != (is_error_test ? 1 : 0) && !strstr(program.s, "# EXIT:")) {
      char e[32];
      snprintf(e, sizeof e, "# EXIT: %d\n", r.status);
      buf_add(&out, e, strlen(e));
    }
    add_directives(&out, "# CHECK:", r.out);
    add_directives(&out, "# STDERR:", r.err);
    FILE *f = fopen(path, "w");
    ck_assert(f != NULL);
    fwrite(out.s, 1, out.n, f);
    fclose(f);
    free(out.s);
  } else {
    ck_assert_msg(r.status == want_exit, "%s: exit %d, want %d\nstderr:\n%s", path, r.status,
                  want_exit, r.err);
    if (strcmp(want_out.s, r.out)) {
      char *msg = first_diff(want_out.s, r.out);
      ck_abort_msg("%s: stdout differs at %s\n(NNCC_UPDATE_GOLDEN=1 rewrites expectations)", path, msg);
    }
    if (strcmp(want_err.s, r.err)) {
      char *msg = first_diff(want_err.s, r.err);
      ck_abort_msg("%s: stderr differs at %s\n(NNCC_UPDATE_GOLDEN=1 rewrites expectations)", path, msg);
    }
    if (starts(r.out, "# nncc graph IR")) check_round_trip(path, r.out);
  }
  tu_run_free(&r);
  free(want_out.s);
  free(want_err.s);
  free(program.s);
  free(text);
}
END_TEST

int main(void) {
  scan(NNCC_SOURCE_DIR "/tests/golden");
  scan(NNCC_SOURCE_DIR "/tests/errors");
  qsort(files, (size_t)n_files, sizeof files[0], cmp_str);
  Suite *s = suite_create("golden");
  TCase *tc = tcase_create("files");
  tcase_set_timeout(tc, 120);
  tcase_add_loop_test(tc, golden_file, 0, n_files);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  if (n_files == 0) {
    fprintf(stderr, "no golden files found\n");
    return 1;
  }
  printf("%d golden files\n", n_files);
  return failed ? 1 : 0;
}
