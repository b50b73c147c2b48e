/* test_gpt_determinism.c: same seed, same batches: bit-identical losses and
 * weights, run to run and whatever the thread count; an exported state
 * resumes exactly; a non-finite loss leaves the weights at their last good
 * state. */
#include "test_gpt_common.h"

#include <string.h>

#define V 65
#define B 4
#define T 64
#define STEPS 4
#define ARGS "{\"depth\": 2, \"aspect_ratio\": 32, \"head_dim\": 16, \"seq_len\": 64, \"batch_size\": 4, " \
             "\"window_pattern\": \"SL\", \"seed\": 11, \"device\": \"cpu\"}"

/* STEPS training steps on a fixed batch with a backend of `threads` threads:
 * the losses, and the final weights (nc_tensors_free them). */
static void run(int threads, double *losses, nc_tensor_list *weights) {
    gpt_fixture f;
    gpt_fixture_open(&f, ARGS, V);
    nc_tensor_gpt_ops.destroy(f.m); /* again, on a backend of `threads` threads */
    nc_backend_free(f.be);
    nc_error err = {0};
    f.be = nc_backend_cpu_new(threads, &err);
    f.m = nc_tensor_gpt_ops.create(&f.cfg, &f.vocab, f.be, &err);
    ck_assert_msg(f.m, "%s", err.message);
    int32_t x[B * T], y[B * T];
    gpt_random_ids(x, B * T, 100, V);
    gpt_random_ids(y, B * T, 200, V);
    nc_batch b = {x, y, B, T}; /* one batch: the loss must fall as the model learns it */
    for (int s = 0; s < STEPS; s++) {
        ck_assert_int_eq(nc_tensor_gpt_ops.train_step(f.m, &b, s, STEPS, &losses[s], &err), 0);
    }
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(f.m, true, weights, &err), 0);
    gpt_fixture_close(&f);
}

static void assert_same(const nc_tensor_list *a, const nc_tensor_list *b) {
    ck_assert_int_eq(a->count, b->count);
    for (int i = 0; i < a->count; i++)
        ck_assert_msg(memcmp(a->items[i].data, b->items[i].data, sizeof(float) * (size_t)nc_tensor_numel(&a->items[i])) == 0,
                      "%s differs", a->items[i].name);
}

START_TEST(bit_identical_runs) {
    double l1[STEPS], l2[STEPS], l3[STEPS];
    nc_tensor_list w1 = {0}, w2 = {0}, w3 = {0};
    run(0, l1, &w1);
    run(0, l2, &w2);
    run(1, l3, &w3);
    ck_assert_msg(memcmp(l1, l2, sizeof l1) == 0, "losses differ between identical runs");
    ck_assert_msg(memcmp(l1, l3, sizeof l1) == 0, "losses differ between thread counts");
    ck_assert_msg(l1[STEPS - 1] < l1[0], "the loss did not fall: %f -> %f", l1[0], l1[STEPS - 1]);
    assert_same(&w1, &w2);
    assert_same(&w1, &w3);
    nc_tensors_free(&w1);
    nc_tensors_free(&w2);
    nc_tensors_free(&w3);
}
END_TEST

/* The exported state (weights, optimizer moments, step count) resumes a run
 * exactly: a fresh model that imports it continues with the same bits. */
START_TEST(resume_from_exported_state) {
    gpt_fixture a, b;
    gpt_fixture_open(&a, ARGS, V);
    gpt_fixture_open(&b, ARGS, V);
    int32_t x[B * T], y[B * T];
    gpt_random_ids(x, B * T, 5, V);
    gpt_random_ids(y, B * T, 6, V);
    nc_batch batch = {x, y, B, T};
    nc_error err = {0};
    double la, lb;
    for (int s = 0; s < 2; s++) ck_assert_int_eq(nc_tensor_gpt_ops.train_step(a.m, &batch, s, STEPS, &la, &err), 0);
    nc_tensor_list state = {0}, wa = {0}, wb = {0};
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(a.m, true, &state, &err), 0);
    ck_assert_msg(nc_tensor_gpt_ops.import_state(b.m, &state, true, &err) == 0, "%s", err.message);
    for (int s = 2; s < STEPS; s++) {
        ck_assert_int_eq(nc_tensor_gpt_ops.train_step(a.m, &batch, s, STEPS, &la, &err), 0);
        ck_assert_int_eq(nc_tensor_gpt_ops.train_step(b.m, &batch, s, STEPS, &lb, &err), 0);
        ck_assert_msg(la == lb, "step %d: %.9g vs %.9g", s, la, lb);
    }
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(a.m, true, &wa, &err), 0);
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(b.m, true, &wb, &err), 0);
    assert_same(&wa, &wb);
    nc_tensors_free(&state);
    nc_tensors_free(&wa);
    nc_tensors_free(&wb);
    gpt_fixture_close(&a);
    gpt_fixture_close(&b);
}
END_TEST

/* An absurd Muon lr blows the activations up within a few steps: the step
 * whose loss is not finite fails and returns to the weights and optimizer
 * state that produced the last finite loss (those before the previous step). */
START_TEST(non_finite_loss_keeps_last_good_state) {
    gpt_fixture f;
    gpt_fixture_open(&f, "{\"depth\": 2, \"aspect_ratio\": 32, \"head_dim\": 16, \"seq_len\": 64, \"batch_size\": 4, "
                         "\"seed\": 11, \"device\": \"cpu\", \"batch_scaling\": \"none\", \"matrix_lr\": 1e6, "
                         "\"scalar_lr\": 1e6, \"warmup_steps\": 0}", V);
    int32_t x[B * T], y[B * T];
    gpt_random_ids(x, B * T, 1, V);
    gpt_random_ids(y, B * T, 2, V);
    nc_batch b = {x, y, B, T};
    nc_error err = {0};
    nc_tensor_list before_previous = {0}, before = {0}, after = {0};
    double loss;
    int s = 0, rc = 0;
    for (; s < 20; s++) {
        nc_tensors_free(&before_previous);
        before_previous = before;
        before = (nc_tensor_list){0};
        ck_assert_int_eq(nc_tensor_gpt_ops.export_state(f.m, true, &before, &err), 0);
        if ((rc = nc_tensor_gpt_ops.train_step(f.m, &b, s, 20, &loss, &err))) break;
    }
    ck_assert_msg(rc == -1 && s >= 1, "the loss stayed finite (%d steps)", s);
    ck_assert_int_eq(err.code, NC_E_NON_FINITE_LOSS);
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(f.m, true, &after, &err), 0);
    assert_same(&before_previous, &after);
    nc_tensors_free(&before_previous);
    nc_tensors_free(&before);
    nc_tensors_free(&after);
    gpt_fixture_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gpt_determinism");
    tu_tcase(s, "cpu", bit_identical_runs, resume_from_exported_state, non_finite_loss_keeps_last_good_state);
    return tu_run(s);
}
