/* tensor.h: the character bigram (bigram.h) as batched tensor math on
 * host float arrays (cpu), or as backend ops on a device backend (cuda,
 * device.c). A step: forward logits, softmax cross-entropy with
 * dlogits, backward, update (on the host in both cases). */
#ifndef NC_BIGRAM_TENSOR_H
#define NC_BIGRAM_TENSOR_H

#include "models/model.h"

extern const nc_model_ops nc_tensor_bigram_ops;

/* Forward and backward of a batch without an update: returns the mean loss
 * and points *grad at the gradient (P) of every parameter (the layout of
 * nc_bigram.w), valid until the next call on m. */
double nc_tensor_bigram_grad(nc_model *m, const nc_batch *b, const float **grad);

#endif
