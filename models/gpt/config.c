/* config.c: the GPT's shape from the run config, and the counts derived
 * from it (parameters, FLOPs, base_train's batch scaling). */
#include "gpt.h"

#include "optim/schedule.h"
#include "backend/backend.h"

#include <ctype.h>
#include <string.h>

#define TARGET_PARAM_DATA_RATIO 12 /* base_train's default horizon */
#define REFERENCE_DEPTH 12         /* base_train tunes at d12 */

static int window_of(char c, int seq_len) {
    return toupper((unsigned char)c) == 'S' ? (seq_len + 511) / 512 * 128 : seq_len;
}

static int check_pattern(const char *p, nc_error *err) {
    if (!*p) return nc_fail(err, NC_E_BAD_REQUEST, "args.window_pattern must not be empty");
    for (const char *c = p; *c; c++)
        if (!strchr("SLsl", *c))
            return nc_fail(err, NC_E_BAD_REQUEST, "args.window_pattern may only hold S and L, not '%c'", *c);
    return 0;
}

/* The shape of cfg's model, unchecked (base_train also sizes models it never builds). */
static void shape_of(nc_gpt_config *g, const nc_model_cfg *cfg, int vocab) {
    int64_t hd = cfg->head_dim, C = (cfg->depth * cfg->aspect_ratio + hd - 1) / hd * hd;
    *g = (nc_gpt_config){.n_layer = (int)cfg->depth, .n_embd = (int)C, .n_head = (int)(C / hd),
                         .head_dim = (int)hd, .vocab = vocab,
                         .padded_vocab = (vocab + NC_GPT_PAD_VOCAB - 1) / NC_GPT_PAD_VOCAB * NC_GPT_PAD_VOCAB,
                         .seq_len = (int)cfg->seq_len};
    size_t np = strlen(cfg->window_pattern);
    for (int i = 0; np && i < g->n_layer; i++) g->window[i] = window_of(cfg->window_pattern[i % np], g->seq_len);
    g->window[g->n_layer - 1] = g->seq_len;
}

int nc_gpt_config_init(nc_gpt_config *g, const nc_model_cfg *cfg, int vocab, nc_error *err) {
    if (cfg->head_dim % 2) return nc_fail(err, NC_E_BAD_REQUEST, "args.head_dim must be even (rotary halves)");
    if (cfg->depth < 1 || cfg->depth > NC_GPT_MAX_LAYERS)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.depth must be between 1 and %d", NC_GPT_MAX_LAYERS);
    if (cfg->seq_len < 2) return nc_fail(err, NC_E_BAD_REQUEST, "args.seq_len must be at least 2 for gpt");
    if (check_pattern(cfg->window_pattern, err)) return -1;
    shape_of(g, cfg, vocab);
    if (g->n_embd < NC_SMEAR_CHANNELS)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.aspect_ratio: n_embd %d is below the %d channels the smear gate reads",
                       g->n_embd, NC_SMEAR_CHANNELS);
    if (g->n_embd > 65536) return nc_fail(err, NC_E_BAD_REQUEST, "args.aspect_ratio: n_embd %d is too large", g->n_embd);
    if (g->n_head > NC_GPT_MAX_HEADS)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.head_dim: %d heads of %d are more than %d", g->n_head,
                       g->head_dim, NC_GPT_MAX_HEADS);
    return 0;
}

bool nc_gpt_has_ve(const nc_gpt_config *g, int layer) { return layer % 2 == (g->n_layer - 1) % 2; }

static int ve_layers(const nc_gpt_config *g) {
    int n = 0;
    for (int i = 0; i < g->n_layer; i++) n += nc_gpt_has_ve(g, i);
    return n;
}

int64_t nc_gpt_scaling_params(const nc_gpt_config *g) {
    int64_t C = g->n_embd;
    int64_t blocks = g->n_layer * 12 * C * C + ve_layers(g) * (int64_t)g->n_head * NC_VE_CHANNELS;
    return blocks + (int64_t)g->padded_vocab * C;
}

double nc_gpt_flops_per_token(const nc_gpt_config *g) {
    double matmul = (double)nc_gpt_scaling_params(g) + NC_SMEAR_CHANNELS, attn = 0;
    for (int i = 0; i < g->n_layer; i++) {
        int eff = g->window[i] < g->seq_len ? g->window[i] : g->seq_len;
        attn += 12.0 * g->n_head * g->head_dim * eff;
    }
    return 6 * matmul + attn;
}

void nc_gpt_batch_scaling(const nc_gpt_config *g, const nc_model_cfg *cfg, double *lr_scale, double *wd) {
    if (cfg->batch_scaling == NC_SCALING_NONE) {
        *lr_scale = 1.0;
        *wd = cfg->weight_decay;
        return;
    }
    nc_model_cfg ref_cfg = *cfg;
    ref_cfg.depth = REFERENCE_DEPTH;
    nc_gpt_config ref;
    shape_of(&ref, &ref_cfg, g->vocab);
    int64_t tokens = cfg->batch_size * cfg->seq_len;
    double d_ref = TARGET_PARAM_DATA_RATIO * (double)nc_gpt_scaling_params(&ref);
    double target = (double)(int64_t)(TARGET_PARAM_DATA_RATIO * (double)nc_gpt_scaling_params(g));
    *lr_scale = nc_batch_lr_scale(tokens);
    *wd = nc_batch_weight_decay(cfg->weight_decay, tokens, d_ref, target);
}
