/* ncclient.c: the blocking client library. */
#define _GNU_SOURCE
#include "ncclient.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int nc_client_connect(nc_client *c, const char *path, nc_error *err) {
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->timeout_ms = -1;
    c->next_id = 1;
    c->max_frame = NC_FRAME_MAX_DEFAULT;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) return nc_fail(err, NC_E_BAD_REQUEST, "socket path too long: %s", path);
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    snprintf(c->path, sizeof c->path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return nc_fail(err, NC_E_IO, "socket: %s", strerror(errno));
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        return nc_fail(err, NC_E_IO, "cannot connect to nanochatd at %s: %s", path, strerror(e));
    }
    c->fd = fd;
    return 0;
}

void nc_client_close(nc_client *c) {
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int nc_client_send(nc_client *c, json_t *msg, nc_error *err) {
    uint8_t *buf;
    size_t len;
    if (nc_frame_pack(msg, &buf, &len)) return nc_fail(err, NC_E_INTERNAL, "cannot encode the request");
    int rc = write_all(c->fd, buf, len);
    free(buf);
    return rc ? nc_fail(err, NC_E_IO, "lost the connection to nanochatd: %s", strerror(errno)) : 0;
}

/* Reads exactly n bytes; deadline in monotonic ms (< 0: none). */
static int read_all(int fd, uint8_t *p, size_t n, int64_t deadline, nc_error *err) {
    while (n > 0) {
        if (deadline >= 0) {
            struct timespec ts;
            clock_gettime(CLOCK_MONOTONIC, &ts);
            int64_t left = deadline - (ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
            struct pollfd pfd = {fd, POLLIN, 0};
            int pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
            if (pr < 0 && errno == EINTR) continue;
            if (pr == 0) return nc_fail(err, NC_E_IO, "timed out waiting for nanochatd");
        }
        ssize_t r = recv(fd, p, n, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return nc_fail(err, NC_E_IO, "nanochatd closed the connection");
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int nc_client_recv(nc_client *c, nc_reply *r, int timeout_ms, nc_error *err) {
    int64_t deadline = -1;
    if (timeout_ms >= 0) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        deadline = ts.tv_sec * 1000 + ts.tv_nsec / 1000000 + timeout_ms;
    }
    uint8_t hdr[NC_FRAME_HEADER];
    if (read_all(c->fd, hdr, sizeof hdr, deadline, err)) return -1;
    uint32_t len = nc_frame_length(hdr);
    if (len > c->max_frame) return nc_fail(err, NC_E_FRAME_TOO_LARGE, "reply of %u bytes exceeds the limit", len);
    uint8_t *body = malloc(len ? len : 1);
    if (!body) return nc_fail(err, NC_E_INTERNAL, "out of memory");
    int rc = read_all(c->fd, body, len, deadline, err);
    json_t *msg = rc ? NULL : nc_frame_unpack(body, len, err);
    free(body);
    if (!msg) return -1;
    return nc_reply_parse(msg, r, err);
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

json_t *nc_client_call(nc_client *c, const char *cmd, json_t *args, nc_event_cb cb, void *ctx, nc_error *err) {
    uint64_t id = c->next_id++;
    json_t *req = nc_msg_request(id, cmd, args);
    int rc = nc_client_send(c, req, err);
    json_decref(req);
    c->timed_out = false;
    if (rc) return NULL;
    int64_t deadline = c->timeout_ms >= 0 ? now_ms() + c->timeout_ms : -1;
    for (;;) {
        nc_reply r;
        int64_t left = deadline < 0 ? -1 : deadline - now_ms();
        if (deadline >= 0 && left <= 0) {
            c->timed_out = true;
            return nc_fail(err, NC_E_IO, "no reply from nanochatd within %.3g s", (double)c->timeout_ms / 1000), NULL;
        }
        if (nc_client_recv(c, &r, left > INT_MAX ? INT_MAX : (int)left, err)) {
            c->timed_out = deadline >= 0 && now_ms() >= deadline;
            return NULL;
        }
        if (r.id != id) {
            nc_reply_free(&r);
            continue;
        }
        if (r.kind == NC_REPLY_EVENT) {
            if (cb) cb(ctx, r.event, r.body);
            nc_reply_free(&r);
            continue;
        }
        json_t *out = NULL;
        if (r.kind == NC_REPLY_OK) out = json_incref(r.body ? r.body : json_object());
        else nc_fail(err, r.code, "%s", r.message);
        nc_reply_free(&r);
        return out;
    }
}

bool nc_client_ping(const char *path) {
    nc_client c;
    nc_error err;
    if (nc_client_connect(&c, path, &err)) return false;
    json_t *res = nc_client_call(&c, "status", NULL, NULL, NULL, &err);
    nc_client_close(&c);
    json_decref(res);
    return res != NULL;
}

/* Double fork: the daemon is reparented to init at once, so a long-lived
 * caller never collects it as a zombie. Its log goes to <socket>.log. */
int nc_client_spawn_daemon(const char *daemon, const char *socket_path, char *const extra[], int timeout_ms,
                           nc_error *err) {
    char *argv[64] = {(char *)daemon, "--socket", (char *)socket_path};
    int n = 3;
    for (int i = 0; extra && extra[i] && n < 63; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    char log[160], dir[160];
    snprintf(log, sizeof log, "%s.log", socket_path);
    snprintf(dir, sizeof dir, "%s", socket_path);
    char *slash = strrchr(dir, '/');
    if (slash && slash != dir) {
        *slash = '\0';
        mkdir(dir, 0700); /* the daemon checks its mode; ours only makes the log writable */
    }
    pid_t pid = fork();
    if (pid < 0) return nc_fail(err, NC_E_IO, "fork: %s", strerror(errno));
    if (pid == 0) {
        if (fork() != 0) _exit(0);
        setsid();
        int in = open("/dev/null", O_RDWR), out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(in, STDIN_FILENO);
        dup2(in, STDOUT_FILENO);
        dup2(out >= 0 ? out : in, STDERR_FILENO);
        close_range(3, ~0U, 0); /* the daemon inherits none of our descriptors */
        execv(daemon, argv);
        _exit(127);
    }
    waitpid(pid, NULL, 0);
    for (int waited = 0; waited < timeout_ms; waited += 10) {
        if (nc_client_ping(socket_path)) return 0;
        usleep(10000);
    }
    return nc_fail(err, NC_E_IO, "nanochatd did not answer on %s within %d ms (see %s)", socket_path, timeout_ms, log);
}
