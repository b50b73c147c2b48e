/* svc.c: helpers of the service, security and fault suites. */
#define _GNU_SOURCE
#include "svc.h"
#include "trainutil.h"

#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <poll.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double svc_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* ---- daemons ----------------------------------------------------------------- */

static void become(uid_t uid, gid_t gid) {
    if (setgroups(0, NULL) || setgid(gid) || setuid(uid)) _exit(126);
}

static gid_t primary_gid(uid_t uid) {
    struct passwd *pw = getpwuid(uid);
    return pw ? pw->pw_gid : (gid_t)uid;
}

/* The first 64 KiB of the bundled corpus, in <dir>/data/: loads in a few ms. */
static void small_corpus(const tu_daemon *d, char *path, size_t n) {
    char dir[PATH_MAX + 8];
    snprintf(dir, sizeof dir, "%s/data", d->dir);
    ck_assert_int_eq(mkdir(dir, 0755), 0);
    snprintf(path, n, "%s/corpus.txt", dir);
    size_t len;
    char *text = tu_read_file(NC_SOURCE_DIR "/data/tinyshakespeare.txt", &len);
    FILE *f = fopen(path, "wb");
    ck_assert(text && f && fwrite(text, 1, 65536, f) == 65536);
    fclose(f);
    free(text);
}

void svc_spawn(tu_daemon *d, uid_t uid, const char *const wrapper[], const char *const extra[]) {
    memset(d, 0, sizeof *d);
    tu_tmpdir(d->dir, sizeof d->dir, "svc");
    snprintf(d->socket, sizeof d->socket, "%s/d.sock", d->dir);
    snprintf(d->results, sizeof d->results, "%s/results", d->dir);
    snprintf(d->checkpoints, sizeof d->checkpoints, "%s/checkpoints", d->dir);
    if (uid != SVC_AS_IS) ck_assert_int_eq(chown(d->dir, uid, primary_gid(uid)), 0);
    char corpus[PATH_MAX + 16];
    small_corpus(d, corpus, sizeof corpus);
    const char *own[] = {NC_BIN_DIR "/nanochatd", "--socket", d->socket, "--results-dir", d->results,
                         "--checkpoint-dir", d->checkpoints, "--data", corpus, "--threads", "1", NULL};
    const char *argv[64];
    int n = 0;
    for (int i = 0; wrapper && wrapper[i]; i++) argv[n++] = wrapper[i];
    for (int i = 0; own[i]; i++) argv[n++] = own[i];
    for (int i = 0; tu_guard_args[i]; i++) argv[n++] = tu_guard_args[i];
    for (int i = 0; extra && extra[i] && n < 63; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    char log[PATH_MAX + 8];
    snprintf(log, sizeof log, "%s/log", d->dir);
    d->pid = fork();
    ck_assert_int_ge(d->pid, 0);
    if (d->pid > 0) return;
    if (!freopen(log, "w", stderr)) _exit(125);
    if (uid != SVC_AS_IS) become(uid, primary_gid(uid));
    execvp(argv[0], (char *const *)argv);
    _exit(127);
}

void svc_wait_ready(const tu_daemon *d) {
    for (int i = 0; i < 500; i++) {
        int st;
        if (nc_client_ping(d->socket)) return;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) ck_abort_msg("nanochatd exited at start (status %d)", st);
        usleep(10000);
    }
    ck_abort_msg("nanochatd did not answer on %s", d->socket);
}

void svc_start(tu_daemon *d, const char *const extra[]) {
    svc_spawn(d, SVC_AS_IS, NULL, extra);
    svc_wait_ready(d);
}

int svc_wait_exit(tu_daemon *d) {
    int st = 0;
    for (int i = 0; i < 1000 && waitpid(d->pid, &st, WNOHANG) == 0; i++) usleep(10000);
    if (waitpid(d->pid, &st, WNOHANG) == 0) ck_abort_msg("nanochatd %d did not exit within 10 s", (int)d->pid);
    d->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int svc_run(const char *const argv[], char *out, size_t cap) {
    int p[2];
    out[0] = '\0';
    if (pipe(p) < 0) return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], STDOUT_FILENO);
        dup2(p[1], STDERR_FILENO);
        close(p[0]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(p[1]);
    if (pid < 0) {
        close(p[0]);
        return -1;
    }
    size_t n = 0;
    for (ssize_t r; n + 1 < cap && (r = read(p[0], out + n, cap - 1 - n)) > 0;) n += (size_t)r;
    out[n] = '\0';
    close(p[0]);
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* ---- raw connections ------------------------------------------------------------ */

int svc_connect(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0) return fd;
    if (fd >= 0) close(fd);
    return -1;
}

void svc_send_bytes(int fd, const void *p, size_t n) {
    const char *b = p;
    while (n > 0) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w <= 0) return; /* the peer hung up: what follows finds out */
        b += w;
        n -= (size_t)w;
    }
}

void svc_send(int fd, json_t *msg) {
    uint8_t *buf;
    size_t len;
    if (nc_frame_pack(msg, &buf, &len) == 0) {
        svc_send_bytes(fd, buf, len);
        free(buf);
    }
    json_decref(msg);
}

int svc_recv(int fd, int timeout_ms, nc_reply *r) {
    nc_client c = {.fd = fd, .max_frame = NC_FRAME_MAX_DEFAULT};
    nc_error err;
    return nc_client_recv(&c, r, timeout_ms, &err);
}

void svc_recv_final(int fd, int timeout_ms, nc_reply *r) {
    for (;;) {
        ck_assert_msg(svc_recv(fd, timeout_ms, r) == 0, "no reply within %d ms", timeout_ms);
        if (r->kind != NC_REPLY_EVENT) return;
        nc_reply_free(r);
    }
}

bool svc_closed_within(int fd, int timeout_ms) {
    double end = svc_now_ms() + timeout_ms;
    char buf[4096];
    for (double left; (left = end - svc_now_ms()) > 0;) {
        struct pollfd pfd = {fd, POLLIN, 0};
        if (poll(&pfd, 1, (int)left + 1) <= 0) continue;
        ssize_t r = recv(fd, buf, sizeof buf, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) return true;
    }
    return false;
}

static svc_outcome status_outcome(const char *socket) {
    int fd = svc_connect(socket);
    if (fd < 0) return SVC_NO_CONNECT;
    svc_send(fd, nc_msg_request(1, "status", NULL));
    nc_reply r;
    if (svc_recv(fd, 2000, &r)) return SVC_OTHER;
    svc_outcome o = r.kind == NC_REPLY_OK ? SVC_SERVED : SVC_OTHER;
    if (r.kind == NC_REPLY_ERROR && r.code == NC_E_PERMISSION_DENIED && svc_closed_within(fd, 2000)) o = SVC_DENIED;
    nc_reply_free(&r);
    close(fd);
    return o;
}

svc_outcome svc_status_as(const char *socket, uid_t uid, gid_t gid) {
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        become(uid, gid);
        _exit(status_outcome(socket));
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? (svc_outcome)WEXITSTATUS(st) : SVC_OTHER;
}

/* ---- process figures --------------------------------------------------------------- */

int svc_fd_count(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *d = opendir(path);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));) n += de->d_name[0] != '.';
    if (d) closedir(d);
    return n;
}

long svc_rss_kb(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb;
}

/* ---- the status prober ---------------------------------------------------------------- */

static void *probe_loop(void *arg) {
    svc_prober *p = arg;
    while (!atomic_load(&p->stop)) {
        double t0 = svc_now_ms();
        int fd = svc_connect(p->socket);
        nc_reply r;
        bool ok = fd >= 0;
        if (ok) svc_send(fd, nc_msg_request(1, "status", NULL));
        ok = ok && svc_recv(fd, 2000, &r) == 0;
        if (ok) {
            ok = r.kind == NC_REPLY_OK;
            nc_reply_free(&r);
        }
        double ms = svc_now_ms() - t0;
        if (fd >= 0) close(fd);
        p->failures += !ok;
        atomic_fetch_add(&p->probes, 1);
        if (ms > p->max_ms) p->max_ms = ms;
        usleep(5000);
    }
    return NULL;
}

void svc_prober_start(svc_prober *p, const char *socket) {
    memset(p, 0, sizeof *p);
    snprintf(p->socket, sizeof p->socket, "%s", socket);
    ck_assert_int_eq(pthread_create(&p->thread, NULL, probe_loop, p), 0);
}

void svc_prober_stop(svc_prober *p) {
    atomic_store(&p->stop, true);
    pthread_join(p->thread, NULL);
}

double svc_prober_finish(svc_prober *p, const char *scenario) {
    while (atomic_load(&p->probes) == 0) usleep(1000);
    svc_prober_stop(p);
    svc_figure("latency scenario=%s probes=%ld max_ms=%.2f failures=%ld", scenario, (long)p->probes, p->max_ms,
               p->failures);
    ck_assert_msg(p->failures == 0, "%ld of %ld status probes failed", p->failures, (long)p->probes);
    return p->max_ms;
}

void svc_prober_content(svc_prober *p, const char *scenario) {
    double ms = svc_prober_finish(p, scenario);
    ck_assert_msg(ms < svc_latency_ms(), "status took %.1f ms (over %.0f ms) in %ld probes", ms, svc_latency_ms(),
                  (long)p->probes);
}

double svc_latency_ms(void) {
    const char *env = getenv("NC_TEST_LATENCY_MS");
    return env && atof(env) > 0 ? atof(env) : 50.0;
}

/* ---- training ------------------------------------------------------------------------- */

json_t *svc_bigram(int steps, int log_every) {
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "mode", "scalar", "model_kind", "bigram", "steps", steps,
                     "eval_windows", 64, "log_every", log_every, "batch_size", 8);
}

void svc_collect_loss(void *ctx, const char *event, json_t *data) {
    svc_losses *l = ctx;
    if (strcmp(event, "progress") || l->n >= (int)(sizeof l->loss / sizeof l->loss[0])) return;
    l->step[l->n] = json_integer_value(json_object_get(data, "step"));
    l->loss[l->n++] = json_number_value(json_object_get(data, "loss"));
}

uint8_t *svc_checkpoint_tensors(const char *path, size_t *len) {
    size_t n;
    char *file = tu_read_file(path, &n);
    ck_assert_msg(file && n >= 40, "cannot read checkpoint %s", path);
    uint64_t H, D;
    memcpy(&H, file + 16, 8);
    memcpy(&D, file + 24, 8);
    ck_assert_uint_eq(40 + H + D, n);
    uint8_t *t = malloc(D);
    memcpy(t, file + 40 + H, D);
    free(file);
    *len = D;
    return t;
}

int64_t svc_checkpoint_load(const char *path, nc_error *err) {
    nc_engine_opts o = {.results_dir = "/nonexistent", .checkpoint_dir = "/nonexistent", .threads = 1};
    nc_engine *e = nc_engine_new(&o, err);
    json_t *res = e ? tu_engine_try(e, "checkpoint", json_pack("{s:s, s:s}", "action", "load", "path", path), NULL, err)
                    : NULL;
    int64_t step = res ? json_integer_value(json_object_get(res, "step")) : -1;
    json_decref(res);
    nc_engine_free(e);
    return step;
}

/* ---- scale and figures ------------------------------------------------------------------ */

long svc_env(const char *name, long fallback) {
    const char *v = getenv(name);
    return v && atol(v) > 0 ? atol(v) : fallback;
}

void svc_figure(const char *fmt, ...) {
    if (!getenv("NC_TEST_FIGURES")) return;
    va_list ap;
    va_start(ap, fmt);
    printf("FIGURE ");
    vprintf(fmt, ap);
    printf("\n");
    fflush(stdout);
    va_end(ap);
}
