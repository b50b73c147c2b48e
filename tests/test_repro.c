/* test_repro.c: reproducibility (NFR-001) through real nanochatd processes.
 * For the scalar bigram, the scalar mini-GPT and the tensor bigram, the same
 * seed and inputs give byte-identical metrics.jsonl losses and samples twice
 * in one daemon, again in a restarted daemon, and from the first daemon's
 * checkpoint loaded into the second. The training batch stream draws the
 * windows the benchmark's upstream side draws (scripts/upstream_runner.py's
 * DataStream; tests/python/test_benchmark_harness.py holds it to the same
 * numbers). */
#define _GNU_SOURCE
#include "trainutil.h"
#include "core/rng.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const models[][2] = {{"scalar", "bigram"}, {"scalar", "mini-gpt"}, {"tensor", "bigram"}};
#define N_MODELS (sizeof models / sizeof models[0])

typedef struct outcome {
    char *losses, *sample, *checkpoint;
} outcome;

static char *sample(nc_client *c) {
    json_t *res = tu_call(c, "sample", json_pack("{s:s, s:i, s:i}", "prompt", "the ", "max_new_tokens", 80, "seed", 9));
    char *text = strdup(json_string_value(json_object_get(res, "text")));
    json_decref(res);
    return text;
}

static outcome train_and_sample(const tu_daemon *d, nc_client *c, int model, const char *run_id) {
    char corpus[PATH_MAX];
    tu_corpus(d, corpus, sizeof corpus);
    json_t *args = tu_train_args(models[model][0], models[model][1], 12, corpus);
    json_object_set_new(args, "seed", json_integer(5));
    json_object_set_new(args, "run_id", json_string(run_id));
    json_object_set_new(args, "eval_every", json_integer(4));
    json_t *res = tu_call(c, "train", args);
    outcome o = {tu_run_losses(d->results, run_id), sample(c), strdup(json_string_value(json_object_get(res, "checkpoint")))};
    json_decref(res);
    return o;
}

static void outcome_free(outcome *o) {
    free(o->losses);
    free(o->sample);
    free(o->checkpoint);
}

/* Copies a checkpoint into the daemon's checkpoint folder; returns its name. */
static const char *adopt(const tu_daemon *d, const char *path) {
    size_t len;
    char *bytes = tu_read_file(path, &len), dst[PATH_MAX + 32];
    snprintf(dst, sizeof dst, "%s/adopted.ckpt", d->checkpoints);
    FILE *f = fopen(dst, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(bytes, 1, len, f), len);
    fclose(f);
    free(bytes);
    return "adopted.ckpt";
}

START_TEST(same_seed_same_losses_and_samples_across_runs_and_restarts) {
    tu_daemon a, b;
    nc_client c;
    outcome first[N_MODELS];
    tu_daemon_start(&a, NULL);
    tu_connect(&c, &a);
    for (size_t m = 0; m < N_MODELS; m++) {
        char id[32];
        snprintf(id, sizeof id, "first-%zu", m);
        first[m] = train_and_sample(&a, &c, (int)m, id);
        snprintf(id, sizeof id, "second-%zu", m);
        outcome again = train_and_sample(&a, &c, (int)m, id);
        ck_assert_str_eq(again.losses, first[m].losses);
        ck_assert_str_eq(again.sample, first[m].sample);
        outcome_free(&again);
    }
    nc_client_close(&c);
    ck_assert_int_eq(tu_daemon_stop(&a), 0);
    tu_daemon_start(&b, NULL);
    tu_connect(&c, &b);
    for (size_t m = 0; m < N_MODELS; m++) {
        outcome restarted = train_and_sample(&b, &c, (int)m, "restarted");
        ck_assert_str_eq(restarted.losses, first[m].losses);
        ck_assert_str_eq(restarted.sample, first[m].sample);
        outcome_free(&restarted);
        json_decref(tu_call(&c, "checkpoint", json_pack("{s:s, s:s}", "action", "load", "path", adopt(&b, first[m].checkpoint))));
        char *text = sample(&c);
        ck_assert_str_eq(text, first[m].sample);
        free(text);
        outcome_free(&first[m]);
    }
    nc_client_close(&c);
    tu_daemon_cleanup(&b);
    tu_daemon_cleanup(&a);
}
END_TEST

START_TEST(the_batch_stream_draws_the_harness_windows) {
    nc_rng r;
    nc_rng_seed(&r, 1337, NC_STREAM_DATA);
    const uint64_t want[] = {609995, 246683, 772966, 897073, 444103};
    for (int i = 0; i < 5; i++) ck_assert_uint_eq(nc_rng_below(&r, 1000003), want[i]);
}
END_TEST

int main(void) {
    Suite *s = suite_create("repro");
    tu_tcase(s, "repro", same_seed_same_losses_and_samples_across_runs_and_restarts,
             the_batch_stream_draws_the_harness_windows);
    return tu_run(s);
}
