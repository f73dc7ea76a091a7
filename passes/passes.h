/* passes.h - the public header of the passes library: graph-to-graph
 * passes and the one pass manager that runs them in a fixed, commented
 * pipeline, with --print-after, --print-after-all and --time-passes. */
#ifndef NNCC_PASSES_H
#define NNCC_PASSES_H

#include "ir/ir.h"

/* A pass transforms or checks one graph (run on each in turn) or the
 * whole module (when it adds graphs); user-facing problems go to d.
 * Returns false when it reported an error (the pipeline then stops). */
typedef struct PassOptions PassOptions;
typedef bool (*PassFn)(Graph *g, Diag *d);
/* A module pass also sees the pipeline's options (autodiff: no_input_grads). */
typedef bool (*ModulePassFn)(Module *m, Diag *d, const PassOptions *o);

typedef struct Pass {
  const char *name;   /* for --print-after=NAME and --time-passes */
  PassFn run;         /* per graph, or NULL */
  ModulePassFn run_module;
  const char *what;   /* one line for --help and the docs */
} Pass;

struct PassOptions {
  const char *print_after;  /* pass name, or NULL */
  bool print_after_all;
  bool time_passes;         /* a table on `out` when the pipeline ends */
  bool verify_each;         /* ir_verify after every pass (tests, debug) */
  const char *stop_after;   /* end the pipeline after this pass, or NULL; a name
                               that is no pass's is an internal error (nncc_raise) */
  bool no_fuse;             /* skip the fuse pass (--no-fuse: A/B, debugging) */
  bool no_input_grads;      /* autodiff: params only, no d loss / d input
                               (nncc train, eval, bench; --no-input-grads) */
  FILE *out;                /* where printing goes (stdout) */
};

/* The pipeline, in order. */
const Pass *pass_list(int *n);
const Pass *pass_by_name(const char *name);
/* Runs the pipeline over every graph of m. */
bool pass_run_pipeline(Module *m, Diag *d, const PassOptions *o);

bool pass_infer_shapes(Graph *g, Diag *d);  /* re-derive and check every type */
bool pass_lower(Module *m, Diag *d, const PassOptions *o);        /* NAME (evaluation) and NAME.train graphs */
bool pass_autodiff(Module *m, Diag *d, const PassOptions *o);     /* backward of every training graph */
bool pass_optimizer(Module *m, Diag *d, const PassOptions *o);    /* the optimizer step as update nodes */
bool pass_fingerprint(Module *m, Diag *d, const PassOptions *o);  /* Graph.fingerprint: identity for checkpoints */
bool pass_check_reach(Graph *g, Diag *d);   /* warn: param cannot reach the loss */
bool pass_dce(Graph *g, Diag *d);           /* drop values nothing needs */
bool pass_fuse(Graph *g, Diag *d);          /* group nodes into fused kernels; reschedule */

bool pass_fold(Graph *g, Diag *d);          /* constant folding */
bool pass_algebra(Graph *g, Diag *d);       /* algebraic identities (x*1, neg(neg(x)), ...) */
bool pass_cse(Graph *g, Diag *d);           /* merge equal ops on equal operands */

/* Reverse-mode autodiff of scalar y with respect to the vars wrt (in g):
 * appends the backward nodes and returns the adjoint d y / d node for
 * every node that existed before (NULL where y does not depend on it),
 * indexed by node id. Usable on a graph that already holds a backward
 * pass (grad of grad). */
Node **ad_backward(Graph *g, Node *y, Node *const *wrt, int n_wrt);
/* Whether autodiff has a gradient rule for op (the contract test checks
 * that every op has one unless ops.def flags it leaf, NOGRAD or LOWERED). */
bool pass_has_gradient_rule(Op op);
/* Tests only: the gradient rule of this op gives 1.5x the true
 * contribution to its first operand, so that gradcheck must fail. */
extern int ad_test_broken_op;

#endif
