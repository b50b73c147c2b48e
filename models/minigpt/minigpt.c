/* minigpt.c: the one-layer GPT of minigpt.h on scalar autograd. Each step
 * builds one graph over leaves of every parameter and the B windows of the
 * batch, sweeps it backward, and updates the float parameters with SGD or
 * AdamW. Evaluation and decoding build the same forward graph, one window at
 * a time, and read its values. */
#include "minigpt.h"
#include "optim/host_optim.h"
#include "core/rng.h"
#include "models/autograd/value.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define BLOCK NC_MINIGPT_BLOCK_SIZE
#define C NC_MINIGPT_EMBD
#define HEADS NC_MINIGPT_HEADS
#define HD (C / HEADS)
#define HIDDEN (4 * C)
#define INIT_STD 0.08

enum { W_TE, W_PE, W_Q, W_K, W_V, W_PROJ, W_FC, W_FC_PROJ, W_HEAD, W_COUNT };

static const char *const weight_names[W_COUNT] = {
    "wte.weight",         "wpe.weight",      "attn.c_q.weight", "attn.c_k.weight",   "attn.c_v.weight",
    "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight", "lm_head.weight"};

typedef struct weight {
    int64_t off;      /* first parameter (and leaf node) of the matrix */
    int rows, cols;   /* rows 0: absent (lm_head when tied) */
} weight;

struct nc_model {
    nc_model_cfg cfg;
    int V;
    weight wt[W_COUNT];
    int64_t P;
    float *w, *grad;        /* (P) */
    nc_host_optim opt;
    sv_graph g;             /* nodes 0..P-1 are the parameters' leaves */
    sv_id x[BLOCK][C];      /* (T, C) residual stream of the window */
    sv_id q[BLOCK][C], k[BLOCK][C], v[BLOCK][C]; /* (T, C) each */
    sv_id *logits;          /* (V) */
};

/* ---- parameters ------------------------------------------------------------------ */

static void layout(nc_model *m, bool tied) {
    const int shape[W_COUNT][2] = {{m->V, C}, {BLOCK, C},  {C, C},      {C, C},           {C, C},
                                   {C, C},    {HIDDEN, C}, {C, HIDDEN}, {tied ? 0 : m->V, C}};
    m->P = 0;
    for (int i = 0; i < W_COUNT; i++) {
        m->wt[i] = (weight){m->P, shape[i][0], shape[i][1]};
        m->P += (int64_t)shape[i][0] * shape[i][1];
    }
}

/* The lm head's first leaf: wte when tied. */
static sv_id head(const nc_model *m) { return (sv_id)m->wt[m->wt[W_HEAD].rows ? W_HEAD : W_TE].off; }

static int resolve(nc_model_cfg *cfg, const struct nc_backend *be, int64_t *eval_windows, nc_error *err) {
    (void)be;
    if (cfg->batch_size == 0) cfg->batch_size = 8;
    if (cfg->seq_len == 0) cfg->seq_len = BLOCK;
    if (cfg->lr == 0) cfg->lr = cfg->optimizer == NC_OPTIMIZER_ADAMW ? 0.01 : 0.3;
    if (cfg->weight_decay < 0) cfg->weight_decay = 0;
    if (*eval_windows == 0) *eval_windows = 256;
    if (cfg->seq_len > BLOCK)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.seq_len %lld exceeds the mini-gpt's BLOCK_SIZE (%d)",
                       (long long)cfg->seq_len, BLOCK);
    return 0;
}

/* Graph nodes per position (an upper bound): the linear layers (2 x 12 C^2),
 * attention over at most BLOCK positions, the norms and activations, the
 * head (2 V C) and its cross-entropy (under 8 V). */
static double nodes_per_position(double V) {
    return 24.0 * C * C + HEADS * BLOCK * (4.0 * HD + 8) + 32.0 * C + 2 * V * C + 8 * V + 16;
}

static void footprint(const nc_model_cfg *cfg, int V, const struct nc_backend *be, nc_footprint *out) {
    (void)be;
    nc_model m = {.V = V};
    layout(&m, cfg->tie_lm_head);
    double positions = (double)cfg->batch_size * (double)cfg->seq_len, P = (double)m.P;
    *out = (nc_footprint){.host = (2 * sizeof(float) + sizeof(sv_id)) * P + nc_host_optim_bytes(cfg, m.P) +
                                  sv_graph_bytes(P + positions * nodes_per_position(V)),
                          .host_transient = 2 * sizeof(float) * P};
}

static int64_t memory_bytes(const nc_model *m) {
    return (int64_t)((2 * sizeof(float) + sizeof(sv_id)) * (double)m->P + nc_host_optim_bytes(&m->cfg, m->P)) +
           (int64_t)m->g.cap * (int64_t)sizeof(sv_node);
}

static nc_model *create(const nc_model_cfg *cfg, int V, struct nc_backend *be, nc_error *err) {
    (void)be, (void)err;
    nc_model *m = nc_xcalloc(1, sizeof *m);
    m->cfg = *cfg;
    m->V = V;
    layout(m, cfg->tie_lm_head);
    m->w = nc_xmalloc((size_t)m->P * sizeof *m->w);
    m->grad = nc_xcalloc((size_t)m->P, sizeof *m->grad);
    m->logits = nc_xmalloc((size_t)m->V * sizeof *m->logits);
    nc_rng rng;
    nc_rng_seed(&rng, (uint64_t)cfg->seed, NC_STREAM_INIT);
    for (int64_t i = 0; i < m->P; i++) m->w[i] = (float)(INIT_STD * nc_rng_normal(&rng));
    nc_host_optim_init(&m->opt, cfg, m->w, m->P);
    sv_init(&m->g);
    return m;
}

static void destroy(nc_model *m) {
    nc_host_optim_free(&m->opt);
    sv_free(&m->g);
    free(m->w);
    free(m->grad);
    free(m->logits);
    free(m);
}

/* ---- forward ----------------------------------------------------------------------- */


static void embed(nc_model *m, const int32_t *tok, int T) {
    sv_graph *g = &m->g;
    for (int t = 0; t < T; t++) {
        sv_id te = (sv_id)(m->wt[W_TE].off + (int64_t)tok[t] * C), pe = (sv_id)(m->wt[W_PE].off + t * C);
        for (int c = 0; c < C; c++) m->x[t][c] = sv_add(g, te + c, pe + c);
        if (m->cfg.input_rmsnorm) sv_rmsnorm(g, m->x[t], C, m->x[t]);
    }
}

/* out (C) = the causal attention of position t over positions 0..t, per head. */
static void attend(nc_model *m, int t, sv_id *out) {
    sv_graph *g = &m->g;
    sv_id att[BLOCK], col[BLOCK];
    for (int h = 0; h < HEADS; h++) {
        for (int u = 0; u <= t; u++) att[u] = sv_scale(g, sv_dot(g, m->q[t] + h * HD, m->k[u] + h * HD, HD), 1.0 / sqrt(HD));
        sv_softmax(g, att, t + 1, att);
        for (int d = 0; d < HD; d++) {
            for (int u = 0; u <= t; u++) col[u] = m->v[u][h * HD + d];
            out[h * HD + d] = sv_dot(g, att, col, t + 1);
        }
    }
}

static void residual_add(sv_graph *g, sv_id *x, const sv_id *y) {
    for (int c = 0; c < C; c++) x[c] = sv_add(g, x[c], y[c]);
}

static void attention(nc_model *m, int T) {
    sv_graph *g = &m->g;
    sv_id xn[C], out[C], y[C];
    for (int t = 0; t < T; t++) {
        sv_rmsnorm(g, m->x[t], C, xn);
        sv_linear(g, xn, C, (sv_id)m->wt[W_Q].off, C, m->q[t]);
        sv_linear(g, xn, C, (sv_id)m->wt[W_K].off, C, m->k[t]);
        sv_linear(g, xn, C, (sv_id)m->wt[W_V].off, C, m->v[t]);
    }
    for (int t = 0; t < T; t++) {
        attend(m, t, out);
        sv_linear(g, out, C, (sv_id)m->wt[W_PROJ].off, C, y);
        residual_add(g, m->x[t], y);
    }
}

static void mlp(nc_model *m, int T) {
    sv_graph *g = &m->g;
    sv_id xn[C], hid[HIDDEN], y[C];
    for (int t = 0; t < T; t++) {
        sv_rmsnorm(g, m->x[t], C, xn);
        sv_linear(g, xn, C, (sv_id)m->wt[W_FC].off, HIDDEN, hid);
        for (int i = 0; i < HIDDEN; i++) {
            sv_id r = sv_relu(g, hid[i]);
            hid[i] = sv_mul(g, r, r);
        }
        sv_linear(g, hid, HIDDEN, (sv_id)m->wt[W_FC_PROJ].off, C, y);
        residual_add(g, m->x[t], y);
    }
}

/* The residual stream x (T, C) of a window of T <= BLOCK tokens. */
static void forward(nc_model *m, const int32_t *tok, int T) {
    embed(m, tok, T);
    attention(m, T);
    mlp(m, T);
}

/* Cross-entropy of position t's logits against `target`. */
static sv_id position_loss(nc_model *m, int t, int32_t target) {
    sv_linear(&m->g, m->x[t], C, head(m), m->V, m->logits);
    return sv_cross_entropy(&m->g, m->logits, m->V, target);
}

/* Adds window b's losses to *total; per-token losses to `each` (T) when given. */
static void window_loss(nc_model *m, const nc_batch *b, int w, sv_id *total, float *each) {
    const int32_t *x = b->x + (size_t)w * b->T, *y = b->y + (size_t)w * b->T;
    forward(m, x, b->T);
    for (int t = 0; t < b->T; t++) {
        sv_id l = position_loss(m, t, y[t]);
        if (each) each[t] = (float)sv_val(&m->g, l);
        *total = *total < 0 ? l : sv_add(&m->g, *total, l);
    }
}

/* ---- training and evaluation --------------------------------------------------------- */

static int train_step(nc_model *m, const nc_batch *b, int64_t step, int64_t steps, double *loss, nc_error *err) {
    (void)step, (void)steps;
    sv_begin(&m->g, m->w, m->P);
    sv_id total = -1;
    for (int w = 0; w < b->B; w++) window_loss(m, b, w, &total, NULL);
    total = sv_scale(&m->g, total, 1.0 / (b->B * b->T));
    *loss = sv_val(&m->g, total);
    if (nc_host_optim_guard(&m->opt, *loss, err)) return -1;
    sv_backward(&m->g, total);
    sv_leaf_grads(&m->g, m->grad, m->P);
    nc_host_optim_step(&m->opt, m->grad);
    return 0;
}

static int eval_losses(nc_model *m, const nc_batch *b, float *losses, nc_error *err) {
    (void)err;
    for (int w = 0; w < b->B; w++) {
        sv_id total = -1;
        sv_begin(&m->g, m->w, m->P);
        window_loss(m, b, w, &total, losses + (size_t)w * b->T);
    }
    return 0;
}

static int context_len(const nc_model *m) {
    (void)m;
    return BLOCK;
}

/* ---- decoding: a sliding window of the last BLOCK tokens ------------------------------ */

/* Each sequence's sliding context of the last BLOCK tokens. */
typedef struct context {
    int32_t ids[BLOCK];
    int n;
} context;

struct nc_decoder {
    nc_model *m;
    int batch;
    context *ctx; /* (batch) */
};

static nc_decoder *decoder_new(nc_model *m, int batch, int64_t positions, nc_error *err) {
    (void)positions, (void)err;
    nc_decoder *d = nc_xcalloc(1, sizeof *d);
    *d = (nc_decoder){m, batch, nc_xcalloc((size_t)batch, sizeof *d->ctx)};
    return d;
}

static void push(context *c, int32_t id) {
    if (c->n == BLOCK) memmove(c->ids, c->ids + 1, (BLOCK - 1) * sizeof *c->ids);
    c->ids[c->n < BLOCK ? c->n++ : BLOCK - 1] = id;
}

/* logits (V) after a context. */
static void context_logits(nc_model *m, const context *c, float *logits) {
    sv_begin(&m->g, m->w, m->P);
    forward(m, c->ids, c->n);
    sv_linear(&m->g, m->x[c->n - 1], C, head(m), m->V, m->logits);
    for (int j = 0; j < m->V; j++) logits[j] = (float)sv_val(&m->g, m->logits[j]);
}

static int decoder_feed(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err) {
    (void)err;
    for (int b = 0; b < d->batch; b++)
        for (int i = 0; i < n; i++) push(&d->ctx[b], ids[i]);
    context_logits(d->m, &d->ctx[0], logits);
    return 0;
}

static int decoder_step(nc_decoder *d, const int32_t *ids, float *logits, nc_error *err) {
    (void)err;
    for (int b = 0; b < d->batch; b++) {
        push(&d->ctx[b], ids[b]);
        context_logits(d->m, &d->ctx[b], logits + (size_t)b * d->m->V);
    }
    return 0;
}

static void decoder_free(nc_decoder *d) {
    free(d->ctx);
    free(d);
}

/* ---- state -------------------------------------------------------------------------------- */

static int export_state(nc_model *m, bool optimizer, nc_tensor_list *out, nc_error *err) {
    for (int i = 0; i < W_COUNT; i++) {
        const weight *w = &m->wt[i];
        int64_t shape[2] = {w->rows, w->cols};
        if (w->rows && nc_tensors_put(out, weight_names[i], 2, shape, m->w + w->off, err)) return -1;
    }
    return optimizer ? nc_host_optim_export(&m->opt, out, err) : 0;
}

static int state_spec(const nc_model_cfg *cfg, int V, bool optimizer, nc_tensor_list *out, nc_error *err) {
    nc_model m = {.V = V};
    layout(&m, cfg->tie_lm_head);
    for (int i = 0; i < W_COUNT; i++) {
        int64_t shape[2] = {m.wt[i].rows, m.wt[i].cols};
        if (m.wt[i].rows && nc_tensors_declare(out, weight_names[i], 2, shape))
            return nc_fail(err, NC_E_INTERNAL, "out of memory");
    }
    return optimizer && nc_host_optim_spec(cfg, m.P, out) ? nc_fail(err, NC_E_INTERNAL, "out of memory") : 0;
}

static int import_state(nc_model *m, const nc_tensor_list *in, bool optimizer, int64_t step, nc_error *err) {
    if (optimizer && nc_host_optim_import(&m->opt, in, step, err)) return -1;
    for (int i = 0; i < W_COUNT; i++) {
        const weight *w = &m->wt[i];
        int64_t shape[2] = {w->rows, w->cols};
        if (w->rows && nc_tensors_take(in, weight_names[i], 2, shape, m->w + w->off, err)) return -1;
    }
    return 0;
}

static int64_t updates(const nc_model *m) { return nc_host_optim_updates(&m->opt); }

static int64_t num_params(const nc_model *m) { return m->P; }

static json_t *describe(const nc_model *m) {
    (void)m;
    return json_pack("{s:i, s:i, s:i, s:i}", "n_layer", 1, "n_embd", C, "n_head", HEADS, "block_size", BLOCK);
}

const nc_model_ops nc_scalar_minigpt_ops = {
    .mode = NC_MODE_SCALAR,
    .kind = NC_KIND_MINI_GPT,
    .resolve = resolve,
    .footprint = footprint,
    .memory_bytes = memory_bytes,
    .create = create,
    .destroy = destroy,
    .train_step = train_step,
    .eval_losses = eval_losses,
    .context_len = context_len,
    .decoder_new = decoder_new,
    .decoder_feed = decoder_feed,
    .decoder_step = decoder_step,
    .decoder_free = decoder_free,
    .export_state = export_state,
    .import_state = import_state,
    .state_spec = state_spec,
    .num_params = num_params,
    .updates = updates,
    .describe = describe,
};
