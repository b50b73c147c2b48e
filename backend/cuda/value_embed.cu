// value_embed.cu: ResFormer value embeddings: v += gate * table[ids] with
// gate = 3 sigmoid(xn[:, :12] @ w^T) per head, and the backward (the gate's
// weight gradient summed per block of rows, then over blocks in order).
#include "reduce.cuh"

#define VE_THREADS 128
#define ROWS_PER_BLOCK 32 // backward

// z = xn[:12] . w_h, summed in channel order as the cpu twin
__device__ __forceinline__ float ve_logit(const bf16 *xn, const float *wh) {
    float z = 0.0f;
#pragma unroll
    for (int c = 0; c < NC_VE_CHANNELS; c++) z += __bfloat162float(xn[c]) * wh[c];
    return z;
}

// One block per row: the H gates (shared), then v[row] += gate[h] * table[id][h].
__global__ void ve_forward_kernel(bf16 *v, int64_t ld, float *gate, const bf16 *xn, int64_t ldx, const float *w,
                                  const float *table, const int32_t *ids, int H, int D, bool vec) {
    extern __shared__ float gates[]; // (H)
    int64_t r = blockIdx.x;
    for (int h = threadIdx.x; h < H; h += blockDim.x) {
        float g = 3.0f / (1.0f + expf(-ve_logit(xn + r * ldx, w + h * NC_VE_CHANNELS)));
        gates[h] = g;
        gate[r * H + h] = g;
    }
    __syncthreads();
    int HD = H * D;
    const float *ve = table + (int64_t)ids[r] * HD;
    bf16 *vr = v + r * ld;
    for (int e = threadIdx.x * 8; e < HD; e += blockDim.x * 8) {
        float a[8], t[8];
        int count = HD - e < 8 ? HD - e : 8;
        load8(a, vr + e, count, vec);
        load8(t, ve + e, count, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) a[k] += gates[(e + k) / D < H ? (e + k) / D : H - 1] * t[k];
        store8(vr + e, a, count, vec);
    }
}

void nc_cuda_ve_forward(nc_backend *be, void *v, int64_t ld, float *gate, const void *xn, int64_t ldx,
                        const float *w, const float *table, const int32_t *ids, int64_t N, int H, int D) {
    if (N <= 0) return;
    bool vec = (H * D) % 8 == 0 && ld % 8 == 0 && nc_aligned16(v) && nc_aligned16(table);
    ve_forward_kernel<<<(unsigned)N, VE_THREADS, sizeof(float) * (size_t)H, nc_stream(be)>>>(
        (bf16 *)v, ld, gate, (const bf16 *)xn, ldx, w, table, ids, H, D, vec);
    nc_cuda_launched(be, "ve_forward");
}

// One row of the backward. Warp w takes heads w, w + 8, ...: dz = (dv_h . ve_h)
// g (1 - g / 3) into dz (H, shared), dve_h = g dv_h.
__device__ void ve_backward_heads(bf16 *dve, const bf16 *dv, const float *ve, const float *gate, float *dz, int H,
                                  int D) {
    int lane = threadIdx.x & 31, warps = blockDim.x >> 5;
    for (int h = threadIdx.x >> 5; h < H; h += warps) {
        float dot = 0.0f, g = gate[h];
        for (int d = lane; d < D; d += 32) {
            float x = __bfloat162float(dv[h * D + d]);
            dot += x * ve[h * D + d];
            dve[h * D + d] = __float2bfloat16_rn(g * x);
        }
        dot = warp_sum(dot);
        if (lane == 0) dz[h] = dot * g * (1.0f - g / 3.0f);
    }
}

// Rows [r0, r1) in order; partials (blocks, H * 12): this block's dw.
__global__ void ve_backward_kernel(bf16 *dve, bf16 *dxn, int64_t ldx, const bf16 *dv, int64_t ld, const float *gate,
                                   const bf16 *xn, const float *w, const float *table, const int32_t *ids, int64_t N,
                                   int H, int D, float *partials) {
    extern __shared__ float shared[]; // dz (H), dw (H * 12)
    float *dz = shared, *dw = shared + H;
    int W = H * NC_VE_CHANNELS;
    for (int i = threadIdx.x; i < W; i += blockDim.x) dw[i] = 0.0f;
    int64_t r0 = (int64_t)blockIdx.x * ROWS_PER_BLOCK, r1 = r0 + ROWS_PER_BLOCK < N ? r0 + ROWS_PER_BLOCK : N;
    for (int64_t r = r0; r < r1; r++) {
        ve_backward_heads(dve + r * H * D, dv + r * ld, table + (int64_t)ids[r] * H * D, gate + r * H, dz, H, D);
        __syncthreads();
        if (threadIdx.x < NC_VE_CHANNELS) {
            bf16 *x = dxn + r * ldx + threadIdx.x;
            float acc = __bfloat162float(*x);
            for (int h = 0; h < H; h++) acc += dz[h] * w[h * NC_VE_CHANNELS + threadIdx.x];
            *x = __float2bfloat16_rn(acc);
        }
        for (int i = threadIdx.x; i < W; i += blockDim.x)
            dw[i] += dz[i / NC_VE_CHANNELS] * __bfloat162float(xn[r * ldx + i % NC_VE_CHANNELS]);
        __syncthreads();
    }
    for (int i = threadIdx.x; i < W; i += blockDim.x) partials[(int64_t)blockIdx.x * W + i] = dw[i];
}

void nc_cuda_ve_backward(nc_backend *be, void *dve, void *dxn, int64_t ldx, float *dw, const void *dv, int64_t ld,
                         const float *gate, const void *xn, const float *w, const float *table, const int32_t *ids,
                         int64_t N, int H, int D) {
    if (N <= 0) return;
    unsigned G = nc_blocks(N, ROWS_PER_BLOCK);
    int W = H * NC_VE_CHANNELS;
    float *partials = (float *)nc_cuda_scratch(be, sizeof(float) * (size_t)G * (size_t)W);
    if (!partials) return;
    ve_backward_kernel<<<G, VE_THREADS, sizeof(float) * (size_t)(H + W), nc_stream(be)>>>(
        (bf16 *)dve, (bf16 *)dxn, ldx, (const bf16 *)dv, ld, gate, (const bf16 *)xn, w, table, ids, N, H, D,
        partials);
    nc_cuda_launched(be, "ve_backward");
    nc_sum_targets t = {{dw}, {W}, {1.0f}, 1};
    reduce_partials(be, partials, (int)G, t);
}
