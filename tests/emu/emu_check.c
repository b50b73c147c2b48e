/* emu_check.c: the emulated kernel tests' harness (emu_check.h). */
#include "emu_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double uniform(ec_ctx *c) { /* xorshift64*, 53 bits */
    c->rng ^= c->rng >> 12, c->rng ^= c->rng << 25, c->rng ^= c->rng >> 27;
    return (double)((c->rng * 0x2545f4914f6cdd1dull) >> 11) * 0x1p-53;
}

static ec_buf alloc_buf(ec_ctx *c, int64_t n, nc_dtype dt) {
    size_t e = nc_dtype_size(dt), bytes = e * (size_t)(n + c->shift);
    ec_buf b = {.n = n, .dt = dt, .h = malloc(sizeof(float) * (size_t)(n ? n : 1))};
    b.block = aligned_alloc(16, (bytes + 15) / 16 * 16 + 16);
    if (!b.h || !b.block) {
        fprintf(stderr, "out of memory for %lld elements\n", (long long)n);
        exit(1);
    }
    b.d = (char *)b.block + e * (size_t)c->shift;
    return b;
}

void ec_sync(ec_buf *b) {
    for (int64_t i = 0; i < b->n; i++) {
        if (b->dt == NC_F32) {
            ((float *)b->d)[i] = b->h[i];
        } else {
            ((uint16_t *)b->d)[i] = emu_to_bf16(b->h[i]);
            b->h[i] = emu_from_bf16(((uint16_t *)b->d)[i]);
        }
    }
}

ec_buf ec_in(ec_ctx *c, int64_t n, nc_dtype dt, float lo, float hi) {
    ec_buf b = alloc_buf(c, n, dt);
    for (int64_t i = 0; i < n; i++) b.h[i] = (float)(lo + (hi - lo) * uniform(c));
    ec_sync(&b);
    return b;
}

ec_buf ec_out(ec_ctx *c, int64_t n, nc_dtype dt) {
    ec_buf b = alloc_buf(c, n, dt);
    for (int64_t i = 0; i < n; i++) b.h[i] = NAN;
    ec_sync(&b);
    return b;
}

int32_t *ec_ids(ec_ctx *c, int64_t n, int V) {
    int32_t *ids = malloc(sizeof *ids * (size_t)n);
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)(uniform(c) * V) % V;
    return ids;
}

void ec_free(ec_buf *b) {
    free(b->h);
    free(b->block);
}

void *ec_at(const ec_ctx *c, const ec_buf *b, int64_t at) {
    if (!c->side) return b->h + at;
    return (char *)b->d + nc_dtype_size(b->dt) * (size_t)at;
}

static uint64_t fnv1a(const void *p, size_t bytes) {
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < bytes; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    return h;
}

static void row(ec_ctx *c, const char *op, const char *shape, double rel, double tol, const char *why) {
    c->failures++;
    printf("FAIL %-30s %-36s rel err %.3e tol %.0e%s%s\n", op, shape, rel, tol, why ? ": " : "", why ? why : "");
    fflush(stdout);
}

/* The device side as f32. */
static float *device_values(const ec_buf *b) {
    float *g = malloc(sizeof(float) * (size_t)(b->n ? b->n : 1));
    for (int64_t i = 0; i < b->n; i++)
        g[i] = b->dt == NC_F32 ? ((const float *)b->d)[i] : emu_from_bf16(((const uint16_t *)b->d)[i]);
    return g;
}

void ec_check(ec_ctx *c, const char *op, const char *shape, const ec_buf *b, double tol) {
    int64_t unwritten;
    float *g = device_values(b);
    if (b->dt == NC_BF16) /* the twin rounds where the kernel rounds: its output, stored in bf16 */
        for (int64_t i = 0; i < b->n; i++) b->h[i] = emu_from_bf16(emu_to_bf16(b->h[i]));
    double rel = twin_rel_error(g, b->h, b->n, &unwritten), bias = rel_bias(g, b->h, b->n);
    free(g);
    uint64_t digest = fnv1a(b->d, nc_dtype_size(b->dt) * (size_t)b->n);
    int k = c->checks++;
    if (k >= EC_MAX_CHECKS) row(c, op, shape, rel, tol, "more checks than EC_MAX_CHECKS");
    else if (!(rel <= tol)) row(c, op, shape, rel, tol, unwritten ? "elements left NaN (unwritten?)" : NULL);
    else if (!(fabs(bias) <= tol * TWIN_BIAS)) row(c, op, shape, bias, tol * TWIN_BIAS, "a systematic error (relative bias)");
    else if (c->run == 0) c->digests[k] = digest;
    else if (c->digests[k] != digest) row(c, op, shape, rel, tol, "the rerun (threads descending) gave other bits");
}

int ec_run(void (*cases)(ec_ctx *c)) {
    nc_error err = {0};
    ec_ctx c = {.cpu = nc_backend_cpu_new(1, &err)};
    if (!c.cpu) {
        printf("FAIL cpu backend: %s\n", err.message);
        return 1;
    }
    int errors0 = emu_errors();
    for (c.run = 0; c.run < 2; c.run++) {
        c.rng = 0x5eed0001, c.checks = 0, c.shift = 0;
        emu_set_order(c.run == 1);
        cases(&c);
    }
    emu_set_order(false);
    nc_backend_free(c.cpu);
    return c.failures + emu_errors() - errors0;
}

int ec_main(const char *name, const TTest *const tests[]) {
    Suite *s = suite_create(name);
    tcase_set_timeout(tu_tcase_(s, name, tests), 60);
    return tu_run(s);
}
