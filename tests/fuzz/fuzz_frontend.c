/* fuzz_frontend.c - libFuzzer harness of the .nn front end: the input is
 * a source file, run through what `nncc check` does (lex, parse,
 * elaborate, the pipeline up to `reach`, ir_verify), with the expansion
 * limit lowered to FUZZ_MAX_NODES so that one input stays fast (the
 * limit's code is the same at any value).
 *
 * Oracle, beyond ASan/UBSan and nncc's own asserts: a program the front
 * end accepts passes the `shapes` re-check and ir_verify; when it is
 * small (FUZZ_PIPELINE_NODES), the whole pass pipeline accepts it too,
 * with verify-after-each-pass (a broken graph fails the pipeline), and
 * its IR prints, reads back with ir_read, and verifies. An internal
 * error or out of memory (nncc_raise) aborts here, with no recovery
 * point, which libFuzzer reports too. */
#include <stdlib.h>
#include <string.h>

#include "frontend/frontend.h"
#include "fuzz.h"
#include "passes/passes.h"

#define FUZZ_MAX_NODES 20000     /* elaborate's expansion limit here (10^6 in nncc) */
#define FUZZ_PIPELINE_NODES 2000 /* the whole pipeline only below this */

static void check_ir_round_trip(const Module *m) {
  char *ir = NULL;
  size_t ir_len = 0;
  FILE *f = open_memstream(&ir, &ir_len);
  if (!f) fuzz_fail("open_memstream failed");
  ir_print_module(f, m);
  fclose(f);
  Arena a = {0};
  char *errs = NULL;
  size_t errs_len = 0;
  FILE *ef = open_memstream(&errs, &errs_len);
  Diag d;
  diag_init(&d, "fuzz.ir", ir, ir_len, ef);
  Module *back = ir_read(&a, &d);
  fflush(ef);
  if (!back || d.n_errors) fuzz_fail("ir_read rejects what ir_print_module printed:\n%s", errs);
  for (int i = 0; i < back->n_graphs; i++)
    if (ir_verify(back->graphs[i], stderr))
      fuzz_fail("graph '%s' does not verify after print -> read", back->graphs[i]->name);
  fclose(ef);
  free(errs);
  arena_free(&a);
  free(ir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *src = fuzz_cstring(data, size);
  FILE *null = fuzz_devnull();
  Arena a = {0};
  Diag d;
  diag_init(&d, "fuzz.nn", src, size, null);
  ElabOptions eo = {.base_dir = ".", .max_nodes = FUZZ_MAX_NODES};
  /* as tools/nncc.c: lex, parse, --emit=ast's printer, elaborate */
  int n_tokens;
  Token *toks = lex(&a, &d, &n_tokens);
  Program *prog = parse_program(&a, &d, toks, n_tokens);
  Module *m = NULL;
  if (!d.n_errors) {
    ast_print_program(null, prog);
    m = elaborate(&a, &d, prog, &eo);
  }
  if (!d.n_errors) {
    if (!m) fuzz_fail("elaborate returned NULL without an error");
    long nodes = 0;
    for (int i = 0; i < m->n_graphs; i++) nodes += m->graphs[i]->n_nodes;
    /* nncc check stops after `reach`; a small model gets the whole
     * pipeline (lower, autodiff, optimizer, simplify, fuse), which must
     * accept what the front end did (as tests/cli/test_fuzz.c asks) */
    bool whole = nodes <= FUZZ_PIPELINE_NODES;
    PassOptions po = {.stop_after = whole ? NULL : "reach", .verify_each = true, .out = null};
    if (!pass_run_pipeline(m, &d, &po))
      fuzz_fail("the pass pipeline rejects what the front end accepted");
    for (int i = 0; i < m->n_graphs; i++)
      if (ir_verify(m->graphs[i], stderr))
        fuzz_fail("graph '%s' does not verify after the pipeline", m->graphs[i]->name);
    if (whole) check_ir_round_trip(m);
  }
  arena_free(&a);
  free(src);
  return 0;
}
