/* memory.h: what every part allocates with, and the footprint a model
 * declares before it allocates (memory_limits.h holds it against the limits). */
#ifndef NC_MEMORY_H
#define NC_MEMORY_H

#include <stddef.h>

/* Bytes a model would hold: on its backend's device (0 for host backends:
 * theirs count as host), on the host, and on the host only while it saves or
 * exports (the state's copy). */
typedef struct nc_footprint {
    double device, host, host_transient;
} nc_footprint;

/* Allocations within an estimate that passed the limits, and small
 * bookkeeping ones (a message, a connection, op scratch of a few KiB): they
 * abort with a message when the system still has no memory (as the kernel's
 * OOM killer would end the process on first touch). Everything sized by a
 * request or a file is estimated before it gets here. */
void *nc_xmalloc(size_t bytes);
void *nc_xcalloc(size_t n, size_t size);
void *nc_xrealloc(void *p, size_t bytes);

#endif
