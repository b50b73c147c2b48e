/* cpu_internal.h: what the cpu backend's files share: the backend state, the
 * deterministic block reduction, and every op (cpu_ops_*.c) for the op table
 * in cpu_backend.c. On this backend every buffer is f32. */
#ifndef NC_CPU_INTERNAL_H
#define NC_CPU_INTERNAL_H

#include "backend.h"
#include "cpu_pool.h"
#include "../memory.h"

typedef struct nc_cpu {
    nc_pool *pool;
    int64_t bytes, peak_bytes; /* allocated through the backend (host thread only) */
} nc_cpu;

static inline nc_pool *nc_cpu_pool(nc_backend *be) { return ((nc_cpu *)be->impl)->pool; }

/* Items per block of a token reduction: partial sums are per block and are
 * added in block order, so results do not depend on the thread count. */
#define NC_CPU_BLOCK 64

/* fn adds the contributions of items [lo, hi) into partial (w), zeroed. */
typedef void (*nc_block_fn)(void *ctx, int64_t lo, int64_t hi, double *partial);
/* out (w) = the sum over blocks of `block` items of [0, n), in block order. */
void nc_cpu_block_reduce(nc_backend *be, int64_t n, int64_t block, int w, nc_block_fn fn,
                         void *ctx, double *out);
/* n zeroed doubles of op scratch (free() them); aborts when memory is out. */
double *nc_cpu_scratch(size_t n);
/* Float dot product, sum and max, in fixed orders the compiler vectorizes. */
float nc_cpu_dot(const float *a, const float *b, int n);
float nc_cpu_sum(const float *x, int n);
float nc_cpu_max(const float *x, int n); /* finite x, n >= 1 */

/* e^x for x in [-2.9e6, 0] within 1 ulp (0 below about -87.3, no subnormals):
 * Cody-Waite reduction by a magic-number rounding and Cephes' polynomial,
 * branch-free so that loops over it vectorize. */
static inline float nc_cpu_exp_nonpos(float x) {
    float t = x * 1.44269504089f + 12582912.0f; /* 1.5 x 2^23: round(x / ln 2) lands in the low bits */
    float n = t - 12582912.0f;
    float r = (x - n * 0.693359375f) + n * 2.12194440e-4f; /* x - n ln 2, in two parts */
    float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r + 4.1665795894e-2f) * r +
               1.6666665459e-1f) * r + 5.0000001201e-1f;
    union { float f; int32_t i; } bits = {.f = t};
    int32_t e = bits.i - 0x4b400000;  /* = n for x in the domain */
    e = e < -127 ? -127 : e > 0 ? 0 : e; /* 2^-127: a zero scale; NaN x stays NaN through r */
    union { uint32_t u; float f; } scale = {.u = (uint32_t)(e + 127) << 23};
    return (p * r * r + r + 1.0f) * scale.f;
}

void nc_cpu_gemm(nc_backend *be, const nc_gemm *g);

void nc_cpu_embedding_forward(nc_backend *be, void *out, const float *table, const int32_t *ids,
                              int64_t N, int C);
void nc_cpu_embedding_backward(nc_backend *be, float *dtable, const void *dout, const int32_t *ids,
                               int64_t N, int C, int V);
void nc_cpu_ve_forward(nc_backend *be, void *v, int64_t ld, float *gate, const void *xn,
                       int64_t ldx, const float *w, const float *table, const int32_t *ids,
                       int64_t N, int H, int D);
void nc_cpu_ve_backward(nc_backend *be, void *dve, void *dxn, int64_t ldx, float *dw,
                        const void *dv, int64_t ld, const float *gate, const void *xn,
                        const float *w, const float *table, const int32_t *ids, int64_t N, int H,
                        int D);

void nc_cpu_rmsnorm_forward(nc_backend *be, void *out, float *rstd, const void *x, int64_t N, int C);
void nc_cpu_rmsnorm_backward(nc_backend *be, void *dx, const void *dout, const void *out,
                             const float *rstd, int64_t N, int C, bool accumulate);
void nc_cpu_rope_qknorm_forward(nc_backend *be, void *qkv, float *rstd, const float *cos,
                                const float *sin, int B, int T, int pos0, int H, int D);
void nc_cpu_rope_qknorm_backward(nc_backend *be, void *dqkv, const void *qkv, const float *rstd,
                                 const float *cos, const float *sin, int B, int T, int H, int D);

void nc_cpu_smear_forward(nc_backend *be, void *x, const void *e, const void *prev, const float *w,
                          const float *lambda, int B, int T, int C);
void nc_cpu_smear_backward(nc_backend *be, void *de, const void *dx, const void *e, const float *w,
                           const float *lambda, float *dw, float *dlambda, int B, int T, int C);
void nc_cpu_scale_add_forward(nc_backend *be, void *out, const void *x, const float *a,
                              const void *y, const float *b, float s, int64_t n);
void nc_cpu_scale_add_backward(nc_backend *be, void *dx, void *dy, float *da, float *db,
                               const void *dout, const void *x, const float *a, const void *y,
                               const float *b, float s, int64_t n);
void nc_cpu_add(nc_backend *be, void *y, const void *x, int64_t n);
void nc_cpu_relu2_forward(nc_backend *be, void *out, const void *x, int64_t n);
void nc_cpu_relu2_backward(nc_backend *be, void *dx, void *y, const void *dout, const void *x, int64_t n);

void nc_cpu_attention_forward(nc_backend *be, const nc_attn *a, void *o, float *lse, const void *q,
                              const void *k, const void *v);
void nc_cpu_attention_backward(nc_backend *be, const nc_attn *a, void *dq, void *dk, void *dv,
                               const void *dout, const void *q, const void *k, const void *v,
                               const void *o, const float *lse, float *work);

void nc_cpu_softcap_ce(nc_backend *be, float *losses, void *dlogits, const void *logits,
                       const int32_t *targets, int64_t N, int V, int Vp, float cap, float scale);
void nc_cpu_softcap(nc_backend *be, float *out, const void *logits, int64_t N, int V, int Vp,
                    float cap);
void nc_cpu_mean(nc_backend *be, float *out, const float *x, int64_t n);

void nc_cpu_adamw(nc_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                  const nc_adamw_hp *hp);
void nc_cpu_muon_momentum(nc_backend *be, float *g, float *buf, int64_t n, const nc_muon_hp *hp);
void nc_cpu_muon_normalize(nc_backend *be, void *x, const float *g, int K, int R, int C);
void nc_cpu_muon_finish(nc_backend *be, float *p, const void *x, float *v2, int K, int R, int C,
                        const nc_muon_hp *hp);

void nc_cpu_finite_and(nc_backend *be, float *flag, const float *x);
void nc_cpu_copy_if(nc_backend *be, void *dst, const void *src, size_t bytes, const float *flag);

#endif
