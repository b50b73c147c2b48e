/* ablate.c: the four architectural variants (tied/untied lm head x input
 * RMSNorm off/on) trained one after another with the same seed and budget,
 * written as results/ablate_style-<style>_seed-<seed>_steps-<N>_<stamp>.csv
 * and .jsonl (same stem). */
#define _GNU_SOURCE
#include "engine/store/artifacts.h"
#include "engine/engine.h"

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

static json_t *row(const nc_train_cfg *t, const char *name, const nc_train_outcome *o, const nc_engine *e,
                   const variant_watch *w) {
    return json_pack("{s:s, s:b, s:b, s:s, s:I, s:I, s:I, s:o, s:o, s:o, s:o, s:f, s:f, s:i, s:I, s:s}", "variant", name,
                     "tie_lm_head", t->model.tie_lm_head, "input_rmsnorm", t->model.input_rmsnorm, "style",
                     nc_style_names[t->style], "params", (json_int_t)e->res.ops->num_params(e->res.model), "steps",
                     (json_int_t)o->steps, "seed", (json_int_t)t->model.seed, "final_train_loss",
                     nc_json_measured(o->final_train_loss), "val_loss", nc_json_measured(o->final_val_loss),
                     "baseline_val_loss", nc_json_measured(o->baseline_val_loss), "mean_last_n_loss",
                     nc_json_measured(recent_mean(w)), "steps_per_s", o->train_s > 0 ? (double)o->steps / o->train_s : 0.0,
                     "tok_per_s", o->tok_per_s, "vocab_size", nc_tokenizer_size(&e->res.tok), "train_tokens",
                     (json_int_t)e->corpus.train.n, "run_id", o->run_id);
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

/* The train request of variant v: every ablate argument is the train
 * argument of the same name; the rest are train's defaults, but for the
 * variant's own. */
static int variant_cfg(const nc_ablate_cfg *cfg, int v, const char *stem, nc_train_cfg *t, nc_error *err) {
    json_t *args = nc_args_to_json(nc_command_find("ablate"), cfg);
    json_object_set_new(args, "device", json_string(nc_device_names[NC_DEVICE_CPU]));
    json_object_set_new(args, "tie_lm_head", json_boolean(v >= 2));
    json_object_set_new(args, "input_rmsnorm", json_boolean(v % 2));
    json_object_set_new(args, "log_every", json_integer(1));
    json_object_set_new(args, "run_id", json_sprintf("%s_%s", stem, names[v]));
    int rc = nc_args_parse(nc_command_find("train"), args, t, err);
    json_decref(args);
    return rc;
}

int nc_ablate_check(const void *args, nc_error *err) {
    nc_train_cfg t;
    return variant_cfg(args, 0, "ablate", &t, err) || nc_train_check(&t, err) ? -1 : 0;
}

static int run_variant(nc_engine *e, const nc_ablate_cfg *cfg, int v, const char *stem, json_t *rows,
                       const nc_sink *sink, nc_error *err) {
    nc_train_cfg t;
    if (variant_cfg(cfg, v, stem, &t, err)) return -1;
    variant_watch w = {.outer = sink, .variant = names[v]};
    nc_sink tagged = {on_event, &w, sink ? sink->cancel : NULL, sink ? sink->beats : NULL};
    nc_train_outcome o;
    json_t *res = nc_train(e, &t, &tagged, &o, err);
    if (!res) return -1;
    json_decref(res);
    json_array_append_new(rows, row(&t, names[v], &o, e, &w));
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
