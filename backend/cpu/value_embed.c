/* value_embed.c: the gated value embeddings (ResFormer). */
#include "internal.h"

#include <math.h>
#include <stdlib.h>

typedef struct ve_job {
    float *out, *dve, *dxn, *gate;
    const float *table, *dv, *xn, *w, *gate_in;
    const int32_t *ids;
    int64_t ld, ldx;
    int H, D;
} ve_job;

static void ve_rows(void *ctx, int64_t lo, int64_t hi) {
    ve_job *j = ctx;
    int H = j->H, D = j->D;
    for (int64_t r = lo; r < hi; r++) {
        const float *ve = j->table + (int64_t)j->ids[r] * H * D;
        float *v = j->out + r * j->ld;
        for (int h = 0; h < H; h++) {
            float z = nc_cpu_dot(j->xn + r * j->ldx, j->w + h * NC_VE_CHANNELS, NC_VE_CHANNELS);
            float g = 3.0f / (1.0f + expf(-z));
            j->gate[r * H + h] = g;
            for (int d = 0; d < D; d++) v[h * D + d] += g * ve[h * D + d];
        }
    }
}

void nc_cpu_ve_forward(nc_backend *be, void *v, int64_t ld, float *gate, const void *xn,
                       int64_t ldx, const float *w, const float *table, const int32_t *ids,
                       int64_t N, int H, int D) {
    ve_job j = {.out = v, .ld = ld, .gate = gate, .xn = xn, .ldx = ldx, .w = w, .table = table,
                   .ids = ids, .H = H, .D = D};
    nc_pool_for(nc_cpu_pool(be), N, 64, ve_rows, &j);
}

/* partial (H, 12): dw; also writes dve and adds into dxn */
static void ve_back_block(void *ctx, int64_t lo, int64_t hi, double *partial) {
    ve_job *j = ctx;
    int H = j->H, D = j->D;
    for (int64_t r = lo; r < hi; r++) {
        const float *ve = j->table + (int64_t)j->ids[r] * H * D, *dv = j->dv + r * j->ld;
        const float *xn = j->xn + r * j->ldx;
        float *dxn = j->dxn + r * j->ldx, *dve = j->dve + r * H * D;
        for (int h = 0; h < H; h++) {
            float g = j->gate_in[r * H + h];
            float dz = nc_cpu_dot(dv + h * D, ve + h * D, D) * g * (1.0f - g / 3.0f);
            for (int c = 0; c < NC_VE_CHANNELS; c++) {
                dxn[c] += dz * j->w[h * NC_VE_CHANNELS + c];
                partial[h * NC_VE_CHANNELS + c] += dz * xn[c];
            }
            for (int d = 0; d < D; d++) dve[h * D + d] = g * dv[h * D + d];
        }
    }
}

void nc_cpu_ve_backward(nc_backend *be, void *dve, void *dxn, int64_t ldx, float *dw,
                        const void *dv, int64_t ld, const float *gate, const void *xn,
                        const float *w, const float *table, const int32_t *ids, int64_t N, int H,
                        int D) {
    ve_job j = {.dve = dve, .dxn = dxn, .ldx = ldx, .dv = dv, .ld = ld, .gate_in = gate, .xn = xn,
                   .w = w, .table = table, .ids = ids, .H = H, .D = D};
    double *sums = nc_cpu_scratch((size_t)H * NC_VE_CHANNELS);
    nc_cpu_block_reduce(be, N, NC_CPU_BLOCK, H * NC_VE_CHANNELS, ve_back_block, &j, sums);
    for (int i = 0; i < H * NC_VE_CHANNELS; i++) dw[i] += (float)sums[i];
    free(sums);
}
