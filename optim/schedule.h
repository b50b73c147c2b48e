/* schedule.h: upstream base_train's schedules and batch-size scaling, as
 * named functions of the step `it` (from 0) of a run of `steps` steps. */
#ifndef NC_SCHEDULE_H
#define NC_SCHEDULE_H

#include <stdint.h>

/* Linear warmup over warmup steps, constant, then linear warmdown over the
 * last round(warmdown_ratio * steps) steps to final_lr_frac. */
double nc_lr_multiplier(int64_t it, int64_t steps, int64_t warmup, double warmdown_ratio,
                        double final_lr_frac);
/* Muon momentum: 0.85 -> 0.97 over the first 400 steps, then 0.97 -> 0.90
 * across the warmdown. */
double nc_muon_momentum(int64_t it, int64_t steps, double warmdown_ratio);
/* Muon weight decay: wd * (1 + cos(pi * it / steps)) / 2. */
double nc_muon_weight_decay(int64_t it, int64_t steps, double wd);

/* base_train's reference batch: 2^19 tokens. */
#define NC_BATCH_REF_TOKENS 524288.0
/* Learning-rate factor for a batch of `tokens` tokens: sqrt(tokens / 2^19). */
double nc_batch_lr_scale(int64_t tokens);
/* Weight decay for a batch of `tokens` tokens and a horizon of target_tokens,
 * relative to the reference horizon d_ref: wd * sqrt(tokens / 2^19) * d_ref / target. */
double nc_batch_weight_decay(double wd, int64_t tokens, double d_ref, double target_tokens);

#endif
