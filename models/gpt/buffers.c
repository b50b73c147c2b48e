/* buffers.c: a pass's activation buffers, carved from one allocation
 * (measured by a first carve with no base, then carved for real). */
#include "internal.h"

#include <stdlib.h>

typedef struct carver {
    char *base; /* NULL while measuring */
    size_t used;
    size_t act; /* bytes of an activation */
} carver;

static void *take(carver *c, size_t bytes) {
    void *p = c->base ? c->base + c->used : NULL;
    c->used += (bytes + 255) / 256 * 256;
    return p;
}

static void carve_layer(const nc_model *m, gpt_acts *a, carver *c, int64_t N, bool ve) {
    size_t act = c->act, C = (size_t)m->g.n_embd, H = (size_t)m->g.n_head, n = (size_t)N;
    a->ln1 = take(c, act * n * C);
    a->rstd1 = take(c, sizeof(float) * n);
    a->qkv = take(c, act * n * 3 * C);
    a->qk_rstd = take(c, sizeof(float) * n * 2 * H);
    a->gate = ve ? take(c, sizeof(float) * n * H) : NULL;
    a->att = take(c, act * n * C);
    a->lse = take(c, sizeof(float) * n * H);
    a->ln2 = take(c, act * n * C);
    a->rstd2 = take(c, sizeof(float) * n);
    a->fc = take(c, act * n * 4 * C);
    a->out = take(c, act * n * C);
}

static void carve_backward(const nc_model *m, gpt_buffers *b, carver *c) {
    size_t act = c->act, C = (size_t)m->g.n_embd, n = (size_t)b->capacity;
    void **nc[] = {&b->dres, &b->dxf, &b->dx0, &b->dln, &b->datt, &b->dve};
    for (size_t i = 0; i < sizeof nc / sizeof nc[0]; i++) *nc[i] = take(c, act * n * C);
    b->dqkv = take(c, act * n * 3 * C);
    b->dfc = take(c, act * n * 4 * C);
    b->work = take(c, sizeof(float) * n * (size_t)m->g.n_head);
}

static void carve(const nc_model *m, gpt_buffers *b, carver *c) {
    size_t act = c->act, C = (size_t)m->g.n_embd, n = (size_t)b->capacity;
    b->ids = take(c, sizeof(int32_t) * n);
    b->targets = take(c, sizeof(int32_t) * n);
    b->emb = take(c, act * n * C);
    b->rstd0 = take(c, sizeof(float) * n);
    b->x0 = take(c, act * n * C);
    for (int l = 0; l < m->g.n_layer; l++) carve_layer(m, &b->layer[l], c, b->capacity, m->lay.layer[l].ve >= 0);
    void **nc[] = {&b->xm, &b->xmid, &b->xf, &b->lnf};
    for (size_t i = 0; i < sizeof nc / sizeof nc[0]; i++) *nc[i] = take(c, act * n * C);
    b->act = take(c, act * n * 4 * C);
    b->rstdf = take(c, sizeof(float) * n);
    b->logits = take(c, act * (size_t)b->logit_capacity * (size_t)m->g.padded_vocab);
    b->losses = take(c, sizeof(float) * n);
    b->loss = take(c, sizeof(float));
    if (b->train) carve_backward(m, b, c);
}

size_t gpt_buffers_bytes(const nc_model *m, size_t act, int64_t capacity, int64_t logit_capacity, bool train) {
    gpt_acts layers[NC_GPT_MAX_LAYERS];
    gpt_buffers b = {.capacity = capacity, .logit_capacity = logit_capacity, .train = train, .layer = layers};
    carver c = {.act = act};
    carve(m, &b, &c);
    return c.used;
}

int gpt_buffers_init(nc_model *m, gpt_buffers *buf, int64_t capacity, int64_t logit_capacity, bool train,
                     nc_error *err) {
    *buf = (gpt_buffers){.capacity = capacity, .logit_capacity = logit_capacity, .train = train};
    buf->layer = calloc((size_t)m->g.n_layer, sizeof *buf->layer);
    carver c = {.act = nc_dtype_size(m->be->act)};
    if (buf->layer) carve(m, buf, &c);
    buf->arena = buf->layer ? m->be->ops->alloc(m->be, c.used) : NULL;
    if (!buf->arena) {
        gpt_buffers_free(m, buf);
        return nc_fail(err, NC_E_INTERNAL, "out of %s memory for %lld tokens of activations (%.1f MiB)",
                       m->be->name, (long long)capacity, (double)c.used / (1 << 20));
    }
    c = (carver){.base = buf->arena, .act = c.act};
    carve(m, buf, &c);
    return 0;
}

int64_t gpt_head_rows(const nc_model *m, int64_t n) {
    int64_t logits = m->be && m->be->gpu ? (int64_t)1 << 24 : (int64_t)1 << 21, rows = logits / m->g.padded_vocab;
    if (rows < 256) rows = 256;
    return rows < n ? rows : n;
}

void gpt_buffers_free(nc_model *m, gpt_buffers *buf) {
    if (buf->arena) m->be->ops->free(m->be, buf->arena);
    free(buf->layer);
    *buf = (gpt_buffers){0};
}
