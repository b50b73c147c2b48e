// muon.cu: the elementwise and per-matrix parts of Muon (the Polar Express
// iteration between them is gemms): Nesterov momentum, MuonEq row
// equilibration + Frobenius normalization, and the finish (Muon+ rescale,
// NorMuon second moments, cautious weight decay, update). Per-matrix sums
// run in one block per matrix in a fixed order, in double where the cpu
// twin sums in double.
#include "reduce.cuh"

#define WARPS (NC_THREADS / 32)

// buf = lerp(buf, g, 1 - mu); g = lerp(g, buf, mu)
__global__ void momentum_kernel(float *g, float *buf, int64_t n, bool vec, const nc_muon_hp *hp) {
    float mu = hp->momentum;
    int64_t chunks = (n + 7) / 8, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t c = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; c < chunks; c += stride) {
        int64_t i = c * 8;
        int count = n - i < 8 ? (int)(n - i) : 8;
        bool v = vec && count == 8;
        float gv[8], bv[8];
        load8(gv, g + i, count, v);
        load8(bv, buf + i, count, v);
#pragma unroll
        for (int k = 0; k < 8; k++) {
            bv[k] = torch_lerp(bv[k], gv[k], 1.0f - mu);
            gv[k] = torch_lerp(gv[k], bv[k], mu);
        }
        store8(buf + i, bv, count, v);
        store8(g + i, gv, count, v);
    }
}

void nc_cuda_muon_momentum(nc_backend *be, float *g, float *buf, int64_t n, const nc_muon_hp *hp) {
    if (n <= 0) return;
    unsigned blocks = nc_blocks((n + 7) / 8, NC_THREADS), cap = 16u * (unsigned)nc_cuda_of(be)->sms;
    momentum_kernel<<<blocks < cap ? blocks : cap, NC_THREADS, 0, nc_stream(be)>>>(
        g, buf, n, nc_aligned16(g) && nc_aligned16(buf), hp);
    nc_cuda_launched(be, "muon_momentum");
}

// rowsq (rows) = each row's sum of squares of x (rows, C); one warp per row
template <class T>
__global__ void row_squares_kernel(float *rowsq, const T *x, int64_t rows, int C, bool vec) {
    int64_t r = (int64_t)blockIdx.x * WARPS + threadIdx.x / 32;
    if (r >= rows) return;
    float ss = 0.0f, v[8];
    for (int c = (threadIdx.x & 31) * 8; c < C; c += 256) {
        load8(v, x + r * C + c, C - c, vec);
#pragma unroll
        for (int k = 0; k < 8; k++) ss += v[k] * v[k];
    }
    ss = warp_sum(ss);
    if ((threadIdx.x & 31) == 0) rowsq[r] = ss;
}

template <class T>
static void row_squares(nc_backend *be, float *rowsq, const T *x, int64_t rows, int C) {
    bool vec = C % 8 == 0 && nc_aligned16(x);
    row_squares_kernel<<<nc_blocks(rows, WARPS), NC_THREADS, 0, nc_stream(be)>>>(rowsq, x, rows, C, vec);
    nc_cuda_launched(be, "muon row squares");
}

// ---- normalize ---------------------------------------------------------------------------

// One block per matrix: scale (K, R) = target / max(|g_r|, 1e-6) with target =
// |g|_F / sqrt(R), and denom (K) = |g scaled|_F * 1.01 + 1e-6.
__global__ void normalize_stats_kernel(float *scale, float *denom, const float *rowsq, int R) {
    __shared__ double shared[32];
    const float *rs = rowsq + (int64_t)blockIdx.x * R;
    double total = 0.0, xsq = 0.0;
    for (int r = threadIdx.x; r < R; r += blockDim.x) total += rs[r];
    float target = (float)sqrt(block_sum(total, shared)) / sqrtf((float)R);
    for (int r = threadIdx.x; r < R; r += blockDim.x) {
        float s = target / fmaxf(sqrtf(rs[r]), 1e-6f);
        scale[(int64_t)blockIdx.x * R + r] = s;
        xsq += (double)(s * s) * rs[r];
    }
    xsq = block_sum(xsq, shared);
    if (threadIdx.x == 0) denom[blockIdx.x] = (float)sqrt(xsq) * 1.01f + 1e-6f;
}

// x (K, R, C) = g * scale[k][r] / denom[k]
__global__ void normalize_apply_kernel(bf16 *x, const float *g, const float *scale, const float *denom, int R, int C,
                                       int64_t n) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int64_t row = i / C;
    x[i] = __float2bfloat16_rn(g[i] * scale[row] / denom[row / R]);
}

void nc_cuda_muon_normalize(nc_backend *be, void *x, const float *g, int K, int R, int C) {
    int64_t rows = (int64_t)K * R, n = rows * C;
    if (n <= 0) return;
    float *rowsq = (float *)nc_cuda_scratch(be, sizeof(float) * (size_t)(2 * rows + K));
    if (!rowsq) return;
    float *scale = rowsq + rows, *denom = scale + rows;
    row_squares(be, rowsq, g, rows, C);
    normalize_stats_kernel<<<(unsigned)K, NC_THREADS, 0, nc_stream(be)>>>(scale, denom, rowsq, R);
    nc_cuda_launched(be, "muon_normalize stats");
    normalize_apply_kernel<<<nc_blocks(n, NC_THREADS), NC_THREADS, 0, nc_stream(be)>>>((bf16 *)x, g, scale, denom, R,
                                                                                        C, n);
    nc_cuda_launched(be, "muon_normalize apply");
}

// ---- finish ----------------------------------------------------------------------------------

// colsq (K, C) = each column's sum of squares over the rows of its matrix, in row order
__global__ void col_squares_kernel(float *colsq, const bf16 *x, int K, int R, int C) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= (int64_t)K * C) return;
    const bf16 *col = x + (i / C) * R * C + i % C;
    float s = 0.0f;
    for (int r = 0; r < R; r++) {
        float v = __bfloat162float(col[(int64_t)r * C]);
        s += v * v;
    }
    colsq[i] = s;
}

// One block per matrix: with s = sqrt(min(R, C)) / |x|_F and the second moments
// vm (n = max(R, C)) of g = x s, v2 = lerp(v2, vm, 1 - beta2); factor (K, n) =
// the whole per-row (R >= C) or per-column multiplier of x.
__global__ void finish_stats_kernel(float *factor, float *v2, const float *rowsq, const float *colsq, int R, int C,
                                    const nc_muon_hp *hp) {
    __shared__ double shared[32];
    int k = blockIdx.x, n = R >= C ? R : C, red = R >= C ? C : R;
    const float *rs = rowsq + (int64_t)k * R, *vsq = R >= C ? rs : colsq + (int64_t)k * C;
    float *f = factor + (int64_t)k * n, *v = v2 + (int64_t)k * n, beta2 = hp->beta2;
    double total = 0.0, norm_sq = 0.0, scaled_sq = 0.0;
    for (int r = threadIdx.x; r < R; r += blockDim.x) total += rs[r];
    float s = sqrtf((float)red) / fmaxf((float)sqrt(block_sum(total, shared)), 1e-6f);
    for (int i = threadIdx.x; i < n; i += blockDim.x) {
        float vm = R >= C ? vsq[i] * s * s / (float)C : vsq[i] * (s * s / (float)R);
        v[i] = torch_lerp(v[i], vm, 1.0f - beta2);
        float step = 1.0f / sqrtf(fmaxf(v[i], 1e-10f));
        norm_sq += (double)vm * red;
        scaled_sq += (double)vm * red * step * step;
        f[i] = step;
    }
    norm_sq = block_sum(norm_sq, shared);
    scaled_sq = block_sum(scaled_sq, shared);
    float ratio = (float)sqrt(norm_sq) / fmaxf((float)sqrt(scaled_sq), 1e-10f);
    for (int i = threadIdx.x; i < n; i += blockDim.x) f[i] *= s * ratio;
}

// g = x * factor; p -= lr g + lr wd p (g p >= 0)
__global__ void finish_update_kernel(float *p, const bf16 *x, const float *factor, int R, int C, int64_t total,
                                     const nc_muon_hp *hp) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= total) return;
    int n = R >= C ? R : C;
    int64_t k = i / ((int64_t)R * C);
    int r = (int)(i / C % R), c = (int)(i % C);
    float lr = hp->lr, lr_wd = hp->lr * hp->wd;
    float g = __bfloat162float(x[i]) * factor[k * n + (R >= C ? r : c)], pi = p[i];
    float cautious = (float)(g * pi >= 0.0f);
    p[i] = pi - (lr * g + lr_wd * pi * cautious);
}

void nc_cuda_muon_finish(nc_backend *be, float *p, const void *x, float *v2, int K, int R, int C,
                         const nc_muon_hp *hp) {
    int64_t rows = (int64_t)K * R, total = rows * C, n = R >= C ? R : C;
    if (total <= 0) return;
    float *rowsq = (float *)nc_cuda_scratch(be, sizeof(float) * (size_t)(rows + (int64_t)K * C + K * n));
    if (!rowsq) return;
    float *colsq = rowsq + rows, *factor = colsq + (int64_t)K * C;
    row_squares(be, rowsq, (const bf16 *)x, rows, C);
    if (R < C) {
        col_squares_kernel<<<nc_blocks((int64_t)K * C, NC_THREADS), NC_THREADS, 0, nc_stream(be)>>>(
            colsq, (const bf16 *)x, K, R, C);
        nc_cuda_launched(be, "muon_finish column squares");
    }
    finish_stats_kernel<<<(unsigned)K, NC_THREADS, 0, nc_stream(be)>>>(factor, v2, rowsq, colsq, R, C, hp);
    nc_cuda_launched(be, "muon_finish stats");
    finish_update_kernel<<<nc_blocks(total, NC_THREADS), NC_THREADS, 0, nc_stream(be)>>>(
        p, (const bf16 *)x, factor, R, C, total, hp);
    nc_cuda_launched(be, "muon_finish update");
}
