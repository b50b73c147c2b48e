/* gpt_parity.h: a fixture dumped from upstream nanochat
 * (scripts/gen_reference_fixtures.py) and a GPT holding its initial
 * parameters, for the suites that hold the GPT against upstream
 * (test_gpt_parity on the cpu backend, tests/emu's test_emu_gpt on the
 * emulated cuda backend). */
#ifndef NC_TEST_GPT_PARITY_H
#define NC_TEST_GPT_PARITY_H

#include "test_gpt_common.h"

#include "engine/store/safetensors.h"

#include <stdio.h>
#include <string.h>

typedef struct parity {
    gpt_fixture f;
    nc_tensor_list ref;
    json_t *meta;
    int32_t *x, *y;
    nc_batch batch;
} parity;

static inline const char *meta_str(const parity *p, const char *key) {
    const char *s = json_string_value(json_object_get(p->meta, key));
    ck_assert_msg(s, "fixture metadata lacks %s", key);
    return s;
}

static inline const nc_tensor *ref(const parity *p, const char *name) {
    const nc_tensor *t = nc_tensors_get(&p->ref, name);
    ck_assert_msg(t, "fixture lacks %s", name);
    return t;
}

static inline int32_t *ids_of(const nc_tensor *t) {
    int64_t n = nc_tensor_numel(t);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    for (int64_t i = 0; i < n; i++) ids[i] = (int32_t)t->data[i];
    return ids;
}

/* The tensors named prefix + <param name>, renamed to the parameter names. */
static inline void strip_prefix(const nc_tensor_list *in, const char *prefix, nc_tensor_list *out) {
    size_t n = strlen(prefix);
    for (int i = 0; i < in->count; i++) {
        const nc_tensor *t = &in->items[i];
        if (strncmp(t->name, prefix, n) != 0) continue;
        nc_tensor *c = nc_tensors_add(out, t->name + n, t->ndim, t->shape);
        memcpy(c->data, t->data, sizeof(float) * (size_t)nc_tensor_numel(t));
    }
}

/* The fixture and a model on be (NULL: the cpu backend) with its initial parameters. */
static inline void parity_open(parity *p, const char *file, nc_backend *be) {
    char path[1024];
    nc_error err = {0};
    snprintf(path, sizeof path, "%s/%s", NC_FIXTURE_DIR, file);
    memset(p, 0, sizeof *p);
    ck_assert_msg(nc_safetensors_load(path, INT64_MAX, &p->ref, &p->meta, &err) == 0, "%s", err.message);
    const char *args = meta_str(p, "train_args");
    int V = atoi(meta_str(p, "vocab_size"));
    if (be) gpt_fixture_open_on(&p->f, args, V, be);
    else gpt_fixture_open(&p->f, args, V);
    nc_tensor_list init = {0};
    strip_prefix(&p->ref, "param.", &init);
    ck_assert_msg(nc_tensor_gpt_ops.import_state(p->f.m, &init, false, 0, &err) == 0, "%s", err.message);
    nc_tensors_free(&init);
    const nc_tensor *x = ref(p, "x");
    p->x = ids_of(x);
    p->y = ids_of(ref(p, "y"));
    p->batch = (nc_batch){p->x, p->y, (int)x->shape[0], (int)x->shape[1]};
}

static inline void parity_close(parity *p) {
    gpt_fixture_close(&p->f);
    nc_tensors_free(&p->ref);
    json_decref(p->meta);
    free(p->x);
    free(p->y);
}

/* Tensor t of ours beside the fixture's prefix + its name (upstream's) and,
 * when other is not NULL, other's tensor of its name: malloc'd rows (ours,
 * upstream's[, other's]) of t's size. With a base prefix, each row less the
 * fixture's base + name: for parameters after some steps and base "param.",
 * the updates themselves, a far stricter view than the parameters, which
 * barely move in 3 steps. name receives what is compared. */
static inline float *parity_rows(const parity *p, const nc_tensor *t, const nc_tensor_list *other,
                                 const char *prefix, const char *base, char name[256]) {
    int64_t n = nc_tensor_numel(t), rows = other ? 3 : 2;
    snprintf(name, 256, "%s%s", prefix, t->name);
    const nc_tensor *u = ref(p, name), *x = other ? nc_tensors_get(other, t->name) : NULL;
    ck_assert_msg(nc_tensor_numel(u) == n && (!other || (x && nc_tensor_numel(x) == n)), "%s: shapes differ", name);
    float *v = malloc(sizeof(float) * (size_t)(rows * n));
    memcpy(v, t->data, sizeof(float) * (size_t)n);
    memcpy(v + n, u->data, sizeof(float) * (size_t)n);
    if (x) memcpy(v + 2 * n, x->data, sizeof(float) * (size_t)n);
    if (base) {
        snprintf(name, 256, "%s%s", base, t->name);
        const float *before = ref(p, name)->data;
        for (int64_t j = 0; j < rows * n; j++) v[j] -= before[j % n];
        snprintf(name, 256, "%s%s (update)", prefix, t->name);
    }
    return v;
}

#endif
