/* layout.h - the memory plan of a compiled model (ir/layout.c): the ABI
 * tensor table and the byte offset of every value in one slab. An
 * analysis over IR that knows no LLVM; codegen/ emits code that follows
 * it, runtime/model.c's rt_model_desc is built from it. */
#ifndef NNCC_IR_LAYOUT_H
#define NNCC_IR_LAYOUT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"
#include "runtime/nncc.h"

/* One tensor of the ABI table (nncc.h roles). */
typedef struct LayoutTensor {
  const char *name;
  int role;              /* NNCC_INPUT ... NNCC_LOSS */
  Type type;
  int64_t offset;        /* byte offset in the slab */
  int64_t grad_offset;   /* or -1 */
  InitKind init;
  double init_arg[2];
  int64_t label_bound;   /* i32 inputs: [0, bound) */
  bool persistent;
} LayoutTensor;

/* The home of a value that a fused kernel keeps in registers. */
#define LAYOUT_IN_REGISTERS (-2)
/* The home of a transpose of a matrix that only matmuls read, as their
 * left operand: they read its operand with the indices swapped. */
#define LAYOUT_VIEW (-3)

typedef struct LayoutModel {
  const char *name;
  Graph *eval, *train;   /* train may be NULL (no loss) */
  LayoutTensor *tensors;
  int n_tensors;
  int64_t *home_eval;    /* byte offset of each eval node's value; -1 = constant,
                            LAYOUT_IN_REGISTERS = not stored (fused) */
  int64_t *home_train;
  int64_t slab_bytes;
  int64_t table_bytes;             /* the ABI tensors and gradients */
  int64_t scratch_eval, scratch_train;  /* planned intermediates */
  int64_t naive_eval, naive_train;      /* one block per value, for comparison */
  int loss_index, lr_index, step_index, total_steps_index;
  int64_t numerics_offset;         /* check_numerics: the int32 slot past the
                                      plan (rt_model_desc), or -1 */
} LayoutModel;

/* The tensor table and the memory plan of model `name`. */
LayoutModel *ir_layout(Module *m, const char *name, Arena *a);

/* --emit=memory: the slab layout and the lifetime-based scratch plan of
 * every model (ir/layout.c). */
bool ir_print_memory(FILE *out, Module *m);

#endif
