/* backward.c: the backward pass, the forward's steps in reverse. The
 * stream gradient lives in buf->dres; gradients accumulate into m->grads. */
#include "internal.h"

#define OPS (m->be->ops)

/* For y = x @ W^T, W (out, in) at arena offset w: dW += dy^T @ x (f32). */
static void weight_grad(nc_model *m, const void *dy, const void *x, int64_t w, int64_t N, int out, int in) {
    nc_dtype t = m->be->act;
    float *dw = m->grads + w;
    nc_gemm g = {.m = out, .n = in, .k = (int)N, .batch = 1, .ta = true, .alpha = 1, .beta = 1,
                 .a = dy, .at = t, .lda = out, .b = x, .bt = t, .ldb = in,
                 .c = dw, .ldc = in, .d = dw, .dt = NC_F32, .ldd = in};
    OPS->gemm(m->be, &g);
}

/* dx = dy @ W. */
static void input_grad(nc_model *m, void *dx, const void *dy, int64_t w, int64_t N, int out, int in) {
    nc_dtype t = m->be->act;
    nc_gemm g = {.m = (int)N, .n = in, .k = out, .batch = 1, .alpha = 1,
                 .a = dy, .at = t, .lda = out, .b = gpt_at(m, m->wact, w), .bt = t, .ldb = in,
                 .d = dx, .dt = t, .ldd = in};
    OPS->gemm(m->be, &g);
}

static void linear_backward(nc_model *m, void *dx, const void *dy, const void *x, int64_t w, int64_t N,
                            int out, int in) {
    weight_grad(m, dy, x, w, N, out, in);
    input_grad(m, dx, dy, w, N, out, in);
}

static void mlp_backward(nc_model *m, gpt_buffers *b, const gpt_pass *p, int l) {
    const gpt_layer_params *lp = &m->lay.layer[l];
    gpt_acts *a = &b->layer[l];
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    /* d act, then d fc with relu(fc)^2 made again in the same pass, then c_proj's gradient */
    input_grad(m, b->dfc, b->dres, lp->mlp_proj, N, (int)C, (int)(4 * C));
    OPS->relu2_backward(m->be, b->dfc, b->act, b->dfc, a->fc, N * 4 * C);
    weight_grad(m, b->dres, b->act, lp->mlp_proj, N, (int)C, (int)(4 * C));
    linear_backward(m, b->dln, b->dfc, a->ln2, lp->fc, N, (int)(4 * C), (int)C);
    OPS->rmsnorm_backward(m->be, b->dres, b->dln, a->ln2, a->rstd2, N, (int)C, true);
}

static void attention_backward(nc_model *m, gpt_buffers *b, const gpt_pass *p, int l) {
    const gpt_layer_params *lp = &m->lay.layer[l];
    gpt_acts *a = &b->layer[l];
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    int H = m->g.n_head, D = m->g.head_dim;
    linear_backward(m, b->datt, b->dres, a->att, lp->attn_proj, N, (int)C, (int)C);
    nc_attn shape = gpt_attn_shape(m, p, l);
    OPS->attention_backward(m->be, &shape, b->dqkv, gpt_at(m, b->dqkv, C), gpt_at(m, b->dqkv, 2 * C), b->datt,
                            a->qkv, gpt_at(m, a->qkv, C), gpt_at(m, a->qkv, 2 * C), a->att, a->lse, b->work);
    OPS->rope_qknorm_backward(m->be, b->dqkv, a->qkv, a->qk_rstd, m->cos, m->sin, p->B, p->T, H, D);
    linear_backward(m, b->dln, b->dqkv, a->ln1, lp->qkv, N, (int)(3 * C), (int)C);
    if (lp->ve >= 0) {
        OPS->ve_backward(m->be, b->dve, b->dln, C, m->grads + lp->ve_gate, gpt_at(m, b->dqkv, 2 * C), 3 * C,
                         a->gate, a->ln1, m->params + lp->ve_gate, m->params + lp->ve, b->ids, N, H, D);
        OPS->embedding_backward(m->be, m->grads + lp->ve, b->dve, b->ids, N, (int)C, m->g.padded_vocab);
    }
    OPS->rmsnorm_backward(m->be, b->dres, b->dln, a->ln1, a->rstd1, N, (int)C, true);
}

static void block_backward(nc_model *m, gpt_buffers *b, const gpt_pass *p, int l) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd, r = m->lay.resid + l, x0 = m->lay.x0 + l;
    mlp_backward(m, b, p, l);
    attention_backward(m, b, p, l);
    const void *x = l ? b->layer[l - 1].out : b->x0;
    OPS->scale_add_backward(m->be, b->dres, b->dx0, m->grads + r, m->grads + x0, b->dres, x, m->params + r,
                            b->x0, m->params + x0, 1.0f, N * C);
}

void gpt_head_loss(nc_model *m, gpt_buffers *b, int64_t N, bool grad) {
    int64_t C = m->g.n_embd, R = gpt_head_rows(m, N);
    int Vp = m->g.padded_vocab;
    for (int64_t r = 0; r < N; r += R) {
        int64_t k = N - r < R ? N - r : R;
        gpt_head_logits(m, b, r, k);
        OPS->softcap_ce(m->be, b->losses + r, grad ? b->logits : NULL, b->logits, b->targets + r, k, m->g.vocab, Vp,
                        GPT_SOFTCAP, grad ? 1.0f / (float)N : 1.0f);
        if (grad)
            linear_backward(m, gpt_at(m, b->dln, r * C), b->logits, gpt_at(m, b->lnf, r * C), m->lay.lm_head, k, Vp,
                            (int)C);
    }
}

/* From the loss down to the stream gradient at the last layer's output. */
static void head_backward(nc_model *m, gpt_buffers *b, const gpt_pass *p) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    gpt_head_loss(m, b, N, true);
    OPS->mean(m->be, b->loss, b->losses, N);
    OPS->rmsnorm_backward(m->be, b->dxf, b->dln, b->lnf, b->rstdf, N, (int)C, false);
    OPS->copy(m->be, b->dres, b->dxf, (size_t)(N * C) * nc_dtype_size(m->be->act));
}

/* The backout's share of the half-way layer's output gradient. */
static void backout_backward(nc_model *m, gpt_buffers *b, const gpt_pass *p) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    OPS->scale_add_backward(m->be, NULL, b->dres, NULL, m->grads + m->lay.backout, b->dxf, NULL, NULL,
                            b->layer[m->g.n_layer / 2].out, m->params + m->lay.backout, -1.0f, N * C);
}

/* From the gradient of x0 to the embedding table. */
static void embed_backward(nc_model *m, gpt_buffers *b, const gpt_pass *p) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    OPS->add(m->be, b->dx0, b->dres, N * C); /* layer 0's stream input is x0 itself */
    OPS->smear_backward(m->be, b->dln, b->dx0, b->emb, m->params + m->lay.smear_gate,
                        m->params + m->lay.smear_lambda, m->grads + m->lay.smear_gate,
                        m->grads + m->lay.smear_lambda, p->B, p->T, (int)C);
    OPS->rmsnorm_backward(m->be, b->dres, b->dln, b->emb, b->rstd0, N, (int)C, false);
    OPS->embedding_backward(m->be, m->grads + m->lay.wte, b->dres, b->ids, N, (int)C, m->g.padded_vocab);
}

void gpt_backward(nc_model *m, gpt_buffers *b, const gpt_pass *p) {
    int64_t N = (int64_t)p->B * p->T, C = m->g.n_embd;
    OPS->zero(m->be, m->grads, sizeof(float) * (size_t)m->lay.total);
    OPS->zero(m->be, b->dx0, (size_t)(N * C) * nc_dtype_size(m->be->act));
    head_backward(m, b, p);
    for (int l = m->g.n_layer - 1; l >= 0; l--) {
        if (l == m->g.n_layer / 2) backout_backward(m, b, p);
        block_backward(m, b, p, l);
    }
    embed_backward(m, b, p);
}
