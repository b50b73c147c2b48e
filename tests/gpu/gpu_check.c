/* gpu_check.c: the kernel test's harness (gpu_check.h). */
#include "gpu_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint16_t to_bf16(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float from_bf16(uint16_t h) {
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double uniform(gc_ctx *c) { /* splitmix64 */
    uint64_t z = (c->rng += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (double)((z ^ (z >> 31)) >> 11) / 9007199254740992.0;
}

int gc_open(gc_ctx *c, const char *filter, FILE *log) {
    nc_error err = {0};
    *c = (gc_ctx){.rng = 0x5eed0001, .filter = filter, .log = log};
    c->gpu = nc_backend_cuda_new(&err);
    if (!c->gpu) return gc_no_backend(err.message);
    c->cpu = nc_backend_cpu_new(0, &err);
    if (!c->cpu || cudaEventCreate(&c->t0) != cudaSuccess || cudaEventCreate(&c->t1) != cudaSuccess) {
        printf("FAIL: cannot set up: %s\n", err.message);
        return 1;
    }
    printf("device: %s\ncpu twin: %s\n", c->gpu->device, c->cpu->device);
    printf("%-34s %-40s %10s %8s %-4s %9s\n", "op", "shape", "rel err", "tol", "", "gpu ms");
    return 0;
}

void gc_close(gc_ctx *c) {
    cudaEventDestroy(c->t0);
    cudaEventDestroy(c->t1);
    nc_backend_free(c->gpu);
    nc_backend_free(c->cpu);
}

bool gc_wanted(const gc_ctx *c, const char *op) { return !c->filter || strstr(op, c->filter); }

/* h rounded to dt; d = h in dt. */
static void set_device(gc_ctx *c, gc_buf *b) {
    if (b->dt == NC_F32) {
        c->gpu->ops->upload(c->gpu, b->d, b->h, sizeof(float) * (size_t)b->n);
        return;
    }
    uint16_t *t = malloc(sizeof *t * (size_t)b->n);
    for (int64_t i = 0; i < b->n; i++) b->h[i] = from_bf16(t[i] = to_bf16(b->h[i]));
    c->gpu->ops->upload(c->gpu, b->d, t, sizeof *t * (size_t)b->n);
    nc_error err = {0};
    if (c->gpu->ops->sync(c->gpu, &err)) gc_fail(c, "upload", "", err.message);
    free(t);
}

static gc_buf alloc_buf(gc_ctx *c, int64_t n, nc_dtype dt) {
    gc_buf b = {.n = n, .dt = dt, .h = malloc(sizeof(float) * (size_t)(n ? n : 1))};
    b.d = c->gpu->ops->alloc(c->gpu, nc_dtype_size(dt) * (size_t)(n ? n : 1));
    if (!b.h || !b.d) {
        fprintf(stderr, "out of memory for %lld elements\n", (long long)n);
        exit(1);
    }
    return b;
}

gc_buf gc_in(gc_ctx *c, int64_t n, nc_dtype dt, float lo, float hi) {
    gc_buf b = alloc_buf(c, n, dt);
    for (int64_t i = 0; i < n; i++) b.h[i] = (float)(lo + (hi - lo) * uniform(c));
    set_device(c, &b);
    return b;
}

gc_buf gc_out(gc_ctx *c, int64_t n, nc_dtype dt) {
    gc_buf b = alloc_buf(c, n, dt);
    for (int64_t i = 0; i < n; i++) b.h[i] = NAN;
    set_device(c, &b);
    return b;
}

void gc_upload(gc_ctx *c, gc_buf *b) { set_device(c, b); }

int32_t *gc_ids(gc_ctx *c, int64_t n, int V, int32_t **dev) {
    int32_t *h = malloc(sizeof *h * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = (int32_t)(uniform(c) * V) % V;
    *dev = c->gpu->ops->alloc(c->gpu, sizeof *h * (size_t)n);
    c->gpu->ops->upload(c->gpu, *dev, h, sizeof *h * (size_t)n);
    return h;
}

void gc_free(gc_ctx *c, gc_buf *b) {
    c->gpu->ops->free(c->gpu, b->d);
    free(b->h);
}

void gc_free_ids(gc_ctx *c, int32_t *host, int32_t *dev) {
    c->gpu->ops->free(c->gpu, dev);
    free(host);
}

void gc_start(gc_ctx *c) { cudaEventRecord(c->t0, nc_cuda_of(c->gpu)->stream); }

double gc_stop(gc_ctx *c) {
    float ms = 0;
    cudaEventRecord(c->t1, nc_cuda_of(c->gpu)->stream);
    cudaEventSynchronize(c->t1);
    cudaEventElapsedTime(&ms, c->t0, c->t1);
    return ms;
}

static void row(gc_ctx *c, const char *op, const char *shape, double err, double tol, bool ok, double ms,
                const char *note) {
    c->checks++;
    c->failures += !ok;
    FILE *outs[2] = {stdout, c->log};
    for (int i = 0; i < 2; i++)
        if (outs[i])
            fprintf(outs[i], "%-34s %-40s %10.3e %8.0e %-4s %9.4f%s%s\n", op, shape, err, tol, ok ? "PASS" : "FAIL",
                    ms, note ? "  " : "", note ? note : "");
    fflush(stdout);
}

/* The gpu side as f32. */
static float *fetch(gc_ctx *c, const gc_buf *b) {
    float *g = malloc(sizeof(float) * (size_t)(b->n ? b->n : 1));
    if (b->dt == NC_F32) {
        c->gpu->ops->download(c->gpu, g, b->d, sizeof(float) * (size_t)b->n);
        return g;
    }
    uint16_t *t = malloc(sizeof *t * (size_t)(b->n ? b->n : 1));
    c->gpu->ops->download(c->gpu, t, b->d, sizeof *t * (size_t)b->n);
    for (int64_t i = 0; i < b->n; i++) g[i] = from_bf16(t[i]);
    free(t);
    return g;
}

void gc_check(gc_ctx *c, const char *op, const char *shape, const gc_buf *b, double tol, double ms) {
    nc_error err = {0};
    float *g = fetch(c, b);
    if (c->gpu->ops->sync(c->gpu, &err)) {
        row(c, op, shape, NAN, tol, false, ms, err.message);
        free(g);
        return;
    }
    if (b->dt == NC_BF16) /* the twin rounds where the kernel rounds: its output, stored in bf16 */
        for (int64_t i = 0; i < b->n; i++) b->h[i] = from_bf16(to_bf16(b->h[i]));
    int64_t unwritten;
    double rel = twin_rel_error(g, b->h, b->n, &unwritten), bias = rel_bias(g, b->h, b->n);
    char note[96] = "";
    if (unwritten) snprintf(note, sizeof note, "%lld elements NaN (unwritten?)", (long long)unwritten);
    else if (!(fabs(bias) <= tol * TWIN_BIAS)) snprintf(note, sizeof note, "a systematic error: relative bias %.2e", bias);
    row(c, op, shape, rel, tol, rel <= tol && note[0] == 0, ms, note[0] ? note : NULL);
    free(g);
}

void gc_check_same(gc_ctx *c, const char *op, const char *shape, const gc_buf *a, const gc_buf *b) {
    nc_error err = {0};
    float *ga = fetch(c, a), *gb = fetch(c, b);
    if (c->gpu->ops->sync(c->gpu, &err)) row(c, op, shape, NAN, 0, false, 0, err.message);
    else if (a->n != b->n || a->dt != b->dt || memcmp(ga, gb, sizeof(float) * (size_t)a->n) != 0)
        row(c, op, shape, NAN, 0, false, 0, "not the same bits");
    else row(c, op, shape, 0, 0, true, 0, NULL);
    free(ga), free(gb);
}

void gc_fail(gc_ctx *c, const char *op, const char *shape, const char *why) {
    row(c, op, shape, NAN, 0, false, 0, why);
}
