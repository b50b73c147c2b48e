/* cpu_ops_guard.c: the guards of a step whose loss is read back late: a sticky
 * finite flag, and a copy that only happens while the flag holds. */
#include "cpu_internal.h"

#include <math.h>
#include <string.h>

void nc_cpu_finite_and(nc_backend *be, float *flag, const float *x) {
    (void)be;
    *flag = *flag != 0.0f && isfinite(*x) ? 1.0f : 0.0f;
}

void nc_cpu_copy_if(nc_backend *be, void *dst, const void *src, size_t bytes, const float *flag) {
    (void)be;
    if (*flag != 0.0f && bytes) memcpy(dst, src, bytes);
}
