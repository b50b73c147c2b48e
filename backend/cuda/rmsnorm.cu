// rmsnorm.cu: RMSNorm without weight (eps = FLT_EPSILON), one warp per row:
// a pass for the statistic, a pass to write (the row is still in L1).
#include "reduce.cuh"

#include <float.h>

#define ROWS_PER_BLOCK (NC_THREADS / 32)

// out (N, C) = x * rstd, rstd (N) = 1 / sqrt(mean(x^2) + eps)
__global__ void rmsnorm_forward_kernel(bf16 *out, float *rstd, const bf16 *x, int64_t N, int C, bool vec) {
    int64_t row = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= N) return;
    const bf16 *xr = x + row * C;
    float ss = 0.0f, v[8];
    for (int c = lane * 8; c < C; c += 256) {
        load8(v, xr + c, C - c, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) ss += v[k] * v[k];
    }
    float r = 1.0f / sqrtf(warp_sum(ss) / (float)C + FLT_EPSILON);
    if (lane == 0) rstd[row] = r;
    for (int c = lane * 8; c < C; c += 256) {
        load8(v, xr + c, C - c, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] *= r;
        store8(out + row * C + c, v, C - c, vec);
    }
}

void nc_cuda_rmsnorm_forward(nc_backend *be, void *out, float *rstd, const void *x, int64_t N, int C) {
    if (N <= 0) return;
    bool vec = C % 8 == 0 && nc_aligned16(out) && nc_aligned16(x);
    rmsnorm_forward_kernel<<<nc_blocks(N, ROWS_PER_BLOCK), NC_THREADS, 0, nc_stream(be)>>>(
        (bf16 *)out, rstd, (const bf16 *)x, N, C, vec);
    nc_cuda_launched(be, "rmsnorm_forward");
}

// dx (+)= rstd * (dout - y * mean(dout * y)), y the forward's output
__global__ void rmsnorm_backward_kernel(bf16 *dx, const bf16 *dout, const bf16 *y, const float *rstd, int64_t N,
                                        int C, bool accumulate, bool vec) {
    int64_t row = (int64_t)blockIdx.x * ROWS_PER_BLOCK + threadIdx.x / 32;
    int lane = threadIdx.x & 31;
    if (row >= N) return;
    const bf16 *gr = dout + row * C, *yr = y + row * C;
    float dot = 0.0f, g[8], yv[8], d[8];
    for (int c = lane * 8; c < C; c += 256) {
        load8(g, gr + c, C - c, vec);
        load8(yv, yr + c, C - c, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) dot += g[k] * yv[k];
    }
    float m = warp_sum(dot) / (float)C, r = rstd[row];
    for (int c = lane * 8; c < C; c += 256) {
        load8(g, gr + c, C - c, vec);
        load8(yv, yr + c, C - c, vec);
        if (accumulate) load8(d, dx + row * C + c, C - c, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            float v = r * (g[k] - yv[k] * m);
            d[k] = accumulate ? d[k] + v : v;
        }
        store8(dx + row * C + c, d, C - c, vec);
    }
}

void nc_cuda_rmsnorm_backward(nc_backend *be, void *dx, const void *dout, const void *out, const float *rstd,
                              int64_t N, int C, bool accumulate) {
    if (N <= 0) return;
    bool vec = C % 8 == 0 && nc_aligned16(dx) && nc_aligned16(dout) && nc_aligned16(out);
    rmsnorm_backward_kernel<<<nc_blocks(N, ROWS_PER_BLOCK), NC_THREADS, 0, nc_stream(be)>>>(
        (bf16 *)dx, (const bf16 *)dout, (const bf16 *)out, rstd, N, C, accumulate, vec);
    nc_cuda_launched(be, "rmsnorm_backward");
}
