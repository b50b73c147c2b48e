/* text.c: corpus loading, UTF-8, vocabulary, split, styles. */
#include "text.h"
#include "memory.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Written so that it contains characters tiny Shakespeare lacks: digits and
 * symbols. Appended to the training text by --style futuristic. */
static const char futuristic_text[] =
    "CAPTAIN NOVA:\nSet course for Kepler-442b; warp 9.75 in 3... 2... 1...\n\n"
    "ANDROID K-7:\nSystems at 100%. Fusion core: 4,096 TW. ETA <12h> @ 0.8c.\n\n"
    "CAPTAIN NOVA:\nLog entry #2187: the stars burn like code = {0, 1, 1, 2, 3, 5, 8}.\n\n"
    "ANDROID K-7:\nQuery: is love ~ signal + noise? Answer ^ 42 * [data] / 7.\n\n"
    "HOLOGRAM:\nUpload complete | 64 GB | checksum 0x5F3A | route /dev/neural/link_01\n\n"
    "CAPTAIN NOVA:\nThen let us sail, in 2525 or 3030, where $credits & @friends remain.\n\n";

const char *nc_style_text(nc_style style) { return style == NC_STYLE_FUTURISTIC ? futuristic_text : ""; }

int nc_utf8_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

int nc_utf8_put(char *b, uint32_t cp) {
    int n = nc_utf8_len(cp);
    if (n == 1) b[0] = (char)cp;
    else if (n == 2) { b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 0x3F)); }
    else if (n == 3) { b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[2] = (char)(0x80 | (cp & 0x3F)); }
    else { b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F)); }
    return n;
}

/* Decodes one code point at s (len bytes left); returns its length or 0 if invalid. */
static int utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    int n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (size_t)n > len) return 0;
    uint32_t c = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

int nc_utf8_decode(const char *s, size_t len, uint32_t **out, size_t *n, nc_error *err) {
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    if (!cps) return nc_fail(err, NC_E_INTERNAL, "out of memory decoding %zu bytes", len);
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        int m = utf8_next((const unsigned char *)s + i, len - i, &cps[k]);
        if (m == 0) {
            free(cps);
            return nc_fail(err, NC_E_BAD_REQUEST, "invalid UTF-8 at byte %zu", i);
        }
        i += (size_t)m;
        k++;
    }
    *out = cps;
    *n = k;
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int nc_vocab_init(nc_vocab *v, const uint32_t *cps, size_t n) {
    uint32_t *sorted = malloc((n + 1) * sizeof *sorted);
    if (!sorted) return -1;
    memcpy(sorted, cps, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || sorted[k - 1] != sorted[i]) sorted[k++] = sorted[i];
    v->size = (int)k;
    v->cps = sorted;
    return 0;
}

void nc_vocab_free(nc_vocab *v) {
    free(v->cps);
    v->cps = NULL;
    v->size = 0;
}

int nc_vocab_copy(nc_vocab *dst, const nc_vocab *src) {
    return nc_vocab_init(dst, src->cps, (size_t)src->size);
}

int nc_vocab_id(const nc_vocab *v, uint32_t cp) {
    int lo = 0, hi = v->size - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (v->cps[mid] == cp) return mid;
        if (v->cps[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int nc_encode(const nc_vocab *v, const char *text, int32_t **ids, size_t *n, nc_error *err) {
    uint32_t *cps;
    size_t m;
    if (nc_utf8_decode(text, strlen(text), &cps, &m, err)) return -1;
    int32_t *out = malloc((m + 1) * sizeof *out);
    if (!out) {
        free(cps);
        return nc_fail(err, NC_E_INTERNAL, "out of memory encoding %zu characters", m);
    }
    for (size_t i = 0; i < m; i++) {
        int id = nc_vocab_id(v, cps[i]);
        if (id < 0) {
            char ch[5] = {0};
            nc_utf8_put(ch, cps[i]);
            nc_fail(err, NC_E_UNKNOWN_CHARACTER, "character '%s' (U+%04X) at position %zu is not in the vocabulary",
                    cps[i] >= 0x20 ? ch : "?", cps[i], i);
            free(cps);
            free(out);
            return -1;
        }
        out[i] = id;
    }
    free(cps);
    *ids = out;
    *n = m;
    return 0;
}

int nc_vocab_check(const nc_vocab *model, const nc_vocab *corpus, const char *path, nc_error *err) {
    if (model->size == corpus->size && memcmp(model->cps, corpus->cps, (size_t)model->size * sizeof *model->cps) == 0)
        return 0;
    return nc_fail(err, NC_E_BAD_REQUEST, "the model's vocabulary differs from that of %s", path);
}

char *nc_decode(const nc_vocab *v, const int32_t *ids, size_t n) {
    char *s = nc_xmalloc(4 * n + 1), *p = s; /* n: a sample's tokens, within its request's bounds */
    for (size_t i = 0; i < n; i++)
        if (ids[i] >= 0 && ids[i] < v->size) p += nc_utf8_put(p, v->cps[ids[i]]);
    *p = '\0';
    return s;
}

static void map_ids(const nc_vocab *v, const uint32_t *cps, size_t n, int32_t *ids) {
    for (size_t i = 0; i < n; i++) ids[i] = nc_vocab_id(v, cps[i]);
}

int nc_corpus_load(nc_corpus *c, const char *text, size_t len, const char *path, nc_style style, nc_error *err) {
    memset(c, 0, sizeof *c);
    size_t n, n_extra;
    uint32_t *cps, *extra;
    if (nc_utf8_decode(text, len, &cps, &n, err)) {
        char why[sizeof err->message];
        snprintf(why, sizeof why, "%s", err->message);
        return nc_fail(err, NC_E_BAD_REQUEST, "corpus %s: %s", path, why);
    }
    const char *st = nc_style_text(style);
    if (nc_utf8_decode(st, strlen(st), &extra, &n_extra, err)) {
        free(cps);
        return -1;
    }
    if (n < 16) {
        free(cps);
        free(extra);
        return nc_fail(err, NC_E_BAD_REQUEST, "corpus %s is too short (%zu characters)", path, n);
    }
    /* every allocation below is within the corpus's bound (NC_CORPUS_BYTES_PER_BYTE) */
    nc_vocab base;
    uint32_t *all = nc_xmalloc((n + n_extra + 1) * sizeof *all);
    memcpy(all, cps, n * sizeof *all);
    memcpy(all + n, extra, n_extra * sizeof *all);
    bool ok = nc_vocab_init(&base, cps, n) == 0 && nc_vocab_init(&c->vocab, all, n + n_extra) == 0;
    free(all);
    if (!ok || c->vocab.size > NC_MAX_VOCAB) {
        int distinct = c->vocab.size;
        nc_vocab_free(&base);
        nc_corpus_free(c);
        free(cps);
        free(extra);
        if (!ok) return nc_fail(err, NC_E_INTERNAL, "out of memory for the vocabulary of corpus %s", path);
        return nc_fail(err, NC_E_BAD_REQUEST, "corpus %s has %d distinct characters, more than the %d a vocabulary may hold",
                       path, distinct, NC_MAX_VOCAB);
    }
    c->style_only = nc_xcalloc((size_t)c->vocab.size, 1);
    for (int i = 0; i < c->vocab.size; i++) c->style_only[i] = nc_vocab_id(&base, c->vocab.cps[i]) < 0;
    nc_vocab_free(&base);
    size_t n_train_base = n * 9 / 10;
    c->n_train = n_train_base + n_extra;
    c->n_val = n - n_train_base;
    c->train = nc_xmalloc(c->n_train * sizeof *c->train);
    c->val = nc_xmalloc(c->n_val * sizeof *c->val);
    map_ids(&c->vocab, cps, n_train_base, c->train);
    map_ids(&c->vocab, extra, n_extra, c->train + n_train_base);
    map_ids(&c->vocab, cps + n_train_base, c->n_val, c->val);
    free(cps);
    free(extra);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->style = style;
    return 0;
}

void nc_corpus_free(nc_corpus *c) {
    nc_vocab_free(&c->vocab);
    free(c->style_only);
    free(c->train);
    free(c->val);
    memset(c, 0, sizeof *c);
}
