/* tensor.c: the character bigram on host float arrays.
 *
 * A step over B pairs (x, y):
 *   h (B, V)       = E[x], RMS-normalized when input_rmsnorm (rstd (B))
 *   logits (B, V)  = h @ W^T
 *   loss (B)       = logsumexp(logits) - logits[y]; logits becomes
 *                    dlogits = (softmax - onehot(y)) / B
 *   dW (V, V)      = dlogits^T @ h
 *   dh (B, V)      = dlogits @ W, through the RMSNorm
 *   dE[x] (B rows) += dh
 * then SGD or AdamW. When a zero gradient leaves a weight unchanged (SGD
 * without decay), the update skips the rows of E no pair touched: the same
 * bits as a dense update, at a fraction of the work for small batches.
 *
 * The three matrix products are serial OpenBLAS sgemm calls (the cpu backend
 * runs OpenBLAS on one thread), so every element sums in one fixed order.
 * With --device cuda the same step runs as backend ops (device.c),
 * the update staying here on the host. */
#include "tensor.h"
#include "bigram.h"
#include "device.h"
#include "backend/backend.h"

#include <cblas.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct nc_model {
    nc_bigram b;      /* first: the shared bigram ops (models/bigram.h) see an nc_bigram */
    nc_bigram_device *dev; /* --device cuda: forward and backward as backend ops; NULL: host arrays */
    float *grad;      /* (P); the E part is zero outside the rows of the last batch */
    int cap;          /* batch capacity of the buffers below */
    float *h;         /* (cap, V) embedded, normalized tokens */
    float *rstd;      /* (cap) */
    float *logits;    /* (cap, V) logits, then dlogits */
    float *dh;        /* (cap, V) */
    int32_t *rows;    /* (cap) rows of E the last backward wrote */
    int nrows;
    uint8_t *seen;    /* (V) scratch for distinct rows */
};

static const float *head(const nc_model *m) { return m->b.w + nc_bigram_head_offset(&m->b); }

/* ---- lifecycle ------------------------------------------------------------------ */

static int resolve(nc_model_cfg *cfg, const struct nc_backend *be, int64_t *eval_windows, nc_error *err) {
    (void)be;
    return nc_bigram_resolve(cfg, eval_windows, err);
}

/* Buffers for B pairs (B is the run's batch: within the footprint). */
static void reserve(nc_model *m, int B) {
    if (B <= m->cap) return;
    size_t V = (size_t)m->b.V, n = (size_t)B;
    m->h = nc_xrealloc(m->h, n * V * sizeof *m->h);
    m->rstd = nc_xrealloc(m->rstd, n * sizeof *m->rstd);
    m->logits = nc_xrealloc(m->logits, n * V * sizeof *m->logits);
    m->dh = nc_xrealloc(m->dh, n * V * sizeof *m->dh);
    m->rows = nc_xrealloc(m->rows, n * sizeof *m->rows);
    m->cap = B;
}

/* Host: the shared part, E's row marks, and (B, V) x 3 + (B) x 2 of batch
 * arrays; with --device cuda the device holds the weights, their gradient and
 * act copy (P x 12 bytes at most) and (B, V) x 5 act buffers, and the host
 * the same batch arrays. */
static void footprint(const nc_model_cfg *cfg, int V, const struct nc_backend *be, nc_footprint *out) {
    double B = (double)cfg->batch_size * (double)cfg->seq_len, P = (cfg->tie_lm_head ? 1.0 : 2.0) * V * V;
    double batch = sizeof(float) * (3 * B * V + 2 * B);
    *out = (nc_footprint){.host = nc_bigram_bytes(cfg, V) + V + batch, .host_transient = 2 * sizeof(float) * P};
    if (be && be->gpu) out->device = 12 * P + sizeof(float) * (5 * B * V + 4 * B + V);
}

static void destroy(nc_model *m);

static int64_t memory_bytes(const nc_model *m) {
    return (int64_t)nc_bigram_bytes(&m->b.cfg, m->b.V) + m->b.V + (int64_t)m->cap * (3 * m->b.V + 2) * (int64_t)sizeof(float);
}

static int logits_after(nc_model *m, const int32_t *ids, int n, float *out, nc_error *err);

static nc_model *create(const nc_model_cfg *cfg, int V, struct nc_backend *be, nc_error *err) {
    nc_model *m = nc_xcalloc(1, sizeof *m);
    nc_bigram_init(&m->b, cfg, V, logits_after);
    m->grad = nc_xcalloc((size_t)m->b.P, sizeof *m->grad);
    m->seen = nc_xcalloc((size_t)m->b.V, 1);
    reserve(m, (int)cfg->batch_size);
    if (be && be->gpu && !(m->dev = nc_bigram_device_new(be, &m->b, err))) {
        destroy(m);
        return NULL;
    }
    return m;
}

static void destroy(nc_model *m) {
    nc_bigram_device_free(m->dev);
    nc_bigram_free(&m->b);
    free(m->grad);
    free(m->h);
    free(m->rstd);
    free(m->logits);
    free(m->dh);
    free(m->rows);
    free(m->seen);
    free(m);
}

/* ---- forward ---------------------------------------------------------------------- */

/* h (B, V) = E[x], normalized when input_rmsnorm; logits (B, V) = h @ W^T. */
static void forward_logits(nc_model *m, const int32_t *x, int B) {
    int V = m->b.V;
    for (int b = 0; b < B; b++) {
        float *h = m->h + (size_t)b * V;
        memcpy(h, m->b.w + (size_t)x[b] * V, (size_t)V * sizeof *h);
        if (!m->b.cfg.input_rmsnorm) continue;
        double ss = 0;
        for (int i = 0; i < V; i++) ss += (double)h[i] * h[i];
        m->rstd[b] = (float)(1.0 / sqrt(ss / V + FLT_EPSILON));
        for (int i = 0; i < V; i++) h[i] *= m->rstd[b];
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, V, V, 1.0f, m->h, V, head(m), V, 0.0f, m->logits, V);
}

/* Per-row losses (B) to `losses` (may be NULL); returns their sum. With
 * `scale` > 0 the logits become dlogits = scale * (softmax - onehot(y)),
 * else they are left holding exp(logits - max). */
static double softmax_ce(float *logits, const int32_t *y, int B, int V, float *losses, float scale) {
    double total = 0;
    for (int b = 0; b < B; b++) {
        float *z = logits + (size_t)b * V, max = z[0], zy = z[y[b]];
        for (int j = 1; j < V; j++) max = z[j] > max ? z[j] : max;
        double sum = 0;
        for (int j = 0; j < V; j++) sum += z[j] = expf(z[j] - max);
        double loss = log(sum) + max - zy;
        if (losses) losses[b] = (float)loss;
        total += loss;
        if (scale <= 0) continue;
        for (int j = 0; j < V; j++) z[j] = (float)(z[j] / sum) * scale;
        z[y[b]] -= scale;
    }
    return total;
}

/* ---- backward ----------------------------------------------------------------------- */

/* dx (V) = rstd * (dy - y * mean(dy * y)) in place on dy, for y the normalized row. */
static void rmsnorm_backward(float *dy, const float *y, float rstd, int V) {
    double dot = 0;
    for (int i = 0; i < V; i++) dot += (double)dy[i] * y[i];
    float mean = (float)(dot / V);
    for (int i = 0; i < V; i++) dy[i] = rstd * (dy[i] - y[i] * mean);
}

/* Forgets the rows of dE the previous backward wrote, zeroing them when
 * untied (tied, the head's gradient overwrites all of dE). */
static void clear_rows(nc_model *m) {
    int V = m->b.V;
    for (int r = 0; !m->b.cfg.tie_lm_head && r < m->nrows; r++)
        memset(m->grad + (size_t)m->rows[r] * V, 0, (size_t)V * sizeof *m->grad);
    m->nrows = 0;
}

/* dE[x] (B rows) += dh (B, V), noting the distinct rows written. */
static void scatter_rows(nc_model *m, const int32_t *x, int B) {
    int V = m->b.V;
    for (int b = 0; b < B; b++) {
        float *row = m->grad + (size_t)x[b] * V;
        const float *dh = m->dh + (size_t)b * V;
        for (int i = 0; i < V; i++) row[i] += dh[i];
        if (!m->seen[x[b]]) m->rows[m->nrows++] = x[b];
        m->seen[x[b]] = 1;
    }
    for (int r = 0; r < m->nrows; r++) m->seen[m->rows[r]] = 0;
}

/* From dlogits: dW = dlogits^T @ h (overwritten); dh = dlogits @ W; dE[x] += dh. */
static void backward(nc_model *m, const int32_t *x, int B) {
    int V = m->b.V;
    float *dW = m->grad + nc_bigram_head_offset(&m->b);
    clear_rows(m);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, V, V, B, 1.0f, m->logits, V, m->h, V, 0.0f, dW, V);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, V, V, 1.0f, m->logits, V, head(m), V, 0.0f, m->dh, V);
    for (int b = 0; m->b.cfg.input_rmsnorm && b < B; b++)
        rmsnorm_backward(m->dh + (size_t)b * V, m->h + (size_t)b * V, m->rstd[b], V);
    scatter_rows(m, x, B);
}

double nc_tensor_bigram_grad(nc_model *m, const nc_batch *b, const float **grad) {
    int N = b->B * b->T;
    reserve(m, N);
    forward_logits(m, b->x, N);
    double total = softmax_ce(m->logits, b->y, N, m->b.V, NULL, 1.0f / (float)N);
    backward(m, b->x, N);
    *grad = m->grad;
    return total / N;
}

/* ---- update ---------------------------------------------------------------------------- */

/* Dense, or the head and the rows of E the batch touched when that is the same. */
static void update(nc_model *m) {
    nc_host_optim *o = &m->b.opt;
    nc_host_optim_begin(o);
    int64_t head_off = nc_bigram_head_offset(&m->b), V = m->b.V;
    if (head_off == 0 || !nc_host_optim_sparse(o)) {
        nc_host_optim_update(o, m->grad, 0, m->b.P);
        return;
    }
    nc_host_optim_update(o, m->grad, head_off, m->b.P);
    for (int r = 0; r < m->nrows; r++) nc_host_optim_update(o, m->grad, m->rows[r] * V, (m->rows[r] + 1) * V);
}

static int train_step(nc_model *m, const nc_batch *b, int64_t step, int64_t steps, double *loss, nc_error *err) {
    (void)step, (void)steps;
    const float *grad;
    if (m->dev && nc_bigram_device_grad(m->dev, &m->b, b, m->grad, loss, err)) return -1;
    if (!m->dev) *loss = nc_tensor_bigram_grad(m, b, &grad);
    if (nc_host_optim_guard(&m->b.opt, *loss, err)) return -1;
    if (m->dev) nc_host_optim_step(&m->b.opt, m->grad); /* a dense gradient */
    else update(m);
    return 0;
}

static int eval_losses(nc_model *m, const nc_batch *b, float *losses, nc_error *err) {
    if (m->dev) return nc_bigram_device_losses(m->dev, &m->b, b, losses, err);
    int N = b->B * b->T;
    reserve(m, N);
    forward_logits(m, b->x, N);
    softmax_ce(m->logits, b->y, N, m->b.V, losses, 0);
    return 0;
}

/* ---- decoding ---------------------------------------------------------------------------- */

/* out (n, V): the logits after each of ids (n) (nc_bigram_logits_fn), in
 * pieces of the buffers' rows. */
static int logits_after(nc_model *m, const int32_t *ids, int n, float *out, nc_error *err) {
    size_t V = (size_t)m->b.V;
    for (int i = 0; i < n; i++)
        if (m->dev && nc_bigram_device_logits(m->dev, &m->b, ids[i], out + i * V, err)) return -1;
    for (int i = 0; !m->dev && i < n; i += m->cap) {
        int rows = n - i < m->cap ? n - i : m->cap;
        forward_logits(m, ids + i, rows);
        memcpy(out + i * V, m->logits, (size_t)rows * V * sizeof *out);
    }
    return 0;
}

const nc_model_ops nc_tensor_bigram_ops = {
    .mode = NC_MODE_TENSOR,
    .kind = NC_KIND_BIGRAM,
    .auto_device = NC_DEVICE_CPU, /* --device cuda runs it on the gpu (device.c) */
    .resolve = resolve,
    .footprint = footprint,
    .memory_bytes = memory_bytes,
    .create = create,
    .destroy = destroy,
    .train_step = train_step,
    .eval_losses = eval_losses,
    NC_BIGRAM_SHARED_OPS,
};
