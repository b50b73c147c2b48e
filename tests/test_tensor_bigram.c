/* test_tensor_bigram.c: `train --mode tensor --model-kind bigram`. On the
 * same batch its loss and gradients equal the scalar bigram's (to 1e-6
 * relative: the loss to its value, each gradient to the largest gradient
 * component), for every variant and batch size; both start from the same
 * weights and stay together through SGD and AdamW updates; through nanochatd
 * it learns, and its result and run.json carry backend "cpu", a device and
 * using_gpu false; on device auto it computes on the cpu without the GPU
 * being opened or probed. */
#include "trainutil.h"
#include "engine/engine.h"
#include "engine/store/files.h"
#include "backend/backend.h"
#include "models/bigram/tensor.h"
#include "models/bigram/scalar.h"
#include "engine/store/corpus.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nc_corpus corpus;
static char dir[PATH_MAX];

static void load_corpus(void) {
    char path[PATH_MAX + 16];
    nc_error err;
    tu_tmpdir(dir, sizeof dir, "tbigram");
    snprintf(path, sizeof path, "%s/corpus.txt", dir);
    tu_write_text(path, "To be, or not to be: that is the question. 0123456789 {[(<>)]}\n", 20);
    char *text;
    size_t len;
    ck_assert_msg(nc_read_file(path, INT64_MAX, "corpus", &text, &len, &err) == 0, "%s", err.message);
    ck_assert_msg(nc_corpus_load(&corpus, text, len, path, NC_STYLE_CLASSIC, NULL, NULL, &err) == 0, "%s", err.message);
    free(text);
}

static void free_corpus(void) {
    nc_corpus_free(&corpus);
    tu_rmtree(dir);
}

typedef struct pair {
    nc_train_cfg cfg;
    nc_model *scalar, *tensor;
} pair;

static void pair_new(pair *p, int variant, nc_optimizer optimizer) {
    nc_error err;
    nc_args_parse(nc_command_find("train"), NULL, &p->cfg, &err);
    p->cfg.mode = NC_MODE_TENSOR;
    p->cfg.model_kind = NC_KIND_BIGRAM;
    p->cfg.model.optimizer = optimizer;
    p->cfg.model.tie_lm_head = variant & 1;
    p->cfg.model.input_rmsnorm = variant & 2;
    ck_assert_int_eq(nc_tensor_bigram_ops.resolve(&p->cfg.model, NULL, &p->cfg.eval_windows, &err), 0);
    p->scalar = nc_scalar_bigram_ops.create(&p->cfg.model, corpus.tok.chars.size, NULL, &err);
    p->tensor = nc_tensor_bigram_ops.create(&p->cfg.model, corpus.tok.chars.size, NULL, &err);
}

static void pair_free(pair *p) {
    nc_scalar_bigram_ops.destroy(p->scalar);
    nc_tensor_bigram_ops.destroy(p->tensor);
}

/* max |a - b| over max |a| (n values). */
static double rel_diff(const float *a, const float *b, int64_t n) {
    double diff = 0, scale = 0;
    for (int64_t i = 0; i < n; i++) {
        diff = fmax(diff, fabs((double)a[i] - b[i]));
        scale = fmax(scale, fabs((double)a[i]));
    }
    return scale > 0 ? diff / scale : diff;
}

/* The two models' weights (exported in the same order), compared. */
static double weight_diff(const pair *p) {
    nc_tensor_list a = {0}, b = {0};
    nc_error err;
    nc_scalar_bigram_ops.export_state(p->scalar, false, &a, &err);
    nc_tensor_bigram_ops.export_state(p->tensor, false, &b, &err);
    ck_assert_int_eq(a.count, b.count);
    double worst = 0;
    for (int i = 0; i < a.count; i++) {
        ck_assert_str_eq(a.items[i].name, b.items[i].name);
        worst = fmax(worst, rel_diff(a.items[i].data, b.items[i].data, nc_tensor_numel(&a.items[i])));
    }
    nc_tensors_free(&a);
    nc_tensors_free(&b);
    return worst;
}

static nc_batch batch_at(size_t start, int B) { return (nc_batch){corpus.train.ids + start, corpus.train.ids + start + 1, B, 1}; }

START_TEST(loss_and_gradients_equal_the_scalar_bigram) {
    static const int sizes[] = {1, 8, 64};
    for (int v = 0; v < 4; v++)
        for (int i = 0; i < 3; i++) {
            pair p;
            pair_new(&p, v, NC_OPTIMIZER_ADAMW);
            ck_assert_double_eq(weight_diff(&p), 0);
            nc_batch b = batch_at(37, sizes[i]);
            const float *gs, *gt;
            double ls = nc_scalar_bigram_grad(p.scalar, &b, &gs), lt = nc_tensor_bigram_grad(p.tensor, &b, &gt);
            ck_assert_msg(fabs(ls - lt) <= 1e-6 * ls, "variant %d, B %d: loss %.9g vs %.9g", v, sizes[i], ls, lt);
            double g = rel_diff(gs, gt, nc_scalar_bigram_ops.num_params(p.scalar));
            ck_assert_msg(g <= 1e-6, "variant %d, B %d: gradients differ by %.3g of the largest", v, sizes[i], g);
            pair_free(&p);
        }
}
END_TEST

START_TEST(updates_keep_the_two_together) {
    for (int v = 0; v < 4; v++)
        for (int o = NC_OPTIMIZER_SGD; o <= NC_OPTIMIZER_ADAMW; o++) {
            pair p;
            pair_new(&p, v, (nc_optimizer)o);
            nc_error err;
            for (int step = 0; step < 3; step++) {
                nc_batch b = batch_at(100 + 50 * (size_t)step, 4);
                double ls, lt;
                ck_assert_int_eq(nc_scalar_bigram_ops.train_step(p.scalar, &b, step, 3, &ls, &err), 0);
                ck_assert_int_eq(nc_tensor_bigram_ops.train_step(p.tensor, &b, step, 3, &lt, &err), 0);
                ck_assert_double_eq_tol(ls, lt, 1e-6 * ls);
            }
            double w = weight_diff(&p);
            ck_assert_msg(w <= 1e-6, "variant %d, %s: weights differ by %.3g of the largest", v, nc_optimizer_names[o], w);
            pair_free(&p);
        }
}
END_TEST

static void check_backend(json_t *o) {
    ck_assert_str_eq(json_string_value(json_object_get(o, "backend")), "cpu");
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(o, "device")), "cpu"));
    ck_assert(json_is_false(json_object_get(o, "using_gpu")));
}

START_TEST(trains_through_the_daemon_on_the_cpu_backend) {
    const char *data = tu_fx.corpus;
    tu_fixture_start();
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    json_t *res = tu_call(&c, "train", tu_train_args("tensor", "bigram", 30, data));
    tu_assert_learned(res);
    check_backend(res);
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/run.json", json_string_value(json_object_get(res, "run_dir")));
    json_t *run = json_load_file(path, 0, NULL);
    check_backend(run);
    ck_assert_str_eq(json_string_value(json_object_get(run, "mode")), "tensor");
    json_decref(run);
    json_decref(res);
    res = tu_call(&c, "train", tu_train_args("tensor", "bigram", 0, data));
    ck_assert_double_eq(tu_num(res, "final_val_loss"), tu_num(res, "baseline_val_loss"));
    json_decref(res);
    json_t *args = tu_train_args("tensor", "bigram", 1, data);
    json_object_set_new(args, "device", json_string("cuda"));
    tu_call_error(&c, "train", args, NC_E_DEVICE_UNAVAILABLE);
    /* a model that would use a GPU on device auto (the GPT) says why it did not */
    args = tu_train_args("tensor", "gpt", 1, data);
    json_object_update_new(args, json_pack("{s:i, s:i, s:i, s:i, s:i}", "depth", 1, "aspect_ratio", 32, "head_dim", 16,
                                           "seq_len", 8, "batch_size", 2));
    res = tu_call(&c, "train", args);
    check_backend(res);
    const char *why = json_string_value(json_object_get(res, "gpu_unavailable"));
    ck_assert_msg(why && strstr(why, "device cuda: "), "gpu_unavailable: %s", why ? why : "(absent)");
    json_decref(res);
    nc_client_close(&c);
    tu_fixture_stop();
}
END_TEST

START_TEST(auto_runs_it_on_the_cpu_without_opening_a_gpu) {
    tu_engine t;
    tu_engine_open(&t, "tbigram_auto", 0, 0);
    json_t *res = tu_engine_call(&t, "train", tu_train_args("tensor", "bigram", 2, t.corpus));
    check_backend(res);
    ck_assert_ptr_null(t.e->backends[NC_BACKEND_CUDA]);
    ck_assert_msg(!t.e->gpu_absent_why[0], "the GPU was probed: %s", t.e->gpu_absent_why);
    json_decref(res);
    tu_engine_close(&t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tensor_bigram");
    TCase *tc = tu_tcase(s, "tensor_bigram", loss_and_gradients_equal_the_scalar_bigram, updates_keep_the_two_together,
                         trains_through_the_daemon_on_the_cpu_backend, auto_runs_it_on_the_cpu_without_opening_a_gpu);
    tcase_add_unchecked_fixture(tc, load_corpus, free_corpus);
    return tu_run(s);
}
