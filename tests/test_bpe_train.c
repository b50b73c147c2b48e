/* test_bpe_train.c: the GPT on a BPE tokenizer's tokens (train --tokenizer,
 * the fixture tokenizer of tests/fixtures/bpe): the corpus is one document,
 * so its tokens begin with <|bos|>; training learns; eval's bits per byte
 * count each target's token_bytes (0 for <|bos|>) as upstream's
 * evaluate_bpb; sampling decodes BPE bytes into valid UTF-8, its text events
 * adding up to its new text; tokenize without a tokenizer uses the model's;
 * exported weights name the tokenizer (kind, SHA-256 of its tokenizer.json);
 * a checkpoint carries the tokenizer, so a load (and a resume) needs
 * nothing else; a checkpoint whose corpus file changed under a BPE is still
 * read with the checkpoint's tokenizer. */
#include "trainutil.h"
#include "engine/store/checkpoint.h"
#include "engine/store/safetensors.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define TOK NC_FIXTURE_DIR "/bpe"

static json_t *bpe_args(const tu_engine *t, int steps) {
    json_t *a = tu_train_args("tensor", "gpt", steps, t->corpus);
    json_object_update_new(a, json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i}", "tokenizer", TOK, "device", "cpu",
                                        "depth", 1, "head_dim", 32, "seq_len", 32, "batch_size", 4, "seed", 3));
    return a;
}

/* The ids tokenize gives for text (with the resident model's tokenizer when tokenizer is NULL). */
static json_t *ids_of(tu_engine *t, const char *text, const char *tokenizer) {
    json_t *a = json_pack("{s:s}", "text", text);
    if (tokenizer) json_object_set_new(a, "tokenizer", json_string(tokenizer));
    json_t *res = tu_engine_call(t, "tokenize", a), *ids = json_incref(json_object_get(res, "ids"));
    json_decref(res);
    return ids;
}

typedef struct events {
    char text[4096];
} events;

/* The engine's emitter: it owns each event's data. */
static void on_event(void *ctx, const char *event, json_t *data) {
    events *e = ctx;
    if (!strcmp(event, "text")) strncat(e->text, json_string_value(json_object_get(data, "text")), 4000 - strlen(e->text));
    json_decref(data);
}

START_TEST(the_gpt_trains_evaluates_and_samples_on_bpe_tokens) {
    tu_engine t;
    tu_engine_open(&t, "bpetrain", 0, 0);
    json_t *res = tu_engine_call(&t, "train", bpe_args(&t, 30));
    tu_assert_learned(res);
    ck_assert_int_eq(nc_tokenizer_size(&t.e->res.tok), 1024);
    json_decref(res);
    nc_error err = {0};
    const nc_corpus *c = nc_resident_corpus(t.e, &t.e->res, NULL, &err);
    ck_assert_msg(c, "%s", err.message);
    int bos = nc_bpe_special(c->tok.bpe, "<|bos|>");
    ck_assert_int_eq(c->train.ids[0], bos); /* one document */
    ck_assert_int_eq(nc_tokenizer_byte_count(&c->tok, bos), 0);

    /* bits per byte: nats of the targets that have bytes over ln 2 x their bytes */
    res = tu_engine_call(&t, "eval", json_pack("{s:i}", "windows", 8));
    double bpb = tu_num(res, "bpb"), loss = tu_num(res, "val_loss");
    ck_assert(isfinite(bpb) && bpb > 0 && isfinite(loss));
    json_decref(res);

    /* samples: valid UTF-8 (or the reply would not encode), the events add up to the new text */
    events ev = {{0}};
    nc_sink sink = {.emit = on_event, .ctx = &ev};
    res = tu_engine_try(t.e, "sample", json_pack("{s:s, s:i, s:i}", "prompt", "the cat", "max_new_tokens", 40, "seed", 1),
                        &sink, &err);
    ck_assert_msg(res, "%s", err.message);
    const char *text = json_string_value(json_object_get(res, "text"));
    ck_assert_ptr_nonnull(text);
    ck_assert(strncmp(text, "the cat", 7) == 0);
    ck_assert_str_eq(text + 7, ev.text);
    json_decref(res);

    /* tokenize: the model's tokenizer is the fixture's */
    json_t *mine = ids_of(&t, "the cat sat", NULL), *theirs = ids_of(&t, "the cat sat", TOK);
    ck_assert(json_equal(mine, theirs));
    json_decref(mine);

    /* exported weights name the tokenizer: its kind and its tokenizer.json's SHA-256 */
    char st[PATH_MAX + 32], hex[NC_TOKENIZER_HASH_HEX];
    snprintf(st, sizeof st, "%s/bpe.safetensors", t.checkpoints);
    json_decref(tu_engine_call(&t, "checkpoint", json_pack("{s:s, s:s}", "action", "export", "path", st)));
    nc_tensor_list tl = {0};
    json_t *meta = NULL;
    ck_assert_int_eq(nc_safetensors_load(st, INT64_MAX, &tl, &meta, &err), 0);
    uint8_t h[NC_TOKENIZER_HASH_BYTES];
    nc_tokenizer_hash(&t.e->res.tok, h);
    nc_hash_hex(h, hex);
    ck_assert_str_eq(json_string_value(json_object_get(meta, "tokenizer")), "bpe");
    ck_assert_str_eq(json_string_value(json_object_get(meta, "tokenizer_sha256")), hex);
    json_decref(meta);
    nc_tensors_free(&tl);

    /* a checkpoint carries the tokenizer: loaded into a fresh engine, then resumed */
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/bpe.ckpt", t.checkpoints);
    json_decref(tu_engine_call(&t, "checkpoint", json_pack("{s:s, s:s}", "action", "save", "path", path)));
    tu_engine u;
    tu_engine_open(&u, "bpeload", 0, 0);
    json_decref(tu_engine_call(&u, "checkpoint", json_pack("{s:s, s:s}", "action", "load", "path", path)));
    ck_assert(nc_tokenizer_equal(&u.e->res.tok, &t.e->res.tok));
    mine = ids_of(&u, "the cat sat", NULL);
    ck_assert(json_equal(mine, theirs));
    json_decref(mine), json_decref(theirs);
    json_t *more = bpe_args(&t, 32);
    json_object_set_new(more, "resume", json_string(path));
    json_object_del(more, "tokenizer"); /* the checkpoint's is used */
    res = tu_engine_call(&u, "train", more);
    ck_assert_int_eq(tu_num(res, "steps"), 32);
    json_decref(res);
    tu_engine_close(&u);
    tu_engine_close(&t);
}
END_TEST

START_TEST(a_missing_or_broken_tokenizer_is_refused_and_changes_nothing) {
    tu_engine t;
    tu_engine_open(&t, "bpebad", 0, 0);
    json_decref(tu_engine_call(&t, "train", tu_train_args("tensor", "bigram", 2, t.corpus)));
    nc_error err = {0};
    json_t *a = bpe_args(&t, 2);
    json_object_set_new(a, "tokenizer", json_string("/nonexistent/tok"));
    ck_assert_ptr_null(tu_engine_try(t.e, "train", a, NULL, &err));
    ck_assert_int_eq(err.code, NC_E_NOT_FOUND);
    a = bpe_args(&t, 2);
    json_object_set_new(a, "tokenizer", json_string(t.dir)); /* a folder without tokenizer.json */
    ck_assert_ptr_null(tu_engine_try(t.e, "train", a, NULL, &err));
    ck_assert_str_eq(nc_tokenizer_kind(&t.e->res.tok), "characters"); /* the resident bigram stays */
    ck_assert_int_eq(nc_resident_step(&t.e->res), 2);
    tu_engine_close(&t);
}
END_TEST

/* A style's text is another document: its tokens (<|bos|> first) follow the
 * part of the corpus that trains; the validation part is the corpus's own. */
START_TEST(a_style_is_another_document_after_the_training_part) {
    tu_engine t;
    tu_engine_open(&t, "bpestyle", 0, 0);
    nc_error err = {0};
    json_decref(tu_engine_call(&t, "train", bpe_args(&t, 1)));
    const nc_corpus *c = nc_resident_corpus(t.e, &t.e->res, NULL, &err);
    ck_assert_msg(c, "%s", err.message);
    nc_tokens train = c->train, val = c->val;
    int32_t *plain = malloc((train.n + val.n) * sizeof *plain);
    memcpy(plain, train.ids, train.n * sizeof *plain);
    memcpy(plain + train.n, val.ids, val.n * sizeof *plain);
    json_t *a = bpe_args(&t, 1);
    json_object_set_new(a, "style", json_string("futuristic"));
    json_decref(tu_engine_call(&t, "train", a));
    c = nc_resident_corpus(t.e, &t.e->res, NULL, &err);
    ck_assert_msg(c, "%s", err.message);
    ck_assert_uint_gt(c->train.n, train.n);
    ck_assert(memcmp(c->train.ids, plain, train.n * sizeof *plain) == 0);
    ck_assert_int_eq(c->train.ids[train.n], nc_bpe_special(c->tok.bpe, "<|bos|>"));
    ck_assert_uint_eq(c->val.n, val.n);
    ck_assert(memcmp(c->val.ids, plain + train.n, val.n * sizeof *plain) == 0);
    free(plain);
    tu_engine_close(&t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bpe_train");
    tu_tcase(s, "bpe_train", the_gpt_trains_evaluates_and_samples_on_bpe_tokens, a_style_is_another_document_after_the_training_part,
             a_missing_or_broken_tokenizer_is_refused_and_changes_nothing);
    return tu_run(s);
}
