/* elab.h - internal to the frontend: the elaborator's values, scopes and
 * context, shared by elab.c (statements, expressions, defs), builtins.c
 * (built-in ops and their signatures) and train_block.c (train blocks). */
#ifndef NNCC_ELAB_H
#define NNCC_ELAB_H

#include "frontend/frontend.h"

typedef struct Builtin Builtin;
typedef struct Value Value;

/* A compile-time value. Tensors are graph nodes; everything else (numbers,
 * functions, lists, types) exists only during elaboration. */
typedef enum ValKind {
  V_NONE,    /* a def without `return` */
  V_NUM,     /* is_int ? i : f */
  V_BOOL,    /* b */
  V_STR,     /* s */
  V_TENSOR,  /* node */
  V_FUNC,    /* builtin or def */
  V_LIST,    /* [a, b]: items */
  V_TUPLE,   /* `return a, b`: items */
  V_TYPE,    /* f32[3,4]: type */
  V_SLICE,   /* a:b inside a list (csv columns): i = lo, f unused, hi in n */
} ValKind;

struct Value {
  ValKind kind;
  SrcLoc loc;
  bool is_int;
  int64_t i;
  double f;
  bool b;
  const char *s;
  Node *node;
  const Builtin *builtin;
  const Item *def;
  Value *items;
  int n;
  int arg_index;         /* with arg_of: which parameter (fills padding) */
  Type type;
  const Item *arg_of;    /* a def whose argument this is, as bound, or
                            NULL: messages name the argument */
};

/* One name in a frame. Re-binding a name updates it in place. */
typedef struct Binding {
  const char *name;
  Value val;
  bool fixed;          /* input/param/state and constants: cannot be re-bound */
  struct Binding *next;
} Binding;

/* A call of a def in progress: its locals and its parameter scope. The
 * scope name ("h1", "h1.z") is resolved lazily, when the body declares its
 * first param or state, so defs without parameters use no name. */
typedef struct Map Map;   /* string -> pointer hash map on the arena */

typedef struct Frame {
  Binding *vars;          /* newest first */
  Map *index;             /* name -> Binding */
  const Item *def;        /* NULL for the model frame */
  struct Frame *parent;   /* the caller's frame */
  const Ast *call;        /* call site in the caller */
  SrcLoc call_loc;
  const char *scope_base; /* bound name or def name */
  const char *scope;      /* resolved: "" at model level */
  bool user_code;         /* a user def (not the prelude) */
} Frame;

Map *map_new(Arena *a);
void *map_get(const Map *m, const char *key);
void map_put(Map *m, const char *key, void *val);

typedef struct Elab {
  Arena *a;
  Diag *d;
  const ElabOptions *opt;
  const Program *prog;
  Map *consts;            /* name -> Value* */
  Map *defs;              /* name -> Item* (user defs shadow the prelude) */
  Map *prelude_defs;      /* name -> Item* */
  Graph *g;               /* model being built */
  Frame *frame;           /* innermost */
  Map *call_scopes;       /* "parent|callptr" -> scope name */
  Map *scope_uses;        /* scope name -> used marker */
  Map *params;            /* full name -> ParamDecl* */
  int n_param_tensors;
  const char *bound_name; /* name the current statement binds, or NULL */
  int depth;              /* def call depth */
  SrcLoc override_loc;    /* inside the prelude: the user's call site */
  bool in_prelude;
  bool abort;             /* a limit was hit: unwind without more errors */
  int64_t iterations;     /* for-loop iterations unrolled so far */
  int64_t statements;     /* statements executed so far */
  const Item **def_stack; /* for recursion errors */
  int n_def_stack, cap_def_stack;
} Elab;

/* elab.c */
Value elab_expr(Elab *E, const Ast *e);
SrcLoc elab_loc(Elab *E, SrcLoc loc);
void elab_error(Elab *E, SrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
Node *elab_node(Elab *E, Op op, Node **ins, int n_in, SrcLoc loc);  /* + infer */
Node *elab_finish(Elab *E, Node *n);    /* infer; call-stack notes on error */
Value tensor_value(Node *n, SrcLoc loc);
Value num_value(double f, SrcLoc loc);
Value int_value(int64_t i, SrcLoc loc);
Value err_value(SrcLoc loc);            /* a poisoned tensor */
bool is_err(const Value *v);
/* A tensor operand: numbers become constants of `like` (or f32). */
Node *to_tensor(Elab *E, const Value *v, DType like, const char *what);
Value call_value(Elab *E, const Value *fn, const Ast *call, Value *args, const char **kw,
                 int n_args, SrcLoc loc);
const char *value_kind_name(const Value *v);
/* What a value is, for a message: "a tensor f32[4,3]", "the function
 * 'relu'", "the integer 3"; value_kind_name for the rest. */
const char *value_desc(Elab *E, const Value *v);
/* "x, units, act": the parameters a callee takes, for "no parameter named". */
const char *param_list(Arena *a, const char *const *names, int n);
const char *fmt_num(double f, char *buf, size_t size);
bool const_int(Elab *E, const Value *v, int64_t *out, const char *what);
bool const_num(Elab *E, const Value *v, double *out, const char *what);

/* builtins.c */
struct Builtin {
  const char *name;
  const char *sig;     /* "x:t axis:a=none keepdims:b=false" */
  int id;
};
const Builtin *builtin_find(const char *name);
void builtin_names(const char ***names, int *n);
Value builtin_call(Elab *E, const Builtin *b, Value *args, const char **kw, int n_args,
                   SrcLoc loc);
Node *make_binary(Elab *E, Op op, Value *l, Value *r, SrcLoc loc);

/* train_block.c */
void elab_train(Elab *E, const Item *it, Module *m);

#endif
