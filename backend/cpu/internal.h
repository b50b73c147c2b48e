/* internal.h: what the cpu backend's files share: the backend state, the
 * deterministic block reduction, and every op (one file per op family, named
 * as its cuda twin: rmsnorm.c ~ rmsnorm.cu) for the op table
 * in backend.c. On this backend every buffer is f32. */
#ifndef NC_CPU_INTERNAL_H
#define NC_CPU_INTERNAL_H

#include "backend/backend.h"
#include "pool.h"
#include "core/memory.h"

#include <math.h>

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
/* torch.lerp: a + w (b - a), computed from the nearer end. */
static inline float nc_cpu_lerp(float a, float b, float w) {
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

/* One row of RMSNorm (rmsnorm.c): y (n) = x * rstd * scale, rstd = 1 /
 * sqrt(mean(x^2) + FLT_EPSILON), returned; y may be x. */
float nc_cpu_rms_row(float *y, const float *x, int n, float scale);
/* Its backward for scale 1: dx (n) (+= when acc) = r * (dy - y * mean(dy * y)). */
void nc_cpu_rms_row_back(float *dx, const float *dy, const float *y, float r, int n, bool acc);

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

/* tanh(x) within 2 ulp, branch-free so that loops over it vectorize (libm's
 * tanhf is a call per element): Cephes' odd polynomial below |x| = 0.625,
 * 1 - 2 / (e^2|x| + 1) = (1 - e^-2|x|) / (1 + e^-2|x|) above. */
static inline float nc_cpu_tanh(float x) {
    float a = fabsf(x), z = x * x;
    float poly = (((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z + 1.33314422036e-1f) * z -
                 3.33332819422e-1f;
    float small = copysignf(x + x * (z * poly), x); /* the sign kept at zero: tanh(-0) = -0 */
    float y = -2.0f * a;
    float e = nc_cpu_exp_nonpos(y < -100.0f ? -100.0f : y); /* in (0, 0.29] above 0.625; 0 far out; NaN stays */
    float large = copysignf((1.0f - e) / (1.0f + e), x);
    return a < 0.625f ? small : large;
}

/* Every op (backend.h's lists): nc_cpu_alloc, ..., nc_cpu_copy_if. */
#define NC_CPU_DECLARE(ret, name, params) ret nc_cpu_##name params;
NC_BACKEND_OPS(NC_CPU_DECLARE)

#endif
