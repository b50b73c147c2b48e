/* cpu_ops_norm.c: RMSNorm (no weight) and the fused rotary + QK norm. */
#include "cpu_internal.h"

#include <float.h>
#include <math.h>

#define QK_SCALE 1.2f

typedef struct norm_job {
    float *out, *dx, *rstd;
    const float *x, *dout, *y, *cos, *sin;
    const float *rstd_in;
    int C, T, pos0, H, D;
    bool accumulate;
} norm_job;

/* y (n) = x * rstd; returns rstd */
static float rms_row(float *y, const float *x, int n, float scale) {
    float r = 1.0f / sqrtf(nc_cpu_dot(x, x, n) / (float)n + FLT_EPSILON);
    for (int i = 0; i < n; i++) y[i] = x[i] * r * scale;
    return r;
}

/* dx (n) (+)= r * (dy - y * mean(dy * y)) */
static void rms_row_back(float *dx, const float *dy, const float *y, float r, int n, bool acc) {
    float m = nc_cpu_dot(dy, y, n) / (float)n;
    for (int i = 0; i < n; i++) {
        float g = r * (dy[i] - y[i] * m);
        dx[i] = acc ? dx[i] + g : g;
    }
}

static void rmsnorm_rows(void *ctx, int64_t lo, int64_t hi) {
    norm_job *j = ctx;
    for (int64_t r = lo; r < hi; r++) j->rstd[r] = rms_row(j->out + r * j->C, j->x + r * j->C, j->C, 1.0f);
}

void nc_cpu_rmsnorm_forward(nc_backend *be, void *out, float *rstd, const void *x, int64_t N, int C) {
    norm_job j = {.out = out, .rstd = rstd, .x = x, .C = C};
    nc_pool_for(nc_cpu_pool(be), N, 64, rmsnorm_rows, &j);
}

static void rmsnorm_back_rows(void *ctx, int64_t lo, int64_t hi) {
    norm_job *j = ctx;
    int64_t C = j->C;
    for (int64_t r = lo; r < hi; r++)
        rms_row_back(j->dx + r * C, j->dout + r * C, j->y + r * C, j->rstd_in[r], j->C, j->accumulate);
}

void nc_cpu_rmsnorm_backward(nc_backend *be, void *dx, const void *dout, const void *out,
                             const float *rstd, int64_t N, int C, bool accumulate) {
    norm_job j = {.dx = dx, .dout = dout, .y = out, .rstd_in = rstd, .C = C, .accumulate = accumulate};
    nc_pool_for(nc_cpu_pool(be), N, 64, rmsnorm_back_rows, &j);
}

/* Rotates one head in place by -theta: (x1, x2) -> (x1 c + x2 s, -x1 s + x2 c);
 * sign -1 applies the transpose (the backward). */
static void rotate(float *x, const float *c, const float *s, int half, float sign) {
    for (int i = 0; i < half; i++) {
        float x1 = x[i], x2 = x[i + half], si = sign * s[i];
        x[i] = x1 * c[i] + x2 * si;
        x[i + half] = x2 * c[i] - x1 * si;
    }
}

static void rope_rows(void *ctx, int64_t lo, int64_t hi) {
    norm_job *j = ctx;
    int H = j->H, D = j->D, C = H * D;
    for (int64_t r = lo; r < hi; r++) {
        int64_t pos = j->pos0 + r % j->T;
        const float *c = j->cos + pos * (D / 2), *s = j->sin + pos * (D / 2);
        for (int h = 0; h < 2 * H; h++) { /* q heads, then k heads */
            float *x = j->out + r * 3 * C + (int64_t)h * D;
            rotate(x, c, s, D / 2, 1.0f);
            j->rstd[r * 2 * H + h] = rms_row(x, x, D, QK_SCALE);
        }
    }
}

void nc_cpu_rope_qknorm_forward(nc_backend *be, void *qkv, float *rstd, const float *cos,
                                const float *sin, int B, int T, int pos0, int H, int D) {
    norm_job j = {.out = qkv, .rstd = rstd, .cos = cos, .sin = sin, .T = T, .pos0 = pos0, .H = H, .D = D};
    nc_pool_for(nc_cpu_pool(be), (int64_t)B * T, 16, rope_rows, &j);
}

static void rope_back_rows(void *ctx, int64_t lo, int64_t hi) {
    norm_job *j = ctx;
    int H = j->H, D = j->D, C = H * D;
    float n[NC_MAX_HEAD_DIM], dn[NC_MAX_HEAD_DIM];
    for (int64_t r = lo; r < hi; r++) {
        int64_t pos = r % j->T;
        const float *c = j->cos + pos * (D / 2), *s = j->sin + pos * (D / 2);
        for (int h = 0; h < 2 * H; h++) {
            int64_t off = r * 3 * C + (int64_t)h * D;
            float *dx = j->dx + off;
            for (int i = 0; i < D; i++) {
                n[i] = j->y[off + i] / QK_SCALE;
                dn[i] = dx[i] * QK_SCALE;
            }
            rms_row_back(dx, dn, n, j->rstd_in[r * 2 * H + h], D, false);
            rotate(dx, c, s, D / 2, -1.0f);
        }
    }
}

void nc_cpu_rope_qknorm_backward(nc_backend *be, void *dqkv, const void *qkv, const float *rstd,
                                 const float *cos, const float *sin, int B, int T, int H, int D) {
    norm_job j = {.dx = dqkv, .y = qkv, .rstd_in = rstd, .cos = cos, .sin = sin, .T = T, .H = H, .D = D};
    nc_pool_for(nc_cpu_pool(be), (int64_t)B * T, 16, rope_back_rows, &j);
}
