// mma.cuh: bf16 tensor-core fragments (mma.sync m16n8k16, f32 accumulate)
// loaded from shared memory with ldmatrix, for the attention kernels.
//
// Tiles in shared memory are row-major with a row stride of LD elements (a
// multiple of 8, padded so that the 8 rows one ldmatrix reads hit distinct
// banks). Lane l of a warp: g = l / 4 and t = l % 4. The m16n8k16 fragments:
//   A (16 x 16, rows M, columns K): a[0] = (g, 2t..2t+1), a[1] = (g+8, 2t..),
//     a[2] = (g, 2t+8..), a[3] = (g+8, 2t+8..)   (two bf16 per register)
//   B (16 x 8, rows K, columns N):  b0 = (k 2t..2t+1, n g), b1 = (k 2t+8.., n g)
//   C (16 x 8, f32):                c[0..1] = (g, 2t..2t+1), c[2..3] = (g+8, 2t..)
// so the C fragments of two neighbouring n-tiles, rounded to bf16, are the A
// fragment of a 16-wide K step (the flash-attention register reuse).
#pragma once

#include "common.cuh"

#define LOG2E 1.4426950408889634f
#define LN2 0.6931471805599453f

__device__ __forceinline__ uint32_t smem_addr(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void ldsm_x4(uint32_t (&r)[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

__device__ __forceinline__ void ldsm_x4_trans(uint32_t (&r)[4], const bf16 *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_addr(p)));
}

// c += a b
__device__ __forceinline__ void mma_bf16(float (&c)[4], const uint32_t (&a)[4], uint32_t b0, uint32_t b1) {
    asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
                 "{%8, %9}, {%0, %1, %2, %3};\n"
                 : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    return *reinterpret_cast<uint32_t *>(&v);
}

// The A fragment of rows [m0, m0 + 16), columns [k0, k0 + 16) of a tile.
template <int LD>
__device__ __forceinline__ void load_a(uint32_t (&a)[4], const bf16 *tile, int m0, int k0) {
    int lane = threadIdx.x & 31;
    ldsm_x4(a, tile + (m0 + (lane & 15)) * LD + k0 + (lane >> 4) * 8);
}

// B fragments of two n-tiles [n0, n0 + 8), [n0 + 8, n0 + 16) over k [k0, k0 + 16),
// from a tile whose rows are n (k contiguous: a K or Q tile used as K^T, Q^T):
// r[0], r[1] the first tile's b0, b1; r[2], r[3] the second's.
template <int LD>
__device__ __forceinline__ void load_b_nrows(uint32_t (&r)[4], const bf16 *tile, int n0, int k0) {
    int lane = threadIdx.x & 31;
    ldsm_x4(r, tile + (n0 + (lane >> 4) * 8 + (lane & 7)) * LD + k0 + ((lane >> 3) & 1) * 8);
}

// The same from a tile whose rows are k (n contiguous: a V, dO, K or Q tile
// multiplied from the right), transposed on the way.
template <int LD>
__device__ __forceinline__ void load_b_krows(uint32_t (&r)[4], const bf16 *tile, int n0, int k0) {
    int lane = threadIdx.x & 31;
    ldsm_x4_trans(r, tile + (k0 + ((lane >> 3) & 1) * 8 + (lane & 7)) * LD + n0 + (lane >> 4) * 8);
}

// The A fragment of k-step kk (16 columns) from C fragments c (16 x 8 n-tiles).
template <int NT>
__device__ __forceinline__ void a_from_c(uint32_t (&a)[4], const float (&c)[NT][4], int kk) {
    a[0] = pack_bf16(c[2 * kk][0], c[2 * kk][1]);
    a[1] = pack_bf16(c[2 * kk][2], c[2 * kk][3]);
    a[2] = pack_bf16(c[2 * kk + 1][0], c[2 * kk + 1][1]);
    a[3] = pack_bf16(c[2 * kk + 1][2], c[2 * kk + 1][3]);
}

// acc (16 x N) += A (16 x K, rows m0.. of tile a, LDA) times B^T, B's rows n of tile b.
template <int K, int N, int LDA, int LDB>
__device__ __forceinline__ void mma_abt(float (&acc)[N / 8][4], const bf16 *a, int m0, const bf16 *b) {
#pragma unroll
    for (int k0 = 0; k0 < K; k0 += 16) {
        uint32_t af[4];
        load_a<LDA>(af, a, m0, k0);
#pragma unroll
        for (int n = 0; n < N / 16; n++) {
            uint32_t r[4];
            load_b_nrows<LDB>(r, b, n * 16, k0);
            mma_bf16(acc[2 * n], af, r[0], r[1]);
            mma_bf16(acc[2 * n + 1], af, r[2], r[3]);
        }
    }
}

// acc (16 x N) += P (16 x K, as C fragments p) times B, B's rows k of tile b.
template <int K, int N, int LDB>
__device__ __forceinline__ void mma_pb(float (&acc)[N / 8][4], const float (&p)[K / 8][4], const bf16 *b) {
#pragma unroll
    for (int kk = 0; kk < K / 16; kk++) {
        uint32_t af[4];
        a_from_c<K / 8>(af, p, kk);
#pragma unroll
        for (int n = 0; n < N / 16; n++) {
            uint32_t r[4];
            load_b_krows<LDB>(r, b, n * 16, kk * 16);
            mma_bf16(acc[2 * n], af, r[0], r[1]);
            mma_bf16(acc[2 * n + 1], af, r[2], r[3]);
        }
    }
}

// Row (0 or 1: g or g + 8) and column of element e of n-tile j of a C fragment.
__device__ __forceinline__ int c_row(int e) { return (threadIdx.x & 31) / 4 + (e >> 1) * 8; }
__device__ __forceinline__ int c_col(int j, int e) { return j * 8 + (threadIdx.x & 3) * 2 + (e & 1); }
