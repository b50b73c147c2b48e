/* host_optim.c: SGD and AdamW on host arrays. */
#include "host_optim.h"
#include "core/memory.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool is_adamw(const nc_model_cfg *cfg) { return cfg->optimizer == NC_OPTIMIZER_ADAMW; }

void nc_host_optim_init(nc_host_optim *o, const nc_model_cfg *cfg, float *w, int64_t n) {
    memset(o, 0, sizeof *o);
    o->adamw = is_adamw(cfg);
    o->lr = cfg->lr;
    o->wd = cfg->weight_decay;
    o->beta1 = cfg->beta1;
    o->beta2 = cfg->beta2;
    o->eps = cfg->eps;
    o->n = n;
    o->w = w;
    if (o->adamw) {
        o->m = nc_xcalloc((size_t)n, sizeof *o->m);
        o->v = nc_xcalloc((size_t)n, sizeof *o->v);
    }
    nc_snapshot_add_host(&o->snap, o->w, n);
    if (!o->adamw) return;
    nc_snapshot_add_host(&o->snap, o->m, n);
    nc_snapshot_add_host(&o->snap, o->v, n);
}

double nc_host_optim_bytes(const nc_model_cfg *cfg, int64_t n) {
    return (double)n * sizeof(float) * (is_adamw(cfg) ? 5 : 1);
}

int nc_host_optim_spec(const nc_model_cfg *cfg, int64_t n, nc_tensor_list *out) {
    if (!is_adamw(cfg)) return 0;
    return nc_tensors_declare(out, "optimizer.exp_avg", 1, &n) || nc_tensors_declare(out, "optimizer.exp_avg_sq", 1, &n)
               ? -1 : 0;
}

void nc_host_optim_free(nc_host_optim *o) {
    free(o->m);
    free(o->v);
    nc_snapshot_free(&o->snap);
    memset(o, 0, sizeof *o);
}

int64_t nc_host_optim_updates(const nc_host_optim *o) { return o->snap.step; }

int nc_host_optim_guard(nc_host_optim *o, double loss, nc_error *err) {
    if (isfinite(loss)) return 0;
    long long failing = (long long)o->snap.step + 1; /* 1-based: updates so far, plus this step */
    if (!o->snap.can_undo) return nc_fail(err, NC_E_NON_FINITE_LOSS, "the loss of step %lld is %g; no update was applied", failing, loss);
    nc_snapshot_restore(&o->snap);
    return nc_fail(err, NC_E_NON_FINITE_LOSS, "the loss of step %lld is %g; the model is back at the weights of step "
                   "%lld, the last with a finite loss", failing, loss, (long long)o->snap.step + 1);
}

void nc_host_optim_begin(nc_host_optim *o) {
    nc_snapshot_begin(&o->snap);
    double t = (double)o->snap.step; /* this update's number, from 1 */
    o->decay = (float)(1.0 - o->lr * o->wd);
    o->step = (float)(o->adamw ? o->lr / (1.0 - pow(o->beta1, t)) : o->lr);
    o->rbias2 = o->adamw ? (float)(1.0 / sqrt(1.0 - pow(o->beta2, t))) : 1.0f;
}

static void sgd(const nc_host_optim *o, float *w, const float *g, int64_t from, int64_t to) {
    float decay = o->decay, lr = o->step;
    for (int64_t i = from; i < to; i++) w[i] = w[i] * decay - lr * g[i];
}

/* Moments that decay below FLT_MIN become 0: a subnormal moment moves no
 * weight, but every product with one costs a microcode assist, and the
 * moments of rarely seen tokens decay there within a few hundred steps. */
static inline float flush(float x) { return fabsf(x) < FLT_MIN ? 0.0f : x; }

static void adamw(const nc_host_optim *o, float *w, const float *g, int64_t from, int64_t to) {
    float b1 = (float)o->beta1, b2 = (float)o->beta2, eps = (float)o->eps;
    float decay = o->decay, step = o->step, rbias2 = o->rbias2;
    float *m = o->m, *v = o->v;
    for (int64_t i = from; i < to; i++) {
        m[i] = flush(b1 * m[i] + (1 - b1) * g[i]);
        v[i] = flush(b2 * v[i] + (1 - b2) * g[i] * g[i]);
        w[i] = w[i] * decay - step * m[i] / (sqrtf(v[i]) * rbias2 + eps);
    }
}

void nc_host_optim_update(nc_host_optim *o, const float *g, int64_t from, int64_t to) {
    for (int r = 0; r < o->snap.n; r++) nc_snapshot_keep(&o->snap, r, from, to);
    if (o->adamw) adamw(o, o->w, g, from, to);
    else sgd(o, o->w, g, from, to);
}

void nc_host_optim_step(nc_host_optim *o, const float *g) {
    nc_host_optim_begin(o);
    nc_host_optim_update(o, g, 0, o->n);
}

bool nc_host_optim_sparse(const nc_host_optim *o) { return !o->adamw && o->wd == 0; }

int nc_host_optim_export(const nc_host_optim *o, nc_tensor_list *out, nc_error *err) {
    if (!o->adamw) return 0;
    return nc_tensors_put(out, "optimizer.exp_avg", 1, &o->n, o->m, err) ||
           nc_tensors_put(out, "optimizer.exp_avg_sq", 1, &o->n, o->v, err) ? -1 : 0;
}

int nc_host_optim_import(nc_host_optim *o, const nc_tensor_list *in, int64_t step, nc_error *err) {
    if (o->adamw && (nc_tensors_take(in, "optimizer.exp_avg", 1, &o->n, o->m, err) ||
                     nc_tensors_take(in, "optimizer.exp_avg_sq", 1, &o->n, o->v, err)))
        return -1;
    o->snap.step = step;
    o->snap.can_undo = false;
    return 0;
}
