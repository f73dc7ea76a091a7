/* safetensors.h - checkpoints in the safetensors format (readable by
 * other tools): an 8-byte little-endian header length, a JSON header
 * {"NAME": {"dtype": "F32"|"I32", "shape": [...], "data_offsets": [b, e]},
 *  "__metadata__": {"format": "nncc", "model": "NAME"}}, then the data.
 * Writing goes to a temporary file renamed into place, so a failure never
 * leaves a half-written checkpoint. Reading validates everything before
 * it copies anything. Part of every generated library (libc only). */
#ifndef NNCC_RUNTIME_SAFETENSORS_H
#define NNCC_RUNTIME_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

typedef struct rt_st_tensor {
  const char *name;
  int32_t dtype;          /* NNCC_F32 or NNCC_I32 (nncc.h) */
  int32_t rank;
  const int64_t *shape;
  void *data;             /* save: read from here; load: written here */
} rt_st_tensor;

/* Writes the tensors and the model name. 0, or nonzero with a message. */
int rt_st_save(const char *path, const char *model, const rt_st_tensor *t, int n, char *err,
               size_t err_size);
/* Reads every tensor of t[] (by name, with the same dtype and shape) from
 * path; all are checked before any is written. Extra tensors in the file
 * are an error too (another model's checkpoint). 0, or nonzero with a
 * message naming the file and what is wrong. */
int rt_st_load(const char *path, const char *model, rt_st_tensor *t, int n, char *err,
               size_t err_size);

#endif
