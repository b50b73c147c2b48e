/* scalar.c: the character bigram (bigram.h) on scalar
 * autograd. Each step builds the graph of a batch of (x, y) pairs over
 * leaves of every parameter, sweeps it backward, and updates the float
 * parameters with SGD or AdamW. */
#include "scalar.h"
#include "bigram.h"
#include "models/autograd/value.h"

#include <math.h>
#include <stdlib.h>

struct nc_model {
    nc_bigram b;      /* first: the shared bigram ops (models/bigram.h) see an nc_bigram */
    float *grad;      /* (P) */
    sv_id *h, *logits; /* (V) each: nodes of the embedded token, of the logits */
    sv_graph g;
};

static int resolve(nc_model_cfg *cfg, const struct nc_backend *be, int64_t *eval_windows, nc_error *err) {
    (void)be;
    return nc_bigram_resolve(cfg, eval_windows, err);
}

/* Graph nodes per pair: the linear head (2 V^2), the RMSNorm and the
 * cross-entropy (under 8 V), the running sum. */
static double nodes_per_pair(double V) { return 2 * V * V + 8 * V + 16; }

static void footprint(const nc_model_cfg *cfg, int V, const struct nc_backend *be, nc_footprint *out) {
    (void)be;
    double P = (cfg->tie_lm_head ? 1.0 : 2.0) * V * V, pairs = (double)cfg->batch_size * (double)cfg->seq_len;
    *out = (nc_footprint){.host = nc_bigram_bytes(cfg, V) + 2.0 * V * sizeof(sv_id) +
                                  sv_graph_bytes(P + pairs * nodes_per_pair(V)),
                          .host_transient = 2 * sizeof(float) * P};
}

static int64_t memory_bytes(const nc_model *m) {
    return (int64_t)nc_bigram_bytes(&m->b.cfg, m->b.V) + 2 * (int64_t)m->b.V * (int64_t)sizeof(sv_id) +
           (int64_t)m->g.cap * (int64_t)sizeof(sv_node);
}

static int logits_after(nc_model *m, const int32_t *ids, int n, float *out, nc_error *err);

static nc_model *create(const nc_model_cfg *cfg, int V, struct nc_backend *be, nc_error *err) {
    (void)be, (void)err;
    nc_model *m = nc_xcalloc(1, sizeof *m);
    nc_bigram_init(&m->b, cfg, V, logits_after);
    m->grad = nc_xcalloc((size_t)m->b.P, sizeof *m->grad);
    m->h = nc_xmalloc((size_t)m->b.V * sizeof *m->h);
    m->logits = nc_xmalloc((size_t)m->b.V * sizeof *m->logits);
    sv_init(&m->g);
    return m;
}

static void destroy(nc_model *m) {
    nc_bigram_free(&m->b);
    sv_free(&m->g);
    free(m->grad);
    free(m->h);
    free(m->logits);
    free(m);
}

/* Nodes of the logits (V) of the token after x, into m->logits. */
static void forward(nc_model *m, int32_t x) {
    int V = m->b.V;
    for (int i = 0; i < V; i++) m->h[i] = (sv_id)((int64_t)x * V + i);
    if (m->b.cfg.input_rmsnorm) sv_rmsnorm(&m->g, m->h, V, m->h);
    sv_linear(&m->g, m->h, V, (sv_id)nc_bigram_head_offset(&m->b), V, m->logits);
}

/* The summed loss of the batch's pairs; per-pair losses to `each` when given. */
static sv_id batch_loss(nc_model *m, const nc_batch *b, float *each) {
    sv_begin(&m->g, m->b.w, m->b.P);
    sv_id total = -1;
    for (int n = 0; n < b->B * b->T; n++) {
        forward(m, b->x[n]);
        sv_id l = sv_cross_entropy(&m->g, m->logits, m->b.V, b->y[n]);
        if (each) each[n] = (float)sv_val(&m->g, l);
        total = total < 0 ? l : sv_add(&m->g, total, l);
    }
    return total;
}

double nc_scalar_bigram_grad(nc_model *m, const nc_batch *b, const float **grad) {
    sv_id total = batch_loss(m, b, NULL);
    total = sv_scale(&m->g, total, 1.0 / (b->B * b->T));
    sv_backward(&m->g, total);
    sv_leaf_grads(&m->g, m->grad, m->b.P);
    *grad = m->grad;
    return sv_val(&m->g, total);
}

static int train_step(nc_model *m, const nc_batch *b, int64_t step, int64_t steps, double *loss, nc_error *err) {
    (void)step, (void)steps;
    const float *grad;
    *loss = nc_scalar_bigram_grad(m, b, &grad);
    if (nc_host_optim_guard(&m->b.opt, *loss, err)) return -1;
    nc_host_optim_step(&m->b.opt, grad);
    return 0;
}

static int eval_losses(nc_model *m, const nc_batch *b, float *losses, nc_error *err) {
    (void)err;
    batch_loss(m, b, losses);
    return 0;
}

/* out (n, V): the logits after each of ids (n) (nc_bigram_logits_fn). */
static int logits_after(nc_model *m, const int32_t *ids, int n, float *out, nc_error *err) {
    (void)err;
    for (int i = 0; i < n; i++) {
        sv_begin(&m->g, m->b.w, m->b.P);
        forward(m, ids[i]);
        for (int j = 0; j < m->b.V; j++) out[(size_t)i * m->b.V + j] = (float)sv_val(&m->g, m->logits[j]);
    }
    return 0;
}

const nc_model_ops nc_scalar_bigram_ops = {
    .mode = NC_MODE_SCALAR,
    .kind = NC_KIND_BIGRAM,
    .resolve = resolve,
    .footprint = footprint,
    .memory_bytes = memory_bytes,
    .create = create,
    .destroy = destroy,
    .train_step = train_step,
    .eval_losses = eval_losses,
    NC_BIGRAM_SHARED_OPS,
};
