/* forward.c: the forward pass, top to bottom like upstream's GPT.forward:
 * embed, smear, the blocks (residual mix, attention, MLP), backout, head. */
#include "internal.h"

#include <math.h>

#define OPS (m->be->ops)

/* y (N, out) = x (N, in) @ W^T (+ res (N, out)), W (out, in) at arena offset w. */
static void linear(nc_model *m, void *y, const void *x, int64_t w, int64_t N, int out, int in, const void *res) {
    nc_dtype t = m->be->act;
    nc_gemm g = {.m = (int)N, .n = out, .k = in, .batch = 1, .tb = true, .alpha = 1, .beta = res ? 1 : 0,
                 .a = x, .at = t, .lda = in, .b = gpt_at(m, m->wact, w), .bt = t, .ldb = in,
                 .c = res, .ldc = out, .d = y, .dt = t, .ldd = out};
    OPS->gemm(m->be, &g);
}

nc_attn gpt_attn_shape(const nc_model *m, const gpt_pass *p, int l) {
    int64_t C = m->g.n_embd, Tk = p->kv ? p->cached + p->T : p->T;
    /* a cache is position-major (cap, B, 3C) (decode.c); a training pass's qkv is (B, T, 3C) */
    int64_t k_ld = p->kv ? p->B * 3 * C : 3 * C, k_bs = p->kv ? 3 * C : Tk * 3 * C;
    return (nc_attn){.B = p->B, .H = m->g.n_head, .D = m->g.head_dim, .Tq = p->T, .Tk = (int)Tk,
                     .window = m->g.window[l], .scale = 1.0f / sqrtf((float)m->g.head_dim),
                     .q_ld = 3 * C, .q_bs = p->T * 3 * C, .k_ld = k_ld, .k_bs = k_bs,
                     .v_ld = k_ld, .v_bs = k_bs, .o_ld = C, .o_bs = p->T * C};
}

/* x0 = smear(rmsnorm(wte[ids])) */
static void embed(nc_model *m, gpt_buffers *b, const gpt_pass *p) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    OPS->embedding_forward(m->be, b->xm, m->params + m->lay.wte, b->ids, N, (int)C);
    OPS->rmsnorm_forward(m->be, b->emb, b->rstd0, b->xm, N, (int)C);
    OPS->smear_forward(m->be, b->x0, b->emb, p->prev, m->params + m->lay.smear_gate,
                       m->params + m->lay.smear_lambda, p->B, p->T, (int)C);
}

/* xmid = xm + c_proj(attention(rope(q, k), v + gated value embedding)) */
static void attention(nc_model *m, gpt_buffers *b, const gpt_pass *p, int l) {
    const gpt_layer_params *lp = &m->lay.layer[l];
    gpt_acts *a = &b->layer[l];
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    int H = m->g.n_head, D = m->g.head_dim;
    void *kv = p->kv ? p->kv[l] : a->qkv;                     /* row 0 of k and v */
    void *qkv = p->kv ? gpt_at(m, kv, p->cached * p->B * 3 * C) : kv; /* this pass's rows */
    linear(m, qkv, a->ln1, lp->qkv, N, (int)(3 * C), (int)C, NULL);
    if (lp->ve >= 0)
        OPS->ve_forward(m->be, gpt_at(m, qkv, 2 * C), 3 * C, a->gate, a->ln1, C, m->params + lp->ve_gate,
                        m->params + lp->ve, b->ids, N, H, D);
    OPS->rope_qknorm_forward(m->be, qkv, a->qk_rstd, m->cos, m->sin, p->B, p->T, p->pos0, H, D);
    nc_attn shape = gpt_attn_shape(m, p, l);
    OPS->attention_forward(m->be, &shape, a->att, p->kv ? NULL : a->lse, qkv, gpt_at(m, kv, C),
                           gpt_at(m, kv, 2 * C));
    linear(m, b->xmid, a->att, lp->attn_proj, N, (int)C, (int)C, b->xm);
}

/* out = xmid + c_proj(relu(c_fc(rmsnorm(xmid)))^2) */
static void mlp(nc_model *m, gpt_buffers *b, const gpt_pass *p, int l) {
    const gpt_layer_params *lp = &m->lay.layer[l];
    gpt_acts *a = &b->layer[l];
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    OPS->rmsnorm_forward(m->be, a->ln2, a->rstd2, b->xmid, N, (int)C);
    linear(m, a->fc, a->ln2, lp->fc, N, (int)(4 * C), (int)C, NULL);
    OPS->relu2_forward(m->be, b->act, a->fc, N * 4 * C);
    linear(m, a->out, b->act, lp->mlp_proj, N, (int)C, (int)(4 * C), b->xmid);
}

static void block(nc_model *m, gpt_buffers *b, const gpt_pass *p, int l) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    const void *x = l ? b->layer[l - 1].out : b->x0;
    OPS->scale_add_forward(m->be, b->xm, x, m->params + m->lay.resid + l, b->x0, m->params + m->lay.x0 + l,
                           1.0f, N * C);
    OPS->rmsnorm_forward(m->be, b->layer[l].ln1, b->layer[l].rstd1, b->xm, N, (int)C);
    attention(m, b, p, l);
    mlp(m, b, p, l);
}

void gpt_head_logits(nc_model *m, gpt_buffers *b, int64_t row, int64_t rows) {
    int64_t C = m->g.n_embd;
    linear(m, b->logits, gpt_at(m, b->lnf, row * C), m->lay.lm_head, rows, m->g.padded_vocab, (int)C, NULL);
}

/* lnf = rmsnorm(x - backout_lambda * x_half); logits = lm_head(lnf) for the pass's logit rows */
static void head(nc_model *m, gpt_buffers *b, const gpt_pass *p) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    const void *last = b->layer[m->g.n_layer - 1].out, *half = b->layer[m->g.n_layer / 2].out;
    OPS->scale_add_forward(m->be, b->xf, last, NULL, half, m->params + m->lay.backout, -1.0f, N * C);
    OPS->rmsnorm_forward(m->be, b->lnf, b->rstdf, b->xf, N, (int)C);
    if (p->logit_rows) gpt_head_logits(m, b, p->logit_row, p->logit_rows);
}

void gpt_forward(nc_model *m, gpt_buffers *b, const gpt_pass *p) {
    embed(m, b, p);
    for (int l = 0; l < m->g.n_layer; l++) block(m, b, p, l);
    head(m, b, p);
}
