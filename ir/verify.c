/* verify.c - the graph IR verifier.
 *
 * Tests and debug builds run ir_verify after every pass (the pass manager's
 * verify_each): it checks the invariants every pass may assume and must
 * keep - dense ids in topological order, operand counts and attribute
 * shapes per ops.def, roles, one scalar loss, unique var names - and that
 * every stored type is what ir_infer computes, so a pass that rewires a
 * node without retyping it is caught at the pass, not in codegen.
 *
 * It must survive the corrupt graphs it exists to catch: each check runs
 * only when the ones it depends on passed (ir_infer is never handed a node
 * it would trip on), and nothing in the graph is written. */
#include "ir/ir_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct Verifier {
  const Graph *g;
  FILE *out;
  int problems;
  bool *suspect;  /* per node: its type was reported or could not be
                     checked, so its users' types are not rechecked */
} Verifier;

__attribute__((format(printf, 4, 5)))
static void problem(Verifier *V, int index, const Node *n, const char *fmt, ...) {
  const char *op = !n ? "null" : (unsigned)n->op < OP_COUNT ? op_info(n->op)->name : "?";
  fprintf(V->out, "verify: node %%%d (%s) at %d:%d: ", index, op, n ? n->loc.line : 0,
          n ? n->loc.col : 0);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(V->out, fmt, ap);
  va_end(ap);
  fputc('\n', V->out);
  V->problems++;
}

/* A type ir_infer can work with: the rules assume these and assert. */
static bool type_ok(const Type *t) {
  if (t->dtype != DT_F32 && t->dtype != DT_I32 && t->dtype != DT_BOOL) return false;
  if (t->rank < 0 || t->rank > IR_MAX_RANK) return false;
  for (int i = 0; i < t->rank; i++)
    if (t->dim[i] < 1) return false;
  return true;
}

/* type_str that survives a corrupt rank. */
static const char *safe_type_str(const Type *t, char *buf, size_t size) {
  if (t->rank < 0 || t->rank > IR_MAX_RANK) {
    snprintf(buf, size, "%s[rank %d]", dtype_name(t->dtype), t->rank);
    return buf;
  }
  return type_str(t, buf, size);
}

/* Operands: present, earlier, in this graph. False stops further checks
 * of the node, which would dereference them. */
static bool check_operands(Verifier *V, int i, const Node *n) {
  const OpInfo *info = op_info(n->op);
  bool ok = true;
  if (n->n_in < 0 || (n->n_in > 0 && !n->in)) {
    problem(V, i, n, "bad operand array (n_in %d)", n->n_in);
    return false;
  }
  if (info->arity >= 0 && n->n_in != info->arity) {
    problem(V, i, n, "has %d operand%s, '%s' takes %d", n->n_in, n->n_in == 1 ? "" : "s",
            info->name, info->arity);
    ok = false;
  }
  if (info->arity < 0 && n->n_in < 1) {
    problem(V, i, n, "has no operands, '%s' takes at least 1", info->name);
    ok = false;
  }
  for (int k = 0; k < n->n_in; k++) {
    const Node *in = n->in[k];
    if (!in) {
      problem(V, i, n, "operand %d is NULL", k);
      ok = false;
    } else if (in->id < 0 || in->id >= V->g->n_nodes || V->g->nodes[in->id] != in) {
      problem(V, i, n, "operand %d (id %d) is not a node of this graph", k, in->id);
      ok = false;
    } else if (in->id >= i) {
      problem(V, i, n, "operand %d is %%%d, which does not come before it", k, in->id);
      ok = false;
    }
  }
  return ok;
}

static bool check_attrs(Verifier *V, int i, const Node *n) {
  const OpInfo *info = op_info(n->op);
  bool ok = true;
  for (int k = 0; k < info->n_attrs; k++) {
    const Attr *a = &n->attr[k];
    if (info->attr_kind[k] == ATTR_LIST && (a->n < 0 || (a->n > 0 && !a->list))) {
      problem(V, i, n, "attribute '%s' has %d elements but no storage", info->attr_name[k], a->n);
      ok = false;
    }
    if (info->attr_kind[k] == ATTR_BOOL && a->i != 0 && a->i != 1) {
      problem(V, i, n, "bool attribute '%s' is %lld", info->attr_name[k], (long long)a->i);
      ok = false;
    }
  }
  return ok;
}

static void check_roles(Verifier *V, int i, const Node *n) {
  unsigned kind = n->roles & (ROLE_INPUT | ROLE_PARAM | ROLE_STATE);
  if (n->op == OP_VAR && (kind == 0 || (kind & (kind - 1))))
    problem(V, i, n, "a var needs exactly one of the input, param and state roles (roles 0x%x)",
            n->roles);
  if (n->op != OP_VAR && kind)
    problem(V, i, n, "only a var may have the input, param or state role (roles 0x%x)",
            n->roles);
  if (n->op != OP_VAR && n->init != INIT_NONE)
    problem(V, i, n, "only a var may have an initializer");
  if ((unsigned)n->init >= INIT_COUNT)
    problem(V, i, n, "bad initializer kind %d", (int)n->init);
}

/* Recomputes the type on a copy; true when it matches. The copy's lists
 * are copies too, since ir_infer normalizes them in place and the graph
 * is not ours to change. */
static bool check_type(Verifier *V, int i, const Node *n) {
  const OpInfo *info = op_info(n->op);
  Node tmp = *n;
  int64_t *lists[IR_MAX_ATTRS] = {NULL};
  for (int k = 0; k < info->n_attrs; k++)
    if (info->attr_kind[k] == ATTR_LIST && n->attr[k].n > 0) {
      lists[k] = nncc_malloc(sizeof(int64_t) * (size_t)n->attr[k].n);
      memcpy(lists[k], n->attr[k].list, sizeof(int64_t) * (size_t)n->attr[k].n);
      tmp.attr[k].list = lists[k];
    }
  /* leaves and cast carry their own type (cast: its target dtype) */
  if (n->op != OP_VAR && n->op != OP_CONST && n->op != OP_CAST)
    memset(&tmp.type, 0, sizeof tmp.type);
  char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
  bool ok = ir_infer(&tmp, NULL);
  if (!ok)
    problem(V, i, n, "ir_infer rejects it (stored type %s)", type_str(&n->type, a, sizeof a));
  else if (!(ok = type_eq(&tmp.type, &n->type)))
    problem(V, i, n, "type is %s but ir_infer gives %s", type_str(&n->type, a, sizeof a),
            type_str(&tmp.type, b, sizeof b));
  for (int k = 0; k < IR_MAX_ATTRS; k++) nncc_free(lists[k]);
  return ok;
}

/* Fused kernels (ir.h, fusion rules): numbered 1.. in order of first
 * node, each contiguous, an optional anchor first, then elementwise nodes
 * of the loop's shape whose operands from the kernel have that shape, or a
 * softmax kernel's row loss. */
static void check_kernels(Verifier *V) {
  const Graph *g = V->g;
  int last = 0;  /* the highest kernel number opened so far */
  const Node *first = NULL;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!n || (unsigned)n->op >= OP_COUNT) return;
    int k = n->kernel;
    if (!k) continue;
    char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
    if (k < 0 || k > g->n_kernels) {
      problem(V, i, n, "kernel k%d but the graph has %d kernels", k, g->n_kernels);
      continue;
    }
    bool opens = i == 0 || !g->nodes[i - 1] || g->nodes[i - 1]->kernel != k;
    KernelKind kind;
    if (opens) {
      if (k != last + 1) problem(V, i, n, "kernel k%d is not contiguous or not numbered in order (expected k%d)", k, last + 1);
      if (k > last) last = k;
      first = n;
      if (!ir_kernel_anchor(n, &kind) && !ir_kernel_elementwise(n))
        problem(V, i, n, "'%s' cannot start a kernel", op_info(n->op)->name);
      continue;
    }
    if (ir_kernel_row_loss(first, n)) continue;
    bool closes = i + 1 == g->n_nodes || !g->nodes[i + 1] || g->nodes[i + 1]->kernel != k;
    if (closes && ir_kernel_reduction(n) && !ir_kernel_anchor(first, &kind)) {  /* a reduce kernel's end */
      if (n->in[0]->kernel != k)
        problem(V, i, n, "the reduction ending kernel k%d reduces %%%d, not a node of the kernel", k, n->in[0]->id);
      continue;
    }
    if (!ir_kernel_elementwise(n)) {
      problem(V, i, n, "'%s' is not elementwise and cannot be in kernel k%d", op_info(n->op)->name, k);
      continue;
    }
    if (!type_same_shape(&n->type, &first->type))
      problem(V, i, n, "shape %s differs from kernel k%d's loop %s", safe_type_str(&n->type, a, sizeof a), k,
              safe_type_str(&first->type, b, sizeof b));
    for (int j = 0; j < n->n_in; j++)
      if (n->in[j] && n->in[j]->kernel == k && !type_same_shape(&n->in[j]->type, &first->type))
        problem(V, i, n, "operand %%%d from kernel k%d has shape %s, not the loop's %s", n->in[j]->id, k,
                safe_type_str(&n->in[j]->type, a, sizeof a), safe_type_str(&first->type, b, sizeof b));
  }
  if (last != g->n_kernels) {
    V->problems++;
    fprintf(V->out, "verify: graph '%s' says %d kernels but has %d\n", g->name ? g->name : "?", g->n_kernels, last);
  }
}

int ir_verify_kernels(const Graph *g, FILE *out) {
  Verifier V = {g, out, 0, NULL};
  check_kernels(&V);
  return V.problems;
}

int ir_verify(const Graph *g, FILE *out) {
  if (g->n_nodes < 0 || (g->n_nodes > 0 && !g->nodes)) {
    fprintf(out, "verify: graph '%s' has no node array for %d nodes\n", g->name ? g->name : "?",
            g->n_nodes);
    return 1;
  }
  Verifier V = {g, out, 0, nncc_calloc((size_t)g->n_nodes + 1, sizeof(bool))};
  IrNameMap *var_names = ir_namemap_new();
  int loss = -1;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    V.suspect[i] = true;  /* until its type is found right */
    if (!n) {
      problem(&V, i, n, "node is NULL");
      continue;
    }
    if ((unsigned)n->op >= OP_COUNT) {
      problem(&V, i, n, "unknown op number %d", (int)n->op);
      continue;
    }
    if (n->id != i) problem(&V, i, n, "id is %d but the node is at index %d", n->id, i);
    bool operands_ok = check_operands(&V, i, n);
    bool attrs_ok = check_attrs(&V, i, n);
    check_roles(&V, i, n);

    if (n->roles & ROLE_LOSS) {
      Type scalar = type_scalar(DT_F32);
      char buf[TYPE_STR_MAX];
      if (loss >= 0) problem(&V, i, n, "a second loss (the first is %%%d)", loss);
      else loss = i;
      if (!type_eq(&n->type, &scalar))
        problem(&V, i, n, "the loss has type %s, not f32[]", safe_type_str(&n->type, buf, sizeof buf));
    }
    if (n->roles & ROLE_GRAD) {
      const Node *of = n->grad_of;
      char a[TYPE_STR_MAX], b[TYPE_STR_MAX];
      if (!of || of->id < 0 || of->id >= g->n_nodes || g->nodes[of->id] != of || of->op != OP_VAR)
        problem(&V, i, n, "a gradient whose var is not in the graph");
      else if (!type_eq(&of->type, &n->type))
        problem(&V, i, n, "gradient of type %s for var '%s' of type %s",
                safe_type_str(&n->type, a, sizeof a), of->name ? of->name : "?",
                safe_type_str(&of->type, b, sizeof b));
    }
    if (n->op == OP_VAR && n->name) {
      void **first = ir_namemap_get(var_names, n->name, strlen(n->name));
      if (first)
        problem(&V, i, n, "var name '%s' is already used by %%%d", n->name,
                ((const Node *)*first)->id);
      else
        ir_namemap_put(var_names, n->name, strlen(n->name), (void *)n);
    }

    bool own_type_ok = type_ok(&n->type);
    if (n->type.dtype == DT_ERR) problem(&V, i, n, "type is poisoned (DT_ERR)");
    else if (!own_type_ok) {
      char buf[TYPE_STR_MAX];
      problem(&V, i, n, "malformed type %s", safe_type_str(&n->type, buf, sizeof buf));
    }
    /* recheck the type only on sound ground: operands sound and their
     * types right (a wrong one was reported at its own node and would
     * only echo here), attributes well formed */
    bool can_infer = operands_ok && attrs_ok && own_type_ok;
    for (int k = 0; can_infer && k < n->n_in; k++) can_infer = !V.suspect[n->in[k]->id];
    if (can_infer) V.suspect[i] = !check_type(&V, i, n);
  }
  if (V.problems == 0) check_kernels(&V);
  ir_namemap_free(var_names);
  nncc_free(V.suspect);
  return V.problems;
}
