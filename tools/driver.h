/* driver.h - internal to the nncc driver: what the `train`, `eval` and
 * `bench` commands (train.c) take from the command line. */
#ifndef NNCC_TOOLS_DRIVER_H
#define NNCC_TOOLS_DRIVER_H

#include "codegen/codegen.h"

typedef struct RunOptions {
  const char *file;       /* the .nn file (for messages) */
  const char *model;      /* --model, or NULL */
  long long epochs;       /* --epochs, 0 = the train block's */
  long long seed;         /* --seed, -1 = the train block's */
  const char *save, *resume, *load, *log;
  bool quiet;
  CgOptions cg;
} RunOptions;

/* Each returns the process exit code: 0 ok, 1 compile error, 3 run-time
 * error (missing data, bad checkpoint, non-finite loss). */
int run_train(const RunOptions *o, Module *m);
int run_eval(const RunOptions *o, Module *m);
int run_bench(const RunOptions *o, Module *m);

#endif
