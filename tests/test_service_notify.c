/* test_service_notify.c: nanochatd speaking systemd's protocols, checked
 * with the real counterparts: the sd_notify datagrams are read from a
 * NOTIFY_SOCKET the test creates (READY=1 only once the socket answers,
 * STATUS= with the job, step and loss, WATCHDOG=1 from the loop and withheld
 * while the worker is stuck, STOPPING=1 at SIGTERM), and socket activation
 * is done by systemd-socket-activate. */
#define _GNU_SOURCE
#include "svc.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* The datagrams, read as they come by a thread (a full queue would block the
 * daemon's sd_notify, as it would with a stuck systemd). */
static struct {
    char dir[PATH_MAX];
    int fd;
    pthread_t reader;
    atomic_bool stop;
    pthread_mutex_t mu;
    char *lines[8192];
    int n, cursor;
} note = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void *read_notes(void *arg) {
    (void)arg;
    char buf[4096];
    while (!atomic_load(&note.stop)) {
        struct pollfd pfd = {note.fd, POLLIN, 0};
        if (poll(&pfd, 1, 20) <= 0) continue;
        ssize_t n = recv(note.fd, buf, sizeof buf - 1, 0);
        if (n <= 0) continue;
        buf[n] = '\0';
        pthread_mutex_lock(&note.mu);
        if (note.n < (int)(sizeof note.lines / sizeof note.lines[0])) note.lines[note.n++] = strdup(buf);
        pthread_mutex_unlock(&note.mu);
    }
    return NULL;
}

/* A NOTIFY_SOCKET and a 50 ms watchdog for the daemons this test starts. */
static void notify_open(void) {
    tu_tmpdir(note.dir, sizeof note.dir, "notify");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s/notify", note.dir);
    note.fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    ck_assert_int_eq(bind(note.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    setenv("NOTIFY_SOCKET", sa.sun_path, 1);
    setenv("WATCHDOG_USEC", "50000", 1);
    unsetenv("WATCHDOG_PID");
    ck_assert_int_eq(pthread_create(&note.reader, NULL, read_notes, NULL), 0);
}

static void notify_close(void) {
    atomic_store(&note.stop, true);
    pthread_join(note.reader, NULL);
    close(note.fd);
    tu_rmtree(note.dir);
    for (int i = 0; i < note.n; i++) free(note.lines[i]);
    note.n = note.cursor = 0;
    atomic_store(&note.stop, false);
}

/* True when a datagram not yet looked at holds `want` (as a whole line) within
 * timeout_ms; counts the WATCHDOG=1 pings passed on the way. */
static bool wait_for(const char *want, int timeout_ms, int *pings) {
    for (double end = svc_now_ms() + timeout_ms; svc_now_ms() < end; usleep(2000)) {
        pthread_mutex_lock(&note.mu);
        bool found = false;
        while (!found && note.cursor < note.n) {
            const char *line = note.lines[note.cursor++], *at = strstr(line, want);
            if (pings && strstr(line, "WATCHDOG=1")) ++*pings;
            found = at && (at == line || at[-1] == '\n');
        }
        pthread_mutex_unlock(&note.mu);
        if (found) return true;
    }
    return false;
}

START_TEST(ready_status_watchdog_and_stopping) {
    tu_daemon d;
    notify_open();
    svc_spawn(&d, SVC_AS_IS, NULL, NULL);
    ck_assert_msg(wait_for("READY=1", 5000, NULL), "no READY=1");
    ck_assert_int_eq(svc_status_as(d.socket, 0, 0), SVC_SERVED); /* at once: no retry */
    ck_assert_msg(wait_for("WATCHDOG=1", 1000, NULL), "no watchdog ping while idle");
    nc_client c;
    tu_connect(&c, &d);
    json_decref(tu_call(&c, "train", svc_bigram(100, 50)));
    nc_client_close(&c);
    ck_assert_msg(wait_for("STATUS=train (request 1): running", 1000, NULL), "no STATUS at the job's start");
    ck_assert_msg(wait_for("STATUS=train (request 1): step 50/100, loss ", 1000, NULL), "no STATUS with step and loss");
    ck_assert_msg(wait_for("STATUS=idle", 1000, NULL), "no STATUS=idle after the job");
    kill(d.pid, SIGTERM);
    ck_assert_msg(wait_for("STOPPING=1", 2000, NULL), "no STOPPING=1 at SIGTERM");
    ck_assert_int_eq(svc_wait_exit(&d), 0);
    tu_daemon_cleanup(&d);
    notify_close();
}
END_TEST

/* GPT steps of about 0.4 s: no step boundary, no heartbeat, for longer than
 * the 0.1 s stall timeout. */
static json_t *slow_steps(void) {
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i}", "device", "cpu", "depth", 4, "head_dim", 64, "seq_len", 256,
                     "batch_size", 8, "steps", 1000, "eval_windows", 2);
}

START_TEST(a_stuck_worker_is_reported_not_fed) {
    tu_daemon d;
    notify_open();
    svc_spawn(&d, SVC_AS_IS, NULL, (const char *const[]){"--stall-timeout", "0.1", NULL});
    ck_assert(wait_for("READY=1", 5000, NULL));
    int fd = svc_connect(d.socket);
    svc_send(fd, nc_msg_request(1, "train", slow_steps()));
    /* a stall at setup (building the model, the first eval) may end within
     * 150 ms; one inside a step does not: no ping for six 25 ms intervals */
    bool withheld = false;
    for (int stalls = 0; !withheld && stalls < 5; stalls++) {
        int pings = 0;
        ck_assert_msg(wait_for("STATUS=worker stalled", 3000, NULL), "the stall was not reported");
        withheld = !wait_for("WATCHDOG=1", 150, &pings) && pings == 0;
    }
    ck_assert_msg(withheld, "the watchdog was fed while the worker stalled");
    ck_assert_int_eq(svc_status_as(d.socket, 0, 0), SVC_SERVED); /* the loop still answers */
    int cancel = svc_connect(d.socket);
    svc_send(cancel, nc_msg_request(2, "cancel", NULL));
    nc_reply r;
    svc_recv_final(fd, 5000, &r);
    ck_assert_int_eq(r.code, NC_E_CANCELLED);
    nc_reply_free(&r);
    ck_assert_msg(wait_for("WATCHDOG=1", 1000, NULL), "the watchdog was not fed again");
    close(cancel);
    close(fd);
    tu_daemon_cleanup(&d);
    notify_close();
}
END_TEST

START_TEST(socket_activation_uses_the_passed_socket) {
    char dir[PATH_MAX], own[108];
    tu_tmpdir(dir, sizeof dir, "activate");
    tu_daemon d;
    char listen[108];
    snprintf(listen, sizeof listen, "%s/a.sock", dir);
    svc_spawn(&d, SVC_AS_IS, (const char *const[]){"systemd-socket-activate", "-l", listen, NULL}, NULL);
    memcpy(own, d.socket, sizeof own);
    memcpy(d.socket, listen, sizeof d.socket);
    svc_wait_ready(&d);
    nc_client c;
    tu_connect(&c, &d);
    json_t *st = tu_call(&c, "status", NULL);
    ck_assert(json_is_true(json_object_get(st, "socket_activated")));
    ck_assert_str_eq(json_string_value(json_object_get(st, "socket")), listen);
    json_decref(st);
    nc_client_close(&c);
    ck_assert_msg(access(own, F_OK) != 0, "nanochatd bound its own socket too");
    kill(d.pid, SIGTERM);
    ck_assert_int_eq(svc_wait_exit(&d), 0);
    ck_assert_msg(access(listen, F_OK) == 0, "nanochatd removed the socket it was given");
    tu_daemon_cleanup(&d);
    tu_rmtree(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("service_notify");
    tu_tcase(s, "systemd", ready_status_watchdog_and_stopping, a_stuck_worker_is_reported_not_fed,
             socket_activation_uses_the_passed_socket);
    return tu_run(s);
}
