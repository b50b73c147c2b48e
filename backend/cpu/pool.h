/* pool.h: a fixed pool of worker threads for the cpu backend.
 *
 * nc_pool_for splits [0, n) into one contiguous range per thread (the caller
 * computes range 0). The split depends only on n, the grain and the thread
 * count, and every op writes disjoint outputs per range, so results are the
 * same on every run. */
#ifndef NC_CPU_POOL_H
#define NC_CPU_POOL_H

#include <stdint.h>

typedef struct nc_pool nc_pool;

/* fn computes items [lo, hi) */
typedef void (*nc_range_fn)(void *ctx, int64_t lo, int64_t hi);

nc_pool *nc_pool_new(int threads); /* NULL when threads cannot be started */
void nc_pool_free(nc_pool *p);
/* Runs fn over [0, n) in ranges of at least `grain` items (a single call
 * on the caller's thread when n <= grain); returns when all are done. */
void nc_pool_for(nc_pool *p, int64_t n, int64_t grain, nc_range_fn fn, void *ctx);

#endif
