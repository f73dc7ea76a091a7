/* eval.h - the public header of the eval library: the reference
 * evaluator of graph IR (interp.c) and the gradient checker built on it
 * (gradcheck.c). Plain C, no LLVM: it sits above passes/ (gradcheck runs
 * autodiff), beside codegen/, and checks a compiled model only through
 * the nncc_model_api it is handed (runtime/nncc.h). */
#ifndef NNCC_EVAL_H
#define NNCC_EVAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"
#include "runtime/nncc.h"

/* ----------------------------------------------- reference evaluator */

/* interp.c: a reference evaluator for graph IR - plain C loops over the
 * nodes, clarity over speed, every value held in double. It is the oracle
 * that generated code is tested against and the engine of `nncc
 * gradcheck`; it is never on the fast path. With round_f32 each node's
 * result is rounded to float as f32 code would store it (reductions and
 * matmul still accumulate in double); without, the whole graph runs in
 * float64 (finite differences). */
typedef struct Interp Interp;

Interp *interp_new(const Graph *g, bool round_f32);
void interp_free(Interp *in);
/* The storage of a var (input, param, state): numel doubles, row-major,
 * persistent across runs; the caller writes inputs here. */
double *interp_var(Interp *in, const Node *var);
/* Sets every param and state by its initializer (runtime/runtime.h, the
 * tensor's stream from its name) and every input to zero. */
void interp_init(Interp *in, uint64_t seed);

enum {
  INTERP_ASSIGN = 1 << 0,  /* apply `assign` writes (training-mode statistics) */
  INTERP_UPDATE = 1 << 1,  /* apply `update` writes (the optimizer step) */
};
/* Evaluates every node in order, then applies the selected writes (every
 * read saw the old values). Returns 0, or nonzero with a message in err:
 * a class label or gather index out of range. */
int interp_run(Interp *in, unsigned flags, char *err, size_t err_size);
/* A node's value after interp_run: numel doubles (i32 and bool exact). */
const double *interp_value(const Interp *in, const Node *n);
/* Makes later runs use `values` (numel doubles, copied) as n's value
 * instead of computing it; NULL computes it again. For finite differences
 * on an intermediate value. */
void interp_override(Interp *in, const Node *n, const double *values);

/* ------------------------------------------------------------ gradcheck */

typedef struct GradcheckOptions {
  uint64_t seed;      /* inputs and parameters */
  double eps;         /* central-difference step (float64) */
  double rtol, atol;  /* |fd - grad| <= atol + rtol * max(|fd|, |grad|) */
  bool hvp;           /* also check a Hessian-vector product (grad of grad) */
  FILE *out;          /* the table and the diagnosis */
  const char *path;   /* the .nn file, for source locations */
  Diag *diag;         /* a note at the wrong rule's source line, or NULL */
  /* --jit: check instead the gradients of this compiled model of g's
   * model (api->backward, float32) against the same float64 finite
   * differences, at the same point rounded to f32; pass when
   * |jit - fd| <= jit_atol + jit_rtol * (largest |gradient| of the tensor) */
  const nncc_model_api *jit;
  double jit_rtol, jit_atol;
} GradcheckOptions;

/* Checks the gradients of training graph g (lowered, not yet
 * differentiated: gradcheck runs autodiff itself), or with o->jit those
 * of the compiled model, against finite differences. Returns 0 when all
 * agree, 1 on a mismatch, 2 when the model cannot be evaluated. */
int eval_gradcheck(Graph *g, const GradcheckOptions *o);

#endif
