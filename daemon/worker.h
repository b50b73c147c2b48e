/* worker.h: the thread that owns the engine (model, optimizer, data, GPU
 * context). The event loop submits jobs; the worker runs one at a time and
 * posts events and replies back through an outbox the loop drains. */
#ifndef NCD_WORKER_H
#define NCD_WORKER_H

#include "engine/nc.h"

#include <event2/event.h>

typedef struct worker worker;

/* A message for one connection (conn_id), or a notice to the loop (conn_id 0). */
typedef struct outmsg {
    uint64_t conn_id;
    json_t *msg;         /* a complete protocol message */
    bool final;          /* the job's final reply */
    struct outmsg *next;
} outmsg;

typedef void (*worker_deliver_fn)(void *ctx, outmsg *m); /* on the loop thread; takes m */

/* Creates the engine on a new thread and waits until it is ready. */
worker *worker_start(const nc_engine_opts *opts, struct event_base *base, worker_deliver_fn deliver, void *ctx,
                     nc_error *err);
/* Queues a job: an engine command and its arguments, parsed and checked
 * (nc_args_parse, nc_request_check) into the command's config struct, which
 * the worker takes (it frees it, also when refused). Fails with Busy while a
 * job runs and ShuttingDown after stop. */
int worker_submit(worker *w, uint64_t conn_id, uint64_t req_id, const nc_command_spec *cmd, void *args, nc_error *err);
/* Cancels the running job at its next step boundary; false when idle. */
bool worker_cancel(worker *w);
/* A connection closed: the job it asked for ends at its next step boundary,
 * unless it is long-running (train, ablate: their results are on disk). */
void worker_client_gone(worker *w, uint64_t conn_id);
/* The worker's state for `status` (new reference): state, job, model. */
json_t *worker_status(worker *w);
/* Seconds since the running job last made progress: an event, or a step
 * boundary seen since the previous call (0 when idle). */
double worker_stall_seconds(worker *w);
/* Asks the worker to cancel, save the resident model and exit; `done` runs
 * on the loop thread with the save's result (or error) once it has. */
void worker_stop(worker *w, void (*done)(void *ctx, json_t *saved, const nc_error *err), void *ctx);
/* Joins the thread and frees the engine. */
void worker_free(worker *w);

#endif
