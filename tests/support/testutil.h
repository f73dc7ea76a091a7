/* testutil.h - helpers shared by the Check tests: compile a .nn string,
 * run the nncc driver and capture what it prints. */
#ifndef NNCC_TESTUTIL_H
#define NNCC_TESTUTIL_H

#include "frontend/frontend.h"

/* Whole file, NUL-terminated, malloc'ed; NULL if unreadable. */
char *tu_read_file(const char *path, size_t *len);

typedef struct TuRun {
  int status;   /* exit code; 128+signal when killed by a signal */
  char *out;    /* malloc'ed stdout */
  char *err;    /* malloc'ed stderr */
} TuRun;

/* Runs `NNCC_BIN <args>` through /bin/sh with a time limit (seconds);
 * `stdin_text` may be NULL. Status 124 means it timed out. */
TuRun tu_run(const char *args, int timeout_s);
void tu_run_free(TuRun *r);

/* Compiles `src` (as file "test.nn") through the frontend. Diagnostics
 * are captured into *diag_text (malloc'ed; may be NULL). */
Module *tu_compile(Arena *a, const char *src, char **diag_text, int *n_errors);

/* Writes `text` to a fresh temporary file ending in `suffix`; returns its
 * malloc'ed path. */
char *tu_temp_file(const char *text, size_t len, const char *suffix);

#endif
