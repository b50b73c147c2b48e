// embedding.cu: token embedding lookup (f32 table to bf16 rows) and its
// deterministic scatter-add backward. The backward splits the tokens into G
// fixed chunks: a block of one chunk and 64 columns sums its tokens in token
// order into shared rows of a tile of the vocabulary, writes them as
// partials (G, V, C), and a second pass adds the chunks up in chunk order.
#include "reduce.cuh"

#define COLS 64         // columns per backward block (one thread each)
#define ROWS_TILE 128   // vocabulary rows per backward block (shared accumulators)
#define CHUNK_MIN 256   // tokens per chunk, at least
#define MAX_CHUNKS 64
#define PARTIAL_BYTES ((size_t)64 << 20) // the most scratch the partials may take

// out (N, C) = table[ids] (C a multiple of 8 when vec)
__global__ void embedding_forward_kernel(bf16 *out, const float *table, const int32_t *ids, int64_t N, int C,
                                         bool vec) {
    int per_row = (C + 7) / 8;
    int64_t items = N * per_row, stride = (int64_t)gridDim.x * blockDim.x;
    for (int64_t it = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; it < items; it += stride) {
        int64_t r = it / per_row;
        int c = (int)(it % per_row) * 8;
        float v[8];
        load8(v, table + (int64_t)ids[r] * C + c, C - c, vec);
        store8(out + r * C + c, v, C - c, vec);
    }
}

void nc_cuda_embedding_forward(nc_backend *be, void *out, const float *table, const int32_t *ids, int64_t N,
                               int C) {
    if (N <= 0) return;
    bool vec = C % 8 == 0 && nc_aligned16(out) && nc_aligned16(table);
    unsigned blocks = nc_blocks(N * ((C + 7) / 8), NC_THREADS);
    embedding_forward_kernel<<<blocks, NC_THREADS, 0, nc_stream(be)>>>((bf16 *)out, table, ids, N, C, vec);
    nc_cuda_launched(be, "embedding_forward");
}

// Block (chunk g, column group, row tile): partial[g][v][c] = the sum over the
// chunk's tokens t with ids[t] = v of dout[t][c], in token order.
__global__ void embedding_partials_kernel(float *partial, const bf16 *dout, const int32_t *ids, int64_t N, int C,
                                          int V, int64_t chunk) {
    __shared__ float acc[ROWS_TILE * COLS]; // (rows of the tile, COLS)
    int c = blockIdx.y * COLS + threadIdx.x, v0 = blockIdx.z * ROWS_TILE;
    int rows = V - v0 < ROWS_TILE ? V - v0 : ROWS_TILE;
    for (int v = 0; v < rows; v++) acc[v * COLS + threadIdx.x] = 0.0f;
    int64_t t0 = blockIdx.x * chunk, t1 = t0 + chunk < N ? t0 + chunk : N;
    if (c < C)
        for (int64_t t = t0; t < t1; t++) {
            int v = ids[t] - v0;
            if (v >= 0 && v < rows) acc[v * COLS + threadIdx.x] += __bfloat162float(dout[t * C + c]);
        }
    if (c >= C) return;
    float *out = partial + ((int64_t)blockIdx.x * V + v0) * C + c;
    for (int v = 0; v < rows; v++) out[(int64_t)v * C] = acc[v * COLS + threadIdx.x];
}

// dtable (V, C) += the sum over chunks of partial (G, V, C), in chunk order
__global__ void embedding_sum_kernel(float *dtable, const float *partial, int G, int64_t VC) {
    int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= VC) return;
    float s = dtable[i];
    for (int g = 0; g < G; g++) s += partial[g * VC + i];
    dtable[i] = s;
}

void nc_cuda_embedding_backward(nc_backend *be, float *dtable, const void *dout, const int32_t *ids, int64_t N,
                                int C, int V) {
    if (N <= 0 || C <= 0 || V <= 0) return;
    int64_t VC = (int64_t)V * C, G = (N + CHUNK_MIN - 1) / CHUNK_MIN;
    int64_t fit = (int64_t)(PARTIAL_BYTES / (sizeof(float) * (size_t)VC));
    G = G < MAX_CHUNKS ? G : MAX_CHUNKS;
    G = G < fit ? G : fit > 1 ? fit : 1;
    int64_t chunk = (N + G - 1) / G;
    G = (N + chunk - 1) / chunk;
    float *partial = (float *)nc_cuda_scratch(be, sizeof(float) * (size_t)(G * VC));
    if (!partial) return;
    dim3 grid((unsigned)G, (unsigned)((C + COLS - 1) / COLS), (unsigned)((V + ROWS_TILE - 1) / ROWS_TILE));
    embedding_partials_kernel<<<grid, COLS, 0, nc_stream(be)>>>(partial, (const bf16 *)dout, ids, N, C, V, chunk);
    nc_cuda_launched(be, "embedding_backward partials");
    embedding_sum_kernel<<<nc_blocks(VC, NC_THREADS), NC_THREADS, 0, nc_stream(be)>>>(dtable, partial, (int)G, VC);
    nc_cuda_launched(be, "embedding_backward sum");
}
