/* test_scalar_bigram.c: `train --mode scalar --model-kind bigram` through a
 * real nanochatd: it learns on repetitive text with minibatches and either
 * optimizer, every tie/RMSNorm variant stays finite, and --steps 0 reports
 * the baseline loss without training. */
#include "trainutil.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static json_t *bigram(int steps) { return tu_train_args("scalar", "bigram", steps, tu_fx.corpus); }

START_TEST(learns_with_minibatches_and_both_optimizers) {
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    static const char *const optimizers[] = {"adamw", "sgd"};
    for (int i = 0; i < 2; i++) {
        json_t *args = bigram(30);
        json_object_set_new(args, "batch_size", json_integer(4));
        json_object_set_new(args, "optimizer", json_string(optimizers[i]));
        json_t *res = tu_call(&c, "train", args);
        tu_assert_learned(res);
        char path[PATH_MAX + 256];
        snprintf(path, sizeof path, "%s/run.json", json_string_value(json_object_get(res, "run_dir")));
        json_t *run = json_load_file(path, 0, NULL);
        json_t *cfg = json_object_get(run, "config");
        ck_assert_int_eq(json_integer_value(json_object_get(cfg, "batch_size")), 4);
        ck_assert_str_eq(json_string_value(json_object_get(cfg, "optimizer")), optimizers[i]);
        json_decref(run);
        json_decref(res);
    }
    nc_client_close(&c);
}
END_TEST

START_TEST(every_variant_is_finite) {
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    for (int v = 0; v < 4; v++) {
        json_t *args = bigram(5);
        json_object_set_new(args, "tie_lm_head", json_boolean(v & 1));
        json_object_set_new(args, "input_rmsnorm", json_boolean(v & 2));
        json_t *res = tu_call(&c, "train", args);
        ck_assert(isfinite(tu_num(res, "final_train_loss")));
        ck_assert(isfinite(tu_num(res, "final_val_loss")));
        json_decref(res);
    }
    nc_client_close(&c);
}
END_TEST

START_TEST(steps_zero_reports_the_baseline_only) {
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    json_t *res = tu_call(&c, "train", bigram(0));
    double base = tu_num(res, "baseline_val_loss");
    ck_assert(isfinite(base) && base > 0);
    ck_assert_double_eq(tu_num(res, "final_val_loss"), base);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "steps")), 0);
    ck_assert(json_is_null(json_object_get(res, "final_train_loss")));
    ck_assert(json_is_null(json_object_get(res, "checkpoint")));
    json_decref(res);
    json_t *st = tu_call(&c, "status", NULL);
    json_t *model = json_object_get(st, "model");
    ck_assert_int_eq(json_integer_value(json_object_get(model, "step")), 0);
    ck_assert_str_eq(json_string_value(json_object_get(model, "kind")), "bigram");
    json_decref(st);
    nc_client_close(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("scalar_bigram");
    TCase *tc = tu_tcase(s, "train", learns_with_minibatches_and_both_optimizers, every_variant_is_finite,
                         steps_zero_reports_the_baseline_only);
    tcase_add_unchecked_fixture(tc, tu_fixture_start, tu_fixture_stop);
    return tu_run(s);
}
