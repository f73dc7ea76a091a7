/* train_block.c - elaboration of `train NAME { ... }` blocks (SPEC §2.7, §6)
 * into a validated TrainSpec: data sources bound to the model's inputs,
 * the optimizer and its PyTorch defaults and ranges, the schedule, epochs,
 * shuffle, seed and metrics. `check` validates; only `train` opens files. */
#include "frontend/elab.h"
#include "ir/train_spec.h"

#include <math.h>
#include <string.h>

/* Named arguments of a call-shaped value such as adam(lr = 1e-3). */
typedef struct CallArgs {
  const char *fn;
  SrcLoc loc;
  int n;
  const char *kw[16];
  const Ast *ast[16];
  SrcLoc kw_loc[16];   /* the keyword's own location (the value's if positional) */
  Value val[16];
  bool used[16];
} CallArgs;

static bool call_args(Elab *E, const Ast *e, CallArgs *c, const char *what) {
  memset(c, 0, sizeof *c);
  c->loc = e->loc;
  if (e->kind == AST_NAME) {  /* `schedule = cosine` without parentheses */
    c->fn = e->str;
    return true;
  }
  if (e->kind != AST_CALL || e->lhs->kind != AST_NAME) {
    elab_error(E, e->loc, "expected %s such as %s", what,
               !strcmp(what, "an optimizer") ? "adam(lr = 1e-3)" : "idx(x = \"...\", y = \"...\")");
    return false;
  }
  c->fn = e->lhs->str;
  c->loc = e->lhs->loc;
  if (e->n_items > 16) {
    elab_error(E, e->loc, "too many arguments");
    return false;
  }
  c->n = e->n_items;
  for (int i = 0; i < e->n_items; i++) {
    const Ast *a = e->items[i];
    c->kw[i] = a->kind == AST_KWARG ? a->str : NULL;
    c->ast[i] = a->kind == AST_KWARG ? a->lhs : a;
    c->kw_loc[i] = a->loc;
    c->val[i] = elab_expr(E, c->ast[i]);
    if (is_err(&c->val[i])) return false;
  }
  return true;
}

/* Takes a keyword (or the k-th positional) argument; NULL if absent. */
static Value *take(CallArgs *c, const char *kw, int position) {
  for (int i = 0; i < c->n; i++)
    if (!c->used[i] && c->kw[i] && !strcmp(c->kw[i], kw)) {
      c->used[i] = true;
      return &c->val[i];
    }
  int p = 0;
  for (int i = 0; i < c->n; i++) {
    if (c->kw[i]) continue;
    if (p++ == position && !c->used[i]) {
      c->used[i] = true;
      return &c->val[i];
    }
  }
  return NULL;
}

/* Where each optimizer hyperparameter was written, for range errors. */
typedef struct ArgLocs {
  const char *name[16];
  SrcLoc loc[16];
  int n;
} ArgLocs;
static ArgLocs arg_locs;

static SrcLoc arg_loc(const char *name, SrcLoc fallback) {
  for (int i = 0; i < arg_locs.n; i++)
    if (!strcmp(arg_locs.name[i], name)) return arg_locs.loc[i];
  return fallback;
}

static bool take_num(Elab *E, CallArgs *c, const char *kw, int position, double *out) {
  Value *v = take(c, kw, position);
  if (!v) return true;
  if (arg_locs.n < 16) {
    arg_locs.name[arg_locs.n] = kw;
    arg_locs.loc[arg_locs.n++] = v->loc;
  }
  char what[64];
  snprintf(what, sizeof what, "'%s' of '%s'", kw, c->fn);
  return const_num(E, v, out, what);
}

static bool take_int(Elab *E, CallArgs *c, const char *kw, int position, int64_t *out) {
  Value *v = take(c, kw, position);
  if (!v) return true;
  char what[64];
  snprintf(what, sizeof what, "'%s' of '%s'", kw, c->fn);
  return const_int(E, v, out, what);
}

/* Every argument must have been taken: the rest are unknown or extra. */
static bool no_extra(Elab *E, CallArgs *c, const char *const *known, int n_known) {
  bool ok = true;
  for (int i = 0; i < c->n; i++) {
    if (c->used[i]) continue;
    ok = false;
    if (!c->kw[i]) {
      elab_error(E, c->ast[i]->loc, "too many positional arguments for '%s'", c->fn);
      continue;
    }
    const char *close = diag_closest(c->kw[i], known, n_known);
    const char *takes = param_list(E->a, known, n_known);
    if (close)
      elab_error(E, c->kw_loc[i], "'%s' has no argument '%s'; did you mean '%s'? (it takes %s)",
                 c->fn, c->kw[i], close, takes);
    else
      elab_error(E, c->kw_loc[i], "'%s' has no argument '%s' (it takes %s)", c->fn, c->kw[i], takes);
  }
  return ok;
}

/* ----------------------------------------------------------- data sources */

static Node *model_input(const Graph *g, int k) {
  int seen = 0;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op == OP_VAR && (g->nodes[i]->roles & ROLE_INPUT) && seen++ == k) return g->nodes[i];
  return NULL;
}

static const char *resolve_path(Elab *E, const char *p) {
  if (p[0] == '/' || !E->opt->base_dir || !*E->opt->base_dir || !strcmp(E->opt->base_dir, "."))
    return p;
  return arena_printf(E->a, "%s/%s", E->opt->base_dir, p);
}

/* Checks that a synthetic source's (x, y) fit the model's first inputs. */
static bool check_synthetic(Elab *E, const Graph *g, const CallArgs *c, DType ydt, int64_t xdim,
                            int64_t ydim) {
  Node *x = model_input(g, 0), *y = model_input(g, 1);
  char ts[TYPE_STR_MAX];
  if (!x || !y) {
    elab_error(E, c->loc, "'%s' feeds the model's first two inputs, but model '%s' has %d", c->fn,
               g->name, x ? 1 : 0);
    return false;
  }
  bool x_ok = x->type.dtype == DT_F32 && x->type.rank == 2 && x->type.dim[1] == xdim;
  if (!x_ok) {
    elab_error(E, c->loc, "'%s' gives x as f32[B,%lld], but input '%s' is %s", c->fn,
               (long long)xdim, x->name, type_str(&x->type, ts, sizeof ts));
    return false;
  }
  bool y_ok = y->type.dtype == ydt &&
              (ydim == 0 ? y->type.rank == 1 : y->type.rank == 2 && y->type.dim[1] == ydim) &&
              y->type.dim[0] == x->type.dim[0];
  if (!y_ok) {
    elab_error(E, c->loc, "'%s' gives y as %s[B%s], but input '%s' is %s", c->fn, dtype_name(ydt),
               ydim ? ",1" : "", y->name, type_str(&y->type, ts, sizeof ts));
    return false;
  }
  return true;
}

static DataSpec *elab_data(Elab *E, const Ast *e, const Graph *g) {
  CallArgs c;
  if (!call_args(E, e, &c, "a data source")) return NULL;
  int kind = data_kind_by_name(c.fn);
  if (kind < 0) {
    static const char *const sources[] = {"idx", "csv", "npy", "text", "sine", "spiral", "xor"};
    const char *close = diag_closest(c.fn, sources, 7);
    if (close) elab_error(E, c.loc, "unknown data source '%s'; did you mean '%s'?", c.fn, close);
    else elab_error(E, c.loc, "unknown data source '%s' (known: idx, csv, npy, text, sine, spiral, xor)", c.fn);
    return NULL;
  }
  DataSpec *ds = ARENA_NEW(E->a, DataSpec);
  ds->kind = (DataKind)kind;
  ds->loc = c.loc;
  ds->scale = 1;
  ds->bind_input = ARENA_ARRAY(E->a, const char *, c.n + 1);
  ds->bind_path = ARENA_ARRAY(E->a, const char *, c.n + 1);
  ds->bind_col_lo = ARENA_ARRAY(E->a, int64_t, c.n + 1);
  ds->bind_col_hi = ARENA_ARRAY(E->a, int64_t, c.n + 1);
  bool files = ds->kind == DATA_IDX || ds->kind == DATA_CSV || ds->kind == DATA_NPY;
  if (ds->kind == DATA_TEXT) {
    Value *p = take(&c, "path", 0);
    if (!p || p->kind != V_STR) {
      elab_error(E, c.loc, "'text' needs a file name: text(\"file.txt\")");
      return NULL;
    }
    ds->path = resolve_path(E, p->s);
    Node *x = model_input(g, 0), *y = model_input(g, 1);
    if (!x || !y || x->type.dtype != DT_I32 || y->type.dtype != DT_I32 || x->type.rank != 2 ||
        !type_eq(&x->type, &y->type)) {
      elab_error(E, c.loc, "'text' feeds i32[B, T] windows to the model's first two inputs");
      return NULL;
    }
    return no_extra(E, &c, (const char *const[]){"path"}, 1) ? ds : NULL;
  }
  if (files) {
    if (ds->kind == DATA_CSV) {
      Value *p = take(&c, "path", 0);
      if (!p || p->kind != V_STR) {
        elab_error(E, c.loc, "'csv' needs a file name: csv(\"file.csv\", x = [0:4], y = 4)");
        return NULL;
      }
      ds->path = resolve_path(E, p->s);
      Value *extra = take(&c, "extra_columns", -1);  /* rows may hold columns nothing binds */
      if (extra && extra->kind != V_BOOL) {
        elab_error(E, c.loc, "'extra_columns' of 'csv' must be true or false");
        return NULL;
      }
      ds->extra_columns = extra && extra->b;
    }
    if (ds->kind == DATA_IDX && !take_num(E, &c, "scale", -1, &ds->scale)) return NULL;
    for (int i = 0; i < c.n; i++) {
      if (c.used[i]) continue;
      if (!c.kw[i]) {
        elab_error(E, c.ast[i]->loc, "'%s' binds files to inputs by keyword: %s(x = ...)", c.fn, c.fn);
        return NULL;
      }
      Node *in = ir_find_var(g, c.kw[i]);
      if (!in || !(in->roles & ROLE_INPUT)) {
        const char *names[64];
        int nn = 0;
        for (int k = 0; k < g->n_nodes && nn < 64; k++)
          if (g->nodes[k]->op == OP_VAR && (g->nodes[k]->roles & ROLE_INPUT)) names[nn++] = g->nodes[k]->name;
        const char *close = diag_closest(c.kw[i], names, nn);
        if (close)
          elab_error(E, c.kw_loc[i], "'%s' is not an input of model '%s'; did you mean '%s'?",
                     c.kw[i], g->name, close);
        else
          elab_error(E, c.kw_loc[i], "'%s' is not an input of model '%s'", c.kw[i], g->name);
        return NULL;
      }
      c.used[i] = true;
      int k = ds->n_bind++;
      ds->bind_input[k] = in->name;
      const Value *v = &c.val[i];
      if (ds->kind == DATA_CSV) {
        int64_t lo, hi;
        if (v->kind == V_NUM && v->is_int && (v->i < 0 || v->i > 1000000)) {
          elab_error(E, c.ast[i]->loc, "csv column %lld is out of range (0..1000000)", (long long)v->i);
          return NULL;
        } else if (v->kind == V_NUM && v->is_int) {
          lo = v->i, hi = v->i + 1;
        } else if (v->kind == V_LIST && v->n == 1 && v->items[0].kind == V_SLICE && v->items[0].n >= 0) {
          lo = v->items[0].i, hi = v->items[0].n;
        } else {
          elab_error(E, c.ast[i]->loc, "a csv column must be an index or a range like [0:4]");
          return NULL;
        }
        if (lo < 0 || hi <= lo || hi > 1000001) {
          elab_error(E, c.ast[i]->loc, "bad csv column range %lld:%lld", (long long)lo, (long long)hi);
          return NULL;
        }
        ds->bind_col_lo[k] = lo, ds->bind_col_hi[k] = hi;
      } else {
        if (v->kind != V_STR) {
          elab_error(E, c.ast[i]->loc, "'%s' of '%s' must be a file name", c.kw[i], c.fn);
          return NULL;
        }
        ds->bind_path[k] = resolve_path(E, v->s);
      }
    }
    if (ds->n_bind == 0) {
      elab_error(E, c.loc, "'%s' binds no input: write %s(x = ..., y = ...)", c.fn, c.fn);
      return NULL;
    }
    return ds;
  }
  if (ds->kind == DATA_SINE) {
    ds->n = 4096, ds->lo = -3.14159265358979323846, ds->hi = 3.14159265358979323846;
    if (!take_int(E, &c, "n", 0, &ds->n) || !take_num(E, &c, "lo", 1, &ds->lo) ||
        !take_num(E, &c, "hi", 2, &ds->hi) || !no_extra(E, &c, (const char *const[]){"n", "lo", "hi"}, 3))
      return NULL;
    if (ds->lo >= ds->hi) {
      elab_error(E, c.loc, "'sine' needs lo < hi");
      return NULL;
    }
    if (!check_synthetic(E, g, &c, DT_F32, 1, 1)) return NULL;
  } else if (ds->kind == DATA_SPIRAL) {
    ds->n = 3000, ds->classes = 3;
    if (!take_int(E, &c, "n", 0, &ds->n) || !take_int(E, &c, "classes", 1, &ds->classes) ||
        !no_extra(E, &c, (const char *const[]){"n", "classes"}, 2))
      return NULL;
    if (ds->classes < 2) {
      elab_error(E, c.loc, "'spiral' needs classes >= 2, got %lld", (long long)ds->classes);
      return NULL;
    }
    if (!check_synthetic(E, g, &c, DT_I32, 2, 0)) return NULL;
  } else {  /* DATA_XOR: every other kind returned above */
    ds->n = 1000;
    if (!take_int(E, &c, "n", 0, &ds->n) || !no_extra(E, &c, (const char *const[]){"n"}, 1)) return NULL;
    if (!check_synthetic(E, g, &c, DT_F32, 2, 1)) return NULL;
  }
  if (ds->n < 1 || ds->n > 100000000) {
    elab_error(E, c.loc, "'%s' needs 1 <= n <= 100000000, got %lld", c.fn, (long long)ds->n);
    return NULL;
  }
  Node *x = model_input(g, 0);
  if (x && x->type.rank >= 1 && ds->n < x->type.dim[0]) {
    elab_error(E, c.loc, "'%s' has n = %lld samples, fewer than one batch of %lld", c.fn,
               (long long)ds->n, (long long)x->type.dim[0]);
    return NULL;
  }
  return ds;
}

/* ------------------------------------------------------------- optimizer */

static bool elab_optimizer(Elab *E, const Ast *e, TrainSpec *t) {
  CallArgs c;
  arg_locs.n = 0;
  if (!call_args(E, e, &c, "an optimizer")) return false;
  int kind = optimizer_by_name(c.fn);
  if (kind < 0) {
    static const char *const opts[] = {"sgd", "adagrad", "rmsprop", "adam", "adamw"};
    const char *close = diag_closest(c.fn, opts, 5);
    if (close) elab_error(E, c.loc, "unknown optimizer '%s'; did you mean '%s'?", c.fn, close);
    else elab_error(E, c.loc, "unknown optimizer '%s' (known: sgd, adagrad, rmsprop, adam, adamw)", c.fn);
    return false;
  }
  t->optimizer = (OptimizerKind)kind;
  t->momentum = 0, t->weight_decay = 0, t->nesterov = false;
  t->beta1 = 0.9, t->beta2 = 0.999, t->eps = 1e-8, t->alpha = 0.99;
  bool ok = true;
  switch (t->optimizer) {
  case OPTIM_SGD: {
    t->lr = NAN;
    ok = take_num(E, &c, "lr", 0, &t->lr) && take_num(E, &c, "momentum", 1, &t->momentum) &&
         take_num(E, &c, "weight_decay", 3, &t->weight_decay);
    Value *nv = take(&c, "nesterov", 2);
    if (ok && nv) {
      if (nv->kind != V_BOOL) {
        elab_error(E, nv->loc, "'nesterov' of 'sgd' must be true or false");
        return false;
      }
      t->nesterov = nv->b;
    }
    if (ok && isnan(t->lr)) {
      elab_error(E, c.loc, "'sgd' needs a learning rate: sgd(lr = 0.1)");
      return false;
    }
    ok = ok && no_extra(E, &c, (const char *const[]){"lr", "momentum", "nesterov", "weight_decay"}, 4);
    break;
  }
  case OPTIM_ADAGRAD:
    t->lr = 0.01, t->eps = 1e-10;
    ok = take_num(E, &c, "lr", 0, &t->lr) && take_num(E, &c, "eps", 1, &t->eps) &&
         take_num(E, &c, "weight_decay", 2, &t->weight_decay) &&
         no_extra(E, &c, (const char *const[]){"lr", "eps", "weight_decay"}, 3);
    break;
  case OPTIM_RMSPROP:
    t->lr = 0.01;
    ok = take_num(E, &c, "lr", 0, &t->lr) && take_num(E, &c, "alpha", 1, &t->alpha) &&
         take_num(E, &c, "eps", 2, &t->eps) && take_num(E, &c, "momentum", 3, &t->momentum) &&
         take_num(E, &c, "weight_decay", 4, &t->weight_decay) &&
         no_extra(E, &c, (const char *const[]){"lr", "alpha", "eps", "momentum", "weight_decay"}, 5);
    break;
  case OPTIM_ADAM:
  case OPTIM_ADAMW:
    t->lr = 1e-3;
    if (t->optimizer == OPTIM_ADAMW) t->weight_decay = 0.01;
    ok = take_num(E, &c, "lr", 0, &t->lr) && take_num(E, &c, "beta1", 1, &t->beta1) &&
         take_num(E, &c, "beta2", 2, &t->beta2) && take_num(E, &c, "eps", 3, &t->eps) &&
         take_num(E, &c, "weight_decay", 4, &t->weight_decay) &&
         no_extra(E, &c, (const char *const[]){"lr", "beta1", "beta2", "eps", "weight_decay"}, 5);
    break;
  case OPTIM_COUNT:
    NNCC_ASSERT(!"optimizer_by_name gives a kind");
  }
  if (!ok) return false;
  /* the values PyTorch rejects */
  struct { const char *name; double v; double lo, hi; bool hi_open; } checks[] = {
      {"lr", t->lr, 0, INFINITY, false},
      {"eps", t->eps, 0, INFINITY, false},
      {"momentum", t->momentum, 0, INFINITY, false},
      {"weight_decay", t->weight_decay, 0, INFINITY, false},
      {"beta1", t->beta1, 0, 1, true},
      {"beta2", t->beta2, 0, 1, true},
      {"alpha", t->alpha, 0, INFINITY, false},
  };
  for (size_t i = 0; i < sizeof checks / sizeof checks[0]; i++) {
    double v = checks[i].v;
    if (isnan(v) || v < checks[i].lo || (checks[i].hi_open ? v >= checks[i].hi : v > checks[i].hi)) {
      char num[64];
      SrcLoc at = arg_loc(checks[i].name, c.loc);
      if (checks[i].hi_open)
        elab_error(E, at, "'%s' of '%s' must be in [0, 1), got %s", checks[i].name, c.fn,
                   fmt_num(v, num, sizeof num));
      else
        elab_error(E, at, "'%s' of '%s' must be >= 0, got %s", checks[i].name, c.fn,
                   fmt_num(v, num, sizeof num));
      return false;
    }
  }
  if (t->nesterov && t->momentum <= 0) {
    elab_error(E, c.loc, "nesterov momentum needs momentum > 0");
    return false;
  }
  return true;
}

static bool elab_schedule(Elab *E, const Ast *e, TrainSpec *t) {
  CallArgs c;
  if (!call_args(E, e, &c, "a schedule")) return false;
  int kind = schedule_by_name(c.fn);
  if (kind < 0) {
    static const char *const known[] = {"constant", "step", "cosine"};
    const char *close = diag_closest(c.fn, known, 3);
    if (close) elab_error(E, c.loc, "unknown schedule '%s'; did you mean '%s'?", c.fn, close);
    else elab_error(E, c.loc, "unknown schedule '%s' (known: constant, step, cosine)", c.fn);
    return false;
  }
  t->schedule = (ScheduleKind)kind;
  switch (t->schedule) {
  case SCHED_CONSTANT:
    return no_extra(E, &c, NULL, 0);
  case SCHED_STEP:
    t->step_every = 0, t->step_gamma = 0.1;
    if (!take_int(E, &c, "every", 0, &t->step_every) || !take_num(E, &c, "gamma", 1, &t->step_gamma) ||
        !no_extra(E, &c, (const char *const[]){"every", "gamma"}, 2))
      return false;
    if (t->step_every < 1) {
      elab_error(E, c.loc, "'step' needs every >= 1: step(every = 1000, gamma = 0.1)");
      return false;
    }
    if (!(t->step_gamma > 0)) {
      elab_error(E, c.loc, "'gamma' of 'step' must be > 0, got %g", t->step_gamma);
      return false;
    }
    return true;
  case SCHED_COSINE:
    t->warmup = 0;
    if (!take_int(E, &c, "warmup", 0, &t->warmup) || !no_extra(E, &c, (const char *const[]){"warmup"}, 1))
      return false;
    if (t->warmup < 0) {
      elab_error(E, c.loc, "'warmup' of 'cosine' must be >= 0, got %lld", (long long)t->warmup);
      return false;
    }
    return true;
  case SCHED_COUNT:
    break;
  }
  NNCC_ASSERT(!"schedule_by_name gives a kind");
  return false;
}

/* ------------------------------------------------------------ the block */

static const Item *find_model_item(Elab *E, const char *name) {
  for (int i = 0; i < E->prog->n_items; i++)
    if (E->prog->items[i]->kind == ITEM_MODEL && !strcmp(E->prog->items[i]->name, name))
      return E->prog->items[i];
  return NULL;
}

void elab_train(Elab *E, const Item *it, Module *m) {
  Graph *g = ir_module_graph(m, it->name);
  if (!g) {
    const char *names[256];
    int n = 0;
    for (int i = 0; i < m->n_graphs && n < 256; i++) names[n++] = m->graphs[i]->name;
    const char *close = diag_closest(it->name, names, n);
    if (close) elab_error(E, it->name_loc, "unknown model '%s'; did you mean '%s'?", it->name, close);
    else elab_error(E, it->name_loc, "unknown model '%s'", it->name);
    return;
  }
  for (int i = 0; i < m->n_trains; i++)
    if (!strcmp(m->trains[i]->model, it->name)) {
      elab_error(E, it->name_loc, "model '%s' already has a train block", it->name);
      diag_note(E->d, m->trains[i]->loc, "the first train block is here");
      return;
    }
  Node *loss = NULL;
  for (int i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->roles & ROLE_LOSS) loss = g->nodes[i];
  const Item *model_item = find_model_item(E, it->name);
  bool loss_failed = false;  /* a loss statement whose error is already reported */
  if (!loss && model_item)
    for (int i = 0; i < model_item->n_body; i++) loss_failed |= model_item->body[i]->kind == ST_LOSS;
  if (!loss && !loss_failed) {
    elab_error(E, it->name_loc, "model '%s' has no loss to train", it->name);
    if (model_item) diag_note(E->d, model_item->name_loc, "model '%s' is defined here; add a 'loss' statement", it->name);
    return;
  }
  TrainSpec *t = ARENA_NEW(E->a, TrainSpec);
  t->model = it->name;
  t->loc = it->loc;
  t->epochs = 1, t->shuffle = true, t->seed = 0, t->schedule = SCHED_CONSTANT;
  static const char *const keys[] = {"data", "eval", "optimizer", "schedule", "epochs",
                                     "shuffle", "seed", "metrics"};
  bool seen[8] = {false}, ok = true;
  SrcLoc seen_at[8];
  Frame top = {.scope = ""};
  Frame *saved = E->frame;
  E->frame = &top;
  for (int i = 0; i < it->n_keys; i++) {
    const TrainKey *k = &it->keys[i];
    int idx = -1;
    for (int j = 0; j < 8; j++)
      if (!strcmp(keys[j], k->key)) idx = j;
    if (idx < 0) {
      const char *close = diag_closest(k->key, keys, 8);
      if (close) elab_error(E, k->loc, "unknown train key '%s'; did you mean '%s'?", k->key, close);
      else elab_error(E, k->loc, "unknown train key '%s'", k->key);
      ok = false;
      continue;
    }
    if (seen[idx]) {
      elab_error(E, k->loc, "'%s' is given twice", k->key);
      diag_note(E->d, seen_at[idx], "first given here");
      ok = false;
      continue;
    }
    seen[idx] = true;
    seen_at[idx] = k->loc;
    switch (idx) {
    case 0: ok &= (t->data = elab_data(E, k->value, g)) != NULL; break;
    case 1: ok &= (t->eval = elab_data(E, k->value, g)) != NULL; break;
    case 2: ok &= elab_optimizer(E, k->value, t); break;
    case 3: ok &= elab_schedule(E, k->value, t); break;
    case 4: {
      Value v = elab_expr(E, k->value);
      if (!const_int(E, &v, &t->epochs, "'epochs'")) ok = false;
      else if (t->epochs < 1) {
        elab_error(E, k->value->loc, "'epochs' must be >= 1, got %lld", (long long)t->epochs);
        ok = false;
      }
      break;
    }
    case 5: {
      Value v = elab_expr(E, k->value);
      if (v.kind != V_BOOL) {
        if (!is_err(&v)) elab_error(E, k->value->loc, "'shuffle' must be true or false");
        ok = false;
      } else {
        t->shuffle = v.b;
      }
      break;
    }
    case 6: {
      Value v = elab_expr(E, k->value);
      if (!const_int(E, &v, &t->seed, "'seed'")) ok = false;
      else if (t->seed < 0) {
        elab_error(E, k->value->loc, "'seed' must be >= 0, got %lld", (long long)t->seed);
        ok = false;
      }
      break;
    }
    case 7: {
      const Ast *e = k->value;
      if (e->kind != AST_LIST) {
        elab_error(E, e->loc, "'metrics' must be a list such as [accuracy]");
        ok = false;
        break;
      }
      for (int j = 0; j < e->n_items; j++) {
        const Ast *mname = e->items[j];
        if (mname->kind == AST_NAME && !strcmp(mname->str, "loss")) continue;
        if (mname->kind == AST_NAME && !strcmp(mname->str, "accuracy")) {
          bool labels = false;
          for (int n = 0; n < g->n_nodes; n++)
            if ((g->nodes[n]->roles & ROLE_INPUT) && g->nodes[n]->type.dtype == DT_I32) labels = true;
          if (!labels) {
            elab_error(E, mname->loc, "'accuracy' needs i32 class labels, but model '%s' has no i32 input",
                       g->name);
            ok = false;
          }
          t->metric_accuracy = true;
          continue;
        }
        static const char *const metrics[] = {"accuracy", "loss"};
        const char *close = mname->kind == AST_NAME ? diag_closest(mname->str, metrics, 2) : NULL;
        if (mname->kind != AST_NAME)
          elab_error(E, mname->loc, "a metric is a name such as accuracy");
        else if (close)
          elab_error(E, mname->loc, "unknown metric '%s'; did you mean '%s'?", mname->str, close);
        else
          elab_error(E, mname->loc, "unknown metric '%s' (known: accuracy, loss)", mname->str);
        ok = false;
      }
      break;
    }
    }
  }
  E->frame = saved;
  if (!seen[0]) {
    elab_error(E, it->loc, "train block for '%s' has no 'data'", it->name);
    ok = false;
  }
  if (!seen[2]) {
    elab_error(E, it->loc, "train block for '%s' has no 'optimizer'", it->name);
    ok = false;
  }
  if (!ok || !loss) return;
  m->trains = arena_realloc(E->a, m->trains, sizeof(TrainSpec *) * (size_t)m->n_trains,
                            sizeof(TrainSpec *) * (size_t)(m->n_trains + 1));
  m->trains[m->n_trains++] = t;
}
