/* trainutil.c: helpers of the training-path tests. */
#define _GNU_SOURCE
#include "trainutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

void tu_write_text(const char *path, const char *text, int repeat) {
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s", path);
    for (int i = 0; i < repeat; i++) fputs(text, f);
    fclose(f);
}

void tu_corpus(const tu_daemon *d, char *path, size_t n) {
    mkdir(d->results, 0755);
    snprintf(path, n, "%s/corpus.txt", d->results);
    tu_write_text(path, TU_CORPUS_TEXT, 60);
}

tu_fixture tu_fx;

void tu_fixture_start(void) {
    tu_daemon_start(&tu_fx.d, NULL);
    tu_corpus(&tu_fx.d, tu_fx.corpus, sizeof tu_fx.corpus);
}

void tu_fixture_stop(void) { tu_daemon_cleanup(&tu_fx.d); }

void tu_engine_open(tu_engine *t, const char *tag, int guard_window, double guard_max_growth) {
    memset(t, 0, sizeof *t);
    tu_tmpdir(t->dir, sizeof t->dir, tag);
    snprintf(t->corpus, sizeof t->corpus, "%s/corpus.txt", t->dir);
    snprintf(t->results, sizeof t->results, "%s/results", t->dir);
    snprintf(t->checkpoints, sizeof t->checkpoints, "%s/checkpoints", t->dir);
    tu_write_text(t->corpus, TU_CORPUS_TEXT, 60);
    nc_engine_opts o = {.data_path = t->corpus, .results_dir = t->results, .checkpoint_dir = t->checkpoints,
                        .threads = 1, .guard_window = guard_window,
                        .guard_max_growth = guard_max_growth > 0 ? guard_max_growth : tu_guard_max_growth()};
    nc_error err;
    t->e = nc_engine_new(&o, &err);
    ck_assert_msg(t->e != NULL, "%s", err.message);
}

void tu_engine_close(tu_engine *t) {
    nc_engine_free(t->e);
    tu_rmtree(t->dir);
}

json_t *tu_engine_try(nc_engine *e, const char *cmd, json_t *args, const nc_sink *sink, nc_error *err) {
    const nc_command_spec *spec = nc_command_find(cmd);
    ck_assert_msg(spec, "no command %s", cmd);
    void *cfg = malloc(spec->cfg_size);
    json_t *res = nc_args_parse(spec, args, cfg, err) ? NULL : nc_engine_run(e, spec, cfg, sink, err);
    free(cfg);
    json_decref(args);
    return res;
}

json_t *tu_engine_call(tu_engine *t, const char *cmd, json_t *args) {
    nc_error err;
    json_t *res = tu_engine_try(t->e, cmd, args, NULL, &err);
    ck_assert_msg(res != NULL, "%s: %s: %s", cmd, nc_code_name(err.code), err.message);
    return res;
}

json_t *tu_train_args(const char *mode, const char *kind, int steps, const char *data) {
    return json_pack("{s:s, s:s, s:i, s:s, s:i, s:i}", "mode", mode, "model_kind", kind, "steps", steps, "data", data,
                     "eval_windows", 8, "log_every", 1);
}

double tu_num(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    ck_assert_msg(json_is_number(v), "%s is not a number", key);
    return json_number_value(v);
}

double tu_assert_learned(json_t *res) {
    double base = tu_num(res, "baseline_val_loss"), final = tu_num(res, "final_val_loss");
    ck_assert_msg(isfinite(final) && final < base, "val loss %g is not under the baseline %g", final, base);
    ck_assert(isfinite(tu_num(res, "final_train_loss")));
    return final;
}

char *tu_run_losses(const char *results, const char *run_id) {
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", results, run_id);
    char *text = tu_read_file(path, NULL), *out = NULL, *save = NULL;
    ck_assert_msg(text != NULL, "missing %s", path);
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);
    for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_t *m = json_loads(line, 0, NULL);
        const char *type = json_string_value(json_object_get(m, "type"));
        ck_assert_ptr_nonnull(type);
        json_t *loss = json_object_get(m, strcmp(type, "eval") == 0 ? "val_loss" : "loss");
        fprintf(f, "%s %lld %.17g\n", type, (long long)json_integer_value(json_object_get(m, "step")),
                json_number_value(loss));
        json_decref(m);
    }
    fclose(f);
    free(text);
    return out;
}
