/* ir_internal.h - shared inside ir/ only (not part of the ir library's
 * public header): the name map that printer, reader and verifier use, so
 * that the reader undoes exactly the suffixes the printer adds and none of
 * them goes quadratic on a million nodes that share one name. */
#ifndef NNCC_IR_INTERNAL_H
#define NNCC_IR_INTERNAL_H

#include "ir/ir.h"

typedef struct IrNameMap IrNameMap;
IrNameMap *ir_namemap_new(void);
void ir_namemap_free(IrNameMap *m);
void **ir_namemap_get(IrNameMap *m, const char *key, size_t len);
bool ir_namemap_put(IrNameMap *m, const char *key, size_t len, void *val);
/* The first k >= 1 such that "base.k" is not in the map. */
uint64_t ir_namemap_first_free(IrNameMap *m, const char *base, size_t len);

/* The fusion-rule checks of ir_verify alone (verify.c), for the reader:
 * a graph whose nodes are sound, its kernel blocks as read. Reports as
 * ir_verify does; returns the number of problems. */
int ir_verify_kernels(const Graph *g, FILE *out);

#endif
