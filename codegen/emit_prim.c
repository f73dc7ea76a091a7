/* emit_prim.c - the primitives every emitter builds on (emit.c,
 * emit_conv.c, emit_math.c): constants, float ops with nncc's fast-math
 * flags, node elements in the slab, and rotated loops (emit_prim.h). */
#include "codegen/emit_prim.h"

/* ---------------------------------------------------------- primitives */

LLVMValueRef cg_i64(Cg *c, int64_t v) { return LLVMConstInt(c->i64, (unsigned long long)v, 1); }
static LLVMValueRef ci32(Cg *c, int64_t v) { return LLVMConstInt(c->i32, (unsigned long long)v, 1); }
LLVMValueRef cg_f32(Cg *c, double v) { return LLVMConstReal(c->f32, v); }

LLVMValueRef cg_fmf(LLVMValueRef v) {
  if (LLVMIsAInstruction(v) && LLVMCanValueUseFastMathFlags(v))
    LLVMSetFastMathFlags(v, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract |
                                LLVMFastMathAllowReciprocal | LLVMFastMathApproxFunc |
                                LLVMFastMathNoSignedZeros);
  return v;
}
LLVMValueRef cg_fadd(Cg *c, LLVMValueRef a, LLVMValueRef b) { return cg_fmf(LLVMBuildFAdd(c->b, a, b, "")); }
LLVMValueRef cg_fsub(Cg *c, LLVMValueRef a, LLVMValueRef b) { return cg_fmf(LLVMBuildFSub(c->b, a, b, "")); }
LLVMValueRef cg_fmul(Cg *c, LLVMValueRef a, LLVMValueRef b) { return cg_fmf(LLVMBuildFMul(c->b, a, b, "")); }
LLVMValueRef cg_fdiv(Cg *c, LLVMValueRef a, LLVMValueRef b) { return cg_fmf(LLVMBuildFDiv(c->b, a, b, "")); }
LLVMValueRef cg_iadd(Cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildAdd(c->b, a, b, ""); }
LLVMValueRef cg_imul(Cg *c, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildMul(c->b, a, b, ""); }

/* --------------------------------------------------------------- memory */

LLVMTypeRef cg_storage_type(Cg *c, DType t) { return t == DT_F32 ? c->f32 : t == DT_I32 ? c->i32 : c->i8; }
static int64_t esize(DType t) { return t == DT_BOOL ? 1 : 4; }

LLVMValueRef cg_ptr_at(Cg *c, int64_t base, DType t, LLVMValueRef idx) {
  LLVMValueRef off = cg_iadd(c, cg_i64(c, base), cg_imul(c, idx, cg_i64(c, esize(t))));
  return LLVMBuildGEP2(c->b, c->i8, c->slab, &off, 1, "");
}

/* A node's element as a value: f32 float, i32 i32, bool i1. */
LLVMValueRef cg_load(Cg *c, const Node *n, LLVMValueRef idx) {
  int64_t home = c->home[n->id];
  DType t = n->type.dtype;
  if (home < 0) {  /* a constant fill: an immediate */
    NNCC_ASSERT(n->op == OP_CONST);
    double v = n->attr[0].f;
    return t == DT_F32 ? cg_f32(c, v) : t == DT_I32 ? ci32(c, (int64_t)v) : LLVMConstInt(c->i1, v != 0, 0);
  }
  LLVMValueRef v = LLVMBuildLoad2(c->b, cg_storage_type(c, t), cg_ptr_at(c, home, t, idx), "");
  if (t == DT_BOOL) v = LLVMBuildICmp(c->b, LLVMIntNE, v, LLVMConstInt(c->i8, 0, 0), "");
  return v;
}

static void store_at(Cg *c, int64_t home, DType t, LLVMValueRef idx, LLVMValueRef v) {
  if (t == DT_BOOL) v = LLVMBuildZExt(c->b, v, c->i8, "");
  LLVMBuildStore(c->b, v, cg_ptr_at(c, home, t, idx));
}

void cg_store(Cg *c, const Node *n, LLVMValueRef idx, LLVMValueRef v) {
  NNCC_ASSERT(c->home[n->id] >= 0);
  store_at(c, c->home[n->id], n->type.dtype, idx, v);
}

/* ---------------------------------------------------------------- loops */

/* for (iv = 0; iv < n; iv++), n >= 1, rotated: returns iv */
LLVMValueRef cg_loop_begin(Cg *c, CgLoop *l, int64_t n) {
  NNCC_ASSERT(n >= 1);
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
  l->body = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "loop");
  l->n = n;
  l->nv = NULL;
  LLVMBuildBr(c->b, l->body);
  LLVMPositionBuilderAtEnd(c->b, l->body);
  l->iv = LLVMBuildPhi(c->b, c->i64, "i");
  LLVMValueRef zero = cg_i64(c, 0);
  LLVMAddIncoming(l->iv, &zero, &pre, 1);
  return l->iv;
}

void cg_loop_end(Cg *c, CgLoop *l) {
  LLVMBasicBlockRef latch = LLVMGetInsertBlock(c->b);
  LLVMValueRef next = LLVMBuildAdd(c->b, l->iv, cg_i64(c, 1), "");
  LLVMValueRef more = LLVMBuildICmp(c->b, LLVMIntSLT, next, l->nv ? l->nv : cg_i64(c, l->n), "");
  LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "exit");
  LLVMBuildCondBr(c->b, more, l->body, exit);
  LLVMAddIncoming(l->iv, &next, &latch, 1);
  LLVMPositionBuilderAtEnd(c->b, exit);
}

LLVMValueRef cg_loop_begin_dynamic(Cg *c, CgLoop *l, LLVMValueRef n) {
  LLVMValueRef iv = cg_loop_begin(c, l, 1);
  l->nv = n;
  return iv;
}

/* ---------------------------------------------------------------- tasks */

int64_t cg_task_count(int64_t n, int64_t work) {
  if (n < 2 || work < 1) return 1;
  double by_work = (double)n * (double)work / CG_TASK_MIN_WORK;
  int64_t t = n < CG_MAX_TASKS ? n : CG_MAX_TASKS;
  if (by_work < (double)t) t = (int64_t)by_work;
  if (t < 2) return 1;
  int64_t chunk = (n + t - 1) / t;
  return (n + chunk - 1) / chunk;  /* no empty task */
}

LLVMValueRef cg_task_first(Cg *c, int64_t chunk) { return cg_imul(c, c->task, cg_i64(c, chunk)); }

LLVMValueRef cg_task_count_of(Cg *c, int64_t n, int64_t chunk) {
  int64_t tasks = (n + chunk - 1) / chunk, last = n - (tasks - 1) * chunk;
  if (last == chunk) return cg_i64(c, chunk);
  LLVMValueRef is_last = LLVMBuildICmp(c->b, LLVMIntEQ, c->task, cg_i64(c, tasks - 1), "");
  return LLVMBuildSelect(c->b, is_last, cg_i64(c, last), cg_i64(c, chunk), "");
}

LLVMValueRef cg_parallel_loop_begin(Cg *c, CgLoop *l, int64_t n, int64_t work) {
  int64_t tasks = c->task && c->tasks == 0 ? cg_task_count(n, work) : 1;
  if (c->task && c->tasks == 0) c->tasks = tasks;  /* decided: later loops are plain */
  if (tasks <= 1) return cg_loop_begin(c, l, n);
  int64_t chunk = (n + tasks - 1) / tasks;
  LLVMValueRef first = cg_task_first(c, chunk);
  return cg_iadd(c, cg_loop_begin_dynamic(c, l, cg_task_count_of(c, n, chunk)), first);
}
