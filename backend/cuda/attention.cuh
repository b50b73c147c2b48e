// attention.cuh: what the attention files share: the geometry of nc_attn on
// the device, and the two implementations the dispatch in attention.cu picks
// from: tensor cores (attention_mma.cu, D = 64 or 128, 16-byte aligned rows)
// and a plain warp-per-row path for any other shape (attention_generic.cu).
#pragma once

#include "common.cuh"

// Element offset of head h of token t of sequence b, for a layout (ld, bs).
__device__ __forceinline__ int64_t attn_at(int64_t bs, int64_t ld, int D, int b, int t, int h) {
    return b * bs + t * ld + (int64_t)h * D;
}

// Query i (position i + Tk - Tq) sees key j.
__device__ __forceinline__ bool attn_visible(const nc_attn &a, int i, int j) {
    int pos = i + a.Tk - a.Tq;
    return j <= pos && pos - j <= a.window;
}

// The keys [*first, *last] any of the queries [i0, i1] sees.
__host__ __device__ inline void attn_key_range(const nc_attn &a, int i0, int i1, int *first, int *last) {
    int shift = a.Tk - a.Tq;
    int64_t f = (int64_t)i0 + shift - a.window;
    *first = f > 0 ? (int)f : 0;
    *last = i1 + shift;
}

// The queries [*first, *last] that see any of the keys [j0, j1].
__host__ __device__ inline void attn_query_range(const nc_attn &a, int j0, int j1, int *first, int *last) {
    int shift = a.Tk - a.Tq;
    int64_t f = (int64_t)j0 - shift, l = (int64_t)j1 + a.window - shift;
    *first = f > 0 ? (int)f : 0;
    *last = l < a.Tq - 1 ? (int)l : a.Tq - 1;
}

struct attn_grads {
    bf16 *dq, *dk, *dv;
    const bf16 *dout, *q, *k, *v;
    const float *lse, *delta;
};

bool attention_mma_supported(const nc_attn *a, const void *const *ptrs, int n);
void attention_forward_mma(nc_backend *be, const nc_attn *a, bf16 *o, float *lse, const bf16 *q, const bf16 *k,
                           const bf16 *v);
void attention_backward_mma(nc_backend *be, const nc_attn *a, const attn_grads &g);
void attention_forward_generic(nc_backend *be, const nc_attn *a, bf16 *o, float *lse, const bf16 *q,
                               const bf16 *k, const bf16 *v);
void attention_backward_generic(nc_backend *be, const nc_attn *a, const attn_grads &g);
