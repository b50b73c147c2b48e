/* nc.h: the engine's public header: a resident object that runs the
 * commands of the wire contract (api.h) on their parsed arguments and
 * reports events and results as JSON. The daemon, the tools and the tests
 * include it; nothing here knows about sockets or msgpack. */
#ifndef NC_H
#define NC_H

#include "api.h"

#include <jansson.h>
#include <stdatomic.h>

/* ---- engine -------------------------------------------------------------- */

typedef struct nc_engine nc_engine;

typedef struct nc_engine_opts {
    const char *data_path;      /* default corpus (UTF-8 text) */
    const char *results_dir;    /* run artifacts: <results_dir>/<run-id>/ */
    const char *checkpoint_dir; /* checkpoints; relative checkpoint paths resolve here */
    int threads;                /* CPU threads; 0 = number of cores */
    int guard_window;           /* memory guard: rolling window of observations; 0: the default */
    double guard_max_growth;    /* memory guard: allowed growth over the window minimum; 0: the default */
    /* NULL: request paths are not confined. Else a NULL-terminated list of
     * folders (at most NC_MAX_ALLOW_DIRS; it must outlive the engine): the
     * paths in requests (data, checkpoint, resume, path) must resolve, symlinks
     * followed, inside one of them, checkpoint_dir, results_dir or the default
     * corpus's folder; others fail with PermissionDenied. */
    const char *const *allow_dirs;
    /* Whether nc_engine_new opens the backend of preload_device, so that a GPU
     * context exists before the engine is reported ready (else: on first use). */
    bool preload;
    nc_device preload_device;
    /* Memory a request or a file may claim (memory.h); 0: the defaults (80% of
     * the host's memory, 90% of the GPU's). */
    int64_t max_memory_bytes, max_device_memory_bytes;
} nc_engine_opts;

#define NC_MAX_ALLOW_DIRS 32
/* Token shards a corpus takes: each an open file while it is cached, twice
 * that while a new corpus replaces it (the daemon's descriptor headroom). */
#define NC_MAX_SHARDS 256
#define NC_GUARD_WINDOW_DEFAULT 8
#define NC_GUARD_GROWTH_DEFAULT 1.5
#define NC_RESULTS_DIR_DEFAULT "results"
#define NC_CHECKPOINT_DIR_DEFAULT "checkpoints"

/* Events: `event` names the kind ("progress", "eval", ...); the callee owns `data`. */
typedef void (*nc_emit_fn)(void *ctx, const char *event, json_t *data);

typedef struct nc_sink {
    nc_emit_fn emit;      /* may be NULL */
    void *ctx;
    atomic_bool *cancel;  /* polled at step boundaries; may be NULL */
    atomic_uint_fast64_t *beats; /* bumped at every step boundary and event, a heartbeat; may be NULL */
} nc_sink;

nc_engine *nc_engine_new(const nc_engine_opts *opts, nc_error *err);
void nc_engine_free(nc_engine *engine);
/* Runs one engine command (spec->engine) on its arguments, parsed by
 * nc_args_parse into the command's config struct and checked by
 * nc_request_check. Returns the result object (new reference) or NULL with
 * *err set. Not thread-safe: one thread (the daemon's worker) owns the engine. */
json_t *nc_engine_run(nc_engine *engine, const nc_command_spec *cmd, const void *args, const nc_sink *sink,
                      nc_error *err);
/* The checks of a parsed request (cfg from nc_args_parse) that need no
 * engine state: cross-field rules, a model's own (seq_len for the GPT, ...),
 * names and limits. The daemon runs them before it queues a request, so a
 * bad request is refused the same way whether a job runs or not. */
int nc_request_check(const nc_command_spec *cmd, const void *cfg, nc_error *err);
/* A summary of the resident model (null fields when none), for `status`. */
json_t *nc_engine_describe(nc_engine *engine);
/* Saves the resident model to its default checkpoint, if one is loaded and
 * has changed since the last save. Returns 0 when nothing needed saving. */
int nc_engine_save_resident(nc_engine *engine, json_t **result, nc_error *err);

#endif
