/* optim.c: upstream's setup_optimizer: which parameters AdamW and Muon
 * update, with which learning rates, betas and weight decays. */
#include "internal.h"

#include <math.h>

#define MUON_BETA2 0.9
#define ADAMW_EPS 1e-10
#define SMEAR_LR 0.2 /* upstream's fixed lr for the smear and backout scalars */

static void adamw(nc_muon_setup *s, int64_t offset, int64_t n, double lr, double beta1, double beta2, double wd) {
    s->adamw[s->n_adamw++] = (nc_adamw_group){.offset = offset, .n = n, .lr = lr, .beta1 = beta1,
                                              .beta2 = beta2, .eps = ADAMW_EPS, .wd = wd};
}

static void muon(nc_muon_setup *s, int64_t offset, int K, int R, int C) {
    if (K > 0) s->muon[s->n_muon++] = (nc_muon_group){.offset = offset, .K = K, .R = R, .C = C};
}

void gpt_optimizer_setup(const nc_model *m, nc_muon_setup *s) {
    const gpt_layout *lay = &m->lay;
    const nc_model_cfg *cfg = &m->cfg;
    int L = m->g.n_layer, C = m->g.n_embd;
    int64_t table = (int64_t)m->g.padded_vocab * C;
    double bs = m->lr_scale, dmodel = pow(C / 768.0, -0.5); /* AdamW lrs scale as 1/sqrt(d_model) */
    *s = (nc_muon_setup){.matrix_lr = cfg->matrix_lr * bs, .weight_decay = m->wd, .beta2 = MUON_BETA2,
                         .warmup_steps = cfg->warmup_steps, .warmdown_ratio = cfg->warmdown_ratio,
                         .final_lr_frac = cfg->final_lr_frac};
    adamw(s, lay->lm_head, table, cfg->unembedding_lr * bs * dmodel, 0.8, 0.96, 0.01);
    adamw(s, lay->wte, table, cfg->embedding_lr * bs * dmodel, 0.8, 0.995, 0.001);
    adamw(s, lay->ve_tables, lay->n_ve * table, cfg->embedding_lr * bs * dmodel * 0.5, 0.8, 0.995, 0.01);
    adamw(s, lay->resid, L, cfg->scalar_lr * bs * 0.01, 0.8, 0.95, 0.05);
    adamw(s, lay->x0, L, cfg->scalar_lr * bs, 0.96, 0.95, 0.0);
    adamw(s, lay->smear_gate, NC_SMEAR_CHANNELS + 2, SMEAR_LR, 0.8, 0.95, 0.0); /* + smear and backout lambdas */
    muon(s, lay->square, 4 * L, C, C);
    muon(s, lay->fc, L, 4 * C, C);
    muon(s, lay->proj, L, C, 4 * C);
    muon(s, lay->gates, lay->n_ve, m->g.n_head, NC_VE_CHANNELS);
}
