/* nncc.c - the command-line driver (SPEC §3).
 *
 *   nncc check FILE.nn                      diagnostics only, exit 0/1
 *   nncc FILE.nn --emit=STAGE [-o OUT]       a stage of the compiler (stages[])
 *   nncc FILE.nn --print-after=PASS | --print-after-all | --time-passes
 *
 * Exit codes: 0 ok, 1 compile error, 2 usage error, 3 run-time error.
 * The driver owns the one arena of the compilation and the Diag; library
 * code never exits. */
#include "codegen/codegen.h"
#include "eval/eval.h"
#include "ir/layout.h"
#include "frontend/frontend.h"
#include "passes/passes.h"
#include "tools/driver.h"
#include "runtime/outfile.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define EXIT_OK 0
#define EXIT_COMPILE 1
#define EXIT_USAGE 2
#define EXIT_RUNTIME 3

static const char usage_text[] =
    "usage: nncc FILE.nn -o out.so [--model NAME] [-D NAME=VALUE]... [-O0|-O1|-O2|-O3]\n"
    "                    [--header out.h] [--target-cpu CPU|native]\n"
    "       nncc FILE.nn --emit=STAGES [-o OUT]\n"
    "       nncc FILE.nn --print-after=PASS | --print-after-all | --time-passes\n"
    "       (any command) [--remarks=fusion] [--no-fuse] [--input-grads | --no-input-grads]\n"
    "       nncc check FILE.nn\n"
    "       nncc train FILE.nn [--epochs N] [--seed S] [--threads N] [--save CKPT [--save-every N]]\n"
    "                          [--resume CKPT | --init-from CKPT] [--log metrics.csv] [--check-numerics] [--quiet]\n"
    "       nncc eval FILE.nn --load CKPT | --load-weights CKPT\n"
    "       nncc gradcheck FILE.nn [--model NAME] [--seed S] [--hvp | --jit]\n"
    "       nncc bench FILE.nn\n"
    "       nncc --version | --help | CMD --help (the options of one command)\n";

static void print_stage_names(FILE *out, const char *sep);

/* usage_text with the --emit stages of stages[] in place of STAGES. */
static void print_usage(void) {
  const char *at = strstr(usage_text, "STAGES");
  fwrite(usage_text, 1, (size_t)(at - usage_text), stdout);
  print_stage_names(stdout, "|");
  fputs(at + 6, stdout);
}

/* Which commands take an option: `nncc CMD --help` lists them, and an
 * option the command does not use is a usage error (it would be ignored,
 * silently). */
enum {
  CMD_COMPILE = 1, CMD_CHECK = 2, CMD_TRAIN = 4, CMD_EVAL = 8, CMD_GRADCHECK = 16, CMD_BENCH = 32,
  CMD_ALL = 63, CMD_RUNS = CMD_TRAIN | CMD_EVAL | CMD_BENCH,  /* JIT-compile and run a model */
  CMD_CODEGEN = CMD_COMPILE | CMD_RUNS | CMD_GRADCHECK,
};

typedef struct OptionInfo {
  const char *name, *arg;  /* arg: the value's name, NULL for a flag */
  unsigned commands;
  const char *help;
} OptionInfo;

static const OptionInfo option_table[] = {
    {"-o", "OUT", CMD_COMPILE, "write a shared library (or the --emit stage) to OUT"},
    {"--header", "FILE.h", CMD_COMPILE, "with -o: also a C header naming every tensor"},
    {"--prefix", "P", CMD_COMPILE, "with -o: the library's entry point is P_module (a C identifier)"},
    {"--emit", "STAGE", CMD_COMPILE, "print a stage:"},  /* + the names of stages[] */
    {"--print-after", "PASS", CMD_COMPILE | CMD_CHECK, "print the IR after PASS"},
    {"--print-after-all", NULL, CMD_COMPILE | CMD_CHECK, "print the IR after every pass"},
    {"--time-passes", NULL, CMD_COMPILE | CMD_CHECK, "time each pass"},
    {"--verify-each", NULL, CMD_ALL, "verify the IR after every pass"},
    {"--model", "NAME", CMD_ALL, "the model to use (default: the first with a train block, or the first)"},
    {"-D", "NAME=VALUE", CMD_ALL, "override a const of the program"},
    {"-O", "0|1|2|3", CMD_CODEGEN, "LLVM optimization level (default 2), as -O0 .. -O3"},
    {"--target-cpu", "CPU", CMD_CODEGEN, "generate code for CPU (default: the host; 'native')"},
    {"--remarks", "fusion", CMD_CODEGEN, "one line per fusion decision on stderr"},
    {"--no-fuse", NULL, CMD_CODEGEN, "compile without operator fusion"},
    {"--input-grads", NULL, CMD_CODEGEN, "compute d loss / d input (a .so's default)"},
    {"--no-input-grads", NULL, CMD_CODEGEN, "leave out d loss / d input (train, eval, bench's default)"},
    {"--epochs", "N", CMD_TRAIN, "train N epochs (default: the train block's)"},
    {"--seed", "S", CMD_TRAIN | CMD_EVAL | CMD_GRADCHECK, "the seed of initialization, shuffling and dropout"},
    {"--threads", "N", CMD_RUNS, "threads (1..1024; default NNCC_THREADS, else every CPU this process may use)"},
    {"--save", "CKPT", CMD_TRAIN, "write a checkpoint at the end of every epoch"},
    {"--save-every", "N", CMD_TRAIN, "with --save: also every N steps"},
    {"--resume", "CKPT", CMD_TRAIN, "continue the run of CKPT to its planned end"},
    {"--init-from", "CKPT", CMD_TRAIN, "start a new run from CKPT's weights (optimizer state fresh)"},
    {"--log", "FILE.csv", CMD_TRAIN, "a CSV row per epoch, on disk after each epoch"},
    {"--check-numerics", NULL, CMD_TRAIN, "check every op for nan/inf; name the first that makes one"},
    {"--quiet", NULL, CMD_RUNS, "no progress output"},
    {"--load", "CKPT", CMD_EVAL, "the checkpoint to evaluate"},
    {"--load-weights", "CKPT", CMD_EVAL, "evaluate the weights of a checkpoint of another graph"},
    {"--hvp", NULL, CMD_GRADCHECK, "check a Hessian-vector product (grad of grad)"},
    {"--jit", NULL, CMD_GRADCHECK, "check the compiled model's float32 gradients"},
};
#define N_OPTIONS ((int)(sizeof option_table / sizeof option_table[0]))

/* The commands, indexed by the position of their CMD_ bit. */
static const char *const command_names[] = {"compile", "check", "train", "eval", "gradcheck", "bench"};
#define N_COMMANDS ((int)(sizeof command_names / sizeof command_names[0]))

static unsigned command_bit(const char *command) {
  for (int i = 0; i < N_COMMANDS; i++)
    if (!strcmp(command, command_names[i])) return 1u << i;
  return 0;
}

static const char *const command_usage[][2] = {
    {"compile", "nncc FILE.nn -o out.so [--header out.h] [--prefix P] | --emit=STAGE [-o OUT]\n"
                "  compile a model to a shared library, or print a stage of the compiler"},
    {"check", "nncc check FILE.nn\n  parse, elaborate, infer shapes, verify: diagnostics only, exit 0 or 1"},
    {"train", "nncc train FILE.nn [--epochs N] [--save CKPT] [--resume CKPT] [--log FILE.csv] ...\n"
              "  JIT-compile the model and train it with its train block"},
    {"eval", "nncc eval FILE.nn --load CKPT\n  evaluation-mode loss and accuracy of a checkpoint over the "
             "eval data (every sample)"},
    {"gradcheck", "nncc gradcheck FILE.nn [--hvp | --jit]\n  every parameter gradient against float64 finite "
                  "differences"},
    {"bench", "nncc bench FILE.nn\n  time forward and train_step of the compiled model"},
};

static void print_command_help(const char *command) {
  unsigned bit = command_bit(command);
  for (size_t i = 0; i < sizeof command_usage / sizeof command_usage[0]; i++)
    if (!strcmp(command_usage[i][0], command)) printf("usage: %s\n\noptions:\n", command_usage[i][1]);
  for (int i = 0; i < N_OPTIONS; i++) {
    const OptionInfo *op = &option_table[i];
    if (!(op->commands & bit)) continue;
    char left[48];
    snprintf(left, sizeof left, "%s%s%s", op->name, op->arg ? (op->name[1] == '-' ? " " : "") : "",
             op->arg ? op->arg : "");
    printf("  %-24s %s", left, op->help);
    if (!strcmp(op->name, "--emit")) {
      fputc(' ', stdout);
      print_stage_names(stdout, " ");
    }
    fputc('\n', stdout);
  }
  printf("\nexit codes: 0 ok, 1 compile error, 2 usage error, 3 run-time error\n");
}

typedef struct Options {
  const char *command;     /* "compile", "check", "train", ... (for messages) */
  unsigned cmd;            /* its CMD_ bit: what the driver tests */
  const char *file;
  const char *emit;
  const char *out;
  const char *model;
  const char *print_after;
  bool print_after_all, time_passes, verify_each, no_fuse;
  int input_grads;         /* --input-grads 1, --no-input-grads 0, -1 the command's default */
  unsigned remarks;        /* DIAG_REMARK_* */
  /* options of code generation and training (SPEC §3), parsed now so that
   * the documented command lines are accepted */
  const char *header, *target_cpu, *prefix, *save, *resume, *load, *log;
  int opt_level, threads;
  long long epochs, seed;
  bool quiet, hvp, jit;     /* jit: gradcheck the compiled model */
  const char *init_from, *load_weights;
  long long save_every;
  bool check_numerics, help;
  unsigned char seen[N_OPTIONS];  /* option_table entries given */
  ConstOverride overrides[64];
  int n_overrides;
} Options;

/* Records that option `name` (as in option_table) was given. */
static void mark_option(Options *o, const char *name) {
  for (int i = 0; i < N_OPTIONS; i++)
    if (!strcmp(option_table[i].name, name)) o->seen[i] = 1;
}

static int usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "nncc: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'nncc --help' for usage)\n");
  return EXIT_USAGE;
}

/* -D NAME=VALUE (nncc_parse_define): a malformed one is a usage error. */
static int parse_define(Options *o, const char *arg) {
  if (o->n_overrides == 64) return usage_error("too many -D options (at most 64)%s", "");
  ConstOverride *ov = &o->overrides[o->n_overrides];
  char msg[512];
  size_t name_len;
  if (!nncc_parse_define(arg, ov, &name_len, msg, sizeof msg)) return usage_error("%s", msg);
  ov->name = strndup(arg, name_len);
  o->n_overrides++;
  return 0;
}

/* Options that take a value, as "--opt VALUE" or "--opt=VALUE". */
static const char *const value_options[] = {
    "-o", "--model", "--header", "--target-cpu", "--prefix", "--epochs", "--seed",
    "--threads", "--save-every", "--save", "--resume", "--log", "--load-weights", "--load", "--init-from"};

static int set_value_option(Options *o, const char *opt, const char *v) {
  char *end;
  if (!strcmp(opt, "-o")) o->out = v;
  else if (!strcmp(opt, "--model")) o->model = v;
  else if (!strcmp(opt, "--header")) o->header = v;
  else if (!strcmp(opt, "--target-cpu")) o->target_cpu = v;
  else if (!strcmp(opt, "--prefix")) o->prefix = v;
  else if (!strcmp(opt, "--save")) o->save = v;
  else if (!strcmp(opt, "--resume")) o->resume = v;
  else if (!strcmp(opt, "--log")) o->log = v;
  else if (!strcmp(opt, "--load")) o->load = v;
  else if (!strcmp(opt, "--load-weights")) o->load_weights = v;
  else if (!strcmp(opt, "--init-from")) o->init_from = v;
  else {  /* integers */
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || errno || n < 0) {
      fprintf(stderr, "nncc: error: %s needs a non-negative integer, got '%s'\n", opt, v);
      return EXIT_USAGE;
    }
    if (!strcmp(opt, "--epochs")) {
      if (n < 1) return usage_error("--epochs must be >= 1, got %s", v);
      o->epochs = n;
    } else if (!strcmp(opt, "--seed")) {
      o->seed = n;
    } else if (!strcmp(opt, "--save-every")) {
      if (n < 1) return usage_error("--save-every must be >= 1, got %s", v);
      o->save_every = n;
    } else {
      if (n < 1 || n > 1024) return usage_error("--threads must be in 1..1024, got %s", v);
      o->threads = (int)n;
    }
  }
  return 0;
}

/* The command is the first word that is not an option (so -D may come
 * before it, SPEC §6); without one, the first word is the input file. */
static int parse_args(int argc, char **argv, Options *o) {
  o->command = "compile";
  o->cmd = CMD_COMPILE;
  o->opt_level = 2;
  o->seed = -1;
  bool seen_positional = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (a[0] != '-' || !a[1]) {
      if (!seen_positional)
        if (command_bit(a) > CMD_COMPILE) {  /* "compile" is no command word */
          o->command = a;
          o->cmd = command_bit(a);
          a = NULL;
        }
      seen_positional = true;
      if (!a) continue;
      if (o->file) return usage_error("more than one input file ('%s')", a);
      o->file = a;
      continue;
    }
    bool matched = false;
    for (size_t k = 0; k < sizeof value_options / sizeof value_options[0]; k++) {
      const char *opt = value_options[k];
      size_t len = strlen(opt);
      if (strncmp(a, opt, len)) continue;
      if (a[len] == '=') {
        mark_option(o, opt);
        if (set_value_option(o, opt, a + len + 1)) return EXIT_USAGE;
      } else if (!a[len]) {
        if (i + 1 >= argc) return usage_error("option '%s' needs a value", opt);
        mark_option(o, opt);
        if (set_value_option(o, opt, argv[++i])) return EXIT_USAGE;
      } else {
        continue;
      }
      matched = true;
      break;
    }
    if (matched) continue;
    if (!strcmp(a, "-D")) {
      if (i + 1 >= argc) return usage_error("option '%s' needs NAME=VALUE", a);
      mark_option(o, "-D");
      if (parse_define(o, argv[++i])) return EXIT_USAGE;
    } else if (!strncmp(a, "-D", 2)) {
      mark_option(o, "-D");
      if (parse_define(o, a + 2)) return EXIT_USAGE;
    } else if (a[1] == 'O' && a[2] >= '0' && a[2] <= '3' && !a[3]) {
      o->opt_level = a[2] - '0';
      mark_option(o, "-O");
    } else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      o->help = true;
    } else if (!strcmp(a, "--check-numerics")) {
      o->check_numerics = true;
      mark_option(o, a);
    } else if (!strcmp(a, "--quiet")) {
      o->quiet = true;
      mark_option(o, a);
    } else if (!strcmp(a, "--hvp")) {
      o->hvp = true;
      mark_option(o, a);
    } else if (!strcmp(a, "--jit")) {
      o->jit = true;
      mark_option(o, a);
    } else if (!strncmp(a, "--emit=", 7)) {
      o->emit = a + 7;
      mark_option(o, "--emit");
    } else if (!strncmp(a, "--print-after=", 14)) {
      o->print_after = a + 14;
      mark_option(o, "--print-after");
    } else if (!strcmp(a, "--print-after-all")) {
      o->print_after_all = true;
      mark_option(o, a);
    } else if (!strcmp(a, "--time-passes")) {
      o->time_passes = true;
      mark_option(o, a);
    } else if (!strcmp(a, "--verify-each")) {
      o->verify_each = true;
      mark_option(o, a);
    } else if (!strcmp(a, "--no-fuse")) {
      o->no_fuse = true;
      mark_option(o, a);
    } else if (!strcmp(a, "--input-grads") || !strcmp(a, "--no-input-grads")) {
      o->input_grads = a[2] == 'i';
      mark_option(o, a);
    } else if (!strncmp(a, "--remarks=", 10)) {
      if (strcmp(a + 10, "fusion")) return usage_error("unknown remark kind '%s' (known: fusion)", a + 10);
      o->remarks |= DIAG_REMARK_FUSION;
      mark_option(o, "--remarks");
    } else {
      return usage_error("unknown option '%s'", a);
    }
  }
  return 0;
}

/* Reads the whole file; a directory, an unreadable or a huge file is
 * "cannot read 'FILE': reason". */
static char *read_source(const char *path, size_t *len) {
  char why[256];
  char *src = nncc_read_source(path, len, why);
  if (!src) fprintf(stderr, "nncc: error: cannot read '%s': %s\n", path, why);
  return src;
}

/* --emit=params: every param and state with shape and initializer. */
static void print_params(FILE *out, const Graph *g) {
  int64_t total = 0;
  int count = 0;
  size_t width = 4;
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op == OP_VAR && (n->roles & (ROLE_PARAM | ROLE_STATE)) && strlen(n->name) > width)
      width = strlen(n->name);
  }
  fprintf(out, "# model %s\n%-*s  %-5s  %-18s  %-24s  %s\n", g->name, (int)width, "name", "role",
          "type", "init", "elements");
  for (int i = 0; i < g->n_nodes; i++) {
    const Node *n = g->nodes[i];
    if (n->op != OP_VAR || !(n->roles & (ROLE_PARAM | ROLE_STATE))) continue;
    char ts[TYPE_STR_MAX], init[96];
    int k = snprintf(init, sizeof init, "%s(", init_name(n->init));
    for (int a = 0; a < init_nargs(n->init); a++)
      k += snprintf(init + k, sizeof init - (size_t)k, a ? ", %g" : "%g", n->init_arg[a]);
    snprintf(init + k, sizeof init - (size_t)k, ")");
    int64_t numel = type_numel(&n->type);
    fprintf(out, "%-*s  %-5s  %-18s  %-24s  %lld\n", (int)width, n->name,
            n->roles & ROLE_PARAM ? "param" : "state", type_str(&n->type, ts, sizeof ts), init,
            (long long)numel);
    if (n->roles & ROLE_PARAM) {
      total += numel;
      count++;
    }
  }
  fprintf(out, "# %d param tensors, %lld trainable values\n", count, (long long)total);
}

/* --emit ... -o OUT: written by the output rules (runtime/outfile.h): a
 * temporary renamed into place, a device or FIFO written in place, a
 * symlink's target replaced; a failed run leaves OUT as it was. */
typedef struct Output {
  FILE *f;
  rt_outfile file;  /* unused for stdout */
  NnccCleanup undo; /* out of memory while printing unwinds (ir.h): discard the file then */
} Output;

static void discard_output(void *arg) {
  rt_out_abort(&((Output *)arg)->file);
}

static FILE *open_output(const char *path, Output *o) {
  memset(o, 0, sizeof *o);
  if (!path || !strcmp(path, "-")) return o->f = stdout;
  char err[512];
  if (rt_out_open(&o->file, path, 0666, err, sizeof err)) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return NULL;
  }
  nncc_cleanup_push(&o->undo, discard_output, o);
  return o->f = o->file.f;
}

static int close_output(Output *o, bool ok) {
  if (o->f == stdout) {
    fflush(stdout);
    return 0;
  }
  nncc_cleanup_pop(&o->undo);
  if (!ok) {
    rt_out_abort(&o->file);
    return -1;
  }
  char err[512];
  if (rt_out_commit(&o->file, err, sizeof err)) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return -1;
  }
  return 0;
}

/* float32 tolerance of `gradcheck --jit`, relative to the largest
 * gradient of each tensor: f32 rounding and reassociated sums leave
 * errors around 1e-6..1e-4 of that scale, while a wrong rule or kernel is
 * off by O(1) (a factor, a sign, a missing term); the absolute floor
 * covers tensors whose gradients are all ~0, where only noise is left. */
#define JIT_GRAD_RTOL 1e-2
#define JIT_GRAD_ATOL 1e-5

/* nncc gradcheck: the training graph of the model (--model, or the
 * first with a loss) against finite differences; with --jit, the model
 * compiled by the whole pipeline (a second parse of src: m stopped
 * before autodiff, which the reference differentiates itself). */
static int run_gradcheck(const Options *o, Module *m, Diag *d, const char *src, size_t len,
                         const ElabOptions *eo) {
  Graph *g = NULL;
  for (int i = 0; i < m->n_graphs && !g; i++)
    if (m->graphs[i]->training && (!o->model || !strcmp(m->graphs[i]->model, o->model))) g = m->graphs[i];
  if (!g) {
    fprintf(stderr, "nncc: error: %s%s%s has no loss: there is no gradient to check\n",
            o->model ? "model '" : "'", o->model ? o->model : o->file, "'");
    return EXIT_COMPILE;
  }
  GradcheckOptions go = {.seed = o->seed >= 0 ? (uint64_t)o->seed : 1, .eps = 1e-6, .rtol = 1e-5,
                         .atol = 1e-8, .hvp = o->hvp, .out = stdout, .path = o->file, .diag = d,
                         .jit_rtol = JIT_GRAD_RTOL, .jit_atol = JIT_GRAD_ATOL};
  nncc_jit *jit = NULL;
  if (o->jit) {
    CgOptions co = {.opt_level = o->opt_level, .target_cpu = o->target_cpu};
    char *diagnostics = NULL;  /* the first compile printed the warnings already */
    jit = nncc_jit_from_source(o->file, src, len, eo, &co, &diagnostics);
    if (!jit || !(go.jit = nncc_jit_model(jit, g->model))) {
      if (diagnostics) fputs(diagnostics, stderr);
      free(diagnostics);
      nncc_jit_free(jit);
      return EXIT_COMPILE;
    }
    free(diagnostics);
  }
  int rc = eval_gradcheck(g, &go);
  nncc_jit_free(jit);
  return rc == 0 ? EXIT_OK : rc == 1 ? EXIT_COMPILE : EXIT_RUNTIME;
}

/* --emit=fused ends with what fusion did, per graph, as IR comments. */
static void print_fusion_summary(FILE *out, const Module *m) {
  fputc('\n', out);
  for (int i = 0; i < m->n_graphs; i++) {
    const Graph *g = m->graphs[i];
    bool *stored = ir_kernel_stores(g);
    int fused = 0, in_registers = 0, ops = 0;
    for (int k = 0; k < g->n_nodes; k++) {
      const Node *n = g->nodes[k];
      ops += n->op != OP_VAR && n->op != OP_CONST;
      fused += n->kernel != 0;
      in_registers += n->kernel && !stored[k];
    }
    fprintf(out, "# %s: %d kernels hold %d of %d ops; %d value%s stay%s in registers\n", g->name, g->n_kernels, fused,
            ops, in_registers, in_registers == 1 ? "" : "s", in_registers == 1 ? "s" : "");
    nncc_free(stored);
  }
}

/* ------------------------------------------------------ --emit stages */

/* What an emitter gets: the parse, the Module (NULL for ast) and its
 * output, opened on first use (stage_output) so that a stage which can
 * fail before it prints (llvm, asm) leaves -o OUT as it was. */
typedef struct EmitCtx {
  const Options *o;
  const Program *prog;
  Module *m;
  Output out;
  bool opened;
} EmitCtx;

static FILE *stage_output(EmitCtx *c) {
  if (!c->opened && !open_output(c->o->out, &c->out)) return NULL;
  c->opened = true;
  return c->out.f;
}

static bool emit_ast(EmitCtx *c) {
  FILE *out = stage_output(c);
  if (out) ast_print_program(out, c->prog);
  return out != NULL;
}

static bool emit_module(EmitCtx *c) {  /* ir, opt: the module's text */
  FILE *out = stage_output(c);
  if (out) ir_print_module(out, c->m);
  return out != NULL;
}

static bool emit_params(EmitCtx *c) {
  FILE *out = stage_output(c);
  for (int i = 0; out && i < c->m->n_graphs; i++) print_params(out, c->m->graphs[i]);
  return out != NULL;
}

static bool emit_grad(EmitCtx *c) {  /* the training graphs: forward + backward */
  FILE *out = stage_output(c);
  if (!out) return false;
  fputs("# nncc graph IR\n", out);
  bool first = true;
  for (int i = 0; i < c->m->n_graphs; i++)
    if (c->m->graphs[i]->training) {
      if (!first) fputc('\n', out);
      first = false;
      ir_print_graph(out, c->m->graphs[i]);
    }
  if (first) fputs("# no model has a loss: nothing to differentiate\n", out);
  return true;
}

static bool emit_fused(EmitCtx *c) {
  FILE *out = stage_output(c);
  if (!out) return false;
  ir_print_module(out, c->m);
  print_fusion_summary(out, c->m);
  return true;
}

static bool emit_dot(EmitCtx *c) {
  FILE *out = stage_output(c);
  if (out) ir_print_dot(out, c->m);
  return out != NULL;
}

static bool emit_memory(EmitCtx *c) {
  FILE *out = stage_output(c);
  if (out) ir_print_memory(out, c->m);
  return out != NULL;
}

/* llvm and asm: generated before the output is opened */
static bool emit_code_text(EmitCtx *c, CgText kind) {
  CgOptions co = {.opt_level = c->o->opt_level, .target_cpu = c->o->target_cpu};
  char err[1024] = "";
  char *text = cg_emit_text(c->m, &co, kind, err, sizeof err);
  if (!text) {
    fprintf(stderr, "nncc: error: code generation failed: %s\n", err);
    return false;
  }
  FILE *out = stage_output(c);
  if (out) fputs(text, out);
  free(text);
  return out != NULL;
}

static bool emit_llvm(EmitCtx *c) {  /* -O0 shows the IR as emitted; otherwise after the LLVM pipeline */
  return emit_code_text(c, c->o->opt_level == 0 ? CG_TEXT_LLVM_RAW : CG_TEXT_LLVM);
}

static bool emit_asm(EmitCtx *c) {
  return emit_code_text(c, CG_TEXT_ASM);
}

/* The stop_after of a stage shown before any pass runs. */
static const char AFTER_PARSE[] = "(the parse)";

/* Every --emit stage, in the order --help lists them: its name, the last
 * pass it shows (NULL: the whole pipeline; --print-after and
 * --print-after-all run the whole pipeline whatever the stage), and the
 * function that prints it. ir and params show the model as written. */
typedef struct Stage {
  const char *name;
  const char *stop_after;
  bool (*emit)(EmitCtx *c);
} Stage;

static const Stage stages[] = {
    {"ast", AFTER_PARSE, emit_ast},
    {"ir", "reach", emit_module},
    {"params", "reach", emit_params},
    {"grad", "autodiff", emit_grad},
    {"opt", "dce", emit_module},  /* optimized, before fusion */
    {"fused", NULL, emit_fused},
    {"dot", NULL, emit_dot},
    {"memory", NULL, emit_memory},
    {"llvm", NULL, emit_llvm},
    {"asm", NULL, emit_asm},
};
#define N_STAGES ((int)(sizeof stages / sizeof stages[0]))

static const Stage *stage_by_name(const char *name) {
  for (int i = 0; name && i < N_STAGES; i++)
    if (!strcmp(stages[i].name, name)) return &stages[i];
  return NULL;
}

/* The stage names, joined by sep (usage and --help). */
static void print_stage_names(FILE *out, const char *sep) {
  for (int i = 0; i < N_STAGES; i++) fprintf(out, "%s%s", i ? sep : "", stages[i].name);
}

/* What must hold of the command line before any file is read. */
static int check_options(const Options *o) {
  unsigned bit = o->cmd;
  for (int i = 0; i < N_OPTIONS; i++) {
    const OptionInfo *op = &option_table[i];
    if (!o->seen[i] || (op->commands & bit)) continue;
    char users[96] = "";
    for (int c = 0; c < N_COMMANDS; c++)
      if (op->commands & (1u << c))
        snprintf(users + strlen(users), sizeof users - strlen(users), "%s%s", users[0] ? ", " : "",
                 c ? command_names[c] : "nncc FILE.nn");
    if (bit == CMD_COMPILE)
      fprintf(stderr, "nncc: error: %s is not an option of compiling a file (it is one of: %s)\n"
              "(run 'nncc --help' for usage)\n", op->name, users);
    else
      fprintf(stderr, "nncc: error: %s is not an option of 'nncc %s' (it is one of: %s)\n"
              "(run 'nncc %s --help' for its options)\n", op->name, o->command, users, o->command);
    return EXIT_USAGE;
  }
  if (o->prefix) {  /* it names a C function: P_module */
    bool ok = (o->prefix[0] == '_' || (o->prefix[0] >= 'A' && o->prefix[0] <= 'Z') ||
               (o->prefix[0] >= 'a' && o->prefix[0] <= 'z'));
    for (const char *p = o->prefix; ok && *p; p++)
      ok = *p == '_' || (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9');
    if (!ok) return usage_error("--prefix '%s' is not a C identifier (letters, digits, '_'; not a digit first)",
                                o->prefix);
  }
  if ((o->header || o->prefix) && (!o->out || o->emit))
    return usage_error("--header and --prefix go with -o OUT.so (a shared library)%s", "");
  if (o->save_every && !o->save) return usage_error("--save-every needs --save CKPT%s", "");
  char cpu_msg[2048];  /* LLVM aborts on a cpu the host target lacks */
  if (!cg_target_cpu_check(o->target_cpu, cpu_msg, sizeof cpu_msg)) return usage_error("%s", cpu_msg);
  if (!o->file) return usage_error("no input file%s", "");
  if (o->jit && o->cmd != CMD_GRADCHECK)
    return usage_error("--jit is an option of gradcheck%s", "");
  if (o->jit && o->hvp)  /* grad of grad is a graph the reference evaluator runs, not the compiled model */
    return usage_error("--hvp checks the reference evaluator: it cannot be combined with --jit%s", "");
  if (o->cmd == CMD_COMPILE && !o->emit && !o->print_after && !o->print_after_all &&
      !o->time_passes && !o->out)
    return usage_error("nothing to do: give -o OUT, --emit=STAGE or a command such as 'check'%s", "");
  if (o->print_after && !pass_by_name(o->print_after))
    return usage_error("--print-after: unknown pass '%s' (see nncc --help)", o->print_after);
  if (o->emit && !stage_by_name(o->emit)) return usage_error("unknown --emit stage '%s'", o->emit);
  return 0;
}

/* The last pass this command line needs: check is the front end's
 * verdict (parse, types, verify: SPEC §3); gradcheck differentiates
 * itself; an --emit stage stops after the last pass it shows, unless
 * the passes are printed; NULL runs the whole pipeline. */
static const char *stop_after(const Options *o, const Stage *stage) {
  if (o->cmd == CMD_GRADCHECK) return "lower";
  if (o->print_after || o->print_after_all) return NULL;
  if (o->cmd == CMD_CHECK) return "reach";
  return stage ? stage->stop_after : NULL;
}

/* --emit=STAGE [-o OUT] */
static int emit_stage(const Stage *stage, const Options *o, const Program *prog, Module *m) {
  EmitCtx c = {.o = o, .prog = prog, .m = m};
  bool ok = stage->emit(&c);
  if (c.opened && close_output(&c.out, ok)) ok = false;
  return ok ? EXIT_OK : EXIT_COMPILE;
}

/* nncc FILE.nn -o model.so [--header model.h]: the runtime half comes
 * from the build tree, or from lib/nncc next to an installed nncc */
static int write_library(const Options *o, Module *m) {
  const char *rt = getenv("NNCC_RT_LIB") ? getenv("NNCC_RT_LIB") : NNCC_RT_LIB;
  CgLibrary lib = {.so_path = o->out, .header_path = o->header, .prefix = o->prefix,
                   .runtime_lib = rt, .source = o->file};
  CgOptions co = {.opt_level = o->opt_level, .target_cpu = o->target_cpu};
  char err[1024] = "";
  if (access(rt, R_OK) != 0) {
    fprintf(stderr, "nncc: error: cannot read the runtime library '%s' (set NNCC_RT_LIB)\n", rt);
    return EXIT_COMPILE;
  }
  if (cg_write_library(m, &co, &lib, err, sizeof err)) {
    fprintf(stderr, "nncc: error: %s\n", err);
    return EXIT_COMPILE;
  }
  return EXIT_OK;
}

/* train, eval, bench: JIT-compile the module and run it (run.c) */
static int run_command(const Options *o, Module *m, const char *src, size_t len, const ElabOptions *eo) {
  RunOptions ro = {.file = o->file, .model = o->model, .epochs = o->epochs, .seed = o->seed,
                   .save = o->save, .resume = o->resume, .load = o->load, .log = o->log,
                   .init_from = o->init_from, .load_weights = o->load_weights, .save_every = o->save_every,
                   .check_numerics = o->check_numerics, .quiet = o->quiet, .threads = o->threads,
                   .cg = {.opt_level = o->opt_level, .target_cpu = o->target_cpu,
                          .check_numerics = o->check_numerics, .source_name = o->file},
                   .src = src, .src_len = len, .eo = eo};
  if (o->cmd == CMD_TRAIN) return run_train(&ro, m);
  if (o->cmd == CMD_EVAL) return run_eval(&ro, m);
  return run_bench(&ro, m);
}

/* One compilation of the file's text in arena (compile_module), then
 * what the command asks for. Returns the exit code. */
static int run_file(const Options *o, Arena *arena, Diag *d, const char *src, size_t len, const ElabOptions *eo) {
  const Stage *stage = stage_by_name(o->emit);
  PassOptions po = {.print_after = o->print_after, .print_after_all = o->print_after_all,
                    .time_passes = o->time_passes, .verify_each = o->verify_each, .out = stdout,
                    .no_fuse = o->no_fuse, .stop_after = stop_after(o, stage)};
  d->remarks = o->remarks;
  /* d loss / d input: the ABI's grad() of an input (SPEC §4) for a .so
   * and the JIT library; train, eval and bench never read it, and on an
   * MLP it is a quarter of the step's work */
  bool runs = (o->cmd & CMD_RUNS) != 0;
  Compilation c = {.eo = eo, .po = &po, .model = o->model,
                   .no_input_grads = o->input_grads == 0 || (o->input_grads < 0 && runs),
                   .parse_only = stage && stage->stop_after == AFTER_PARSE};
  switch (compile_module(arena, d, &c)) {
  case COMPILE_OK:
    break;
  case COMPILE_ERROR:
    return EXIT_COMPILE;
  case COMPILE_BAD_DEFINE:
    return usage_error("-D %s: no constant with that name in the program", eo->overrides[c.bad_define].name);
  case COMPILE_NO_SUCH_MODEL:
    fprintf(stderr, "nncc: error: no model named '%s' in '%s'\n", o->model, o->file);
    return EXIT_USAGE;
  case COMPILE_NO_MODEL:
    if (o->out && !o->emit) {
      fprintf(stderr, "nncc: error: nothing to compile: '%s' defines no model\n", o->file);
      return EXIT_COMPILE;
    }
    return EXIT_OK;
  }
  if (o->cmd == CMD_CHECK) return EXIT_OK;
  if (o->cmd == CMD_GRADCHECK) return run_gradcheck(o, c.module, d, src, len, eo);
  if (runs) return run_command(o, c.module, src, len, eo);
  if (stage) return emit_stage(stage, o, c.program, c.module);
  return o->out ? write_library(o, c.module) : EXIT_OK;
}

static void free_overrides(Options *o) {  /* the -D names (LeakSanitizer) */
  for (int i = 0; i < o->n_overrides; i++) free((char *)o->overrides[i].name);
}

int main(int argc, char **argv) {
  if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
    print_usage();
    int n;
    const Pass *ps = pass_list(&n);
    fputs("\npasses (for --print-after):\n", stdout);
    for (int i = 0; i < n; i++) printf("  %-8s %s\n", ps[i].name, ps[i].what);
    return EXIT_OK;
  }
  if (argc >= 2 && !strcmp(argv[1], "--version")) {
    CgHostInfo info;
    char err[128] = "";
    int ok = cg_host_info(&info, err, sizeof err);
    printf("nncc 0.1 (LLVM %s)\n", info.llvm_version);
    if (ok) printf("host: %s, cpu %s, %d-bit vectors\n", info.triple, info.cpu, info.vector_bits);
    else printf("host: %s\n", err);
    return EXIT_OK;
  }
  Options o = {.input_grads = -1};
  int rc = parse_args(argc, argv, &o);
  if (!rc && o.help) {  /* nncc CMD --help */
    if (o.cmd == CMD_COMPILE) print_usage();
    else print_command_help(o.command);
    free_overrides(&o);
    return EXIT_OK;
  }
  if (!rc) rc = check_options(&o);
  if (rc) {
    free_overrides(&o);
    return rc;
  }
  size_t len = 0;
  char *src = read_source(o.file, &len);
  if (!src) {
    free_overrides(&o);
    return EXIT_COMPILE;
  }
  Arena arena = {0};
  Diag d;
  diag_init(&d, o.file, src, len, stderr);
  d.color = isatty(2) && !getenv("NO_COLOR");
  char *base_dir = nncc_dir_of(o.file);
  ElabOptions eo = {.overrides = o.overrides, .n_overrides = o.n_overrides, .base_dir = base_dir,
                    .max_nodes = 1000000};
  /* the pipeline's recovery point (ir.h): out of memory and internal
   * errors come back here with the message, the arena and every scratch
   * block freed. NNCC_FAIL_ALLOC=N makes the N-th allocation fail
   * (tests/tools/test_faults.c) */
  NnccCatch rp;
  nncc_catch_push(&rp);
  int exit_code;
  if (setjmp(rp.jmp)) {  /* rp is popped; the error emptied the arena: reset, not read (C11 7.13.2.1) */
    fprintf(stderr, "nncc: error: %s\n", rp.msg);
    arena = (Arena){0};
    exit_code = EXIT_COMPILE;
  } else {
    if (getenv("NNCC_FAIL_ALLOC")) nncc_alloc_fail_after(atol(getenv("NNCC_FAIL_ALLOC")));
    exit_code = run_file(&o, &arena, &d, src, len, &eo);
    nncc_catch_pop(&rp);
  }
  fflush(stdout);
  arena_free(&arena);
  free(base_dir);
  free(src);
  free_overrides(&o);
  return exit_code;
}
