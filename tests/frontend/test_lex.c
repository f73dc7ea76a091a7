/* test_lex.c - Check tests of the lexer (frontend/lex.c): every token
 * kind, number forms and their errors, strings, newline handling,
 * locations, and linear-time behaviour on very long input. */
#include "frontend/frontend.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------- helpers */

typedef struct Lexed {
  Arena arena;
  Token *toks;
  int n;
  int n_errors;
  char *diag;  /* everything the Diag printed */
} Lexed;

static Lexed lex_n(const char *src, size_t len) {
  Lexed r = {0};
  size_t size = 0;
  FILE *mem = open_memstream(&r.diag, &size);
  Diag d;
  diag_init(&d, "t.nn", src, len, mem);
  r.toks = lex(&r.arena, &d, &r.n);
  fclose(mem);
  r.n_errors = d.n_errors;
  return r;
}

static Lexed lex_s(const char *src) { return lex_n(src, strlen(src)); }

static void lexed_free(Lexed *r) {
  arena_free(&r->arena);
  free(r->diag);
}

/* The "t.nn:L:C: error: ..." lines of the diagnostics, joined by '\n'
 * (the source line and caret that follow each are left out). */
static char *error_lines(const char *diag) {
  size_t n = strlen(diag);
  char *out = calloc(1, n + 1);
  const char *line = diag;
  while (*line) {
    const char *end = strchr(line, '\n');
    size_t len = end ? (size_t)(end - line) : strlen(line);
    if (!strncmp(line, "t.nn", 4)) {
      if (*out) strcat(out, "\n");
      strncat(out, line, len);
    }
    line += len + (end ? 1 : 0);
  }
  return out;
}

static const char *const enum_names[] = {
#define X(e, s) #e,
    TOKEN_KINDS(X)
#undef X
};

/* Tokens as "KIND[:value] ..." : INT:12 FLOAT:0.5 IDENT:x STRING:s. */
static char *render(const Lexed *r) {
  size_t cap = 64;
  for (int i = 0; i < r->n; i++) cap += 32 + (size_t)r->toks[i].len;
  char *out = malloc(cap);
  size_t k = 0;
  out[0] = 0;
  for (int i = 0; i < r->n; i++) {
    const Token *t = &r->toks[i];
    k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? " " : "", enum_names[t->kind]);
    if (t->kind == TK_INT) k += (size_t)snprintf(out + k, cap - k, ":%lld", (long long)t->ival);
    if (t->kind == TK_FLOAT) k += (size_t)snprintf(out + k, cap - k, ":%g", t->fval);
    if (t->kind == TK_IDENT || t->kind == TK_STRING)
      k += (size_t)snprintf(out + k, cap - k, ":%s", t->str);
  }
  return out;
}

/* Lexes src and checks the rendered tokens and the error lines. */
static void check_lex(const char *src, const char *want_toks, const char *want_errors) {
  Lexed r = lex_s(src);
  char *got = render(&r), *errs = error_lines(r.diag);
  ck_assert_msg(!strcmp(got, want_toks), "lexing [%s]\n got: %s\nwant: %s", src, got, want_toks);
  ck_assert_msg(!strcmp(errs, want_errors), "lexing [%s]\n got errors: [%s]\nwant errors: [%s]",
                src, errs, want_errors);
  free(got);
  free(errs);
  lexed_free(&r);
}

/* ------------------------------------------------------------- tokens */

START_TEST(test_operators) {
  check_lex("( ) [ ] { } , ; : . .. ... = + - * ** / // % @ < <= > >= == !=",
            "LPAREN RPAREN LBRACKET RBRACKET LBRACE RBRACE COMMA SEMI COLON DOT DOTDOT "
            "ELLIPSIS ASSIGN PLUS MINUS STAR STARSTAR SLASH SLASHSLASH PERCENT AT LT LE GT GE "
            "EQ NE EOF",
            "");
  /* longest match without spaces */
  check_lex("a**-b//c<=d==e!=f>=g", "IDENT:a STARSTAR MINUS IDENT:b SLASHSLASH IDENT:c LE "
            "IDENT:d EQ IDENT:e NE IDENT:f GE IDENT:g EOF", "");
  check_lex("....", "ELLIPSIS DOT EOF", "");
  check_lex("===", "EQ ASSIGN EOF", "");
}
END_TEST

START_TEST(test_keywords_and_identifiers) {
  check_lex("const def model train input param state output loss for in return true "
            "false f32 i32 bool",
            "KW_CONST KW_DEF KW_MODEL KW_TRAIN KW_INPUT KW_PARAM KW_STATE KW_OUTPUT KW_LOSS "
            "KW_FOR KW_IN KW_RETURN KW_TRUE KW_FALSE KW_F32 KW_I32 KW_BOOL EOF",
            "");
  check_lex("_ _a1 inx f32x Loss x_Y_9 constant", "IDENT:_ IDENT:_a1 IDENT:inx IDENT:f32x "
            "IDENT:Loss IDENT:x_Y_9 IDENT:constant EOF", "");
  Lexed r = lex_s("loss");
  ck_assert_int_eq(r.toks[0].kind, TK_KW_LOSS);
  ck_assert_str_eq(r.toks[0].str, "loss");  /* keywords carry their text */
  ck_assert_int_eq(r.toks[0].len, 4);
  lexed_free(&r);
}
END_TEST

START_TEST(test_tok_kind_name) {
  ck_assert_str_eq(tok_kind_name(TK_EOF), "end of file");
  ck_assert_str_eq(tok_kind_name(TK_NEWLINE), "newline");
  ck_assert_str_eq(tok_kind_name(TK_IDENT), "identifier");
  ck_assert_str_eq(tok_kind_name(TK_RPAREN), "')'");
  ck_assert_str_eq(tok_kind_name(TK_KW_LOSS), "'loss'");
  ck_assert_str_eq(tok_kind_name(TK_COUNT), "?");
}
END_TEST

/* ------------------------------------------------------------- numbers */

START_TEST(test_numbers) {
  check_lex("12 0.5 .5 5. 1e-3 5e-3 1E+4 0 007 2.5e2 5.e1",
            "INT:12 FLOAT:0.5 FLOAT:0.5 FLOAT:5 FLOAT:0.001 FLOAT:0.005 FLOAT:10000 INT:0 "
            "INT:7 FLOAT:250 FLOAT:50 EOF",
            "");
  Lexed r = lex_s("42 0.1 1e-3");
  ck_assert_int_eq(r.toks[0].ival, 42);
  ck_assert(r.toks[0].fval == 42.0);  /* ints carry their double too */
  ck_assert(r.toks[1].fval == 0.1);
  ck_assert(r.toks[2].fval == 1e-3);
  ck_assert_int_eq(r.toks[1].len, 3);
  lexed_free(&r);
}
END_TEST

START_TEST(test_ranges_are_not_numbers) {
  /* '.' followed by '.' is not part of a number */
  check_lex("0..T", "INT:0 DOTDOT IDENT:T EOF", "");
  check_lex("0..10", "INT:0 DOTDOT INT:10 EOF", "");
  check_lex("5...", "INT:5 ELLIPSIS EOF", "");
  check_lex("f32[..., n]", "KW_F32 LBRACKET ELLIPSIS COMMA IDENT:n RBRACKET EOF", "");
  check_lex("x[0:4]", "IDENT:x LBRACKET INT:0 COLON INT:4 RBRACKET EOF", "");
  check_lex("a.b", "IDENT:a DOT IDENT:b EOF", "");
  check_lex("1.5.5", "FLOAT:1.5 FLOAT:0.5 EOF", "");
}
END_TEST

START_TEST(test_integer_limits) {
  Lexed r = lex_s("9223372036854775807");
  ck_assert_int_eq(r.n_errors, 0);
  ck_assert(r.toks[0].kind == TK_INT && r.toks[0].ival == INT64_MAX);
  lexed_free(&r);
  check_lex("x = 99999999999999999999", "IDENT:x ASSIGN INT:0 EOF",
            "t.nn:1:5: error: integer literal '99999999999999999999' is too large");
  check_lex("9223372036854775808", "INT:0 EOF",
            "t.nn:1:1: error: integer literal '9223372036854775808' is too large");
  check_lex("1e999", "FLOAT:0 EOF", "t.nn:1:1: error: number literal '1e999' is too large");
}
END_TEST

START_TEST(test_bad_numbers) {
  /* one error covering the whole run; a placeholder token keeps the
   * parser from adding a second error */
  check_lex("1e", "FLOAT:0 EOF", "t.nn:1:1: error: invalid number '1e'");
  check_lex("x = 1e+ + 2", "IDENT:x ASSIGN FLOAT:0 PLUS INT:2 EOF",
            "t.nn:1:5: error: invalid number '1e+'");
  check_lex("12abc", "INT:0 EOF", "t.nn:1:1: error: invalid number '12abc'");
  check_lex("0x1F", "INT:0 EOF", "t.nn:1:1: error: invalid number '0x1F'");
  check_lex("1.5e3x_2 y", "FLOAT:0 IDENT:y EOF", "t.nn:1:1: error: invalid number '1.5e3x_2'");
  check_lex("5.foo", "FLOAT:0 EOF", "t.nn:1:1: error: invalid number '5.foo'");
  check_lex("1e-", "FLOAT:0 EOF", "t.nn:1:1: error: invalid number '1e-'");
  check_lex("2_000", "INT:0 EOF", "t.nn:1:1: error: invalid number '2_000'");
  check_lex("a\n  1eq 3", "IDENT:a NEWLINE FLOAT:0 INT:3 EOF",
            "t.nn:2:3: error: invalid number '1eq'");
}
END_TEST

/* ------------------------------------------------------------- strings */

START_TEST(test_strings) {
  Lexed r = lex_s("\"a\\\"b\\\\c\\nd\" \"\" \"path/\xc3\xa9.gz\" \"# not a comment\"");
  ck_assert_int_eq(r.n_errors, 0);
  ck_assert_int_eq(r.n, 5);
  ck_assert_int_eq(r.toks[0].kind, TK_STRING);
  ck_assert_str_eq(r.toks[0].str, "a\"b\\c\nd");
  ck_assert_int_eq(r.toks[0].len, 12);  /* the raw text, quotes included */
  ck_assert_str_eq(r.toks[1].str, "");
  ck_assert_str_eq(r.toks[2].str, "path/\xc3\xa9.gz");  /* non-ASCII is fine in strings */
  ck_assert_str_eq(r.toks[3].str, "# not a comment");
  lexed_free(&r);
}
END_TEST

START_TEST(test_string_errors) {
  check_lex("s = \"ab\\qc\"", "IDENT:s ASSIGN STRING:abc EOF",
            "t.nn:1:8: error: unknown escape '\\q' in string");
  check_lex("s = \"abc\ny = 1", "IDENT:s ASSIGN STRING:abc NEWLINE IDENT:y ASSIGN INT:1 EOF",
            "t.nn:1:5: error: unterminated string");
  check_lex("  \"abc", "STRING:abc EOF", "t.nn:1:3: error: unterminated string");
  check_lex("\"abc\\", "STRING:abc EOF", "t.nn:1:1: error: unterminated string");
  check_lex("\"a\\\"", "STRING:a\" EOF", "t.nn:1:1: error: unterminated string");
  /* escape and unterminated errors both reported, in source order */
  check_lex("\"\\t", "STRING: EOF",
            "t.nn:1:2: error: unknown escape '\\t' in string\n"
            "t.nn:1:1: error: unterminated string");
}
END_TEST

/* ------------------------------------------------------------- comments and bad bytes */

START_TEST(test_comments) {
  check_lex("x # comment \xff\xfe $ \"\n# whole line\ny", "IDENT:x NEWLINE IDENT:y EOF", "");
  check_lex("# only a comment", "EOF", "");
  Lexed r = lex_n("x # a\0b\ny", 9);
  char *errs = error_lines(r.diag);
  ck_assert_str_eq(errs, "t.nn:1:6: error: NUL byte in source");
  ck_assert_int_eq(r.n, 4);
  free(errs);
  lexed_free(&r);
}
END_TEST

START_TEST(test_unexpected_bytes) {
  check_lex("a $ b", "IDENT:a IDENT:b EOF", "t.nn:1:3: error: unexpected character '$'");
  check_lex("a ? b ! c != d", "IDENT:a IDENT:b IDENT:c NE IDENT:d EOF",
            "t.nn:1:3: error: unexpected character '?'\n"
            "t.nn:1:7: error: unexpected character '!'");
  /* one error for a run of non-ASCII bytes (one UTF-8 character) */
  check_lex("x = 1\ny = \xc3\xa9 + 2", "IDENT:x ASSIGN INT:1 NEWLINE IDENT:y ASSIGN PLUS INT:2 EOF",
            "t.nn:2:5: error: unexpected byte 0xc3");
  check_lex("a\x01" "b\x7f", "IDENT:a IDENT:b EOF",
            "t.nn:1:2: error: unexpected byte 0x01\nt.nn:1:4: error: unexpected byte 0x7f");
  Lexed r = lex_n("ab\n c\0d", 7);
  char *errs = error_lines(r.diag), *got = render(&r);
  ck_assert_str_eq(errs, "t.nn:2:3: error: NUL byte in source");
  ck_assert_str_eq(got, "IDENT:ab NEWLINE IDENT:c IDENT:d EOF");
  free(errs);
  free(got);
  lexed_free(&r);
  /* NUL inside a string: reported, dropped from the value */
  r = lex_n("\"a\0b\"", 5);
  errs = error_lines(r.diag);
  ck_assert_str_eq(errs, "t.nn:1:3: error: NUL byte in source");
  ck_assert_str_eq(r.toks[0].str, "ab");
  free(errs);
  lexed_free(&r);
}
END_TEST

/* ------------------------------------------------------------- newlines */

START_TEST(test_newlines) {
  check_lex("a\nb", "IDENT:a NEWLINE IDENT:b EOF", "");
  /* collapsed, also across comment lines and blank lines; none at the start */
  check_lex("\n\na\n\n  # c\n\nb\n\n", "IDENT:a NEWLINE IDENT:b NEWLINE EOF", "");
  /* dropped inside () and [] */
  check_lex("f(a,\n  b)\nx[1,\n2]\n", "IDENT:f LPAREN IDENT:a COMMA IDENT:b RPAREN NEWLINE "
            "IDENT:x LBRACKET INT:1 COMMA INT:2 RBRACKET NEWLINE EOF", "");
  check_lex("f([\n(\n)\n]\n)\ny", "IDENT:f LPAREN LBRACKET LPAREN RPAREN RBRACKET RPAREN "
            "NEWLINE IDENT:y EOF", "");
  /* kept inside {} */
  check_lex("m {\n a\n}\n", "IDENT:m LBRACE NEWLINE IDENT:a NEWLINE RBRACE NEWLINE EOF", "");
  /* a brace closes brackets left open, so the damage stays local */
  check_lex("f(x\n}\ny", "IDENT:f LPAREN IDENT:x RBRACE NEWLINE IDENT:y EOF", "");
  /* an unmatched ')' does not make the depth negative */
  check_lex(")\na", "RPAREN NEWLINE IDENT:a EOF", "");
}
END_TEST

START_TEST(test_crlf) {
  check_lex("a\r\nb\r\n\r\nc", "IDENT:a NEWLINE IDENT:b NEWLINE IDENT:c EOF", "");
  Lexed r = lex_s("a\r\n  b $\r\n");
  ck_assert_int_eq(r.toks[1].kind, TK_NEWLINE);
  ck_assert_int_eq(r.toks[1].len, 2);
  ck_assert_int_eq(r.toks[2].loc.line, 2);
  ck_assert_int_eq(r.toks[2].loc.col, 3);
  char *errs = error_lines(r.diag);
  ck_assert_str_eq(errs, "t.nn:2:5: error: unexpected character '$'");
  free(errs);
  ck_assert_int_eq(r.toks[r.n - 1].loc.line, 3);  /* EOF after the last "\r\n" */
  ck_assert_int_eq(r.toks[r.n - 1].loc.col, 1);
  lexed_free(&r);
  /* a lone '\r' is white space */
  check_lex("a\rb", "IDENT:a IDENT:b EOF", "");
}
END_TEST

/* ------------------------------------------------------------- locations */

START_TEST(test_locations) {
  Lexed r = lex_s("model m {\n\tx = f(a,\n    b)  # c\n}");
  /* model m { NL x = f ( a , b ) NL } EOF */
  int want[][3] = {{TK_KW_MODEL, 1, 1}, {TK_IDENT, 1, 7}, {TK_LBRACE, 1, 9},
                   {TK_NEWLINE, 1, 10}, {TK_IDENT, 2, 2},  {TK_ASSIGN, 2, 4},
                   {TK_IDENT, 2, 6},    {TK_LPAREN, 2, 7}, {TK_IDENT, 2, 8},
                   {TK_COMMA, 2, 9},    {TK_IDENT, 3, 5},  {TK_RPAREN, 3, 6},
                   {TK_NEWLINE, 3, 12}, {TK_RBRACE, 4, 1}, {TK_EOF, 4, 2}};
  int n = (int)(sizeof want / sizeof want[0]);
  ck_assert_int_eq(r.n, n);
  for (int i = 0; i < n; i++) {
    ck_assert_msg((int)r.toks[i].kind == want[i][0] && r.toks[i].loc.line == want[i][1] &&
                      r.toks[i].loc.col == want[i][2],
                  "token %d: %s at %d:%d, want %s at %d:%d", i, enum_names[r.toks[i].kind],
                  r.toks[i].loc.line, r.toks[i].loc.col, enum_names[want[i][0]], want[i][1],
                  want[i][2]);
  }
  ck_assert(r.toks[4].start[0] == 'x' && r.toks[4].len == 1);
  lexed_free(&r);
}
END_TEST

START_TEST(test_eof_location) {
  struct {
    const char *src;
    int line, col;
  } cases[] = {{"", 1, 1}, {"ab", 1, 3}, {"ab\n", 2, 1}, {"a\n\n", 3, 1},
               {"x # c", 1, 6}, {"a\nbc  ", 2, 5}, {"\"abc", 1, 5}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    Lexed r = lex_s(cases[i].src);
    const Token *eof = &r.toks[r.n - 1];
    ck_assert_int_eq(eof->kind, TK_EOF);
    ck_assert_msg(eof->loc.line == cases[i].line && eof->loc.col == cases[i].col,
                  "EOF of [%s] at %d:%d, want %d:%d", cases[i].src, eof->loc.line,
                  eof->loc.col, cases[i].line, cases[i].col);
    lexed_free(&r);
  }
}
END_TEST

/* ------------------------------------------------------------- size */

START_TEST(test_long_line) {
  /* a 1 MB identifier, a 1 MB string and a 1 MB line of numbers */
  size_t n = 1 << 20;
  char *src = malloc(3 * n + 64);
  size_t k = 0;
  memset(src + k, 'a', n);
  k += n;
  memcpy(src + k, " = \"", 4);
  k += 4;
  memset(src + k, 's', n);
  k += n;
  src[k++] = '"';
  src[k++] = '\n';
  int nums = 0;
  while (k < 3 * n) {
    memcpy(src + k, "1.5,", 4);
    k += 4;
    nums++;
  }
  Lexed r = lex_n(src, k);
  ck_assert_int_eq(r.n_errors, 0);
  ck_assert_int_eq(r.n, 4 + 2 * nums + 1);
  ck_assert_int_eq((int)strlen(r.toks[0].str), (int)n);
  ck_assert_int_eq((int)strlen(r.toks[2].str), (int)n);
  ck_assert_int_eq(r.toks[r.n - 2].kind, TK_COMMA);
  ck_assert_int_eq(r.toks[r.n - 2].loc.col, 4 * nums);
  lexed_free(&r);
  free(src);
}
END_TEST

START_TEST(test_big_file) {
  /* 10 MB of ordinary lines: must lex in linear time */
  const char *line = "  h = relu(x @ w1 + b1) * 0.5  # hidden layer\n";
  size_t ll = strlen(line), total = 10u << 20, k = 0;
  char *src = malloc(total + ll);
  while (k < total) {
    memcpy(src + k, line, ll);
    k += ll;
  }
  Lexed r = lex_n(src, k);
  ck_assert_int_eq(r.n_errors, 0);
  int lines = (int)(k / ll);
  ck_assert_int_eq(r.n, lines * 13 + 1);
  ck_assert_int_eq(r.toks[r.n - 1].loc.line, lines + 1);
  lexed_free(&r);
  free(src);
}
END_TEST

START_TEST(test_binary_garbage) {
  /* any bytes: errors, never a crash; the Diag stops printing at 50 */
  size_t n = 1 << 20;
  char *src = malloc(n);
  unsigned x = 12345;
  for (size_t i = 0; i < n; i++) {
    x = x * 1103515245u + 12345u;
    src[i] = (char)(x >> 16);
  }
  Lexed r = lex_n(src, n);
  ck_assert_int_gt(r.n_errors, 50);
  ck_assert_int_eq(r.toks[r.n - 1].kind, TK_EOF);
  ck_assert_ptr_nonnull(strstr(r.diag, "too many errors"));
  lexed_free(&r);
  free(src);
}
END_TEST

static Suite *lex_suite(void) {
  Suite *s = suite_create("lex");
  TCase *tc = tcase_create("lex");
  tcase_set_timeout(tc, 120);
  tcase_add_test(tc, test_operators);
  tcase_add_test(tc, test_keywords_and_identifiers);
  tcase_add_test(tc, test_tok_kind_name);
  tcase_add_test(tc, test_numbers);
  tcase_add_test(tc, test_ranges_are_not_numbers);
  tcase_add_test(tc, test_integer_limits);
  tcase_add_test(tc, test_bad_numbers);
  tcase_add_test(tc, test_strings);
  tcase_add_test(tc, test_string_errors);
  tcase_add_test(tc, test_comments);
  tcase_add_test(tc, test_unexpected_bytes);
  tcase_add_test(tc, test_newlines);
  tcase_add_test(tc, test_crlf);
  tcase_add_test(tc, test_locations);
  tcase_add_test(tc, test_eof_location);
  tcase_add_test(tc, test_long_line);
  tcase_add_test(tc, test_big_file);
  tcase_add_test(tc, test_binary_garbage);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(lex_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
