/* model.h: the interface every trainable model implements.
 *
 * The training loop (train.c), evaluation (eval.c), sampling (sample.c) and
 * checkpoints (checkpoint.c) see models only through nc_model_ops. A model
 * owns its parameters, its optimizer state and its backend buffers. */
#ifndef NC_MODEL_H
#define NC_MODEL_H

#include "api.h"
#include "core/memory.h"
#include "core/tensors.h"

#include <jansson.h>
#include <stdint.h>

struct nc_backend; /* backend/backend.h; NULL for scalar models */

typedef struct nc_model nc_model; /* each kind defines its own struct */

/* B windows of T tokens in host memory: targets are inputs shifted by one. */
typedef struct nc_batch {
    const int32_t *x; /* (B, T) */
    const int32_t *y; /* (B, T) */
    int B, T;
} nc_batch;

/* A decoding session over a trained model (KV cache or sliding context). */
typedef struct nc_decoder nc_decoder;

typedef struct nc_model_ops {
    nc_mode mode;       /* its name: nc_mode_names[mode] */
    nc_model_kind kind; /* nc_kind_names[kind] */
    /* Where a tensor model computes under --device auto: NC_DEVICE_AUTO (the
     * gpu when there is one) or NC_DEVICE_CPU. */
    nc_device auto_device;
    /* Replaces the config's "model default" sentinels (0 or -1), and the
     * run's validation windows per eval when 0, with this model's values;
     * rejects combinations it cannot train. */
    int (*resolve)(nc_model_cfg *cfg, const struct nc_backend *be, int64_t *eval_windows, nc_error *err);
    /* A freshly initialized model of vocabulary size V (weights from cfg->seed's init stream). */
    nc_model *(*create)(const nc_model_cfg *cfg, int V, struct nc_backend *be, nc_error *err);
    void (*destroy)(nc_model *m);

    /* Forward, backward and optimizer update on one batch. `step` counts from
     * 0 and `steps` is the run's total (schedules use both). *loss receives
     * the mean loss of step (step - loss_lag), NaN while none is ready. A
     * model that sees a non-finite loss applies no update from it, returns
     * its weights and optimizer state to those that gave the last finite
     * loss, and fails with NC_E_NON_FINITE_LOSS (possibly loss_lag steps
     * late); updates() then counts the steps of the state it kept. */
    int (*train_step)(nc_model *m, const nc_batch *b, int64_t step, int64_t steps,
                      double *loss, nc_error *err);
    /* 0 (or NULL): synchronous; 1: train_step returns the previous step's loss */
    int (*loss_lag)(const nc_model *m);
    /* Delivers the loss still pending after the last train_step (loss_lag 1). */
    int (*drain)(nc_model *m, double *loss, nc_error *err);

    /* Per-token losses (nats) of a batch, no update: (B*T) floats. */
    int (*eval_losses)(nc_model *m, const nc_batch *b, float *losses, nc_error *err);

    /* Longest context the model conditions on (bigram: 1). */
    int (*context_len)(const nc_model *m);
    /* Positions one decoding session can reach (prompt and new tokens); NULL: unlimited. */
    int64_t (*max_positions)(const nc_model *m);
    /* A decoding session of `batch` sequences (1..NC_MAX_SAMPLES) that reach at
     * most `positions` positions, prompt and new tokens (0: unknown). */
    nc_decoder *(*decoder_new)(nc_model *m, int batch, int64_t positions, nc_error *err);
    /* The memory such a session holds; NULL: a few bytes a sequence. */
    void (*decoder_footprint)(const nc_model *m, int batch, int64_t positions, nc_footprint *out);
    /* Feeds n tokens to every sequence (a shared prompt, computed once); writes
     * the logits (V) of the next token. Before the first step, unless batch is 1. */
    int (*decoder_feed)(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err);
    /* Feeds one token to each sequence, ids (batch); writes each sequence's
     * next logits, (batch, V). A prompt is fed first. */
    int (*decoder_step)(nc_decoder *d, const int32_t *ids, float *logits, nc_error *err);
    void (*decoder_free)(nc_decoder *d);

    /* Weights (upstream's names for gpt) and, with optimizer, the optimizer's
     * moments, as host copies. import_state checks every name and shape; with
     * optimizer it also sets the step (updates()) the state has seen. */
    int (*export_state)(nc_model *m, bool optimizer, nc_tensor_list *out, nc_error *err);
    int (*import_state)(nc_model *m, const nc_tensor_list *in, bool optimizer, int64_t step, nc_error *err);
    /* The names and shapes export_state gives for a model of a resolved cfg
     * and vocabulary V, without building one (data NULL), so that a file can
     * be checked before anything is allocated for it. */
    int (*state_spec)(const nc_model_cfg *cfg, int V, bool optimizer, nc_tensor_list *out, nc_error *err);
    /* The memory a model of a resolved cfg and vocabulary V holds while it
     * trains on backend be (NULL: host only): parameters, gradients,
     * optimizer state, a batch's activations, tables; an upper bound. */
    void (*footprint)(const nc_model_cfg *cfg, int V, const struct nc_backend *be, nc_footprint *out);

    /* Optimizer updates the current weights have seen: the run's one step
     * counter (the model's snapshot's; after a non-finite loss, the steps of
     * the state that was kept). */
    int64_t (*updates)(const nc_model *m);
    /* Host bytes the model holds now outside its backend (its arrays, its
     * autograd arena as grown, its optimizer): what the memory guard adds to
     * the backend's own count. NULL: none. */
    int64_t (*memory_bytes)(const nc_model *m);
    int64_t (*num_params)(const nc_model *m);
    /* Training FLOPs per token (upstream's estimate_flops); 0 if not defined. */
    double (*flops_per_token)(const nc_model *m);
    /* Extra facts for status and run.json (layers, widths, ...); may be NULL. */
    json_t *(*describe)(const nc_model *m);
} nc_model_ops;

const nc_model_ops *nc_model_find(nc_mode mode, nc_model_kind kind); /* NULL: no such model */

#endif
