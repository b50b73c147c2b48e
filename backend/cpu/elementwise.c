/* elementwise.c: elementwise ops: casts, scaled sums with device scalars
 * (residual mix, backout), add, relu^2, and the guards of a step whose loss
 * is read back late (a sticky finite flag, a copy only while it holds). */
#include "internal.h"

#include <math.h>
#include <string.h>

#define ELEM_GRAIN 16384
#define ELEM_BLOCK 8192

typedef struct elem_job {
    float *out, *dx, *dy;
    const float *x, *y, *dout;
    float a, sb; /* a and s * b, read once from device memory */
} elem_job;

static float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

void nc_cpu_cast(nc_backend *be, void *dst, nc_dtype dt, const void *src, nc_dtype st, int64_t n) {
    if (dt == st) {
        nc_cpu_copy(be, dst, src, (size_t)n * nc_dtype_size(dt));
    } else if (dt == NC_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = bf16_to_f32(((const uint16_t *)src)[i]);
    } else {
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_bf16(((const float *)src)[i]);
    }
}

static void scale_add_range(void *ctx, int64_t lo, int64_t hi) {
    elem_job *j = ctx;
    for (int64_t i = lo; i < hi; i++) j->out[i] = j->a * j->x[i] + j->sb * j->y[i];
}

void nc_cpu_scale_add_forward(nc_backend *be, void *out, const void *x, const float *a,
                              const void *y, const float *b, float s, int64_t n) {
    elem_job j = {.out = out, .x = x, .y = y, .a = a ? *a : 1.0f, .sb = s * *b};
    nc_pool_for(nc_cpu_pool(be), n, ELEM_GRAIN, scale_add_range, &j);
}

/* partial (2): sum(dout * x), sum(dout * y); also writes dx and dy */
static void scale_add_back_block(void *ctx, int64_t lo, int64_t hi, double *partial) {
    elem_job *j = ctx;
    float sx = 0, sy = 0;
    for (int64_t i = lo; i < hi; i++) {
        float g = j->dout[i];
        if (j->x) sx += g * j->x[i];
        sy += g * j->y[i];
        j->dy[i] += j->sb * g;
        if (j->dx) j->dx[i] = j->a * g;
    }
    partial[0] = sx;
    partial[1] = sy;
}

void nc_cpu_scale_add_backward(nc_backend *be, void *dx, void *dy, float *da, float *db,
                               const void *dout, const void *x, const float *a, const void *y,
                               const float *b, float s, int64_t n) {
    elem_job j = {.dx = dx, .dy = dy, .x = a ? x : NULL, .y = y, .dout = dout, .a = a ? *a : 1.0f, .sb = s * *b};
    double sums[2];
    nc_cpu_block_reduce(be, n, ELEM_BLOCK, 2, scale_add_back_block, &j, sums);
    if (a) *da += (float)sums[0];
    *db += (float)(s * sums[1]);
}

static void add_range(void *ctx, int64_t lo, int64_t hi) {
    elem_job *j = ctx;
    for (int64_t i = lo; i < hi; i++) j->out[i] += j->x[i];
}

void nc_cpu_add(nc_backend *be, void *y, const void *x, int64_t n) {
    elem_job j = {.out = y, .x = x};
    nc_pool_for(nc_cpu_pool(be), n, ELEM_GRAIN, add_range, &j);
}

/* relu(x) = (x + |x|) / 2, exactly, in a form the compiler vectorizes. */
static inline float relu2(float x) {
    float r = 0.5f * (x + fabsf(x));
    return r * r;
}

static void relu2_range(void *ctx, int64_t lo, int64_t hi) {
    elem_job *j = ctx;
    float *restrict out = j->out;
    const float *restrict x = j->x;
    for (int64_t i = lo; i < hi; i++) out[i] = relu2(x[i]);
}

void nc_cpu_relu2_forward(nc_backend *be, void *out, const void *x, int64_t n) {
    elem_job j = {.out = out, .x = x};
    nc_pool_for(nc_cpu_pool(be), n, ELEM_GRAIN, relu2_range, &j);
}

/* dx = 2 relu(x) dout (dx may be dout); out = relu(x)^2 again */
static void relu2_back_range(void *ctx, int64_t lo, int64_t hi) {
    elem_job *j = ctx;
    float *dx = j->dx, *out = j->out;
    const float *x = j->x, *dout = j->dout;
    for (int64_t i = lo; i < hi; i++) dx[i] = (x[i] + fabsf(x[i])) * dout[i];
    for (int64_t i = lo; i < hi; i++) out[i] = relu2(x[i]);
}

void nc_cpu_relu2_backward(nc_backend *be, void *dx, void *y, const void *dout, const void *x, int64_t n) {
    elem_job j = {.dx = dx, .out = y, .dout = dout, .x = x};
    nc_pool_for(nc_cpu_pool(be), n, ELEM_GRAIN, relu2_back_range, &j);
}

void nc_cpu_finite_and(nc_backend *be, float *flag, const float *x) {
    (void)be;
    *flag = *flag != 0.0f && isfinite(*x) ? 1.0f : 0.0f;
}

void nc_cpu_copy_if(nc_backend *be, void *dst, const void *src, size_t bytes, const float *flag) {
    (void)be;
    if (*flag != 0.0f && bytes) memcpy(dst, src, bytes);
}
