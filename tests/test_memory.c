/* test_memory.c: the memory estimates that admit a request hold what the
 * models really allocate. For each model, after its first training step and
 * an eval (its working set complete), what it holds (its backend's count and
 * its own host arrays, arenas as grown) is at most its footprint, and the
 * footprint is not far above it (a loose estimate would refuse what fits).
 * And the check against the limits names the estimate and the limit. */
#include "trainutil.h"
#include "engine/engine.h"
#include "backend/backend.h"

#include <math.h>
#include <string.h>

/* What the resident model holds now: its host arrays and its backend's bytes. */
static double held(const nc_resident *r, bool peak) {
    double bytes = r->ops->memory_bytes ? (double)r->ops->memory_bytes(r->model) : 0;
    return bytes + (r->backend ? (double)nc_backend_device_bytes(r->backend, peak) : 0);
}

/* Trains `args` for two steps and evaluates; checks held <= footprint <= slack x held. */
static void check_estimate(json_t *args, double slack) {
    tu_engine t;
    tu_engine_open(&t, "memory", 0, 0);
    json_object_set_new(args, "data", json_string(t.corpus));
    json_decref(tu_engine_call(&t, "train", args));
    json_decref(tu_engine_call(&t, "eval", json_pack("{s:i}", "windows", 8)));
    nc_resident *r = &t.e->res;
    nc_footprint fp;
    r->ops->footprint(&r->cfg.model, nc_tokenizer_size(&r->tok), r->backend, &fp);
    double real = held(r, true), estimate = fp.host + fp.device;
    ck_assert_msg(real <= estimate, "%s %s holds %.0f bytes, over its estimate of %.0f", nc_mode_names[r->ops->mode],
                  nc_kind_names[r->ops->kind],
                  real, estimate);
    ck_assert_msg(estimate <= slack * real, "%s %s: estimate %.0f for %.0f bytes held (over %.1fx)",
                  nc_mode_names[r->ops->mode], nc_kind_names[r->ops->kind], estimate, real, slack);
    tu_engine_close(&t);
}

START_TEST(the_gpt_holds_what_its_footprint_says) {
    check_estimate(json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:i}", "device", "cpu", "depth", 2, "head_dim", 32,
                             "seq_len", 64, "batch_size", 4, "steps", 2, "window_pattern", "SL", "eval_windows", 8),
                   1.1);
}
END_TEST

/* The scalar models' graphs double as they grow: within 2x of what they hold, and the formula's slack. */
START_TEST(the_scalar_models_hold_what_their_footprints_say) {
    json_t *a = tu_train_args("scalar", "mini-gpt", 2, "");
    check_estimate(a, 3.0);
    check_estimate(tu_train_args("scalar", "bigram", 2, ""), 3.0);
}
END_TEST

START_TEST(the_tensor_bigram_holds_what_its_footprint_says) { check_estimate(tu_train_args("tensor", "bigram", 2, ""), 1.1); }
END_TEST

START_TEST(an_estimate_over_the_limit_names_both) {
    nc_limits l = {.host_bytes = 1 << 30};
    nc_footprint fp = {.host = 3.0 * (1 << 30)};
    nc_error err;
    ck_assert_int_eq(nc_footprint_check(&l, 0, &fp, NC_E_BAD_REQUEST, "the model", &err), -1);
    ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(err.message, "3.00 GiB of host memory; the limit is 1.00 GiB"));
    fp = (nc_footprint){.device = 2.0 * (1 << 30)};
    ck_assert_int_eq(nc_footprint_check(&l, 1 << 30, &fp, NC_E_CHECKPOINT_CORRUPT, "the file", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "--max-device-memory"));
    fp = (nc_footprint){.host = INFINITY};
    ck_assert_int_eq(nc_footprint_check(&l, 0, &fp, NC_E_BAD_REQUEST, "the model", &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "more host memory than any machine has"));
    fp = (nc_footprint){.host = 0.5 * (1 << 30), .host_transient = 0.4 * (1 << 30)};
    ck_assert_int_eq(nc_footprint_check(&l, 0, &fp, NC_E_BAD_REQUEST, "the model", &err), 0);
}
END_TEST

int main(void) {
    Suite *s = suite_create("memory");
    tu_tcase(s, "estimates", the_gpt_holds_what_its_footprint_says, the_scalar_models_hold_what_their_footprints_say,
             the_tensor_bigram_holds_what_its_footprint_says, an_estimate_over_the_limit_names_both);
    return tu_run(s);
}
