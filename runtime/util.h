/* util.h - internal to runtime/: the message helpers the loaders and the
 * checkpoint code share. */
#ifndef NNCC_RUNTIME_UTIL_H
#define NNCC_RUNTIME_UTIL_H

#include <stddef.h>

/* Formats the message into err (when there is room) and returns 1, so a
 * loader can `return rt_fail(err, size, ...)`. */
int rt_fail(char *err, size_t err_size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Bytes from a file, fit to show in a message: at most `max` of them,
 * unprintable ones as '?', "..." when cut; out holds max + 4 bytes. */
const char *rt_show(const char *s, size_t len, size_t max, char *out);

#endif
