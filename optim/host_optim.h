/* host_optim.h: SGD and AdamW over float arrays in host memory, for the
 * bigram and mini-GPT models (the GPT's Muon+AdamW runs on backend ops).
 * AdamW: decoupled weight decay, bias-corrected moments. The weights and the
 * moments are the regions of a snapshot (snapshot.h), which counts the steps
 * and keeps what each update changes, so that a non-finite loss takes it
 * back. */
#ifndef NC_HOST_OPTIM_H
#define NC_HOST_OPTIM_H

#include "api.h"
#include "models/model.h"
#include "snapshot.h"

typedef struct nc_host_optim {
    bool adamw;
    double lr, wd, beta1, beta2, eps;
    int64_t n;
    float *w;                  /* (n) the weights it updates (the model's) */
    float *m, *v;              /* (n) moments; NULL for sgd */
    float decay, step, rbias2; /* constants of the update under way */
    nc_snapshot snap;          /* w, m, v; snap.step counts the updates */
} nc_host_optim;

/* The optimizer of the n weights w (which it does not own). */
void nc_host_optim_init(nc_host_optim *o, const nc_model_cfg *cfg, float *w, int64_t n);
void nc_host_optim_free(nc_host_optim *o);
/* Begins the next update; then nc_host_optim_update covers the parameters. */
void nc_host_optim_begin(nc_host_optim *o);
/* w[from:to) -= this update's step from g[from:to). The ranges of one update
 * must not overlap (the snapshot keeps one old value per parameter). */
void nc_host_optim_update(nc_host_optim *o, const float *g, int64_t from, int64_t to);
/* One whole update of w (n) from g (n). */
void nc_host_optim_step(nc_host_optim *o, const float *g);
/* True when a zero gradient leaves a weight bit-for-bit unchanged (SGD without
 * decay): an update may then skip the parameters that got no gradient. */
bool nc_host_optim_sparse(const nc_host_optim *o);
/* Call with each step's loss before its update. A non-finite loss takes the
 * latest update back (the weights, moments and step that gave the last
 * finite loss) and fails with NonFiniteLoss, so the model is never left with
 * weights whose loss was not finite. */
int nc_host_optim_guard(nc_host_optim *o, double loss, nc_error *err);
/* Updates the weights have seen. */
int64_t nc_host_optim_updates(const nc_host_optim *o);
/* The moments as tensors "optimizer.exp_avg", "optimizer.exp_avg_sq" (AdamW;
 * SGD has none); import takes them and the step the state has seen. */
int nc_host_optim_export(const nc_host_optim *o, nc_tensor_list *out, nc_error *err);
int nc_host_optim_import(nc_host_optim *o, const nc_tensor_list *in, int64_t step, nc_error *err);
/* The names and shapes of that state (state_spec), and the bytes the
 * optimizer of n parameters holds (moments and the snapshot's copies). */
int nc_host_optim_spec(const nc_model_cfg *cfg, int64_t n, nc_tensor_list *out);
double nc_host_optim_bytes(const nc_model_cfg *cfg, int64_t n);

#endif
