/* guards.h: the memory-drift guard. At each eval it observes the job's own
 * memory, counted where it is allocated: the resident model's host bytes
 * (its arrays, its autograd arena as grown, its optimizer) plus what its
 * backend holds (host memory on the cpu backend, device memory on a GPU),
 * never the whole process's, which other clients' requests also move. The
 * baseline is the minimum of a rolling window of accepted observations;
 * growth beyond max_growth over it fails the eval with MemoryDrift. The guard watches a working set in its steady
 * state: the window restarts when a model becomes resident (train, checkpoint
 * load) and after a run's first step has allocated what training needs, so
 * a bigger model or a new corpus is not taken for a leak. */
#ifndef NC_GUARDS_H
#define NC_GUARDS_H

#include "nc.h"

#define NC_GUARD_MAX_WINDOW 64

typedef struct nc_guard_series {
    double obs[NC_GUARD_MAX_WINDOW];
    int count, head;
} nc_guard_series;

typedef struct nc_guard {
    int window;
    double max_growth;
    nc_guard_series host, device;
} nc_guard;

void nc_guard_init(nc_guard *g, int window, double max_growth);
/* Forgets every observation: a new working set (a training run past its
 * first step, a loaded checkpoint) starts a new baseline. */
void nc_guard_reset(nc_guard *g);
/* device_bytes < 0: no device. Fails (and does not record) on drift. */
int nc_guard_observe(nc_guard *g, int64_t host_bytes, int64_t device_bytes, nc_error *err);

#endif
