/* cublaslt.h: cuBLASLt, opened when the first CUDA backend starts rather
 * than linked: loading the 540 MB library cost every process (ncctl, the
 * tests, a daemon on a machine without a GPU) about 60 ms at start-up. Call
 * its functions through the table: nc_lt.cublasLtMatmul(...). */
#ifndef NC_CUBLASLT_H
#define NC_CUBLASLT_H

#include <cublasLt.h>
#include <stdbool.h>
#include <stddef.h>

#define NC_LT_FUNCTIONS(X)                                                                               \
    X(cublasLtCreate) X(cublasLtDestroy) X(cublasLtGetStatusString) X(cublasLtGetVersion) X(cublasLtMatmul) \
    X(cublasLtMatmulAlgoGetHeuristic) X(cublasLtMatmulDescCreate) X(cublasLtMatmulDescDestroy)              \
    X(cublasLtMatmulDescSetAttribute) X(cublasLtMatmulPreferenceCreate) X(cublasLtMatmulPreferenceDestroy) \
    X(cublasLtMatmulPreferenceSetAttribute) X(cublasLtMatrixLayoutCreate) X(cublasLtMatrixLayoutDestroy)  \
    X(cublasLtMatrixLayoutSetAttribute)

typedef struct nc_lt_api {
#define NC_LT_FIELD(name) __typeof__(&name) name;
    NC_LT_FUNCTIONS(NC_LT_FIELD)
#undef NC_LT_FIELD
} nc_lt_api;

extern nc_lt_api nc_lt;

/* Opens libcublasLt once (thread-safe); false with the reason in why. */
bool nc_lt_open(char *why, size_t n);

#endif
