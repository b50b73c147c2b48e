/* muon_adamw.h: upstream nanochat's MuonAdamW, driven through backend ops.
 *
 * The model lays its parameters out in one f32 arena and describes it as
 * AdamW groups (contiguous regions sharing hyperparameters) and Muon groups
 * (K stacked (R, C) matrices of one shape). The optimizer keeps its state in
 * one arena parallel to it: the first moment (AdamW exp_avg, Muon momentum)
 * for every parameter, AdamW's exp_avg_sq, and NorMuon's factored second
 * moment. Each step's hyperparameters (base_train's schedules applied) reach
 * the ops through one upload to a small device buffer. The step count, and
 * the copy of the state that a non-finite loss returns to, are the model's
 * snapshot's (snapshot.h). */
#ifndef NC_OPTIM_MUON_H
#define NC_OPTIM_MUON_H

#include "backend/backend.h"

#define NC_OPT_MAX_GROUPS 8

typedef struct nc_adamw_group {
    int64_t offset, n; /* region of the parameter arena */
    double lr;         /* before the schedule's multiplier */
    double beta1, beta2, eps, wd;
} nc_adamw_group;

typedef struct nc_muon_group {
    int64_t offset; /* K matrices (R, C), stacked */
    int K, R, C;
} nc_muon_group;

typedef struct nc_muon_setup {
    nc_adamw_group adamw[NC_OPT_MAX_GROUPS];
    int n_adamw;
    nc_muon_group muon[NC_OPT_MAX_GROUPS];
    int n_muon;
    double matrix_lr;    /* Muon lr before the schedule (and the per-shape factor) */
    double weight_decay; /* Muon's cautious decay before its cosine schedule */
    double beta2;        /* NorMuon second-moment decay */
    int64_t warmup_steps;
    double warmdown_ratio, final_lr_frac;
} nc_muon_setup;

typedef struct nc_muonadamw nc_muonadamw;

/* The adamw regions must follow every muon region in the arena of n_params. */
nc_muonadamw *nc_muonadamw_new(nc_backend *be, const nc_muon_setup *s, int64_t n_params, nc_error *err);
/* The floats of its state (moments), and all the bytes nc_muonadamw_new
 * allocates for such a setup (act: bytes of an activation). */
int64_t nc_muonadamw_state_floats(const nc_muon_setup *s, int64_t n_params);
double nc_muonadamw_bytes(const nc_muon_setup *s, int64_t n_params, size_t act);
void nc_muonadamw_free(nc_muonadamw *o);

/* One update of params from grads ((n_params) f32 arenas) at step it (from 0)
 * of a run of `steps`, the t-th update the state sees (from 1: AdamW's bias
 * corrections): prepare, then apply. */
void nc_muonadamw_step(nc_muonadamw *o, float *params, float *grads, int64_t it, int64_t steps, int64_t t);
/* The host half: uploads the update's hyperparameters. */
void nc_muonadamw_prepare(nc_muonadamw *o, int64_t it, int64_t steps, int64_t t);
/* The device half: only ops reading device memory (capturable in a graph).
 * Consumes grads (Muon's momentum works in place). */
void nc_muonadamw_apply(nc_muonadamw *o, float *params, float *grads);

/* The whole state (moments), *floats of them: what the snapshot keeps. */
float *nc_muonadamw_state(nc_muonadamw *o, int64_t *floats);
/* The state of the parameter tensor at `offset`: its first moment (numel
 * floats, parallel to the parameter), and its second moment: AdamW's
 * exp_avg_sq (numel) or, for a Muon matrix, NorMuon's (R) when R >= C else
 * (C); *n2 receives that count. */
float *nc_muonadamw_first(nc_muonadamw *o, int64_t offset);
float *nc_muonadamw_second(nc_muonadamw *o, int64_t offset, int64_t numel, int64_t *n2);

#endif
