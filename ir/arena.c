/* arena.c - bump allocation for one compilation, and the fatal paths.
 * Blocks grow geometrically; a request larger than a block gets its own. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

struct ArenaBlock {
  ArenaBlock *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

_Noreturn void nncc_assert_fail(const char *cond, const char *file, int line) {
  fprintf(stderr, "nncc: internal error: %s:%d: assertion '%s' failed\n", file, line, cond);
  abort();
}

_Noreturn void nncc_fatal(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "nncc: fatal: ");
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
  exit(1);
}

void *arena_alloc(Arena *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  ArenaBlock *b = a->head;
  if (!b || b->size - b->used < size) {
    size_t want = b ? b->size * 2 : 64 * 1024;
    if (want > 64u << 20) want = 64u << 20;
    if (want < size) want = size;
    b = malloc(sizeof(ArenaBlock) + want);
    if (!b) nncc_fatal("out of memory (arena holds %zu bytes)", a->used);
    b->size = want;
    b->used = 0;
    b->next = a->head;
    a->head = b;
  }
  void *p = b->data + b->used;
  b->used += size;
  a->used += size;
  memset(p, 0, size);
  return p;
}

void *arena_realloc(Arena *a, void *old, size_t old_size, size_t new_size) {
  void *p = arena_alloc(a, new_size);
  if (old && old_size) memcpy(p, old, old_size < new_size ? old_size : new_size);
  return p;
}

char *arena_strndup(Arena *a, const char *s, size_t n) {
  char *p = arena_alloc(a, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  return p;
}

char *arena_strdup(Arena *a, const char *s) { return arena_strndup(a, s, strlen(s)); }

char *arena_printf(Arena *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *p = arena_alloc(a, (size_t)n + 1);
  vsnprintf(p, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return p;
}

void arena_free(Arena *a) {
  ArenaBlock *b = a->head;
  while (b) {
    ArenaBlock *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used = 0;
}
