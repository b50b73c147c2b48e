/* emu_backend.c: the cuda backend's arithmetic as a whole backend on the CPU
 * (emu_backend()'s op table), so that a model runs its GPU path here: every
 * kernel op is the emulated kernel of backend/cuda (extract.py), gemm a
 * stand-in for cuBLASLt as gemm.c configures it, memory host memory.
 *
 * The gemm stand-in: operands of their dtype (bf16 or f32) taken exactly,
 * D = alpha * sum + beta * C in f32 (OpenBLAS's sgemm, as CUBLAS_COMPUTE_32F),
 * rounded once to D's dtype (nearest even). cuBLASLt's summation order is its
 * own; in f32 that changes a sum by a few f32 ulps, far below the one bf16
 * rounding of the output.
 *
 * No graph ops: the model's stepper then issues the very ops a recorded step
 * holds (step.c's issue_step) one by one, and reads the loss at once. */
#include "emu.h"

#include "backend/cpu/internal.h"

#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>

/* Memory is the cpu backend's (host memory, counted), one instance for all. */
static nc_backend *host(void) {
    static nc_backend *cpu;
    if (!cpu) {
        nc_error err = {0};
        if (!(cpu = nc_backend_cpu_new(1, &err))) {
            fprintf(stderr, "emu backend: %s\n", err.message);
            abort();
        }
    }
    return cpu;
}

static void emu_destroy(nc_backend *be) { (void)be; /* static: emu_backend() lives for the process */ }
static void *emu_alloc(nc_backend *be, size_t bytes) { return (void)be, nc_cpu_alloc(host(), bytes); }
static void emu_free(nc_backend *be, void *p) { (void)be, nc_cpu_free(host(), p); }
static int64_t emu_bytes(nc_backend *be, bool peak) { return (void)be, nc_cpu_bytes(host(), peak); }
static void emu_upload(nc_backend *be, void *dst, const void *src, size_t n) { (void)be, nc_cpu_upload(host(), dst, src, n); }
static void emu_download(nc_backend *be, void *dst, const void *src, size_t n) { (void)be, nc_cpu_download(host(), dst, src, n); }
static void emu_zero(nc_backend *be, void *p, size_t n) { (void)be, nc_cpu_zero(host(), p, n); }
static void emu_copy(nc_backend *be, void *dst, const void *src, size_t n) { (void)be, nc_cpu_copy(host(), dst, src, n); }
static void emu_copy_rows(nc_backend *be, void *dst, size_t dp, const void *src, size_t sp, size_t w, size_t rows) {
    (void)be, nc_cpu_copy_rows(host(), dst, dp, src, sp, w, rows);
}
static int emu_sync(nc_backend *be, nc_error *err) {
    (void)be;
    return emu_errors() ? nc_fail(err, NC_E_INTERNAL, "the emulator reported %d errors", emu_errors()) : 0;
}

/* ---- the cuBLASLt stand-in ------------------------------------------------------------- */

/* (rows, cols) of dtype t at p, row stride ld, as f32 (rows, cols) contiguous. */
static float *widen(const void *p, nc_dtype t, int rows, int cols, int64_t ld) {
    float *f = malloc(sizeof(float) * (size_t)rows * (size_t)cols);
    if (!f) abort();
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++) {
            int64_t i = (int64_t)r * ld + c;
            f[(int64_t)r * cols + c] = t == NC_BF16 ? emu_from_bf16(((const uint16_t *)p)[i]) : ((const float *)p)[i];
        }
    return f;
}

/* D (m, n) of dtype dt, row stride ldd, from f32 (m, n): rounded once. */
static void narrow(void *d, nc_dtype dt, int64_t ldd, const float *f, int m, int n) {
    for (int r = 0; r < m; r++)
        for (int c = 0; c < n; c++) {
            int64_t i = (int64_t)r * ldd + c;
            float v = f[(int64_t)r * n + c];
            if (dt == NC_BF16) ((uint16_t *)d)[i] = emu_to_bf16(v);
            else ((float *)d)[i] = v;
        }
}

/* As gemm.c: what cuBLASLt is not asked to do is an error, not a result. */
static void emu_gemm(nc_backend *be, const nc_gemm *g) {
    if (g->m <= 0 || g->n <= 0 || g->batch <= 0) return;
    if (!nc_cuda_gemm_supported(be, g)) return;
    size_t ea = nc_dtype_size(g->at), eb = nc_dtype_size(g->bt), ed = nc_dtype_size(g->dt);
    for (int b = 0; b < g->batch; b++) {
        const char *a = (const char *)g->a + ea * (size_t)(b * g->sa), *bb = (const char *)g->b + eb * (size_t)(b * g->sb);
        char *d = (char *)g->d + ed * (size_t)(b * g->sd);
        float *fa = widen(a, g->at, g->ta ? g->k : g->m, g->ta ? g->m : g->k, g->lda);
        float *fb = widen(bb, g->bt, g->tb ? g->n : g->k, g->tb ? g->k : g->n, g->ldb);
        bool has_c = g->c && g->beta != 0;
        const char *c = !has_c ? NULL : g->c == g->d ? d : (const char *)g->c + ed * (size_t)(b * g->sc);
        float *fd = has_c ? widen(c, g->dt, g->m, g->n, g->c == g->d ? g->ldd : g->ldc)
                          : calloc((size_t)g->m * (size_t)g->n, sizeof(float));
        if (!fd) abort();
        cblas_sgemm(CblasRowMajor, g->ta ? CblasTrans : CblasNoTrans, g->tb ? CblasTrans : CblasNoTrans, g->m, g->n,
                    g->k, g->alpha, fa, g->ta ? g->m : g->k, fb, g->tb ? g->k : g->n, has_c ? g->beta : 0, fd, g->n);
        narrow(d, g->dt, g->ldd, fd, g->m, g->n);
        free(fa), free(fb), free(fd);
    }
}

/* Memory and gemm here; every other op the emulated kernel of the same name. */
#define KERNEL_OPS(X)                                                                                            \
    X(cast) X(embedding_forward) X(embedding_backward) X(rmsnorm_forward) X(rmsnorm_backward) X(smear_forward)          \
    X(smear_backward) X(scale_add_forward) X(scale_add_backward) X(add) X(ve_forward) X(ve_backward)             \
    X(rope_qknorm_forward) X(rope_qknorm_backward) X(attention_forward) X(attention_backward) X(relu2_forward)   \
    X(relu2_backward) X(softcap_ce) X(softcap) X(mean) X(adamw) X(muon_momentum) X(muon_normalize)              \
    X(muon_finish) X(finite_and) X(copy_if)
#define KERNEL_ENTRY(name) .name = nc_cuda_##name,

const nc_backend_ops emu_ops = {
    .destroy = emu_destroy, .alloc = emu_alloc, .free = emu_free, .bytes = emu_bytes, .upload = emu_upload,
    .download = emu_download, .zero = emu_zero, .copy = emu_copy, .copy_rows = emu_copy_rows, .sync = emu_sync,
    .gemm = emu_gemm, KERNEL_OPS(KERNEL_ENTRY)};
