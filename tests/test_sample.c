/* test_sample.c: `sample` through a real nanochatd (FR-004). Without a model
 * it answers NotFound saying what to do; from a trained bigram the text
 * starts with the prompt, adds exactly --max-new-tokens characters, follows
 * the corpus (greedy decoding only takes bigrams the corpus has), is
 * reproducible by --seed, and --top-k 1 ignores the seed; bad temperatures,
 * unknown characters and long prompts are refused with their codes; a
 * futuristic-style bigram samples characters the base corpus lacks; several
 * samples come together, each the same whatever their number, and the text
 * events of each add up to its text; a sample whose client goes away stops. */
#include "trainutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static nc_client c;

static void setup(void) {
    tu_fixture_start();
    tu_connect(&c, &tu_fx.d);
}

static void teardown(void) {
    nc_client_close(&c);
    tu_fixture_stop();
}

static void train_bigram(const char *mode, const char *style) {
    json_t *args = tu_train_args(mode, "bigram", 60, tu_fx.corpus);
    json_object_set_new(args, "lr", json_real(0.05));
    json_object_set_new(args, "style", json_string(style));
    json_decref(tu_call(&c, "train", args));
}

/* The text of a sample (malloc'd). */
static char *sample(const char *prompt, int n, int64_t seed, int top_k) {
    json_t *res = tu_call(&c, "sample", json_pack("{s:s, s:i, s:I, s:i}", "prompt", prompt, "max_new_tokens", n,
                                                  "seed", (json_int_t)seed, "top_k", top_k));
    char *text = strdup(json_string_value(json_object_get(res, "text")));
    json_decref(res);
    return text;
}

START_TEST(without_a_model_sampling_says_what_to_do) {
    const char *msg = tu_call_error(&c, "sample", NULL, NC_E_NOT_FOUND);
    ck_assert_ptr_nonnull(strstr(msg, "train"));
    ck_assert_ptr_nonnull(strstr(msg, "checkpoint load"));
}
END_TEST

START_TEST(samples_come_from_the_trained_weights) {
    train_bigram("scalar", "classic");
    char *text = sample("the ", 60, 1, 0);
    ck_assert_int_eq(strncmp(text, "the ", 4), 0);
    ck_assert_int_eq(strlen(text), 4 + 60);
    char *again = sample("the ", 60, 1, 0), *other = sample("the ", 60, 2, 0);
    ck_assert_str_eq(text, again);
    ck_assert_str_ne(text, other);
    char *greedy = sample("the ", 60, 1, 1), *greedy2 = sample("the ", 60, 2, 1);
    ck_assert_str_eq(greedy, greedy2);
    for (size_t i = 0; greedy[i + 1]; i++) {
        char bigram[3] = {greedy[i], greedy[i + 1], 0};
        ck_assert_msg(strstr(TU_CORPUS_TEXT TU_CORPUS_TEXT, bigram), "greedy sample '%s' has '%s'", greedy, bigram);
    }
    free(text), free(again), free(other), free(greedy), free(greedy2);
}
END_TEST

START_TEST(bad_requests_are_refused_with_their_codes) {
    train_bigram("tensor", "classic");
    static const char *const temps[] = {"0", "-1", "nan", "inf", "-inf"};
    for (int i = 0; i < 5; i++) {
        json_t *t = nc_arg_value_from_text(nc_arg_find(nc_command_find("sample"), "temperature"), temps[i], NULL);
        tu_call_error(&c, "sample", json_pack("{s:o}", "temperature", t), NC_E_INVALID_TEMPERATURE);
    }
    const char *msg = tu_call_error(&c, "sample", json_pack("{s:s}", "prompt", "the Cat"), NC_E_UNKNOWN_CHARACTER);
    ck_assert_ptr_nonnull(strstr(msg, "'C'"));
    tu_call_error(&c, "sample", json_pack("{s:s, s:i}", "prompt", "the cat", "max_prompt_tokens", 3),
                  NC_E_PROMPT_TOO_LONG);
}
END_TEST

/* True when text has a character that the base corpus lacks. */
static bool beyond_base(const char *text) {
    for (const char *p = text; *p; p++)
        if (!strchr(TU_CORPUS_TEXT, *p)) return true;
    return false;
}

START_TEST(a_futuristic_bigram_samples_beyond_the_base_corpus) {
    static const char *const modes[] = {"scalar", "tensor"};
    for (int m = 0; m < 2; m++) {
        train_bigram(modes[m], "futuristic");
        json_t *st = tu_call(&c, "status", NULL);
        json_t *model = json_object_get(st, "model");
        ck_assert_str_eq(json_string_value(json_object_get(model, "style")), "futuristic");
        ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(model, "run_id")), "style-futuristic"));
        json_decref(st);
        char *text = sample("the ", 200, 7, 0);
        ck_assert_msg(beyond_base(text), "no futuristic character in '%s'", text);
        free(text);
    }
}
END_TEST

/* The GPT decodes within its rotary table (10 x seq_len positions): a request
 * beyond it is refused before any work. */
START_TEST(a_gpt_refuses_samples_beyond_its_positions) {
    json_t *args = tu_train_args("tensor", "gpt", 1, tu_fx.corpus);
    json_object_update_new(args, json_pack("{s:i, s:i, s:i, s:i, s:i}", "depth", 1, "aspect_ratio", 32, "head_dim", 16,
                                           "seq_len", 8, "batch_size", 2));
    json_decref(tu_call(&c, "train", args));
    const char *msg = tu_call_error(&c, "sample", json_pack("{s:s, s:i}", "prompt", "th", "max_new_tokens", 79),
                                    NC_E_BAD_REQUEST);
    ck_assert_ptr_nonnull(strstr(msg, "80 positions"));
    json_decref(tu_call(&c, "sample", json_pack("{s:s, s:i}", "prompt", "th", "max_new_tokens", 78)));
}
END_TEST

/* Each sample's text events, concatenated. */
typedef struct streamed {
    char text[4][512];
    int events;
} streamed;

static void on_text(void *ctx, const char *event, json_t *data) {
    streamed *s = ctx;
    if (strcmp(event, "text")) return;
    int i = (int)json_integer_value(json_object_get(data, "sample"));
    ck_assert(i >= 0 && i < 4);
    strncat(s->text[i], json_string_value(json_object_get(data, "text")), sizeof s->text[i] - strlen(s->text[i]) - 1);
    s->events++;
}

/* num_samples samples of 40 tokens with seed 5: their texts, and what streamed. */
static json_t *samples(int num, streamed *s) {
    memset(s, 0, sizeof *s);
    nc_error err;
    json_t *res = nc_client_call(&c, "sample", json_pack("{s:s, s:i, s:i, s:i}", "prompt", "the ", "max_new_tokens", 40,
                                                         "seed", 5, "num_samples", num), on_text, s, &err);
    ck_assert_msg(res, "%s", err.message);
    json_t *texts = json_object_get(res, "texts");
    ck_assert_int_eq(json_array_size(texts), num);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "num_samples")), num);
    ck_assert_str_eq(json_string_value(json_object_get(res, "text")), json_string_value(json_array_get(texts, 0)));
    for (int i = 0; i < num; i++) {
        const char *t = json_string_value(json_array_get(texts, i));
        ck_assert_int_eq(strlen(t), 4 + 40);
        ck_assert_str_eq(t + 4, s->text[i]); /* the events add up to the new text */
    }
    json_incref(texts);
    json_decref(res);
    return texts;
}

static void samples_are_their_own(void) {
    streamed one, three, four;
    json_t *a = samples(1, &one), *b = samples(3, &three), *d = samples(4, &four);
    for (int i = 0; i < 3; i++) /* sample i is the same whatever the number of samples */
        ck_assert_str_eq(json_string_value(json_array_get(b, i)), json_string_value(json_array_get(d, i)));
    ck_assert_str_eq(json_string_value(json_array_get(a, 0)), json_string_value(json_array_get(b, 0)));
    ck_assert_str_ne(json_string_value(json_array_get(b, 0)), json_string_value(json_array_get(b, 1)));
    ck_assert_int_ge(three.events, 3);
    json_decref(a), json_decref(b), json_decref(d);
}

START_TEST(several_samples_come_together_each_its_own) {
    train_bigram("scalar", "classic");
    samples_are_their_own();
    train_bigram("tensor", "classic");
    samples_are_their_own();
    json_t *args = tu_train_args("tensor", "gpt", 1, tu_fx.corpus);
    json_object_update_new(args, json_pack("{s:i, s:i, s:i, s:i, s:i}", "depth", 1, "aspect_ratio", 32, "head_dim", 16,
                                           "seq_len", 8, "batch_size", 2));
    json_decref(tu_call(&c, "train", args));
    samples_are_their_own();
    tu_call_error(&c, "sample", json_pack("{s:i}", "num_samples", 0), NC_E_BAD_REQUEST);
    tu_call_error(&c, "sample", json_pack("{s:i}", "num_samples", 257), NC_E_BAD_REQUEST);
}
END_TEST

/* A long sample whose client hangs up stops at its next token: the daemon is
 * idle again at once, and serves the next client. */
START_TEST(a_sample_stops_when_its_client_goes) {
    train_bigram("scalar", "classic"); /* 8 million tokens: minutes */
    nc_client gone;
    tu_connect(&gone, &tu_fx.d);
    nc_error err;
    json_t *req = nc_msg_request(1, "sample", json_pack("{s:s, s:i, s:i}", "prompt", "the ", "max_new_tokens", 1000000, "num_samples", 8));
    ck_assert_int_eq(nc_client_send(&gone, req, &err), 0);
    json_decref(req);
    nc_reply r;
    ck_assert_int_eq(nc_client_recv(&gone, &r, 5000, &err), 0); /* its first text: it runs */
    ck_assert_msg(r.kind == NC_REPLY_EVENT && !strcmp(r.event, "text"), "%s", r.kind == NC_REPLY_ERROR ? r.message : "not a text event");
    nc_reply_free(&r);
    nc_client_close(&gone);
    double t0 = nc_now();
    const char *state = "busy";
    while (strcmp(state, "idle") && nc_now() - t0 < 5) {
        json_t *st = tu_call(&c, "status", NULL);
        state = strcmp(json_string_value(json_object_get(st, "state")), "idle") ? "busy" : "idle";
        json_decref(st);
    }
    ck_assert_str_eq(state, "idle");
    ck_assert_double_lt(nc_now() - t0, 1);
    json_decref(tu_call(&c, "sample", json_pack("{s:s, s:i}", "prompt", "the ", "max_new_tokens", 5)));
}
END_TEST

int main(void) {
    Suite *s = suite_create("sample");
    TCase *tc = tu_tcase(s, "sample", without_a_model_sampling_says_what_to_do, samples_come_from_the_trained_weights,
                         bad_requests_are_refused_with_their_codes, a_futuristic_bigram_samples_beyond_the_base_corpus,
                         a_gpt_refuses_samples_beyond_its_positions, several_samples_come_together_each_its_own,
                         a_sample_stops_when_its_client_goes);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tu_run(s);
}
