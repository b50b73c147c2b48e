/* snapshot.c: the kept copy of a training state, whole or by ranges. */
#include "snapshot.h"
#include "core/memory.h"

#include <stdlib.h>
#include <string.h>

static void add_region(nc_snapshot *s, float *live, float *kept, int64_t n) {
    if (s->n == NC_SNAPSHOT_REGIONS) abort(); /* a model's few regions: a bug */
    s->live[s->n] = live;
    s->kept[s->n] = kept;
    s->floats[s->n++] = n;
}

int nc_snapshot_add(nc_snapshot *s, nc_backend *be, float *live, int64_t n, nc_error *err) {
    float *kept = be->ops->alloc(be, sizeof(float) * (size_t)n);
    if (!kept) return nc_fail(err, NC_E_INTERNAL, "out of %s memory for the last good state", be->name);
    s->be = be;
    add_region(s, live, kept, n);
    return 0;
}

void nc_snapshot_add_host(nc_snapshot *s, float *live, int64_t n) {
    add_region(s, live, nc_xcalloc(n ? (size_t)n : 1, sizeof(float)), n);
}

void nc_snapshot_free(nc_snapshot *s) {
    for (int r = 0; r < s->n; r++) {
        if (s->be) s->be->ops->free(s->be, s->kept[r]);
        else free(s->kept[r]);
    }
    free(s->ranges);
    *s = (nc_snapshot){0};
}

double nc_snapshot_bytes(int64_t floats) { return sizeof(float) * (double)floats; }

static void copy(const nc_snapshot *s, float *dst, const float *src, int64_t n) {
    if (s->be) s->be->ops->copy(s->be, dst, src, sizeof(float) * (size_t)n);
    else memcpy(dst, src, sizeof(float) * (size_t)n);
}

void nc_snapshot_begin(nc_snapshot *s) {
    s->kept_step = s->step++;
    s->n_ranges = 0;
    s->whole = false;
    s->can_undo = true;
}

void nc_snapshot_keep(nc_snapshot *s, int r, int64_t from, int64_t to) {
    if (s->n_ranges == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 64;
        s->ranges = nc_xrealloc(s->ranges, (size_t)s->cap * sizeof *s->ranges); /* an update's ranges: bounded by its batch */
    }
    s->ranges[s->n_ranges][0] = r;
    s->ranges[s->n_ranges][1] = from;
    s->ranges[s->n_ranges++][2] = to;
    copy(s, s->kept[r] + from, s->live[r] + from, to - from);
}

void nc_snapshot_save(nc_snapshot *s) {
    for (int r = 0; r < s->n; r++) copy(s, s->kept[r], s->live[r], s->floats[r]);
    s->whole = s->can_undo = true;
    s->kept_step = s->step;
}

void nc_snapshot_save_if(nc_snapshot *s, const float *ok) {
    for (int r = 0; r < s->n; r++) s->be->ops->copy_if(s->be, s->kept[r], s->live[r], sizeof(float) * (size_t)s->floats[r], ok);
    s->whole = s->can_undo = true;
}

void nc_snapshot_restore(nc_snapshot *s) {
    if (s->whole)
        for (int r = 0; r < s->n; r++) copy(s, s->live[r], s->kept[r], s->floats[r]);
    else
        for (int i = 0; i < s->n_ranges; i++) {
            int64_t r = s->ranges[i][0], from = s->ranges[i][1], to = s->ranges[i][2];
            copy(s, s->live[r] + from, s->kept[r] + from, to - from);
        }
    s->step = s->kept_step;
    s->can_undo = false;
}
