// common.cuh: what every kernel file uses: the bf16 type, 16-byte vector
// loads and stores of 8 elements (bf16 or f32), grid sizing, and the launch
// check. Kernels compute in f32 whatever they load and store.
#pragma once

// nc.h (through internal.h) names C11 atomics only the engine touches;
// in C++ they are std's.
#include <atomic>
using std::atomic_bool;
using std::atomic_uint_fast64_t;

#include "internal.h"

#include <cuda_bf16.h>
#include <cuda_runtime.h>
#include <stdint.h>

typedef __nv_bfloat16 bf16;

#define NC_THREADS 256 // threads per block unless a kernel says otherwise

static inline cudaStream_t nc_stream(nc_backend *be) { return nc_cuda_of(be)->stream; }

static inline unsigned nc_blocks(int64_t items, int per_block) {
    int64_t b = (items + per_block - 1) / per_block;
    return (unsigned)(b < 1 ? 1 : b > (1 << 30) ? (1 << 30) : b);
}

static inline bool nc_aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

// ---- 8-element vectors --------------------------------------------------------------
// v = p[0..8); elements at or past `count` read as 0. `vec` (all 16-byte
// aligned and count == 8) takes one 16-byte load per 8 bf16 (two per 8 f32).

__device__ __forceinline__ void load8(float (&v)[8], const bf16 *p, int count, bool vec) {
    if (vec) {
        uint4 u = *reinterpret_cast<const uint4 *>(p);
        const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float2 f = __bfloat1622float2(h[i]);
            v[2 * i] = f.x;
            v[2 * i + 1] = f.y;
        }
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = i < count ? __bfloat162float(p[i]) : 0.0f;
}

__device__ __forceinline__ void load8(float (&v)[8], const float *p, int count, bool vec) {
    if (vec) {
        float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
        v[0] = a.x, v[1] = a.y, v[2] = a.z, v[3] = a.w, v[4] = b.x, v[5] = b.y, v[6] = b.z, v[7] = b.w;
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; i++) v[i] = i < count ? p[i] : 0.0f;
}

__device__ __forceinline__ void store8(bf16 *p, const float (&v)[8], int count, bool vec) {
    if (vec) {
        uint4 u;
        __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
        for (int i = 0; i < 4; i++) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
        *reinterpret_cast<uint4 *>(p) = u;
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; i++)
        if (i < count) p[i] = __float2bfloat16_rn(v[i]);
}

__device__ __forceinline__ void store8(float *p, const float (&v)[8], int count, bool vec) {
    if (vec) {
        reinterpret_cast<float4 *>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
        reinterpret_cast<float4 *>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
        return;
    }
#pragma unroll
    for (int i = 0; i < 8; i++)
        if (i < count) p[i] = v[i];
}

__device__ __forceinline__ float to_f32(bf16 x) { return __bfloat162float(x); }
__device__ __forceinline__ float to_f32(float x) { return x; }

// torch.lerp: a + w (b - a), computed from the nearer end.
__device__ __forceinline__ float torch_lerp(float a, float b, float w) {
    return w < 0.5f ? a + w * (b - a) : b - (b - a) * (1.0f - w);
}

__device__ __forceinline__ float sigmoid(float z) { return 1.0f / (1.0f + expf(-z)); }
