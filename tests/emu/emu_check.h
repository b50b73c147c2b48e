/* emu_check.h: the emulated kernel tests' harness. A buffer lives on both
 * sides: f32 for the cpu twin, the op's dtype for the emulated device (host
 * memory, optionally one element past a 16-byte boundary). BOTH() calls an
 * op once on each side with the same arguments, P() picking each side's
 * pointer. Every case runs twice, the second time with every block's threads
 * in descending order (emu_set_order): it must give the same bits. */
#ifndef NC_EMU_CHECK_H
#define NC_EMU_CHECK_H

#include "emu.h"
#include "twin_check.h"

#include "suite.h"

#define EC_MAX_CHECKS 256

typedef struct ec_ctx {
    nc_backend *cpu;
    uint64_t rng;
    int shift;  /* elements every new device buffer starts past a 16-byte boundary */
    int side;   /* 0: the cpu twin's turn, 1: the emulated device's */
    int run;    /* 0, then 1 (the rerun in descending thread order) */
    int checks, failures;
    uint64_t digests[EC_MAX_CHECKS]; /* (checks) the first run's device bytes, hashed */
} ec_ctx;

typedef struct ec_buf {
    int64_t n;
    nc_dtype dt;
    float *h;    /* (n) the twin's side */
    void *d;     /* (n) of dt, the device side */
    void *block; /* what d lives in */
} ec_buf;

/* Uniform in [lo, hi), rounded to dt on both sides. */
ec_buf ec_in(ec_ctx *c, int64_t n, nc_dtype dt, float lo, float hi);
/* NaN on both sides: every element must be written. */
ec_buf ec_out(ec_ctx *c, int64_t n, nc_dtype dt);
/* Token ids below V (the same array serves both sides). */
int32_t *ec_ids(ec_ctx *c, int64_t n, int V);
/* Sets b's device side from its host side. */
void ec_sync(ec_buf *b);
void ec_free(ec_buf *b);

/* The pointer to element `at` of b on the side whose turn it is. */
void *ec_at(const ec_ctx *c, const ec_buf *b, int64_t at);
#define P(b) ec_at(c, &(b), 0)
#define BOTH(op, ...)                                                                                            \
    ((c)->side = 0, (c)->cpu->ops->op((c)->cpu, __VA_ARGS__), (c)->side = 1,                                    \
     nc_cuda_##op(emu_backend(), __VA_ARGS__), (c)->side = 0)

/* Compares b's device side with the twin's result (relative norm, as
 * gc_check; and its bias), and with the first run's bits on the rerun;
 * prints failures. A bf16 buffer's twin result is first rounded to bf16, as
 * the kernel rounds what it stores (so a few large values, such as the
 * targets' logit gradients, do not read their roundings as a bias). */
void ec_check(ec_ctx *c, const char *op, const char *shape, const ec_buf *b, double tol);

/* Runs cases(c) twice on a fresh context, threads ascending then descending;
 * returns the failures (comparisons, reruns that differ, emulator errors). */
int ec_run(void (*cases)(ec_ctx *c));

/* main(): the Check tests given, as one suite; exit status 1 on a failure. */
int ec_main(const char *name, const TTest *const tests[]);
#define EC_MAIN(name, ...)                                                                                       \
    int main(void) { return ec_main((name), (const TTest *const[]){__VA_ARGS__, NULL}); }

#endif
