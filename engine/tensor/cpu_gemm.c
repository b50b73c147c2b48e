/* cpu_gemm.c: nc_gemm on OpenBLAS. The pool splits a call into tiles (whole
 * matrices of a batch, then row or column slices of D); each tile is one serial
 * cblas_sgemm (cblas_ssyrk for symmetric products), so every element of D is
 * summed over k in one fixed order. */
#include "cpu_internal.h"

#include <cblas.h>
#include <string.h>

/* Below this many multiply-adds a matrix is not worth splitting. */
#define SPLIT_MIN_WORK (1 << 18)

typedef struct gemm_job {
    const nc_gemm *g;
    int slices;     /* per matrix */
    bool split_m;   /* slices cut rows of D (else columns) */
} gemm_job;

/* D[r0:r1, c0:c1] of matrix `i`. */
static void gemm_tile(const nc_gemm *g, int64_t i, int r0, int r1, int c0, int c1) {
    const float *a = (const float *)g->a + i * g->sa + (g->ta ? r0 : (int64_t)r0 * g->lda);
    const float *b = (const float *)g->b + i * g->sb + (g->tb ? (int64_t)c0 * g->ldb : c0);
    float *d = (float *)g->d + i * g->sd + (int64_t)r0 * g->ldd + c0;
    float beta = 0.0f;
    if (g->c) {
        const float *c = (const float *)g->c + i * g->sc + (int64_t)r0 * g->ldc + c0;
        if (c != d)
            for (int r = 0; r < r1 - r0; r++) memcpy(d + r * g->ldd, c + r * g->ldc, sizeof(float) * (size_t)(c1 - c0));
        beta = g->beta;
    }
    cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans,
                r1 - r0, c1 - c0, g->k, g->alpha, a, (int)g->lda, b, (int)g->ldb, beta, d, (int)g->ldd);
}

static void run_tiles(void *ctx, int64_t lo, int64_t hi) {
    gemm_job *j = ctx;
    const nc_gemm *g = j->g;
    for (int64_t t = lo; t < hi; t++) {
        int64_t i = t / j->slices, s = t % j->slices;
        int extent = j->split_m ? g->m : g->n;
        int from = (int)(extent * s / j->slices), to = (int)(extent * (s + 1) / j->slices);
        if (from == to) continue;
        if (j->split_m) gemm_tile(g, i, from, to, 0, g->n);
        else gemm_tile(g, i, 0, g->m, from, to);
    }
}

/* Symmetric products, one whole matrix per tile: the upper triangle by ssyrk,
 * then mirrored. */
static void run_symmetric(void *ctx, int64_t lo, int64_t hi) {
    const nc_gemm *g = ((gemm_job *)ctx)->g;
    for (int64_t i = lo; i < hi; i++) {
        float *d = (float *)g->d + i * g->sd;
        const float *c = g->c ? (const float *)g->c + i * g->sc : NULL;
        if (c && c != d)
            for (int r = 0; r < g->m; r++) memcpy(d + (int64_t)r * g->ldd, c + (int64_t)r * g->ldc, sizeof(float) * (size_t)g->m);
        cblas_ssyrk(CblasRowMajor, CblasUpper, g->ta ? CblasTrans : CblasNoTrans, g->m, g->k, g->alpha,
                    (const float *)g->a + i * g->sa, (int)g->lda, c ? g->beta : 0.0f, d, (int)g->ldd);
        for (int r = 1; r < g->m; r++)
            for (int col = 0; col < r; col++) d[(int64_t)r * g->ldd + col] = d[(int64_t)col * g->ldd + r];
    }
}

void nc_cpu_gemm(nc_backend *be, const nc_gemm *g) {
    if (g->m <= 0 || g->n <= 0 || g->batch <= 0) return;
    if (g->symmetric) {
        gemm_job j = {g, 1, true};
        nc_pool_for(nc_cpu_pool(be), g->batch, 1, run_symmetric, &j);
        return;
    }
    int threads = be->threads;
    double work = (double)g->m * g->n * g->k;
    int slices = 1;
    if (g->batch < threads && work >= SPLIT_MIN_WORK) slices = (threads + g->batch - 1) / g->batch;
    gemm_job j = {g, slices, g->m >= g->n};
    int64_t tiles = (int64_t)g->batch * slices;
    nc_pool_for(nc_cpu_pool(be), tiles, work * g->batch >= SPLIT_MIN_WORK ? 1 : tiles, run_tiles, &j);
}
