/* cg.h - internal to codegen/: the LLVM emission context shared by emit*.c
 * and jit.c; the memory layout they follow is ir/layout.h.
 *
 * The codegen <-> runtime interface (documented once, here):
 *   - a model is one slab of memory; every tensor of the ABI table and
 *     every stored intermediate value lives at a fixed 64-byte aligned
 *     offset (values a fused kernel keeps in registers have none);
 *   - four kernels `void k(ptr slab, ptr pool)` (forward, evaluate,
 *     backward, train_step) run a subset of a graph's nodes, each node or
 *     fused kernel as a loop nest over static shapes, and never allocate;
 *   - a node's function is `void f(ptr slab, i64 task)`; one whose
 *     outermost loop was split (cg_parallel_loop_begin) into T > 1 tasks
 *     is run as rt_parallel_for(pool, f, slab, T), each task doing a fixed
 *     range of that loop. T comes from the shapes alone, never from the
 *     thread count, and no element is computed by two tasks, so every
 *     thread count gives the same bits (runtime/pool.h);
 *   - state writes (assign/update) and copies into ABI slots happen at the
 *     end of a kernel, so every read saw the old values - except a new
 *     state value that ir/layout.c lets its loop write in place, which is
 *     only done where no later read can tell;
 *   - the generic ABI entries (create, data, grad, checks, save/load) are
 *     runtime/model.c, driven by an rt_model_desc built from LayoutModel. */
#ifndef NNCC_CODEGEN_CG_H
#define NNCC_CODEGEN_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/codegen.h"
#include "ir/layout.h"

/* emit.c: the kernels of a model into an LLVM module. */
typedef enum CgKernel { CG_FORWARD, CG_EVALUATE, CG_BACKWARD, CG_TRAIN_STEP, CG_N_KERNELS } CgKernel;

typedef struct Cg {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTypeRef f32, f64, i1, i8, i32, i64, ptr, void_t, kernel_t, task_fn_t;
  LLVMValueRef fn, slab;
  /* in a node function: its task parameter, or NULL where its work may
   * not be split (check_numerics: the inline checks share one slot);
   * tasks: 0 until a parallel loop decides, then the task count */
  LLVMValueRef task;
  int64_t tasks;
  const Graph *g;
  const int64_t *home;
  /* one internal function per node, shared by the kernels of its graph:
   * LLVM's passes stay linear in the number of nodes (one function of
   * 5,000 loop nests took minutes at -O2), and forward/evaluate and
   * backward/train_step share their code */
  const Graph *node_fns_graph;
  LLVMValueRef *node_fns;
  int64_t *node_tasks;    /* each node function's task count */
  const char *prefix;     /* of node function names */
  int vw;                 /* floats per vector of the matmul tiles: 8 or 16 */
  int64_t numerics_slot;  /* check_numerics: the slot's offset, or -1 (off);
                             set per kernel by cg_emit_kernel */
  int32_t numerics_base;  /* node index of g's node 0 (rt_model_desc) */
} Cg;

/* The target machine for o (the host's cpu and features by default),
 * PIC and the small code model (JITLink and .so alike). */
LLVMTargetMachineRef cg_target_machine(const CgOptions *o, char *err, size_t err_size);

/* Emits kernel k of model cm as a function named `fn_name`; returns false
 * when the model has no such kernel (no loss). */
bool cg_emit_kernel(Cg *c, const LayoutModel *cm, CgKernel k, const char *fn_name);

/* emit_conv.c: the loop nest of a conv2d, pooling or gradient node (the
 * 8 ops of ops.def's convolution family); false for any other op. */
bool cg_emit_conv(Cg *c, const Node *n);

/* A fused kernel (emit.c) with a conv2d anchor: emit.c hands
 * cg_emit_conv_fused the kernel and its `at`, which computes the members
 * after the anchor at one index of the loop (the anchor's value read back
 * from memory); cg_emit_conv_fused emits the conv2d and calls `at` for
 * each output row of all channels right after the row is computed. A
 * callback, so that emit_conv.c needs nothing of emit.c. */
typedef struct Fused Fused;
typedef struct CgEpilogue {
  const Fused *F;
  void (*at)(Cg *c, const Fused *F, LLVMValueRef *idx);
} CgEpilogue;
void cg_emit_conv_fused(Cg *c, const Node *n, const CgEpilogue *e);

#endif
