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
#include "engine/guards.h" /* NC_GUARD_MAX_WINDOW: the engine's largest --guard-window */

#include <errno.h>
#include <event2/thread.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/un.h>
#include <unistd.h>

typedef struct daemon_opts {
    char socket[PATH_MAX]; /* roomy: a default too long for a socket address is refused, never truncated */
    nc_engine_opts engine;
    server_opts server;
    double stall_timeout_s;
    const char *allow_dirs[NC_MAX_ALLOW_DIRS + 1];
    int n_allow_dirs;
} daemon_opts;

/* Every default, in one place (usage() prints them from here). The socket's
 * comes from the environment at run time (nc_default_socket). */
static const daemon_opts DEFAULTS = {
    .engine = {.data_path = NULL, .results_dir = NC_RESULTS_DIR_DEFAULT, .checkpoint_dir = NC_CHECKPOINT_DIR_DEFAULT, .threads = 0,
               .guard_window = NC_GUARD_WINDOW_DEFAULT,
               .guard_max_growth = NC_GUARD_GROWTH_DEFAULT, .preload = true,
               .preload_device = NC_DEVICE_AUTO},
    .server = {.max_frame = NC_FRAME_MAX_DEFAULT, .max_connections = 256, .idle_timeout_s = 600,
               .frame_timeout_s = 10, .max_output = 8u << 20, .allowed_gid = (gid_t)-1},
    .stall_timeout_s = 300,
};

/* The accepted ranges. */
#define MAX_THREADS 1024
#define MIN_FRAME 64u
#define MAX_FRAME (1u << 30)
#define MAX_CONNECTIONS 1000000
#define MIN_TIMEOUT_S 0.001
#define MAX_TIMEOUT_S 31536000.0 /* a year */
#define MAX_GROWTH 1e9
#define MAX_MEMORY ((long long)1 << 52) /* bytes: 4 PiB */
#define SOCKET_PATH_MAX ((int)sizeof ((struct sockaddr_un *)0)->sun_path - 1) /* bytes, without the NUL */

static void usage(FILE *f) {
    const daemon_opts *d = &DEFAULTS;
    fprintf(f,
            "usage: nanochatd [options]\n"
            "  --socket PATH          Unix socket, at most %d bytes (default: $NANOCHAT_SOCKET,\n"
            "                         $XDG_RUNTIME_DIR/nanochat/nanochatd.sock, /tmp/nanochat-$UID/nanochatd.sock);\n"
            "                         systemd socket activation wins\n"
            "  --data PATH            default corpus (default: the bundled tiny Shakespeare)\n"
            "  --results-dir DIR      run artifacts (default: %s)\n"
            "  --checkpoint-dir DIR   checkpoints (default: %s)\n"
            "  --allow-dir DIR        paths in requests may also lie here (repeatable, up to %d); they are always\n"
            "                         confined to these, the results and checkpoint dirs and the default corpus's dir\n"
            "  --preload-device DEV   open this backend before reporting ready: auto|cpu|cuda|none (default: %s)\n"
            "  --threads N            CPU threads for the engine, 0 to %d; 0: one per core (default: %d)\n"
            "  --max-frame BYTES      largest request frame, %u to %u (default: %u, %u MiB)\n"
            "  --max-connections N    simultaneous connections, 1 to %d (default: %d)\n"
            "  --idle-timeout S       close connections idle this long (default: %g)\n"
            "  --frame-timeout S      a frame must arrive whole within S seconds (default: %g)\n"
            "  --allowed-group NAME   also serve members of this group; the socket is made group-accessible\n"
            "                         (default: own uid and root only)\n"
            "  --stall-timeout S      stop feeding the systemd watchdog when a job makes no progress for S\n"
            "                         seconds (default: %g)\n"
            "  --guard-window N       memory guard: observations in the rolling window, 1 to %d (default: %d)\n"
            "  --guard-max-growth X   memory guard: allowed growth ratio over the window minimum, above 1\n"
            "                         and at most %.15g (default: %g)\n"
            "  --max-memory BYTES     host memory a request or a file may claim, estimated before anything is\n"
            "                         allocated; 0: 80%% of the machine's (or its cgroup's) (default: 0)\n"
            "  --max-device-memory BYTES  GPU memory the same may claim; 0: 90%% of the GPU's (default: 0)\n"
            "  --log-level L          error|warn|info|debug (default: info)\n"
            "  --version, --help\n"
            "Timeouts S are seconds, %g to %.0f. Paths have at most %d bytes. A malformed or out of\n"
            "range value is refused, never truncated or clamped: nanochatd exits 2.\n",
            SOCKET_PATH_MAX, d->engine.results_dir, d->engine.checkpoint_dir, NC_MAX_ALLOW_DIRS,
            nc_device_names[d->engine.preload_device], MAX_THREADS, d->engine.threads, MIN_FRAME, MAX_FRAME, d->server.max_frame,
            d->server.max_frame >> 20, MAX_CONNECTIONS, d->server.max_connections, d->server.idle_timeout_s,
            d->server.frame_timeout_s, d->stall_timeout_s, NC_GUARD_MAX_WINDOW, d->engine.guard_window, MAX_GROWTH,
            d->engine.guard_max_growth, MIN_TIMEOUT_S, MAX_TIMEOUT_S, PATH_MAX - 1);
}

/* ---- option values: one parser per kind; each prints why it refuses ------------- */

/* "invalid value 'V' for --NAME: expected WHAT" (a long value is shown cut). */
static int refuse(const char *name, const char *arg, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int refuse(const char *name, const char *arg, const char *fmt, ...) {
    int shown = (int)strnlen(arg, 160);
    fprintf(stderr, "nanochatd: invalid value '%.*s%s' for --%s: expected ", shown, arg, arg[shown] ? "..." : "",
            name);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return 1;
}

/* A decimal integer in [lo, hi]: digits with an optional '-', nothing else. */
static int opt_int(const char *name, const char *arg, long long lo, long long hi, const char *note, long long *out) {
    const char *digits = arg + (arg[0] == '-');
    bool plain = *digits && strspn(digits, "0123456789") == strlen(digits);
    char *end = NULL;
    errno = 0;
    long long v = plain ? strtoll(arg, &end, 10) : 0;
    if (!plain || errno || *end || v < lo || v > hi)
        return refuse(name, arg, "an integer from %lld to %lld%s%s", lo, hi, note ? " " : "", note ? note : "");
    *out = v;
    return 0;
}

/* A finite decimal number in [lo, hi], or (lo, hi] when lo_open: digits,
 * '.', an exponent; no whitespace, hex, inf or nan. */
static int opt_number(const char *name, const char *arg, double lo, bool lo_open, double hi, const char *unit,
                      double *out) {
    bool plain = *arg && strspn(arg, "0123456789.eE+-") == strlen(arg);
    char *end = NULL;
    errno = 0;
    double v = plain ? strtod(arg, &end) : 0;
    if (!plain || errno || *end || !isfinite(v) || v < lo || (lo_open && v == lo) || v > hi)
        return refuse(name, arg, "a number %s %.15g %s %.15g%s%s", lo_open ? "above" : "from", lo,
                      lo_open ? "and at most" : "to", hi, unit ? " " : "", unit ? unit : "");
    *out = v;
    return 0;
}

/* A non-empty path shorter than cap bytes, taken as given (never truncated). */
static int opt_path(const char *name, const char *arg, size_t cap, const char *what) {
    size_t n = strlen(arg);
    if (n > 0 && n < cap) return 0;
    if (n == 0) return refuse(name, arg, "%s of 1 to %zu bytes", what, cap - 1);
    return refuse(name, arg, "%s of at most %zu bytes, not %zu", what, cap - 1, n);
}

static int opt_timeout(const char *name, const char *arg, double *out) {
    return opt_number(name, arg, MIN_TIMEOUT_S, false, MAX_TIMEOUT_S, "seconds", out);
}

/* One of choices: its index into *index. */
static int opt_choice(const char *name, const char *arg, const char *const choices[], const char *accepted, int *index) {
    for (int i = 0; choices[i]; i++)
        if (strcmp(arg, choices[i]) == 0) return *index = i, 0;
    return refuse(name, arg, "%s", accepted);
}

/* Sets the option `c` (long name `name`) from arg; 0, or 1 after saying why not. */
static int set_option(daemon_opts *o, int c, const char *name, const char *arg) {
    long long n = 0;
    log_level level;
    switch (c) {
    case 's':
        if (opt_path(name, arg, (size_t)SOCKET_PATH_MAX + 1, "a socket path")) return 1;
        snprintf(o->socket, sizeof o->socket, "%s", arg);
        return 0;
    case 'd': return opt_path(name, arg, PATH_MAX, "a path") ? 1 : (o->engine.data_path = arg, 0);
    case 'r': return opt_path(name, arg, PATH_MAX, "a path") ? 1 : (o->engine.results_dir = arg, 0);
    case 'c': return opt_path(name, arg, PATH_MAX, "a path") ? 1 : (o->engine.checkpoint_dir = arg, 0);
    case 'a':
        if (opt_path(name, arg, PATH_MAX, "a path")) return 1;
        if (o->n_allow_dirs == NC_MAX_ALLOW_DIRS) return refuse(name, arg, "at most %d --%s", NC_MAX_ALLOW_DIRS, name);
        o->allow_dirs[o->n_allow_dirs++] = arg;
        return 0;
    case 'D': { /* nc_device's names, then none */
        int i = 0;
        if (opt_choice(name, arg, (const char *const[]){"auto", "cpu", "cuda", "none", NULL}, "auto|cpu|cuda|none", &i))
            return 1;
        o->engine.preload = i < 3;
        o->engine.preload_device = i < 3 ? (nc_device)i : NC_DEVICE_AUTO;
        return 0;
    }
    case 't':
        if (opt_int(name, arg, 0, MAX_THREADS, "(0: one per core)", &n)) return 1;
        o->engine.threads = (int)n;
        return 0;
    case 'f':
        if (opt_int(name, arg, MIN_FRAME, MAX_FRAME, "(bytes)", &n)) return 1;
        o->server.max_frame = (uint32_t)n;
        return 0;
    case 'm':
        if (opt_int(name, arg, 1, MAX_CONNECTIONS, NULL, &n)) return 1;
        o->server.max_connections = (int)n;
        return 0;
    case 'w':
        if (opt_int(name, arg, 1, NC_GUARD_MAX_WINDOW, NULL, &n)) return 1;
        o->engine.guard_window = (int)n;
        return 0;
    case 'x':
        if (opt_int(name, arg, 0, MAX_MEMORY, "(bytes; 0: the default)", &n)) return 1;
        o->engine.max_memory_bytes = n;
        return 0;
    case 'X':
        if (opt_int(name, arg, 0, MAX_MEMORY, "(bytes; 0: the default)", &n)) return 1;
        o->engine.max_device_memory_bytes = n;
        return 0;
    case 'i': return opt_timeout(name, arg, &o->server.idle_timeout_s);
    case 'F': return opt_timeout(name, arg, &o->server.frame_timeout_s);
    case 'S': return opt_timeout(name, arg, &o->stall_timeout_s);
    case 'G': return opt_number(name, arg, 1, true, MAX_GROWTH, NULL, &o->engine.guard_max_growth);
    case 'g': {
        struct group *g = *arg ? getgrnam(arg) : NULL;
        if (!g) return refuse(name, arg, "the name of an existing group");
        o->server.allowed_gid = g->gr_gid;
        return 0;
    }
    case 'l':
        if (log_level_parse(arg, &level)) return refuse(name, arg, "error|warn|info|debug");
        log_set_level(level);
        return 0;
    }
    return 1;
}

static const char *long_name(const struct option *opts, int val) {
    for (; opts->name; opts++)
        if (opts->val == val) return opts->name;
    return "?";
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
        {"max-memory", required_argument, 0, 'x'},  {"max-device-memory", required_argument, 0, 'X'},
        {"version", no_argument, 0, 'V'},           {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    opterr = 0; /* our messages, one line each */
    int c;
    while ((c = getopt_long(argc, argv, ":", longopts, NULL)) != -1) {
        switch (c) {
        case 'V': printf("nanochatd %s (protocol %d)\n", NC_VERSION, NC_PROTOCOL_VERSION); return -1;
        case 'h': usage(stdout); return -1;
        case ':':
            fprintf(stderr, "nanochatd: --%s needs a value (see nanochatd --help)\n", long_name(longopts, optopt));
            return 1;
        case '?':
            if (optopt) fprintf(stderr, "nanochatd: --%s takes no value\n", long_name(longopts, optopt));
            else fprintf(stderr, "nanochatd: unknown option '%s' (see nanochatd --help)\n", argv[optind - 1]);
            return 1;
        default:
            if (set_option(o, c, long_name(longopts, c), optarg)) return 1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "nanochatd: unexpected argument '%s' (see nanochatd --help)\n", argv[optind]);
        return 1;
    }
    return 0;
}

/* A service holds one descriptor per connection: take the hard limit. */
static void raise_fd_limit(int max_connections) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return;
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_connections + 64 + 2 * NC_MAX_SHARDS)
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
    nc_error stop = *server_stop_result(srv);
    server_free(srv);
    worker_free(w);
    listen_close(&lfd);
    if (stop.code) { /* systemd records a failure: the trained state is gone */
        log_error("stopped without saving: the resident model could not be saved and was lost (%s: %s)",
                  nc_code_name(stop.code), stop.message);
        return 1;
    }
    log_info("stopped");
    return 0;
}

int main(int argc, char **argv) {
    daemon_opts o = DEFAULTS;
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
