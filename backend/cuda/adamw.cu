// adamw.cu: AdamW in one pass over (p, g, m, v), hyperparameters read from
// device memory (one upload per step, so a recorded graph replays any step).
#include "common.cuh"

__global__ void adamw_kernel(float *p, const float *g, float *m, float *v, int64_t n, const nc_adamw_hp *hp) {
    nc_adamw_hp h = *hp;
    float decay = 1.0f - h.lr * h.wd, step = h.lr / h.bias1, w1 = 1.0f - h.beta1, w2 = 1.0f - h.beta2;
    int64_t stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        float gi = g[i], mi = torch_lerp(m[i], gi, w1), vi = torch_lerp(v[i], gi * gi, w2);
        m[i] = mi;
        v[i] = vi;
        float denom = sqrtf(vi / h.bias2) + h.eps;
        p[i] = p[i] * decay - step * (mi / denom);
    }
}

void nc_cuda_adamw(nc_backend *be, float *p, const float *g, float *m, float *v, int64_t n, const nc_adamw_hp *hp) {
    if (n <= 0) return;
    unsigned blocks = nc_blocks(n, NC_THREADS), cap = 8u * (unsigned)nc_cuda_of(be)->sms;
    adamw_kernel<<<blocks < cap ? blocks : cap, NC_THREADS, 0, nc_stream(be)>>>(p, g, m, v, n, hp);
    nc_cuda_launched(be, "adamw");
}
