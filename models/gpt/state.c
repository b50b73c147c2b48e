/* state.c: weights, gradients and optimizer state as named host tensors.
 * Weights carry upstream's state_dict names and shapes; the optimizer state
 * is "optim.<name>.exp_avg" / ".exp_avg_sq" (AdamW), ".momentum_buffer" /
 * ".second_momentum_buffer" (Muon, (R, 1) or (1, C)); the step it has seen
 * is the snapshot's (the checkpoint's header carries it). */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define OPS (m->be->ops)

static int64_t numel(const gpt_tensor *t) { return t->ndim == 1 ? t->shape[0] : t->shape[0] * t->shape[1]; }
static bool is_muon(const gpt_layout *lay, const gpt_tensor *t) { return t->offset < lay->lm_head; }

/* One optimizer state tensor of parameter t: its name, shape and device data. */
typedef struct state_ref {
    char name[160];
    int ndim;
    int64_t shape[2];
    float *dev;
    int64_t n;
} state_ref;

/* Its name and shape (no data). */
static state_ref state_shape(const gpt_layout *lay, const gpt_tensor *t, bool second) {
    state_ref r = {.ndim = t->ndim, .shape = {t->shape[0], t->shape[1]}, .n = numel(t)};
    bool muon = is_muon(lay, t);
    const char *what = second ? (muon ? "second_momentum_buffer" : "exp_avg_sq") : (muon ? "momentum_buffer" : "exp_avg");
    snprintf(r.name, sizeof r.name, "optim.%s.%s", t->name, what);
    if (second && muon) {
        bool rows = t->shape[0] >= t->shape[1];
        r.shape[0] = rows ? t->shape[0] : 1;
        r.shape[1] = rows ? 1 : t->shape[1];
    }
    return r;
}

static state_ref state_of(nc_model *m, const gpt_tensor *t, bool second) {
    state_ref r = state_shape(&m->lay, t, second);
    if (second) r.dev = nc_muonadamw_second(m->opt, t->offset, numel(t), &r.n);
    else r.dev = nc_muonadamw_first(m->opt, t->offset);
    return r;
}

int gpt_state_spec(const nc_model_cfg *cfg, int V, bool optimizer, nc_tensor_list *out, nc_error *err) {
    nc_gpt_config g;
    gpt_layout lay;
    if (nc_gpt_config_init(&g, cfg, V, err) || gpt_layout_init(&lay, &g, err)) return -1;
    int rc = 0;
    for (int i = 0; rc == 0 && i < lay.count; i++) {
        const gpt_tensor *t = &lay.tensors[i];
        rc = nc_tensors_declare(out, t->name, t->ndim, t->shape);
        for (int second = 0; rc == 0 && optimizer && second < 2; second++) {
            state_ref r = state_shape(&lay, t, second);
            rc = nc_tensors_declare(out, r.name, r.ndim, r.shape);
        }
    }
    gpt_layout_free(&lay);
    return rc ? nc_fail(err, NC_E_INTERNAL, "out of memory") : 0;
}

static int add_download(nc_model *m, nc_tensor_list *out, const char *name, int ndim, const int64_t *shape,
                        const float *dev, int64_t n, nc_error *err) {
    nc_tensor *t = nc_tensors_add(out, name, ndim, shape);
    if (!t) return nc_fail(err, NC_E_INTERNAL, "out of memory exporting %s", name);
    OPS->download(m->be, t->data, dev, sizeof(float) * (size_t)n);
    return 0;
}

int gpt_export(nc_model *m, const float *arena, const char *prefix, nc_tensor_list *out, nc_error *err) {
    for (int i = 0; i < m->lay.count; i++) {
        const gpt_tensor *t = &m->lay.tensors[i];
        char name[160];
        snprintf(name, sizeof name, "%s%s", prefix, t->name);
        if (add_download(m, out, name, t->ndim, t->shape, arena + t->offset, numel(t), err)) return -1;
    }
    return 0;
}

int gpt_export_optimizer(nc_model *m, nc_tensor_list *out, nc_error *err) {
    for (int i = 0; i < m->lay.count; i++)
        for (int second = 0; second < 2; second++) {
            state_ref r = state_of(m, &m->lay.tensors[i], second);
            if (add_download(m, out, r.name, r.ndim, r.shape, r.dev, r.n, err)) return -1;
        }
    return 0;
}

/* The tensor of `in` named `name`, checked against the shape; NULL with err set. */
static const nc_tensor *find(const nc_tensor_list *in, const char *name, int ndim, const int64_t *shape,
                             nc_error *err) {
    const nc_tensor *t = nc_tensors_get(in, name);
    if (!t) return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s is missing", name), NULL;
    bool same = t->ndim == ndim;
    for (int d = 0; same && d < ndim; d++) same = t->shape[d] == shape[d];
    if (!same) return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s has the wrong shape", name), NULL;
    return t;
}

/* Checks every name and shape before anything changes; pass 2 uploads.
 * (Tensors `in` holds beyond these are refused by nc_state_check, which the
 * engine runs on every file before it imports.) */
static int import_pass(nc_model *m, const nc_tensor_list *in, bool optimizer, bool upload, nc_error *err) {
    for (int i = 0; i < m->lay.count; i++) {
        const gpt_tensor *t = &m->lay.tensors[i];
        const nc_tensor *src = find(in, t->name, t->ndim, t->shape, err);
        if (!src) return -1;
        if (upload) OPS->upload(m->be, m->params + t->offset, src->data, sizeof(float) * (size_t)numel(t));
        for (int second = 0; optimizer && second < 2; second++) {
            state_ref r = state_of(m, t, second);
            if (!(src = find(in, r.name, r.ndim, r.shape, err))) return -1;
            if (upload) OPS->upload(m->be, r.dev, src->data, sizeof(float) * (size_t)r.n);
        }
    }
    return 0;
}

int gpt_import(nc_model *m, const nc_tensor_list *in, bool optimizer, nc_error *err) {
    if (import_pass(m, in, optimizer, false, err)) return -1;
    import_pass(m, in, optimizer, true, err);
    return 0;
}
