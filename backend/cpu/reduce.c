/* reduce.c: deterministic reductions for the cpu ops. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct block_job {
    int64_t n, block;
    int w;
    nc_block_fn fn;
    void *ctx;
    double *partials; /* (blocks, w) */
} block_job;

static void run_blocks(void *ctx, int64_t lo, int64_t hi) {
    block_job *j = ctx;
    for (int64_t b = lo; b < hi; b++) {
        int64_t start = b * j->block, end = start + j->block < j->n ? start + j->block : j->n;
        j->fn(j->ctx, start, end, j->partials + b * j->w);
    }
}

void nc_cpu_block_reduce(nc_backend *be, int64_t n, int64_t block, int w, nc_block_fn fn,
                         void *ctx, double *out) {
    memset(out, 0, sizeof(double) * (size_t)w);
    if (n <= 0) return;
    int64_t blocks = (n + block - 1) / block;
    double *partials = nc_cpu_scratch((size_t)(blocks * w));
    block_job j = {n, block, w, fn, ctx, partials};
    nc_pool_for(nc_cpu_pool(be), blocks, 1, run_blocks, &j);
    for (int64_t b = 0; b < blocks; b++)
        for (int i = 0; i < w; i++) out[i] += partials[b * w + i];
    free(partials);
}

float nc_cpu_dot(const float *a, const float *b, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int u = 0; u < 16; u++) acc[u] += a[i + u] * b[i + u];
    for (; i < n; i++) acc[i & 15] += a[i] * b[i];
    float s = 0;
    for (int u = 0; u < 16; u++) s += acc[u];
    return s;
}

double *nc_cpu_scratch(size_t n) { return nc_xcalloc(n ? n : 1, sizeof(double)); }

float nc_cpu_sum(const float *x, int n) {
    float acc[16] = {0};
    int i = 0;
    for (; i + 16 <= n; i += 16)
        for (int u = 0; u < 16; u++) acc[u] += x[i + u];
    for (; i < n; i++) acc[i & 15] += x[i];
    float s = 0;
    for (int u = 0; u < 16; u++) s += acc[u];
    return s;
}

float nc_cpu_max(const float *x, int n) {
    float acc[8];
    for (int u = 0; u < 8; u++) acc[u] = x[0];
    int i = 0;
    for (; i + 8 <= n; i += 8)
        for (int u = 0; u < 8; u++) { /* a select by multiplication: exact for finite x */
            float more = (float)(x[i + u] > acc[u]);
            acc[u] = x[i + u] * more + acc[u] * (1.0f - more);
        }
    for (; i < n; i++) acc[0] = x[i] > acc[0] ? x[i] : acc[0];
    float m = acc[0];
    for (int u = 1; u < 8; u++) m = acc[u] > m ? acc[u] : m;
    return m;
}
