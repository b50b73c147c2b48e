/* ncclient.h: a small blocking client of nanochatd, shared by ncctl, the
 * tests and tools. One connection, one request at a time. */
#ifndef NC_CLIENT_H
#define NC_CLIENT_H

#include "proto.h"

typedef struct nc_client {
    int fd;
    uint64_t next_id;
    uint32_t max_frame;
    char path[108];
    int64_t timeout_ms; /* the longest nc_client_call waits for its final reply (< 0: as long as it takes) */
    bool timed_out;     /* the last nc_client_call gave up for it */
} nc_client;

/* Connects; NC_E_IO with a message when no daemon answers at path. */
int nc_client_connect(nc_client *c, const char *path, nc_error *err);
void nc_client_close(nc_client *c);

int nc_client_send(nc_client *c, json_t *msg, nc_error *err); /* does not steal msg */
/* Receives one reply or event; timeout_ms < 0 waits forever. */
int nc_client_recv(nc_client *c, nc_reply *r, int timeout_ms, nc_error *err);

typedef void (*nc_event_cb)(void *ctx, const char *event, json_t *data);
/* Sends one request and waits for its final reply (at most timeout_ms),
 * passing events to cb. Returns the result (new reference), or NULL with
 * *err holding the daemon's error (or NC_E_IO when the connection failed or,
 * with timed_out set, no reply came in time). */
json_t *nc_client_call(nc_client *c, const char *cmd, json_t *args /* stolen */,
                       nc_event_cb cb, void *ctx, nc_error *err);

/* True when a daemon at path answers status. */
bool nc_client_ping(const char *path);

/* Starts `daemon` (a path to nanochatd) in its own session on `socket_path`
 * with extra arguments, and waits up to timeout_ms until it answers status. */
int nc_client_spawn_daemon(const char *daemon, const char *socket_path, char *const extra[],
                           int timeout_ms, nc_error *err);

#endif
