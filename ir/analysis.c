/* analysis.c - analyses over a graph that change nothing: which ABI
 * entries compute each node (fusion groups only nodes computed by the
 * same entries; codegen emits each node into its entries) and the bound
 * of an i32 input's values (the memory plan and gradcheck). */
#include "ir/ir.h"

#include <stdint.h>

/* The entries of each node (see ir.h). */
unsigned *ir_entry_masks(const Graph *g) {
  unsigned *m = nncc_calloc((size_t)g->n_nodes + 1, sizeof *m);
  unsigned all = ENTRY_FORWARD | ENTRY_EVALUATE | ENTRY_BACKWARD | ENTRY_TRAIN_STEP;
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const Node *n = g->nodes[i];
    if (n->roles & ROLE_OUTPUT) m[i] |= all;
    if (n->roles & (ROLE_LOSS | ROLE_GRAD)) m[i] |= all & ~ENTRY_FORWARD;
    if (n->op == OP_ASSIGN) m[i] |= ENTRY_BACKWARD | ENTRY_TRAIN_STEP;
    if (n->op == OP_UPDATE) m[i] |= ENTRY_TRAIN_STEP;
    for (int k = 0; k < n->n_in; k++) m[n->in[k]->id] |= m[i];
  }
  /* an evaluation graph serves forward and evaluate, a training graph
   * backward and train_step */
  unsigned runs = g->training ? ENTRY_BACKWARD | ENTRY_TRAIN_STEP : ENTRY_FORWARD | ENTRY_EVALUATE;
  for (int i = 0; i < g->n_nodes; i++) m[i] &= runs;
  return m;
}

/* The bound of an i32 input's values (see ir.h). */
int64_t ir_label_bound(const Graph *g, const Node *input) {
  int64_t bound = INT64_MAX;
  char *derived = nncc_calloc((size_t)g->n_nodes, 1);
  derived[input->id] = 1;
  for (int i = input->id + 1; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    for (int k = 0; k < n->n_in; k++) {
      if (!derived[n->in[k]->id]) continue;
      switch (n->op) {
      case OP_RESHAPE: case OP_SLICE: case OP_TRANSPOSE: case OP_BROADCAST: case OP_CONCAT:
        derived[i] = 1;
        break;
      case OP_CROSS_ENTROPY: case OP_NLL: {
        int64_t c = n->in[0]->type.dim[n->in[0]->type.rank - 1];
        if (k == 1 && c < bound) bound = c;
        break;
      }
      case OP_ONE_HOT: if (n->attr[0].i < bound) bound = n->attr[0].i; break;
      case OP_GATHER: if (k == 1 && n->in[0]->type.dim[0] < bound) bound = n->in[0]->type.dim[0]; break;
      default: break;
      }
    }
  }
  nncc_free(derived);
  return bound == INT64_MAX ? 0 : bound;
}
