/* safetensors.h - checkpoints in the safetensors format (readable by
 * other tools): an 8-byte little-endian header length, a JSON header
 * {"NAME": {"dtype": "F32"|"I32", "shape": [...], "data_offsets": [b, e]},
 *  "__metadata__": {"format": "nncc", "model": "NAME"}}, then the data.
 * Writing goes to a temporary file renamed into place, so a failure never
 * leaves a half-written checkpoint. Reading validates everything before
 * it copies anything. Part of every generated library (libc only). */
#ifndef NNCC_RUNTIME_SAFETENSORS_H
#define NNCC_RUNTIME_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct rt_st_tensor {
  const char *name;
  int32_t dtype;          /* NNCC_F32 or NNCC_I32 (nncc.h) */
  int32_t rank;
  const int64_t *shape;
  void *data;             /* save: read from here; load: written here */
} rt_st_tensor;

/* A string entry of __metadata__ besides "format" and "model". */
typedef struct rt_st_meta {
  const char *key, *value;
} rt_st_meta;

/* Writes the tensors and the model name. 0, or nonzero with a message. */
int rt_st_save(const char *path, const char *model, const rt_st_tensor *t, int n, char *err,
               size_t err_size);
/* The same with more __metadata__ entries (keys "format", "model" skipped). */
int rt_st_save_meta(const char *path, const char *model, const rt_st_meta *meta, int n_meta,
                    const rt_st_tensor *t, int n, char *err, size_t err_size);
/* Reads every tensor of t[] (by name, with the same dtype and shape) from
 * path; all are checked before any is written. Extra tensors in the file
 * are an error too (another model's checkpoint). 0, or nonzero with a
 * message naming the file and what is wrong. */
int rt_st_load(const char *path, const char *model, rt_st_tensor *t, int n, char *err,
               size_t err_size);

/* __metadata__ as read back: strings owned by the list. */
typedef struct rt_st_meta_list {
  int n;
  rt_st_meta *items;
  char *store;
} rt_st_meta_list;
/* rt_st_load that also returns __metadata__ (free with rt_st_meta_free;
 * empty on failure). */
int rt_st_load_meta(const char *path, const char *model, rt_st_tensor *t, int n, rt_st_meta_list *meta,
                    char *err, size_t err_size);
/* Weights only: t[i] by name, dtype and shape, whatever the model name
 * and the other tensors of the file; t[i] may be absent unless
 * required[i]; found[i] says which were read. */
int rt_st_load_some(const char *path, rt_st_tensor *t, int n, const bool *required, bool *found, char *err,
                    size_t err_size);
/* Only the __metadata__ of a checkpoint. */
int rt_st_read_meta(const char *path, rt_st_meta_list *out, char *err, size_t err_size);
void rt_st_meta_free(rt_st_meta_list *l);
/* The value of key, or NULL. */
const char *rt_st_meta_get(const rt_st_meta_list *l, const char *key);

#endif
