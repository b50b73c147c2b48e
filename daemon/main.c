/* nanochatd: the resident training daemon.
 *
 * Runs in the foreground (systemd style) and logs to stderr. A libevent loop
 * owns the socket and the connections; a worker thread owns the engine. */
#define _GNU_SOURCE
#include "listen.h"
#include "log.h"
#include "notify.h"
#include "proto.h"
#include "server.h"
#include "worker.h"

#include <event2/thread.h>
#include <getopt.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

typedef struct daemon_opts {
    char socket[108];
    nc_engine_opts engine;
    server_opts server;
    double stall_timeout_s;
    const char *allow_dirs[NC_MAX_ALLOW_DIRS + 1];
    int n_allow_dirs;
} daemon_opts;

static void usage(FILE *f) {
    fprintf(f,
            "usage: nanochatd [options]\n"
            "  --socket PATH          Unix socket (default: $NANOCHAT_SOCKET, $XDG_RUNTIME_DIR/nanochat/nanochatd.sock,\n"
            "                         /tmp/nanochat-$UID/nanochatd.sock); systemd socket activation wins\n"
            "  --data PATH            default corpus (default: the bundled tiny Shakespeare)\n"
            "  --results-dir DIR      run artifacts (default: results)\n"
            "  --checkpoint-dir DIR   checkpoints (default: checkpoints)\n"
            "  --allow-dir DIR        paths in requests may also lie here (repeatable, up to %d); they are always\n"
            "                         confined to these, the results and checkpoint dirs and the default corpus's dir\n"
            "  --preload-device DEV   open this backend before reporting ready: auto|cpu|cuda|none (default: auto)\n"
            "  --threads N            CPU threads for the engine (default: all cores)\n"
            "  --max-frame BYTES      largest request frame (default: 16 MiB)\n"
            "  --max-connections N    simultaneous connections (default: 256)\n"
            "  --idle-timeout S       close connections idle this long (default: 600)\n"
            "  --frame-timeout S      a frame must arrive whole within S seconds (default: 10)\n"
            "  --allowed-group NAME   also serve members of this group; the socket is made group-accessible\n"
            "                         (default: own uid and root only)\n"
            "  --stall-timeout S      stop feeding the systemd watchdog when a job makes no progress for S (default: 300)\n"
            "  --guard-window N       memory guard: observations in the rolling window (default: 8)\n"
            "  --guard-max-growth X   memory guard: allowed growth ratio over the window minimum (default: 1.5)\n"
            "  --log-level L          error|warn|info|debug (default: info)\n"
            "  --version, --help\n",
            NC_MAX_ALLOW_DIRS);
}

static int parse_group(const char *name, gid_t *gid) {
    struct group *g = getgrnam(name);
    if (!g) return -1;
    *gid = g->gr_gid;
    return 0;
}

/* Options whose value needs checking; returns 0 or prints why and returns 1. */
static int parse_checked(int c, const char *arg, daemon_opts *o) {
    log_level level;
    switch (c) {
    case 'g':
        if (parse_group(arg, &o->server.allowed_gid) == 0) return 0;
        fprintf(stderr, "nanochatd: unknown group '%s'\n", arg);
        return 1;
    case 'l':
        if (log_level_parse(arg, &level) == 0) { log_set_level(level); return 0; }
        fprintf(stderr, "nanochatd: unknown log level '%s'\n", arg);
        return 1;
    case 'a':
        if (o->n_allow_dirs < NC_MAX_ALLOW_DIRS) { o->allow_dirs[o->n_allow_dirs++] = arg; return 0; }
        fprintf(stderr, "nanochatd: at most %d --allow-dir\n", NC_MAX_ALLOW_DIRS);
        return 1;
    case 'D':
        o->engine.preload_device = strcmp(arg, "none") == 0 ? NULL : arg;
        if (!o->engine.preload_device || !strcmp(arg, "auto") || !strcmp(arg, "cpu") || !strcmp(arg, "cuda")) return 0;
        fprintf(stderr, "nanochatd: --preload-device takes auto|cpu|cuda|none\n");
        return 1;
    }
    return 1;
}

static int check_ranges(const daemon_opts *o) {
    const server_opts *s = &o->server;
    if (s->max_frame >= 64 && s->max_connections >= 1 && s->idle_timeout_s > 0 && s->frame_timeout_s > 0 &&
        o->engine.guard_window >= 1 && o->engine.guard_max_growth > 1 && o->stall_timeout_s > 0)
        return 0;
    fprintf(stderr, "nanochatd: an option is out of range (see --help)\n");
    return 1;
}

/* Returns -1 to exit 0 (help/version), 1 on a usage error, 0 to run. */
static int parse_options(int argc, char **argv, daemon_opts *o) {
    static const struct option longopts[] = {
        {"socket", required_argument, 0, 's'},      {"data", required_argument, 0, 'd'},
        {"results-dir", required_argument, 0, 'r'}, {"checkpoint-dir", required_argument, 0, 'c'},
        {"allow-dir", required_argument, 0, 'a'},   {"preload-device", required_argument, 0, 'D'},
        {"threads", required_argument, 0, 't'},     {"max-frame", required_argument, 0, 'f'},
        {"max-connections", required_argument, 0, 'm'}, {"idle-timeout", required_argument, 0, 'i'},
        {"frame-timeout", required_argument, 0, 'F'}, {"allowed-group", required_argument, 0, 'g'},
        {"stall-timeout", required_argument, 0, 'S'}, {"guard-window", required_argument, 0, 'w'},
        {"guard-max-growth", required_argument, 0, 'G'}, {"log-level", required_argument, 0, 'l'},
        {"version", no_argument, 0, 'V'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': snprintf(o->socket, sizeof o->socket, "%s", optarg); break;
        case 'd': o->engine.data_path = optarg; break;
        case 'r': o->engine.results_dir = optarg; break;
        case 'c': o->engine.checkpoint_dir = optarg; break;
        case 't': o->engine.threads = atoi(optarg); break;
        case 'f': o->server.max_frame = (uint32_t)strtoul(optarg, NULL, 10); break;
        case 'm': o->server.max_connections = atoi(optarg); break;
        case 'i': o->server.idle_timeout_s = atof(optarg); break;
        case 'F': o->server.frame_timeout_s = atof(optarg); break;
        case 'S': o->stall_timeout_s = atof(optarg); break;
        case 'w': o->engine.guard_window = atoi(optarg); break;
        case 'G': o->engine.guard_max_growth = atof(optarg); break;
        case 'g': case 'l': case 'a': case 'D':
            if (parse_checked(c, optarg, o)) return 1;
            break;
        case 'V': printf("nanochatd %s (protocol %d)\n", NC_VERSION, NC_PROTOCOL_VERSION); return -1;
        case 'h': usage(stdout); return -1;
        default: usage(stderr); return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nanochatd: unexpected argument '%s'\n", argv[optind]);
        return 1;
    }
    return check_ranges(o);
}

/* A service holds one descriptor per connection: take the hard limit. */
static void raise_fd_limit(int max_connections) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_connections + 64)
        log_warn("the descriptor limit (%llu) is below --max-connections plus headroom; raise LimitNOFILE",
                 (unsigned long long)rl.rlim_cur);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
    (void)what;
    server_begin_shutdown(arg, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

typedef struct health {
    worker *w;
    double stall_timeout_s;
} health;

static int worker_healthy(void *arg) {
    health *h = arg;
    return worker_stall_seconds(h->w) < h->stall_timeout_s;
}

static void run_loop(daemon_opts *o, struct event_base *base, server *srv, worker *w) {
    struct event *sigterm = evsignal_new(base, SIGTERM, on_signal, srv);
    struct event *sigint = evsignal_new(base, SIGINT, on_signal, srv);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    health h = {w, o->stall_timeout_s};
    struct event *wd = notify_watchdog_start(base, worker_healthy, &h);
    notify_ready();
    event_base_dispatch(base);
    notify_watchdog_free(wd);
    event_free(sigterm);
    event_free(sigint);
}

static int serve(daemon_opts *o, struct event_base *base) {
    nc_error err = {0};
    listener_fd lfd;
    if (listen_open(&lfd, o->socket, o->server.allowed_gid, &err)) {
        log_error("%s", err.message);
        return 1;
    }
    server *srv = server_new(base, &o->server, &lfd, &err);
    worker *w = srv ? worker_start(&o->engine, base, server_deliver, srv, &err) : NULL;
    if (!w) {
        log_error("cannot start: %s", err.message);
        server_free(srv);
        listen_close(&lfd);
        return 1;
    }
    server_attach_worker(srv, w);
    log_info("nanochatd %s listening on %s%s", NC_VERSION, lfd.path, lfd.activated ? " (socket activation)" : "");
    if (geteuid() == 0) log_warn("running as root; the systemd unit runs nanochatd as its own user");
    run_loop(o, base, srv, w);
    server_free(srv);
    worker_free(w);
    listen_close(&lfd);
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv) {
    daemon_opts o = {
        .engine = {.data_path = NULL, .results_dir = "results", .checkpoint_dir = "checkpoints",
                   .guard_window = 8, .guard_max_growth = 1.5, .preload_device = "auto"},
        .server = {.max_frame = NC_FRAME_MAX_DEFAULT, .max_connections = 256, .idle_timeout_s = 600,
                   .frame_timeout_s = 10, .max_output = 8u << 20, .allowed_gid = (gid_t)-1},
        .stall_timeout_s = 300,
    };
    o.engine.allow_dirs = o.allow_dirs;
    nc_default_socket(o.socket, sizeof o.socket);
    int rc = parse_options(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN); /* over RLIMIT_FSIZE a write fails (EFBIG) and the save reports it */
    raise_fd_limit(o.server.max_connections);
    evthread_use_pthreads();
    struct event_base *base = event_base_new();
    if (!base) {
        log_error("cannot create the event loop");
        return 1;
    }
    rc = serve(&o, base);
    event_base_free(base);
    libevent_global_shutdown();
    return rc;
}
