// loss.cu: soft-capped cross-entropy fused with its gradient (one warp per
// row: max, sum, then the gradient in place of the logits; probabilities
// never reach memory), the soft-capped logits themselves, and the mean.
#include "reduce.cuh"

#define WARPS (NC_THREADS / 32)

// cap tanh(z / cap), or z itself when cap is 0 (no cap)
__device__ __forceinline__ float softcap(float z, float cap) { return cap > 0.0f ? cap * tanhf(z / cap) : z; }

// losses (N) = logsumexp(c[:V]) - c[y]; dlogits (N, Vp) = scale dloss/dz (0 past V)
__global__ void softcap_ce_kernel(float *losses, bf16 *dlogits, const bf16 *logits, const int32_t *targets,
                                  int64_t N, int V, int Vp, float cap, float scale) {
    int64_t r = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    if (r >= N) return;
    int lane = threadIdx.x & 31, y = targets[r];
    const bf16 *z = logits + r * Vp;
    float mx = -INFINITY, sum = 0.0f;
    for (int v = lane; v < V; v += 32) mx = fmaxf(mx, softcap(__bfloat162float(z[v]), cap));
    mx = warp_max(mx);
    for (int v = lane; v < V; v += 32) sum += expf(softcap(__bfloat162float(z[v]), cap) - mx);
    float lse = mx + logf(warp_sum(sum));
    if (lane == 0) losses[r] = lse - softcap(__bfloat162float(z[y]), cap);
    if (!dlogits) return;
    __syncwarp(); // z[y] is read before any lane overwrites it (dlogits may be logits)
    bf16 *dz = dlogits + r * Vp;
    for (int v = lane; v < Vp; v += 32) {
        float g = 0.0f;
        if (v < V) {
            float c = softcap(__bfloat162float(z[v]), cap), t = cap > 0.0f ? c / cap : 0.0f;
            g = scale * (expf(c - lse) - (v == y ? 1.0f : 0.0f)) * (1.0f - t * t);
        }
        dz[v] = __float2bfloat16_rn(g);
    }
}

void nc_cuda_softcap_ce(nc_backend *be, float *losses, void *dlogits, const void *logits, const int32_t *targets,
                        int64_t N, int V, int Vp, float cap, float scale) {
    if (N <= 0) return;
    softcap_ce_kernel<<<nc_blocks(N, WARPS), NC_THREADS, 0, nc_stream(be)>>>(
        losses, (bf16 *)dlogits, (const bf16 *)logits, targets, N, V, Vp, cap, scale);
    nc_cuda_launched(be, "softcap_ce");
}

__global__ void softcap_kernel(float *out, const bf16 *logits, int64_t N, int V, int Vp, float cap) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= N * V) return;
    out[i] = softcap(__bfloat162float(logits[(i / V) * Vp + i % V]), cap);
}

void nc_cuda_softcap(nc_backend *be, float *out, const void *logits, int64_t N, int V, int Vp, float cap) {
    if (N <= 0) return;
    softcap_kernel<<<nc_blocks(N * V, NC_THREADS), NC_THREADS, 0, nc_stream(be)>>>(out, (const bf16 *)logits, N, V,
                                                                                   Vp, cap);
    nc_cuda_launched(be, "softcap");
}

// One block, strided thread sums in double, then the block's fixed tree.
__global__ void mean_kernel(float *out, const float *x, int64_t n) {
    __shared__ double shared[32];
    double s = 0.0;
    for (int64_t i = threadIdx.x; i < n; i += blockDim.x) s += x[i];
    s = block_sum(s, shared);
    if (threadIdx.x == 0) *out = (float)(s / (double)n);
}

void nc_cuda_mean(nc_backend *be, float *out, const float *x, int64_t n) {
    mean_kernel<<<1, 1024, 0, nc_stream(be)>>>(out, x, n);
    nc_cuda_launched(be, "mean");
}
