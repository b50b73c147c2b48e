// attention_generic.cu: attention for any head size and layout, one warp per
// query (forward, dq) or per key (dk, dv), lanes across the head (R values
// each, D <= 32 R), online softmax in registers. Plain f32 arithmetic: the
// reference the tensor-core kernels are held to, and the path of small shapes.
#include "attention.cuh"
#include "reduce.cuh"

#define WARPS (NC_THREADS / 32)

// x[r] = row[lane + 32 r] (0 past D)
template <int R>
__device__ __forceinline__ void load_row(float (&x)[R], const bf16 *row, int D) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; r++) x[r] = lane + 32 * r < D ? __bfloat162float(row[lane + 32 * r]) : 0.0f;
}

template <int R>
__device__ __forceinline__ void store_row(bf16 *row, const float (&x)[R], float mul, int D) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int r = 0; r < R; r++)
        if (lane + 32 * r < D) row[lane + 32 * r] = __float2bfloat16_rn(x[r] * mul);
}

// x . row over the warp (every lane gets it)
template <int R>
__device__ __forceinline__ float dot_row(const float (&x)[R], const bf16 *row, int D) {
    float y[R], s = 0.0f;
    load_row(y, row, D);
#pragma unroll
    for (int r = 0; r < R; r++) s += x[r] * y[r];
    return warp_sum(s);
}

// acc += p * row
template <int R>
__device__ __forceinline__ void axpy_row(float (&acc)[R], float p, const bf16 *row, int D) {
    float y[R];
    load_row(y, row, D);
#pragma unroll
    for (int r = 0; r < R; r++) acc[r] += p * y[r];
}

// The warp's row (b, h, t) of (B, H, T); false past the end.
__device__ __forceinline__ bool warp_row(const nc_attn &a, int T, int *b, int *h, int *t, int64_t *row) {
    *row = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    if (*row >= (int64_t)a.B * a.H * T) return false;
    *t = (int)(*row % T), *h = (int)(*row / T % a.H), *b = (int)(*row / ((int64_t)T * a.H));
    return true;
}

template <int R>
__global__ void forward_kernel(nc_attn a, bf16 *o, float *lse, const bf16 *q, const bf16 *k, const bf16 *v) {
    int b, h, i, first, last;
    int64_t row;
    if (!warp_row(a, a.Tq, &b, &h, &i, &row)) return;
    float qr[R], acc[R] = {}, m = -INFINITY, l = 0.0f;
    load_row(qr, q + attn_at(a.q_bs, a.q_ld, a.D, b, i, h), a.D);
    attn_key_range(a, i, i, &first, &last);
    for (int j = first; j <= last; j++) {
        float s = a.scale * dot_row(qr, k + attn_at(a.k_bs, a.k_ld, a.D, b, j, h), a.D);
        float mn = fmaxf(m, s), alpha = expf(m - mn), p = expf(s - mn);
        l = l * alpha + p;
#pragma unroll
        for (int r = 0; r < R; r++) acc[r] *= alpha;
        axpy_row(acc, p, v + attn_at(a.v_bs, a.v_ld, a.D, b, j, h), a.D);
        m = mn;
    }
    store_row(o + attn_at(a.o_bs, a.o_ld, a.D, b, i, h), acc, 1.0f / l, a.D);
    if (lse && (threadIdx.x & 31) == 0) lse[row] = m + logf(l);
}

// dq_i = scale sum_j p_ij (dout_i . v_j - delta_i) k_j
template <int R>
__global__ void dq_kernel(nc_attn a, attn_grads g) {
    int b, h, i, first, last;
    int64_t row;
    if (!warp_row(a, a.Tq, &b, &h, &i, &row)) return;
    float qr[R], dor[R], acc[R] = {}, lse = g.lse[row], delta = g.delta[row];
    load_row(qr, g.q + attn_at(a.q_bs, a.q_ld, a.D, b, i, h), a.D);
    load_row(dor, g.dout + attn_at(a.o_bs, a.o_ld, a.D, b, i, h), a.D);
    attn_key_range(a, i, i, &first, &last);
    for (int j = first; j <= last; j++) {
        const bf16 *kj = g.k + attn_at(a.k_bs, a.k_ld, a.D, b, j, h);
        float p = expf(a.scale * dot_row(qr, kj, a.D) - lse);
        float dp = dot_row(dor, g.v + attn_at(a.v_bs, a.v_ld, a.D, b, j, h), a.D);
        axpy_row(acc, p * (dp - delta), kj, a.D);
    }
    store_row(g.dq + attn_at(a.q_bs, a.q_ld, a.D, b, i, h), acc, a.scale, a.D);
}

// dv_j = sum_i p_ij dout_i; dk_j = scale sum_i p_ij (dout_i . v_j - delta_i) q_i
template <int R>
__global__ void dkdv_kernel(nc_attn a, attn_grads g) {
    int b, h, j, first, last;
    int64_t row;
    if (!warp_row(a, a.Tk, &b, &h, &j, &row)) return;
    float kr[R], vr[R], dk[R] = {}, dv[R] = {};
    load_row(kr, g.k + attn_at(a.k_bs, a.k_ld, a.D, b, j, h), a.D);
    load_row(vr, g.v + attn_at(a.v_bs, a.v_ld, a.D, b, j, h), a.D);
    attn_query_range(a, j, j, &first, &last);
    for (int i = first; i <= last; i++) {
        if (!attn_visible(a, i, j)) continue;
        int64_t qrow = ((int64_t)b * a.H + h) * a.Tq + i;
        const bf16 *qi = g.q + attn_at(a.q_bs, a.q_ld, a.D, b, i, h);
        const bf16 *di = g.dout + attn_at(a.o_bs, a.o_ld, a.D, b, i, h);
        float p = expf(a.scale * dot_row(kr, qi, a.D) - g.lse[qrow]);
        axpy_row(dv, p, di, a.D);
        axpy_row(dk, p * (dot_row(vr, di, a.D) - g.delta[qrow]), qi, a.D);
    }
    store_row(g.dk + attn_at(a.k_bs, a.k_ld, a.D, b, j, h), dk, a.scale, a.D);
    store_row(g.dv + attn_at(a.v_bs, a.v_ld, a.D, b, j, h), dv, 1.0f, a.D);
}

// Calls launch.template operator()<R>() for the smallest R with D <= 32 R.
template <class L>
static void with_r(int D, L launch) {
    if (D <= 32) launch.template operator()<1>();
    else if (D <= 64) launch.template operator()<2>();
    else if (D <= 128) launch.template operator()<4>();
    else if (D <= 256) launch.template operator()<8>();
    else if (D <= 512) launch.template operator()<16>();
    else launch.template operator()<32>();
}

struct ForwardLaunch {
    nc_backend *be;
    const nc_attn *a;
    bf16 *o;
    float *lse;
    const bf16 *q, *k, *v;
    template <int R>
    void operator()() const {
        int64_t rows = (int64_t)a->B * a->H * a->Tq;
        forward_kernel<R><<<nc_blocks(rows, WARPS), NC_THREADS, 0, nc_stream(be)>>>(*a, o, lse, q, k, v);
        nc_cuda_launched(be, "attention_forward (generic)");
    }
};

void attention_forward_generic(nc_backend *be, const nc_attn *a, bf16 *o, float *lse, const bf16 *q, const bf16 *k,
                               const bf16 *v) {
    with_r(a->D, ForwardLaunch{be, a, o, lse, q, k, v});
}

struct BackwardLaunch {
    nc_backend *be;
    const nc_attn *a;
    const attn_grads &g;
    template <int R>
    void operator()() const {
        int64_t queries = (int64_t)a->B * a->H * a->Tq, keys = (int64_t)a->B * a->H * a->Tk;
        dq_kernel<R><<<nc_blocks(queries, WARPS), NC_THREADS, 0, nc_stream(be)>>>(*a, g);
        nc_cuda_launched(be, "attention_backward dq (generic)");
        dkdv_kernel<R><<<nc_blocks(keys, WARPS), NC_THREADS, 0, nc_stream(be)>>>(*a, g);
        nc_cuda_launched(be, "attention_backward dk dv (generic)");
    }
};

void attention_backward_generic(nc_backend *be, const nc_attn *a, const attn_grads &g) {
    with_r(a->D, BackwardLaunch{be, a, g});
}
