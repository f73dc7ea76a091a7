/* outfile.h - how nncc writes a file the user named (docs/design.md,
 * "Output files"): checkpoints, logs, -o, --header, --emit -o.
 *
 *   - A target that exists and is not a regular file (a device such as
 *     /dev/null or /dev/full, a FIFO, a terminal) is written in place:
 *     it is never replaced, and its write errors (ENOSPC included) are
 *     reported. A FIFO without a reader is an error, not a hang.
 *   - A symlink stays a symlink: the file it resolves to is written
 *     (replaced atomically when regular), the link is left alone.
 *   - A regular file (or a new one) is written beside its final name as
 *     an unnamed O_TMPFILE when the file system has them (a SIGKILL then
 *     leaves nothing behind), else as NAME.tmpXXXXXX; it is fsync'ed,
 *     renamed over the final name and the directory is fsync'ed. Every
 *     failure removes the temporary; the old file is intact until the
 *     rename. An existing file keeps its permission bits.
 *
 * libc only: part of every generated library (the ABI's save()). */
#ifndef NNCC_RUNTIME_OUTFILE_H
#define NNCC_RUNTIME_OUTFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

typedef struct rt_outfile {
  FILE *f;           /* write here */
  char *path;        /* the file that is written: the target, symlinks resolved */
  char *tmp;         /* the named temporary, or NULL (O_TMPFILE, or in place) */
  bool in_place;     /* not a regular file: written directly */
  bool anonymous;    /* O_TMPFILE: linked into place at commit */
  int mode;          /* permission bits the result gets */
} rt_outfile;

/* Opens path for writing by the rules above; mode is the permission of a
 * new file before the umask (0666 for data, 0777 for a library). 0, or 1
 * with "PATH: reason" in err. */
int rt_out_open(rt_outfile *o, const char *path, int mode, char *err, size_t err_size);
/* Flushes, syncs and puts the file in place; closes it either way. 0, or
 * 1 with the reason in err (the temporary is removed, the old file kept). */
int rt_out_commit(rt_outfile *o, char *err, size_t err_size);
/* Discards what was written (the temporary is removed); closes. */
void rt_out_abort(rt_outfile *o);
/* Whether path can be written, checked by opening it as rt_out_open does
 * and discarding: run before work whose result would be lost. */
int rt_out_check(const char *path, char *err, size_t err_size);
/* Writes a whole buffer to path by the rules above. */
int rt_out_write_file(const char *path, const void *data, size_t len, int mode, char *err, size_t err_size);

#endif
