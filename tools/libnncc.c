/* libnncc.c - the library API of libnncc.h: source text -> front end ->
 * the whole pass pipeline -> codegen's ORC LLJIT (cg_jit_new) -> one
 * nncc_model_api per model.
 *
 * A jit owns the arena of its compilation, because the tensor names and
 * shapes of every nncc_model_api point into the IR. Diagnostics go to a
 * Diag writing into a memstream, so a library user gets byte for byte
 * what `nncc check` would print. The driver (tools/driver.h) enters
 * lower down: with a Module it already holds, or with -D overrides it
 * already parsed. */
#include "tools/libnncc.h"

#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tools/driver.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_SOURCE_BYTES (64u << 20)  /* as the driver: no .nn file is larger */
#define MAX_DEFINES 64

struct nncc_jit {
  Arena arena;  /* the Module the models' descriptions point into; empty
                   when the driver lent its own (nncc_jit_from_module) */
  CgJit *cg;
};

nncc_jit *nncc_jit_from_module(Module *m, const CgOptions *o, char *err, size_t err_size) {
  CgJit *cg = cg_jit_new(m, o, err, err_size);  /* a recovery point of its own */
  if (!cg) return NULL;
  nncc_jit *j = nncc_calloc_or_null(1, sizeof *j);
  if (!j) {
    snprintf(err, err_size, "out of memory");
    cg_jit_free(cg);
    return NULL;
  }
  j->cg = cg;
  return j;
}

const nncc_model_api *nncc_jit_model(nncc_jit *j, const char *model) {
  return j ? cg_jit_model(j->cg, model) : NULL;
}

void nncc_jit_free(nncc_jit *j) {
  if (!j) return;
  cg_jit_free(j->cg);
  arena_free(&j->arena);
  free(j);
}

/* Hands the memstream's text to *out (NULL when nothing was written);
 * buf is the memstream's, valid only once it is closed. */
static void close_diagnostics(FILE *f, char **buf, char **out) {
  fclose(f);
  if (out && *buf && **buf) {
    *out = *buf;
    return;
  }
  free(*buf);
  if (out) *out = NULL;
}

/* compile_module (every pass, verified) then LLVM, into j: its arena
 * holds the IR from the start, since the Module and its graphs keep a
 * pointer to the arena they were made in. Messages go to d, in the
 * driver's words. */
static bool compile(nncc_jit *j, Diag *d, const ElabOptions *eo, const CgOptions *co) {
  FILE *out = d->out;
  PassOptions po = {.out = out};
  Compilation c = {.eo = eo, .po = &po};
  switch (compile_module(&j->arena, d, &c)) {
  case COMPILE_OK:
  case COMPILE_NO_MODEL:  /* warned; a jit of no model */
    break;
  case COMPILE_BAD_DEFINE:
    fprintf(out, "nncc: error: -D %s: no constant with that name in the program\n", eo->overrides[c.bad_define].name);
    return false;
  case COMPILE_ERROR:
  case COMPILE_NO_SUCH_MODEL:  /* no model is asked for */
    return false;
  }
  char err[1024] = "";
  j->cg = cg_jit_new(c.module, co, err, sizeof err);
  if (!j->cg) fprintf(out, "nncc: error: code generation failed: %s\n", err);
  return j->cg != NULL;
}

/* compile() as a recovery point (ir.h): out of memory and internal
 * errors come back as a message in d, and what the compilation made
 * (the IR in j's arena, the passes' scratch) is freed. No local changes
 * after setjmp. */
static bool compile_protected(nncc_jit *j, Diag *d, const ElabOptions *eo, const CgOptions *co) {
  NnccCatch rp;
  nncc_catch_push(&rp);
  if (setjmp(rp.jmp)) {
    fprintf(d->out, "nncc: error: %s\n", rp.msg);
    return false;
  }
  bool ok = compile(j, d, eo, co);
  nncc_catch_pop(&rp);
  arena_keep(&j->arena);  /* the jit's, freed by nncc_jit_free */
  return ok;
}

nncc_jit *nncc_jit_from_source(const char *path, const char *src, size_t len, const ElabOptions *eo,
                               const CgOptions *co, char **diagnostics) {
  char *buf = NULL;
  size_t size = 0;
  FILE *mem = open_memstream(&buf, &size);
  if (!mem) return NULL;
  nncc_jit *j = nncc_calloc_or_null(1, sizeof *j);
  Diag d;
  diag_init(&d, path, src, len, mem);
  if (!j) fprintf(mem, "nncc: error: out of memory\n");
  if (!j || !compile_protected(j, &d, eo, co)) {
    nncc_jit_free(j);
    j = NULL;
  }
  close_diagnostics(mem, &buf, diagnostics);
  return j;
}

/* "NAME=VALUE" as the driver reads -D (nncc_parse_define), the name in a. */
static bool parse_define(Arena *a, const char *arg, ConstOverride *ov, FILE *out) {
  char msg[512];
  size_t name_len;
  if (!nncc_parse_define(arg, ov, &name_len, msg, sizeof msg)) {
    fprintf(out, "nncc: error: %s\n", msg);
    return false;
  }
  ov->name = arena_strndup(a, arg, name_len);
  return true;
}

/* parse_define for each of o's defines, as a recovery point: the names
 * go into the arena, and out of memory is reported in out. */
static bool parse_defines(Arena *names, const nncc_compile_options *o, ElabOptions *eo, FILE *out) {
  NnccCatch rp;
  nncc_catch_push(&rp);
  if (setjmp(rp.jmp)) {
    fprintf(out, "nncc: error: %s\n", rp.msg);
    return false;
  }
  bool ok = true;
  for (int i = 0; ok && i < o->n_defines; i++)
    ok = parse_define(names, o->defines[i], &eo->overrides[eo->n_overrides++], out);
  nncc_catch_pop(&rp);
  return ok;
}

/* The public entry points: options to ElabOptions and CgOptions, then
 * nncc_jit_from_source. A problem found before the front end runs (an
 * unreadable file, a malformed define) is reported the same way. */
static nncc_jit *compile_text(const char *path, const char *src, size_t len, const char *base_dir,
                              const nncc_compile_options *o, char **diagnostics) {
  nncc_compile_options defaults = NNCC_COMPILE_DEFAULTS;
  if (!o) o = &defaults;
  CgOptions co = {.opt_level = o->opt_level >= 0 && o->opt_level <= 3 ? o->opt_level : 2,
                  .target_cpu = o->target_cpu, .check_numerics = o->check_numerics, .source_name = path};
  ConstOverride ovs[MAX_DEFINES];
  ElabOptions eo = {.overrides = ovs, .base_dir = base_dir};
  Arena names = {0};
  char *buf = NULL;
  size_t size = 0;
  FILE *mem = open_memstream(&buf, &size);
  if (!mem) return NULL;
  bool ok = o->n_defines >= 0 && o->n_defines <= MAX_DEFINES;
  if (!ok) fprintf(mem, "nncc: error: %d defines: at most %d\n", o->n_defines, MAX_DEFINES);
  ok = ok && parse_defines(&names, o, &eo, mem);
  char cpu_msg[2048];  /* before the front end: as the driver's usage error */
  if (ok && !cg_target_cpu_check(o->target_cpu, cpu_msg, sizeof cpu_msg)) {
    fprintf(mem, "nncc: error: %s\n", cpu_msg);
    ok = false;
  }
  if (!ok) {
    arena_free(&names);
    close_diagnostics(mem, &buf, diagnostics);
    return NULL;
  }
  close_diagnostics(mem, &buf, NULL);
  nncc_jit *j = nncc_jit_from_source(path, src, len, &eo, &co, diagnostics);
  arena_free(&names);  /* the IR copies what it keeps of the names */
  return j;
}

nncc_jit *nncc_compile_string(const char *name, const char *source, const nncc_compile_options *o,
                              char **diagnostics) {
  if (!source) source = "";
  return compile_text(name ? name : "<string>", source, strlen(source), NULL, o, diagnostics);
}

char *nncc_read_source(const char *path, size_t *len, char why[256]) {
  struct stat st;
  if (stat(path, &st) != 0) {
    snprintf(why, 256, "%s", strerror(errno));
    return NULL;
  }
  if (S_ISDIR(st.st_mode)) {
    snprintf(why, 256, "it is a directory");
    return NULL;
  }
  /* O_NONBLOCK and fstat first: a FIFO (or a device) would block the
   * open or the read forever; only a regular file is read */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) {
    snprintf(why, 256, "%s", strerror(errno));
    return NULL;
  }
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    snprintf(why, 256, "not a regular file%s", S_ISFIFO(st.st_mode) ? " (a FIFO)" : S_ISCHR(st.st_mode) ? " (a device)" : "");
    close(fd);
    return NULL;
  }
  int fl = fcntl(fd, F_GETFL);
  if (fl >= 0) fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
  FILE *f = fdopen(fd, "rb");
  if (!f) {
    snprintf(why, 256, "%s", strerror(errno));
    close(fd);
    return NULL;
  }
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  for (;;) {
    if (!buf) {
      snprintf(why, 256, "out of memory");
      fclose(f);
      return NULL;
    }
    if (n + 1 >= cap) {
      if (cap >= MAX_SOURCE_BYTES) {
        snprintf(why, 256, "larger than %u MiB", MAX_SOURCE_BYTES >> 20);
        free(buf);
        fclose(f);
        return NULL;
      }
      cap *= 2;
      char *more = realloc(buf, cap);
      if (!more) free(buf);
      buf = more;
      continue;
    }
    size_t k = fread(buf + n, 1, cap - n - 1, f);
    if (k == 0) break;
    n += k;
  }
  bool failed = ferror(f);
  if (failed) snprintf(why, 256, "%s", strerror(errno));
  fclose(f);
  if (failed) {
    free(buf);
    return NULL;
  }
  buf[n] = 0;
  *len = n;
  return buf;
}

nncc_jit *nncc_compile_file(const char *path, const nncc_compile_options *o, char **diagnostics) {
  size_t len = 0;
  char why[256];
  char *src = path ? nncc_read_source(path, &len, why) : NULL;
  if (!src) {
    if (diagnostics) {
      size_t n = (path ? strlen(path) : 8) + 320;
      *diagnostics = malloc(n);
      if (*diagnostics)
        snprintf(*diagnostics, n, "nncc: error: cannot read '%s': %s\n", path ? path : "(null)",
                 path ? why : "no path");
    }
    return NULL;
  }
  char *base_dir = nncc_dir_of(path);
  if (!base_dir) {
    free(src);
    if (diagnostics) *diagnostics = strdup("nncc: error: out of memory\n");
    return NULL;
  }
  nncc_jit *j = compile_text(path, src, len, base_dir, o, diagnostics);
  free(base_dir);  /* the train specs hold their own resolved paths */
  free(src);
  return j;
}
