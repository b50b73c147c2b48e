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

static void open_library(void) {
    void *h = dlopen("libcublasLt.so." STR(CUBLAS_VER_MAJOR), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(failure, sizeof failure, "cannot load cuBLASLt: %s", dlerror());
        return;
    }
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
