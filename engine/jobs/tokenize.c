/* tokenize.c: the tokenize command: a text's token ids and each token's
 * bytes, under a BPE tokenizer from a folder (tokenizer/bpe.h) or the
 * resident model's characters. The text and the folder are client paths:
 * read only inside the daemon's folders (store/files.h). */
#include "engine/engine.h"
#include "engine/store/files.h"
#include "tokenizer/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_TOKENIZER_BYTES (64 << 20) /* a 65,536-token tokenizer.json is about 1 MB */

int nc_tokenize_check(const void *args, nc_error *err) {
    const nc_tokenize_cfg *a = args;
    if (!a->text[0] == !a->file[0]) return nc_fail(err, NC_E_BAD_REQUEST, "give one of args.text and args.file");
    return 0;
}

/* The file at a client's path (read access, at most max bytes), NUL-terminated. */
static char *read_client_file(nc_engine *e, const char *path, int64_t max, const char *what, size_t *len,
                              nc_error *err) {
    char real[PATH_MAX], *text;
    if (nc_resolve(&e->folders, path, NULL, NC_ACCESS_READ, what, real, err) ||
        nc_read_file(real, max, what, &text, len, err))
        return NULL;
    return text;
}

static nc_bpe *load_tokenizer(nc_engine *e, const char *dir, nc_error *err) {
    char path[PATH_MAX + 32];
    size_t len;
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer.json", dir) >= sizeof path) {
        nc_fail(err, NC_E_BAD_REQUEST, "args.tokenizer is too long");
        return NULL;
    }
    char *json = read_client_file(e, path, MAX_TOKENIZER_BYTES, "tokenizer", &len, err);
    nc_bpe *t = json ? nc_bpe_parse(json, len, err) : NULL;
    free(json);
    return t;
}

/* The result: {tokenizer, vocab_size, ids, tokens (each token's bytes in hex)}, count added at the end. */
static json_t *result(const char *kind, int vocab) {
    return json_pack("{s:s, s:i, s:[], s:[]}", "tokenizer", kind, "vocab_size", vocab, "ids", "tokens");
}

static void add(json_t *res, int32_t id, const uint8_t *b, size_t n) {
    char h[2 * NC_BPE_MAX_TOKEN + 1];
    for (size_t i = 0; i < n; i++) snprintf(h + 2 * i, 3, "%02x", b[i]);
    h[2 * n] = 0;
    json_array_append_new(json_object_get(res, "ids"), json_integer(id));
    json_array_append_new(json_object_get(res, "tokens"), json_string(h));
}

static json_t *by_bpe(nc_engine *e, const char *dir, const char *text, size_t len, nc_error *err) {
    nc_bpe *t = load_tokenizer(e, dir, err);
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    json_t *res = NULL;
    if (t && nc_bpe_encode(t, text, len, &ids, &n, &cap, err) == 0) {
        res = result("bpe", nc_bpe_vocab(t));
        for (size_t i = 0; i < n; i++) {
            size_t bn;
            const uint8_t *b = nc_bpe_bytes(t, ids[i], &bn);
            add(res, ids[i], b, bn);
        }
    }
    free(ids);
    nc_bpe_free(t);
    return res;
}

static json_t *by_characters(nc_engine *e, const char *text, nc_error *err) {
    const nc_vocab *v = &e->res.vocab;
    int32_t *ids = NULL;
    size_t n = 0;
    if (nc_require_model(&e->res, err) || nc_encode(v, text, &ids, &n, err)) return NULL;
    json_t *res = result("characters", v->size);
    for (size_t i = 0; i < n; i++) {
        char b[4];
        add(res, ids[i], (const uint8_t *)b, (size_t)nc_utf8_put(b, v->cps[ids[i]]));
    }
    free(ids);
    return res;
}

json_t *nc_cmd_tokenize(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    (void)sink;
    const nc_tokenize_cfg *a = args;
    size_t len = strlen(a->text);
    char *text = a->file[0] ? read_client_file(e, a->file, NC_TOKENIZE_MAX_BYTES, "file", &len, err) : strdup(a->text);
    if (!text) {
        if (!a->file[0]) nc_fail(err, NC_E_INTERNAL, "out of memory");
        return NULL;
    }
    json_t *res = a->tokenizer[0] ? by_bpe(e, a->tokenizer, text, len, err) : by_characters(e, text, err);
    free(text);
    if (res) json_object_set_new(res, "count", json_integer((json_int_t)json_array_size(json_object_get(res, "ids"))));
    return res;
}
