/* dce.c - dead code elimination. Keeps what outputs, the loss, gradients,
 * state writes and the model's variables (inputs, params and states are
 * its interface, used or not) need, and renumbers the survivors in their
 * topological order. */
#include "passes/passes.h"

#include <stdlib.h>

bool pass_dce(Graph *g, Diag *d) {
  (void)d;
  char *live = nncc_calloc((size_t)g->n_nodes + 1, 1);
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    Node *n = g->nodes[i];
    if (n->roles || (op_info(n->op)->flags & OPF_EFFECT)) live[i] = 1;
    if (!live[i]) continue;
    for (int k = 0; k < n->n_in; k++) live[n->in[k]->id] = 1;
  }
  int out = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    if (!live[i]) continue;
    g->nodes[i]->id = out;
    g->nodes[out++] = g->nodes[i];
  }
  g->n_nodes = out;
  nncc_free(live);
  return true;
}
