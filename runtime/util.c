/* util.c - see util.h. */
#include "runtime/util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int rt_fail(char *err, size_t err_size, const char *fmt, ...) {
  if (err && err_size) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
  }
  return 1;
}

const char *rt_show(const char *s, size_t len, size_t max, char *out) {
  size_t n = len < max ? len : max;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    out[i] = c >= 0x20 && c < 0x7f ? (char)c : '?';
  }
  if (len > n) {
    memcpy(out + n, "...", 3);
    n += 3;
  }
  out[n] = 0;
  return out;
}
