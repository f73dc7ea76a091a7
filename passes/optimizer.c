/* optimizer.c - the optimizer step as graph: after the backward pass of
 * every training graph, `update` nodes write each param and the
 * optimizer's own state (PyTorch's slot names: w:momentum_buffer, w:sum,
 * w:square_avg, w:exp_avg, w:exp_avg_sq) plus train:step. The update
 * fuses and compiles with the rest of the model; it is not a loop in the
 * runtime.
 *
 * The rules are PyTorch's (torch.optim, 1.13 and later), with t the step
 * number counted from 1 and g the gradient (+ weight_decay * p as L2,
 * except AdamW which decays p directly):
 *   sgd      b = momentum b + g (b starts at g);  d = nesterov ? g + momentum b : b;  p -= lr d
 *   adagrad  s += g^2;  p -= lr g / (sqrt(s) + eps)
 *   rmsprop  v = alpha v + (1-alpha) g^2;  d = g / (sqrt(v) + eps);
 *            momentum > 0: b = momentum b + d, p -= lr b;  else p -= lr d
 *   adam     m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
 *            p -= lr/(1-b1^t) m / (sqrt(v)/sqrt(1-b2^t) + eps)
 *   adamw    p *= 1 - lr wd, then adam without L2
 * The learning rate is the state train:lr (the caller may set it); the
 * schedule scales it by a factor of the step:
 *   constant 1;  step(every, gamma) gamma^floor((t-1)/every);
 *   cosine(warmup) t/warmup while t <= warmup, then
 *   (1 + cos(pi (t-1-warmup) / (total-warmup))) / 2, total = train:total_steps. */
#include "passes/build.h"
#include "ir/train_spec.h"

#include <math.h>
#include <string.h>

Node *pass_step_counter(Graph *g, SrcLoc loc);

typedef struct Opt {
  Builder b;
  const TrainSpec *spec;
  Node *t;      /* step number of this update, from 1 (f32[]) */
  Node *lr;     /* scheduled learning rate (f32[]) */
} Opt;

static Node *slot(Opt *o, Node *p, const char *name) {
  Builder *b = &o->b;
  Node *s = b_state(b, arena_printf(b->g->arena, "%s:%s", p->name, name), &p->type, INIT_ZEROS, 0);
  return s;
}

static void write(Opt *o, Node *var, Node *value) { b_op2(&o->b, OP_UPDATE, var, value); }

/* beta^t for a step tensor t: exp(t log beta), 0 when beta is 0. */
static Node *power_of(Opt *o, double beta, Node *t) {
  Builder *b = &o->b;
  if (beta == 0) return b_f(b, 0);
  return b_op1(b, OP_EXP, b_scale(b, t, log(beta)));
}

static void update_param(Opt *o, Node *p, Node *grad) {
  Builder *b = &o->b;
  const TrainSpec *s = o->spec;
  Node *g = grad;
  bool adamw = s->optimizer == OPTIM_ADAMW;
  if (s->weight_decay != 0 && !adamw) g = b_add(b, g, b_scale(b, p, s->weight_decay));
  Node *step = NULL;  /* what p moves by, before the learning rate */
  switch (s->optimizer) {
  case OPTIM_SGD:
    step = g;
    if (s->momentum != 0) {
      Node *buf = slot(o, p, "momentum_buffer");
      Node *nb = b_add(b, b_scale(b, buf, s->momentum), g);
      write(o, buf, nb);
      step = s->nesterov ? b_add(b, g, b_scale(b, nb, s->momentum)) : nb;
    }
    break;
  case OPTIM_ADAGRAD: {
    Node *sum = slot(o, p, "sum");
    Node *ns = b_add(b, sum, b_op1(b, OP_SQUARE, g));
    write(o, sum, ns);
    step = b_div(b, g, b_add(b, b_op1(b, OP_SQRT, ns), b_f(b, s->eps)));
    break;
  }
  case OPTIM_RMSPROP: {
    Node *sq = slot(o, p, "square_avg");
    Node *nsq = b_add(b, b_scale(b, sq, s->alpha), b_scale(b, b_op1(b, OP_SQUARE, g), 1 - s->alpha));
    write(o, sq, nsq);
    step = b_div(b, g, b_add(b, b_op1(b, OP_SQRT, nsq), b_f(b, s->eps)));
    if (s->momentum > 0) {
      Node *buf = slot(o, p, "momentum_buffer");
      Node *nb = b_add(b, b_scale(b, buf, s->momentum), step);
      write(o, buf, nb);
      step = nb;
    }
    break;
  }
  case OPTIM_ADAM:
  case OPTIM_ADAMW: {
    Node *m = slot(o, p, "exp_avg"), *v = slot(o, p, "exp_avg_sq");
    Node *nm = b_add(b, b_scale(b, m, s->beta1), b_scale(b, g, 1 - s->beta1));
    Node *nv = b_add(b, b_scale(b, v, s->beta2), b_scale(b, b_op1(b, OP_SQUARE, g), 1 - s->beta2));
    write(o, m, nm);
    write(o, v, nv);
    Node *bc1 = b_sub(b, b_f(b, 1), power_of(o, s->beta1, o->t));
    Node *bc2 = b_sub(b, b_f(b, 1), power_of(o, s->beta2, o->t));
    Node *denom = b_add(b, b_div(b, b_op1(b, OP_SQRT, nv), b_op1(b, OP_SQRT, bc2)), b_f(b, s->eps));
    step = b_div(b, b_div(b, nm, bc1), denom);
    break;
  }
  case OPTIM_COUNT:
    NNCC_ASSERT(!"a validated optimizer");
  }
  Node *base = p;
  if (adamw && s->weight_decay != 0)
    base = b_mul(b, p, b_sub(b, b_f(b, 1), b_scale(b, o->lr, s->weight_decay)));
  write(o, p, b_sub(b, base, b_mul(b, o->lr, step)));
}

/* The learning rate of this step: train:lr times the schedule's factor. */
static Node *scheduled_lr(Opt *o, Node *lr) {
  Builder *b = &o->b;
  const TrainSpec *s = o->spec;
  if (s->schedule == SCHED_CONSTANT) return lr;
  Node *t0 = b_sub(b, o->t, b_f(b, 1));  /* steps already taken */
  if (s->schedule == SCHED_STEP) {
    Node *k = b_op1(b, OP_FLOOR, b_scale(b, t0, 1.0 / (double)s->step_every));
    return b_mul(b, lr, power_of(o, s->step_gamma, k));
  }
  /* cosine with linear warmup; total steps are set by the trainer */
  Type scalar = type_scalar(DT_F32);
  Node *total = b_state(b, "train:total_steps", &scalar, INIT_CONSTANT, 1);
  double w = (double)s->warmup;
  Node *span = b_op2(b, OP_MAXIMUM, b_sub(b, total, b_f(b, w)), b_f(b, 1));
  Node *progress = b_op2(b, OP_MINIMUM, b_div(b, b_sub(b, t0, b_f(b, w)), span), b_f(b, 1));
  Node *cosine = b_scale(b, b_add(b, b_f(b, 1), b_op1(b, OP_COS, b_scale(b, progress, M_PI))), 0.5);
  Node *factor = cosine;
  if (s->warmup > 0)
    factor = b_where(b, b_op2(b, OP_LE, o->t, b_f(b, w)), b_scale(b, o->t, 1 / w), cosine);
  return b_mul(b, lr, factor);
}

static void optimizer_graph(Graph *g, const TrainSpec *spec) {
  Opt o = {.b = {g, g->loc}, .spec = spec};
  Builder *b = &o.b;
  Node *step = pass_step_counter(g, g->loc);
  Type scalar = type_scalar(DT_F32);
  Node *lr = b_state(b, "train:lr", &scalar, INIT_CONSTANT, spec->lr);
  o.t = b_add(b, step, b_f(b, 1));
  write(&o, step, o.t);
  o.lr = scheduled_lr(&o, lr);
  int n = g->n_nodes;
  for (int i = 0; i < n; i++) {
    Node *grad = g->nodes[i];
    if (!(grad->roles & ROLE_GRAD) || !(grad->grad_of->roles & ROLE_PARAM)) continue;
    b->loc = grad->grad_of->loc;  /* the update points at the param's declaration */
    update_param(&o, grad->grad_of, grad);
  }
}

bool pass_optimizer(Module *m, Diag *d, const PassOptions *o) {
  (void)o;
  (void)d;
  /* a model without a train block still gets train_step: plain SGD at
   * 0.01, the learning rate settable through set_hyper("lr") */
  static const TrainSpec plain = {.optimizer = OPTIM_SGD, .lr = 0.01, .schedule = SCHED_CONSTANT};
  for (int i = 0; i < m->n_graphs; i++) {
    Graph *g = m->graphs[i];
    if (!g->training) continue;
    const TrainSpec *spec = &plain;
    for (int k = 0; k < m->n_trains; k++)
      if (!strcmp(m->trains[k]->model, g->model)) spec = m->trains[k];
    optimizer_graph(g, spec);
  }
  return true;
}
