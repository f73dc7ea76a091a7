/* frontend.h - the public header of the frontend library: tokens, the
 * AST of a .nn program, the parser, and elaboration of the AST into graph
 * IR (constant evaluation, def inlining, for unrolling, train blocks).
 *
 * Pipeline: source -> lex_* -> parse_program -> Program (AST)
 *           -> elaborate -> Module (graph IR, shapes inferred) -> passes. */
#ifndef NNCC_FRONTEND_H
#define NNCC_FRONTEND_H

#include "ir/ir.h"

/* ------------------------------------------------------------------ lexer */

#define TOKEN_KINDS(X)                                                   \
  X(EOF, "end of file") X(NEWLINE, "newline") X(IDENT, "identifier")     \
  X(INT, "integer") X(FLOAT, "number") X(STRING, "string")               \
  X(LPAREN, "'('") X(RPAREN, "')'") X(LBRACKET, "'['")                   \
  X(RBRACKET, "']'") X(LBRACE, "'{'") X(RBRACE, "'}'") X(COMMA, "','")   \
  X(SEMI, "';'") X(COLON, "':'") X(DOT, "'.'") X(DOTDOT, "'..'")         \
  X(ELLIPSIS, "'...'") X(ASSIGN, "'='") X(PLUS, "'+'") X(MINUS, "'-'")   \
  X(STAR, "'*'") X(STARSTAR, "'**'") X(SLASH, "'/'")                     \
  X(SLASHSLASH, "'//'") X(PERCENT, "'%'") X(AT, "'@'") X(LT, "'<'")      \
  X(LE, "'<='") X(GT, "'>'") X(GE, "'>='") X(EQ, "'=='") X(NE, "'!='")   \
  X(KW_CONST, "'const'") X(KW_DEF, "'def'") X(KW_MODEL, "'model'")       \
  X(KW_TRAIN, "'train'") X(KW_INPUT, "'input'") X(KW_PARAM, "'param'")   \
  X(KW_STATE, "'state'") X(KW_OUTPUT, "'output'") X(KW_LOSS, "'loss'")   \
  X(KW_FOR, "'for'") X(KW_IN, "'in'") X(KW_RETURN, "'return'")           \
  X(KW_TRUE, "'true'") X(KW_FALSE, "'false'") X(KW_F32, "'f32'")         \
  X(KW_I32, "'i32'") X(KW_BOOL, "'bool'")

typedef enum TokKind {
#define X(e, s) TK_##e,
  TOKEN_KINDS(X)
#undef X
  TK_COUNT
} TokKind;

typedef struct Token {
  TokKind kind;
  SrcLoc loc;
  const char *start;  /* into the source text */
  int len;
  int64_t ival;       /* TK_INT */
  double fval;        /* TK_FLOAT (and TK_INT, converted) */
  const char *str;    /* TK_IDENT name / TK_STRING decoded value (arena) */
  bool lex_error;     /* on a line where the lexer reported an error */
} Token;

const char *tok_kind_name(TokKind k);  /* "'('", "identifier", ... */

/* Tokenizes the whole source of d into an arena array ending in TK_EOF.
 * Lexical errors go to d; the lexer skips the bad bytes and goes on.
 * Newlines inside () and [] are dropped (they continue the statement);
 * runs of newlines collapse to one. */
Token *lex(Arena *a, Diag *d, int *n_tokens);

/* -------------------------------------------------------------------- AST */

typedef enum AstKind {
  AST_INT,       /* ival */
  AST_FLOAT,     /* fval */
  AST_STRING,    /* str */
  AST_BOOL,      /* ival = 0/1 */
  AST_NAME,      /* str */
  AST_BINARY,    /* op (a TokKind: TK_PLUS, TK_AT, TK_LT, ...), lhs, rhs */
  AST_UNARY,     /* op (TK_MINUS or TK_PLUS), lhs */
  AST_CALL,      /* lhs = callee, items = args (AST_KWARG for keywords) */
  AST_KWARG,     /* str = keyword, lhs = value */
  AST_INDEX,     /* lhs = base, items = subscripts (exprs or AST_SLICE) */
  AST_SLICE,     /* lhs = start, rhs = stop, step = step; each may be NULL */
  AST_LIST,      /* items: [a, b, ...] */
  AST_TYPE,      /* dtype, items = dims (exprs, AST_ELLIPSIS in patterns);
                    has_dims = false for a bare `f32` */
  AST_ELLIPSIS,  /* `...` in a shape pattern */
} AstKind;

typedef struct Ast Ast;
struct Ast {
  AstKind kind;
  SrcLoc loc;       /* representative token: the operator for binaries,
                       the callee's name for calls, the '[' for indexing */
  int64_t ival;
  double fval;
  const char *str;
  TokKind op;
  DType dtype;
  bool has_dims;
  Ast *lhs, *rhs, *step;
  Ast **items;
  int n_items;
};

typedef enum StmtKind {
  ST_INPUT,   /* input NAME: TYPE */
  ST_PARAM,   /* param NAME: TYPE = INIT */
  ST_STATE,   /* state NAME: TYPE = INIT */
  ST_BIND,    /* NAME [, NAME]* = EXPR */
  ST_FOR,     /* for VAR in LO..HI { BODY } */
  ST_OUTPUT,  /* output EXPR [, EXPR]* */
  ST_LOSS,    /* loss EXPR */
  ST_RETURN,  /* return EXPR [, EXPR]* */
} StmtKind;

typedef struct Stmt Stmt;
struct Stmt {
  StmtKind kind;
  SrcLoc loc;             /* the keyword, or the first name of a binding */
  const char **names;     /* declared/bound names; for: the loop variable */
  SrcLoc *name_locs;
  int n_names;
  Ast *type;              /* input/param/state */
  Ast *value;             /* param/state initializer (may be NULL: zeros),
                             binding value, loss */
  Ast *lo, *hi;           /* for */
  Ast **exprs;            /* output, return */
  int n_exprs;
  Stmt **body;            /* for */
  int n_body;
};

typedef struct DefParam {
  const char *name;
  SrcLoc loc;
  Ast *pattern;           /* AST_TYPE shape pattern, or NULL */
  Ast *default_value;     /* or NULL */
} DefParam;

typedef enum ItemKind { ITEM_CONST, ITEM_DEF, ITEM_MODEL, ITEM_TRAIN } ItemKind;

typedef struct TrainKey {
  const char *key;
  SrcLoc loc;
  Ast *value;
} TrainKey;

/* One top-level item, in source order. */
typedef struct Item {
  ItemKind kind;
  SrcLoc loc;             /* the keyword */
  const char *name;       /* const/def/model name; train: the model named */
  SrcLoc name_loc;
  Ast *value;             /* const */
  DefParam *params;       /* def */
  int n_params;
  Stmt **body;            /* def, model */
  int n_body;
  TrainKey *keys;         /* train */
  int n_keys;
} Item;

typedef struct Program {
  Item **items;
  int n_items;
} Program;

/* program := (item | NEWLINE)* EOF. Reports every syntax error it finds
 * (recovering at the next statement) and returns the program parsed so
 * far; check d->n_errors. Nesting deeper than 256 is an error. */
Program *parse_program(Arena *a, Diag *d, const Token *toks, int n_tokens);
/* --emit=ast: an indented S-expression dump. */
void ast_print_program(FILE *out, const Program *p);
void ast_print_expr(FILE *out, const Ast *e);

/* ------------------------------------------------------------ elaboration */

/* A -D NAME=VALUE override. */
typedef struct ConstOverride {
  const char *name;
  double value;
  bool is_int;
  int64_t ival;
  bool used;              /* set by elaborate: an unused NAME is an error */
} ConstOverride;


typedef struct ElabOptions {
  ConstOverride *overrides;
  int n_overrides;
  const char *base_dir;   /* relative data paths resolve against it */
  int max_nodes;          /* expansion limit (1,000,000 by default) */
} ElabOptions;

/* Elaborates a parsed program into a Module: one graph per model, shapes
 * inferred, train blocks validated. Errors and warnings go to d. The
 * prelude (frontend/prelude.nn, compiled into the binary) is visible to
 * every program. Returns the module even after errors (check d). */
Module *elaborate(Arena *a, Diag *d, const Program *p, const ElabOptions *opt);

/* Lex + parse + elaborate one source text: the usual entry point. */
Module *frontend_compile(Arena *a, Diag *d, const ElabOptions *opt,
                         Program **program_out);

/* The prelude's source text (generated from frontend/prelude.nn). */
extern const char nncc_prelude_source[];

#endif
