/* device.c: the tensor bigram on backend ops. A step uploads the
 * weights (2 V^2 floats), runs
 *   h (N, V)      = E[x], RMS-normalized when input_rmsnorm (rstd (N))
 *   logits (N, V) = h @ W^T
 *   losses (N)    = cross-entropy (no soft cap); logits become dlogits / N
 *   dW (V, V)     = dlogits^T @ h (overwritten; tied: all of dE)
 *   dh (N, V)     = dlogits @ W, through the RMSNorm
 *   dE[x]         += dh
 * and downloads the gradient for the host optimizer the host path uses too. */
#include "device.h"

#include "backend/backend.h"

#include <stdlib.h>

#define OPS (d->be->ops)

struct nc_bigram_device {
    nc_backend *be;
    int V, cap;            /* vocabulary; pairs the buffers hold */
    float *w, *grad;       /* (P) f32 */
    void *wact;            /* (P) act copy of w */
    float *out;            /* (V) f32: the logits a decoder reads */
    void *h, *hn, *logits; /* (cap, V) act: embedded, normalized, logits (then dlogits) */
    void *dh, *dhn;        /* (cap, V) act */
    float *rstd, *losses;  /* (cap) */
    int32_t *x, *y;        /* (cap) */
    float *host;           /* (cap) host: the losses, downloaded */
};

static void free_batch(nc_bigram_device *d) {
    void *bufs[] = {d->h, d->hn, d->logits, d->dh, d->dhn, d->rstd, d->losses, d->x, d->y};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) OPS->free(d->be, bufs[i]);
    free(d->host);
}

void nc_bigram_device_free(nc_bigram_device *d) {
    if (!d) return;
    free_batch(d);
    void *bufs[] = {d->w, d->grad, d->wact, d->out};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) OPS->free(d->be, bufs[i]);
    free(d);
}

nc_bigram_device *nc_bigram_device_new(nc_backend *be, const nc_bigram *b, nc_error *err) {
    nc_bigram_device *d = calloc(1, sizeof *d);
    if (!d) return nc_fail(err, NC_E_INTERNAL, "out of memory"), NULL;
    *d = (nc_bigram_device){.be = be, .V = b->V};
    size_t P = (size_t)b->P;
    d->w = OPS->alloc(be, sizeof(float) * P);
    d->grad = OPS->alloc(be, sizeof(float) * P);
    d->wact = OPS->alloc(be, nc_dtype_size(be->act) * P);
    d->out = OPS->alloc(be, sizeof(float) * (size_t)b->V);
    if (d->w && d->grad && d->wact && d->out) return d;
    nc_bigram_device_free(d);
    return nc_fail(err, NC_E_INTERNAL, "out of %s memory for the bigram", be->name), NULL;
}

/* Buffers for N pairs (grown, never shrunk). */
static int reserve(nc_bigram_device *d, int N, nc_error *err) {
    if (N <= d->cap) return 0;
    free_batch(d);
    size_t act = nc_dtype_size(d->be->act) * (size_t)N * (size_t)d->V, n = (size_t)N;
    void **acts[] = {&d->h, &d->hn, &d->logits, &d->dh, &d->dhn};
    bool ok = true;
    for (size_t i = 0; i < sizeof acts / sizeof acts[0]; i++) ok = (*acts[i] = OPS->alloc(d->be, act)) && ok;
    ok = (d->rstd = OPS->alloc(d->be, sizeof(float) * n)) && ok;
    ok = (d->losses = OPS->alloc(d->be, sizeof(float) * n)) && ok;
    ok = (d->x = OPS->alloc(d->be, sizeof(int32_t) * n)) && ok;
    ok = (d->y = OPS->alloc(d->be, sizeof(int32_t) * n)) && ok;
    ok = (d->host = malloc(sizeof(float) * n)) && ok;
    d->cap = ok ? N : 0;
    return ok ? 0 : nc_fail(err, NC_E_INTERNAL, "out of %s memory for %d pairs", d->be->name, N);
}

/* logits (N, V) of the pairs x (N, uploaded), from b's weights; returns the
 * rows the head read (normalized or not). */
static const void *forward(nc_bigram_device *d, const nc_bigram *b, int N) {
    int V = d->V;
    int64_t head = nc_bigram_head_offset(b);
    OPS->upload(d->be, d->w, b->w, sizeof(float) * (size_t)b->P);
    OPS->cast(d->be, d->wact, d->be->act, d->w, NC_F32, b->P);
    OPS->embedding_forward(d->be, d->h, d->w, d->x, N, V);
    const void *h = d->h;
    if (b->cfg.input_rmsnorm) {
        OPS->rmsnorm_forward(d->be, d->hn, d->rstd, d->h, N, V);
        h = d->hn;
    }
    nc_gemm g = {.m = N, .n = V, .k = V, .batch = 1, .tb = true, .alpha = 1, .a = h, .at = d->be->act, .lda = V,
                 .b = (const char *)d->wact + head * (int64_t)nc_dtype_size(d->be->act), .bt = d->be->act,
                 .ldb = V, .d = d->logits, .dt = d->be->act, .ldd = V};
    OPS->gemm(d->be, &g);
    return h;
}

/* From dlogits: dW = dlogits^T h, dh = dlogits W, through the norm, dE[x] += dh. */
static void backward(nc_bigram_device *d, const nc_bigram *b, const void *h, int N) {
    int V = d->V;
    int64_t head = nc_bigram_head_offset(b);
    nc_dtype t = d->be->act;
    if (head) OPS->zero(d->be, d->grad, sizeof(float) * (size_t)head); /* untied: dE only gets rows */
    nc_gemm gw = {.m = V, .n = V, .k = N, .batch = 1, .ta = true, .alpha = 1, .a = d->logits, .at = t, .lda = V,
                  .b = h, .bt = t, .ldb = V, .d = d->grad + head, .dt = NC_F32, .ldd = V};
    nc_gemm gh = {.m = N, .n = V, .k = V, .batch = 1, .alpha = 1, .a = d->logits, .at = t, .lda = V,
                  .b = (const char *)d->wact + head * (int64_t)nc_dtype_size(t), .bt = t, .ldb = V, .d = d->dh,
                  .dt = t, .ldd = V};
    OPS->gemm(d->be, &gw);
    OPS->gemm(d->be, &gh);
    const void *dh = d->dh;
    if (b->cfg.input_rmsnorm) {
        OPS->rmsnorm_backward(d->be, d->dhn, d->dh, d->hn, d->rstd, N, V, false);
        dh = d->dhn;
    }
    OPS->embedding_backward(d->be, d->grad, dh, d->x, N, V, V);
}

/* Uploads the pairs (targets when y is set) into buffers that fit. */
static int load(nc_bigram_device *d, const int32_t *x, const int32_t *y, int N, nc_error *err) {
    if (reserve(d, N, err)) return -1;
    OPS->upload(d->be, d->x, x, sizeof(int32_t) * (size_t)N);
    if (y) OPS->upload(d->be, d->y, y, sizeof(int32_t) * (size_t)N);
    return 0;
}

int nc_bigram_device_grad(nc_bigram_device *d, const nc_bigram *b, const nc_batch *batch, float *grad, double *loss,
                          nc_error *err) {
    int N = batch->B * batch->T;
    if (load(d, batch->x, batch->y, N, err)) return -1;
    const void *h = forward(d, b, N);
    OPS->softcap_ce(d->be, d->losses, d->logits, d->logits, d->y, N, d->V, d->V, 0.0f, 1.0f / (float)N);
    backward(d, b, h, N);
    OPS->download(d->be, grad, d->grad, sizeof(float) * (size_t)b->P);
    OPS->download(d->be, d->host, d->losses, sizeof(float) * (size_t)N);
    double total = 0; /* in double, as the host path */
    for (int i = 0; i < N; i++) total += d->host[i];
    *loss = total / N;
    return OPS->sync(d->be, err);
}

int nc_bigram_device_losses(nc_bigram_device *d, const nc_bigram *b, const nc_batch *batch, float *losses,
                            nc_error *err) {
    int N = batch->B * batch->T;
    if (load(d, batch->x, batch->y, N, err)) return -1;
    forward(d, b, N);
    OPS->softcap_ce(d->be, d->losses, NULL, d->logits, d->y, N, d->V, d->V, 0.0f, 1.0f);
    OPS->download(d->be, losses, d->losses, sizeof(float) * (size_t)N);
    return OPS->sync(d->be, err);
}

int nc_bigram_device_logits(nc_bigram_device *d, const nc_bigram *b, int32_t id, float *logits, nc_error *err) {
    if (load(d, &id, NULL, 1, err)) return -1;
    forward(d, b, 1);
    OPS->softcap(d->be, d->out, d->logits, 1, d->V, d->V, 0.0f); /* uncapped: the logits in f32 */
    OPS->download(d->be, logits, d->out, sizeof(float) * (size_t)d->V);
    return OPS->sync(d->be, err);
}
