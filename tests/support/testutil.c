/* testutil.c - see testutil.h. */
#include "testutil.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

char *tu_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc(cap);
  size_t k;
  while ((k = fread(buf + n, 1, cap - n - 1, f)) > 0) {
    n += k;
    if (cap - n < 2) buf = realloc(buf, cap *= 2);
  }
  fclose(f);
  buf[n] = 0;
  if (len) *len = n;
  return buf;
}

TuRun tu_run(const char *args, int timeout_s) {
  TuRun r = {0};
  char out_path[] = "/tmp/nncc_tu_outXXXXXX", err_path[] = "/tmp/nncc_tu_errXXXXXX";
  int fo = mkstemp(out_path), fe = mkstemp(err_path);
  close(fo);
  close(fe);
  size_t need = strlen(args) + strlen(NNCC_BIN) + 200;
  char *cmd = malloc(need);
  snprintf(cmd, need, "timeout -s KILL %d %s %s >%s 2>%s </dev/null", timeout_s, NNCC_BIN,
           args, out_path, err_path);
  int st = system(cmd);
  free(cmd);
  if (WIFEXITED(st)) {
    r.status = WEXITSTATUS(st);
    /* sh reports a signal-killed child as 128+sig; timeout -s KILL as 137 */
    if (r.status == 137) r.status = 124;
  } else {
    r.status = 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
  }
  r.out = tu_read_file(out_path, NULL);
  r.err = tu_read_file(err_path, NULL);
  if (!r.out) r.out = calloc(1, 1);
  if (!r.err) r.err = calloc(1, 1);
  unlink(out_path);
  unlink(err_path);
  return r;
}

void tu_run_free(TuRun *r) {
  free(r->out);
  free(r->err);
  r->out = r->err = NULL;
}

Module *tu_compile(Arena *a, const char *src, char **diag_text, int *n_errors) {
  char *buf = NULL;
  size_t size = 0;
  FILE *mem = open_memstream(&buf, &size);
  Diag d;
  diag_init(&d, "test.nn", src, strlen(src), mem);
  ElabOptions opt = {0};
  opt.base_dir = ".";
  Module *m = frontend_compile(a, &d, &opt, NULL);
  fclose(mem);
  if (n_errors) *n_errors = d.n_errors;
  if (diag_text) *diag_text = buf;
  else free(buf);
  return m;
}

char *tu_temp_file(const char *text, size_t len, const char *suffix) {
  char tmpl[256];
  snprintf(tmpl, sizeof tmpl, "/tmp/nncc_tu_XXXXXX%s", suffix);
  int fd = mkstemps(tmpl, (int)strlen(suffix));
  if (fd < 0) return NULL;
  size_t off = 0;
  while (off < len) {
    ssize_t k = write(fd, text + off, len - off);
    if (k <= 0) break;
    off += (size_t)k;
  }
  close(fd);
  return strdup(tmpl);
}
