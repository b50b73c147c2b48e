/* nc-bench-ipc: round-trip latency of `status` against a running nanochatd,
 * from N concurrent clients (one thread and one connection each).
 * usage: nc-bench-ipc SOCKET CLIENTS REQUESTS_PER_CLIENT
 * Prints one line: clients, requests, p50 and p99 in microseconds. */
#define _GNU_SOURCE
#include "ncclient.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

typedef struct bench_thread {
    pthread_t t;
    const char *socket;
    int requests;
    double *lat_us; /* (requests) */
    int failed;
} bench_thread;

static double now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static void *run(void *arg) {
    bench_thread *b = arg;
    nc_client c;
    nc_error err;
    if (nc_client_connect(&c, b->socket, &err)) {
        b->failed = b->requests;
        return NULL;
    }
    for (int i = 0; i < b->requests; i++) {
        double t0 = now_us();
        json_t *r = nc_client_call(&c, "status", NULL, NULL, NULL, &err);
        b->lat_us[i] = now_us() - t0;
        b->failed += r == NULL;
        json_decref(r);
    }
    nc_client_close(&c);
    return NULL;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: nc-bench-ipc SOCKET CLIENTS REQUESTS_PER_CLIENT\n");
        return 2;
    }
    int clients = atoi(argv[2]), requests = atoi(argv[3]);
    if (clients < 1 || requests < 1) return 2;
    bench_thread *th = calloc((size_t)clients, sizeof *th);
    double *all = malloc((size_t)clients * requests * sizeof *all);
    for (int i = 0; i < clients; i++) {
        th[i] = (bench_thread){.socket = argv[1], .requests = requests, .lat_us = all + (size_t)i * requests};
        pthread_create(&th[i].t, NULL, run, &th[i]);
    }
    int failed = 0;
    for (int i = 0; i < clients; i++) {
        pthread_join(th[i].t, NULL);
        failed += th[i].failed;
    }
    size_t n = (size_t)clients * requests;
    qsort(all, n, sizeof *all, cmp);
    printf("clients=%d requests=%zu failed=%d p50_us=%.1f p99_us=%.1f max_us=%.1f\n", clients, n, failed,
           all[n / 2], all[(size_t)(0.99 * (double)(n - 1))], all[n - 1]);
    free(th);
    free(all);
    return failed ? 1 : 0;
}
