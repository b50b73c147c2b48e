/* rope.c: the fused rotary embedding + QK norm, in place on qkv. */
#include "internal.h"

#define QK_SCALE 1.2f

typedef struct rope_job {
    float *out, *dx, *rstd;
    const float *y, *cos, *sin;
    const float *rstd_in;
    int T, pos0, H, D;
} rope_job;

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
    rope_job *j = ctx;
    int H = j->H, D = j->D, C = H * D;
    for (int64_t r = lo; r < hi; r++) {
        int64_t pos = j->pos0 + r % j->T;
        const float *c = j->cos + pos * (D / 2), *s = j->sin + pos * (D / 2);
        for (int h = 0; h < 2 * H; h++) { /* q heads, then k heads */
            float *x = j->out + r * 3 * C + (int64_t)h * D;
            rotate(x, c, s, D / 2, 1.0f);
            j->rstd[r * 2 * H + h] = nc_cpu_rms_row(x, x, D, QK_SCALE);
        }
    }
}

void nc_cpu_rope_qknorm_forward(nc_backend *be, void *qkv, float *rstd, const float *cos,
                                const float *sin, int B, int T, int pos0, int H, int D) {
    rope_job j = {.out = qkv, .rstd = rstd, .cos = cos, .sin = sin, .T = T, .pos0 = pos0, .H = H, .D = D};
    nc_pool_for(nc_cpu_pool(be), (int64_t)B * T, 16, rope_rows, &j);
}

static void rope_back_rows(void *ctx, int64_t lo, int64_t hi) {
    rope_job *j = ctx;
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
            nc_cpu_rms_row_back(dx, dn, n, j->rstd_in[r * 2 * H + h], D, false);
            rotate(dx, c, s, D / 2, -1.0f);
        }
    }
}

void nc_cpu_rope_qknorm_backward(nc_backend *be, void *dqkv, const void *qkv, const float *rstd,
                                 const float *cos, const float *sin, int B, int T, int H, int D) {
    rope_job j = {.dx = dqkv, .y = qkv, .rstd_in = rstd, .cos = cos, .sin = sin, .T = T, .H = H, .D = D};
    nc_pool_for(nc_cpu_pool(be), (int64_t)B * T, 16, rope_back_rows, &j);
}
