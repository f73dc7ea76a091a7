/* layout.c - the tensor table (SPEC §4) and the memory plan of a model.
 *
 * Table order: the model's inputs, params and states in declaration
 * order, then the states the optimizer made (moments, train:step,
 * train:lr), the outputs in `output` order, the loss. Storage: every
 * table tensor, then every gradient, then scratch for intermediate values
 * of the evaluation and the training graph (the two never run at once,
 * so their scratch overlaps). Every block is 64-byte aligned.
 *
 * The plan is simple for now: each intermediate gets its own block. */
#include "codegen/cg.h"
#include "passes/passes.h"

#include <string.h>

#define ALIGN 64

static int64_t align_up(int64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int64_t elem_size(DType t) { return t == DT_BOOL ? 1 : 4; }
static int64_t byte_size(const Type *t) { return type_numel(t) * elem_size(t->dtype); }

static int find_tensor(const CgModel *cm, const char *name, int role) {
  for (int i = 0; i < cm->n_tensors; i++)
    if (cm->tensors[i].role == role && !strcmp(cm->tensors[i].name, name)) return i;
  return -1;
}

static int find_var_tensor(const CgModel *cm, const char *name) {
  for (int i = 0; i < cm->n_tensors; i++)
    if ((cm->tensors[i].role == NNCC_INPUT || cm->tensors[i].role == NNCC_PARAM ||
         cm->tensors[i].role == NNCC_STATE) && !strcmp(cm->tensors[i].name, name))
      return i;
  return -1;
}

static CgTensor *add_tensor(CgModel *cm, Arena *a, int cap_hint) {
  (void)cap_hint;
  CgTensor *t = arena_realloc(a, cm->tensors, sizeof(CgTensor) * (size_t)cm->n_tensors,
                              sizeof(CgTensor) * (size_t)(cm->n_tensors + 1));
  cm->tensors = t;
  CgTensor *x = &t[cm->n_tensors++];
  memset(x, 0, sizeof *x);
  x->grad_offset = -1;
  return x;
}

static void add_vars(CgModel *cm, Arena *a, const Graph *g) {
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_VAR || find_var_tensor(cm, n->name) >= 0) continue;
    CgTensor *t = add_tensor(cm, a, 0);
    t->name = n->name;
    t->role = n->roles & ROLE_INPUT ? NNCC_INPUT : n->roles & ROLE_PARAM ? NNCC_PARAM : NNCC_STATE;
    t->type = n->type;
    t->init = n->init;
    t->init_arg[0] = n->init_arg[0];
    t->init_arg[1] = n->init_arg[1];
    t->persistent = t->role != NNCC_INPUT;
    if (t->role == NNCC_INPUT && n->type.dtype == DT_I32) {
      int64_t b = pass_label_bound(g, n);
      t->label_bound = b;
    }
  }
}

/* Homes of one graph's nodes: table slots for vars, outputs, the loss
 * and gradients; scratch for the rest; -1 for constants without a role
 * (they are immediates). Returns the scratch bytes used. */
static int64_t plan_graph(CgModel *cm, const Graph *g, int64_t *home, int64_t scratch_base) {
  int64_t next = scratch_base;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    int slot = -1;
    if (n->op == OP_VAR) slot = find_var_tensor(cm, n->name);
    else if (n->roles & ROLE_GRAD) {
      int v = find_var_tensor(cm, n->grad_of->name);
      if (v >= 0 && cm->tensors[v].grad_offset >= 0) {
        home[i] = cm->tensors[v].grad_offset;
        continue;
      }
    } else if (n->roles & ROLE_OUTPUT) slot = find_tensor(cm, n->out_name, NNCC_OUTPUT);
    else if (n->roles & ROLE_LOSS) slot = cm->loss_index;
    if (slot >= 0) {
      home[i] = cm->tensors[slot].offset;
      continue;
    }
    if (n->op == OP_CONST && !n->roles) {
      home[i] = -1;
      continue;
    }
    if (n->op == OP_ASSIGN || n->op == OP_UPDATE) {  /* no value of their own */
      home[i] = -1;
      continue;
    }
    home[i] = next;
    next = align_up(next + byte_size(&n->type));
  }
  return next - scratch_base;
}

CgModel *cg_layout(Module *m, const char *name, Arena *a) {
  CgModel *cm = ARENA_NEW(a, CgModel);
  cm->name = name;
  cm->loss_index = cm->lr_index = cm->step_index = cm->total_steps_index = -1;
  for (int i = 0; i < m->n_graphs; i++) {
    Graph *g = m->graphs[i];
    if (strcmp(g->model, name)) continue;
    if (g->training) cm->train = g;
    else cm->eval = g;
  }
  if (!cm->eval) return NULL;
  add_vars(cm, a, cm->eval);
  if (cm->train) add_vars(cm, a, cm->train);
  /* outputs in `output` order, then the loss */
  int n_out = 0;
  for (int i = 0; i < cm->eval->n_nodes; i++) n_out += (cm->eval->nodes[i]->roles & ROLE_OUTPUT) != 0;
  for (int k = 0; k < n_out; k++)
    for (int i = 0; i < cm->eval->n_nodes; i++) {
      const Node *n = cm->eval->nodes[i];
      if (!(n->roles & ROLE_OUTPUT) || n->out_index != k) continue;
      CgTensor *t = add_tensor(cm, a, 0);
      t->name = n->out_name;
      t->role = NNCC_OUTPUT;
      t->type = n->type;
    }
  for (int i = 0; i < cm->eval->n_nodes; i++)
    if (cm->eval->nodes[i]->roles & ROLE_LOSS) {
      CgTensor *t = add_tensor(cm, a, 0);
      t->name = "loss";
      t->role = NNCC_LOSS;
      t->type = cm->eval->nodes[i]->type;
      cm->loss_index = cm->n_tensors - 1;
    }
  cm->lr_index = find_var_tensor(cm, "train:lr");
  cm->step_index = find_var_tensor(cm, "train:step");
  cm->total_steps_index = find_var_tensor(cm, "train:total_steps");

  /* storage: table, gradients, scratch */
  int64_t off = 0;
  for (int i = 0; i < cm->n_tensors; i++) {
    cm->tensors[i].offset = off;
    off = align_up(off + byte_size(&cm->tensors[i].type));
  }
  if (cm->train)
    for (int i = 0; i < cm->train->n_nodes; i++) {
      const Node *n = cm->train->nodes[i];
      if (!(n->roles & ROLE_GRAD)) continue;
      int v = find_var_tensor(cm, n->grad_of->name);
      if (v < 0 || cm->tensors[v].grad_offset >= 0) continue;
      cm->tensors[v].grad_offset = off;
      off = align_up(off + byte_size(&n->type));
    }
  cm->home_eval = ARENA_ARRAY(a, int64_t, cm->eval->n_nodes + 1);
  int64_t scratch = plan_graph(cm, cm->eval, cm->home_eval, off);
  if (cm->train) {
    cm->home_train = ARENA_ARRAY(a, int64_t, cm->train->n_nodes + 1);
    int64_t s2 = plan_graph(cm, cm->train, cm->home_train, off);
    if (s2 > scratch) scratch = s2;
  }
  cm->slab_bytes = align_up(off + scratch);
  return cm;
}
