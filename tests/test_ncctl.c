/* test_ncctl.c: the ncctl program: exit codes (0 ok, 1 daemon error, 2 usage,
 * 3 cannot connect, 4 timed out), global options before or after the
 * command, --json lines, a sample's text printed as it comes on a terminal,
 * and starting a daemon when none answers. */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct run_out {
    int status;
    char out[65536], err[8192];
} run_out;

static void drain(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t r;
    while (n + 1 < cap && (r = read(fd, buf + n, cap - 1 - n)) > 0) n += (size_t)r;
    buf[n] = '\0';
}

/* Runs ncctl with argv (NULL-terminated), capturing both streams. */
static void ncctl(run_out *o, const char *const argv[]) {
    int out[2], err[2];
    ck_assert_int_eq(pipe(out), 0);
    ck_assert_int_eq(pipe(err), 0);
    const char *args[32] = {NC_BIN_DIR "/ncctl"};
    for (int i = 0; argv[i] && i < 30; i++) args[i + 1] = argv[i];
    pid_t pid = fork();
    if (pid == 0) {
        dup2(out[1], STDOUT_FILENO);
        dup2(err[1], STDERR_FILENO);
        close(out[0]);
        close(err[0]);
        close(out[1]);
        close(err[1]);
        execv(args[0], (char *const *)args);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    drain(out[0], o->out, sizeof o->out);
    drain(err[0], o->err, sizeof o->err);
    close(out[0]);
    close(err[0]);
    int st;
    waitpid(pid, &st, 0);
    o->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

START_TEST(usage_errors_exit_2) {
    run_out o;
    ncctl(&o, (const char *const[]){NULL});
    ck_assert_int_eq(o.status, 2);
    ncctl(&o, (const char *const[]){"dance", NULL});
    ck_assert_int_eq(o.status, 2);
    ncctl(&o, (const char *const[]){"train", "--steps", "many", "--no-autostart", NULL});
    ck_assert_int_eq(o.status, 2);
    ck_assert_ptr_nonnull(strstr(o.err, "steps"));
    ncctl(&o, (const char *const[]){"train", "--warp-speed", NULL});
    ck_assert_int_eq(o.status, 2);
    ncctl(&o, (const char *const[]){"--help", NULL});
    ck_assert_int_eq(o.status, 0);
    ck_assert_ptr_nonnull(strstr(o.out, "checkpoint"));
    ncctl(&o, (const char *const[]){"train", "--help", NULL});
    ck_assert_int_eq(o.status, 0);
    ck_assert_ptr_nonnull(strstr(o.out, "--batch-size"));
    ck_assert_ptr_null(strstr(o.out, "--max-new-tokens")); /* a sample flag */
    char long_path[200];
    memset(long_path, 'x', 120);
    long_path[120] = '\0';
    ncctl(&o, (const char *const[]){"--socket", long_path, "status", NULL}); /* never truncated */
    ck_assert_int_eq(o.status, 2);
    ck_assert_ptr_nonnull(strstr(o.err, "107 bytes"));
    ncctl(&o, (const char *const[]){"status", "--timeout", "0", NULL});
    ck_assert_int_eq(o.status, 2);
    ncctl(&o, (const char *const[]){"--warp-speed", "status", NULL});
    ck_assert_int_eq(o.status, 2);
    ncctl(&o, (const char *const[]){"-h", NULL});
    ck_assert_int_eq(o.status, 0);
    ck_assert_ptr_nonnull(strstr(o.out, "global options"));
}
END_TEST

START_TEST(no_daemon_exits_3) {
    run_out o;
    ncctl(&o, (const char *const[]){"status", "--socket", "/nonexistent/nc.sock", "--no-autostart", NULL});
    ck_assert_int_eq(o.status, 3);
    ck_assert_ptr_nonnull(strstr(o.err, "cannot connect"));
    ncctl(&o, (const char *const[]){"--socket", "/nonexistent/nc.sock", "--no-autostart", "status", NULL});
    ck_assert_int_eq(o.status, 3);
}
END_TEST

static tu_daemon d;
static void setup(void) { tu_daemon_start(&d, NULL); }
static void teardown(void) { tu_daemon_cleanup(&d); }

START_TEST(json_lines_and_daemon_errors) {
    run_out o;
    ncctl(&o, (const char *const[]){"sample", "--socket", d.socket, NULL});
    ck_assert_int_eq(o.status, 1);
    ck_assert_ptr_nonnull(strstr(o.err, "NotFound"));
    ncctl(&o, (const char *const[]){"train", "--socket", d.socket, "--json", "--mode", "scalar", "--model-kind", "bigram",
                                    "--steps", "3", "--log-every", "1", "--eval-windows", "16", "--batch-size", "4", NULL});
    ck_assert_int_eq(o.status, 0);
    int progress = 0, results = 0;
    for (char *line = strtok(o.out, "\n"); line; line = strtok(NULL, "\n")) {
        json_t *j = json_loads(line, 0, NULL);
        ck_assert_msg(j != NULL, "not a JSON line: %s", line);
        const char *ev = json_string_value(json_object_get(j, "event"));
        progress += ev && !strcmp(ev, "progress");
        results += json_is_object(json_object_get(j, "result"));
        json_decref(j);
    }
    ck_assert_int_eq(progress, 3);
    ck_assert_int_eq(results, 1);
    ncctl(&o, (const char *const[]){"sample", "--socket", d.socket, "--temperature", "0", NULL});
    ck_assert_int_eq(o.status, 1);
    ck_assert_ptr_nonnull(strstr(o.err, "InvalidTemperature"));
    ncctl(&o, (const char *const[]){"sample", "--socket", d.socket, "--prompt", "ROMEO:", "--max-new-tokens", "20", NULL});
    ck_assert_int_eq(o.status, 0);
    ck_assert_int_eq(strncmp(o.out, "ROMEO:", 6), 0);
}
END_TEST

/* ncctl on a pseudo-terminal: its output, the time its first byte came and
 * the time it exited (seconds after the start). */
typedef struct on_tty {
    char out[65536];
    double first, exited;
    int status;
} on_tty;

static void ncctl_on_tty(on_tty *t, const char *const argv[]) {
    const char *args[32] = {NC_BIN_DIR "/ncctl"};
    for (int i = 0; argv[i] && i < 30; i++) args[i + 1] = argv[i];
    int fd;
    double t0 = nc_now();
    pid_t pid = forkpty(&fd, NULL, NULL, NULL);
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        execv(args[0], (char *const *)args);
        _exit(127);
    }
    size_t n = 0;
    ssize_t r;
    t->first = -1;
    while ((r = read(fd, t->out + n, sizeof t->out - 1 - n)) > 0) { /* EIO once the child has gone */
        if (t->first < 0) t->first = nc_now() - t0;
        n += (size_t)r;
    }
    t->out[n] = '\0';
    close(fd);
    int st;
    waitpid(pid, &st, 0);
    t->exited = nc_now() - t0;
    t->status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Global options before the command; a sample prints its text as it comes
 * (3,000 characters from a scalar bigram take about 0.12 s: the first arrive
 * long before the end), once; --timeout gives up with exit status 4. */
START_TEST(global_options_streaming_and_timeouts) {
    run_out o;
    ncctl(&o, (const char *const[]){"--socket", d.socket, "--json", "train", "--mode", "scalar", "--model-kind", "bigram",
                                    "--steps", "3", "--eval-windows", "16", "--batch-size", "4", NULL});
    ck_assert_msg(o.status == 0, "%s", o.err);
    on_tty t;
    ncctl_on_tty(&t, (const char *const[]){"--socket", d.socket, "sample", "--prompt", "the ", "--max-new-tokens", "3000",
                                            NULL});
    ck_assert_msg(t.status == 0 && strncmp(t.out, "the ", 4) == 0, "exit %d: %.200s", t.status, t.out);
    size_t k = 0; /* the terminal writes each newline as \r\n */
    for (size_t i = 0; t.out[i]; i++)
        if (t.out[i] != '\r') t.out[k++] = t.out[i];
    t.out[k] = '\0';
    ck_assert_int_eq(k, 4 + 3000 + 1); /* the prompt, the text once, a newline */
    ck_assert_msg(t.first < t.exited - 0.05, "the first text came at %.3f s, the end at %.3f s", t.first, t.exited);
    ncctl(&o, (const char *const[]){"--json", "sample", "--socket", d.socket, "--max-new-tokens", "5", "--prompt", "the ",
                                    NULL});
    ck_assert_int_eq(o.status, 0);
    ck_assert_ptr_nonnull(strstr(o.out, "{\"event\":\"text\""));
    ncctl(&o, (const char *const[]){"--timeout", "0.05", "--socket", d.socket, "sample", "--max-new-tokens", "1000000",
                                    "--prompt", "the ", NULL});
    ck_assert_int_eq(o.status, 4);
}
END_TEST

START_TEST(autostart_when_none_answers) {
    char dir[PATH_MAX], sock[PATH_MAX + 16];
    tu_tmpdir(dir, sizeof dir, "autostart");
    snprintf(sock, sizeof sock, "%s/a.sock", dir);
    run_out o;
    ncctl(&o, (const char *const[]){"status", "--socket", sock, "--json", NULL});
    ck_assert_msg(o.status == 0, "autostart failed: %s", o.err);
    ck_assert_ptr_nonnull(strstr(o.out, "\"state\""));
    ncctl(&o, (const char *const[]){"shutdown", "--socket", sock, "--no-autostart", NULL});
    ck_assert_int_eq(o.status, 0);
    for (int i = 0; i < 200 && access(sock, F_OK) == 0; i++) usleep(10000); /* it removes its socket */
    ck_assert_int_ne(access(sock, F_OK), 0);
    tu_rmtree(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("ncctl");
    tu_tcase(s, "offline", usage_errors_exit_2, no_daemon_exits_3, autostart_when_none_answers);
    TCase *live = tu_tcase(s, "live", json_lines_and_daemon_errors, global_options_streaming_and_timeouts);
    tcase_add_checked_fixture(live, setup, teardown);
    return tu_run(s);
}
