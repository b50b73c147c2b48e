/* test_tokenize.c: the tokenize command on a real daemon. With a tokenizer
 * folder: tiktoken's ids (the BPE fixture) and each token's bytes; with none:
 * the resident model's tokenizer, here its characters (NotFound before a model is trained).
 * The text may come from a file; both paths are read only inside the
 * daemon's folders, so a tokenizer or file outside, or a symlink leading
 * outside, is PermissionDenied; text and file together, or neither, is
 * BadRequest; a broken tokenizer.json is BadRequest naming the field, and
 * so is a text of more tokens than a reply may list. */
#define _GNU_SOURCE
#include "svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tu_daemon d;
static char allowed[PATH_MAX], outside[PATH_MAX];

static void put_file(const char *dir, const char *name, const char *text, size_t n) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    fwrite(text, 1, n, f);
    fclose(f);
}

/* The fixture tokenizer into dir/tok/tokenizer.json. */
static void put_tokenizer(const char *dir) {
    size_t n;
    char *json = tu_read_file(NC_FIXTURE_DIR "/bpe/tokenizer.json", &n), sub[PATH_MAX + 8];
    ck_assert_ptr_nonnull(json);
    snprintf(sub, sizeof sub, "%s/tok", dir);
    mkdir(sub, 0755);
    put_file(sub, "tokenizer.json", json, n);
    free(json);
}

static void start(void) {
    tu_tmpdir(allowed, sizeof allowed, "allowed");
    tu_tmpdir(outside, sizeof outside, "outside");
    put_tokenizer(allowed);
    put_tokenizer(outside);
    svc_start(&d, (const char *const[]){"--allow-dir", allowed, NULL});
}

static void stop(void) {
    tu_daemon_cleanup(&d);
    tu_rmtree(allowed);
    tu_rmtree(outside);
}

static json_t *tokenize(const char *key, const char *value, const char *tokenizer) {
    json_t *a = json_pack("{s:s}", key, value);
    if (tokenizer) json_object_set_new(a, "tokenizer", json_string(tokenizer));
    return a;
}

/* dir/name, in one of four buffers (a call may take two). */
static char *in(const char *dir, const char *name) {
    static char paths[4][PATH_MAX + 64];
    static int next;
    char *p = paths[next++ % 4];
    snprintf(p, sizeof paths[0], "%s/%s", dir, name);
    return p;
}

START_TEST(bpe_ids_and_token_bytes) {
    nc_client c;
    tu_connect(&c, &d);
    /* the fixture's "shakespeare" case: tiktoken's ids */
    const char *text = "ROMEO:\nWherefore art thou, Romeo? Deny thy father and refuse thy name;\n\nJULIET:\nO!";
    json_t *res = tu_call(&c, "tokenize", tokenize("text", text, in(allowed, "tok")));
    size_t n;
    char *cases = tu_read_file(NC_FIXTURE_DIR "/bpe/cases.json", &n);
    json_t *all = json_loads(cases, 0, NULL), *want = NULL, *cs;
    size_t i;
    json_array_foreach(all, i, cs) if (!strcmp(json_string_value(json_object_get(cs, "name")), "shakespeare")) want =
        json_object_get(cs, "ids");
    ck_assert(json_equal(json_object_get(res, "ids"), want));
    ck_assert_str_eq(json_string_value(json_object_get(res, "tokenizer")), "bpe");
    ck_assert_int_eq(json_integer_value(json_object_get(res, "vocab_size")), 1024);
    json_int_t count = (json_int_t)json_array_size(want);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "count")), count);
    /* the tokens' bytes, in hex, make the text again */
    char joined[512] = "";
    json_t *t;
    json_array_foreach(json_object_get(res, "tokens"), i, t) strcat(joined, json_string_value(t));
    char hex[512] = "";
    for (const char *p = text; *p; p++) snprintf(hex + strlen(hex), 3, "%02x", (unsigned char)*p);
    ck_assert_str_eq(joined, hex);
    json_decref(res), json_decref(all), free(cases);
    /* the same text from a file */
    put_file(allowed, "text.txt", text, strlen(text));
    res = tu_call(&c, "tokenize", tokenize("file", in(allowed, "text.txt"), in(allowed, "tok")));
    ck_assert_int_eq(json_integer_value(json_object_get(res, "count")), count);
    json_decref(res);
    nc_client_close(&c);
}
END_TEST

START_TEST(characters_of_the_resident_model) {
    nc_client c;
    tu_connect(&c, &d);
    tu_call_error(&c, "tokenize", tokenize("text", "to be", NULL), NC_E_NOT_FOUND);
    json_decref(tu_call(&c, "train", json_pack("{s:s, s:s, s:i}", "mode", "tensor", "model_kind", "bigram", "steps", 1)));
    json_t *res = tu_call(&c, "tokenize", tokenize("text", "to be", NULL));
    ck_assert_str_eq(json_string_value(json_object_get(res, "tokenizer")), "characters");
    ck_assert_int_eq(json_integer_value(json_object_get(res, "count")), 5);
    ck_assert_str_eq(json_string_value(json_array_get(json_object_get(res, "tokens"), 2)), "20");
    json_decref(res);
    tu_call_error(&c, "tokenize", tokenize("text", "\xe2\x82\xac", NULL), NC_E_UNKNOWN_CHARACTER);
    nc_client_close(&c);
}
END_TEST

START_TEST(paths_outside_and_bad_requests_are_refused) {
    nc_client c;
    tu_connect(&c, &d);
    tu_call_error(&c, "tokenize", tokenize("text", "hi", in(outside, "tok")), NC_E_PERMISSION_DENIED);
    put_file(outside, "secret.txt", "secret", 6);
    tu_call_error(&c, "tokenize", tokenize("file", in(outside, "secret.txt"), in(allowed, "tok")),
                  NC_E_PERMISSION_DENIED);
    ck_assert_int_eq(symlink(in(outside, "tok"), in(allowed, "link")), 0); /* a folder leading outside */
    tu_call_error(&c, "tokenize", tokenize("text", "hi", in(allowed, "link")), NC_E_PERMISSION_DENIED);
    tu_call_error(&c, "tokenize", json_pack("{s:s, s:s}", "text", "a", "file", in(allowed, "x")), NC_E_BAD_REQUEST);
    tu_call_error(&c, "tokenize", json_object(), NC_E_BAD_REQUEST);
    tu_call_error(&c, "tokenize", tokenize("text", "hi", in(allowed, "missing")), NC_E_NOT_FOUND);
    const char *broken = "{\"format\": \"nanochat-bpe\", \"version\": 1}";
    put_file(in(allowed, "tok"), "tokenizer.json", broken, strlen(broken));
    const char *msg = tu_call_error(&c, "tokenize", tokenize("text", "hi", in(allowed, "tok")), NC_E_BAD_REQUEST);
    ck_assert_msg(strstr(msg, "ranks"), "%s", msg);
    put_tokenizer(allowed);
    json_decref(tu_call(&c, "tokenize", tokenize("text", "hi", in(allowed, "tok")))); /* the daemon is fine */
    char many[10001];
    for (int i = 0; i < 10000; i += 2) many[i] = 'a', many[i + 1] = ' ';
    put_file(allowed, "many.txt", many, 10000); /* 5,000 tokens: over what a reply may list */
    msg = tu_call_error(&c, "tokenize", tokenize("file", in(allowed, "many.txt"), in(allowed, "tok")), NC_E_BAD_REQUEST);
    ck_assert_msg(strstr(msg, "at most 4096"), "%s", msg);
    nc_client_close(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("tokenize");
    TCase *tc = tu_tcase(s, "tokenize", bpe_ids_and_token_bytes, characters_of_the_resident_model,
                         paths_outside_and_bad_requests_are_refused);
    tcase_add_checked_fixture(tc, start, stop);
    return tu_run(s);
}
