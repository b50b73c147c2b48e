/* bigram.c: parameters, defaults and state exchange of the character bigram. */
#include "bigram.h"
#include "core/rng.h"

#include <stdlib.h>
#include <string.h>

int nc_bigram_resolve(nc_model_cfg *cfg, int64_t *eval_windows, nc_error *err) {
    if (cfg->batch_size == 0) cfg->batch_size = 32;
    if (cfg->seq_len == 0) cfg->seq_len = 1;
    if (cfg->lr == 0) cfg->lr = cfg->optimizer == NC_OPTIMIZER_ADAMW ? 0.01 : 1.0;
    if (cfg->weight_decay < 0) cfg->weight_decay = 0;
    if (*eval_windows == 0) *eval_windows = 4096;
    if (cfg->seq_len != 1) return nc_fail(err, NC_E_BAD_REQUEST, "args.seq_len must be 1 for a bigram");
    return 0;
}

static int64_t params_of(const nc_model_cfg *cfg, int V) { return (cfg->tie_lm_head ? 1 : 2) * (int64_t)V * V; }

void nc_bigram_init(nc_bigram *b, const nc_model_cfg *cfg, int V, nc_bigram_logits_fn logits) {
    b->cfg = *cfg;
    b->logits = logits;
    b->V = V;
    b->P = params_of(cfg, V);
    b->w = nc_xmalloc((size_t)b->P * sizeof *b->w);
    nc_rng rng;
    nc_rng_seed(&rng, (uint64_t)cfg->seed, NC_STREAM_INIT);
    for (int64_t i = 0; i < b->P; i++) b->w[i] = (float)(0.1 * nc_rng_normal(&rng));
    nc_host_optim_init(&b->opt, cfg, b->w, b->P);
}

void nc_bigram_free(nc_bigram *b) {
    nc_host_optim_free(&b->opt);
    free(b->w);
}

int64_t nc_bigram_head_offset(const nc_bigram *b) { return b->cfg.tie_lm_head ? 0 : (int64_t)b->V * b->V; }

int nc_bigram_export_state(nc_model *m, bool optimizer, nc_tensor_list *out, nc_error *err) {
    const nc_bigram *b = (const nc_bigram *)m;
    int64_t shape[2] = {b->V, b->V}, n = (int64_t)b->V * b->V;
    if (nc_tensors_put(out, "wte.weight", 2, shape, b->w, err) ||
        (!b->cfg.tie_lm_head && nc_tensors_put(out, "lm_head.weight", 2, shape, b->w + n, err)))
        return -1;
    return optimizer ? nc_host_optim_export(&b->opt, out, err) : 0;
}

int nc_bigram_state_spec(const nc_model_cfg *cfg, int V, bool optimizer, nc_tensor_list *out, nc_error *err) {
    int64_t shape[2] = {V, V};
    if (nc_tensors_declare(out, "wte.weight", 2, shape) ||
        (!cfg->tie_lm_head && nc_tensors_declare(out, "lm_head.weight", 2, shape)) ||
        (optimizer && nc_host_optim_spec(cfg, params_of(cfg, V), out)))
        return nc_fail(err, NC_E_INTERNAL, "out of memory");
    return 0;
}

double nc_bigram_bytes(const nc_model_cfg *cfg, int V) {
    int64_t P = params_of(cfg, V);
    return 2.0 * sizeof(float) * (double)P + nc_host_optim_bytes(cfg, P); /* weights, gradient, optimizer */
}

int nc_bigram_import_state(nc_model *m, const nc_tensor_list *in, bool optimizer, int64_t step, nc_error *err) {
    nc_bigram *b = (nc_bigram *)m;
    int64_t shape[2] = {b->V, b->V}, n = (int64_t)b->V * b->V;
    if (optimizer && nc_host_optim_import(&b->opt, in, step, err)) return -1;
    if (nc_tensors_take(in, "wte.weight", 2, shape, b->w, err)) return -1;
    return !b->cfg.tie_lm_head && nc_tensors_take(in, "lm_head.weight", 2, shape, b->w + n, err) ? -1 : 0;
}

int64_t nc_bigram_num_params(const nc_model *m) { return ((const nc_bigram *)m)->P; }
int64_t nc_bigram_updates(const nc_model *m) { return nc_host_optim_updates(&((const nc_bigram *)m)->opt); }

int nc_bigram_context_len(const nc_model *m) {
    (void)m;
    return 1;
}

struct nc_decoder {
    nc_model *m;
    int batch;
};

nc_decoder *nc_bigram_decoder_new(nc_model *m, int batch, int64_t positions, nc_error *err) {
    (void)positions, (void)err;
    nc_decoder *d = nc_xmalloc(sizeof *d);
    *d = (nc_decoder){m, batch};
    return d;
}

static nc_bigram *bigram_of(nc_decoder *d) { return (nc_bigram *)d->m; } /* a bigram model begins with one */

int nc_bigram_decoder_feed(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err) {
    return bigram_of(d)->logits(d->m, ids + n - 1, 1, logits, err);
}

int nc_bigram_decoder_step(nc_decoder *d, const int32_t *ids, float *logits, nc_error *err) {
    return bigram_of(d)->logits(d->m, ids, d->batch, logits, err);
}

void nc_bigram_decoder_free(nc_decoder *d) { free(d); }
