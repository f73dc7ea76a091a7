/* use_model.c - loading a model compiled by nncc from C.
 *
 *   nncc examples/spiral.nn -o spiral.so --header spiral.h
 *   cc -I. -o use_model examples/c/use_model.c ./spiral.so
 *   ./use_model
 *
 * The library exports nncc_module(); everything else is the ABI in the
 * header: tensors by id, create/train_step/evaluate, save/load. */
#include <math.h>
#include <stdio.h>

#include "spiral.h"

int main(void) {
  const nncc_model_api *api = nncc_module(NULL);
  nncc_model *m = api->create(42);
  float *x = api->data(m, SPIRAL_X);
  int32_t *y = api->data(m, SPIRAL_Y);
  const nncc_tensor_info *xi = &api->tensors[SPIRAL_X];
  int64_t batch = xi->shape[0];
  /* a toy task: the class is the quadrant's half-plane */
  for (int step = 0; step < 300; step++) {
    for (int64_t i = 0; i < batch; i++) {
      float a = (float)((step * batch + i) * 2654435761u % 1000) / 500.0f - 1.0f;
      float b = (float)((step * batch + i) * 40503u % 1000) / 500.0f - 1.0f;
      x[2 * i] = a;
      x[2 * i + 1] = b;
      y[i] = a > 0 ? (b > 0 ? 0 : 1) : 2;
    }
    if (api->train_step(m)) {
      fprintf(stderr, "train_step: %s\n", api->last_error(m));
      return 1;
    }
    if (step % 100 == 0) printf("step %d loss %.4f\n", step, *(float *)api->data(m, SPIRAL_LOSS));
  }
  if (api->save(m, "spiral.safetensors")) fprintf(stderr, "save: %s\n", api->last_error(m));
  printf("final loss %.4f; weights saved to spiral.safetensors\n", *(float *)api->data(m, SPIRAL_LOSS));
  api->destroy(m);
  return 0;
}
