/* run.c - `nncc train`, `nncc eval` and `nncc bench` (SPEC §3): the
 * model JIT-compiled by libnncc into an nncc_model_api, the train block's data
 * loaded (runtime/data.h), and the loop around train_step / evaluate:
 * shuffling, a progress line per epoch (a bar on a TTY), evaluation,
 * accuracy, checkpoints and a CSV log. Everything goes through the same
 * ABI an application uses with a .so. */
#include "tools/driver.h"
#include "ir/train_spec.h"

#include "runtime/data.h"
#include "runtime/model.h"
#include "runtime/outfile.h"
#include "runtime/runtime.h"
#include "runtime/safetensors.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
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

/* The session's model from a compiled jit (taken over by s). */
static int attach_session(Session *s, const RunOptions *o, nncc_jit *jit, const char *model) {
  memset(s, 0, sizeof *s);
  s->o = o;
  s->jit = jit;
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

static int open_session(Session *s, const RunOptions *o, Module *m, const char *model) {
  memset(s, 0, sizeof *s);
  char err[1024];
  nncc_jit *jit = nncc_jit_from_module(m, &o->cg, err, sizeof err);
  if (!jit) {
    fprintf(stderr, "nncc: error: code generation failed: %s\n", err);
    return EXIT_COMPILE;
  }
  return attach_session(s, o, jit, model);
}

static void close_session(Session *s) {
  if (s->model) s->api->destroy(s->model);
  nncc_jit_free(s->jit);
}

/* ---------------------------------------------------------------- data */

/* Loads a data source into columns in the order of the model's inputs.
 * An i32 input with a label bound (cross_entropy, one_hot, gather) gets
 * its values checked as they are read, so a bad label names its file and
 * row. */
static int load_data(Session *s, const DataSpec *ds, uint64_t seed, rt_dataset *out) {
  char err[1024] = "";
  const nncc_model_api *api = s->api;
  const rt_model_desc *desc = rt_model_desc_of(s->model);  /* the label bounds */
  rt_column_spec cols[8];
  int n_cols = s->n_inputs;
  memset(cols, 0, sizeof cols);
  for (int k = 0; k < n_cols; k++) {
    const nncc_tensor_info *t = &api->tensors[s->inputs[k]];
    cols[k].is_int = t->dtype == NNCC_I32;
    cols[k].width = per_sample(t);
    if (desc && cols[k].is_int) cols[k].label_bound = desc->tensors[s->inputs[k]].label_bound;
  }
  int rc;
  const char *kind = data_kind_name(ds->kind);
  if (ds->kind == DATA_SINE || ds->kind == DATA_SPIRAL || ds->kind == DATA_XOR) {
    rc = rt_load_synthetic(kind, ds->n, ds->classes, ds->lo, ds->hi, seed, out, err, sizeof err);
  } else if (ds->kind == DATA_TEXT) {
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
        fprintf(stderr, "nncc: error: the data source '%s' gives no value for input '%s'\n", kind, name);
        return EXIT_RUNTIME;
      }
      cols[k].path = ds->bind_path[b];
      cols[k].col_lo = ds->bind_col_lo[b];
      cols[k].col_hi = ds->bind_col_hi[b];
      cols[k].allow_extra_columns = ds->extra_columns;
      if (ds->kind == DATA_CSV && cols[k].col_hi - cols[k].col_lo != cols[k].width) {
        fprintf(stderr, "nncc: error: %s: columns %lld:%lld give %lld values per sample, input '%s' needs %lld\n",
                ds->path, (long long)cols[k].col_lo, (long long)cols[k].col_hi,
                (long long)(cols[k].col_hi - cols[k].col_lo), name, (long long)cols[k].width);
        return EXIT_RUNTIME;
      }
    }
    if (ds->kind == DATA_IDX) rc = rt_load_idx(cols, n_cols, ds->scale, out, err, sizeof err);
    else if (ds->kind == DATA_CSV) rc = rt_load_csv(ds->path, cols, n_cols, out, err, sizeof err);
    else rc = rt_load_npy(cols, n_cols, out, err, sizeof err);
  }
  if (rc) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return EXIT_RUNTIME;
  }
  if (out->n_columns < n_cols) {
    fprintf(stderr, "nncc: error: the data source '%s' has %d columns, the model has %d inputs\n", kind,
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
            kind, (long long)out->n, (long long)s->batch);
    return EXIT_RUNTIME;
  }
  return EXIT_OK;
}

/* Copies `count` samples order[first ..] (or first.. in order) into the
 * input tensors of s. */
static void fill_batch(Session *s, const rt_dataset *ds, const int64_t *order, int64_t first, int64_t count) {
  for (int k = 0; k < s->n_inputs; k++) {
    const rt_column *c = &ds->columns[k];
    char *dst = s->api->data(s->model, s->inputs[k]);
    size_t row = (size_t)c->width * 4;
    for (int64_t b = 0; b < count; b++) {
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

/* An instance on --threads threads (default: the pool create() starts,
 * NNCC_THREADS or every CPU this process may use). Threads that cannot
 * be started leave the instance as it was, with a warning. */
static nncc_model *create_model(Session *s, const RunOptions *o, uint64_t seed) {
  nncc_model *m = s->api->create(seed);
  if (m && o->threads > 0 && s->api->set_threads(m, o->threads) != 0)
    fprintf(stderr, "nncc: warning: %s; running on %d\n", s->api->last_error(m), (int)s->api->threads(m));
  return m;
}

typedef struct Stats {
  double loss, acc, seconds;
  int64_t samples;
} Stats;

/* ------------------------------------------------- the remainder batch */

/* Evaluation counts every sample (docs/design.md, "Evaluation"): the
 * last N mod B samples run through the same model compiled for a batch
 * of N mod B. The batch size must come from a `const` (as in every
 * example: `const B = 64`); the one that, overridden as -D does, makes
 * the first input's dim 0 the remainder and leaves every param's shape
 * alone is it. Returns NULL with a reason when there is none. */
static nncc_jit *compile_remainder(const RunOptions *o, const Session *s, const char *model, int64_t r,
                                   char *why, size_t why_size) {
  snprintf(why, why_size, "the batch size is not a const of the program (write `const B = %lld` and use B)",
           (long long)s->batch);
  if (!o->src || r <= 0) return NULL;
  int n_user = o->eo ? o->eo->n_overrides : 0;
  ConstOverride *ovs = calloc((size_t)n_user + 1, sizeof *ovs);
  char *diag_text = NULL;
  size_t diag_len = 0;
  FILE *quiet = open_memstream(&diag_text, &diag_len);
  if (!ovs || !quiet) {
    free(ovs);
    if (quiet) fclose(quiet);
    free(diag_text);
    return NULL;
  }
  ElabOptions eo = o->eo ? *o->eo : (ElabOptions){0};
  Arena a = {0};
  Diag d;
  diag_init(&d, o->file, o->src, o->src_len, quiet);
  Program *prog = NULL;
  eo.n_overrides = 0;
  eo.overrides = ovs;
  frontend_compile(&a, &d, &eo, &prog);
  const char *found = NULL;
  for (int it = 0; prog && !d.n_errors && it < prog->n_items && !found; it++) {
    const Item *item = prog->items[it];
    if (item->kind != ITEM_CONST) continue;
    /* the user's -D values, this const set to r */
    int n = 0;
    for (int k = 0; k < n_user; k++)
      if (strcmp(o->eo->overrides[k].name, item->name)) ovs[n++] = o->eo->overrides[k];
    ovs[n++] = (ConstOverride){.name = item->name, .value = (double)r, .is_int = true, .ival = r};
    eo.overrides = ovs;
    eo.n_overrides = n;
    Arena b = {0};
    Diag d2;
    diag_init(&d2, o->file, o->src, o->src_len, quiet);
    Module *m = frontend_compile(&b, &d2, &eo, NULL);
    const Graph *g = m && !d2.n_errors ? ir_module_graph(m, model) : NULL;
    bool ok = g != NULL;
    int input = 0;
    for (int i = 0; ok && i < g->n_nodes; i++) {
      const Node *nd = g->nodes[i];
      if (nd->op != OP_VAR) continue;
      if (nd->roles & ROLE_INPUT) {  /* dim 0 of the first input is the batch, the rest as before */
        const nncc_tensor_info *t = &s->api->tensors[s->inputs[input < s->n_inputs ? input : 0]];
        ok = nd->type.rank == t->rank && nd->type.rank > 0 && (input > 0 || nd->type.dim[0] == r);
        for (int k = 1; ok && k < t->rank; k++) ok = nd->type.dim[k] == t->shape[k];
        input++;
      } else if (nd->roles & (ROLE_PARAM | ROLE_STATE)) {  /* the same tensors, the same shapes */
        const nncc_tensor_info *t = NULL;
        for (int k = 0; k < s->api->n_tensors && !t; k++)
          if (!strcmp(s->api->tensors[k].name, nd->name)) t = &s->api->tensors[k];
        ok = t && t->rank == nd->type.rank;
        for (int k = 0; ok && k < t->rank; k++) ok = nd->type.dim[k] == t->shape[k];
      }
    }
    if (ok) found = item->name;
    arena_free(&b);
  }
  nncc_jit *jit = NULL;
  if (found) {
    char *diagnostics = NULL;
    jit = nncc_jit_from_source(o->file, o->src, o->src_len, &eo, &o->cg, &diagnostics);
    if (!jit) snprintf(why, why_size, "compiling it for a batch of %lld failed:\n%s", (long long)r,
                       diagnostics ? diagnostics : "");
    free(diagnostics);
  }
  arena_free(&a);
  fclose(quiet);
  free(diag_text);
  free(ovs);
  return jit;
}

/* Copies every param and state of `from` into `to` by name (the
 * remainder model holds the same tensors). */
static void copy_weights(const Session *from, Session *to) {
  for (int k = 0; k < to->api->n_tensors; k++) {
    const nncc_tensor_info *t = &to->api->tensors[k];
    if (t->role != NNCC_PARAM && t->role != NNCC_STATE) continue;
    for (int q = 0; q < from->api->n_tensors; q++)
      if (!strcmp(from->api->tensors[q].name, t->name)) {
        int64_t n = 1;
        for (int d = 0; d < t->rank; d++) n *= t->shape[d];
        memcpy(to->api->data(to->model, k), from->api->data(from->model, q), (size_t)n * 4);
        break;
      }
  }
}

typedef struct Remainder {
  bool tried;
  Session s;          /* s.model != NULL when usable */
  char why[1200];     /* why there is none */
} Remainder;

/* Evaluation mode over a whole data set: full batches, then the last
 * N mod B samples through the remainder model. Loss and accuracy are
 * over exactly N samples (each batch's mean loss weighted by its size). */
static int evaluate_set(Session *s, Remainder *rem, const char *model, const rt_dataset *ds, Stats *st) {
  int64_t steps = ds->n / s->batch, right = 0, r = ds->n - steps * s->batch;
  double sum = 0, t0 = now_s();
  for (int64_t i = 0; i < steps; i++) {
    fill_batch(s, ds, NULL, i * s->batch, s->batch);
    int rc = s->api->evaluate(s->model);
    if (rc) {
      fprintf(stderr, "nncc: error: evaluation, batch %lld (samples %lld..%lld): %s\n", (long long)i,
              (long long)(i * s->batch), (long long)((i + 1) * s->batch - 1), s->api->last_error(s->model));
      return EXIT_RUNTIME;
    }
    sum += *(const float *)s->api->data(s->model, s->loss) * (double)s->batch;
    right += batch_correct(s);
  }
  int64_t counted = steps * s->batch;
  if (r > 0 && !rem->tried) {
    rem->tried = true;
    nncc_jit *jit = compile_remainder(s->o, s, model, r, rem->why, sizeof rem->why);
    if (jit && attach_session(&rem->s, s->o, jit, model) == EXIT_OK) {
      rem->s.model = create_model(&rem->s, s->o, 0);
      if (!rem->s.model) snprintf(rem->why, sizeof rem->why, "out of memory");
    } else if (jit) {
      close_session(&rem->s);
      memset(&rem->s, 0, sizeof rem->s);
    }
    if (!rem->s.model)
      fprintf(stderr, "nncc: warning: the last %lld of %lld samples are not evaluated: %s\n", (long long)r,
              (long long)ds->n, rem->why);
  }
  if (r > 0 && rem->s.model && rem->s.batch == r) {
    copy_weights(s, &rem->s);
    fill_batch(&rem->s, ds, NULL, steps * s->batch, r);
    int rc = rem->s.api->evaluate(rem->s.model);
    if (rc) {
      fprintf(stderr, "nncc: error: evaluation, the last %lld samples: %s\n", (long long)r,
              rem->s.api->last_error(rem->s.model));
      return EXIT_RUNTIME;
    }
    sum += *(const float *)rem->s.api->data(rem->s.model, rem->s.loss) * (double)r;
    right += batch_correct(&rem->s);
    counted += r;
  }
  st->loss = counted ? sum / (double)counted : NAN;
  st->samples = counted;
  st->acc = counted ? (double)right / (double)counted : 0;
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

/* ------------------------------------------------------------ the CSV log */

#define LOG_HEADER "epoch,loss,accuracy,eval_loss,eval_accuracy,samples_per_second\n"

/* --log: the rows so far are on disk after every epoch. A regular file
 * (or a new one) is rewritten whole, atomically, each time; a device or
 * FIFO is written in place, row by row. A resumed run keeps the rows of
 * the epochs before the one it resumes in. */
typedef struct CsvLog {
  const char *path;
  char *text;
  size_t len, cap;
  rt_outfile stream;  /* in place: open for the whole run */
  bool in_place;
} CsvLog;

static bool log_append(CsvLog *l, const char *s) {
  size_t n = strlen(s);
  if (l->len + n + 1 > l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 1024;
    while (cap < l->len + n + 1) cap *= 2;
    char *t = realloc(l->text, cap);
    if (!t) return false;
    l->text = t;
    l->cap = cap;
  }
  memcpy(l->text + l->len, s, n + 1);
  l->len += n;
  return true;
}

/* Writes what is new: the whole text (regular file) or `row` (in place). */
static int log_flush(CsvLog *l, const char *row) {
  char err[512];
  if (l->in_place) {
    if (fputs(row, l->stream.f) < 0 || fflush(l->stream.f) != 0) {
      fprintf(stderr, "nncc: error: %s: cannot write: %s\n", l->path, strerror(errno));
      return EXIT_RUNTIME;
    }
    return EXIT_OK;
  }
  if (rt_out_write_file(l->path, l->text, l->len, 0666, err, sizeof err)) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return EXIT_RUNTIME;
  }
  return EXIT_OK;
}

static int log_open(CsvLog *l, const char *path, long long keep_before_epoch) {
  memset(l, 0, sizeof *l);
  l->path = path;
  char err[512];
  if (rt_out_open(&l->stream, path, 0666, err, sizeof err)) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return EXIT_RUNTIME;
  }
  l->in_place = l->stream.in_place;
  if (!l->in_place) rt_out_abort(&l->stream);
  if (!log_append(l, LOG_HEADER)) return EXIT_RUNTIME;
  if (keep_before_epoch > 1 && !l->in_place) {  /* resumed: the earlier epochs' rows */
    FILE *f = fopen(path, "r");
    char line[512];
    if (f && fgets(line, sizeof line, f) && !strcmp(line, LOG_HEADER))
      while (fgets(line, sizeof line, f)) {
        long long e = strtoll(line, NULL, 10);
        if (e >= 1 && e < keep_before_epoch && strchr(line, '\n')) log_append(l, line);
      }
    if (f) fclose(f);
  }
  return log_flush(l, LOG_HEADER);
}

static int log_close(CsvLog *l) {
  int rc = EXIT_OK;
  if (l->in_place && l->stream.f) {
    char err[512];
    if (rt_out_commit(&l->stream, err, sizeof err)) {
      fprintf(stderr, "nncc: error: %s\n", err);
      rc = EXIT_RUNTIME;
    }
  }
  free(l->text);
  memset(l, 0, sizeof *l);
  return rc;
}

/* --------------------------------------------------------- checkpoints */

/* What a checkpoint says of the run beyond the tensors (train:step is a
 * tensor): its plan and where in an epoch it stopped (docs/design.md,
 * "Resuming a run"). */
typedef struct RunState {
  long long epochs;          /* the planned length */
  uint64_t seed;
  int64_t steps_per_epoch, samples;
  double epoch_loss_sum;     /* of the epoch in progress, steps done so far */
  int64_t epoch_correct;
} RunState;

/* NNCC_KILL_AFTER_CHECKPOINT=k (tests): the process SIGKILLs itself right
 * after writing its k-th checkpoint, a kill at an exact point of a run. */
static void maybe_die_after_checkpoint(void) {
  static long written;
  const char *k = getenv("NNCC_KILL_AFTER_CHECKPOINT");
  if (k && ++written == strtol(k, NULL, 10)) raise(SIGKILL);
}

static int save_checkpoint(Session *s, const char *path, const RunState *rs) {
  char epochs[32], seed[32], spe[32], samples[32], loss_sum[40], correct[32];
  snprintf(epochs, sizeof epochs, "%lld", rs->epochs);
  snprintf(seed, sizeof seed, "%" PRIu64, rs->seed);
  snprintf(spe, sizeof spe, "%" PRId64, rs->steps_per_epoch);
  snprintf(samples, sizeof samples, "%" PRId64, rs->samples);
  snprintf(loss_sum, sizeof loss_sum, "%.17g", rs->epoch_loss_sum);
  snprintf(correct, sizeof correct, "%" PRId64, rs->epoch_correct);
  const rt_st_meta meta[] = {{"run_epochs", epochs},          {"run_seed", seed},
                             {"run_steps_per_epoch", spe},    {"run_samples", samples},
                             {"epoch_loss_sum", loss_sum},    {"epoch_correct", correct}};
  if (rt_model_save_meta(s->model, path, meta, (int)(sizeof meta / sizeof meta[0]))) {
    fprintf(stderr, "nncc: error: %s\n", s->api->last_error(s->model));
    return EXIT_RUNTIME;
  }
  maybe_die_after_checkpoint();
  return EXIT_OK;
}

static bool meta_int(const rt_st_meta_list *l, const char *key, long long *out) {
  const char *v = rt_st_meta_get(l, key);
  char *end;
  if (!v || !*v) return false;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (*end || errno) return false;
  *out = x;
  return true;
}

/* The run state of a checkpoint that --resume names. */
static int read_run_state(const char *path, RunState *rs) {
  rt_st_meta_list meta;
  char err[512];
  if (rt_st_read_meta(path, &meta, err, sizeof err)) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return EXIT_RUNTIME;
  }
  long long epochs, seed, spe, samples, correct;
  const char *sum = rt_st_meta_get(&meta, "epoch_loss_sum");
  bool ok = meta_int(&meta, "run_epochs", &epochs) && meta_int(&meta, "run_seed", &seed) &&
            meta_int(&meta, "run_steps_per_epoch", &spe) && meta_int(&meta, "run_samples", &samples) &&
            meta_int(&meta, "epoch_correct", &correct) && sum && epochs >= 1 && spe >= 1;
  if (ok) {
    *rs = (RunState){epochs, (uint64_t)seed, spe, samples, strtod(sum, NULL), correct};
  } else {
    fprintf(stderr, "nncc: error: %s: not a checkpoint of a training run (no run_epochs, run_seed, ... in its "
            "__metadata__): --resume continues a run `nncc train --save` wrote; to start a new run from its "
            "weights use --init-from\n", path);
  }
  rt_st_meta_free(&meta);
  return ok ? EXIT_OK : EXIT_RUNTIME;
}

/* Every file the run will write can be written: checked before the
 * compile and the data, so no work is lost to a bad path at the end. */
static int check_outputs(const RunOptions *o) {
  const char *paths[] = {o->save, o->log};
  const char *what[] = {"--save", "--log"};
  for (int i = 0; i < 2; i++) {
    char err[512];
    if (paths[i] && rt_out_check(paths[i], err, sizeof err)) {
      fprintf(stderr, "nncc: error: %s %s\n", what[i], err);
      return EXIT_RUNTIME;
    }
  }
  return EXIT_OK;
}

/* ----------------------------------------------------------- nncc train */

int run_train(const RunOptions *o, Module *m) {
  const char *model = pick_model(o, m);
  const TrainSpec *spec = model ? spec_of(m, model) : NULL;
  if (!spec) {
    fprintf(stderr, "nncc: error: %s has no train block%s%s: nothing to train on\n", o->file,
            model ? " for model " : "", model ? model : "");
    return EXIT_COMPILE;
  }
  if (o->resume && o->init_from) {
    fprintf(stderr, "nncc: error: --resume continues a run, --init-from starts a new one from its weights: "
            "give one of them\n");
    return 2;
  }
  int rc = check_outputs(o);
  if (rc) return rc;
  RunState plan = {.epochs = o->epochs > 0 ? o->epochs : spec->epochs,
                   .seed = o->seed >= 0 ? (uint64_t)o->seed : (uint64_t)spec->seed};
  RunState resumed = {0};
  if (o->resume) {
    if ((rc = read_run_state(o->resume, &resumed))) return rc;
    if (o->seed >= 0 && (uint64_t)o->seed != resumed.seed) {
      fprintf(stderr, "nncc: error: --seed %lld: the run in '%s' has seed %" PRIu64 " (its data order and "
              "dropout depend on it); a resumed run keeps its seed\n", o->seed, o->resume, resumed.seed);
      return 2;
    }
    plan.seed = resumed.seed;
    plan.epochs = o->epochs > 0 ? o->epochs : resumed.epochs;
  }
  Session s;
  if ((rc = open_session(&s, o, m, model))) {
    close_session(&s);
    return rc;
  }
  Remainder rem = {0};
  rt_dataset train = {0}, eval = {0};
  CsvLog log = {0};
  bool have_log = false;
  int64_t *order = NULL;
  bool tty = isatty(2) && !o->quiet;
  long long saved_epoch = 0;   /* the last checkpoint written: epoch, step */
  int64_t saved_step = -1;
  s.model = create_model(&s, o, plan.seed);
  if (!s.model) {
    fprintf(stderr, "nncc: error: out of memory creating model '%s'\n", model);
    rc = EXIT_RUNTIME;
    goto out;
  }
  if ((rc = load_data(&s, spec->data, plan.seed, &train))) goto out;
  if (spec->eval && (rc = load_data(&s, spec->eval, plan.seed + 1, &eval))) goto out;
  int64_t steps = train.n / s.batch;
  plan.steps_per_epoch = steps;
  plan.samples = train.n;
  int64_t first_step = 0;  /* steps of the run already done */
  if (o->resume) {
    if (s.api->load(s.model, o->resume)) {
      fprintf(stderr, "nncc: error: %s\n", s.api->last_error(s.model));
      if (strstr(s.api->last_error(s.model), "another graph") || strstr(s.api->last_error(s.model), "fingerprint"))
        fprintf(stderr, "note: to start a new run from its weights (optimizer state fresh): --init-from %s\n",
                o->resume);
      rc = EXIT_RUNTIME;
      goto out;
    }
    if (resumed.steps_per_epoch != steps || resumed.samples != train.n) {
      fprintf(stderr, "nncc: error: --resume %s: the run had %lld samples in %lld steps per epoch, the data "
              "now has %lld in %lld: it is not the same run\n", o->resume, (long long)resumed.samples,
              (long long)resumed.steps_per_epoch, (long long)train.n, (long long)steps);
      rc = EXIT_RUNTIME;
      goto out;
    }
    int32_t step_id = -1;
    for (int i = 0; i < s.api->n_tensors; i++)
      if (!strcmp(s.api->tensors[i].name, "train:step")) step_id = i;
    if (step_id >= 0) first_step = (int64_t)*(const float *)s.api->data(s.model, step_id);
    if (o->epochs > 0 && o->epochs != resumed.epochs && !o->quiet)
      fprintf(stderr, "note: --epochs %lld changes the run's planned length from %lld epochs (schedules "
              "that depend on it follow the new length)\n", o->epochs, resumed.epochs);
    saved_epoch = first_step / steps;
    saved_step = first_step;
  } else if (o->init_from) {
    int n_loaded = 0;
    if (rt_model_load_weights(s.model, o->init_from, &n_loaded)) {
      fprintf(stderr, "nncc: error: --init-from %s\n", s.api->last_error(s.model));
      rc = EXIT_RUNTIME;
      goto out;
    }
    if (!o->quiet)
      fprintf(stderr, "initialized %d tensors from '%s' (weights only; optimizer state and step fresh)\n", n_loaded,
              o->init_from);
  }
  s.api->set_hyper(s.model, "total_steps", (double)(steps * plan.epochs));
  long long first_epoch = first_step / steps + 1;
  int64_t first_i = first_step % steps;
  if (o->log) {
    if ((rc = log_open(&log, o->log, o->resume ? first_epoch : 0))) goto out;
    have_log = true;
  }
  order = malloc(sizeof(int64_t) * (size_t)train.n);
  if (!order) {
    fprintf(stderr, "nncc: error: out of memory\n");
    rc = EXIT_RUNTIME;
    goto out;
  }
  if (!o->quiet) {
    fprintf(stderr, "training '%s': %lld samples, batch %lld, %lld steps per epoch, %lld epochs\n", model,
            (long long)train.n, (long long)s.batch, (long long)steps, plan.epochs);
    if (o->resume)
      fprintf(stderr, "resuming '%s' at epoch %lld, step %lld of %lld\n", o->resume, first_epoch,
              (long long)first_i, (long long)steps);
  }
  if (first_epoch > plan.epochs && !o->quiet)
    fprintf(stderr, "the run in '%s' is complete (%lld of %lld epochs): nothing to train\n", o->resume,
            first_epoch - 1, plan.epochs);
  Stats last = {NAN, NAN, 0, 0}, last_eval = {NAN, NAN, 0, 0};
  for (long long e = first_epoch; e <= plan.epochs; e++) {
    if (spec->shuffle) rt_shuffle(order, train.n, plan.seed, (uint64_t)e);
    else
      for (int64_t i = 0; i < train.n; i++) order[i] = i;
    double t0 = now_s(), sum = 0;
    int64_t right = 0, i0 = e == first_epoch ? first_i : 0;
    if (i0 > 0) {  /* the part of this epoch the checkpoint had done */
      sum = resumed.epoch_loss_sum;
      right = resumed.epoch_correct;
    }
    for (int64_t i = i0; i < steps; i++) {
      fill_batch(&s, &train, order, i * s.batch, s.batch);
      if (s.api->train_step(s.model)) {
        if (tty) fputc('\n', stderr);
        long long run_step = (long long)((e - 1) * steps + i + 1);
        fprintf(stderr, "nncc: error: epoch %lld, batch %lld of %lld (step %lld of the run, counting from 1): %s\n",
                e, (long long)(i + 1), (long long)steps, run_step, s.api->last_error(s.model));
        if (o->save && saved_step >= 0)
          fprintf(stderr, "note: the last good checkpoint is '%s' (epoch %lld, step %lld of the run); nothing "
                  "was saved after it%s\n", o->save, saved_epoch, (long long)saved_step,
                  o->check_numerics ? "" : "; --check-numerics names the first op that produced a nan or inf");
        else if (o->save)
          fprintf(stderr, "note: no checkpoint was written before the failure%s\n",
                  o->check_numerics ? "" : "; --check-numerics names the first op that produced a nan or inf");
        else
          fprintf(stderr, "note: nothing was saved (--save CKPT keeps a checkpoint per epoch)%s\n",
                  o->check_numerics ? "" : "; --check-numerics names the first op that produced a nan or inf");
        rc = EXIT_RUNTIME;
        goto out;
      }
      sum += *(const float *)s.api->data(s.model, s.loss);
      right += batch_correct(&s);
      if (tty && (i % 16 == 0 || i + 1 == steps))
        progress(&s, true, e, plan.epochs, i + 1, steps, sum / (double)(i + 1),
                 (double)right / (double)((i + 1) * s.batch), (double)((i + 1 - i0) * s.batch) / (now_s() - t0 + 1e-9),
                 false);
      int64_t run_step = (e - 1) * steps + i + 1;
      if (o->save && o->save_every > 0 && run_step % o->save_every == 0 && i + 1 < steps) {
        RunState rs = plan;
        rs.epoch_loss_sum = sum;
        rs.epoch_correct = right;
        if ((rc = save_checkpoint(&s, o->save, &rs))) goto out;
        saved_epoch = e - 1;
        saved_step = run_step;
      }
    }
    last.seconds = now_s() - t0;
    last.loss = sum / (double)steps;
    last.acc = (double)right / (double)(steps * s.batch);
    double rate = (double)((steps - i0) * s.batch) / (last.seconds + 1e-9);
    progress(&s, tty, e, plan.epochs, steps, steps, last.loss, last.acc, rate, true);
    if (eval.n) {
      if ((rc = evaluate_set(&s, &rem, model, &eval, &last_eval))) goto out;
      if (!o->quiet) {
        if (s.logits >= 0)
          fprintf(stderr, "  eval loss %.4f  acc %.2f%%  (%lld samples)\n", last_eval.loss, 100 * last_eval.acc,
                  (long long)last_eval.samples);
        else fprintf(stderr, "  eval loss %.6f  (%lld samples)\n", last_eval.loss, (long long)last_eval.samples);
      }
    }
    /* the epoch's log row, then its checkpoint: nothing done so far is
     * lost, and a kill between the two leaves a row that the resumed run
     * (from the previous checkpoint) writes again */
    if (have_log) {
      char row[256];
      snprintf(row, sizeof row, "%lld,%.6f,%.6f,%.6f,%.6f,%.1f\n", e, last.loss, s.logits >= 0 ? last.acc : NAN,
               last_eval.loss, s.logits >= 0 ? last_eval.acc : NAN, rate);
      if (!log_append(&log, row) || (rc = log_flush(&log, row))) {
        if (!rc) fprintf(stderr, "nncc: error: out of memory\n");
        rc = EXIT_RUNTIME;
        goto out;
      }
    }
    if (o->save) {
      RunState rs = plan;
      if ((rc = save_checkpoint(&s, o->save, &rs))) goto out;
      saved_epoch = e;
      saved_step = e * steps;
    }
  }
  if (first_epoch > plan.epochs) {  /* nothing trained: the checkpoint is the result */
    rc = EXIT_OK;
    goto out;
  }
  /* final metrics on stdout: what a script reads */
  printf("final: loss %.6f", last.loss);
  if (s.logits >= 0) printf(" accuracy %.4f", last.acc);
  if (eval.n) {
    printf(" eval_loss %.6f", last_eval.loss);
    if (s.logits >= 0) printf(" eval_accuracy %.4f", last_eval.acc);
    printf(" eval_samples %lld", (long long)last_eval.samples);
  }
  printf("\n");
  rc = EXIT_OK;
out:
  if (have_log) {
    int lrc = log_close(&log);
    if (!rc) rc = lrc;
  }
  free(order);
  rt_dataset_free(&train);
  rt_dataset_free(&eval);
  if (rem.s.api) close_session(&rem.s);
  close_session(&s);
  return rc;
}

/* ------------------------------------------------------------ nncc eval */

int run_eval(const RunOptions *o, Module *m) {
  const char *model = pick_model(o, m);
  const TrainSpec *spec = model ? spec_of(m, model) : NULL;
  const char *ckpt = o->load ? o->load : o->load_weights;
  if (!ckpt || (o->load && o->load_weights)) {
    fprintf(stderr, "nncc: error: eval needs one checkpoint: nncc eval FILE.nn --load CKPT (or --load-weights "
            "CKPT for the weights of another graph)\n");
    return 2;
  }
  if (!spec) {
    fprintf(stderr, "nncc: error: %s has no train block with data to evaluate on\n", o->file);
    return EXIT_COMPILE;
  }
  Session s;
  Remainder rem = {0};
  int rc = open_session(&s, o, m, model);
  rt_dataset data = {0};
  if (rc) goto out;
  const DataSpec *ds = spec->eval ? spec->eval : spec->data;
  uint64_t seed = o->seed >= 0 ? (uint64_t)o->seed : (uint64_t)spec->seed;
  s.model = create_model(&s, o, seed);
  if (!s.model) {
    fprintf(stderr, "nncc: error: out of memory\n");
    rc = EXIT_RUNTIME;
    goto out;
  }
  if ((rc = load_data(&s, ds, seed + (spec->eval ? 1 : 0), &data))) goto out;
  if (o->load ? s.api->load(s.model, o->load) != 0 : rt_model_load_weights(s.model, o->load_weights, NULL) != 0) {
    fprintf(stderr, "nncc: error: %s\n", s.api->last_error(s.model));
    if (o->load && strstr(s.api->last_error(s.model), "fingerprint"))
      fprintf(stderr, "note: to evaluate its weights in this graph anyway: --load-weights %s\n", o->load);
    rc = EXIT_RUNTIME;
    goto out;
  }
  Stats st;
  if ((rc = evaluate_set(&s, &rem, model, &data, &st))) goto out;
  printf("eval: loss %.6f", st.loss);
  if (s.logits >= 0) printf(" accuracy %.4f", st.acc);
  printf(" (%lld samples)\n", (long long)st.samples);
  rc = EXIT_OK;
out:
  rt_dataset_free(&data);
  if (rem.s.api) close_session(&rem.s);
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
  s.model = create_model(&s, o, 1);
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

  printf("nncc bench %s: model '%s', batch %lld, %d thread%s; one process, wall clock "
         "(a shared machine: expect 10-60%% noise between runs)\n",
         o->file, model, (long long)s.batch, (int)s.api->threads(s.model), s.api->threads(s.model) == 1 ? "" : "s");
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
