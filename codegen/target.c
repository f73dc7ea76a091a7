/* target.c - the host target: LLVM's native target, the host CPU name and
 * features (notes/llvm-c-api.md: pass the host TM everywhere, or LLVM
 * does not vectorize), and the --target-cpu names it accepts. Used by
 * `nncc --version`, the driver's option checks and the JIT and AOT paths. */
#include "codegen/codegen.h"

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>
#include <stdarg.h>
#include <stdbool.h>
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

/* ---------------------------------------------------- --target-cpu names */

/* LLVM 19's x86 CPUs that can generate 64-bit code: `llc-19
 * -mtriple=x86_64 -mcpu=help` lists 128, and the 37 32-bit ones
 * (i486, pentium4, athlon, ...) abort in the x86 subtarget. llvm-c has
 * no way to ask (MCSubtargetInfo::isCPUStringValid is C++), so the list
 * is kept here; tests/codegen/test_target.c compiles with every name, so
 * a build against an LLVM that lacks one fails there. */
static const char *const x86_64_cpus[] = {
    "alderlake", "amdfam10", "arrowlake", "arrowlake-s", "arrowlake_s", "athlon-fx", "athlon64",
    "athlon64-sse3", "atom", "atom_sse4_2", "atom_sse4_2_movbe", "barcelona", "bdver1", "bdver2", "bdver3",
    "bdver4", "bonnell", "broadwell", "btver1", "btver2", "cannonlake", "cascadelake", "clearwaterforest",
    "cooperlake", "core-avx-i", "core-avx2", "core2", "core_2_duo_sse4_1", "core_2_duo_ssse3",
    "core_2nd_gen_avx", "core_3rd_gen_avx", "core_4th_gen_avx", "core_4th_gen_avx_tsx", "core_5th_gen_avx",
    "core_5th_gen_avx_tsx", "core_aes_pclmulqdq", "core_i7_sse4_2", "corei7", "corei7-avx", "emeraldrapids",
    "generic", "goldmont", "goldmont-plus", "goldmont_plus", "gracemont", "grandridge", "graniterapids",
    "graniterapids-d", "graniterapids_d", "haswell", "icelake-client", "icelake-server", "icelake_client",
    "icelake_server", "ivybridge", "k8", "k8-sse3", "knl", "knm", "lunarlake", "meteorlake", "mic_avx512",
    "nehalem", "nocona", "opteron", "opteron-sse3", "pantherlake", "penryn", "raptorlake", "rocketlake",
    "sandybridge", "sapphirerapids", "sierraforest", "silvermont", "skx", "skylake", "skylake-avx512",
    "skylake_avx512", "slm", "tigerlake", "tremont", "westmere", "x86-64", "x86-64-v2", "x86-64-v3",
    "x86-64-v4", "znver1", "znver2", "znver3", "znver4", "znver5",
};
#define N_X86_64_CPUS ((int)(sizeof x86_64_cpus / sizeof x86_64_cpus[0]))

static bool host_is_x86_64(void) {
  char *triple = LLVMGetDefaultTargetTriple();
  bool x86_64 = !strncmp(triple, "x86_64", 6);
  LLVMDisposeMessage(triple);
  return x86_64;
}

const char *const *cg_target_cpus(int *n) {
  *n = host_is_x86_64() ? N_X86_64_CPUS : 0;
  return *n ? x86_64_cpus : NULL;
}

/* snprintf at msg + *at, truncating at size; *at counts what did not fit. */
static void append(char *msg, size_t size, size_t *at, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int k = vsnprintf(*at < size ? msg + *at : NULL, *at < size ? size - *at : 0, fmt, ap);
  va_end(ap);
  if (k > 0) *at += (size_t)k;
}

bool cg_target_cpu_check(const char *cpu, char *msg, size_t msg_size) {
  if (msg_size) msg[0] = '\0';
  int n;
  const char *const *cpus = cg_target_cpus(&n);
  if (!cpu || !strcmp(cpu, "native") || !cpus) return true;
  for (int i = 0; i < n; i++)
    if (!strcmp(cpu, cpus[i])) return true;
  size_t at = 0;
  append(msg, msg_size, &at, "--target-cpu '%s' is not a CPU of x86-64; ", cpu);
  const char *close = diag_closest(cpu, cpus, n);
  if (close) {
    append(msg, msg_size, &at, "did you mean '%s'?", close);
    return false;
  }
  /* nothing close: the whole list, as clang gives it */
  append(msg, msg_size, &at, "the CPUs are native");
  for (int i = 0; i < n; i++) append(msg, msg_size, &at, ", %s", cpus[i]);
  return false;
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
