/* rmsnorm.c: RMSNorm without weight, eps = FLT_EPSILON (the row helpers
 * also serve rope.c's QK norm). */
#include "internal.h"

#include <float.h>
#include <math.h>

typedef struct norm_job {
    float *out, *dx, *rstd;
    const float *x, *dout, *y;
    const float *rstd_in;
    int C;
    bool accumulate;
} norm_job;

/* y (n) = x * rstd; returns rstd */
float nc_cpu_rms_row(float *y, const float *x, int n, float scale) {
    float r = 1.0f / sqrtf(nc_cpu_dot(x, x, n) / (float)n + FLT_EPSILON);
    for (int i = 0; i < n; i++) y[i] = x[i] * r * scale;
    return r;
}

/* dx (n) (+)= r * (dy - y * mean(dy * y)) */
void nc_cpu_rms_row_back(float *dx, const float *dy, const float *y, float r, int n, bool acc) {
    float m = nc_cpu_dot(dy, y, n) / (float)n;
    for (int i = 0; i < n; i++) {
        float g = r * (dy[i] - y[i] * m);
        dx[i] = acc ? dx[i] + g : g;
    }
}

static void rmsnorm_rows(void *ctx, int64_t lo, int64_t hi) {
    norm_job *j = ctx;
    for (int64_t r = lo; r < hi; r++) j->rstd[r] = nc_cpu_rms_row(j->out + r * j->C, j->x + r * j->C, j->C, 1.0f);
}

void nc_cpu_rmsnorm_forward(nc_backend *be, void *out, float *rstd, const void *x, int64_t N, int C) {
    norm_job j = {.out = out, .rstd = rstd, .x = x, .C = C};
    nc_pool_for(nc_cpu_pool(be), N, 64, rmsnorm_rows, &j);
}

static void rmsnorm_back_rows(void *ctx, int64_t lo, int64_t hi) {
    norm_job *j = ctx;
    int64_t C = j->C;
    for (int64_t r = lo; r < hi; r++)
        nc_cpu_rms_row_back(j->dx + r * C, j->dout + r * C, j->y + r * C, j->rstd_in[r], j->C, j->accumulate);
}

void nc_cpu_rmsnorm_backward(nc_backend *be, void *dx, const void *dout, const void *out,
                             const float *rstd, int64_t N, int C, bool accumulate) {
    norm_job j = {.dx = dx, .dout = dout, .y = out, .rstd_in = rstd, .C = C, .accumulate = accumulate};
    nc_pool_for(nc_cpu_pool(be), N, 64, rmsnorm_back_rows, &j);
}
