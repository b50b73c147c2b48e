/* cublaslt.c: resolves the cuBLASLt functions the backend uses, once. */
#include "cublaslt.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#define STR2(x) #x
#define STR(x) STR2(x)

nc_lt_api nc_lt;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static char failure[256];

/* The loader's search path first, then the toolkit this was built with (a
 * service's environment rarely names the toolkit's library folder); the
 * first failure is the one reported. */
static void *load(void) {
    const char *name = "libcublasLt.so." STR(CUBLAS_VER_MAJOR);
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    snprintf(failure, sizeof failure, "cannot load cuBLASLt: %s", dlerror());
    static const char *const dirs[] = {NC_CUDA_LIBDIR, "/usr/local/cuda/lib64"};
    for (size_t i = 0; !h && i < sizeof dirs / sizeof dirs[0]; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dirs[i], name);
        h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    }
    if (h) failure[0] = '\0';
    return h;
}

static void open_library(void) {
    void *h = load();
    if (!h) return;
#define NC_LT_RESOLVE(name)                                                           \
    if (!failure[0] && !(*(void **)&nc_lt.name = dlsym(h, #name)))                   \
        snprintf(failure, sizeof failure, "cuBLASLt lacks %s", #name);
    NC_LT_FUNCTIONS(NC_LT_RESOLVE)
#undef NC_LT_RESOLVE
    if (failure[0]) dlclose(h);
}

bool nc_lt_open(char *why, size_t n) {
    pthread_once(&once, open_library);
    if (failure[0]) snprintf(why, n, "%s", failure);
    return !failure[0];
}
