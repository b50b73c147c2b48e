/* snapshot.h: a model's training state, its step, and the last good copy
 * of both: the one rollback and the one step counter of every model.
 *
 * The state is a few float regions an update changes together (parameters,
 * optimizer moments), in backend memory or host memory (be NULL). The step
 * counts the updates the state has seen: optimizers read it (AdamW's bias
 * corrections), checkpoints record it. Before each update a model keeps what
 * the update will change (nc_snapshot_begin, then the whole state or only the
 * ranges it touches), so that when the loss the updated state gives is not
 * finite, nc_snapshot_restore returns to the state, and the step, that gave
 * the last finite loss. A graph-captured step keeps the whole state only
 * while a device flag says every loss so far was finite (save_if); the host
 * learns the loss later and then sets kept_step itself. */
#ifndef NC_SNAPSHOT_H
#define NC_SNAPSHOT_H

#include "backend/backend.h"

#define NC_SNAPSHOT_REGIONS 4

typedef struct nc_snapshot {
    nc_backend *be; /* NULL: the regions are host memory */
    int n;
    float *live[NC_SNAPSHOT_REGIONS], *kept[NC_SNAPSHOT_REGIONS];
    int64_t floats[NC_SNAPSHOT_REGIONS];
    int64_t (*ranges)[3]; /* (cap) {region, from, to} kept since the last begin; NULL with whole */
    int n_ranges, cap;
    bool whole;     /* the kept copy is of every region, whole */
    bool can_undo;  /* the kept copy is the state before the last update */
    int64_t step;      /* updates the live state has seen */
    int64_t kept_step; /* updates the kept copy has seen */
} nc_snapshot;

/* Adds a region of n floats of be's memory (its kept copy allocated there too). */
int nc_snapshot_add(nc_snapshot *s, nc_backend *be, float *live, int64_t n, nc_error *err);
/* Adds a region of host memory (its kept copy within the model's footprint). */
void nc_snapshot_add_host(nc_snapshot *s, float *live, int64_t n);
void nc_snapshot_free(nc_snapshot *s);
/* The bytes the kept copies of n floats of state take. */
double nc_snapshot_bytes(int64_t floats);

/* An update begins: step + 1, and nothing of it kept yet. */
void nc_snapshot_begin(nc_snapshot *s);
/* Keeps [from, to) of region r before the update changes it. */
void nc_snapshot_keep(nc_snapshot *s, int r, int64_t from, int64_t to);
/* Keeps every region whole (kept_step := step). */
void nc_snapshot_save(nc_snapshot *s);
/* Keeps every region whole where the device flag *ok is nonzero (capturable
 * in a graph; the caller sets kept_step once it knows). */
void nc_snapshot_save_if(nc_snapshot *s, const float *ok);
/* Back to the kept state and its step. */
void nc_snapshot_restore(nc_snapshot *s);

#endif
