/* train_spec.h - what a validated `train` block says (SPEC §2.7).
 *
 * A message, not IR: the front end (frontend/train_block.c) validates a
 * train block into a TrainSpec; the optimizer pass turns it into update
 * nodes, the fingerprint pass hashes it, and the trainer (tools/run.c)
 * loads its data and runs its epochs. Module.trains carries it from one
 * to the others. It lives in ir/ - beside ir.h, not inside it - because
 * both the front end and passes/ read it: the library layering is
 * strictly downward (ir <- frontend, passes <- codegen <- tools), and ir
 * is the one floor below both. Only the files that read a train block
 * include it.
 *
 * The kinds chosen from a fixed list are enums, parsed once by the front
 * end; their names (the words of the language) come back from the
 * *_name functions - the fingerprint hashes those, so a checkpoint's
 * identity does not depend on the enums' order. */
#ifndef NNCC_IR_TRAIN_SPEC_H
#define NNCC_IR_TRAIN_SPEC_H

#include "ir/ir.h"

typedef enum OptimizerKind {
  OPTIM_SGD,      /* sgd(lr, momentum, nesterov, weight_decay) */
  OPTIM_ADAGRAD,  /* adagrad(lr, eps, weight_decay) */
  OPTIM_RMSPROP,  /* rmsprop(lr, alpha, eps, momentum, weight_decay) */
  OPTIM_ADAM,     /* adam(lr, beta1, beta2, eps, weight_decay): L2 in the gradient */
  OPTIM_ADAMW,    /* adamw(...): decoupled weight decay */
  OPTIM_COUNT
} OptimizerKind;

typedef enum ScheduleKind {
  SCHED_CONSTANT, /* the learning rate as given */
  SCHED_STEP,     /* times gamma every `every` steps */
  SCHED_COSINE,   /* cosine to 0 over the run, after a linear warmup */
  SCHED_COUNT
} ScheduleKind;

typedef enum DataKind {
  DATA_IDX,       /* idx(NAME = "file.idx[.gz]", ..., scale = s) */
  DATA_CSV,       /* csv("file.csv", NAME = column or [lo:hi], ...) */
  DATA_NPY,       /* npy(NAME = "file.npy", ...) */
  DATA_TEXT,      /* text("file.txt"): characters as i32 sequences */
  DATA_SINE,      /* synthetic: sine(n, lo, hi) */
  DATA_SPIRAL,    /* synthetic: spiral(n, classes) */
  DATA_XOR,       /* synthetic: xor(n) */
  DATA_COUNT
} DataKind;

/* The kind's word in the language ("adamw", "cosine", "spiral"). */
const char *optimizer_name(OptimizerKind k);
const char *schedule_name(ScheduleKind k);
const char *data_kind_name(DataKind k);
/* The kind a word names, or -1 (the caller reports it). */
int optimizer_by_name(const char *name);
int schedule_by_name(const char *name);
int data_kind_by_name(const char *name);

/* A validated data source of a train block. Paths are resolved against
 * the .nn file's directory. */
typedef struct DataSpec {
  DataKind kind;
  SrcLoc loc;
  const char *path;       /* positional file (csv, text), resolved */
  int n_bind;             /* keyword bindings: input name -> file/column */
  const char **bind_input;
  const char **bind_path; /* idx/npy: file, resolved against the .nn dir */
  int64_t *bind_col_lo, *bind_col_hi;  /* csv: columns [lo, hi) */
  double scale;           /* idx: pixel scale (1 when not given) */
  bool extra_columns;     /* csv: rows may have more fields than the bindings use */
  int64_t n;              /* synthetic: sample count */
  int64_t classes;        /* spiral */
  double lo, hi;          /* sine */
} DataSpec;

struct TrainSpec {
  const char *model;
  SrcLoc loc;
  DataSpec *data, *eval;  /* eval may be NULL */
  OptimizerKind optimizer;
  double lr, momentum, weight_decay, beta1, beta2, eps, alpha;
  bool nesterov;
  ScheduleKind schedule;
  int64_t step_every;
  double step_gamma;
  int64_t warmup;
  int64_t epochs;
  bool shuffle;
  int64_t seed;
  bool metric_accuracy;
};

#endif
