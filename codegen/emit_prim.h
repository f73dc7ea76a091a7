/* emit_prim.h - internal to codegen/: the primitives of emit_prim.c that
 * emit.c, emit_conv.c and emit_math.c build on. */
#ifndef NNCC_CODEGEN_EMIT_PRIM_H
#define NNCC_CODEGEN_EMIT_PRIM_H

#include "codegen/cg.h"

/* Constants, float ops with
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
/* The storage of a dtype's element in the slab (f32, i32, bool as i8) and
 * the address of element idx of the block at byte offset base. */
LLVMTypeRef cg_storage_type(Cg *c, DType t);
LLVMValueRef cg_ptr_at(Cg *c, int64_t base, DType t, LLVMValueRef idx);
LLVMValueRef cg_load(Cg *c, const Node *n, LLVMValueRef idx);
void cg_store(Cg *c, const Node *n, LLVMValueRef idx, LLVMValueRef v);

typedef struct CgLoop {
  LLVMBasicBlockRef body;
  LLVMValueRef iv;
  int64_t n;
  LLVMValueRef nv;  /* a trip count known at run time only, or NULL */
} CgLoop;
/* for (iv = 0; iv < n; iv++) with n >= 1, rotated (the body runs first) */
LLVMValueRef cg_loop_begin(Cg *c, CgLoop *l, int64_t n);
/* the same with a run-time trip count, which must be >= 1 */
LLVMValueRef cg_loop_begin_dynamic(Cg *c, CgLoop *l, LLVMValueRef n);
void cg_loop_end(Cg *c, CgLoop *l);

/* The tasks of a node function (cg.h): the most, and the least work
 * (elements, or multiply-adds) one task is given. */
#define CG_MAX_TASKS 16
#define CG_TASK_MIN_WORK 8192
/* The number of tasks `n` independent iterations of `work` each are split
 * into (1: not split), from the shapes alone. */
int64_t cg_task_count(int64_t n, int64_t work);
/* for (iv = 0; iv < n; iv++) whose iterations are independent and hold
 * all the stores of the node function: the first such loop of a node
 * function splits [0, n) into cg_task_count contiguous ranges, one per
 * task, and returns the iteration (the task's first + its own iv); a
 * later one, or one in a function that may not split, is a plain loop.
 * Code outside the loop runs in every task: it may only load. */
LLVMValueRef cg_parallel_loop_begin(Cg *c, CgLoop *l, int64_t n, int64_t work);
/* The first iteration and the count (>= 1) of this task's range of a
 * split [0, n) in chunks of `chunk` (tasks = ceil(n / chunk)). */
LLVMValueRef cg_task_first(Cg *c, int64_t chunk);
LLVMValueRef cg_task_count_of(Cg *c, int64_t n, int64_t chunk);

#endif
