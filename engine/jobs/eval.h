/* eval.h: validation loss and bits per byte over a fixed, seed-independent
 * set of validation windows, so two runs and two implementations (ours and
 * upstream's, scripts/benchmark_karpathy.py) score the same data:
 *
 *   W windows of T + 1 tokens from the validation split, window i starting
 *   at floor(i * (n_val - T - 1) / (W - 1)); val loss is the mean nats over
 *   all W * T targets; bits per byte is the summed nats over ln 2 times the
 *   UTF-8 bytes of the target characters (upstream's evaluate_bpb). */
#ifndef NC_EVAL_H
#define NC_EVAL_H

#include "engine/engine.h"

typedef struct nc_eval_result {
    double val_loss, bpb;
    int64_t windows, tokens;
} nc_eval_result;

/* Start of window i of W over n tokens for windows of T + 1 tokens. */
size_t nc_eval_window_start(size_t n, int T, int64_t W, int64_t i);
/* Evaluates a model (its cfg gives data, style, seq_len and batch size);
 * W 0 = cfg.eval_windows. Each batch is a step boundary: a cancelled sink
 * stops it there with Cancelled. */
int nc_eval_model(nc_engine *e, nc_resident *r, int64_t W, const nc_sink *sink, nc_eval_result *out, nc_error *err);
/* nc_eval_model, then the memory guard's observation of the working set. */
int nc_eval_guarded(nc_engine *e, nc_resident *r, int64_t W, const nc_sink *sink, nc_eval_result *out, nc_error *err);
/* The eval event and result fields: type, step, val_loss, bpb, windows, tokens. */
json_t *nc_eval_json(const nc_eval_result *ev, int64_t step);

/* Peak FLOP/s of the backend's device for MFU (0 when unknown or a CPU). */
double nc_peak_flops(const struct nc_backend *be);
/* The process's peak resident set (VmHWM). */
int64_t nc_peak_rss_bytes(void);

#endif
