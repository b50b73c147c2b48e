/* attention.c: causal sliding-window attention, flash style: one thread
 * owns a (sequence, head) and walks it in blocks of queries; each block's
 * scores against the keys it can see are one serial sgemm into a (QB, Tk)
 * scratch tile (never a (Tq, Tk) matrix of every head), and the backward
 * recomputes them from the saved log-sum-exp. Within a head everything runs
 * in a fixed order, so the results do not depend on the thread count. */
#include "internal.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>

#define QB 64 /* queries per block */

typedef struct attn_job {
    const nc_attn *a;
    float *o, *lse, *dq, *dk, *dv, *work;
    const float *q, *k, *v, *dout, *o_in;
    const float *lse_in;
} attn_job;

/* Head h of token t of sequence b in a buffer laid out like x. */
static int64_t at(int64_t bs, int64_t ld, const nc_attn *a, int b, int t, int h) {
    return b * bs + t * ld + (int64_t)h * a->D;
}

/* A block of queries [i0, i1) and the keys [k0, k1) any of them sees. */
typedef struct block {
    int b, h, i0, i1, k0, k1;
} block;

static block block_of(const nc_attn *a, int b, int h, int i0) {
    block bl = {b, h, i0, i0 + QB < a->Tq ? i0 + QB : a->Tq, 0, 0};
    int shift = a->Tk - a->Tq; /* query i sits at key position i + shift */
    bl.k0 = i0 + shift - a->window > 0 ? i0 + shift - a->window : 0;
    bl.k1 = bl.i1 + shift; /* one past the last query's position */
    return bl;
}

/* Row r of a block sees the columns [*c0, return value] of its score tile. */
static int visible(const nc_attn *a, const block *bl, int r, int *c0) {
    int last = bl->i0 + r + a->Tk - a->Tq - bl->k0, first = last - a->window;
    *c0 = first > 0 ? first : 0;
    return last;
}

/* s (rows, k1 - k0) = scale * q k^T over the block (masked entries: anything). */
static void block_scores(const attn_job *j, const block *bl, float *s) {
    const nc_attn *a = j->a;
    int rows = bl->i1 - bl->i0, cols = bl->k1 - bl->k0;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, a->D, a->scale,
                j->q + at(a->q_bs, a->q_ld, a, bl->b, bl->i0, bl->h), (int)a->q_ld,
                j->k + at(a->k_bs, a->k_ld, a, bl->b, bl->k0, bl->h), (int)a->k_ld, 0.0f, s, cols);
}

/* Each row of scores becomes exp(s - sub[r]) where visible and 0 elsewhere;
 * sub NULL: the row's max, and the row is normalized (softmax) with its
 * log-sum-exp written to lse[r]. */
static void exp_rows(const nc_attn *a, const block *bl, float *s, const float *sub, float *lse) {
    int rows = bl->i1 - bl->i0, cols = bl->k1 - bl->k0;
    for (int r = 0; r < rows; r++) {
        float *row = s + r * cols;
        int c0, c1 = visible(a, bl, r, &c0), n = c1 - c0 + 1;
        float base = sub ? sub[r] : nc_cpu_max(row + c0, n);
        for (int c = 0; c < c0; c++) row[c] = 0;
        for (int c = c0; c <= c1; c++) row[c] = nc_cpu_exp_nonpos(row[c] - base);
        for (int c = c1 + 1; c < cols; c++) row[c] = 0;
        if (sub) continue;
        float sum = nc_cpu_sum(row + c0, n);
        for (int c = c0; c <= c1; c++) row[c] /= sum;
        lse[r] = base + logf(sum);
    }
}

static void forward_block(const attn_job *j, const block *bl, float *s) {
    const nc_attn *a = j->a;
    int rows = bl->i1 - bl->i0, cols = bl->k1 - bl->k0;
    float lse[QB];
    block_scores(j, bl, s);
    exp_rows(a, bl, s, NULL, lse);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, a->D, cols, 1.0f, s, cols,
                j->v + at(a->v_bs, a->v_ld, a, bl->b, bl->k0, bl->h), (int)a->v_ld, 0.0f,
                j->o + at(a->o_bs, a->o_ld, a, bl->b, bl->i0, bl->h), (int)a->o_ld);
    if (j->lse)
        for (int r = 0; r < rows; r++) j->lse[((int64_t)bl->b * a->H + bl->h) * a->Tq + bl->i0 + r] = lse[r];
}

/* items: (b, h) */
static void forward_items(void *ctx, int64_t lo, int64_t hi) {
    attn_job *j = ctx;
    const nc_attn *a = j->a;
    float *s = nc_xmalloc(sizeof(float) * QB * (size_t)a->Tk);
    if (!s) abort();
    for (int64_t it = lo; it < hi; it++)
        for (int i0 = 0; i0 < a->Tq; i0 += QB) {
            block bl = block_of(a, (int)(it / a->H), (int)(it % a->H), i0);
            forward_block(j, &bl, s);
        }
    free(s);
}

void nc_cpu_attention_forward(nc_backend *be, const nc_attn *a, void *o, float *lse, const void *q,
                              const void *k, const void *v) {
    attn_job j = {.a = a, .o = o, .lse = lse, .q = q, .k = k, .v = v};
    nc_pool_for(nc_cpu_pool(be), (int64_t)a->B * a->H, 1, forward_items, &j);
}

static void zero_head(float *x, int64_t bs, int64_t ld, const nc_attn *a, int b, int h, int T) {
    for (int t = 0; t < T; t++)
        for (int d = 0; d < a->D; d++) x[at(bs, ld, a, b, t, h) + d] = 0;
}

/* One block's share of dq (written) and dk, dv (accumulated). s, dp: (QB, Tk) scratch. */
static void backward_block(const attn_job *j, const block *bl, float *s, float *dp) {
    const nc_attn *a = j->a;
    int rows = bl->i1 - bl->i0, cols = bl->k1 - bl->k0, D = a->D;
    int64_t bh = ((int64_t)bl->b * a->H + bl->h) * a->Tq + bl->i0;
    const float *dout = j->dout + at(a->o_bs, a->o_ld, a, bl->b, bl->i0, bl->h);
    const float *q = j->q + at(a->q_bs, a->q_ld, a, bl->b, bl->i0, bl->h);
    const float *keys = j->k + at(a->k_bs, a->k_ld, a, bl->b, bl->k0, bl->h);
    const float *v = j->v + at(a->v_bs, a->v_ld, a, bl->b, bl->k0, bl->h);
    block_scores(j, bl, s);
    exp_rows(a, bl, s, j->lse_in + bh, NULL);
    /* dv += p^T dout; dp = dout v^T; ds = p (dp - delta) scale */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, D, rows, 1.0f, s, cols, dout, (int)a->o_ld, 1.0f,
                j->dv + at(a->v_bs, a->v_ld, a, bl->b, bl->k0, bl->h), (int)a->v_ld);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, cols, D, 1.0f, dout, (int)a->o_ld, v, (int)a->v_ld,
                0.0f, dp, cols);
    for (int r = 0; r < rows; r++) {
        float *restrict d = dp + r * cols;
        const float *restrict p = s + r * cols;
        float delta = j->work[bh + r], scale = a->scale;
        for (int c = 0; c < cols; c++) d[c] = p[c] * (d[c] - delta) * scale;
    }
    /* dq = ds k; dk += ds^T q */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, D, cols, 1.0f, dp, cols, keys, (int)a->k_ld, 0.0f,
                j->dq + at(a->q_bs, a->q_ld, a, bl->b, bl->i0, bl->h), (int)a->q_ld);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, D, rows, 1.0f, dp, cols, q, (int)a->q_ld, 1.0f,
                j->dk + at(a->k_bs, a->k_ld, a, bl->b, bl->k0, bl->h), (int)a->k_ld);
}

/* items: (b, h); one thread owns all of a head's dk and dv */
static void backward_items(void *ctx, int64_t lo, int64_t hi) {
    attn_job *j = ctx;
    const nc_attn *a = j->a;
    float *s = nc_xmalloc(sizeof(float) * 2 * QB * (size_t)a->Tk);
    if (!s) abort();
    for (int64_t it = lo; it < hi; it++) {
        int b = (int)(it / a->H), h = (int)(it % a->H);
        zero_head(j->dk, a->k_bs, a->k_ld, a, b, h, a->Tk);
        zero_head(j->dv, a->v_bs, a->v_ld, a, b, h, a->Tk);
        for (int i = 0; i < a->Tq; i++) { /* delta_i = dout_i . o_i */
            int64_t off = at(a->o_bs, a->o_ld, a, b, i, h);
            j->work[it * a->Tq + i] = nc_cpu_dot(j->dout + off, j->o_in + off, a->D);
        }
        for (int i0 = 0; i0 < a->Tq; i0 += QB) {
            block bl = block_of(a, b, h, i0);
            backward_block(j, &bl, s, s + QB * (size_t)a->Tk);
        }
    }
    free(s);
}

void nc_cpu_attention_backward(nc_backend *be, const nc_attn *a, void *dq, void *dk, void *dv,
                               const void *dout, const void *q, const void *k, const void *v,
                               const void *o, const float *lse, float *work) {
    attn_job j = {.a = a, .dq = dq, .dk = dk, .dv = dv, .dout = dout, .q = q, .k = k, .v = v,
                  .o_in = o, .lse_in = lse, .work = work};
    nc_pool_for(nc_cpu_pool(be), (int64_t)a->B * a->H, 1, backward_items, &j);
}
