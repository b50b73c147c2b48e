/* engine.c: the resident engine: command dispatch, the corpus cache, backends
 * and the resident model. */
#define _GNU_SOURCE
#include "engine.h"
#include "backend/backend.h"
#include "engine/store/token_cache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef NC_DEFAULT_DATA
#define NC_DEFAULT_DATA "data/tinyshakespeare.txt"
#endif

void nc_utc_stamp(char *buf, size_t n) {
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, n, "%Y%m%dT%H%M%SZ", &tm);
}

void nc_emit(const nc_sink *sink, const char *event, json_t *data) {
    if (sink && sink->beats) atomic_fetch_add(sink->beats, 1); /* an event is progress too */
    if (sink && sink->emit) sink->emit(sink->ctx, event, data);
    else json_decref(data);
}

static bool stop_at_boundary(void *sink) { return nc_step_boundary(sink); }

nc_stop nc_sink_stop(const nc_sink *sink) { return (nc_stop){stop_at_boundary, (void *)sink}; }

bool nc_step_boundary(const nc_sink *sink) {
    if (sink && sink->beats) atomic_fetch_add(sink->beats, 1);
    return sink && sink->cancel && atomic_load(sink->cancel);
}

/* Clients may write the checkpoint and results folders and the --allow-dir
 * ones, and read those and the default corpus's folder. */
static void set_folders(nc_engine *e) {
    nc_folders *f = &e->folders;
    f->confined = e->opts.allow_dirs != NULL;
    nc_folders_add(f, e->checkpoint_dir, true);
    nc_folders_add(f, e->results_dir, true);
    for (const char *const *d = e->opts.allow_dirs; d && *d; d++) nc_folders_add(f, *d, true);
    nc_folders_add(f, e->data_dir, false);
}

nc_engine *nc_engine_new(const nc_engine_opts *opts, nc_error *err) {
    nc_engine *e = calloc(1, sizeof *e);
    if (!e) {
        nc_fail(err, NC_E_INTERNAL, "out of memory");
        return NULL;
    }
    e->opts = *opts;
    snprintf(e->data_path, sizeof e->data_path, "%s", opts->data_path ? opts->data_path : NC_DEFAULT_DATA);
    snprintf(e->results_dir, sizeof e->results_dir, "%s", opts->results_dir ? opts->results_dir : NC_RESULTS_DIR_DEFAULT);
    snprintf(e->checkpoint_dir, sizeof e->checkpoint_dir, "%s", opts->checkpoint_dir ? opts->checkpoint_dir : NC_CHECKPOINT_DIR_DEFAULT);
    char *slash = strrchr(e->data_path, '/');
    snprintf(e->data_dir, sizeof e->data_dir, "%.*s", slash ? (int)(slash - e->data_path) + (slash == e->data_path) : 1,
             slash ? e->data_path : ".");
    set_folders(e);
    e->limits = (nc_limits){opts->max_memory_bytes > 0 ? opts->max_memory_bytes : nc_default_host_limit(),
                            opts->max_device_memory_bytes};
    nc_guard_init(&e->guard, opts->guard_window > 0 ? opts->guard_window : NC_GUARD_WINDOW_DEFAULT,
                  opts->guard_max_growth > 1 ? opts->guard_max_growth : NC_GUARD_GROWTH_DEFAULT);
    if (opts->preload && !nc_engine_backend(e, opts->preload_device, err)) {
        nc_engine_free(e);
        return NULL;
    }
    return e;
}

void nc_resident_clear(nc_resident *r) {
    if (r->ops && r->model) r->ops->destroy(r->model);
    nc_tokenizer_free(&r->tok);
    free(r->style_only);
    memset(r, 0, sizeof *r);
}

void nc_resident_set(nc_resident *r, nc_resident *incoming) {
    nc_resident_clear(r);
    *r = *incoming;
    memset(incoming, 0, sizeof *incoming);
}

bool nc_resident_loaded(const nc_resident *r) { return r->ops != NULL; }

int64_t nc_resident_step(const nc_resident *r) { return r->ops && r->model ? r->ops->updates(r->model) : 0; }

int nc_require_model(const nc_resident *r, nc_error *err) {
    if (nc_resident_loaded(r)) return 0;
    return nc_fail(err, NC_E_NOT_FOUND,
                   "no model is loaded: train one (ncctl train) or load a checkpoint (ncctl checkpoint load PATH)");
}

void nc_engine_free(nc_engine *e) {
    if (!e) return;
    nc_resident_clear(&e->res);
    if (e->corpus_loaded) nc_corpus_free(&e->corpus);
    for (size_t i = 0; i < sizeof e->backends / sizeof e->backends[0]; i++) nc_backend_free(e->backends[i]);
    free(e);
}

char *nc_engine_read(nc_engine *e, const char *path, int64_t max, const char *what, size_t *len, nc_error *err) {
    char real[PATH_MAX], *text;
    if (nc_resolve(&e->folders, path, NULL, NC_ACCESS_READ, what, real, err) ||
        nc_read_file(real, max, what, &text, len, err))
        return NULL;
    return text;
}

int nc_engine_tokenizer(nc_engine *e, const char *folder, nc_tokenizer *out, nc_error *err) {
    char path[PATH_MAX + 32], *json;
    size_t len;
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", folder) >= sizeof path)
        return nc_fail(err, NC_E_BAD_REQUEST, "the tokenizer folder's name is too long");
    if (!(json = nc_engine_read(e, path, NC_MAX_TOKENIZER_BYTES, "tokenizer", &len, err))) return -1;
    int rc = nc_tokenizer_bpe(out, json, len, err);
    free(json);
    return rc;
}

const nc_corpus *nc_resident_corpus(nc_engine *e, const nc_resident *r, const nc_sink *sink, nc_error *err) {
    const nc_corpus *c = nc_engine_corpus(e, r->cfg.data, r->cfg.style, r->tok.bpe ? &r->tok : NULL, sink, err);
    if (!c) return NULL;
    if (!nc_tokenizer_equal(&r->tok, &c->tok)) {
        nc_fail(err, NC_E_BAD_REQUEST, "the model's vocabulary differs from that of %s", c->path);
        return NULL;
    }
    return nc_corpus_fits(c, r->cfg.model.seq_len, err) ? NULL : c;
}

/* A text corpus; under a BPE (and no style) its tokens come from the token
 * cache, or go there once made (a cache: failing to write it changes nothing). */
static int load_text(nc_engine *e, nc_corpus *c, const char *text, size_t len, const char *path, nc_style style,
                     const nc_tokenizer *bpe, const nc_stop *stop, nc_error *err) {
    char results[PATH_MAX], cache[PATH_MAX];
    nc_error ignored;
    bool cached = bpe && style == NC_STYLE_CLASSIC &&
                  nc_resolve_folder(&e->folders, e->results_dir, "the results folder", results, &ignored) == 0;
    size_t n = 0;
    int32_t *ids = NULL;
    if (cached) {
        nc_token_cache_path(results, text, len, bpe, cache);
        ids = nc_token_cache_read(cache, bpe, 3 * len + 1, &n);
    }
    if (ids) return nc_corpus_from_ids(c, ids, n, path, bpe, err);
    if (nc_corpus_load(c, text, len, path, style, bpe, stop, err)) return -1;
    if (cached) nc_token_cache_write(cache, bpe, c->ids, c->train.n + c->val.n);
    return 0;
}

const nc_corpus *nc_engine_corpus(nc_engine *e, const char *path, nc_style style, const nc_tokenizer *bpe,
                                  const nc_sink *sink, nc_error *err) {
    const char *p = path && *path ? path : e->data_path;
    char real[PATH_MAX], *text;
    size_t len;
    nc_file_id id;
    if (nc_resolve(&e->folders, p, NULL, NC_ACCESS_READ, "data", real, err) || nc_file_id_of(real, &id, err))
        return NULL;
    if (e->corpus_loaded && strcmp(e->corpus_file, real) == 0 && nc_file_id_equal(&e->corpus_id, &id) &&
        e->corpus.style == style && (bpe ? nc_tokenizer_equal(bpe, &e->corpus.tok) : !e->corpus.tok.bpe) &&
        nc_shards_current(&e->corpus.shards, real))
        return &e->corpus;
    nc_corpus fresh;
    if (id.folder) {
        if (nc_corpus_load_shards(&fresh, real, p, style, bpe, err)) return NULL;
    } else {
        int64_t max = nc_corpus_max_bytes(&e->limits) / (bpe ? NC_CORPUS_BPE_FACTOR : 1);
        if (nc_read_file(real, max, "corpus", &text, &len, err)) return NULL;
        nc_stop stop = nc_sink_stop(sink);
        int rc = load_text(e, &fresh, text, len, p, style, bpe, &stop, err);
        free(text);
        if (rc) return NULL;
    }
    if (e->corpus_loaded) nc_corpus_free(&e->corpus);
    e->corpus = fresh;
    e->corpus_loaded = true;
    snprintf(e->corpus_file, sizeof e->corpus_file, "%s", real);
    e->corpus_id = id;
    return &e->corpus;
}

/* "auto" is the GPU when one opens; a failed probe is remembered, so later
 * "auto"s go straight to the CPU backend. */
struct nc_backend *nc_engine_backend(nc_engine *e, nc_device device, nc_error *err) {
    nc_backend **gpu = &e->backends[NC_BACKEND_CUDA];
    if (device == NC_DEVICE_AUTO) {
        nc_error why = {0};
        if (!*gpu && !e->gpu_absent_why[0] && !(*gpu = nc_backend_open(NC_BACKEND_CUDA, e->opts.threads, &why)))
            snprintf(e->gpu_absent_why, sizeof e->gpu_absent_why, "%s", why.message[0] ? why.message : "cuda did not open");
        if (*gpu) return *gpu;
        device = NC_DEVICE_CPU;
    }
    nc_backend_kind kind = device == NC_DEVICE_CUDA ? NC_BACKEND_CUDA : NC_BACKEND_CPU;
    nc_backend **slot = &e->backends[kind];
    if (!*slot) *slot = nc_backend_open(kind, e->opts.threads, err);
    return *slot;
}

int nc_engine_fits(const nc_engine *e, const nc_backend *be, const nc_footprint *fp, nc_code code, const char *what,
                   nc_error *err) {
    int64_t device = be && be->gpu ? (e->limits.device_bytes > 0 ? e->limits.device_bytes : be->memory_bytes / 10 * 9) : 0;
    return nc_footprint_check(&e->limits, device, fp, code, what, err);
}

static void footprint_of(const nc_resident *r, nc_footprint *fp) {
    *fp = (nc_footprint){0};
    if (nc_resident_loaded(r)) r->ops->footprint(&r->cfg.model, nc_tokenizer_size(&r->tok), r->backend, fp);
}

int nc_engine_fits_beside(const nc_engine *e, const nc_footprint *extra, nc_code code, const char *what, nc_error *err) {
    nc_footprint both;
    footprint_of(&e->res, &both);
    both.device += extra->device;
    both.host += extra->host;
    both.host_transient = extra->host_transient;
    return nc_engine_fits(e, e->res.backend, &both, code, what, err);
}

int nc_engine_build(nc_engine *e, nc_resident *r, bool replaces, nc_code code, const char *what, nc_error *err) {
    nc_footprint mine, resident, both;
    r->ops->footprint(&r->cfg.model, nc_tokenizer_size(&r->tok), r->backend, &mine);
    footprint_of(&e->res, &resident);
    both = (nc_footprint){mine.device + (resident.device > 0 && e->res.backend == r->backend ? resident.device : 0),
                          mine.host + resident.host, mine.host_transient};
    if (nc_engine_fits(e, r->backend, replaces ? &mine : &both, code, what, err)) return -1;
    nc_error ignored;
    if (replaces && nc_engine_fits(e, r->backend, &both, code, what, &ignored)) nc_resident_clear(&e->res);
    r->model = r->ops->create(&r->cfg.model, nc_tokenizer_size(&r->tok), r->backend, err);
    return r->model ? 0 : -1;
}

int nc_engine_checkpoint_path(const nc_engine *e, const char *path, nc_access access, char out[PATH_MAX],
                              nc_error *err) {
    return nc_resolve(&e->folders, path, e->checkpoint_dir, access, "checkpoint path", out, err);
}

json_t *nc_engine_describe(nc_engine *e) {
    nc_resident *r = &e->res;
    if (!nc_resident_loaded(r)) return json_null();
    json_t *d = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i, s:s, s:s, s:b}", "mode", nc_mode_names[r->ops->mode],
                          "kind", nc_kind_names[r->ops->kind],
                          "run_id", r->run_id, "step", (json_int_t)nc_resident_step(r),
                          "params", (json_int_t)r->ops->num_params(r->model), "vocab_size", nc_tokenizer_size(&r->tok),
                          "style", nc_style_names[r->cfg.style], "checkpoint", r->checkpoint, "unsaved", r->dirty);
    json_object_set_new(d, "tokenizer", json_string(nc_tokenizer_kind(&r->tok)));
    json_object_set_new(d, "backend", json_string(r->backend ? r->backend->name : "cpu"));
    json_object_set_new(d, "device", json_string(r->backend ? r->backend->device : "cpu (scalar autograd)"));
    if (r->ops->describe) json_object_update_new(d, r->ops->describe(r->model));
    return d;
}

static const nc_job jobs[NC_CMD_COUNT] = {
    [NC_CMD_TRAIN] = {nc_train_check, nc_cmd_train},
    [NC_CMD_SAMPLE] = {nc_sample_check, nc_cmd_sample},
    [NC_CMD_EVAL] = {nc_eval_check, nc_cmd_eval},
    [NC_CMD_CHECKPOINT] = {nc_checkpoint_check, nc_cmd_checkpoint},
    [NC_CMD_ABLATE] = {nc_ablate_check, nc_cmd_ablate},
    [NC_CMD_TOKENIZE] = {nc_tokenize_check, nc_cmd_tokenize},
};

int nc_request_check(const nc_command_spec *cmd, const void *args, nc_error *err) {
    return jobs[cmd->id].check ? jobs[cmd->id].check(args, err) : 0;
}

json_t *nc_engine_run(nc_engine *e, const nc_command_spec *cmd, const void *args, const nc_sink *sink, nc_error *err) {
    if (!jobs[cmd->id].run) {
        nc_fail(err, NC_E_UNKNOWN_COMMAND, "%s is not an engine command", cmd->name);
        return NULL;
    }
    return jobs[cmd->id].check(args, err) ? NULL : jobs[cmd->id].run(e, args, sink, err);
}
