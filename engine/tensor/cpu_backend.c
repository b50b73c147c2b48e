/* cpu_backend.c: the cpu backend: host memory, the thread pool, and the op
 * table (the ops themselves live in cpu_ops_*.c and cpu_gemm.c). */
#include "cpu_internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Each block starts with a 64-byte header holding its size, for the accounting. */
#define HEADER 64

static void *cpu_alloc(nc_backend *be, size_t bytes) {
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

static void cpu_free(nc_backend *be, void *p) {
    if (!p) return;
    nc_cpu *cpu = be->impl;
    char *block = (char *)p - HEADER;
    cpu->bytes -= (int64_t)*(size_t *)block;
    free(block);
}

static int64_t cpu_bytes(nc_backend *be, bool peak) {
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

static void cpu_copy(nc_backend *be, void *dst, const void *src, size_t bytes) {
    mem_job j = {dst, src};
    nc_pool_for(nc_cpu_pool(be), (int64_t)bytes, MEM_GRAIN, mem_range, &j);
}

static void cpu_zero(nc_backend *be, void *p, size_t bytes) {
    mem_job j = {p, NULL};
    nc_pool_for(nc_cpu_pool(be), (int64_t)bytes, MEM_GRAIN, mem_range, &j);
}

/* Host <-> host: the same bytes, on the caller's thread. */
static void cpu_transfer(nc_backend *be, void *dst, const void *src, size_t bytes) {
    (void)be;
    if (bytes) memcpy(dst, src, bytes);
}

static int cpu_sync(nc_backend *be, nc_error *err) {
    (void)be;
    (void)err;
    return 0;
}

static float bf16_to_f32(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint16_t f32_to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest even */
    return (uint16_t)(u >> 16);
}

static void cpu_cast(nc_backend *be, void *dst, nc_dtype dt, const void *src, nc_dtype st, int64_t n) {
    if (dt == st) {
        cpu_copy(be, dst, src, (size_t)n * nc_dtype_size(dt));
    } else if (dt == NC_F32) {
        for (int64_t i = 0; i < n; i++) ((float *)dst)[i] = bf16_to_f32(((const uint16_t *)src)[i]);
    } else {
        for (int64_t i = 0; i < n; i++) ((uint16_t *)dst)[i] = f32_to_bf16(((const float *)src)[i]);
    }
}

static void cpu_destroy(nc_backend *be);

static const nc_backend_ops cpu_ops = {
    .destroy = cpu_destroy,
    .alloc = cpu_alloc,
    .free = cpu_free,
    .bytes = cpu_bytes,
    .upload = cpu_transfer,
    .download = cpu_transfer,
    .zero = cpu_zero,
    .copy = cpu_copy,
    .sync = cpu_sync,
    .cast = cpu_cast,
    .gemm = nc_cpu_gemm,
    .embedding_forward = nc_cpu_embedding_forward,
    .embedding_backward = nc_cpu_embedding_backward,
    .rmsnorm_forward = nc_cpu_rmsnorm_forward,
    .rmsnorm_backward = nc_cpu_rmsnorm_backward,
    .smear_forward = nc_cpu_smear_forward,
    .smear_backward = nc_cpu_smear_backward,
    .scale_add_forward = nc_cpu_scale_add_forward,
    .scale_add_backward = nc_cpu_scale_add_backward,
    .add = nc_cpu_add,
    .ve_forward = nc_cpu_ve_forward,
    .ve_backward = nc_cpu_ve_backward,
    .rope_qknorm_forward = nc_cpu_rope_qknorm_forward,
    .rope_qknorm_backward = nc_cpu_rope_qknorm_backward,
    .attention_forward = nc_cpu_attention_forward,
    .attention_backward = nc_cpu_attention_backward,
    .relu2_forward = nc_cpu_relu2_forward,
    .relu2_backward = nc_cpu_relu2_backward,
    .softcap_ce = nc_cpu_softcap_ce,
    .softcap = nc_cpu_softcap,
    .mean = nc_cpu_mean,
    .adamw = nc_cpu_adamw,
    .muon_momentum = nc_cpu_muon_momentum,
    .muon_normalize = nc_cpu_muon_normalize,
    .muon_finish = nc_cpu_muon_finish,
    .finite_and = nc_cpu_finite_and,
    .copy_if = nc_cpu_copy_if,
};

static void cpu_destroy(nc_backend *be) {
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
