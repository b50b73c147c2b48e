/* server.c: connections, framing, dispatch, status and shutdown on the
 * libevent loop. Requests for the engine go to the worker; status, cancel
 * and shutdown are answered here, so they stay fast while a job runs. */
#define _GNU_SOURCE
#include "server.h"
#include "access.h"
#include "log.h"
#include "core/memory.h"
#include "notify.h"
#include "proto.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <errno.h>
#include <event2/listener.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    struct server *srv;
    uint64_t id;
    struct bufferevent *bev;
    struct event *timer;
    double partial_since; /* when the buffered partial frame began; 0: none */
    int pending;          /* engine requests awaiting their final reply */
    bool closing;         /* close once the output is flushed */
    bool throttled;       /* reading paused until the client reads its replies */
    uid_t uid;
    struct conn *prev, *next;
} conn;

typedef struct waiter {
    uint64_t conn_id, req_id;
} waiter;

struct server {
    struct event_base *base;
    server_opts o;
    listener_fd *lfd;
    struct evconnlistener *lev;
    struct event *resume_accept;
    worker *w;
    conn *conns;
    int nconns;
    int peak_conns;       /* most connections open at once since the last trim */
    uint64_t next_conn_id;
    uint64_t requests;
    double started;
    bool stopping;
    bool stopped;         /* the worker has stopped: exit once replies are out */
    nc_error stop_err;    /* the final save's error (code NC_OK: none) */
    waiter waiters[32];
    int nwaiters;
};

/* ---- connections ------------------------------------------------------------ */

/* After a burst of connections has gone, hands the heap pages their buffers
 * used back to the system, so a long-lived daemon returns to its baseline. */
static void release_burst_memory(server *s) {
    if (s->nconns > 0 || s->peak_conns < 64) return;
    s->peak_conns = 0;
    malloc_trim(0);
}

/* A frame of this many bytes or more went through the input buffer's chains
 * (small heap blocks: libevent reads 16 KiB at a time), a copy of its body
 * and whatever it decoded to (up to NC_MSG_MAX_VALUES values, some 65 bytes
 * each). Freed, these stay resident: glibc gives back only free memory at the
 * top of its heap, and once a freed large block has raised its dynamic mmap
 * threshold, the next large buffers come from the heap too. malloc_trim hands
 * every free page back, in under a millisecond; a smaller frame expands to a
 * few MiB at most, which the next one reuses. */
#define TRIM_FRAME_BYTES (64u << 10)

static void conn_free(conn *c) {
    server *s = c->srv;
    if (c->prev) c->prev->next = c->next;
    else s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    s->nconns--;
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t unread = evbuffer_get_length(in); /* a partial frame: its sender hung up or timed out */
    evbuffer_drain(in, unread);              /* now: libevent may finalize the bufferevent later */
    event_free(c->timer);
    bufferevent_free(c->bev);
    if (s->w) worker_client_gone(s->w, c->id);
    log_debug("connection %llu closed (%d open)", (unsigned long long)c->id, s->nconns);
    free(c);
    if (unread >= TRIM_FRAME_BYTES) malloc_trim(0);
    release_burst_memory(s);
}

static conn *conn_find(server *s, uint64_t id) {
    for (conn *c = s->conns; c; c = c->next)
        if (c->id == id) return c;
    return NULL;
}

static void conn_send(conn *c, json_t *msg) {
    uint8_t *buf;
    size_t len;
    if (nc_frame_pack(msg, &buf, &len) == 0) {
        bufferevent_write(c->bev, buf, len);
        free(buf);
    }
    json_decref(msg);
}

static void send_error(conn *c, uint64_t id, nc_code code, const char *message) {
    conn_send(c, nc_msg_error(id, code, message));
}

/* Returns true when the connection was freed at once. */
static bool conn_close_after_flush(conn *c) {
    c->closing = true;
    bufferevent_disable(c->bev, EV_READ);
    if (evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
        conn_free(c);
        return true;
    }
    return false;
}

static void arm_timer(conn *c) {
    /* while reading is paused its input waits on us, not on the client: idle rules apply */
    size_t buffered = c->throttled ? 0 : evbuffer_get_length(bufferevent_get_input(c->bev));
    if (buffered == 0) c->partial_since = 0;
    else if (c->partial_since > 0) return; /* the frame's deadline keeps running */
    else c->partial_since = nc_now();
    double s = buffered ? c->srv->o.frame_timeout_s : c->srv->o.idle_timeout_s;
    struct timeval tv = {(time_t)s, (suseconds_t)((s - (double)(time_t)s) * 1e6)};
    evtimer_add(c->timer, &tv);
}

static void on_timer(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    conn *c = arg;
    if (c->partial_since == 0 && c->pending > 0) { /* waiting on a job is not idling */
        arm_timer(c);
        return;
    }
    log_info("connection %llu timed out (%s)", (unsigned long long)c->id, c->partial_since ? "partial frame" : "idle");
    conn_free(c);
}

/* ---- dispatch ----------------------------------------------------------------- */

static void reply_local(conn *c, const nc_request *req, const nc_command_spec *cmd) {
    server *s = c->srv;
    switch (cmd->id) {
    case NC_CMD_STATUS: conn_send(c, nc_msg_ok(req->id, server_status(s))); break;
    case NC_CMD_CANCEL: conn_send(c, nc_msg_ok(req->id, json_pack("{s:b}", "cancelled", worker_cancel(s->w)))); break;
    case NC_CMD_SHUTDOWN:
        if (s->nwaiters < (int)(sizeof s->waiters / sizeof s->waiters[0]))
            s->waiters[s->nwaiters++] = (waiter){c->id, req->id};
        server_begin_shutdown(s, "shutdown request");
        break;
    default: break;
    }
}

static void dispatch(conn *c, json_t *msg) {
    server *s = c->srv;
    nc_request req;
    nc_error err = {0};
    s->requests++;
    if (nc_request_parse(msg, &req, &err)) {
        send_error(c, req.id, err.code, err.message);
        nc_request_free(&req);
        return;
    }
    /* arguments are parsed here, once, into the command's config struct */
    const nc_command_spec *cmd = nc_command_find(req.cmd);
    void *cfg = cmd ? nc_xmalloc(cmd->cfg_size) : NULL;
    if (!cmd) {
        nc_fail(&err, NC_E_UNKNOWN_COMMAND, "unknown command '%.64s'", req.cmd);
    } else if (nc_args_parse(cmd, req.args, cfg, &err) == 0 && nc_request_check(cmd, cfg, &err) == 0) {
        if (!cmd->engine) {
            reply_local(c, &req, cmd);
        } else if (worker_submit(s->w, c->id, req.id, cmd, cfg, &err) == 0) {
            c->pending++;
            log_debug("request %llu: %s queued", (unsigned long long)req.id, cmd->name);
        }
        if (cmd->engine) cfg = NULL; /* the worker's now, queued or freed */
    }
    if (err.code) send_error(c, req.id, err.code, err.message);
    free(cfg);
    nc_request_free(&req);
}

static size_t output_bytes(conn *c) { return evbuffer_get_length(bufferevent_get_output(c->bev)); }

/* After the stop, the loop ends as soon as every reply is out. */
static void exit_when_flushed(server *s) {
    if (!s->stopped) return;
    for (conn *c = s->conns; c; c = c->next)
        if (output_bytes(c) > 0) return;
    event_base_loopexit(s->base, NULL);
}

/* A client that does not read its replies stops being read (on_write resumes it). */
static bool throttle(conn *c) {
    if (output_bytes(c) <= c->srv->o.max_output) return false;
    if (!c->throttled) log_debug("connection %llu: output backlog, reading paused", (unsigned long long)c->id);
    c->throttled = true;
    bufferevent_disable(c->bev, EV_READ);
    return true;
}

/* Handles every complete frame in the input. Returns false if c was freed. */
static bool read_frames(conn *c) {
    struct evbuffer *in = bufferevent_get_input(c->bev);
    for (;;) {
        uint8_t hdr[NC_FRAME_HEADER];
        size_t have = evbuffer_get_length(in);
        if (have < sizeof hdr || c->closing || throttle(c)) return true;
        evbuffer_copyout(in, hdr, sizeof hdr);
        uint32_t len = nc_frame_length(hdr);
        if (len > c->srv->o.max_frame) {
            char msg[128];
            snprintf(msg, sizeof msg, "a frame of %u bytes exceeds the limit of %u bytes", len, c->srv->o.max_frame);
            send_error(c, 0, NC_E_FRAME_TOO_LARGE, msg);
            return !conn_close_after_flush(c);
        }
        if (have < sizeof hdr + len) return true;
        evbuffer_drain(in, sizeof hdr);
        uint8_t *body = nc_xmalloc(len ? len : 1); /* len is within --max-frame */
        evbuffer_remove(in, body, len);
        c->partial_since = 0;
        nc_error err;
        json_t *msg = nc_frame_unpack(body, len, &err);
        free(body);
        if (msg) dispatch(c, msg);
        else send_error(c, 0, err.code, err.message);
        if (len >= TRIM_FRAME_BYTES) malloc_trim(0); /* everything it took is free by now */
    }
}

static void on_read(struct bufferevent *bev, void *arg) {
    (void)bev;
    conn *c = arg;
    if (read_frames(c) && !c->closing) arm_timer(c);
}

static void on_write(struct bufferevent *bev, void *arg) {
    (void)bev;
    conn *c = arg;
    server *s = c->srv;
    if (c->closing && output_bytes(c) == 0) {
        conn_free(c);
    } else if (c->throttled) {
        c->throttled = false;
        bufferevent_enable(c->bev, EV_READ);
        on_read(c->bev, c);
    }
    exit_when_flushed(s);
}

static void on_conn_event(struct bufferevent *bev, short what, void *arg) {
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) conn_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int socklen, void *arg) {
    (void)l, (void)sa, (void)socklen;
    server *s = arg;
    conn *c = calloc(1, sizeof *c);
    struct bufferevent *bev = c ? bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE) : NULL;
    struct event *timer = bev ? evtimer_new(s->base, on_timer, c) : NULL;
    if (!timer) { /* out of memory: drop this connection, keep serving the others */
        log_error("out of memory accepting a connection");
        if (bev) bufferevent_free(bev);
        else evutil_closesocket(fd);
        free(c);
        return;
    }
    c->srv = s;
    c->id = ++s->next_conn_id;
    c->bev = bev;
    c->timer = timer;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (++s->nconns > s->peak_conns) s->peak_conns = s->nconns;
    bufferevent_setcb(c->bev, on_read, on_write, on_conn_event, c);
    bufferevent_setwatermark(c->bev, EV_READ, 0, (size_t)s->o.max_frame + NC_FRAME_HEADER);
    bool allowed = s->o.allow_any_peer || access_peer_allowed(fd, s->o.allowed_gid, &c->uid);
    if (!allowed) {
        log_warn("refused a connection from uid %d", (int)c->uid);
        send_error(c, 0, NC_E_PERMISSION_DENIED, "this user may not use nanochatd");
        conn_close_after_flush(c);
        return;
    }
    if (s->nconns > s->o.max_connections) {
        send_error(c, 0, NC_E_BUSY, "too many connections");
        conn_close_after_flush(c);
        return;
    }
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    arm_timer(c);
    log_debug("connection %llu from uid %d (%d open)", (unsigned long long)c->id, (int)c->uid, s->nconns);
}

/* ---- worker messages, status, shutdown ------------------------------------------ */

void server_deliver(void *srv, outmsg *m) {
    server *s = srv;
    conn *c = conn_find(s, m->conn_id);
    if (m->final && c) c->pending--;
    bool drop = !c || c->closing || (!m->final && output_bytes(c) > s->o.max_output);
    if (drop) json_decref(m->msg);
    else conn_send(c, m->msg);
    free(m);
}

void server_attach_worker(server *s, worker *w) { s->w = w; }

json_t *server_status(server *s) {
    json_t *st = worker_status(s->w);
    json_object_update_new(st, json_pack("{s:s, s:i, s:I, s:f, s:s, s:b, s:i, s:I}", "version", NC_VERSION,
                                         "protocol", NC_PROTOCOL_VERSION, "pid", (json_int_t)getpid(),
                                         "uptime_s", nc_now() - s->started, "socket", s->lfd->path,
                                         "socket_activated", s->lfd->activated, "connections", s->nconns,
                                         "requests", (json_int_t)s->requests));
    return st;
}

static void on_stopped(void *arg, json_t *saved, const nc_error *err) {
    server *s = arg;
    s->stop_err = *err;
    for (int i = 0; i < s->nwaiters; i++) {
        conn *c = conn_find(s, s->waiters[i].conn_id);
        if (!c) continue;
        if (err->code) send_error(c, s->waiters[i].req_id, err->code, err->message);
        else conn_send(c, nc_msg_ok(s->waiters[i].req_id, json_pack("{s:b, s:O}", "stopped", 1, "saved", saved ? saved : json_null())));
    }
    s->stopped = true;
    struct timeval flush = {0, 200000}; /* for clients that do not read */
    event_base_loopexit(s->base, &flush);
    exit_when_flushed(s);
}

const nc_error *server_stop_result(const server *s) { return &s->stop_err; }

void server_begin_shutdown(server *s, const char *why) {
    if (s->stopping) return;
    s->stopping = true;
    log_info("stopping (%s): finishing the current step and saving the resident model", why);
    notify_stopping();
    worker_stop(s->w, on_stopped, s);
}

static void on_resume_accept(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    evconnlistener_enable(((server *)arg)->lev);
}

/* Out of descriptors (or another accept failure): pause accepting briefly
 * rather than spin on a listening socket that stays readable. */
static void on_accept_error(struct evconnlistener *l, void *arg) {
    server *s = arg;
    int e = EVUTIL_SOCKET_ERROR();
    if (e != EMFILE && e != ENFILE && e != ENOBUFS && e != ENOMEM) return;
    log_warn("accept failed: %s; pausing new connections for 100 ms", strerror(e));
    evconnlistener_disable(l);
    struct timeval tv = {0, 100000};
    evtimer_add(s->resume_accept, &tv);
}

server *server_new(struct event_base *base, const server_opts *opts, listener_fd *lfd, nc_error *err) {
    server *s = nc_xcalloc(1, sizeof *s);
    s->base = base;
    s->o = *opts;
    s->lfd = lfd;
    s->started = nc_now();
    /* backlog 0: the socket listens already (listen.c, or systemd's Backlog=) */
    s->lev = evconnlistener_new(base, on_accept, s, LEV_OPT_CLOSE_ON_EXEC, 0, lfd->fd);
    if (!s->lev) {
        free(s);
        nc_fail(err, NC_E_IO, "cannot watch the listening socket");
        return NULL;
    }
    s->resume_accept = evtimer_new(base, on_resume_accept, s);
    evconnlistener_set_error_cb(s->lev, on_accept_error);
    return s;
}

void server_free(server *s) {
    if (!s) return;
    while (s->conns) conn_free(s->conns);
    evconnlistener_free(s->lev);
    event_free(s->resume_accept);
    free(s);
}
