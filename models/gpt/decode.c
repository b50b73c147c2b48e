/* decode.c: incremental decoding with a KV cache, through the training
 * forward: each layer's new q, k, v rows land in its cache, attention reads
 * the cached keys, rotary continues from the absolute position, and smear
 * uses the previous token's embedding.
 *
 * A session decodes `batch` sequences together. Their shared prompt is fed
 * once, as one sequence, into the prompt caches; at the first step the
 * prompt's rows are copied into every sequence's slot of the batch caches,
 * and from then on each step feeds one token per sequence in one forward
 * pass (B = batch, T = 1). The batch caches are position-major, (cap, batch,
 * 3C): a step's new rows are the pass's contiguous qkv rows, and attention
 * reads sequence b's keys at stride batch x 3C. With batch 1 the prompt
 * caches are the batch caches. The caches keep only the keys any window can
 * still reach (the last seq_len positions), so decoding runs on up to the
 * rotary tables' 10 x seq_len positions in bounded memory. */
#include "internal.h"

#include <stdlib.h>

#define OPS (m->be->ops)
#define CHUNK 64 /* prompt tokens per forward pass */

struct nc_decoder {
    nc_model *m;
    int batch;
    gpt_buffers buf;  /* for max(CHUNK, batch) tokens, no backward */
    void **kv;        /* (L) batch caches, each (cap, batch, 3C) act */
    void **prompt;    /* (L) prompt caches, each (cap, 3C) act; kv itself when batch is 1 */
    int cap, cached;  /* positions per cache; positions in use */
    int64_t pos;      /* absolute position of the next token */
    bool stepped;     /* a step ran: the sequences differ, the batch caches hold them */
    void *prev;       /* (batch, C) act embedding of each sequence's last token */
    float *logits;    /* (batch, V) f32 */
};

/* Positions a cache holds: the session's, at most what any window reaches
 * twice over plus a chunk (compacted to seq_len when full). */
static int cache_positions(const nc_model *m, int64_t positions) {
    int64_t most = 2 * (int64_t)m->g.seq_len + CHUNK;
    return (int)(positions > 0 && positions < most ? positions : most);
}

static int64_t buffer_tokens(int batch) { return batch > CHUNK ? batch : CHUNK; }

void gpt_decoder_footprint(const nc_model *m, int batch, int64_t positions, nc_footprint *out) {
    size_t act = nc_dtype_size(m->be->act);
    double C = m->g.n_embd, caches = (double)m->g.n_layer * cache_positions(m, positions) * 3 * C * (double)act *
                                     (batch + (batch > 1));
    double bytes = caches + (double)gpt_buffers_bytes(m, act, buffer_tokens(batch), batch, false) +
                   (double)batch * (C * (double)act + sizeof(float) * m->g.vocab);
    *out = (nc_footprint){.device = m->be->gpu ? bytes : 0, .host = m->be->gpu ? 0 : bytes};
}

static void free_caches(nc_model *m, void **caches) {
    for (int l = 0; caches && l < m->g.n_layer; l++)
        if (caches[l]) OPS->free(m->be, caches[l]);
    free(caches);
}

void gpt_decoder_free(nc_decoder *d) {
    if (!d) return;
    nc_model *m = d->m;
    gpt_buffers_free(m, &d->buf);
    if (d->prompt != d->kv) free_caches(m, d->prompt);
    free_caches(m, d->kv);
    if (d->prev) OPS->free(m->be, d->prev);
    if (d->logits) OPS->free(m->be, d->logits);
    free(d);
}

/* (L) caches of cap positions of `rows` sequences; NULL when out of memory. */
static void **new_caches(nc_model *m, int cap, int rows) {
    size_t bytes = nc_dtype_size(m->be->act) * (size_t)cap * (size_t)rows * 3 * (size_t)m->g.n_embd;
    void **c = calloc((size_t)m->g.n_layer, sizeof *c);
    for (int l = 0; c && l < m->g.n_layer; l++)
        if (!(c[l] = OPS->alloc(m->be, bytes))) {
            free_caches(m, c);
            return NULL;
        }
    return c;
}

nc_decoder *gpt_decoder_new(nc_model *m, int batch, int64_t positions, nc_error *err) {
    nc_decoder *d = calloc(1, sizeof *d);
    if (!d) return nc_fail(err, NC_E_INTERNAL, "out of memory"), NULL;
    size_t act = nc_dtype_size(m->be->act), C = (size_t)m->g.n_embd;
    *d = (nc_decoder){.m = m, .batch = batch, .cap = cache_positions(m, positions)};
    if (gpt_buffers_init(m, &d->buf, buffer_tokens(batch), batch, false, err)) {
        gpt_decoder_free(d);
        return NULL;
    }
    d->kv = new_caches(m, d->cap, batch);
    d->prompt = batch == 1 ? d->kv : new_caches(m, d->cap, 1);
    bool ok = d->kv && d->prompt && (d->prev = OPS->alloc(m->be, act * C * (size_t)batch)) &&
              (d->logits = OPS->alloc(m->be, sizeof(float) * (size_t)m->g.vocab * (size_t)batch));
    if (!ok) {
        gpt_decoder_free(d);
        return nc_fail(err, NC_E_INTERNAL, "out of memory for the KV caches of %d sequences", batch), NULL;
    }
    return d;
}

/* Keeps the last seq_len positions of every cache (the most any window
 * reaches back); a position is `rows` sequences' rows. */
static void compact(nc_decoder *d, void **caches, int rows) {
    nc_model *m = d->m;
    int keep = d->cached < m->g.seq_len ? d->cached : m->g.seq_len;
    int64_t row = 3 * (int64_t)m->g.n_embd * rows;
    for (int l = 0; l < m->g.n_layer; l++)
        OPS->copy(m->be, caches[l], gpt_at(m, caches[l], (d->cached - keep) * row),
                  (size_t)(keep * row) * nc_dtype_size(m->be->act));
    d->cached = keep;
}

/* One forward pass of B sequences of T tokens (B 1 or T 1) on `caches`;
 * the last token's embedding of each sequence becomes its prev. */
static void pass(nc_decoder *d, void **caches, const int32_t *ids, int B, int T) {
    nc_model *m = d->m;
    int64_t C = m->g.n_embd;
    if (d->cached + T > d->cap) compact(d, caches, B);
    OPS->upload(m->be, d->buf.ids, ids, sizeof(int32_t) * (size_t)(B * T));
    gpt_pass p = {.B = B, .T = T, .pos0 = (int)d->pos, .prev = d->pos ? d->prev : NULL, .kv = caches,
                  .cached = d->cached, .logit_row = B == 1 ? T - 1 : 0, .logit_rows = B};
    gpt_forward(m, &d->buf, &p);
    size_t act = nc_dtype_size(m->be->act);
    if (B == 1) OPS->copy(m->be, d->prev, gpt_at(m, d->buf.emb, (int64_t)(T - 1) * C), act * (size_t)C);
    else OPS->copy(m->be, d->prev, d->buf.emb, act * (size_t)(B * C));
    d->cached += T;
    d->pos += T;
}

/* The logits of the last pass's B rows, softcapped, into host logits (B, V). */
static int take_logits(nc_decoder *d, int B, float *logits, nc_error *err) {
    nc_model *m = d->m;
    OPS->softcap(m->be, d->logits, d->buf.logits, B, m->g.vocab, m->g.padded_vocab, GPT_SOFTCAP);
    OPS->download(m->be, logits, d->logits, sizeof(float) * (size_t)m->g.vocab * (size_t)B);
    return OPS->sync(m->be, err);
}

/* ids (count) in the vocabulary, and room for `advance` more positions. */
static int check_tokens(const nc_decoder *d, const int32_t *ids, int count, int advance, nc_error *err) {
    const nc_model *m = d->m;
    int64_t limit = (int64_t)GPT_ROPE_SPAN * m->g.seq_len;
    if (d->pos + advance > limit)
        return nc_fail(err, NC_E_BAD_REQUEST, "decoding past %lld positions (10 x seq_len, as upstream)", (long long)limit);
    for (int i = 0; i < count; i++)
        if (ids[i] < 0 || ids[i] >= m->g.vocab)
            return nc_fail(err, NC_E_BAD_REQUEST, "token %d is outside the vocabulary", ids[i]);
    return 0;
}

int gpt_decoder_feed(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err) {
    if (n < 1) return nc_fail(err, NC_E_BAD_REQUEST, "decoder_feed needs at least one token");
    if (d->stepped && d->batch > 1) return nc_fail(err, NC_E_BAD_REQUEST, "the %d sequences have diverged", d->batch);
    if (check_tokens(d, ids, n, n, err)) return -1;
    for (int i = 0; i < n; i += CHUNK) pass(d, d->prompt, ids + i, 1, n - i < CHUNK ? n - i : CHUNK);
    return take_logits(d, 1, logits, err);
}

/* The prompt's positions and last embedding into every sequence's slot. */
static void spread_prompt(nc_decoder *d) {
    nc_model *m = d->m;
    size_t act = nc_dtype_size(m->be->act), row = 3 * (size_t)m->g.n_embd * act, C = (size_t)m->g.n_embd * act;
    for (int l = 0; l < m->g.n_layer; l++)
        for (int b = 0; b < d->batch; b++)
            OPS->copy_rows(m->be, (char *)d->kv[l] + b * row, row * (size_t)d->batch, d->prompt[l], row, row,
                           (size_t)d->cached);
    for (int b = 1; b < d->batch; b++) OPS->copy(m->be, (char *)d->prev + b * C, d->prev, C);
}

int gpt_decoder_step(nc_decoder *d, const int32_t *ids, float *logits, nc_error *err) {
    if (d->pos == 0) return nc_fail(err, NC_E_BAD_REQUEST, "decoder_step needs a prompt fed first");
    if (check_tokens(d, ids, d->batch, 1, err)) return -1;
    if (!d->stepped && d->batch > 1) spread_prompt(d);
    d->stepped = true;
    pass(d, d->kv, ids, d->batch, 1);
    return take_logits(d, d->batch, logits, err);
}
