/* test_ncctl.c: the ncctl program: exit codes (0 ok, 1 daemon error, 2 usage,
 * 3 cannot connect), --json lines, and starting a daemon when none answers. */
#define _GNU_SOURCE
#include "testutil.h"

#include <fcntl.h>
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
}
END_TEST

START_TEST(no_daemon_exits_3) {
    run_out o;
    ncctl(&o, (const char *const[]){"status", "--socket", "/nonexistent/nc.sock", "--no-autostart", NULL});
    ck_assert_int_eq(o.status, 3);
    ck_assert_ptr_nonnull(strstr(o.err, "cannot connect"));
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
    TCase *live = tu_tcase(s, "live", json_lines_and_daemon_errors);
    tcase_add_checked_fixture(live, setup, teardown);
    return tu_run(s);
}
