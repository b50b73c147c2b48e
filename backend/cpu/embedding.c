/* embedding.c: token embedding lookups and their scatter-add backward. */
#include "internal.h"

#include <string.h>

typedef struct embed_job {
    float *out, *dtable;
    const float *table, *dout;
    const int32_t *ids;
    int64_t N;
    int C;
} embed_job;

static void lookup_rows(void *ctx, int64_t lo, int64_t hi) {
    embed_job *j = ctx;
    for (int64_t r = lo; r < hi; r++)
        memcpy(j->out + r * j->C, j->table + (int64_t)j->ids[r] * j->C, sizeof(float) * (size_t)j->C);
}

void nc_cpu_embedding_forward(nc_backend *be, void *out, const float *table, const int32_t *ids,
                              int64_t N, int C) {
    embed_job j = {.out = out, .table = table, .ids = ids, .C = C};
    nc_pool_for(nc_cpu_pool(be), N, 256, lookup_rows, &j);
}

/* Columns [lo, hi) of every row, tokens in order: no two threads share an element. */
static void scatter_columns(void *ctx, int64_t lo, int64_t hi) {
    embed_job *j = ctx;
    for (int64_t r = 0; r < j->N; r++) {
        float *dst = j->dtable + (int64_t)j->ids[r] * j->C;
        const float *src = j->dout + r * j->C;
        for (int64_t c = lo; c < hi; c++) dst[c] += src[c];
    }
}

void nc_cpu_embedding_backward(nc_backend *be, float *dtable, const void *dout, const int32_t *ids,
                               int64_t N, int C, int V) {
    (void)V; /* every column walks the tokens in order: the rows need no bound */
    embed_job j = {.dtable = dtable, .dout = dout, .ids = ids, .N = N, .C = C};
    nc_pool_for(nc_cpu_pool(be), C, 16, scatter_columns, &j);
}
