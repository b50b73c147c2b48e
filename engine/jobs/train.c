/* train.c: the training loop shared by every model.
 *
 * Each step draws B windows of T + 1 tokens at uniform random starts in the
 * training split (the data stream), hands them to the model's train_step,
 * logs progress, evaluates, and checkpoints with persist-then-eval: the
 * checkpoint is written, loaded back into the model, and the eval that
 * follows runs on what was loaded. */
#define _GNU_SOURCE
#include "engine/store/artifacts.h"
#include "engine/store/checkpoint.h"
#include "eval.h"
#include "step_times.h"
#include "backend/backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct trainer {
    nc_engine *e;
    const nc_sink *sink;
    nc_resident *r;
    const nc_corpus *corpus;
    nc_run run;
    int32_t *x, *y;          /* (B, T) */
    nc_step_times times;     /* of this run's steps */
    int64_t start;           /* step the run started from */
    double t_cmd, t_log;     /* command start; last progress event */
    int64_t log_step;        /* step of the last progress event */
    double first_step_s;     /* command start to the end of the first step */
    double last_loss;        /* most recent known training loss */
    nc_eval_result first_eval, last_eval; /* windows 0: none yet */
} trainer;

/* B windows at uniform random starts: inputs x (B, T), targets y (B, T) one token on. */
static int sample_batch(const nc_tokens *tokens, int B, int T, nc_rng *rng, int32_t *x, int32_t *y, nc_error *err) {
    for (int b = 0; b < B; b++) {
        size_t s = (size_t)nc_rng_below(rng, (uint64_t)(tokens->n - (size_t)T));
        if (nc_tokens_window(tokens, s, T, x + (size_t)b * T, y + (size_t)b * T, err)) return -1;
    }
    return 0;
}

/* ---- setting up the resident model ------------------------------------------ */

static int fresh_model(nc_engine *e, const nc_train_cfg *cfg, nc_resident *r, const nc_sink *sink, nc_error *err) {
    memset(r, 0, sizeof *r);
    r->cfg = *cfg;
    r->ops = nc_model_find(cfg->mode, cfg->model_kind); /* nc_train_check found it */
    nc_tokenizer bpe = {0};
    if (cfg->tokenizer[0] && nc_engine_tokenizer(e, cfg->tokenizer, &bpe, err)) return -1;
    const nc_corpus *c = nc_engine_corpus(e, cfg->data, cfg->style, cfg->tokenizer[0] ? &bpe : NULL, sink, err);
    nc_tokenizer_free(&bpe);
    if (!c) return -1;
    if (r->cfg.device == NC_DEVICE_AUTO) r->cfg.device = r->ops->auto_device;
    if (cfg->mode == NC_MODE_TENSOR && !(r->backend = nc_engine_backend(e, r->cfg.device, err))) return -1;
    if (r->ops->resolve(&r->cfg.model, r->backend, &r->cfg.eval_windows, err)) return -1;
    if (nc_batch_check(&r->cfg, err)) return -1;
    if (nc_corpus_fits(c, r->cfg.model.seq_len, err)) return -1;
    int V = nc_tokenizer_size(&c->tok);
    if (nc_tokenizer_copy(&r->tok, &c->tok) || (c->style_only && !(r->style_only = malloc((size_t)V))))
        return nc_fail(err, NC_E_INTERNAL, "out of memory for a vocabulary of %d", V);
    if (c->style_only) memcpy(r->style_only, c->style_only, (size_t)V);
    nc_rng_seed(&r->data_rng, (uint64_t)r->cfg.model.seed, NC_STREAM_DATA);
    return nc_engine_build(e, r, true, NC_E_BAD_REQUEST, "the requested model", err);
}

/* Continues from a checkpoint: its model config wins; the run's knobs come
 * from the request (its corpus is checked by prepare, as a fresh model's). */
static int resumed_model(nc_engine *e, const nc_train_cfg *cfg, nc_resident *r, nc_error *err) {
    char path[PATH_MAX];
    memset(r, 0, sizeof *r); /* the caller clears it on failure, even before the read */
    if (nc_engine_checkpoint_path(e, cfg->resume, NC_ACCESS_READ, path, err) || nc_checkpoint_read(e, path, r, err))
        return -1;
    if (cfg->steps < nc_resident_step(r))
        return nc_fail(err, NC_E_BAD_REQUEST, "args.steps (%lld) is below the checkpoint's step (%lld)",
                       (long long)cfg->steps, (long long)nc_resident_step(r));
    r->cfg.steps = cfg->steps;
    r->cfg.log_every = cfg->log_every;
    r->cfg.eval_every = cfg->eval_every;
    if (cfg->eval_windows) r->cfg.eval_windows = cfg->eval_windows;
    r->cfg.checkpoint_every = cfg->checkpoint_every;
    memcpy(r->cfg.checkpoint, cfg->checkpoint, sizeof r->cfg.checkpoint);
    memcpy(r->cfg.run_id, cfg->run_id, sizeof r->cfg.run_id);
    return 0;
}

/* ---- logging ------------------------------------------------------------------ */

static double tokens_per_step(const nc_resident *r) { return (double)r->cfg.model.batch_size * (double)r->cfg.model.seq_len; }

static void log_progress(trainer *t, int64_t step) {
    double now = nc_now(), dt = now - t->t_log;
    double tps = dt > 0 ? tokens_per_step(t->r) * (double)(step - t->log_step) / dt : 0;
    json_t *d = json_pack("{s:s, s:I, s:I, s:f, s:f, s:f, s:f}", "type", "train", "step", (json_int_t)step, "steps",
                          (json_int_t)t->r->cfg.steps, "loss", t->last_loss, "tok_per_s", tps, "elapsed_s",
                          now - t->t_cmd, "step_ms", t->times.last_s * 1e3);
    nc_run_metric(&t->run, d);
    nc_emit(t->sink, "progress", d);
    t->t_log = now;
    t->log_step = step;
}

static int run_eval(trainer *t, int64_t step, nc_error *err) {
    nc_eval_result ev;
    if (nc_eval_guarded(t->e, t->r, t->r->cfg.eval_windows, t->sink, &ev, err)) return -1;
    json_t *d = nc_eval_json(&ev, step);
    nc_run_metric(&t->run, d);
    if (!t->first_eval.windows) t->first_eval = ev;
    t->last_eval = ev;
    nc_emit(t->sink, "eval", d);
    return 0;
}

/* Save, load back into the model, then evaluate what was loaded. */
static int persist_then_eval(trainer *t, int64_t step, nc_error *err) {
    nc_resident *r = t->r;
    if (nc_resident_save(t->e, r, r->checkpoint, err) || nc_checkpoint_reload(t->e, r, err)) return -1;
    nc_emit(t->sink, "checkpoint", json_pack("{s:s, s:I}", "path", r->checkpoint, "step", (json_int_t)step));
    return run_eval(t, step, err);
}

/* ---- the loop ------------------------------------------------------------------ */

/* What comes after `done` steps besides logging. All but AFTER_NOTHING need
 * the model's state to be exactly that step's, nothing in flight. */
typedef enum after { AFTER_NOTHING, AFTER_END, AFTER_CHECKPOINT, AFTER_EVAL } after;

static after after_of(const nc_train_cfg *c, int64_t done) {
    if (done == c->steps) return AFTER_END;
    if (c->checkpoint_every && done % c->checkpoint_every == 0) return AFTER_CHECKPOINT;
    if (c->eval_every && done % c->eval_every == 0) return AFTER_EVAL;
    return AFTER_NOTHING;
}

static int after_step(trainer *t, int64_t done, nc_error *err) {
    const nc_train_cfg *c = &t->r->cfg;
    after next = after_of(c, done);
    if (done % c->log_every == 0 || next == AFTER_END) log_progress(t, done);
    if (next == AFTER_CHECKPOINT) return persist_then_eval(t, done, err);
    return next == AFTER_EVAL ? run_eval(t, done, err) : 0;
}

/* A step's loss is known: record it, then log, evaluate or checkpoint. */
static int finish_step(trainer *t, int64_t done, double loss, nc_error *err) {
    t->last_loss = loss;
    return after_step(t, done, err);
}

/* A model with loss_lag 1 returns step s's loss from train_step(s + 1); before
 * anything comes after a step (after_of), drain() collects it, so that nothing
 * is in flight. */
static int train_steps(trainer *t, nc_error *err) {
    nc_resident *r = t->r;
    const nc_model_ops *ops = r->ops;
    int B = (int)r->cfg.model.batch_size, T = (int)r->cfg.model.seq_len;
    bool lag = ops->loss_lag && ops->loss_lag(r->model), pending = false;
    for (int64_t step = nc_resident_step(r); step < r->cfg.steps; step++) {
        double loss;
        if (nc_step_boundary(t->sink)) {
            if (pending && (ops->drain(r->model, &loss, err) || finish_step(t, step, loss, err))) return -1;
            return nc_fail(err, NC_E_CANCELLED, "training cancelled after step %lld", (long long)step);
        }
        if (sample_batch(&t->corpus->train, B, T, &r->data_rng, t->x, t->y, err)) {
            nc_error late; /* the step in flight is collected first (a non-finite one restored), its error kept */
            if (pending && ops->drain(r->model, &loss, &late) == 0) finish_step(t, step, loss, &late);
            return -1;
        }
        nc_batch batch = {t->x, t->y, B, T};
        double t0 = nc_now();
        int rc = ops->train_step(r->model, &batch, step, r->cfg.steps, &loss, err);
        double dt = nc_now() - t0;
        if (step == t->start) { /* the working set now exists: the memory guard's baseline starts here */
            t->first_step_s = nc_now() - t->t_cmd;
            nc_guard_reset(&t->e->guard);
        }
        r->dirty = true;
        if (rc || (pending && finish_step(t, step, loss, err))) return -1;
        if ((pending = lag) && after_of(&r->cfg, step + 1) == AFTER_NOTHING) {
            nc_step_times_add(&t->times, dt);
            continue;
        }
        if (pending) {
            t0 = nc_now();
            pending = false;
            rc = ops->drain(r->model, &loss, err);
            dt += nc_now() - t0;
            if (rc) return -1;
        }
        nc_step_times_add(&t->times, dt);
        if (finish_step(t, step + 1, loss, err)) return -1;
    }
    return 0;
}

/* tok/s as the anchors define it: tokens of steps 11..N over their summed time
 * (all steps when there are 10 or fewer), and the median step's rate. */
static void throughput(const trainer *t, double *mean, double *median) {
    double sum, med;
    int64_t n;
    nc_step_times_summary(&t->times, &sum, &n, &med);
    *mean = sum > 0 ? tokens_per_step(t->r) * (double)n / sum : 0;
    *median = med > 0 ? tokens_per_step(t->r) / med : 0;
}

/* What computed the run: backend, device, using_gpu, and gpu_unavailable (why)
 * when device "auto" found no GPU. */
static json_t *backend_info(const trainer *t) {
    const nc_resident *r = t->r;
    json_t *b = json_pack("{s:s, s:s, s:b}", "backend", r->backend ? r->backend->name : "cpu", "device",
                          r->backend ? r->backend->device : "cpu (scalar autograd)", "using_gpu",
                          r->backend && r->backend->gpu);
    if (r->cfg.device == NC_DEVICE_AUTO && r->backend && !r->backend->gpu && t->e->gpu_absent_why[0])
        json_object_set_new(b, "gpu_unavailable", json_string(t->e->gpu_absent_why));
    return b;
}

/* What the run achieved, typed (ablate's rows read it). */
static void outcome_of(const trainer *t, nc_train_outcome *o) {
    double median;
    *o = (nc_train_outcome){.start_step = t->start, .steps = nc_resident_step(t->r), .train_s = t->times.total_s,
                            .final_train_loss = NAN, .baseline_val_loss = NAN, .final_val_loss = NAN, .final_bpb = NAN};
    snprintf(o->run_id, sizeof o->run_id, "%s", t->run.id);
    throughput(t, &o->tok_per_s, &median);
    if (o->steps > o->start_step) o->final_train_loss = t->last_loss;
    if (t->first_eval.windows) o->baseline_val_loss = t->first_eval.val_loss;
    if (t->last_eval.windows) o->final_val_loss = t->last_eval.val_loss, o->final_bpb = t->last_eval.bpb;
}

static json_t *summary(const trainer *t, const nc_train_outcome *o) {
    nc_resident *r = t->r;
    double mean, median;
    throughput(t, &mean, &median);
    double flops = r->ops->flops_per_token ? r->ops->flops_per_token(r->model) : 0;
    double peak = r->backend ? nc_peak_flops(r->backend) : 0;
    json_t *s = json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:f, s:I}", "run_id", o->run_id, "run_dir", t->run.dir,
                          "steps", (json_int_t)o->steps, "start_step", (json_int_t)o->start_step, "tok_per_s", mean,
                          "tok_per_s_median", median, "time_to_first_step_s", t->first_step_s,
                          "flops_per_token", flops, "peak_host_rss_bytes", (json_int_t)nc_peak_rss_bytes());
    json_object_set_new(s, "train_s", json_real(o->train_s));
    json_object_set_new(s, "mfu", peak > 0 ? json_real(flops * mean / peak) : json_null());
    json_object_set_new(s, "peak_device_bytes", r->backend && r->backend->gpu ? json_integer(nc_backend_device_bytes(r->backend, true)) : json_null());
    json_object_set_new(s, "final_train_loss", nc_json_measured(o->final_train_loss));
    json_object_set_new(s, "final_val_loss", nc_json_measured(o->final_val_loss));
    json_object_set_new(s, "final_bpb", nc_json_measured(o->final_bpb));
    json_object_set_new(s, "baseline_val_loss", nc_json_measured(o->baseline_val_loss));
    json_object_set_new(s, "checkpoint", o->steps > o->start_step ? json_string(r->checkpoint) : json_null());
    json_object_update_new(s, backend_info(t));
    return s;
}

static json_t *run_info(const trainer *t) {
    const nc_resident *r = t->r;
    const nc_corpus *c = t->corpus;
    json_t *info = json_pack("{s:o, s:s, s:s, s:I, s:s, s:I, s:i, s:I, s:I, s:I, s:s}",
                             "config", nc_args_to_json(nc_command_find("train"), &r->cfg), "mode", nc_mode_names[r->ops->mode],
                             "model_kind", nc_kind_names[r->ops->kind], "seed", (json_int_t)r->cfg.model.seed, "style",
                             nc_style_names[r->cfg.style],
                             "params", (json_int_t)r->ops->num_params(r->model),
                             "vocab_size", nc_tokenizer_size(&r->tok), "train_tokens", (json_int_t)c->train.n, "val_tokens",
                             (json_int_t)c->val.n, "start_step", (json_int_t)t->start, "data", c->path);
    json_object_update_new(info, backend_info(t));
    if (r->ops->describe) json_object_set_new(info, "model", r->ops->describe(r->model));
    return info;
}

static int open_run(trainer *t, const nc_train_cfg *req, nc_error *err) {
    nc_resident *r = t->r;
    char stamp[32], stem[192];
    nc_utc_stamp(stamp, sizeof stamp);
    snprintf(stem, sizeof stem, "%s_%s-%s_style-%s_seed-%lld", stamp, nc_mode_names[r->ops->mode],
             nc_kind_names[r->ops->kind], nc_style_names[r->cfg.style],
             (long long)r->cfg.model.seed);
    json_t *info = run_info(t);
    if (req->resume[0]) json_object_set_new(info, "resumed_from", json_string(r->checkpoint));
    if (nc_run_open(&t->run, &t->e->folders, t->e->results_dir, r->cfg.run_id, stem, info, err)) return -1;
    snprintf(r->run_id, sizeof r->run_id, "%s", t->run.id);
    return 0;
}

/* The run's checkpoint: the one asked for, or <run-id>.ckpt in the checkpoint folder. */
static int checkpoint_path(nc_engine *e, const nc_train_cfg *req, const nc_run *run, char out[PATH_MAX], nc_error *err) {
    char name[160];
    snprintf(name, sizeof name, "%s.ckpt", run->id);
    return nc_engine_checkpoint_path(e, req->checkpoint[0] ? req->checkpoint : name, NC_ACCESS_WRITE, out, err);
}

/* The checkpoint path a request names, or else the checkpoint folder, is writable. */
static int check_checkpoint_path(nc_engine *e, const nc_train_cfg *req, nc_error *err) {
    char probe[PATH_MAX];
    if (req->checkpoint[0]) return nc_engine_checkpoint_path(e, req->checkpoint, NC_ACCESS_WRITE, probe, err);
    return nc_resolve_folder(&e->folders, e->checkpoint_dir, "the checkpoint folder", probe, err);
}

/* Everything the request needs, checked and built, before the resident model
 * changes: a refused request leaves it as it was. */
static int prepare(trainer *t, const nc_train_cfg *req, nc_resident *fresh, nc_error *err) {
    nc_engine *e = t->e;
    if (check_checkpoint_path(e, req, err)) return -1;
    int rc = req->resume[0] ? resumed_model(e, req, fresh, err) : fresh_model(e, req, fresh, t->sink, err);
    t->r = fresh;
    t->start = t->log_step = nc_resident_step(fresh);
    if (rc == 0) t->corpus = nc_resident_corpus(e, fresh, t->sink, err);
    if (rc || !t->corpus) return -1;
    size_t bt = (size_t)fresh->cfg.model.batch_size * (size_t)fresh->cfg.model.seq_len;
    t->x = malloc(bt * sizeof *t->x); /* (B, T) */
    t->y = malloc(bt * sizeof *t->y); /* (B, T) */
    if (!t->x || !t->y || nc_step_times_init(&t->times))
        return nc_fail(err, NC_E_INTERNAL, "out of memory for a batch of %zu tokens", bt);
    return open_run(t, req, err) || checkpoint_path(e, req, &t->run, fresh->checkpoint, err) ? -1 : 0;
}

int nc_batch_check(const nc_train_cfg *cfg, nc_error *err) {
    if (cfg->model.batch_size * cfg->model.seq_len <= NC_MAX_BATCH_TOKENS) return 0;
    return nc_fail(err, NC_E_BAD_REQUEST, "args.batch_size x args.seq_len (%lld tokens) exceeds %d per step",
                   (long long)(cfg->model.batch_size * cfg->model.seq_len), NC_MAX_BATCH_TOKENS);
}

int nc_train_check(const void *args, nc_error *err) {
    const nc_train_cfg *req = args;
    if (nc_run_id_check(req->run_id, err)) return -1;
    if (req->eval_windows == 1)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.eval_windows must be 0 (the model's default) or at least 2");
    if (req->resume[0]) return 0; /* the model's config comes from the checkpoint */
    const nc_model_ops *ops = nc_model_find(req->mode, req->model_kind);
    if (!ops)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.model_kind '%s' cannot be trained in args.mode '%s'",
                       nc_kind_names[req->model_kind], nc_mode_names[req->mode]);
    nc_train_cfg resolved = *req; /* as a cpu would resolve it: the device is not known yet */
    return ops->resolve(&resolved.model, NULL, &resolved.eval_windows, err) || nc_batch_check(&resolved, err) ? -1 : 0;
}

static void trainer_free(trainer *t) {
    free(t->x);
    free(t->y);
    nc_step_times_free(&t->times);
}

json_t *nc_train(nc_engine *e, const nc_train_cfg *req, const nc_sink *sink, nc_train_outcome *out, nc_error *err) {
    trainer t = {.e = e, .sink = sink, .t_cmd = nc_now(), .last_loss = NAN};
    nc_resident fresh = {0};
    if (prepare(&t, req, &fresh, err)) {
        if (t.run.dir[0]) nc_run_close(&t.run, "refused", json_pack("{s:{s:s, s:s}}", "error", "code",
                                       nc_code_name(err->code), "message", err->message), NULL);
        else json_decref(t.run.info);
        nc_resident_clear(&fresh);
        trainer_free(&t);
        return NULL;
    }
    nc_resident_set(&e->res, &fresh);
    nc_guard_reset(&e->guard); /* a new model: a new baseline */
    t.r = &e->res;
    t.t_log = nc_now();
    int rc = t.start == 0 ? run_eval(&t, 0, err) : 0;
    if (rc == 0) rc = train_steps(&t, err);
    int64_t done = nc_resident_step(t.r);
    if (rc == 0 && done > t.start) rc = persist_then_eval(&t, done, err);
    nc_train_outcome o;
    outcome_of(&t, &o);
    if (out) *out = o;
    json_t *res = summary(&t, &o);
    if (rc) json_object_set_new(res, "error", json_pack("{s:s, s:s}", "code", nc_code_name(err->code), "message", err->message));
    nc_run_close(&t.run, rc == 0 ? "completed" : err->code == NC_E_CANCELLED ? "cancelled" : "failed",
                 json_incref(res), NULL);
    trainer_free(&t);
    if (rc == 0) return res;
    json_decref(res);
    return NULL;
}

json_t *nc_cmd_train(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    return nc_train(e, args, sink, NULL, err);
}
