/* device.h: the tensor bigram's forward and backward on backend ops,
 * for a device backend (--device cuda). The weights and the optimizer stay
 * on the host (nc_bigram, host_optim), shared with the host-array path. */
#ifndef NC_BIGRAM_DEVICE_H
#define NC_BIGRAM_DEVICE_H

#include "bigram.h"

struct nc_backend;
typedef struct nc_bigram_device nc_bigram_device;

nc_bigram_device *nc_bigram_device_new(struct nc_backend *be, const nc_bigram *b, nc_error *err);
void nc_bigram_device_free(nc_bigram_device *d);
/* Forward and backward of a batch from b's weights: the mean loss into *loss
 * and the gradient of every parameter into grad (P floats, host). */
int nc_bigram_device_grad(nc_bigram_device *d, const nc_bigram *b, const nc_batch *batch, float *grad, double *loss,
                          nc_error *err);
/* Per-pair losses (B * T floats, host), no update. */
int nc_bigram_device_losses(nc_bigram_device *d, const nc_bigram *b, const nc_batch *batch, float *losses,
                            nc_error *err);
/* Logits (V floats, host) of the token after `id`. */
int nc_bigram_device_logits(nc_bigram_device *d, const nc_bigram *b, int32_t id, float *logits, nc_error *err);

#endif
