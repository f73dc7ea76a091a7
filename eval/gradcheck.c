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
 * gradient (grad of grad) against differences of gradients.
 * --jit checks the compiled model instead: the gradients its backward
 * entry point computes in float32, after every pass and LLVM, against
 * the same float64 differences (check_jit).
 * Every difference holds each stop_gradient output at its value at the
 * base point (hold_stop_gradients): autodiff treats it as a constant, so
 * differences that saw through it would compare unlike things, and every
 * model using it would fail with the blame on an innocent consumer. */
#include "eval/eval.h"
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
  int n_eval;         /* g's nodes when `in` was made: those it evaluates */
  const GradcheckOptions *o;
  char err[256];
} Check;

/* The loss at the current values, or NAN after an evaluation error. */
static double loss_now(Check *c) {
  if (interp_run(c->in, 0, c->err, sizeof c->err)) return NAN;
  return interp_value(c->in, c->loss)[0];
}

/* Evaluates the current point and makes later runs of `in` read each
 * stop_gradient node's value there instead of recomputing it, so that a
 * perturbed param or intermediate does not move it (see the header
 * comment). n_nodes: g's nodes when `in` was made. Called again whenever
 * the base point changes. 0, or nonzero with a message in err. */
static int hold_stop_gradients(const Graph *g, int n_nodes, Interp *in, char *err, size_t err_size) {
  for (int i = 0; i < n_nodes; i++)
    if (g->nodes[i]->op == OP_STOP_GRADIENT) interp_override(in, g->nodes[i], NULL);
  if (interp_run(in, 0, err, err_size)) return 1;
  for (int i = 0; i < n_nodes; i++)
    if (g->nodes[i]->op == OP_STOP_GRADIENT) interp_override(in, g->nodes[i], interp_value(in, g->nodes[i]));
  return 0;
}

/* Random inputs: f32 ~ N(0, 1), i32 uniform over the valid labels. */
static void random_inputs(Check *c) {
  uint64_t seed = c->o->seed;
  for (int i = 0; i < c->g->n_nodes; i++) {
    Node *v = c->g->nodes[i];
    if (v->op != OP_VAR || !(v->roles & ROLE_INPUT)) continue;
    double *x = interp_var(c->in, v);
    int64_t n = type_numel(&v->type), bound = v->type.dtype == DT_I32 ? ir_label_bound(c->g, v) : 0;
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
  double *u = nncc_malloc(sizeof(double) * (size_t)n), *val = nncc_malloc(sizeof(double) * (size_t)n);
  if (interp_run(c->in, 0, c->err, sizeof c->err)) {
    nncc_free(u);
    nncc_free(val);
    return true;
  }
  const double *base = interp_value(c->in, v), *a = interp_value(c->in, adj);
  double an = 0, eps = c->o->eps;
  for (int64_t k = 0; k < n; k++) {
    u[k] = rt_rand_normal(c->o->seed, 977 + (uint64_t)v->id, (uint64_t)k);
    an += a[k] * u[k];
  }
  double *b0 = nncc_malloc(sizeof(double) * (size_t)n);
  memcpy(b0, base, sizeof(double) * (size_t)n);
  for (int64_t k = 0; k < n; k++) val[k] = b0[k] + eps * u[k];
  interp_override(c->in, v, val);
  double lp = loss_now(c);
  for (int64_t k = 0; k < n; k++) val[k] = b0[k] - eps * u[k];
  interp_override(c->in, v, val);
  double lm = loss_now(c);
  /* a stop_gradient node goes back to being held at the base point */
  interp_override(c->in, v, v->op == OP_STOP_GRADIENT ? b0 : NULL);
  double fd = (lp - lm) / (2 * eps), ae, re;
  nncc_free(u);
  nncc_free(val);
  nncc_free(b0);
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
  Node **dirs = nncc_calloc((size_t)n_params, sizeof(Node *));
  Node *s = NULL;
  for (int p = 0; p < n_params; p++) {
    dirs[p] = ir_var(g, arena_printf(g->arena, "hvp:%s", params[p]->name), ROLE_INPUT, params[p]->type,
                     params[p]->loc);
    /* no gradient (the loss sees p only through stop_gradient): its
     * terms of <grad, v> and of H v are zero, and so are the differences */
    if (!grads[p]) continue;
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
  if (!s) {
    nncc_free(dirs);
    return true;
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
  if (hold_stop_gradients(g, g->n_nodes, in, c->err, sizeof c->err)) ok = false;
  /* analytic H v, copied before the perturbed runs overwrite values */
  double **an = nncc_calloc((size_t)n_params, sizeof(double *));
  for (int p = 0; p < n_params && ok; p++) {
    int64_t n = type_numel(&params[p]->type);
    an[p] = nncc_calloc((size_t)n, sizeof(double));
    if (hv[params[p]->id]) memcpy(an[p], interp_value(in, hv[params[p]->id]), sizeof(double) * (size_t)n);
  }
  double **plus = nncc_calloc((size_t)n_params, sizeof(double *)), **orig = nncc_calloc((size_t)n_params, sizeof(double *));
  for (int p = 0; p < n_params && ok; p++) {
    int64_t n = type_numel(&params[p]->type);
    orig[p] = nncc_malloc(sizeof(double) * (size_t)n);
    plus[p] = nncc_malloc(sizeof(double) * (size_t)n);
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
      if (!grads[p]) continue;
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
    nncc_free(an ? an[p] : NULL);
    nncc_free(plus[p]);
    nncc_free(orig[p]);
  }
  nncc_free(an);
  nncc_free(plus);
  nncc_free(orig);
  nncc_free(dirs);
  interp_free(in);
  return ok;
}

/* ------------------------------------------------ compiled gradients */

/* The compiled model's tensor that holds var v, or -1. */
static int jit_tensor(const nncc_model_api *api, const Node *v) {
  for (int i = 0; i < api->n_tensors; i++) {
    int r = api->tensors[i].role;
    if ((r == NNCC_INPUT || r == NNCC_PARAM || r == NNCC_STATE) && !strcmp(api->tensors[i].name, v->name))
      return i;
  }
  return -1;
}

/* Writes every var of the reference graph into the compiled model. The
 * reference takes the f32 values too, so that both evaluate the loss at
 * exactly the same point and only arithmetic differs. */
static bool jit_set_point(Check *c, nncc_model *m) {
  const nncc_model_api *api = c->o->jit;
  for (int i = 0; i < c->g->n_nodes; i++) {
    Node *v = c->g->nodes[i];
    if (v->op != OP_VAR) continue;
    int t = jit_tensor(api, v);
    int64_t n = type_numel(&v->type), tn = 1;
    for (int d = 0; t >= 0 && d < api->tensors[t].rank; d++) tn *= api->tensors[t].shape[d];
    if (t < 0 || tn != n) {
      snprintf(c->err, sizeof c->err, "the compiled model has no tensor '%s' of %lld elements", v->name,
               (long long)n);
      return false;
    }
    double *x = interp_var(c->in, v);
    void *dst = api->data(m, t);
    for (int64_t k = 0; k < n; k++)
      if (api->tensors[t].dtype == NNCC_I32) {
        ((int32_t *)dst)[k] = (int32_t)x[k];
      } else {
        ((float *)dst)[k] = (float)x[k];
        x[k] = (float)x[k];
      }
  }
  return true;
}

/* One row of the --jit table: the compiled gradient of v (a param or an
 * f32 input) at sampled elements against central differences; the
 * float64 autodiff gradient of the same elements is compared too, to tell
 * a wrong rule from wrong compiled code. */
static bool jit_check_tensor(Check *c, const float *jit_grad, Node *v, Node *ref_grad, bool *ref_ok) {
  const GradcheckOptions *o = c->o;
  int64_t numel = type_numel(&v->type), idx[MAX_ELEMS_PER_PARAM];
  int n_idx = pick_elements(numel, o->seed, rt_stream_of(v->name), idx);
  double ref[MAX_ELEMS_PER_PARAM] = {0}, fd[MAX_ELEMS_PER_PARAM], scale = 0;
  if (interp_run(c->in, 0, c->err, sizeof c->err)) return false;
  for (int k = 0; k < n_idx && ref_grad; k++) ref[k] = interp_value(c->in, ref_grad)[idx[k]];
  for (int64_t k = 0; k < numel && jit_grad; k++) scale = fmax(scale, fabs(jit_grad[k]));
  double *x = interp_var(c->in, v);
  for (int k = 0; k < n_idx; k++) {
    double saved = x[idx[k]];
    x[idx[k]] = saved + o->eps;
    double lp = loss_now(c);
    x[idx[k]] = saved - o->eps;
    double lm = loss_now(c);
    x[idx[k]] = saved;
    fd[k] = (lp - lm) / (2 * o->eps);
    scale = fmax(scale, fabs(fd[k]));
  }
  double worst_abs = 0, ae, re;
  bool ok = jit_grad != NULL;
  for (int k = 0; k < n_idx; k++) {
    double an = jit_grad ? jit_grad[idx[k]] : NAN, diff = fabs(an - fd[k]);
    if (!(diff <= o->jit_atol + o->jit_rtol * scale)) ok = false;
    if (diff > worst_abs) worst_abs = diff;
    if (!close_enough(o, fd[k], ref[k], &ae, &re)) *ref_ok = false;
  }
  char name[64];
  snprintf(name, sizeof name, "%s%s", v->name, v->roles & ROLE_INPUT ? " (input)" : "");
  fprintf(o->out, "%-24s  %12.3e  %12.3e  %s\n", name, worst_abs, scale > 0 ? worst_abs / scale : 0,
          !jit_grad ? "FAIL (no gradient)" : ok ? "ok" : "FAIL");
  return ok;
}

/* --jit: see the header comment. adj: the float64 autodiff adjoints. */
static int check_jit(Check *c, Node **adj, int n_forward) {
  const GradcheckOptions *o = c->o;
  const nncc_model_api *api = o->jit;
  nncc_model *m = api->create(o->seed);
  if (!m) {
    fprintf(o->out, "error: out of memory creating the compiled model\n");
    return 2;
  }
  int rc = 2, loss_t = -1;
  for (int i = 0; i < api->n_tensors; i++)
    if (api->tensors[i].role == NNCC_LOSS) loss_t = i;
  if (!jit_set_point(c, m) || loss_t < 0) {
    fprintf(o->out, "error: %s\n", loss_t < 0 ? "the compiled model has no loss" : c->err);
    goto out;
  }
  /* the point moved to f32 values: hold stop_gradient at the new one */
  if (hold_stop_gradients(c->g, c->n_eval, c->in, c->err, sizeof c->err)) {
    fprintf(o->out, "error: %s\n", c->err);
    goto out;
  }
  if (api->backward(m)) {
    fprintf(o->out, "error: the compiled backward failed: %s\n", api->last_error(m));
    goto out;
  }
  double ref_loss = loss_now(c), jit_loss = *(const float *)api->data(m, loss_t);
  if (isnan(ref_loss)) {
    fprintf(o->out, "error: %s\n", c->err);
    goto out;
  }
  fprintf(o->out,
          "gradcheck of model '%s' through the JIT: loss %.9g (compiled, float32), %.9g (reference, float64) "
          "at seed %llu\n",
          c->g->model, jit_loss, ref_loss, (unsigned long long)o->seed);
  fprintf(o->out, "compiled gradients against float64 central differences (eps %g); "
          "ok when |jit - fd| <= %g + %g * max |grad| of the tensor\n", o->eps, o->jit_atol, o->jit_rtol);
  fprintf(o->out, "%-24s  %12s  %12s  %s\n", "tensor", "max abs err", "max rel err", "result");
  bool all_ok = fabs(jit_loss - ref_loss) <= o->jit_atol + o->jit_rtol * fabs(ref_loss), ref_ok = true;
  fprintf(o->out, "%-24s  %12.3e  %12.3e  %s\n", "(loss)", fabs(jit_loss - ref_loss),
          ref_loss ? fabs(jit_loss - ref_loss) / fabs(ref_loss) : 0, all_ok ? "ok" : "FAIL");
  for (int i = 0; i < n_forward; i++) {
    Node *v = c->g->nodes[i];
    bool param = v->op == OP_VAR && (v->roles & ROLE_PARAM);
    if (!param && !(v->op == OP_VAR && (v->roles & ROLE_INPUT) && v->type.dtype == DT_F32)) continue;
    int t = jit_tensor(api, v);
    if (!jit_check_tensor(c, api->grad(m, t), v, adj[v->id], &ref_ok)) all_ok = false;
    if (c->err[0]) {
      fprintf(o->out, "error: %s\n", c->err);
      goto out;
    }
  }
  if (!all_ok && ref_ok)
    fprintf(o->out, "the float64 backward graph agrees with finite differences: the compiled gradients are "
                    "wrong (a pass after autodiff, or code generation)\n");
  else if (!all_ok)
    locate_bad_rule(c, adj, n_forward);
  rc = all_ok ? 0 : 1;
out:
  api->destroy(m);
  return rc;
}

int eval_gradcheck(Graph *g, const GradcheckOptions *o) {
  Check c = {.g = g, .o = o};
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->roles & ROLE_LOSS) c.loss = g->nodes[i];
  if (!c.loss) {
    fprintf(o->out, "model '%s' has no loss: nothing to check\n", g->model);
    return 1;
  }
  int n_forward = g->n_nodes, n_params = 0;
  Node **params = nncc_calloc((size_t)n_forward, sizeof(Node *));
  for (int i = 0; i < n_forward; i++)
    if (g->nodes[i]->op == OP_VAR && (g->nodes[i]->roles & ROLE_PARAM)) params[n_params++] = g->nodes[i];
  /* --jit also checks the f32 inputs' gradients (grad() gives them):
   * the reference differentiates with respect to them too, after the
   * params, so that params[0..n_params) stay the params */
  int n_wrt = n_params;
  for (int i = 0; i < n_forward && o->jit; i++) {
    Node *v = g->nodes[i];
    if (v->op == OP_VAR && (v->roles & ROLE_INPUT) && v->type.dtype == DT_F32) params[n_wrt++] = v;
  }
  Node **adj = ad_backward(g, c.loss, params, n_wrt);
  Node **grads = nncc_calloc((size_t)n_params + 1, sizeof(Node *));
  for (int p = 0; p < n_params; p++) grads[p] = adj[params[p]->id];

  c.in = interp_new(g, false);
  c.n_eval = g->n_nodes;
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
  if (hold_stop_gradients(g, c.n_eval, c.in, c.err, sizeof c.err)) {
    fprintf(o->out, "error: %s\n", c.err);
    rc = 2;
    goto out;
  }
  if (o->jit) {
    rc = check_jit(&c, adj, n_forward);
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
    double *an = nncc_calloc((size_t)n_idx, sizeof(double));
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
    nncc_free(an);
    fprintf(o->out, "%-24s  %12.3e  %12.3e  %s\n", v->name, worst_abs, worst_rel, ok ? "ok" : "FAIL");
    all_ok &= ok;
  }
  if (!all_ok) locate_bad_rule(&c, adj, n_forward);
  if (o->hvp && all_ok) all_ok = check_hvp(&c, params, grads, n_params);
  rc = all_ok ? 0 : 1;
out:
  interp_free(c.in);
  nncc_free(params);
  nncc_free(grads);
  return rc;
}
