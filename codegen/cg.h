/* cg.h - internal to codegen/: the memory layout of a compiled model and
 * the LLVM emission context shared by layout.c, emit.c and jit.c.
 *
 * The codegen <-> runtime interface (documented once, here):
 *   - a model is one slab of memory; every tensor of the ABI table and
 *     every stored intermediate value lives at a fixed 64-byte aligned
 *     offset (values a fused kernel keeps in registers have none);
 *   - four kernels `void k(ptr slab)` (forward, evaluate, backward,
 *     train_step) run a subset of a graph's nodes, each node or fused
 *     kernel as a loop nest over static shapes, and never allocate;
 *   - state writes (assign/update) and copies into ABI slots happen at the
 *     end of a kernel, so every read saw the old values - except a new
 *     state value that layout.c lets its loop write in place, which is
 *     only done where no later read can tell;
 *   - the generic ABI entries (create, data, grad, checks, save/load) are
 *     runtime/model.c, driven by an rt_model_desc built from CgModel. */
#ifndef NNCC_CODEGEN_CG_H
#define NNCC_CODEGEN_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/codegen.h"

/* One tensor of the ABI table (nncc.h roles). */
typedef struct CgTensor {
  const char *name;
  int role;              /* NNCC_INPUT ... NNCC_LOSS */
  Type type;
  int64_t offset;        /* byte offset in the slab */
  int64_t grad_offset;   /* or -1 */
  InitKind init;
  double init_arg[2];
  int64_t label_bound;   /* i32 inputs: [0, bound) */
  bool persistent;
} CgTensor;

/* The home of a value that a fused kernel keeps in registers. */
#define CG_IN_REGISTERS (-2)
/* The home of a transpose of a matrix that only matmuls read, as their
 * left operand: they read its operand with the indices swapped. */
#define CG_VIEW (-3)

typedef struct CgModel {
  const char *name;
  Graph *eval, *train;   /* train may be NULL (no loss) */
  CgTensor *tensors;
  int n_tensors;
  int64_t *home_eval;    /* byte offset of each eval node's value; -1 = constant,
                            CG_IN_REGISTERS = not stored (fused) */
  int64_t *home_train;
  int64_t slab_bytes;
  int64_t table_bytes;             /* the ABI tensors and gradients */
  int64_t scratch_eval, scratch_train;  /* planned intermediates */
  int64_t naive_eval, naive_train;      /* one block per value, for comparison */
  int loss_index, lr_index, step_index, total_steps_index;
  int64_t numerics_offset;         /* check_numerics: the int32 slot past the
                                      plan (rt_model_desc), or -1 */
} CgModel;

/* layout.c: the tensor table and the memory plan of model `name`. */
CgModel *cg_layout(Module *m, const char *name, Arena *a);

/* emit.c: the kernels of a model into an LLVM module. */
typedef enum CgKernel { CG_FORWARD, CG_EVALUATE, CG_BACKWARD, CG_TRAIN_STEP, CG_N_KERNELS } CgKernel;

typedef struct Cg {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, f64, i1, i8, i32, i64, ptr, void_t, kernel_t;
  LLVMValueRef fn, slab;
  const Graph *g;
  const int64_t *home;
  /* one internal function per node, shared by the kernels of its graph:
   * LLVM's passes stay linear in the number of nodes (one function of
   * 5,000 loop nests took minutes at -O2), and forward/evaluate and
   * backward/train_step share their code */
  const Graph *node_fns_graph;
  LLVMValueRef *node_fns;
  const char *prefix;     /* of node function names */
  int vw;                 /* floats per vector of the matmul tiles: 8 or 16 */
  int64_t numerics_slot;  /* check_numerics: the slot's offset, or -1 (off);
                             set per kernel by cg_emit_kernel */
  int32_t numerics_base;  /* node index of g's node 0 (rt_model_desc) */
} Cg;

/* The target machine for o (the host's cpu and features by default),
 * PIC and the small code model (JITLink and .so alike). */
LLVMTargetMachineRef cg_target_machine(const CgOptions *o, char *err, size_t err_size);

/* emit.c's helpers, shared with emit_conv.c: constants, float ops with
 * nncc's fast-math flags, node elements (f32 float, i32 i32, bool i1; a
 * constant without storage is an immediate), and rotated loops. */
LLVMValueRef cg_i64(Cg *c, int64_t v);
LLVMValueRef cg_f32(Cg *c, double v);
LLVMValueRef cg_fmf(LLVMValueRef v);
LLVMValueRef cg_fadd(Cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fsub(Cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fmul(Cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_fdiv(Cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_iadd(Cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_imul(Cg *c, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef cg_load(Cg *c, const Node *n, LLVMValueRef idx);
void cg_store(Cg *c, const Node *n, LLVMValueRef idx, LLVMValueRef v);

typedef struct CgLoop {
  LLVMBasicBlockRef body;
  LLVMValueRef iv;
  int64_t n;
} CgLoop;
/* for (iv = 0; iv < n; iv++) with n >= 1, rotated (the body runs first) */
LLVMValueRef cg_loop_begin(Cg *c, CgLoop *l, int64_t n);
void cg_loop_end(Cg *c, CgLoop *l);

/* Emits kernel k of model cm as a function named `fn_name`; returns false
 * when the model has no such kernel (no loss). */
bool cg_emit_kernel(Cg *c, const CgModel *cm, CgKernel k, const char *fn_name);

/* emit_conv.c: the loop nest of a conv2d, pooling or gradient node (the
 * 8 ops of ops.def's convolution family); false for any other op. */
bool cg_emit_conv(Cg *c, const Node *n);

/* A fused kernel (emit.c). cg_fused_at computes its members after the
 * anchor at one index of the loop (the anchor's value read back from
 * memory); cg_emit_conv_fused emits a conv2d anchor and calls it for each
 * output row of all channels right after the row is computed. */
typedef struct Fused Fused;
void cg_fused_at(Cg *c, const Fused *F, LLVMValueRef *idx);
void cg_emit_conv_fused(Cg *c, const Node *n, const Fused *F);

#endif
