/* pool.c: persistent pthreads that wait for a job, run their range, and
 * report back; the calling thread runs range 0. Ops follow each other within
 * microseconds, so both sides spin briefly before sleeping on a condition. */
#include "pool.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#define SPINS 100000 /* about 50 us of polling before a thread sleeps */

struct nc_pool {
    int threads;
    pthread_t *tids;
    pthread_mutex_t mu;
    pthread_cond_t start, done;
    atomic_uint_fast64_t generation; /* bumped (under mu) for each job */
    atomic_int pending;              /* workers still running the current job */
    atomic_bool quit;
    /* the current job, written before generation is bumped */
    nc_range_fn fn;
    void *ctx;
    int64_t n;
    int ranges;
};

typedef struct worker_arg {
    nc_pool *pool;
    int index;
} worker_arg;

static void run_range(nc_pool *p, int r) {
    int64_t lo = p->n * r / p->ranges, hi = p->n * (r + 1) / p->ranges;
    if (lo < hi) p->fn(p->ctx, lo, hi);
}

/* Waits until the generation differs from seen (or quit); returns it. */
static uint64_t await_job(nc_pool *p, uint64_t seen) {
    for (int i = 0; i < SPINS; i++) {
        uint64_t g = atomic_load_explicit(&p->generation, memory_order_acquire);
        if (g != seen || atomic_load(&p->quit)) return g;
    }
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->generation) == seen && !atomic_load(&p->quit)) pthread_cond_wait(&p->start, &p->mu);
    pthread_mutex_unlock(&p->mu);
    return atomic_load(&p->generation);
}

static void *worker_main(void *argp) {
    worker_arg arg = *(worker_arg *)argp;
    free(argp);
    nc_pool *p = arg.pool;
    uint64_t seen = 0;
    for (;;) {
        seen = await_job(p, seen);
        if (atomic_load(&p->quit)) break;
        if (arg.index < p->ranges) run_range(p, arg.index);
        if (atomic_fetch_sub(&p->pending, 1) == 1) { /* the last one out wakes the caller */
            pthread_mutex_lock(&p->mu);
            pthread_cond_signal(&p->done);
            pthread_mutex_unlock(&p->mu);
        }
    }
    return NULL;
}

static void stop_workers(nc_pool *p, int started) {
    pthread_mutex_lock(&p->mu);
    atomic_store(&p->quit, true);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    for (int i = 0; i < started; i++) pthread_join(p->tids[i], NULL);
}

nc_pool *nc_pool_new(int threads) {
    nc_pool *p = calloc(1, sizeof *p);
    int n = threads < 1 ? 1 : threads;
    pthread_t *tids = calloc((size_t)n, sizeof *tids);
    if (!p || !tids) {
        free(p);
        free(tids);
        return NULL;
    }
    p->tids = tids;
    p->threads = 1; /* counts the threads started so far, the caller included */
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->start, NULL);
    pthread_cond_init(&p->done, NULL);
    for (; p->threads < n; p->threads++) {
        worker_arg *a = malloc(sizeof *a);
        if (a) *a = (worker_arg){p, p->threads};
        if (!a || pthread_create(&p->tids[p->threads - 1], NULL, worker_main, a) != 0) {
            free(a);
            nc_pool_free(p);
            return NULL;
        }
    }
    return p;
}

void nc_pool_free(nc_pool *p) {
    if (!p) return;
    stop_workers(p, p->threads - 1);
    pthread_mutex_destroy(&p->mu);
    pthread_cond_destroy(&p->start);
    pthread_cond_destroy(&p->done);
    free(p->tids);
    free(p);
}

static void await_workers(nc_pool *p) {
    for (int i = 0; i < SPINS; i++)
        if (atomic_load_explicit(&p->pending, memory_order_acquire) == 0) return;
    pthread_mutex_lock(&p->mu);
    while (atomic_load(&p->pending) > 0) pthread_cond_wait(&p->done, &p->mu);
    pthread_mutex_unlock(&p->mu);
}

void nc_pool_for(nc_pool *p, int64_t n, int64_t grain, nc_range_fn fn, void *ctx) {
    if (n <= 0) return;
    int64_t by_grain = grain > 0 ? (n + grain - 1) / grain : n;
    int ranges = by_grain < p->threads ? (int)by_grain : p->threads;
    if (ranges <= 1) {
        fn(ctx, 0, n);
        return;
    }
    p->fn = fn;
    p->ctx = ctx;
    p->n = n;
    p->ranges = ranges;
    atomic_store(&p->pending, p->threads - 1);
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add_explicit(&p->generation, 1, memory_order_release);
    pthread_cond_broadcast(&p->start);
    pthread_mutex_unlock(&p->mu);
    run_range(p, 0);
    await_workers(p);
}
