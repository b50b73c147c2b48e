/* decode.c: incremental decoding with a KV cache, through the training
 * forward: each layer's new q, k, v rows land in its cache, attention reads
 * the cached keys, rotary continues from the absolute position, and smear
 * uses the previous token's embedding. The caches keep only the keys any
 * window can still reach (the last seq_len), so decoding runs on up to the
 * rotary tables' 10 x seq_len positions in bounded memory. */
#include "internal.h"

#include <stdlib.h>

#define OPS (m->be->ops)
#define CHUNK 64 /* tokens per forward pass */

struct nc_decoder {
    nc_model *m;
    gpt_buffers buf; /* for CHUNK tokens, no backward */
    void **kv;       /* (L) caches, each (cap, 3C) act */
    int cap, cached; /* rows per cache; rows in use */
    int64_t pos;     /* absolute position of the next token */
    void *prev;      /* (1, C) act embedding of the last token fed */
    float *logits;   /* (1, V) f32 */
};

void gpt_decoder_free(nc_decoder *d) {
    if (!d) return;
    nc_model *m = d->m;
    gpt_buffers_free(m, &d->buf);
    for (int l = 0; d->kv && l < m->g.n_layer; l++)
        if (d->kv[l]) OPS->free(m->be, d->kv[l]);
    free(d->kv);
    if (d->prev) OPS->free(m->be, d->prev);
    if (d->logits) OPS->free(m->be, d->logits);
    free(d);
}

nc_decoder *gpt_decoder_new(nc_model *m, nc_error *err) {
    nc_decoder *d = calloc(1, sizeof *d);
    if (!d) return nc_fail(err, NC_E_INTERNAL, "out of memory"), NULL;
    size_t act = nc_dtype_size(m->be->act), C = (size_t)m->g.n_embd;
    *d = (nc_decoder){.m = m, .cap = 2 * m->g.seq_len + CHUNK};
    if (gpt_buffers_init(m, &d->buf, CHUNK, false, err)) {
        gpt_decoder_free(d);
        return NULL;
    }
    bool ok = (d->kv = calloc((size_t)m->g.n_layer, sizeof *d->kv)) != NULL;
    for (int l = 0; ok && l < m->g.n_layer; l++) ok = (d->kv[l] = OPS->alloc(m->be, act * (size_t)d->cap * 3 * C));
    ok = ok && (d->prev = OPS->alloc(m->be, act * C)) && (d->logits = OPS->alloc(m->be, sizeof(float) * (size_t)m->g.vocab));
    if (!ok) {
        gpt_decoder_free(d);
        return nc_fail(err, NC_E_INTERNAL, "out of memory for the KV cache"), NULL;
    }
    return d;
}

/* Keeps the last seq_len rows of every cache (the most any window reaches back). */
static void compact(nc_decoder *d) {
    nc_model *m = d->m;
    int keep = d->cached < m->g.seq_len ? d->cached : m->g.seq_len;
    int64_t row = 3 * (int64_t)m->g.n_embd;
    for (int l = 0; l < m->g.n_layer; l++)
        OPS->copy(m->be, d->kv[l], gpt_at(m, d->kv[l], (d->cached - keep) * row),
                  (size_t)(keep * row) * nc_dtype_size(m->be->act));
    d->cached = keep;
}

/* n <= CHUNK tokens; leaves the last one's logits in buf.logits row 0. */
static void feed_chunk(nc_decoder *d, const int32_t *ids, int n) {
    nc_model *m = d->m;
    if (d->cached + n > d->cap) compact(d);
    OPS->upload(m->be, d->buf.ids, ids, sizeof(int32_t) * (size_t)n);
    gpt_pass p = {.B = 1, .T = n, .pos0 = (int)d->pos, .prev = d->pos ? d->prev : NULL, .kv = d->kv,
                  .cached = d->cached, .logit_row = n - 1, .logit_rows = 1};
    gpt_forward(m, &d->buf, &p);
    size_t act = nc_dtype_size(m->be->act);
    OPS->copy(m->be, d->prev, gpt_at(m, d->buf.emb, (int64_t)(n - 1) * m->g.n_embd), act * (size_t)m->g.n_embd);
    d->cached += n;
    d->pos += n;
}

int gpt_decoder_feed(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err) {
    nc_model *m = d->m;
    int64_t limit = (int64_t)GPT_ROPE_SPAN * m->g.seq_len;
    if (n < 1) return nc_fail(err, NC_E_BAD_REQUEST, "decoder_feed needs at least one token");
    if (d->pos + n > limit)
        return nc_fail(err, NC_E_BAD_REQUEST, "decoding past %lld positions (10 x seq_len, as upstream)", (long long)limit);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->g.vocab)
            return nc_fail(err, NC_E_BAD_REQUEST, "token %d is outside the vocabulary", ids[i]);
    for (int i = 0; i < n; i += CHUNK) feed_chunk(d, ids + i, n - i < CHUNK ? n - i : CHUNK);
    OPS->softcap(m->be, d->logits, d->buf.logits, 1, m->g.vocab, m->g.padded_vocab, GPT_SOFTCAP);
    OPS->download(m->be, logits, d->logits, sizeof(float) * (size_t)m->g.vocab);
    return OPS->sync(m->be, err);
}
