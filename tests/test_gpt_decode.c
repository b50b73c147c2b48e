/* test_gpt_decode.c: KV-cache decoding equals full recomputation: rotary
 * offsets, smear across feeds, the sliding window (seq_len 160 > 128, so the
 * "S" layer's window of 128 bites), chunked prompts, and cache compaction; a
 * batch of sequences decoded together (one shared prompt, then a token each)
 * equals each decoded alone, through compaction. */
#include "test_gpt_common.h"

#include <string.h>

#define V 65
#define T 160
#define ARGS "{\"depth\": 3, \"aspect_ratio\": 10, \"head_dim\": 16, \"seq_len\": 160, \"batch_size\": 1, " \
             "\"window_pattern\": \"SL\", \"seed\": 7, \"device\": \"cpu\"}"

/* Trains two steps so that every parameter (smear, c_proj, ...) is non-trivial. */
static void warm_up(gpt_fixture *f) {
    int32_t x[T], y[T];
    gpt_random_ids(x, T, 1, V);
    gpt_random_ids(y, T, 2, V);
    nc_batch b = {x, y, 1, T};
    nc_error err = {0};
    double loss;
    for (int s = 0; s < 2; s++) ck_assert_int_eq(nc_tensor_gpt_ops.train_step(f->m, &b, s, 10, &loss, &err), 0);
}

/* One step on a batch of 16, so that the weights are not the init's. */
static void warm_up_short(gpt_fixture *f) {
    int32_t x[16], y[16];
    gpt_random_ids(x, 16, 1, V);
    gpt_random_ids(y, 16, 2, V);
    nc_batch b = {x, y, 1, 16};
    nc_error err = {0};
    double loss;
    ck_assert_int_eq(nc_tensor_gpt_ops.train_step(f->m, &b, 0, 10, &loss, &err), 0);
}

/* Feeds ids in pieces of the given sizes (cycled); checks each piece's last logits. */
static double decode_against(gpt_fixture *f, const int32_t *ids, const float *full, const int *pieces, int npieces) {
    nc_error err = {0};
    nc_decoder *d = nc_tensor_gpt_ops.decoder_new(f->m, 1, 0, &err);
    ck_assert_msg(d, "%s", err.message);
    float logits[V];
    double worst = 0;
    for (int pos = 0, k = 0; pos < T; k++) {
        int n = pieces[k % npieces] < T - pos ? pieces[k % npieces] : T - pos;
        ck_assert_msg(nc_tensor_gpt_ops.decoder_feed(d, ids + pos, n, logits, &err) == 0, "%s", err.message);
        pos += n;
        double e = rel_err(logits, full + (int64_t)(pos - 1) * V, V);
        ck_assert_msg(e < 1e-5, "position %d: relative error %.3g", pos - 1, e);
        if (e > worst) worst = e;
    }
    nc_tensor_gpt_ops.decoder_free(d);
    return worst;
}

START_TEST(decoding_equals_recomputation) {
    gpt_fixture f;
    gpt_fixture_open(&f, ARGS, V);
    warm_up(&f);
    int32_t ids[T];
    gpt_random_ids(ids, T, 3, V);
    float *full = malloc(sizeof(float) * T * V);
    nc_batch b = {ids, NULL, 1, T};
    nc_error err = {0};
    ck_assert_int_eq(nc_gpt_logits(f.m, &b, full, &err), 0);
    const int one[] = {1}, mixed[] = {37, 1, 1, 100, 5}, whole[] = {T};
    printf("one by one %.2g, mixed %.2g, whole %.2g\n", decode_against(&f, ids, full, one, 1),
           decode_against(&f, ids, full, mixed, 5), decode_against(&f, ids, full, whole, 1));
    free(full);
    gpt_fixture_close(&f);
}
END_TEST

/* Past seq_len the caches compact; feeding one token at a time and in chunks
 * compacts at different moments and must agree, up to the rotary limit. */
START_TEST(compaction_and_limit) {
    gpt_fixture f;
    gpt_fixture_open(&f, "{\"depth\": 3, \"aspect_ratio\": 10, \"head_dim\": 16, \"seq_len\": 16, "
                         "\"window_pattern\": \"SL\", \"seed\": 7, \"device\": \"cpu\"}", V);
    int n = 10 * 16; /* the rotary tables' span */
    int32_t ids[10 * 16];
    gpt_random_ids(ids, n, 4, V);
    nc_error err = {0};
    nc_decoder *a = nc_tensor_gpt_ops.decoder_new(f.m, 1, 0, &err), *b = nc_tensor_gpt_ops.decoder_new(f.m, 1, 0, &err);
    float la[V], lb[V];
    for (int pos = 0; pos < n; pos += 40) {
        for (int i = 0; i < 40; i++) ck_assert_int_eq(nc_tensor_gpt_ops.decoder_feed(a, ids + pos + i, 1, la, &err), 0);
        ck_assert_int_eq(nc_tensor_gpt_ops.decoder_feed(b, ids + pos, 40, lb, &err), 0);
        ck_assert_msg(rel_err(la, lb, V) < 1e-5, "position %d: %.3g", pos + 39, rel_err(la, lb, V));
    }
    ck_assert_int_eq(nc_tensor_gpt_ops.decoder_feed(a, ids, 1, la, &err), -1);
    ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
    int32_t bad = V;
    nc_decoder *c = nc_tensor_gpt_ops.decoder_new(f.m, 1, 0, &err);
    ck_assert_int_eq(nc_tensor_gpt_ops.decoder_feed(c, &bad, 1, la, &err), -1);
    ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
    nc_tensor_gpt_ops.decoder_free(a);
    nc_tensor_gpt_ops.decoder_free(b);
    nc_tensor_gpt_ops.decoder_free(c);
    gpt_fixture_close(&f);
}
END_TEST

/* Three sequences after one prompt, decoded together past the caches'
 * compaction (seq_len 16), against each decoded alone; the batch session
 * refuses a shared feed once the sequences differ, and a step before any
 * prompt. */
START_TEST(a_batch_decodes_as_its_sequences_alone) {
    enum { N = 3, PROMPT = 5, STEPS = 60 };
    gpt_fixture f;
    gpt_fixture_open(&f, "{\"depth\": 3, \"aspect_ratio\": 10, \"head_dim\": 16, \"seq_len\": 16, "
                         "\"window_pattern\": \"SL\", \"seed\": 7, \"device\": \"cpu\"}", V);
    warm_up_short(&f);
    int32_t prompt[PROMPT], ids[STEPS][N];
    gpt_random_ids(prompt, PROMPT, 5, V);
    gpt_random_ids(&ids[0][0], STEPS * N, 6, V);
    nc_error err = {0};
    nc_decoder *batch = nc_tensor_gpt_ops.decoder_new(f.m, N, 0, &err), *alone[N];
    float lb[N * V], la[V], first[V];
    ck_assert_int_eq(nc_tensor_gpt_ops.decoder_step(batch, ids[0], lb, &err), -1);
    ck_assert_int_eq(nc_tensor_gpt_ops.decoder_feed(batch, prompt, PROMPT, first, &err), 0);
    for (int i = 0; i < N; i++) {
        alone[i] = nc_tensor_gpt_ops.decoder_new(f.m, 1, PROMPT + STEPS, &err);
        ck_assert_int_eq(nc_tensor_gpt_ops.decoder_feed(alone[i], prompt, PROMPT, la, &err), 0);
        ck_assert(memcmp(la, first, sizeof la) == 0);
    }
    double worst = 0;
    for (int t = 0; t < STEPS; t++) {
        ck_assert_msg(nc_tensor_gpt_ops.decoder_step(batch, ids[t], lb, &err) == 0, "%s", err.message);
        for (int i = 0; i < N; i++) {
            ck_assert_int_eq(nc_tensor_gpt_ops.decoder_step(alone[i], &ids[t][i], la, &err), 0);
            double e = rel_err(lb + i * V, la, V);
            ck_assert_msg(e < 1e-5, "step %d, sequence %d: relative error %.3g", t, i, e);
            worst = e > worst ? e : worst;
        }
    }
    printf("batch of %d vs alone, %d steps: worst relative error %.2g\n", N, STEPS, worst);
    ck_assert_int_eq(nc_tensor_gpt_ops.decoder_feed(batch, prompt, 1, first, &err), -1);
    ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
    for (int i = 0; i < N; i++) nc_tensor_gpt_ops.decoder_free(alone[i]);
    nc_tensor_gpt_ops.decoder_free(batch);
    gpt_fixture_close(&f);
}
END_TEST

int main(void) {
    Suite *s = suite_create("gpt_decode");
    tu_tcase(s, "kv_cache", decoding_equals_recomputation, compaction_and_limit, a_batch_decodes_as_its_sequences_alone);
    return tu_run(s);
}
