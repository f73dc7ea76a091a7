/* fuse.c - operator fusion: nodes that can run as one loop nest become a
 * kernel (ir.h's fusion rules), and the graph is rescheduled so that every
 * kernel's nodes are contiguous; codegen emits a kernel as one function
 * whose intermediate values stay in registers.
 *
 * Kernels grow greedily in graph order. A matmul of matrices, a conv2d or
 * a softmax over the last axis anchors a kernel; an elementwise node joins the
 * kernel of one of its operands (anchored kernels first, then the latest)
 * when
 *   - that operand has the node's shape, the kernel's loop shape: an
 *     operand that broadcasts would have to be recomputed per element;
 *   - both are computed by the same ABI entries (forward, evaluate,
 *     backward, train_step): a kernel runs whole or not at all;
 *   - no other operand depends on the kernel: the kernels stay acyclic,
 *     so a schedule with every kernel contiguous exists;
 * else it starts a kernel of its own. A sum, mean, max or min of a loop
 * kernel's value ends that kernel (the reduction's loop computes the
 * chain); later nodes may still join it, ahead of the reduction, unless
 * they use it. Loop kernels that meet at the node
 * merge into its kernel under the same rules (the Adam update's two
 * moments). Then a lone elementwise node whose every user is in one
 * kernel is pulled into it (recomputed there, never stored: one_hot of
 * the labels in the cross-entropy gradient), and a cross_entropy beside a
 * softmax of its logits joins that softmax's kernel (it needs the same
 * row max and sum). Kernels of one node are dropped. Finally the units (kernels and lone nodes) are
 * ordered topologically, depth first from the original order; leaves
 * (vars and constants) go first, in their order, which keeps the ABI's
 * tensor table as it was. --remarks=fusion tells each decision. */
#include "passes/passes.h"

#include <stdlib.h>
#include <string.h>

#define DEPENDS_SEARCH_LIMIT 20000  /* nodes visited before assuming a cycle */
#define KERNEL_MAX_NODES 64         /* bounds register pressure and code size */

typedef struct Cluster {
  int first, last;     /* smallest and largest original id */
  KernelKind kind;
  const Node *head;    /* the anchor, or the first member: the loop's shape */
  int *members;        /* node ids: an anchor first, the rest in id order,
                          a reduce kernel's reduction last */
  int count, cap;
  int reduction;       /* KERNEL_REDUCE: the reduction's id */
} Cluster;

typedef struct Fuser {
  Graph *g;
  Diag *d;
  unsigned *entries;   /* per node: ir_entry_masks */
  int *cl;             /* per node: cluster, or -1 */
  Cluster *cls;
  int n_cls, cap_cls;
  /* depends(): visit stamps and a stack */
  int *node_seen, *cl_seen, stamp;
  int *stack;
  int cap_stack;
} Fuser;

static void *grow(void *p, int *cap, int need, size_t elem) {
  if (need <= *cap) return p;
  int c = *cap ? *cap : 16;
  while (c < need) c *= 2;
  p = nncc_realloc(p, elem * (size_t)c);
  *cap = c;
  return p;
}

/* "relu (h)" or "add" */
static const char *label(const Node *n, char *buf, size_t size) {
  if (n->name && n->op != OP_VAR) snprintf(buf, size, "'%s' (%s)", op_info(n->op)->name, n->name);
  else if (n->name) snprintf(buf, size, "'%s'", n->name);
  else snprintf(buf, size, "'%s'", op_info(n->op)->name);
  return buf;
}

static const char *entries_str(unsigned m, char *buf, size_t size) {
  static const char *const names[] = {"forward", "evaluate", "backward", "train_step"};
  buf[0] = 0;
  for (int k = 0; k < 4; k++)
    if (m & (1u << k)) {
      size_t len = strlen(buf);
      snprintf(buf + len, size - len, "%s%s", len ? "+" : "", names[k]);
    }
  if (!buf[0]) snprintf(buf, size, "no entry");
  return buf;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return x < y ? -1 : x > y;
}

static void add_member(Fuser *F, int k, int id) {
  Cluster *c = &F->cls[k];
  c->members = grow(c->members, &c->cap, c->count + 1, sizeof(int));
  c->members[c->count++] = id;
  if (id < c->first) c->first = id;
  if (id > c->last) c->last = id;
  F->cl[id] = k;
}

/* anchor first, then id order: topological, since nothing that precedes
 * the anchor in the graph can use it */
static bool anchored(KernelKind k) { return k == KERNEL_MATMUL || k == KERNEL_SOFTMAX || k == KERNEL_CONV; }

static void sort_members(Cluster *c) {
  int from = anchored(c->kind) ? 1 : 0, n = c->count;
  if (c->kind == KERNEL_REDUCE) {  /* computed after the loop: last, whatever its id */
    for (int i = 0; i < n; i++)
      if (c->members[i] == c->reduction) c->members[i] = c->members[n - 1];
    c->members[n - 1] = c->reduction;
    n--;
  }
  qsort(c->members + from, (size_t)(n - from), sizeof(int), cmp_int);
  if (!anchored(c->kind)) c->head = NULL;
}

static int new_cluster(Fuser *F, Node *n, KernelKind kind) {
  F->cls = grow(F->cls, &F->cap_cls, F->n_cls + 1, sizeof *F->cls);
  int k = F->n_cls++;
  F->cls[k] = (Cluster){n->id, n->id, kind, n, NULL, 0, 0, -1};
  add_member(F, k, n->id);
  return k;
}

static void join(Fuser *F, Node *n, int k) {
  Cluster *c = &F->cls[k];
  bool in_order = n->id > c->members[c->count - 1] && c->kind != KERNEL_REDUCE;
  add_member(F, k, n->id);
  if (!in_order) {
    sort_members(c);
    if (!c->head) c->head = F->g->nodes[c->members[0]];
  }
}

/* Moves every member of cluster `from` into k. */
static void merge(Fuser *F, int k, int from) {
  Cluster *src = &F->cls[from];
  for (int m = 0; m < src->count; m++) add_member(F, k, src->members[m]);
  src->count = 0;
  Cluster *c = &F->cls[k];
  sort_members(c);
  if (!c->head) c->head = F->g->nodes[c->members[0]];
}

static void push(Fuser *F, int *top, int v) {
  F->stack = grow(F->stack, &F->cap_stack, *top + 1, sizeof *F->stack);
  F->stack[(*top)++] = v;
}

/* Whether node q (outside cluster k) is computed from k's results, through
 * nodes or other clusters. Nothing before k's first node can be; a search
 * too long to finish says yes (not fusing is always safe). */
static bool depends(Fuser *F, const Node *q, int k) {
  const Cluster *target = &F->cls[k];
  int top = 0, visits = 0;
  F->stamp++;
  push(F, &top, q->id);
  while (top > 0) {
    int v = F->stack[--top];
    int c = F->cl[v];
    if (c == k) return true;
    if (++visits > DEPENDS_SEARCH_LIMIT) return true;
    if (c >= 0) {
      if (F->cl_seen[c] == F->stamp) continue;
      F->cl_seen[c] = F->stamp;
      if (F->cls[c].last < target->first) continue;
      for (int mi = 0; mi < F->cls[c].count; mi++) {
        const Node *mn = F->g->nodes[F->cls[c].members[mi]];
        for (int j = 0; j < mn->n_in; j++)
          if (F->cl[mn->in[j]->id] != c) push(F, &top, mn->in[j]->id);
      }
    } else {
      if (F->node_seen[v] == F->stamp) continue;
      F->node_seen[v] = F->stamp;
      if (v < target->first) continue;
      const Node *vn = F->g->nodes[v];
      for (int j = 0; j < vn->n_in; j++) push(F, &top, vn->in[j]->id);
    }
  }
  return false;
}

/* Why n cannot join cluster k through its operand p, or NULL when it can. */
static const char *why_not(Fuser *F, const Node *n, const Node *p, int k, char *buf, size_t size) {
  const Cluster *c = &F->cls[k];
  char a[TYPE_STR_MAX], b[TYPE_STR_MAX], l[96];
  for (int j = 0; j < n->n_in && c->kind == KERNEL_REDUCE; j++)
    if (n->in[j]->id == c->reduction) {
      snprintf(buf, size, "it uses the reduction that ends the kernel");
      return buf;
    }
  if (!type_same_shape(&p->type, &n->type) || !type_same_shape(&c->head->type, &n->type)) {
    snprintf(buf, size, "the operand %s broadcasts to %s", type_str(&p->type, a, sizeof a),
             type_str(&n->type, b, sizeof b));
    return buf;
  }
  if (c->count >= KERNEL_MAX_NODES) {
    snprintf(buf, size, "the kernel is full (%d nodes)", KERNEL_MAX_NODES);
    return buf;
  }
  if (F->entries[n->id] != F->entries[c->head->id]) {
    snprintf(buf, size, "it runs in %s, the kernel in %s", entries_str(F->entries[n->id], a, sizeof a),
             entries_str(F->entries[c->head->id], b, sizeof b));
    return buf;
  }
  for (int j = 0; j < n->n_in; j++) {
    const Node *q = n->in[j];
    if (F->cl[q->id] == k || q->op == OP_VAR || q->op == OP_CONST) continue;
    if (depends(F, q, k)) {
      snprintf(buf, size, "its operand %s is computed from the kernel's results (a cycle)", label(q, l, sizeof l));
      return buf;
    }
  }
  return NULL;
}

static const char *kind_phrase(KernelKind k) {
  return k == KERNEL_MATMUL  ? "the epilogue of the matmul kernel of"
         : k == KERNEL_SOFTMAX ? "the softmax kernel of"
         : k == KERNEL_CONV    ? "the epilogue of the conv kernel of"
         : k == KERNEL_REDUCE  ? "the reduction kernel of"
                               : "the loop of";
}

/* Whether some operand of cluster a's members, outside a and b, is
 * computed from b's results. */
static bool reaches(Fuser *F, int a, int b) {
  const Cluster *c = &F->cls[a];
  for (int mi = 0; mi < c->count; mi++) {
    const Node *m = F->g->nodes[c->members[mi]];
    for (int j = 0; j < m->n_in; j++) {
      const Node *q = m->in[j];
      int qc = F->cl[q->id];
      if (qc != a && qc != b && q->op != OP_VAR && q->op != OP_CONST && depends(F, q, b)) return true;
    }
  }
  return false;
}

/* After n joined kernel k: the loop kernels of n's other operands merge
 * into k when the result stays acyclic (the Adam update's two halves,
 * the first moment and the second, meet in one division). */
static void merge_operands(Fuser *F, const Node *n, int k) {
  char l1[96], l2[96];
  for (int j = 0; j < n->n_in; j++) {
    const Node *q = n->in[j];
    int k2 = F->cl[q->id];
    if (k2 < 0 || k2 == k || F->cls[k2].kind != KERNEL_LOOP) continue;
    const Cluster *c = &F->cls[k], *c2 = &F->cls[k2];
    if (!type_same_shape(&q->type, &c->head->type) || F->entries[q->id] != F->entries[c->head->id] ||
        c->count + c2->count > KERNEL_MAX_NODES || reaches(F, k2, k) || reaches(F, k, k2))
      continue;
    bool feeds_anchor = false;  /* an anchor reads its operands from memory */
    for (int a = 0; a < c->head->n_in && anchored(c->kind); a++) feeds_anchor |= F->cl[c->head->in[a]->id] == k2;
    for (int m = 0; m < c2->count && c->kind == KERNEL_REDUCE; m++)  /* the reduction is only done at the end */
      for (int a = 0; a < F->g->nodes[c2->members[m]]->n_in; a++)
        feeds_anchor |= F->g->nodes[c2->members[m]]->in[a]->id == c->reduction;
    if (feeds_anchor) continue;
    diag_remark(F->d, DIAG_REMARK_FUSION, n->loc, "%s: merged the loop of %s into %s %s, joined by %s", F->g->name,
                label(c2->head, l1, sizeof l1), kind_phrase(c->kind), label(c->head, l2, sizeof l2),
                op_info(n->op)->name);
    merge(F, k, k2);
  }
}


/* Why reduction n cannot end the kernel of its operand. */
static const char *reduction_why(Fuser *F, const Node *n) {
  int k = F->cl[n->in[0]->id];
  if (!ir_kernel_reduction(n)) return "only sum, mean, max and min end a kernel";
  if (k < 0) return "a reduction ends a kernel";
  if (F->cls[k].kind == KERNEL_REDUCE) return "the kernel already ends with a reduction";
  if (F->cls[k].kind != KERNEL_LOOP) return "only an elementwise loop ends with a reduction";
  if (F->cls[k].count >= KERNEL_MAX_NODES) return "the kernel is full";
  return "it runs in other ABI entries than the kernel";
}

/* A sum, mean, max or min of a value computed by an elementwise loop
 * ends that loop (sum(x * x) reads x once); returns whether it joined. */
static bool join_reduction(Fuser *F, Node *n) {
  int k = F->cl[n->in[0]->id];
  if (k < 0 || F->cls[k].kind != KERNEL_LOOP || F->cls[k].count >= KERNEL_MAX_NODES ||
      F->entries[n->id] != F->entries[F->cls[k].head->id])
    return false;
  char l1[96], l2[96];
  diag_remark(F->d, DIAG_REMARK_FUSION, n->loc, "%s: fused %s into the loop of %s (the reduction ends it)", F->g->name,
              label(n, l1, sizeof l1), label(F->cls[k].head, l2, sizeof l2));
  join(F, n, k);
  F->cls[k].kind = KERNEL_REDUCE;
  F->cls[k].reduction = n->id;
  return true;
}

/* Greedy growth in graph order. */
static void grow_kernels(Fuser *F) {
  Graph *g = F->g;
  char why[256], l1[96], l2[96];
  int tried[IR_MAX_ATTRS + 8];
  for (int i = 0; i < g->n_nodes; i++) {
    Node *n = g->nodes[i];
    KernelKind kind;
    if (ir_kernel_anchor(n, &kind)) {
      new_cluster(F, n, kind);
      continue;
    }
    if (ir_kernel_reduction(n) && join_reduction(F, n)) continue;
    bool elementwise = ir_kernel_elementwise(n);
    if (!elementwise) {
      bool row_loss = n->op == OP_CROSS_ENTROPY || n->op == OP_NLL;  /* see attach_row_losses */
      for (int j = 0; j < n->n_in && !(op_info(n->op)->flags & OPF_EFFECT) && !row_loss; j++)
        if (F->cl[n->in[j]->id] >= 0 && n->op != OP_VAR)
          diag_remark(F->d, DIAG_REMARK_FUSION, n->loc, "%s: did not fuse %s with its operand %s: %s", g->name,
                      label(n, l1, sizeof l1), label(n->in[j], l2, sizeof l2),
                      op_info(n->op)->flags & OPF_REDUCE ? reduction_why(F, n) : "it is not elementwise");
      continue;
    }
    /* candidates: anchored kernels first, then by operand id, latest first */
    int n_tried = 0, joined = -1;
    for (int pass = 0; pass < 2 && joined < 0; pass++)
      for (int j = n->n_in - 1; j >= 0 && joined < 0; j--) {
        const Node *p = n->in[j];
        int k = F->cl[p->id];
        if (k < 0 || anchored(F->cls[k].kind) != (pass == 0)) continue;
        bool seen = false;
        for (int t = 0; t < n_tried; t++) seen |= tried[t] == k;
        if (seen || n_tried == (int)(sizeof tried / sizeof tried[0])) continue;
        tried[n_tried++] = k;
        const char *reason = why_not(F, n, p, k, why, sizeof why);
        if (reason) {
          diag_remark(F->d, DIAG_REMARK_FUSION, n->loc, "%s: did not fuse %s into %s %s: %s", g->name,
                      label(n, l1, sizeof l1), kind_phrase(F->cls[k].kind), label(F->cls[k].head, l2, sizeof l2),
                      reason);
          continue;
        }
        diag_remark(F->d, DIAG_REMARK_FUSION, n->loc, "%s: fused %s into %s %s", g->name, label(n, l1, sizeof l1),
                    kind_phrase(F->cls[k].kind), label(F->cls[k].head, l2, sizeof l2));
        join(F, n, k);
        merge_operands(F, n, k);
        joined = k;
      }
    if (joined < 0) new_cluster(F, n, KERNEL_LOOP);
  }
}

/* A lone elementwise node whose users are all in one kernel of its shape
 * is recomputed there instead of stored. */
static void pull_producers(Fuser *F) {
  Graph *g = F->g;
  int *user_cl = nncc_malloc(sizeof(int) * (size_t)(g->n_nodes + 1));
  for (int i = 0; i < g->n_nodes; i++) user_cl[i] = -2;  /* no user yet */
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    for (int j = 0; j < n->n_in; j++) {
      int *u = &user_cl[n->in[j]->id];
      *u = *u == -2 || *u == F->cl[i] ? F->cl[i] : -1;
    }
  }
  char l1[96], l2[96];
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    Node *p = g->nodes[i];
    int own = F->cl[i], k = user_cl[i];
    if (own < 0 || F->cls[own].count != 1 || F->cls[own].kind != KERNEL_LOOP || k < 0 || k == own || p->roles)
      continue;
    const Cluster *c = &F->cls[k];
    if (!type_same_shape(&p->type, &c->head->type) || F->entries[i] != F->entries[c->head->id]) continue;
    bool ok = true;
    for (int j = 0; j < c->head->n_in && anchored(c->kind); j++)
      ok &= c->head->in[j] != p;  /* an anchor reads its operands from memory */
    for (int j = 0; j < p->n_in && ok; j++) {
      const Node *q = p->in[j];
      ok = F->cl[q->id] != k && (q->op == OP_VAR || q->op == OP_CONST || !depends(F, q, k));
    }
    if (!ok) continue;
    F->cls[own].count = 0;
    join(F, p, k);
    diag_remark(F->d, DIAG_REMARK_FUSION, p->loc, "%s: fused %s into %s %s, its only user (recomputed, not stored)",
                g->name, label(p, l1, sizeof l1), kind_phrase(c->kind), label(c->head, l2, sizeof l2));
  }
  nncc_free(user_cl);
}

/* cross_entropy(z, y) beside softmax(z) (the gradient's, in a training
 * graph), or nll(log_softmax(z), y): the loss joins the softmax kernel,
 * which has each row's max and sum anyway. */
static void attach_row_losses(Fuser *F) {
  Graph *g = F->g;
  char l1[96], l2[96];
  for (int k = 0; k < F->n_cls; k++) {
    const Cluster *c = &F->cls[k];
    if (c->count == 0 || c->kind != KERNEL_SOFTMAX) continue;
    const Node *anchor = c->head;
    const Node *key = anchor->op == OP_SOFTMAX ? anchor->in[0] : anchor;
    for (int i = key->id + 1; i < g->n_nodes; i++) {
      Node *l = g->nodes[i];
      if (F->cl[i] >= 0 || l->n_in != 2 || l->in[0] != key || !ir_kernel_row_loss(anchor, l)) continue;
      if (F->entries[i] != F->entries[anchor->id] || F->cls[k].count >= KERNEL_MAX_NODES) {
        char a[64], b[64];
        diag_remark(F->d, DIAG_REMARK_FUSION, l->loc, "%s: did not fuse %s into the softmax kernel of %s: %s%s%s%s",
                    g->name, label(l, l1, sizeof l1), label(anchor, l2, sizeof l2),
                    F->cls[k].count >= KERNEL_MAX_NODES ? "the kernel is full" : "it runs in ",
                    F->cls[k].count >= KERNEL_MAX_NODES ? "" : entries_str(F->entries[i], a, sizeof a),
                    F->cls[k].count >= KERNEL_MAX_NODES ? "" : ", the kernel in ",
                    F->cls[k].count >= KERNEL_MAX_NODES ? "" : entries_str(F->entries[anchor->id], b, sizeof b));
        continue;
      }
      bool uses_loss = false;  /* a member reading the loss: it is computed after the rows */
      for (int m = 0; m < c->count; m++)
        for (int j = 0; j < g->nodes[c->members[m]]->n_in; j++) uses_loss |= g->nodes[c->members[m]]->in[j] == l;
      int kl = new_cluster(F, l, KERNEL_LOOP);
      c = &F->cls[k];  /* new_cluster may move the array */
      if (uses_loss || reaches(F, k, kl) || reaches(F, kl, k)) {  /* the kernel uses the loss, or the other way */
        F->cls[kl].count = 0;
        F->cl[i] = -1;
        diag_remark(F->d, DIAG_REMARK_FUSION, l->loc, "%s: did not fuse %s into the softmax kernel of %s: a cycle",
                    g->name, label(l, l1, sizeof l1), label(anchor, l2, sizeof l2));
        continue;
      }
      merge(F, k, kl);
      diag_remark(F->d, DIAG_REMARK_FUSION, l->loc, "%s: fused %s into the softmax kernel of %s (its row max and sum)",
                  g->name, label(l, l1, sizeof l1), label(anchor, l2, sizeof l2));
      break;
    }
  }
}

/* The units in a topological order, depth first from the original order,
 * every kernel's members together; renumbers the graph and its kernels.
 * False, with the graph untouched, if the kernels form a cycle (the join
 * rules are meant to prevent it; pass_fuse then drops every kernel). */
static bool schedule(Fuser *F) {
  Graph *g = F->g;
  int n = g->n_nodes, n_units = n + F->n_cls;
  char *state = nncc_calloc((size_t)n_units + 1, 1);  /* 1 expanded, 2 placed */
  Node **order = nncc_malloc(sizeof(Node *) * (size_t)(n + 1));
  int placed = 0, n_kernels = 0;
  for (int i = 0; i < n; i++)
    if (op_info(g->nodes[i]->op)->flags & OPF_LEAF) {
      order[placed++] = g->nodes[i];
      state[i] = 2;
    }
#define UNIT(v) (F->cl[v] >= 0 && F->cls[F->cl[v]].count > 1 ? n + F->cl[v] : (v))
  int top = 0;
  int *deps = NULL, cap_deps = 0;
  for (int i = 0; i < n; i++) {
    if (state[UNIT(i)] == 2) continue;
    push(F, &top, UNIT(i));
    while (top > 0) {
      int u = F->stack[top - 1];
      if (state[u] == 2) {
        top--;
        continue;
      }
      if (state[u] == 1) {  /* its dependencies are placed: place it */
        top--;
        state[u] = 2;
        if (u < n) {
          order[placed++] = g->nodes[u];
          g->nodes[u]->kernel = 0;
        } else {
          n_kernels++;
          const Cluster *c = &F->cls[u - n];
          for (int mi = 0; mi < c->count; mi++) {
            order[placed++] = g->nodes[c->members[mi]];
            g->nodes[c->members[mi]]->kernel = n_kernels;
          }
        }
        continue;
      }
      state[u] = 1;
      int n_deps = 0;
      int n_members = u < n ? 1 : F->cls[u - n].count;
      for (int mi = 0; mi < n_members; mi++) {
        const Node *mn = g->nodes[u < n ? u : F->cls[u - n].members[mi]];
        for (int j = 0; j < mn->n_in; j++) {
          int d = UNIT(mn->in[j]->id);
          if (d == u || state[d] == 2) continue;
          deps = grow(deps, &cap_deps, n_deps + 1, sizeof *deps);
          deps[n_deps++] = d;
        }
      }
      for (int k = n_deps - 1; k >= 0; k--) {
        if (state[deps[k]] == 1) {  /* a unit on the path: a cycle */
          for (int v = 0; v < n; v++) g->nodes[v]->kernel = 0;
          nncc_free(deps);
          nncc_free(state);
          nncc_free(order);
          return false;
        }
        push(F, &top, deps[k]);
      }
    }
  }
#undef UNIT
  NNCC_ASSERT(placed == n);
  for (int i = 0; i < n; i++) {
    g->nodes[i] = order[i];
    order[i]->id = i;
  }
  g->n_kernels = n_kernels;
  nncc_free(deps);
  nncc_free(state);
  nncc_free(order);
  return true;
}

bool pass_fuse(Graph *g, Diag *d) {
  int n = g->n_nodes;
  Fuser F = {.g = g, .d = d};
  F.entries = ir_entry_masks(g);
  F.cl = nncc_malloc(sizeof(int) * (size_t)(n + 1));
  F.node_seen = nncc_calloc((size_t)n + 1, sizeof(int));
  F.cl_seen = nncc_calloc((size_t)n + 1, sizeof(int));
  for (int i = 0; i < n; i++) F.cl[i] = -1;
  for (int i = 0; i < n; i++) g->nodes[i]->kernel = 0;
  grow_kernels(&F);
  pull_producers(&F);
  attach_row_losses(&F);
  if (!schedule(&F)) {  /* never seen; a graph without kernels is always right */
    diag_remark(d, DIAG_REMARK_FUSION, g->loc, "%s: internal: the kernels formed a cycle; fusion dropped", g->name);
    for (int i = 0; i < n; i++) F.cl[i] = -1;
    schedule(&F);
  }
  nncc_free(F.entries);
  nncc_free(F.cl);
  nncc_free(F.node_seen);
  nncc_free(F.cl_seen);
  for (int k = 0; k < F.n_cls; k++) nncc_free(F.cls[k].members);
  nncc_free(F.cls);
  nncc_free(F.stack);
  return true;
}
