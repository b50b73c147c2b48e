/* step_times.h: a run's step times in constant memory, whatever its length:
 * the sum of all, and for throughput as the anchors define it (the steps
 * after the first 10, or all of them in a run of 10 or fewer) their sum and
 * median. The median comes from a histogram of log-spaced bins 0.1% wide
 * (1 us to 10^4 s), so it is within 0.05% of the exact one. */
#ifndef NC_STEP_TIMES_H
#define NC_STEP_TIMES_H

#include <stdint.h>

#define NC_WARM_STEPS 10

typedef struct nc_step_times {
    int64_t count;
    double total_s, last_s;
    double warm[NC_WARM_STEPS]; /* the first steps' times */
    double timed_s;             /* steps after the first NC_WARM_STEPS */
    uint32_t *bins;             /* (NC_STEP_BINS) of those steps */
} nc_step_times;

int nc_step_times_init(nc_step_times *s); /* -1 when out of memory */
void nc_step_times_free(nc_step_times *s);
void nc_step_times_add(nc_step_times *s, double seconds);
/* Seconds of the steps throughput counts, how many, and their median. */
void nc_step_times_summary(const nc_step_times *s, double *sum, int64_t *n, double *median);

#endif
