// smear.cu: x_t = e_t + lambda sigmoid(w . e_t[:24]) e_{t-1}, one warp per
// token, and its backward with the gate's gradients (dw (24), dlambda) summed
// per block in row order, then over blocks in order.
#include "reduce.cuh"

#define WARPS (NC_THREADS / 32)
#define ROWS_PER_WARP 8 // backward

// lambda sigmoid(w . e[:24]), on every lane
__device__ __forceinline__ float smear_gate(const bf16 *e, const float *w, float lambda) {
    int lane = threadIdx.x & 31;
    float z = lane < NC_SMEAR_CHANNELS ? __bfloat162float(e[lane]) * w[lane] : 0.0f;
    return lambda * sigmoid(warp_sum(z));
}

__global__ void smear_forward_kernel(bf16 *x, const bf16 *e, const bf16 *prev, const float *w, const float *lambda,
                                     int64_t rows, int T, int C, bool vec) {
    int64_t r = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    if (r >= rows) return;
    int lane = threadIdx.x & 31;
    const bf16 *er = e + r * C;
    const bf16 *p = r % T ? er - C : prev ? prev + (r / T) * C : NULL;
    float g = p ? smear_gate(er, w, *lambda) : 0.0f;
    for (int c = lane * 8; c < C; c += 256) {
        float a[8], b[8];
        load8(a, er + c, C - c, vec);
        if (p) {
            load8(b, p + c, C - c, vec);
#pragma unroll
            for (int k = 0; k < 8; k++) a[k] += g * b[k];
        }
        store8(x + r * C + c, a, C - c, vec);
    }
}

void nc_cuda_smear_forward(nc_backend *be, void *x, const void *e, const void *prev, const float *w,
                           const float *lambda, int B, int T, int C) {
    int64_t rows = (int64_t)B * T;
    if (rows <= 0) return;
    bool vec = C % 8 == 0 && nc_aligned16(x) && nc_aligned16(e) && (!prev || nc_aligned16(prev));
    smear_forward_kernel<<<nc_blocks(rows, WARPS), NC_THREADS, 0, nc_stream(be)>>>(
        (bf16 *)x, (const bf16 *)e, (const bf16 *)prev, w, lambda, rows, T, C, vec);
    nc_cuda_launched(be, "smear_forward");
}

// Row r of the backward (one warp): de_r = dx_r + g_{r+1} dx_{r+1}, and for
// r % T != 0 the gate's share: dg = dx_r . e_{r-1}, dz = dg lambda s (1 - s),
// de_r[:24] += dz w; acc (lane c < 24: dw[c], lane 24: dlambda) grows.
__device__ void smear_backward_row(bf16 *de, const bf16 *dx, const bf16 *e, const float *w, float lambda, int64_t r,
                                   int T, int C, bool vec, float &acc) {
    int lane = threadIdx.x & 31;
    const bf16 *er = e + r * C, *dxr = dx + r * C;
    bool next = (r + 1) % T != 0, gated = r % T != 0;
    float gn = next ? smear_gate(er + C, w, lambda) : 0.0f, dz = 0.0f, a[8], b[8];
    if (gated) {
        float dg = 0.0f;
        for (int c = lane * 8; c < C; c += 256) {
            load8(a, dxr + c, C - c, vec);
            load8(b, er - C + c, C - c, vec);
#pragma unroll
            for (int k = 0; k < 8; k++) dg += a[k] * b[k];
        }
        dg = warp_sum(dg);
        float s = sigmoid(warp_sum(lane < NC_SMEAR_CHANNELS ? __bfloat162float(er[lane]) * w[lane] : 0.0f));
        dz = dg * lambda * s * (1.0f - s);
        if (lane < NC_SMEAR_CHANNELS) acc += dz * __bfloat162float(er[lane]);
        if (lane == NC_SMEAR_CHANNELS) acc += dg * s;
    }
    for (int c = lane * 8; c < C; c += 256) {
        load8(a, dxr + c, C - c, vec);
        if (next) {
            load8(b, dxr + C + c, C - c, vec);
#pragma unroll
            for (int k = 0; k < 8; k++) a[k] += gn * b[k];
        }
#pragma unroll
        for (int k = 0; k < 8; k++)
            if (c + k < NC_SMEAR_CHANNELS) a[k] += dz * w[c + k];
        store8(de + r * C + c, a, C - c, vec);
    }
}

// Each warp takes ROWS_PER_WARP consecutive rows; partials (blocks, 25).
__global__ void smear_backward_kernel(bf16 *de, const bf16 *dx, const bf16 *e, const float *w, const float *lambda,
                                      int64_t rows, int T, int C, bool vec, float *partials) {
    __shared__ float warp_acc[WARPS][NC_SMEAR_CHANNELS + 1];
    int lane = threadIdx.x & 31, warp = threadIdx.x / 32;
    int64_t r0 = ((int64_t)blockIdx.x * WARPS + warp) * ROWS_PER_WARP;
    float acc = 0.0f, lambda_v = *lambda;
    for (int64_t r = r0; r < r0 + ROWS_PER_WARP && r < rows; r++)
        smear_backward_row(de, dx, e, w, lambda_v, r, T, C, vec, acc);
    if (lane <= NC_SMEAR_CHANNELS) warp_acc[warp][lane] = acc;
    __syncthreads();
    if (threadIdx.x > NC_SMEAR_CHANNELS) return;
    float sum = 0.0f;
    for (int i = 0; i < WARPS; i++) sum += warp_acc[i][threadIdx.x];
    partials[(int64_t)blockIdx.x * (NC_SMEAR_CHANNELS + 1) + threadIdx.x] = sum;
}

void nc_cuda_smear_backward(nc_backend *be, void *de, const void *dx, const void *e, const float *w,
                            const float *lambda, float *dw, float *dlambda, int B, int T, int C) {
    int64_t rows = (int64_t)B * T;
    if (rows <= 0) return;
    unsigned G = nc_blocks(rows, WARPS * ROWS_PER_WARP);
    float *partials = (float *)nc_cuda_scratch(be, sizeof(float) * G * (NC_SMEAR_CHANNELS + 1));
    if (!partials) return;
    bool vec = C % 8 == 0 && nc_aligned16(de) && nc_aligned16(dx) && nc_aligned16(e);
    smear_backward_kernel<<<G, NC_THREADS, 0, nc_stream(be)>>>((bf16 *)de, (const bf16 *)dx, (const bf16 *)e, w,
                                                               lambda, rows, T, C, vec, partials);
    nc_cuda_launched(be, "smear_backward");
    nc_sum_targets t = {{dw, dlambda}, {NC_SMEAR_CHANNELS, 1}, {1.0f, 1.0f}, 2};
    reduce_partials(be, partials, (int)G, t);
}
