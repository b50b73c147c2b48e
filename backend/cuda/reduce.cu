// reduce.cu: the second stage of every deterministic reduction: the sums of
// the per-block partials, in block order.
#include "reduce.cuh"

// One thread per output column w of partials (G, W); out += scale * sum.
__global__ void reduce_partials_kernel(const float *partials, int G, int W, nc_sum_targets t) {
    int w = blockIdx.x * blockDim.x + threadIdx.x;
    if (w >= W) return;
    int run = 0, first = 0;
    while (w >= first + t.count[run]) first += t.count[run++];
    if (!t.out[run]) return;
    double sum = 0;
    for (int g = 0; g < G; g++) sum += partials[(int64_t)g * W + w];
    t.out[run][w - first] += (float)(t.scale[run] * sum);
}

void reduce_partials(nc_backend *be, const float *partials, int G, const nc_sum_targets &t) {
    int W = 0;
    for (int r = 0; r < t.runs; r++) W += t.count[r];
    reduce_partials_kernel<<<nc_blocks(W, 128), 128, 0, nc_stream(be)>>>(partials, G, W, t);
    nc_cuda_launched(be, "reduce_partials");
}
