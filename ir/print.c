/* print.c - the text form of the graph IR: the printer, and the name table
 * it shares with the reader (read.c) and the verifier (verify.c).
 *
 * Every stage dump (--emit=ir, --print-after), golden test and bug report
 * is this text, and ir_read parses it back, so both must agree on every
 * detail: the round-trip test in tests/ir/test_print.c guards that. The
 * format is sketched in ir.h; in short, one line per node in graph order,
 *   %NAME = OP %a, %b ATTR=VALUE... : TYPE [init=KIND(ARGS)] [@LINE:COL]
 * then an `output` line, a `loss` line and a `grad` line.
 *
 * Value names. A node prints as %name, or %<id> when unnamed. Names may be
 * re-bound in the language (`h = relu(h)`), so a name already printed in
 * this graph gets the first free suffix ".1", ".2", ... The reader strips a
 * suffix only when it is exactly the one this rule would have chosen, so
 * print -> read -> print is the identity even for names that happen to end
 * in ".<digits>". */
#include "ir/ir_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ name map */

/* A string -> pointer hash map over caller-owned key bytes, plus for each
 * key the next suffix worth trying in ir_namemap_first_free. Internal to
 * ir/ (declared in ir_internal.h): it exists so
 * that printer and reader apply one suffix rule, and so that neither goes
 * quadratic on a million nodes that share one name. */
typedef struct NameEntry {
  const char *key;  /* NULL: empty slot */
  size_t len;
  uint64_t hash;
  void *val;
  uint64_t hint;    /* suffixes below this are known to be taken */
} NameEntry;

typedef struct IrNameMap {
  NameEntry *slots;
  size_t cap;       /* power of two */
  size_t count;
} IrNameMap;


static uint64_t name_hash(const char *s, size_t len) {
  uint64_t h = 1469598103934665603u;  /* FNV-1a */
  for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211u;
  return h;
}

IrNameMap *ir_namemap_new(void) {
  IrNameMap *m = nncc_calloc(1, sizeof *m);
  m->cap = 64;
  m->slots = nncc_calloc(m->cap, sizeof *m->slots);
  return m;
}

void ir_namemap_free(IrNameMap *m) {
  if (!m) return;
  nncc_free(m->slots);
  nncc_free(m);
}

static NameEntry *name_slot(IrNameMap *m, const char *key, size_t len, uint64_t h) {
  size_t i = (size_t)h & (m->cap - 1);
  for (;;) {
    NameEntry *e = &m->slots[i];
    if (!e->key || (e->hash == h && e->len == len && !memcmp(e->key, key, len))) return e;
    i = (i + 1) & (m->cap - 1);
  }
}

/* The value slot of key, or NULL when absent. */
void **ir_namemap_get(IrNameMap *m, const char *key, size_t len) {
  NameEntry *e = name_slot(m, key, len, name_hash(key, len));
  return e->key ? &e->val : NULL;
}

/* Adds key (its bytes must outlive the map); false if already there. */
bool ir_namemap_put(IrNameMap *m, const char *key, size_t len, void *val) {
  if (2 * (m->count + 1) > m->cap) {  /* keep the load under 1/2 */
    NameEntry *old = m->slots;
    size_t old_cap = m->cap;
    m->cap *= 2;
    m->slots = nncc_calloc(m->cap, sizeof *m->slots);
    for (size_t i = 0; i < old_cap; i++)
      if (old[i].key) *name_slot(m, old[i].key, old[i].len, old[i].hash) = old[i];
    nncc_free(old);
  }
  uint64_t h = name_hash(key, len);
  NameEntry *e = name_slot(m, key, len, h);
  if (e->key) return false;
  e->key = key;
  e->len = len;
  e->hash = h;
  e->val = val;
  e->hint = 1;
  m->count++;
  return true;
}

/* The smallest k >= 1 such that "base.k" is not in the map; base must be.
 * Keys are never removed, so a suffix found taken stays taken and the
 * search can resume where the last one stopped: linear time overall. */
uint64_t ir_namemap_first_free(IrNameMap *m, const char *base, size_t len) {
  NameEntry *e = name_slot(m, base, len, name_hash(base, len));
  NNCC_ASSERT(e->key);
  char *buf = nncc_malloc(len + 24);
  memcpy(buf, base, len);
  uint64_t k = e->hint;
  for (;; k++) {
    int n = snprintf(buf + len, 24, ".%llu", (unsigned long long)k);
    if (!ir_namemap_get(m, buf, len + (size_t)n)) break;
  }
  nncc_free(buf);
  e->hint = k;  /* e is still valid: lookups never move slots */
  return k;
}

/* ------------------------------------------------------------- helpers */

/* Characters the reader accepts in a %name; ':' is there for optimizer
 * state ("w1:exp_avg"). */
static bool value_name_char(int c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '_' || c == '.' || c == ':';
}

static bool word_char(int c) { return value_name_char(c) && c != ':'; }

/* A graph or output name as a reader word: [A-Za-z_][A-Za-z0-9_.]*. Other
 * characters become '_' so that the text stays readable, at the price of
 * the exact name (the frontend never makes such names). */
static void print_word(FILE *out, const char *s) {
  if (!s || !*s || (*s >= '0' && *s <= '9') || *s == '.') fputc('_', out);
  for (; s && *s; s++) fputc(word_char((unsigned char)*s) ? *s : '_', out);
}

/* The shortest of %.15g, %.16g, %.17g that reads back to the same bits:
 * 0.1 stays "0.1" and 1/255 gets all 17 digits it needs. */
static void format_double(char *buf, size_t size, double v) {
  if (isnan(v)) {
    snprintf(buf, size, "nan");
    return;
  }
  if (isinf(v)) {
    snprintf(buf, size, v > 0 ? "inf" : "-inf");
    return;
  }
  for (int prec = 15; prec <= 17; prec++) {
    snprintf(buf, size, "%.*g", prec, v);
    double back = strtod(buf, NULL);
    if (!memcmp(&back, &v, sizeof v)) return;
  }
}

static void print_attr(FILE *out, AttrKind kind, const Attr *a) {
  char buf[40];
  switch (kind) {
  case ATTR_INT: fprintf(out, "%lld", (long long)a->i); break;
  case ATTR_BOOL: fputs(a->i ? "true" : "false", out); break;
  case ATTR_FLOAT:
    format_double(buf, sizeof buf, a->f);
    fputs(buf, out);
    break;
  case ATTR_LIST:
    fputc('[', out);
    for (int i = 0; a->list && i < a->n; i++)
      fprintf(out, i ? ",%lld" : "%lld", (long long)a->list[i]);
    fputc(']', out);
    break;
  }
}

/* Print names of every node of g, computed once (index = node id). The
 * strings live in `scratch`. A corrupt graph still prints: the printer is
 * what one reaches for when the verifier complains. */
static char **print_names(const Graph *g, Arena *scratch) {
  char **names = ARENA_ARRAY(scratch, char *, g->n_nodes + 1);
  IrNameMap *used = ir_namemap_new();
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    char *base;
    if (n && n->name && *n->name) {
      base = arena_strdup(scratch, n->name);
      for (char *p = base; *p; p++)
        if (!value_name_char((unsigned char)*p)) *p = '_';
    } else {
      base = arena_printf(scratch, "%d", i);
    }
    size_t len = strlen(base);
    if (ir_namemap_get(used, base, len)) {
      uint64_t k = ir_namemap_first_free(used, base, len);
      base = arena_printf(scratch, "%s.%llu", base, (unsigned long long)k);
      len = strlen(base);
    }
    ir_namemap_put(used, base, len, NULL);
    names[i] = base;
  }
  ir_namemap_free(used);
  return names;
}

/* An operand reference; "%?" for one that is not a node of g. */
static void print_ref(FILE *out, const Graph *g, char **names, const Node *in) {
  if (in && in->id >= 0 && in->id < g->n_nodes && g->nodes[in->id] == in)
    fprintf(out, "%%%s", names[in->id]);
  else
    fputs("%?", out);
}

static const char *role_word(unsigned roles) {
  if (roles & ROLE_INPUT) return "input";
  if (roles & ROLE_PARAM) return "param";
  if (roles & ROLE_STATE) return "state";
  return "var";
}

static void print_node(FILE *out, const Graph *g, char **names, const Node *n, int i) {
  char tbuf[TYPE_STR_MAX];
  fprintf(out, n->kernel ? "    %%%s = " : "  %%%s = ", names[i]);
  if ((unsigned)n->op >= OP_COUNT) {
    fprintf(out, "?op%d\n", (int)n->op);
    return;
  }
  const OpInfo *info = op_info(n->op);
  fputs(n->op == OP_VAR ? role_word(n->roles) : info->name, out);
  for (int k = 0; n->in && k < n->n_in; k++) {
    fputs(k ? ", " : " ", out);
    print_ref(out, g, names, n->in[k]);
  }
  for (int k = 0; k < info->n_attrs; k++) {
    fprintf(out, " %s=", info->attr_name[k]);
    print_attr(out, info->attr_kind[k], &n->attr[k]);
  }
  fprintf(out, " : %s", type_str(&n->type, tbuf, sizeof tbuf));
  if (n->op == OP_VAR && n->init != INIT_NONE && (unsigned)n->init < INIT_COUNT) {
    fprintf(out, " init=%s(", init_name(n->init));
    for (int k = 0; k < init_nargs(n->init); k++) {
      char buf[40];
      format_double(buf, sizeof buf, n->init_arg[k]);
      fprintf(out, k ? ", %s" : "%s", buf);
    }
    fputc(')', out);
  }
  if (n->loc.line > 0) fprintf(out, " @%d:%d", n->loc.line, n->loc.col);
  fputc('\n', out);
}

/* `kernel kN KIND TYPE {` and, as a comment, the values that never reach
 * memory (used only inside the kernel). */
static void print_kernel_head(FILE *out, const Graph *g, char **names, const bool *stored, int first) {
  const Node *a = g->nodes[first];
  int end;
  KernelKind kind = ir_kernel_kind(g, first, &end);
  char tbuf[TYPE_STR_MAX];
  fprintf(out, "  kernel k%d %s %s {", a->kernel, kernel_kind_name(kind), type_str(&a->type, tbuf, sizeof tbuf));
  bool any = false;
  for (int i = first; i < end; i++) {
    if (stored[i]) continue;
    fprintf(out, any ? ", %%%s" : "  # in registers: %%%s", names[i]);
    any = true;
  }
  fputc('\n', out);
}

/* ------------------------------------------------------------- printer */

static int by_out_index(const void *pa, const void *pb) {
  const Node *a = *(const Node *const *)pa, *b = *(const Node *const *)pb;
  if (a->out_index != b->out_index) return a->out_index < b->out_index ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

void ir_print_graph(FILE *out, const Graph *g) {
  Arena scratch = {0};
  char **names = print_names(g, &scratch);
  fputs("graph ", out);
  print_word(out, g->name);
  if (g->loc.line > 0) fprintf(out, " @%d:%d", g->loc.line, g->loc.col);
  fputs(" {\n", out);
  /* a fused kernel (after the fuse pass) is a block around its nodes:
   *   kernel k3 matmul f32[64,128] {
   * with the nodes whose values stay in registers listed in a comment */
  bool *stored = g->n_kernels ? ir_kernel_stores(g) : NULL;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!n) {
      fprintf(out, "  # node %d is NULL\n", i);
      continue;
    }
    int k = n->kernel;
    if (k && (i == 0 || !g->nodes[i - 1] || g->nodes[i - 1]->kernel != k)) print_kernel_head(out, g, names, stored, i);
    print_node(out, g, names, n, i);
    if (k && (i + 1 == g->n_nodes || !g->nodes[i + 1] || g->nodes[i + 1]->kernel != k)) fputs("  }\n", out);
  }
  nncc_free(stored);

  /* outputs in the order of the `output` statement (out_index), which is
   * the order forward returns them in; ties (corrupt graphs) by id */
  int n_out = 0;
  for (int i = 0; i < g->n_nodes; i++) n_out += g->nodes[i] && (g->nodes[i]->roles & ROLE_OUTPUT);
  const Node **outs = n_out ? ARENA_ARRAY(&scratch, const Node *, n_out) : NULL;
  n_out = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i] && (g->nodes[i]->roles & ROLE_OUTPUT)) outs[n_out++] = g->nodes[i];
  if (n_out > 1) qsort(outs, (size_t)n_out, sizeof outs[0], by_out_index);
  bool any = false;
  for (int k = 0; k < n_out; k++) {
    const Node *n = outs[k];
    int i = n->id >= 0 && n->id < g->n_nodes && g->nodes[n->id] == n ? n->id : 0;
    fputs(any ? ", " : "  output ", out);
    any = true;
    if (n->out_name && *n->out_name) print_word(out, n->out_name);
    else if (n->name && *n->name) print_word(out, n->name);
    else fprintf(out, "out%d", i);
    fprintf(out, "=%%%s", names[i]);
  }
  if (any) fputc('\n', out);
  /* more than one loss is a verifier error; print them all regardless */
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i] && (g->nodes[i]->roles & ROLE_LOSS)) fprintf(out, "  loss %%%s\n", names[i]);
  /* grad NAME=%v: v is d loss / d var NAME (autodiff) */
  any = false;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!n || !(n->roles & ROLE_GRAD) || !n->grad_of || !n->grad_of->name) continue;
    fputs(any ? ", " : "  grad ", out);
    any = true;
    print_word(out, n->grad_of->name);
    fprintf(out, "=%%%s", names[i]);
  }
  if (any) fputc('\n', out);
  fputs("}\n", out);
  arena_free(&scratch);
}

void ir_print_module(FILE *out, const Module *m) {
  fputs("# nncc graph IR\n", out);
  for (int i = 0; i < m->n_graphs; i++) {
    if (i) fputc('\n', out);
    ir_print_graph(out, m->graphs[i]);
  }
}

/* ------------------------------------------------------------ graphviz */

/* --emit=dot: every graph as a Graphviz digraph, each fused kernel a
 * cluster; vars are ellipses, constants are folded into their users'
 * labels (a dot file of a thousand `const 0` boxes helps nobody). */
static void dot_graph(FILE *out, const Graph *g, int index) {
  Arena scratch = {0};
  char **names = print_names(g, &scratch);
  bool *stored = g->n_kernels ? ir_kernel_stores(g) : NULL;
  fprintf(out, "  subgraph cluster_g%d {\n    label=\"%s\";\n    fontsize=18;\n", index, g->name ? g->name : "?");
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!n || (unsigned)n->op >= OP_COUNT || n->op == OP_CONST) continue;
    int k = n->kernel;
    if (k && (i == 0 || g->nodes[i - 1]->kernel != k)) {
      KernelKind kind = ir_kernel_kind(g, i, NULL);
      char tbuf[TYPE_STR_MAX];
      fprintf(out, "    subgraph cluster_g%d_k%d {\n      label=\"k%d %s %s\";\n      style=filled;\n"
                   "      fillcolor=\"#eef3fb\";\n      color=\"#4a78c2\";\n",
              index, k, k, kernel_kind_name(kind), type_str(&n->type, tbuf, sizeof tbuf));
    }
    char tbuf[TYPE_STR_MAX];
    const char *what = n->op == OP_VAR ? role_word(n->roles) : op_info(n->op)->name;
    fprintf(out, "    %sg%d_n%d [label=\"%%%s = %s", k ? "  " : "", index, i, names[i], what);
    for (int j = 0; j < n->n_in; j++)
      if (n->in[j] && n->in[j]->op == OP_CONST) {
        char buf[40];
        format_double(buf, sizeof buf, n->in[j]->attr[0].f);
        fprintf(out, " %s", buf);
      }
    fprintf(out, "\\n%s\"", type_str(&n->type, tbuf, sizeof tbuf));
    if (n->op == OP_VAR) fputs(", shape=ellipse", out);
    else if (k && !stored[i]) fputs(", shape=box, style=\"rounded,dashed\"", out);  /* in registers */
    else fputs(", shape=box, style=rounded", out);
    if (n->roles & (ROLE_OUTPUT | ROLE_LOSS | ROLE_GRAD)) fputs(", penwidth=2", out);
    fputs("];\n", out);
    if (k && (i + 1 == g->n_nodes || g->nodes[i + 1]->kernel != k)) fputs("    }\n", out);
  }
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (!n || (unsigned)n->op >= OP_COUNT || n->op == OP_CONST) continue;
    for (int j = 0; j < n->n_in; j++) {
      const Node *x = n->in[j];
      if (!x || x->op == OP_CONST || x->id < 0 || x->id >= g->n_nodes) continue;
      fprintf(out, "    g%d_n%d -> g%d_n%d;\n", index, x->id, index, i);
    }
  }
  fputs("  }\n", out);
  nncc_free(stored);
  arena_free(&scratch);
}

void ir_print_dot(FILE *out, const Module *m) {
  fputs("// nncc graph IR as Graphviz: dot -Tsvg FILE.dot -o FILE.svg\n"
        "// boxes: ops (dashed: kept in registers by a fused kernel); ellipses: vars;\n"
        "// shaded clusters: fused kernels; bold: outputs, the loss, gradients\n"
        "digraph nncc {\n  node [fontname=\"monospace\", fontsize=10];\n  rankdir=TB;\n", out);
  for (int i = 0; i < m->n_graphs; i++) dot_graph(out, m->graphs[i], i);
  fputs("}\n", out);
}
