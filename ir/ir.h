/* ir.h - the public header of the ir library: arena memory, diagnostics,
 * and the graph IR (types, nodes, graphs, modules), with its builder,
 * shape rules, printer, reader and verifier.
 *
 * Everything above ir/ (frontend, passes, codegen, tools) speaks this IR.
 * A graph keeps its nodes in a dense array in topological order: operands
 * always come before their users, so every pass is a plain for loop. */
#ifndef NNCC_IR_H
#define NNCC_IR_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* ---------------------------------------------------------------- arena */

/* What a recovery point owns (errors, below): an arena, a scratch block
 * or a cleanup, linked into the list of the recovery point that was
 * innermost when it was made, until it is freed. */
typedef struct NnccOwned {
  struct NnccOwned *next, **pprev;  /* pprev: the link that points here; NULL when not listed */
  int kind;                         /* scratch block, arena, cleanup (arena.c) */
} NnccOwned;

/* One arena per compilation owns IR, strings and diagnostics; nothing in
 * it is freed one by one. Allocation is zeroed. Out of memory unwinds to
 * the innermost recovery point, which frees the arena if it got its
 * first block inside that recovery point. While a recovery point owns
 * an Arena it must not be copied (it is linked by address). */
typedef struct ArenaBlock ArenaBlock;
typedef struct Arena {
  ArenaBlock *head;  /* newest block first */
  size_t used;       /* bytes handed out, for --time-passes and limits */
  NnccOwned own;     /* listed from its first block until arena_free */
} Arena;

void *arena_alloc(Arena *a, size_t size);
void *arena_realloc(Arena *a, void *old, size_t old_size, size_t new_size);
char *arena_strdup(Arena *a, const char *s);
char *arena_strndup(Arena *a, const char *s, size_t n);
char *arena_printf(Arena *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void arena_free(Arena *a);
/* Takes an arena out of the recovery points' lists, so no error frees
 * it: a result's arena that its handle frees (a jit's), or the cached
 * prelude's, which lives as long as the process. Blocks it gets later
 * stay out too. */
void arena_keep(Arena *a);
#define ARENA_NEW(a, T) ((T *)arena_alloc((a), sizeof(T)))
#define ARENA_ARRAY(a, T, n) ((T *)arena_alloc((a), sizeof(T) * (size_t)(n)))

/* Scratch memory that a pass frees itself (maps, worklists, buffers):
 * malloc/calloc/realloc/free that never return NULL. Out of memory
 * unwinds, and the recovery point frees every block made inside it that
 * is still live, so a pass needs no cleanup path. Free only with
 * nncc_free; never hand such a block to a caller that calls free(). */
void *nncc_malloc(size_t size);
void *nncc_calloc(size_t n, size_t size);
void *nncc_realloc(void *p, size_t size);
void nncc_free(void *p);
/* calloc for a handle that outlives the compilation and its owner frees
 * with free() (a jit): NULL on failure, no unwinding, but counted by the
 * fault injection below like every nncc allocation. */
void *nncc_calloc_or_null(size_t n, size_t size);

/* --------------------------------------------------------------- errors */

/* Out of memory and internal errors unwind (longjmp) to the innermost
 * recovery point of the thread, which gets the message; library code
 * never exits. A recovery point (the compile entry points: libnncc,
 * cg_jit_new, cg_emit_text, cg_write_library, the driver's main) is:
 *
 *   NnccCatch rp;
 *   nncc_catch_push(&rp);
 *   if (setjmp(rp.jmp)) { ... rp.msg says why; rp is popped ... }
 *   else { ...; nncc_catch_pop(&rp); }
 *
 * Before the jump, everything rp owns is freed: scratch blocks and
 * arenas that got their first block inside it (an arena declared outside
 * is then empty, and arena_free on it a no-op). Locals of the function
 * holding rp that change after setjmp and are read after the jump must
 * be volatile (C11 7.13.2.1); the entry points keep such state in
 * objects reached through pointers. On a normal pop what rp still owns
 * passes to the enclosing recovery point; the outermost one lets it go
 * (nothing made outside every recovery point is listed). */
typedef struct NnccCatch {
  jmp_buf jmp;
  struct NnccCatch *prev;  /* the enclosing recovery point, or NULL */
  NnccOwned *owned;        /* newest first */
  char msg[256];           /* "out of memory", "internal error: ..." */
} NnccCatch;
void nncc_catch_push(NnccCatch *c);
void nncc_catch_pop(NnccCatch *c);  /* no-op when c was already popped by an error */
/* What is neither an arena nor scratch but must not outlive an error -
 * a memstream open while the printer writes into it: push registers
 * fn(arg), which an error runs (newest first, like the rest of what the
 * recovery point owns); pop unregisters it on the normal path. c lives
 * in the caller's frame. */
typedef struct NnccCleanup {
  NnccOwned own;
  void (*fn)(void *arg);
  void *arg;
} NnccCleanup;
void nncc_cleanup_push(NnccCleanup *c, void (*fn)(void *arg), void *arg);
void nncc_cleanup_pop(NnccCleanup *c);
/* Unwinds to the innermost recovery point with the message. With none
 * (an embedder calling compiler internals without one), prints it and
 * aborts. */
_Noreturn void nncc_raise(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define NNCC_OOM() nncc_raise("out of memory")

/* Fault injection (tests): the n-th allocation nncc makes from now on
 * (0: the next; arena blocks and scratch blocks, on this thread) fails
 * as if malloc had returned NULL; n < 0 disarms. Returns what was left
 * of the previous countdown: -1 when none was armed or it has fired. */
long nncc_alloc_fail_after(long n);

/* Internal-error assertion: always on, prints where and aborts - for
 * broken invariants only. User errors never take this path; they go to
 * a Diag. */
#define NNCC_ASSERT(c)                                                      \
  ((c) ? (void)0 : nncc_assert_fail(#c, __FILE__, __LINE__))
_Noreturn void nncc_assert_fail(const char *cond, const char *file, int line);

/* ---------------------------------------------------------- diagnostics */

typedef struct SrcLoc {
  int line, col;     /* 1-based; line 0 means "no location" */
} SrcLoc;

/* A Diag is the sink for user errors of one source text:
 * "file:line:col: error: msg", the source line, and a caret. */
typedef struct Diag {
  const char *path;  /* as the user named the file */
  const char *src;   /* whole text (may hold NULs; len is authoritative) */
  size_t len;
  FILE *out;         /* stderr normally; a memstream in tests */
  int n_errors;
  int n_warnings;
  int max_errors;    /* 50 by default; then "too many errors" once */
  bool suppressed;   /* the limit was hit: further messages are dropped */
  bool color;        /* ANSI colours (a TTY) */
  int cache_line;    /* show_line's last line and its offset */
  size_t cache_offset;
  unsigned remarks;  /* DIAG_REMARK_* kinds to print (--remarks=) */
} Diag;

enum { DIAG_REMARK_FUSION = 1 << 0 };

void diag_init(Diag *d, const char *path, const char *src, size_t len, FILE *out);
void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void diag_verror(Diag *d, SrcLoc loc, const char *fmt, va_list ap);
/* An optimization remark, one line without the source excerpt (there are
 * many per line of source); printed only when d->remarks has `kind`. */
void diag_remark(Diag *d, unsigned kind, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Closest of `n` candidates to `name` by edit distance, or NULL when none
 * is close enough to suggest ("did you mean 'relu'?"). */
const char *diag_closest(const char *name, const char *const *cands, int n);

/* ---------------------------------------------------------------- types */

#define IR_MAX_RANK 8
#define IR_MAX_ELEMS ((int64_t)1 << 31)  /* more elements is an error */

typedef enum DType {
  DT_ERR = 0,  /* poisoned by an earlier error: suppresses follow-on errors */
  DT_F32,
  DT_I32,
  DT_BOOL,
} DType;

typedef struct Type {
  DType dtype;
  int rank;                   /* 0 = scalar */
  int64_t dim[IR_MAX_RANK];   /* each >= 1 */
} Type;

const char *dtype_name(DType t);           /* "f32", "i32", "bool", "?" */
Type type_make(DType dt, int rank, const int64_t *dims);
Type type_scalar(DType dt);
bool type_eq(const Type *a, const Type *b);
/* The same shape, whatever the dtypes (a fused kernel's loop). */
bool type_same_shape(const Type *a, const Type *b);
int64_t type_numel(const Type *t);
/* "f32[64,128]" into buf (always NUL-terminated); returns buf. */
char *type_str(const Type *t, char *buf, size_t size);
#define TYPE_STR_MAX 128

/* ------------------------------------------------------------------ ops */

enum {
  OPF_LEAF = 1 << 0,      /* no operands: var, const */
  OPF_ELEMWISE = 1 << 1,  /* elementwise with broadcasting */
  OPF_REDUCE = 1 << 2,    /* axes/keepdims reduction */
  OPF_COMPARE = 1 << 3,   /* bool result */
  OPF_LOSS = 1 << 4,      /* scalar loss */
  OPF_NOGRAD = 1 << 5,    /* has no gradient: autodiff passes nothing through it */
  OPF_EFFECT = 1 << 6,    /* writes a var: never removed, no value users */
  OPF_LOWERED = 1 << 7,   /* replaced by ordinary ops before autodiff (passes/lower.c) */
};

typedef enum Op {
#define OP(e, name, arity, flags, attrs) OP_##e,
#include "ops.def"
#undef OP
  OP_COUNT
} Op;

#define IR_MAX_ATTRS 4

typedef enum AttrKind { ATTR_INT = 'i', ATTR_FLOAT = 'f', ATTR_BOOL = 'b', ATTR_LIST = 'l' } AttrKind;

typedef struct OpInfo {
  const char *name;
  int arity;           /* -1: variadic */
  unsigned flags;
  int n_attrs;
  const char *attr_name[IR_MAX_ATTRS];
  AttrKind attr_kind[IR_MAX_ATTRS];
} OpInfo;

const OpInfo *op_info(Op op);
/* OP_COUNT when no op has that name. */
Op op_by_name(const char *name);

/* An attribute value: `i` for ints and bools, `f` for floats, `list`/`n`
 * for int lists. Which one is meant comes from the op's schema. */
typedef struct Attr {
  int64_t i;
  double f;
  int n;
  int64_t *list;
} Attr;

/* -------------------------------------------------------- initializers */

/* The list is the runtime's (runtime/init_kinds.def): INIT_x and
 * RT_INIT_x are one enum in two spellings. */
typedef enum InitKind {
#define INIT(e, name, nargs) INIT_##e,
#include "runtime/init_kinds.def"
#undef INIT
  INIT_COUNT
} InitKind;

const char *init_name(InitKind k);
int init_nargs(InitKind k);
InitKind init_by_name(const char *name);  /* INIT_COUNT when unknown */

/* ---------------------------------------------------------------- nodes */

enum {
  ROLE_INPUT = 1 << 0,   /* fed by the caller (var) */
  ROLE_PARAM = 1 << 1,   /* trainable (var) */
  ROLE_STATE = 1 << 2,   /* non-trainable, persistent (var) */
  ROLE_OUTPUT = 1 << 3,  /* returned by forward (any node) */
  ROLE_LOSS = 1 << 4,    /* the scalar training minimizes (any node) */
  ROLE_GRAD = 1 << 5,    /* d loss / d grad_of (appended by autodiff) */
};

typedef struct Node Node;
struct Node {
  int id;                    /* index in its graph's nodes[]; topological */
  Op op;
  Type type;
  int n_in;
  Node **in;                 /* operands, each with a smaller id */
  Attr attr[IR_MAX_ATTRS];   /* meaning by the op's schema (ops.def) */
  const char *name;          /* tensor name of a var ("h1.w"), the bound
                                name of a value ("h"), or NULL */
  const char *out_name;      /* name under which an output is returned */
  int out_index;             /* ROLE_OUTPUT: position in the `output` list */
  Node *grad_of;             /* ROLE_GRAD: the var this is the gradient of */
  unsigned roles;            /* ROLE_* */
  InitKind init;             /* params and states */
  double init_arg[2];
  SrcLoc loc;                /* the user's token that made it */
  int kernel;                /* fused kernel (passes/fuse.c), 1..n_kernels;
                                0: none. A kernel's nodes are contiguous. */
};

/* ---------------------------------------------------------------- graph */

typedef struct Graph {
  Arena *arena;
  const char *name;          /* "mlp" (evaluation), "mlp.train" (training) */
  const char *model;         /* the model it was made from ("mlp") */
  bool training;             /* forward in training mode + backward + update */
  SrcLoc loc;                /* of `model NAME` */
  Node **nodes;              /* topological order; nodes[i]->id == i */
  int n_nodes, cap_nodes;
  int max_nodes;             /* expansion limit; 0 = none */
  int n_kernels;             /* fused kernels (Node.kernel), 0 before fuse */
  const char *fingerprint;   /* 16 hex digits set by the fingerprint pass
                                (passes/fingerprint.c), or NULL before it */
} Graph;

/* A validated train block (ir/train_spec.h): a message from the front
 * end (frontend/train_block.c) to the optimizer and fingerprint passes
 * and the trainer; the IR only carries it. */
typedef struct TrainSpec TrainSpec;

typedef struct Module {
  Arena *arena;
  Graph **graphs;            /* one per model, in source order */
  int n_graphs, cap_graphs;
  TrainSpec **trains;        /* validated train blocks, one per model at most */
  int n_trains;
} Module;

Graph *ir_graph_new(Arena *a, const char *name);
/* Appends a node with the given operands; its type is left DT_ERR for the
 * caller (ir_infer or an explicit type). Operands must be in g already. */
Node *ir_node_new(Graph *g, Op op, Node *const *ins, int n_in, SrcLoc loc);
Node *ir_var(Graph *g, const char *name, unsigned role, Type t, SrcLoc loc);
Node *ir_const(Graph *g, DType dt, double value, SrcLoc loc);
void ir_set_list(Graph *g, Node *n, int k, const int64_t *v, int count);
/* A copy of src in g with operands `ins` (src's arity): op, type,
 * attributes, names, roles, init and location; not grad_of. */
Node *ir_copy_node(Graph *g, const Node *src, Node *const *ins);
/* Graph lookups by name (vars only / any output). */
Node *ir_find_var(const Graph *g, const char *name);
Graph *ir_module_graph(const Module *m, const char *name);
void ir_module_add(Module *m, Graph *g);

/* ----------------------------------------------------------- shape rules */

/* Computes n->type from its operands and attributes (ir/infer.c). On a
 * user error reports to d at n->loc, sets DT_ERR and returns false. An
 * operand that is already DT_ERR poisons n silently. Normalizes attributes
 * where the language allows shorthand (negative axes become positive). */
bool ir_infer(Node *n, Diag *d);
/* Broadcast two shapes NumPy-style; false when incompatible. */
bool ir_broadcast(const Type *a, const Type *b, Type *out);

/* ---------------------------------------------------- scalar semantics */

/* The value of elementwise op at operand values x[] (one per operand),
 * f32 arithmetic done in double, unrounded (ir/scalar.c): the one
 * definition that constant folding and the reference evaluator share.
 * False for cast (its value depends on the dtypes) and non-elementwise
 * ops. i32 arithmetic (wrapping, truncating division) is the caller's. */
bool ir_scalar(Op op, const Attr *attr, const double *x, double *out);
/* selu's constants (torch.nn.SELU), for its gradient and codegen */
#define IR_SELU_ALPHA 1.6732632423543772848170429916717
#define IR_SELU_SCALE 1.0507009873554804934193349852946

/* --------------------------------------------------------- fusion rules */

/* What one fused kernel may hold (passes/fuse.c forms kernels, ir_verify
 * checks them, codegen emits each as one loop nest): an anchor first, or
 * none, then elementwise nodes over the loop's shape (the anchor's, or
 * the first node's), each operand from inside the kernel having exactly
 * that shape (operands from outside may broadcast).
 *   KERNEL_LOOP     elementwise nodes only: one loop nest
 *   KERNEL_MATMUL   a matmul of f32 matrices (rank >= 2 each); the rest
 *                   is its epilogue, applied to each register tile
 *   KERNEL_CONV     a conv2d; the rest runs over each output row of all
 *                   channels while it is in L1 (bias, activation)
 *   KERNEL_REDUCE   elementwise nodes, then a sum, mean, max or min of
 *                   one of them: the reduction's loop computes them and
 *                   the reduction, of a smaller shape, comes last
 *   KERNEL_SOFTMAX  softmax or log_softmax over the last axis; the rest
 *                   runs in its per-row write loop, and one row loss
 *                   (ir_kernel_row_loss) may share its max and sum */
typedef enum KernelKind { KERNEL_LOOP, KERNEL_MATMUL, KERNEL_SOFTMAX, KERNEL_CONV, KERNEL_REDUCE } KernelKind;
const char *kernel_kind_name(KernelKind k);
/* n can start a kernel as its anchor (*kind set). */
bool ir_kernel_anchor(const Node *n, KernelKind *kind);
/* n can end a KERNEL_REDUCE kernel: sum, mean, max, min. */
bool ir_kernel_reduction(const Node *n);
/* The kind of the kernel whose first node is g->nodes[first]; *end (if
 * not NULL) gets the index after its last node. */
KernelKind ir_kernel_kind(const Graph *g, int first, int *end);
/* n can be computed one element at a time in a kernel's loop:
 * elementwise ops, broadcast, one_hot. */
bool ir_kernel_elementwise(const Node *n);
/* n is the loss that a softmax kernel anchored by `anchor` computes from
 * the row max and sum it has anyway: cross_entropy(z, y) beside
 * softmax(z), or nll(log_softmax(z), y). Its shape is [], not the loop's. */
bool ir_kernel_row_loss(const Node *anchor, const Node *n);
/* For every node: whether a kernel member's value must be stored - it has
 * a role, a user outside its kernel, or it is a matmul anchor (the
 * epilogue reads it back; a conv likewise); false for nodes outside
 * kernels. Scratch: nncc_free it. */
bool *ir_kernel_stores(const Graph *g);

/* ------------------------------------------------------------ analyses */

/* ir/analysis.c: facts about a graph that fusion, the memory plan,
 * codegen and gradcheck all need. */
/* The ABI entries that compute each node of g (the nodes their roots -
 * outputs; loss and gradients; assign; update - need), limited to the
 * entries g serves: forward and evaluate run an evaluation graph,
 * backward and train_step a training graph. Scratch (nncc_free), one per node. */
enum { ENTRY_FORWARD = 1, ENTRY_EVALUATE = 2, ENTRY_BACKWARD = 4, ENTRY_TRAIN_STEP = 8 };
unsigned *ir_entry_masks(const Graph *g);

/* The values an i32 input may take, [0, bound): the class count of a loss
 * it labels, the depth of a one_hot, the rows of a gather it indexes -
 * the smallest, through any reshape, slice or transpose on the way; 0
 * when nothing bounds it. */
int64_t ir_label_bound(const Graph *g, const Node *input);

/* ------------------------------------------------- printer and reader */

/* The text form, read back by ir_read:
 *   # nncc graph IR
 *   graph mlp @2:1 {
 *     %x = input : f32[64,784] @3:9
 *     %w1 = param : f32[784,128] init=uniform(-0.1, 0.1) @4:9
 *     %3 = matmul %x, %w1 : f32[64,128] @6:11
 *     %h = relu %3 : f32[64,128] @6:7
 *     %5 = const value=0.5 : f32[] @7:11
 *     %s = sum %h axes=[1] keepdims=false : f32[64] @7:7
 *     output logits=%h
 *     loss %l
 *   }
 * A var prints its role word (input, param, state; `var` without one).
 * Names are made unique by the printer (".1", ".2" for re-bindings);
 * unnamed values print as %<id>. `@line:col` is the source location. */
void ir_print_graph(FILE *out, const Graph *g);
void ir_print_module(FILE *out, const Module *m);
/* The same graphs as Graphviz (--emit=dot), fused kernels as clusters. */
void ir_print_dot(FILE *out, const Module *m);
/* Parses text printed by ir_print_*; errors go to d (whose source is the
 * text). Returns NULL on error. Runs ir_infer on every node and checks the
 * printed type against it. */
Module *ir_read(Arena *a, Diag *d);

/* ------------------------------------------------------------ verifier */

/* Checks structural invariants (ids, topological order, operand counts,
 * attribute shapes, roles) and that every type equals what ir_infer gives.
 * Reports each problem as "node %id (op) at line:col: ..." to `out`.
 * Returns the number of problems. */
int ir_verify(const Graph *g, FILE *out);

#endif
