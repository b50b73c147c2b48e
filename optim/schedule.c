/* schedule.c: base_train's schedules. Python's round() is round-half-even,
 * which is rint() in the default rounding mode. */
#include "schedule.h"

#include <math.h>

#define MOMENTUM_WARMUP_STEPS 400

static int64_t warmdown_steps(int64_t steps, double ratio) { return (int64_t)rint(ratio * (double)steps); }

double nc_lr_multiplier(int64_t it, int64_t steps, int64_t warmup, double warmdown_ratio,
                        double final_lr_frac) {
    int64_t down = warmdown_steps(steps, warmdown_ratio);
    if (it < warmup) return (double)(it + 1) / (double)warmup;
    if (it <= steps - down) return 1.0;
    double progress = (double)(steps - it) / (double)down;
    return progress + (1.0 - progress) * final_lr_frac;
}

double nc_muon_momentum(int64_t it, int64_t steps, double warmdown_ratio) {
    int64_t down = warmdown_steps(steps, warmdown_ratio), start = steps - down;
    if (it < MOMENTUM_WARMUP_STEPS) {
        double frac = (double)it / MOMENTUM_WARMUP_STEPS;
        return (1.0 - frac) * 0.85 + frac * 0.97;
    }
    if (it >= start) {
        double progress = (double)(it - start) / (double)down;
        return 0.97 * (1.0 - progress) + 0.90 * progress;
    }
    return 0.97;
}

double nc_muon_weight_decay(int64_t it, int64_t steps, double wd) {
    return wd * 0.5 * (1.0 + cos(M_PI * (double)it / (double)steps));
}

double nc_batch_lr_scale(int64_t tokens) { return sqrt((double)tokens / NC_BATCH_REF_TOKENS); }

double nc_batch_weight_decay(double wd, int64_t tokens, double d_ref, double target_tokens) {
    return wd * sqrt((double)tokens / NC_BATCH_REF_TOKENS) * (d_ref / target_tokens);
}
