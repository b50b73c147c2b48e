/* test_scalar_minigpt.c: `train --mode scalar --model-kind mini-gpt` through
 * a real nanochatd: it learns on repetitive text with either optimizer, its
 * windows never cross BLOCK_SIZE (8), the tied head has fewer parameters,
 * --steps 0 reports the baseline, and sampling accepts at most
 * BLOCK_SIZE - 1 prompt tokens (configurable per request, never above). */
#include "trainutil.h"
#include "models/minigpt/minigpt.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static json_t *minigpt(int steps, const char *optimizer) {
    json_t *args = tu_train_args("scalar", "mini-gpt", steps, tu_fx.corpus);
    json_object_set_new(args, "optimizer", json_string(optimizer));
    json_object_set_new(args, "batch_size", json_integer(4));
    return args;
}

static int64_t model_params(nc_client *c) {
    json_t *st = tu_call(c, "status", NULL);
    int64_t n = json_integer_value(json_object_get(json_object_get(st, "model"), "params"));
    json_decref(st);
    return n;
}

START_TEST(learns_with_both_optimizers) {
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    json_t *res = tu_call(&c, "train", minigpt(40, "sgd"));
    tu_assert_learned(res);
    json_decref(res);
    res = tu_call(&c, "train", minigpt(40, "adamw"));
    tu_assert_learned(res);
    json_decref(res);
    json_t *st = tu_call(&c, "status", NULL);
    json_t *model = json_object_get(st, "model");
    ck_assert_int_eq(json_integer_value(json_object_get(model, "block_size")), NC_MINIGPT_BLOCK_SIZE);
    ck_assert_int_eq(json_integer_value(json_object_get(model, "n_embd")), 16);
    ck_assert_int_eq(json_integer_value(json_object_get(model, "n_head")), 4);
    json_decref(st);
    nc_client_close(&c);
}
END_TEST

START_TEST(windows_never_cross_the_block) {
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    json_t *args = minigpt(1, "adamw");
    json_object_set_new(args, "seq_len", json_integer(NC_MINIGPT_BLOCK_SIZE + 1));
    ck_assert_ptr_nonnull(strstr(tu_call_error(&c, "train", args, NC_E_BAD_REQUEST), "BLOCK_SIZE"));
    json_t *res = tu_call(&c, "train", minigpt(1, "adamw"));
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/run.json", json_string_value(json_object_get(res, "run_dir")));
    json_t *run = json_load_file(path, 0, NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(run, "config"), "seq_len")), NC_MINIGPT_BLOCK_SIZE);
    json_decref(run);
    json_decref(res);
    nc_client_close(&c);
}
END_TEST

START_TEST(tied_head_has_fewer_parameters_and_steps_zero_is_the_baseline) {
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    json_t *res = tu_call(&c, "train", minigpt(0, "adamw"));
    ck_assert_double_eq(tu_num(res, "final_val_loss"), tu_num(res, "baseline_val_loss"));
    ck_assert(json_is_null(json_object_get(res, "checkpoint")));
    json_decref(res);
    int64_t untied = model_params(&c);
    json_t *args = minigpt(0, "adamw");
    json_object_set_new(args, "tie_lm_head", json_true());
    json_decref(tu_call(&c, "train", args));
    ck_assert_int_lt(model_params(&c), untied);
    nc_client_close(&c);
}
END_TEST

static json_t *prompt(const char *text, int max_prompt_tokens) {
    return json_pack("{s:s, s:i, s:i}", "prompt", text, "max_new_tokens", 12, "max_prompt_tokens", max_prompt_tokens);
}

START_TEST(prompts_longer_than_the_context_are_refused) {
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    json_decref(tu_call(&c, "train", minigpt(2, "adamw")));
    const char *msg = tu_call_error(&c, "sample", prompt("the cat ", 0), NC_E_PROMPT_TOO_LONG);
    ck_assert_ptr_nonnull(strstr(msg, "8 tokens"));
    json_t *res = tu_call(&c, "sample", prompt("the cat", 0));
    ck_assert_int_eq(strlen(json_string_value(json_object_get(res, "text"))), 7 + 12);
    json_decref(res);
    tu_call_error(&c, "sample", prompt("the", NC_MINIGPT_BLOCK_SIZE), NC_E_BAD_REQUEST);
    tu_call_error(&c, "sample", prompt("the ", 3), NC_E_PROMPT_TOO_LONG);
    json_decref(tu_call(&c, "sample", prompt("the", 3)));
    nc_client_close(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("scalar_minigpt");
    TCase *tc = tu_tcase(s, "train", learns_with_both_optimizers, windows_never_cross_the_block,
                         tied_head_has_fewer_parameters_and_steps_zero_is_the_baseline,
                         prompts_longer_than_the_context_are_refused);
    tcase_add_unchecked_fixture(tc, tu_fixture_start, tu_fixture_stop);
    return tu_run(s);
}
