/* test_gpt_parity.c: the C GPT and MuonAdamW equal upstream nanochat's, on
 * fixtures dumped from upstream with PyTorch (scripts/gen_reference_fixtures.py):
 * logits and loss within 1e-5, every gradient within 1e-4, and the parameters
 * after 1 and 3 optimizer steps within 1e-4 and their updates within 1e-3
 * (relative norms); parameter and FLOP counts, base_train's schedules and its
 * batch scaling as upstream computes them. */
#include "gpt_parity.h"

#include "optim/schedule.h"

#include <stdio.h>
#include <string.h>

/* Every tensor of ours against the fixture's prefix + name (relative norms
 * within tol), or with a base prefix their updates (parity_rows); returns
 * the worst error. */
static double compare_all(const parity *p, const nc_tensor_list *ours, const char *prefix, const char *base,
                          double tol) {
    double worst = 0;
    for (int i = 0; i < ours->count; i++) {
        char name[256];
        int64_t n = nc_tensor_numel(&ours->items[i]);
        float *v = parity_rows(p, &ours->items[i], NULL, prefix, base, name); /* (2, n): ours, upstream's */
        double e = rel_err(v, v + n, n);
        ck_assert_msg(e <= tol, "%s: relative error %.3g > %.1g", name, e, tol);
        if (e > worst) worst = e;
        free(v);
    }
    return worst;
}

static void check_forward(const char *file) {
    parity p;
    parity_open(&p, file, NULL);
    const nc_tensor *want = ref(&p, "logits");
    float *logits = malloc(sizeof(float) * (size_t)nc_tensor_numel(want));
    nc_error err = {0};
    ck_assert_msg(nc_gpt_logits(p.f.m, &p.batch, logits, &err) == 0, "%s", err.message);
    double e = rel_err(logits, want->data, nc_tensor_numel(want));
    ck_assert_msg(e <= 1e-5, "%s logits: relative error %.3g", file, e);
    double loss;
    ck_assert_int_eq(nc_gpt_forward_backward(p.f.m, &p.batch, &loss, &err), 0);
    double want_loss = ref(&p, "loss")->data[0];
    ck_assert_msg(fabs(loss - want_loss) <= 1e-5 * fabs(want_loss), "%s loss %.7f, upstream %.7f", file, loss, want_loss);
    nc_tensor_list grads = {0};
    ck_assert_int_eq(nc_gpt_export_grads(p.f.m, &grads, &err), 0);
    double worst = compare_all(&p, &grads, "grad.", NULL, 1e-4);
    printf("%s: logits %.2g, loss %.2g, worst gradient %.2g\n", file, e, fabs(loss - want_loss) / want_loss, worst);
    nc_tensors_free(&grads);
    free(logits);
    parity_close(&p);
}

/* Steps as the fixture took them: the loss before each, then the update. */
static void check_steps(const char *file) {
    parity p;
    parity_open(&p, file, NULL);
    json_t *losses = json_loads(meta_str(&p, "losses"), 0, NULL);
    int64_t steps = p.f.cfg.steps;
    nc_error err = {0};
    for (int s = 0; s < 3; s++) {
        double loss, want = json_real_value(json_array_get(losses, (size_t)s));
        ck_assert_int_eq(nc_gpt_forward_backward(p.f.m, &p.batch, &loss, &err), 0);
        ck_assert_msg(fabs(loss - want) <= 1e-5 * fabs(want), "%s step %d loss %.7f, upstream %.7f", file, s, loss, want);
        nc_gpt_optimizer_step(p.f.m, s, steps);
        if (s != 0 && s != 2) continue;
        nc_tensor_list params = {0};
        ck_assert_int_eq(nc_tensor_gpt_ops.export_state(p.f.m, false, &params, &err), 0);
        const char *prefix = s == 0 ? "step1." : "step3.";
        double worst = compare_all(&p, &params, prefix, NULL, 1e-4);
        double update = compare_all(&p, &params, prefix, "param.", 1e-3);
        printf("%s: after %d steps, worst parameter %.2g, worst update %.2g\n", file, s + 1, worst, update);
        nc_tensors_free(&params);
    }
    json_decref(losses);
    parity_close(&p);
}

START_TEST(forward_backward_d3_sliding_window) { check_forward("gpt_d3_sl.safetensors"); }
END_TEST

START_TEST(forward_backward_d4) { check_forward("gpt_d4_l.safetensors"); }
END_TEST

START_TEST(optimizer_steps_d3_sliding_window) { check_steps("gpt_d3_sl.safetensors"); }
END_TEST

START_TEST(optimizer_steps_d4) { check_steps("gpt_d4_l.safetensors"); }
END_TEST

/* num_params and estimate_flops as upstream's for the fixture's model. */
START_TEST(counts) {
    parity p;
    parity_open(&p, "gpt_d3_sl.safetensors", NULL);
    ck_assert_int_eq(nc_tensor_gpt_ops.num_params(p.f.m), atoll(meta_str(&p, "num_params")));
    ck_assert_double_eq(nc_tensor_gpt_ops.flops_per_token(p.f.m), atof(meta_str(&p, "flops_per_token")));
    parity_close(&p);
}
END_TEST

/* base_train's lr multiplier, Muon momentum and weight decay at telling steps. */
START_TEST(schedules) {
    parity p;
    parity_open(&p, "gpt_d4_l.safetensors", NULL);
    json_t *s = json_loads(meta_str(&p, "schedule"), 0, NULL), *samples = json_object_get(s, "samples"), *row;
    int64_t steps = json_integer_value(json_object_get(s, "steps"));
    int64_t warmup = json_integer_value(json_object_get(s, "warmup_steps"));
    double ratio = json_real_value(json_object_get(s, "warmdown_ratio"));
    double final = json_real_value(json_object_get(s, "final_lr_frac")), wd = json_real_value(json_object_get(s, "weight_decay"));
    size_t i;
    json_array_foreach(samples, i, row) {
        int64_t it = json_integer_value(json_array_get(row, 0));
        ck_assert_double_eq_tol(nc_lr_multiplier(it, steps, warmup, ratio, final), json_number_value(json_array_get(row, 1)), 1e-12);
        ck_assert_double_eq_tol(nc_muon_momentum(it, steps, ratio), json_number_value(json_array_get(row, 2)), 1e-12);
        ck_assert_double_eq_tol(nc_muon_weight_decay(it, steps, wd), json_number_value(json_array_get(row, 3)), 1e-12);
    }
    json_decref(s);
    parity_close(&p);
}
END_TEST

/* base_train's sqrt(B T / 2^19) lr factor and its weight decay scaling. */
START_TEST(batch_scaling) {
    parity p;
    parity_open(&p, "gpt_d4_l.safetensors", NULL);
    json_t *all = json_loads(meta_str(&p, "scaling"), 0, NULL), *c;
    size_t i;
    json_array_foreach(all, i, c) {
        nc_train_cfg cfg = p.f.cfg;
        cfg.model.depth = json_integer_value(json_object_get(c, "depth"));
        cfg.model.aspect_ratio = json_integer_value(json_object_get(c, "aspect_ratio"));
        cfg.model.head_dim = json_integer_value(json_object_get(c, "head_dim"));
        cfg.model.batch_size = json_integer_value(json_object_get(c, "batch_size"));
        cfg.model.seq_len = json_integer_value(json_object_get(c, "seq_len"));
        cfg.model.weight_decay = json_real_value(json_object_get(c, "weight_decay"));
        cfg.model.batch_scaling = NC_SCALING_BASE_TRAIN;
        nc_gpt_config g;
        nc_error err = {0};
        ck_assert_int_eq(nc_gpt_config_init(&g, &cfg.model, (int)json_integer_value(json_object_get(c, "vocab")), &err), 0);
        double lr, wd;
        nc_gpt_batch_scaling(&g, &cfg.model, &lr, &wd);
        ck_assert_double_eq_tol(lr, json_real_value(json_object_get(c, "batch_lr_scale")), 1e-12);
        ck_assert_double_eq_tol(wd, json_real_value(json_object_get(c, "weight_decay_scaled")), 1e-9);
    }
    json_decref(all);
    parity_close(&p);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gpt_parity");
    tu_tcase(s, "upstream", forward_backward_d3_sliding_window, forward_backward_d4, optimizer_steps_d3_sliding_window,
             optimizer_steps_d4, counts, schedules, batch_scaling);
    return tu_run(s);
}
