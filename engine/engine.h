/* engine.h: the engine's internal state, shared by the command files
 * (train.c, eval.c, sample.c, checkpoint.c, ablate.c). */
#ifndef NC_ENGINE_H
#define NC_ENGINE_H

#include "config.h"
#include "guards.h"
#include "models/model.h"
#include "rng.h"
#include "text.h"

#include <limits.h>

struct nc_backend;

/* The model that stays resident between commands. */
typedef struct nc_resident {
    const nc_model_ops *ops;      /* NULL: no model */
    nc_model *model;
    struct nc_backend *backend;   /* NULL for scalar models */
    nc_train_cfg cfg;             /* resolved config it was created with */
    nc_vocab vocab;
    uint8_t *style_only;          /* (vocab.size) characters only the style's text has */
    int64_t step;                 /* optimizer steps taken */
    nc_rng data_rng;              /* training batch stream, positioned after `step` */
    char run_id[128];
    char checkpoint[PATH_MAX];    /* its default checkpoint path */
    bool dirty;                   /* changed since the last save or load */
} nc_resident;

struct nc_engine {
    nc_engine_opts opts;
    char data_path[PATH_MAX];
    char results_dir[PATH_MAX];
    char checkpoint_dir[PATH_MAX];
    nc_corpus corpus;             /* cached: reloaded when path or style change */
    bool corpus_loaded;
    nc_resident res;
    struct nc_backend *backends[2]; /* cpu, cuda: created on first use */
    char gpu_absent_why[256];           /* why "auto" found no GPU ("": not probed, or found); not probed again */
    nc_guard guard;
};

/* Commands. */
json_t *nc_cmd_train(nc_engine *e, const nc_train_cfg *cfg, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_sample(nc_engine *e, const nc_sample_cfg *cfg, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_eval(nc_engine *e, const nc_eval_cfg *cfg, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_checkpoint(nc_engine *e, const nc_checkpoint_cfg *cfg, const nc_sink *sink, nc_error *err);
json_t *nc_cmd_ablate(nc_engine *e, const nc_ablate_cfg *cfg, const nc_sink *sink, nc_error *err);

/* The corpus for a path ("" = default) and style, loaded once and cached. */
const nc_corpus *nc_engine_corpus(nc_engine *e, const char *path, const char *style, nc_error *err);
/* The backend for cfg->device ("auto" | "cpu" | "cuda"); DeviceUnavailable
 * when cuda is asked for and absent. */
struct nc_backend *nc_engine_backend(nc_engine *e, const char *device, nc_error *err);
/* Resolves a checkpoint path: absolute paths stay, others go under checkpoint_dir;
 * PermissionDenied when it lies outside the allowed folders (nc_engine_opts). */
int nc_engine_checkpoint_path(const nc_engine *e, const char *path, char *out, size_t n, nc_error *err);

/* Replaces the resident model (frees the old one). */
void nc_resident_set(nc_resident *r, nc_resident *incoming);
void nc_resident_clear(nc_resident *r);
bool nc_resident_loaded(const nc_resident *r);
int nc_require_model(const nc_resident *r, nc_error *err); /* NotFound with advice */

/* Emits an event when the sink has an emitter; takes data. */
void nc_emit(const nc_sink *sink, const char *event, json_t *data);
bool nc_cancelled(const nc_sink *sink);
double nc_now(void);          /* monotonic seconds */
void nc_utc_stamp(char *buf, size_t n); /* 20261126T101500Z */

#endif
