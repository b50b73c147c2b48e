/* test_proto.c: the wire protocol. Round trips of every message shape, the
 * decoder's limits (its value budget against the largest reply), and what a
 * real daemon answers to truncated, oversized, non-map, wrong-typed and
 * unknown-command frames. */
#define _GNU_SOURCE
#include "api.h"
#include "testutil.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static json_t *roundtrip(json_t *msg) {
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(nc_frame_pack(msg, &buf, &len), 0);
    ck_assert_uint_eq(nc_frame_length(buf), len - NC_FRAME_HEADER);
    nc_error err;
    json_t *back = nc_frame_unpack(buf + NC_FRAME_HEADER, len - NC_FRAME_HEADER, &err);
    ck_assert_msg(back != NULL, "%s", err.message);
    free(buf);
    return back;
}

START_TEST(message_shapes_round_trip) {
    json_t *shapes[] = {
        nc_msg_request(7, "train", json_pack("{s:i, s:f, s:b, s:s, s:[i, n]}", "steps", 5, "lr", 0.5, "tie_lm_head", 1,
                                             "style", "café ☕", "list", 1)),
        nc_msg_ok(7, json_pack("{s:f, s:{s:i}}", "loss", 1.25, "nested", "k", -3)),
        nc_msg_error(8, NC_E_BUSY, "a train job is running"),
        nc_msg_event(9, "progress", json_pack("{s:i, s:f}", "step", 10, "loss", 2.5)),
    };
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) {
        json_t *back = roundtrip(shapes[i]);
        ck_assert_msg(json_equal(back, shapes[i]), "shape %zu changed in transit", i);
        json_decref(back);
        json_decref(shapes[i]);
    }
}
END_TEST

START_TEST(requests_and_replies_parse) {
    nc_request req;
    nc_error err;
    ck_assert_int_eq(nc_request_parse(nc_msg_request(42, "status", NULL), &req, &err), 0);
    ck_assert_str_eq(req.cmd, "status");
    ck_assert_uint_eq(req.id, 42);
    nc_request_free(&req);

    nc_reply r;
    ck_assert_int_eq(nc_reply_parse(nc_msg_error(3, NC_E_PROMPT_TOO_LONG, "too long"), &r, &err), 0);
    ck_assert_int_eq(r.kind, NC_REPLY_ERROR);
    ck_assert_int_eq(r.code, NC_E_PROMPT_TOO_LONG);
    ck_assert_str_eq(r.code_name, "PromptTooLong");
    nc_reply_free(&r);
    ck_assert_int_eq(nc_reply_parse(nc_msg_event(3, "eval", json_pack("{s:f}", "val_loss", 1.5)), &r, &err), 0);
    ck_assert_int_eq(r.kind, NC_REPLY_EVENT);
    ck_assert_str_eq(r.event, "eval");
    nc_reply_free(&r);
}
END_TEST

/* Each malformed request names its offending field. */
START_TEST(bad_requests_name_the_field) {
    static const struct { const char *json, *needle; nc_code code; } cases[] = {
        {"[1, 2]", "map", NC_E_BAD_REQUEST},
        {"{\"id\": 1, \"cmd\": \"status\"}", "'v'", NC_E_BAD_REQUEST},
        {"{\"v\": 1, \"cmd\": \"status\"}", "'id'", NC_E_BAD_REQUEST},
        {"{\"v\": 1, \"id\": \"x\", \"cmd\": \"status\"}", "'id'", NC_E_BAD_REQUEST},
        {"{\"v\": 1, \"id\": 1, \"cmd\": 5}", "'cmd'", NC_E_BAD_REQUEST},
        {"{\"v\": 1, \"id\": 1, \"cmd\": \"train\", \"args\": [1]}", "'args'", NC_E_BAD_REQUEST},
        {"{\"v\": 1, \"id\": 1, \"cmd\": \"train\", \"extra\": 1}", "'extra'", NC_E_BAD_REQUEST},
        {"{\"v\": 2, \"id\": 1, \"cmd\": \"status\"}", "version", NC_E_UNSUPPORTED_VERSION},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        nc_request req;
        nc_error err = {0};
        ck_assert_int_ne(nc_request_parse(json_loads(cases[i].json, 0, NULL), &req, &err), 0);
        ck_assert_int_eq(err.code, cases[i].code);
        ck_assert_msg(strstr(err.message, cases[i].needle), "case %zu: '%s' lacks %s", i, err.message, cases[i].needle);
        nc_request_free(&req);
    }
}
END_TEST

static json_t *unpack_bytes(const char *bytes, size_t n, nc_error *err) {
    return nc_frame_unpack((const uint8_t *)bytes, n, err);
}

START_TEST(decoder_rejects_hostile_bodies) {
    nc_error err;
    /* array32 announcing 4 billion elements in 5 bytes */
    ck_assert_ptr_null(unpack_bytes("\xdd\xff\xff\xff\xff", 5, &err));
    ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
    /* 40 nested fixarrays of one element */
    char deep[41];
    memset(deep, '\x91', 40);
    deep[40] = '\x01';
    ck_assert_ptr_null(unpack_bytes(deep, sizeof deep, &err));
    ck_assert_ptr_nonnull(strstr(err.message, "nesting"));
    ck_assert_ptr_null(unpack_bytes("\xa2\xff\xfe", 3, &err)); /* invalid UTF-8 string */
    ck_assert_ptr_nonnull(strstr(err.message, "UTF-8"));
    ck_assert_ptr_null(unpack_bytes("\xc4\x01\x00", 3, &err)); /* binary */
    ck_assert_ptr_null(unpack_bytes("\x81\x01\x02", 3, &err)); /* integer map key */
    ck_assert_ptr_null(unpack_bytes("\x80\x80", 2, &err));     /* trailing bytes */
    ck_assert_ptr_null(unpack_bytes("\x82\xa1", 2, &err));     /* truncated */
    ck_assert_ptr_null(unpack_bytes("", 0, &err));
}
END_TEST

/* Values as the decoder counts them: every key, element and container. */
static long count_values(json_t *v) {
    long n = 1;
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_object(v)) json_object_foreach(v, k, x) n += 1 + count_values(x);
    else if (json_is_array(v)) json_array_foreach(v, i, x) n += count_values(x);
    return n;
}

/* An array of arrays of small integers holding `values` values in all. */
static uint8_t *arrays_of_fixints(long values, size_t *len) {
    long left = values - 1, arrays = (left + NC_MSG_MAX_ITEMS) / (NC_MSG_MAX_ITEMS + 1);
    uint8_t *b = malloc(3 + (size_t)left * 3), *p = b;
    *p++ = 0xdc, *p++ = (uint8_t)(arrays >> 8), *p++ = (uint8_t)arrays;
    for (long a = 0; a < arrays; a++) {
        long items = left - 1 < NC_MSG_MAX_ITEMS ? left - 1 : NC_MSG_MAX_ITEMS;
        *p++ = 0xdc, *p++ = (uint8_t)(items >> 8), *p++ = (uint8_t)items;
        memset(p, 0x07, (size_t)items);
        p += items;
        left -= items + 1;
    }
    ck_assert_int_eq(left, 0);
    *len = (size_t)(p - b);
    return b;
}

/* The budget on a frame's values: exactly NC_MSG_MAX_VALUES decode, one more
 * does not; 4096 arrays of 4096 small integers (16 MiB, within the per-array
 * and depth limits) are refused by the scan, before anything is unpacked. */
START_TEST(decoder_bounds_the_values_of_a_frame) {
    nc_error err;
    size_t len;
    uint8_t *b = arrays_of_fixints(NC_MSG_MAX_VALUES, &len);
    json_t *v = nc_frame_unpack(b, len, &err);
    ck_assert_msg(v != NULL, "%s", err.message);
    ck_assert_int_eq(count_values(v), NC_MSG_MAX_VALUES);
    json_decref(v);
    free(b);
    char needle[64];
    snprintf(needle, sizeof needle, "undecodable frame: more than %d values", NC_MSG_MAX_VALUES);
    b = arrays_of_fixints(NC_MSG_MAX_VALUES + 1, &len);
    ck_assert_ptr_null(nc_frame_unpack(b, len, &err));
    ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
    ck_assert_str_eq(err.message, needle);
    free(b);
    b = arrays_of_fixints((long)NC_MSG_MAX_ITEMS * (NC_MSG_MAX_ITEMS + 1) + 1, &len);
    ck_assert_uint_gt(len, 16u << 20);
    ck_assert_ptr_null(nc_frame_unpack(b, len, &err));
    ck_assert_str_eq(err.message, needle);
    /* the same refusal when the budget is crossed deep inside: {"k": [[...], ...]} */
    uint8_t *m = malloc(len + 3);
    memcpy(m, "\x81\xa1k", 3);
    memcpy(m + 3, b, len);
    ck_assert_ptr_null(nc_frame_unpack(m, len + 3, &err));
    ck_assert_str_eq(err.message, needle);
    free(m);
    free(b);
}
END_TEST

/* The largest message the protocol sends: `checkpoint list` of a directory at
 * the engine's 4096-file cap (13 values a file, 53,259 in all), as the client
 * decodes it; within the value budget and the client's frame limit. */
START_TEST(decoder_accepts_the_largest_reply) {
    json_t *items = json_array();
    for (int i = 0; i < 4096; i++) {
        char path[160], run[64];
        snprintf(run, sizeof run, "20250101-120000-gpt-d%02d-%04d", i % 32, i);
        snprintf(path, sizeof path, "/var/lib/nanochat/checkpoints/%s.ckpt", run);
        json_array_append_new(items, json_pack("{s:s, s:I, s:i, s:s, s:s, s:s}", "path", path, "bytes",
                                               (json_int_t)123456789 + i, "step", i * 10, "mode", "tensor", "kind",
                                               "gpt", "run_id", run));
    }
    json_t *reply = nc_msg_ok(UINT32_MAX, json_pack("{s:s, s:o}", "dir", "/var/lib/nanochat/checkpoints",
                                                    "checkpoints", items));
    ck_assert_int_eq(count_values(reply), 53259);
    ck_assert_int_le(count_values(reply), NC_MSG_MAX_VALUES);
    uint8_t *buf;
    size_t len;
    ck_assert_int_eq(nc_frame_pack(reply, &buf, &len), 0);
    ck_assert_uint_le(len - NC_FRAME_HEADER, NC_FRAME_MAX_DEFAULT);
    nc_error err;
    json_t *back = nc_frame_unpack(buf + NC_FRAME_HEADER, len - NC_FRAME_HEADER, &err);
    ck_assert_msg(back != NULL, "%s", err.message);
    nc_reply r;
    ck_assert_int_eq(nc_reply_parse(back, &r, &err), 0);
    ck_assert_int_eq(r.kind, NC_REPLY_OK);
    ck_assert(json_equal(r.msg, reply));
    nc_reply_free(&r);
    free(buf);
    json_decref(reply);
}
END_TEST

START_TEST(args_are_validated_against_the_schema) {
    const nc_command_spec *train = nc_command_find("train");
    nc_train_cfg cfg;
    nc_error err;
    json_t *good = json_pack("{s:i, s:s}", "steps", 3, "mode", "scalar");
    ck_assert_int_eq(nc_args_parse(train, good, &cfg, &err), 0);
    json_decref(good);
    ck_assert_int_eq(cfg.steps, 3);
    ck_assert_int_eq(cfg.mode, NC_MODE_SCALAR);
    ck_assert_int_eq(cfg.style, NC_STYLE_CLASSIC); /* default */
    static const char *const bad[][2] = {
        {"{\"steps\": \"many\"}", "args.steps"}, {"{\"steps\": -1}", "args.steps"},
        {"{\"mode\": \"quantum\"}", "args.mode"}, {"{\"lr\": true}", "args.lr"},
        {"{\"tie_lm_head\": 1}", "args.tie_lm_head"}, {"{\"nonsense\": 1}", "args.nonsense"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *a = json_loads(bad[i][0], 0, NULL);
        ck_assert_int_ne(nc_args_parse(train, a, &cfg, &err), 0);
        ck_assert_int_eq(err.code, NC_E_BAD_REQUEST);
        ck_assert_msg(strstr(err.message, bad[i][1]), "'%s' does not name %s", err.message, bad[i][1]);
        json_decref(a);
    }
}
END_TEST

/* ---- against a real daemon ---------------------------------------------------- */

static tu_daemon daemon_;

static void start_daemon(void) { tu_daemon_start(&daemon_, (const char *const[]){"--max-frame", "4096", NULL}); }
static void stop_daemon(void) { tu_daemon_cleanup(&daemon_); }

static int raw_connect(void) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", daemon_.socket);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    return fd;
}

static void send_frame(int fd, const void *body, uint32_t len, uint32_t announced) {
    uint8_t hdr[4] = {(uint8_t)(announced >> 24), (uint8_t)(announced >> 16), (uint8_t)(announced >> 8), (uint8_t)announced};
    ck_assert_int_eq(write(fd, hdr, 4), 4);
    if (len) ck_assert_int_eq(write(fd, body, len), (ssize_t)len);
}

static void send_json(int fd, const char *text) {
    json_t *j = json_loads(text, 0, NULL);
    ck_assert_ptr_nonnull(j);
    uint8_t *buf;
    size_t len;
    nc_frame_pack(j, &buf, &len);
    ck_assert_int_eq(write(fd, buf, len), (ssize_t)len);
    free(buf);
    json_decref(j);
}

/* Reads one reply on a raw fd and checks its error code. */
static void expect_error(int fd, nc_code code) {
    nc_client c = {.fd = fd, .max_frame = NC_FRAME_MAX_DEFAULT};
    nc_reply r;
    nc_error err;
    ck_assert_msg(nc_client_recv(&c, &r, 2000, &err) == 0, "%s", err.message);
    ck_assert_int_eq(r.kind, NC_REPLY_ERROR);
    ck_assert_msg(r.code == code, "expected %s, got %s: %s", nc_code_name(code), r.code_name, r.message);
    nc_reply_free(&r);
}

static bool peer_closed(int fd) {
    char b;
    struct timeval tv = {2, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return read(fd, &b, 1) == 0;
}

static void assert_daemon_serves(void) {
    nc_client c;
    tu_connect(&c, &daemon_);
    json_t *st = tu_call(&c, "status", NULL);
    ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "idle");
    json_decref(st);
    nc_client_close(&c);
}

START_TEST(daemon_answers_bad_frames_and_keeps_serving) {
    int fd = raw_connect();
    send_frame(fd, "\x93\x01\x02\x03", 4, 4); /* an array, not a map */
    expect_error(fd, NC_E_BAD_REQUEST);
    send_frame(fd, "\xc1", 1, 1); /* undecodable */
    expect_error(fd, NC_E_BAD_REQUEST);
    send_json(fd, "{\"v\": 1, \"id\": 5, \"cmd\": \"dance\"}");
    expect_error(fd, NC_E_UNKNOWN_COMMAND);
    send_json(fd, "{\"v\": 1, \"id\": 6, \"cmd\": \"train\", \"args\": {\"steps\": \"x\"}}");
    expect_error(fd, NC_E_BAD_REQUEST);
    send_json(fd, "{\"v\": 1, \"id\": 7, \"cmd\": \"sample\", \"args\": {\"temperature\": 0}}");
    expect_error(fd, NC_E_INVALID_TEMPERATURE); /* the arguments are checked first, model or not */
    close(fd);

    fd = raw_connect(); /* over the 4096-byte limit: error, then the connection closes */
    send_frame(fd, NULL, 0, 5000);
    expect_error(fd, NC_E_FRAME_TOO_LARGE);
    ck_assert(peer_closed(fd));
    close(fd);

    fd = raw_connect(); /* 4 GiB announced */
    send_frame(fd, NULL, 0, 0xffffffffu);
    expect_error(fd, NC_E_FRAME_TOO_LARGE);
    close(fd);

    fd = raw_connect(); /* truncated frame, then hang up */
    send_frame(fd, "\x81\xa1", 2, 100);
    close(fd);
    assert_daemon_serves();
}
END_TEST

int main(void) {
    Suite *s = suite_create("proto");
    tu_tcase(s, "unit", message_shapes_round_trip, requests_and_replies_parse, bad_requests_name_the_field,
             decoder_rejects_hostile_bodies, decoder_bounds_the_values_of_a_frame, decoder_accepts_the_largest_reply,
             args_are_validated_against_the_schema);
    TCase *live = tu_tcase(s, "daemon", daemon_answers_bad_frames_and_keeps_serving);
    tcase_add_unchecked_fixture(live, start_daemon, stop_daemon);
    return tu_run(s);
}
