/* libnncc.h - nncc as a library: compile a .nn file or a string with the
 * whole pipeline (front end, passes, LLVM), load it into the process with
 * ORC LLJIT, and get each model as the nncc_model_api of SPEC §4 - the
 * same table an AOT .so returns from nncc_module(). The nncc command
 * line runs its train, eval, bench and `gradcheck --jit` commands
 * through this library. Link with libnncc.a (and LLVM, zlib, libm).
 *
 *   char *diag = NULL;
 *   nncc_jit *j = nncc_compile_string("net.nn", source, NULL, &diag);
 *   if (!j) { fputs(diag, stderr); free(diag); return 1; }
 *   free(diag);                                 // warnings, or NULL
 *   const nncc_model_api *api = nncc_jit_model(j, NULL);
 *   nncc_model *m = api->create(1);
 *   ... api->data(m, i), api->train_step(m), api->grad(m, i) ...
 *   api->destroy(m);
 *   nncc_jit_free(j);                           // after every instance
 */
#ifndef NNCC_LIBNNCC_H
#define NNCC_LIBNNCC_H

#include "nncc.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One compilation: the compiled code of every model of one source and
 * the IR its tensor descriptions point into. */
typedef struct nncc_jit nncc_jit;

/* NULL options mean NNCC_COMPILE_DEFAULTS: -O2, the host cpu, no
 * defines. (A zeroed struct asks for -O0.) */
typedef struct nncc_compile_options {
  int opt_level;                /* 0..3 as -O0..-O3; anything else: 2 */
  const char *target_cpu;       /* NULL or "native": the host's cpu and features */
  const char *const *defines;   /* "NAME=VALUE" as -D: overrides `const NAME` */
  int n_defines;
  int check_numerics;           /* nonzero: every op's f32 result is checked for
                                   nan/inf; an entry point that meets one fails
                                   (4) naming the first op, its line and col */
} nncc_compile_options;
#define NNCC_COMPILE_DEFAULTS {2, NULL, NULL, 0, 0}

/* Compile a .nn file (its data paths resolve against its directory) or a
 * source text named `name` in diagnostics (data paths against the
 * current directory). Returns NULL when the program has errors or code
 * generation fails. When diagnostics is not NULL, *diagnostics receives
 * everything the compiler reported - the text `nncc check` prints:
 * "name:line:col: error: msg", the source line and a caret; warnings
 * too, on success - as a malloc'ed string the caller frees, or NULL when
 * there was nothing to report. */
nncc_jit *nncc_compile_file(const char *path, const nncc_compile_options *o, char **diagnostics);
nncc_jit *nncc_compile_string(const char *name, const char *source, const nncc_compile_options *o,
                              char **diagnostics);

/* The model named `model` (NULL: the first in the source), or NULL. The
 * table and its tensor descriptions live as long as the jit. */
const nncc_model_api *nncc_jit_model(nncc_jit *j, const char *model);

/* Frees the compiled code: destroy every nncc_model created from it
 * first. NULL is ignored. */
void nncc_jit_free(nncc_jit *j);

#ifdef __cplusplus
}
#endif

#endif
