/* backend.c: choosing and releasing a backend. */
#include "backend.h"

#include <string.h>

size_t nc_dtype_size(nc_dtype t) { return t == NC_BF16 ? 2 : 4; }

nc_backend *nc_backend_open(nc_backend_kind kind, int threads, nc_error *err) {
    if (kind == NC_BACKEND_CPU) return nc_backend_cpu_new(threads, err);
#ifdef NC_HAVE_CUDA
    return nc_backend_cuda_new(err);
#else
    nc_fail(err, NC_E_DEVICE_UNAVAILABLE, "device cuda: this build has no CUDA backend");
    return NULL;
#endif
}

void nc_backend_free(nc_backend *be) {
    if (be) be->ops->destroy(be);
}

int64_t nc_backend_device_bytes(nc_backend *be, bool peak) { return be->ops->bytes(be, peak); }
