/* trainutil.h: helpers of the training-path tests (bigram, mini-gpt,
 * sampling, ablation, checkpoints, reproducibility). */
#ifndef NC_TRAINUTIL_H
#define NC_TRAINUTIL_H

#include "engine/nc.h"
#include "testutil.h"

/* A small, repetitive corpus (lowercase letters, space, ";.\n"; no capitals,
 * no digits), written to <d->results>/corpus.txt where the daemon may read it. */
#define TU_CORPUS_TEXT "the cat sat on the mat; the dog ate the log.\n"
void tu_corpus(const tu_daemon *d, char *path, size_t n);
/* Writes `text` repeated `repeat` times to path. */
void tu_write_text(const char *path, const char *text, int repeat);

/* A nanochatd with the corpus: a Check fixture (unchecked, for one daemon
 * per test case; or checked), or called inside a test. */
typedef struct tu_fixture {
    tu_daemon d;
    char corpus[PATH_MAX];
} tu_fixture;
extern tu_fixture tu_fx;
void tu_fixture_start(void);
void tu_fixture_stop(void);

/* An engine without a daemon, in a fresh folder holding the corpus. */
typedef struct tu_engine {
    nc_engine *e;
    char dir[PATH_MAX];
    char corpus[PATH_MAX + 16];
    char results[PATH_MAX + 16];
    char checkpoints[PATH_MAX + 16];
} tu_engine;

/* guard_window, guard_max_growth 0: the engine's defaults (the growth ratio
 * tu_guard_max_growth() under ASan). */
void tu_engine_open(tu_engine *t, const char *tag, int guard_window, double guard_max_growth);
void tu_engine_close(tu_engine *t);
/* Runs one engine command on JSON arguments (stolen), parsed as the daemon
 * parses a request's: the result, or NULL with *err set. */
json_t *tu_engine_try(nc_engine *e, const char *cmd, json_t *args, const nc_sink *sink, nc_error *err);
/* tu_engine_try that fails the test on error. */
json_t *tu_engine_call(tu_engine *t, const char *cmd, json_t *args);

/* Train arguments: mode, model_kind, steps, data, small evals (8 windows),
 * every step logged. */
json_t *tu_train_args(const char *mode, const char *kind, int steps, const char *data);

/* A train result whose final validation loss is finite and under its
 * step-0 (baseline) validation loss; returns the final loss. */
double tu_assert_learned(json_t *train_result);
/* A field of a JSON object as a number (fails the test when absent). */
double tu_num(json_t *o, const char *key);

/* The losses of a run's metrics.jsonl, one "train|eval STEP LOSS" line per
 * metric (malloc'd), for byte-for-byte comparison. */
char *tu_run_losses(const char *results, const char *run_id);

#endif
