/* train.c - `nncc train`, `nncc eval` and `nncc bench` (SPEC §3): the
 * model JIT-compiled by libnncc into an nncc_model_api, the train block's data
 * loaded (runtime/data.h), and the loop around train_step / evaluate:
 * shuffling, a progress line per epoch (a bar on a TTY), evaluation,
 * accuracy, checkpoints and a CSV log. Everything goes through the same
 * ABI an application uses with a .so. */
#include "tools/driver.h"

#include "runtime/data.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_OK 0
#define EXIT_COMPILE 1
#define EXIT_RUNTIME 3

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* The model to run: --model, or the first with a train block, or the
 * first one. */
static const char *pick_model(const RunOptions *o, Module *m) {
  if (o->model) return o->model;
  if (m->n_trains) return m->trains[0]->model;
  return m->n_graphs ? m->graphs[0]->model : NULL;
}

static const TrainSpec *spec_of(Module *m, const char *model) {
  for (int i = 0; i < m->n_trains; i++)
    if (!strcmp(m->trains[i]->model, model)) return m->trains[i];
  return NULL;
}

/* ------------------------------------------------------------ a session */

typedef struct Session {
  const RunOptions *o;
  nncc_jit *jit;
  const nncc_model_api *api;
  nncc_model *model;
  int inputs[8];          /* tensor ids of the model's inputs, in order */
  int n_inputs;
  int64_t batch;
  int loss, labels, logits;  /* tensor ids, or -1 */
} Session;

static int64_t per_sample(const nncc_tensor_info *t) {
  int64_t n = 1;
  for (int d = 1; d < t->rank; d++) n *= t->shape[d];
  return n;
}

/* The input that accuracy compares with: the i32 input of rank 1 (class
 * labels); the logits: the first output shaped [B, classes]. */
static void find_metric_tensors(Session *s) {
  const nncc_model_api *api = s->api;
  s->labels = s->logits = s->loss = -1;
  for (int i = 0; i < api->n_tensors; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    if (t->role == NNCC_LOSS) s->loss = i;
    if (t->role == NNCC_INPUT && t->dtype == NNCC_I32 && t->rank == 1 && s->labels < 0) s->labels = i;
  }
  for (int i = 0; i < api->n_tensors && s->labels >= 0; i++) {
    const nncc_tensor_info *t = &api->tensors[i];
    if (t->role == NNCC_OUTPUT && t->dtype == NNCC_F32 && t->rank == 2 && t->shape[0] == s->batch) {
      s->logits = i;
      break;
    }
  }
}

static int open_session(Session *s, const RunOptions *o, Module *m, const char *model) {
  memset(s, 0, sizeof *s);
  s->o = o;
  char err[1024];
  s->jit = nncc_jit_from_module(m, &o->cg, err, sizeof err);
  if (!s->jit) {
    fprintf(stderr, "nncc: error: code generation failed: %s\n", err);
    return EXIT_COMPILE;
  }
  s->api = nncc_jit_model(s->jit, model);
  if (!s->api) {
    fprintf(stderr, "nncc: error: no model named '%s' in '%s'\n", model, o->file);
    return EXIT_COMPILE;
  }
  for (int i = 0; i < s->api->n_tensors && s->n_inputs < 8; i++)
    if (s->api->tensors[i].role == NNCC_INPUT) s->inputs[s->n_inputs++] = i;
  s->batch = s->n_inputs && s->api->tensors[s->inputs[0]].rank ? s->api->tensors[s->inputs[0]].shape[0] : 1;
  find_metric_tensors(s);
  return EXIT_OK;
}

static void close_session(Session *s) {
  if (s->model) s->api->destroy(s->model);
  nncc_jit_free(s->jit);
}

/* ---------------------------------------------------------------- data */

/* Loads a data source into columns in the order of the model's inputs. */
static int load_data(Session *s, const DataSpec *ds, uint64_t seed, rt_dataset *out) {
  char err[1024] = "";
  const nncc_model_api *api = s->api;
  rt_column_spec cols[8];
  int n_cols = s->n_inputs;
  memset(cols, 0, sizeof cols);
  for (int k = 0; k < n_cols; k++) {
    const nncc_tensor_info *t = &api->tensors[s->inputs[k]];
    cols[k].is_int = t->dtype == NNCC_I32;
    cols[k].width = per_sample(t);
  }
  int rc;
  if (!strcmp(ds->kind, "sine") || !strcmp(ds->kind, "spiral") || !strcmp(ds->kind, "xor")) {
    rc = rt_load_synthetic(ds->kind, ds->n, ds->classes, ds->lo, ds->hi, seed, out, err, sizeof err);
  } else if (!strcmp(ds->kind, "text")) {
    int64_t t = api->tensors[s->inputs[0]].rank > 1 ? api->tensors[s->inputs[0]].shape[1] : 1;
    rc = rt_load_text(ds->path, t, out, err, sizeof err);
  } else {
    /* keyword bindings: input name -> file or columns; unbound inputs are
     * an error (the model could not be fed) */
    for (int k = 0; k < n_cols; k++) {
      const char *name = api->tensors[s->inputs[k]].name;
      int b = -1;
      for (int j = 0; j < ds->n_bind; j++)
        if (!strcmp(ds->bind_input[j], name)) b = j;
      if (b < 0) {
        fprintf(stderr, "nncc: error: the data source '%s' gives no value for input '%s'\n", ds->kind, name);
        return EXIT_RUNTIME;
      }
      cols[k].path = ds->bind_path[b];
      cols[k].col_lo = ds->bind_col_lo[b];
      cols[k].col_hi = ds->bind_col_hi[b];
      if (!strcmp(ds->kind, "csv") && cols[k].col_hi - cols[k].col_lo != cols[k].width) {
        fprintf(stderr, "nncc: error: %s: columns %lld:%lld give %lld values per sample, input '%s' needs %lld\n",
                ds->path, (long long)cols[k].col_lo, (long long)cols[k].col_hi,
                (long long)(cols[k].col_hi - cols[k].col_lo), name, (long long)cols[k].width);
        return EXIT_RUNTIME;
      }
    }
    if (!strcmp(ds->kind, "idx")) rc = rt_load_idx(cols, n_cols, ds->scale, out, err, sizeof err);
    else if (!strcmp(ds->kind, "csv")) rc = rt_load_csv(ds->path, cols, n_cols, out, err, sizeof err);
    else rc = rt_load_npy(cols, n_cols, out, err, sizeof err);
  }
  if (rc) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return EXIT_RUNTIME;
  }
  if (out->n_columns < n_cols) {
    fprintf(stderr, "nncc: error: the data source '%s' has %d columns, the model has %d inputs\n", ds->kind,
            out->n_columns, n_cols);
    return EXIT_RUNTIME;
  }
  for (int k = 0; k < n_cols; k++) {
    const rt_column *c = &out->columns[k];
    const nncc_tensor_info *t = &api->tensors[s->inputs[k]];
    if (c->width != per_sample(t) || c->is_int != (t->dtype == NNCC_I32)) {
      fprintf(stderr, "nncc: error: the data for input '%s' has %lld %s values per sample, the model needs %lld %s\n",
              t->name, (long long)c->width, c->is_int ? "integer" : "float", (long long)per_sample(t),
              t->dtype == NNCC_I32 ? "integer" : "float");
      return EXIT_RUNTIME;
    }
  }
  if (out->n < s->batch) {
    fprintf(stderr, "nncc: error: the data source '%s' has %lld samples, fewer than one batch of %lld\n",
            ds->kind, (long long)out->n, (long long)s->batch);
    return EXIT_RUNTIME;
  }
  return EXIT_OK;
}

/* Copies samples order[first .. first+batch) into the input tensors. */
static void fill_batch(Session *s, const rt_dataset *ds, const int64_t *order, int64_t first) {
  for (int k = 0; k < s->n_inputs; k++) {
    const rt_column *c = &ds->columns[k];
    char *dst = s->api->data(s->model, s->inputs[k]);
    size_t row = (size_t)c->width * 4;
    for (int64_t b = 0; b < s->batch; b++) {
      int64_t i = order ? order[first + b] : first + b;
      const void *src = c->is_int ? (const void *)(c->i + i * c->width) : (const void *)(c->f + i * c->width);
      memcpy(dst + (size_t)b * row, src, row);
    }
  }
}

/* Correct predictions of the current batch: argmax of the logits. */
static int64_t batch_correct(Session *s) {
  if (s->labels < 0 || s->logits < 0) return 0;
  const float *z = s->api->data(s->model, s->logits);
  const int32_t *y = s->api->data(s->model, s->labels);
  int64_t classes = s->api->tensors[s->logits].shape[1], right = 0;
  for (int64_t b = 0; b < s->batch; b++) {
    int64_t best = 0;
    for (int64_t c = 1; c < classes; c++)
      if (z[b * classes + c] > z[b * classes + best]) best = c;
    right += best == y[b];
  }
  return right;
}

typedef struct Stats {
  double loss, acc, seconds;
  int64_t samples;
} Stats;

/* Evaluation mode over a whole data set (partial last batch dropped). */
static int evaluate_set(Session *s, const rt_dataset *ds, Stats *st) {
  int64_t steps = ds->n / s->batch, right = 0;
  double sum = 0, t0 = now_s();
  for (int64_t i = 0; i < steps; i++) {
    fill_batch(s, ds, NULL, i * s->batch);
    int rc = s->api->evaluate(s->model);
    if (rc) {
      fprintf(stderr, "nncc: error: %s\n", s->api->last_error(s->model));
      return EXIT_RUNTIME;
    }
    sum += *(const float *)s->api->data(s->model, s->loss);
    right += batch_correct(s);
  }
  st->loss = steps ? sum / (double)steps : NAN;
  st->samples = steps * s->batch;
  st->acc = st->samples ? (double)right / (double)st->samples : 0;
  st->seconds = now_s() - t0;
  return EXIT_OK;
}

static void progress(const Session *s, bool tty, long long epoch, long long epochs, int64_t step, int64_t steps,
                     double loss, double acc, double rate, bool done) {
  if (s->o->quiet) return;
  char metrics[96] = "";
  if (s->logits >= 0) snprintf(metrics, sizeof metrics, "  acc %5.1f%%", 100 * acc);
  if (tty) {
    int width = 24, filled = steps ? (int)(width * step / steps) : width;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < filled ? '#' : '.';
    bar[width] = 0;
    fprintf(stderr, "\repoch %lld/%lld [%s] loss %.4f%s  %.0f samples/s%s", epoch, epochs, bar, loss, metrics, rate,
            done ? "\n" : "");
  } else if (done) {
    fprintf(stderr, "epoch %lld/%lld  loss %.4f%s  %.0f samples/s\n", epoch, epochs, loss, metrics, rate);
  }
}

int run_train(const RunOptions *o, Module *m) {
  const char *model = pick_model(o, m);
  const TrainSpec *spec = model ? spec_of(m, model) : NULL;
  if (!spec) {
    fprintf(stderr, "nncc: error: %s has no train block%s%s: nothing to train on\n", o->file,
            model ? " for model " : "", model ? model : "");
    return EXIT_COMPILE;
  }
  Session s;
  int rc = open_session(&s, o, m, model);
  if (rc) {
    close_session(&s);
    return rc;
  }
  uint64_t seed = o->seed >= 0 ? (uint64_t)o->seed : (uint64_t)spec->seed;
  long long epochs = o->epochs > 0 ? o->epochs : spec->epochs;
  rt_dataset train = {0}, eval = {0};
  FILE *log = NULL;
  char *log_tmp = NULL;
  int64_t *order = NULL;
  if ((rc = load_data(&s, spec->data, seed, &train))) goto out;
  if (spec->eval && (rc = load_data(&s, spec->eval, seed + 1, &eval))) goto out;
  s.model = s.api->create(seed);
  if (!s.model) {
    fprintf(stderr, "nncc: error: out of memory creating model '%s'\n", model);
    rc = EXIT_RUNTIME;
    goto out;
  }
  if (o->resume && s.api->load(s.model, o->resume)) {
    fprintf(stderr, "nncc: error: %s\n", s.api->last_error(s.model));
    rc = EXIT_RUNTIME;
    goto out;
  }
  int64_t steps = train.n / s.batch;
  s.api->set_hyper(s.model, "total_steps", (double)(steps * epochs));
  if (o->log) {
    size_t n = strlen(o->log) + 16;
    log_tmp = malloc(n);
    snprintf(log_tmp, n, "%s.tmpXXXXXX", o->log);
    int fd = mkstemp(log_tmp);
    if (fd < 0 || !(log = fdopen(fd, "w"))) {
      fprintf(stderr, "nncc: error: cannot write '%s': %s\n", o->log, strerror(errno));
      rc = EXIT_RUNTIME;
      goto out;
    }
    fprintf(log, "epoch,loss,accuracy,eval_loss,eval_accuracy,samples_per_second\n");
  }
  bool tty = isatty(2) && !o->quiet;
  order = malloc(sizeof(int64_t) * (size_t)train.n);
  if (!o->quiet)
    fprintf(stderr, "training '%s': %lld samples, batch %lld, %lld steps per epoch, %lld epochs\n", model,
            (long long)train.n, (long long)s.batch, (long long)steps, epochs);
  Stats last = {0}, last_eval = {NAN, NAN, 0, 0};
  for (long long e = 1; e <= epochs; e++) {
    if (spec->shuffle) rt_shuffle(order, train.n, seed, (uint64_t)e);
    else
      for (int64_t i = 0; i < train.n; i++) order[i] = i;
    double t0 = now_s(), sum = 0;
    int64_t right = 0;
    for (int64_t i = 0; i < steps; i++) {
      fill_batch(&s, &train, order, i * s.batch);
      if (s.api->train_step(s.model)) {
        if (tty) fputc('\n', stderr);
        fprintf(stderr, "nncc: error: %s\n", s.api->last_error(s.model));
        rc = EXIT_RUNTIME;
        goto out;
      }
      sum += *(const float *)s.api->data(s.model, s.loss);
      right += batch_correct(&s);
      if (tty && (i % 16 == 0 || i + 1 == steps))
        progress(&s, true, e, epochs, i + 1, steps, sum / (double)(i + 1), (double)right / (double)((i + 1) * s.batch),
                 (double)((i + 1) * s.batch) / (now_s() - t0 + 1e-9), false);
    }
    last.seconds = now_s() - t0;
    last.loss = sum / (double)steps;
    last.acc = (double)right / (double)(steps * s.batch);
    double rate = (double)(steps * s.batch) / (last.seconds + 1e-9);
    progress(&s, tty, e, epochs, steps, steps, last.loss, last.acc, rate, true);
    if (eval.n) {
      if ((rc = evaluate_set(&s, &eval, &last_eval))) goto out;
      if (!o->quiet) {
        if (s.logits >= 0) fprintf(stderr, "  eval loss %.4f  acc %.2f%%\n", last_eval.loss, 100 * last_eval.acc);
        else fprintf(stderr, "  eval loss %.6f\n", last_eval.loss);
      }
    }
    if (log)
      fprintf(log, "%lld,%.6f,%.6f,%.6f,%.6f,%.1f\n", e, last.loss, s.logits >= 0 ? last.acc : NAN, last_eval.loss,
              s.logits >= 0 ? last_eval.acc : NAN, rate);
  }
  /* final metrics on stdout: what a script reads */
  printf("final: loss %.6f", last.loss);
  if (s.logits >= 0) printf(" accuracy %.4f", last.acc);
  if (eval.n) {
    printf(" eval_loss %.6f", last_eval.loss);
    if (s.logits >= 0) printf(" eval_accuracy %.4f", last_eval.acc);
  }
  printf("\n");
  if (o->save && s.api->save(s.model, o->save)) {
    fprintf(stderr, "nncc: error: %s\n", s.api->last_error(s.model));
    rc = EXIT_RUNTIME;
    goto out;
  }
  rc = EXIT_OK;
out:
  if (log) {
    bool ok = !ferror(log);
    ok &= fclose(log) == 0;
    if (rc == EXIT_OK && ok && rename(log_tmp, o->log) == 0) {
    } else {
      if (rc == EXIT_OK) {
        fprintf(stderr, "nncc: error: cannot write '%s'\n", o->log);
        rc = EXIT_RUNTIME;
      }
      unlink(log_tmp);
    }
  }
  free(log_tmp);
  free(order);
  rt_dataset_free(&train);
  rt_dataset_free(&eval);
  close_session(&s);
  return rc;
}

int run_eval(const RunOptions *o, Module *m) {
  const char *model = pick_model(o, m);
  const TrainSpec *spec = model ? spec_of(m, model) : NULL;
  if (!o->load) {
    fprintf(stderr, "nncc: error: eval needs a checkpoint: nncc eval FILE.nn --load CKPT\n");
    return 2;
  }
  if (!spec) {
    fprintf(stderr, "nncc: error: %s has no train block with data to evaluate on\n", o->file);
    return EXIT_COMPILE;
  }
  Session s;
  int rc = open_session(&s, o, m, model);
  rt_dataset data = {0};
  if (rc) goto out;
  const DataSpec *ds = spec->eval ? spec->eval : spec->data;
  uint64_t seed = o->seed >= 0 ? (uint64_t)o->seed : (uint64_t)spec->seed;
  if ((rc = load_data(&s, ds, seed + (spec->eval ? 1 : 0), &data))) goto out;
  s.model = s.api->create(seed);
  if (!s.model || s.api->load(s.model, o->load)) {
    fprintf(stderr, "nncc: error: %s\n", s.model ? s.api->last_error(s.model) : "out of memory");
    rc = EXIT_RUNTIME;
    goto out;
  }
  Stats st;
  if ((rc = evaluate_set(&s, &data, &st))) goto out;
  printf("eval: loss %.6f", st.loss);
  if (s.logits >= 0) printf(" accuracy %.4f", st.acc);
  printf(" (%lld samples)\n", (long long)st.samples);
  rc = EXIT_OK;
out:
  rt_dataset_free(&data);
  close_session(&s);
  return rc;
}

/* ---------------------------------------------------------------- bench */

/* FLOPs of one node as the peers count them (shared/peers/models.py):
 * multiply-adds x2 of matmul and conv2d and of conv2d's two gradients;
 * nothing else (bias, activations, loss, optimizer are not counted). */
static double node_flops(const Node *n) {
  switch (n->op) {
  case OP_MATMUL: {  /* every output element is a K-long dot product */
    const Type *a = &n->in[0]->type;
    return 2.0 * (double)type_numel(&n->type) * (double)a->dim[a->rank - 1];
  }
  case OP_CONV2D:             /* (x, w[Cout,Cin,kh,kw]) -> [N,Cout,OH,OW] */
  case OP_CONV2D_GRAD_INPUT:  /* (g[N,Cout,OH,OW], w) -> d/dx */
  {
    const Type *w = &n->in[1]->type, *y = n->op == OP_CONV2D ? &n->type : &n->in[0]->type;
    return 2.0 * (double)type_numel(y) * (double)(w->dim[1] * w->dim[2] * w->dim[3]);
  }
  case OP_CONV2D_GRAD_WEIGHT: /* (x, g[N,Cout,OH,OW]) -> [Cout,Cin,kh,kw] */
    return 2.0 * (double)type_numel(&n->in[1]->type) * (double)(type_numel(&n->type) / n->type.dim[0]);
  default:
    return 0;
  }
}

/* FLOPs of graph g: `all` counts every node; otherwise only the nodes
 * that outputs, the loss, updates and the gradients of params and states
 * need, i.e. not what only d loss / d input needs (the peers' count gives
 * the first layer no input gradient; nncc's train_step computes it for
 * the ABI's grad()). */
static double graph_flops(const Graph *g, bool all) {
  if (!g) return 0;
  bool *need = calloc((size_t)g->n_nodes + 1, sizeof *need);
  double f = 0;
  if (!need) return 0;
  for (int i = g->n_nodes - 1; i >= 0; i--) {
    const Node *n = g->nodes[i];
    bool input_grad = (n->roles & ROLE_GRAD) && n->grad_of && (n->grad_of->roles & ROLE_INPUT);
    if (all || (n->roles & (ROLE_OUTPUT | ROLE_LOSS)) || (op_info(n->op)->flags & OPF_EFFECT) ||
        ((n->roles & ROLE_GRAD) && !input_grad))
      need[i] = true;
    if (!need[i]) continue;
    f += node_flops(n);
    for (int k = 0; k < n->n_in; k++) need[n->in[k]->id] = true;
  }
  free(need);
  return f;
}

static const Graph *graph_of(const Module *m, const char *model, bool training) {
  for (int i = 0; i < m->n_graphs; i++)
    if (m->graphs[i]->model && !strcmp(m->graphs[i]->model, model) && m->graphs[i]->training == training)
      return m->graphs[i];
  return NULL;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

#define BENCH_WARMUP_CALLS 50     /* as the peers: 50 warm-up steps */
#define BENCH_MIN_CALLS 300       /* then at least 300 timed calls ... */
#define BENCH_MIN_SECONDS 1.0     /* ... and at least this long */
#define BENCH_MAX_CALLS 1000000

/* Times fn: warm-up, then every call timed on its own. Fills best and
 * median (seconds) and the number of timed calls; returns fn's first
 * error code, 0 when every call succeeded. */
static int time_kernel(Session *s, int (*fn)(nncc_model *), double *best, double *median, int *calls) {
  for (int i = 0; i < BENCH_WARMUP_CALLS; i++) {
    int rc = fn(s->model);
    if (rc) return rc;
  }
  int cap = 4096, n = 0;
  double *t = malloc(sizeof *t * (size_t)cap);
  if (!t) return -1;
  double t_end = now_s() + BENCH_MIN_SECONDS;
  while ((n < BENCH_MIN_CALLS || now_s() < t_end) && n < BENCH_MAX_CALLS) {
    double t0 = now_s();
    int rc = fn(s->model);
    double dt = now_s() - t0;
    if (rc) {
      free(t);
      return rc;
    }
    if (n == cap) {
      double *more = realloc(t, sizeof *t * (size_t)cap * 2);
      if (!more) break;  /* enough samples anyway */
      t = more;
      cap *= 2;
    }
    t[n++] = dt;
  }
  qsort(t, (size_t)n, sizeof *t, cmp_double);
  *best = t[0];
  *median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
  *calls = n;
  free(t);
  return 0;
}

/* `nncc bench FILE.nn`: forward (evaluation mode, inputs -> outputs) and
 * train_step (forward in training mode, backward, optimizer update) of
 * the JIT-compiled model on one fixed synthetic batch, through the ABI
 * an application uses. Each kernel: 50 warm-up calls, then at least 300
 * calls and 1 s (10^6 calls at most), each timed alone; best, median,
 * samples/s and GFLOPS (FLOPs as the peers count them / time). One
 * process, wall clock: on a shared machine expect 10-60 % noise; compare
 * with peers measured in the same session (bench/run.sh). */
int run_bench(const RunOptions *o, Module *m) {
  const char *model = pick_model(o, m);
  Session s;
  int rc = open_session(&s, o, m, model);
  if (rc) {
    close_session(&s);
    return rc;
  }
  s.model = s.api->create(1);
  if (!s.model) {
    fprintf(stderr, "nncc: error: out of memory creating model '%s'\n", model);
    close_session(&s);
    return EXIT_RUNTIME;
  }
  /* the batch: f32 inputs N(0,1), i32 inputs (labels, indices) 0 */
  for (int k = 0; k < s.n_inputs; k++) {
    const nncc_tensor_info *t = &s.api->tensors[s.inputs[k]];
    int64_t n = per_sample(t) * (t->rank ? t->shape[0] : 1);
    if (t->dtype == NNCC_I32) memset(s.api->data(s.model, s.inputs[k]), 0, (size_t)n * 4);
    else {
      float *x = s.api->data(s.model, s.inputs[k]);
      for (int64_t i = 0; i < n; i++) x[i] = (float)rt_rand_normal(7, (uint64_t)k, (uint64_t)i);
    }
  }
  const Graph *eval_g = graph_of(m, model, false), *train_g = graph_of(m, model, true);
  struct {
    const char *name;
    int (*fn)(nncc_model *);
    double flops, executed;  /* the peers' count; every matmul/conv of the graph */
    double median;
  } k[2] = {{"forward", s.api->forward, graph_flops(eval_g, false), graph_flops(eval_g, false), 0},
            {"train_step", s.api->train_step, graph_flops(train_g, false), graph_flops(train_g, true), 0}};
  int n_k = s.loss >= 0 && train_g ? 2 : 1;

  printf("nncc bench %s: model '%s', batch %lld; one process, wall clock "
         "(a shared machine: expect 10-60%% noise between runs)\n",
         o->file, model, (long long)s.batch);
  printf("each kernel: %d warm-up calls, then >= %d calls and >= %.0f s (at most %d calls), each timed alone; "
         "GFLOPS = matmul/conv FLOPs (x2 multiply-adds, as the peers count) / time\n",
         BENCH_WARMUP_CALLS, BENCH_MIN_CALLS, BENCH_MIN_SECONDS, BENCH_MAX_CALLS);
  printf("%-10s  %8s  %10s  %10s  %12s  %12s  %11s  %12s\n", "kernel", "calls", "best_us", "median_us",
         "samples/s", "MFLOP", "GFLOPS_med", "GFLOPS_best");
  for (int f = 0; f < n_k; f++) {
    double best = 0, med = 0;
    int calls = 0;
    rc = time_kernel(&s, k[f].fn, &best, &med, &calls);
    if (rc) {
      fprintf(stderr, "nncc: error: %s: %s\n", k[f].name, rc < 0 ? "out of memory" : s.api->last_error(s.model));
      close_session(&s);
      return EXIT_RUNTIME;
    }
    k[f].median = med;
    printf("%-10s  %8d  %10.2f  %10.2f  %12.0f  %12.6f  %11.2f  %12.2f\n", k[f].name, calls, best * 1e6,
           med * 1e6, (double)s.batch / med, k[f].flops * 1e-6, k[f].flops / med * 1e-9,
           k[f].flops / best * 1e-9);
  }
  for (int f = 0; f < n_k; f++)
    if (k[f].executed > k[f].flops)
      printf("note: %s also computes d loss / d input (for grad()): %.6f MFLOP more matmul/conv work, "
             "not counted above (%.2f GFLOPS at the median counting it)\n",
             k[f].name, (k[f].executed - k[f].flops) * 1e-6, k[f].executed / k[f].median * 1e-9);
  close_session(&s);
  return EXIT_OK;
}
