/* gpu_check.h: the harness of the kernel test: tensors that live on both
 * backends (f32 on the cpu twin, the op's dtype on the gpu), filled with fresh
 * random data or poisoned with NaN, timed gpu calls, and the comparison that
 * prints one table row per checked output. */
#ifndef NC_GPU_CHECK_H
#define NC_GPU_CHECK_H

#include "../util/twin_check.h"
#include "backend/cuda/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The exit status when the cuda backend does not open: 77 (skipped) on a
 * machine without a GPU, 1 where NC_REQUIRE_GPU is set, as gpu_check.sh sets
 * it on a GPU machine, where a backend that does not open is a failure. */
static inline int gc_no_backend(const char *why) {
    bool required = getenv("NC_REQUIRE_GPU") && strcmp(getenv("NC_REQUIRE_GPU"), "0") != 0;
    printf("%s: %s\n", required ? "FAIL" : "SKIP", why);
    return required ? 1 : 77;
}

typedef struct gc_ctx {
    nc_backend *cpu, *gpu;
    uint64_t rng;
    cudaEvent_t t0, t1;
    int checks, failures;
    const char *filter; /* run only ops whose name contains it (NULL: all) */
    FILE *log;          /* the table, also (NULL: stdout only) */
} gc_ctx;

/* A tensor on both sides: h (n) f32 on the host for the twin, d on the gpu. */
typedef struct gc_buf {
    int64_t n;
    nc_dtype dt;
    float *h;
    void *d;
} gc_buf;

int gc_open(gc_ctx *c, const char *filter, FILE *log);
void gc_close(gc_ctx *c);
bool gc_wanted(const gc_ctx *c, const char *op);

/* Uniform in [lo, hi), rounded to dt's precision on both sides. */
gc_buf gc_in(gc_ctx *c, int64_t n, nc_dtype dt, float lo, float hi);
/* NaN on both sides: every element must be written. */
gc_buf gc_out(gc_ctx *c, int64_t n, nc_dtype dt);
/* Token ids below V on both sides. */
int32_t *gc_ids(gc_ctx *c, int64_t n, int V, int32_t **dev);
void gc_free(gc_ctx *c, gc_buf *b);
void gc_free_ids(gc_ctx *c, int32_t *host, int32_t *dev);
/* Sets b's gpu side from its host side (after the twin consumed an input it also changes). */
void gc_upload(gc_ctx *c, gc_buf *b);

/* Milliseconds of the gpu work issued between gc_start and gc_stop. */
void gc_start(gc_ctx *c);
double gc_stop(gc_ctx *c);

/* Compares b's gpu side with its host side (the twin's result, rounded to
 * bf16 first in a bf16 buffer, as the kernel rounds what it stores) and
 * prints a row: op, shape, relative error, tolerance, PASS/FAIL, gpu
 * milliseconds. */
void gc_check(gc_ctx *c, const char *op, const char *shape, const gc_buf *b, double tol, double ms);
/* Checks that a's and b's gpu sides hold the same bits (one row). */
void gc_check_same(gc_ctx *c, const char *op, const char *shape, const gc_buf *a, const gc_buf *b);
/* A row for a failure found before any comparison. */
void gc_fail(gc_ctx *c, const char *op, const char *shape, const char *why);

#endif
