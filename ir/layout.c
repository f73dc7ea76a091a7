/* layout.c - the tensor table (SPEC §4) and the memory plan of a model.
 *
 * Table order: the model's inputs, params and states in declaration
 * order, then the states the optimizer made (moments, train:step,
 * train:lr), the outputs in `output` order, the loss. Storage: every
 * table tensor, then every gradient, then scratch for intermediate values
 * of the evaluation and the training graph (the two never run at once,
 * so their scratch overlaps). Every block is 64-byte aligned.
 *
 * Intermediates share scratch by lifetime (plan_graph); values a fused
 * kernel keeps in registers, transposes its matmuls read through, and
 * new states written in place take no block. */
#include "ir/layout.h"

#include <stdlib.h>
#include <string.h>

#define ALIGN 64

static int64_t align_up(int64_t x) { return (x + ALIGN - 1) / ALIGN * ALIGN; }

static int64_t elem_size(DType t) { return t == DT_BOOL ? 1 : 4; }
static int64_t byte_size(const Type *t) { return type_numel(t) * elem_size(t->dtype); }

static int find_tensor(const LayoutModel *cm, const char *name, int role) {
  for (int i = 0; i < cm->n_tensors; i++)
    if (cm->tensors[i].role == role && !strcmp(cm->tensors[i].name, name)) return i;
  return -1;
}

static int find_var_tensor(const LayoutModel *cm, const char *name) {
  for (int i = 0; i < cm->n_tensors; i++)
    if ((cm->tensors[i].role == NNCC_INPUT || cm->tensors[i].role == NNCC_PARAM ||
         cm->tensors[i].role == NNCC_STATE) && !strcmp(cm->tensors[i].name, name))
      return i;
  return -1;
}

static LayoutTensor *add_tensor(LayoutModel *cm, Arena *a, int cap_hint) {
  (void)cap_hint;
  LayoutTensor *t = arena_realloc(a, cm->tensors, sizeof(LayoutTensor) * (size_t)cm->n_tensors,
                              sizeof(LayoutTensor) * (size_t)(cm->n_tensors + 1));
  cm->tensors = t;
  LayoutTensor *x = &t[cm->n_tensors++];
  memset(x, 0, sizeof *x);
  x->grad_offset = -1;
  return x;
}

static void add_vars(LayoutModel *cm, Arena *a, const Graph *g) {
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_VAR || find_var_tensor(cm, n->name) >= 0) continue;
    LayoutTensor *t = add_tensor(cm, a, 0);
    t->name = n->name;
    t->role = n->roles & ROLE_INPUT ? NNCC_INPUT : n->roles & ROLE_PARAM ? NNCC_PARAM : NNCC_STATE;
    t->type = n->type;
    t->init = n->init;
    t->init_arg[0] = n->init_arg[0];
    t->init_arg[1] = n->init_arg[1];
    t->persistent = t->role != NNCC_INPUT;
    if (t->role == NNCC_INPUT && n->type.dtype == DT_I32) {
      int64_t b = ir_label_bound(g, n);
      t->label_bound = b;
    }
  }
}

/* In-place state writes: the new value of a state (an optimizer moment,
 * a parameter, a running statistic) is stored straight into the state
 * when the loop that computes it reads the state, if at all, at the very
 * index it writes (fused kernels load before they store), and nothing
 * reads the state later; the copy at the end of the step disappears. For
 * each node: the var it is written into, or NULL. */
static const Node **in_place_writes(const Graph *g, const bool *stored) {
  int count = g->n_nodes;
  const Node **into = nncc_calloc((size_t)count + 1, sizeof *into);
  int *users = nncc_calloc((size_t)count + 1, sizeof(int)), *writer = nncc_malloc(sizeof(int) * (size_t)(count + 1));
  int *end = nncc_malloc(sizeof(int) * (size_t)(count + 1)), *last_read = nncc_malloc(sizeof(int) * (size_t)(count + 1));
  for (int i = 0; i < count; i++) writer[i] = last_read[i] = -1;
  for (int i = count - 1; i >= 0; i--) {  /* end of i's loop: its kernel's */
    const Node *n = g->nodes[i];
    end[i] = n->kernel && i + 1 < count && g->nodes[i + 1]->kernel == n->kernel ? end[i + 1] : i + 1;
  }
  for (int i = 0; i < count; i++) {
    const Node *n = g->nodes[i];
    bool write = n->op == OP_ASSIGN || n->op == OP_UPDATE;
    for (int k = 0; k < n->n_in; k++) {
      const Node *x = n->in[k];
      users[x->id] += !x->kernel || x->kernel != n->kernel;  /* users in the kernel read registers */
      if (write && k == 0) continue;  /* the write itself */
      int at = write ? count : i;  /* writes read their value at the end */
      if (at > last_read[n->in[k]->id]) last_read[n->in[k]->id] = at;
    }
    if (write) writer[n->in[1]->id] = n->in[0]->id;
  }
  for (int i = 0; i < count; i++) {
    const Node *v = g->nodes[i];
    if (writer[i] < 0 || v->roles || users[i] != 1 || !ir_kernel_elementwise(v) || (v->kernel && !stored[i]))
      continue;
    const Node *state = g->nodes[writer[i]];
    if (!type_same_shape(&v->type, &state->type) || last_read[state->id] >= end[i])
      continue;
    /* every reader in the loop reads at the written index: not an anchor */
    int first = i;
    while (v->kernel && first > 0 && g->nodes[first - 1]->kernel == v->kernel) first--;
    bool anchor_reads = false;
    KernelKind kind;
    if (v->kernel && ir_kernel_anchor(g->nodes[first], &kind))
      for (int k = 0; k < g->nodes[first]->n_in; k++) anchor_reads |= g->nodes[first]->in[k] == state;
    if (!anchor_reads) into[i] = state;
  }
  nncc_free(users);
  nncc_free(writer);
  nncc_free(end);
  nncc_free(last_read);
  return into;
}

/* Transposes of a matrix read only as the left operand of matmuls (the
 * backward's x^T dz): the matmul reads x with the indices swapped - for
 * the blocked kernel, the four A values of a k step become adjacent - and
 * the transpose is never materialized. */
static bool *transpose_views(const Graph *g) {
  int count = g->n_nodes;
  bool *view = nncc_calloc((size_t)count + 1, 1);
  char *bad = nncc_calloc((size_t)count + 1, 1);
  for (int i = 0; i < count; i++) {
    const Node *n = g->nodes[i];
    for (int k = 0; k < n->n_in; k++)
      if (n->op != OP_MATMUL || k != 0 || n->in[1] == n->in[0]) bad[n->in[k]->id] = 1;
  }
  for (int i = 0; i < count; i++) {
    const Node *t = g->nodes[i];
    view[i] = t->op == OP_TRANSPOSE && t->type.rank == 2 && !t->roles && !t->kernel && !bad[i];
  }
  nncc_free(bad);
  return view;
}

/* A block of scratch that is free again, for reuse. */
typedef struct FreeBlock {
  int64_t offset, size;
} FreeBlock;

/* Homes of one graph's nodes: table slots for vars, outputs, the loss
 * and gradients; -1 for constants without a role (they are immediates);
 * scratch for the rest, planned from lifetimes: a value lives from its
 * node to its last user (to the end of the kernel when a state write
 * reads it, since writes happen last), and a block whose value is dead is
 * reused, best fit, by a later value. Kernels run subsets of the nodes in
 * the same order, so one plan serves all of a graph's kernels. Returns
 * the scratch bytes used; *naive gets what one block per value would. */
static int64_t plan_graph(LayoutModel *cm, const Graph *g, int64_t *home, int64_t scratch_base, int64_t *naive) {
  int count = g->n_nodes;
  int *last = nncc_malloc(sizeof(int) * (size_t)(count + 1));
  /* a fused kernel runs as one loop: what it reads lives to its end */
  int *kernel_end = nncc_calloc((size_t)g->n_kernels + 1, sizeof(int));
  bool *stored = ir_kernel_stores(g);
  const Node **into = in_place_writes(g, stored);
  bool *view = transpose_views(g);
  for (int i = 0; i < count; i++) {
    last[i] = i;
    if (g->nodes[i]->kernel) kernel_end[g->nodes[i]->kernel] = i;
  }
  for (int i = 0; i < count; i++) {
    const Node *x = g->nodes[i];
    bool write = x->op == OP_ASSIGN || x->op == OP_UPDATE;
    for (int k = 0; k < x->n_in; k++) {
      int until = write ? count : x->kernel ? kernel_end[x->kernel] : i, *l = &last[x->in[k]->id];
      if (until > *l) *l = until;  /* a later reader must not shorten a write's hold */
      if (view[x->in[k]->id] && until > last[x->in[k]->in[0]->id]) last[x->in[k]->in[0]->id] = until;
    }
  }
  /* values that die at node i, freed before i allocates its own */
  int *dies_head = nncc_malloc(sizeof(int) * (size_t)(count + 2)), *dies_next = nncc_malloc(sizeof(int) * (size_t)(count + 1));
  for (int i = 0; i <= count; i++) dies_head[i] = -1;
  FreeBlock *free_list = nncc_malloc(sizeof(FreeBlock) * (size_t)(count + 1));
  int n_free = 0;
  int64_t top = scratch_base, total_naive = 0;
  bool *scratch = nncc_calloc((size_t)count + 1, 1);
  for (int i = 0; i < count; i++) {
    /* release what died before this node (its last user was earlier) */
    for (int v = dies_head[i]; v >= 0; v = dies_next[v]) {
      int64_t size = align_up(byte_size(&g->nodes[v]->type));
      free_list[n_free++] = (FreeBlock){home[v], size};
    }
    const Node *n = g->nodes[i];
    int slot = -1;
    if (into[i]) {  /* computed in place */
      home[i] = cm->tensors[find_var_tensor(cm, into[i]->name)].offset;
      continue;
    }
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
    if (view[i]) {  /* read through by its matmuls */
      home[i] = LAYOUT_VIEW;
      continue;
    }
    if (n->kernel && !stored[i]) {  /* lives in registers inside its kernel */
      home[i] = LAYOUT_IN_REGISTERS;
      continue;
    }
    int64_t size = align_up(byte_size(&n->type)), best = -1;
    total_naive += size;
    for (int f = 0; f < n_free; f++)
      if (free_list[f].size >= size && (best < 0 || free_list[f].size < free_list[best].size)) best = f;
    if (best >= 0) {
      home[i] = free_list[best].offset;
      if (free_list[best].size > size) {  /* keep the rest */
        free_list[best].offset += size;
        free_list[best].size -= size;
      } else {
        free_list[best] = free_list[--n_free];
      }
    } else {
      home[i] = top;
      top += size;
    }
    scratch[i] = true;
    int dies = last[i] + 1;  /* free once every user has run */
    if (dies <= count) {
      dies_next[i] = dies_head[dies];
      dies_head[dies] = i;
    }
  }
  nncc_free(last);
  nncc_free(kernel_end);
  nncc_free(stored);
  nncc_free(into);
  nncc_free(view);
  nncc_free(dies_head);
  nncc_free(dies_next);
  nncc_free(free_list);
  nncc_free(scratch);
  if (naive) *naive = total_naive;
  return top - scratch_base;
}

LayoutModel *ir_layout(Module *m, const char *name, Arena *a) {
  LayoutModel *cm = ARENA_NEW(a, LayoutModel);
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
      LayoutTensor *t = add_tensor(cm, a, 0);
      t->name = n->out_name;
      t->role = NNCC_OUTPUT;
      t->type = n->type;
    }
  for (int i = 0; i < cm->eval->n_nodes; i++)
    if (cm->eval->nodes[i]->roles & ROLE_LOSS) {
      LayoutTensor *t = add_tensor(cm, a, 0);
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
  cm->table_bytes = off;
  cm->home_eval = ARENA_ARRAY(a, int64_t, cm->eval->n_nodes + 1);
  cm->scratch_eval = plan_graph(cm, cm->eval, cm->home_eval, off, &cm->naive_eval);
  int64_t scratch = cm->scratch_eval;
  if (cm->train) {
    cm->home_train = ARENA_ARRAY(a, int64_t, cm->train->n_nodes + 1);
    cm->scratch_train = plan_graph(cm, cm->train, cm->home_train, off, &cm->naive_train);
    if (cm->scratch_train > scratch) scratch = cm->scratch_train;
  }
  cm->slab_bytes = align_up(off + scratch);
  return cm;
}

/* --emit=memory: the slab of every model, table first, then the planned
 * scratch of each graph with every intermediate's block. */
static void print_graph_plan(FILE *out, const Graph *g, const int64_t *home, int64_t planned, int64_t naive,
                             int64_t table_bytes) {
  fprintf(out, "\n%s graph %s: scratch %lld bytes (one block per value would take %lld)\n",
          g->training ? "training" : "evaluation", g->name, (long long)planned, (long long)naive);
  /* what never takes a block: fused values, transposes read through,
   * new states written in place */
  int64_t regs = 0, regs_bytes = 0, views = 0, in_place = 0, in_place_bytes = 0;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (home[i] == LAYOUT_IN_REGISTERS) regs++, regs_bytes += byte_size(&n->type);
    if (home[i] == LAYOUT_VIEW) views++;
    if (home[i] >= 0 && home[i] < table_bytes && n->op != OP_VAR && !n->roles)
      in_place++, in_place_bytes += byte_size(&n->type);
  }
  fprintf(out, "  not stored: %lld values kept in registers by fused kernels (%lld bytes), %lld transposes read "
               "through; written in place into their state: %lld values (%lld bytes)\n",
          (long long)regs, (long long)regs_bytes, (long long)views, (long long)in_place, (long long)in_place_bytes);
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (home[i] < 0 || n->op == OP_VAR) continue;
    char ts[TYPE_STR_MAX];
    fprintf(out, "  %10lld  %10lld  %%%d %s %s%s%s%s\n", (long long)home[i], (long long)byte_size(&n->type), i,
            op_info(n->op)->name, type_str(&n->type, ts, sizeof ts), n->name ? "  " : "", n->name ? n->name : "",
            home[i] < table_bytes && !n->roles ? "  (in place)" : "");
  }
}

bool ir_print_memory(FILE *out, Module *m) {
  Arena a = {0};
  for (int i = 0; i < m->n_graphs; i++) {
    if (m->graphs[i]->training) continue;
    LayoutModel *cm = ir_layout(m, m->graphs[i]->model, &a);
    if (!cm) continue;
    fprintf(out, "# memory plan of model %s: one slab of %lld bytes, blocks aligned to %d\n", cm->name,
            (long long)cm->slab_bytes, ALIGN);
    fprintf(out, "\ntensors and gradients: %lld bytes\n  %10s  %10s  tensor\n", (long long)cm->table_bytes,
            "offset", "bytes");
    static const char *const roles[] = {"?", "input", "param", "state", "output", "loss"};
    for (int t = 0; t < cm->n_tensors; t++) {
      const LayoutTensor *ct = &cm->tensors[t];
      char ts[TYPE_STR_MAX];
      fprintf(out, "  %10lld  %10lld  %s (%s %s)\n", (long long)ct->offset, (long long)byte_size(&ct->type), ct->name,
              roles[ct->role], type_str(&ct->type, ts, sizeof ts));
      if (ct->grad_offset >= 0)
        fprintf(out, "  %10lld  %10lld  d loss / d %s\n", (long long)ct->grad_offset, (long long)byte_size(&ct->type),
                ct->name);
    }
    print_graph_plan(out, cm->eval, cm->home_eval, cm->scratch_eval, cm->naive_eval, cm->table_bytes);
    if (cm->train)
      print_graph_plan(out, cm->train, cm->home_train, cm->scratch_train, cm->naive_train, cm->table_bytes);
    fputc('\n', out);
  }
  arena_free(&a);
  return true;
}
