/* worker.c: the engine thread, its one-job slot and the outbox. */
#define _GNU_SOURCE
#include "worker.h"
#include "log.h"
#include "core/memory.h"
#include "notify.h"
#include "proto.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct job {
    uint64_t conn_id, req_id;
    const nc_command_spec *cmd;
    void *args; /* the command's config struct, the worker's own */
} job;

struct worker {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    nc_engine_opts opts;
    nc_engine *engine;
    bool ready;
    nc_error start_err;
    /* the job slot (under mu) */
    bool has_job, busy, stopping;
    job pending, running;
    atomic_bool cancel;
    atomic_uint_fast64_t beats; /* the engine's step-boundary heartbeat */
    /* status (under mu) */
    json_t *job_status; /* NULL when idle */
    json_t *model;
    double last_progress;       /* when the job began or its heartbeat last moved (worker_stall_seconds) */
    uint_fast64_t seen_beats;
    /* outbox (under mu), drained on the loop thread */
    outmsg *head, *tail;
    struct event *wake;
    worker_deliver_fn deliver;
    void *ctx;
    /* shutdown */
    void (*stop_done)(void *ctx, json_t *saved, const nc_error *err);
    void *stop_ctx;
    bool stopped;
    json_t *saved;
    nc_error stop_err;
};

static void post(worker *w, uint64_t conn_id, json_t *msg, bool final) {
    outmsg *m = nc_xcalloc(1, sizeof *m);
    m->conn_id = conn_id;
    m->msg = msg;
    m->final = final;
    pthread_mutex_lock(&w->mu);
    if (w->tail) w->tail->next = m;
    else w->head = m;
    w->tail = m;
    pthread_mutex_unlock(&w->mu);
    event_active(w->wake, EV_READ, 0);
}

/* Loop thread: hands queued messages to the server, then the stop notice. */
static void on_wake(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    worker *w = arg;
    pthread_mutex_lock(&w->mu);
    outmsg *m = w->head;
    w->head = w->tail = NULL;
    bool stopped = w->stopped && w->stop_done;
    pthread_mutex_unlock(&w->mu);
    while (m) {
        outmsg *next = m->next;
        w->deliver(w->ctx, m);
        m = next;
    }
    if (stopped) {
        void (*done)(void *, json_t *, const nc_error *) = w->stop_done;
        w->stop_done = NULL;
        done(w->stop_ctx, w->saved, &w->stop_err);
    }
}

static void copy_progress(json_t *status, json_t *data) {
    static const char *const keys[] = {"step", "steps", "loss", "tok_per_s", "elapsed_s"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        json_t *v = json_object_get(data, keys[i]);
        if (v) json_object_set(status, keys[i], v);
    }
}

/* What goes to the loop thread is its own: the engine keeps references to
 * parts of its events and results (jansson's reference counts are not a
 * synchronization point), so the loop gets a deep copy. Takes v. */
static json_t *for_loop(json_t *v) {
    json_t *copy = json_deep_copy(v);
    json_decref(v);
    return copy;
}

/* systemd's STATUS= line: the job, its step and loss. */
static void notify_progress(const job *j, json_t *data) {
    notify_status("%s (request %llu): step %lld/%lld, loss %.4f", j->cmd->name, (unsigned long long)j->req_id,
                  (long long)json_integer_value(json_object_get(data, "step")),
                  (long long)json_integer_value(json_object_get(data, "steps")),
                  json_number_value(json_object_get(data, "loss")));
}

static void on_engine_event(void *ctx, const char *event, json_t *data) {
    worker *w = ctx;
    bool progress = strcmp(event, "progress") == 0;
    pthread_mutex_lock(&w->mu);
    if (w->job_status && progress) copy_progress(w->job_status, data);
    pthread_mutex_unlock(&w->mu);
    if (progress) notify_progress(&w->running, data);
    post(w, w->running.conn_id, nc_msg_event(w->running.req_id, event, for_loop(data)), false);
}

/* Runs the job on the engine; the reply to send (new reference). */
static json_t *execute(worker *w, const job *j) {
    nc_sink sink = {.emit = on_engine_event, .ctx = w, .cancel = &w->cancel, .beats = &w->beats};
    nc_error err = {0};
    double t0 = nc_now();
    notify_status("%s (request %llu): running", j->cmd->name, (unsigned long long)j->req_id);
    json_t *res = nc_engine_run(w->engine, j->cmd, j->args, &sink, &err);
    if (!res && err.code == NC_OK) nc_fail(&err, NC_E_INTERNAL, "%s produced no result", j->cmd->name);
    if (res) {
        log_info("%s (request %llu) done in %.3f s", j->cmd->name, (unsigned long long)j->req_id, nc_now() - t0);
        return nc_msg_ok(j->req_id, for_loop(res));
    }
    log_info("%s (request %llu) failed: %s: %s", j->cmd->name, (unsigned long long)j->req_id, nc_code_name(err.code),
             err.message);
    return nc_msg_error(j->req_id, err.code, err.message);
}

static void run_job(worker *w) {
    job *j = &w->running;
    json_t *reply = execute(w, j);
    json_t *model = nc_engine_describe(w->engine);
    pthread_mutex_lock(&w->mu);
    json_decref(w->model);
    w->model = model;
    json_decref(w->job_status);
    w->job_status = NULL;
    w->busy = false;
    bool stopping = w->stopping;
    pthread_mutex_unlock(&w->mu);
    notify_status("%s", stopping ? "stopping" : "idle");
    free(j->args);
    j->args = NULL;
    post(w, j->conn_id, reply, true);
}

static void finish_stop(worker *w) {
    nc_error err = {0};
    json_t *saved = NULL;
    if (nc_engine_save_resident(w->engine, &saved, &err) < 0)
        log_error("could not save the resident model: %s", err.message);
    else if (saved)
        log_info("saved the resident model to %s", json_string_value(json_object_get(saved, "path")));
    pthread_mutex_lock(&w->mu);
    w->saved = saved;
    w->stop_err = err;
    w->stopped = true;
    pthread_mutex_unlock(&w->mu);
    event_active(w->wake, EV_READ, 0);
}

static void *thread_main(void *arg) {
    worker *w = arg;
    nc_engine *engine = nc_engine_new(&w->opts, &w->start_err);
    pthread_mutex_lock(&w->mu);
    w->engine = engine;
    w->model = engine ? nc_engine_describe(engine) : NULL;
    w->ready = true;
    pthread_cond_broadcast(&w->cv);
    while (engine) {
        while (!w->has_job && !w->stopping) pthread_cond_wait(&w->cv, &w->mu);
        if (!w->has_job) break;
        w->running = w->pending;
        w->has_job = false;
        pthread_mutex_unlock(&w->mu);
        run_job(w);
        pthread_mutex_lock(&w->mu);
    }
    pthread_mutex_unlock(&w->mu);
    if (engine) finish_stop(w);
    return NULL;
}

worker *worker_start(const nc_engine_opts *opts, struct event_base *base, worker_deliver_fn deliver, void *ctx,
                     nc_error *err) {
    worker *w = nc_xcalloc(1, sizeof *w);
    w->opts = *opts;
    w->deliver = deliver;
    w->ctx = ctx;
    pthread_mutex_init(&w->mu, NULL);
    pthread_cond_init(&w->cv, NULL);
    w->wake = event_new(base, -1, 0, on_wake, w);
    if (pthread_create(&w->thread, NULL, thread_main, w)) {
        nc_fail(err, NC_E_INTERNAL, "cannot start the worker thread");
        event_free(w->wake);
        free(w);
        return NULL;
    }
    pthread_mutex_lock(&w->mu);
    while (!w->ready) pthread_cond_wait(&w->cv, &w->mu);
    pthread_mutex_unlock(&w->mu);
    if (!w->engine) {
        *err = w->start_err;
        pthread_join(w->thread, NULL);
        event_free(w->wake);
        free(w);
        return NULL;
    }
    return w;
}

int worker_submit(worker *w, uint64_t conn_id, uint64_t req_id, const nc_command_spec *cmd, void *args, nc_error *err) {
    pthread_mutex_lock(&w->mu);
    int rc = 0;
    if (w->stopping) rc = nc_fail(err, NC_E_SHUTTING_DOWN, "nanochatd is shutting down");
    else if (w->busy) rc = nc_fail(err, NC_E_BUSY, "a %s job is running; wait for it or cancel it", w->pending.cmd->name);
    else {
        w->busy = w->has_job = true;
        atomic_store(&w->cancel, false);
        w->pending = (job){conn_id, req_id, cmd, args};
        args = NULL;
        w->job_status = json_pack("{s:s, s:I}", "cmd", cmd->name, "id", (json_int_t)req_id);
        w->last_progress = nc_now();
        pthread_cond_broadcast(&w->cv);
    }
    pthread_mutex_unlock(&w->mu);
    free(args); /* refused: still ours to free */
    return rc;
}

bool worker_cancel(worker *w) {
    pthread_mutex_lock(&w->mu);
    bool busy = w->busy;
    if (busy) atomic_store(&w->cancel, true);
    pthread_mutex_unlock(&w->mu);
    return busy;
}

void worker_client_gone(worker *w, uint64_t conn_id) {
    pthread_mutex_lock(&w->mu);
    if (w->busy && w->pending.conn_id == conn_id && !w->pending.cmd->long_running) {
        atomic_store(&w->cancel, true);
        log_info("%s (request %llu): its client went away; stopping it", w->pending.cmd->name,
                 (unsigned long long)w->pending.req_id);
    }
    pthread_mutex_unlock(&w->mu);
}

json_t *worker_status(worker *w) {
    pthread_mutex_lock(&w->mu);
    const char *state = w->stopping ? "stopping" : w->busy ? "busy" : "idle";
    /* copies: job_status changes as the job runs, and no object is shared across threads (see for_loop) */
    json_t *s = json_pack("{s:s, s:o, s:o}", "state", state, "job",
                          w->job_status ? json_deep_copy(w->job_status) : json_null(), "model",
                          w->model ? json_deep_copy(w->model) : json_null());
    pthread_mutex_unlock(&w->mu);
    return s;
}

double worker_stall_seconds(worker *w) {
    uint_fast64_t beats = atomic_load(&w->beats);
    pthread_mutex_lock(&w->mu);
    if (beats != w->seen_beats) {
        w->seen_beats = beats;
        w->last_progress = nc_now();
    }
    double s = w->busy ? nc_now() - w->last_progress : 0;
    pthread_mutex_unlock(&w->mu);
    return s;
}

void worker_stop(worker *w, void (*done)(void *, json_t *, const nc_error *), void *ctx) {
    pthread_mutex_lock(&w->mu);
    w->stop_done = done;
    w->stop_ctx = ctx;
    w->stopping = true;
    atomic_store(&w->cancel, true);
    pthread_cond_broadcast(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

void worker_free(worker *w) {
    if (!w) return;
    pthread_join(w->thread, NULL);
    for (outmsg *m = w->head, *next; m; m = next) {
        next = m->next;
        json_decref(m->msg);
        free(m);
    }
    nc_engine_free(w->engine);
    json_decref(w->model);
    json_decref(w->job_status);
    json_decref(w->saved);
    event_free(w->wake);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}
