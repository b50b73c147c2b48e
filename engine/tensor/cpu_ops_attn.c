/* cpu_ops_attn.c: causal sliding-window attention, flash style: each query's
 * scores live in one row buffer, never a (Tq, Tk) matrix; the backward
 * recomputes them from the saved log-sum-exp. */
#include "cpu_internal.h"

#include <math.h>
#include <stdlib.h>

#define QUERY_BLOCK 32

typedef struct attn_job {
    const nc_attn *a;
    float *o, *lse, *dq, *dk, *dv, *work;
    const float *q, *k, *v, *dout, *o_in;
    const float *lse_in;
} attn_job;

#define Q(j, b, t, h) ((j)->q + (b) * (j)->a->q_bs + (int64_t)(t) * (j)->a->q_ld + (int64_t)(h) * (j)->a->D)
#define K(j, b, t, h) ((j)->k + (b) * (j)->a->k_bs + (int64_t)(t) * (j)->a->k_ld + (int64_t)(h) * (j)->a->D)
#define V(j, b, t, h) ((j)->v + (b) * (j)->a->v_bs + (int64_t)(t) * (j)->a->v_ld + (int64_t)(h) * (j)->a->D)
#define O_OFF(a, b, t, h) ((b) * (a)->o_bs + (int64_t)(t) * (a)->o_ld + (int64_t)(h) * (a)->D)

/* The visible keys of query i are [*first, return value]. */
static int key_range(const nc_attn *a, int i, int *first) {
    int last = i + a->Tk - a->Tq;
    *first = last - a->window > 0 ? last - a->window : 0;
    return last;
}

/* s[j - first] = scale * q_i . k_j for the visible keys; returns their max. */
static float scores(const attn_job *j, float *s, int b, int h, int i, int first, int last) {
    const float *q = Q(j, b, i, h);
    float mx = -INFINITY;
    for (int t = first; t <= last; t++) {
        s[t - first] = j->a->scale * nc_cpu_dot(q, K(j, b, t, h), j->a->D);
        mx = fmaxf(mx, s[t - first]);
    }
    return mx;
}

static void attend_query(const attn_job *j, float *s, int b, int h, int i) {
    const nc_attn *a = j->a;
    int D = a->D, first, last = key_range(a, i, &first);
    float mx = scores(j, s, b, h, i, first, last), sum = 0;
    float *o = j->o + O_OFF(a, b, i, h);
    for (int d = 0; d < D; d++) o[d] = 0;
    for (int t = first; t <= last; t++) {
        float p = expf(s[t - first] - mx);
        const float *v = V(j, b, t, h);
        sum += p;
        for (int d = 0; d < D; d++) o[d] += p * v[d];
    }
    for (int d = 0; d < D; d++) o[d] /= sum;
    if (j->lse) j->lse[((int64_t)b * a->H + h) * a->Tq + i] = mx + logf(sum);
}

/* items: (b, h, block of QUERY_BLOCK queries) */
static void forward_items(void *ctx, int64_t lo, int64_t hi) {
    attn_job *j = ctx;
    const nc_attn *a = j->a;
    int blocks = (a->Tq + QUERY_BLOCK - 1) / QUERY_BLOCK;
    float *s = malloc(sizeof(float) * (size_t)a->Tk);
    if (!s) abort();
    for (int64_t it = lo; it < hi; it++) {
        int blk = (int)(it % blocks), h = (int)(it / blocks % a->H), b = (int)(it / blocks / a->H);
        int end = (blk + 1) * QUERY_BLOCK < a->Tq ? (blk + 1) * QUERY_BLOCK : a->Tq;
        for (int i = blk * QUERY_BLOCK; i < end; i++) attend_query(j, s, b, h, i);
    }
    free(s);
}

void nc_cpu_attention_forward(nc_backend *be, const nc_attn *a, void *o, float *lse, const void *q,
                              const void *k, const void *v) {
    attn_job j = {.a = a, .o = o, .lse = lse, .q = q, .k = k, .v = v};
    int64_t items = (int64_t)a->B * a->H * ((a->Tq + QUERY_BLOCK - 1) / QUERY_BLOCK);
    nc_pool_for(nc_cpu_pool(be), items, 1, forward_items, &j);
}

static void zero_head_rows(float *base, int64_t bs, int64_t ld, int b, int h, int T, int D) {
    for (int t = 0; t < T; t++)
        for (int d = 0; d < D; d++) base[b * bs + t * ld + (int64_t)h * D + d] = 0;
}

/* Query i's contributions to dq_i and to dk, dv of its visible keys. */
static void backward_query(const attn_job *j, float *s, int b, int h, int i) {
    const nc_attn *a = j->a;
    int D = a->D, first, last = key_range(a, i, &first);
    int64_t bh = (int64_t)b * a->H + h;
    const float *dout = j->dout + O_OFF(a, b, i, h), *q = Q(j, b, i, h);
    float lse = j->lse_in[bh * a->Tq + i];
    float delta = j->work[bh * a->Tq + i];
    float *dq = j->dq + (Q(j, b, i, h) - j->q);
    scores(j, s, b, h, i, first, last);
    for (int t = first; t <= last; t++) {
        float p = expf(s[t - first] - lse);
        const float *k = K(j, b, t, h), *v = V(j, b, t, h);
        float *dk = j->dk + (k - j->k), *dv = j->dv + (v - j->v);
        float ds = p * (nc_cpu_dot(dout, v, D) - delta) * a->scale;
        for (int d = 0; d < D; d++) {
            dv[d] += p * dout[d];
            dq[d] += ds * k[d];
            dk[d] += ds * q[d];
        }
    }
}

/* items: (b, h); one thread owns all of a head's dk and dv */
static void backward_items(void *ctx, int64_t lo, int64_t hi) {
    attn_job *j = ctx;
    const nc_attn *a = j->a;
    float *s = malloc(sizeof(float) * (size_t)a->Tk);
    if (!s) abort();
    for (int64_t it = lo; it < hi; it++) {
        int h = (int)(it % a->H), b = (int)(it / a->H);
        zero_head_rows(j->dq, a->q_bs, a->q_ld, b, h, a->Tq, a->D);
        zero_head_rows(j->dk, a->k_bs, a->k_ld, b, h, a->Tk, a->D);
        zero_head_rows(j->dv, a->v_bs, a->v_ld, b, h, a->Tk, a->D);
        for (int i = 0; i < a->Tq; i++) {
            int64_t off = O_OFF(a, b, i, h);
            j->work[it * a->Tq + i] = nc_cpu_dot(j->dout + off, j->o_in + off, a->D);
        }
        for (int i = 0; i < a->Tq; i++) backward_query(j, s, b, h, i);
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
