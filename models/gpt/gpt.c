/* gpt.c: the GPT as an nc_model: config defaults, creation, the training
 * step (forward, backward, MuonAdamW), evaluation and state exchange. */
#include "internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define OPS (m->be->ops)
#define DEFAULT_WEIGHT_DECAY 0.28
#define DEFAULT_SEQ_LEN 256
#define EVAL_BATCHES 20
#define ALLOC_SLACK (64.0 * 1024) /* default eval: 20 batches' worth of windows, as the reference runs */

/* The device (or, on the cpu, host) bytes of gpt_create and a training step:
 * parameters, gradients and the backup (f32), their act copy, the rotary
 * tables, Muon+AdamW's state and buffers, and the activations of a batch.
 * While it saves or loads, the host holds the state's copy (weights and two
 * moments) twice (the file's bytes and the tensors). A config no GPT can
 * have needs infinitely much. */
static void gpt_footprint(const nc_model_cfg *cfg, int V, const nc_backend *be, nc_footprint *out) {
    *out = (nc_footprint){.host = INFINITY};
    nc_model *m = calloc(1, sizeof *m);
    nc_error ignored;
    if (!m) return;
    m->cfg = *cfg;
    m->be = (nc_backend *)be; /* for gpt_head_rows: read, never used */
    if (nc_gpt_config_init(&m->g, cfg, V, &ignored) == 0 && gpt_layout_init(&m->lay, &m->g, &ignored) == 0) {
        size_t act = be ? nc_dtype_size(be->act) : sizeof(float);
        int64_t N = cfg->batch_size * cfg->seq_len;
        double P = (double)m->lay.total, rotary = 2.0 * sizeof(float) * GPT_ROPE_SPAN * m->g.seq_len * (m->g.head_dim / 2);
        nc_muon_setup s;
        gpt_optimizer_setup(m, &s);
        double bytes = 2 * sizeof(float) * P + (act != sizeof(float) ? (double)act * P : 0) + rotary +
                       nc_muonadamw_bytes(&s, m->lay.total, act) + nc_snapshot_bytes(m->lay.total) +
                       nc_snapshot_bytes(nc_muonadamw_state_floats(&s, m->lay.total)) +
                       (double)gpt_buffers_bytes(m, act, N, gpt_head_rows(m, N), true) +
                       ALLOC_SLACK; /* backends round each of its few dozen buffers up */
        bool device = be && be->gpu;
        *out = (nc_footprint){.device = device ? bytes : 0, .host = device ? 0 : bytes,
                              .host_transient = 2 * 3 * sizeof(float) * P};
        gpt_layout_free(&m->lay);
    }
    free(m);
}

static int gpt_resolve(nc_model_cfg *cfg, const nc_backend *be, int64_t *eval_windows, nc_error *err) {
    if (cfg->tie_lm_head || cfg->input_rmsnorm)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.%s: gpt never ties lm_head and always normalizes its input",
                       cfg->tie_lm_head ? "tie_lm_head" : "input_rmsnorm");
    if (cfg->batch_size == 0) cfg->batch_size = be && be->gpu ? 64 : 8;
    if (cfg->seq_len == 0) cfg->seq_len = DEFAULT_SEQ_LEN;
    if (cfg->weight_decay < 0) cfg->weight_decay = DEFAULT_WEIGHT_DECAY;
    if (*eval_windows == 0) *eval_windows = EVAL_BATCHES * cfg->batch_size;
    nc_gpt_config g;
    return nc_gpt_config_init(&g, cfg, 1, err);
}

void gpt_sync_weights(nc_model *m) {
    if (m->wact != m->params) OPS->cast(m->be, m->wact, m->be->act, m->params, NC_F32, m->lay.total);
}

/* Upstream's rotary tables in f32: inv_freq = 1 / base^(2i / D), angle = t * inv_freq. */
static int rotary_tables(nc_model *m, nc_error *err) {
    int half = m->g.head_dim / 2;
    int64_t n = (int64_t)GPT_ROPE_SPAN * m->g.seq_len * half;
    float *c = malloc(sizeof(float) * (size_t)n), *s = malloc(sizeof(float) * (size_t)n);
    m->cos = OPS->alloc(m->be, sizeof(float) * (size_t)n);
    m->sin = OPS->alloc(m->be, sizeof(float) * (size_t)n);
    if (!c || !s || !m->cos || !m->sin) {
        free(c);
        free(s);
        return nc_fail(err, NC_E_INTERNAL, "out of memory for the rotary tables");
    }
    for (int i = 0; i < half; i++) {
        float inv = 1.0f / powf(GPT_ROPE_BASE, (float)(2 * i) / (float)m->g.head_dim);
        for (int64_t t = 0; t < n / half; t++) {
            float angle = (float)t * inv;
            c[t * half + i] = (float)cos((double)angle);
            s[t * half + i] = (float)sin((double)angle);
        }
    }
    OPS->upload(m->be, m->cos, c, sizeof(float) * (size_t)n);
    OPS->upload(m->be, m->sin, s, sizeof(float) * (size_t)n);
    free(c);
    free(s);
    return 0;
}

static int init_weights(nc_model *m, nc_error *err) {
    size_t bytes = sizeof(float) * (size_t)m->lay.total;
    float *host = malloc(bytes);
    if (!host) return nc_fail(err, NC_E_INTERNAL, "out of memory");
    gpt_init_weights(&m->lay, &m->g, (uint64_t)m->cfg.seed, host);
    OPS->upload(m->be, m->params, host, bytes);
    free(host);
    gpt_sync_weights(m);
    return 0;
}

static void gpt_destroy(nc_model *m) {
    if (!m) return;
    gpt_stepper_free(m); /* first: its graph reads the buffers below */
    gpt_buffers_free(m, &m->train);
    nc_snapshot_free(&m->snap);
    nc_muonadamw_free(m->opt);
    void *bufs[] = {m->params, m->grads, m->cos, m->sin, m->wact != m->params ? m->wact : NULL};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) OPS->free(m->be, bufs[i]);
    gpt_layout_free(&m->lay);
    free(m);
}

static int alloc_arenas(nc_model *m, nc_error *err) {
    size_t bytes = sizeof(float) * (size_t)m->lay.total;
    m->params = OPS->alloc(m->be, bytes);
    m->grads = OPS->alloc(m->be, bytes);
    m->wact = m->be->act == NC_F32 ? m->params : OPS->alloc(m->be, nc_dtype_size(m->be->act) * (size_t)m->lay.total);
    if (!m->params || !m->grads || !m->wact)
        return nc_fail(err, NC_E_INTERNAL, "out of %s memory for %lld parameters", m->be->name, (long long)m->lay.total);
    nc_muon_setup s;
    gpt_optimizer_setup(m, &s);
    int64_t state_floats;
    if (!(m->opt = nc_muonadamw_new(m->be, &s, m->lay.total, err))) return -1;
    float *state = nc_muonadamw_state(m->opt, &state_floats);
    return nc_snapshot_add(&m->snap, m->be, m->params, m->lay.total, err) ||
           nc_snapshot_add(&m->snap, m->be, state, state_floats, err) ? -1 : 0;
}

static nc_model *gpt_create(const nc_model_cfg *cfg, int V, nc_backend *be, nc_error *err) {
    nc_model *m = calloc(1, sizeof *m);
    if (!m) return nc_fail(err, NC_E_INTERNAL, "out of memory"), NULL;
    m->be = be;
    m->cfg = *cfg;
    if (nc_gpt_config_init(&m->g, cfg, V, err) || gpt_layout_init(&m->lay, &m->g, err)) {
        free(m);
        return NULL;
    }
    nc_gpt_batch_scaling(&m->g, cfg, &m->lr_scale, &m->wd);
    if (alloc_arenas(m, err) || rotary_tables(m, err) || init_weights(m, err) || gpt_stepper_new(m, err)) {
        gpt_destroy(m);
        return NULL;
    }
    return m;
}

int gpt_load_batch(nc_model *m, const nc_batch *b, bool targets, gpt_pass *p, nc_error *err) {
    int64_t N = (int64_t)b->B * b->T;
    if (b->B < 1 || b->T < 1 || b->T > m->g.seq_len)
        return nc_fail(err, NC_E_BAD_REQUEST, "batch of %d x %d tokens: T must be 1..%d", b->B, b->T, m->g.seq_len);
    for (int64_t i = 0; i < N; i++)
        if (b->x[i] < 0 || b->x[i] >= m->g.vocab || (targets && (b->y[i] < 0 || b->y[i] >= m->g.vocab)))
            return nc_fail(err, NC_E_BAD_REQUEST, "token %lld of the batch is outside the vocabulary", (long long)i);
    if (m->train.capacity < N) {
        gpt_buffers_free(m, &m->train);
        if (gpt_buffers_init(m, &m->train, N, gpt_head_rows(m, N), true, err)) return -1;
    }
    OPS->upload(m->be, m->train.ids, b->x, sizeof(int32_t) * (size_t)N);
    if (targets) OPS->upload(m->be, m->train.targets, b->y, sizeof(int32_t) * (size_t)N);
    *p = (gpt_pass){.B = b->B, .T = b->T};
    return 0;
}

int nc_gpt_forward_backward(nc_model *m, const nc_batch *b, double *loss, nc_error *err) {
    gpt_pass p;
    if (gpt_load_batch(m, b, true, &p, err)) return -1;
    gpt_forward(m, &m->train, &p);
    gpt_backward(m, &m->train, &p);
    float l;
    OPS->download(m->be, &l, m->train.loss, sizeof l);
    *loss = l;
    return OPS->sync(m->be, err);
}

void nc_gpt_optimizer_step(nc_model *m, int64_t step, int64_t steps) {
    nc_muonadamw_step(m->opt, m->params, m->grads, step, steps, ++m->snap.step);
    gpt_sync_weights(m);
}

static int gpt_train_step(nc_model *m, const nc_batch *b, int64_t step, int64_t steps, double *loss, nc_error *err) {
    return gpt_stepper_step(m, b, step, steps, loss, err);
}

static int gpt_drain(nc_model *m, double *loss, nc_error *err) { return gpt_stepper_drain(m, loss, err); }

static int gpt_loss_lag(const nc_model *m) { return gpt_stepper_lagged(m) ? 1 : 0; }

static int gpt_eval_losses(nc_model *m, const nc_batch *b, float *losses, nc_error *err) {
    gpt_pass p;
    if (gpt_load_batch(m, b, true, &p, err)) return -1;
    int64_t N = (int64_t)b->B * b->T;
    gpt_forward(m, &m->train, &p);
    gpt_head_loss(m, &m->train, N, false);
    OPS->download(m->be, losses, m->train.losses, sizeof(float) * (size_t)N);
    return OPS->sync(m->be, err);
}

int nc_gpt_logits(nc_model *m, const nc_batch *b, float *logits, nc_error *err) {
    gpt_pass p;
    if (gpt_load_batch(m, b, false, &p, err)) return -1;
    int64_t N = (int64_t)b->B * b->T, R = gpt_head_rows(m, N), V = m->g.vocab;
    size_t bytes = sizeof(float) * (size_t)N * (size_t)V;
    float *dev = OPS->alloc(m->be, bytes);
    if (!dev) return nc_fail(err, NC_E_INTERNAL, "out of memory for logits");
    gpt_forward(m, &m->train, &p);
    for (int64_t r = 0; r < N; r += R) {
        int64_t k = N - r < R ? N - r : R;
        gpt_head_logits(m, &m->train, r, k);
        OPS->softcap(m->be, dev + r * V, m->train.logits, k, (int)V, m->g.padded_vocab, GPT_SOFTCAP);
    }
    OPS->download(m->be, logits, dev, bytes);
    OPS->free(m->be, dev);
    return OPS->sync(m->be, err);
}

int nc_gpt_export_grads(nc_model *m, nc_tensor_list *out, nc_error *err) { return gpt_export(m, m->grads, "", out, err); }

static int64_t gpt_updates(const nc_model *m) { return m->snap.step; }

static int gpt_context_len(const nc_model *m) { return m->g.seq_len; }
static int64_t gpt_max_positions(const nc_model *m) { return (int64_t)GPT_ROPE_SPAN * m->g.seq_len; }

static int gpt_export_state(nc_model *m, bool optimizer, nc_tensor_list *out, nc_error *err) {
    if (gpt_export(m, m->params, "", out, err)) return -1;
    return optimizer ? gpt_export_optimizer(m, out, err) : 0;
}

static int gpt_import_state(nc_model *m, const nc_tensor_list *in, bool optimizer, int64_t step, nc_error *err) {
    if (gpt_import(m, in, optimizer, err)) return -1;
    if (optimizer) m->snap.step = step;
    gpt_stepper_forget(m); /* the kept state is not this one's predecessor */
    gpt_sync_weights(m);
    return OPS->sync(m->be, err);
}

static int64_t gpt_num_params(const nc_model *m) { return m->lay.params; }
static double gpt_flops_per_token(const nc_model *m) { return nc_gpt_flops_per_token(&m->g); }

static json_t *gpt_describe(const nc_model *m) {
    json_t *windows = json_array(), *ve = json_array();
    for (int i = 0; i < m->g.n_layer; i++) {
        json_array_append_new(windows, json_integer(m->g.window[i]));
        if (nc_gpt_has_ve(&m->g, i)) json_array_append_new(ve, json_integer(i));
    }
    return json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:o, s:o, s:I, s:I, s:f, s:f, s:f, s:s}", "n_layer",
                     m->g.n_layer, "n_embd", m->g.n_embd, "n_head", m->g.n_head, "n_kv_head", m->g.n_head,
                     "head_dim", m->g.head_dim, "vocab_size", m->g.vocab, "padded_vocab_size", m->g.padded_vocab,
                     "windows", windows, "value_embedding_layers", ve, "params", (json_int_t)m->lay.params,
                     "scaling_params", (json_int_t)nc_gpt_scaling_params(&m->g), "flops_per_token",
                     nc_gpt_flops_per_token(&m->g), "batch_lr_scale", m->lr_scale, "muon_weight_decay", m->wd,
                     "activation_dtype", m->be->act == NC_F32 ? "f32" : "bf16");
}

const nc_model_ops nc_tensor_gpt_ops = {
    .mode = NC_MODE_TENSOR,
    .kind = NC_KIND_GPT,
    .auto_device = NC_DEVICE_AUTO,
    .resolve = gpt_resolve,
    .footprint = gpt_footprint,
    .create = gpt_create,
    .destroy = gpt_destroy,
    .train_step = gpt_train_step,
    .loss_lag = gpt_loss_lag,
    .drain = gpt_drain,
    .eval_losses = gpt_eval_losses,
    .context_len = gpt_context_len,
    .decoder_new = gpt_decoder_new,
    .decoder_footprint = gpt_decoder_footprint,
    .decoder_feed = gpt_decoder_feed,
    .decoder_step = gpt_decoder_step,
    .decoder_free = gpt_decoder_free,
    .export_state = gpt_export_state,
    .import_state = gpt_import_state,
    .state_spec = gpt_state_spec,
    .max_positions = gpt_max_positions,
    .num_params = gpt_num_params,
    .updates = gpt_updates,
    .flops_per_token = gpt_flops_per_token,
    .describe = gpt_describe,
};
