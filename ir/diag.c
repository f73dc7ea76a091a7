/* diag.c - user-facing diagnostics: "file:line:col: error: msg", the
 * source line and a caret. Errors are counted, never fatal: the caller
 * keeps going until the phase ends. After max_errors errors one "too many
 * errors" line is printed and the rest are dropped. */
#include "ir/ir.h"

#include <stdlib.h>
#include <string.h>

void diag_init(Diag *d, const char *path, const char *src, size_t len, FILE *out) {
  memset(d, 0, sizeof *d);
  d->path = path;
  d->src = src;
  d->len = len;
  d->out = out ? out : stderr;
  d->max_errors = 50;
}

/* Prints the source line of loc and a caret under its column. Tabs in the
 * line are kept in the caret line so the caret lines up; long lines are
 * shown as a window around the column. */
static void show_line(Diag *d, SrcLoc loc) {
  if (!d->src || loc.line <= 0) return;
  /* messages mostly come in line order: scan on from the last one, so
   * 50,000 warnings over a long file stay linear */
  size_t i = 0;
  int line = 1;
  if (d->cache_line > 0 && d->cache_line <= loc.line) {
    i = d->cache_offset;
    line = d->cache_line;
  }
  while (i < d->len && line < loc.line) {
    if (d->src[i] == '\n') line++;
    i++;
  }
  d->cache_line = line;
  d->cache_offset = i;
  if (line != loc.line) return;
  size_t end = i;
  while (end < d->len && d->src[end] != '\n') end++;
  size_t col = loc.col > 0 ? (size_t)loc.col - 1 : 0;
  size_t from = i, to = end;
  if (col > 100) from = i + col - 60;          /* window over a long line */
  if (to - from > 160) to = from + 160;
  fputs("  ", d->out);
  for (size_t k = from; k < to; k++) {
    unsigned char c = (unsigned char)d->src[k];
    fputc(c == '\t' ? '\t' : (c < 32 || c >= 127) ? '?' : c, d->out);
  }
  fputs("\n  ", d->out);
  for (size_t k = from; k < i + col && k < to + 1; k++)
    fputc(k < end && d->src[k] == '\t' ? '\t' : ' ', d->out);
  fputs(d->color ? "\033[1;32m^\033[0m\n" : "^\n", d->out);
}

static void emit(Diag *d, SrcLoc loc, const char *kind, const char *color,
                 const char *fmt, va_list ap) {
  if (loc.line > 0)
    fprintf(d->out, "%s:%d:%d: ", d->path ? d->path : "<input>", loc.line, loc.col);
  else
    fprintf(d->out, "%s: ", d->path ? d->path : "nncc");
  if (d->color) fprintf(d->out, "%s%s:\033[0m ", color, kind);
  else fprintf(d->out, "%s: ", kind);
  vfprintf(d->out, fmt, ap);
  fputc('\n', d->out);
  show_line(d, loc);
}

void diag_verror(Diag *d, SrcLoc loc, const char *fmt, va_list ap) {
  d->n_errors++;
  if (d->suppressed) return;
  if (d->max_errors > 0 && d->n_errors > d->max_errors) {
    fprintf(d->out, "%s: error: too many errors, stopping\n", d->path ? d->path : "nncc");
    d->suppressed = true;
    return;
  }
  emit(d, loc, "error", "\033[1;31m", fmt, ap);
}

void diag_error(Diag *d, SrcLoc loc, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  diag_verror(d, loc, fmt, ap);
  va_end(ap);
}

void diag_warning(Diag *d, SrcLoc loc, const char *fmt, ...) {
  d->n_warnings++;
  if (d->suppressed) return;
  va_list ap;
  va_start(ap, fmt);
  emit(d, loc, "warning", "\033[1;35m", fmt, ap);
  va_end(ap);
}

void diag_note(Diag *d, SrcLoc loc, const char *fmt, ...) {
  if (d->suppressed) return;
  va_list ap;
  va_start(ap, fmt);
  emit(d, loc, "note", "\033[1;36m", fmt, ap);
  va_end(ap);
}

void diag_remark(Diag *d, unsigned kind, SrcLoc loc, const char *fmt, ...) {
  if (!(d->remarks & kind)) return;
  if (loc.line > 0) fprintf(d->out, "%s:%d:%d: ", d->path ? d->path : "<input>", loc.line, loc.col);
  else fprintf(d->out, "%s: ", d->path ? d->path : "nncc");
  fputs(d->color ? "\033[1;32mremark:\033[0m " : "remark: ", d->out);
  va_list ap;
  va_start(ap, fmt);
  vfprintf(d->out, fmt, ap);
  va_end(ap);
  fputc('\n', d->out);
}

/* Edit distance where swapping two neighbours counts as one edit
 * (optimal string alignment): 'mpl' is one typo away from 'mlp'. */
static int edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  if (la > 64 || lb > 64) return 1000;
  int d[65][65];
  for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
  for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
  for (size_t i = 1; i <= la; i++)
    for (size_t j = 1; j <= lb; j++) {
      int best = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
      if (d[i - 1][j] + 1 < best) best = d[i - 1][j] + 1;
      if (d[i][j - 1] + 1 < best) best = d[i][j - 1] + 1;
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < best)
        best = d[i - 2][j - 2] + 1;
      d[i][j] = best;
    }
  return d[la][lb];
}

const char *diag_closest(const char *name, const char *const *cands, int n) {
  const char *best = NULL;
  int best_d = 1000;
  size_t len = strlen(name);
  int limit = len <= 3 ? 1 : len <= 6 ? 2 : 3;
  for (int i = 0; i < n; i++) {
    if (!cands[i] || !strcmp(cands[i], name)) continue;
    int dist = edit_distance(name, cands[i]);
    if (dist < best_d) {
      best_d = dist;
      best = cands[i];
    }
  }
  /* replacing every letter is no suggestion: 'q' is not close to 'a' */
  return best_d <= limit && (size_t)best_d < len ? best : NULL;
}
