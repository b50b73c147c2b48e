/* test_daemon_frames.c: frames that are small on the wire and large once
 * decoded, against a real nanochatd while a prober asks status every few ms.
 * A 16 MiB frame of 4096 arrays of 4096 one-byte integers respects the
 * per-container and depth limits but would expand to about a gigabyte of
 * objects: the decoder's budget on the values of a frame refuses it before
 * unpacking, at once, with status answered within its bound throughout, and
 * the daemon's resident memory is back at its baseline afterwards. Frames
 * just under and just over the budget, and a 15 MiB prompt (refused by the
 * argument limit, its copies returned to the system) and a 16 MiB frame cut
 * short by a hang-up complete the picture. */
#define _GNU_SOURCE
#include "svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* How much resident memory a frame may leave behind, and how soon it is
 * refused (300 ms; sanitizer builds scale it with their latency bound). */
#define RSS_SLACK_KB 4096
static double refuse_ms(void) { return 6 * svc_latency_ms(); }

/* Sanitizers keep freed memory resident (ASan's quarantine): the memory
 * checks apply to plain builds only. */
#if defined __SANITIZE_ADDRESS__ || defined __SANITIZE_THREAD__
#define SANITIZED 1
#elif defined __has_feature
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define SANITIZED 1
#endif
#endif
#ifndef SANITIZED
#define SANITIZED 0
#endif

static tu_daemon d;
static svc_prober prober;

/* The 4096 x 4096 frame is 16 MiB and 12 KiB of headers: over the default limit. */
static void start(void) { svc_start(&d, (const char *const[]){"--max-frame", "17825792", NULL}); }
static void stop(void) { tu_daemon_cleanup(&d); }

/* ---- raw msgpack ---------------------------------------------------------------- */

typedef struct buf {
    uint8_t *p;
    size_t n, cap;
} buf;

static void put(buf *b, const void *p, size_t n) {
    if (b->n + n > b->cap) {
        b->cap = (b->n + n) * 2;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
}
static void put_byte(buf *b, uint8_t x) { put(b, &x, 1); }
static void put_array16(buf *b, uint32_t n) { put(b, (uint8_t[]){0xdc, (uint8_t)(n >> 8), (uint8_t)n}, 3); }
static void put_str(buf *b, const char *s) {
    size_t n = strlen(s);
    put_byte(b, (uint8_t)(0xa0 | n)); /* fixstr: under 32 bytes */
    put(b, s, n);
}

/* {"v": 1, "id": 1, "cmd": cmd, "args": {"<name>": */
static void put_request_head(buf *b, const char *cmd, const char *name) {
    put_byte(b, 0x84);
    put_str(b, "v"), put_byte(b, 1);
    put_str(b, "id"), put_byte(b, 1);
    put_str(b, "cmd"), put_str(b, cmd);
    put_str(b, "args"), put_byte(b, 0x81), put_str(b, name);
}
#define REQUEST_HEAD_VALUES 10 /* the map, 4 keys, 3 values, args and its key */

/* A status request whose args hold "padding": arrays of small integers, so
 * that the frame holds exactly `values` msgpack values. */
static buf padded_request(long values) {
    buf b = {0};
    put_request_head(&b, "status", "padding");
    long left = values - REQUEST_HEAD_VALUES - 1; /* the padding array itself */
    long arrays = (left + NC_MSG_MAX_ITEMS) / (NC_MSG_MAX_ITEMS + 1);
    ck_assert(arrays <= NC_MSG_MAX_ITEMS);
    put_array16(&b, (uint32_t)arrays);
    for (long i = 0; i < arrays; i++) {
        long items = left - 1 < NC_MSG_MAX_ITEMS ? left - 1 : NC_MSG_MAX_ITEMS;
        put_array16(&b, (uint32_t)items);
        for (long k = 0; k < items; k++) put_byte(&b, 7);
        left -= items + 1;
    }
    ck_assert_int_eq(left, 0);
    return b;
}

static void send_body(int fd, const buf *b) {
    uint32_t len = (uint32_t)b->n;
    uint8_t hdr[4] = {(uint8_t)(len >> 24), (uint8_t)(len >> 16), (uint8_t)(len >> 8), (uint8_t)len};
    svc_send_bytes(fd, hdr, 4);
    svc_send_bytes(fd, b->p, b->n);
}

/* Sends b on fd, expects BadRequest naming `needle`; the milliseconds to the reply. */
static double expect_bad(int fd, const buf *b, const char *needle) {
    double t0 = svc_now_ms();
    send_body(fd, b);
    nc_reply r;
    ck_assert_msg(svc_recv(fd, 5000, &r) == 0, "no reply (expected %s)", needle);
    double ms = svc_now_ms() - t0;
    ck_assert_msg(r.kind == NC_REPLY_ERROR && r.code == NC_E_BAD_REQUEST && strstr(r.message, needle),
                  "expected BadRequest naming '%s', got %s: %s", needle, r.code_name ? r.code_name : "a result",
                  r.message ? r.message : "");
    nc_reply_free(&r);
    return ms;
}

/* ---- memory and latency ----------------------------------------------------------- */

/* The daemon's resident memory once a small request has been answered. */
static long settled_rss_kb(int fd) {
    nc_reply r;
    svc_send(fd, nc_msg_request(99, "status", NULL));
    ck_assert_int_eq(svc_recv(fd, 2000, &r), 0);
    nc_reply_free(&r);
    return svc_rss_kb(d.pid);
}

/* The resident memory after a large frame: back within RSS_SLACK_KB of base
 * (waits up to 200 ms for it); the last figure. */
static long rss_back_to(int fd, long base, const char *what) {
    long rss = settled_rss_kb(fd);
    for (int i = 0; i < 40 && rss > base + RSS_SLACK_KB; i++) usleep(5000), rss = svc_rss_kb(d.pid);
    ck_assert_msg(SANITIZED || rss <= base + RSS_SLACK_KB, "%s: resident memory went from %ld kB to %ld kB and stayed",
                  what, base, rss);
    return rss;
}


/* ---- the tests ------------------------------------------------------------------- */

/* 4096 arrays of 4096 fixints: 16.8 M values in 16 MiB. */
START_TEST(a_frame_of_sixteen_million_values_is_refused_at_once) {
    buf b = {0};
    put_array16(&b, NC_MSG_MAX_ITEMS);
    for (int i = 0; i < NC_MSG_MAX_ITEMS; i++) {
        put_array16(&b, NC_MSG_MAX_ITEMS);
        for (int k = 0; k < NC_MSG_MAX_ITEMS; k++) put_byte(&b, (uint8_t)(k & 0x7f));
    }
    int fd = svc_connect(d.socket);
    ck_assert_int_ge(fd, 0);
    buf warm = padded_request(1000); /* a warm-up frame through the decoder, then the baseline */
    expect_bad(fd, &warm, "args.padding");
    free(warm.p);
    long base = settled_rss_kb(fd);
    svc_prober_start(&prober, d.socket);
    double first = expect_bad(fd, &b, "values");
    long after_first = rss_back_to(fd, base, "the first frame");
    double second = expect_bad(fd, &b, "values"); /* a second one: glibc's heuristics have moved by now */
    long after_second = rss_back_to(fd, base, "the second frame");
    svc_prober_content(&prober, "sixteen-million-values");
    svc_figure("values_frame bytes=%zu refuse_ms=%.1f,%.1f rss_kb_base=%ld after_first=%ld after_second=%ld", b.n,
               first, second, base, after_first, after_second);
    double bound = refuse_ms();
    ck_assert_msg(first < bound && second < bound, "refusing the frame took %.0f ms, then %.0f ms (over %.0f)", first,
                  second, bound);
    expect_bad(fd, &(buf){(uint8_t *)"\x93\x01\x02\x03", 4, 4}, "map"); /* still in sync */
    close(fd);
    free(b.p);
}
END_TEST

/* The budget is the documented one: a frame of exactly NC_MSG_MAX_VALUES is
 * decoded (and gets the normal answer to an unknown argument), one more is
 * refused with a message naming the budget. */
START_TEST(the_value_budget_is_exact) {
    int fd = svc_connect(d.socket);
    ck_assert_int_ge(fd, 0);
    buf under = padded_request(NC_MSG_MAX_VALUES), over = padded_request(NC_MSG_MAX_VALUES + 1);
    char needle[64];
    snprintf(needle, sizeof needle, "more than %d values", NC_MSG_MAX_VALUES);
    svc_prober_start(&prober, d.socket);
    double ms_under = expect_bad(fd, &under, "args.padding"), ms_over = expect_bad(fd, &over, needle);
    svc_prober_content(&prober, "value-budget");
    svc_figure("value_budget values=%d under_ms=%.1f over_ms=%.1f", NC_MSG_MAX_VALUES, ms_under, ms_over);
    close(fd);
    free(under.p);
    free(over.p);
}
END_TEST

/* A 15 MiB prompt: one value, refused by the argument limit; its copies (the
 * input buffer, the frame body, the decoded string) go back to the system.
 * Copying and checking its UTF-8 hold the loop for some 25 ms, which status
 * waits behind: near the 50 ms bound when a neighbouring suite loads this
 * host, so the figure is recorded, not bounded (--max-frame bounds it). */
START_TEST(a_fifteen_mib_prompt_is_refused_and_its_memory_returned) {
    size_t n = 15u << 20;
    buf b = {0};
    put_request_head(&b, "sample", "prompt");
    put(&b, (uint8_t[]){0xdb, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n}, 5);
    size_t at = b.n;
    b.p = realloc(b.p, at + n), b.cap = b.n = at + n;
    memset(b.p + at, 'a', n);
    int fd = svc_connect(d.socket);
    ck_assert_int_ge(fd, 0);
    buf warm = padded_request(1000);
    expect_bad(fd, &warm, "args.padding");
    free(warm.p);
    long base = settled_rss_kb(fd);
    svc_prober_start(&prober, d.socket);
    double first = expect_bad(fd, &b, "args.prompt"), second = expect_bad(fd, &b, "args.prompt");
    svc_prober_finish(&prober, "long-prompt");
    long after = rss_back_to(fd, base, "the prompt");
    svc_figure("long_prompt bytes=%zu refuse_ms=%.1f,%.1f rss_kb_base=%ld after=%ld", b.n, first, second, base, after);
    close(fd);
    free(b.p);
}
END_TEST

/* A client that sends all of a 16 MiB frame but its last byte, then hangs
 * up: the input buffer it filled (resident while it waits) is released with
 * the connection. */
START_TEST(a_partial_frame_leaves_nothing_behind) {
    size_t n = 16u << 20;
    uint8_t *body = calloc(1, n);
    ck_assert_ptr_nonnull(body);
    int fd = svc_connect(d.socket), hangs = svc_connect(d.socket);
    ck_assert(fd >= 0 && hangs >= 0);
    buf warm = padded_request(1000);
    expect_bad(fd, &warm, "args.padding");
    free(warm.p);
    long base = settled_rss_kb(fd);
    svc_send_bytes(hangs, (uint8_t[]){(uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n}, 4);
    svc_send_bytes(hangs, body, n - 1);
    long held = svc_rss_kb(d.pid); /* the daemon has read all but the socket's buffer by now */
    for (int i = 0; i < 100 && held < base + 12288; i++) usleep(2000), held = svc_rss_kb(d.pid);
    ck_assert_msg(held >= base + 12288, "the partial frame was not held: %ld kB, %ld kB before", held, base);
    close(hangs);
    long after = rss_back_to(fd, base, "the partial frame");
    svc_figure("partial_frame bytes=%zu rss_kb_base=%ld held=%ld after=%ld", n - 1, base, held, after);
    close(fd);
    free(body);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_frames");
    TCase *tc = tu_tcase(s, "expansion", a_frame_of_sixteen_million_values_is_refused_at_once,
                         the_value_budget_is_exact, a_fifteen_mib_prompt_is_refused_and_its_memory_returned,
                         a_partial_frame_leaves_nothing_behind);
    tcase_add_unchecked_fixture(tc, start, stop);
    return tu_run(s);
}
