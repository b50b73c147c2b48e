/* backend.c: the cuda backend: one device, one stream, tracked device
 * memory, staged uploads, deferred failures, and the op table (the ops live
 * in the .cu files and gemm.c; graphs and events in cuda_graph.c). */
#include "internal.h"

#include "cublaslt.h"
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void nc_cuda_fail(nc_backend *be, const char *fmt, ...) {
    nc_cuda *cu = nc_cuda_of(be);
    if (cu->error.code != NC_OK) return;
    va_list ap;
    va_start(ap, fmt);
    cu->error.code = NC_E_INTERNAL;
    vsnprintf(cu->error.message, sizeof cu->error.message, fmt, ap);
    va_end(ap);
}

/* Errors after which every call of the process's CUDA context fails: only a new process recovers. */
static bool context_lost(cudaError_t e) {
    return e == cudaErrorIllegalAddress || e == cudaErrorLaunchFailure || e == cudaErrorIllegalInstruction ||
           e == cudaErrorMisalignedAddress || e == cudaErrorInvalidAddressSpace || e == cudaErrorInvalidPc ||
           e == cudaErrorHardwareStackError || e == cudaErrorAssert || e == cudaErrorECCUncorrectable;
}

bool nc_cuda_ok(nc_backend *be, cudaError_t e, const char *what) {
    if (e == cudaSuccess) return true;
    nc_cuda *cu = nc_cuda_of(be);
    bool first = cu->error.code == NC_OK, lost = context_lost(e);
    nc_cuda_fail(be, "cuda: %s: %s%s", what, cudaGetErrorString(e),
                 lost ? " (the GPU context is lost: restart nanochatd)" : "");
    if (first && lost) cu->error.code = NC_E_DEVICE_UNAVAILABLE;
    return false;
}

void nc_cuda_launched(nc_backend *be, const char *kernel) { nc_cuda_ok(be, cudaGetLastError(), kernel); }

int nc_cuda_take_error(nc_backend *be, nc_error *err) {
    nc_cuda *cu = nc_cuda_of(be);
    if (cu->error.code == NC_OK) return 0;
    if (err) *err = cu->error;
    cu->error = (nc_error){0};
    return -1;
}

/* ---- memory ------------------------------------------------------------------------ */

static bool track(nc_cuda *cu, void *p, size_t bytes) {
    if (cu->n_blocks == cu->cap_blocks) {
        int cap = cu->cap_blocks ? 2 * cu->cap_blocks : 64;
        nc_cuda_block *b = realloc(cu->blocks, sizeof *b * (size_t)cap);
        if (!b) return false;
        cu->blocks = b;
        cu->cap_blocks = cap;
    }
    cu->blocks[cu->n_blocks++] = (nc_cuda_block){p, bytes};
    cu->bytes += (int64_t)bytes;
    if (cu->bytes > cu->peak_bytes) cu->peak_bytes = cu->bytes;
    return true;
}

void *nc_cuda_alloc(nc_backend *be, size_t bytes) {
    nc_cuda *cu = nc_cuda_of(be);
    void *p = NULL;
    if (cu->capturing) {
        nc_cuda_fail(be, "cuda: alloc of %zu bytes while recording a graph", bytes);
        return NULL;
    }
    if (cudaMalloc(&p, bytes ? bytes : 1) != cudaSuccess) {
        cudaGetLastError(); /* out of memory is an answer, not a sticky failure */
        return NULL;
    }
    if (!nc_cuda_ok(be, cudaMemsetAsync(p, 0, bytes, cu->stream), "zero-fill") || !track(cu, p, bytes)) {
        cudaFree(p);
        return NULL;
    }
    return p;
}

void nc_cuda_free(nc_backend *be, void *p) {
    nc_cuda *cu = nc_cuda_of(be);
    if (!p) return;
    if (cu->capturing) { /* cudaFree would end the recording; the block stays tracked */
        nc_cuda_fail(be, "cuda: free while recording a graph");
        return;
    }
    for (int i = 0; i < cu->n_blocks; i++)
        if (cu->blocks[i].p == p) {
            cu->bytes -= (int64_t)cu->blocks[i].bytes;
            cu->blocks[i] = cu->blocks[--cu->n_blocks];
            break;
        }
    nc_cuda_ok(be, cudaFree(p), "free");
}

void *nc_cuda_scratch(nc_backend *be, size_t bytes) {
    nc_cuda *cu = nc_cuda_of(be);
    if (bytes <= cu->scratch_bytes) return cu->scratch;
    if (cu->capturing || cu->n_retired == NC_CUDA_MAX_RETIRED) {
        nc_cuda_fail(be, "cuda: op scratch must grow to %zu bytes %s", bytes,
                     cu->capturing ? "while recording a graph (run the step once first)" : "once too often");
        return NULL;
    }
    size_t grown = cu->scratch_bytes * 2 > bytes ? cu->scratch_bytes * 2 : bytes;
    void *p = nc_cuda_alloc(be, grown);
    if (!p) {
        nc_cuda_fail(be, "cuda: out of memory for %zu bytes of op scratch", grown);
        return NULL;
    }
    if (cu->scratch) cu->retired[cu->n_retired++] = cu->scratch;
    cu->scratch = p;
    cu->scratch_bytes = grown;
    return p;
}

int64_t nc_cuda_bytes(nc_backend *be, bool peak) {
    nc_cuda *cu = nc_cuda_of(be);
    return peak ? cu->peak_bytes : cu->bytes;
}

/* Small uploads go through a pinned slot (a true asynchronous copy); large
 * ones (weights, once) straight from pageable memory. */
void nc_cuda_upload(nc_backend *be, void *dst, const void *host, size_t bytes) {
    nc_cuda *cu = nc_cuda_of(be);
    if (!bytes) return;
    if (bytes > NC_CUDA_STAGE_BYTES) {
        nc_cuda_ok(be, cudaMemcpyAsync(dst, host, bytes, cudaMemcpyHostToDevice, cu->stream), "upload");
        return;
    }
    nc_cuda_stage *s = &cu->stages[cu->next_stage];
    cu->next_stage = (cu->next_stage + 1) % NC_CUDA_STAGES;
    if (!nc_cuda_ok(be, cudaEventSynchronize(s->done), "upload slot")) return;
    memcpy(s->host, host, bytes);
    nc_cuda_ok(be, cudaMemcpyAsync(dst, s->host, bytes, cudaMemcpyHostToDevice, cu->stream), "upload");
    nc_cuda_ok(be, cudaEventRecord(s->done, cu->stream), "upload slot");
}

void nc_cuda_download(nc_backend *be, void *host, const void *src, size_t bytes) {
    nc_cuda *cu = nc_cuda_of(be);
    if (!bytes) return;
    nc_cuda_ok(be, cudaMemcpyAsync(host, src, bytes, cudaMemcpyDeviceToHost, cu->stream), "download");
    nc_cuda_ok(be, cudaStreamSynchronize(cu->stream), "download");
}

void nc_cuda_zero(nc_backend *be, void *p, size_t bytes) {
    if (bytes) nc_cuda_ok(be, cudaMemsetAsync(p, 0, bytes, nc_cuda_of(be)->stream), "zero");
}

void nc_cuda_copy(nc_backend *be, void *dst, const void *src, size_t bytes) {
    if (bytes)
        nc_cuda_ok(be, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, nc_cuda_of(be)->stream), "copy");
}

void nc_cuda_copy_rows(nc_backend *be, void *dst, size_t dst_pitch, const void *src, size_t src_pitch, size_t width,
                       size_t rows) {
    if (width && rows)
        nc_cuda_ok(be, cudaMemcpy2DAsync(dst, dst_pitch, src, src_pitch, width, rows, cudaMemcpyDeviceToDevice,
                                         nc_cuda_of(be)->stream), "copy_rows");
}

int nc_cuda_sync(nc_backend *be, nc_error *err) {
    nc_cuda_ok(be, cudaStreamSynchronize(nc_cuda_of(be)->stream), "sync");
    return nc_cuda_take_error(be, err);
}

/* ---- the backend ------------------------------------------------------------------- */

void nc_cuda_destroy(nc_backend *be);

#define NC_CUDA_ENTRY(ret, name, params) .name = nc_cuda_##name,
static const nc_backend_ops cuda_ops = {NC_BACKEND_OPS(NC_CUDA_ENTRY) NC_BACKEND_GRAPH_OPS(NC_CUDA_ENTRY)};

void nc_cuda_destroy(nc_backend *be) {
    nc_cuda *cu = nc_cuda_of(be);
    cudaStreamSynchronize(cu->stream);
    nc_gemm_cache_free(be, cu->gemm);
    for (int i = 0; i < NC_CUDA_STAGES; i++) {
        if (cu->stages[i].done) cudaEventDestroy(cu->stages[i].done);
        if (cu->stages[i].host) cudaFreeHost(cu->stages[i].host);
    }
    /* scratch, retired scratch, and whatever models left behind */
    while (cu->n_blocks) nc_cuda_free(be, cu->blocks[cu->n_blocks - 1].p);
    cudaStreamDestroy(cu->stream);
    free(cu->blocks);
    free(cu);
    free(be);
}

/* "NVIDIA H100 80GB HBM3 (sm_90, 132 SMs, 79.1 GiB, CUDA 13.0, cuBLASLt 130100)" */
static void describe(nc_backend *be, const struct cudaDeviceProp *p) {
    int rt = 0;
    cudaRuntimeGetVersion(&rt);
    snprintf(be->device, sizeof be->device, "%s (sm_%d%d, %d SMs, %.1f GiB, CUDA %d.%d, cuBLASLt %zu)", p->name,
             p->major, p->minor, p->multiProcessorCount, (double)p->totalGlobalMem / (1 << 30), rt / 1000,
             rt % 1000 / 10, nc_lt.cublasLtGetVersion());
}

static bool setup(nc_backend *be, nc_cuda *cu) {
    struct cudaDeviceProp prop;
    if (!nc_cuda_ok(be, cudaGetDeviceProperties(&prop, 0), "device properties") ||
        !nc_cuda_ok(be, cudaSetDevice(0), "set device") ||
        !nc_cuda_ok(be, cudaStreamCreateWithFlags(&cu->stream, cudaStreamNonBlocking), "stream"))
        return false;
    cu->sms = prop.multiProcessorCount;
    be->memory_bytes = (int64_t)prop.totalGlobalMem;
    describe(be, &prop);
    for (int i = 0; i < NC_CUDA_STAGES; i++)
        if (!nc_cuda_ok(be, cudaMallocHost(&cu->stages[i].host, NC_CUDA_STAGE_BYTES), "pinned staging") ||
            !nc_cuda_ok(be, cudaEventCreateWithFlags(&cu->stages[i].done, cudaEventDisableTiming), "event"))
            return false;
    nc_cuda_attention_init(be);
    cu->gemm = nc_gemm_cache_new(be);
    if (!cu->gemm && cu->error.code == NC_OK) nc_cuda_fail(be, "cuda: cannot set up cuBLASLt and its workspace");
    return cu->gemm && nc_cuda_ok(be, cudaStreamSynchronize(cu->stream), "setup") && cu->error.code == NC_OK;
}

/* The NVIDIA kernel driver shows itself in /dev and /proc; without it the
 * CUDA runtime's own probe spends tens of milliseconds finding nothing. */
static bool driver_present(void) {
    return access("/dev/nvidiactl", F_OK) == 0 || access("/proc/driver/nvidia/version", F_OK) == 0;
}

nc_backend *nc_backend_cuda_new(nc_error *err) {
    if (!driver_present()) {
        nc_fail(err, NC_E_DEVICE_UNAVAILABLE, "device cuda: no NVIDIA driver on this machine");
        return NULL;
    }
    char why[256];
    if (!nc_lt_open(why, sizeof why)) {
        nc_fail(err, NC_E_DEVICE_UNAVAILABLE, "device cuda: %s", why);
        return NULL;
    }
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        cudaGetLastError();
        nc_fail(err, NC_E_DEVICE_UNAVAILABLE, "device cuda: no CUDA device is available (%s)",
                e != cudaSuccess ? cudaGetErrorString(e) : "none found");
        return NULL;
    }
    nc_backend *be = calloc(1, sizeof *be);
    nc_cuda *cu = calloc(1, sizeof *cu);
    if (!be || !cu) {
        free(be);
        free(cu);
        nc_fail(err, NC_E_INTERNAL, "out of memory");
        return NULL;
    }
    *be = (nc_backend){.name = "cuda", .gpu = true, .act = NC_BF16, .threads = 1, .ops = &cuda_ops, .impl = cu};
    if (!setup(be, cu)) {
        nc_error why = {0};
        nc_cuda_take_error(be, &why);
        nc_fail(err, NC_E_DEVICE_UNAVAILABLE, "device cuda: %s", why.message);
        nc_cuda_destroy(be);
        return NULL;
    }
    return be;
}
