/* testing.h: the GPT's hooks for the parity, decoding and GPU tests and
 * the kernel benchmark: the pieces of a training step and what they leave
 * behind. Production code goes through nc_tensor_gpt_ops only. */
#ifndef NC_GPT_TESTING_H
#define NC_GPT_TESTING_H

#include "gpt.h"

/* The pieces of train_step: forward and backward (the loss, gradients kept),
 * then the optimizer's update. */
int nc_gpt_forward_backward(nc_model *m, const nc_batch *b, double *loss, nc_error *err);
void nc_gpt_optimizer_step(nc_model *m, int64_t step, int64_t steps);
/* Gradients of the last forward_backward, under the parameters' names. */
int nc_gpt_export_grads(nc_model *m, nc_tensor_list *out, nc_error *err);
/* How train_step runs: "sync" (no graphs), "graph" (recorded once per batch
 * shape, replayed, loss a step late), or "eager (...)" when recording failed. */
const char *nc_gpt_step_mode(const nc_model *m);
/* Soft-capped logits of every position, (B, T, V) floats. */
int nc_gpt_logits(nc_model *m, const nc_batch *b, float *logits, nc_error *err);

#endif
