/* test_daemon_hostile.c: clients that do everything wrong, while a prober
 * asks status on fresh connections every 5 ms and must be answered within
 * 50 ms throughout: a wrong type for every field of every command, invalid
 * UTF-8 and NUL bytes, deep nesting and huge declared sizes, 4 GiB length
 * prefixes and truncated frames (NC_TEST_REPEAT times each); a client
 * trickling one byte at a time and one that never speaks (the partial-frame
 * and idle timeouts close them, an active client stays); 1,000 connections
 * at once, after which the daemon's descriptors and memory return to their
 * baseline. */
#define _GNU_SOURCE
#include "svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <sys/socket.h>
#include <unistd.h>

static tu_daemon d;
static svc_prober prober; /* each test's own (tests run in forked children) */

static void start(const char *const extra[]) { svc_start(&d, extra); }

static void start_plain(void) { start(NULL); }
/* The timeouts of the impatient daemon, and how fast the trickler sends:
 * 200 ms and a byte per 25 ms here; stress.sh runs a byte per second. */
static long timeout_ms(void) { return svc_env("NC_TEST_TIMEOUT_MS", 200); }
static long trickle_ms(void) { return svc_env("NC_TEST_TRICKLE_MS", 25); }

static void start_impatient(void) {
    char t[32];
    snprintf(t, sizeof t, "%.3f", (double)timeout_ms() / 1e3);
    start((const char *const[]){"--frame-timeout", t, "--idle-timeout", t, NULL});
}
static void start_roomy(void) { start((const char *const[]){"--max-connections", "2000", NULL}); }

static void stop(void) { tu_daemon_cleanup(&d); }

/* Sends a request on fd and expects an error reply naming `field` (NULL: any). */
static void expect_bad(int fd, json_t *msg, nc_code code, const char *field) {
    svc_send(fd, msg);
    nc_reply r;
    ck_assert_msg(svc_recv(fd, 2000, &r) == 0, "no reply");
    ck_assert_int_eq(r.kind, NC_REPLY_ERROR);
    ck_assert_msg(r.code == code, "expected %s, got %s: %s", nc_code_name(code), r.code_name, r.message);
    ck_assert_msg(!field || strstr(r.message, field), "'%s' does not name %s", r.message, field);
    nc_reply_free(&r);
}

/* A value of the wrong type (or out of range) for the argument. */
static json_t *wrong_value(const nc_arg_spec *a, int variant) {
    if (variant == 0) return json_pack("[i]", 1);
    switch (a->type) {
    case NC_ARG_INT: return json_real(1.5);
    case NC_ARG_FLOAT: return json_string("plenty");
    case NC_ARG_BOOL: return json_integer(1);
    case NC_ARG_STRING: return json_integer(5);
    case NC_ARG_CHOICE: return json_string("no-such-choice");
    }
    return json_null();
}

static void send_wrong_types(int fd) {
    size_t n;
    const nc_command_spec *cmds = nc_commands(&n);
    int sent = 0;
    for (size_t i = 0; i < n; i++) {
        char field[96];
        for (size_t k = 0; k < cmds[i].nargs; k++)
            for (int variant = 0; variant < 2; variant++) {
                const nc_arg_spec *a = &cmds[i].args[k];
                snprintf(field, sizeof field, "args.%s", a->name);
                json_t *args = json_pack("{s:o}", a->name, wrong_value(a, variant));
                expect_bad(fd, nc_msg_request(7, cmds[i].name, args), NC_E_BAD_REQUEST, field), sent++;
            }
        expect_bad(fd, nc_msg_request(8, cmds[i].name, json_pack("{s:i}", "no_such_arg", 1)), NC_E_BAD_REQUEST,
                   "args.no_such_arg");
    }
    ck_assert_int_gt(sent, 60);
    static const char *const envelopes[][2] = {
        {"{\"v\": \"1\", \"id\": 1, \"cmd\": \"status\"}", "'v'"},
        {"{\"v\": 1, \"id\": \"1\", \"cmd\": \"status\"}", "'id'"},
        {"{\"v\": 1, \"id\": -1, \"cmd\": \"status\"}", "'id'"},
        {"{\"v\": 1, \"id\": 1, \"cmd\": 5}", "'cmd'"},
        {"{\"v\": 1, \"id\": 1, \"cmd\": \"status\", \"args\": [1]}", "'args'"},
        {"{\"v\": 1, \"id\": 1, \"cmd\": \"status\", \"extra\": 1}", "'extra'"}, {"{\"v\": 1, \"id\": 1}", "'cmd'"},
        {"[1, 2]", "map"}, {"\"status\"", "map"}, {"null", "map"}};
    for (size_t i = 0; i < sizeof envelopes / sizeof envelopes[0]; i++)
        expect_bad(fd, json_loads(envelopes[i][0], JSON_DECODE_ANY, NULL), NC_E_BAD_REQUEST, envelopes[i][1]);
    expect_bad(fd, json_pack("{s:i, s:i, s:s}", "v", 2, "id", 1, "cmd", "status"), NC_E_UNSUPPORTED_VERSION, NULL);
    expect_bad(fd, nc_msg_request(9, "rm -rf /", NULL), NC_E_UNKNOWN_COMMAND, NULL);
}

/* Runs `send` on one connection NC_TEST_REPEAT (1) times under the prober. */
static void sustained(void (*send)(int fd), const char *scenario) {
    svc_prober_start(&prober, d.socket);
    int fd = svc_connect(d.socket);
    for (long i = svc_env("NC_TEST_REPEAT", 1); i > 0; i--) send(fd);
    close(fd);
    svc_prober_content(&prober, scenario);
}

START_TEST(a_wrong_type_for_every_field) { sustained(send_wrong_types, "wrong-types"); }
END_TEST

static void send_body(int fd, const void *body, uint32_t len) {
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    svc_send_bytes(fd, hdr, 4);
    svc_send_bytes(fd, body, len);
}

static void expect_undecodable(int fd, const void *body, uint32_t len, const char *why) {
    send_body(fd, body, len);
    nc_reply r;
    ck_assert_msg(svc_recv(fd, 2000, &r) == 0, "no reply (%s)", why);
    ck_assert_msg(r.kind == NC_REPLY_ERROR && r.code == NC_E_BAD_REQUEST && strstr(r.message, why), "%s: %s", why,
                  r.message ? r.message : "not an error");
    nc_reply_free(&r);
}

static void send_malformed(int fd) {
    /* {"v":1,"id":1,"cmd":<bad string>} with the string's bytes spliced in */
    static const char head[] = "\x83\xa1v\x01\xa2id\x01\xa3""cmd";
    char body[64];
    memcpy(body, head, sizeof head - 1);
    memcpy(body + sizeof head - 1, "\xa2\xc3\x28", 3); /* invalid UTF-8 */
    expect_undecodable(fd, body, sizeof head - 1 + 3, "UTF-8");
    memcpy(body + sizeof head - 1, "\xa7status\x00", 8); /* "status" followed by a NUL */
    expect_undecodable(fd, body, sizeof head - 1 + 8, "NUL");
    expect_undecodable(fd, "\x81\xa2\xed\xa0\x01", 5, "UTF-8"); /* a surrogate as a key */
    size_t deep_n = 100000;
    char *deep = malloc(deep_n);
    memset(deep, 0x91, deep_n - 1); /* nested one-element arrays */
    deep[deep_n - 1] = 0x01;
    expect_undecodable(fd, deep, (uint32_t)deep_n, "nesting");
    memset(deep, 0x81, deep_n); /* nested maps with an empty-string key each */
    for (size_t i = 1; i < deep_n; i += 2) deep[i] = (char)0xa0;
    expect_undecodable(fd, deep, (uint32_t)deep_n, "nesting");
    free(deep);
    expect_undecodable(fd, "\xdd\xff\xff\xff\xff", 5, "larger than the limit");      /* array32 of 4 G */
    expect_undecodable(fd, "\xdf\xff\xff\xff\xff", 5, "larger than the limit");      /* map32 of 4 G */
    expect_undecodable(fd, "\xdb\xff\xff\xff\xf0" "abc", 8, "truncated");           /* str32 of 4 G */
    uint8_t big[3 + 5 * 8192];
    big[0] = 0xdc, big[1] = 0x20, big[2] = 0x00; /* array16 of 8192 uint32s */
    for (int i = 0; i < 8192; i++) memcpy(big + 3 + 5 * i, "\xce\x00\x00\x00\x07", 5);
    expect_undecodable(fd, big, sizeof big, "larger than the limit");
    expect_bad(fd, nc_msg_request(3, "nonsense", NULL), NC_E_UNKNOWN_COMMAND, NULL); /* still in sync */
}

START_TEST(malformed_bodies_get_bad_request_and_the_connection_lives) { sustained(send_malformed, "malformed"); }
END_TEST

/* Each on a connection of its own: a 4 GiB length prefix (FrameTooLarge, then
 * closed), and a truncated frame followed by a hang-up. */
static void send_broken_frames(int unused) {
    (void)unused;
    int fd = svc_connect(d.socket);
    svc_send_bytes(fd, "\xff\xff\xff\xff", 4);
    nc_reply r;
    ck_assert_int_eq(svc_recv(fd, 2000, &r), 0);
    ck_assert_int_eq(r.code, NC_E_FRAME_TOO_LARGE);
    nc_reply_free(&r);
    ck_assert(svc_closed_within(fd, 2000));
    close(fd);
    fd = svc_connect(d.socket);
    svc_send_bytes(fd, "\x00\x00\x01\x00\x83\xa1v", 7);
    close(fd);
}

START_TEST(broken_frames_are_closed) { sustained(send_broken_frames, "broken-frames"); }
END_TEST

typedef struct peer {
    int fd;
    double closed_ms; /* since the start; 0: still open */
} peer;

static void note_close(peer *p, double t) {
    char b[256];
    ssize_t r = p->closed_ms ? 1 : recv(p->fd, b, sizeof b, MSG_DONTWAIT);
    if (r == 0) p->closed_ms = t;
}

/* One client trickles a frame's body a byte at a time, one says nothing, one
 * asks status every other trickle (it is never idle for long). */
START_TEST(trickling_and_silent_clients_are_closed_active_ones_are_not) {
    svc_prober_start(&prober, d.socket);
    peer trickle = {svc_connect(d.socket), 0}, silent = {svc_connect(d.socket), 0}, active = {svc_connect(d.socket), 0};
    svc_send_bytes(trickle.fd, "\x00\x00\x00\x40", 4); /* a 64-byte frame */
    double limit = (double)timeout_ms(), t0 = svc_now_ms(), t = 0;
    for (int tick = 0; t < 2 * limit || !trickle.closed_ms || !silent.closed_ms; tick++) {
        ck_assert_msg(t < 5 * limit, "still open at %.0f ms: trickler %.0f, silent %.0f", t, trickle.closed_ms,
                      silent.closed_ms);
        usleep((useconds_t)trickle_ms() * 1000);
        t = svc_now_ms() - t0;
        if (!trickle.closed_ms) svc_send_bytes(trickle.fd, "\x80", 1);
        if (tick % 2 == 0) {
            nc_reply r;
            svc_send(active.fd, nc_msg_request((uint64_t)tick, "status", NULL));
            ck_assert_msg(svc_recv(active.fd, 1000, &r) == 0, "the active client lost its connection at %.0f ms", t);
            nc_reply_free(&r);
        }
        note_close(&trickle, t);
        note_close(&silent, t);
    }
    svc_figure("timeouts timeout_ms=%.0f trickle_every_ms=%ld trickler_closed_ms=%.0f silent_closed_ms=%.0f "
               "active_open_ms=%.0f", limit, trickle_ms(), trickle.closed_ms, silent.closed_ms, t);
    for (int i = 0; i < 2; i++) {
        double at = i ? silent.closed_ms : trickle.closed_ms;
        ck_assert_msg(at >= 0.75 * limit && at <= 2.5 * limit, "closed at %.0f ms, the timeout is %.0f ms", at, limit);
    }
    close(trickle.fd);
    close(silent.fd);
    close(active.fd);
    svc_prober_content(&prober, "trickle+silent");
}
END_TEST

static int connections(void) {
    nc_client c;
    tu_connect(&c, &d);
    json_t *st = tu_call(&c, "status", NULL);
    int n = (int)json_integer_value(json_object_get(st, "connections"));
    json_decref(st);
    nc_client_close(&c);
    return n;
}

/* The daemon's descriptors once it has closed what its peers closed. */
static int settled_fds(int want) {
    int n = svc_fd_count(d.pid);
    for (int i = 0; i < 200 && n != want; i++, n = svc_fd_count(d.pid)) usleep(5000);
    return n;
}

/* n connections opened at once, each asking status, all answered, then
 * closed. The calling thread (the hostile load) runs at a lower priority than
 * the daemon and the prober, as another user's process would on a busy box. */
static void burst(int n) {
    setpriority(PRIO_PROCESS, (id_t)gettid(), 10);
    int *fd = malloc((size_t)n * sizeof *fd);
    for (int i = 0; i < n; i++) ck_assert_int_ge(fd[i] = svc_connect(d.socket), 0);
    for (int i = 0; i < n; i++) svc_send(fd[i], nc_msg_request((uint64_t)i, "status", NULL));
    for (int i = 0; i < n; i++) {
        nc_reply r;
        ck_assert_msg(svc_recv(fd[i], 5000, &r) == 0 && r.kind == NC_REPLY_OK, "connection %d was not served", i);
        nc_reply_free(&r);
    }
    for (int i = 0; i < n; i++) close(fd[i]);
    free(fd);
}

/* A burst of n connections with the prober running: the slowest status answer. */
static double probed_burst(int n) {
    svc_prober_start(&prober, d.socket);
    burst(n);
    return svc_prober_finish(&prober, "connections-at-once");
}

/* NC_TEST_CONNECTIONS (1,000) at once, NC_TEST_BURSTS (2) times; status is
 * timed during the first. On this 2-core host, shared with the flood's own
 * client, about one burst in 50 meets a stall of the host's scheduling (the
 * slowest answer goes from 11-30 ms to 50-65 ms): a burst over the bound is
 * timed once more, and a daemon slow in both fails. */
START_TEST(a_thousand_connections_at_once) {
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int n = (int)svc_env("NC_TEST_CONNECTIONS", 1000), bursts = (int)svc_env("NC_TEST_BURSTS", 2);
    ck_assert_int_eq(connections(), 1);
    usleep(20000);
    int fds = svc_fd_count(d.pid);
    long base = svc_rss_kb(d.pid), first = 0, most = 0;
    for (int b = 0; b < bursts; b++) {
        if (b == 0) {
            double ms = probed_burst(n), again = ms < svc_latency_ms() ? ms : probed_burst(n);
            ck_assert_msg(again < svc_latency_ms(), "status took %.1f ms, then %.1f ms (over %.0f ms) in bursts of %d",
                          ms, again, svc_latency_ms(), n);
        } else {
            burst(n);
        }
        ck_assert_int_eq(settled_fds(fds), fds);
        long rss = svc_rss_kb(d.pid);
        if (b == 0) first = rss;
        else if (rss > most) most = rss;
    }
    svc_figure("flood connections=%d bursts=%d fds_before=%d fds_after=%d rss_kb_base=%ld after_first=%ld "
               "most_after_later=%ld", n, bursts, fds, svc_fd_count(d.pid), base, first, most);
#if !defined __SANITIZE_ADDRESS__ && !defined __SANITIZE_THREAD__ /* they keep freed memory resident */
    /* libevent keeps an entry per descriptor number it has seen, pinning some heap
     * pages: bounded by the connection limit and reused by later bursts */
    ck_assert_msg(first <= base + 3072, "resident memory grew from %ld kB to %ld kB", base, first);
    ck_assert_msg(most <= first + 1536, "later bursts grew memory from %ld kB to %ld kB", first, most);
#endif
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_hostile");
    TCase *input = tu_tcase(s, "input", a_wrong_type_for_every_field,
                            malformed_bodies_get_bad_request_and_the_connection_lives, broken_frames_are_closed);
    tcase_add_unchecked_fixture(input, start_plain, stop);
    TCase *slow = tu_tcase(s, "timeouts", trickling_and_silent_clients_are_closed_active_ones_are_not);
    tcase_add_unchecked_fixture(slow, start_impatient, stop);
    TCase *flood = tu_tcase(s, "flood", a_thousand_connections_at_once);
    tcase_add_unchecked_fixture(flood, start_roomy, stop);
    return tu_run(s);
}
