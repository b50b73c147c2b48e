/* loss.c: soft-capped logits, fused cross-entropy, deterministic mean. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct loss_job {
    float *losses, *dlogits, *out;
    const float *logits, *x;
    const int32_t *targets;
    int V, Vp;
    float cap, scale;
} loss_job;

/* cap * tanh(z / cap), or z itself when cap is 0 (no cap) */
static float capped(float z, float cap) { return cap > 0 ? cap * tanhf(z / cap) : z; }

/* One row: returns the loss and, when dz is not NULL, writes dz (Vp) (may be
 * z). work: (2, V) floats, c = cap * tanh(z / cap) and e = exp(c - max c). */
static float ce_row(const loss_job *j, float *work, const float *z, int32_t y, float *dz) {
    float *c = work, *e = work + j->V;
    for (int v = 0; v < j->V; v++) c[v] = capped(z[v], j->cap);
    float mx = nc_cpu_max(c, j->V);
    for (int v = 0; v < j->V; v++) e[v] = nc_cpu_exp_nonpos(c[v] - mx);
    float sum = nc_cpu_sum(e, j->V), loss = mx + logf(sum) - c[y];
    if (!dz) return loss;
    for (int v = 0; v < j->V; v++) {
        float t = j->cap > 0 ? c[v] / j->cap : 0.0f;
        dz[v] = j->scale * (e[v] / sum - (v == y ? 1.0f : 0.0f)) * (1.0f - t * t);
    }
    for (int v = j->V; v < j->Vp; v++) dz[v] = 0;
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
    for (int64_t r = lo; r < hi; r++)
        for (int v = 0; v < j->V; v++) j->out[r * j->V + v] = capped(j->logits[r * j->Vp + v], j->cap);
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
