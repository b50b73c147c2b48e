/* scalar.h: the character bigram (bigram.h) on scalar autograd. */
#ifndef NC_SCALAR_BIGRAM_H
#define NC_SCALAR_BIGRAM_H

#include "models/model.h"

extern const nc_model_ops nc_scalar_bigram_ops;

/* Forward and backward of a batch without an update: returns the mean loss
 * and points *grad at the gradient (P) of every parameter (the layout of
 * nc_bigram.w), valid until the next call on m. */
double nc_scalar_bigram_grad(nc_model *m, const nc_batch *b, const float **grad);

#endif
