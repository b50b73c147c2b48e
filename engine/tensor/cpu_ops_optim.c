/* cpu_ops_optim.c: the elementwise and per-matrix parts of AdamW and Muon. */
#include "cpu_internal.h"

#include <math.h>
#include <stdlib.h>

#define OPTIM_GRAIN 16384

typedef struct optim_job {
    float *p, *g, *m, *v, *buf, *x_out, *v2;
    const float *g_in, *x;
    const nc_adamw_hp *adam;
    const nc_muon_hp *muon;
    int R, C;
} optim_job;

/* torch.lerp: a + w (b - a), computed from the nearer end. */
static inline float lerp(float a, float b, float w) {
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

static void adamw_range(void *ctx, int64_t lo, int64_t hi) {
    optim_job *j = ctx;
    nc_adamw_hp hp = *j->adam;
    float decay = 1.0f - hp.lr * hp.wd, step = hp.lr / hp.bias1;
    float w1 = 1.0f - hp.beta1, w2 = 1.0f - hp.beta2;
    for (int64_t i = lo; i < hi; i++) {
        float g = j->g_in[i];
        j->m[i] = lerp(j->m[i], g, w1);
        j->v[i] = lerp(j->v[i], g * g, w2);
        float denom = sqrtf(j->v[i] / hp.bias2) + hp.eps;
        j->p[i] = j->p[i] * decay - step * (j->m[i] / denom);
    }
}

void nc_cpu_adamw(nc_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                  const nc_adamw_hp *hp) {
    optim_job j = {.p = p, .g_in = g, .m = m, .v = v, .adam = hp};
    nc_pool_for(nc_cpu_pool(be), n, OPTIM_GRAIN, adamw_range, &j);
}

static void momentum_range(void *ctx, int64_t lo, int64_t hi) {
    optim_job *j = ctx;
    float mu = j->muon->momentum;
    for (int64_t i = lo; i < hi; i++) {
        j->buf[i] = lerp(j->buf[i], j->g[i], 1.0f - mu);
        j->g[i] = lerp(j->g[i], j->buf[i], mu);
    }
}

void nc_cpu_muon_momentum(nc_backend *be, float *g, float *buf, int64_t n, const nc_muon_hp *hp) {
    optim_job j = {.g = g, .buf = buf, .muon = hp};
    nc_pool_for(nc_cpu_pool(be), n, OPTIM_GRAIN, momentum_range, &j);
}

static double sum_squares(const float *x, int64_t n) {
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

/* One matrix: MuonEq row equilibration, then Frobenius normalization. */
static void normalize_matrix(float *x, const float *g, int R, int C) {
    float target = (float)sqrt(sum_squares(g, (int64_t)R * C)) / sqrtf((float)R);
    for (int r = 0; r < R; r++) {
        float row = fmaxf((float)sqrt(sum_squares(g + (int64_t)r * C, C)), 1e-6f);
        float s = target / row;
        for (int c = 0; c < C; c++) x[(int64_t)r * C + c] = g[(int64_t)r * C + c] * s;
    }
    float denom = (float)sqrt(sum_squares(x, (int64_t)R * C)) * 1.01f + 1e-6f;
    for (int64_t i = 0; i < (int64_t)R * C; i++) x[i] /= denom;
}

static void normalize_range(void *ctx, int64_t lo, int64_t hi) {
    optim_job *j = ctx;
    int64_t size = (int64_t)j->R * j->C;
    for (int64_t k = lo; k < hi; k++) normalize_matrix(j->x_out + k * size, j->g_in + k * size, j->R, j->C);
}

void nc_cpu_muon_normalize(nc_backend *be, void *x, const float *g, int K, int R, int C) {
    optim_job j = {.x_out = x, .g_in = g, .R = R, .C = C};
    nc_pool_for(nc_cpu_pool(be), K, 1, normalize_range, &j);
}

/* vm (n) = mean of g^2 along the reduced dimension, g = x * s; rows when R >= C. */
static void second_moments(double *vm, const float *x, float s, int R, int C) {
    bool rows = R >= C;
    int n = rows ? R : C, red = rows ? C : R;
    for (int i = 0; i < n; i++) vm[i] = 0;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            float g = x[(int64_t)r * C + c] * s;
            vm[rows ? r : c] += (double)g * g;
        }
    for (int i = 0; i < n; i++) vm[i] /= red;
}

/* One matrix: Muon+ renormalization, NorMuon, cautious weight decay, update. */
static void finish_matrix(const optim_job *j, double *vm, float *p, const float *x, float *v2) {
    int R = j->R, C = j->C, n = R >= C ? R : C, red = R >= C ? C : R;
    nc_muon_hp hp = *j->muon;
    float s = sqrtf((float)(R < C ? R : C)) / fmaxf((float)sqrt(sum_squares(x, (int64_t)R * C)), 1e-6f);
    second_moments(vm, x, s, R, C);
    double norm_sq = 0, scaled_sq = 0;
    for (int i = 0; i < n; i++) {
        v2[i] = lerp(v2[i], (float)vm[i], 1.0f - hp.beta2);
        float step = 1.0f / sqrtf(fmaxf(v2[i], 1e-10f));
        norm_sq += vm[i] * red;
        scaled_sq += vm[i] * red * step * step;
        vm[i] = step; /* vm now holds the per-row (or column) step */
    }
    float ratio = (float)sqrt(norm_sq) / fmaxf((float)sqrt(scaled_sq), 1e-10f);
    float lr_wd = hp.lr * hp.wd;
    for (int r = 0; r < R; r++)
        for (int c = 0; c < C; c++) {
            int64_t i = (int64_t)r * C + c;
            float g = x[i] * s * ((float)vm[R >= C ? r : c] * ratio);
            float decay = g * p[i] >= 0 ? lr_wd * p[i] : 0.0f;
            p[i] -= hp.lr * g + decay;
        }
}

static void finish_range(void *ctx, int64_t lo, int64_t hi) {
    optim_job *j = ctx;
    int64_t size = (int64_t)j->R * j->C, n = j->R >= j->C ? j->R : j->C;
    double *vm = nc_cpu_scratch((size_t)n);
    for (int64_t k = lo; k < hi; k++) finish_matrix(j, vm, j->p + k * size, j->x + k * size, j->v2 + k * n);
    free(vm);
}

void nc_cpu_muon_finish(nc_backend *be, float *p, const void *x, float *v2, int K, int R, int C,
                        const nc_muon_hp *hp) {
    optim_job j = {.p = p, .x = x, .v2 = v2, .muon = hp, .R = R, .C = C};
    nc_pool_for(nc_cpu_pool(be), K, 1, finish_range, &j);
}
