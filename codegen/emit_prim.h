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
} CgLoop;
/* for (iv = 0; iv < n; iv++) with n >= 1, rotated (the body runs first) */
LLVMValueRef cg_loop_begin(Cg *c, CgLoop *l, int64_t n);
void cg_loop_end(Cg *c, CgLoop *l);

#endif
