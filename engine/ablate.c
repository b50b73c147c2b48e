/* ablate.c: the four architectural variants (tied/untied lm head x input
 * RMSNorm off/on) trained one after another with the same seed and budget,
 * written as results/ablate_style-<style>_seed-<seed>_steps-<N>_<stamp>.csv
 * and .jsonl (same stem). */
#define _GNU_SOURCE
#include "artifacts.h"
#include "engine.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LAST_N 20 /* the "mean loss of the last n steps" window */

typedef struct variant_watch {
    const nc_sink *outer;
    const char *variant;
    double last[LAST_N];
    int64_t seen;
} variant_watch;

/* Forwards each event tagged with its variant and keeps the recent losses. */
static void on_event(void *ctx, const char *event, json_t *data) {
    variant_watch *w = ctx;
    if (strcmp(event, "progress") == 0) w->last[w->seen++ % LAST_N] = json_number_value(json_object_get(data, "loss"));
    json_object_set_new(data, "variant", json_string(w->variant));
    nc_emit(w->outer, event, data);
}

static double recent_mean(const variant_watch *w) {
    int64_t n = w->seen < LAST_N ? w->seen : LAST_N;
    double s = 0;
    for (int64_t i = 0; i < n; i++) s += w->last[i];
    return n ? s / (double)n : NAN;
}

static json_t *row(const nc_ablate_cfg *cfg, const char *name, bool tie, bool norm, json_t *res, const nc_engine *e,
                   const variant_watch *w) {
    double train_s = json_number_value(json_object_get(res, "train_s"));
    int64_t steps = json_integer_value(json_object_get(res, "steps"));
    return json_pack("{s:s, s:b, s:b, s:s, s:I, s:I, s:I, s:O, s:O, s:O, s:f, s:f, s:O, s:i, s:I, s:O}", "variant", name,
                     "tie_lm_head", tie, "input_rmsnorm", norm, "style", nc_style_names[cfg->style], "params",
                     (json_int_t)e->res.ops->num_params(e->res.model), "steps", (json_int_t)steps, "seed",
                     (json_int_t)cfg->seed, "final_train_loss", json_object_get(res, "final_train_loss"), "val_loss",
                     json_object_get(res, "final_val_loss"), "baseline_val_loss", json_object_get(res, "baseline_val_loss"),
                     "mean_last_n_loss", recent_mean(w), "steps_per_s", train_s > 0 ? (double)steps / train_s : 0.0,
                     "tok_per_s", json_object_get(res, "tok_per_s"), "vocab_size", e->res.vocab.size, "train_tokens",
                     (json_int_t)e->corpus.n_train, "run_id", json_object_get(res, "run_id"));
}

static const char *const columns[] = {"variant", "tie_lm_head", "input_rmsnorm", "style", "params", "steps", "seed",
                                      "final_train_loss", "val_loss", "baseline_val_loss", "mean_last_n_loss",
                                      "steps_per_s", "tok_per_s", "vocab_size", "train_tokens", "run_id"};

static void csv_cell(FILE *f, json_t *v) {
    if (json_is_string(v)) fprintf(f, "%s", json_string_value(v));
    else if (json_is_integer(v)) fprintf(f, "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v)) fprintf(f, "%.6f", json_real_value(v));
    else if (json_is_boolean(v)) fprintf(f, "%s", json_is_true(v) ? "true" : "false");
}

static int write_tables(const char *stem, json_t *rows, nc_error *err) {
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s.csv", stem);
    FILE *csv = nc_create_file(path, err);
    snprintf(path, sizeof path, "%s.jsonl", stem);
    FILE *jl = csv ? nc_create_file(path, err) : NULL;
    int rc = csv && jl ? 0 : -1;
    size_t ncol = sizeof columns / sizeof columns[0], i;
    for (size_t c = 0; csv && c < ncol; c++) fprintf(csv, "%s%s", columns[c], c + 1 < ncol ? "," : "\n");
    json_t *r;
    json_array_foreach(rows, i, r) {
        for (size_t c = 0; csv && c < ncol; c++) {
            csv_cell(csv, json_object_get(r, columns[c]));
            fputs(c + 1 < ncol ? "," : "\n", csv);
        }
        if (jl) {
            json_dumpf(r, jl, JSON_COMPACT | JSON_REAL_PRECISION(10));
            fputc('\n', jl);
        }
    }
    if (csv && fclose(csv)) rc = nc_fail(err, NC_E_IO, "cannot write %s.csv", stem);
    if (jl && fclose(jl)) rc = nc_fail(err, NC_E_IO, "cannot write %s.jsonl", stem);
    return rc;
}

static const char *const names[4] = {"untied", "untied+rmsnorm", "tied", "tied+rmsnorm"};

/* The train request of variant v. */
static void variant_cfg(const nc_ablate_cfg *cfg, int v, const char *stem, nc_train_cfg *t) {
    nc_error ignored;
    nc_args_parse(nc_command_find("train"), NULL, t, &ignored);
    t->mode = cfg->mode;
    t->model_kind = cfg->model_kind;
    t->style = cfg->style;
    t->optimizer = cfg->optimizer;
    snprintf(t->run_id, sizeof t->run_id, "%s_%s", stem, names[v]);
    t->device = NC_DEVICE_CPU;
    t->steps = cfg->steps;
    t->seed = cfg->seed;
    t->batch_size = cfg->batch_size;
    t->lr = cfg->lr;
    t->eval_windows = cfg->eval_windows;
    t->tie_lm_head = v >= 2;
    t->input_rmsnorm = v % 2;
    t->log_every = 1;
}

int nc_ablate_check(const void *args, nc_error *err) {
    const nc_ablate_cfg *req = args;
    nc_train_cfg t;
    variant_cfg(req, 0, "ablate", &t);
    return nc_train_check(&t, err);
}

static int run_variant(nc_engine *e, const nc_ablate_cfg *cfg, int v, const char *stem, json_t *rows,
                       const nc_sink *sink, nc_error *err) {
    bool tie = v >= 2, norm = v % 2;
    nc_train_cfg t;
    variant_cfg(cfg, v, stem, &t);
    variant_watch w = {.outer = sink, .variant = names[v]};
    nc_sink tagged = {on_event, &w, sink ? sink->cancel : NULL, sink ? sink->beats : NULL};
    json_t *res = nc_cmd_train(e, &t, &tagged, err);
    if (!res) return -1;
    json_array_append_new(rows, row(cfg, names[v], tie, norm, res, e, &w));
    json_decref(res);
    return 0;
}

json_t *nc_cmd_ablate(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    const nc_ablate_cfg *cfg = args;
    char stamp[32], name[160], root[PATH_MAX], stem[PATH_MAX + 160];
    nc_utc_stamp(stamp, sizeof stamp);
    snprintf(name, sizeof name, "ablate_style-%s_seed-%lld_steps-%lld_%s", nc_style_names[cfg->style], (long long)cfg->seed,
             (long long)cfg->steps, stamp);
    if (nc_resolve_folder(&e->folders, e->results_dir, "the results folder", root, err)) return NULL;
    snprintf(stem, sizeof stem, "%s/%s", root, name);
    json_t *rows = json_array();
    int rc = nc_make_folder(root, false, err);
    for (int v = 0; v < 4 && rc == 0; v++) rc = run_variant(e, cfg, v, name, rows, sink, err);
    if (rc == 0) rc = write_tables(stem, rows, err);
    if (rc) {
        json_decref(rows);
        return NULL;
    }
    return json_pack("{s:s+, s:s+, s:o}", "csv", stem, ".csv", "jsonl", stem, ".jsonl", "variants", rows);
}
