/* fuzz.h - what the libFuzzer harnesses of tests/fuzz share (fuzzutil.c).
 *
 * Each harness fuzz_NAME.c defines LLVMFuzzerTestOneInput for one reader
 * of untrusted input (SPEC §5: no input crashes nncc, hangs it or makes
 * it allocate without bound) and states its oracle at the top: besides
 * the sanitizers, a harness aborts when the code under test breaks a
 * promise of its header (a message that names no file, a half-written
 * buffer, IR that reads back differently). tests/fuzz/README.md tells
 * how to build and run them. */
#ifndef NNCC_FUZZ_H
#define NNCC_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "runtime/data.h"
#include "runtime/safetensors.h"

/* A file that holds exactly data[0..size) and its path; the same memfd
 * (/proc/self/fd/N) every call, rewritten each time: the loaders open it
 * by name like any file, and no disk is written. */
const char *fuzz_memfile(const uint8_t *data, size_t size);

/* A copy of data with a NUL after it (as nncc_read_source gives);
 * free() it. */
char *fuzz_cstring(const uint8_t *data, size_t size);

/* /dev/null, opened once: diagnostics are formatted, then dropped. */
FILE *fuzz_devnull(void);

/* Prints "fuzz: oracle: WHAT" and aborts, so libFuzzer saves the input. */
_Noreturn void fuzz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Little-endian integers from a config prefix: what the harness reads
 * before the file proper (fuzz_take advances *data, shrinks *size and
 * gives 0 once the input is used up). */
uint64_t fuzz_take(const uint8_t **data, size_t *size, int bytes);

/* The tensors of the model "fuzz" that fuzz_safetensors loads and
 * fuzz_seeds saves: w f32[2,3], b f32[3], train:step i32[] and z f32[0]
 * (an empty tensor), over the given buffers. */
#define FUZZ_ST_TENSORS 4
void fuzz_st_tensors(rt_st_tensor t[FUZZ_ST_TENSORS], float w[6], float b[3],
                     int32_t *step);

/* The loaders' oracle: after a refusal (rc != 0), err names path and
 * *ds is empty; after success, ds has n_cols columns of the requested
 * kind and width and n > 0 samples, every value readable. */
void fuzz_check_dataset(int rc, const char *err, const char *path, const rt_dataset *ds,
                        const rt_column_spec *cols, int n_cols);

/* The config prefix of fuzz_idx and fuzz_npy: FLAGS (u8) WIDTH (u16),
 * then the file. FLAGS bit 0: the column is i32; bit 1: a second column
 * from the same file (as x and y of one .npy), i32 when bit 2. Fills
 * cols but for the paths; returns the number of columns. */
enum { FUZZ_COL_INT = 1, FUZZ_TWO_COLS = 2, FUZZ_COL2_INT = 4 };
int fuzz_binary_columns(const uint8_t **data, size_t *size, rt_column_spec cols[2]);

#endif
