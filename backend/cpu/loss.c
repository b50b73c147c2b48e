/* loss.c: soft-capped logits, fused cross-entropy, deterministic mean. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct loss_job {
    float *losses, *dlogits, *out;
    const float *logits, *x;
    const int32_t *targets;
    int V, Vp;
    float cap, scale;
} loss_job;

/* c (n) = cap * tanh(z / cap), or z itself when cap is 0 (no cap) */
static void capped(float *restrict c, const float *restrict z, int n, float cap) {
    if (cap > 0)
        for (int v = 0; v < n; v++) c[v] = cap * nc_cpu_tanh(z[v] / cap);
    else
        memcpy(c, z, sizeof *c * (size_t)n);
}

/* One row: returns the loss and, when dz is not NULL, writes dz (Vp) (may be
 * z). work: (2, V) floats, c = cap * tanh(z / cap) and e = exp(c - max c).
 * The loops are branch-free, so they vectorize. */
static float ce_row(const loss_job *j, float *work, const float *z, int32_t y, float *dz) {
    int V = j->V;
    float *restrict c = work, *restrict e = work + V;
    capped(c, z, V, j->cap);
    float mx = nc_cpu_max(c, V);
    for (int v = 0; v < V; v++) e[v] = nc_cpu_exp_nonpos(c[v] - mx);
    float sum = nc_cpu_sum(e, V), loss = mx + logf(sum) - c[y];
    if (!dz) return loss;
    /* dz = scale (softmax - onehot(y)) dc/dz, dc/dz = 1 - (c / cap)^2 (1 without a cap) */
    float cap = j->cap, scale = j->scale;
    for (int v = 0; v < V; v++) {
        float t = cap > 0 ? c[v] / cap : 0.0f;
        dz[v] = scale * (e[v] / sum) * (1.0f - t * t);
    }
    float ty = cap > 0 ? c[y] / cap : 0.0f;
    dz[y] = scale * (e[y] / sum - 1.0f) * (1.0f - ty * ty);
    for (int v = V; v < j->Vp; v++) dz[v] = 0;
    return loss;
}

static void ce_rows(void *ctx, int64_t lo, int64_t hi) {
    loss_job *j = ctx;
    float *work = nc_xmalloc(sizeof(float) * 2 * (size_t)j->V);
    if (!work) abort();
    for (int64_t r = lo; r < hi; r++)
        j->losses[r] = ce_row(j, work, j->logits + r * j->Vp, j->targets[r], j->dlogits ? j->dlogits + r * j->Vp : NULL);
    free(work);
}

void nc_cpu_softcap_ce(nc_backend *be, float *losses, void *dlogits, const void *logits,
                       const int32_t *targets, int64_t N, int V, int Vp, float cap, float scale) {
    loss_job j = {.losses = losses, .dlogits = dlogits, .logits = logits, .targets = targets,
                  .V = V, .Vp = Vp, .cap = cap, .scale = scale};
    nc_pool_for(nc_cpu_pool(be), N, 16, ce_rows, &j);
}

static void softcap_rows(void *ctx, int64_t lo, int64_t hi) {
    loss_job *j = ctx;
    for (int64_t r = lo; r < hi; r++) capped(j->out + r * j->V, j->logits + r * j->Vp, j->V, j->cap);
}

void nc_cpu_softcap(nc_backend *be, float *out, const void *logits, int64_t N, int V, int Vp,
                    float cap) {
    loss_job j = {.out = out, .logits = logits, .V = V, .Vp = Vp, .cap = cap};
    nc_pool_for(nc_cpu_pool(be), N, 16, softcap_rows, &j);
}

static void sum_block(void *ctx, int64_t lo, int64_t hi, double *partial) {
    const loss_job *j = ctx;
    for (int64_t i = lo; i < hi; i++) partial[0] += j->x[i];
}

void nc_cpu_mean(nc_backend *be, float *out, const float *x, int64_t n) {
    loss_job j = {.x = x};
    double sum;
    nc_cpu_block_reduce(be, n, 4096, 1, sum_block, &j, &sum);
    *out = (float)(sum / (double)n);
}
