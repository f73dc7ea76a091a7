/* driver.h - internal to the nncc driver: what the `train`, `eval` and
 * `bench` commands (run.c) take from the command line, and the two ways
 * in to libnncc below its public API. */
#ifndef NNCC_TOOLS_DRIVER_H
#define NNCC_TOOLS_DRIVER_H

#include "codegen/codegen.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tools/libnncc.h"

/* libnncc.c for the driver, which parses the command line itself. A jit
 * of m, which has been through the whole pass pipeline; m stays the
 * driver's (it needs the train blocks and graphs) and must outlive the
 * jit. NULL with a message in err. */
nncc_jit *nncc_jit_from_module(Module *m, const CgOptions *o, char *err, size_t err_size);
/* The whole pipeline on a fresh parse of src into the jit's own arena,
 * with -D overrides the driver has parsed already; diagnostics as for
 * nncc_compile_string. (`gradcheck --jit`: the driver's own module stops
 * before autodiff.) */
nncc_jit *nncc_jit_from_source(const char *path, const char *src, size_t len, const ElabOptions *eo,
                               const CgOptions *o, char **diagnostics);

/* ------------------------------------------- compile.c: one compilation */

/* -D NAME=VALUE: VALUE a number; an integer stays an integer, and one
 * outside int64 is an error, never clamped. Fills *ov but its name, whose
 * length (the bytes of arg before '=') goes to *name_len: the caller
 * copies it where it keeps names. false with the message (no
 * "nncc: error: ") in msg. */
bool nncc_parse_define(const char *arg, ConstOverride *ov, size_t *name_len, char *msg, size_t msg_size);
/* The directory of path, which relative data paths resolve against
 * (malloc'ed; "." for a bare file name). NULL when out of memory. */
char *nncc_dir_of(const char *path);

typedef enum CompileStatus {
  COMPILE_OK,            /* through the pipeline, verified (parse_only: parsed) */
  COMPILE_ERROR,         /* reported in the Diag (or on its out) */
  COMPILE_BAD_DEFINE,    /* -D bad_define names no const of the program; not elaborated */
  COMPILE_NO_SUCH_MODEL, /* no model named `model`; the pipeline did not run */
  COMPILE_NO_MODEL,      /* the program defines none: warned; the pipeline did not run */
} CompileStatus;

typedef struct Compilation {
  const ElabOptions *eo;  /* -D overrides and the base directory, or NULL */
  const PassOptions *po;  /* NULL: the whole pipeline, printing on the Diag's out */
  const char *model;      /* keep only this model, or NULL for every one */
  bool no_input_grads;    /* autodiff: no d loss / d input */
  bool parse_only;        /* stop after the parse and the -D check (--emit=ast) */
  Program *program;       /* out: the parse */
  Module *module;         /* out: the Module (NULL when not elaborated) */
  int bad_define;         /* out: with COMPILE_BAD_DEFINE, the index into eo->overrides */
} Compilation;

/* Lex, parse, check the -D names, elaborate, select the model, run the
 * pass pipeline and verify, all in a; user errors go to d. The caller
 * words COMPILE_BAD_DEFINE and COMPILE_NO_SUCH_MODEL for its channel. */
CompileStatus compile_module(Arena *a, Diag *d, Compilation *c);

/* -------------------------------------------- run.c: the run commands */

typedef struct RunOptions {
  const char *file;       /* the .nn file (for messages) */
  const char *model;      /* --model, or NULL */
  long long epochs;       /* --epochs, 0 = the train block's */
  long long seed;         /* --seed, -1 = the train block's */
  const char *save, *resume, *load, *log;
  const char *init_from;      /* train: weights only from a checkpoint */
  const char *load_weights;   /* eval: weights only (another graph's checkpoint) */
  long long save_every;       /* train: also a checkpoint every N steps (0: per epoch only) */
  bool check_numerics;        /* the model checks every op for nan/inf */
  bool quiet;
  int threads;                /* --threads, 0 = the runtime's default */
  CgOptions cg;
  /* the source again, for the remainder batch of evaluation (run.c
   * compiles the model once more with the batch const set to N mod B) */
  const char *src;
  size_t src_len;
  const ElabOptions *eo;
} RunOptions;

/* Each returns the process exit code: 0 ok, 1 compile error, 3 run-time
 * error (missing data, bad checkpoint, non-finite loss). */
/* The whole file, NUL-terminated (malloc'ed), or NULL with the reason
 * ("it is a directory", "larger than 64 MiB", strerror) in why. */
char *nncc_read_source(const char *path, size_t *len, char why[256]);

int run_train(const RunOptions *o, Module *m);
int run_eval(const RunOptions *o, Module *m);
int run_bench(const RunOptions *o, Module *m);

#endif
