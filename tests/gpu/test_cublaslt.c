/* test_cublaslt.c: cuBLASLt opens and every function the backend calls
 * resolves, on any machine with the toolkit (no GPU needed: the library loads
 * and reports its version without a device). Exits 1 on failure. */
#include "backend/cuda/cublaslt.h"

#include <stdio.h>

int main(void) {
    char why[256] = "";
    if (!nc_lt_open(why, sizeof why)) {
        printf("FAIL: %s\n", why);
        return 1;
    }
    size_t version = nc_lt.cublasLtGetVersion();
    if (version / 10000 != CUBLAS_VER_MAJOR) {
        printf("FAIL: cuBLASLt version %zu, built against major %d\n", version, CUBLAS_VER_MAJOR);
        return 1;
    }
    char again[256] = "";
    if (!nc_lt_open(again, sizeof again)) { /* a second call reuses the first opening */
        printf("FAIL: second open: %s\n", again);
        return 1;
    }
    printf("cuBLASLt %zu: every function resolved\n", version);
    return 0;
}
