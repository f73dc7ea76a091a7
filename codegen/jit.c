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
#include "runtime/runtime.h"

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdlib.h>
#include <string.h>

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
  c->kernel_t = LLVMFunctionType(c->void_t, &c->ptr, 1, 0);
}

/* A compiled model: its layout, descriptor and ABI table (host memory). */
typedef struct JitModel {
  CgModel *cm;
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

static void fill_desc(JitModel *jm, Arena *a) {
  CgModel *cm = jm->cm;
  jm->infos = ARENA_ARRAY(a, nncc_tensor_info, cm->n_tensors + 1);
  jm->tensors = ARENA_ARRAY(a, rt_tensor_desc, cm->n_tensors + 1);
  for (int i = 0; i < cm->n_tensors; i++) {
    const CgTensor *t = &cm->tensors[i];
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
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", level < 0 ? 2 : level > 3 ? 3 : level);
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

/* Builds the module of every model of m into ctx. The JIT passes host
 * addresses of the descriptors. */
static LLVMModuleRef build_module(Module *m, JitModel *models, int n, LLVMContextRef ctx,
                                  LLVMTargetMachineRef tm) {
  Cg c = {0};
  cg_init_types(&c, ctx);
  c.mod = LLVMModuleCreateWithNameInContext("nncc", ctx);
  char *triple = LLVMGetTargetMachineTriple(tm);
  LLVMSetTarget(c.mod, triple);
  LLVMDisposeMessage(triple);
  LLVMTargetDataRef td = LLVMCreateTargetDataLayout(tm);
  LLVMSetModuleDataLayout(c.mod, td);
  LLVMDisposeTargetData(td);
  c.b = LLVMCreateBuilderInContext(ctx);
  (void)m;
  for (int i = 0; i < n; i++) {
    JitModel *jm = &models[i];
    for (int k = 0; k < CG_N_KERNELS; k++)
      if (!cg_emit_kernel(&c, jm->cm, (CgKernel)k, jm->kernel_name[k])) jm->kernel_name[k] = NULL;
    LLVMValueRef desc = LLVMConstIntToPtr(LLVMConstInt(c.i64, (unsigned long long)(uintptr_t)&jm->desc, 0), c.ptr);
    emit_create_thunk(&c, jm->create_name, desc);
  }
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

CgJit *cg_jit_new(Module *m, const CgOptions *o, char *err, size_t size) {
  CgJit *j = calloc(1, sizeof *j);
  for (int i = 0; i < m->n_graphs; i++) j->n_models += !m->graphs[i]->training;
  j->models = ARENA_ARRAY(&j->arena, JitModel, j->n_models + 1);
  int k = 0;
  for (int i = 0; i < m->n_graphs; i++) {
    if (m->graphs[i]->training) continue;
    JitModel *jm = &j->models[k];
    jm->cm = cg_layout(m, m->graphs[i]->model, &j->arena);
    fill_desc(jm, &j->arena);
    jm->create_name = arena_printf(&j->arena, "nncc_%d_create", k);
    for (int q = 0; q < CG_N_KERNELS; q++)
      jm->kernel_name[q] = arena_printf(&j->arena, "nncc_%d_%s", k, kernel_names[q]);
    k++;
  }
  LLVMTargetMachineRef tm = cg_target_machine(o, err, size);
  if (!tm) goto fail;
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  LLVMModuleRef mod = build_module(m, j->models, j->n_models, LLVMOrcThreadSafeContextGetContext(tsc), tm);
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
  };
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->jit);
  if (!consume(LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(syms, 2)), err, size)) {
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
  Arena a = {0};
  int n = 0;
  for (int i = 0; i < m->n_graphs; i++) n += !m->graphs[i]->training;
  JitModel *models = ARENA_ARRAY(&a, JitModel, n + 1);
  int k = 0;
  for (int i = 0; i < m->n_graphs; i++) {
    if (m->graphs[i]->training) continue;
    JitModel *jm = &models[k];
    jm->cm = cg_layout(m, m->graphs[i]->model, &a);
    fill_desc(jm, &a);
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
  LLVMModuleRef mod = build_module(m, models, n, ctx, tm);
  char *text = NULL;
  if (kind == CG_TEXT_LLVM_RAW || optimize(mod, tm, o ? o->opt_level : 2, err, size)) {
    if (kind == CG_TEXT_ASM) {
      LLVMMemoryBufferRef buf = NULL;
      char *msg = NULL;
      if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &msg, &buf)) {
        snprintf(err, size, "LLVM: %s", msg);
        LLVMDisposeMessage(msg);
      } else {
        size_t len = LLVMGetBufferSize(buf);
        text = malloc(len + 1);
        memcpy(text, LLVMGetBufferStart(buf), len);
        text[len] = 0;
        LLVMDisposeMemoryBuffer(buf);
      }
    } else {
      char *s = LLVMPrintModuleToString(mod);
      text = strdup(s);
      LLVMDisposeMessage(s);
    }
  }
  LLVMDisposeModule(mod);
  LLVMContextDispose(ctx);
  LLVMDisposeTargetMachine(tm);
  arena_free(&a);
  return text;
}
