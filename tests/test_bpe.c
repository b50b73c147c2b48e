/* test_bpe.c: the BPE tokenizer against tiktoken (fixtures from
 * scripts/gen_bpe_fixtures.py: a tokenizer trained as upstream trains one,
 * and tiktoken's encode_ordinary of texts that stress the split and the
 * merges: CJK, emoji and ZWJ sequences, combining marks, CRLF, whitespace
 * runs and Unicode spaces, digit runs, contractions and case folding,
 * invalid UTF-8); decoding gives the (repaired) text back; every malformed
 * tokenizer file is refused with the field named. */
#include "testutil.h"
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *slurp(const char *name, size_t *len) {
    char path[1024];
    snprintf(path, sizeof path, "%s/bpe/%s", NC_FIXTURE_DIR, name);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f, "no fixture %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_int_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    s[n] = 0;
    *len = (size_t)n;
    return s;
}

static nc_bpe *fixture_tokenizer(void) {
    size_t len;
    char *json = slurp("tokenizer.json", &len);
    nc_error err = {0};
    nc_bpe *t = nc_bpe_parse(json, len, &err);
    ck_assert_msg(t, "%s", err.message);
    free(json);
    return t;
}

static size_t b64(const char *s, char *out) { /* the fixtures' base64 (standard, padded) */
    static const char *abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (; *s && *s != '='; s++) {
        acc = acc << 6 | (uint32_t)(strchr(abc, *s) - abc);
        if ((bits += 6) >= 8) out[k++] = (char)(acc >> (bits -= 8));
    }
    return k;
}

START_TEST(ids_are_tiktokens_and_decode_gives_the_text_back) {
    nc_bpe *t = fixture_tokenizer();
    size_t len;
    char *cases_json = slurp("cases.json", &len);
    json_t *cases = json_loads(cases_json, 0, NULL), *c;
    ck_assert(json_array_size(cases) >= 10);
    size_t i;
    json_array_foreach(cases, i, c) {
        const char *name = json_string_value(json_object_get(c, "name"));
        const char *enc = json_string_value(json_object_get(c, "bytes"));
        char *text = malloc(strlen(enc) + 1);
        size_t n = b64(enc, text);
        int32_t *ids = NULL;
        size_t count = 0, cap = 0;
        nc_error err = {0};
        ck_assert_int_eq(nc_bpe_encode(t, text, n, &ids, &count, &cap, NULL, &err), 0);
        json_t *want = json_object_get(c, "ids");
        ck_assert_msg(count == json_array_size(want), "%s: %zu ids, tiktoken %zu", name, count, json_array_size(want));
        for (size_t k = 0; k < count; k++)
            ck_assert_msg(ids[k] == json_integer_value(json_array_get(want, k)), "%s: id %zu is %d, tiktoken %lld",
                          name, k, ids[k], (long long)json_integer_value(json_array_get(want, k)));
        size_t fixed_len, got = 0;
        char *fixed = nc_utf8_repair(text, n, &fixed_len), *back = malloc(fixed_len + 1);
        for (size_t k = 0; k < count; k++) {
            size_t bl;
            const uint8_t *b = nc_bpe_bytes(t, ids[k], &bl);
            ck_assert(b && got + bl <= fixed_len);
            memcpy(back + got, b, bl);
            got += bl;
        }
        ck_assert_msg(got == fixed_len && memcmp(back, fixed, got) == 0, "%s: decoding differs", name);
        free(ids), free(text), free(fixed), free(back);
    }
    json_decref(cases);
    free(cases_json);
    nc_bpe_free(t);
}
END_TEST

/* Python's bytes.decode("utf-8", errors="replace"), case by case. */
START_TEST(invalid_utf8_is_repaired_as_python_does) {
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"ok", "ok"},
        {"\xff", "\xef\xbf\xbd"},
        {"\xe0\x80", "\xef\xbf\xbd\xef\xbf\xbd"},                        /* E0 wants A0..BF */
        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},         /* a surrogate */
        {"\xf0\x9f\x98 ", "\xef\xbf\xbd "},                               /* cut short: one U+FFFD */
        {"\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"}, /* above U+10FFFF */
        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},                        /* overlong */
        {"\xe2\x82\xac\xc3", "\xe2\x82\xac\xef\xbf\xbd"},                 /* the euro, then a lone lead */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *got = nc_utf8_repair(cases[i].in, strlen(cases[i].in), &len);
        ck_assert_msg(len == strlen(cases[i].out) && memcmp(got, cases[i].out, len) == 0, "case %zu", i);
        free(got);
    }
}
END_TEST

/* The fixture with one field changed by `edit` (a jansson edit of the document). */
static void refused(void (*edit)(json_t *doc), const char *why) {
    size_t len;
    char *text = slurp("tokenizer.json", &len);
    json_t *doc = json_loads(text, 0, NULL);
    edit(doc);
    char *forged = json_dumps(doc, JSON_COMPACT);
    nc_error err = {0};
    nc_bpe *t = nc_bpe_parse(forged, strlen(forged), &err);
    ck_assert_msg(!t, "a tokenizer with %s was accepted", why);
    ck_assert_msg(strstr(err.message, why), "refused for \"%s\", not for %s", err.message, why);
    free(forged), free(text);
    json_decref(doc);
}

static void drop_byte(json_t *d) { /* "A" replaced by the bytes 00 01 02 */
    json_array_set_new(json_object_get(d, "ranks"), 65, json_string("AAEC"));
}
static void duplicate_rank(json_t *d) {
    json_t *r = json_object_get(d, "ranks");
    json_array_set(r, 300, json_array_get(r, 299));
}
static void bad_base64(json_t *d) { json_array_set_new(json_object_get(d, "ranks"), 7, json_string("*a==")); }
static void bad_pattern(json_t *d) { json_object_set_new(d, "pattern", json_string("(unclosed")); }
static void special_gap(json_t *d) {
    json_object_set_new(json_array_get(json_object_get(d, "special"), 1), "id", json_integer(5000));
}
static void wrong_count(json_t *d) { json_array_set_new(json_object_get(d, "token_bytes"), 300, json_integer(99)); }
static void newer(json_t *d) { json_object_set_new(d, "version", json_integer(2)); }
static void many_values(json_t *d) { /* 200,000 empty objects: megabytes parsed into far more */
    json_t *a = json_array();
    for (int i = 0; i < 200000; i++) json_array_append_new(a, json_object());
    json_object_set_new(d, "token_bytes", a);
}
static void too_big(json_t *d) {
    json_t *r = json_object_get(d, "ranks");
    for (int i = 0; i < NC_BPE_MAX_VOCAB; i++) json_array_append_new(r, json_string("QUFB"));
}

START_TEST(malformed_tokenizers_are_refused) {
    refused(drop_byte, "byte 0x41");
    refused(duplicate_rank, "the same bytes");
    refused(bad_base64, "ranks[7]");
    refused(bad_pattern, "pattern");
    refused(special_gap, "special[1]");
    refused(wrong_count, "token_bytes[300]");
    refused(newer, "version");
    refused(too_big, "65536 tokens");
    refused(many_values, "more JSON values");
}
END_TEST

/* The fixture's tokenizer with another pattern (NULL when it does not parse; err says why). */
static nc_bpe *with_pattern(const char *pattern, nc_error *err) {
    size_t len;
    char *text = slurp("tokenizer.json", &len);
    json_t *doc = json_loads(text, 0, NULL);
    json_object_set_new(doc, "pattern", json_string(pattern));
    char *forged = json_dumps(doc, JSON_COMPACT);
    nc_bpe *t = nc_bpe_parse(forged, strlen(forged), err);
    free(forged), free(text);
    json_decref(doc);
    return t;
}

/* Encoding 63 bytes ("a" ... "ab") with t fails with BadRequest naming a PCRE2 limit. */
static void fails_at_a_limit(nc_bpe *t) {
    char input[64];
    memset(input, 'a', sizeof input - 1);
    input[sizeof input - 2] = 'b';
    int32_t *ids = NULL;
    size_t count = 0, cap = 0;
    nc_error err = {0};
    ck_assert_int_eq(nc_bpe_encode(t, input, sizeof input - 1, &ids, &count, &cap, NULL, &err), -1);
    ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
    ck_assert_msg(strstr(err.message, "limit"), "%s", err.message);
    free(ids);
    nc_bpe_free(t);
}

/* Forged patterns stop at PCRE2's limits (BadRequest, in milliseconds), never hang or take the
 * machine's memory: one that backtracks without end, and one that would grow the interpreter's
 * heap without bound (JIT turned off by the pattern itself). Constructs the \s rewriting does not
 * follow are refused. */
START_TEST(forged_patterns_are_refused_or_stop_at_a_limit) {
    nc_error err = {0};
    nc_bpe *t = with_pattern("(a+)+$|\\s+|.", &err);
    ck_assert_msg(t, "%s", err.message);
    fails_at_a_limit(t);
    char heavy[8192] = "(*NO_JIT)(?:";
    for (int i = 0; i < 1000; i++) strcat(heavy, "()");
    strcat(heavy, "a|b)*c|.");
    ck_assert_msg(t = with_pattern(heavy, &err), "%s", err.message);
    fails_at_a_limit(t);
    ck_assert_ptr_null(with_pattern("[[:alpha:]\\s]+|.", &err));
    ck_assert_ptr_null(with_pattern("\\Q\\s\\E|.", &err));
    char *longest = calloc(NC_BPE_MAX_PATTERN + 2, 1);
    memset(longest, 'a', NC_BPE_MAX_PATTERN + 1);
    ck_assert_ptr_null(with_pattern(longest, &err));
    free(longest);
}
END_TEST

static bool stop_now(void *ctx) { return ++*(int *)ctx > 0; }
static bool stop_second(void *ctx) { return ++*(int *)ctx > 1; }

/* A stop hook (the daemon's cancel and heartbeat) is polled at once, then every NC_BPE_POLL_S. */
START_TEST(a_long_encoding_stops_when_asked) {
    nc_bpe *t = fixture_tokenizer();
    size_t n = 1024;
    char *text = malloc(n);
    for (size_t i = 0; i < n; i += 2) text[i] = 'a', text[i + 1] = ' ';
    int polls = 0;
    nc_stop stop = {stop_now, &polls};
    int32_t *ids = NULL;
    size_t count = 0, cap = 0;
    nc_error err = {0};
    ck_assert_int_eq(nc_bpe_encode(t, text, n, &ids, &count, &cap, &stop, &err), -1);
    ck_assert_int_eq(err.code, NC_E_CANCELLED);
    ck_assert_int_eq(polls, 1);
    free(ids), free(text);
    nc_bpe_free(t);
    /* a forged pattern that takes tens of milliseconds at every position (within PCRE2's limits):
     * the poll comes between positions, every NC_BPE_POLL_S, so a cancel lands at once */
    char slow[256] = "(*NO_JIT)(*NO_START_OPT)(?:";
    for (int i = 0; i < 20; i++) strcat(slow, "(?:a|a)");
    strcat(slow, ")[yz]");
    ck_assert_msg(t = with_pattern(slow, &err), "%s", err.message);
    char as[65536];
    memset(as, 'a', sizeof as);
    polls = 0;
    stop = (nc_stop){stop_second, &polls};
    double t0 = nc_now();
    ck_assert_int_eq(nc_bpe_encode(t, as, sizeof as, &ids, &count, &cap, &stop, &err), -1);
    ck_assert_int_eq(err.code, NC_E_CANCELLED);
    ck_assert_msg(nc_now() - t0 < 2.0, "cancelled after %.1f s", nc_now() - t0);
    free(ids);
    nc_bpe_free(t);
}
END_TEST

/* A megabyte of letters is one piece of the split: its merges take O(n log n), not O(n^2) (which
 * would stall the daemon for hours: Check's timeout fails that); ids as the fixture's long_piece. */
START_TEST(a_megabyte_piece_encodes_quickly) {
    nc_bpe *t = fixture_tokenizer();
    const char *word = "thequickbrownfoxjumpsoverthelazydog";
    size_t wn = strlen(word), n = 30000 * wn;
    char *text = malloc(n);
    for (size_t i = 0; i < n; i += wn) memcpy(text + i, word, wn);
    int32_t *ids = NULL;
    size_t count = 0, cap = 0;
    nc_error err = {0};
    ck_assert_int_eq(nc_bpe_encode(t, text, n, &ids, &count, &cap, NULL, &err), 0);
    size_t got = 0;
    for (size_t i = 0; i < count; i++) {
        size_t len;
        nc_bpe_bytes(t, ids[i], &len);
        got += len;
    }
    ck_assert_uint_eq(got, n);
    free(ids), free(text);
    nc_bpe_free(t);
}
END_TEST

START_TEST(special_tokens_and_token_bytes) {
    nc_bpe *t = fixture_tokenizer();
    int bos = nc_bpe_special(t, "<|bos|>");
    ck_assert_int_eq(bos, nc_bpe_vocab(t) - 9);
    ck_assert_int_eq(nc_bpe_token_bytes(t, bos), 0);
    size_t len;
    const uint8_t *b = nc_bpe_bytes(t, bos, &len);
    ck_assert(len == 7 && memcmp(b, "<|bos|>", 7) == 0);
    ck_assert_int_eq(nc_bpe_token_bytes(t, 'a'), 1); /* the first 256 ranks are the bytes, in order */
    ck_assert_ptr_null(nc_bpe_bytes(t, nc_bpe_vocab(t), &len));
    /* the text "<|bos|>" is ordinary text: never the special token */
    int32_t *ids = NULL;
    size_t count = 0, cap = 0;
    nc_error err = {0};
    ck_assert_int_eq(nc_bpe_encode(t, "<|bos|>", 7, &ids, &count, &cap, NULL, &err), 0);
    for (size_t i = 0; i < count; i++) ck_assert_int_lt(ids[i], bos);
    free(ids);
    nc_bpe_free(t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("bpe");
    tu_tcase(s, "bpe", ids_are_tiktokens_and_decode_gives_the_text_back, invalid_utf8_is_repaired_as_python_does,
             malformed_tokenizers_are_refused, forged_patterns_are_refused_or_stop_at_a_limit, a_long_encoding_stops_when_asked,
             a_megabyte_piece_encodes_quickly,
             special_tokens_and_token_bytes);
    return tu_run(s);
}
