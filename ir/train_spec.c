/* train_spec.c - the words of the train block's kinds (train_spec.h):
 * one table per kind, indexed by the enum. */
#include "ir/train_spec.h"

#include <string.h>

static const char *const optimizers[OPTIM_COUNT] = {
    [OPTIM_SGD] = "sgd", [OPTIM_ADAGRAD] = "adagrad", [OPTIM_RMSPROP] = "rmsprop",
    [OPTIM_ADAM] = "adam", [OPTIM_ADAMW] = "adamw"};
static const char *const schedules[SCHED_COUNT] = {
    [SCHED_CONSTANT] = "constant", [SCHED_STEP] = "step", [SCHED_COSINE] = "cosine"};
static const char *const data_kinds[DATA_COUNT] = {
    [DATA_IDX] = "idx", [DATA_CSV] = "csv", [DATA_NPY] = "npy", [DATA_TEXT] = "text",
    [DATA_SINE] = "sine", [DATA_SPIRAL] = "spiral", [DATA_XOR] = "xor"};

static int by_name(const char *const *names, int n, const char *name) {
  for (int i = 0; name && i < n; i++)
    if (!strcmp(names[i], name)) return i;
  return -1;
}

const char *optimizer_name(OptimizerKind k) {
  NNCC_ASSERT((unsigned)k < OPTIM_COUNT);
  return optimizers[k];
}

const char *schedule_name(ScheduleKind k) {
  NNCC_ASSERT((unsigned)k < SCHED_COUNT);
  return schedules[k];
}

const char *data_kind_name(DataKind k) {
  NNCC_ASSERT((unsigned)k < DATA_COUNT);
  return data_kinds[k];
}

int optimizer_by_name(const char *name) { return by_name(optimizers, OPTIM_COUNT, name); }
int schedule_by_name(const char *name) { return by_name(schedules, SCHED_COUNT, name); }
int data_kind_by_name(const char *name) { return by_name(data_kinds, DATA_COUNT, name); }
