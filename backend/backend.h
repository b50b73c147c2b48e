/* backend.h: the op table every tensor backend fills (cpu/ and cuda/).
 *
 * Models are written only in terms of these ops, so that one model file runs on
 * every backend. Conventions that hold for every op:
 *
 * - Every pointer is a device pointer (host memory on the cpu backend); the
 *   host never dereferences one. Buffers are row-major and contiguous unless an
 *   op takes a row stride ("ld", in elements).
 * - "act" buffers hold be->act (f32 on cpu, bf16 on cuda) and are typed void *;
 *   "f32" buffers (master weights, gradients, optimizer state, saved statistics,
 *   losses, hyperparameters) are float *. Math is done in f32 in every case.
 * - Ops never read device memory back to the host and never take a value that
 *   changes from step to step as a host argument: learnable scalars and per-step
 *   hyperparameters are read from device memory, so that a whole training step
 *   can be captured once (a CUDA graph) and replayed. Host arguments are shapes,
 *   strides and constants of the run.
 * - Ops are issued in order on one stream; only download() and sync() wait.
 * - Reductions are deterministic (fixed order, no atomics): the same inputs give
 *   the same bits on every run. The cpu backend sums token reductions in fixed
 *   blocks, so its results do not even depend on the thread count; the cuda
 *   backend partitions every reduction by its shape alone and picks one cuBLASLt
 *   algorithm per gemm shape, so same inputs give the same bits run to run (on
 *   one card and driver), and --deterministic costs nothing there.
 * - "+=" marks an output that is accumulated into; every other output is
 *   overwritten. Gradients of weights and learnable scalars always accumulate
 *   (the gradient arena is zeroed once per step).
 */
#ifndef NC_BACKEND_H
#define NC_BACKEND_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NC_MAX_HEAD_DIM 1024 /* the args schema's bound on head_dim */

typedef enum nc_dtype { NC_F32 = 0, NC_BF16 = 1 } nc_dtype;

/* Upstream's fixed gate widths: the smear gate reads the first 24 channels of
 * the embedding, the value-embedding gate the first 12 of the normed input. */
#define NC_SMEAR_CHANNELS 24
#define NC_VE_CHANNELS 12

size_t nc_dtype_size(nc_dtype t);

typedef struct nc_backend_ops nc_backend_ops;

typedef struct nc_backend {
    const char *name;    /* "cpu" | "cuda" */
    char device[128];    /* what runs the ops, for run.json ("cpu: 2 threads, OpenBLAS 0.3.21") */
    bool gpu;
    nc_dtype act;        /* activation dtype: NC_F32 on cpu */
    int threads;         /* host threads the backend computes with (cpu) */
    int64_t memory_bytes; /* the device's memory (gpu); 0: its buffers are host memory */
    const nc_backend_ops *ops;
    void *impl;
} nc_backend;

typedef enum nc_backend_kind { NC_BACKEND_CPU, NC_BACKEND_CUDA } nc_backend_kind;
/* Opens a backend (DeviceUnavailable when cuda is not built or no device is
 * present); the engine resolves device "auto" to one of them
 * (nc_engine_backend). threads 0 = one per core. */
nc_backend *nc_backend_open(nc_backend_kind kind, int threads, nc_error *err);
nc_backend *nc_backend_cpu_new(int threads, nc_error *err);
#ifdef NC_HAVE_CUDA
nc_backend *nc_backend_cuda_new(nc_error *err); /* cuda/ */
#endif
void nc_backend_free(nc_backend *be);
/* Bytes allocated through the backend now (or at most so far, when peak). */
int64_t nc_backend_device_bytes(nc_backend *be, bool peak);

/* Per-step hyperparameters, in device memory (refreshed by one upload per step). */
typedef struct nc_adamw_hp {
    float lr, beta1, beta2, eps, wd;
    float bias1, bias2; /* 1 - beta1^t, 1 - beta2^t for the step t (from 1) being taken */
    float pad;
} nc_adamw_hp;

typedef struct nc_muon_hp {
    float lr;       /* already times sqrt(max(1, R / C)) */
    float momentum; /* Nesterov momentum */
    float wd;       /* cautious weight decay */
    float beta2;    /* NorMuon second-moment decay */
} nc_muon_hp;

/* D = alpha * op(A) op(B) + beta * C, row-major, for `batch` matrices.
 * op(A) is (m, k): A is (m, k) with row stride lda, or (k, m) when ta.
 * op(B) is (k, n): B is (k, n) with row stride ldb, or (n, k) when tb.
 * C and D are (m, n) of dtype dt with row strides ldc and ldd; C may be NULL
 * (beta is then ignored) or equal D, otherwise it must not overlap D.
 * Matrix i of a batch starts at base + i * stride (elements).
 * symmetric: B is A and tb == !ta, so op(B) = op(A)^T and D (and C) are
 * symmetric; a backend may compute one triangle (syrk) and mirror it. */
typedef struct nc_gemm {
    int m, n, k, batch;
    bool ta, tb, symmetric;
    float alpha, beta;
    const void *a; nc_dtype at; int64_t lda, sa;
    const void *b; nc_dtype bt; int64_t ldb, sb;
    const void *c; int64_t ldc, sc;
    void *d; nc_dtype dt; int64_t ldd, sd;
} nc_gemm;

/* Causal attention of B sequences and H heads of size D, flash style (no
 * (Tq, Tk) matrix is ever stored). Queries are the last Tq of Tk positions:
 * query i sits at key position i + (Tk - Tq), and key j is visible to it iff
 * j <= i + Tk - Tq and (i + Tk - Tq) - j <= window. Head h of token t of
 * sequence b lives at base + b * bs + t * ld + h * D (elements), so q, k and v
 * can be read straight out of a packed (N, 3C) qkv buffer or a KV cache. */
typedef struct nc_attn {
    int B, H, D, Tq, Tk;
    int window;
    float scale;                 /* 1 / sqrt(D) */
    int64_t q_ld, q_bs, k_ld, k_bs, v_ld, v_bs, o_ld, o_bs;
} nc_attn;

/* Every op, written once, as X(return type, name, (parameters)): the table
 * below, each backend's declarations (nc_<backend>_<name>, in its
 * internal.h) and its table are made from these lists. */
#define NC_BACKEND_OPS(X) \
    X(void, destroy, (nc_backend *be)) /* frees the backend itself (nc_backend_free) */ \
    \
    /* ---- memory ---------------------------------------------------------- */ \
    X(void *, alloc, (nc_backend *be, size_t bytes)) /* zero-filled; NULL when out of memory */ \
    X(void, free, (nc_backend *be, void *p)) \
    X(int64_t, bytes, (nc_backend *be, bool peak)) /* see nc_backend_device_bytes */ \
    X(void, upload, (nc_backend *be, void *dst, const void *host, size_t bytes)) \
    X(void, download, (nc_backend *be, void *host, const void *src, size_t bytes)) /* waits */ \
    X(void, zero, (nc_backend *be, void *p, size_t bytes)) \
    X(void, copy, (nc_backend *be, void *dst, const void *src, size_t bytes)) /* no overlap */ \
    /* `rows` rows of `width` bytes from src, rows src_pitch bytes apart, to dst, rows dst_pitch \
     * apart (a strided copy: one KV cache row into every sequence's slot); no overlap */ \
    X(void, copy_rows, (nc_backend *be, void *dst, size_t dst_pitch, const void *src, size_t src_pitch, \
      size_t width, size_t rows)) \
    X(int, sync, (nc_backend *be, nc_error *err)) /* waits; reports deferred failures */ \
    /* dst (n) of dtype dt = src (n) of dtype st, rounding to nearest even */ \
    X(void, cast, (nc_backend *be, void *dst, nc_dtype dt, const void *src, nc_dtype st, int64_t n)) \
    \
    /* ---- matrix products ---------------------------------------------------- */ \
    X(void, gemm, (nc_backend *be, const nc_gemm *g)) \
    \
    /* ---- embedding: out (N, C) act = table (V, C) f32 [ids (N)] -------------- */ \
    X(void, embedding_forward, (nc_backend *be, void *out, const float *table, const int32_t *ids, int64_t N, \
      int C)) \
    /* dtable (V, C) += scatter of dout (N, C) by ids (each below V); each row sums its \
     * tokens in token order */ \
    X(void, embedding_backward, (nc_backend *be, float *dtable, const void *dout, const int32_t *ids, \
      int64_t N, int C, int V)) \
    \
    /* ---- RMSNorm without weight, eps = FLT_EPSILON ----------------------------- \
     * out (N, C) act = x * rstd, rstd (N) f32 = 1 / sqrt(mean(x^2) + eps) */ \
    X(void, rmsnorm_forward, (nc_backend *be, void *out, float *rstd, const void *x, int64_t N, int C)) \
    /* dx (N, C) act (+= when accumulate) from dout (N, C), the saved out and rstd: \
     * dx = rstd * (dout - out * mean(dout * out)). dx must not overlap dout. */ \
    X(void, rmsnorm_backward, (nc_backend *be, void *dx, const void *dout, const void *out, const float *rstd, \
      int64_t N, int C, bool accumulate)) \
    \
    /* ---- smear: x_t = e_t + lambda * sigmoid(w . e_t[:24]) * e_{t-1} ----------- \
     * e, x (B, T, C) act; w (24) f32 and lambda (1) f32 in device memory. Token 0 \
     * of each sequence uses prev (B, C) act as e_{-1} (decoding), or is copied \
     * unchanged when prev is NULL. */ \
    X(void, smear_forward, (nc_backend *be, void *x, const void *e, const void *prev, const float *w, \
      const float *lambda, int B, int T, int C)) \
    /* de (B, T, C) act = dL/de from dx (B, T, C); dw (24) +=, dlambda (1) += (prev NULL) */ \
    X(void, smear_backward, (nc_backend *be, void *de, const void *dx, const void *e, const float *w, \
      const float *lambda, float *dw, float *dlambda, int B, int T, int C)) \
    \
    /* ---- scaled sum with device scalars: out = a * x + s * b * y ----------------- \
     * x, y, out (n) act; a, b (1) f32 in device memory (a NULL: 1); s a host \
     * constant. Residual mix: a = resid_lambdas[i], b = x0_lambdas[i], s = 1; \
     * backout: a = NULL, b = backout_lambda, s = -1. */ \
    X(void, scale_add_forward, (nc_backend *be, void *out, const void *x, const float *a, const void *y, \
      const float *b, float s, int64_t n)) \
    /* From dout (n): dx (n) = a * dout (dx may equal dout; dx NULL: skipped), \
     * dy (n) += s * b * dout, da (1) += sum(dout * x) (when a), db (1) += s * sum(dout * y). */ \
    X(void, scale_add_backward, (nc_backend *be, void *dx, void *dy, float *da, float *db, const void *dout, \
      const void *x, const float *a, const void *y, const float *b, float s, int64_t n)) \
    /* y (n) act += x (n) act */ \
    X(void, add, (nc_backend *be, void *y, const void *x, int64_t n)) \
    \
    /* ---- value embeddings (ResFormer) -------------------------------------------- \
     * gate (N, H) f32 = 3 * sigmoid(xn[:, :12] @ w^T), w (H, 12) f32; \
     * v (N, H * D) act, row stride ld, += gate * table[ids] (table (V, H * D) f32). \
     * xn (N, C) act has row stride ldx. */ \
    X(void, ve_forward, (nc_backend *be, void *v, int64_t ld, float *gate, const void *xn, int64_t ldx, \
      const float *w, const float *table, const int32_t *ids, int64_t N, int H, int D)) \
    /* From dv (N, H * D) (row stride ld; the gradient of v after the add, which is \
     * also the gradient of v before it): dve (N, H * D) act = gate * dv (for \
     * embedding_backward into the table), dxn[:, :12] (row stride ldx) +=, \
     * dw (H, 12) +=. */ \
    X(void, ve_backward, (nc_backend *be, void *dve, void *dxn, int64_t ldx, float *dw, const void *dv, \
      int64_t ld, const float *gate, const void *xn, const float *w, const float *table, const int32_t *ids, \
      int64_t N, int H, int D)) \
    \
    /* ---- rotary + QK norm, in place on the q and k parts of qkv (B, T, 3 * H * D) - \
     * Token t (position pos0 + t) head h: half-split rotation by -theta, \
     * (x1, x2) -> (x1 cos + x2 sin, -x1 sin + x2 cos) with cos, sin (Tmax, D / 2) \
     * f32; then RMSNorm over D and times 1.2. rstd (B, T, 2, H) f32 is saved. */ \
    X(void, rope_qknorm_forward, (nc_backend *be, void *qkv, float *rstd, const float *cos, const float *sin, \
      int B, int T, int pos0, int H, int D)) \
    /* In place on the q and k parts of dqkv (B, T, 3 * H * D), from the final \
     * q and k (in qkv) and rstd; training only (pos0 = 0). */ \
    X(void, rope_qknorm_backward, (nc_backend *be, void *dqkv, const void *qkv, const float *rstd, \
      const float *cos, const float *sin, int B, int T, int H, int D)) \
    \
    /* ---- attention (see nc_attn) --------------------------------------------------- \
     * o act = softmax(scale * q k^T, masked) v; lse (B, H, Tq) f32 = the \
     * log-sum-exp of each query's scaled scores (NULL when not training). */ \
    X(void, attention_forward, (nc_backend *be, const nc_attn *a, void *o, float *lse, const void *q, \
      const void *k, const void *v)) \
    /* dq, dk, dv (same layout as q, k, v; written) from dout (layout of o), by \
     * recomputation from q, k, v, o and lse. work (B, H, Tq) f32 is scratch. */ \
    X(void, attention_backward, (nc_backend *be, const nc_attn *a, void *dq, void *dk, void *dv, \
      const void *dout, const void *q, const void *k, const void *v, const void *o, const float *lse, \
      float *work)) \
    \
    /* ---- MLP activation: out (n) = relu(x)^2 ---------------------------------------- */ \
    X(void, relu2_forward, (nc_backend *be, void *out, const void *x, int64_t n)) \
    /* dx (n) = dout * 2 * relu(x) (dx may equal dout), and y (n) = relu(x)^2 again (the \
     * forward's out, bit for bit: the backward keeps fc, not out) */ \
    X(void, relu2_backward, (nc_backend *be, void *dx, void *y, const void *dout, const void *x, int64_t n)) \
    \
    /* ---- loss --------------------------------------------------------------------------- \
     * logits (N, Vp) act; only the first V columns are real. c = cap * tanh(z / cap) \
     * (cap 0: no cap, c = z); losses (N) f32 = logsumexp(c[:V]) - c[target]. When dlogits (N, Vp) act is \
     * not NULL it receives scale * dloss/dz (zero in the padded columns), and may \
     * equal logits. */ \
    X(void, softcap_ce, (nc_backend *be, float *losses, void *dlogits, const void *logits, \
      const int32_t *targets, int64_t N, int V, int Vp, float cap, float scale)) \
    /* out (N, V) f32 = cap * tanh(logits[:, :V] / cap) (cap 0: logits[:, :V]), logits (N, Vp) act */ \
    X(void, softcap, (nc_backend *be, float *out, const void *logits, int64_t N, int V, int Vp, float cap)) \
    /* out (1) f32 = mean of x (n) f32 */ \
    X(void, mean, (nc_backend *be, float *out, const float *x, int64_t n)) \
    \
    /* ---- optimizers (upstream MuonAdamW; all state f32) ------------------------------- \
     * AdamW on p, g, m, v (n): p *= 1 - lr wd; m = lerp(m, g, 1 - beta1); \
     * v = lerp(v, g^2, 1 - beta2); p -= lr / bias1 * m / (sqrt(v / bias2) + eps). */ \
    X(void, adamw, (nc_backend *be, float *p, const float *g, float *m, float *v, int64_t n, \
      const nc_adamw_hp *hp)) \
    /* Muon on a stack of K matrices (R, C), in four parts: \
     * 1. Nesterov momentum, g and buf (n = K R C): buf = lerp(buf, g, 1 - momentum); \
     *    g = lerp(g, buf, momentum) (in place). */ \
    X(void, muon_momentum, (nc_backend *be, float *g, float *buf, int64_t n, const nc_muon_hp *hp)) \
    /* 2. x (K, R, C) act from g (K, R, C) f32, per matrix: MuonEq rows, \
     *    x = g * (|g|_F / sqrt(R)) / max(|g_r|, 1e-6), then x /= |x|_F * 1.01 + 1e-6. */ \
    X(void, muon_normalize, (nc_backend *be, void *x, const float *g, int K, int R, int C)) \
    /* 3. Polar Express: five gemm triples by the model's optimizer (no op here). \
     * 4. Finish, per matrix of x (K, R, C) act: g = x * sqrt(min(R, C)) / max(|x|_F, 1e-6) \
     *    (Muon+); NorMuon with v2 (K, R) f32 when R >= C (means over columns) or \
     *    (K, C) (means over rows): vm = mean(g^2), v2 = lerp(v2, vm, 1 - beta2), \
     *    g *= rsqrt(max(v2, 1e-10)) * |g|_F / max(|g scaled|_F, 1e-10); then the \
     *    cautious update p -= lr * g + lr * wd * p * (g * p >= 0). */ \
    X(void, muon_finish, (nc_backend *be, float *p, const void *x, float *v2, int K, int R, int C, \
      const nc_muon_hp *hp)) \
    \
    /* ---- guards for a step whose loss is read back late ---------------------------------- \
     * flag (1) f32 = 1 when *flag != 0 and x (1) f32 is finite, else 0 (sticky until reset). */ \
    X(void, finite_and, (nc_backend *be, float *flag, const float *x)) \
    /* dst = src (bytes) when *flag != 0, else dst unchanged; dst and src do not overlap. */ \
    X(void, copy_if, (nc_backend *be, void *dst, const void *src, size_t bytes, const float *flag))

#define NC_BACKEND_GRAPH_OPS(X) \
    /* ---- optional (NULL on backends without them, e.g. cpu) ----------------------------- \
     * Graphs: graph_begin records the ops issued until graph_end instead of running \
     * them (no upload, download, alloc or sync in between); graph_end returns the \
     * replayable graph, or NULL with err set (the recorded ops never ran). \
     * graph_launch replays it: the same ops on the same buffers, reading whatever \
     * device memory holds by then. */ \
    X(int, graph_begin, (nc_backend *be, nc_error *err)) \
    X(void *, graph_end, (nc_backend *be, nc_error *err)) \
    X(void, graph_launch, (nc_backend *be, void *graph)) \
    X(void, graph_free, (nc_backend *be, void *graph)) \
    /* Pinned host memory; download_async copies into it behind the ops issued so \
     * far without waiting (read it after an event_wait on an event recorded later). */ \
    X(void *, host_alloc, (nc_backend *be, size_t bytes)) \
    X(void, host_free, (nc_backend *be, void *p)) \
    X(void, download_async, (nc_backend *be, void *host, const void *src, size_t bytes)) \
    /* Events mark a point in the op stream; event_wait blocks until the device has \
     * passed the last record of ev and reports deferred failures, as sync. */ \
    X(void *, event_new, (nc_backend *be)) \
    X(void, event_free, (nc_backend *be, void *ev)) \
    X(void, event_record, (nc_backend *be, void *ev)) \
    X(int, event_wait, (nc_backend *be, void *ev, nc_error *err))

#define NC_BACKEND_OP_FIELD(ret, name, params) ret(*name) params;
struct nc_backend_ops {
    NC_BACKEND_OPS(NC_BACKEND_OP_FIELD)
    NC_BACKEND_GRAPH_OPS(NC_BACKEND_OP_FIELD)
};

#endif
