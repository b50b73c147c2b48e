/* testutil.c: shared test helpers. */
#define _GNU_SOURCE
#include "testutil.h"

#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void tu_tmpdir(char *out, size_t n, const char *tag) {
    const char *base = getenv("TMPDIR");
    snprintf(out, n, "%s/nc-%s-XXXXXX", base && *base ? base : "/tmp", tag);
    ck_assert_ptr_nonnull(mkdtemp(out));
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void tu_rmtree(const char *path) { nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS); }

#if defined(__SANITIZE_ADDRESS__)
#define TU_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TU_ASAN 1
#endif
#endif

#ifdef TU_ASAN
#define TU_ASAN_GUARD_MAX_GROWTH 1e6
#define TU_STR(x) TU_STR_(x)
#define TU_STR_(x) #x
const char *const tu_guard_args[] = {"--guard-max-growth", TU_STR(TU_ASAN_GUARD_MAX_GROWTH), NULL};
double tu_guard_max_growth(void) { return TU_ASAN_GUARD_MAX_GROWTH; }
#else
const char *const tu_guard_args[] = {NULL};
double tu_guard_max_growth(void) { return 0; }
#endif

void tu_daemon_start(tu_daemon *d, const char *const extra[]) {
    memset(d, 0, sizeof *d);
    tu_tmpdir(d->dir, sizeof d->dir, "daemon");
    snprintf(d->socket, sizeof d->socket, "%s/d.sock", d->dir);
    snprintf(d->results, sizeof d->results, "%s/results", d->dir);
    snprintf(d->checkpoints, sizeof d->checkpoints, "%s/checkpoints", d->dir);
    char log[PATH_MAX + 8];
    snprintf(log, sizeof log, "%s/log", d->dir);
    const char *argv[48] = {NC_BIN_DIR "/nanochatd", "--socket", d->socket, "--results-dir", d->results,
                            "--checkpoint-dir", d->checkpoints, "--threads", "1"};
    int n = 9;
    for (int i = 0; tu_guard_args[i]; i++) argv[n++] = tu_guard_args[i];
    for (int i = 0; extra && extra[i] && n < 46; i++) argv[n++] = extra[i];
    argv[n] = NULL;
    d->pid = fork();
    ck_assert_int_ge(d->pid, 0);
    if (d->pid == 0) {
        FILE *f = freopen(log, "w", stderr);
        (void)f;
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    for (int i = 0; i < 500; i++) {
        if (nc_client_ping(d->socket)) return;
        int st;
        if (waitpid(d->pid, &st, WNOHANG) == d->pid) ck_abort_msg("nanochatd exited at start (status %d)", st);
        usleep(10000);
    }
    ck_abort_msg("nanochatd did not answer on %s", d->socket);
}

int tu_daemon_stop(tu_daemon *d) {
    if (d->pid <= 0) return -1;
    kill(d->pid, SIGTERM);
    int st = 0;
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tu_daemon_cleanup(tu_daemon *d) {
    if (d->pid > 0) {
        kill(d->pid, SIGKILL);
        waitpid(d->pid, NULL, 0);
    }
    tu_rmtree(d->dir);
}

void tu_connect(nc_client *c, const tu_daemon *d) {
    nc_error err;
    ck_assert_msg(nc_client_connect(c, d->socket, &err) == 0, "%s", err.message);
}

json_t *tu_call(nc_client *c, const char *cmd, json_t *args) {
    nc_error err;
    json_t *r = nc_client_call(c, cmd, args, NULL, NULL, &err);
    ck_assert_msg(r != NULL, "%s failed: %s: %s", cmd, nc_code_name(err.code), err.message);
    return r;
}

const char *tu_call_error(nc_client *c, const char *cmd, json_t *args, nc_code code) {
    static nc_error err;
    json_t *r = nc_client_call(c, cmd, args, NULL, NULL, &err);
    ck_assert_msg(r == NULL, "%s unexpectedly succeeded", cmd);
    ck_assert_msg(err.code == code, "%s: expected %s, got %s: %s", cmd, nc_code_name(code), nc_code_name(err.code),
                  err.message);
    return err.message;
}

char *tu_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    size_t got = fread(buf, 1, (size_t)n, f);
    fclose(f);
    buf[got] = '\0';
    if (len) *len = got;
    return buf;
}

