/* gemm.c: nc_gemm on cuBLASLt. Each distinct call shape (sizes, strides,
 * dtypes, transposes, pointer alignments) gets its descriptors and one
 * heuristic algorithm once, kept in a hash map for the life of the backend:
 * the steady state is one hash lookup and one cublasLtMatmul, the same
 * algorithm every time (so the same bits run to run). One workspace serves all.
 * An input whose pointer is too poorly aligned for any algorithm (a bf16
 * weight at an odd offset of the parameter arena) is staged through aligned
 * scratch first.
 *
 * cuBLASLt is column-major: the row-major D (m, n) = op(A) op(B) is computed as
 * the column-major D^T (n, m) = op(B)^T op(A)^T, which is the same memory. */
#include "internal.h"

#include "cublaslt.h"
#include <stdlib.h>
#include <string.h>

#define WORKSPACE_BYTES (32u << 20) /* cuBLASLt's recommendation for Hopper */

typedef struct gemm_key {
    int m, n, k, batch;
    int64_t lda, ldb, ldc, ldd, sa, sb, sc, sd;
    uint32_t align[4]; /* bytes, at most 256, of a, b, c, d */
    uint8_t ta, tb, at, dt, c_mode; /* c_mode: 0 no C, 1 C is D, 2 C apart */
} gemm_key;

typedef struct gemm_plan {
    gemm_key key;
    bool used;
    bool stage[2]; /* copy a (0), b (1) to aligned scratch before the matmul */
    cublasLtMatmulDesc_t op;
    cublasLtMatrixLayout_t a, b, c, d;
    cublasLtMatmulAlgo_t algo;
} gemm_plan;

struct nc_gemm_cache {
    cublasLtHandle_t lt;
    void *workspace;
    gemm_plan *slots; /* open addressing, capacity a power of two */
    int cap, count;
};

static bool lt_ok(nc_backend *be, cublasStatus_t s, const char *what) {
    if (s == CUBLAS_STATUS_SUCCESS) return true;
    nc_cuda_fail(be, "cuBLASLt: %s: %s", what, nc_lt.cublasLtGetStatusString(s));
    return false;
}

nc_gemm_cache *nc_gemm_cache_new(nc_backend *be) {
    nc_gemm_cache *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->cap = 64;
    c->slots = calloc((size_t)c->cap, sizeof *c->slots);
    c->workspace = nc_cuda_alloc(be, WORKSPACE_BYTES);
    if (!c->slots || !c->workspace || !lt_ok(be, nc_lt.cublasLtCreate(&c->lt), "create")) {
        nc_gemm_cache_free(be, c);
        return NULL;
    }
    return c;
}

static void plan_free(gemm_plan *p) {
    if (p->op) nc_lt.cublasLtMatmulDescDestroy(p->op);
    cublasLtMatrixLayout_t l[] = {p->a, p->b, p->c, p->d};
    for (int i = 0; i < 4; i++)
        if (l[i]) nc_lt.cublasLtMatrixLayoutDestroy(l[i]);
}

void nc_gemm_cache_free(nc_backend *be, nc_gemm_cache *c) {
    if (!c) return;
    for (int i = 0; c->slots && i < c->cap; i++)
        if (c->slots[i].used) plan_free(&c->slots[i]);
    if (c->lt) nc_lt.cublasLtDestroy(c->lt);
    nc_cuda_free(be, c->workspace);
    free(c->slots);
    free(c);
}

/* ---- keys and the map ------------------------------------------------------------- */

static uint32_t alignment(const void *p) {
    uintptr_t a = (uintptr_t)p;
    uint32_t b = 1;
    while (b < 256 && !(a & b)) b <<= 1;
    return b;
}

static gemm_key key_of(const nc_gemm *g) {
    gemm_key k;
    memset(&k, 0, sizeof k); /* padding too: keys are hashed and compared as bytes */
    k.m = g->m, k.n = g->n, k.k = g->k, k.batch = g->batch;
    k.lda = g->lda, k.ldb = g->ldb, k.ldd = g->ldd;
    k.sa = g->sa, k.sb = g->sb, k.sd = g->sd;
    k.ta = g->ta, k.tb = g->tb, k.at = (uint8_t)g->at, k.dt = (uint8_t)g->dt;
    k.c_mode = !g->c ? 0 : g->c == g->d ? 1 : 2;
    if (k.c_mode == 2) k.ldc = g->ldc, k.sc = g->sc;
    k.align[0] = alignment(g->a), k.align[1] = alignment(g->b);
    k.align[2] = alignment(k.c_mode == 2 ? g->c : g->d), k.align[3] = alignment(g->d);
    return k;
}

static uint64_t hash(const gemm_key *k) {
    const unsigned char *b = (const unsigned char *)k;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < sizeof *k; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

/* The slot holding key, or the empty slot where it belongs. */
static gemm_plan *slot_of(gemm_plan *slots, int cap, const gemm_key *k) {
    for (uint64_t i = hash(k) & (uint64_t)(cap - 1);; i = (i + 1) & (uint64_t)(cap - 1))
        if (!slots[i].used || memcmp(&slots[i].key, k, sizeof *k) == 0) return &slots[i];
}

static bool grow(nc_gemm_cache *c) {
    int cap = 2 * c->cap;
    gemm_plan *slots = calloc((size_t)cap, sizeof *slots);
    if (!slots) return false;
    for (int i = 0; i < c->cap; i++)
        if (c->slots[i].used) *slot_of(slots, cap, &c->slots[i].key) = c->slots[i];
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return true;
}

/* ---- plans ------------------------------------------------------------------------------ */

static cudaDataType_t lt_type(nc_dtype t) { return t == NC_BF16 ? CUDA_R_16BF : CUDA_R_32F; }

/* A column-major (rows, cols) layout with leading dimension ld and `batch` matrices. */
static bool layout(nc_backend *be, cublasLtMatrixLayout_t *l, nc_dtype t, int rows, int cols, int64_t ld,
                   int batch, int64_t stride) {
    int32_t count = batch;
    return lt_ok(be, nc_lt.cublasLtMatrixLayoutCreate(l, lt_type(t), (uint64_t)rows, (uint64_t)cols, ld), "layout") &&
           lt_ok(be, nc_lt.cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
                 "batch count") &&
           lt_ok(be, nc_lt.cublasLtMatrixLayoutSetAttribute(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                                      sizeof stride), "batch stride");
}

/* Descriptors for D^T = op(B)^T op(A)^T: cuBLASLt's A is our B, its B our A. */
static bool describe(nc_backend *be, gemm_plan *p) {
    const gemm_key *k = &p->key;
    cublasOperation_t opa = k->tb ? CUBLAS_OP_T : CUBLAS_OP_N, opb = k->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    nc_dtype at = (nc_dtype)k->at, dt = (nc_dtype)k->dt;
    bool ok = lt_ok(be, nc_lt.cublasLtMatmulDescCreate(&p->op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc") &&
              lt_ok(be, nc_lt.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa),
                    "transa") &&
              lt_ok(be, nc_lt.cublasLtMatmulDescSetAttribute(p->op, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb),
                    "transb");
    ok = ok && layout(be, &p->a, at, k->tb ? k->k : k->n, k->tb ? k->n : k->k, k->ldb, k->batch, k->sb);
    ok = ok && layout(be, &p->b, at, k->ta ? k->m : k->k, k->ta ? k->k : k->m, k->lda, k->batch, k->sa);
    ok = ok && layout(be, &p->d, dt, k->n, k->m, k->ldd, k->batch, k->sd);
    if (k->c_mode == 2) return ok && layout(be, &p->c, dt, k->n, k->m, k->ldc, k->batch, k->sc);
    return ok && layout(be, &p->c, dt, k->n, k->m, k->ldd, k->batch, k->sd);
}

/* The best algorithm for the plan's layouts at the given alignments (cuBLASLt's
 * order: our b, a, c, d); found: 0 when there is none. */
static bool heuristic(nc_backend *be, nc_gemm_cache *c, gemm_plan *p, const uint32_t align[4], int *found) {
    cublasLtMatmulPreference_t pref = NULL;
    cublasLtMatmulHeuristicResult_t result;
    size_t ws = WORKSPACE_BYTES;
    const cublasLtMatmulPreferenceAttributes_t attr[4] = {
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES,
        CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES};
    bool ok = lt_ok(be, nc_lt.cublasLtMatmulPreferenceCreate(&pref), "preference") &&
              lt_ok(be, nc_lt.cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws,
                                                             sizeof ws), "workspace preference");
    for (int i = 0; ok && i < 4; i++)
        ok = lt_ok(be, nc_lt.cublasLtMatmulPreferenceSetAttribute(pref, attr[i], &align[i], sizeof align[i]), "alignment");
    *found = 0;
    cublasStatus_t s = ok ? nc_lt.cublasLtMatmulAlgoGetHeuristic(c->lt, p->op, p->a, p->b, p->c, p->d, pref, 1, &result,
                                                           found)
                          : CUBLAS_STATUS_SUCCESS;
    if (s == CUBLAS_STATUS_NOT_SUPPORTED) *found = 0; /* nothing for these alignments: not a failure yet */
    else ok = ok && lt_ok(be, s, "heuristic");
    if (pref) nc_lt.cublasLtMatmulPreferenceDestroy(pref);
    if (ok && *found) p->algo = result.algo;
    return ok;
}

/* An algorithm at the pointers' alignments, else with the poorly aligned inputs staged. */
static bool choose_algo(nc_backend *be, nc_gemm_cache *c, gemm_plan *p) {
    const uint32_t *al = p->key.align;
    uint32_t align[4] = {al[1], al[0], al[2], al[3]};
    int found = 0;
    if (!heuristic(be, c, p, align, &found)) return false;
    if (!found && (al[0] < 16 || al[1] < 16)) {
        p->stage[0] = al[0] < 16, p->stage[1] = al[1] < 16;
        align[1] = p->stage[0] ? 256 : al[0], align[0] = p->stage[1] ? 256 : al[1];
        if (!heuristic(be, c, p, align, &found)) return false;
    }
    if (!found)
        nc_cuda_fail(be, "cuBLASLt: no algorithm for gemm m %d n %d k %d batch %d (alignments %u %u %u %u)",
                     p->key.m, p->key.n, p->key.k, p->key.batch, al[0], al[1], al[2], al[3]);
    return found > 0;
}

/* The plan for g's shape: cached, or made now (NULL, failure recorded, when impossible). */
static gemm_plan *plan_for(nc_backend *be, nc_gemm_cache *c, const nc_gemm *g) {
    gemm_key k = key_of(g);
    gemm_plan *p = slot_of(c->slots, c->cap, &k);
    if (p->used) return p;
    if (2 * (c->count + 1) > c->cap) {
        if (!grow(c)) return NULL;
        p = slot_of(c->slots, c->cap, &k);
    }
    gemm_plan fresh = {.key = k};
    if (!describe(be, &fresh) || !choose_algo(be, c, &fresh)) {
        plan_free(&fresh);
        return NULL;
    }
    fresh.used = true;
    *p = fresh;
    c->count++;
    return p;
}

/* Elements from an input's first to its last, over the batch (row-major rows x ld). */
static int64_t extent(const nc_gemm *g, bool is_b) {
    bool t = is_b ? g->tb : g->ta;
    int64_t rows = is_b ? (t ? g->n : g->k) : (t ? g->k : g->m), ld = is_b ? g->ldb : g->lda;
    int64_t stride = is_b ? g->sb : g->sa, cols = is_b ? (t ? g->k : g->n) : (t ? g->m : g->k);
    return (int64_t)(g->batch - 1) * stride + (rows - 1) * ld + cols;
}

/* Copies the inputs p stages into aligned scratch; false when scratch or a copy fails. */
static bool stage_inputs(nc_backend *be, const gemm_plan *p, const nc_gemm *g, const void **a, const void **b) {
    size_t elem = nc_dtype_size(g->at), na = p->stage[0] ? (size_t)extent(g, false) * elem : 0;
    size_t nb = p->stage[1] ? (size_t)extent(g, true) * elem : 0, offset = (na + 255) / 256 * 256;
    if (!na && !nb) return true;
    char *s = nc_cuda_scratch(be, offset + nb);
    if (!s) return false;
    cudaStream_t st = nc_cuda_of(be)->stream;
    if (na && !nc_cuda_ok(be, cudaMemcpyAsync(s, g->a, na, cudaMemcpyDeviceToDevice, st), "gemm staging"))
        return false;
    if (nb && !nc_cuda_ok(be, cudaMemcpyAsync(s + offset, g->b, nb, cudaMemcpyDeviceToDevice, st), "gemm staging"))
        return false;
    if (na) *a = s;
    if (nb) *b = s + offset;
    return true;
}

void nc_cuda_gemm(nc_backend *be, const nc_gemm *g) {
    nc_cuda *cu = nc_cuda_of(be);
    if (g->m <= 0 || g->n <= 0 || g->batch <= 0) return;
    if (!nc_cuda_gemm_supported(be, g)) return;
    gemm_plan *p = plan_for(be, cu->gemm, g);
    const void *a = g->a, *b = g->b;
    if (!p || !stage_inputs(be, p, g, &a, &b)) return;
    float alpha = g->alpha, beta = g->c ? g->beta : 0.0f;
    const void *c = g->c ? g->c : g->d;
    lt_ok(be, nc_lt.cublasLtMatmul(cu->gemm->lt, p->op, &alpha, b, p->a, a, p->b, &beta, c, p->c, g->d, p->d, &p->algo,
                             cu->gemm->workspace, WORKSPACE_BYTES, cu->stream),
          "matmul");
}
