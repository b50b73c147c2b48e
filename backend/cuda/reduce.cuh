// reduce.cuh: deterministic sums: the same inputs, the same bits. Warps reduce
// by a fixed xor butterfly, blocks combine their warps in warp order, and sums
// over blocks go through partials (G, W) in scratch that one pass adds up in
// block order (reduce_partials below): no atomics anywhere.
#pragma once

#include "common.cuh"

template <class T>
__device__ __forceinline__ T warp_sum(T v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The sum of v over the block (every thread gets it). shared: 32 T. The block
// size is a multiple of 32; every thread must call it.
template <class T>
__device__ T block_sum(T v, T *shared) {
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); // shared may still be read by a previous call
    if (lane == 0) shared[warp] = v;
    __syncthreads();
    v = lane < warps ? shared[lane] : T(0);
    return warp_sum(v);
}

// Where the W sums of reduce_partials go: up to 4 runs of consecutive outputs,
// each scaled (out[i] += (float)(scale * sum)).
struct nc_sum_targets {
    float *out[4];
    int count[4];
    float scale[4];
    int runs;
};

// out += the sums over G blocks of partials (G, W), in block order, in double.
void reduce_partials(nc_backend *be, const float *partials, int G, const nc_sum_targets &t);
