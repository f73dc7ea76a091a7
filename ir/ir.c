/* ir.c - types, the op and initializer tables, and the graph builder.
 * The op table is generated from ops.def; the schema strings there are
 * parsed once into OpInfo so printer, reader and verifier share them. */
#include "ir/ir.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------- types */

const char *dtype_name(DType t) {
  switch (t) {
  case DT_F32: return "f32";
  case DT_I32: return "i32";
  case DT_BOOL: return "bool";
  default: return "?";
  }
}

Type type_make(DType dt, int rank, const int64_t *dims) {
  Type t;
  memset(&t, 0, sizeof t);
  NNCC_ASSERT(rank >= 0 && rank <= IR_MAX_RANK);
  t.dtype = dt;
  t.rank = rank;
  for (int i = 0; i < rank; i++) t.dim[i] = dims[i];
  return t;
}

Type type_scalar(DType dt) { return type_make(dt, 0, NULL); }

bool type_same_shape(const Type *a, const Type *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dim[i] != b->dim[i]) return false;
  return true;
}

bool type_eq(const Type *a, const Type *b) { return a->dtype == b->dtype && type_same_shape(a, b); }

int64_t type_numel(const Type *t) {
  int64_t n = 1;
  for (int i = 0; i < t->rank; i++) {
    if (t->dim[i] > 0 && n > INT64_MAX / t->dim[i]) return INT64_MAX;
    n *= t->dim[i];
  }
  return n;
}

char *type_str(const Type *t, char *buf, size_t size) {
  size_t k = (size_t)snprintf(buf, size, "%s[", dtype_name(t->dtype));
  int rank = t->rank < 0 ? 0 : t->rank > IR_MAX_RANK ? IR_MAX_RANK : t->rank;  /* corrupt types print */
  for (int i = 0; i < rank && k < size; i++)
    k += (size_t)snprintf(buf + k, size - k, i ? ",%lld" : "%lld", (long long)t->dim[i]);
  if (k < size) snprintf(buf + k, size - k, "]");
  return buf;
}

/* ------------------------------------------------------------ op table */

static const struct {
  const char *name;
  int arity;
  unsigned flags;
  const char *schema;
} op_defs[] = {
#define OP(e, name, arity, flags, attrs) {name, arity, flags, attrs},
#include "ops.def"
#undef OP
};
static_assert(sizeof op_defs / sizeof op_defs[0] == OP_COUNT, "ops.def out of step");

static OpInfo op_infos[OP_COUNT];
static char schema_names[OP_COUNT][IR_MAX_ATTRS][24];
static bool op_infos_ready;

static void init_op_infos(void) {
  for (int o = 0; o < OP_COUNT; o++) {
    OpInfo *info = &op_infos[o];
    info->name = op_defs[o].name;
    info->arity = op_defs[o].arity;
    info->flags = op_defs[o].flags;
    const char *s = op_defs[o].schema;
    while (*s) {
      while (*s == ' ') s++;
      if (!*s) break;
      const char *colon = strchr(s, ':');
      NNCC_ASSERT(colon && info->n_attrs < IR_MAX_ATTRS && colon - s < 23);
      char *dst = schema_names[o][info->n_attrs];
      memcpy(dst, s, (size_t)(colon - s));
      dst[colon - s] = 0;
      info->attr_name[info->n_attrs] = dst;
      info->attr_kind[info->n_attrs] = (AttrKind)colon[1];
      info->n_attrs++;
      s = colon + 2;
    }
  }
  op_infos_ready = true;
}

const OpInfo *op_info(Op op) {
  if (!op_infos_ready) init_op_infos();
  NNCC_ASSERT(op >= 0 && op < OP_COUNT);
  return &op_infos[op];
}

Op op_by_name(const char *name) {
  for (int o = 0; o < OP_COUNT; o++)
    if (!strcmp(op_defs[o].name, name)) return (Op)o;
  return OP_COUNT;
}

/* --------------------------------------------------- initializer table */

static const struct {
  const char *name;
  int nargs;
} init_defs[] = {
#define INIT(e, name, nargs) {name, nargs},
#include "runtime/init_kinds.def"
#undef INIT
};
static_assert(sizeof init_defs / sizeof init_defs[0] == INIT_COUNT, "init_kinds.def out of step");

const char *init_name(InitKind k) { return init_defs[k].name; }
int init_nargs(InitKind k) { return init_defs[k].nargs; }
InitKind init_by_name(const char *name) {
  for (int k = 0; k < INIT_COUNT; k++)
    if (!strcmp(init_defs[k].name, name)) return (InitKind)k;
  return INIT_COUNT;
}

/* -------------------------------------------------------------- builder */

Graph *ir_graph_new(Arena *a, const char *name) {
  Graph *g = ARENA_NEW(a, Graph);
  g->arena = a;
  g->name = name;
  g->model = name;
  return g;
}

Node *ir_node_new(Graph *g, Op op, Node *const *ins, int n_in, SrcLoc loc) {
  if (g->n_nodes == g->cap_nodes) {
    int cap = g->cap_nodes ? g->cap_nodes * 2 : 64;
    g->nodes = arena_realloc(g->arena, g->nodes, sizeof(Node *) * (size_t)g->n_nodes,
                             sizeof(Node *) * (size_t)cap);
    g->cap_nodes = cap;
  }
  Node *n = ARENA_NEW(g->arena, Node);
  n->id = g->n_nodes;
  n->op = op;
  n->loc = loc;
  n->n_in = n_in;
  if (n_in) {
    n->in = ARENA_ARRAY(g->arena, Node *, n_in);
    for (int i = 0; i < n_in; i++) {
      NNCC_ASSERT(ins[i] && ins[i]->id < n->id && g->nodes[ins[i]->id] == ins[i]);
      n->in[i] = ins[i];
    }
  }
  g->nodes[g->n_nodes++] = n;
  return n;
}

Node *ir_var(Graph *g, const char *name, unsigned role, Type t, SrcLoc loc) {
  Node *n = ir_node_new(g, OP_VAR, NULL, 0, loc);
  n->name = name;
  n->roles = role;
  n->type = t;
  return n;
}

Node *ir_const(Graph *g, DType dt, double value, SrcLoc loc) {
  Node *n = ir_node_new(g, OP_CONST, NULL, 0, loc);
  n->attr[0].f = value;
  n->type = type_scalar(dt);
  return n;
}

void ir_set_list(Graph *g, Node *n, int k, const int64_t *v, int count) {
  NNCC_ASSERT(k >= 0 && k < IR_MAX_ATTRS && count >= 0);
  n->attr[k].n = count;
  n->attr[k].list = count ? ARENA_ARRAY(g->arena, int64_t, count) : NULL;
  for (int i = 0; i < count; i++) n->attr[k].list[i] = v[i];
}

Node *ir_copy_node(Graph *g, const Node *src, Node *const *ins) {
  Node *n = ir_node_new(g, src->op, ins, src->n_in, src->loc);
  n->type = src->type;
  for (int k = 0; k < IR_MAX_ATTRS; k++) {
    n->attr[k] = src->attr[k];
    if (src->attr[k].list) ir_set_list(g, n, k, src->attr[k].list, src->attr[k].n);
  }
  n->name = src->name;
  n->out_name = src->out_name;
  n->out_index = src->out_index;
  n->roles = src->roles;
  n->init = src->init;
  n->init_arg[0] = src->init_arg[0];
  n->init_arg[1] = src->init_arg[1];
  return n;
}

Node *ir_find_var(const Graph *g, const char *name) {
  for (int i = 0; i < g->n_nodes; i++) {
    Node *n = g->nodes[i];
    if (n->op == OP_VAR && n->name && !strcmp(n->name, name)) return n;
  }
  return NULL;
}

Graph *ir_module_graph(const Module *m, const char *name) {
  for (int i = 0; i < m->n_graphs; i++)
    if (!strcmp(m->graphs[i]->name, name)) return m->graphs[i];
  return NULL;
}

void ir_module_add(Module *m, Graph *g) {
  if (m->n_graphs == m->cap_graphs) {  /* geometric: 20,000 models stay linear */
    int cap = m->cap_graphs ? 2 * m->cap_graphs : 8;
    m->graphs = arena_realloc(m->arena, m->graphs, sizeof(Graph *) * (size_t)m->n_graphs,
                              sizeof(Graph *) * (size_t)cap);
    m->cap_graphs = cap;
  }
  m->graphs[m->n_graphs++] = g;
}

/* ---------------------------------------------------------- fusion rules */

const char *kernel_kind_name(KernelKind k) {
  return k == KERNEL_MATMUL    ? "matmul"
         : k == KERNEL_SOFTMAX ? "softmax"
         : k == KERNEL_CONV    ? "conv"
         : k == KERNEL_REDUCE  ? "reduce"
                               : "loop";
}

bool ir_kernel_anchor(const Node *n, KernelKind *kind) {
  if (n->type.dtype != DT_F32) return false;
  if (n->op == OP_MATMUL && n->in[0]->type.rank >= 2 && n->in[1]->type.rank >= 2) {
    *kind = KERNEL_MATMUL;
    return true;
  }
  if (n->op == OP_CONV2D) {
    *kind = KERNEL_CONV;
    return true;
  }
  if ((n->op == OP_SOFTMAX || n->op == OP_LOG_SOFTMAX) && n->attr[0].i == n->type.rank - 1) {
    *kind = KERNEL_SOFTMAX;
    return true;
  }
  return false;
}

bool ir_kernel_elementwise(const Node *n) {
  return (op_info(n->op)->flags & OPF_ELEMWISE) || n->op == OP_BROADCAST || n->op == OP_ONE_HOT;
}

bool ir_kernel_reduction(const Node *n) {
  return n->op == OP_SUM || n->op == OP_MEAN || n->op == OP_MAX || n->op == OP_MIN;
}

KernelKind ir_kernel_kind(const Graph *g, int first, int *end) {
  int k = g->nodes[first]->kernel, e = first + 1;
  while (k && e < g->n_nodes && g->nodes[e] && g->nodes[e]->kernel == k) e++;
  if (end) *end = e;
  KernelKind kind = KERNEL_LOOP;
  if (ir_kernel_anchor(g->nodes[first], &kind)) return kind;
  return e - 1 > first && ir_kernel_reduction(g->nodes[e - 1]) ? KERNEL_REDUCE : KERNEL_LOOP;
}

bool ir_kernel_row_loss(const Node *anchor, const Node *n) {
  KernelKind kind;
  if (!ir_kernel_anchor(anchor, &kind) || kind != KERNEL_SOFTMAX) return false;
  return (n->op == OP_CROSS_ENTROPY && anchor->op == OP_SOFTMAX && n->in[0] == anchor->in[0]) ||
         (n->op == OP_NLL && anchor->op == OP_LOG_SOFTMAX && n->in[0] == anchor);
}

bool *ir_kernel_stores(const Graph *g) {
  bool *stored = nncc_calloc((size_t)g->n_nodes + 1, 1);
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!n) continue;
    KernelKind kind;
    if (n->kernel && (n->roles || (ir_kernel_anchor(n, &kind) && (kind == KERNEL_MATMUL || kind == KERNEL_CONV))))
      stored[i] = true;
    for (int k = 0; k < n->n_in; k++) {
      const Node *x = n->in[k];
      if (x && x->kernel && x->kernel != n->kernel) stored[x->id] = true;
    }
  }
  return stored;
}
