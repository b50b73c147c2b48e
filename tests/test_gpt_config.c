/* test_gpt_config.c: the GPT's defaults, the configurations it refuses, and
 * upstream's init_weights drawn from the project's init stream. */
#include "test_gpt_common.h"

#include "models/gpt/internal.h"

#include <string.h>

#define V 65

static int resolve(const char *json, nc_train_cfg *cfg, nc_error *err) {
    json_t *args = json_loads(json, 0, NULL);
    ck_assert_int_eq(nc_args_parse(nc_command_find("train"), args, cfg, err), 0);
    json_decref(args);
    nc_backend *be = nc_backend_cpu_new(1, err);
    int rc = nc_tensor_gpt_ops.resolve(&cfg->model, be, &cfg->eval_windows, err);
    nc_backend_free(be);
    return rc;
}

START_TEST(defaults) {
    nc_train_cfg cfg;
    nc_error err = {0};
    ck_assert_int_eq(resolve("{}", &cfg, &err), 0);
    ck_assert_int_eq(cfg.model.batch_size, 8);
    ck_assert_int_eq(cfg.model.seq_len, 256);
    ck_assert_double_eq(cfg.model.weight_decay, 0.28);
    ck_assert_int_eq(cfg.eval_windows, 160);
    nc_gpt_config g;
    ck_assert_int_eq(nc_gpt_config_init(&g, &cfg.model, V, &err), 0);
    ck_assert_int_eq(g.n_embd, 384); /* depth 6 x 64, a multiple of head_dim 128 */
    ck_assert_int_eq(g.n_head, 3);
    ck_assert_int_eq(g.padded_vocab, 128);
    cfg.model.depth = 4;
    cfg.model.head_dim = 48; /* 256 rounds up to 288 */
    snprintf(cfg.model.window_pattern, sizeof cfg.model.window_pattern, "ssl");
    cfg.model.seq_len = 2048;
    ck_assert_int_eq(nc_gpt_config_init(&g, &cfg.model, V, &err), 0);
    ck_assert_int_eq(g.n_embd, 288);
    ck_assert_int_eq(g.window[0], 512); /* a quarter of 2048 rounded up to 128 (upstream comments 768) */
    ck_assert_int_eq(g.window[2], 2048);
    ck_assert_int_eq(g.window[3], 2048); /* the last layer is always long */
}
END_TEST

START_TEST(refusals) {
    static const struct { const char *args, *field; } bad[] = {
        {"{\"depth\": 1, \"aspect_ratio\": 16, \"head_dim\": 16}", "aspect_ratio"}, /* n_embd 16 < 24 */
        {"{\"window_pattern\": \"SX\"}", "window_pattern"},
        {"{\"window_pattern\": \"\"}", "window_pattern"},
        {"{\"head_dim\": 33}", "head_dim"},
        {"{\"tie_lm_head\": true}", "tie_lm_head"},
        {"{\"seq_len\": 1}", "seq_len"},
        {"{\"depth\": 17, \"head_dim\": 2}", "head_dim"}, /* n_embd 1088: 544 heads, 512 the most */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        nc_train_cfg cfg;
        nc_error err = {0};
        ck_assert_int_eq(resolve(bad[i].args, &cfg, &err), -1);
        ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
        ck_assert_msg(strstr(err.message, bad[i].field), "'%s' does not name %s", err.message, bad[i].field);
    }
}
END_TEST

static double stddev(const nc_tensor *t) {
    double s = 0;
    int64_t n = nc_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) s += (double)t->data[i] * t->data[i];
    return sqrt(s / (double)n);
}

/* One check for the whole tensor (Check marks every assertion it passes). */
static void in_range(const nc_tensor *t, float lo, float hi) {
    int64_t bad = -1;
    for (int64_t i = 0; i < nc_tensor_numel(t) && bad < 0; i++)
        if (!(t->data[i] >= lo && t->data[i] <= hi)) bad = i;
    ck_assert_msg(bad < 0, "%s[%lld] = %g", t->name, (long long)bad, bad < 0 ? 0.0 : t->data[bad]);
}

START_TEST(init_weights) {
    gpt_fixture f;
    gpt_fixture_open(&f, "{\"depth\": 4, \"aspect_ratio\": 64, \"head_dim\": 64, \"seq_len\": 64, \"device\": \"cpu\"}", V);
    nc_tensor_list w = {0};
    nc_error err = {0};
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(f.m, false, &w, &err), 0);
    float s = sqrtf(3.0f) / 16.0f; /* n_embd 256 */
    ck_assert_double_eq_tol(stddev(nc_tensors_get(&w, "transformer.wte.weight")), 0.8, 0.02);
    ck_assert_double_eq_tol(stddev(nc_tensors_get(&w, "lm_head.weight")), 0.001, 2e-5);
    const nc_tensor *q = nc_tensors_get(&w, "transformer.h.2.attn.c_q.weight");
    in_range(q, -s, s);
    ck_assert_double_eq_tol(stddev(q), s / sqrtf(3.0f), 0.002);
    in_range(nc_tensors_get(&w, "transformer.h.0.mlp.c_fc.weight"), -0.4f * s, 0.4f * s);
    in_range(nc_tensors_get(&w, "value_embeds.3.weight"), -s, s);
    in_range(nc_tensors_get(&w, "transformer.h.1.attn.ve_gate.weight"), 0, 0.02f);
    in_range(nc_tensors_get(&w, "smear_gate.weight"), 0, 0.02f);
    in_range(nc_tensors_get(&w, "transformer.h.3.attn.c_proj.weight"), 0, 0);
    in_range(nc_tensors_get(&w, "transformer.h.3.mlp.c_proj.weight"), 0, 0);
    ck_assert_float_eq(nc_tensors_get(&w, "smear_lambda")->data[0], 0.0f);
    ck_assert_float_eq(nc_tensors_get(&w, "backout_lambda")->data[0], 0.2f);
    const float *r = nc_tensors_get(&w, "resid_lambdas")->data, *x0 = nc_tensors_get(&w, "x0_lambdas")->data;
    ck_assert_float_eq(r[0], 1.15f);
    ck_assert_float_eq(r[3], 1.05f);
    ck_assert_float_eq(x0[0], 0.20f);
    ck_assert_float_eq(x0[3], (float)0.05);
    ck_assert_ptr_null(nc_tensors_get(&w, "value_embeds.2.weight")); /* layers 1 and 3 only */
    int64_t total = 0;
    for (int i = 0; i < w.count; i++) total += nc_tensor_numel(&w.items[i]);
    ck_assert_int_eq(nc_tensor_gpt_ops.num_params(f.m), total);
    json_t *d = nc_tensor_gpt_ops.describe(f.m);
    ck_assert_int_eq(json_integer_value(json_object_get(d, "n_embd")), 256);
    json_decref(d);
    nc_tensors_free(&w);
    gpt_fixture_close(&f);
}
END_TEST

/* lm_head, a gemm operand, starts 64 floats in even where the (H, 12) gates
 * end off that grid (d6: 3 heads x 12 x 3 gated layers = 108 floats); the
 * gap is not counted as parameters. */
START_TEST(layout_alignment) {
    nc_train_cfg cfg;
    nc_error err = {0};
    ck_assert_int_eq(resolve("{}", &cfg, &err), 0);
    nc_gpt_config g;
    ck_assert_int_eq(nc_gpt_config_init(&g, &cfg.model, V, &err), 0);
    gpt_layout lay;
    ck_assert_int_eq(gpt_layout_init(&lay, &g, &err), 0);
    int64_t gates_end = lay.gates + (int64_t)lay.n_ve * g.n_head * NC_VE_CHANNELS;
    ck_assert_int_ne(gates_end % 8, 0); /* the case that needs the gap */
    ck_assert_int_eq(lay.lm_head % 64, 0);
    int64_t params = 0;
    for (int i = 0; i < lay.count; i++) {
        const gpt_tensor *t = &lay.tensors[i];
        params += t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1];
    }
    ck_assert_int_eq(lay.params, params);
    ck_assert_int_lt(lay.total - lay.params, 64);
    gpt_layout_free(&lay);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gpt_config");
    tu_tcase(s, "config", defaults, refusals, init_weights, layout_alignment);
    return tu_run(s);
}
