/* elab.c - elaboration: AST -> graph IR.
 *
 * Evaluates constants, inlines every def call (scoping the parameters it
 * declares by the name the call is bound to), unrolls `for` loops, and
 * builds one graph per model with every node's type inferred as it is
 * made (ir_infer). Numbers, functions, lists and types live only here as
 * compile-time Values. Errors are reported and elaboration goes on with a
 * poisoned value (DT_ERR) so one mistake gives one message. */
#include "frontend/elab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_CALL_DEPTH 256
#define MAX_PARAM_TENSORS 100000

/* ------------------------------------------------------------ hash map */

typedef struct MapEntry {
  const char *key;
  void *val;
} MapEntry;

struct Map {
  Arena *a;
  MapEntry *e;
  int cap, n;
};

Map *map_new(Arena *a) {
  Map *m = ARENA_NEW(a, Map);
  m->a = a;
  m->cap = 64;
  m->e = ARENA_ARRAY(a, MapEntry, m->cap);
  return m;
}

static uint64_t hash_str(const char *s) {
  uint64_t h = 1469598103934665603ull;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
  return h;
}

void *map_get(const Map *m, const char *key) {
  for (uint64_t i = hash_str(key) & (uint64_t)(m->cap - 1);; i = (i + 1) & (uint64_t)(m->cap - 1)) {
    if (!m->e[i].key) return NULL;
    if (!strcmp(m->e[i].key, key)) return m->e[i].val;
  }
}

void map_put(Map *m, const char *key, void *val) {
  if (2 * (m->n + 1) > m->cap) {
    MapEntry *old = m->e;
    int old_cap = m->cap;
    m->cap *= 2;
    m->e = ARENA_ARRAY(m->a, MapEntry, m->cap);
    m->n = 0;
    for (int i = 0; i < old_cap; i++)
      if (old[i].key) map_put(m, old[i].key, old[i].val);
  }
  for (uint64_t i = hash_str(key) & (uint64_t)(m->cap - 1);; i = (i + 1) & (uint64_t)(m->cap - 1)) {
    if (!m->e[i].key) {
      m->e[i].key = key;
      m->e[i].val = val;
      m->n++;
      return;
    }
    if (!strcmp(m->e[i].key, key)) {
      m->e[i].val = val;
      return;
    }
  }
}

/* -------------------------------------------------------------- values */

Value tensor_value(Node *n, SrcLoc loc) {
  Value v = {.kind = V_TENSOR, .node = n, .loc = loc};
  return v;
}

Value num_value(double f, SrcLoc loc) {
  Value v = {.kind = V_NUM, .f = f, .loc = loc};
  return v;
}

Value int_value(int64_t i, SrcLoc loc) {
  Value v = {.kind = V_NUM, .is_int = true, .i = i, .f = (double)i, .loc = loc};
  return v;
}

/* A poisoned tensor: a tensor value whose node is NULL. Every consumer
 * passes it on without a message. */
Value err_value(SrcLoc loc) {
  Value v = {.kind = V_TENSOR, .node = NULL, .loc = loc};
  return v;
}

bool is_err(const Value *v) {
  return v->kind == V_TENSOR && (!v->node || v->node->type.dtype == DT_ERR);
}

const char *value_kind_name(const Value *v) {
  switch (v->kind) {
  case V_NONE: return "no value";
  case V_NUM: return v->is_int ? "an integer" : "a number";
  case V_BOOL: return "a bool";
  case V_STR: return "a string";
  case V_TENSOR: return "a tensor";
  case V_FUNC: return "a function";
  case V_LIST: return "a list";
  case V_TUPLE: return "a tuple";
  case V_TYPE: return "a type";
  case V_SLICE: return "a slice";
  }
  return "?";
}

const char *value_desc(Elab *E, const Value *v) {
  char buf[TYPE_STR_MAX];
  switch (v->kind) {
  case V_TENSOR:
    if (!v->node) break;
    return arena_printf(E->a, "a tensor %s", type_str(&v->node->type, buf, sizeof buf));
  case V_FUNC: return arena_printf(E->a, "the function '%s'", v->def ? v->def->name : v->builtin->name);
  case V_NUM:
    if (v->is_int) return arena_printf(E->a, "the integer %lld", (long long)v->i);
    return arena_printf(E->a, "the number %s", fmt_num(v->f, buf, sizeof buf));
  case V_BOOL: return v->b ? "the bool true" : "the bool false";
  default: break;
  }
  return value_kind_name(v);
}

const char *param_list(Arena *a, const char *const *names, int n) {
  if (n == 0) return "no arguments";
  const char *s = names[0];
  for (int i = 1; i < n; i++) s = arena_printf(a, "%s, %s", s, names[i]);
  return s;
}

/* A number as Python prints it: 64.0 for an integral float, so that a
 * message about a float never shows what looks like an integer. */
const char *fmt_num(double f, char *buf, size_t size) {
  if (f == floor(f) && fabs(f) < 1e16) snprintf(buf, size, "%.1f", f);
  else snprintf(buf, size, "%g", f);
  return buf;
}

/* ------------------------------------------------------- error helpers */

/* Inside the prelude, locations are the user's call site: the prelude is
 * not the user's text, and an error there is about their arguments. */
SrcLoc elab_loc(Elab *E, SrcLoc loc) { return E->in_prelude ? E->override_loc : loc; }

/* Notes naming each user def call on the way to an error. */
static void call_notes(Elab *E) {
  for (Frame *f = E->frame; f && f->def; f = f->parent)
    if (f->user_code && f->call_loc.line)
      diag_note(E->d, f->call_loc, "in call to '%s' here", f->def->name);
}

void elab_error(Elab *E, SrcLoc loc, const char *fmt, ...) {
  if (E->abort) return;
  va_list ap;
  va_start(ap, fmt);
  diag_verror(E->d, elab_loc(E, loc), fmt, ap);
  va_end(ap);
  if (!E->in_prelude) call_notes(E);
}

Node *elab_finish(Elab *E, Node *n) {
  int before = E->d->n_errors;
  ir_infer(n, E->d);
  if (E->d->n_errors > before && !E->in_prelude) call_notes(E);
  if (E->opt->max_nodes > 0 && E->g->n_nodes > E->opt->max_nodes && !E->abort) {
    diag_error(E->d, n->loc, "the model expands to more than %d nodes (inlining and unrolling)",
               E->opt->max_nodes);
    E->abort = true;
  }
  return n;
}

Node *elab_node(Elab *E, Op op, Node **ins, int n_in, SrcLoc loc) {
  for (int i = 0; i < n_in; i++)
    if (!ins[i]) return NULL;
  Node *n = ir_node_new(E->g, op, ins, n_in, elab_loc(E, loc));
  return n;
}

/* A value of the wrong kind where a constant belongs. A def's argument
 * used as it is is named as the argument: inside the prelude the caret
 * is at the user's call, so "a dimension" alone would not say which one. */
static const char *const_what(Elab *E, const Value *v, const char *what) {
  if (!v->arg_of) return what;
  return arena_printf(E->a, "argument '%s' of '%s'", v->arg_of->params[v->arg_index].name,
                      v->arg_of->name);
}

bool const_int(Elab *E, const Value *v, int64_t *out, const char *what) {
  if (v->kind == V_NUM && v->is_int) {
    *out = v->i;
    return true;
  }
  char num[64];
  if (v->kind == V_NUM && !v->is_int)
    elab_error(E, v->loc, "%s must be an integer, got %s", const_what(E, v, what),
               fmt_num(v->f, num, sizeof num));
  else if (!is_err(v))
    elab_error(E, v->loc, "%s must be a constant integer, got %s", const_what(E, v, what),
               value_desc(E, v));
  return false;
}

bool const_num(Elab *E, const Value *v, double *out, const char *what) {
  if (v->kind == V_NUM) {
    *out = v->is_int ? (double)v->i : v->f;
    return true;
  }
  if (!is_err(v))
    elab_error(E, v->loc, "%s must be a constant number, got %s", const_what(E, v, what),
               value_desc(E, v));
  return false;
}

/* A tensor operand. A number literal becomes a scalar constant of dtype
 * `like` (the other operand's), which is how `x + 1` and `2 * h` work. */
Node *to_tensor(Elab *E, const Value *v, DType like, const char *what) {
  if (v->kind == V_TENSOR) return v->node;
  if (v->kind == V_NUM || v->kind == V_BOOL) {
    DType dt = like == DT_ERR ? DT_F32 : like;
    double x = v->kind == V_BOOL ? v->b : v->is_int ? (double)v->i : v->f;
    if (dt == DT_I32 && (v->kind != V_NUM || !v->is_int)) {
      elab_error(E, v->loc, "%g is not an integer and cannot be used as i32", x);
      return NULL;
    }
    if (dt == DT_BOOL) {
      elab_error(E, v->loc, "a number cannot be used as a bool tensor");
      return NULL;
    }
    return elab_finish(E, ir_const(E->g, dt, x, elab_loc(E, v->loc)));
  }
  elab_error(E, v->loc, "%s must be a tensor, got %s", what, value_desc(E, v));
  return NULL;
}

/* ------------------------------------------------------------- scopes */

/* Names of a frame: a list (source order, for "did you mean") and a hash
 * map for lookups, so 100,000 names stay linear. */
static Binding *frame_find(Frame *f, const char *name) {
  return f->index ? map_get(f->index, name) : NULL;
}

static void frame_add(Arena *a, Frame *f, Binding *b) {
  if (!f->index) f->index = map_new(a);
  b->next = f->vars;
  f->vars = b;
  map_put(f->index, b->name, b);
}

/* Binds name in the innermost frame; input/param/state names are fixed. */
static void bind(Elab *E, const char *name, SrcLoc loc, Value v, bool fixed) {
  Binding *b = frame_find(E->frame, name);
  if (b) {
    if (b->fixed || fixed) {
      elab_error(E, loc, "'%s' is already defined and cannot be re-bound", name);
      return;
    }
    b->val = v;
    return;
  }
  if (map_get(E->consts, name) && !E->frame->def) {
    elab_error(E, loc, "'%s' is a constant and cannot be re-bound", name);
    return;
  }
  b = ARENA_NEW(E->a, Binding);
  b->name = name;
  b->val = v;
  b->fixed = fixed;
  frame_add(E->a, E->frame, b);
}

static const Item *find_def(Elab *E, const char *name) {
  const Item *it = map_get(E->defs, name);
  return it ? it : map_get(E->prelude_defs, name);
}

static void unknown_name(Elab *E, const char *name, SrcLoc loc) {
  /* Python's spellings, which no distance to a known name would find */
  if (!strcmp(name, "True") || !strcmp(name, "False")) {
    elab_error(E, loc, "unknown name '%s'; did you mean '%s'?", name, name[0] == 'T' ? "true" : "false");
    return;
  }
  if (!strcmp(name, "None")) {
    elab_error(E, loc, "there is no 'None'; leave the argument out to get its default");
    return;
  }
  const char *cands[512];
  int n = 0;
  for (Binding *b = E->frame->vars; b && n < 200; b = b->next) cands[n++] = b->name;
  for (int i = 0; i < E->prog->n_items && n < 400; i++)
    if (E->prog->items[i]->kind == ITEM_CONST || E->prog->items[i]->kind == ITEM_DEF)
      cands[n++] = E->prog->items[i]->name;
  const char *prelude[] = {"identity", "dense", "conv", "batchnorm", "layernorm", "weightnorm_dense",
                           "embedding", "rnn_cell", "lstm_cell", "gru_cell"};
  for (size_t i = 0; i < sizeof prelude / sizeof prelude[0] && n < 440; i++)
    if (map_get(E->prelude_defs, prelude[i])) cands[n++] = prelude[i];
  const char **bn;
  int nb;
  builtin_names(&bn, &nb);
  for (int i = 0; i < nb && n < 510; i++) cands[n++] = bn[i];
  const char *close = diag_closest(name, cands, n);
  if (close) elab_error(E, loc, "unknown name '%s'; did you mean '%s'?", name, close);
  else elab_error(E, loc, "unknown name '%s'", name);
}

static Value lookup(Elab *E, const char *name, SrcLoc loc) {
  Binding *b = frame_find(E->frame, name);
  if (b) {
    Value v = b->val;
    v.loc = loc;
    return v;
  }
  Value *c = map_get(E->consts, name);
  if (c) {
    Value v = *c;
    v.loc = loc;
    return v;
  }
  const Item *def = find_def(E, name);
  if (def) return (Value){.kind = V_FUNC, .def = def, .loc = loc};
  const Builtin *bi = builtin_find(name);
  if (bi) return (Value){.kind = V_FUNC, .builtin = bi, .loc = loc};
  if (init_by_name(name) != INIT_COUNT) {
    elab_error(E, loc, "initializer '%s' can only initialize a param or state", name);
    return err_value(loc);
  }
  unknown_name(E, name, loc);
  return err_value(loc);
}

/* ---------------------------------------------------------- constants */

static bool num_is_int(const Value *v) { return v->kind == V_NUM && v->is_int; }
static double num_f(const Value *v) { return v->is_int ? (double)v->i : v->f; }

/* Constant arithmetic with Python's meaning; integers are int64 and an
 * overflow is an error. */
static Value const_binary(Elab *E, TokKind op, const Value *l, const Value *r, SrcLoc loc) {
  bool ints = num_is_int(l) && num_is_int(r);
  double a = num_f(l), b = num_f(r);
  int64_t x = l->i, y = r->i, z = 0;
  switch (op) {
  case TK_PLUS:
    if (ints) {
      if (__builtin_add_overflow(x, y, &z)) goto overflow;
      return int_value(z, loc);
    }
    return num_value(a + b, loc);
  case TK_MINUS:
    if (ints) {
      if (__builtin_sub_overflow(x, y, &z)) goto overflow;
      return int_value(z, loc);
    }
    return num_value(a - b, loc);
  case TK_STAR:
    if (ints) {
      if (__builtin_mul_overflow(x, y, &z)) goto overflow;
      return int_value(z, loc);
    }
    return num_value(a * b, loc);
  case TK_SLASH:
    if (b == 0) goto divzero;
    return num_value(a / b, loc);
  case TK_SLASHSLASH:
    if (b == 0) goto divzero;
    if (ints) {
      if (x == INT64_MIN && y == -1) goto overflow;
      z = x / y;
      if ((x % y != 0) && ((x < 0) != (y < 0))) z--;
      return int_value(z, loc);
    }
    return num_value(floor(a / b), loc);
  case TK_PERCENT:
    if (b == 0) goto divzero;
    if (ints) {
      if (y == -1) return int_value(0, loc);
      z = x % y;
      if (z != 0 && ((z < 0) != (y < 0))) z += y;
      return int_value(z, loc);
    }
    return num_value(a - b * floor(a / b), loc);
  case TK_STARSTAR:
    if (ints && y >= 0) {
      int64_t p = 1;
      for (int64_t k = 0; k < y; k++) {
        if (__builtin_mul_overflow(p, x, &p)) goto overflow;
        if (p == 0 || p == 1) break;
        if (p == -1) { p = (y - k - 1) % 2 ? -p : p; break; }
      }
      return int_value(p, loc);
    }
    if (a == 0 && b < 0) goto divzero;
    return num_value(pow(a, b), loc);
  case TK_LT: return (Value){.kind = V_BOOL, .b = a < b, .loc = loc};
  case TK_LE: return (Value){.kind = V_BOOL, .b = a <= b, .loc = loc};
  case TK_GT: return (Value){.kind = V_BOOL, .b = a > b, .loc = loc};
  case TK_GE: return (Value){.kind = V_BOOL, .b = a >= b, .loc = loc};
  case TK_EQ: return (Value){.kind = V_BOOL, .b = ints ? x == y : a == b, .loc = loc};
  case TK_NE: return (Value){.kind = V_BOOL, .b = ints ? x != y : a != b, .loc = loc};
  case TK_AT:
    elab_error(E, loc, "'@' needs tensors, got two numbers");
    return err_value(loc);
  default: break;
  }
  NNCC_ASSERT(0);
overflow:
  elab_error(E, loc, "integer overflow in constant expression");
  return err_value(loc);
divzero:
  elab_error(E, loc, "division by zero in constant expression");
  return err_value(loc);
}

/* ---------------------------------------------------------- expressions */

static Op binop_op(TokKind k) {
  switch (k) {
  case TK_PLUS: return OP_ADD;
  case TK_MINUS: return OP_SUB;
  case TK_STAR: return OP_MUL;
  case TK_SLASH: return OP_DIV;
  case TK_AT: return OP_MATMUL;
  case TK_LT: return OP_LT;
  case TK_LE: return OP_LE;
  case TK_GT: return OP_GT;
  case TK_GE: return OP_GE;
  case TK_EQ: return OP_EQ;
  case TK_NE: return OP_NE;
  default: return OP_COUNT;
  }
}

static Value elab_binary(Elab *E, const Ast *e) {
  Value l = elab_expr(E, e->lhs);
  Value r = elab_expr(E, e->rhs);
  if (E->abort || is_err(&l) || is_err(&r)) return err_value(e->loc);
  if (l.kind == V_NUM && r.kind == V_NUM) return const_binary(E, e->op, &l, &r, e->loc);
  if (e->op == TK_STARSTAR) {
    double p;
    if (l.kind != V_TENSOR) {
      elab_error(E, e->lhs->loc, "'**' needs a tensor or a number base, got %s", value_kind_name(&l));
      return err_value(e->loc);
    }
    if (r.kind != V_NUM) {
      elab_error(E, e->rhs->loc, "the exponent of '**' must be a constant number");
      return err_value(e->loc);
    }
    const_num(E, &r, &p, "exponent");
    Node *n = elab_node(E, OP_POW, &l.node, 1, e->loc);
    if (!n) return err_value(e->loc);
    n->attr[0].f = p;
    return tensor_value(elab_finish(E, n), e->loc);
  }
  if (e->op == TK_SLASHSLASH || e->op == TK_PERCENT) {
    elab_error(E, e->loc, "'%s' is only defined on constants", e->op == TK_PERCENT ? "%" : "//");
    return err_value(e->loc);
  }
  Op op = binop_op(e->op);
  NNCC_ASSERT(op != OP_COUNT);
  Node *n = make_binary(E, op, &l, &r, e->loc);
  return n ? tensor_value(n, e->loc) : err_value(e->loc);
}

/* x[i, a:b, :] -> slice (+ reshape dropping indexed dims). Negative
 * indices count from the end; anything out of range is an error. */
static Value elab_index(Elab *E, const Ast *e) {
  Value base = elab_expr(E, e->lhs);
  if (is_err(&base) || E->abort) return err_value(e->loc);
  if (base.kind == V_LIST || base.kind == V_TUPLE) {
    if (e->n_items != 1 || e->items[0]->kind == AST_SLICE) {
      elab_error(E, e->loc, "a %s takes one integer index", base.kind == V_LIST ? "list" : "tuple");
      return err_value(e->loc);
    }
    Value iv = elab_expr(E, e->items[0]);
    int64_t i;
    if (!const_int(E, &iv, &i, "index")) return err_value(e->loc);
    if (i < 0) i += base.n;
    if (i < 0 || i >= base.n) {
      elab_error(E, e->items[0]->loc, "index %lld is out of range for %d items", (long long)iv.i, base.n);
      return err_value(e->loc);
    }
    return base.items[i];
  }
  if (base.kind != V_TENSOR) {
    elab_error(E, e->loc, "cannot index %s", value_kind_name(&base));
    return err_value(e->loc);
  }
  const Type *t = &base.node->type;
  if (e->n_items > t->rank) {
    char ts[TYPE_STR_MAX];
    elab_error(E, e->loc, "too many indices (%d) for %s", e->n_items, type_str(t, ts, sizeof ts));
    return err_value(e->loc);
  }
  int64_t begin[IR_MAX_RANK], end[IR_MAX_RANK], step[IR_MAX_RANK], keep[IR_MAX_RANK];
  int n_keep = 0;
  bool sliced = false, indexed = false, ok = true;
  for (int k = 0; k < t->rank; k++) {
    int64_t dim = t->dim[k];
    begin[k] = 0, end[k] = dim, step[k] = 1;
    const Ast *s = k < e->n_items ? e->items[k] : NULL;
    if (!s) {
      keep[n_keep++] = dim;
      continue;
    }
    char ts[TYPE_STR_MAX];
    if (s->kind != AST_SLICE) {
      Value iv = elab_expr(E, s);
      int64_t i;
      if (!const_int(E, &iv, &i, "index")) { ok = false; continue; }
      int64_t j = i < 0 ? i + dim : i;
      if (j < 0 || j >= dim) {
        elab_error(E, s->loc, "index %lld is out of range for dimension %d of %s", (long long)i, k,
                   type_str(t, ts, sizeof ts));
        ok = false;
        continue;
      }
      begin[k] = j, end[k] = j + 1;
      indexed = sliced = true;
      continue;
    }
    int64_t lo = 0, hi = dim, st = 1;
    const Ast *parts[3] = {s->lhs, s->rhs, s->step};
    int64_t *dst[3] = {&lo, &hi, &st};
    for (int p = 0; p < 3; p++) {
      if (!parts[p]) continue;
      Value pv = elab_expr(E, parts[p]);
      if (!const_int(E, &pv, dst[p], "slice bound")) ok = false;
    }
    if (!ok) continue;
    int64_t lo_raw = lo, hi_raw = hi;
    if (lo < 0) lo += dim;
    if (hi < 0) hi += dim;
    if (st < 1) {
      elab_error(E, s->loc, "slice step must be >= 1, got %lld", (long long)st);
      ok = false;
      continue;
    }
    if (lo >= 0 && hi <= dim && lo == hi) {
      elab_error(E, s->loc, "slice %lld:%lld is empty for dimension %d of %s", (long long)lo_raw,
                 (long long)hi_raw, k, type_str(t, ts, sizeof ts));
      ok = false;
      continue;
    }
    if (lo < 0 || hi > dim || lo > hi) {
      elab_error(E, s->loc, "slice %lld:%lld is out of range for dimension %d of %s",
                 (long long)lo_raw, (long long)hi_raw, k, type_str(t, ts, sizeof ts));
      ok = false;
      continue;
    }
    int64_t len = (hi - lo - 1) / st + 1;  /* ceil without overflow (st up to 2^63) */
    if (len == 1) st = 1, hi = lo + 1;     /* one element: any step is the same slice */
    begin[k] = lo, end[k] = hi, step[k] = st;
    if (lo != 0 || hi != dim || st != 1) sliced = true;
    keep[n_keep++] = len;
  }
  if (!ok) return err_value(e->loc);
  Node *n = base.node;
  if (sliced) {
    n = elab_node(E, OP_SLICE, &n, 1, e->loc);
    ir_set_list(E->g, n, 0, begin, t->rank);
    ir_set_list(E->g, n, 1, end, t->rank);
    ir_set_list(E->g, n, 2, step, t->rank);
    elab_finish(E, n);
  }
  if (indexed) {
    n = elab_node(E, OP_RESHAPE, &n, 1, e->loc);
    ir_set_list(E->g, n, 0, keep, n_keep);
    elab_finish(E, n);
  }
  return tensor_value(n, e->loc);
}

/* f32[a, b]: dimensions are constant integers >= 1. */
static Value elab_type(Elab *E, const Ast *e) {
  Value v = {.kind = V_TYPE, .loc = e->loc};
  v.type.dtype = e->dtype;
  if (e->n_items > IR_MAX_RANK) {
    elab_error(E, e->loc, "rank %d is above the maximum of %d", e->n_items, IR_MAX_RANK);
    return err_value(e->loc);
  }
  bool ok = true;
  for (int i = 0; i < e->n_items; i++) {
    const Ast *d = e->items[i];
    if (d->kind == AST_ELLIPSIS) {
      elab_error(E, d->loc, "'...' is only allowed in a def parameter's shape pattern");
      ok = false;
      continue;
    }
    Value dv = elab_expr(E, d);
    if (is_err(&dv)) { ok = false; continue; }
    if (dv.kind != V_NUM) {
      elab_error(E, d->loc, "%s must be a constant integer, got %s", const_what(E, &dv, "a dimension"),
                 value_desc(E, &dv));
      ok = false;
    } else if (!dv.is_int) {
      char num[64];
      elab_error(E, d->loc, "a dimension must be an integer >= 1, got %s", fmt_num(dv.f, num, sizeof num));
      if (dv.f == floor(dv.f))
        diag_note(E->d, elab_loc(E, d->loc), "'/' always gives a float: use '//' for integer "
                  "division, and write integers without a decimal point");
      ok = false;
    } else if (dv.i < 1) {
      elab_error(E, d->loc, "a dimension must be an integer >= 1, got %lld", (long long)dv.i);
      ok = false;
    } else {
      v.type.dim[i] = dv.i;
    }
  }
  v.type.rank = e->n_items;
  if (!ok) return err_value(e->loc);
  if (type_numel(&v.type) > IR_MAX_ELEMS) {
    char ts[TYPE_STR_MAX];
    elab_error(E, e->loc, "tensor %s has more than 2^31 elements", type_str(&v.type, ts, sizeof ts));
    return err_value(e->loc);
  }
  return v;
}

Value elab_expr(Elab *E, const Ast *e) {
  if (E->abort) return err_value(e->loc);
  switch (e->kind) {
  case AST_INT: return int_value(e->ival, e->loc);
  case AST_FLOAT: return num_value(e->fval, e->loc);
  case AST_STRING: return (Value){.kind = V_STR, .s = e->str, .loc = e->loc};
  case AST_BOOL: return (Value){.kind = V_BOOL, .b = e->ival != 0, .loc = e->loc};
  case AST_NAME: return lookup(E, e->str, e->loc);
  case AST_BINARY: return elab_binary(E, e);
  case AST_UNARY: {
    Value v = elab_expr(E, e->lhs);
    if (is_err(&v)) return v;
    if (e->op == TK_PLUS) return v;
    if (v.kind == V_NUM) {
      if (v.is_int) {
        if (v.i == INT64_MIN) {
          elab_error(E, e->loc, "integer overflow in constant expression");
          return err_value(e->loc);
        }
        return int_value(-v.i, e->loc);
      }
      return num_value(-v.f, e->loc);
    }
    if (v.kind != V_TENSOR) {
      elab_error(E, e->loc, "cannot negate %s", value_kind_name(&v));
      return err_value(e->loc);
    }
    Node *n = elab_node(E, OP_NEG, &v.node, 1, e->loc);
    return tensor_value(elab_finish(E, n), e->loc);
  }
  case AST_CALL: {
    Value fn = elab_expr(E, e->lhs);
    if (is_err(&fn)) return err_value(e->loc);
    if (fn.kind != V_FUNC) {
      char ts[TYPE_STR_MAX];
      const char *what = fn.kind == V_TENSOR ? arena_printf(E->a, "a tensor (%s)",
                                                            type_str(&fn.node->type, ts, sizeof ts))
                                             : value_desc(E, &fn);
      if (e->lhs->kind == AST_NAME)
        elab_error(E, e->lhs->loc, "'%s' is %s, not a function", e->lhs->str, what);
      else
        elab_error(E, e->lhs->loc, "cannot call %s", what);
      return err_value(e->loc);
    }
    int n = e->n_items;
    Value *args = ARENA_ARRAY(E->a, Value, n ? n : 1);
    const char **kw = ARENA_ARRAY(E->a, const char *, n ? n : 1);
    for (int i = 0; i < n; i++) {
      const Ast *a = e->items[i];
      if (a->kind == AST_KWARG) {
        kw[i] = a->str;
        args[i] = elab_expr(E, a->lhs);
        args[i].loc = a->loc;  /* errors about a keyword argument point at its name */
      } else {
        args[i] = elab_expr(E, a);
      }
    }
    if (E->abort) return err_value(e->loc);
    /* a call is located at its callee's name: carets point at `dense(` */
    return call_value(E, &fn, e, args, kw, n, e->lhs->loc);
  }
  case AST_KWARG:
    elab_error(E, e->loc, "keyword argument outside a call");
    return err_value(e->loc);
  case AST_INDEX: return elab_index(E, e);
  case AST_SLICE: {
    /* only meaningful inside a list (csv columns [0:4]) */
    Value v = {.kind = V_SLICE, .loc = e->loc, .i = 0, .n = -1};
    if (e->lhs) {
      Value lo = elab_expr(E, e->lhs);
      if (!const_int(E, &lo, &v.i, "slice bound")) return err_value(e->loc);
    }
    if (e->rhs) {
      Value hi = elab_expr(E, e->rhs);
      int64_t h;
      if (!const_int(E, &hi, &h, "slice bound")) return err_value(e->loc);
      v.n = (int)(h > INT32_MAX ? INT32_MAX : h);
    }
    return v;
  }
  case AST_LIST: {
    Value v = {.kind = V_LIST, .loc = e->loc, .n = e->n_items};
    v.items = ARENA_ARRAY(E->a, Value, e->n_items ? e->n_items : 1);
    for (int i = 0; i < e->n_items; i++) {
      v.items[i] = elab_expr(E, e->items[i]);
      if (is_err(&v.items[i])) return err_value(e->loc);
    }
    return v;
  }
  case AST_TYPE: return elab_type(E, e);
  case AST_ELLIPSIS:
    elab_error(E, e->loc, "'...' is only allowed in a def parameter's shape pattern");
    return err_value(e->loc);
  }
  return err_value(e->loc);
}

/* ------------------------------------------------------------ def calls */

static void elab_body(Elab *E, Stmt **body, int n, Value *ret);
static bool has_return(Stmt **body, int n);

/* Matches a tensor argument against a def parameter's shape pattern,
 * binding pattern names as constants in the callee frame. */
static bool match_pattern(Elab *E, const Item *def, const DefParam *p, const Value *arg,
                          Frame *callee, SrcLoc call_loc) {
  const Ast *pat = p->pattern;
  if (arg->kind != V_TENSOR) {
    elab_error(E, call_loc, "argument '%s' of '%s' must be a tensor, got %s", p->name, def->name,
               value_desc(E, arg));
    return false;
  }
  const Type *t = &arg->node->type;
  char ts[TYPE_STR_MAX];
  if (pat->dtype != t->dtype) {
    elab_error(E, call_loc, "argument '%s' of '%s' must be %s, got %s", p->name, def->name,
               dtype_name(pat->dtype), type_str(t, ts, sizeof ts));
    return false;
  }
  if (!pat->has_dims) return true;
  int ell = -1;
  for (int i = 0; i < pat->n_items; i++)
    if (pat->items[i]->kind == AST_ELLIPSIS) ell = i;
  int fixed = pat->n_items - (ell >= 0);
  if (ell < 0 ? t->rank != fixed : t->rank < fixed) {
    elab_error(E, call_loc, "argument '%s' of '%s' has type %s, which does not match the pattern "
               "of rank %d%s", p->name, def->name, type_str(t, ts, sizeof ts), fixed,
               ell >= 0 ? " or more" : "");
    return false;
  }
  for (int i = 0; i < pat->n_items; i++) {
    const Ast *d = pat->items[i];
    if (d->kind == AST_ELLIPSIS) continue;
    int dim_index = ell >= 0 && i > ell ? t->rank - (pat->n_items - i) : i;
    int64_t dim = t->dim[dim_index];
    if (d->kind == AST_NAME && strcmp(d->str, "_")) {  /* binds, shadowing any global */
      Binding *b = frame_find(callee, d->str);
      if (!b) {
        Frame *saved = E->frame;
        E->frame = callee;
        bind(E, d->str, d->loc, int_value(dim, d->loc), true);
        E->frame = saved;
        continue;
      }
      if (b->val.kind == V_NUM && b->val.is_int && b->val.i == dim) continue;
      elab_error(E, call_loc, "argument '%s' of '%s' has type %s, but '%s' is already %lld",
                 p->name, def->name, type_str(t, ts, sizeof ts), d->str,
                 (long long)(b->val.kind == V_NUM ? b->val.i : 0));
      return false;
    }
    if (d->kind == AST_NAME) continue;  /* `_` matches any size */
    Frame *saved = E->frame;
    E->frame = callee;  /* patterns see earlier pattern names */
    Value dv = elab_expr(E, d);
    E->frame = saved;
    int64_t want;
    if (!const_int(E, &dv, &want, "a pattern dimension")) return false;
    if (want != dim) {
      elab_error(E, call_loc, "argument '%s' of '%s' has type %s, but the pattern needs %lld in "
                 "dimension %d", p->name, def->name, type_str(t, ts, sizeof ts), (long long)want,
                 dim_index);
      return false;
    }
  }
  return true;
}

static bool is_prelude_def(Elab *E, const Item *def) {
  return map_get(E->prelude_defs, def->name) == def;
}

static Value call_def(Elab *E, const Item *def, const Ast *call, Value *args, const char **kw,
                      int n_args, SrcLoc loc) {
  for (int i = 0; i < E->n_def_stack; i++)
    if (E->def_stack[i] == def) {
      elab_error(E, loc, "recursive call to '%s' (a def is inlined and cannot call itself)",
                 def->name);
      return err_value(loc);
    }
  if (E->depth >= MAX_CALL_DEPTH) {
    elab_error(E, loc, "calls nest too deeply (more than %d levels)", MAX_CALL_DEPTH);
    E->abort = true;
    return err_value(loc);
  }
  /* match arguments to parameters */
  Value *bound = ARENA_ARRAY(E->a, Value, def->n_params ? def->n_params : 1);
  bool *have = ARENA_ARRAY(E->a, bool, def->n_params ? def->n_params : 1);
  int pos = 0;
  bool ok = true, unknown_kw = false;
  for (int i = 0; i < n_args; i++) {
    int k = -1;
    if (kw[i]) {
      for (int j = 0; j < def->n_params; j++)
        if (!strcmp(def->params[j].name, kw[i])) k = j;
      if (k < 0) {
        const char *cands[64];
        int nc = 0;
        for (int j = 0; j < def->n_params && nc < 64; j++) cands[nc++] = def->params[j].name;
        const char *close = diag_closest(kw[i], cands, nc);
        const char *takes = param_list(E->a, cands, nc);
        if (close)
          elab_error(E, args[i].loc, "'%s' has no parameter named '%s'; did you mean '%s'? (it takes %s)",
                     def->name, kw[i], close, takes);
        else
          elab_error(E, args[i].loc, "'%s' has no parameter named '%s' (it takes %s)", def->name,
                     kw[i], takes);
        ok = false;
        unknown_kw = true;  /* the parameter it misspells would be reported missing */
        continue;
      }
    } else {
      k = pos++;
      if (k >= def->n_params) {
        elab_error(E, loc, "'%s' takes %d argument%s but %d were given", def->name,
                   def->n_params, def->n_params == 1 ? "" : "s", n_args);
        return err_value(loc);
      }
    }
    if (have[k]) {
      elab_error(E, args[i].loc, "argument '%s' of '%s' is given twice", def->params[k].name,
                 def->name);
      ok = false;
    }
    have[k] = true;
    bound[k] = args[i];
  }
  for (int j = 0; j < def->n_params; j++) {
    if (have[j]) continue;
    if (!def->params[j].default_value) {
      if (!unknown_kw)
        elab_error(E, loc, "missing argument '%s' in call to '%s'", def->params[j].name, def->name);
      ok = false;
      continue;
    }
    /* defaults see constants, defs and builtins, like the def body */
    Frame *saved = E->frame;
    Frame empty = {.def = def, .parent = saved};
    E->frame = &empty;
    bound[j] = elab_expr(E, def->params[j].default_value);
    E->frame = saved;
  }
  for (int j = 0; j < def->n_params; j++)
    if (have[j] && is_err(&bound[j])) ok = false;
  if (!ok) return err_value(loc);

  bool prelude = is_prelude_def(E, def);
  Frame *callee = ARENA_NEW(E->a, Frame);
  callee->def = def;
  callee->parent = E->frame;
  callee->call = call;
  callee->call_loc = elab_loc(E, loc);
  callee->scope_base = E->bound_name ? E->bound_name : def->name;
  callee->user_code = !prelude;
  for (int j = 0; j < def->n_params; j++) {
    const DefParam *p = &def->params[j];
    if (p->pattern && !match_pattern(E, def, p, &bound[j], callee, loc)) return err_value(loc);
    Binding *b = frame_find(callee, p->name);  /* a pattern name may take it first */
    if (b) {  /* a pattern name (fixed), or a duplicate parameter reported with the def */
      if (b->fixed)
        elab_error(E, p->loc, "parameter '%s' of '%s' is also a name in a shape pattern", p->name,
                   def->name);
      return err_value(loc);
    }
    b = ARENA_NEW(E->a, Binding);
    b->name = p->name;
    b->val = bound[j];
    b->val.arg_index = j;
    b->val.arg_of = def;
    b->fixed = false;
    frame_add(E->a, callee, b);
  }

  /* enter */
  bool saved_prelude = E->in_prelude;
  SrcLoc saved_override = E->override_loc;
  const char *saved_bound = E->bound_name;
  if (prelude && !E->in_prelude) {
    E->in_prelude = true;
    E->override_loc = loc;
  }
  E->frame = callee;
  E->depth++;
  if (E->n_def_stack == E->cap_def_stack) {  /* depth <= MAX_CALL_DEPTH */
    E->cap_def_stack = E->cap_def_stack ? 2 * E->cap_def_stack : 16;
    E->def_stack = arena_realloc(E->a, E->def_stack, sizeof(Item *) * (size_t)E->n_def_stack,
                                 sizeof(Item *) * (size_t)E->cap_def_stack);
  }
  E->def_stack[E->n_def_stack++] = def;
  Value ret = {.kind = V_NONE, .loc = loc};
  int errors = E->d->n_errors;
  elab_body(E, def->body, def->n_body, &ret);
  /* no value: the body stopped at an error, or the def has no return
   * (reported with the def) */
  if (ret.kind == V_NONE && (E->d->n_errors > errors || !has_return(def->body, def->n_body)))
    ret = err_value(loc);
  E->n_def_stack--;
  E->depth--;
  E->frame = callee->parent;
  E->in_prelude = saved_prelude;
  E->override_loc = saved_override;
  E->bound_name = saved_bound;
  ret.loc = loc;
  ret.arg_of = NULL;  /* `return units` is the callee's argument, not the caller's */
  return ret;
}

Value call_value(Elab *E, const Value *fn, const Ast *call, Value *args, const char **kw,
                 int n_args, SrcLoc loc) {
  for (int i = 0; i < n_args; i++)
    if (is_err(&args[i])) return err_value(loc);
  if (fn->def) return call_def(E, fn->def, call, args, kw, n_args, loc);
  return builtin_call(E, fn->builtin, args, kw, n_args, loc);
}

/* ---------------------------------------------------- params and states */

typedef struct ParamDecl {
  Node *node;
  const Stmt *stmt;
} ParamDecl;

/* The scope name of a frame: "" for the model, else the parent's scope,
 * a dot, and the bound name, with "_2", "_3" for later call sites that
 * would get the same name. A call site seen again (a `for` body) gets the
 * name it had, so its parameters are shared. */
static const char *frame_scope(Elab *E, Frame *f) {
  if (f->scope) return f->scope;
  if (!f->def) return f->scope = "";
  const char *parent = frame_scope(E, f->parent);
  const char *key = arena_printf(E->a, "%s|%p", parent, (const void *)f->call);
  const char *known = map_get(E->call_scopes, key);
  if (known) return f->scope = known;
  const char *base = *parent ? arena_printf(E->a, "%s.%s", parent, f->scope_base) : f->scope_base;
  const char *name = base;
  for (int k = 2; map_get(E->scope_uses, name); k++) name = arena_printf(E->a, "%s_%d", base, k);
  map_put(E->scope_uses, name, (void *)1);
  map_put(E->call_scopes, key, (void *)name);
  return f->scope = name;
}

/* param/state initializers: zeros() ones() constant(v) uniform(lo, hi)
 * normal(mean, std) xavier_*() he_*(). Arguments are constants. */
static bool elab_init(Elab *E, const Ast *e, Node *n) {
  if (!e) {
    n->init = INIT_ZEROS;
    return true;
  }
  const char *name = NULL;
  if (e->kind == AST_CALL && e->lhs->kind == AST_NAME) name = e->lhs->str;
  else if (e->kind == AST_NAME) name = e->str;
  InitKind k = name ? init_by_name(name) : INIT_COUNT;
  if (k == INIT_COUNT || k == INIT_NONE) {
    static const char *const inits[] = {"zeros", "ones", "constant", "uniform", "normal",
                                        "xavier_uniform", "xavier_normal", "he_uniform", "he_normal"};
    const char *close = name ? diag_closest(name, inits, 9) : NULL;
    if (close) elab_error(E, e->loc, "unknown initializer '%s'; did you mean '%s'?", name, close);
    else elab_error(E, e->loc, "expected an initializer such as he_uniform() or zeros()");
    return false;
  }
  int want = init_nargs(k), got = e->kind == AST_CALL ? e->n_items : 0;
  static const char *const kw_names[INIT_COUNT][2] = {
      [INIT_CONSTANT] = {"value", NULL}, [INIT_UNIFORM] = {"lo", "hi"}, [INIT_NORMAL] = {"mean", "std"}};
  double defaults[INIT_COUNT][2] = {[INIT_UNIFORM] = {-1, 1}, [INIT_NORMAL] = {0, 1}};
  bool have[2] = {false, false};
  n->init = k;
  n->init_arg[0] = defaults[k][0];
  n->init_arg[1] = defaults[k][1];
  if (got > want) {
    elab_error(E, e->loc, "'%s' takes %d argument%s but %d were given", name, want,
               want == 1 ? "" : "s", got);
    return false;
  }
  for (int i = 0; i < got; i++) {
    const Ast *a = e->items[i];
    int slot = i;
    if (a->kind == AST_KWARG) {
      slot = -1;
      for (int j = 0; j < want; j++)
        if (kw_names[k][j] && !strcmp(kw_names[k][j], a->str)) slot = j;
      if (slot < 0) {
        elab_error(E, a->loc, "'%s' has no parameter named '%s' (it takes %s)", name, a->str,
                   param_list(E->a, kw_names[k], want));
        return false;
      }
      a = a->lhs;
    }
    Value v = elab_expr(E, a);
    if (!const_num(E, &v, &n->init_arg[slot], "an initializer argument")) return false;
    have[slot] = true;
  }
  if (k == INIT_CONSTANT && !have[0]) {
    elab_error(E, e->loc, "missing argument 'value' in call to 'constant'");
    return false;
  }
  if (k == INIT_UNIFORM && n->init_arg[0] > n->init_arg[1]) {
    elab_error(E, e->loc, "uniform(lo, hi) needs lo <= hi, got %g > %g", n->init_arg[0], n->init_arg[1]);
    return false;
  }
  if (k == INIT_NORMAL && n->init_arg[1] < 0) {
    elab_error(E, e->loc, "normal(mean, std) needs std >= 0, got %g", n->init_arg[1]);
    return false;
  }
  return true;
}

static void elab_decl(Elab *E, const Stmt *s) {
  const char *local = s->names[0];
  SrcLoc loc = s->name_locs[0];
  Value tv = elab_expr(E, s->type);
  if (is_err(&tv)) {
    bind(E, local, loc, err_value(loc), true);
    return;
  }
  if (tv.kind != V_TYPE) {
    elab_error(E, s->type->loc, "expected a type such as f32[4, 8]");
    return;
  }
  unsigned role = s->kind == ST_INPUT ? ROLE_INPUT : s->kind == ST_PARAM ? ROLE_PARAM : ROLE_STATE;
  const char *word = s->kind == ST_INPUT ? "input" : s->kind == ST_PARAM ? "param" : "state";
  if (role != ROLE_INPUT && tv.type.dtype != DT_F32) {
    elab_error(E, s->type->loc, "%s '%s' must be f32, got %s", word, local, dtype_name(tv.type.dtype));
    return;
  }
  if (role == ROLE_INPUT && tv.type.dtype == DT_BOOL) {
    elab_error(E, s->type->loc, "input '%s' must be f32 or i32, got bool", local);
    return;
  }
  if (role == ROLE_INPUT && E->frame->def) {
    elab_error(E, s->loc, "'input' is only allowed in a model, not in a def");
    return;
  }
  const char *scope = frame_scope(E, E->frame);
  const char *full = *scope ? arena_printf(E->a, "%s.%s", scope, local) : local;
  ParamDecl *prev = map_get(E->params, full);
  if (prev && prev->stmt == s) {  /* the same declaration again: a for body */
    Binding *b = frame_find(E->frame, local);
    if (b && b->val.kind == V_TENSOR && b->val.node == prev->node) return;
    bind(E, local, loc, tensor_value(prev->node, loc), true);
    return;
  }
  if (prev) {
    elab_error(E, loc, "duplicate %s name '%s'", word, full);
    diag_note(E->d, prev->node->loc, "'%s' was first declared here", full);
    return;
  }
  if (role != ROLE_INPUT && ++E->n_param_tensors > MAX_PARAM_TENSORS) {
    if (E->n_param_tensors == MAX_PARAM_TENSORS + 1)
      elab_error(E, loc, "more than %d parameter and state tensors", MAX_PARAM_TENSORS);
    E->abort = true;
    return;
  }
  if (frame_find(E->frame, local)) {
    elab_error(E, loc, "'%s' is already defined and cannot be re-bound", local);
    return;
  }
  Node *n = ir_var(E->g, full, role, tv.type, elab_loc(E, loc));
  if (role != ROLE_INPUT && !elab_init(E, s->value, n)) n->init = INIT_ZEROS;
  elab_finish(E, n);
  ParamDecl *pd = ARENA_NEW(E->a, ParamDecl);
  pd->node = n;
  pd->stmt = s;
  map_put(E->params, full, pd);
  bind(E, local, loc, tensor_value(n, loc), true);
}

/* ------------------------------------------------------------ statements */

static void name_value(Elab *E, Value *v, const char *name) {
  if (v->kind != V_TENSOR || !v->node || v->node->op == OP_VAR) return;
  if (v->node->name) return;
  const char *scope = E->frame->def ? E->frame->scope : "";
  v->node->name = scope && *scope ? arena_printf(E->a, "%s.%s", scope, name) : name;
}

static Value elab_loop_bound(Elab *E, const Ast *e, int64_t *out) {
  Value v = elab_expr(E, e);
  if (is_err(&v)) return v;
  if (v.kind != V_NUM || !v.is_int) {
    /* a tensor here is usually a loop meant to run a data-dependent
     * number of times: say why it cannot */
    const char *why = v.kind == V_TENSOR ? " (loops are unrolled at compile time)" : "";
    if (e->kind == AST_NAME)
      elab_error(E, e->loc, "for bound '%s' is not a constant integer: it is %s%s", e->str,
                 value_desc(E, &v), why);
    else
      elab_error(E, e->loc, "a for bound must be a constant integer, got %s%s", value_desc(E, &v), why);
    return err_value(e->loc);
  }
  *out = v.i;
  return v;
}

static bool model_has_loss(Elab *E, Node **loss_out);

static void elab_stmt(Elab *E, const Stmt *s, Value *ret) {
  switch (s->kind) {
  case ST_INPUT:
  case ST_PARAM:
  case ST_STATE:
    elab_decl(E, s);
    return;
  case ST_BIND: {
    E->bound_name = s->names[0];
    Value v = elab_expr(E, s->value);
    E->bound_name = NULL;
    if (s->n_names == 1) {
      if (v.kind == V_NONE) {
        elab_error(E, s->value->loc, "this call returns no value");
        v = err_value(s->loc);
      }
      if (v.kind == V_TUPLE) {
        elab_error(E, s->name_locs[0], "cannot bind %d values to one name; write %d names", v.n, v.n);
        v = err_value(s->loc);
      }
      name_value(E, &v, s->names[0]);
      bind(E, s->names[0], s->name_locs[0], v, false);
      return;
    }
    if (is_err(&v)) {
      for (int i = 0; i < s->n_names; i++) bind(E, s->names[i], s->name_locs[i], v, false);
      return;
    }
    if (v.kind != V_TUPLE || v.n != s->n_names) {
      int got = v.kind == V_TUPLE ? v.n : 1;
      elab_error(E, s->name_locs[0], "cannot unpack %d value%s into %d names", got,
                 got == 1 ? "" : "s", s->n_names);
      for (int i = 0; i < s->n_names; i++) bind(E, s->names[i], s->name_locs[i], err_value(s->loc), false);
      return;
    }
    for (int i = 0; i < s->n_names; i++) {
      name_value(E, &v.items[i], s->names[i]);
      bind(E, s->names[i], s->name_locs[i], v.items[i], false);
    }
    return;
  }
  case ST_FOR: {
    int64_t lo = 0, hi = 0;
    Value a = elab_loop_bound(E, s->lo, &lo);
    Value b = elab_loop_bound(E, s->hi, &hi);
    if (is_err(&a) || is_err(&b)) return;
    for (int64_t t = lo; t < hi && !E->abort; t++) {
      /* unrolling is expansion too: an empty or poisoned body must not
       * spin for 2^32 iterations */
      if (++E->iterations > (int64_t)E->opt->max_nodes && E->opt->max_nodes > 0) {
        elab_error(E, s->loc, "for loops unroll more than %d iterations in total", E->opt->max_nodes);
        E->abort = true;
        return;
      }
      Binding *var = frame_find(E->frame, s->names[0]);
      if (var && var->fixed) {
        elab_error(E, s->name_locs[0], "'%s' is already defined and cannot be re-bound", s->names[0]);
        return;
      }
      bind(E, s->names[0], s->name_locs[0], int_value(t, s->name_locs[0]), false);
      int errors = E->d->n_errors;
      elab_body(E, s->body, s->n_body, ret);
      if (ret->kind != V_NONE) {
        elab_error(E, s->loc, "'return' inside a for loop");
        return;
      }
      if (E->d->n_errors > errors) return;  /* one report per loop, not per iteration */
    }
    return;
  }
  case ST_OUTPUT: {
    if (E->frame->def) {
      elab_error(E, s->loc, "'output' is only allowed in a model; a def uses 'return'");
      return;
    }
    for (int i = 0; i < s->n_exprs; i++) {
      Value v = elab_expr(E, s->exprs[i]);
      if (is_err(&v)) continue;
      if (v.kind != V_TENSOR) {
        elab_error(E, s->exprs[i]->loc, "an output must be a tensor, got %s", value_kind_name(&v));
        continue;
      }
      const char *oname = s->exprs[i]->kind == AST_NAME ? s->exprs[i]->str
                          : s->n_exprs == 1              ? "output"
                                                         : arena_printf(E->a, "output%d", i);
      for (int k = 0; k < E->g->n_nodes; k++) {
        Node *o = E->g->nodes[k];
        if ((o->roles & ROLE_OUTPUT) && !strcmp(o->out_name, oname)) {
          elab_error(E, s->exprs[i]->loc, "duplicate output name '%s'", oname);
          oname = NULL;
          break;
        }
      }
      if (!oname) continue;
      if (v.node->roles & ROLE_OUTPUT) {
        elab_error(E, s->exprs[i]->loc, "this value is already an output ('%s')", v.node->out_name);
        continue;
      }
      int n_out = 0;
      for (int k = 0; k < E->g->n_nodes; k++) n_out += (E->g->nodes[k]->roles & ROLE_OUTPUT) != 0;
      v.node->roles |= ROLE_OUTPUT;
      v.node->out_name = oname;
      v.node->out_index = n_out;
      if (!v.node->name) v.node->name = oname;
    }
    return;
  }
  case ST_LOSS: {
    if (E->frame->def) {
      elab_error(E, s->loc, "'loss' is only allowed in a model");
      return;
    }
    Node *prev;
    if (model_has_loss(E, &prev)) {
      elab_error(E, s->loc, "a model has exactly one loss");
      diag_note(E->d, prev->loc, "the first loss is here");
      return;
    }
    Value v = elab_expr(E, s->value);
    if (is_err(&v)) return;
    if (v.kind != V_TENSOR) {
      elab_error(E, s->value->loc, "the loss must be a tensor, got %s", value_kind_name(&v));
      return;
    }
    const Type *t = &v.node->type;
    char ts[TYPE_STR_MAX];
    if (t->dtype != DT_F32 || t->rank != 0) {
      if (t->dtype == DT_F32)
        elab_error(E, s->value->loc, "the loss must be a scalar f32[], got %s; reduce it with "
                   "mean(...) or sum(...)", type_str(t, ts, sizeof ts));
      else
        elab_error(E, s->value->loc, "the loss must be a scalar f32[], got %s",
                   type_str(t, ts, sizeof ts));
      return;
    }
    v.node->roles |= ROLE_LOSS;
    if (!v.node->name) v.node->name = "loss";
    return;
  }
  case ST_RETURN: {
    if (!E->frame->def) {
      elab_error(E, s->loc, "'return' is only allowed in a def");
      return;
    }
    if (s->n_exprs == 1) {
      *ret = elab_expr(E, s->exprs[0]);
      if (ret->kind == V_NONE) *ret = err_value(s->loc);
      return;
    }
    Value t = {.kind = V_TUPLE, .loc = s->loc, .n = s->n_exprs};
    t.items = ARENA_ARRAY(E->a, Value, s->n_exprs);
    for (int i = 0; i < s->n_exprs; i++) {
      t.items[i] = elab_expr(E, s->exprs[i]);
      if (is_err(&t.items[i])) {
        *ret = err_value(s->loc);
        return;
      }
    }
    *ret = t;
    return;
  }
  }
}

static void elab_body(Elab *E, Stmt **body, int n, Value *ret) {
  int errors = E->d->n_errors;
  for (int i = 0; i < n && !E->abort; i++) {
    /* inside the prelude every error is placed at the user's call, about
     * their arguments: the first says it, the rest would repeat it */
    if (E->in_prelude && E->d->n_errors > errors) return;
    /* statements executed, unrolled and inlined ones included: a loop of
     * constant work or of poisoned values makes no nodes but must end */
    if (++E->statements > 2 * (int64_t)E->opt->max_nodes && E->opt->max_nodes > 0) {
      elab_error(E, body[i]->loc, "the program expands to more than %d statements (inlining and unrolling)",
                 2 * E->opt->max_nodes);
      E->abort = true;
      return;
    }
    if (ret->kind != V_NONE) {
      elab_error(E, body[i]->loc, "statement after 'return' is never run");
      return;
    }
    elab_stmt(E, body[i], ret);
  }
}

static bool model_has_loss(Elab *E, Node **loss_out) {
  for (int i = 0; i < E->g->n_nodes; i++)
    if (E->g->nodes[i]->roles & ROLE_LOSS) {
      *loss_out = E->g->nodes[i];
      return true;
    }
  return false;
}

/* --------------------------------------------------------------- driver */

static void elab_consts(Elab *E) {
  E->consts = map_new(E->a);
  static Value pi_value;  /* the one predefined constant: sine(lo = -pi) */
  pi_value = num_value(3.14159265358979323846, (SrcLoc){0, 0});
  map_put(E->consts, "pi", &pi_value);
  Frame top = {0};
  E->frame = &top;
  /* a constant that computes a tensor builds nodes: give them a scratch
   * graph, then reject the result */
  E->g = ir_graph_new(E->a, "<constants>");
  E->g->max_nodes = E->opt->max_nodes;
  for (int i = 0; i < E->prog->n_items; i++) {
    const Item *it = E->prog->items[i];
    if (it->kind != ITEM_CONST) continue;
    if (map_get(E->consts, it->name) && strcmp(it->name, "pi")) {
      elab_error(E, it->name_loc, "constant '%s' is already defined", it->name);
      continue;
    }
    Value *v = ARENA_NEW(E->a, Value);
    ConstOverride *ov = NULL;
    for (int k = 0; k < E->opt->n_overrides; k++)
      if (!strcmp(E->opt->overrides[k].name, it->name)) ov = &E->opt->overrides[k];
    if (ov) {
      ov->used = true;
      *v = ov->is_int ? int_value(ov->ival, it->name_loc) : num_value(ov->value, it->name_loc);
    } else {
      *v = elab_expr(E, it->value);
      if (!is_err(v) && v->kind != V_NUM && v->kind != V_BOOL) {
        elab_error(E, it->value->loc, "a constant must be a number, got %s", value_kind_name(v));
        *v = err_value(it->name_loc);
      }
    }
    map_put(E->consts, it->name, v);  /* a poisoned constant keeps later uses quiet */
  }
  E->frame = NULL;
  E->g = NULL;
}

/* Is there a `return` in a body (a `for` body's is an error of its own)? */
static bool has_return(Stmt **body, int n) {
  for (int i = 0; i < n; i++)
    if (body[i]->kind == ST_RETURN ||
        (body[i]->kind == ST_FOR && has_return(body[i]->body, body[i]->n_body)))
      return true;
  return false;
}

static void collect_defs(Elab *E, const Program *p, Map *into, bool user) {
  for (int i = 0; i < p->n_items; i++) {
    const Item *it = p->items[i];
    if (it->kind != ITEM_DEF) continue;
    /* said at the def, once, rather than "returns no value" at each call */
    if (!has_return(it->body, it->n_body))
      diag_error(E->d, it->name_loc, "def '%s' has no return statement", it->name);
    const Item *prev = map_get(into, it->name);
    if (prev) {
      diag_error(E->d, it->name_loc, "def '%s' is already defined", it->name);
      diag_note(E->d, prev->name_loc, "the first definition is here");
      continue;
    }
    for (int a = 0; a < it->n_params; a++)
      for (int b = 0; b < a; b++)
        if (!strcmp(it->params[a].name, it->params[b].name)) {
          diag_error(E->d, it->params[a].loc, "duplicate parameter name '%s' in def '%s'",
                     it->params[a].name, it->name);
          diag_note(E->d, it->params[b].loc, "'%s' was first declared here", it->params[b].name);
        }
    if (user && builtin_find(it->name)) {
      diag_error(E->d, it->name_loc, "'%s' is a built-in op and cannot be redefined", it->name);
      continue;
    }
    if (user && map_get(E->prelude_defs, it->name))
      diag_warning(E->d, it->name_loc, "def '%s' shadows the prelude's '%s'", it->name, it->name);
    map_put(into, it->name, (void *)it);
  }
}

static Program *prelude_program(Arena *a) {
  static Arena prelude_arena;
  static Program *prog;
  if (prog) return prog;
  Diag d;
  diag_init(&d, "<prelude>", nncc_prelude_source, strlen(nncc_prelude_source), stderr);
  int n;
  Token *toks = lex(&prelude_arena, &d, &n);
  prog = parse_program(&prelude_arena, &d, toks, n);
  NNCC_ASSERT(d.n_errors == 0);
  /* cached for the process: an error in this compilation must not free
   * it (an error above, before prog is set, frees it and the next
   * compilation parses again) */
  arena_keep(&prelude_arena);
  (void)a;
  return prog;
}

Module *elaborate(Arena *a, Diag *d, const Program *p, const ElabOptions *opt) {
  Elab E = {0};
  ElabOptions defaults = {0};
  E.a = a;
  E.d = d;
  E.opt = opt ? opt : &defaults;
  E.prog = p;
  Module *m = ARENA_NEW(a, Module);
  m->arena = a;

  E.prelude_defs = map_new(a);
  E.defs = map_new(a);
  collect_defs(&E, prelude_program(a), E.prelude_defs, false);
  collect_defs(&E, p, E.defs, true);
  elab_consts(&E);

  Map *models = map_new(a);
  for (int i = 0; i < p->n_items && !E.abort; i++) {
    const Item *it = p->items[i];
    if (it->kind != ITEM_MODEL) continue;
    if (map_get(models, it->name)) {
      diag_error(d, it->name_loc, "model '%s' is already defined", it->name);
      continue;
    }
    map_put(models, it->name, (void *)it);
    E.g = ir_graph_new(a, it->name);
    E.g->loc = it->loc;
    E.g->max_nodes = E.opt->max_nodes;
    E.call_scopes = map_new(a);
    E.scope_uses = map_new(a);
    E.params = map_new(a);
    E.n_param_tensors = 0;
    Frame top = {.scope = ""};
    E.frame = &top;
    Value ret = {.kind = V_NONE};
    elab_body(&E, it->body, it->n_body, &ret);
    E.frame = NULL;
    ir_module_add(m, E.g);
  }
  for (int i = 0; i < p->n_items && !E.abort; i++)
    if (p->items[i]->kind == ITEM_TRAIN) elab_train(&E, p->items[i], m);
  return m;
}

Module *frontend_compile(Arena *a, Diag *d, const ElabOptions *opt, Program **program_out) {
  int n;
  Token *toks = lex(a, d, &n);
  Program *p = parse_program(a, d, toks, n);
  if (program_out) *program_out = p;
  if (d->n_errors) return NULL;
  ElabOptions o = opt ? *opt : (ElabOptions){0};
  if (!o.max_nodes) o.max_nodes = 1000000;
  return elaborate(a, d, p, &o);  /* o shares opt's overrides: `used` flags reach the caller */
}
