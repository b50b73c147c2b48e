/* bench_sgemm.c: nc-bench-sgemm [N] [THREADS] [REPEATS]: the machine's fp32
 * GEMM ceiling as the benchmark harness counts it: OpenBLAS's sgemm of two
 * N x N matrices (default 2048) on THREADS threads (default: every core),
 * the best of REPEATS (default 5) after one warm-up. Prints one JSON line:
 * {"n", "threads", "seconds", "gflops", "blas"}. */
#include "api.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 2048, threads = argc > 2 ? atoi(argv[2]) : (int)sysconf(_SC_NPROCESSORS_ONLN);
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    if (n < 1 || threads < 1 || repeats < 1) {
        fprintf(stderr, "usage: nc-bench-sgemm [N] [THREADS] [REPEATS]\n");
        return 2;
    }
    size_t nn = (size_t)n * (size_t)n;
    float *a = malloc(nn * sizeof *a), *b = malloc(nn * sizeof *b), *c = malloc(nn * sizeof *c); /* (N, N) each */
    if (!a || !b || !c) return 1;
    for (size_t i = 0; i < nn; i++) a[i] = (float)(i % 7) * 0.25f, b[i] = (float)(i % 5) * 0.5f;
    openblas_set_num_threads(threads);
    double best = 1e30;
    for (int r = 0; r <= repeats; r++) {
        double t0 = nc_now();
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double dt = nc_now() - t0;
        if (r > 0 && dt < best) best = dt; /* r 0 warms up */
    }
    printf("{\"n\": %d, \"threads\": %d, \"seconds\": %.6f, \"gflops\": %.3f, \"blas\": \"%s\"}\n", n, threads, best,
           2.0 * n * (double)n * n / best / 1e9, openblas_get_config());
    free(a), free(b), free(c);
    return 0;
}
