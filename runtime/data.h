/* data.h - data sources for `nncc train` (SPEC §2.7): the IDX format of
 * MNIST (.gz through zlib, or raw), CSV, NPY, byte-level text, and the
 * synthetic sets. Knows nothing of the compiler: the trainer describes
 * what it wants as columns. Part of the nncc binary, not of generated
 * libraries (zlib). Every bad file gives an error naming the file and the
 * reason, never a crash; nothing here writes files. */
#ifndef NNCC_RUNTIME_DATA_H
#define NNCC_RUNTIME_DATA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One column of a data set: n samples of `width` values each, stored as
 * float (f32 inputs) or int32 (i32 inputs: class labels, byte tokens). */
typedef struct rt_column {
  bool is_int;
  int64_t width;   /* values per sample */
  float *f;        /* n * width, when !is_int */
  int32_t *i;      /* n * width, when is_int */
} rt_column;

typedef struct rt_dataset {
  int64_t n;             /* samples */
  int n_columns;
  rt_column *columns;    /* in the order they were asked for */
} rt_dataset;

void rt_dataset_free(rt_dataset *ds);

/* What the trainer wants for each column: where it comes from and how
 * many values a sample has (the model input's per-sample element count;
 * a source with the same count in another shape is reshaped). */
typedef struct rt_column_spec {
  const char *path;      /* idx/npy: the file; csv: unused */
  int64_t col_lo, col_hi;/* csv: columns [lo, hi) */
  bool is_int;
  int64_t width;
  /* > 0, int columns only: every value must lie in [0, label_bound) (the
   * class count of the model's labels), checked at load time so that the
   * error names the file and the line / record / row; 0: no check */
  int64_t label_bound;
  /* csv, set on any column: rows may hold more fields than the binding
   * uses (the highest column used + 1); otherwise a longer row is an error */
  bool allow_extra_columns;
} rt_column_spec;

/* Each loader returns 0 and fills *out, or returns nonzero with
 * "FILE: reason" in err (err_size bytes). Only regular files are read: a
 * FIFO, directory or device is refused ("not a regular file (a FIFO)")
 * without blocking. f32 columns take finite values within f32's range
 * (NaN, inf, 1e39 are errors naming the position). */

/* IDX (MNIST): ubyte/int/float files, gzip-compressed or raw; `scale`
 * multiplies f32 columns (1/255 for pixels). All files must agree on n;
 * rank 1 to 8; the file must end after the last record. */
int rt_load_idx(const rt_column_spec *cols, int n_cols, double scale, rt_dataset *out,
                char *err, size_t err_size);
/* CSV: numbers separated by commas, columns picked by index ranges. The
 * first non-blank line is a header when none of its fields in the columns
 * used is a number; otherwise it is data. Every line has exactly as many
 * fields as the highest column used + 1 (at least, with
 * allow_extra_columns). */
int rt_load_csv(const char *path, const rt_column_spec *cols, int n_cols, rt_dataset *out,
                char *err, size_t err_size);
/* NPY (NumPy .npy v1/v2, little-endian f4/f8/i4/i8/u1, C order). */
int rt_load_npy(const rt_column_spec *cols, int n_cols, rt_dataset *out, char *err,
                size_t err_size);
/* Text: bytes as tokens 0..255; windows of `t` bytes, x = bytes[i..i+t),
 * y = bytes[i+1..i+t+1), one window every t bytes. Two int columns. */
int rt_load_text(const char *path, int64_t t, rt_dataset *out, char *err, size_t err_size);

/* Synthetic sets (runtime.h rt_synth_*) as data sets: sine (x, y f32[1]),
 * spiral (x f32[2], y i32), xor (x f32[2], y f32[1]). */
int rt_load_synthetic(const char *kind, int64_t n, int64_t classes, double lo, double hi,
                      uint64_t seed, rt_dataset *out, char *err, size_t err_size);

/* A seeded permutation of 0..n-1 (Fisher-Yates on the counter RNG). */
void rt_shuffle(int64_t *order, int64_t n, uint64_t seed, uint64_t epoch);

#endif
