/* test_gpt_common.h: helpers the GPT test suites share: a model on the cpu
 * backend from train arguments, random token ids, and tensor comparisons. */
#ifndef NC_TEST_GPT_COMMON_H
#define NC_TEST_GPT_COMMON_H

#include "models/gpt/testing.h"
#include "backend/backend.h"
#include "testutil.h"
#include "twin_check.h"

#include <math.h>
#include <stdlib.h>

typedef struct gpt_fixture {
    nc_backend *be;
    int vocab_size;
    nc_train_cfg cfg;
    nc_model *m;
} gpt_fixture;

/* A fresh GPT for the train arguments in json on backend be (freed with the
 * fixture), vocabulary 0..V-1. */
static inline void gpt_fixture_open_on(gpt_fixture *f, const char *train_args_json, int V, nc_backend *be) {
    nc_error err = {0};
    json_error_t je;
    json_t *args = json_loads(train_args_json, 0, &je);
    ck_assert_msg(args, "bad train args: %s", je.text);
    ck_assert_int_eq(nc_args_parse(nc_command_find("train"), args, &f->cfg, &err), 0);
    json_decref(args);
    f->be = be;
    ck_assert_msg(nc_tensor_gpt_ops.resolve(&f->cfg.model, f->be, &f->cfg.eval_windows, &err) == 0, "%s", err.message);
    f->vocab_size = V;
    f->m = nc_tensor_gpt_ops.create(&f->cfg.model, V, f->be, &err);
    ck_assert_msg(f->m, "%s", err.message);
}

/* The same on the cpu backend. */
static inline void gpt_fixture_open(gpt_fixture *f, const char *train_args_json, int V) {
    nc_error err = {0};
    nc_backend *be = nc_backend_cpu_new(0, &err);
    ck_assert_msg(be, "%s", err.message);
    gpt_fixture_open_on(f, train_args_json, V, be);
}

static inline void gpt_fixture_close(gpt_fixture *f) {
    nc_tensor_gpt_ops.destroy(f->m);
    nc_backend_free(f->be);
}

/* n token ids in [0, V) from the fixed stream of `seed`. */
static inline void gpt_random_ids(int32_t *ids, int n, uint32_t seed, int V) {
    for (int i = 0; i < n; i++) ids[i] = (int32_t)(tu_lcg(&seed) % (uint32_t)V);
}

#endif
