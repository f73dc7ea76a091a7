/* arena.c - bump allocation for one compilation, scratch blocks, and the
 * error paths: recovery points that out of memory and internal errors
 * unwind to (ir.h, "errors"), and the allocation fault injection tests
 * use. Blocks grow geometrically; a request larger than a block gets its
 * own. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

struct ArenaBlock {
  ArenaBlock *next;
  size_t size, used;
  _Alignas(16) unsigned char data[];
};

/* A scratch block's header: its link, then 16-byte aligned data. */
typedef struct ScratchHead {
  _Alignas(16) NnccOwned own;
} ScratchHead;

enum { OWN_SCRATCH, OWN_ARENA, OWN_CLEANUP };

/* Per thread: the innermost recovery point and the fault injection
 * countdown. What is made outside every recovery point is not listed:
 * no error can free it (nncc_raise aborts there), and so an Arena that
 * no recovery point owns may be copied freely (tests return them in
 * structs). */
static _Thread_local NnccCatch *innermost;
static _Thread_local long fail_countdown = -1;

_Noreturn void nncc_assert_fail(const char *cond, const char *file, int line) {
  fprintf(stderr, "nncc: internal error: %s:%d: assertion '%s' failed\n", file, line, cond);
  abort();
}

/* ------------------------------------------------------ ownership lists */

static void own_link(NnccOwned *o, int kind) {
  o->kind = kind;
  o->next = NULL;
  o->pprev = NULL;
  if (!innermost) return;
  NnccOwned **head = &innermost->owned;
  o->next = *head;
  if (*head) (*head)->pprev = &o->next;
  o->pprev = head;
  *head = o;
}

static void own_unlink(NnccOwned *o) {
  if (!o->pprev) return;
  *o->pprev = o->next;
  if (o->next) o->next->pprev = o->pprev;
  o->next = NULL;
  o->pprev = NULL;
}

static void free_blocks(Arena *a) {
  ArenaBlock *b = a->head;
  while (b) {
    ArenaBlock *next = b->next;
    free(b);
    b = next;
  }
  a->head = NULL;
  a->used = 0;
}

void nncc_catch_push(NnccCatch *c) {
  c->prev = innermost;
  c->owned = NULL;
  c->msg[0] = 0;
  innermost = c;
}

void nncc_catch_pop(NnccCatch *c) {
  if (innermost != c) return;  /* an error popped it */
  innermost = c->prev;
  if (!c->owned) return;
  if (!innermost) {  /* the outermost: what is still live is its owners' now */
    while (c->owned) own_unlink(c->owned);
    return;
  }
  /* what is still live belongs to the enclosing recovery point now; it
   * is newer than what that one holds, so it goes first */
  NnccOwned **head = &innermost->owned, *tail = c->owned;
  while (tail->next) tail = tail->next;
  tail->next = *head;
  if (*head) (*head)->pprev = &tail->next;
  c->owned->pprev = head;
  *head = c->owned;
  c->owned = NULL;
}

_Noreturn void nncc_raise(const char *fmt, ...) {
  NnccCatch *c = innermost;
  char local[256];
  char *msg = c ? c->msg : local;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof local, fmt, ap);
  va_end(ap);
  if (!c) {
    fprintf(stderr, "nncc: fatal: %s (no recovery point)\n", msg);
    abort();
  }
  /* newest first: an arena whose struct sits in a scratch block was
   * linked after the block, so it is emptied before the block goes */
  while (c->owned) {
    NnccOwned *o = c->owned;
    own_unlink(o);
    if (o->kind == OWN_ARENA) free_blocks((Arena *)((char *)o - offsetof(Arena, own)));
    else if (o->kind == OWN_CLEANUP) ((NnccCleanup *)o)->fn(((NnccCleanup *)o)->arg);
    else free(o);
  }
  innermost = c->prev;
  longjmp(c->jmp, 1);
}

void nncc_cleanup_push(NnccCleanup *c, void (*fn)(void *arg), void *arg) {
  c->fn = fn;
  c->arg = arg;
  c->own.pprev = NULL;
  own_link(&c->own, OWN_CLEANUP);
}

void nncc_cleanup_pop(NnccCleanup *c) { own_unlink(&c->own); }

long nncc_alloc_fail_after(long n) {
  long left = fail_countdown;
  fail_countdown = n < 0 ? -1 : n;
  return left;
}

/* The fault injection test's hook: true for the armed allocation. */
static bool injected_failure(void) {
  if (fail_countdown < 0) return false;
  return fail_countdown-- == 0;
}

/* ------------------------------------------------------- scratch blocks */

void *nncc_malloc(size_t size) {
  if (size > SIZE_MAX - sizeof(ScratchHead)) NNCC_OOM();
  ScratchHead *h = injected_failure() ? NULL : malloc(sizeof *h + (size ? size : 1));
  if (!h) NNCC_OOM();
  own_link(&h->own, OWN_SCRATCH);
  return h + 1;
}

void *nncc_calloc(size_t n, size_t size) {
  if (size && n > (SIZE_MAX - sizeof(ScratchHead)) / size) NNCC_OOM();
  void *p = nncc_malloc(n * size);
  memset(p, 0, n * size);
  return p;
}

void *nncc_realloc(void *p, size_t size) {
  if (!p) return nncc_malloc(size);
  if (size > SIZE_MAX - sizeof(ScratchHead)) NNCC_OOM();
  ScratchHead *old = (ScratchHead *)p - 1;
  /* on failure the old block stays listed: the error frees it */
  ScratchHead *h = injected_failure() ? NULL : realloc(old, sizeof *h + (size ? size : 1));
  if (!h) NNCC_OOM();
  if (h != old && h->own.pprev) {  /* moved: the neighbours' links point at the old place */
    *h->own.pprev = &h->own;
    if (h->own.next) h->own.next->pprev = &h->own.next;
  }
  return h + 1;
}

void *nncc_calloc_or_null(size_t n, size_t size) { return injected_failure() ? NULL : calloc(n, size); }

void nncc_free(void *p) {
  if (!p) return;
  ScratchHead *h = (ScratchHead *)p - 1;
  own_unlink(&h->own);
  free(h);
}

/* ---------------------------------------------------------------- arena */

void *arena_alloc(Arena *a, size_t size) {
  if (size > SIZE_MAX - 15) NNCC_OOM();
  size = (size + 15) & ~(size_t)15;
  ArenaBlock *b = a->head;
  if (!b || b->size - b->used < size) {
    size_t want = b ? b->size * 2 : 64 * 1024;
    if (want > 64u << 20) want = 64u << 20;
    if (want < size) want = size;
    if (want > SIZE_MAX - sizeof(ArenaBlock)) NNCC_OOM();
    b = injected_failure() ? NULL : malloc(sizeof(ArenaBlock) + want);
    if (!b) NNCC_OOM();
    if (!a->head && !a->own.pprev) own_link(&a->own, OWN_ARENA);
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
  own_unlink(&a->own);
  free_blocks(a);
}

void arena_keep(Arena *a) { own_unlink(&a->own); }
