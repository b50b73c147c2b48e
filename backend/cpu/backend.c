/* backend.c: the cpu backend: host memory, the thread pool, and the op
 * table (the other ops live in one file per op family). */
#include "internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each block starts with a 64-byte header holding its size, for the accounting. */
#define HEADER 64

void *nc_cpu_alloc(nc_backend *be, size_t bytes) {
    nc_cpu *cpu = be->impl;
    void *p = NULL;
    size_t rounded = (bytes + 63) / 64 * 64;
    if (posix_memalign(&p, 64, HEADER + rounded) != 0) return NULL;
    memset(p, 0, HEADER + rounded);
    *(size_t *)p = rounded;
    cpu->bytes += (int64_t)rounded;
    if (cpu->bytes > cpu->peak_bytes) cpu->peak_bytes = cpu->bytes;
    return (char *)p + HEADER;
}

void nc_cpu_free(nc_backend *be, void *p) {
    if (!p) return;
    nc_cpu *cpu = be->impl;
    char *block = (char *)p - HEADER;
    cpu->bytes -= (int64_t)*(size_t *)block;
    free(block);
}

int64_t nc_cpu_bytes(nc_backend *be, bool peak) {
    nc_cpu *cpu = be->impl;
    return peak ? cpu->peak_bytes : cpu->bytes;
}

/* Large copies and fills are split across the threads, in 1 MiB pieces. */
#define MEM_GRAIN (1 << 20)

typedef struct mem_job {
    char *dst;
    const char *src; /* NULL: fill with zeros */
} mem_job;

static void mem_range(void *ctx, int64_t lo, int64_t hi) {
    mem_job *j = ctx;
    if (j->src) memcpy(j->dst + lo, j->src + lo, (size_t)(hi - lo));
    else memset(j->dst + lo, 0, (size_t)(hi - lo));
}

void nc_cpu_copy(nc_backend *be, void *dst, const void *src, size_t bytes) {
    mem_job j = {dst, src};
    nc_pool_for(nc_cpu_pool(be), (int64_t)bytes, MEM_GRAIN, mem_range, &j);
}

void nc_cpu_copy_rows(nc_backend *be, void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t width,
                      size_t rows) {
    (void)be;
    for (size_t r = 0; r < rows; r++) memcpy((char *)dst + r * dst_pitch, (const char *)src + r * src_pitch, width);
}

void nc_cpu_zero(nc_backend *be, void *p, size_t bytes) {
    mem_job j = {p, NULL};
    nc_pool_for(nc_cpu_pool(be), (int64_t)bytes, MEM_GRAIN, mem_range, &j);
}

/* Host <-> host: the same bytes, on the caller's thread. */
static void transfer(void *dst, const void *src, size_t bytes) {
    if (bytes) memcpy(dst, src, bytes);
}

void nc_cpu_upload(nc_backend *be, void *dst, const void *host, size_t bytes) {
    (void)be;
    transfer(dst, host, bytes);
}

void nc_cpu_download(nc_backend *be, void *host, const void *src, size_t bytes) {
    (void)be;
    transfer(host, src, bytes);
}

int nc_cpu_sync(nc_backend *be, nc_error *err) {
    (void)be;
    (void)err;
    return 0;
}

#define NC_CPU_ENTRY(ret, name, params) .name = nc_cpu_##name,
static const nc_backend_ops cpu_ops = {NC_BACKEND_OPS(NC_CPU_ENTRY)}; /* no graphs */

void nc_cpu_destroy(nc_backend *be) {
    nc_pool_free(nc_cpu_pool(be));
    free(be->impl);
    free(be);
}

nc_backend *nc_backend_cpu_new(int threads, nc_error *err) {
    if (threads <= 0) threads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (threads <= 0) threads = 1;
    nc_backend *be = calloc(1, sizeof *be);
    nc_cpu *cpu = calloc(1, sizeof *cpu);
    nc_pool *pool = be && cpu ? nc_pool_new(threads) : NULL;
    if (!pool) {
        free(be);
        free(cpu);
        nc_fail(err, NC_E_INTERNAL, "cannot start %d cpu threads", threads);
        return NULL;
    }
    /* The pool splits every gemm across threads; OpenBLAS itself stays serial
     * so that the two never compete for cores. */
    openblas_set_num_threads(1);
    cpu->pool = pool;
    *be = (nc_backend){.name = "cpu", .gpu = false, .act = NC_F32, .threads = threads,
                       .ops = &cpu_ops, .impl = cpu};
    snprintf(be->device, sizeof be->device, "cpu: %d threads, %s", threads, openblas_get_config());
    return be;
}
