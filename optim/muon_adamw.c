/* muon_adamw.c: MuonAdamW's groups, state and per-step hyperparameters, and
 * the Polar Express iteration as batched gemms. */
#include "muon_adamw.h"

#include "schedule.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Polar Express coefficients (a, b, c) for 5 iterations (arXiv:2505.16932),
 * as upstream. */
static const float polar_express[5][3] = {
    {8.156554524902461f, -22.48329292557795f, 15.878769915207462f},
    {4.042929935166739f, -2.808917465908714f, 0.5000178451051316f},
    {3.8916678022926607f, -2.772484153217685f, 0.5060648178503393f},
    {3.285753657755655f, -2.3681294933425376f, 0.46449024233003106f},
    {2.3465413258596377f, -1.7097828382687081f, 0.42323551169305323f},
};

struct nc_muonadamw {
    nc_backend *be;
    nc_muon_setup s;
    int64_t n_params, adamw_base;   /* adamw regions start at adamw_base */
    int64_t v2_offset[NC_OPT_MAX_GROUPS];
    float *state;                   /* first (n_params) | adamw second (n_params - adamw_base) | v2 */
    size_t state_bytes;
    void *hp;                       /* (n_adamw) nc_adamw_hp, then (n_muon) nc_muon_hp */
    void *x, *y, *a, *b;            /* Polar Express: (K, R, C) x2 and (K, s, s) x2, act */
};

static int64_t muon_side(const nc_muon_group *g) { return g->R >= g->C ? g->R : g->C; }
static int64_t muon_small(const nc_muon_group *g) { return g->R <= g->C ? g->R : g->C; }

static void free_buffers(nc_muonadamw *o) {
    void *bufs[] = {o->state, o->hp, o->x, o->y, o->a, o->b};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) o->be->ops->free(o->be, bufs[i]);
}

void nc_muonadamw_free(nc_muonadamw *o) {
    if (!o) return;
    free_buffers(o);
    free(o);
}

/* The sizes of the state and the Polar Express buffers, from the setup. */
typedef struct muon_sizes {
    int64_t adamw_base, v2, mat, sq;
    int64_t v2_offset[NC_OPT_MAX_GROUPS];
} muon_sizes;

static muon_sizes sizes_of(const nc_muon_setup *s, int64_t n_params) {
    muon_sizes z = {.adamw_base = n_params};
    for (int i = 0; i < s->n_adamw; i++)
        if (s->adamw[i].offset < z.adamw_base) z.adamw_base = s->adamw[i].offset;
    for (int i = 0; i < s->n_muon; i++) {
        const nc_muon_group *g = &s->muon[i];
        z.v2_offset[i] = z.v2;
        z.v2 += g->K * muon_side(g);
        if ((int64_t)g->K * g->R * g->C > z.mat) z.mat = (int64_t)g->K * g->R * g->C;
        if (g->K * muon_small(g) * muon_small(g) > z.sq) z.sq = g->K * muon_small(g) * muon_small(g);
    }
    return z;
}

int64_t nc_muonadamw_state_floats(const nc_muon_setup *s, int64_t n_params) {
    muon_sizes z = sizes_of(s, n_params);
    return 2 * n_params - z.adamw_base + z.v2;
}

double nc_muonadamw_bytes(const nc_muon_setup *s, int64_t n_params, size_t act) {
    muon_sizes z = sizes_of(s, n_params);
    double state = sizeof(float) * (double)nc_muonadamw_state_floats(s, n_params);
    return state + (double)act * (2.0 * (double)z.mat + 2.0 * (double)z.sq) +
           sizeof(nc_adamw_hp) * (double)s->n_adamw + sizeof(nc_muon_hp) * (double)s->n_muon;
}

nc_muonadamw *nc_muonadamw_new(nc_backend *be, const nc_muon_setup *s, int64_t n_params, nc_error *err) {
    nc_muonadamw *o = calloc(1, sizeof *o);
    if (!o) return nc_fail(err, NC_E_INTERNAL, "out of memory"), NULL;
    muon_sizes z = sizes_of(s, n_params);
    *o = (nc_muonadamw){.be = be, .s = *s, .n_params = n_params, .adamw_base = z.adamw_base};
    memcpy(o->v2_offset, z.v2_offset, sizeof o->v2_offset);
    int64_t mat = z.mat, sq = z.sq;
    o->state_bytes = sizeof(float) * (size_t)nc_muonadamw_state_floats(s, n_params);
    size_t act = nc_dtype_size(be->act);
    o->state = be->ops->alloc(be, o->state_bytes);
    o->hp = be->ops->alloc(be, sizeof(nc_adamw_hp) * (size_t)s->n_adamw + sizeof(nc_muon_hp) * (size_t)s->n_muon);
    o->x = be->ops->alloc(be, act * (size_t)mat);
    o->y = be->ops->alloc(be, act * (size_t)mat);
    o->a = be->ops->alloc(be, act * (size_t)sq);
    o->b = be->ops->alloc(be, act * (size_t)sq);
    if (!o->state || !o->hp || !o->x || !o->y || !o->a || !o->b) {
        nc_muonadamw_free(o);
        nc_fail(err, NC_E_INTERNAL, "out of %s memory for the optimizer state", be->name);
        return NULL;
    }
    return o;
}

static nc_adamw_hp *adamw_hps(const nc_muonadamw *o) { return o->hp; }
static nc_muon_hp *muon_hps(const nc_muonadamw *o) { return (nc_muon_hp *)(adamw_hps(o) + o->s.n_adamw); }

/* The step's hyperparameters into host (the layout of o->hp); t counts from 1. */
static void fill_hp(const nc_muonadamw *o, void *host, int64_t it, int64_t steps, int64_t t) {
    const nc_muon_setup *s = &o->s;
    double lrm = nc_lr_multiplier(it, steps, s->warmup_steps, s->warmdown_ratio, s->final_lr_frac);
    nc_adamw_hp *ah = host;
    nc_muon_hp *mh = (nc_muon_hp *)(ah + s->n_adamw);
    for (int i = 0; i < s->n_adamw; i++) {
        const nc_adamw_group *g = &s->adamw[i];
        float b1 = (float)g->beta1, b2 = (float)g->beta2; /* upstream's 0-D f32 tensors */
        ah[i] = (nc_adamw_hp){.lr = (float)(g->lr * lrm), .beta1 = b1, .beta2 = b2, .eps = (float)g->eps,
                              .wd = (float)g->wd, .bias1 = (float)(1.0 - pow(b1, (double)t)),
                              .bias2 = (float)(1.0 - pow(b2, (double)t))};
    }
    for (int i = 0; i < s->n_muon; i++) {
        const nc_muon_group *g = &s->muon[i];
        double shape = g->R > g->C ? sqrt((double)g->R / g->C) : 1.0;
        mh[i] = (nc_muon_hp){.lr = (float)(s->matrix_lr * lrm * shape),
                             .momentum = (float)nc_muon_momentum(it, steps, s->warmdown_ratio),
                             .wd = (float)nc_muon_weight_decay(it, steps, s->weight_decay),
                             .beta2 = (float)s->beta2};
    }
}

/* x (K, R, C) act -> its polar factor, in x or o->y; returns which. */
static void *polar_express_iterate(nc_muonadamw *o, const nc_muon_group *g) {
    nc_backend *be = o->be;
    nc_dtype t = be->act;
    int R = g->R, C = g->C, s = (int)muon_small(g);
    bool tall = R > C;
    int64_t size = (int64_t)R * C, ss = (int64_t)s * s;
    void *x = o->x, *y = o->y;
    for (int i = 0; i < 5; i++) {
        const float *k = polar_express[i];
        /* A = x x^T (wide) or x^T x (tall): (s, s) */
        nc_gemm a = {.m = s, .n = s, .k = tall ? R : C, .batch = g->K, .ta = tall, .tb = !tall, .symmetric = true,
                     .alpha = 1, .a = x, .at = t, .lda = C, .sa = size, .b = x, .bt = t, .ldb = C, .sb = size,
                     .d = o->a, .dt = t, .ldd = s, .sd = ss};
        /* B = b A + c A A (= c A A^T: A is symmetric) */
        nc_gemm b = {.m = s, .n = s, .k = s, .batch = g->K, .tb = true, .symmetric = true, .alpha = k[2], .beta = k[1],
                     .a = o->a, .at = t, .lda = s, .sa = ss, .b = o->a, .bt = t, .ldb = s, .sb = ss,
                     .c = o->a, .ldc = s, .sc = ss, .d = o->b, .dt = t, .ldd = s, .sd = ss};
        /* y = a x + B x (wide) or a x + x B (tall) */
        nc_gemm u = {.m = R, .n = C, .k = s, .batch = g->K, .alpha = 1, .beta = k[0],
                     .a = tall ? x : o->b, .at = t, .lda = tall ? C : s, .sa = tall ? size : ss,
                     .b = tall ? o->b : x, .bt = t, .ldb = tall ? s : C, .sb = tall ? ss : size,
                     .c = x, .ldc = C, .sc = size, .d = y, .dt = t, .ldd = C, .sd = size};
        be->ops->gemm(be, &a);
        be->ops->gemm(be, &b);
        be->ops->gemm(be, &u);
        void *swap = x;
        x = y;
        y = swap;
    }
    return x;
}

static void muon_group_step(nc_muonadamw *o, int i, float *params, float *grads) {
    nc_backend *be = o->be;
    const nc_muon_group *g = &o->s.muon[i];
    const nc_muon_hp *hp = muon_hps(o) + i;
    int64_t n = (int64_t)g->K * g->R * g->C;
    be->ops->muon_momentum(be, grads + g->offset, o->state + g->offset, n, hp);
    be->ops->muon_normalize(be, o->x, grads + g->offset, g->K, g->R, g->C);
    void *x = polar_express_iterate(o, g);
    float *v2 = o->state + 2 * o->n_params - o->adamw_base + o->v2_offset[i];
    be->ops->muon_finish(be, params + g->offset, x, v2, g->K, g->R, g->C, hp);
}

void nc_muonadamw_prepare(nc_muonadamw *o, int64_t it, int64_t steps, int64_t t) {
    size_t bytes = sizeof(nc_adamw_hp) * (size_t)o->s.n_adamw + sizeof(nc_muon_hp) * (size_t)o->s.n_muon;
    nc_adamw_hp host[2 * NC_OPT_MAX_GROUPS]; /* room for both kinds of records */
    fill_hp(o, host, it, steps, t);
    o->be->ops->upload(o->be, o->hp, host, bytes);
}

void nc_muonadamw_apply(nc_muonadamw *o, float *params, float *grads) {
    nc_backend *be = o->be;
    for (int i = 0; i < o->s.n_adamw; i++) {
        const nc_adamw_group *g = &o->s.adamw[i];
        float *second = o->state + o->n_params + (g->offset - o->adamw_base);
        be->ops->adamw(be, params + g->offset, grads + g->offset, o->state + g->offset, second, g->n,
                       adamw_hps(o) + i);
    }
    for (int i = 0; i < o->s.n_muon; i++) muon_group_step(o, i, params, grads);
}

void nc_muonadamw_step(nc_muonadamw *o, float *params, float *grads, int64_t it, int64_t steps, int64_t t) {
    nc_muonadamw_prepare(o, it, steps, t);
    nc_muonadamw_apply(o, params, grads);
}

float *nc_muonadamw_state(nc_muonadamw *o, int64_t *floats) {
    *floats = (int64_t)(o->state_bytes / sizeof(float));
    return o->state;
}

float *nc_muonadamw_first(nc_muonadamw *o, int64_t offset) { return o->state + offset; }

float *nc_muonadamw_second(nc_muonadamw *o, int64_t offset, int64_t numel, int64_t *n2) {
    if (offset >= o->adamw_base) {
        *n2 = numel;
        return o->state + o->n_params + (offset - o->adamw_base);
    }
    for (int i = 0; i < o->s.n_muon; i++) {
        const nc_muon_group *g = &o->s.muon[i];
        int64_t size = (int64_t)g->R * g->C;
        if (offset < g->offset || offset >= g->offset + g->K * size) continue;
        *n2 = muon_side(g);
        return o->state + 2 * o->n_params - o->adamw_base + o->v2_offset[i] + (offset - g->offset) / size * *n2;
    }
    *n2 = 0;
    return NULL;
}
