/* bigram.c: the character bigram on scalar autograd.
 *
 * Architecture (shared with the tensor bigram): a V x V embedding E; the
 * embedded token h = E[x], optionally RMS-normalized; logits = h @ W^T with W
 * a separate V x V lm head, or W = E when the head is tied. Each step builds
 * the graph of a batch of (x, y) pairs, sweeps it backward, and updates the
 * float parameters with SGD or AdamW. */
#include "../host_optim.h"
#include "../models/model.h"
#include "../rng.h"
#include "value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct nc_model {
    nc_train_cfg cfg;
    int V;
    int64_t P;        /* parameters: V*V (tied) or 2*V*V */
    float *w;         /* (P): E (V, V) then W (V, V) when untied */
    float *grad;      /* (P) */
    sv_id *leaf;      /* (P) graph node of each parameter this step, -1 when unused */
    nc_host_optim opt;
    sv_graph g;
};

static const float *head(const nc_model *m) { return m->cfg.tie_lm_head ? m->w : m->w + (int64_t)m->V * m->V; }

static int resolve(nc_train_cfg *cfg, const struct nc_backend *be, nc_error *err) {
    (void)be, (void)err;
    if (cfg->batch_size == 0) cfg->batch_size = 32;
    if (cfg->seq_len == 0) cfg->seq_len = 1;
    if (cfg->lr == 0) cfg->lr = strcmp(cfg->optimizer, "adamw") == 0 ? 0.03 : 3.0;
    if (cfg->weight_decay < 0) cfg->weight_decay = 0;
    if (cfg->eval_windows == 0) cfg->eval_windows = 4096;
    if (cfg->seq_len != 1) return nc_fail(err, NC_E_BAD_REQUEST, "args.seq_len must be 1 for a bigram");
    return 0;
}

static nc_model *create(const nc_train_cfg *cfg, const nc_vocab *vocab, struct nc_backend *be, nc_error *err) {
    (void)be, (void)err;
    nc_model *m = calloc(1, sizeof *m);
    m->cfg = *cfg;
    m->V = vocab->size;
    m->P = (cfg->tie_lm_head ? 1 : 2) * (int64_t)m->V * m->V;
    m->w = malloc((size_t)m->P * sizeof *m->w);
    m->grad = calloc((size_t)m->P, sizeof *m->grad);
    m->leaf = malloc((size_t)m->P * sizeof *m->leaf);
    nc_rng rng;
    nc_rng_seed(&rng, (uint64_t)cfg->seed, NC_STREAM_INIT);
    for (int64_t i = 0; i < m->P; i++) m->w[i] = (float)(0.1 * nc_rng_normal(&rng));
    nc_host_optim_init(&m->opt, cfg, m->P);
    sv_init(&m->g);
    return m;
}

static void destroy(nc_model *m) {
    nc_host_optim_free(&m->opt);
    sv_free(&m->g);
    free(m->w);
    free(m->grad);
    free(m->leaf);
    free(m);
}

/* Leaves of the V values starting at parameter `off`, made once per graph. */
static void leaves(nc_model *m, int64_t off, sv_id *out) {
    for (int i = 0; i < m->V; i++) {
        if (m->leaf[off + i] < 0) m->leaf[off + i] = sv_leaf(&m->g, m->w[off + i]);
        out[i] = m->leaf[off + i];
    }
}

/* The summed loss of the batch's pairs; per-pair losses to `each` when given. */
static sv_id batch_loss(nc_model *m, const nc_batch *b, float *each) {
    int V = m->V;
    int64_t head_off = m->cfg.tie_lm_head ? 0 : (int64_t)V * V;
    sv_reset(&m->g);
    for (int64_t i = 0; i < m->P; i++) m->leaf[i] = -1;
    sv_id *h = malloc((size_t)V * sizeof *h), *row = malloc((size_t)V * sizeof *row);
    sv_id *logits = malloc((size_t)V * sizeof *logits), total = -1;
    for (int n = 0; n < b->B * b->T; n++) {
        leaves(m, (int64_t)b->x[n] * V, h);
        if (m->cfg.input_rmsnorm) sv_rmsnorm(&m->g, h, V, h);
        for (int j = 0; j < V; j++) {
            leaves(m, head_off + (int64_t)j * V, row);
            logits[j] = sv_dot(&m->g, h, row, V);
        }
        sv_id l = sv_cross_entropy(&m->g, logits, V, b->y[n]);
        if (each) each[n] = (float)sv_val(&m->g, l);
        total = total < 0 ? l : sv_add(&m->g, total, l);
    }
    free(h);
    free(row);
    free(logits);
    return total;
}

static int train_step(nc_model *m, const nc_batch *b, int64_t step, int64_t steps, double *loss, nc_error *err) {
    (void)step, (void)steps, (void)err;
    sv_id total = sv_scale(&m->g, batch_loss(m, b, NULL), 1.0 / (b->B * b->T));
    *loss = sv_val(&m->g, total);
    if (!isfinite(*loss)) return nc_fail(err, NC_E_NON_FINITE_LOSS, "the loss is %g", *loss);
    sv_backward(&m->g, total);
    for (int64_t i = 0; i < m->P; i++) m->grad[i] = m->leaf[i] >= 0 ? (float)sv_grad(&m->g, m->leaf[i]) : 0.0f;
    nc_host_optim_step(&m->opt, m->w, m->grad);
    return 0;
}

static int eval_losses(nc_model *m, const nc_batch *b, float *losses, nc_error *err) {
    (void)err;
    batch_loss(m, b, losses);
    return 0;
}

static int context_len(const nc_model *m) { (void)m; return 1; }

struct nc_decoder {
    nc_model *m;
};

static nc_decoder *decoder_new(nc_model *m, nc_error *err) {
    (void)err;
    nc_decoder *d = malloc(sizeof *d);
    d->m = m;
    return d;
}

/* Logits of the token after the last fed one, in plain double arithmetic. */
static int decoder_feed(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err) {
    (void)err;
    const nc_model *m = d->m;
    int V = m->V;
    const float *e = m->w + (int64_t)ids[n - 1] * V, *wh = head(m);
    double scale = 1.0;
    if (m->cfg.input_rmsnorm) {
        double ss = 0;
        for (int i = 0; i < V; i++) ss += (double)e[i] * e[i];
        scale = 1.0 / sqrt(ss / V + 1.1920928955078125e-07);
    }
    for (int j = 0; j < V; j++) {
        double s = 0;
        for (int i = 0; i < V; i++) s += (double)e[i] * scale * wh[(int64_t)j * V + i];
        logits[j] = (float)s;
    }
    return 0;
}

static void decoder_free(nc_decoder *d) { free(d); }

static int export_state(nc_model *m, bool optimizer, nc_tensor_list *out, nc_error *err) {
    (void)err;
    int64_t shape[2] = {m->V, m->V}, n = (int64_t)m->V * m->V;
    memcpy(nc_tensors_add(out, "wte.weight", 2, shape)->data, m->w, (size_t)n * sizeof(float));
    if (!m->cfg.tie_lm_head) memcpy(nc_tensors_add(out, "lm_head.weight", 2, shape)->data, m->w + n, (size_t)n * sizeof(float));
    if (optimizer) nc_host_optim_export(&m->opt, out);
    return 0;
}

static int import_state(nc_model *m, const nc_tensor_list *in, bool optimizer, nc_error *err) {
    int64_t shape[2] = {m->V, m->V}, n = (int64_t)m->V * m->V;
    if (nc_tensors_take(in, "wte.weight", 2, shape, m->w, err)) return -1;
    if (!m->cfg.tie_lm_head && nc_tensors_take(in, "lm_head.weight", 2, shape, m->w + n, err)) return -1;
    return optimizer ? nc_host_optim_import(&m->opt, in, err) : 0;
}

static int64_t num_params(const nc_model *m) { return m->P; }

const nc_model_ops nc_scalar_bigram_ops = {
    .mode = "scalar",
    .kind = "bigram",
    .resolve = resolve,
    .create = create,
    .destroy = destroy,
    .train_step = train_step,
    .eval_losses = eval_losses,
    .context_len = context_len,
    .decoder_new = decoder_new,
    .decoder_feed = decoder_feed,
    .decoder_free = decoder_free,
    .export_state = export_state,
    .import_state = import_state,
    .num_params = num_params,
};
