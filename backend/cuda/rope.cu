// rope.cu: rotary embedding fused with the QK RMSNorm (x 1.2), in place on
// the q and k heads of the packed qkv rows, one warp per (token, head); lane
// pairs (i, i + D/2) so that a rotation never leaves its thread.
#include "reduce.cuh"

#include <float.h>

#define QK_SCALE 1.2f
#define WARPS (NC_THREADS / 32)

// The warp's (row, head) among (B T, 2 H): q heads, then k heads.
struct RopeItem {
    int64_t row;
    int head;
    bool valid;
};

__device__ __forceinline__ RopeItem rope_item(int64_t rows, int H) {
    int64_t it = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    return {it / (2 * H), (int)(it % (2 * H)), it < rows * 2 * H};
}

// (x1, x2) -> (x1 c + x2 s, x2 c - x1 s): the rotation by -theta
__global__ void rope_forward_kernel(bf16 *qkv, float *rstd, const float *cos, const float *sin, int64_t rows, int T,
                                    int pos0, int H, int D) {
    RopeItem w = rope_item(rows, H);
    if (!w.valid) return;
    int lane = threadIdx.x & 31, half = D / 2;
    int64_t pos = pos0 + w.row % T;
    bf16 *x = qkv + w.row * 3 * H * D + (int64_t)w.head * D;
    const float *c = cos + pos * half, *s = sin + pos * half;
    float ss = 0.0f;
    for (int i = lane; i < half; i += 32) {
        float x1 = __bfloat162float(x[i]), x2 = __bfloat162float(x[i + half]);
        float r1 = x1 * c[i] + x2 * s[i], r2 = x2 * c[i] - x1 * s[i];
        ss += r1 * r1 + r2 * r2;
    }
    float r = 1.0f / sqrtf(warp_sum(ss) / (float)D + FLT_EPSILON);
    if (lane == 0) rstd[w.row * 2 * H + w.head] = r;
    for (int i = lane; i < half; i += 32) {
        float x1 = __bfloat162float(x[i]), x2 = __bfloat162float(x[i + half]);
        float r1 = x1 * c[i] + x2 * s[i], r2 = x2 * c[i] - x1 * s[i];
        x[i] = __float2bfloat16_rn(r1 * r * QK_SCALE);
        x[i + half] = __float2bfloat16_rn(r2 * r * QK_SCALE);
    }
}

void nc_cuda_rope_qknorm_forward(nc_backend *be, void *qkv, float *rstd, const float *cos, const float *sin, int B,
                                 int T, int pos0, int H, int D) {
    int64_t rows = (int64_t)B * T;
    if (rows <= 0) return;
    rope_forward_kernel<<<nc_blocks(rows * 2 * H, WARPS), NC_THREADS, 0, nc_stream(be)>>>(
        (bf16 *)qkv, rstd, cos, sin, rows, T, pos0, H, D);
    nc_cuda_launched(be, "rope_qknorm_forward");
}

// dn = dy 1.2, n = y / 1.2; g = rstd (dn - n mean(dn n)); then the inverse
// rotation (g1, g2) -> (g1 c - g2 s, g2 c + g1 s), in place on dqkv.
__global__ void rope_backward_kernel(bf16 *dqkv, const bf16 *qkv, const float *rstd, const float *cos,
                                     const float *sin, int64_t rows, int T, int H, int D) {
    RopeItem w = rope_item(rows, H);
    if (!w.valid) return;
    int lane = threadIdx.x & 31, half = D / 2;
    int64_t pos = w.row % T, off = w.row * 3 * H * D + (int64_t)w.head * D;
    bf16 *dx = dqkv + off;
    const bf16 *y = qkv + off;
    const float *c = cos + pos * half, *s = sin + pos * half;
    float dot = 0.0f;
    for (int i = lane; i < D; i += 32)
        dot += (__bfloat162float(dx[i]) * QK_SCALE) * (__bfloat162float(y[i]) / QK_SCALE);
    float m = warp_sum(dot) / (float)D, r = rstd[w.row * 2 * H + w.head];
    for (int i = lane; i < half; i += 32) {
        float g1 = r * (__bfloat162float(dx[i]) * QK_SCALE - __bfloat162float(y[i]) / QK_SCALE * m);
        float g2 = r * (__bfloat162float(dx[i + half]) * QK_SCALE - __bfloat162float(y[i + half]) / QK_SCALE * m);
        dx[i] = __float2bfloat16_rn(g1 * c[i] - g2 * s[i]);
        dx[i + half] = __float2bfloat16_rn(g2 * c[i] + g1 * s[i]);
    }
}

void nc_cuda_rope_qknorm_backward(nc_backend *be, void *dqkv, const void *qkv, const float *rstd, const float *cos,
                                  const float *sin, int B, int T, int H, int D) {
    int64_t rows = (int64_t)B * T;
    if (rows <= 0) return;
    rope_backward_kernel<<<nc_blocks(rows * 2 * H, WARPS), NC_THREADS, 0, nc_stream(be)>>>(
        (bf16 *)dqkv, (const bf16 *)qkv, rstd, cos, sin, rows, T, H, D);
    nc_cuda_launched(be, "rope_qknorm_backward");
}
