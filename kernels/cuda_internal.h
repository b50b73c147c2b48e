/* cuda_internal.h: what the cuda backend's files share: the backend state,
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

#include "tensor/backend.h"

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
/* Tracked device allocations (zero-filled), for the backend's internal buffers too. */
void *nc_cuda_alloc(nc_backend *be, size_t bytes);
void nc_cuda_free(nc_backend *be, void *p);

/* ---- gemm.c ------------------------------------------------------------------------ */
nc_gemm_cache *nc_gemm_cache_new(nc_backend *be);
void nc_gemm_cache_free(nc_backend *be, nc_gemm_cache *c);
void nc_cuda_gemm(nc_backend *be, const nc_gemm *g);

/* ---- cuda_graph.c ------------------------------------------------------------------- */
int nc_cuda_graph_begin(nc_backend *be, nc_error *err);
void *nc_cuda_graph_end(nc_backend *be, nc_error *err);
void nc_cuda_graph_launch(nc_backend *be, void *graph);
void nc_cuda_graph_free(nc_backend *be, void *graph);
void *nc_cuda_host_alloc(nc_backend *be, size_t bytes);
void nc_cuda_host_free(nc_backend *be, void *p);
void nc_cuda_download_async(nc_backend *be, void *host, const void *src, size_t bytes);
void *nc_cuda_event_new(nc_backend *be);
void nc_cuda_event_free(nc_backend *be, void *ev);
void nc_cuda_event_record(nc_backend *be, void *ev);
int nc_cuda_event_wait(nc_backend *be, void *ev, nc_error *err);
/* Moves the recorded failure (if any) into err and clears it: 0 or -1. */
int nc_cuda_take_error(nc_backend *be, nc_error *err);

/* ---- the ops (the .cu files) ------------------------------------------------------------ */
void nc_cuda_cast(nc_backend *be, void *dst, nc_dtype dt, const void *src, nc_dtype st, int64_t n);
void nc_cuda_embedding_forward(nc_backend *be, void *out, const float *table, const int32_t *ids,
                               int64_t N, int C);
void nc_cuda_embedding_backward(nc_backend *be, float *dtable, const void *dout, const int32_t *ids,
                                int64_t N, int C, int V);
void nc_cuda_ve_forward(nc_backend *be, void *v, int64_t ld, float *gate, const void *xn,
                        int64_t ldx, const float *w, const float *table, const int32_t *ids,
                        int64_t N, int H, int D);
void nc_cuda_ve_backward(nc_backend *be, void *dve, void *dxn, int64_t ldx, float *dw,
                         const void *dv, int64_t ld, const float *gate, const void *xn,
                         const float *w, const float *table, const int32_t *ids, int64_t N, int H,
                         int D);
void nc_cuda_rmsnorm_forward(nc_backend *be, void *out, float *rstd, const void *x, int64_t N, int C);
void nc_cuda_rmsnorm_backward(nc_backend *be, void *dx, const void *dout, const void *out,
                              const float *rstd, int64_t N, int C, bool accumulate);
void nc_cuda_rope_qknorm_forward(nc_backend *be, void *qkv, float *rstd, const float *cos,
                                 const float *sin, int B, int T, int pos0, int H, int D);
void nc_cuda_rope_qknorm_backward(nc_backend *be, void *dqkv, const void *qkv, const float *rstd,
                                  const float *cos, const float *sin, int B, int T, int H, int D);
void nc_cuda_smear_forward(nc_backend *be, void *x, const void *e, const void *prev, const float *w,
                           const float *lambda, int B, int T, int C);
void nc_cuda_smear_backward(nc_backend *be, void *de, const void *dx, const void *e, const float *w,
                            const float *lambda, float *dw, float *dlambda, int B, int T, int C);
void nc_cuda_scale_add_forward(nc_backend *be, void *out, const void *x, const float *a,
                               const void *y, const float *b, float s, int64_t n);
void nc_cuda_scale_add_backward(nc_backend *be, void *dx, void *dy, float *da, float *db,
                                const void *dout, const void *x, const float *a, const void *y,
                                const float *b, float s, int64_t n);
void nc_cuda_add(nc_backend *be, void *y, const void *x, int64_t n);
void nc_cuda_relu2_forward(nc_backend *be, void *out, const void *x, int64_t n);
void nc_cuda_relu2_backward(nc_backend *be, void *dx, void *y, const void *dout, const void *x, int64_t n);
void nc_cuda_attention_forward(nc_backend *be, const nc_attn *a, void *o, float *lse, const void *q,
                               const void *k, const void *v);
void nc_cuda_attention_backward(nc_backend *be, const nc_attn *a, void *dq, void *dk, void *dv,
                                const void *dout, const void *q, const void *k, const void *v,
                                const void *o, const float *lse, float *work);
void nc_cuda_softcap_ce(nc_backend *be, float *losses, void *dlogits, const void *logits,
                        const int32_t *targets, int64_t N, int V, int Vp, float cap, float scale);
void nc_cuda_softcap(nc_backend *be, float *out, const void *logits, int64_t N, int V, int Vp,
                     float cap);
void nc_cuda_mean(nc_backend *be, float *out, const float *x, int64_t n);
void nc_cuda_adamw(nc_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                   const nc_adamw_hp *hp);
void nc_cuda_muon_momentum(nc_backend *be, float *g, float *buf, int64_t n, const nc_muon_hp *hp);
void nc_cuda_muon_normalize(nc_backend *be, void *x, const float *g, int K, int R, int C);
void nc_cuda_muon_finish(nc_backend *be, float *p, const void *x, float *v2, int K, int R, int C,
                         const nc_muon_hp *hp);
/* Raises the attention kernels' shared memory limits (once, at creation). */
void nc_cuda_attention_init(nc_backend *be);
void nc_cuda_finite_and(nc_backend *be, float *flag, const float *x);
void nc_cuda_copy_if(nc_backend *be, void *dst, const void *src, size_t bytes, const float *flag);

#ifdef __cplusplus
}
#endif

#endif
