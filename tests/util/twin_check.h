/* twin_check.h: how a result is held against its reference: the relative
 * error, and the tolerances a kernel's output meets against its cpu twin's,
 * the same in the GPU kernel test (tests/gpu), the emulated one (tests/emu)
 * and the GPT's suites. */
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
/* The bias (rel_bias) a comparison allows, as a fraction of its tolerance. */
#define TWIN_BIAS 0.05

/* |a - b| / |b| over n floats (|.| the Euclidean norm; b = 0 gives |a|). */
static inline double rel_err(const float *a, const float *b, int64_t n) {
    double diff = 0, ref = 0;
    for (int64_t i = 0; i < n; i++) {
        diff += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        ref += (double)b[i] * b[i];
    }
    return ref > 0 ? sqrt(diff / ref) : sqrt(diff);
}

/* The component of (a - b) along b, relative: <a - b, b> / <b, b> (b = 0: 0).
 * Rounding noise is nearly orthogonal to b and averages out over many
 * elements; a systematic error (a wrong epsilon, a mean over C - 1) does not. */
static inline double rel_bias(const float *a, const float *b, int64_t n) {
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) num += ((double)a[i] - b[i]) * b[i], den += (double)b[i] * b[i];
    return den > 0 ? num / den : 0;
}

/* rel_err of a kernel's output got against its twin's want; *unwritten:
 * values NaN in got where want has a number. */
static inline double twin_rel_error(const float *got, const float *want, int64_t n, int64_t *unwritten) {
    *unwritten = 0;
    for (int64_t i = 0; i < n; i++) *unwritten += isnan(got[i]) && !isnan(want[i]);
    return rel_err(got, want, n);
}

#endif
