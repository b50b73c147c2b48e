/* test_daemon_options.c: nanochatd's command line and its exit status.
 * Every option value is parsed strictly: a malformed, out of range or too
 * long value (a --socket path that does not fit a socket address, a
 * --max-frame that would wrap, a --threads that is not a number, ...) makes
 * nanochatd refuse to start with exit code 2 and one line on stderr naming
 * the option, the value and what is accepted; nothing is bound or created.
 * The boundary values are accepted, and a daemon started with them serves.
 * `nanochatd --help` is what README.md shows. And a final save that fails
 * on the way out (SIGTERM or `shutdown` with a full disk, simulated by a file
 * size limit on the running daemon) exits 1 and logs that the model was
 * lost; with room it exits 0. */
#define _GNU_SOURCE
#include "svc.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define NANOCHATD NC_BIN_DIR "/nanochatd"

static char out[16384];

/* The entries of a folder, . and .. aside. */
static int entries(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));) n += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
    if (d) closedir(d);
    return n;
}

/* Runs nanochatd with the options (NULL-terminated) after a base that keeps
 * it inside `dir` should it start after all: `timeout` ends such a daemon
 * (status 124), so a regression fails here rather than hanging. The exit
 * status; the output in `out`. */
static int run_in(const char *dir, const char *const opts[]) {
    char sock[PATH_MAX], res[PATH_MAX], ck[PATH_MAX];
    snprintf(sock, sizeof sock, "%.80s/d.sock", dir);
    snprintf(res, sizeof res, "%s/results", dir);
    snprintf(ck, sizeof ck, "%s/checkpoints", dir);
    const char *argv[48] = {"timeout", "-k", "1", "3", NANOCHATD, "--socket", sock, "--results-dir", res,
                            "--checkpoint-dir", ck, "--preload-device", "none", "--threads", "1"};
    int n = 15;
    for (int i = 0; opts[i] && n < 47; i++) argv[n++] = opts[i];
    argv[n] = NULL;
    return svc_run(argv, out, sizeof out);
}

/* `--option value` is refused: exit 2, one line naming both, nothing left in a fresh folder. */
static void refused(const char *option, const char *value) {
    char dir[PATH_MAX];
    tu_tmpdir(dir, sizeof dir, "opts");
    int rc = run_in(dir, (const char *const[]){option, value, NULL});
    ck_assert_msg(rc == 2, "%s '%.40s': exit %d, not 2; output: %s", option, value, rc, out);
    char shown[200]; /* a long value is shown cut */
    snprintf(shown, sizeof shown, strlen(value) <= 160 ? "'%s'" : "'%.160s", value);
    ck_assert_msg(strncmp(out, "nanochatd: ", 11) == 0 && strstr(out, option) && strstr(out, shown) &&
                      strstr(out, "expected"),
                  "%s '%.40s': the message does not name the option, the value and what is accepted: %s", option,
                  value, out);
    char *nl = strchr(out, '\n');
    ck_assert_msg(nl && nl[1] == '\0', "%s '%.40s': not one line: %s", option, value, out);
    ck_assert_msg(entries(dir) == 0, "%s '%.40s': nanochatd created files in %s", option, value, dir);
    tu_rmtree(dir);
}

/* The options (before --help, which exits 0 once they all parsed) are accepted. */
static void accepted(const char *option, const char *value) {
    char dir[PATH_MAX];
    tu_tmpdir(dir, sizeof dir, "opts");
    int rc = run_in(dir, (const char *const[]){option, value, "--help", NULL});
    ck_assert_msg(rc == 0 && strstr(out, "usage: nanochatd"), "%s '%.40s' was refused (exit %d): %s", option, value,
                  rc, out);
    tu_rmtree(dir);
}

/* A path of exactly `len` bytes: dir/ then 's' repeated. */
static void long_path(char *buf, size_t cap, const char *dir, size_t len) {
    ck_assert_uint_lt(len, cap);
    int n = snprintf(buf, cap, "%s/", dir);
    ck_assert_msg((size_t)n < len, "the temporary folder %s is too long for this test", dir);
    memset(buf + n, 's', len - (size_t)n);
    buf[len] = '\0';
}

/* ---- the three reported cases ---------------------------------------------------- */

START_TEST(a_socket_path_too_long_for_sun_path_is_refused_not_truncated) {
    char dir[PATH_MAX], path[PATH_MAX], sub[PATH_MAX];
    tu_tmpdir(dir, sizeof dir, "optsock");
    for (size_t len = 108; len <= 300; len += 192) { /* 108: the first that does not fit; 300: far over */
        long_path(path, sizeof path, dir, len);
        int rc = run_in(dir, (const char *const[]){"--socket", path, NULL});
        ck_assert_msg(rc == 2, "a %zu-byte socket path: exit %d; output: %s", len, rc, out);
        ck_assert_msg(strstr(out, "--socket") && strstr(out, "at most 107 bytes"), "%s", out);
        ck_assert_msg(entries(dir) == 0, "a %zu-byte socket path: something was bound or created in %s", len, dir);
    }
    /* in a folder that does not exist yet: it is not created either */
    snprintf(sub, sizeof sub, "%s/sub", dir);
    long_path(path, sizeof path, sub, 120);
    ck_assert_int_eq(run_in(dir, (const char *const[]){"--socket", path, NULL}), 2);
    ck_assert_int_eq(entries(dir), 0);
    tu_rmtree(dir);
    refused("--socket", "");
}
END_TEST

START_TEST(a_max_frame_that_would_wrap_is_refused) {
    refused("--max-frame", "4294967396"); /* 2^32 + 100: wrapped to 100 before */
    refused("--max-frame", "4294967296");
    refused("--max-frame", "18446744073709551716"); /* over 2^64 */
    refused("--max-frame", "1073741825");
    refused("--max-frame", "63");
    refused("--max-frame", "0");
    refused("--max-frame", "-64");
    refused("--max-frame", "16M");
    refused("--max-frame", "");
}
END_TEST

START_TEST(threads_that_are_not_a_number_are_refused) {
    refused("--threads", "abc"); /* became 0 (all cores) before */
    refused("--threads", "12x");
    refused("--threads", "1.5");
    refused("--threads", " 4");
    refused("--threads", "-1");
    refused("--threads", "1025");
    refused("--threads", "99999999999999999999");
    refused("--threads", "");
}
END_TEST

/* ---- the other options, by kind ------------------------------------------------------ */

START_TEST(malformed_or_out_of_range_integers_are_refused) {
    refused("--max-connections", "0");
    refused("--max-connections", "-5");
    refused("--max-connections", "1000001");
    refused("--max-connections", "256abc");
    refused("--guard-window", "0");
    refused("--guard-window", "65");
    refused("--guard-window", "0x8");
    refused("--guard-window", "");
}
END_TEST

START_TEST(timeouts_must_be_finite_and_positive) {
    const char *const bad[] = {"inf", "-inf", "infinity", "nan", "0", "-1", "0.0009", "31536001", "1e400", "10s",
                               "0x10", "", " 5", "1e", NULL};
    for (int i = 0; bad[i]; i++) {
        refused("--idle-timeout", bad[i]);
        refused("--frame-timeout", bad[i]);
        refused("--stall-timeout", bad[i]);
    }
}
END_TEST

START_TEST(the_guard_growth_must_exceed_one) {
    const char *const bad[] = {"1", "0.5", "-2", "nan", "inf", "1e10", "1.5x", "", NULL};
    for (int i = 0; bad[i]; i++) refused("--guard-max-growth", bad[i]);
}
END_TEST

START_TEST(paths_too_long_or_empty_are_refused) {
    static char big[PATH_MAX + 16];
    memset(big, 'p', PATH_MAX);
    big[0] = '/';
    big[PATH_MAX] = '\0'; /* PATH_MAX bytes: one too many with its NUL */
    const char *const opts[] = {"--data", "--results-dir", "--checkpoint-dir", "--allow-dir", NULL};
    for (int i = 0; opts[i]; i++) {
        refused(opts[i], big);
        refused(opts[i], "");
    }
}
END_TEST

START_TEST(words_outside_their_set_are_refused) {
    refused("--log-level", "verbose");
    refused("--preload-device", "gpu");
    refused("--allowed-group", "no-such-group-nanochat-test");
    refused("--allowed-group", "");
}
END_TEST

START_TEST(unknown_options_and_missing_values_exit_2_with_one_line) {
    char dir[PATH_MAX];
    tu_tmpdir(dir, sizeof dir, "opts");
    const char *const *cases[] = {(const char *const[]){"--no-such-option", NULL},
                                  (const char *const[]){"--threads", NULL}, (const char *const[]){"stray", NULL},
                                  (const char *const[]){"--help=yes", NULL}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = run_in(dir, cases[i]);
        ck_assert_msg(rc == 2, "%s: exit %d: %s", cases[i][0], rc, out);
        char *nl = strchr(out, '\n');
        ck_assert_msg(strncmp(out, "nanochatd: ", 11) == 0 && nl && nl[1] == '\0', "%s: %s", cases[i][0], out);
    }
    ck_assert_int_eq(entries(dir), 0);
    tu_rmtree(dir);
}
END_TEST

START_TEST(boundary_values_are_accepted) {
    static char path[PATH_MAX];
    memset(path, 'p', PATH_MAX - 1);
    path[0] = '/';
    path[PATH_MAX - 1] = '\0'; /* PATH_MAX - 1 bytes: the longest that fits */
    const char *const ok[][2] = {
        {"--threads", "0"}, {"--threads", "1024"}, {"--max-frame", "64"}, {"--max-frame", "1073741824"},
        {"--max-connections", "1"}, {"--max-connections", "1000000"}, {"--guard-window", "1"},
        {"--guard-window", "64"}, {"--idle-timeout", "0.001"}, {"--idle-timeout", "31536000"},
        {"--frame-timeout", "1e-3"}, {"--stall-timeout", "2.5"}, {"--guard-max-growth", "1.000001"},
        {"--guard-max-growth", "1e9"}, {"--data", path}, {"--results-dir", path}, {"--checkpoint-dir", path},
        {"--allow-dir", path}, {"--log-level", "debug"}, {"--preload-device", "cpu"}, {"--socket", "x"}};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) accepted(ok[i][0], ok[i][1]);
}
END_TEST

/* A daemon started with a boundary value of each kind serves, and the values hold. */
START_TEST(a_daemon_starts_with_boundary_values) {
    char dir[PATH_MAX], sock[PATH_MAX];
    tu_tmpdir(dir, sizeof dir, "optstart");
    long_path(sock, sizeof sock, dir, 107); /* the longest socket path there is */
    tu_daemon d;
    svc_spawn(&d, SVC_AS_IS, NULL,
              (const char *const[]){"--socket", sock, "--max-frame", "64", "--stall-timeout", "0.001",
                                    "--guard-max-growth", "1e9", "--guard-window", "64", NULL});
    snprintf(d.socket, sizeof d.socket, "%s", sock);
    svc_wait_ready(&d);
    nc_client c;
    tu_connect(&c, &d);
    json_t *st = tu_call(&c, "status", NULL);
    ck_assert_str_eq(json_string_value(json_object_get(st, "socket")), sock);
    json_decref(st);
    nc_client_close(&c);
    /* --max-frame 64 holds: a 65-byte frame is too large */
    int fd = svc_connect(sock);
    ck_assert_int_ge(fd, 0);
    uint8_t frame[4 + 65] = {0, 0, 0, 65};
    memset(frame + 4, ' ', 65);
    svc_send_bytes(fd, frame, sizeof frame);
    nc_reply r;
    ck_assert_int_eq(svc_recv(fd, 2000, &r), 0);
    ck_assert_msg(r.kind == NC_REPLY_ERROR && r.code == NC_E_FRAME_TOO_LARGE, "%s", r.message ? r.message : "ok");
    nc_reply_free(&r);
    close(fd);
    ck_assert_int_eq(tu_daemon_stop(&d), 0);
    tu_daemon_cleanup(&d);
    tu_rmtree(dir);
}
END_TEST

/* The README's `nanochatd --help` block is the help, word for word. */
START_TEST(the_readme_shows_the_help) {
    const char *const argv[] = {NANOCHATD, "--help", NULL};
    ck_assert_int_eq(svc_run(argv, out, sizeof out), 0);
    char *readme = tu_read_file(NC_SOURCE_DIR "/README.md", NULL);
    ck_assert_ptr_nonnull(readme);
    const char *head = "`nanochatd --help`:\n\n```\n";
    char *start = strstr(readme, head);
    ck_assert_msg(start != NULL, "README.md lacks the `nanochatd --help` block");
    start += strlen(head);
    char *end = strstr(start, "```\n");
    ck_assert_ptr_nonnull(end);
    *end = '\0';
    ck_assert_msg(strcmp(start, out) == 0, "README.md's help block differs from nanochatd --help:\n%s", out);
    free(readme);
}
END_TEST

/* ---- the exit status of a stop whose save fails -------------------------------------------- */

/* Starts a long training run and returns once it has made progress: the
 * resident model then has unsaved steps. The connection stays open. */
static int train_a_while(tu_daemon *d) {
    int fd = svc_connect(d->socket);
    ck_assert_int_ge(fd, 0);
    svc_send(fd, nc_msg_request(1, "train", svc_bigram(1000000, 1)));
    for (nc_reply r; svc_recv(fd, 5000, &r) == 0; nc_reply_free(&r)) {
        ck_assert_msg(r.kind == NC_REPLY_EVENT, "the job ended: %s", r.message ? r.message : "ok");
        if (strcmp(r.event, "progress") || json_integer_value(json_object_get(r.body, "step")) < 3) continue;
        nc_reply_free(&r);
        return fd;
    }
    ck_abort_msg("no progress");
    return -1;
}

static char *daemon_log(const tu_daemon *d) {
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/log", d->dir);
    char *log = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(log);
    return log;
}

/* Trains, takes the room a checkpoint needs, stops the daemon (SIGTERM, or
 * the `shutdown` command, which answers the save's IoError): it exits 1 and
 * its log says the model was lost. */
static void stop_with_a_full_disk(bool sigterm) {
    tu_daemon d;
    svc_start(&d, NULL);
    int fd = train_a_while(&d);
    /* the checkpoint (tens of KiB) no longer fits; the log (a few hundred bytes so far) does */
    struct rlimit rl = {16384, RLIM_INFINITY};
    ck_assert_msg(prlimit(d.pid, RLIMIT_FSIZE, &rl, NULL) == 0, "prlimit: %s", strerror(errno));
    if (sigterm) {
        kill(d.pid, SIGTERM);
    } else {
        nc_client c;
        tu_connect(&c, &d);
        const char *msg = tu_call_error(&c, "shutdown", NULL, NC_E_IO);
        ck_assert_msg(strstr(msg, "File too large"), "%s", msg);
        nc_client_close(&c);
    }
    int status = svc_wait_exit(&d);
    close(fd);
    char *log = daemon_log(&d);
    ck_assert_msg(status == 1, "exit status %d after a failed final save; log:\n%s", status, log);
    ck_assert_msg(strstr(log, "ERROR") && strstr(log, "the resident model could not be saved and was lost") &&
                      strstr(log, "File too large"),
                  "the log does not say the model was lost:\n%s", log);
    ck_assert_ptr_null(strstr(log, "INFO stopped"));
    free(log);
    tu_daemon_cleanup(&d);
}

START_TEST(sigterm_exits_1_when_the_final_save_fails) { stop_with_a_full_disk(true); }
END_TEST

START_TEST(shutdown_exits_1_when_the_final_save_fails) { stop_with_a_full_disk(false); }
END_TEST

START_TEST(sigterm_exits_0_when_the_final_save_succeeds) {
    tu_daemon d;
    svc_start(&d, NULL);
    close(train_a_while(&d));
    kill(d.pid, SIGTERM);
    int status = svc_wait_exit(&d);
    char *log = daemon_log(&d);
    ck_assert_msg(status == 0, "exit status %d; log:\n%s", status, log);
    ck_assert_msg(strstr(log, "saved the resident model to") && strstr(log, "INFO stopped"), "%s", log);
    ck_assert_ptr_null(strstr(log, "was lost"));
    free(log);
    tu_daemon_cleanup(&d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_options");
    tu_tcase(s, "refused", a_socket_path_too_long_for_sun_path_is_refused_not_truncated,
             a_max_frame_that_would_wrap_is_refused, threads_that_are_not_a_number_are_refused,
             malformed_or_out_of_range_integers_are_refused, timeouts_must_be_finite_and_positive,
             the_guard_growth_must_exceed_one, paths_too_long_or_empty_are_refused, words_outside_their_set_are_refused,
             unknown_options_and_missing_values_exit_2_with_one_line);
    tu_tcase(s, "accepted", boundary_values_are_accepted, a_daemon_starts_with_boundary_values,
             the_readme_shows_the_help);
    tu_tcase(s, "exit_status", sigterm_exits_1_when_the_final_save_fails, shutdown_exits_1_when_the_final_save_fails,
             sigterm_exits_0_when_the_final_save_succeeds);
    return tu_run(s);
}
