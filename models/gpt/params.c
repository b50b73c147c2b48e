/* params.c: the parameter arena's layout under upstream's names, and
 * upstream's init_weights drawn from the project's init stream. */
#include "internal.h"

#include "core/rng.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Appends a tensor at the end of the arena; returns its offset. */
static int64_t add(gpt_layout *lay, const char *name, int ndim, int64_t d0, int64_t d1) {
    gpt_tensor *t = &lay->tensors[lay->count++];
    *t = (gpt_tensor){.offset = lay->total, .ndim = ndim, .shape = {d0, d1}};
    snprintf(t->name, sizeof t->name, "%s", name);
    lay->total += ndim == 1 ? d0 : d0 * d1;
    lay->params += ndim == 1 ? d0 : d0 * d1;
    return t->offset;
}

/* Adds "transformer.h.<i>.<what>.weight" of shape (rows, cols). */
static int64_t add_block(gpt_layout *lay, int i, const char *what, int64_t rows, int64_t cols) {
    char name[96];
    snprintf(name, sizeof name, "transformer.h.%d.%s.weight", i, what);
    return add(lay, name, 2, rows, cols);
}

static void add_muon_groups(gpt_layout *lay, const nc_gpt_config *g) {
    int64_t C = g->n_embd;
    lay->square = lay->total;
    for (int i = 0; i < g->n_layer; i++) {
        lay->layer[i].qkv = add_block(lay, i, "attn.c_q", C, C);
        add_block(lay, i, "attn.c_k", C, C);
        add_block(lay, i, "attn.c_v", C, C);
    }
    for (int i = 0; i < g->n_layer; i++) lay->layer[i].attn_proj = add_block(lay, i, "attn.c_proj", C, C);
    lay->fc = lay->total;
    for (int i = 0; i < g->n_layer; i++) lay->layer[i].fc = add_block(lay, i, "mlp.c_fc", 4 * C, C);
    lay->proj = lay->total;
    for (int i = 0; i < g->n_layer; i++) lay->layer[i].mlp_proj = add_block(lay, i, "mlp.c_proj", C, 4 * C);
    lay->gates = lay->total;
    for (int i = 0; i < g->n_layer; i++)
        lay->layer[i].ve_gate = nc_gpt_has_ve(g, i) ? add_block(lay, i, "attn.ve_gate", g->n_head, NC_VE_CHANNELS) : -1;
}

static void add_adamw_tensors(gpt_layout *lay, const nc_gpt_config *g) {
    int64_t C = g->n_embd, Vp = g->padded_vocab;
    /* The (H, 12) gates can leave the arena at any multiple of 4: start lm_head,
     * a gemm operand, 64 elements in (its bf16 copy 128-byte aligned, as the
     * tensor-core gemms want); the gap is never read as a parameter. */
    lay->total = (lay->total + 63) / 64 * 64;
    lay->lm_head = add(lay, "lm_head.weight", 2, Vp, C);
    lay->wte = add(lay, "transformer.wte.weight", 2, Vp, C);
    lay->ve_tables = lay->total;
    for (int i = 0; i < g->n_layer; i++) {
        char name[96];
        snprintf(name, sizeof name, "value_embeds.%d.weight", i);
        lay->layer[i].ve = nc_gpt_has_ve(g, i) ? add(lay, name, 2, Vp, C) : -1;
        lay->n_ve += nc_gpt_has_ve(g, i);
    }
    lay->resid = add(lay, "resid_lambdas", 1, g->n_layer, 0);
    lay->x0 = add(lay, "x0_lambdas", 1, g->n_layer, 0);
    lay->smear_gate = add(lay, "smear_gate.weight", 2, 1, NC_SMEAR_CHANNELS);
    lay->smear_lambda = add(lay, "smear_lambda", 1, 1, 0);
    lay->backout = add(lay, "backout_lambda", 1, 1, 0);
}

int gpt_layout_init(gpt_layout *lay, const nc_gpt_config *g, nc_error *err) {
    memset(lay, 0, sizeof *lay);
    lay->tensors = calloc((size_t)(9 * g->n_layer + 7), sizeof *lay->tensors);
    if (!lay->tensors) return nc_fail(err, NC_E_INTERNAL, "out of memory");
    add_muon_groups(lay, g);
    add_adamw_tensors(lay, g);
    return 0;
}

void gpt_layout_free(gpt_layout *lay) {
    free(lay->tensors);
    lay->tensors = NULL;
}

static void fill_normal(nc_rng *r, float *x, int64_t n, double std) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(std * nc_rng_normal(r));
}

static void fill_uniform(nc_rng *r, float *x, int64_t n, double lo, double hi) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(lo + (hi - lo) * nc_rng_uniform(r));
}

/* In upstream's order: embeddings, block matrices, scalars, value embeddings, gates. */
void gpt_init_weights(const gpt_layout *lay, const nc_gpt_config *g, uint64_t seed, float *host) {
    nc_rng r;
    nc_rng_seed(&r, seed, NC_STREAM_INIT);
    int64_t C = g->n_embd, L = g->n_layer, table = (int64_t)g->padded_vocab * C;
    double s = sqrt(3.0) / sqrt((double)C);
    memset(host, 0, sizeof(float) * (size_t)lay->total);
    fill_normal(&r, host + lay->wte, table, 0.8);
    fill_normal(&r, host + lay->lm_head, table, 0.001);
    for (int i = 0; i < L; i++) {
        fill_uniform(&r, host + lay->layer[i].qkv, 3 * C * C, -s, s);
        fill_uniform(&r, host + lay->layer[i].fc, 4 * C * C, -0.4 * s, 0.4 * s);
    }
    for (int i = 0; i < L; i++) {
        double span = L > 1 ? (double)(L - 1) : 1.0;
        host[lay->resid + i] = (float)(1.15 - 0.10 * i / span);
        host[lay->x0 + i] = (float)(0.20 - 0.15 * i / span);
    }
    host[lay->backout] = 0.2f;
    fill_uniform(&r, host + lay->smear_gate, NC_SMEAR_CHANNELS, 0.0, 0.02);
    for (int i = 0; i < L; i++)
        if (lay->layer[i].ve >= 0) fill_uniform(&r, host + lay->layer[i].ve, table, -s, s);
    for (int i = 0; i < L; i++)
        if (lay->layer[i].ve_gate >= 0)
            fill_uniform(&r, host + lay->layer[i].ve_gate, (int64_t)g->n_head * NC_VE_CHANNELS, 0.0, 0.02);
}
