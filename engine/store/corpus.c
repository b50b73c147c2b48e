/* corpus.c: a corpus loaded: vocabulary, split, styles. */
#include "corpus.h"
#include "core/memory.h"

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
