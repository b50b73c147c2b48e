/* gpt_step.c: the training step on a backend with graphs (cuda).
 *
 * The first step of a batch shape runs op by op (it grows op scratch and
 * picks the gemm algorithms) and waits, the second is recorded as one graph,
 * every later one replays it: forward, backward, the finite-loss guard, the
 * backup of the last good state, the optimizer and the bf16 weight copy in a
 * single launch. The host never waits for a step before issuing the next:
 * the loss comes back through pinned memory and is returned one call late
 * (loss_lag 1; drain returns the last).
 *
 * A non-finite loss clears a device flag that stops the backups, so the
 * backup always holds the last state whose loss was finite; when the host
 * sees that loss (a call later) it returns there, as the synchronous step
 * does, and fails with NonFiniteLoss. */
#include "gpt_internal.h"

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
    bool eager;           /* recording failed once: op by op from then on */
    char mode[160];       /* for nc_gpt_step_mode */
    float *ok;            /* (1) device: every loss since the backup was finite */
    float *loss;          /* (2) pinned: the losses of the last two steps */
    void *done[2];        /* events after each slot's step */
    int64_t count[2];     /* the optimizer's count before each slot's step */
    int64_t good_count;   /* the count of the state the backup holds */
    bool pending;         /* a step's loss has not been returned yet */
    int slot;             /* the pending step's slot */
    int64_t step;         /* and number */
};

void gpt_stepper_free(nc_model *m) {
    gpt_stepper *s = m->stepper;
    if (!s) return;
    if (s->rec.graph) OPS->graph_free(m->be, s->rec.graph);
    if (s->ok) OPS->free(m->be, s->ok);
    if (s->loss) OPS->host_free(m->be, s->loss);
    for (int i = 0; i < 2; i++)
        if (s->done[i]) OPS->event_free(m->be, s->done[i]);
    free(s);
    m->stepper = NULL;
}

int gpt_stepper_new(nc_model *m, nc_error *err) {
    gpt_stepper *s = m->stepper = calloc(1, sizeof *s);
    if (!s) return nc_fail(err, NC_E_INTERNAL, "out of memory");
    s->ok = OPS->alloc(m->be, sizeof(float));
    s->loss = OPS->host_alloc(m->be, 2 * sizeof(float));
    s->done[0] = OPS->event_new(m->be);
    s->done[1] = OPS->event_new(m->be);
    snprintf(s->mode, sizeof s->mode, "graph");
    if (s->ok && s->loss && s->done[0] && s->done[1]) return 0;
    gpt_stepper_free(m);
    return nc_fail(err, NC_E_INTERNAL, "out of %s memory for the training step", m->be->name);
}

/* The device half of one step: everything a replay repeats. */
static void issue_step(nc_model *m, const gpt_pass *p) {
    gpt_stepper *s = m->stepper;
    gpt_forward(m, &m->train, p);
    gpt_backward(m, &m->train, p);
    OPS->finite_and(m->be, s->ok, m->train.loss);
    OPS->copy_if(m->be, m->backup, m->params, sizeof(float) * (size_t)m->lay.total, s->ok);
    nc_muonadamw_save_if(m->opt, s->ok);
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
    if (!r->warm || s->eager) {
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

/* The backup := the current state (after creation or an import). */
static void keep_state(nc_model *m) {
    gpt_stepper *s = m->stepper;
    float one = 1.0f;
    OPS->copy(m->be, m->backup, m->params, sizeof(float) * (size_t)m->lay.total);
    nc_muonadamw_save(m->opt);
    OPS->upload(m->be, s->ok, &one, sizeof one);
    s->good_count = nc_muonadamw_count(m->opt);
    m->backup_valid = true;
}

/* Back to the backup: the last state whose loss was finite. */
static int restore_good_state(nc_model *m, nc_error *err) {
    gpt_stepper *s = m->stepper;
    float one = 1.0f;
    OPS->copy(m->be, m->params, m->backup, sizeof(float) * (size_t)m->lay.total);
    nc_muonadamw_restore(m->opt);
    nc_muonadamw_set_count(m->opt, s->good_count);
    OPS->upload(m->be, s->ok, &one, sizeof one);
    gpt_sync_weights(m);
    s->pending = false; /* whatever ran after the bad step is undone too */
    return OPS->sync(m->be, err);
}

/* Waits for the step in `slot` and takes its loss. */
static int collect(nc_model *m, int slot, int64_t step, double *loss, nc_error *err) {
    gpt_stepper *s = m->stepper;
    if (OPS->event_wait(m->be, s->done[slot], err)) return -1;
    *loss = s->loss[slot];
    if (isfinite(*loss)) {
        s->good_count = s->count[slot]; /* the backup now holds that step's starting state */
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
    if (!m->backup_valid) keep_state(m);
    int slot = s->pending ? 1 - s->slot : 0;
    s->count[slot] = nc_muonadamw_count(m->opt);
    nc_muonadamw_prepare(m->opt, step, steps);
    if (run_step(m, &p, err)) return -1;
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

void gpt_stepper_forget(nc_model *m) { m->stepper->pending = false; }

const char *nc_gpt_step_mode(const nc_model *m) { return m->stepper ? m->stepper->mode : "sync"; }
