// elementwise.cu: casts, the scaled sums with device scalars (residual mix,
// backout) and their backward with deterministic scalar gradients, add,
// relu^2, and the late-loss guards. Every kernel walks 8 elements per thread
// (one 16-byte access per operand when everything is aligned).
#include "reduce.cuh"

#include <math.h>

template <class Op>
__global__ void each8_kernel(int64_t n, bool vec, Op op) {
    int64_t chunks = (n + 7) / 8, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < chunks; c += stride) {
        int64_t i = c * 8;
        int count = n - i < 8 ? (int)(n - i) : 8;
        op(i, count, vec && count == 8);
    }
}

// op(i, count, vec) on every run of 8 elements of [0, n).
template <class Op>
static void each8(nc_backend *be, int64_t n, bool vec, Op op, const char *name) {
    if (n <= 0) return;
    unsigned blocks = nc_blocks((n + 7) / 8, NC_THREADS), cap = 16u * (unsigned)nc_cuda_of(be)->sms;
    each8_kernel<<<blocks < cap ? blocks : cap, NC_THREADS, 0, nc_stream(be)>>>(n, vec, op);
    nc_cuda_launched(be, name);
}

// dst = f(a), element by element in float
template <class D, class S, class F>
struct Map1 {
    D *dst;
    const S *a;
    F f;
    __device__ void operator()(int64_t i, int count, bool vec) const {
        float v[8];
        load8(v, a + i, count, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = f(v[k]);
        store8(dst + i, v, count, vec);
    }
};

// dst = f(a, b), element by element in float (dst may be a or b)
template <class F>
struct Map2 {
    bf16 *dst;
    const bf16 *a, *b;
    F f;
    __device__ void operator()(int64_t i, int count, bool vec) const {
        float av[8], bv[8];
        load8(av, a + i, count, vec);
        load8(bv, b + i, count, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) av[k] = f(av[k], bv[k]);
        store8(dst + i, av, count, vec);
    }
};

// ---- casts ----------------------------------------------------------------------------

struct Identity {
    __device__ float operator()(float v) const { return v; }
};

void nc_cuda_cast(nc_backend *be, void *dst, nc_dtype dt, const void *src, nc_dtype st, int64_t n) {
    bool vec = nc_aligned16(dst) && nc_aligned16(src);
    if (dt == st) {
        if (n > 0 && dst != src)
            nc_cuda_ok(be, cudaMemcpyAsync(dst, src, (size_t)n * nc_dtype_size(dt), cudaMemcpyDeviceToDevice,
                                           nc_stream(be)), "cast");
    } else if (dt == NC_BF16) {
        each8(be, n, vec, Map1<bf16, float, Identity>{(bf16 *)dst, (const float *)src, {}}, "cast f32 -> bf16");
    } else {
        each8(be, n, vec, Map1<float, bf16, Identity>{(float *)dst, (const bf16 *)src, {}}, "cast bf16 -> f32");
    }
}

// ---- scaled sums ------------------------------------------------------------------------

// out = a x + s b y, a and b read from device memory (a NULL: 1)
struct ScaleAdd {
    bf16 *out;
    const bf16 *x, *y;
    const float *a, *b;
    float s;
    __device__ void operator()(int64_t i, int count, bool vec) const {
        float xv[8], yv[8], av = a ? *a : 1.0f, sb = s * *b;
        load8(xv, x + i, count, vec);
        load8(yv, y + i, count, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) xv[k] = av * xv[k] + sb * yv[k];
        store8(out + i, xv, count, vec);
    }
};

void nc_cuda_scale_add_forward(nc_backend *be, void *out, const void *x, const float *a, const void *y,
                               const float *b, float s, int64_t n) {
    bool vec = nc_aligned16(out) && nc_aligned16(x) && nc_aligned16(y);
    each8(be, n, vec, ScaleAdd{(bf16 *)out, (const bf16 *)x, (const bf16 *)y, a, b, s}, "scale_add_forward");
}

// dx = a dout (dx may be dout; NULL: skipped), dy += s b dout; partials (G, 2):
// each block's sum(dout * x) (when a) and sum(dout * y).
__global__ void scale_add_backward_kernel(bf16 *dx, bf16 *dy, const bf16 *dout, const bf16 *x, const float *a,
                                          const bf16 *y, const float *b, float s, int64_t n, bool vec,
                                          float *partials) {
    __shared__ float shared[32];
    float av = a ? *a : 1.0f, sb = s * *b, sx = 0.0f, sy = 0.0f;
    int64_t chunks = (n + 7) / 8, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < chunks; c += stride) {
        int64_t i = c * 8;
        int count = n - i < 8 ? (int)(n - i) : 8;
        bool v = vec && count == 8;
        float g[8], yv[8], dyv[8], xv[8];
        load8(g, dout + i, count, v);
        load8(yv, y + i, count, v);
        load8(dyv, dy + i, count, v);
        if (a) load8(xv, x + i, count, v);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            if (a) sx += g[k] * xv[k];
            sy += g[k] * yv[k];
            dyv[k] += sb * g[k];
            g[k] *= av;
        }
        store8(dy + i, dyv, count, v);
        if (dx) store8(dx + i, g, count, v);
    }
    sx = block_sum(sx, shared);
    sy = block_sum(sy, shared);
    if (threadIdx.x == 0) {
        partials[2 * blockIdx.x] = sx;
        partials[2 * blockIdx.x + 1] = sy;
    }
}

void nc_cuda_scale_add_backward(nc_backend *be, void *dx, void *dy, float *da, float *db, const void *dout,
                                const void *x, const float *a, const void *y, const float *b, float s, int64_t n) {
    if (n <= 0) return;
    unsigned G = nc_blocks((n + 7) / 8, NC_THREADS);
    G = G < 1024 ? G : 1024; /* a function of n alone: the same sums every run */
    float *partials = (float *)nc_cuda_scratch(be, sizeof(float) * 2 * G);
    if (!partials) return;
    bool vec = nc_aligned16(dout) && nc_aligned16(y) && nc_aligned16(dy) && (!dx || nc_aligned16(dx)) &&
               (!a || nc_aligned16(x));
    scale_add_backward_kernel<<<G, NC_THREADS, 0, nc_stream(be)>>>((bf16 *)dx, (bf16 *)dy, (const bf16 *)dout,
                                                                   (const bf16 *)x, a, (const bf16 *)y, b, s, n,
                                                                   vec, partials);
    nc_cuda_launched(be, "scale_add_backward");
    nc_sum_targets t = {{a ? da : NULL, db}, {1, 1}, {1.0f, s}, 2};
    reduce_partials(be, partials, (int)G, t);
}

// ---- add, relu^2 ----------------------------------------------------------------------------

struct Sum {
    __device__ float operator()(float y, float x) const { return y + x; }
};

void nc_cuda_add(nc_backend *be, void *y, const void *x, int64_t n) {
    each8(be, n, nc_aligned16(y) && nc_aligned16(x), Map2<Sum>{(bf16 *)y, (const bf16 *)y, (const bf16 *)x, {}},
          "add");
}

// relu(x) = (x + |x|) / 2, as the cpu twin (NaN stays NaN)
struct Relu2 {
    __device__ float operator()(float x) const {
        float r = 0.5f * (x + fabsf(x));
        return r * r;
    }
};

void nc_cuda_relu2_forward(nc_backend *be, void *out, const void *x, int64_t n) {
    each8(be, n, nc_aligned16(out) && nc_aligned16(x), Map1<bf16, bf16, Relu2>{(bf16 *)out, (const bf16 *)x, {}},
          "relu2_forward");
}

// dx = 2 relu(x) dout (dx may be dout), and y = relu(x)^2 again
struct Relu2Backward {
    bf16 *dx, *y;
    const bf16 *dout, *x;
    __device__ void operator()(int64_t i, int count, bool vec) const {
        float g[8], v[8];
        load8(g, dout + i, count, vec);
        load8(v, x + i, count, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) g[k] *= v[k] + fabsf(v[k]);
        store8(dx + i, g, count, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) v[k] = Relu2{}(v[k]);
        store8(y + i, v, count, vec);
    }
};

void nc_cuda_relu2_backward(nc_backend *be, void *dx, void *y, const void *dout, const void *x, int64_t n) {
    bool vec = nc_aligned16(dx) && nc_aligned16(dout) && nc_aligned16(x) && nc_aligned16(y);
    each8(be, n, vec, Relu2Backward{(bf16 *)dx, (bf16 *)y, (const bf16 *)dout, (const bf16 *)x}, "relu2_backward");
}

// ---- guards -------------------------------------------------------------------------------

__global__ void finite_and_kernel(float *flag, const float *x) {
    *flag = *flag != 0.0f && isfinite(*x) ? 1.0f : 0.0f;
}

void nc_cuda_finite_and(nc_backend *be, float *flag, const float *x) {
    finite_and_kernel<<<1, 1, 0, nc_stream(be)>>>(flag, x);
    nc_cuda_launched(be, "finite_and");
}

// 16-byte words while both ends are aligned, then the tail byte by byte.
__global__ void copy_if_kernel(char *dst, const char *src, size_t bytes, size_t words, const float *flag) {
    if (*flag == 0.0f) return;
    size_t stride = (size_t)gridDim.x * blockDim.x, t = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    for (size_t i = t; i < words; i += stride)
        reinterpret_cast<uint4 *>(dst)[i] = reinterpret_cast<const uint4 *>(src)[i];
    for (size_t i = words * 16 + t; i < bytes; i += stride) dst[i] = src[i];
}

void nc_cuda_copy_if(nc_backend *be, void *dst, const void *src, size_t bytes, const float *flag) {
    if (!bytes) return;
    size_t words = nc_aligned16(dst) && nc_aligned16(src) ? bytes / 16 : 0;
    unsigned blocks = nc_blocks((int64_t)(words ? words : bytes), NC_THREADS), cap = 8u * (unsigned)nc_cuda_of(be)->sms;
    copy_if_kernel<<<blocks < cap ? blocks : cap, NC_THREADS, 0, nc_stream(be)>>>((char *)dst, (const char *)src,
                                                                                   bytes, words, flag);
    nc_cuda_launched(be, "copy_if");
}
