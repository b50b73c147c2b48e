/* test_ablate.c: `ablate` through a real nanochatd (FR-005). It streams
 * progress events tagged with each of the four variants and writes
 * results/ablate_style-<style>_seed-<seed>_steps-<N>_<stamp>.csv and .jsonl
 * with every column; untied variants have more parameters than tied ones,
 * every loss is finite, and no variant ends above its step-0 loss (neither
 * the validation loss nor the training loss). */
#define _GNU_SOURCE
#include "trainutil.h"

#include <libgen.h>
#include <math.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const variants[4] = {"untied", "untied+rmsnorm", "tied", "tied+rmsnorm"};
static const char *const columns = "variant,tie_lm_head,input_rmsnorm,style,params,steps,seed,final_train_loss,"
                                   "val_loss,baseline_val_loss,mean_last_n_loss,steps_per_s,tok_per_s,vocab_size,"
                                   "train_tokens,run_id\n";

static tu_daemon d;
static char dir[PATH_MAX];

static void setup(void) {
    char corpus[PATH_MAX + 16];
    tu_tmpdir(dir, sizeof dir, "ablate");
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", dir);
    tu_write_text(corpus, TU_CORPUS_TEXT, 60);
    const char *const extra[] = {"--data", corpus, NULL};
    tu_daemon_start(&d, extra);
}

static void teardown(void) {
    tu_daemon_cleanup(&d);
    tu_rmtree(dir);
}

/* The first training loss each variant reported. */
typedef struct first_losses {
    double loss[4];
    int seen[4];
} first_losses;

static void on_event(void *ctx, const char *event, json_t *data) {
    first_losses *f = ctx;
    if (strcmp(event, "progress") != 0) return;
    const char *v = json_string_value(json_object_get(data, "variant"));
    ck_assert_ptr_nonnull(v);
    for (int i = 0; i < 4; i++)
        if (strcmp(v, variants[i]) == 0 && f->seen[i]++ == 0) f->loss[i] = tu_num(data, "loss");
}

static void check_names(json_t *res, const char *style, int steps) {
    char *csv = strdup(json_string_value(json_object_get(res, "csv")));
    char *jsonl = strdup(json_string_value(json_object_get(res, "jsonl")));
    char pattern[256];
    snprintf(pattern, sizeof pattern, "^ablate_style-%s_seed-7_steps-%d_[0-9]{8}T[0-9]{6}Z\\.csv$", style, steps);
    regex_t re;
    ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED | REG_NOSUB), 0);
    ck_assert_msg(regexec(&re, basename(csv), 0, NULL, 0) == 0, "unexpected name %s", csv);
    regfree(&re);
    ck_assert_int_eq(strncmp(csv, jsonl, strlen(csv) - 4), 0);
    ck_assert_str_eq(strrchr(jsonl, '.'), ".jsonl");
    ck_assert_str_eq(dirname(csv), d.results);
    free(csv);
    free(jsonl);
}

static void check_files(json_t *res) {
    char *csv = tu_read_file(json_string_value(json_object_get(res, "csv")), NULL);
    char *jsonl = tu_read_file(json_string_value(json_object_get(res, "jsonl")), NULL);
    ck_assert_ptr_nonnull(csv);
    ck_assert_ptr_nonnull(jsonl);
    ck_assert_int_eq(strncmp(csv, columns, strlen(columns)), 0);
    int csv_lines = 0, jsonl_lines = 0;
    for (char *p = csv; *p; p++) csv_lines += *p == '\n';
    for (char *p = jsonl; *p; p++) jsonl_lines += *p == '\n';
    ck_assert_int_eq(csv_lines, 1 + 4);
    ck_assert_int_eq(jsonl_lines, 4);
    free(csv);
    free(jsonl);
}

static void check_row(json_t *row, int i, const char *style, int steps, const first_losses *f) {
    ck_assert_str_eq(json_string_value(json_object_get(row, "variant")), variants[i]);
    ck_assert(json_boolean_value(json_object_get(row, "tie_lm_head")) == (i >= 2));
    ck_assert(json_boolean_value(json_object_get(row, "input_rmsnorm")) == (i % 2 == 1));
    ck_assert_str_eq(json_string_value(json_object_get(row, "style")), style);
    ck_assert_int_eq(tu_num(row, "steps"), steps);
    ck_assert_int_eq(tu_num(row, "seed"), 7);
    static const char *const losses[] = {"final_train_loss", "val_loss", "baseline_val_loss", "mean_last_n_loss"};
    for (int k = 0; k < 4; k++) ck_assert_msg(isfinite(tu_num(row, losses[k])), "%s: %s", variants[i], losses[k]);
    ck_assert_msg(tu_num(row, "val_loss") < tu_num(row, "baseline_val_loss"), "%s diverged", variants[i]);
    ck_assert_msg(tu_num(row, "final_train_loss") < f->loss[i], "%s: training loss rose", variants[i]);
    ck_assert(tu_num(row, "steps_per_s") > 0 && tu_num(row, "tok_per_s") > 0);
    ck_assert(tu_num(row, "vocab_size") > 0 && tu_num(row, "train_tokens") > 0);
    ck_assert_int_eq(f->seen[i], steps);
}

static void ablate(const char *mode, const char *kind, const char *style, int steps) {
    nc_client c;
    tu_connect(&c, &d);
    first_losses f = {0};
    nc_error err;
    json_t *args = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i}", "mode", mode, "model_kind", kind, "style", style, "steps",
                             steps, "seed", 7, "eval_windows", 8);
    json_t *res = nc_client_call(&c, "ablate", args, on_event, &f, &err);
    ck_assert_msg(res != NULL, "%s", err.message);
    check_names(res, style, steps);
    check_files(res);
    json_t *rows = json_object_get(res, "variants");
    ck_assert_int_eq(json_array_size(rows), 4);
    for (int i = 0; i < 4; i++) check_row(json_array_get(rows, (size_t)i), i, style, steps, &f);
    for (int i = 0; i < 2; i++)
        ck_assert_int_gt(tu_num(json_array_get(rows, (size_t)i), "params"), tu_num(json_array_get(rows, (size_t)i + 2), "params"));
    json_decref(res);
    nc_client_close(&c);
}

START_TEST(scalar_bigram_futuristic) { ablate("scalar", "bigram", "futuristic", 20); }
END_TEST

START_TEST(tensor_bigram_classic) { ablate("tensor", "bigram", "classic", 20); }
END_TEST

START_TEST(scalar_minigpt_classic) { ablate("scalar", "mini-gpt", "classic", 15); }
END_TEST

int main(void) {
    Suite *s = suite_create("ablate");
    TCase *tc = tu_tcase(s, "ablate", scalar_bigram_futuristic, tensor_bigram_classic, scalar_minigpt_classic);
    tcase_add_unchecked_fixture(tc, setup, teardown);
    return tu_run(s);
}
