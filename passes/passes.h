/* passes.h - the public header of the passes library: graph-to-graph
 * passes and the one pass manager that runs them in a fixed, commented
 * pipeline, with --print-after, --print-after-all and --time-passes. */
#ifndef NNCC_PASSES_H
#define NNCC_PASSES_H

#include "ir/ir.h"

/* A pass transforms or checks one graph; user-facing problems go to d.
 * Returns false when it reported an error (the pipeline then stops). */
typedef bool (*PassFn)(Graph *g, Diag *d);

typedef struct Pass {
  const char *name;   /* for --print-after=NAME and --time-passes */
  PassFn run;
  const char *what;   /* one line for --help and the docs */
} Pass;

typedef struct PassOptions {
  const char *print_after;  /* pass name, or NULL */
  bool print_after_all;
  bool time_passes;         /* a table on `out` when the pipeline ends */
  bool verify_each;         /* ir_verify after every pass (tests, debug) */
  const char *stop_after;   /* end the pipeline after this pass, or NULL */
  FILE *out;                /* where printing goes (stdout) */
} PassOptions;

/* The pipeline, in order. */
const Pass *pass_list(int *n);
const Pass *pass_by_name(const char *name);
/* Runs the pipeline over every graph of m. */
bool pass_run_pipeline(Module *m, Diag *d, const PassOptions *o);

bool pass_infer_shapes(Graph *g, Diag *d);  /* re-derive and check every type */
bool pass_check_reach(Graph *g, Diag *d);   /* warn: param cannot reach the loss */
bool pass_dce(Graph *g, Diag *d);           /* drop values nothing needs */

#endif
