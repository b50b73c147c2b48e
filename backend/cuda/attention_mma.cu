// attention_mma.cu: flash attention on bf16 tensor cores (mma.sync m16n8k16,
// f32 accumulation) for head sizes 64 and 128, FlashAttention-2 style.
//
// Forward: a block of 4 warps owns 64 queries (16 per warp) and walks the key
// tiles of 64 any of them can see; scores stay in registers, the softmax runs
// online in the log2 domain, probabilities become the A operand of P V
// without leaving registers; the block writes o and the log-sum-exp.
// Backward, without atomics: one kernel per key block of 64 (dk, dv) walking
// the queries that see it, one per query block of 64 (dq) walking its keys;
// both recompute P from q, k and the saved log-sum-exp.
#include "attention.cuh"
#include "mma.cuh"

#define WARPS 4
#define BLOCK 64 // queries (forward, dq) or keys (dk dv) per block

// Rows [r0, r0 + rows) of a (T, D) matrix of row stride ld into a tile of row
// stride D + 8; rows past T are zero.
template <int D>
__device__ void load_tile(bf16 *tile, const bf16 *src, int64_t ld, int r0, int T, int rows) {
    constexpr int CHUNKS = D / 8; // 16-byte chunks per row
    for (int c = threadIdx.x; c < rows * CHUNKS; c += blockDim.x) {
        int r = c / CHUNKS, col = (c % CHUNKS) * 8;
        uint4 v = make_uint4(0, 0, 0, 0);
        if (r0 + r < T) v = *reinterpret_cast<const uint4 *>(src + (int64_t)(r0 + r) * ld + col);
        *reinterpret_cast<uint4 *>(tile + r * (D + 8) + col) = v;
    }
}

// Row r (0: g, 1: g + 8) of a warp's C fragments, scaled, to row `row` of dst.
template <int D>
__device__ void store_rows(bf16 *dst, int64_t ld, int row, int limit, const float (&acc)[D / 8][4], int r,
                           float mul) {
    if (row >= limit) return;
    bf16 *p = dst + (int64_t)row * ld + (threadIdx.x & 3) * 2;
#pragma unroll
    for (int j = 0; j < D / 8; j++)
        *reinterpret_cast<__nv_bfloat162 *>(p + j * 8) =
            __floats2bfloat162_rn(acc[j][2 * r] * mul, acc[j][2 * r + 1] * mul);
}

// ---- forward ----------------------------------------------------------------------------

template <int D>
__global__ void __launch_bounds__(WARPS * 32) forward_kernel(nc_attn a, bf16 *o, float *lse, const bf16 *q,
                                                              const bf16 *k, const bf16 *v) {
    constexpr int LD = D + 8;
    extern __shared__ __align__(16) bf16 smem[];
    bf16 *sq = smem, *sk = sq + BLOCK * LD, *sv = sk + BLOCK * LD; // (BLOCK, LD) each
    int b = blockIdx.x / a.H, h = blockIdx.x % a.H, w0 = (threadIdx.x >> 5) * 16;
    int i0 = (gridDim.y - 1 - blockIdx.y) * BLOCK; /* the late queries (the most keys) first */
    int shift = a.Tk - a.Tq, first, last;
    attn_key_range(a, i0, min(i0 + BLOCK, a.Tq) - 1, &first, &last);
    const bf16 *kb = k + attn_at(a.k_bs, 0, D, b, 0, h), *vb = v + attn_at(a.v_bs, 0, D, b, 0, h);
    load_tile<D>(sq, q + attn_at(a.q_bs, 0, D, b, 0, h), a.q_ld, i0, a.Tq, BLOCK);
    float oacc[D / 8][4] = {}, m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f}, sl2 = a.scale * LOG2E;
    for (int j0 = first / BLOCK * BLOCK; j0 <= last; j0 += BLOCK) {
        __syncthreads(); // the previous tiles are no longer read
        load_tile<D>(sk, kb, a.k_ld, j0, a.Tk, BLOCK);
        load_tile<D>(sv, vb, a.v_ld, j0, a.Tk, BLOCK);
        __syncthreads();
        float s[BLOCK / 8][4] = {}, mx[2] = {m[0], m[1]}, base[2], alpha[2], rs[2] = {0.0f, 0.0f};
        mma_abt<D, BLOCK, LD, LD>(s, sq, w0, sk);
#pragma unroll
        for (int j = 0; j < BLOCK / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int i = i0 + w0 + c_row(e), key = j0 + c_col(j, e), pos = i + shift;
                s[j][e] = key <= pos && pos - key <= a.window ? s[j][e] * sl2 : -INFINITY;
                mx[e >> 1] = fmaxf(mx[e >> 1], s[j][e]);
            }
#pragma unroll
        for (int r = 0; r < 2; r++) { // the 4 lanes of a quad share a row
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 1));
            mx[r] = fmaxf(mx[r], __shfl_xor_sync(0xffffffffu, mx[r], 2));
            base[r] = mx[r] == -INFINITY ? 0.0f : mx[r];
            alpha[r] = exp2f(m[r] - base[r]);
            m[r] = mx[r];
        }
#pragma unroll
        for (int j = 0; j < BLOCK / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                s[j][e] = exp2f(s[j][e] - base[e >> 1]);
                rs[e >> 1] += s[j][e];
            }
#pragma unroll
        for (int r = 0; r < 2; r++) l[r] = l[r] * alpha[r] + rs[r];
#pragma unroll
        for (int j = 0; j < D / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) oacc[j][e] *= alpha[e >> 1];
        mma_pb<BLOCK, D, LD>(oacc, s, sv);
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        int i = i0 + w0 + c_row(2 * r);
        store_rows<D>(o + attn_at(a.o_bs, 0, D, b, 0, h), a.o_ld, i, a.Tq, oacc, r, 1.0f / l[r]);
        if (lse && (threadIdx.x & 3) == 0 && i < a.Tq)
            lse[((int64_t)b * a.H + h) * a.Tq + i] = m[r] * LN2 + logf(l[r]);
    }
}

// ---- backward: dk, dv per key block ---------------------------------------------------------

// Queries per inner tile: the accumulators of D = 128 leave room for 32.
template <int D>
struct Inner {
    static constexpr int T = D == 128 ? 32 : 64;
};

template <int D>
__global__ void __launch_bounds__(WARPS * 32) dkdv_kernel(nc_attn a, attn_grads g) {
    constexpr int LD = D + 8, QT = Inner<D>::T;
    extern __shared__ __align__(16) bf16 smem[];
    bf16 *sk = smem, *sv = sk + BLOCK * LD, *sq = sv + BLOCK * LD, *sdo = sq + QT * LD;
    float *slse = reinterpret_cast<float *>(sdo + QT * LD), *sdel = slse + QT; // (QT) each
    int b = blockIdx.x / a.H, h = blockIdx.x % a.H, w0 = (threadIdx.x >> 5) * 16;
    int j0 = blockIdx.y * BLOCK; /* the early keys (the most queries) first */
    int shift = a.Tk - a.Tq, first, last;
    int64_t bh = ((int64_t)b * a.H + h) * a.Tq;
    attn_query_range(a, j0, j0 + BLOCK - 1, &first, &last);
    const bf16 *qb = g.q + attn_at(a.q_bs, 0, D, b, 0, h), *db = g.dout + attn_at(a.o_bs, 0, D, b, 0, h);
    load_tile<D>(sk, g.k + attn_at(a.k_bs, 0, D, b, 0, h), a.k_ld, j0, a.Tk, BLOCK);
    load_tile<D>(sv, g.v + attn_at(a.v_bs, 0, D, b, 0, h), a.v_ld, j0, a.Tk, BLOCK);
    float dk[D / 8][4] = {}, dv[D / 8][4] = {}, sl2 = a.scale * LOG2E;
    for (int i0 = first / QT * QT; i0 <= last; i0 += QT) {
        __syncthreads();
        load_tile<D>(sq, qb, a.q_ld, i0, a.Tq, QT);
        load_tile<D>(sdo, db, a.o_ld, i0, a.Tq, QT);
        for (int x = threadIdx.x; x < QT; x += blockDim.x) {
            bool in = i0 + x < a.Tq;
            slse[x] = in ? g.lse[bh + i0 + x] * LOG2E : 0.0f;
            sdel[x] = in ? g.delta[bh + i0 + x] : 0.0f;
        }
        __syncthreads();
        float p[QT / 8][4] = {}, dp[QT / 8][4] = {};
        mma_abt<D, QT, LD, LD>(p, sk, w0, sq); // S^T: keys x queries
#pragma unroll
        for (int j = 0; j < QT / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int key = j0 + w0 + c_row(e), x = c_col(j, e), pos = i0 + x + shift;
                bool vis = i0 + x < a.Tq && key <= pos && pos - key <= a.window;
                p[j][e] = vis ? exp2f(p[j][e] * sl2 - slse[x]) : 0.0f;
            }
        mma_pb<QT, D, LD>(dv, p, sdo);         // dV += P^T dO
        mma_abt<D, QT, LD, LD>(dp, sv, w0, sdo); // dP^T = V dO^T
#pragma unroll
        for (int j = 0; j < QT / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) dp[j][e] = p[j][e] * (dp[j][e] - sdel[c_col(j, e)]);
        mma_pb<QT, D, LD>(dk, dp, sq); // dK += dS^T Q
    }
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int key = j0 + w0 + c_row(2 * r);
        store_rows<D>(g.dk + attn_at(a.k_bs, 0, D, b, 0, h), a.k_ld, key, a.Tk, dk, r, a.scale);
        store_rows<D>(g.dv + attn_at(a.v_bs, 0, D, b, 0, h), a.v_ld, key, a.Tk, dv, r, 1.0f);
    }
}

// ---- backward: dq per query block -------------------------------------------------------------

template <int D>
__global__ void __launch_bounds__(WARPS * 32) dq_kernel(nc_attn a, attn_grads g) {
    constexpr int LD = D + 8, KT = Inner<D>::T;
    extern __shared__ __align__(16) bf16 smem[];
    bf16 *sq = smem, *sdo = sq + BLOCK * LD, *sk = sdo + BLOCK * LD, *sv = sk + KT * LD;
    int b = blockIdx.x / a.H, h = blockIdx.x % a.H, w0 = (threadIdx.x >> 5) * 16;
    int i0 = (gridDim.y - 1 - blockIdx.y) * BLOCK; /* the late queries (the most keys) first */
    int shift = a.Tk - a.Tq, first, last;
    int64_t bh = ((int64_t)b * a.H + h) * a.Tq;
    attn_key_range(a, i0, min(i0 + BLOCK, a.Tq) - 1, &first, &last);
    const bf16 *kb = g.k + attn_at(a.k_bs, 0, D, b, 0, h), *vb = g.v + attn_at(a.v_bs, 0, D, b, 0, h);
    load_tile<D>(sq, g.q + attn_at(a.q_bs, 0, D, b, 0, h), a.q_ld, i0, a.Tq, BLOCK);
    load_tile<D>(sdo, g.dout + attn_at(a.o_bs, 0, D, b, 0, h), a.o_ld, i0, a.Tq, BLOCK);
    float lse2[2], del[2], dq[D / 8][4] = {}, sl2 = a.scale * LOG2E;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        int i = i0 + w0 + c_row(2 * r);
        lse2[r] = i < a.Tq ? g.lse[bh + i] * LOG2E : 0.0f;
        del[r] = i < a.Tq ? g.delta[bh + i] : 0.0f;
    }
    for (int j0 = first / KT * KT; j0 <= last; j0 += KT) {
        __syncthreads();
        load_tile<D>(sk, kb, a.k_ld, j0, a.Tk, KT);
        load_tile<D>(sv, vb, a.v_ld, j0, a.Tk, KT);
        __syncthreads();
        float p[KT / 8][4] = {}, dp[KT / 8][4] = {};
        mma_abt<D, KT, LD, LD>(p, sq, w0, sk); // S = Q K^T
#pragma unroll
        for (int j = 0; j < KT / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) {
                int i = i0 + w0 + c_row(e), key = j0 + c_col(j, e), pos = i + shift;
                bool vis = i < a.Tq && key <= pos && pos - key <= a.window;
                p[j][e] = vis ? exp2f(p[j][e] * sl2 - lse2[e >> 1]) : 0.0f;
            }
        mma_abt<D, KT, LD, LD>(dp, sdo, w0, sv); // dP = dO V^T
#pragma unroll
        for (int j = 0; j < KT / 8; j++)
#pragma unroll
            for (int e = 0; e < 4; e++) dp[j][e] = p[j][e] * (dp[j][e] - del[e >> 1]);
        mma_pb<KT, D, LD>(dq, dp, sk); // dQ += dS K
    }
#pragma unroll
    for (int r = 0; r < 2; r++)
        store_rows<D>(g.dq + attn_at(a.q_bs, 0, D, b, 0, h), a.q_ld, i0 + w0 + c_row(2 * r), a.Tq, dq, r, a.scale);
}

// ---- launches ------------------------------------------------------------------------------------

bool attention_mma_supported(const nc_attn *a, const void *const *ptrs, int n) {
    if (a->D != 64 && a->D != 128) return false;
    int64_t strides[] = {a->q_ld, a->q_bs, a->k_ld, a->k_bs, a->v_ld, a->v_bs, a->o_ld, a->o_bs};
    for (size_t i = 0; i < sizeof strides / sizeof strides[0]; i++)
        if (strides[i] % 8) return false;
    for (int i = 0; i < n; i++)
        if (!nc_aligned16(ptrs[i])) return false;
    return true;
}

// Dynamic shared memory of each kernel (above 48 KiB for D = 128).
template <int D>
struct Smem {
    static constexpr int T = Inner<D>::T;
    static constexpr size_t forward = sizeof(bf16) * 3 * BLOCK * (D + 8);
    static constexpr size_t dkdv = sizeof(bf16) * (2 * BLOCK + 2 * T) * (D + 8) + sizeof(float) * 2 * T;
    static constexpr size_t dq = sizeof(bf16) * (2 * BLOCK + 2 * T) * (D + 8);
};

template <class K>
static void allow_smem(nc_backend *be, K kernel, size_t bytes) {
    nc_cuda_ok(be, cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)bytes),
               "attention shared memory");
}

template <int D>
static void allow(nc_backend *be) {
    allow_smem(be, forward_kernel<D>, Smem<D>::forward);
    allow_smem(be, dkdv_kernel<D>, Smem<D>::dkdv);
    allow_smem(be, dq_kernel<D>, Smem<D>::dq);
}

/* Once per backend, outside any graph: the kernels' shared memory limits. */
void nc_cuda_attention_init(nc_backend *be) {
    allow<64>(be);
    allow<128>(be);
}

// Launches kernel on grid (B H, blocks) with `smem` bytes of dynamic shared memory.
template <class K, class... Args>
static void launch(nc_backend *be, K kernel, int blocks, const nc_attn *a, size_t smem, const char *name,
                   Args... args) {
    kernel<<<dim3((unsigned)(a->B * a->H), (unsigned)blocks), WARPS * 32, smem, nc_stream(be)>>>(*a, args...);
    nc_cuda_launched(be, name);
}

template <int D>
static void forward(nc_backend *be, const nc_attn *a, bf16 *o, float *lse, const bf16 *q, const bf16 *k,
                    const bf16 *v) {
    launch(be, forward_kernel<D>, (a->Tq + BLOCK - 1) / BLOCK, a, Smem<D>::forward, "attention_forward (mma)", o,
           lse, q, k, v);
}

void attention_forward_mma(nc_backend *be, const nc_attn *a, bf16 *o, float *lse, const bf16 *q, const bf16 *k,
                           const bf16 *v) {
    if (a->D == 64) forward<64>(be, a, o, lse, q, k, v);
    else forward<128>(be, a, o, lse, q, k, v);
}

template <int D>
static void backward(nc_backend *be, const nc_attn *a, const attn_grads &g) {
    launch(be, dkdv_kernel<D>, (a->Tk + BLOCK - 1) / BLOCK, a, Smem<D>::dkdv, "attention_backward dk dv (mma)", g);
    launch(be, dq_kernel<D>, (a->Tq + BLOCK - 1) / BLOCK, a, Smem<D>::dq, "attention_backward dq (mma)", g);
}

void attention_backward_mma(nc_backend *be, const nc_attn *a, const attn_grads &g) {
    if (a->D == 64) backward<64>(be, a, g);
    else backward<128>(be, a, g);
}
