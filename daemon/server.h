/* server.h: the event loop's side of nanochatd: connections, framing,
 * dispatch, status, shutdown. It only moves bytes and dispatches; the worker
 * does the engine work. */
#ifndef NCD_SERVER_H
#define NCD_SERVER_H

#include "listen.h"
#include "worker.h"

#include <sys/types.h>

typedef struct server_opts {
    uint32_t max_frame;      /* bytes of one request body */
    int max_connections;
    double idle_timeout_s;   /* a connection with nothing pending is closed after this */
    double frame_timeout_s;  /* a frame must arrive whole within this */
    size_t max_output;       /* queued output per connection beyond which events are dropped
                              * and its requests are not read until the client catches up */
    gid_t allowed_gid;       /* peers of this group are served too; (gid_t)-1: none */
    bool allow_any_peer;     /* serve every uid (tests only) */
} server_opts;

typedef struct server server;

server *server_new(struct event_base *base, const server_opts *opts, listener_fd *lfd, nc_error *err);
/* The loop-thread callback the worker delivers through. */
void server_deliver(void *srv, outmsg *m);
void server_attach_worker(server *s, worker *w);
/* Starts the orderly stop: cancel, save, reply to `shutdown` requests, exit the loop. */
void server_begin_shutdown(server *s, const char *why);
json_t *server_status(server *s);
/* Once the loop has ended: how the stop went. code NC_OK when the resident
 * model was saved or had nothing to save; else the save's error (the model
 * is lost, and nanochatd exits 1). */
const nc_error *server_stop_result(const server *s);
void server_free(server *s);

#endif
