/* fuzz_ir.c - libFuzzer harness of the graph IR reader (ir/read.c): the
 * input is IR text as `nncc --emit=ir` or `--emit=fused` prints it.
 *
 * Oracle, beyond ASan/UBSan: what ir_read accepts verifies (ir_verify),
 * but for a `var` without a role, which read.c accepts on purpose; and it
 * prints to text that reads back without error and prints the same
 * again (print -> read -> print is the identity, as the golden tests
 * ask of nncc's own output). */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "ir/ir.h"

/* ir_print_module's text (malloc'ed). */
static char *print(const Module *m, size_t *len) {
  char *s = NULL;
  FILE *f = open_memstream(&s, len);
  if (!f) fuzz_fail("open_memstream failed");
  ir_print_module(f, m);
  fclose(f);
  return s;
}

/* ir_verify's report, or NULL when the graph verifies. */
static char *verify(const Graph *g) {
  char *s = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&s, &len);
  if (!f) fuzz_fail("open_memstream failed");
  int bad = ir_verify(g, f);
  fclose(f);
  if (!bad) {
    free(s);
    return NULL;
  }
  return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *src = fuzz_cstring(data, size);
  Arena a = {0};
  Diag d;
  diag_init(&d, "fuzz.ir", src, size, fuzz_devnull());
  Module *m = ir_read(&a, &d);
  if (m && d.n_errors) fuzz_fail("ir_read returned a module after %d errors", d.n_errors);
  if (m) {
    bool roleless = false;
    for (int i = 0; i < m->n_graphs; i++) {
      char *why = verify(m->graphs[i]);
      if (why && !strstr(why, "exactly one of the input, param and state roles"))
        fuzz_fail("ir_read accepted a graph that does not verify:\n%s", why);
      roleless |= why != NULL;
      free(why);
    }
    size_t len1, len2;
    char *text1 = print(m, &len1);
    Arena a2 = {0};
    char *errs = NULL;
    size_t errs_len = 0;
    FILE *ef = open_memstream(&errs, &errs_len);
    Diag d2;
    diag_init(&d2, "fuzz.ir", text1, len1, ef);
    Module *m2 = ir_read(&a2, &d2);
    fclose(ef);
    if (!m2) fuzz_fail("ir_read rejects what ir_print_module printed:\n%s\n%s", errs, text1);
    char *text2 = print(m2, &len2);
    if (len1 != len2 || memcmp(text1, text2, len1))
      fuzz_fail("print -> read -> print differs:\n%s\n---\n%s", text1, text2);
    if (!roleless)
      for (int i = 0; i < m2->n_graphs; i++) {
        char *why = verify(m2->graphs[i]);
        if (why) fuzz_fail("the read-back graph does not verify:\n%s", why);
      }
    free(text1);
    free(text2);
    free(errs);
    arena_free(&a2);
  }
  arena_free(&a);
  free(src);
  return 0;
}
