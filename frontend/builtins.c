/* builtins.c - the built-in ops of the language (SPEC §2.5): their
 * signatures, argument binding (positional and keyword, defaults, arity
 * errors) and lowering of each call to graph IR nodes.
 *
 * A signature is "name:kind[=default] ...", kinds:
 *   t tensor (a number is accepted and becomes a constant)
 *   n number   i integer   b bool   f function   y type (f32[..])
 *   a axes: none, an integer or a list of integers
 *   l integer list (or none)   p integer or [int, int] pair (or none)
 *   L list of tensors */
#include "frontend/elab.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum {
  B_UNARY,  /* elementwise ops with one tensor and no attributes */
  B_UNARY_ATTRS,  /* elementwise, one tensor; the numbers after it are the op's float attributes */
  B_MAXMIN, B_WHERE, B_REDUCE, B_ARGMAX, B_SOFTMAX,
  B_RESHAPE, B_TRANSPOSE, B_FLATTEN, B_CONCAT, B_STACK, B_ONE_HOT, B_GATHER,
  B_FILL, B_CONV2D, B_POOL, B_BATCH_NORM, B_LAYER_NORM, B_DROPOUT, B_LOSS2,
  B_HUBER,
};

typedef struct BuiltinDef {
  Builtin b;
  Op op;
} BuiltinDef;

#define U(name, op) {{name, "x:t", B_UNARY}, op}
static const BuiltinDef builtins[] = {
    U("exp", OP_EXP), U("log", OP_LOG), U("sqrt", OP_SQRT), U("rsqrt", OP_RSQRT),
    U("abs", OP_ABS), U("neg", OP_NEG), U("square", OP_SQUARE), U("relu", OP_RELU),
    U("sigmoid", OP_SIGMOID), U("tanh", OP_TANH), U("gelu", OP_GELU),
    U("softplus", OP_SOFTPLUS), U("sin", OP_SIN), U("cos", OP_COS),
    U("selu", OP_SELU), U("silu", OP_SILU),
    U("stop_gradient", OP_STOP_GRADIENT),
    {{"leaky_relu", "x:t slope:n=0.01", B_UNARY_ATTRS}, OP_LEAKY_RELU},
    {{"elu", "x:t alpha:n=1", B_UNARY_ATTRS}, OP_ELU},
    {{"hardtanh", "x:t min_val:n=-1 max_val:n=1", B_UNARY_ATTRS}, OP_HARDTANH},
    {{"maximum", "a:t b:t", B_MAXMIN}, OP_MAXIMUM},
    {{"minimum", "a:t b:t", B_MAXMIN}, OP_MINIMUM},
    {{"where", "cond:t a:t b:t", B_WHERE}, OP_WHERE},
    {{"clamp", "x:t lo:n hi:n", B_UNARY_ATTRS}, OP_CLAMP},
    {{"sum", "x:t axis:a=none keepdims:b=false", B_REDUCE}, OP_SUM},
    {{"mean", "x:t axis:a=none keepdims:b=false", B_REDUCE}, OP_MEAN},
    {{"max", "x:t axis:a=none keepdims:b=false", B_REDUCE}, OP_MAX},
    {{"min", "x:t axis:a=none keepdims:b=false", B_REDUCE}, OP_MIN},
    {{"logsumexp", "x:t axis:a=none keepdims:b=false", B_REDUCE}, OP_LOGSUMEXP},
    {{"argmax", "x:t axis:i=-1 keepdims:b=false", B_ARGMAX}, OP_ARGMAX},
    {{"softmax", "x:t axis:i=-1", B_SOFTMAX}, OP_SOFTMAX},
    {{"log_softmax", "x:t axis:i=-1", B_SOFTMAX}, OP_LOG_SOFTMAX},
    {{"reshape", "x:t shape:l", B_RESHAPE}, OP_RESHAPE},
    {{"transpose", "x:t perm:l=none", B_TRANSPOSE}, OP_TRANSPOSE},
    {{"flatten", "x:t", B_FLATTEN}, OP_RESHAPE},
    {{"concat", "xs:L axis:i=0", B_CONCAT}, OP_CONCAT},
    {{"stack", "xs:L axis:i=0", B_STACK}, OP_CONCAT},
    {{"one_hot", "i:t n:i", B_ONE_HOT}, OP_ONE_HOT},
    {{"gather", "table:t i:t", B_GATHER}, OP_GATHER},
    {{"zeros", "type:y", B_FILL}, OP_CONST},
    {{"ones", "type:y", B_FILL}, OP_CONST},
    {{"conv2d", "x:t w:t stride:p=1 pad:p=0", B_CONV2D}, OP_CONV2D},
    {{"max_pool2d", "x:t k:p stride:p=none", B_POOL}, OP_MAX_POOL2D},
    {{"avg_pool2d", "x:t k:p stride:p=none", B_POOL}, OP_AVG_POOL2D},
    {{"batch_norm", "x:t gamma:t beta:t mean:t var:t momentum:n=0.1 eps:n=1e-5", B_BATCH_NORM},
     OP_BATCH_NORM},
    {{"layer_norm", "x:t gamma:t beta:t eps:n=1e-5", B_LAYER_NORM}, OP_LAYER_NORM},
    {{"dropout", "x:t p:n=0.5", B_DROPOUT}, OP_DROPOUT},
    {{"mse", "p:t t:t", B_LOSS2}, OP_MSE},
    {{"huber", "p:t t:t delta:n=1", B_HUBER}, OP_HUBER},
    {{"cross_entropy", "logits:t labels:t", B_LOSS2}, OP_CROSS_ENTROPY},
    {{"binary_cross_entropy", "logits:t t:t", B_LOSS2}, OP_BCE},
    {{"nll", "logp:t labels:t", B_LOSS2}, OP_NLL},
};
#undef U
#define N_BUILTINS ((int)(sizeof builtins / sizeof builtins[0]))

const Builtin *builtin_find(const char *name) {
  for (int i = 0; i < N_BUILTINS; i++)
    if (!strcmp(builtins[i].b.name, name)) return &builtins[i].b;
  return NULL;
}

void builtin_names(const char ***names, int *n) {
  static const char *list[N_BUILTINS];
  for (int i = 0; i < N_BUILTINS; i++) list[i] = builtins[i].b.name;
  *names = list;
  *n = N_BUILTINS;
}

static Op builtin_op(const Builtin *b) { return ((const BuiltinDef *)b)->op; }

/* ------------------------------------------------------ argument binding */

#define MAX_SIG 8

typedef struct Sig {
  int n;
  char name[MAX_SIG][16];
  char kind[MAX_SIG];
  const char *dflt[MAX_SIG];   /* NULL: required */
  int dflt_len[MAX_SIG];
} Sig;

static void parse_sig(const char *s, Sig *sig) {
  sig->n = 0;
  while (*s) {
    while (*s == ' ') s++;
    if (!*s) break;
    int k = sig->n++;
    NNCC_ASSERT(k < MAX_SIG);
    int len = 0;
    while (*s != ':') sig->name[k][len++] = *s++;
    sig->name[k][len] = 0;
    sig->kind[k] = s[1];
    s += 2;
    sig->dflt[k] = NULL;
    if (*s == '=') {
      sig->dflt[k] = ++s;
      while (*s && *s != ' ') s++;
      sig->dflt_len[k] = (int)(s - sig->dflt[k]);
    }
  }
}

/* A default from the signature text: none, true/false, or a number. */
static Value default_value(const char *text, int len, SrcLoc loc) {
  if (len == 4 && !strncmp(text, "none", 4)) return (Value){.kind = V_NONE, .loc = loc};
  if (len == 4 && !strncmp(text, "true", 4)) return (Value){.kind = V_BOOL, .b = true, .loc = loc};
  if (len == 5 && !strncmp(text, "false", 5)) return (Value){.kind = V_BOOL, .b = false, .loc = loc};
  char buf[32];
  snprintf(buf, sizeof buf, "%.*s", len, text);
  if (!strpbrk(buf, ".e")) return int_value(strtoll(buf, NULL, 10), loc);
  return num_value(strtod(buf, NULL), loc);
}

static bool bind_args(Elab *E, const Builtin *b, const Sig *sig, Value *args, const char **kw,
                      int n_args, SrcLoc loc, Value *out) {
  bool have[MAX_SIG] = {false};
  int pos = 0;
  for (int i = 0; i < n_args; i++) {
    int k = -1;
    if (kw[i]) {
      for (int j = 0; j < sig->n; j++)
        if (!strcmp(sig->name[j], kw[i])) k = j;
      if (k < 0) {
        const char *cands[MAX_SIG];
        for (int j = 0; j < sig->n; j++) cands[j] = sig->name[j];
        const char *close = diag_closest(kw[i], cands, sig->n);
        const char *takes = param_list(E->a, cands, sig->n);
        if (close)
          elab_error(E, args[i].loc, "'%s' has no parameter named '%s'; did you mean '%s'? (it takes %s)",
                     b->name, kw[i], close, takes);
        else
          elab_error(E, args[i].loc, "'%s' has no parameter named '%s' (it takes %s)", b->name,
                     kw[i], takes);
        return false;
      }
    } else {
      k = pos++;
      if (k >= sig->n) {
        elab_error(E, loc, "'%s' takes %d argument%s but %d were given", b->name, sig->n,
                   sig->n == 1 ? "" : "s", n_args);
        return false;
      }
    }
    if (have[k]) {
      elab_error(E, args[i].loc, "argument '%s' of '%s' is given twice", sig->name[k], b->name);
      return false;
    }
    have[k] = true;
    out[k] = args[i];
  }
  for (int j = 0; j < sig->n; j++) {
    if (have[j]) continue;
    if (!sig->dflt[j]) {
      elab_error(E, loc, "missing argument '%s' in call to '%s'", sig->name[j], b->name);
      return false;
    }
    out[j] = default_value(sig->dflt[j], sig->dflt_len[j], loc);
  }
  /* kind checks that need no op knowledge */
  for (int j = 0; j < sig->n; j++) {
    Value *v = &out[j];
    char what[64];
    snprintf(what, sizeof what, "argument '%s' of '%s'", sig->name[j], b->name);
    switch (sig->kind[j]) {
    case 't':
      if (v->kind != V_TENSOR && v->kind != V_NUM && v->kind != V_BOOL) {
        elab_error(E, v->loc, "%s must be a tensor, got %s", what, value_desc(E, v));
        return false;
      }
      break;
    case 'n': {
      double f;
      if (!const_num(E, v, &f, what)) return false;
      break;
    }
    case 'i': {
      int64_t i;
      if (!const_int(E, v, &i, what)) return false;
      break;
    }
    case 'b':
      if (v->kind != V_BOOL) {
        elab_error(E, v->loc, "%s must be true or false, got %s", what, value_desc(E, v));
        return false;
      }
      break;
    case 'y':
      if (v->kind != V_TYPE) {
        elab_error(E, v->loc, "%s must be a type such as f32[4, 8], got %s", what, value_desc(E, v));
        return false;
      }
      break;
    case 'L':
      if (v->kind != V_LIST || v->n == 0) {
        elab_error(E, v->loc, "%s must be a non-empty list of tensors, got %s", what,
                   value_desc(E, v));
        return false;
      }
      for (int k = 0; k < v->n; k++)
        if (v->items[k].kind != V_TENSOR) {
          elab_error(E, v->items[k].loc, "%s must hold tensors, got %s", what,
                     value_desc(E, &v->items[k]));
          return false;
        }
      break;
    default:
      break;
    }
  }
  return true;
}

/* An integer list argument ('l', 'a' lists, 'p' pairs). */
static bool int_list(Elab *E, const Value *v, int64_t *out, int *n, int max, const char *what) {
  if (v->kind == V_NUM) {
    if (!const_int(E, v, &out[0], what)) return false;
    *n = 1;
    return true;
  }
  if (v->kind != V_LIST) {
    elab_error(E, v->loc, "%s must be an integer or a list of integers, got %s", what,
               value_kind_name(v));
    return false;
  }
  if (v->n > max) {
    elab_error(E, v->loc, "%s has %d entries, more than %d", what, v->n, max);
    return false;
  }
  for (int i = 0; i < v->n; i++)
    if (!const_int(E, &v->items[i], &out[i], what)) return false;
  *n = v->n;
  return true;
}

static bool pair_arg(Elab *E, const Value *v, int64_t out[2], const char *what) {
  int n;
  if (!int_list(E, v, out, &n, 2, what)) return false;
  if (n == 1) out[1] = out[0];
  else if (n != 2) {
    elab_error(E, v->loc, "%s must be an integer or a pair [h, w]", what);
    return false;
  }
  return true;
}

/* --------------------------------------------------------------- lowering */

static DType dtype_of(const Value *v) { return v->kind == V_TENSOR ? v->node->type.dtype : DT_ERR; }

static Value finish(Elab *E, Node *n, SrcLoc loc) {
  if (!n) return err_value(loc);
  return tensor_value(elab_finish(E, n), loc);
}

Node *make_binary(Elab *E, Op op, Value *l, Value *r, SrcLoc loc) {
  DType like = dtype_of(l) != DT_ERR ? dtype_of(l) : dtype_of(r);
  Node *ins[2] = {to_tensor(E, l, like, "an operand"), to_tensor(E, r, like, "an operand")};
  if (!ins[0] || !ins[1]) return NULL;
  Node *n = elab_node(E, op, ins, 2, loc);
  return n ? elab_finish(E, n) : NULL;
}

/* sum/mean of a bool tensor count it as 0/1. */
static Node *as_f32(Elab *E, Node *x, SrcLoc loc) {
  if (!x || x->type.dtype != DT_BOOL) return x;
  Node *n = elab_node(E, OP_CAST, &x, 1, loc);
  n->type.dtype = DT_F32;
  return elab_finish(E, n);
}

Value builtin_call(Elab *E, const Builtin *b, Value *args, const char **kw, int n_args,
                   SrcLoc loc) {
  Sig sig;
  Value a[MAX_SIG];
  parse_sig(b->sig, &sig);
  if (!bind_args(E, b, &sig, args, kw, n_args, loc, a)) return err_value(loc);
  Op op = builtin_op(b);
  Graph *g = E->g;
  char what[64];
  switch (b->id) {
  case B_UNARY:
  {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    return finish(E, x ? elab_node(E, op, &x, 1, loc) : NULL, loc);
  }
  case B_UNARY_ATTRS: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    Node *n = x ? elab_node(E, op, &x, 1, loc) : NULL;
    if (!n) return err_value(loc);
    for (int k = 1; k < sig.n; k++) const_num(E, &a[k], &n->attr[k - 1].f, sig.name[k]);
    return finish(E, n, loc);
  }
  case B_MAXMIN:
    return finish(E, make_binary(E, op, &a[0], &a[1], loc), loc);
  case B_WHERE: {
    DType like = dtype_of(&a[1]) != DT_ERR ? dtype_of(&a[1]) : dtype_of(&a[2]);
    Node *ins[3] = {to_tensor(E, &a[0], DT_BOOL, "the condition"), to_tensor(E, &a[1], like, "a"),
                    to_tensor(E, &a[2], like, "b")};
    if (!ins[0] || !ins[1] || !ins[2]) return err_value(loc);
    return finish(E, elab_node(E, op, ins, 3, loc), loc);
  }
  case B_REDUCE: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    if ((op == OP_SUM || op == OP_MEAN)) x = as_f32(E, x, loc);
    if (!x) return err_value(loc);
    int64_t axes[IR_MAX_RANK];
    int n_axes = 0;
    if (a[1].kind == V_NONE) {
      for (int i = 0; i < x->type.rank; i++) axes[n_axes++] = i;
    } else {
      snprintf(what, sizeof what, "axis of '%s'", b->name);
      if (!int_list(E, &a[1], axes, &n_axes, IR_MAX_RANK, what)) return err_value(loc);
    }
    Node *n = elab_node(E, op, &x, 1, loc);
    ir_set_list(g, n, 0, axes, n_axes);
    n->attr[1].i = a[2].b;
    return finish(E, n, loc);
  }
  case B_ARGMAX: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    Node *n = x ? elab_node(E, op, &x, 1, loc) : NULL;
    if (!n) return err_value(loc);
    n->attr[0].i = a[1].i;
    n->attr[1].i = a[2].b;
    return finish(E, n, loc);
  }
  case B_SOFTMAX: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    Node *n = x ? elab_node(E, op, &x, 1, loc) : NULL;
    if (!n) return err_value(loc);
    n->attr[0].i = a[1].i;
    return finish(E, n, loc);
  }
  case B_RESHAPE: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    if (!x) return err_value(loc);
    int64_t shape[IR_MAX_RANK];
    int n_shape;
    if (!int_list(E, &a[1], shape, &n_shape, IR_MAX_RANK, "the shape of 'reshape'"))
      return err_value(loc);
    /* one -1 takes what the others leave */
    int infer_at = -1;
    int64_t known = 1;
    for (int i = 0; i < n_shape; i++) {
      if (shape[i] == -1 && infer_at < 0) { infer_at = i; continue; }
      if (shape[i] < 1) {
        elab_error(E, a[1].loc, "reshape dimensions must be >= 1 (or one -1), got %lld",
                   (long long)shape[i]);
        return err_value(loc);
      }
      if (known > IR_MAX_ELEMS || shape[i] > IR_MAX_ELEMS) {  /* too big: infer says so */
        known = IR_MAX_ELEMS + 1;
        break;
      }
      known *= shape[i];
    }
    if (infer_at >= 0) {
      int64_t total = type_numel(&x->type);
      char ts[TYPE_STR_MAX];
      if (known == 0 || total % known) {
        elab_error(E, a[1].loc, "cannot reshape %s (%lld elements) with a -1 dimension: %lld is "
                   "not a multiple of %lld", type_str(&x->type, ts, sizeof ts), (long long)total,
                   (long long)total, (long long)known);
        return err_value(loc);
      }
      shape[infer_at] = total / known;
    }
    Node *n = elab_node(E, op, &x, 1, loc);
    ir_set_list(g, n, 0, shape, n_shape);
    return finish(E, n, loc);
  }
  case B_TRANSPOSE: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    if (!x) return err_value(loc);
    int64_t perm[IR_MAX_RANK];
    int n_perm = 0;
    if (a[1].kind == V_NONE) {
      for (int i = 0; i < x->type.rank; i++) perm[n_perm++] = x->type.rank - 1 - i;
    } else if (!int_list(E, &a[1], perm, &n_perm, IR_MAX_RANK, "the permutation of 'transpose'")) {
      return err_value(loc);
    }
    Node *n = elab_node(E, op, &x, 1, loc);
    ir_set_list(g, n, 0, perm, n_perm);
    return finish(E, n, loc);
  }
  case B_FLATTEN: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    if (!x) return err_value(loc);
    if (x->type.rank < 2) {  /* as torch.flatten(x, 1), which rejects rank 1 */
      char ts[TYPE_STR_MAX];
      elab_error(E, loc, "'flatten' keeps dimension 0 and needs rank >= 2, got %s",
                 type_str(&x->type, ts, sizeof ts));
      return err_value(loc);
    }
    int64_t shape[2] = {x->type.dim[0], type_numel(&x->type) / x->type.dim[0]};
    Node *n = elab_node(E, op, &x, 1, loc);
    ir_set_list(g, n, 0, shape, 2);
    return finish(E, n, loc);
  }
  case B_CONCAT:
  case B_STACK: {
    int k = a[0].n;
    Node **ins = ARENA_ARRAY(E->a, Node *, k);
    for (int i = 0; i < k; i++) {
      ins[i] = a[0].items[i].node;
      if (!ins[i] || ins[i]->type.dtype == DT_ERR) return err_value(loc);
    }
    int64_t axis = a[1].i;
    if (b->id == B_STACK) {
      /* stack = insert a unit axis into each, then concat along it; the
       * shapes are checked here so the message speaks of stack */
      for (int i = 1; i < k; i++)
        if (!type_eq(&ins[i]->type, &ins[0]->type)) {
          char ta[TYPE_STR_MAX], tb[TYPE_STR_MAX];
          elab_error(E, a[0].items[i].loc, "cannot stack %s and %s: stack needs equal shapes",
                     type_str(&ins[0]->type, ta, sizeof ta), type_str(&ins[i]->type, tb, sizeof tb));
          return err_value(loc);
        }
      int r = ins[0]->type.rank;
      int64_t ax = axis < 0 ? axis + r + 1 : axis;
      if (ax < 0 || ax > r) {
        elab_error(E, a[1].loc, "axis %lld is out of range for stacking rank-%d tensors",
                   (long long)axis, r);
        return err_value(loc);
      }
      for (int i = 0; i < k; i++) {
        int64_t shape[IR_MAX_RANK];
        int rr = ins[i]->type.rank;
        if (rr + 1 > IR_MAX_RANK) {
          elab_error(E, loc, "'stack' would make a tensor of rank above %d", IR_MAX_RANK);
          return err_value(loc);
        }
        for (int j = 0, o = 0; j <= rr; j++) {
          if (j == ax) shape[o++] = 1;
          if (j < rr) shape[o++] = ins[i]->type.dim[j];
        }
        Node *rs = elab_node(E, OP_RESHAPE, &ins[i], 1, loc);
        ir_set_list(g, rs, 0, shape, rr + 1);
        ins[i] = elab_finish(E, rs);
        if (ins[i]->type.dtype == DT_ERR) return err_value(loc);
      }
      axis = ax;
    }
    Node *n = elab_node(E, OP_CONCAT, ins, k, loc);
    n->attr[0].i = axis;
    return finish(E, n, loc);
  }
  case B_ONE_HOT: {
    Node *x = to_tensor(E, &a[0], DT_I32, "i");
    Node *n = x ? elab_node(E, op, &x, 1, loc) : NULL;
    if (!n) return err_value(loc);
    n->attr[0].i = a[1].i;
    if (a[1].i < 1) {
      elab_error(E, a[1].loc, "'one_hot' needs n >= 1, got %lld", (long long)a[1].i);
      return err_value(loc);
    }
    return finish(E, n, loc);
  }
  case B_GATHER: {
    Node *ins[2] = {to_tensor(E, &a[0], DT_F32, "table"), to_tensor(E, &a[1], DT_I32, "i")};
    if (!ins[0] || !ins[1]) return err_value(loc);
    return finish(E, elab_node(E, op, ins, 2, loc), loc);
  }
  case B_FILL: {
    if (a[0].type.dtype == DT_BOOL) {
      elab_error(E, a[0].loc, "'%s' makes f32 or i32 tensors, not bool", b->name);
      return err_value(loc);
    }
    Node *n = ir_const(g, a[0].type.dtype, !strcmp(b->name, "ones"), elab_loc(E, loc));
    n->type = a[0].type;
    return finish(E, n, loc);
  }
  case B_CONV2D: {
    Node *ins[2] = {to_tensor(E, &a[0], DT_F32, "x"), to_tensor(E, &a[1], DT_F32, "w")};
    int64_t stride[2], pad[2];
    if (!ins[0] || !ins[1] || !pair_arg(E, &a[2], stride, "stride") || !pair_arg(E, &a[3], pad, "pad"))
      return err_value(loc);
    if (stride[0] < 1 || stride[1] < 1) {
      elab_error(E, a[2].loc, "stride must be >= 1, got %lld", (long long)(stride[0] < 1 ? stride[0] : stride[1]));
      return err_value(loc);
    }
    if (pad[0] < 0 || pad[1] < 0) {
      elab_error(E, a[3].loc, "pad must be >= 0, got %lld", (long long)(pad[0] < 0 ? pad[0] : pad[1]));
      return err_value(loc);
    }
    Node *n = elab_node(E, op, ins, 2, loc);
    ir_set_list(g, n, 0, stride, 2);
    ir_set_list(g, n, 1, pad, 2);
    return finish(E, n, loc);
  }
  case B_POOL: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    int64_t k[2], stride[2];
    if (!x || !pair_arg(E, &a[1], k, "kernel size")) return err_value(loc);
    if (a[2].kind == V_NONE) stride[0] = k[0], stride[1] = k[1];
    else if (!pair_arg(E, &a[2], stride, "stride")) return err_value(loc);
    if (k[0] < 1 || k[1] < 1) {
      elab_error(E, a[1].loc, "kernel size must be >= 1");
      return err_value(loc);
    }
    if (stride[0] < 1 || stride[1] < 1) {
      elab_error(E, a[2].loc, "stride must be >= 1, got %lld", (long long)(stride[0] < 1 ? stride[0] : stride[1]));
      return err_value(loc);
    }
    Node *n = elab_node(E, op, &x, 1, loc);
    ir_set_list(g, n, 0, k, 2);
    ir_set_list(g, n, 1, stride, 2);
    return finish(E, n, loc);
  }
  case B_BATCH_NORM: {
    Node *ins[5];
    static const char *const names[5] = {"x", "gamma", "beta", "mean", "var"};
    for (int i = 0; i < 5; i++) {
      ins[i] = to_tensor(E, &a[i], DT_F32, names[i]);
      if (!ins[i]) return err_value(loc);
    }
    /* running statistics are written in training: they must be states */
    for (int i = 3; i < 5; i++)
      if (ins[i]->op != OP_VAR || !(ins[i]->roles & ROLE_STATE)) {
        elab_error(E, a[i].loc, "'%s' of 'batch_norm' must be a state (running statistics)%s",
                   names[i], ins[i]->roles & ROLE_PARAM ? ", not a param" : "");
        return err_value(loc);
      }
    Node *n = elab_node(E, op, ins, 5, loc);
    const_num(E, &a[5], &n->attr[0].f, "momentum");
    const_num(E, &a[6], &n->attr[1].f, "eps");
    return finish(E, n, loc);
  }
  case B_LAYER_NORM: {
    Node *ins[3] = {to_tensor(E, &a[0], DT_F32, "x"), to_tensor(E, &a[1], DT_F32, "gamma"),
                    to_tensor(E, &a[2], DT_F32, "beta")};
    if (!ins[0] || !ins[1] || !ins[2]) return err_value(loc);
    Node *n = elab_node(E, op, ins, 3, loc);
    const_num(E, &a[3], &n->attr[0].f, "eps");
    return finish(E, n, loc);
  }
  case B_DROPOUT: {
    Node *x = to_tensor(E, &a[0], DT_F32, "x");
    Node *n = x ? elab_node(E, op, &x, 1, loc) : NULL;
    if (!n) return err_value(loc);
    const_num(E, &a[1], &n->attr[0].f, "p");
    return finish(E, n, loc);
  }
  case B_LOSS2:
  case B_HUBER: {
    bool labels = op == OP_CROSS_ENTROPY || op == OP_NLL;
    Node *ins[2] = {to_tensor(E, &a[0], DT_F32, sig.name[0]),
                    to_tensor(E, &a[1], labels ? DT_I32 : DT_F32, sig.name[1])};
    if (!ins[0] || !ins[1]) return err_value(loc);
    Node *n = elab_node(E, op, ins, 2, loc);
    if (b->id == B_HUBER) const_num(E, &a[2], &n->attr[0].f, "delta");
    return finish(E, n, loc);
  }
  }
  NNCC_ASSERT(0);
  return err_value(loc);
}
