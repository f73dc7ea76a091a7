/* test_infer.c - the shape rules of ir/infer.c, op by op: each test builds
 * a tiny graph, runs ir_infer on one node and checks the type it gets or
 * the error it reports (captured from a Diag writing to memory). */
#include <check.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir/ir.h"

/* -------------------------------------------------------------- fixture */

static Arena arena;
static Graph *g;
static Diag diag;
static char *buf;
static size_t buf_len;
static FILE *mem;
static const SrcLoc L = {3, 7};

static void setup(void) {
  memset(&arena, 0, sizeof arena);
  g = ir_graph_new(&arena, "t");
  mem = open_memstream(&buf, &buf_len);
  diag_init(&diag, "t.nn", NULL, 0, mem);
}

static void teardown(void) {
  fclose(mem);
  free(buf);
  arena_free(&arena);
}

/* "f32[2,3]", "i32[]", "bool[4]" -> Type; anything else aborts the test. */
static Type T(const char *s) {
  DType dt = !strncmp(s, "f32", 3) ? DT_F32 : !strncmp(s, "i32", 3) ? DT_I32
           : !strncmp(s, "bool", 4) ? DT_BOOL : DT_ERR;
  ck_assert_msg(dt != DT_ERR, "bad type text %s", s);
  const char *p = strchr(s, '[');
  ck_assert_ptr_nonnull(p);
  int64_t dims[IR_MAX_RANK];
  int rank = 0;
  for (p++; *p && *p != ']';) {
    char *end;
    dims[rank++] = strtoll(p, &end, 10);
    p = *end == ',' ? end + 1 : end;
  }
  return type_make(dt, rank, dims);
}

static Node *V(const char *type) { return ir_var(g, "v", ROLE_INPUT, T(type), L); }

static Node *op(Op o, int n_in, ...) {
  Node *ins[8];
  va_list ap;
  va_start(ap, n_in);
  for (int i = 0; i < n_in; i++) ins[i] = va_arg(ap, Node *);
  va_end(ap);
  return ir_node_new(g, o, ins, n_in, L);
}
#define OP1(o, a) op(o, 1, a)
#define OP2(o, a, b) op(o, 2, a, b)

/* Sets list attribute k: LIST(n, 0, 1, 2) makes attr[0] = [1,2]. */
#define LIST(n, k, ...)                                                        \
  ir_set_list(g, n, k, (int64_t[]){__VA_ARGS__},                            \
              (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)))
#define EMPTY_LIST(n, k) ir_set_list(g, n, k, NULL, 0)

/* ir_infer succeeds, with no message, and gives type `want`. */
static void ok_(Node *n, const char *want, int line) {
  char got[TYPE_STR_MAX];
  int before = diag.n_errors;
  bool r = ir_infer(n, &diag);
  fflush(mem);
  ck_assert_msg(r, "line %d: expected %s, got error: %s", line, want, buf ? buf : "");
  ck_assert_int_eq(diag.n_errors, before);
  ck_assert_str_eq(type_str(&n->type, got, sizeof got), want);
}
#define OK(n, want) ok_(n, want, __LINE__)

/* ir_infer fails with exactly one new error containing `msg`. */
static void err_(Node *n, const char *msg, int line) {
  fflush(mem);
  size_t before_len = buf_len;
  int before = diag.n_errors;
  bool r = ir_infer(n, &diag);
  fflush(mem);
  ck_assert_msg(!r, "line %d: expected error '%s'", line, msg);
  ck_assert_int_eq(n->type.dtype, DT_ERR);
  ck_assert_int_eq(diag.n_errors, before + 1);
  ck_assert_msg(strstr(buf + before_len, msg), "line %d: want '%s' in: %s", line, msg,
                buf + before_len);
  ck_assert_msg(strstr(buf + before_len, "t.nn:3:7: error: "), "no location: %s",
                buf + before_len);
}
#define ERR(n, msg) err_(n, msg, __LINE__)

/* ------------------------------------------------------------ broadcast */

START_TEST(broadcast_rules) {
  Type a = T("f32[2,1,3]"), b = T("f32[4,1]"), out;
  char s[TYPE_STR_MAX];
  ck_assert(ir_broadcast(&a, &b, &out));
  ck_assert_str_eq(type_str(&out, s, sizeof s), "f32[2,4,3]");
  Type c = T("f32[]"), e = T("f32[5,6]");
  ck_assert(ir_broadcast(&c, &e, &out));
  ck_assert_str_eq(type_str(&out, s, sizeof s), "f32[5,6]");
  ck_assert(ir_broadcast(&e, &c, &out));
  ck_assert_str_eq(type_str(&out, s, sizeof s), "f32[5,6]");
  Type f = T("f32[2,3]"), h = T("f32[3,2]");
  ck_assert(!ir_broadcast(&f, &h, &out));
  Type one = T("f32[1]"), k = T("f32[7]");
  ck_assert(ir_broadcast(&one, &k, &out) && out.rank == 1 && out.dim[0] == 7);
}
END_TEST

/* --------------------------------------------------------------- leaves */

START_TEST(leaves) {
  OK(V("f32[64,784]"), "f32[64,784]");
  OK(V("i32[]"), "i32[]");
  Node *c = ir_const(g, DT_F32, 2.5, L);
  OK(c, "f32[]");
  ERR(V("f32[2,0]"), "tensor f32[2,0] has a dimension smaller than 1");
  ERR(V("f32[65536,65536]"), "tensor f32[65536,65536] has more than 2^31 elements");
  OK(V("f32[65536,32768]"), "f32[65536,32768]");  /* exactly 2^31 is allowed */
  Node *big = ir_const(g, DT_F32, 0, L);
  big->type = T("f32[4,3]");
  OK(big, "f32[4,3]");
  Node *bad = V("f32[2]");
  bad->type.rank = 9;
  ERR(bad, "tensor rank 9 is out of range 0..8");
  Node *poisoned = V("f32[2]");
  poisoned->type.dtype = DT_ERR;
  ck_assert(!ir_infer(poisoned, &diag));
  ck_assert_int_eq(diag.n_errors, 3);
}
END_TEST

/* ---------------------------------------------------------- elementwise */

START_TEST(unary_ops) {
  static const Op f32_only[] = {OP_EXP, OP_LOG, OP_SQRT, OP_RSQRT, OP_LEAKY_RELU, OP_SIGMOID,
                                OP_TANH, OP_GELU, OP_SOFTPLUS, OP_SIN, OP_COS, OP_POW,
                                OP_STOP_GRADIENT};
  static const Op int_too[] = {OP_NEG, OP_ABS, OP_SQUARE, OP_RELU};
  Node *x = V("f32[2,3]"), *i = V("i32[4]"), *b = V("bool[3]");
  char msg[64];
  for (size_t k = 0; k < sizeof f32_only / sizeof f32_only[0]; k++) {
    OK(OP1(f32_only[k], x), "f32[2,3]");
    snprintf(msg, sizeof msg, "'%s' needs f32, got i32[4]", op_info(f32_only[k])->name);
    ERR(OP1(f32_only[k], i), msg);
  }
  for (size_t k = 0; k < sizeof int_too / sizeof int_too[0]; k++) {
    OK(OP1(int_too[k], x), "f32[2,3]");
    OK(OP1(int_too[k], i), "i32[4]");
    snprintf(msg, sizeof msg, "'%s' needs f32 or i32, got bool[3]", op_info(int_too[k])->name);
    ERR(OP1(int_too[k], b), msg);
  }
  ERR(OP1(OP_EXP, b), "'exp' needs f32, got bool[3]");
}
END_TEST

START_TEST(clamp_bounds) {
  Node *x = V("f32[5]");
  Node *c = OP1(OP_CLAMP, x);
  c->attr[0].f = -1, c->attr[1].f = 1;
  OK(c, "f32[5]");
  Node *e = OP1(OP_CLAMP, V("i32[2]"));  /* float bounds: f32 only */
  e->attr[0].f = e->attr[1].f = 3;
  ERR(e, "'clamp' needs f32, got i32[2]");
  ERR(OP2(OP_DIV, V("i32[2]"), V("i32[2]")), "'/' needs f32 (integer division of tensors is not defined)");
  Node *bad = OP1(OP_CLAMP, x);
  bad->attr[0].f = 2, bad->attr[1].f = 1;
  ERR(bad, "'clamp' lower bound 2 is greater than upper bound 1");
}
END_TEST

START_TEST(cast) {
  Node *c = OP1(OP_CAST, V("bool[2,3]"));
  c->type.dtype = DT_F32;
  OK(c, "f32[2,3]");
  OK(c, "f32[2,3]");  /* idempotent: the target survives a recheck */
  Node *i = OP1(OP_CAST, V("f32[4]"));
  i->type.dtype = DT_I32;
  OK(i, "i32[4]");
  Node *b = OP1(OP_CAST, V("f32[4]"));
  b->type.dtype = DT_BOOL;
  ERR(b, "'cast' target must be f32 or i32, got bool");
}
END_TEST

START_TEST(binary_ops) {
  Node *a = V("f32[2,3]"), *b = V("f32[3,2]"), *row = V("f32[3]"), *col = V("f32[2,1]");
  OK(OP2(OP_ADD, a, row), "f32[2,3]");          /* rank mismatch */
  OK(OP2(OP_MUL, col, row), "f32[2,3]");        /* size-1 both ways */
  OK(OP2(OP_SUB, V("f32[]"), a), "f32[2,3]");   /* scalar */
  OK(OP2(OP_MAXIMUM, V("i32[4,1,5]"), V("i32[3,1]")), "i32[4,3,5]");
  OK(OP2(OP_MINIMUM, V("f32[1]"), V("f32[1,1,6]")), "f32[1,1,6]");
  OK(OP2(OP_DIV, a, a), "f32[2,3]");
  ERR(OP2(OP_ADD, a, b), "cannot add f32[2,3] and f32[3,2]");
  ERR(OP2(OP_SUB, a, b), "cannot subtract f32[2,3] and f32[3,2]");
  ERR(OP2(OP_MUL, a, b), "cannot multiply f32[2,3] and f32[3,2]");
  ERR(OP2(OP_DIV, a, b), "cannot divide f32[2,3] and f32[3,2]");
  ERR(OP2(OP_MAXIMUM, V("f32[2]"), row), "cannot apply 'maximum' to f32[2] and f32[3]");
  ERR(OP2(OP_MINIMUM, V("f32[2]"), row), "cannot apply 'minimum' to f32[2] and f32[3]");
  ERR(OP2(OP_ADD, V("f32[2]"), V("i32[2]")),
      "cannot add f32[2] and i32[2]: no implicit conversion between f32 and i32");
  ERR(OP2(OP_ADD, V("bool[2]"), V("bool[2]")), "cannot add bool[2] and bool[2]: 'add' needs f32 or i32");
}
END_TEST

START_TEST(compare_ops) {
  Node *a = V("f32[2,3]"), *b = V("f32[3]");
  static const Op cmp[] = {OP_LT, OP_LE, OP_GT, OP_GE, OP_EQ, OP_NE};
  for (int k = 0; k < 6; k++) {
    OK(OP2(cmp[k], a, b), "bool[2,3]");
    ERR(OP2(cmp[k], V("f32[2]"), b), "cannot compare f32[2] and f32[3]");
  }
  OK(OP2(OP_LT, V("i32[4]"), V("i32[]")), "bool[4]");
  OK(OP2(OP_EQ, V("bool[4]"), V("bool[4]")), "bool[4]");
  OK(OP2(OP_NE, V("bool[4]"), V("bool[1]")), "bool[4]");
  ERR(OP2(OP_LT, V("bool[4]"), V("bool[4]")), "cannot compare bool[4] and bool[4] with '<'");
  ERR(OP2(OP_EQ, V("f32[4]"), V("i32[4]")), "cannot compare f32[4] and i32[4]: no implicit conversion");
}
END_TEST

START_TEST(where_op) {
  Node *c = V("bool[4,1]"), *a = V("f32[3]"), *b = V("f32[]");
  OK(op(OP_WHERE, 3, c, a, b), "f32[4,3]");
  OK(op(OP_WHERE, 3, V("bool[]"), V("i32[2]"), V("i32[5,1]")), "i32[5,2]");
  ERR(op(OP_WHERE, 3, V("f32[3]"), a, b), "'where' condition must be bool, got f32[3]");
  ERR(op(OP_WHERE, 3, c, a, V("i32[3]")), "cannot select between f32[3] and i32[3]: no implicit");
  ERR(op(OP_WHERE, 3, V("bool[2]"), a, b), "cannot broadcast 'where' operands bool[2], f32[3] and f32[]");
  ERR(op(OP_WHERE, 3, c, a, V("f32[2]")), "cannot broadcast 'where' operands bool[4,1], f32[3] and f32[2]");
}
END_TEST

/* -------------------------------------------------------------- matmul */

START_TEST(matmul) {
  OK(OP2(OP_MATMUL, V("f32[64,784]"), V("f32[784,128]")), "f32[64,128]");
  OK(OP2(OP_MATMUL, V("f32[3]"), V("f32[3,5]")), "f32[5]");      /* rank-1 lhs */
  OK(OP2(OP_MATMUL, V("f32[4,3]"), V("f32[3]")), "f32[4]");      /* rank-1 rhs */
  OK(OP2(OP_MATMUL, V("f32[3]"), V("f32[3]")), "f32[]");         /* dot */
  OK(OP2(OP_MATMUL, V("f32[2,1,4,3]"), V("f32[5,3,6]")), "f32[2,5,4,6]");  /* batch bcast */
  OK(OP2(OP_MATMUL, V("f32[7,4,3]"), V("f32[3,2]")), "f32[7,4,2]");
  OK(OP2(OP_MATMUL, V("f32[3]"), V("f32[8,3,2]")), "f32[8,2]");
  OK(OP2(OP_MATMUL, V("f32[8,2,3]"), V("f32[3]")), "f32[8,2]");
  ERR(OP2(OP_MATMUL, V("f32[64,784]"), V("f32[128,10]")),
      "cannot multiply matrices f32[64,784] and f32[128,10]: inner dimensions 784 and 128 differ");
  ERR(OP2(OP_MATMUL, V("f32[3]"), V("f32[4]")), "inner dimensions 3 and 4 differ");
  ERR(OP2(OP_MATMUL, V("f32[2,4,3]"), V("f32[5,3,6]")),
      "cannot multiply matrices f32[2,4,3] and f32[5,3,6]: batch dimensions [2] and [5] differ");
  ERR(OP2(OP_MATMUL, V("f32[]"), V("f32[3]")), "cannot multiply matrices f32[] and f32[3]");
  ERR(OP2(OP_MATMUL, V("i32[2,3]"), V("f32[3,2]")), "cannot multiply matrices i32[2,3] and f32[3,2]");
}
END_TEST

/* ----------------------------------------------------------- reductions */

START_TEST(reductions) {
  Node *x = V("f32[4,3,5]");
  static const Op red[] = {OP_SUM, OP_MEAN, OP_MAX, OP_MIN, OP_LOGSUMEXP};
  for (int k = 0; k < 5; k++) {
    Node *n = OP1(red[k], x);
    LIST(n, 0, -1, 0);
    OK(n, "f32[3]");
    ck_assert(n->attr[0].n == 2 && n->attr[0].list[0] == 0 && n->attr[0].list[1] == 2);
    Node *keep = OP1(red[k], x);
    LIST(keep, 0, 1);
    keep->attr[1].i = 1;
    OK(keep, "f32[4,1,5]");
    Node *bad = OP1(red[k], x);
    LIST(bad, 0, 3);
    ERR(bad, "axis 3 is out of range for f32[4,3,5]");
  }
  Node *none = OP1(OP_SUM, x);
  EMPTY_LIST(none, 0);
  OK(none, "f32[4,3,5]");
  Node *all = OP1(OP_SUM, x);
  LIST(all, 0, 2, 1, 0);
  OK(all, "f32[]");
  Node *dup = OP1(OP_MAX, x);
  LIST(dup, 0, 1, -2);
  ERR(dup, "duplicate axis 1 in 'max' over f32[4,3,5]");
  Node *neg = OP1(OP_MIN, x);
  LIST(neg, 0, -4);
  ERR(neg, "axis -4 is out of range for f32[4,3,5]");
  Node *isum = OP1(OP_SUM, V("i32[6,2]"));
  LIST(isum, 0, 0);
  OK(isum, "i32[2]");
  Node *imean = OP1(OP_MEAN, V("i32[6,2]"));
  LIST(imean, 0, 0);
  ERR(imean, "'mean' needs f32, got i32[6,2]");
  Node *bsum = OP1(OP_SUM, V("bool[6]"));
  LIST(bsum, 0, 0);
  ERR(bsum, "'sum' needs f32 or i32, got bool[6]");
}
END_TEST

START_TEST(argmax_softmax) {
  Node *x = V("f32[8,10]");
  Node *a = OP1(OP_ARGMAX, x);
  a->attr[0].i = -1;
  OK(a, "i32[8]");
  ck_assert_int_eq(a->attr[0].i, 1);
  Node *k = OP1(OP_ARGMAX, V("i32[8,10]"));
  k->attr[0].i = 0, k->attr[1].i = 1;
  OK(k, "i32[1,10]");
  Node *s = OP1(OP_ARGMAX, V("f32[]"));
  ERR(s, "axis 0 is out of range for f32[]");
  Node *b = OP1(OP_ARGMAX, V("bool[3]"));
  ERR(b, "'argmax' needs f32 or i32, got bool[3]");
  static const Op sm[] = {OP_SOFTMAX, OP_LOG_SOFTMAX};
  for (int i = 0; i < 2; i++) {
    Node *n = OP1(sm[i], x);
    n->attr[0].i = -1;
    OK(n, "f32[8,10]");
    ck_assert_int_eq(n->attr[0].i, 1);
    Node *bad = OP1(sm[i], x);
    bad->attr[0].i = 2;
    ERR(bad, "axis 2 is out of range for f32[8,10]");
    ERR(OP1(sm[i], V("i32[3]")), "needs f32, got i32[3]");
  }
}
END_TEST

/* ---------------------------------------------------------------- shape */

START_TEST(reshape) {
  Node *r = OP1(OP_RESHAPE, V("f32[2,3]"));
  LIST(r, 0, 3, 1, 2);
  OK(r, "f32[3,1,2]");
  Node *i = OP1(OP_RESHAPE, V("i32[1]"));
  EMPTY_LIST(i, 0);
  OK(i, "i32[]");
  Node *bad = OP1(OP_RESHAPE, V("f32[2,3]"));
  LIST(bad, 0, 4, 2);
  ERR(bad, "cannot reshape f32[2,3] (6 elements) to [4,2] (8 elements)");
  Node *zero = OP1(OP_RESHAPE, V("f32[2,3]"));
  LIST(zero, 0, 0, 6);
  ERR(zero, "'reshape' target shape [0,6] has a dimension smaller than 1");
  Node *deep = OP1(OP_RESHAPE, V("f32[1]"));
  LIST(deep, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1);
  ERR(deep, "has rank 9, more than 8");
}
END_TEST

START_TEST(transpose) {
  Node *t = OP1(OP_TRANSPOSE, V("f32[2,3,4]"));
  LIST(t, 0, 2, 0, 1);
  OK(t, "f32[4,2,3]");
  Node *dup = OP1(OP_TRANSPOSE, V("f32[2,3]"));
  LIST(dup, 0, 0, 0);
  ERR(dup, "'transpose' permutation [0,0] does not fit f32[2,3]");
  Node *len = OP1(OP_TRANSPOSE, V("f32[2,3]"));
  LIST(len, 0, 1, 0, 2);
  ERR(len, "'transpose' permutation [1,0,2] does not fit f32[2,3]");
  Node *neg = OP1(OP_TRANSPOSE, V("f32[2,3]"));
  LIST(neg, 0, -1, 0);
  ERR(neg, "'transpose' permutation [-1,0] does not fit f32[2,3]");
}
END_TEST

START_TEST(broadcast_op) {
  Node *b = OP1(OP_BROADCAST, V("f32[3,1]"));
  LIST(b, 0, 2, 3, 4);
  OK(b, "f32[2,3,4]");
  Node *s = OP1(OP_BROADCAST, V("i32[]"));
  LIST(s, 0, 5);
  OK(s, "i32[5]");
  Node *bad = OP1(OP_BROADCAST, V("f32[3]"));
  LIST(bad, 0, 4, 2);
  ERR(bad, "cannot broadcast f32[3] to [4,2]");
  Node *shrink = OP1(OP_BROADCAST, V("f32[2,3]"));
  LIST(shrink, 0, 3);
  ERR(shrink, "cannot broadcast f32[2,3] to [3]");
  Node *wider = OP1(OP_BROADCAST, V("f32[4]"));
  LIST(wider, 0, 1);  /* broadcasting would give [4], not the target [1] */
  ERR(wider, "cannot broadcast f32[4] to [1]");
}
END_TEST

START_TEST(slice) {
  Node *s = OP1(OP_SLICE, V("f32[4,10]"));
  LIST(s, 0, 0, 1);
  LIST(s, 1, 4, 10);
  LIST(s, 2, 1, 3);
  OK(s, "f32[4,3]");  /* 1,4,7 */
  Node *one = OP1(OP_SLICE, V("i32[4,10]"));
  LIST(one, 0, 2, 9);
  LIST(one, 1, 3, 10);
  LIST(one, 2, 1, 100);
  OK(one, "i32[1,1]");
  Node *bad = OP1(OP_SLICE, V("f32[4,5]"));
  LIST(bad, 0, 0, 0);
  LIST(bad, 1, 4, 10);
  LIST(bad, 2, 1, 1);
  ERR(bad, "slice 0:10 is out of range for dimension 1 of f32[4,5]");
  Node *empty = OP1(OP_SLICE, V("f32[4]"));
  LIST(empty, 0, 2);
  LIST(empty, 1, 2);
  LIST(empty, 2, 1);
  ERR(empty, "slice 2:2 is empty for dimension 0 of f32[4]");
  Node *step = OP1(OP_SLICE, V("f32[4]"));
  LIST(step, 0, 0);
  LIST(step, 1, 4);
  LIST(step, 2, 0);
  ERR(step, "slice step 0 must be at least 1 for dimension 0 of f32[4]");
  Node *count = OP1(OP_SLICE, V("f32[4,5]"));
  LIST(count, 0, 0, 0);
  LIST(count, 1, 4);
  LIST(count, 2, 1, 1);
  ERR(count, "'slice' of f32[4,5] needs 2 end values, got 1");
}
END_TEST

START_TEST(concat) {
  Node *a = V("f32[2,3]"), *b = V("f32[2,4]"), *c = V("f32[2,1]");
  Node *n = op(OP_CONCAT, 3, a, b, c);
  n->attr[0].i = -1;
  OK(n, "f32[2,8]");
  ck_assert_int_eq(n->attr[0].i, 1);
  Node *single = op(OP_CONCAT, 1, a);
  OK(single, "f32[2,3]");
  Node *rows = op(OP_CONCAT, 2, a, V("f32[5,3]"));
  OK(rows, "f32[7,3]");
  Node *bad = op(OP_CONCAT, 2, a, V("f32[2,4,1]"));
  bad->attr[0].i = 1;
  ERR(bad, "cannot concat f32[2,3] and f32[2,4,1] on axis 1");
  Node *off = op(OP_CONCAT, 2, a, V("f32[3,3]"));
  off->attr[0].i = 1;
  ERR(off, "cannot concat f32[2,3] and f32[3,3] on axis 1");
  Node *mix = op(OP_CONCAT, 2, a, V("i32[2,3]"));
  ERR(mix, "cannot concat f32[2,3] and i32[2,3]: no implicit conversion between f32 and i32");
  Node *ax = op(OP_CONCAT, 2, a, b);
  ax->attr[0].i = 2;
  ERR(ax, "axis 2 is out of range for f32[2,3]");
  ERR(op(OP_CONCAT, 0), "'concat' needs at least one operand");
  ERR(op(OP_CONCAT, 1, V("f32[]")), "cannot concat scalar f32[]");
}
END_TEST

START_TEST(one_hot_gather) {
  Node *o = OP1(OP_ONE_HOT, V("i32[8]"));
  o->attr[0].i = 10;
  OK(o, "f32[8,10]");
  Node *f = OP1(OP_ONE_HOT, V("f32[8]"));
  f->attr[0].i = 10;
  ERR(f, "'one_hot' needs i32 indices, got f32[8]");
  Node *z = OP1(OP_ONE_HOT, V("i32[8]"));
  ERR(z, "'one_hot' depth must be at least 1, got 0");
  Node *deep = OP1(OP_ONE_HOT, V("i32[1,1,1,1,1,1,1,1]"));
  deep->attr[0].i = 2;
  ERR(deep, "result of 'one_hot' would have rank 9, more than 8");

  Node *table = V("f32[1000,64]");
  OK(OP2(OP_GATHER, table, V("i32[8,20]")), "f32[8,20,64]");
  OK(OP2(OP_GATHER, V("f32[10]"), V("i32[]")), "f32[]");
  ERR(OP2(OP_GATHER, table, V("f32[8]")), "'gather' indices must be i32, got f32[8]");
  ERR(OP2(OP_GATHER, V("i32[10,4]"), V("i32[8]")), "'gather' table must be f32 of rank >= 1, got i32[10,4]");
  ERR(OP2(OP_GATHER, V("f32[]"), V("i32[8]")), "'gather' table must be f32 of rank >= 1, got f32[]");
}
END_TEST

/* ---------------------------------------------------------- convolution */

static Node *conv(const char *x, const char *w, int64_t sh, int64_t sw, int64_t ph, int64_t pw) {
  Node *n = OP2(OP_CONV2D, V(x), V(w));
  LIST(n, 0, sh, sw);
  LIST(n, 1, ph, pw);
  return n;
}

START_TEST(conv2d) {
  OK(conv("f32[8,3,32,32]", "f32[16,3,5,5]", 1, 1, 0, 0), "f32[8,16,28,28]");
  OK(conv("f32[8,3,32,32]", "f32[16,3,3,3]", 1, 1, 1, 1), "f32[8,16,32,32]");
  OK(conv("f32[8,3,32,32]", "f32[16,3,3,3]", 2, 2, 1, 1), "f32[8,16,16,16]");
  OK(conv("f32[1,1,7,9]", "f32[4,1,3,2]", 2, 3, 0, 1), "f32[1,4,3,4]");
  OK(conv("f32[1,1,2,2]", "f32[1,1,4,4]", 1, 1, 1, 1), "f32[1,1,1,1]");
  ERR(conv("f32[8,3,32,32]", "f32[16,1,5,5]", 1, 1, 0, 0),
      "conv2d input f32[8,3,32,32] has 3 channels but weight f32[16,1,5,5] expects 1");
  ERR(conv("f32[8,3,2,2]", "f32[16,3,5,5]", 1, 1, 0, 0),
      "conv2d weight f32[16,3,5,5] does not fit input f32[8,3,2,2] with pad [0,0]");
  ERR(conv("f32[3,32,32]", "f32[16,3,5,5]", 1, 1, 0, 0),
      "conv2d input must be f32[N,C,H,W], got f32[3,32,32]");
  ERR(conv("f32[8,3,32,32]", "f32[16,3,5]", 1, 1, 0, 0),
      "conv2d weight must be f32[Cout,Cin,kh,kw], got f32[16,3,5]");
  ERR(conv("f32[8,3,32,32]", "f32[16,3,5,5]", 0, 1, 0, 0),
      "'conv2d' stride must be two integers >= 1, got [0,1]");
  ERR(conv("f32[8,3,32,32]", "f32[16,3,5,5]", 1, 1, -1, 0),
      "'conv2d' pad must be two integers >= 0, got [-1,0]");
  ERR(conv("f32[8,3,32,32]", "f32[16,3,5,5]", 1, 1, 0, INT64_MAX),
      "'conv2d' pad [0,9223372036854775807] is too large");
  ERR(conv("f32[1,1,4,4]", "f32[1,1,1,1]", 1, 1, 30000, 30000),
      "tensor f32[1,1,60004,60004] has more than 2^31 elements");
}
END_TEST

static Node *pool(Op o, const char *x, int64_t kh, int64_t kw, int64_t sh, int64_t sw) {
  Node *n = OP1(o, V(x));
  LIST(n, 0, kh, kw);
  LIST(n, 1, sh, sw);
  return n;
}

START_TEST(pool2d) {
  OK(pool(OP_MAX_POOL2D, "f32[8,16,28,28]", 2, 2, 2, 2), "f32[8,16,14,14]");
  OK(pool(OP_AVG_POOL2D, "f32[8,16,7,7]", 2, 2, 2, 2), "f32[8,16,3,3]");
  OK(pool(OP_AVG_POOL2D, "f32[1,1,5,6]", 3, 2, 1, 2), "f32[1,1,3,3]");
  ERR(pool(OP_MAX_POOL2D, "f32[1,1,3,3]", 5, 5, 1, 1),
      "'max_pool2d' kernel [5,5] does not fit input f32[1,1,3,3]");
  ERR(pool(OP_AVG_POOL2D, "f32[1,3,3]", 2, 2, 2, 2), "'avg_pool2d' needs f32[N,C,H,W], got f32[1,3,3]");
  ERR(pool(OP_MAX_POOL2D, "f32[1,1,3,3]", 0, 2, 2, 2), "'max_pool2d' kernel must be two integers >= 1, got [0,2]");
  ERR(pool(OP_MAX_POOL2D, "f32[1,1,3,3]", 2, 2, 2, 0), "'max_pool2d' stride must be two integers >= 1, got [2,0]");
}
END_TEST

/* -------------------------------------------------------- normalization */

static Node *bn(const char *x, const char *g_, const char *b_, const char *m, const char *v) {
  Node *n = op(OP_BATCH_NORM, 5, V(x), V(g_), V(b_), V(m), V(v));
  n->attr[0].f = 0.1;
  n->attr[1].f = 1e-5;
  return n;
}

START_TEST(batch_norm) {
  OK(bn("f32[8,16]", "f32[16]", "f32[16]", "f32[16]", "f32[16]"), "f32[8,16]");
  OK(bn("f32[8,3,4,4]", "f32[3]", "f32[3]", "f32[3]", "f32[3]"), "f32[8,3,4,4]");
  ERR(bn("f32[8,16,4,4]", "f32[8]", "f32[16]", "f32[16]", "f32[16]"),
      "'batch_norm' gamma must be f32[16] for input f32[8,16,4,4], got f32[8]");
  ERR(bn("f32[8,16]", "f32[16]", "f32[16]", "f32[16]", "i32[16]"),
      "'batch_norm' var must be f32[16] for input f32[8,16], got i32[16]");
  ERR(bn("f32[8,16,4]", "f32[16]", "f32[16]", "f32[16]", "f32[16]"),
      "'batch_norm' needs f32[N,C] or f32[N,C,H,W], got f32[8,16,4]");
  Node *m = bn("f32[8,16]", "f32[16]", "f32[16]", "f32[16]", "f32[16]");
  m->attr[0].f = 1.5;
  ERR(m, "'batch_norm' momentum must be in [0, 1], got 1.5");
  Node *e = bn("f32[8,16]", "f32[16]", "f32[16]", "f32[16]", "f32[16]");
  e->attr[1].f = 0;
  ERR(e, "'batch_norm' eps must be positive, got 0");
}
END_TEST

START_TEST(layer_norm_dropout) {
  Node *l = op(OP_LAYER_NORM, 3, V("f32[4,6,10]"), V("f32[10]"), V("f32[10]"));
  l->attr[0].f = 1e-5;
  OK(l, "f32[4,6,10]");
  Node *bad = op(OP_LAYER_NORM, 3, V("f32[4,10]"), V("f32[10]"), V("f32[4]"));
  bad->attr[0].f = 1e-5;
  ERR(bad, "'layer_norm' beta must be f32[10] for input f32[4,10], got f32[4]");
  Node *eps = op(OP_LAYER_NORM, 3, V("f32[4,10]"), V("f32[10]"), V("f32[10]"));
  eps->attr[0].f = -1;
  ERR(eps, "'layer_norm' eps must be positive, got -1");
  ERR(op(OP_LAYER_NORM, 3, V("f32[]"), V("f32[1]"), V("f32[1]")),
      "'layer_norm' needs f32 of rank >= 1, got f32[]");

  Node *d = OP1(OP_DROPOUT, V("f32[4,10]"));
  d->attr[0].f = 0.5;
  OK(d, "f32[4,10]");
  Node *p1 = OP1(OP_DROPOUT, V("f32[4,10]"));
  p1->attr[0].f = 1;
  ERR(p1, "'dropout' p must be in [0, 1), got 1");
  Node *di = OP1(OP_DROPOUT, V("i32[4]"));
  ERR(di, "'dropout' needs f32, got i32[4]");
}
END_TEST

/* --------------------------------------------------------------- losses */

START_TEST(pair_losses) {
  static const Op ops[] = {OP_MSE, OP_HUBER, OP_BCE};
  for (int k = 0; k < 3; k++) {
    Node *n = OP2(ops[k], V("f32[64,1]"), V("f32[64,1]"));
    n->attr[0].f = 1;
    OK(n, "f32[]");
    Node *bad = OP2(ops[k], V("f32[64,1]"), V("f32[64]"));
    bad->attr[0].f = 1;
    char msg[96];
    snprintf(msg, sizeof msg, "'%s' needs equal shapes, got f32[64,1] and f32[64]",
             op_info(ops[k])->name);
    ERR(bad, msg);
  }
  Node *h = OP2(OP_HUBER, V("f32[3]"), V("f32[3]"));
  ERR(h, "'huber' delta must be positive, got 0");
  ERR(OP2(OP_MSE, V("f32[3]"), V("i32[3]")), "'mse' needs f32, got i32[3]");
}
END_TEST

START_TEST(class_losses) {
  OK(OP2(OP_CROSS_ENTROPY, V("f32[64,10]"), V("i32[64]")), "f32[]");
  OK(OP2(OP_NLL, V("f32[4,7,10]"), V("i32[4,7]")), "f32[]");
  OK(OP2(OP_NLL, V("f32[10]"), V("i32[]")), "f32[]");
  ERR(OP2(OP_CROSS_ENTROPY, V("f32[64,10]"), V("i32[32]")),
      "'cross_entropy' labels must be i32[64] for logits f32[64,10], got i32[32]");
  ERR(OP2(OP_NLL, V("f32[64,10]"), V("f32[64]")),
      "'nll' labels must be i32[64] for logits f32[64,10], got f32[64]");
  ERR(OP2(OP_CROSS_ENTROPY, V("f32[]"), V("i32[]")),
      "'cross_entropy' needs f32 logits of rank >= 1, got f32[]");
}
END_TEST

/* -------------------------------------------------------- cross-cutting */

START_TEST(poison_is_silent) {
  Node *x = V("f32[2,0]");
  ERR(x, "has a dimension smaller than 1");
  int before = diag.n_errors;
  /* every op over a poisoned operand fails quietly */
  Node *e = OP1(OP_EXP, x);
  ck_assert(!ir_infer(e, &diag));
  Node *a = OP2(OP_ADD, e, V("i32[9]"));
  ck_assert(!ir_infer(a, &diag));
  Node *m = OP2(OP_MATMUL, V("f32[3]"), a);
  ck_assert(!ir_infer(m, &diag));
  Node *c = op(OP_CONCAT, 2, V("f32[2]"), m);
  ck_assert(!ir_infer(c, &diag));
  ck_assert_int_eq(c->type.dtype, DT_ERR);
  ck_assert_int_eq(diag.n_errors, before);
}
END_TEST

START_TEST(arity_and_limits) {
  ERR(op(OP_ADD, 1, V("f32[2]")), "'add' takes 2 operands, got 1");
  ERR(op(OP_EXP, 2, V("f32[2]"), V("f32[2]")), "'exp' takes 1 operand, got 2");
  /* two legal operands whose broadcast is too big */
  ERR(OP2(OP_MUL, V("f32[65536,1]"), V("f32[1,65536]")),
      "tensor f32[65536,65536] has more than 2^31 elements");
  /* an operand typed by hand and never checked is caught, not trusted */
  ERR(OP1(OP_EXP, V("f32[3,0]")), "tensor f32[3,0] has a dimension smaller than 1");
}
END_TEST

START_TEST(null_diag) {
  Node *n = OP2(OP_ADD, V("f32[2]"), V("f32[3]"));
  ck_assert(!ir_infer(n, NULL));
  ck_assert_int_eq(n->type.dtype, DT_ERR);
  Node *ok = OP2(OP_ADD, V("f32[2]"), V("f32[1]"));
  ck_assert(ir_infer(ok, NULL));
}
END_TEST

/* ----------------------------------------------------------------- main */

static Suite *infer_suite(void) {
  Suite *s = suite_create("infer");
  TCase *tc = tcase_create("ops");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, broadcast_rules);
  tcase_add_test(tc, leaves);
  tcase_add_test(tc, unary_ops);
  tcase_add_test(tc, clamp_bounds);
  tcase_add_test(tc, cast);
  tcase_add_test(tc, binary_ops);
  tcase_add_test(tc, compare_ops);
  tcase_add_test(tc, where_op);
  tcase_add_test(tc, matmul);
  tcase_add_test(tc, reductions);
  tcase_add_test(tc, argmax_softmax);
  tcase_add_test(tc, reshape);
  tcase_add_test(tc, transpose);
  tcase_add_test(tc, broadcast_op);
  tcase_add_test(tc, slice);
  tcase_add_test(tc, concat);
  tcase_add_test(tc, one_hot_gather);
  tcase_add_test(tc, conv2d);
  tcase_add_test(tc, pool2d);
  tcase_add_test(tc, batch_norm);
  tcase_add_test(tc, layer_norm_dropout);
  tcase_add_test(tc, pair_losses);
  tcase_add_test(tc, class_losses);
  tcase_add_test(tc, poison_is_silent);
  tcase_add_test(tc, arity_and_limits);
  tcase_add_test(tc, null_diag);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(infer_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
