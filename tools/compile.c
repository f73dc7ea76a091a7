/* compile.c - one compilation, shared by the driver (nncc.c) and the
 * library (libnncc.c): the -D parser, the directory data paths resolve
 * against, and compile_module - front end, -D check, model selection,
 * the pass pipeline and the verifier. Each caller keeps only what is
 * its own: how a message is worded on its channel (a usage error of the
 * CLI, a line of a library's diagnostics) and what happens to the
 * Module afterwards (an --emit stage, a run, a JIT). */
#include "tools/driver.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

bool nncc_parse_define(const char *arg, ConstOverride *ov, size_t *name_len, char *msg, size_t msg_size) {
  const char *eq = arg ? strchr(arg, '=') : NULL;
  if (!eq || eq == arg) {
    snprintf(msg, msg_size, "-D needs NAME=VALUE, got '%s'", arg ? arg : "(null)");
    return false;
  }
  memset(ov, 0, sizeof *ov);
  *name_len = (size_t)(eq - arg);
  const char *v = eq + 1;
  char *end;
  errno = 0;
  long long i = strtoll(v, &end, 10);
  if (*v && !*end && errno == ERANGE) {  /* an integer, but not an int64: never silently clamped */
    snprintf(msg, msg_size, "-D %s: the integer is too large", arg);
    return false;
  }
  if (*v && !*end && errno == 0) {
    ov->is_int = true;
    ov->ival = i;
    ov->value = (double)i;
    return true;
  }
  errno = 0;
  double f = strtod(v, &end);
  if (!*v || *end || errno || !isfinite(f)) {
    snprintf(msg, msg_size, "-D %s: the value is not a number", arg);
    return false;
  }
  ov->value = f;
  return true;
}

char *nncc_dir_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  return strndup(path, (size_t)(slash - path));
}

/* The index of the first override that names no const of p, or -1. */
static int unknown_define(const Program *p, const ElabOptions *eo) {
  for (int i = 0; i < eo->n_overrides; i++) {
    bool found = false;
    for (int k = 0; k < p->n_items && !found; k++)
      found = p->items[k]->kind == ITEM_CONST && !strcmp(p->items[k]->name, eo->overrides[i].name);
    if (!found) return i;
  }
  return -1;
}

CompileStatus compile_module(Arena *a, Diag *d, Compilation *c) {
  ElabOptions none = {0};
  const ElabOptions *eo = c->eo ? c->eo : &none;
  c->program = NULL;
  c->module = NULL;
  c->bad_define = -1;
  int ntok;
  Token *toks = lex(a, d, &ntok);
  c->program = parse_program(a, d, toks, ntok);
  if (d->n_errors) return COMPILE_ERROR;
  /* -D names must be constants of the program: checked before
   * elaborating, so that a typo is reported as such, not as a silent
   * no-op or behind the errors it causes */
  if ((c->bad_define = unknown_define(c->program, eo)) >= 0) return COMPILE_BAD_DEFINE;
  if (c->parse_only) return COMPILE_OK;
  ElabOptions o = *eo;
  if (!o.max_nodes) o.max_nodes = 1000000;
  Module *m = c->module = elaborate(a, d, c->program, &o);
  if (d->n_errors) return COMPILE_ERROR;
  if (c->model && !ir_module_graph(m, c->model)) return COMPILE_NO_SUCH_MODEL;
  if (m->n_graphs == 0) {
    diag_warning(d, (SrcLoc){0, 0}, "no model");
    return COMPILE_NO_MODEL;
  }
  if (c->model) {  /* keep only the selected model */
    m->graphs[0] = ir_module_graph(m, c->model);
    m->n_graphs = 1;
  }
  PassOptions po = c->po ? *c->po : (PassOptions){.out = d->out};
  po.no_input_grads = c->no_input_grads;
#ifndef NDEBUG
  po.verify_each = true;  /* debug builds verify after every pass */
#endif
  if (!pass_run_pipeline(m, d, &po)) return COMPILE_ERROR;
  for (int i = 0; i < m->n_graphs; i++)
    if (ir_verify(m->graphs[i], d->out)) {
      fprintf(d->out, "nncc: internal error: the IR of model '%s' does not verify\n", m->graphs[i]->name);
      return COMPILE_ERROR;
    }
  return COMPILE_OK;
}
