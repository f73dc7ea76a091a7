/* gradcheck.c - `nncc gradcheck`: the backward graph against finite
 * differences, on the user's own model.
 *
 * The model is lowered for training, differentiated by the same
 * ad_backward that the autodiff pass uses, and run by the reference
 * evaluator in float64 at random (seeded) inputs and parameters. Every
 * parameter gradient is compared with central differences. On a
 * mismatch the adjoint of every forward value is checked the same way,
 * along a random direction, from the loss backward: the first adjoint
 * that disagrees while all later ones agree was produced by a wrong rule
 * of one of its consumers, and its node and source line are named.
 * --hvp also checks a Hessian-vector product: autodiff applied to the
 * gradient (grad of grad) against differences of gradients. */
#include "codegen/codegen.h"
#include "passes/passes.h"
#include "runtime/runtime.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ELEMS_PER_PARAM 24  /* elements checked per tensor (sampled) */

typedef struct Check {
  Graph *g;
  Interp *in;
  Node *loss;
  const GradcheckOptions *o;
  char err[256];
} Check;

/* The loss at the current values, or NAN after an evaluation error. */
static double loss_now(Check *c) {
  if (interp_run(c->in, 0, c->err, sizeof c->err)) return NAN;
  return interp_value(c->in, c->loss)[0];
}

/* Random inputs: f32 ~ N(0, 1), i32 uniform over the valid labels. */
static void random_inputs(Check *c) {
  uint64_t seed = c->o->seed;
  for (int i = 0; i < c->g->n_nodes; i++) {
    Node *v = c->g->nodes[i];
    if (v->op != OP_VAR || !(v->roles & ROLE_INPUT)) continue;
    double *x = interp_var(c->in, v);
    int64_t n = type_numel(&v->type), bound = v->type.dtype == DT_I32 ? pass_label_bound(c->g, v) : 0;
    if (bound == 0) bound = 2;  /* nothing bounds it: small values */
    uint64_t stream = rt_stream_of(v->name) ^ 0x5bd1e995u;
    for (int64_t k = 0; k < n; k++)
      x[k] = v->type.dtype == DT_I32 ? (double)(rt_rand_u64(seed, stream, (uint64_t)k) % (uint64_t)bound)
                                     : rt_rand_normal(seed, stream, (uint64_t)k);
  }
}

static bool close_enough(const GradcheckOptions *o, double a, double b, double *abs_err, double *rel_err) {
  double diff = fabs(a - b), scale = fmax(fabs(a), fabs(b));
  *abs_err = diff;
  *rel_err = scale > 0 ? diff / scale : 0;
  return diff <= o->atol + o->rtol * scale && !isnan(a) && !isnan(b);
}

/* Element indices to check: all of a small tensor, a seeded sample of a
 * big one. */
static int pick_elements(int64_t numel, uint64_t seed, uint64_t stream, int64_t *out) {
  if (numel <= MAX_ELEMS_PER_PARAM) {
    for (int64_t k = 0; k < numel; k++) out[k] = k;
    return (int)numel;
  }
  for (int k = 0; k < MAX_ELEMS_PER_PARAM; k++)
    out[k] = (int64_t)(rt_rand_u64(seed, stream, (uint64_t)k) % (uint64_t)numel);
  return MAX_ELEMS_PER_PARAM;
}

/* d loss / d v along a random direction u, by central differences on the
 * value of v (an intermediate: the evaluator overrides it). */
static bool check_adjoint(Check *c, Node *v, Node *adj, double *fd_out, double *an_out) {
  int64_t n = type_numel(&v->type);
  double *u = malloc(sizeof(double) * (size_t)n), *val = malloc(sizeof(double) * (size_t)n);
  if (interp_run(c->in, 0, c->err, sizeof c->err)) {
    free(u);
    free(val);
    return true;
  }
  const double *base = interp_value(c->in, v), *a = interp_value(c->in, adj);
  double an = 0, eps = c->o->eps;
  for (int64_t k = 0; k < n; k++) {
    u[k] = rt_rand_normal(c->o->seed, 977 + (uint64_t)v->id, (uint64_t)k);
    an += a[k] * u[k];
  }
  double *b0 = malloc(sizeof(double) * (size_t)n);
  memcpy(b0, base, sizeof(double) * (size_t)n);
  for (int64_t k = 0; k < n; k++) val[k] = b0[k] + eps * u[k];
  interp_override(c->in, v, val);
  double lp = loss_now(c);
  for (int64_t k = 0; k < n; k++) val[k] = b0[k] - eps * u[k];
  interp_override(c->in, v, val);
  double lm = loss_now(c);
  interp_override(c->in, v, NULL);
  double fd = (lp - lm) / (2 * eps), ae, re;
  free(u);
  free(val);
  free(b0);
  *fd_out = fd;
  *an_out = an;
  return close_enough(c->o, fd, an, &ae, &re);
}

/* The first backward node that disagrees: see the header comment. */
static void locate_bad_rule(Check *c, Node **adj, int n_forward) {
  FILE *out = c->o->out;
  for (int i = c->loss->id - 1; i >= 0 && i < n_forward; i--) {
    Node *v = c->g->nodes[i], *a = adj[i];
    if (!a || v->type.dtype != DT_F32 || v->op == OP_CONST) continue;
    double fd, an;
    if (check_adjoint(c, v, a, &fd, &an)) continue;
    fprintf(out, "first disagreeing node of the backward graph: %%%d, the gradient of %%%d (%s%s%s)\n",
            a->id, v->id, op_info(v->op)->name, v->name ? " " : "", v->name ? v->name : "");
    fprintf(out, "  along a random direction: backward graph %.9g, finite differences %.9g\n", an, fd);
    for (int j = i + 1; j < n_forward; j++) {
      Node *user = c->g->nodes[j];
      for (int k = 0; k < user->n_in; k++)
        if (user->in[k] == v && adj[j]) {
          fprintf(out, "  made by the gradient rule of '%s' at %s:%d:%d\n", op_info(user->op)->name,
                  c->o->path ? c->o->path : "?", user->loc.line, user->loc.col);
          if (c->o->diag) diag_note(c->o->diag, user->loc, "the gradient rule of '%s' here gives a wrong result",
                                    op_info(user->op)->name);
          break;
        }
    }
    return;
  }
  fprintf(out, "every intermediate gradient agrees; the mismatch is in a parameter's own rule\n");
}

/* Hessian-vector product: H v from autodiff of <grad, v> against
 * (grad(theta + eps v) - grad(theta - eps v)) / 2 eps. */
static bool check_hvp(Check *c, Node **params, Node **grads, int n_params) {
  Graph *g = c->g;
  Node **dirs = calloc((size_t)n_params, sizeof(Node *));
  Node *s = NULL;
  for (int p = 0; p < n_params; p++) {
    dirs[p] = ir_var(g, arena_printf(g->arena, "hvp:%s", params[p]->name), ROLE_INPUT, params[p]->type,
                     params[p]->loc);
    Node *ins[2] = {grads[p], dirs[p]};
    Node *prod = ir_node_new(g, OP_MUL, ins, 2, params[p]->loc);
    NNCC_ASSERT(ir_infer(prod, NULL));
    Node *sum = ir_node_new(g, OP_SUM, &prod, 1, params[p]->loc);
    int64_t axes[IR_MAX_RANK];
    for (int k = 0; k < prod->type.rank; k++) axes[k] = k;
    ir_set_list(g, sum, 0, axes, prod->type.rank);
    NNCC_ASSERT(ir_infer(sum, NULL));
    if (s) {
      Node *both[2] = {s, sum};
      s = ir_node_new(g, OP_ADD, both, 2, params[p]->loc);
      NNCC_ASSERT(ir_infer(s, NULL));
    } else {
      s = sum;
    }
  }
  Node **hv = ad_backward(g, s, params, n_params);
  /* the evaluator must see the new nodes: make a new one */
  Interp *in = interp_new(g, false);
  for (int i = 0; i < g->n_nodes; i++) {
    Node *v = g->nodes[i];
    if (v->op != OP_VAR || !strncmp(v->name, "hvp:", 4)) continue;
    memcpy(interp_var(in, v), interp_var(c->in, v), sizeof(double) * (size_t)type_numel(&v->type));
  }
  for (int p = 0; p < n_params; p++) {
    double *d = interp_var(in, dirs[p]);
    for (int64_t k = 0; k < type_numel(&dirs[p]->type); k++)
      d[k] = rt_rand_normal(c->o->seed, 31337 + (uint64_t)p, (uint64_t)k);
  }
  bool ok = true;
  double worst_abs = 0, worst_rel = 0, eps = c->o->eps;
  if (interp_run(in, 0, c->err, sizeof c->err)) ok = false;
  /* analytic H v, copied before the perturbed runs overwrite values */
  double **an = calloc((size_t)n_params, sizeof(double *));
  for (int p = 0; p < n_params && ok; p++) {
    int64_t n = type_numel(&params[p]->type);
    an[p] = calloc((size_t)n, sizeof(double));
    if (hv[params[p]->id]) memcpy(an[p], interp_value(in, hv[params[p]->id]), sizeof(double) * (size_t)n);
  }
  double **plus = calloc((size_t)n_params, sizeof(double *)), **orig = calloc((size_t)n_params, sizeof(double *));
  for (int p = 0; p < n_params && ok; p++) {
    int64_t n = type_numel(&params[p]->type);
    orig[p] = malloc(sizeof(double) * (size_t)n);
    plus[p] = malloc(sizeof(double) * (size_t)n);
    memcpy(orig[p], interp_var(in, params[p]), sizeof(double) * (size_t)n);
  }
  for (int sign = 1; sign >= -1 && ok; sign -= 2) {
    for (int p = 0; p < n_params; p++) {
      double *x = interp_var(in, params[p]);
      const double *d = interp_var(in, dirs[p]);
      for (int64_t k = 0; k < type_numel(&params[p]->type); k++) x[k] = orig[p][k] + sign * eps * d[k];
    }
    if (interp_run(in, 0, c->err, sizeof c->err)) {
      ok = false;
      break;
    }
    for (int p = 0; p < n_params; p++) {
      const double *gr = interp_value(in, grads[p]);
      int64_t n = type_numel(&params[p]->type);
      if (sign == 1) memcpy(plus[p], gr, sizeof(double) * (size_t)n);
      else
        for (int64_t k = 0; k < n; k++) {
          double fd = (plus[p][k] - gr[k]) / (2 * eps), ae, re;
          if (!close_enough(c->o, fd, an[p][k], &ae, &re)) ok = false;
          if (ae > worst_abs) worst_abs = ae;
          if (re > worst_rel && ae > c->o->atol) worst_rel = re;
        }
    }
  }
  fprintf(c->o->out, "%-24s  %12.3e  %12.3e  %s\n", "hessian-vector product", worst_abs, worst_rel,
          ok ? "ok" : "FAIL");
  for (int p = 0; p < n_params; p++) {
    free(an ? an[p] : NULL);
    free(plus[p]);
    free(orig[p]);
  }
  free(an);
  free(plus);
  free(orig);
  free(dirs);
  interp_free(in);
  return ok;
}

int cg_gradcheck(Graph *g, const GradcheckOptions *o) {
  Check c = {.g = g, .o = o};
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->roles & ROLE_LOSS) c.loss = g->nodes[i];
  if (!c.loss) {
    fprintf(o->out, "model '%s' has no loss: nothing to check\n", g->model);
    return 1;
  }
  int n_forward = g->n_nodes, n_params = 0;
  Node **params = calloc((size_t)n_forward, sizeof(Node *));
  for (int i = 0; i < n_forward; i++)
    if (g->nodes[i]->op == OP_VAR && (g->nodes[i]->roles & ROLE_PARAM)) params[n_params++] = g->nodes[i];
  Node **adj = ad_backward(g, c.loss, params, n_params);
  Node **grads = calloc((size_t)n_params + 1, sizeof(Node *));
  for (int p = 0; p < n_params; p++) grads[p] = adj[params[p]->id];

  c.in = interp_new(g, false);
  interp_init(c.in, o->seed);
  random_inputs(&c);
  /* params drawn at their initializers, then jittered: a zero-initialized
   * bias would hide errors that only show away from zero */
  for (int p = 0; p < n_params; p++) {
    double *x = interp_var(c.in, params[p]);
    for (int64_t k = 0; k < type_numel(&params[p]->type); k++)
      x[k] += 0.1 * rt_rand_normal(o->seed, rt_stream_of(params[p]->name) + 7, (uint64_t)k);
  }
  int rc = 0;
  if (interp_run(c.in, 0, c.err, sizeof c.err)) {
    fprintf(o->out, "error: %s\n", c.err);
    rc = 2;
    goto out;
  }
  fprintf(o->out, "gradcheck of model '%s': loss %.9g at seed %llu (float64, central differences, eps %g)\n",
          g->model, interp_value(c.in, c.loss)[0], (unsigned long long)o->seed, o->eps);
  fprintf(o->out, "%-24s  %12s  %12s  %s\n", "param", "max abs err", "max rel err", "result");
  bool all_ok = true;
  for (int p = 0; p < n_params; p++) {
    Node *v = params[p];
    int64_t numel = type_numel(&v->type), idx[MAX_ELEMS_PER_PARAM];
    int n_idx = pick_elements(numel, o->seed, rt_stream_of(v->name), idx);
    double *an = calloc((size_t)n_idx, sizeof(double));
    if (interp_run(c.in, 0, c.err, sizeof c.err)) break;
    for (int k = 0; k < n_idx; k++) an[k] = grads[p] ? interp_value(c.in, grads[p])[idx[k]] : 0;
    double *x = interp_var(c.in, v), worst_abs = 0, worst_rel = 0;
    bool ok = true;
    for (int k = 0; k < n_idx; k++) {
      double saved = x[idx[k]];
      x[idx[k]] = saved + o->eps;
      double lp = loss_now(&c);
      x[idx[k]] = saved - o->eps;
      double lm = loss_now(&c);
      x[idx[k]] = saved;
      double fd = (lp - lm) / (2 * o->eps), ae, re;
      if (!close_enough(o, fd, an[k], &ae, &re)) ok = false;
      if (ae > worst_abs) worst_abs = ae;
      if (re > worst_rel && ae > o->atol) worst_rel = re;
    }
    free(an);
    fprintf(o->out, "%-24s  %12.3e  %12.3e  %s\n", v->name, worst_abs, worst_rel, ok ? "ok" : "FAIL");
    all_ok &= ok;
  }
  if (!all_ok) locate_bad_rule(&c, adj, n_forward);
  if (o->hvp && all_ok) all_ok = check_hvp(&c, params, grads, n_params);
  rc = all_ok ? 0 : 1;
out:
  interp_free(c.in);
  free(params);
  free(grads);
  return rc;
}
