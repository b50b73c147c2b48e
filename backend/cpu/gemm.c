/* gemm.c: nc_gemm on OpenBLAS. A call is cut into tiles (whole matrices
 * of a batch, then row or column slices of D) by the matrices' shape alone,
 * never by the thread count: OpenBLAS's kernels give different bits for
 * different tile shapes, so tiles must not change when the threads do. Each
 * tile is one serial cblas_sgemm (cblas_ssyrk for symmetric products), or,
 * for a skinny product (decoding's row per sequence), one cblas_sgemv per
 * row: sgemm packs all of B on every call, which costs more than the product
 * itself when D has a row or a few. The pool hands tiles to threads, and no
 * element of D is summed across tiles. */
#include "internal.h"

#include <cblas.h>
#include <string.h>

#define SLICE 512                /* rows or columns of D a slice aims at */
#define SLICE_SKINNY 128         /* columns a slice of a skinny product (decoding) aims at */
#define SKINNY_ROWS 16           /* a product of fewer rows of D reads B once per row: memory-bound */
#define SLICES_MAX 16            /* per matrix */
#define SPLIT_MIN_WORK (1 << 22) /* multiply-adds below which a matrix stays whole ... */
#define SPLIT_MIN_B (1 << 17)    /* ... unless B has this many elements (a skinny product's cost) */
#define SLICE_ALIGN 16           /* slice boundaries fall on multiples of this */

typedef struct gemm_job {
    const nc_gemm *g;
    int slices;   /* per matrix */
    bool split_m; /* slices cut rows of D (else columns) */
} gemm_job;

/* Whether a product is worth cutting: enough multiply-adds, or (a skinny
 * product, as decoding's one row per sequence) enough of B to read, which
 * then bounds its time. */
static bool worth_splitting(const nc_gemm *g) {
    if (g->m < SKINNY_ROWS) return (double)g->n * g->k >= SPLIT_MIN_B; /* by B alone: a row's bits do not depend on m */
    return (double)g->m * g->n * g->k >= SPLIT_MIN_WORK;
}

/* Slices per matrix, from m, n and k alone: a product worth splitting is cut
 * into a power of two of slices (so that 2, 4, 8 threads share them evenly),
 * two at least, more while each keeps SLICE rows or columns: OpenBLAS packs
 * the other operand again for each slice (measured on one core: 1% of the
 * time at 512 rows, 2.5% at 256, 5% at 128). A skinny product packs almost
 * nothing again, so its slices aim at SLICE_SKINNY columns. */
static bool skinny(const nc_gemm *g) { return g->m < SKINNY_ROWS && !g->symmetric; }

static int slices_of(const nc_gemm *g, bool split_m) {
    int extent = split_m ? g->m : g->n, target = skinny(g) ? SLICE_SKINNY : SLICE;
    if (!worth_splitting(g) || extent < 2 * SLICE_ALIGN) return 1;
    int s = 2;
    while (s < SLICES_MAX && extent / (2 * s) >= target) s *= 2;
    return s;
}

/* Where slice s of `slices` starts along an extent. */
static int slice_start(int extent, int s, int slices) {
    if (s >= slices) return extent;
    return (int)((int64_t)extent * s / slices) / SLICE_ALIGN * SLICE_ALIGN;
}

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

/* D[:, c0:c1] of matrix `i` of a skinny product, row by row: d_r = alpha
 * op(B)^T a_r + beta c_r through sgemv, which reads B as it is. */
static void gemv_tile(const nc_gemm *g, int64_t i, int c0, int c1) {
    const float *a = (const float *)g->a + i * g->sa, *b = (const float *)g->b + i * g->sb;
    float *d = (float *)g->d + i * g->sd;
    int incx = g->ta ? (int)g->lda : 1;
    for (int r = 0; r < g->m; r++) {
        const float *x = a + (g->ta ? r : (int64_t)r * g->lda);
        float *y = d + (int64_t)r * g->ldd + c0, beta = 0.0f;
        if (g->c) {
            const float *c = (const float *)g->c + i * g->sc + (int64_t)r * g->ldc + c0;
            if (c != y) memcpy(y, c, sizeof(float) * (size_t)(c1 - c0));
            beta = g->beta;
        }
        if (g->tb) /* B (n, k): d_r[c] = B[c, :] . a_r */
            cblas_sgemv(CblasRowMajor, CblasNoTrans, c1 - c0, g->k, g->alpha, b + (int64_t)c0 * g->ldb, (int)g->ldb,
                        x, incx, beta, y, 1);
        else /* B (k, n): d_r[c] = B[:, c] . a_r */
            cblas_sgemv(CblasRowMajor, CblasTrans, g->k, c1 - c0, g->alpha, b + c0, (int)g->ldb, x, incx, beta, y, 1);
    }
}

static void run_tiles(void *ctx, int64_t lo, int64_t hi) {
    gemm_job *j = ctx;
    const nc_gemm *g = j->g;
    int extent = j->split_m ? g->m : g->n;
    for (int64_t t = lo; t < hi; t++) {
        int64_t i = t / j->slices;
        int s = (int)(t % j->slices);
        int from = slice_start(extent, s, j->slices), to = slice_start(extent, s + 1, j->slices);
        if (from == to) continue;
        if (skinny(g)) gemv_tile(g, i, from, to);
        else if (j->split_m) gemm_tile(g, i, from, to, 0, g->n);
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
    bool split_m = g->m >= g->n && !skinny(g); /* a skinny product is cut by its columns */
    gemm_job j = {g, slices_of(g, split_m), split_m};
    int64_t tiles = (int64_t)g->batch * j.slices;
    bool parallel = j.slices > 1 || (double)g->m * g->n * g->k * g->batch >= SPLIT_MIN_WORK;
    nc_pool_for(nc_cpu_pool(be), tiles, parallel ? 1 : tiles, run_tiles, &j);
}
