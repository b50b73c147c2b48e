// attention.cu: causal sliding-window attention, flash style (no (Tq, Tk)
// matrix in memory): the dispatch between the tensor-core and the generic
// kernels, and the backward's row statistic delta = dout . o.
#include "attention.cuh"
#include "reduce.cuh"

#define WARPS (NC_THREADS / 32)

void nc_cuda_attention_forward(nc_backend *be, const nc_attn *a, void *o, float *lse, const void *q, const void *k,
                               const void *v) {
    if (a->B <= 0 || a->H <= 0 || a->Tq <= 0) return;
    const void *ptrs[] = {o, q, k, v};
    if (attention_mma_supported(a, ptrs, 4))
        attention_forward_mma(be, a, (bf16 *)o, lse, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v);
    else
        attention_forward_generic(be, a, (bf16 *)o, lse, (const bf16 *)q, (const bf16 *)k, (const bf16 *)v);
}

// delta (B, H, Tq) = dout . o per query row; one warp per row
__global__ void attention_delta_kernel(float *delta, const bf16 *dout, const bf16 *o, nc_attn a) {
    int64_t row = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    if (row >= (int64_t)a.B * a.H * a.Tq) return;
    int i = (int)(row % a.Tq), h = (int)(row / a.Tq % a.H), b = (int)(row / ((int64_t)a.Tq * a.H));
    int64_t off = attn_at(a.o_bs, a.o_ld, a.D, b, i, h);
    float s = 0.0f;
    for (int d = threadIdx.x & 31; d < a.D; d += 32)
        s += __bfloat162float(dout[off + d]) * __bfloat162float(o[off + d]);
    s = warp_sum(s);
    if ((threadIdx.x & 31) == 0) delta[row] = s;
}

void nc_cuda_attention_backward(nc_backend *be, const nc_attn *a, void *dq, void *dk, void *dv, const void *dout,
                                const void *q, const void *k, const void *v, const void *o, const float *lse,
                                float *work) {
    if (a->B <= 0 || a->H <= 0 || a->Tq <= 0) return;
    int64_t rows = (int64_t)a->B * a->H * a->Tq;
    attention_delta_kernel<<<nc_blocks(rows, WARPS), NC_THREADS, 0, nc_stream(be)>>>(work, (const bf16 *)dout,
                                                                                   (const bf16 *)o, *a);
    nc_cuda_launched(be, "attention delta");
    attn_grads g = {(bf16 *)dq, (bf16 *)dk, (bf16 *)dv, (const bf16 *)dout, (const bf16 *)q, (const bf16 *)k,
                    (const bf16 *)v, lse, work};
    const void *ptrs[] = {dq, dk, dv, dout, q, k, v};
    if (attention_mma_supported(a, ptrs, 7))
        attention_backward_mma(be, a, g);
    else
        attention_backward_generic(be, a, g);
}
