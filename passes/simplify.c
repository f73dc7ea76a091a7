/* simplify.c - three local simplifications that run just before dce:
 *
 *   fold     constant folding: an elementwise op, a reduction or a data
 *            movement of constants becomes one constant
 *   algebra  algebraic identities (x*1, neg(neg(x)), transpose of a
 *            transpose, pow(x, 2) -> square(x), sums of adjacent
 *            unslices -> concat, ...), to a fixed point
 *   cse      common subexpression elimination: equal ops on equal
 *            operands become one node
 *
 * All three are one sweep over the nodes in topological order (sweep()):
 * a node's operands are redirected to what now stands for them, then a
 * rule may name a replacement for the node - one of its operands, an
 * earlier node, or a fresh node built right here, before the node's users.
 * The sweep writes a new node array, so order stays topological, and
 * renumbers ids at the end. A replaced node leaves the array; what only it
 * used stays behind, dead, for dce.
 *
 * A replaced node's roles move to its replacement: outputs keep their
 * name, the loss stays the loss, a gradient stays the gradient of its var.
 * That is possible only when the replacement has no roles of its own (two
 * outputs or two gradients never become one node) and is not a var, except
 * that a var may become an output. Where it is impossible the node stays. */
#include "passes/passes.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* =============================================================== sweep */

typedef struct Sweep {
  Graph *g;
  int n_old;      /* nodes before the sweep; fresh nodes get ids from here */
  Node **repl;    /* by old id: the node that now stands for it, or NULL */
  Node **out;     /* the new node array (malloc'ed; copied into g at the end) */
  int n_out, cap_out;
  int n_fresh;    /* fresh nodes made so far */
  bool changed;   /* some node was replaced */
} Sweep;

/* A rule returns a replacement for n, or NULL to keep it. */
typedef Node *(*RuleFn)(Sweep *S, Node *n, void *ctx);

static void emit(Sweep *S, Node *n) {
  if (S->n_out == S->cap_out) {
    S->cap_out = S->cap_out ? 2 * S->cap_out : 64;
    S->out = nncc_realloc(S->out, sizeof(Node *) * (size_t)S->cap_out);
  }
  S->out[S->n_out++] = n;
}

/* What stands for x now. Fresh nodes and kept ones stand for themselves. */
static Node *now(const Sweep *S, Node *x) {
  if (x && x->id >= 0 && x->id < S->n_old && S->repl[x->id]) return S->repl[x->id];
  return x;
}

/* A fresh node standing for `like`: its location and name. It joins the
 * array now, after its operands and before like's users. Returns NULL
 * (and adds nothing) when the op's rules reject it, which a caller treats
 * as "no rewrite". */
static Node *fresh(Sweep *S, Op op, Node *const *ins, int n_in, const Node *like,
                   const Attr *attrs) {
  Graph *g = S->g;
  Node *n = ARENA_NEW(g->arena, Node);
  n->op = op;
  n->loc = like->loc;
  n->name = like->name;
  n->n_in = n_in;
  if (n_in) {
    n->in = ARENA_ARRAY(g->arena, Node *, n_in);
    for (int i = 0; i < n_in; i++) n->in[i] = ins[i];
  }
  if (attrs) {
    const OpInfo *info = op_info(op);
    for (int k = 0; k < info->n_attrs; k++) {
      n->attr[k] = attrs[k];
      if (info->attr_kind[k] == ATTR_LIST) ir_set_list(g, n, k, attrs[k].list, attrs[k].n);
    }
  }
  if (!ir_infer(n, NULL)) return NULL;
  n->id = S->n_old + S->n_fresh++;
  emit(S, n);
  return n;
}

static Node *fresh1(Sweep *S, Op op, Node *x, const Node *like) {
  return fresh(S, op, &x, 1, like, NULL);
}

/* A fresh constant of type t filled with v. */
static Node *fresh_const(Sweep *S, const Type *t, double v, const Node *like) {
  Node *n = ARENA_NEW(S->g->arena, Node);
  n->op = OP_CONST;
  n->loc = like->loc;
  n->name = like->name;
  n->type = *t;
  n->attr[0].f = v;
  if (!ir_infer(n, NULL)) return NULL;
  n->id = S->n_old + S->n_fresh++;
  emit(S, n);
  return n;
}

/* The roles of a value (a var's input/param/state roles say what it is). */
#define VALUE_ROLES (ROLE_OUTPUT | ROLE_LOSS | ROLE_GRAD)

/* Can `to`, an existing node, stand for `from` as far as roles go? */
static bool roles_can_move(const Node *from, const Node *to) {
  if (!from->roles) return true;
  if (to->roles & VALUE_ROLES) return false;
  if (to->op == OP_VAR) return from->roles == ROLE_OUTPUT;
  return true;
}

static void move_roles(Node *from, Node *to) {
  if (!from->roles) return;
  to->roles |= from->roles;
  to->out_name = from->out_name;
  to->out_index = from->out_index;
  to->grad_of = from->grad_of;
  if (!to->name && to->op != OP_VAR) to->name = from->name;
  from->roles = 0;
}

/* One pass of `rule` over g; true when something changed. */
static bool sweep(Graph *g, RuleFn rule, void *ctx) {
  Sweep S = {.g = g, .n_old = g->n_nodes};
  S.repl = nncc_calloc((size_t)g->n_nodes + 1, sizeof(Node *));
  for (int i = 0; i < S.n_old; i++) {
    Node *n = g->nodes[i];
    for (int k = 0; k < n->n_in; k++) n->in[k] = now(&S, n->in[k]);
    n->grad_of = now(&S, n->grad_of);
    int mark = S.n_out;  /* fresh nodes of a refused rewrite are dropped */
    int fresh_mark = S.n_fresh;
    Node *r = rule(&S, n, ctx);
    if (r && r != n) {
      bool is_fresh = r->id >= S.n_old;
      if (is_fresh || roles_can_move(n, r)) {
        move_roles(n, r);
        S.repl[i] = r;
        S.changed = true;
        continue;
      }
      S.n_out = mark;
      S.n_fresh = fresh_mark;
    }
    emit(&S, n);
  }
  if (S.n_out > g->cap_nodes) {
    g->nodes = arena_realloc(g->arena, g->nodes, sizeof(Node *) * (size_t)g->n_nodes,
                             sizeof(Node *) * (size_t)S.n_out);
    g->cap_nodes = S.n_out;
  }
  for (int i = 0; i < S.n_out; i++) {
    S.out[i]->id = i;
    g->nodes[i] = S.out[i];
  }
  g->n_nodes = S.n_out;
  nncc_free(S.out);
  nncc_free(S.repl);
  return S.changed;
}

/* =========================================================== constants */

static bool is_const(const Node *n) { return n->op == OP_CONST; }

/* A constant's value as the program sees it: rounded to its dtype. */
static double const_value(const Node *n) {
  double v = n->attr[0].f;
  switch (n->type.dtype) {
  case DT_F32: return (double)(float)v;
  case DT_BOOL: return v != 0;
  default: return v;
  }
}

/* An i32 value held in a double: integral and in range. */
static bool as_i32(double v, int64_t *out) {
  if (!(v >= INT32_MIN && v <= INT32_MAX) || v != trunc(v)) return false;
  *out = (int64_t)v;
  return true;
}

static bool fits_i32(int64_t v) { return v >= INT32_MIN && v <= INT32_MAX; }

/* A double into a constant of dtype dt: f32 rounds, i32 truncates (as a
 * cast does; NaN and out of range are not folded), bool is 0/1. */
static bool to_dtype(DType dt, double v, double *out) {
  switch (dt) {
  case DT_F32: *out = (double)(float)v; return true;
  case DT_I32: {
    if (isnan(v)) return false;
    int64_t i;
    if (!as_i32(trunc(v), &i)) return false;
    *out = (double)i;
    return true;
  }
  case DT_BOOL: *out = v != 0; return true;
  default: return false;
  }
}

/* One i32 elementwise op, exactly (i32 has no division, and clamp is f32
 * only); false where the result would overflow: generated code wraps, and
 * folding only what needs no wrapping is simpler to trust. */
static bool i32_elem(const Node *n, const double *x, double *out) {
  int64_t a, b = 0, r;
  if (!as_i32(x[0], &a) || (n->n_in > 1 && !as_i32(x[1], &b))) return false;
  switch (n->op) {
  case OP_NEG: r = -a; break;
  case OP_ABS: r = a < 0 ? -a : a; break;
  case OP_SQUARE: r = a * a; break;
  case OP_RELU: r = a < 0 ? 0 : a; break;
  case OP_STOP_GRADIENT: r = a; break;
  case OP_ADD: r = a + b; break;
  case OP_SUB: r = a - b; break;
  case OP_MUL: r = a * b; break;
  case OP_MAXIMUM: r = a > b ? a : b; break;
  case OP_MINIMUM: r = a < b ? a : b; break;
  default: return false;
  }
  if (!fits_i32(r)) return false;
  *out = (double)r;
  return true;
}

/* The value of elementwise n over constant operand values x[]: the
 * arithmetic of ir_scalar, comparisons and where on any dtype, f32
 * rounded, i32 exact. */
static bool elem_value(const Node *n, const double *x, double *out) {
  DType in_dt = n->in[n->op == OP_WHERE ? 1 : 0]->type.dtype;
  double v;
  if (n->op == OP_CAST) return to_dtype(n->type.dtype, x[0], out);
  if ((op_info(n->op)->flags & OPF_COMPARE) || n->op == OP_WHERE)
    return ir_scalar(n->op, n->attr, x, out);
  if (in_dt == DT_F32) {
    if (!ir_scalar(n->op, n->attr, x, &v)) return false;
    return to_dtype(DT_F32, v, out);
  }
  if (in_dt == DT_I32) return i32_elem(n, x, out);
  return false;
}

/* ================================================================ fold */

static Node *fold_rule(Sweep *S, Node *n, void *ctx) {
  (void)ctx;
  unsigned flags = op_info(n->op)->flags;
  if (n->n_in == 0 || (flags & OPF_EFFECT)) return NULL;
  double x[3] = {0, 0, 0};
  for (int k = 0; k < n->n_in; k++) {
    if (!is_const(n->in[k])) return NULL;
    if (k < 3) x[k] = const_value(n->in[k]);
  }
  double v;
  if (flags & OPF_ELEMWISE) {
    if (n->n_in > 3 || !elem_value(n, x, &v)) return NULL;
    return fresh_const(S, &n->type, v, n);
  }
  int64_t count = type_numel(&n->in[0]->type) / type_numel(&n->type);  /* elements reduced */
  switch (n->op) {
  case OP_BROADCAST: case OP_RESHAPE: case OP_TRANSPOSE: case OP_SLICE:
  case OP_MEAN: case OP_MAX: case OP_MIN:
    v = x[0];
    break;
  case OP_CONCAT:  /* of equal fills */
    for (int k = 1; k < n->n_in; k++)
      if (memcmp(&n->in[k]->attr[0].f, &n->in[0]->attr[0].f, sizeof(double))) return NULL;
    v = x[0];
    break;
  case OP_SUM:
    if (n->type.dtype == DT_I32) {
      int64_t a;
      if (!as_i32(x[0], &a) || !fits_i32(a * count)) return NULL;
      v = (double)(a * count);
    } else {
      v = (double)(float)(x[0] * (double)count);
    }
    break;
  case OP_LOGSUMEXP:
    v = (double)(float)(x[0] + log((double)count));
    break;
  default:
    return NULL;
  }
  return fresh_const(S, &n->type, v, n);
}

bool pass_fold(Graph *g, Diag *d) {
  (void)d;
  sweep(g, fold_rule, NULL);
  return true;
}

/* ============================================================= algebra */

/* A constant fill equal to v (as the program sees it). */
static bool is_val(const Node *n, double v) { return is_const(n) && const_value(n) == v; }

/* x can stand for n: same dtype and shape (no broadcast lost). */
static bool same_type(const Node *x, const Node *n) { return type_eq(&x->type, &n->type); }

static bool is_identity_perm(const int64_t *p, int n) {
  for (int i = 0; i < n; i++)
    if (p[i] != i) return false;
  return true;
}

/* n as op(x) with n's own attributes (reshape, broadcast shapes). */
static Node *remake(Sweep *S, Node *n, Node *x) {
  return fresh(S, n->op, &x, 1, n, n->attr);
}

/* add(unslice(a), unslice(b)) whose regions touch along one axis and
 * agree on every other: one unslice of concat([a, b]). The backward of a
 * split (an LSTM's four gates) is a sum of such unslices - each a zero
 * fill and a copy of the whole gradient - and becomes one concat. */
static Node *merge_unslices(Sweep *S, Node *n, Node *u, Node *v) {
  if (u->op != OP_UNSLICE || v->op != OP_UNSLICE || !same_type(u, n) || !same_type(v, n)) return NULL;
  const Type *ta = &u->in[0]->type, *tb = &v->in[0]->type;
  int rank = ta->rank, axis = -1;
  for (int d = 0; d < rank; d++) {
    if (u->attr[1].list[d] != 1 || v->attr[1].list[d] != 1) return NULL;
    int64_t ub = u->attr[0].list[d], vb = v->attr[0].list[d];
    if (ub == vb && ta->dim[d] == tb->dim[d]) continue;
    if (axis >= 0) return NULL;
    axis = d;
  }
  if (axis < 0) return NULL;
  Node *lo = u, *hi = v;
  if (v->attr[0].list[axis] < u->attr[0].list[axis]) lo = v, hi = u;
  if (lo->attr[0].list[axis] + lo->in[0]->type.dim[axis] != hi->attr[0].list[axis]) return NULL;
  Node *parts[2] = {lo->in[0], hi->in[0]};
  Attr ax = {.i = axis};
  Node *cat = fresh(S, OP_CONCAT, parts, 2, n, &ax);
  if (!cat) return NULL;
  return fresh(S, OP_UNSLICE, &cat, 1, n, lo->attr);
}

static Node *algebra_rule(Sweep *S, Node *n, void *ctx) {
  (void)ctx;
  Node *a = n->n_in > 0 ? n->in[0] : NULL, *b = n->n_in > 1 ? n->in[1] : NULL;
  Node *ins[2];
  switch (n->op) {
  case OP_MUL:
    if (is_val(b, 1) && same_type(a, n)) return a;
    if (is_val(a, 1) && same_type(b, n)) return b;
    if (is_val(b, -1) && same_type(a, n)) return fresh1(S, OP_NEG, a, n);
    if (is_val(a, -1) && same_type(b, n)) return fresh1(S, OP_NEG, b, n);
    return NULL;
  case OP_ADD: {
    if (is_val(b, 0) && same_type(a, n)) return a;
    if (is_val(a, 0) && same_type(b, n)) return b;
    Node *merged = merge_unslices(S, n, a, b);
    if (merged) return merged;
    if (b->op == OP_NEG || a->op == OP_NEG) {
      ins[0] = b->op == OP_NEG ? a : b;
      ins[1] = b->op == OP_NEG ? b->in[0] : a->in[0];
      return fresh(S, OP_SUB, ins, 2, n, NULL);
    }
    return NULL;
  }
  case OP_UNSLICE: {  /* an unslice that covers its whole shape is its operand */
    bool whole = same_type(a, n);
    for (int d = 0; d < n->type.rank && whole; d++) whole = n->attr[0].list[d] == 0 && n->attr[1].list[d] == 1;
    return whole ? a : NULL;
  }
  case OP_CONCAT: {  /* concat of a concat along the same axis: one concat */
    int count = 0, flat = -1;
    for (int k = 0; k < n->n_in; k++) {
      Node *x = n->in[k];
      bool inner = x->op == OP_CONCAT && x->attr[0].i == n->attr[0].i;
      count += inner ? x->n_in : 1;
      if (inner && flat < 0) flat = k;
    }
    if (flat < 0 || count > 4096) return NULL;
    Node **parts = nncc_malloc(sizeof(Node *) * (size_t)count);
    int at = 0;
    for (int k = 0; k < n->n_in; k++) {
      Node *x = n->in[k];
      if (x->op == OP_CONCAT && x->attr[0].i == n->attr[0].i)
        for (int j = 0; j < x->n_in; j++) parts[at++] = x->in[j];
      else
        parts[at++] = x;
    }
    Node *r = fresh(S, OP_CONCAT, parts, count, n, n->attr);
    nncc_free(parts);
    return r;
  }
  case OP_SUB:
    if (is_val(b, 0) && same_type(a, n)) return a;
    if (is_val(a, 0) && same_type(b, n)) return fresh1(S, OP_NEG, b, n);
    return NULL;
  case OP_DIV:
    return is_val(b, 1) && same_type(a, n) ? a : NULL;
  case OP_NEG:
    return a->op == OP_NEG ? a->in[0] : NULL;
  case OP_POW: {
    double e = n->attr[0].f;
    if (e == 1) return a;
    if (e == 2) return fresh1(S, OP_SQUARE, a, n);
    if (e == 0.5) return fresh1(S, OP_SQRT, a, n);
    if (e == -0.5) return fresh1(S, OP_RSQRT, a, n);
    return NULL;
  }
  case OP_WHERE:
    return n->in[1] == n->in[2] && same_type(n->in[1], n) ? n->in[1] : NULL;
  case OP_CAST:
    return same_type(a, n) ? a : NULL;
  case OP_TRANSPOSE: {
    const Attr *q = &n->attr[0];
    if (is_identity_perm(q->list, q->n)) return a;
    if (a->op != OP_TRANSPOSE) return NULL;
    /* transpose(transpose(x, p), q) = transpose(x, r), r[i] = p[q[i]] */
    const Attr *p = &a->attr[0];
    int64_t r[IR_MAX_RANK];
    for (int i = 0; i < q->n; i++) r[i] = p->list[q->list[i]];
    if (is_identity_perm(r, q->n)) return a->in[0];
    Attr at = {.n = q->n, .list = r};
    return fresh(S, OP_TRANSPOSE, &a->in[0], 1, n, &at);
  }
  case OP_RESHAPE: case OP_BROADCAST:
    /* reshape of a reshape, broadcast of a broadcast: one step */
    if (same_type(a, n)) return a;
    if (a->op != n->op) return NULL;
    if (same_type(a->in[0], n)) return a->in[0];
    return remake(S, n, a->in[0]);
  case OP_SUM: case OP_MEAN: case OP_MAX: case OP_MIN: case OP_LOGSUMEXP:
    return n->attr[0].n == 0 && same_type(a, n) ? a : NULL;
  default:
    return NULL;
  }
}

/* Each sweep sees the previous one's results; a handful reach the fixed
 * point in practice (each rewrite removes a node or an op from a chain). */
#define ALGEBRA_MAX_SWEEPS 16

bool pass_algebra(Graph *g, Diag *d) {
  (void)d;
  for (int i = 0; i < ALGEBRA_MAX_SWEEPS && sweep(g, algebra_rule, NULL); i++) {
  }
  return true;
}

/* ================================================================= cse */

/* Ops that never merge: vars are distinct tensors, effects are writes,
 * each dropout draws its own mask, and a batch_norm is lowered into state
 * updates that must stay one per call. */
static bool cse_candidate(const Node *n) {
  if (op_info(n->op)->flags & OPF_EFFECT) return false;
  return n->op != OP_VAR && n->op != OP_DROPOUT && n->op != OP_BATCH_NORM;
}

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
  return h * 0x100000001b3ull;
}

static uint64_t bits_of(double f) {
  uint64_t u;
  memcpy(&u, &f, sizeof u);
  return u;
}

static uint64_t node_hash(const Node *n) {
  const OpInfo *info = op_info(n->op);
  uint64_t h = mix(0xcbf29ce484222325ull, (uint64_t)n->op);
  h = mix(h, (uint64_t)n->type.dtype);
  h = mix(h, (uint64_t)n->type.rank);
  for (int i = 0; i < n->type.rank; i++) h = mix(h, (uint64_t)n->type.dim[i]);
  h = mix(h, (uint64_t)n->n_in);
  for (int k = 0; k < n->n_in; k++) h = mix(h, (uint64_t)n->in[k]->id);
  for (int k = 0; k < info->n_attrs; k++) {
    const Attr *a = &n->attr[k];
    switch (info->attr_kind[k]) {
    case ATTR_FLOAT: h = mix(h, bits_of(a->f)); break;
    case ATTR_LIST:
      h = mix(h, (uint64_t)a->n);
      for (int i = 0; i < a->n; i++) h = mix(h, (uint64_t)a->list[i]);
      break;
    default: h = mix(h, (uint64_t)a->i); break;
    }
  }
  return h;
}

static bool node_same(const Node *x, const Node *y) {
  if (x->op != y->op || x->n_in != y->n_in || !type_eq(&x->type, &y->type)) return false;
  for (int k = 0; k < x->n_in; k++)
    if (x->in[k] != y->in[k]) return false;
  const OpInfo *info = op_info(x->op);
  for (int k = 0; k < info->n_attrs; k++) {
    const Attr *a = &x->attr[k], *b = &y->attr[k];
    switch (info->attr_kind[k]) {
    case ATTR_FLOAT:
      if (bits_of(a->f) != bits_of(b->f)) return false;
      break;
    case ATTR_LIST:
      if (a->n != b->n || (a->n && memcmp(a->list, b->list, sizeof(int64_t) * (size_t)a->n)))
        return false;
      break;
    default:
      if (a->i != b->i) return false;
      break;
    }
  }
  return true;
}

/* Open addressing over the nodes kept so far. */
typedef struct CseTable {
  Node **slot;
  size_t mask;
} CseTable;

static Node *cse_rule(Sweep *S, Node *n, void *ctx) {
  (void)S;
  CseTable *T = ctx;
  if (!cse_candidate(n)) return NULL;
  size_t i = (size_t)node_hash(n) & T->mask;
  for (; T->slot[i]; i = (i + 1) & T->mask)
    if (node_same(T->slot[i], n)) return T->slot[i];
  T->slot[i] = n;
  return NULL;
}

bool pass_cse(Graph *g, Diag *d) {
  (void)d;
  size_t size = 16;
  while (size < 2 * (size_t)g->n_nodes + 2) size *= 2;
  CseTable T = {nncc_calloc(size, sizeof(Node *)), size - 1};
  sweep(g, cse_rule, &T);
  nncc_free(T.slot);
  return true;
}
