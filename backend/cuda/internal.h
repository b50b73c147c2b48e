/* internal.h: what the cuda backend's files share: the backend state,
 * failure recording, the scratch buffer, and every op (the .cu files, gemm.c)
 * for the op table in cuda_backend.c. Activations are bf16; everything else
 * f32. C and CUDA C++ both include this header. */
#ifndef NC_CUDA_INTERNAL_H
#define NC_CUDA_INTERNAL_H

#include <cuda_runtime_api.h>

#ifdef __cplusplus
/* backend.h's own includes first, so that only its declarations take C linkage */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
extern "C" {
#endif

#include "backend/backend.h"

typedef struct nc_gemm_cache nc_gemm_cache;

/* One device allocation, for the byte accounting. */
typedef struct nc_cuda_block {
    void *p;
    size_t bytes;
} nc_cuda_block;

/* A pinned slot that uploads are staged through, so that they never wait. */
typedef struct nc_cuda_stage {
    void *host;
    cudaEvent_t done; /* recorded after the slot's last copy */
} nc_cuda_stage;

#define NC_CUDA_STAGES 4
#define NC_CUDA_STAGE_BYTES (1 << 20)
#define NC_CUDA_MAX_RETIRED 64

typedef struct nc_cuda {
    cudaStream_t stream;
    int sms;
    nc_error error; /* the first failure since the last sync (code NC_OK: none) */
    bool capturing;
    nc_cuda_block *blocks; /* live allocations */
    int n_blocks, cap_blocks;
    int64_t bytes, peak_bytes;
    /* Op scratch, grown outside graph capture only. A graph keeps the pointer
     * it was captured with, so replaced buffers stay allocated until destroy. */
    void *scratch;
    size_t scratch_bytes;
    void *retired[NC_CUDA_MAX_RETIRED];
    int n_retired;
    nc_cuda_stage stages[NC_CUDA_STAGES];
    int next_stage;
    nc_gemm_cache *gemm;
} nc_cuda;

static inline nc_cuda *nc_cuda_of(nc_backend *be) { return (nc_cuda *)be->impl; }

/* Records the first failure (e not cudaSuccess); returns whether e is success. */
bool nc_cuda_ok(nc_backend *be, cudaError_t e, const char *what);
/* Records a failure that is not a cuda error (a bad argument, a library status). */
void nc_cuda_fail(nc_backend *be, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Checks the launch just made (cudaGetLastError). */
void nc_cuda_launched(nc_backend *be, const char *kernel);
/* At least `bytes` of device scratch (NULL, failure recorded, when it cannot grow). */
void *nc_cuda_scratch(nc_backend *be, size_t bytes);
/* Moves the recorded failure (if any) into err and clears it: 0 or -1. */
int nc_cuda_take_error(nc_backend *be, nc_error *err);

/* Whether gemm.c runs g (cuBLASLt with A and B of one dtype, no f32 -> bf16
 * product); other requests are recorded as failures. */
static inline bool nc_cuda_gemm_supported(nc_backend *be, const nc_gemm *g) {
    if (g->k > 0 && g->at == g->bt && !(g->at == NC_F32 && g->dt == NC_BF16)) return true;
    nc_cuda_fail(be, "cuda gemm: unsupported k %d or dtypes a %d b %d d %d", g->k, g->at, g->bt, g->dt);
    return false;
}

/* gemm.c's cuBLASLt plans, by shape. */
nc_gemm_cache *nc_gemm_cache_new(nc_backend *be);
void nc_gemm_cache_free(nc_backend *be, nc_gemm_cache *c);
/* Raises the attention kernels' shared memory limits (once, at creation). */
void nc_cuda_attention_init(nc_backend *be);

/* Every op (backend.h's lists), graphs included: nc_cuda_alloc (tracked and
 * zero-filled; the backend's internal buffers use it too), ..., the .cu
 * files' kernels (one file per op family, named as its cpu twin), gemm.c,
 * graph.c. */
#define NC_CUDA_DECLARE(ret, name, params) ret nc_cuda_##name params;
NC_BACKEND_OPS(NC_CUDA_DECLARE)
NC_BACKEND_GRAPH_OPS(NC_CUDA_DECLARE)

#ifdef __cplusplus
}
#endif

#endif
