/* muon.c: Muon's elementwise and per-matrix parts (momentum, MuonEq
 * normalization, the NorMuon finish with cautious weight decay). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

#define MUON_GRAIN 16384

typedef struct muon_job {
    float *p, *g, *buf, *x_out, *v2;
    const float *g_in, *x;
    const nc_muon_hp *muon;
    int R, C;
} muon_job;

static void momentum_range(void *ctx, int64_t lo, int64_t hi) {
    muon_job *j = ctx;
    float mu = j->muon->momentum;
    for (int64_t i = lo; i < hi; i++) {
        j->buf[i] = nc_cpu_lerp(j->buf[i], j->g[i], 1.0f - mu);
        j->g[i] = nc_cpu_lerp(j->g[i], j->buf[i], mu);
    }
}

void nc_cpu_muon_momentum(nc_backend *be, float *g, float *buf, int64_t n, const nc_muon_hp *hp) {
    muon_job j = {.g = g, .buf = buf, .muon = hp};
    nc_pool_for(nc_cpu_pool(be), n, MUON_GRAIN, momentum_range, &j);
}

/* rowsq (R) = each row's sum of squares of x (R, C); returns their total. */
static double row_squares(const float *x, int R, int C, float *rowsq) {
    double total = 0;
    for (int r = 0; r < R; r++) total += rowsq[r] = nc_cpu_dot(x + (int64_t)r * C, x + (int64_t)r * C, C);
    return total;
}

/* One matrix: MuonEq row equilibration, then Frobenius normalization. */
static void normalize_matrix(float *x, const float *g, int R, int C, float *rowsq) {
    int64_t n = (int64_t)R * C;
    float target = (float)sqrt(row_squares(g, R, C, rowsq)) / sqrtf((float)R);
    for (int r = 0; r < R; r++) {
        float s = target / fmaxf(sqrtf(rowsq[r]), 1e-6f);
        float *restrict xr = x + (int64_t)r * C;
        const float *restrict gr = g + (int64_t)r * C;
        for (int c = 0; c < C; c++) xr[c] = gr[c] * s;
    }
    float denom = (float)sqrt(row_squares(x, R, C, rowsq)) * 1.01f + 1e-6f;
    for (int64_t i = 0; i < n; i++) x[i] /= denom;
}

static void normalize_range(void *ctx, int64_t lo, int64_t hi) {
    muon_job *j = ctx;
    int64_t size = (int64_t)j->R * j->C;
    float *rowsq = nc_xmalloc(sizeof(float) * (size_t)j->R);
    if (!rowsq) abort();
    for (int64_t k = lo; k < hi; k++) normalize_matrix(j->x_out + k * size, j->g_in + k * size, j->R, j->C, rowsq);
    free(rowsq);
}

void nc_cpu_muon_normalize(nc_backend *be, void *x, const float *g, int K, int R, int C) {
    muon_job j = {.x_out = x, .g_in = g, .R = R, .C = C};
    nc_pool_for(nc_cpu_pool(be), K, 1, normalize_range, &j);
}

/* vm (R or C) = the mean of g^2, g = x * s, along columns when R >= C, else along rows. */
static void second_moments(float *vm, const float *x, const float *rowsq, float s, int R, int C) {
    if (R >= C) {
        for (int r = 0; r < R; r++) vm[r] = rowsq[r] * s * s / (float)C;
        return;
    }
    for (int c = 0; c < C; c++) vm[c] = 0;
    for (int r = 0; r < R; r++) {
        const float *restrict xr = x + (int64_t)r * C;
        for (int c = 0; c < C; c++) vm[c] += xr[c] * xr[c];
    }
    for (int c = 0; c < C; c++) vm[c] *= s * s / (float)R;
}

/* p -= lr g + lr wd p (g p >= 0) for one row, g = x * f (f per column, or f0 for all). */
static void update_row(float *restrict p, const float *restrict x, const float *restrict f, float f0, int C,
                       float lr, float lr_wd) {
    for (int c = 0; c < C; c++) {
        float g = x[c] * (f ? f[c] : f0);
        float cautious = (float)(g * p[c] >= 0.0f);
        p[c] -= lr * g + lr_wd * p[c] * cautious;
    }
}

/* One matrix: Muon+ renormalization, NorMuon, cautious weight decay, update.
 * work: (R + max(R, C)) floats. */
static void finish_matrix(const muon_job *j, float *work, float *p, const float *x, float *v2) {
    int R = j->R, C = j->C, n = R >= C ? R : C, red = R >= C ? C : R;
    nc_muon_hp hp = *j->muon;
    float *rowsq = work, *vm = work + R;
    float s = sqrtf((float)(R < C ? R : C)) / fmaxf((float)sqrt(row_squares(x, R, C, rowsq)), 1e-6f);
    second_moments(vm, x, rowsq, s, R, C);
    double norm_sq = 0, scaled_sq = 0;
    for (int i = 0; i < n; i++) {
        v2[i] = nc_cpu_lerp(v2[i], vm[i], 1.0f - hp.beta2);
        float step = 1.0f / sqrtf(fmaxf(v2[i], 1e-10f));
        norm_sq += (double)vm[i] * red;
        scaled_sq += (double)vm[i] * red * step * step;
        vm[i] = step; /* vm now holds the per-row (or per-column) step */
    }
    float ratio = (float)sqrt(norm_sq) / fmaxf((float)sqrt(scaled_sq), 1e-10f);
    for (int i = 0; i < n; i++) vm[i] *= s * ratio; /* the whole factor on g = x * vm */
    for (int r = 0; r < R; r++)
        update_row(p + (int64_t)r * C, x + (int64_t)r * C, R >= C ? NULL : vm, vm[r], C, hp.lr,
                   hp.lr * hp.wd);
}

static void finish_range(void *ctx, int64_t lo, int64_t hi) {
    muon_job *j = ctx;
    int64_t size = (int64_t)j->R * j->C, n = j->R >= j->C ? j->R : j->C;
    float *work = nc_xmalloc(sizeof(float) * (size_t)(j->R + n));
    if (!work) abort();
    for (int64_t k = lo; k < hi; k++) finish_matrix(j, work, j->p + k * size, j->x + k * size, j->v2 + k * n);
    free(work);
}

void nc_cpu_muon_finish(nc_backend *be, float *p, const void *x, float *v2, int K, int R, int C,
                        const nc_muon_hp *hp) {
    muon_job j = {.p = p, .x = x, .v2 = v2, .muon = hp, .R = R, .C = C};
    nc_pool_for(nc_cpu_pool(be), K, 1, finish_range, &j);
}
