/* codegen.h - the public header of the codegen library: graph IR to LLVM
 * IR, the host target machine, the JIT and object / .so output.
 * This is the only library that includes LLVM headers. */
#ifndef NNCC_CODEGEN_H
#define NNCC_CODEGEN_H

#include <stddef.h>

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

#endif
