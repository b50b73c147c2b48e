/* tensors.c: named host tensors in lists. */
#include "tensors.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int64_t nc_tensor_numel(const nc_tensor *t) {
    int64_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= t->shape[i];
    return n;
}

/* A new entry at the end (geometric growth); NULL when out of memory. */
static nc_tensor *append(nc_tensor_list *l, const char *name, int ndim, const int64_t *shape) {
    if (l->count == l->cap) {
        int cap = l->cap ? 2 * l->cap : 16;
        nc_tensor *items = realloc(l->items, (size_t)cap * sizeof *items);
        if (!items) return NULL;
        l->items = items;
        l->cap = cap;
    }
    nc_tensor *t = &l->items[l->count];
    memset(t, 0, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ndim = ndim;
    for (int i = 0; i < ndim; i++) t->shape[i] = shape[i];
    return t;
}

nc_tensor *nc_tensors_add(nc_tensor_list *l, const char *name, int ndim, const int64_t *shape) {
    nc_tensor *t = append(l, name, ndim, shape);
    if (!t || !(t->data = calloc((size_t)nc_tensor_numel(t) + 1, sizeof(float)))) return NULL;
    l->count++;
    return t;
}

int nc_tensors_declare(nc_tensor_list *l, const char *name, int ndim, const int64_t *shape) {
    if (!append(l, name, ndim, shape)) return -1;
    l->count++;
    return 0;
}

const nc_tensor *nc_tensors_get(const nc_tensor_list *l, const char *name) {
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0) return &l->items[i];
    return NULL;
}

void nc_tensors_free(nc_tensor_list *l) {
    for (int i = 0; i < l->count; i++) free(l->items[i].data);
    free(l->items);
    *l = (nc_tensor_list){0};
}

int nc_tensors_take(const nc_tensor_list *l, const char *name, int ndim, const int64_t *shape, float *dst,
                    nc_error *err) {
    const nc_tensor *t = nc_tensors_get(l, name);
    if (!t) return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s is missing", name);
    bool same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s has the wrong shape", name);
    memcpy(dst, t->data, (size_t)nc_tensor_numel(t) * sizeof(float));
    return 0;
}

int nc_tensors_put(nc_tensor_list *l, const char *name, int ndim, const int64_t *shape, const float *src,
                   nc_error *err) {
    nc_tensor *t = nc_tensors_add(l, name, ndim, shape);
    if (!t) return nc_fail(err, NC_E_INTERNAL, "out of memory for tensor %s", name);
    memcpy(t->data, src, (size_t)nc_tensor_numel(t) * sizeof(float));
    return 0;
}

bool nc_tensors_remove(nc_tensor_list *l, const char *name) {
    for (int i = 0; i < l->count; i++)
        if (strcmp(l->items[i].name, name) == 0) {
            free(l->items[i].data);
            memmove(&l->items[i], &l->items[i + 1], sizeof *l->items * (size_t)(l->count - i - 1));
            l->count--;
            return true;
        }
    return false;
}
