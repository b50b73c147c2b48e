/* test_gpt_head.c: the head and its soft-capped cross-entropy go a chunk of
 * rows at a time (models/gpt gpt_head_rows: 256 rows at a vocabulary of
 * 8,191, padded to 8,192, on the CPU), so the (N, V) logits never exist
 * at once. A batch of 4 sequences of 80 tokens (320 rows: chunks of 256
 * and 64, the first ending inside the fourth sequence) gives the mean of the losses
 * and gradients each sequence gives alone (80 rows: one chunk), after two
 * steps have moved every weight from its init (to 2e-5 of each gradient's
 * norm, plus 1e-8: in one layer the lambdas' gradients are sums that cancel
 * to about 1e-10, where f32's order of adding decides them); eval's per-token
 * losses are the cross-entropy of the soft-capped logits; the padding
 * columns of lm_head get no gradient. */
#include "test_gpt_common.h"

#include <string.h>

#define V 8191
#define B 4
#define T 80
#define ARGS "{\"mode\":\"tensor\",\"model_kind\":\"gpt\",\"depth\":1,\"head_dim\":32,\"seq_len\":80,\"batch_size\":4,\"seed\":5}"

static void grads_of(gpt_fixture *f, const int32_t *x, const int32_t *y, int nb, double *loss, nc_tensor_list *g) {
    nc_error err = {0};
    nc_batch b = {x, y, nb, T};
    ck_assert_msg(nc_gpt_forward_backward(f->m, &b, loss, &err) == 0, "%s", err.message);
    *g = (nc_tensor_list){0};
    ck_assert_msg(nc_gpt_export_grads(f->m, g, &err) == 0, "%s", err.message);
}

/* Two steps on random batches, so that no weight is still at its zero init. */
static void warm_up(gpt_fixture *f, int32_t *x, int32_t *y) {
    for (int step = 0; step < 2; step++) {
        double loss;
        nc_tensor_list g;
        gpt_random_ids(x, B * T, 100 + step, V);
        gpt_random_ids(y, B * T, 200 + step, V);
        grads_of(f, x, y, B, &loss, &g);
        nc_tensors_free(&g);
        nc_gpt_optimizer_step(f->m, step, 10);
    }
}

START_TEST(a_chunked_batch_is_the_mean_of_its_sequences) {
    gpt_fixture f;
    gpt_fixture_open(&f, ARGS, V);
    static int32_t x[B * T], y[B * T];
    warm_up(&f, x, y);
    gpt_random_ids(x, B * T, 11, V);
    gpt_random_ids(y, B * T, 12, V);
    double loss, part;
    nc_tensor_list all, mean = {0};
    grads_of(&f, x, y, B, &loss, &all);
    double sum = 0;
    for (int s = 0; s < B; s++) {
        nc_tensor_list one;
        grads_of(&f, x + s * T, y + s * T, 1, &part, &one);
        sum += part;
        if (s == 0) {
            mean = one;
            continue;
        }
        for (int i = 0; i < one.count; i++)
            for (int64_t j = 0; j < nc_tensor_numel(&one.items[i]); j++) mean.items[i].data[j] += one.items[i].data[j];
        nc_tensors_free(&one);
    }
    ck_assert_msg(fabs(loss - sum / B) < 1e-5 * loss, "loss %.9g, mean of sequences %.9g", loss, sum / B);
    for (int i = 0; i < all.count; i++) {
        nc_tensor *t = &mean.items[i];
        int64_t n = nc_tensor_numel(t);
        for (int64_t j = 0; j < n; j++) t->data[j] /= B;
        double d = 0, ref = 0;
        for (int64_t j = 0; j < n; j++) d += pow(all.items[i].data[j] - t->data[j], 2), ref += pow(t->data[j], 2);
        ck_assert_msg(sqrt(d) <= 2e-5 * sqrt(ref) + 1e-8, "%s: off by %.3g (norm %.3g)", t->name, sqrt(d), sqrt(ref));
    }
    const nc_tensor *head = nc_tensors_get(&all, "lm_head.weight");
    ck_assert_ptr_nonnull(head);
    ck_assert_int_eq(head->shape[0], 8192); /* padded as upstream pads, to 64 */
    for (int64_t j = (int64_t)V * head->shape[1]; j < nc_tensor_numel(head); j++) ck_assert(head->data[j] == 0.0f);
    nc_tensors_free(&all);
    nc_tensors_free(&mean);
    gpt_fixture_close(&f);
}
END_TEST

START_TEST(eval_losses_are_the_cross_entropy_of_the_logits) {
    gpt_fixture f;
    gpt_fixture_open(&f, ARGS, V);
    static int32_t x[B * T], y[B * T];
    gpt_random_ids(x, B * T, 21, V);
    gpt_random_ids(y, B * T, 22, V);
    nc_batch b = {x, y, B, T};
    float *logits = malloc(sizeof(float) * B * T * V), losses[B * T];
    nc_error err = {0};
    ck_assert_msg(nc_gpt_logits(f.m, &b, logits, &err) == 0, "%s", err.message);
    ck_assert_msg(nc_tensor_gpt_ops.eval_losses(f.m, &b, losses, &err) == 0, "%s", err.message);
    for (int r = 0; r < B * T; r++) {
        const float *z = logits + (size_t)r * V;
        double mx = z[0], s = 0;
        for (int v = 1; v < V; v++) mx = z[v] > mx ? z[v] : mx;
        for (int v = 0; v < V; v++) s += exp(z[v] - mx);
        double want = mx + log(s) - z[y[r]];
        ck_assert_msg(fabs(losses[r] - want) < 1e-4, "row %d: loss %.7g, logits say %.7g", r, losses[r], want);
    }
    free(logits);
    gpt_fixture_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gpt_head");
    tu_tcase(s, "head", a_chunked_batch_is_the_mean_of_its_sequences, eval_losses_are_the_cross_entropy_of_the_logits);
    return tu_run(s);
}
