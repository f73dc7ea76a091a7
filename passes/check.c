/* check.c - passes that check a graph without changing it: type
 * re-derivation (shapes) and the reachability warning (reach). */
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

/* Each node's type is recomputed from its operands by the op's rule and
 * must equal the stored one: a graph built by the frontend, read from
 * text or rewritten by a pass is well-typed before later passes rely on
 * it. A disagreement is reported at the node's source location. */
bool pass_infer_shapes(Graph *g, Diag *d) {
  bool ok = true;
  for (int i = 0; i < g->n_nodes; i++) {
    Node *n = g->nodes[i];
    if (n->type.dtype == DT_ERR) {
      ok = false;
      continue;
    }
    Type stored = n->type;
    if (!ir_infer(n, d)) {
      ok = false;
      continue;
    }
    if (!type_eq(&stored, &n->type)) {
      char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
      diag_error(d, n->loc, "internal: node %%%d (%s) has type %s but its rule gives %s", n->id,
                 op_info(n->op)->name, type_str(&stored, a, sizeof a), type_str(&n->type, b, sizeof b));
      ok = false;
    }
  }
  return ok;
}

/* A param or state the loss does not depend on gets no gradient and is
 * most likely a mistake (a layer computed but never used). Only models
 * with a loss are checked; stop_gradient cuts the dependence. */
bool pass_check_reach(Graph *g, Diag *d) {
  Node *loss = NULL;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->roles & ROLE_LOSS) loss = g->nodes[i];
  if (!loss) return true;
  char *needed = nncc_calloc((size_t)g->n_nodes, 1);
  needed[loss->id] = 1;
  for (int i = loss->id; i >= 0; i--) {
    Node *n = g->nodes[i];
    if (!needed[i] || n->op == OP_STOP_GRADIENT) continue;
    for (int k = 0; k < n->n_in; k++) needed[n->in[k]->id] = 1;
  }
  for (int i = 0; i < g->n_nodes; i++) {
    Node *n = g->nodes[i];
    if (n->op == OP_VAR && (n->roles & ROLE_PARAM) && !needed[i])
      diag_warning(d, n->loc, "param '%s' cannot reach the loss of model '%s' and will not be trained",
                   n->name, g->name);
  }
  nncc_free(needed);
  return true;
}

