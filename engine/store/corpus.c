/* corpus.c: a corpus loaded: its tokens (characters or a BPE's), split, styles. */
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

/* The split of c->ids for n base tokens and n_extra of the style's: train
 * (the first 90% of the base, then the style's), then val (the rest of the
 * base); returns the base tokens that train. */
static size_t split(nc_corpus *c, size_t n, size_t n_extra) {
    size_t n_train_base = n * 9 / 10;
    c->train = (nc_tokens){.ids = c->ids, .n = n_train_base + n_extra};
    c->val = (nc_tokens){.ids = c->ids + c->train.n, .n = n - n_train_base};
    return n_train_base;
}

static size_t alloc_split(nc_corpus *c, size_t n, size_t n_extra) {
    c->ids = nc_xmalloc((n + n_extra) * sizeof *c->ids);
    return split(c, n, n_extra);
}

/* One document in a BPE's tokens: <|bos|>, then the text's (malloc'd; NULL and err set on failure). */
static int32_t *document(const nc_tokenizer *t, const char *text, size_t len, size_t *n, const nc_stop *stop,
                         nc_error *err) {
    int bos = nc_bpe_special(t->bpe, "<|bos|>");
    if (bos < 0) {
        nc_fail(err, NC_E_BAD_REQUEST, "the tokenizer has no <|bos|> token to begin documents with");
        return NULL;
    }
    size_t cap = len / 4 + 16;
    int32_t *ids = nc_xmalloc(cap * sizeof *ids);
    ids[0] = bos;
    *n = 1;
    if (nc_bpe_encode(t->bpe, text, len, &ids, n, &cap, stop, err) == 0) return ids;
    free(ids);
    return NULL;
}

/* The corpus's ids become a text's BPE tokens (n, taken: freed on failure
 * too), with n_extra of a style's put after the part that trains. */
static int adopt(nc_corpus *c, int32_t *ids, size_t n, const int32_t *extra, size_t n_extra, nc_error *err) {
    if (n < 16) {
        free(ids);
        return nc_fail(err, NC_E_BAD_REQUEST, "corpus %s is too short (%zu tokens)", c->path, n);
    }
    c->ids = n_extra ? nc_xrealloc(ids, (n + n_extra) * sizeof *ids) : ids;
    size_t trained = split(c, n, n_extra);
    if (n_extra) { /* the base's validation part moves past the style's tokens */
        memmove(c->ids + trained + n_extra, c->ids + trained, (n - trained) * sizeof *ids);
        memcpy(c->ids + trained, extra, n_extra * sizeof *extra);
    }
    return 0;
}

static int load_bpe(nc_corpus *c, const char *text, size_t len, const nc_tokenizer *bpe, const char *st,
                    const nc_stop *stop, nc_error *err) {
    size_t n, n_extra = 0;
    if (nc_tokenizer_copy(&c->tok, bpe)) return nc_fail(err, NC_E_INTERNAL, "out of memory for a tokenizer");
    int32_t *ids = document(&c->tok, text, len, &n, stop, err), *extra = NULL;
    if (ids && *st && !(extra = document(&c->tok, st, strlen(st), &n_extra, stop, err))) {
        free(ids);
        ids = NULL;
    }
    int rc = ids ? adopt(c, ids, n, extra, n_extra, err) : -1;
    free(extra);
    return rc;
}

int nc_corpus_load(nc_corpus *c, const char *text, size_t len, const char *path, nc_style style,
                   const nc_tokenizer *bpe, const nc_stop *stop, nc_error *err) {
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->style = style;
    if (bpe) {
        int rc = load_bpe(c, text, len, bpe, nc_style_text(style), stop, err);
        if (rc) nc_corpus_free(c);
        return rc;
    }
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
    nc_vocab *vocab = &c->tok.chars;
    bool ok = nc_vocab_init(&base, cps, n) == 0 && nc_vocab_init(vocab, all, n + n_extra) == 0;
    free(all);
    if (!ok || vocab->size > NC_MAX_VOCAB) {
        int distinct = vocab->size;
        nc_vocab_free(&base);
        nc_corpus_free(c);
        free(cps);
        free(extra);
        if (!ok) return nc_fail(err, NC_E_INTERNAL, "out of memory for the vocabulary of corpus %s", path);
        return nc_fail(err, NC_E_BAD_REQUEST, "corpus %s has %d distinct characters, more than the %d a vocabulary may hold",
                       path, distinct, NC_MAX_VOCAB);
    }
    c->style_only = nc_xcalloc((size_t)vocab->size, 1);
    for (int i = 0; i < vocab->size; i++) c->style_only[i] = nc_vocab_id(&base, vocab->cps[i]) < 0;
    nc_vocab_free(&base);
    size_t trained = alloc_split(c, n, n_extra);
    map_ids(vocab, cps, trained, c->ids);
    map_ids(vocab, extra, n_extra, c->ids + trained);
    map_ids(vocab, cps + trained, c->val.n, c->ids + c->train.n);
    free(cps);
    free(extra);
    return 0;
}

int nc_corpus_from_ids(nc_corpus *c, int32_t *ids, size_t n, const char *path, const nc_tokenizer *bpe, nc_error *err) {
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s", path);
    if (nc_tokenizer_copy(&c->tok, bpe)) {
        free(ids);
        return nc_fail(err, NC_E_INTERNAL, "out of memory for a tokenizer");
    }
    if (adopt(c, ids, n, NULL, 0, err) == 0) return 0;
    nc_corpus_free(c);
    return -1;
}

int nc_corpus_load_shards(nc_corpus *c, const char *folder, const char *path, nc_style style, const nc_tokenizer *bpe,
                          nc_error *err) {
    memset(c, 0, sizeof *c);
    if (!bpe) return nc_fail(err, NC_E_BAD_REQUEST, "%s is a folder of token shards: name their tokenizer (--tokenizer DIR)", path);
    if (style != NC_STYLE_CLASSIC)
        return nc_fail(err, NC_E_BAD_REQUEST, "a style adds text; %s is a folder of token shards", path);
    snprintf(c->path, sizeof c->path, "%s", path);
    c->style = style;
    if (nc_tokenizer_copy(&c->tok, bpe)) return nc_fail(err, NC_E_INTERNAL, "out of memory for a tokenizer");
    if (nc_shards_open(&c->shards, folder, bpe, err)) {
        nc_corpus_free(c);
        return -1;
    }
    int n = c->shards.n, vocab = nc_tokenizer_size(bpe);
    c->train = nc_shards_tokens(&c->shards, 0, n - 1, vocab);
    c->val = nc_shards_tokens(&c->shards, n - 1, 1, vocab);
    return 0;
}

int nc_corpus_fits(const nc_corpus *c, int64_t seq_len, nc_error *err) {
    if ((size_t)seq_len + 1 < c->train.n && (size_t)seq_len + 1 < c->val.n) return 0;
    return nc_fail(err, NC_E_BAD_REQUEST, "args.seq_len %lld is too long for the corpus %s (%zu training, %zu validation tokens)",
                   (long long)seq_len, c->path, c->train.n, c->val.n);
}

void nc_corpus_free(nc_corpus *c) {
    nc_tokenizer_free(&c->tok);
    nc_shards_close(&c->shards);
    free(c->style_only);
    free(c->ids);
    memset(c, 0, sizeof *c);
}
