/* engine.h: the engine's internal state, shared by the command files
 * (train.c, eval.c, sample.c, checkpoint.c, ablate.c). */
#ifndef NC_ENGINE_H
#define NC_ENGINE_H

#include "api.h"
#include "engine/store/files.h"
#include "guards.h"
#include "memory_limits.h"
#include "models/model.h"
#include "core/rng.h"
#include "engine/store/corpus.h"

#include <limits.h>

struct nc_backend;

/* The model that stays resident between commands. */
typedef struct nc_resident {
    const nc_model_ops *ops;      /* NULL: no model */
    nc_model *model;
    struct nc_backend *backend;   /* NULL for scalar models */
    nc_train_cfg cfg;             /* resolved config it was created with */
    nc_tokenizer tok;             /* its corpus's characters, or its BPE */
    uint8_t *style_only;          /* characters only the style's text has: (vocabulary) or NULL (a BPE) */
    nc_rng data_rng;              /* training batch stream, positioned after the steps taken */
    char run_id[128];
    char checkpoint[PATH_MAX];    /* its default checkpoint path */
    bool dirty;                   /* changed since the last save or load */
} nc_resident;

/* The optimizer steps the resident model has taken (its own count; 0 without one). */
int64_t nc_resident_step(const nc_resident *r);

struct nc_engine {
    nc_engine_opts opts;
    char data_path[PATH_MAX];
    char results_dir[PATH_MAX];
    char checkpoint_dir[PATH_MAX];
    char data_dir[PATH_MAX];      /* the default corpus's folder: readable */
    nc_folders folders;           /* what request paths may reach (files.h) */
    nc_corpus corpus;             /* cached: reloaded when its file, the file's version or the style change */
    bool corpus_loaded;
    char corpus_file[PATH_MAX];   /* the cached corpus's resolved path */
    nc_file_id corpus_id;
    nc_resident res;
    struct nc_backend *backends[2]; /* by nc_backend_kind: created on first use */
    char gpu_absent_why[256];           /* why "auto" found no GPU ("": not probed, or found); not probed again */
    nc_guard guard;
    nc_limits limits;
};

#define NC_MAX_BATCH_TOKENS (1 << 22) /* tokens per step a request may ask for */

/* The commands (jobs/: train.c, sample.c, eval.c, checkpoint.c, ablate.c, tokenize.c), each a
 * check of its arguments that needs no engine state (made by the daemon
 * before it queues the request, and by nc_engine_run) and its run. `args` is
 * the command's config struct: nc_train_cfg for train, and so on. */
typedef struct nc_job {
    int (*check)(const void *args, nc_error *err);
    json_t *(*run)(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err);
} nc_job;
int nc_train_check(const void *args, nc_error *err);
int nc_sample_check(const void *args, nc_error *err);
int nc_eval_check(const void *args, nc_error *err);
int nc_checkpoint_check(const void *args, nc_error *err);
int nc_ablate_check(const void *args, nc_error *err);
int nc_tokenize_check(const void *args, nc_error *err);
json_t *nc_cmd_train(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err);
/* What a training run achieved, typed: train's result says it in JSON (and more). */
typedef struct nc_train_outcome {
    char run_id[128];
    int64_t start_step, steps;
    double train_s, tok_per_s;
    double final_train_loss, baseline_val_loss, final_val_loss, final_bpb; /* NaN: none */
} nc_train_outcome;
/* nc_cmd_train, with the outcome also in *out (when not NULL). */
json_t *nc_train(nc_engine *e, const nc_train_cfg *cfg, const nc_sink *sink, nc_train_outcome *out, nc_error *err);
json_t *nc_cmd_sample(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_eval(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_checkpoint(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_ablate(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_tokenize(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err);
/* BadRequest when a resolved config's batch holds more than NC_MAX_BATCH_TOKENS. */
int nc_batch_check(const nc_train_cfg *cfg, nc_error *err);

/* Creates r's model (cfg, vocab and backend set) once its footprint fits the
 * memory limits (else `code` naming `what`). `replaces`: it will replace the
 * resident model, which is released first when the two would not fit at once;
 * otherwise the two must fit together. */
int nc_engine_build(nc_engine *e, nc_resident *r, bool replaces, nc_code code, const char *what, nc_error *err);

/* The corpus for a path ("" = default) and style in the tokens of bpe (NULL:
 * its own characters), loaded once and cached; the sink's cancel stops a
 * long BPE encoding (which beats its heartbeat). */
const nc_corpus *nc_engine_corpus(nc_engine *e, const char *path, nc_style style, const nc_tokenizer *bpe,
                                  const nc_sink *sink, nc_error *err);
/* The file at a path a request names (relative: the daemon's working folder),
 * read inside the daemon's folders (files.h) and at most max bytes: malloc'd
 * and NUL-terminated, *len bytes; NULL with err set. */
char *nc_engine_read(nc_engine *e, const char *path, int64_t max, const char *what, size_t *len, nc_error *err);
/* The BPE tokenizer in a folder a request names (folder/tokenizer.json, read
 * inside the daemon's folders): BadRequest naming what is wrong with it. */
int nc_engine_tokenizer(nc_engine *e, const char *folder, nc_tokenizer *out, nc_error *err);
/* The corpus of r's config in r's tokens: BadRequest when the file's
 * characters are no longer the model's, or its splits no longer hold a
 * window of the model's context. */
const nc_corpus *nc_resident_corpus(nc_engine *e, const nc_resident *r, const nc_sink *sink, nc_error *err);
/* The backend for a device (auto: the GPU when one opens, else the cpu);
 * DeviceUnavailable when cuda is asked for and absent. */
struct nc_backend *nc_engine_backend(nc_engine *e, nc_device device, nc_error *err);
/* 0 when a model of footprint fp fits the memory limits for backend be (NULL:
 * host only); else `code` naming `what` with the estimate and the limit. */
int nc_engine_fits(const nc_engine *e, const struct nc_backend *be, const nc_footprint *fp, nc_code code,
                   const char *what, nc_error *err);
/* The same for `extra` (say a decoding session) beside the resident model, on its backend. */
int nc_engine_fits_beside(const nc_engine *e, const nc_footprint *extra, nc_code code, const char *what, nc_error *err);
/* Resolves a checkpoint path from a request (relative paths: in checkpoint_dir)
 * for reading or writing (files.h); PermissionDenied outside the folders. */
int nc_engine_checkpoint_path(const nc_engine *e, const char *path, nc_access access, char out[PATH_MAX],
                              nc_error *err);

/* Replaces the resident model (frees the old one). */
void nc_resident_set(nc_resident *r, nc_resident *incoming);
void nc_resident_clear(nc_resident *r);
bool nc_resident_loaded(const nc_resident *r);
int nc_require_model(const nc_resident *r, nc_error *err); /* NotFound with advice */

/* Emits an event when the sink has an emitter; takes data. */
void nc_emit(const nc_sink *sink, const char *event, json_t *data);
/* A step boundary (a training step, an eval batch, a sampled token): beats
 * the sink's heartbeat, which the daemon's watchdog watches, and says
 * whether the job was cancelled, so that it stops here. */
bool nc_step_boundary(const nc_sink *sink);
/* nc_step_boundary as what a long tokenization polls. */
nc_stop nc_sink_stop(const nc_sink *sink);
void nc_utc_stamp(char *buf, size_t n); /* 20261126T101500Z */

#endif
