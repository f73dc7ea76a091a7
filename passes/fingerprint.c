/* fingerprint.c - the identity of a model's graphs, for checkpoints and
 * libraries (docs/design.md, "Checkpoint identity").
 *
 * Right after `lower`, every model has its evaluation graph NAME and, with
 * a loss, its training-mode forward graph NAME.train. The fingerprint is a
 * 64-bit FNV-1a hash of their canonical text - the IR printer's output
 * without the `@line:col` source locations, so editing comments or moving
 * code does not change it - followed by the train block's optimizer,
 * hyperparameters and schedule. It is taken before autodiff and the
 * simplifiers, so it does not depend on --no-input-grads, on fusion or on
 * how later passes rewrite the graph: two programs share a fingerprint
 * exactly when they compute the same forward graph (ops, shapes, params,
 * states, initializers) and train it the same way. Both graphs of the
 * model get the same 16 hex digits in Graph.fingerprint. */
#include "passes/passes.h"
#include "ir/train_spec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

/* Hashes text, skipping every " @L:C" location the printer writes. */
static uint64_t hash_text(uint64_t h, const char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (s[i] == ' ' && i + 1 < len && s[i + 1] == '@') {
      size_t j = i + 2;
      while (j < len && ((s[j] >= '0' && s[j] <= '9') || s[j] == ':')) j++;
      if (j > i + 2) {
        i = j - 1;
        continue;
      }
    }
    h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
  }
  return h;
}

typedef struct MemText {
  FILE *f;
  char *text;
  size_t len;
} MemText;

static void memtext_close(void *arg) {
  MemText *t = arg;
  fclose(t->f);
  free(t->text);
}

static uint64_t hash_graph(uint64_t h, const Graph *g) {
  MemText t = {0};
  t.f = open_memstream(&t.text, &t.len);
  if (!t.f) NNCC_OOM();  /* a fingerprint of part of the graph would be wrong */
  NnccCleanup c;  /* out of memory in the printer unwinds (ir.h): close it then */
  nncc_cleanup_push(&c, memtext_close, &t);
  ir_print_graph(t.f, g);
  nncc_cleanup_pop(&c);
  fclose(t.f);
  h = hash_text(h, t.text, t.len);
  free(t.text);
  return h;
}

/* The train block as text: what the optimizer pass turns into graph. The
 * kinds are hashed by their names, so the fingerprint of a model does
 * not depend on the order of the enums of train_spec.h. */
static uint64_t hash_train(uint64_t h, const TrainSpec *t) {
  char buf[512];
  int n = snprintf(buf, sizeof buf,
                   "train %s lr=%.17g momentum=%.17g wd=%.17g beta1=%.17g beta2=%.17g eps=%.17g alpha=%.17g "
                   "nesterov=%d schedule=%s every=%lld gamma=%.17g warmup=%lld\n",
                   optimizer_name(t->optimizer), t->lr, t->momentum, t->weight_decay, t->beta1, t->beta2,
                   t->eps, t->alpha, (int)t->nesterov, schedule_name(t->schedule), (long long)t->step_every,
                   t->step_gamma, (long long)t->warmup);
  return hash_text(h, buf, n > 0 && (size_t)n < sizeof buf ? (size_t)n : sizeof buf - 1);
}

bool pass_fingerprint(Module *m, Diag *d, const PassOptions *o) {
  (void)d;
  (void)o;
  for (int i = 0; i < m->n_graphs; i++) {
    Graph *g = m->graphs[i];
    if (g->training) continue;
    uint64_t h = hash_text(FNV_OFFSET, "nncc-fingerprint-1\n", 19);
    h = hash_graph(h, g);
    Graph *train = NULL;
    for (int k = 0; k < m->n_graphs; k++)
      if (m->graphs[k]->training && !strcmp(m->graphs[k]->model, g->model)) train = m->graphs[k];
    if (train) h = hash_graph(h, train);
    for (int k = 0; k < m->n_trains; k++)
      if (!strcmp(m->trains[k]->model, g->model)) h = hash_train(h, m->trains[k]);
    char *fp = arena_printf(g->arena, "%016llx", (unsigned long long)h);
    g->fingerprint = fp;
    if (train) train->fingerprint = fp;
  }
  return true;
}
