/* smear.c: smear, the gated mix of the previous token's embedding. */
#include "internal.h"

#include <math.h>


typedef struct smear_job {
    float *x, *de;
    const float *e, *prev, *dx, *w;
    float lambda;
    int T, C;
} smear_job;

static float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }

/* Row r's previous embedding, or NULL (token 0 without prev). */
static const float *prev_row(const smear_job *j, int64_t r) {
    if (r % j->T) return j->e + (r - 1) * j->C;
    return j->prev ? j->prev + (r / j->T) * j->C : NULL;
}

static void smear_rows(void *ctx, int64_t lo, int64_t hi) {
    smear_job *j = ctx;
    for (int64_t r = lo; r < hi; r++) {
        const float *e = j->e + r * j->C, *p = prev_row(j, r);
        float *x = j->x + r * j->C;
        float g = p ? j->lambda * sigmoid(nc_cpu_dot(e, j->w, NC_SMEAR_CHANNELS)) : 0.0f;
        for (int c = 0; c < j->C; c++) x[c] = p ? e[c] + g * p[c] : e[c];
    }
}

void nc_cpu_smear_forward(nc_backend *be, void *x, const void *e, const void *prev, const float *w,
                          const float *lambda, int B, int T, int C) {
    smear_job j = {.x = x, .e = e, .prev = prev, .w = w, .lambda = *lambda, .T = T, .C = C};
    nc_pool_for(nc_cpu_pool(be), (int64_t)B * T, 64, smear_rows, &j);
}

/* partial (25): dw (24), dlambda; writes de */
static void smear_back_block(void *ctx, int64_t lo, int64_t hi, double *partial) {
    smear_job *j = ctx;
    int C = j->C;
    for (int64_t r = lo; r < hi; r++) {
        const float *e = j->e + r * C, *dx = j->dx + r * C;
        float *de = j->de + r * C;
        /* the identity path, and token r + 1's use of e_r as its previous */
        bool next = (r + 1) % j->T != 0;
        float gn = next ? j->lambda * sigmoid(nc_cpu_dot(e + C, j->w, NC_SMEAR_CHANNELS)) : 0.0f;
        for (int c = 0; c < C; c++) de[c] = next ? dx[c] + gn * dx[C + c] : dx[c];
        if (r % j->T == 0) continue;
        /* the gate of token r: g = lambda * sigmoid(w . e_r[:24]) */
        float s = sigmoid(nc_cpu_dot(e, j->w, NC_SMEAR_CHANNELS));
        float dg = nc_cpu_dot(dx, e - C, C);
        float dz = dg * j->lambda * s * (1.0f - s);
        for (int c = 0; c < NC_SMEAR_CHANNELS; c++) {
            de[c] += dz * j->w[c];
            partial[c] += dz * e[c];
        }
        partial[NC_SMEAR_CHANNELS] += dg * s;
    }
}

void nc_cpu_smear_backward(nc_backend *be, void *de, const void *dx, const void *e, const float *w,
                           const float *lambda, float *dw, float *dlambda, int B, int T, int C) {
    smear_job j = {.de = de, .dx = dx, .e = e, .w = w, .lambda = *lambda, .T = T, .C = C};
    double sums[NC_SMEAR_CHANNELS + 1];
    nc_cpu_block_reduce(be, (int64_t)B * T, NC_CPU_BLOCK, NC_SMEAR_CHANNELS + 1, smear_back_block, &j, sums);
    for (int c = 0; c < NC_SMEAR_CHANNELS; c++) dw[c] += (float)sums[c];
    *dlambda += (float)sums[NC_SMEAR_CHANNELS];
}
