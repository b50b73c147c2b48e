/* memory_limits.h: what a request or a file may make nanochatd allocate.
 *
 * Before anything sized by a request or a file is allocated, the memory it
 * implies is estimated from its dimensions (a model's footprint: parameters,
 * gradients, optimizer state, a batch's activations, tables; a corpus's
 * bytes) and held against the limits: host memory (default: 80% of the
 * machine's, or of the cgroup's limit when lower; nanochatd --max-memory) and
 * device memory (default: 90% of the GPU's; --max-device-memory). A request
 * over a limit is refused with BadRequest, a file with CheckpointCorrupt,
 * and the message gives the estimate and the limit. */
#ifndef NC_MEMORY_LIMITS_H
#define NC_MEMORY_LIMITS_H

#include "core/memory.h"
#include "error.h"

#include <stdint.h>

typedef struct nc_limits {
    int64_t host_bytes;   /* > 0 */
    int64_t device_bytes; /* 0: the backend's own (nc_backend_memory_limit) */
} nc_limits;

/* The default host limit: 80% of physical memory, or of the cgroup's. */
int64_t nc_default_host_limit(void);
/* Bytes a corpus file may have: its decoding takes up to 13 bytes per byte. */
int64_t nc_corpus_max_bytes(const nc_limits *l);
#define NC_CORPUS_BYTES_PER_BYTE 13
/* A BPE corpus holds more per byte: text repaired to up to 3 bytes a byte
 * (invalid UTF-8), as many tokens, their array grown by doubling, then
 * split: its files may be this many times smaller. */
#define NC_CORPUS_BPE_FACTOR 4

/* 0 when fp fits the limits (device_limit: the backend's, 0 when none); else
 * `code` (BadRequest, CheckpointCorrupt) saying what needs how much. */
int nc_footprint_check(const nc_limits *l, int64_t device_limit, const nc_footprint *fp, nc_code code,
                       const char *what, nc_error *err);

#endif
