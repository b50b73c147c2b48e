/* twin_check.h: how a kernel's output is held against its cpu twin's, the
 * same in the GPU kernel test (tests/gpu) and the emulated one (tests/emu). */
#ifndef NC_TEST_TWIN_CHECK_H
#define NC_TEST_TWIN_CHECK_H

#include <math.h>
#include <stdint.h>

/* Relative-norm tolerances: bf16 outputs carry 2^-9 rounding; f32 outputs of
 * elementwise math agree to a few ulps; f32 sums over thousands of terms in
 * another order than the twin's (which itself sums sequentially) to ~1e-5. */
#define TOL_BF16 1e-2
#define TOL_F32 1e-5
#define TOL_SUM 1e-4

/* |got - want| / |want| over n values (the absolute norm when want is all
 * zero); *unwritten: values NaN in got where want has a number. */
static inline double twin_rel_error(const float *got, const float *want, int64_t n, int64_t *unwritten) {
    double diff = 0, ref = 0;
    *unwritten = 0;
    for (int64_t i = 0; i < n; i++) {
        *unwritten += isnan(got[i]) && !isnan(want[i]);
        diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
        ref += (double)want[i] * want[i];
    }
    return ref > 0 ? sqrt(diff / ref) : sqrt(diff);
}

#endif
