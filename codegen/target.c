/* target.c - the host target: LLVM's native target, the host CPU name and
 * features (notes/llvm-c-api.md: pass the host TM everywhere, or LLVM
 * does not vectorize). Used by `nncc --version` now, by the JIT and AOT
 * paths later. */
#include "codegen/codegen.h"

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <stdio.h>
#include <string.h>

static int init_native(char *err, size_t err_size) {
  static int done, ok;
  if (!done) {
    done = 1;
    ok = !LLVMInitializeNativeTarget() && !LLVMInitializeNativeAsmPrinter();
  }
  if (!ok) snprintf(err, err_size, "LLVM has no native target for this host");
  return ok;
}

int cg_host_info(CgHostInfo *info, char *err, size_t err_size) {
  memset(info, 0, sizeof *info);
  unsigned major, minor, patch;
  LLVMGetVersion(&major, &minor, &patch);
  snprintf(info->llvm_version, sizeof info->llvm_version, "%u.%u.%u", major, minor, patch);
  if (!init_native(err, err_size)) return 0;
  char *triple = LLVMGetDefaultTargetTriple();
  char *cpu = LLVMGetHostCPUName();
  char *features = LLVMGetHostCPUFeatures();
  snprintf(info->triple, sizeof info->triple, "%s", triple);
  snprintf(info->cpu, sizeof info->cpu, "%s", cpu);
  /* features look like "+sse2,+avx2,-avx512f,..." */
  info->vector_bits = 128;
  if (strstr(features, "+avx2")) info->vector_bits = 256;
  if (strstr(features, "+avx512f")) info->vector_bits = 512;
  LLVMDisposeMessage(features);
  LLVMDisposeMessage(cpu);
  LLVMDisposeMessage(triple);
  return 1;
}

/* A named --target-cpu leaves LLVM's feature string empty, so the CPUs
 * with AVX-512 are listed by name (LLVM 19's x86 names). */
static const char *const avx512_cpus[] = {
    "skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake-client", "icelake-server",
    "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids", "graniterapids", "graniterapids-d",
    "znver4", "znver5", "knl", "knm", "x86-64-v4",
};

int cg_target_vector_bits(const CgOptions *o) {
  if (o && o->vector_bits) return o->vector_bits;
  if (o && o->target_cpu && strcmp(o->target_cpu, "native")) {
    for (size_t i = 0; i < sizeof avx512_cpus / sizeof avx512_cpus[0]; i++)
      if (!strcmp(o->target_cpu, avx512_cpus[i])) return 512;
    return 256;
  }
  CgHostInfo info;
  char err[128];
  return cg_host_info(&info, err, sizeof err) && info.vector_bits == 512 ? 512 : 256;
}
