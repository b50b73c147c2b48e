/* tokenizer.c: characters or a BPE behind one interface (tokenizer.h). */
#include "tokenizer.h"

#include "core/memory.h"

#include <nettle/sha2.h>
#include <stdlib.h>
#include <string.h>

int nc_tokenizer_bpe(nc_tokenizer *t, const char *json, size_t len, nc_error *err) {
    memset(t, 0, sizeof *t);
    if (!(t->bpe = nc_bpe_parse(json, len, err))) return -1;
    t->json = nc_xmalloc(len + 1);
    memcpy(t->json, json, len);
    t->json[len] = 0;
    t->json_len = len;
    return 0;
}

int nc_tokenizer_copy(nc_tokenizer *dst, const nc_tokenizer *src) {
    nc_error ignored;
    if (src->bpe) return nc_tokenizer_bpe(dst, src->json, src->json_len, &ignored);
    memset(dst, 0, sizeof *dst);
    return nc_vocab_copy(&dst->chars, &src->chars);
}

void nc_tokenizer_free(nc_tokenizer *t) {
    nc_vocab_free(&t->chars);
    nc_bpe_free(t->bpe);
    free(t->json);
    memset(t, 0, sizeof *t);
}

bool nc_tokenizer_equal(const nc_tokenizer *a, const nc_tokenizer *b) {
    if (!a->bpe != !b->bpe) return false;
    if (a->bpe) return a->json_len == b->json_len && memcmp(a->json, b->json, a->json_len) == 0;
    return a->chars.size == b->chars.size &&
           memcmp(a->chars.cps, b->chars.cps, sizeof *a->chars.cps * (size_t)a->chars.size) == 0;
}

void nc_sha256(const void *data, size_t n, uint8_t out[NC_TOKENIZER_HASH_BYTES]) {
    struct sha256_ctx ctx;
    sha256_init(&ctx);
    sha256_update(&ctx, n, data);
    sha256_digest(&ctx, NC_TOKENIZER_HASH_BYTES, out);
}

void nc_tokenizer_hash(const nc_tokenizer *t, uint8_t out[NC_TOKENIZER_HASH_BYTES]) { nc_sha256(t->json, t->json_len, out); }

void nc_hash_hex(const uint8_t h[NC_TOKENIZER_HASH_BYTES], char out[NC_TOKENIZER_HASH_HEX]) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < NC_TOKENIZER_HASH_BYTES; i++) out[2 * i] = digits[h[i] >> 4], out[2 * i + 1] = digits[h[i] & 15];
    out[2 * NC_TOKENIZER_HASH_BYTES] = 0;
}

int nc_tokenizer_size(const nc_tokenizer *t) { return t->bpe ? nc_bpe_vocab(t->bpe) : t->chars.size; }

int nc_tokenizer_longest(const nc_tokenizer *t) { return t->bpe ? nc_bpe_longest(t->bpe) : 4; }

const char *nc_tokenizer_kind(const nc_tokenizer *t) { return t->bpe ? "bpe" : "characters"; }

int nc_tokenizer_encode(const nc_tokenizer *t, const char *text, size_t n, int32_t **ids, size_t *count,
                        size_t *cap, const nc_stop *stop, nc_error *err) {
    return t->bpe ? nc_bpe_encode(t->bpe, text, n, ids, count, cap, stop, err)
                  : nc_encode(&t->chars, text, n, ids, count, cap, err);
}

const uint8_t *nc_tokenizer_bytes(const nc_tokenizer *t, int id, uint8_t buf[4], size_t *len) {
    if (t->bpe) return nc_bpe_bytes(t->bpe, id, len);
    if (id < 0 || id >= t->chars.size) return NULL;
    *len = (size_t)nc_utf8_put((char *)buf, t->chars.cps[id]);
    return buf;
}

int nc_tokenizer_byte_count(const nc_tokenizer *t, int id) {
    if (t->bpe) return nc_bpe_token_bytes(t->bpe, id);
    return id >= 0 && id < t->chars.size ? nc_utf8_len(t->chars.cps[id]) : 0;
}

char *nc_tokenizer_decode(const nc_tokenizer *t, const int32_t *ids, size_t n, size_t *len) {
    size_t cap = 64, k = 0;
    char *s = nc_xmalloc(cap);
    for (size_t i = 0; i < n; i++) {
        uint8_t buf[4];
        size_t m;
        const uint8_t *b = nc_tokenizer_bytes(t, ids[i], buf, &m);
        if (!b) continue;
        while (k + m + 1 > cap) s = nc_xrealloc(s, cap *= 2);
        memcpy(s + k, b, m);
        k += m;
    }
    s[k] = 0;
    *len = k;
    return s;
}
