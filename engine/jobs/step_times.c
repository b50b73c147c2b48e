/* step_times.c: step times as sums and a log-spaced histogram. */
#include "step_times.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define LO 1e-6
#define RATIO 1.001
#define NC_STEP_BINS 23030 /* log(1e4 / LO) / log(RATIO) */

static int bin_of(double s) {
    if (!(s > LO)) return 0;
    double b = log(s / LO) / log(RATIO);
    return b >= NC_STEP_BINS - 1 ? NC_STEP_BINS - 1 : (int)b;
}

static double bin_center(int b) { return LO * pow(RATIO, b + 0.5); }

int nc_step_times_init(nc_step_times *s) {
    memset(s, 0, sizeof *s);
    s->bins = calloc(NC_STEP_BINS, sizeof *s->bins);
    return s->bins ? 0 : -1;
}

void nc_step_times_free(nc_step_times *s) {
    free(s->bins);
    memset(s, 0, sizeof *s);
}

void nc_step_times_add(nc_step_times *s, double seconds) {
    if (s->count < NC_WARM_STEPS) s->warm[s->count] = seconds;
    else {
        s->timed_s += seconds;
        s->bins[bin_of(seconds)]++;
    }
    s->count++;
    s->total_s += seconds;
    s->last_s = seconds;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void nc_step_times_summary(const nc_step_times *s, double *sum, int64_t *n, double *median) {
    *sum = *median = 0;
    *n = s->count > NC_WARM_STEPS ? s->count - NC_WARM_STEPS : s->count;
    if (*n == 0) return;
    if (s->count <= NC_WARM_STEPS) { /* exact: the few times themselves */
        double v[NC_WARM_STEPS];
        memcpy(v, s->warm, sizeof(double) * (size_t)*n);
        qsort(v, (size_t)*n, sizeof v[0], cmp_double);
        *sum = s->total_s;
        *median = *n % 2 ? v[*n / 2] : 0.5 * (v[*n / 2 - 1] + v[*n / 2]);
        return;
    }
    *sum = s->timed_s;
    int64_t seen = 0, half = (*n + 1) / 2;
    for (int b = 0; b < NC_STEP_BINS; b++)
        if ((seen += s->bins[b]) >= half) {
            *median = bin_center(b);
            return;
        }
}
