/* lower.c - the mode split: every model becomes an evaluation graph
 * (NAME) and, when it has a loss, a training graph (NAME.train).
 *
 * Ops whose meaning depends on the mode are rewritten into ordinary ops
 * here, before autodiff, so that autodiff, fusion and codegen never see
 * them (Glow: lower, then differentiate):
 *   batch_norm  training: batch statistics (biased variance) and the
 *               running-stat updates as `assign` writes (unbiased variance,
 *               PyTorch's rule); evaluation: the running statistics
 *   layer_norm  the same in both modes: statistics over the last axis
 *   dropout     training: x * dropout_mask(step); evaluation: x */
#include "passes/build.h"

#include <stdlib.h>
#include <string.h>

#define STEP_NAME "train:step"

/* The training step counter (f32[] state), shared with the optimizer. */
Node *pass_step_counter(Graph *g, SrcLoc loc) {
  Node *step = ir_find_var(g, STEP_NAME);
  if (step) return step;
  Builder b = {g, loc};
  Type t = type_scalar(DT_F32);
  return b_state(&b, STEP_NAME, &t, INIT_ZEROS, 0);
}

/* Shape of a per-channel vector broadcast against x: [1,C] or [1,C,1,1]. */
static void channel_shape(const Type *x, int64_t *dims) {
  for (int i = 0; i < x->rank; i++) dims[i] = i == 1 ? x->dim[1] : 1;
}

static Node *lower_batch_norm(Builder *b, const Node *n, Node **in, bool training) {
  Node *x = in[0], *gamma = in[1], *beta = in[2], *rmean = in[3], *rvar = in[4];
  double momentum = n->attr[0].f, eps = n->attr[1].f;
  const Type *t = &x->type;
  int64_t bshape[4], axes[3] = {0, 2, 3}, c = t->dim[1];
  int n_axes = t->rank == 2 ? 1 : 3;
  channel_shape(t, bshape);
  Node *g = b_reshape(b, gamma, bshape, t->rank), *be = b_reshape(b, beta, bshape, t->rank);
  if (!training) {
    Node *xc = b_sub(b, x, b_reshape(b, rmean, bshape, t->rank));
    Node *inv = b_op1(b, OP_RSQRT, b_add(b, b_reshape(b, rvar, bshape, t->rank), b_f(b, eps)));
    return b_add(b, b_mul(b, b_mul(b, xc, inv), g), be);
  }
  Node *mu = b_reduce(b, OP_MEAN, x, axes, n_axes, true);
  Node *xc = b_sub(b, x, mu);
  Node *var = b_reduce(b, OP_MEAN, b_op1(b, OP_SQUARE, xc), axes, n_axes, true);
  Node *inv = b_op1(b, OP_RSQRT, b_add(b, var, b_f(b, eps)));
  Node *y = b_add(b, b_mul(b, b_mul(b, xc, inv), g), be);
  /* running = (1 - momentum) * running + momentum * batch, with the
   * unbiased batch variance, as torch.nn.BatchNorm */
  double m = (double)type_numel(t) / (double)c;
  double unbias = m > 1 ? m / (m - 1) : 1;
  Node *mu_c = b_reshape(b, mu, &c, 1), *var_c = b_reshape(b, var, &c, 1);
  Node *new_mean = b_add(b, b_scale(b, rmean, 1 - momentum), b_scale(b, mu_c, momentum));
  Node *new_var = b_add(b, b_scale(b, rvar, 1 - momentum), b_scale(b, var_c, momentum * unbias));
  b_op2(b, OP_ASSIGN, rmean, new_mean);
  b_op2(b, OP_ASSIGN, rvar, new_var);
  return y;
}

static Node *lower_layer_norm(Builder *b, const Node *n, Node **in) {
  Node *x = in[0];
  int64_t axis = x->type.rank - 1;
  Node *mu = b_reduce(b, OP_MEAN, x, &axis, 1, true);
  Node *xc = b_sub(b, x, mu);
  Node *var = b_reduce(b, OP_MEAN, b_op1(b, OP_SQUARE, xc), &axis, 1, true);
  Node *inv = b_op1(b, OP_RSQRT, b_add(b, var, b_f(b, n->attr[0].f)));
  return b_add(b, b_mul(b, b_mul(b, xc, inv), in[1]), in[2]);
}

/* Each dropout draws its own mask: its seed comes from its ordinal among
 * the model's dropouts, so adding other ops does not change the masks. */
static Node *lower_dropout(Builder *b, const Node *n, Node **in, bool training, Node *step,
                           int ordinal) {
  double p = n->attr[0].f;
  if (!training || p == 0) return in[0];
  Node *mask = ir_node_new(b->g, OP_DROPOUT_MASK, &step, 1, b->loc);
  mask->attr[0].f = p;
  mask->attr[1].i = (int64_t)(0x9E3779B97F4A7C15ull * (uint64_t)(ordinal + 1) >> 1);
  ir_set_list(b->g, mask, 2, in[0]->type.dim, in[0]->type.rank);
  NNCC_ASSERT(ir_infer(mask, NULL));
  return b_mul(b, in[0], mask);
}

static Graph *lower_graph(Module *m, const Graph *src, bool training) {
  Graph *g = ir_graph_new(m->arena, training ? arena_printf(m->arena, "%s.train", src->name) : src->name);
  g->model = src->model;
  g->training = training;
  g->loc = src->loc;
  g->max_nodes = src->max_nodes;
  Node **map = nncc_calloc((size_t)src->n_nodes + 1, sizeof(Node *));
  Node *step = NULL;
  int dropouts = 0;
  for (int i = 0; i < src->n_nodes && training; i++)
    if (src->nodes[i]->op == OP_DROPOUT && src->nodes[i]->attr[0].f > 0) step = pass_step_counter(g, src->loc);
  for (int i = 0; i < src->n_nodes; i++) {
    const Node *n = src->nodes[i];
    Node *in[8];
    for (int k = 0; k < n->n_in && k < 8; k++) in[k] = map[n->in[k]->id];
    Builder b = {g, n->loc};
    Node *out;
    switch (n->op) {
    case OP_BATCH_NORM: out = lower_batch_norm(&b, n, in, training); break;
    case OP_LAYER_NORM: out = lower_layer_norm(&b, n, in); break;
    case OP_DROPOUT: out = lower_dropout(&b, n, in, training, step, dropouts++); break;
    default:
      NNCC_ASSERT(!(op_info(n->op)->flags & OPF_LOWERED) && "lower: an OPF_LOWERED op without a lowering");
      NNCC_ASSERT(n->n_in <= 8 || n->op == OP_CONCAT);
      if (n->n_in > 8) {
        Node **many = ARENA_ARRAY(m->arena, Node *, n->n_in);
        for (int k = 0; k < n->n_in; k++) many[k] = map[n->in[k]->id];
        out = ir_copy_node(g, n, many);
      } else {
        out = ir_copy_node(g, n, in);
      }
      map[i] = out;
      continue;
    }
    /* the lowered value takes the node's name and roles; when it is an
     * existing node (dropout in evaluation is x itself) a fresh x * 1
     * carries them, so two outputs never share one node */
    if (out == in[0]) {
      if (n->roles) out = b_mul(&b, out, b_f(&b, 1));
      else {
        map[i] = out;
        continue;
      }
    }
    out->roles |= n->roles;
    out->name = n->name;
    out->out_name = n->out_name;
    out->out_index = n->out_index;
    map[i] = out;
  }
  nncc_free(map);
  return g;
}

bool pass_lower(Module *m, Diag *d, const PassOptions *o) {
  (void)o;
  (void)d;
  int n = m->n_graphs;
  for (int i = 0; i < n; i++) {
    Graph *src = m->graphs[i];
    if (src->training) continue;
    bool has_loss = false;
    for (int k = 0; k < src->n_nodes; k++) has_loss |= (src->nodes[k]->roles & ROLE_LOSS) != 0;
    if (has_loss) ir_module_add(m, lower_graph(m, src, true));
    m->graphs[i] = lower_graph(m, src, false);
  }
  return true;
}
