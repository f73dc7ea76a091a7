/* pipeline.c - the pass manager: the one list of passes, run in order
 * over a module, with --print-after=PASS, --print-after-all,
 * --time-passes and verify-after-each (tests).
 *
 * The pipeline, in order:
 *   shapes     re-derive every type from the op rules and check it: the
 *              graph handed over by the frontend (or read from text) is
 *              well-typed before anything relies on it
 *   reach      warn about params that cannot affect the loss
 *   lower      split each model into NAME (evaluation) and NAME.train
 *              (training), rewriting batch_norm, layer_norm and dropout
 *              into ordinary ops for their mode
 *   fingerprint  hash the lowered graphs and the train block into
 *              Graph.fingerprint (checkpoints and libraries carry it)
 *   autodiff   append the backward pass to every training graph
 *   optimizer  append the optimizer step (update nodes) to it
 *   fold       fold ops on constants into constants
 *   algebra    apply algebraic identities (x*1 -> x, pow(x, 2) -> square(x), ...)
 *   cse        merge equal ops on equal operands into one node
 *   dce        drop values that no output, loss, gradient or write needs
 *   fuse       group nodes into kernels that run as one loop nest, and
 *              reorder the graph so each kernel's nodes are contiguous */
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

static const Pass passes[] = {
    {"shapes", pass_infer_shapes, NULL, "re-derive and check every node's type"},
    {"reach", pass_check_reach, NULL, "warn about parameters that cannot reach the loss"},
    {"lower", NULL, pass_lower, "make evaluation and training graphs; lower mode-dependent ops"},
    {"fingerprint", NULL, pass_fingerprint, "record each model's graph fingerprint (checkpoint identity)"},
    {"autodiff", NULL, pass_autodiff, "append the backward pass (reverse-mode autodiff)"},
    {"optimizer", NULL, pass_optimizer, "append the optimizer update"},
    {"fold", pass_fold, NULL, "fold constant expressions"},
    {"algebra", pass_algebra, NULL, "apply algebraic identities"},
    {"cse", pass_cse, NULL, "eliminate common subexpressions"},
    {"dce", pass_dce, NULL, "remove values nothing needs"},
    {"fuse", pass_fuse, NULL, "fuse operators into kernels (one loop nest each)"},
};
#define N_PASSES ((int)(sizeof passes / sizeof passes[0]))

const Pass *pass_list(int *n) {
  *n = N_PASSES;
  return passes;
}

const Pass *pass_by_name(const char *name) {
  for (int i = 0; i < N_PASSES; i++)
    if (!strcmp(passes[i].name, name)) return &passes[i];
  return NULL;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

bool pass_run_pipeline(Module *m, Diag *d, const PassOptions *o) {
  PassOptions none = {0};
  if (!o) o = &none;
  /* a stop-after name is the caller's choice, never the user's: one that
   * names no pass is a bug, not a request to run everything */
  if (o->stop_after && !pass_by_name(o->stop_after))
    nncc_raise("internal error: stop after unknown pass '%s'", o->stop_after);
  FILE *out = o->out ? o->out : stdout;
  double ms[N_PASSES] = {0};
  bool ran[N_PASSES] = {false};
  bool ok = true;
  for (int p = 0; p < N_PASSES && ok; p++) {
    if (o->no_fuse && passes[p].run == pass_fuse) continue;
    ran[p] = true;
    double t0 = now_ms();
    if (passes[p].run_module) {
      ok = passes[p].run_module(m, d, o);
    } else {
      for (int gi = 0; gi < m->n_graphs; gi++)
        if (!passes[p].run(m->graphs[gi], d)) ok = false;
    }
    ms[p] += now_ms() - t0;
    /* a pass's bug, reported like a compile error: an embedder gets it back */
    for (int gi = 0; gi < m->n_graphs && o->verify_each && ok; gi++)
      if (ir_verify(m->graphs[gi], d->out)) {
        fprintf(d->out, "nncc: internal error: graph '%s' does not verify after pass '%s'\n",
                m->graphs[gi]->name, passes[p].name);
        ok = false;
      }
    if (ok && (o->print_after_all || (o->print_after && !strcmp(o->print_after, passes[p].name)))) {
      fprintf(out, "# *** IR after %s ***\n", passes[p].name);
      ir_print_module(out, m);
    }
    if (o->stop_after && !strcmp(o->stop_after, passes[p].name)) break;
  }
  if (o->time_passes) {
    double total = 0;
    for (int p = 0; p < N_PASSES; p++) total += ms[p];
    fprintf(stderr, "===- pass execution timing -===\n  %10s  %6s  %s\n", "ms", "%", "pass");
    for (int p = 0; p < N_PASSES; p++)
      if (ran[p])
        fprintf(stderr, "  %10.3f  %5.1f%%  %s\n", ms[p], total > 0 ? 100 * ms[p] / total : 0,
              passes[p].name);
    fprintf(stderr, "  %10.3f  100.0%%  total\n", total);
  }
  return ok;
}
