/* codegen.h - the public header of the codegen library: graph IR to LLVM
 * IR, the host target machine, the JIT and object / .so output.
 * This is the only library that includes LLVM headers. */
#ifndef NNCC_CODEGEN_H
#define NNCC_CODEGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "ir/ir.h"
#include "runtime/nncc.h"

/* The LLVM version nncc was built with and the host target that code is
 * generated for ("x86_64-pc-linux-gnu", "znver5", "+avx512f,..."): what
 * `nncc --version` prints. Returns false (with a reason in err) when LLVM
 * has no target for this host. */
typedef struct CgHostInfo {
  char llvm_version[32];
  char triple[128];
  char cpu[64];
  int vector_bits;   /* widest usable SIMD register: 128, 256 or 512 */
} CgHostInfo;

int cg_host_info(CgHostInfo *info, char *err, size_t err_size);

/* ------------------------------------------------------- code generation */

typedef struct CgOptions {
  int opt_level;           /* -O0..-O3 (LLVMRunPasses default<On>) */
  const char *target_cpu;  /* NULL or "native": the host's cpu and features */
  int vector_bits;         /* width of the matmul tiles' vectors: 0 = the
                              target's (512 with AVX-512, else 256); tests
                              force 512 on any x86 (LLVM splits it) */
  bool check_numerics;     /* --check-numerics: every kernel checks each f32
                              value it computes for nan/inf and the entry
                              point fails (RT_ERR_NONFINITE) naming the
                              first node that made one; off: no code */
  const char *source_name; /* the .nn file those messages name, or NULL */
} CgOptions;

/* target.c: whether `cpu` (a --target-cpu) names a CPU of the host
 * target; NULL and "native" do. Else false with msg ("--target-cpu
 * 'bogus' is not a CPU of x86-64; did you mean ...?" or the list),
 * truncated to msg_size. LLVM warns about an unknown name and then
 * aborts ("64-bit code requested on a subtarget that doesn't support
 * it"), so every path that hands a CPU to LLVM checks first. On a host
 * without a list (not x86-64) every name passes. */
bool cg_target_cpu_check(const char *cpu, char *msg, size_t msg_size);
/* The names cg_target_cpu_check accepts besides "native" (*n of them),
 * or NULL with *n = 0 on a host without a list. */
const char *const *cg_target_cpus(int *n);

/* The vector width code generation uses for o's target, in bits. */
int cg_target_vector_bits(const CgOptions *o);

/* jit.c: every model of m (after the pass pipeline), compiled by LLVM and
 * loaded with ORC LLJIT; each is an nncc_model_api (SPEC §4). NULL with a
 * message in err when LLVM fails. */
typedef struct CgJit CgJit;
CgJit *cg_jit_new(Module *m, const CgOptions *o, char *err, size_t err_size);
/* The model named `name` (NULL: the first), or NULL. */
const nncc_model_api *cg_jit_model(CgJit *j, const char *name);
void cg_jit_free(CgJit *j);
/* AOT: every model of m as a shared library that depends on libc and
 * libm only, exporting PREFIX_module (nncc_module by default); with
 * header_path also a C header of the ABI and the models' tensors.
 * Written to temporary files renamed into place. 0, or 1 with err. */
typedef struct CgLibrary {
  const char *so_path;
  const char *header_path;   /* or NULL */
  const char *prefix;        /* or NULL: "nncc" */
  const char *runtime_lib;   /* libnncc_rt.a: the runtime half (PIC) */
  const char *source;        /* the .nn file, for the header's comment */
} CgLibrary;
int cg_write_library(Module *m, const CgOptions *o, const CgLibrary *lib, char *err, size_t err_size);

/* --emit=llvm and --emit=asm: the module of every model as text
 * (malloc'ed), or NULL with a message in err. */
typedef enum CgText { CG_TEXT_LLVM_RAW, CG_TEXT_LLVM, CG_TEXT_ASM } CgText;
char *cg_emit_text(Module *m, const CgOptions *o, CgText kind, char *err, size_t err_size);

#endif
