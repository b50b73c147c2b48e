/* step.c: the GPT's one training step, on every backend.
 *
 * A step issues forward, backward, the finite-loss guard, the snapshot of
 * the last good state, the optimizer and the act weight copy. On a backend
 * with graphs (cuda) the first step of a batch shape runs op by op (it grows
 * op scratch and picks the gemm algorithms) and waits, the second is
 * recorded as one graph, every later one replays it in a single launch, and
 * the host never waits for a step before issuing the next: the loss comes
 * back through pinned memory one call late (loss_lag 1; drain returns the
 * last). Elsewhere (the cpu) the same ops run one by one and the loss is read
 * at once.
 *
 * A non-finite loss clears a device flag that stops the snapshot's copies, so
 * the kept copy always holds the last state whose loss was finite; when the
 * host sees that loss (at once, or a call later) it returns there and fails
 * with NonFiniteLoss. */
#include "internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define OPS (m->be->ops)

/* What a recorded step is valid for. */
typedef struct recording {
    void *graph;
    int B, T;             /* the batch shape */
    const void *arena;    /* the activation buffers, as carved for capacity */
    int64_t capacity;
    bool warm;            /* this shape ran once op by op */
} recording;

struct gpt_stepper {
    recording rec;
    bool graphs;          /* the backend records graphs (and returns losses a step late) */
    bool eager;           /* recording failed once: op by op from then on */
    char mode[160];       /* for nc_gpt_step_mode */
    float *ok;            /* (1) device: every loss since the last keep was finite */
    float *loss;          /* (2) the losses of the last two steps: pinned with graphs */
    void *done[2];        /* with graphs: events after each slot's step */
    int64_t step_at[2];   /* the snapshot's step before each slot's update */
    bool kept;            /* the snapshot holds this state's predecessor (not after creation or an import) */
    bool pending;         /* a step's loss has not been returned yet */
    int slot;             /* the pending step's slot */
    int64_t step;         /* and number */
};

void gpt_stepper_free(nc_model *m) {
    gpt_stepper *s = m->stepper;
    if (!s) return;
    if (s->rec.graph) OPS->graph_free(m->be, s->rec.graph);
    if (s->ok) OPS->free(m->be, s->ok);
    if (s->loss && s->graphs) OPS->host_free(m->be, s->loss);
    else free(s->loss);
    for (int i = 0; s->graphs && i < 2; i++)
        if (s->done[i]) OPS->event_free(m->be, s->done[i]);
    free(s);
    m->stepper = NULL;
}

int gpt_stepper_new(nc_model *m, nc_error *err) {
    gpt_stepper *s = m->stepper = calloc(1, sizeof *s);
    if (!s) return nc_fail(err, NC_E_INTERNAL, "out of memory");
    s->graphs = OPS->graph_begin != NULL;
    s->ok = OPS->alloc(m->be, sizeof(float));
    s->loss = s->graphs ? OPS->host_alloc(m->be, 2 * sizeof(float)) : calloc(2, sizeof(float));
    bool events = !s->graphs || ((s->done[0] = OPS->event_new(m->be)) && (s->done[1] = OPS->event_new(m->be)));
    snprintf(s->mode, sizeof s->mode, "%s", s->graphs ? "graph" : "sync");
    if (s->ok && s->loss && events) return 0;
    gpt_stepper_free(m);
    return nc_fail(err, NC_E_INTERNAL, "out of %s memory for the training step", m->be->name);
}

bool gpt_stepper_lagged(const nc_model *m) { return m->stepper->graphs; }

/* The device half of one step: everything a replay repeats. */
static void issue_step(nc_model *m, const gpt_pass *p) {
    gpt_stepper *s = m->stepper;
    gpt_forward(m, &m->train, p);
    gpt_backward(m, &m->train, p);
    OPS->finite_and(m->be, s->ok, m->train.loss);
    nc_snapshot_save_if(&m->snap, s->ok);
    nc_muonadamw_apply(m->opt, m->params, m->grads);
    gpt_sync_weights(m);
}

/* A graph stays valid while the shape and the activation buffers do. */
static void check_shape(nc_model *m, const gpt_pass *p) {
    recording *r = &m->stepper->rec;
    if (r->B == p->B && r->T == p->T && r->arena == m->train.arena && r->capacity == m->train.capacity) return;
    if (r->graph) OPS->graph_free(m->be, r->graph);
    *r = (recording){.B = p->B, .T = p->T, .arena = m->train.arena, .capacity = m->train.capacity};
}

/* Op by op the first time for a shape (waiting, so that its time is honest),
 * recorded the second time, replayed after. */
static int run_step(nc_model *m, const gpt_pass *p, nc_error *err) {
    gpt_stepper *s = m->stepper;
    recording *r = &s->rec;
    check_shape(m, p);
    if (!r->warm || s->eager || !s->graphs) {
        issue_step(m, p);
        r->warm = true;
        return OPS->sync(m->be, err);
    }
    if (!r->graph) {
        /* an earlier failure (an upload, the last step) is the caller's, not the recording's */
        if (OPS->sync(m->be, err)) return -1;
        nc_error why = {0};
        if (OPS->graph_begin(m->be, &why) == 0) {
            issue_step(m, p);
            r->graph = OPS->graph_end(m->be, &why);
        }
        if (!r->graph) { /* nothing ran: do the step op by op, from now on */
            s->eager = true;
            snprintf(s->mode, sizeof s->mode, "eager (recording failed: %s)", why.message);
            issue_step(m, p);
            return OPS->sync(m->be, err);
        }
    }
    OPS->graph_launch(m->be, r->graph);
    return 0;
}

/* The snapshot := the current state (after creation or an import). */
static void keep_state(nc_model *m) {
    gpt_stepper *s = m->stepper;
    float one = 1.0f;
    nc_snapshot_save(&m->snap);
    OPS->upload(m->be, s->ok, &one, sizeof one);
    s->kept = true;
}

/* Back to the snapshot's copy: the last state whose loss was finite. */
static int restore_good_state(nc_model *m, nc_error *err) {
    gpt_stepper *s = m->stepper;
    float one = 1.0f;
    nc_snapshot_restore(&m->snap);
    OPS->upload(m->be, s->ok, &one, sizeof one);
    gpt_sync_weights(m);
    s->pending = false; /* whatever ran after the bad step is undone too */
    return OPS->sync(m->be, err);
}

/* Takes the loss of the step in `slot` (waiting for it with graphs). */
static int collect(nc_model *m, int slot, int64_t step, double *loss, nc_error *err) {
    gpt_stepper *s = m->stepper;
    if (s->graphs && OPS->event_wait(m->be, s->done[slot], err)) return -1;
    *loss = s->loss[slot];
    if (isfinite(*loss)) {
        m->snap.kept_step = s->step_at[slot]; /* the copy now holds that step's starting state */
        return 0;
    }
    if (restore_good_state(m, err)) return -1;
    return nc_fail(err, NC_E_NON_FINITE_LOSS, "the loss at step %lld is %g", (long long)step, *loss);
}

int gpt_stepper_step(nc_model *m, const nc_batch *b, int64_t step, int64_t steps, double *loss, nc_error *err) {
    gpt_stepper *s = m->stepper;
    gpt_pass p;
    *loss = NAN;
    if (gpt_load_batch(m, b, true, &p, err)) return -1;
    if (!s->kept) keep_state(m);
    int slot = s->pending ? 1 - s->slot : 0;
    s->step_at[slot] = m->snap.step;
    nc_muonadamw_prepare(m->opt, step, steps, ++m->snap.step);
    if (run_step(m, &p, err)) return -1;
    if (!s->graphs) { /* at once */
        OPS->download(m->be, &s->loss[slot], m->train.loss, sizeof(float));
        return collect(m, slot, step, loss, err);
    }
    OPS->download_async(m->be, &s->loss[slot], m->train.loss, sizeof(float));
    OPS->event_record(m->be, s->done[slot]);
    bool had = s->pending;
    int prev = s->slot;
    int64_t prev_step = s->step;
    s->pending = true;
    s->slot = slot;
    s->step = step;
    return had ? collect(m, prev, prev_step, loss, err) : 0;
}

int gpt_stepper_drain(nc_model *m, double *loss, nc_error *err) {
    gpt_stepper *s = m->stepper;
    *loss = NAN;
    if (!s->pending) return 0;
    s->pending = false;
    return collect(m, s->slot, s->step, loss, err);
}

void gpt_stepper_forget(nc_model *m) {
    m->stepper->pending = false;
    m->stepper->kept = false;
}

const char *nc_gpt_step_mode(const nc_model *m) { return m->stepper ? m->stepper->mode : "sync"; }
