/* host_optim.h: SGD and AdamW over float arrays in host memory, for the
 * bigram and mini-GPT models (the GPT's Muon+AdamW runs on backend ops).
 * AdamW: decoupled weight decay, bias-corrected moments. */
#ifndef NC_HOST_OPTIM_H
#define NC_HOST_OPTIM_H

#include "api.h"
#include "models/model.h"

typedef struct nc_host_optim {
    bool adamw;
    double lr, wd, beta1, beta2, eps;
    int64_t t;                /* updates begun */
    int64_t n;
    float *m, *v;             /* (n) moments; NULL for sgd */
    float decay, step, rbias2; /* constants of update t */
    /* the undo log of the latest update: the ranges it changed and their
     * values before it (weights, moments), so that it can be taken back */
    float *undo_w, *undo_m, *undo_v; /* (n) each, valid inside the ranges */
    int64_t (*undo)[2];              /* (undo_cap) [from, to) ranges */
    int undo_count, undo_cap;
    bool can_undo;
} nc_host_optim;

void nc_host_optim_init(nc_host_optim *o, const nc_train_cfg *cfg, int64_t n);
void nc_host_optim_free(nc_host_optim *o);
/* Begins update t + 1; then nc_host_optim_update covers the parameters. */
void nc_host_optim_begin(nc_host_optim *o);
/* w[from:to) -= this update's step from g[from:to). The ranges of one update
 * must not overlap (the undo log keeps one old value per parameter). */
void nc_host_optim_update(nc_host_optim *o, float *w, const float *g, int64_t from, int64_t to);
/* One whole update of w (n) from g (n). */
void nc_host_optim_step(nc_host_optim *o, float *w, const float *g);
/* True when a zero gradient leaves a weight bit-for-bit unchanged (SGD without
 * decay): an update may then skip the parameters that got no gradient. */
bool nc_host_optim_sparse(const nc_host_optim *o);
/* Call with each step's loss before its update. A non-finite loss takes the
 * latest update back (from its undo log: the weights and optimizer state that
 * gave the last finite loss) and fails with NonFiniteLoss, so the model is
 * never left with weights whose loss was not finite. */
int nc_host_optim_guard(nc_host_optim *o, float *w, double loss, nc_error *err);
/* State as tensors "optimizer.step", "optimizer.exp_avg", "optimizer.exp_avg_sq"
 * (AdamW); import checks them first (a count, the shapes). */
int nc_host_optim_export(const nc_host_optim *o, nc_tensor_list *out, nc_error *err);
int nc_host_optim_import(nc_host_optim *o, const nc_tensor_list *in, nc_error *err);
/* The names and shapes of that state (state_spec), and the bytes the
 * optimizer of n parameters holds (moments and the undo log). */
int nc_host_optim_spec(const nc_train_cfg *cfg, int64_t n, nc_tensor_list *out);
double nc_host_optim_bytes(const nc_train_cfg *cfg, int64_t n);

#endif
