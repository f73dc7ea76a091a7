/* jit.c - the host target machine, the LLVM module of a compiled model,
 * the new-pass-manager pipeline, and ORC LLJIT (notes/llvm-c-api.md: pass
 * the host TM to LLVMRunPasses or nothing vectorizes; PIC + small code
 * model for JITLink; runtime functions defined as absolute symbols).
 *
 * Per model the module holds four kernels and a `create` thunk that calls
 * rt_model_create with the model's descriptor; everything else of the
 * nncc_model_api is runtime/model.c. */
#include "codegen/cg.h"
#include "runtime/model.h"
#include "runtime/outfile.h"
#include "runtime/runtime.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *const kernel_names[CG_N_KERNELS] = {"forward", "evaluate", "backward", "train_step"};

static bool init_native(char *err, size_t size) {
  static int done, ok;
  if (!done) {
    done = 1;
    ok = !LLVMInitializeNativeTarget() && !LLVMInitializeNativeAsmPrinter() && !LLVMInitializeNativeAsmParser();
  }
  if (!ok) snprintf(err, size, "LLVM has no native target for this host");
  return ok;
}

LLVMTargetMachineRef cg_target_machine(const CgOptions *o, char *err, size_t size) {
  if (!init_native(err, size)) return NULL;
  /* LLVM aborts on a cpu the target lacks: refuse it first */
  if (o && !cg_target_cpu_check(o->target_cpu, err, size)) return NULL;
  char *triple = LLVMGetDefaultTargetTriple(), *msg = NULL;
  LLVMTargetRef target;
  if (LLVMGetTargetFromTriple(triple, &target, &msg)) {
    snprintf(err, size, "%s", msg);
    LLVMDisposeMessage(msg);
    LLVMDisposeMessage(triple);
    return NULL;
  }
  bool host = !o || !o->target_cpu || !strcmp(o->target_cpu, "native");
  char *cpu = host ? LLVMGetHostCPUName() : NULL, *features = host ? LLVMGetHostCPUFeatures() : NULL;
  LLVMCodeGenOptLevel level = !o || o->opt_level >= 3 ? LLVMCodeGenLevelAggressive
                              : o->opt_level == 0     ? LLVMCodeGenLevelNone
                                                      : LLVMCodeGenLevelDefault;
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, host ? cpu : o->target_cpu,
                                                    host ? features : "", level, LLVMRelocPIC,
                                                    LLVMCodeModelSmall);
  if (cpu) LLVMDisposeMessage(cpu);
  if (features) LLVMDisposeMessage(features);
  LLVMDisposeMessage(triple);
  if (!tm) snprintf(err, size, "cannot make a target machine for cpu '%s'", o && o->target_cpu ? o->target_cpu : "host");
  return tm;
}

static void cg_init_types(Cg *c, LLVMContextRef ctx) {
  c->ctx = ctx;
  c->f32 = LLVMFloatTypeInContext(ctx);
  c->f64 = LLVMDoubleTypeInContext(ctx);
  c->i1 = LLVMInt1TypeInContext(ctx);
  c->i8 = LLVMInt8TypeInContext(ctx);
  c->i32 = LLVMInt32TypeInContext(ctx);
  c->i64 = LLVMInt64TypeInContext(ctx);
  c->ptr = LLVMPointerTypeInContext(ctx, 0);
  c->void_t = LLVMVoidTypeInContext(ctx);
  c->kernel_t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->ptr}, 2, 0);
  c->task_fn_t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->i64}, 2, 0);
}

/* A compiled model: its layout, descriptor and ABI table (host memory). */
typedef struct JitModel {
  LayoutModel *cm;
  nncc_tensor_info *infos;
  rt_tensor_desc *tensors;
  rt_model_desc desc;
  nncc_model_api api;
  char *create_name;
  char *kernel_name[CG_N_KERNELS];
} JitModel;

struct CgJit {
  Arena arena;
  LLVMOrcLLJITRef jit;
  JitModel *models;
  int n_models;
};

/* check_numerics' node table (runtime/model.h: index = id in the
 * evaluation graph, then the training graph's after it). A training node
 * is backward when neither the loss, an output nor a running statistic
 * depends on it: autodiff and the optimizer made it. */
static rt_node_desc *numerics_nodes(const LayoutModel *cm, Arena *a, int *n_out) {
  const Graph *gs[2] = {cm->eval, cm->train};
  int n = cm->eval->n_nodes + (cm->train ? cm->train->n_nodes : 0), at = 0;
  rt_node_desc *t = ARENA_ARRAY(a, rt_node_desc, n + 1);
  for (int k = 0; k < 2 && gs[k]; k++) {
    const Graph *g = gs[k];
    char *forward = ARENA_ARRAY(a, char, g->n_nodes + 1);
    for (int i = g->n_nodes - 1; i >= 0; i--) {
      const Node *x = g->nodes[i];
      forward[i] |= k == 0 || (x->roles & (ROLE_LOSS | ROLE_OUTPUT)) || x->op == OP_ASSIGN;
      for (int j = 0; j < x->n_in && forward[i]; j++) forward[x->in[j]->id] = 1;
    }
    for (int i = 0; i < g->n_nodes; i++, at++) {
      const Node *x = g->nodes[i];
      t[at] = (rt_node_desc){x->name ? x->name : "", op_info(x->op)->name, x->id, x->loc.line,
                             x->loc.col, !forward[i]};
    }
  }
  *n_out = n;
  return t;
}

static void fill_desc(JitModel *jm, const CgOptions *o, Arena *a) {
  LayoutModel *cm = jm->cm;
  cm->numerics_offset = -1;
  if (o && o->check_numerics) {  /* one int32 past the plan */
    cm->numerics_offset = (cm->slab_bytes + 63) / 64 * 64;
    cm->slab_bytes = cm->numerics_offset + 64;
  }
  jm->infos = ARENA_ARRAY(a, nncc_tensor_info, cm->n_tensors + 1);
  jm->tensors = ARENA_ARRAY(a, rt_tensor_desc, cm->n_tensors + 1);
  for (int i = 0; i < cm->n_tensors; i++) {
    const LayoutTensor *t = &cm->tensors[i];
    int64_t *shape = ARENA_ARRAY(a, int64_t, t->type.rank + 1);
    memcpy(shape, t->type.dim, sizeof(int64_t) * (size_t)t->type.rank);
    jm->infos[i] = (nncc_tensor_info){t->name, t->role, t->type.dtype == DT_I32 ? NNCC_I32 : NNCC_F32,
                                      t->type.rank, shape};
    rt_tensor_desc *d = &jm->tensors[i];
    d->offset = t->offset;
    d->grad_offset = t->grad_offset;
    d->nbytes = type_numel(&t->type) * 4;
    d->init_kind = (int32_t)t->init;
    d->init_args[0] = t->init_arg[0];
    d->init_args[1] = t->init_arg[1];
    d->stream = rt_stream_of(t->name);
    d->label_bound = t->label_bound;
    d->persistent = t->persistent;
  }
  rt_model_desc *d = &jm->desc;
  d->name = cm->name;
  d->n_tensors = cm->n_tensors;
  d->infos = jm->infos;
  d->tensors = jm->tensors;
  d->slab_bytes = cm->slab_bytes;
  d->loss_index = cm->loss_index;
  d->lr_index = cm->lr_index;
  d->step_index = cm->step_index;
  d->total_steps_index = cm->total_steps_index;
  d->fingerprint = cm->eval->fingerprint ? cm->eval->fingerprint : "";
  d->numerics_offset = cm->numerics_offset;
  d->nodes = NULL;
  d->n_nodes = 0;
  d->source = o && o->source_name ? o->source_name : "";
  if (cm->numerics_offset >= 0) {
    int n = 0;
    d->nodes = numerics_nodes(cm, a, &n);
    d->n_nodes = n;
    d->source = arena_strdup(a, d->source);  /* the descriptor outlives the options */
  }
}

/* nncc_model *create(u64 seed) { return rt_model_create(&desc, seed); } */
static void emit_create_thunk(Cg *c, const char *name, LLVMValueRef desc_ptr) {
  LLVMTypeRef args[2] = {c->ptr, c->i64};
  LLVMTypeRef rt_t = LLVMFunctionType(c->ptr, args, 2, 0);
  LLVMValueRef rt = LLVMGetNamedFunction(c->mod, "rt_model_create");
  if (!rt) rt = LLVMAddFunction(c->mod, "rt_model_create", rt_t);
  LLVMTypeRef thunk_t = LLVMFunctionType(c->ptr, &c->i64, 1, 0);
  LLVMValueRef fn = LLVMAddFunction(c->mod, name, thunk_t);
  LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
  LLVMValueRef call_args[2] = {desc_ptr, LLVMGetParam(fn, 0)};
  LLVMBuildRet(c->b, LLVMBuildCall2(c->b, rt_t, rt, call_args, 2, ""));
}

static bool optimize(LLVMModuleRef mod, LLVMTargetMachineRef tm, int level, char *err, size_t size) {
  char *msg = NULL;
  if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &msg)) {
    snprintf(err, size, "internal error: invalid LLVM IR: %.200s", msg);
    LLVMDisposeMessage(msg);
    return false;
  }
  LLVMDisposeMessage(msg);
  char pipeline[64];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", level < 0 ? 2 : level > 3 ? 3 : level);
#ifdef NNCC_TSAN  /* kernels' loads and stores reported to ThreadSanitizer (libtsan resolves them) */
  strcat(pipeline, ",tsan-module,function(tsan)");
#endif
  LLVMPassBuilderOptionsRef po = LLVMCreatePassBuilderOptions();
  LLVMErrorRef e = LLVMRunPasses(mod, pipeline, tm, po);
  LLVMDisposePassBuilderOptions(po);
  if (e) {
    char *m = LLVMGetErrorMessage(e);
    snprintf(err, size, "LLVM passes: %s", m);
    LLVMDisposeErrorMessage(m);
    return false;
  }
  return true;
}

/* ------------------------------------------------- descriptors as data */

/* The AOT library carries its descriptors as constant globals whose
 * layout is the C layout of runtime/model.h (natural alignment on both
 * sides gives the same padding). */
static LLVMValueRef const_str(Cg *c, const char *s) {
  LLVMValueRef init = LLVMConstStringInContext2(c->ctx, s, strlen(s), 0);
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), ".str");
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  LLVMSetUnnamedAddress(g, LLVMGlobalUnnamedAddr);
  return g;
}

static LLVMValueRef const_global(Cg *c, LLVMValueRef init, const char *name) {
  LLVMValueRef g = LLVMAddGlobal(c->mod, LLVMTypeOf(init), name);
  LLVMSetInitializer(g, init);
  LLVMSetGlobalConstant(g, 1);
  LLVMSetLinkage(g, LLVMPrivateLinkage);
  return g;
}

static LLVMValueRef emit_desc_global(Cg *c, JitModel *jm) {
  const rt_model_desc *d = &jm->desc;
  LLVMTypeRef info_t = LLVMStructTypeInContext(c->ctx, (LLVMTypeRef[]){c->ptr, c->i32, c->i32, c->i32, c->ptr}, 5, 0);
  LLVMTypeRef tdesc_t = LLVMStructTypeInContext(
      c->ctx, (LLVMTypeRef[]){c->i64, c->i64, c->i64, c->i32, LLVMArrayType2(c->f64, 2), c->i64, c->i64, c->i32}, 8, 0);
  LLVMValueRef *infos = nncc_calloc((size_t)d->n_tensors + 1, sizeof(LLVMValueRef));
  LLVMValueRef *tds = nncc_calloc((size_t)d->n_tensors + 1, sizeof(LLVMValueRef));
  for (int i = 0; i < d->n_tensors; i++) {
    const nncc_tensor_info *ti = &d->infos[i];
    LLVMValueRef dims[IR_MAX_RANK + 1];
    for (int k = 0; k < ti->rank; k++) dims[k] = LLVMConstInt(c->i64, (unsigned long long)ti->shape[k], 0);
    LLVMValueRef shape = const_global(c, LLVMConstArray2(c->i64, dims, (uint64_t)ti->rank), ".shape");
    LLVMValueRef f[5] = {const_str(c, ti->name), LLVMConstInt(c->i32, (unsigned)ti->role, 0),
                         LLVMConstInt(c->i32, (unsigned)ti->dtype, 0), LLVMConstInt(c->i32, (unsigned)ti->rank, 0),
                         shape};
    infos[i] = LLVMConstNamedStruct(info_t, f, 5);
    const rt_tensor_desc *t = &d->tensors[i];
    LLVMValueRef args[2] = {LLVMConstReal(c->f64, t->init_args[0]), LLVMConstReal(c->f64, t->init_args[1])};
    LLVMValueRef g[8] = {LLVMConstInt(c->i64, (unsigned long long)t->offset, 1),
                         LLVMConstInt(c->i64, (unsigned long long)t->grad_offset, 1),
                         LLVMConstInt(c->i64, (unsigned long long)t->nbytes, 1),
                         LLVMConstInt(c->i32, (unsigned long long)t->init_kind, 1),
                         LLVMConstArray2(c->f64, args, 2),
                         LLVMConstInt(c->i64, t->stream, 0),
                         LLVMConstInt(c->i64, (unsigned long long)t->label_bound, 1),
                         LLVMConstInt(c->i32, (unsigned long long)t->persistent, 0)};
    tds[i] = LLVMConstNamedStruct(tdesc_t, g, 8);
  }
  LLVMValueRef info_arr = const_global(c, LLVMConstArray2(info_t, infos, (uint64_t)d->n_tensors), ".infos");
  LLVMValueRef td_arr = const_global(c, LLVMConstArray2(tdesc_t, tds, (uint64_t)d->n_tensors), ".tensors");
  nncc_free(infos);
  nncc_free(tds);
  LLVMValueRef kernels[CG_N_KERNELS];
  for (int k = 0; k < CG_N_KERNELS; k++)
    kernels[k] = jm->kernel_name[k] ? LLVMGetNamedFunction(c->mod, jm->kernel_name[k]) : LLVMConstNull(c->ptr);
  /* check_numerics' node table */
  LLVMTypeRef node_t =
      LLVMStructTypeInContext(c->ctx, (LLVMTypeRef[]){c->ptr, c->ptr, c->i32, c->i32, c->i32, c->i32}, 6, 0);
  LLVMValueRef nodes = LLVMConstNull(c->ptr);
  if (d->nodes) {
    LLVMValueRef *ns = nncc_calloc((size_t)d->n_nodes + 1, sizeof(LLVMValueRef));
    for (int i = 0; i < d->n_nodes; i++) {
      const rt_node_desc *nd = &d->nodes[i];
      LLVMValueRef f[6] = {const_str(c, nd->name), const_str(c, nd->op), LLVMConstInt(c->i32, (unsigned)nd->id, 0),
                           LLVMConstInt(c->i32, (unsigned)nd->line, 0), LLVMConstInt(c->i32, (unsigned)nd->col, 0),
                           LLVMConstInt(c->i32, (unsigned)nd->backward, 0)};
      ns[i] = LLVMConstNamedStruct(node_t, f, 6);
    }
    nodes = const_global(c, LLVMConstArray2(node_t, ns, (uint64_t)d->n_nodes), ".nodes");
    nncc_free(ns);
  }
  LLVMTypeRef desc_t = LLVMStructTypeInContext(
      c->ctx, (LLVMTypeRef[]){c->ptr, c->i32, c->ptr, c->ptr, c->i64, c->ptr, c->ptr, c->ptr, c->ptr, c->i32, c->i32, c->i32, c->i32, c->ptr,
                              c->i64, c->ptr, c->ptr, c->i32},
      18, 0);
  LLVMValueRef f[18] = {const_str(c, d->name), LLVMConstInt(c->i32, (unsigned)d->n_tensors, 0), info_arr, td_arr,
                        LLVMConstInt(c->i64, (unsigned long long)d->slab_bytes, 0), kernels[0], kernels[1], kernels[2],
                        kernels[3], LLVMConstInt(c->i32, (unsigned long long)d->loss_index, 1),
                        LLVMConstInt(c->i32, (unsigned long long)d->lr_index, 1),
                        LLVMConstInt(c->i32, (unsigned long long)d->step_index, 1),
                        LLVMConstInt(c->i32, (unsigned long long)d->total_steps_index, 1),
                        const_str(c, d->fingerprint),
                        LLVMConstInt(c->i64, (unsigned long long)d->numerics_offset, 1), nodes,
                        const_str(c, d->source), LLVMConstInt(c->i32, (unsigned)d->n_nodes, 0)};
  return const_global(c, LLVMConstNamedStruct(desc_t, f, 18), ".desc");
}

/* const nncc_model_api *nncc_module(const char *name): the first model
 * for NULL, else the one of that name, else NULL; each api struct is
 * filled by rt_model_api_fill on first use. */
static void emit_module_entry(Cg *c, JitModel *models, int n, LLVMValueRef *descs, const char *entry) {
  LLVMTypeRef fn_t = LLVMFunctionType(c->ptr, &c->ptr, 1, 0);
  LLVMValueRef fn = LLVMAddFunction(c->mod, entry, fn_t);
  LLVMTypeRef strcmp_t = LLVMFunctionType(c->i32, (LLVMTypeRef[]){c->ptr, c->ptr}, 2, 0);
  LLVMValueRef strcmp_f = LLVMAddFunction(c->mod, "strcmp", strcmp_t);
  LLVMTypeRef fill_t = LLVMFunctionType(c->void_t, (LLVMTypeRef[]){c->ptr, c->ptr, c->ptr}, 3, 0);
  LLVMValueRef fill_f = LLVMAddFunction(c->mod, "rt_model_api_fill", fill_t);
  LLVMValueRef name = LLVMGetParam(fn, 0);
  LLVMBasicBlockRef bb = LLVMAppendBasicBlockInContext(c->ctx, fn, "entry");
  LLVMPositionBuilderAtEnd(c->b, bb);
  for (int i = 0; i < n; i++) {
    LLVMTypeRef api_t = LLVMArrayType2(c->i64, (sizeof(nncc_model_api) + 7) / 8);
    LLVMValueRef api = LLVMAddGlobal(c->mod, api_t, "api");
    LLVMSetInitializer(api, LLVMConstNull(api_t));
    LLVMSetLinkage(api, LLVMInternalLinkage);
    LLVMValueRef model_name = const_str(c, models[i].cm->name);
    LLVMBasicBlockRef test = LLVMGetInsertBlock(c->b);
    LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(c->ctx, fn, "byname");
    LLVMBasicBlockRef hit = LLVMAppendBasicBlockInContext(c->ctx, fn, "hit");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(c->ctx, fn, "next");
    LLVMPositionBuilderAtEnd(c->b, test);
    LLVMBuildCondBr(c->b, LLVMBuildIsNull(c->b, name, ""), i == 0 ? hit : next, check);
    LLVMPositionBuilderAtEnd(c->b, check);
    LLVMValueRef cmp = LLVMBuildCall2(c->b, strcmp_t, strcmp_f, (LLVMValueRef[]){name, model_name}, 2, "");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, cmp, LLVMConstInt(c->i32, 0, 0), ""), hit, next);
    LLVMPositionBuilderAtEnd(c->b, hit);
    /* first use: abi_version (the first u32) is still 0 */
    LLVMValueRef version = LLVMBuildLoad2(c->b, c->i32, api, "");
    LLVMBasicBlockRef do_fill = LLVMAppendBasicBlockInContext(c->ctx, fn, "fill");
    LLVMBasicBlockRef done = LLVMAppendBasicBlockInContext(c->ctx, fn, "done");
    LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, version, LLVMConstInt(c->i32, 0, 0), ""), do_fill, done);
    LLVMPositionBuilderAtEnd(c->b, do_fill);
    LLVMBuildCall2(c->b, fill_t, fill_f,
                   (LLVMValueRef[]){api, descs[i], LLVMGetNamedFunction(c->mod, models[i].create_name)}, 3, "");
    LLVMBuildBr(c->b, done);
    LLVMPositionBuilderAtEnd(c->b, done);
    LLVMBuildRet(c->b, api);
    LLVMPositionBuilderAtEnd(c->b, next);
  }
  LLVMBuildRet(c->b, LLVMConstNull(c->ptr));
}

/* Builds the module of every model of m into ctx. The JIT passes host
 * addresses of the descriptors; a library (aot_entry != NULL) carries
 * them as data and exports `aot_entry` (nncc_module). A recovery point
 * (ir.h): when emission runs out of memory (or meets an internal error)
 * the half-built module and the builder are disposed here, and the
 * result is NULL with the message in err; ctx and tm stay the caller's. */
static LLVMModuleRef build_module(Module *m, JitModel *models, int n, LLVMContextRef ctx,
                                  LLVMTargetMachineRef tm, const CgOptions *o, const char *aot_entry,
                                  char *err, size_t size) {
  Cg c = {0};
  cg_init_types(&c, ctx);
  c.vw = cg_target_vector_bits(o) / 32;
  c.mod = LLVMModuleCreateWithNameInContext("nncc", ctx);
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(c.mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(c.mod, td);
  LLVMDisposeTargetData(td);
  c.b = LLVMCreateBuilderInContext(ctx);
  (void)m;
  /* mod and b do not change after setjmp, so the handler may read them
   * (C11 7.13.2.1); descs and c.node_fns are scratch, which the error
   * frees */
  LLVMModuleRef mod = c.mod;
  LLVMBuilderRef b = c.b;
  NnccCatch rp;
  nncc_catch_push(&rp);
  if (setjmp(rp.jmp)) {
    snprintf(err, size, "%s", rp.msg);
    LLVMDisposeBuilder(b);
    LLVMDisposeModule(mod);
    return NULL;
  }
  LLVMValueRef *descs = nncc_calloc((size_t)n + 1, sizeof(LLVMValueRef));
  for (int i = 0; i < n; i++) {
    JitModel *jm = &models[i];
    c.prefix = arena_printf(&jm->cm->eval->arena[0], "m%d", i);
    for (int k = 0; k < CG_N_KERNELS; k++) {
      if (!cg_emit_kernel(&c, jm->cm, (CgKernel)k, jm->kernel_name[k])) jm->kernel_name[k] = NULL;
      else if (aot_entry) LLVMSetLinkage(LLVMGetNamedFunction(c.mod, jm->kernel_name[k]), LLVMInternalLinkage);
    }
    descs[i] = aot_entry ? emit_desc_global(&c, jm)
                         : LLVMConstIntToPtr(LLVMConstInt(c.i64, (unsigned long long)(uintptr_t)&jm->desc, 0), c.ptr);
    emit_create_thunk(&c, jm->create_name, descs[i]);
    if (aot_entry) LLVMSetLinkage(LLVMGetNamedFunction(c.mod, jm->create_name), LLVMInternalLinkage);
  }
  if (aot_entry) emit_module_entry(&c, models, n, descs, aot_entry);
  nncc_free(descs);
  nncc_free(c.node_fns);
  nncc_free(c.node_tasks);
  nncc_catch_pop(&rp);
  LLVMDisposeBuilder(c.b);
  return c.mod;
}

static bool consume(LLVMErrorRef e, char *err, size_t size) {
  if (!e) return true;
  char *m = LLVMGetErrorMessage(e);
  snprintf(err, size, "%s", m);
  LLVMDisposeErrorMessage(m);
  return false;
}

/* Code generation's size limit. LLVM takes about 1 s and 3.5 MB per 60
 * node functions at -O2 here (char_rnn, 128 unrolled steps: 2 min,
 * 430 MB), so a module of millions - the front end allows a million
 * nodes before autodiff multiplies them - would run for a day and then
 * exhaust memory. Above the limit it is a compile error that says so.
 * NNCC_MAX_CODEGEN_OPS overrides it (tests). */
#define CG_MAX_OPS 200000

static bool too_large(const Module *m, char *err, size_t size) {
  long limit = CG_MAX_OPS;
  const char *env = getenv("NNCC_MAX_CODEGEN_OPS");
  if (env && atol(env) > 0) limit = atol(env);
  long ops = 0;  /* node functions: lone ops, and one per fused kernel */
  for (int i = 0; i < m->n_graphs; i++) {
    const Graph *g = m->graphs[i];
    for (int k = 0; k < g->n_nodes; k++) {
      const Node *n = g->nodes[k];
      bool leaf = n->op == OP_VAR || n->op == OP_CONST;
      ops += !leaf && (!n->kernel || k == 0 || g->nodes[k - 1]->kernel != n->kernel);
    }
  }
  if (ops <= limit) return false;
  snprintf(err, size,
           "the model is too large to compile: %ld operations after differentiation and fusion (at most %ld; "
           "LLVM would take hours); unroll fewer loop iterations or split the model",
           ops, limit);
  return true;
}

CgJit *cg_jit_new(Module *m, const CgOptions *o, char *err, size_t size) {
  if (too_large(m, err, size)) return NULL;
  CgJit *j = nncc_calloc_or_null(1, sizeof *j);
  if (!j) {
    snprintf(err, size, "out of memory");
    return NULL;
  }
  /* a recovery point while j->arena grows (the memory plans); what is
   * built after it either cannot fail that way (LLVM's own allocations
   * abort) or is disposed by build_module */
  NnccCatch rp;
  nncc_catch_push(&rp);
  if (setjmp(rp.jmp)) {
    snprintf(err, size, "%s", rp.msg);
    cg_jit_free(j);
    return NULL;
  }
  for (int i = 0; i < m->n_graphs; i++) j->n_models += !m->graphs[i]->training;
  j->models = ARENA_ARRAY(&j->arena, JitModel, j->n_models + 1);
  int k = 0;
  for (int i = 0; i < m->n_graphs; i++) {
    if (m->graphs[i]->training) continue;
    JitModel *jm = &j->models[k];
    jm->cm = ir_layout(m, m->graphs[i]->model, &j->arena);
    fill_desc(jm, o, &j->arena);
    jm->create_name = arena_printf(&j->arena, "nncc_%d_create", k);
    for (int q = 0; q < CG_N_KERNELS; q++)
      jm->kernel_name[q] = arena_printf(&j->arena, "nncc_%d_%s", k, kernel_names[q]);
    k++;
  }
  nncc_catch_pop(&rp);
  arena_keep(&j->arena);  /* j owns it from here: cg_jit_free */
  LLVMTargetMachineRef tm = cg_target_machine(o, err, size);
  if (!tm) goto fail;
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMModuleRef mod =
      build_module(m, j->models, j->n_models, LLVMOrcThreadSafeContextGetContext(tsc), tm, o, NULL, err, size);
  if (!mod) {
    LLVMOrcDisposeThreadSafeContext(tsc);
    LLVMDisposeTargetMachine(tm);
    goto fail;
  }
  if (!optimize(mod, tm, o ? o->opt_level : 2, err, size)) {
    LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    LLVMDisposeTargetMachine(tm);
    goto fail;
  }
  LLVMOrcLLJITBuilderRef builder = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(builder, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(tm));
  if (!consume(LLVMOrcCreateLLJIT(&j->jit, builder), err, size)) {
    LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    goto fail;
  }
  /* the runtime functions generated code calls, by address: no -rdynamic */
  LLVMOrcCSymbolMapPair syms[] = {
      {LLVMOrcLLJITMangleAndIntern(j->jit, "rt_model_create"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&rt_model_create,
        {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
      {LLVMOrcLLJITMangleAndIntern(j->jit, "rt_dropout_mask"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&rt_dropout_mask,
        {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
      {LLVMOrcLLJITMangleAndIntern(j->jit, "rt_check_finite"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&rt_check_finite,
        {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
      {LLVMOrcLLJITMangleAndIntern(j->jit, "rt_parallel_for"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&rt_parallel_for,
        {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
#ifdef NNCC_TSAN  /* LLVM's tsan pass calls these; GCC's libtsan has no such names */
      {LLVMOrcLLJITMangleAndIntern(j->jit, "__tsan_memset"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&memset,
        {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
      {LLVMOrcLLJITMangleAndIntern(j->jit, "__tsan_memcpy"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&memcpy,
        {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
      {LLVMOrcLLJITMangleAndIntern(j->jit, "__tsan_memmove"),
       {(LLVMOrcExecutorAddress)(uintptr_t)&memmove,
        {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}},
#endif
  };
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  if (!consume(LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(syms, sizeof syms / sizeof syms[0])), err, size)) {
    LLVMDisposeModule(mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    goto fail;
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc);
  if (!consume(LLVMOrcLLJITAddLLVMIRModule(j->jit, jd, tsm), err, size)) goto fail;
  for (int i = 0; i < j->n_models; i++) {
    JitModel *jm = &j->models[i];
    rt_kernel *slots[CG_N_KERNELS] = {&jm->desc.forward, &jm->desc.evaluate, &jm->desc.backward,
                                      &jm->desc.train_step};
    for (int q = 0; q < CG_N_KERNELS; q++) {
      if (!jm->kernel_name[q]) continue;
      LLVMOrcExecutorAddress addr = 0;
      if (!consume(LLVMOrcLLJITLookup(j->jit, &addr, jm->kernel_name[q]), err, size)) goto fail;
      *slots[q] = (rt_kernel)(uintptr_t)addr;
    }
    LLVMOrcExecutorAddress create = 0;
    if (!consume(LLVMOrcLLJITLookup(j->jit, &create, jm->create_name), err, size)) goto fail;
    rt_model_api_fill(&jm->api, &jm->desc, (nncc_model * (*)(uint64_t))(uintptr_t)create);
  }
  return j;
fail:
  cg_jit_free(j);
  return NULL;
}

const nncc_model_api *cg_jit_model(CgJit *j, const char *name) {
  for (int i = 0; i < j->n_models; i++)
    if (!name || !strcmp(j->models[i].cm->name, name)) return &j->models[i].api;
  return NULL;
}

void cg_jit_free(CgJit *j) {
  if (!j) return;
  if (j->jit) {
    LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
    if (e) LLVMConsumeError(e);
  }
  arena_free(&j->arena);
  free(j);
}

char *cg_emit_text(Module *m, const CgOptions *o, CgText kind, char *err, size_t size) {
  if (too_large(m, err, size)) return NULL;
  Arena a = {0};
  int n = 0;
  for (int i = 0; i < m->n_graphs; i++) n += !m->graphs[i]->training;
  JitModel *models = ARENA_ARRAY(&a, JitModel, n + 1);
  int k = 0;
  for (int i = 0; i < m->n_graphs; i++) {
    if (m->graphs[i]->training) continue;
    JitModel *jm = &models[k];
    jm->cm = ir_layout(m, m->graphs[i]->model, &a);
    fill_desc(jm, o, &a);
    jm->create_name = arena_printf(&a, "%s_create", jm->cm->name);
    for (int q = 0; q < CG_N_KERNELS; q++) jm->kernel_name[q] = arena_printf(&a, "%s_%s", jm->cm->name, kernel_names[q]);
    k++;
  }
  LLVMTargetMachineRef tm = cg_target_machine(o, err, size);
  if (!tm) {
    arena_free(&a);
    return NULL;
  }
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = build_module(m, models, n, ctx, tm, o, NULL, err, size);
  char *text = NULL;
  if (mod && (kind == CG_TEXT_LLVM_RAW || optimize(mod, tm, o ? o->opt_level : 2, err, size))) {
    if (kind == CG_TEXT_ASM) {
      LLVMMemoryBufferRef buf = NULL;
      char *msg = NULL;
      if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &msg, &buf)) {
        snprintf(err, size, "LLVM: %s", msg);
        LLVMDisposeMessage(msg);
      } else {
        size_t len = LLVMGetBufferSize(buf);
        text = malloc(len + 1);
        if (text) {
          memcpy(text, LLVMGetBufferStart(buf), len);
          text[len] = 0;
        }
        LLVMDisposeMemoryBuffer(buf);
      }
    } else {
      char *s = LLVMPrintModuleToString(mod);
      text = strdup(s);
      LLVMDisposeMessage(s);
    }
    if (!text && !*err) snprintf(err, size, "out of memory");
  }
  if (mod) LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  arena_free(&a);
  return text;
}

/* ------------------------------------------------------------------ AOT */

/* The model's tensor ids and sizes as C: MLP_H_W, MLP_SLAB_BYTES, ... */
static void write_header(FILE *f, const JitModel *models, int n, const char *entry, const char *source) {
  extern const char nncc_abi_header[];
  fprintf(f, "/* generated by nncc from %s - do not edit */\n", source ? source : "?");
  fputs(nncc_abi_header, f);
  fprintf(f, "\n/* the library's entry point */\nconst nncc_model_api *%s(const char *model_name);\n", entry);
  for (int i = 0; i < n; i++) {
    const rt_model_desc *d = &models[i].desc;
    char up[128];
    size_t k = 0;
    for (const char *p = d->name; *p && k + 1 < sizeof up; p++) up[k++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
    up[k] = 0;
    int64_t params = 0, grads = 0, state = 0;
    fprintf(f, "\n/* model %s: tensor ids for data()/grad(), shapes in comments */\nenum {\n", d->name);
    for (int t = 0; t < d->n_tensors; t++) {
      const nncc_tensor_info *ti = &d->infos[t];
      char id[256];
      size_t q = 0;
      for (const char *p = ti->name; *p && q + 1 < sizeof id; p++)
        id[q++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : (*p == '.' || *p == ':') ? '_' : *p);
      id[q] = 0;
      fprintf(f, "  %s_%s = %d,  /* %s %s[", up, id, t, ti->role == NNCC_INPUT ? "input" : ti->role == NNCC_PARAM ? "param"
                                                : ti->role == NNCC_STATE ? "state" : ti->role == NNCC_OUTPUT ? "output" : "loss",
              ti->dtype == NNCC_I32 ? "i32" : "f32");
      for (int r = 0; r < ti->rank; r++) fprintf(f, r ? ",%lld" : "%lld", (long long)ti->shape[r]);
      fprintf(f, "] */\n");
      if (ti->role == NNCC_PARAM) params += d->tensors[t].nbytes;
      if (d->tensors[t].grad_offset >= 0) grads += d->tensors[t].nbytes;
      if (ti->role == NNCC_STATE) state += d->tensors[t].nbytes;
    }
    fprintf(f, "  %s_N_TENSORS = %d\n};\n", up, d->n_tensors);
    fprintf(f, "#define %s_FINGERPRINT \"%s\"   /* graph identity: checkpoints of another graph are refused */\n", up,
            d->fingerprint);
    fprintf(f, "#define %s_SLAB_BYTES %lldLL   /* all of one instance's memory */\n", up, (long long)d->slab_bytes);
    fprintf(f, "#define %s_PARAM_BYTES %lldLL\n#define %s_GRAD_BYTES %lldLL\n#define %s_STATE_BYTES %lldLL   /* running stats, optimizer moments, step, lr */\n",
            up, (long long)params, up, (long long)grads, up, (long long)state);
  }
}

static int write_header_file(const char *path, const JitModel *models, int n, const char *entry,
                             const char *source, char *err, size_t size) {
  rt_outfile out;
  if (rt_out_open(&out, path, 0666, err, size)) return 1;
  write_header(out.f, models, n, entry, source);
  return rt_out_commit(&out, err, size);
}

/* The whole file at path (a linked library), malloc'ed. */
static char *slurp(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 1 << 16, n = 0;
  char *buf = malloc(cap);
  while (buf) {
    n += fread(buf + n, 1, cap - n, f);
    if (n < cap) break;
    char *more = realloc(buf, cap * 2);
    if (!more) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = more;
    cap *= 2;
  }
  bool bad = ferror(f);
  fclose(f);
  if (bad) {
    free(buf);
    return NULL;
  }
  *len = n;
  return buf;
}

int cg_write_library(Module *m, const CgOptions *o, const CgLibrary *lib, char *err, size_t size) {
  if (too_large(m, err, size)) return 1;
  Arena a = {0};
  int n = 0, rc = 1;
  for (int i = 0; i < m->n_graphs; i++) n += !m->graphs[i]->training;
  JitModel *models = ARENA_ARRAY(&a, JitModel, n + 1);
  int k = 0;
  for (int i = 0; i < m->n_graphs; i++) {
    if (m->graphs[i]->training) continue;
    JitModel *jm = &models[k];
    jm->cm = ir_layout(m, m->graphs[i]->model, &a);
    fill_desc(jm, o, &a);
    jm->create_name = arena_printf(&a, "nncc_%d_create", k);
    for (int q = 0; q < CG_N_KERNELS; q++) jm->kernel_name[q] = arena_printf(&a, "nncc_%d_%s", k, kernel_names[q]);
    k++;
  }
  const char *entry = arena_printf(&a, "%s_module", lib->prefix ? lib->prefix : "nncc");
  char obj[] = "/tmp/nncc_objXXXXXX.o";
  char *so_tmp = NULL, *link_dir = NULL;
  LLVMTargetMachineRef tm = cg_target_machine(o, err, size);
  if (!tm) goto out;
  LLVMContextRef ctx = LLVMContextCreate();
  LLVMModuleRef mod = build_module(m, models, n, ctx, tm, o, entry, err, size);
  /* descriptors point at the kernels: the desc globals keep them alive */
  bool ok = mod && optimize(mod, tm, o ? o->opt_level : 2, err, size);
  int fd = ok ? mkstemps(obj, 2) : -1;
  char *msg = NULL;
  if (ok && fd < 0) {
    snprintf(err, size, "cannot create a temporary object file");
    ok = false;
  }
  if (fd >= 0) close(fd);
  if (ok && LLVMTargetMachineEmitToFile(tm, mod, obj, LLVMObjectFile, &msg)) {
    snprintf(err, size, "LLVM: %s", msg);
    LLVMDisposeMessage(msg);
    ok = false;
  }
  if (mod) LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  if (!ok) goto out;
  /* link: the kernels and the generic runtime half (libc and libm only),
   * into a private directory; the result reaches so_path by the output
   * rules (runtime/outfile.h) */
  const char *tmpdir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
  link_dir = arena_printf(&a, "%s/nncc_linkXXXXXX", tmpdir);
  if (!mkdtemp(link_dir)) {
    snprintf(err, size, "cannot create a temporary directory in %s: %s", tmpdir, strerror(errno));
    link_dir = NULL;
    goto out;
  }
  so_tmp = arena_printf(&a, "%s/lib.so", link_dir);
  const char *cc = getenv("CC") ? getenv("CC") : "cc";
  char *cmd = arena_printf(&a, "%s -shared -o '%s' '%s' '%s' -lm -lpthread 2>&1", cc, so_tmp, obj, lib->runtime_lib);
  FILE *p = popen(cmd, "r");
  char out[512] = "";
  size_t got = p ? fread(out, 1, sizeof out - 1, p) : 0;
  out[got] = 0;
  int status = p ? pclose(p) : -1;
  if (status != 0) {
    snprintf(err, size, "linking '%s' failed: %s", lib->so_path, got ? out : "cannot run the C compiler");
    goto out;
  }
  size_t so_len = 0;
  char *so = slurp(so_tmp, &so_len);
  if (!so) {
    snprintf(err, size, "cannot read the linked library '%s'", so_tmp);
    goto out;
  }
  /* the header first: a failure then leaves the old .so and .h as a pair */
  if (lib->header_path && write_header_file(lib->header_path, models, n, entry, lib->source, err, size)) {
    free(so);
    goto out;
  }
  int wrc = rt_out_write_file(lib->so_path, so, so_len, 0777, err, size);
  free(so);
  if (wrc) goto out;
  rc = 0;
out:
  unlink(obj);
  if (so_tmp) unlink(so_tmp);
  if (link_dir) rmdir(link_dir);
  arena_free(&a);
  return rc;
}
