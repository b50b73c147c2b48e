/* host_optim.h: SGD and AdamW over float arrays in host memory, for the
 * bigram and mini-GPT models (the GPT's Muon+AdamW runs on backend ops).
 * AdamW: decoupled weight decay, bias-corrected moments. */
#ifndef NC_HOST_OPTIM_H
#define NC_HOST_OPTIM_H

#include "config.h"
#include "models/model.h"

typedef struct nc_host_optim {
    bool adamw;
    double lr, wd, beta1, beta2, eps;
    int64_t t;      /* updates taken */
    int64_t n;
    float *m, *v;   /* (n) moments; NULL for sgd */
} nc_host_optim;

void nc_host_optim_init(nc_host_optim *o, const nc_train_cfg *cfg, int64_t n);
void nc_host_optim_free(nc_host_optim *o);
/* w (n) -= update from g (n). */
void nc_host_optim_step(nc_host_optim *o, float *w, const float *g);
/* State as tensors "optimizer.exp_avg", "optimizer.exp_avg_sq", "optimizer.step". */
void nc_host_optim_export(const nc_host_optim *o, nc_tensor_list *out);
int nc_host_optim_import(nc_host_optim *o, const nc_tensor_list *in, nc_error *err);

#endif
