/* tokenize.c: the tokenize command: a text's token ids and each token's
 * bytes, under a BPE tokenizer from a folder or the resident model's own
 * tokenizer. The text and the folder are client paths: read only inside the
 * daemon's folders (store/files.h). */
#include "engine/engine.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int nc_tokenize_check(const void *args, nc_error *err) {
    const nc_tokenize_cfg *a = args;
    if (!a->text[0] == !a->file[0]) return nc_fail(err, NC_E_BAD_REQUEST, "give one of args.text and args.file");
    return 0;
}

/* {tokenizer, vocab_size, count, ids, tokens (each token's bytes in hex: a BPE token may end inside a character)} */
static json_t *tokens_of(const nc_tokenizer *t, const char *text, size_t len, const nc_sink *sink, nc_error *err) {
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    nc_stop stop = nc_sink_stop(sink);
    int rc = nc_tokenizer_encode(t, text, len, &ids, &n, &cap, &stop, err);
    if (rc == 0 && n > NC_TOKENIZE_MAX_TOKENS)
        rc = nc_fail(err, NC_E_BAD_REQUEST, "the text is %zu tokens; a reply lists at most %d (tokenize less text)", n,
                     NC_TOKENIZE_MAX_TOKENS);
    if (rc) {
        free(ids);
        return NULL;
    }
    json_t *jids = json_array(), *jtok = json_array();
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[4];
        size_t bn;
        const uint8_t *b = nc_tokenizer_bytes(t, ids[i], buf, &bn);
        char h[2 * NC_BPE_MAX_TOKEN + 1];
        for (size_t k = 0; k < bn; k++) snprintf(h + 2 * k, 3, "%02x", b[k]);
        h[2 * bn] = 0;
        json_array_append_new(jids, json_integer(ids[i]));
        json_array_append_new(jtok, json_string(h));
    }
    free(ids);
    return json_pack("{s:s, s:i, s:I, s:o, s:o}", "tokenizer", nc_tokenizer_kind(t), "vocab_size",
                     nc_tokenizer_size(t), "count", (json_int_t)n, "ids", jids, "tokens", jtok);
}

json_t *nc_cmd_tokenize(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    const nc_tokenize_cfg *a = args;
    size_t len = strlen(a->text);
    char *text = a->file[0] ? nc_engine_read(e, a->file, NC_TOKENIZE_MAX_BYTES, "file", &len, err) : strdup(a->text);
    if (!text) {
        if (!a->file[0]) nc_fail(err, NC_E_INTERNAL, "out of memory");
        return NULL;
    }
    nc_tokenizer bpe = {0};
    json_t *res = NULL;
    if (a->tokenizer[0] ? nc_engine_tokenizer(e, a->tokenizer, &bpe, err) == 0 : nc_require_model(&e->res, err) == 0)
        res = tokens_of(a->tokenizer[0] ? &bpe : &e->res.tok, text, len, sink, err);
    nc_tokenizer_free(&bpe);
    free(text);
    return res;
}
