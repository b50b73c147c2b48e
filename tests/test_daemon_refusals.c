/* test_daemon_refusals.c: requests and files nanochatd must refuse, and what
 * a refusal leaves: the resident model exactly as it was (same step, same
 * sample, same unsaved flag) and a daemon that keeps serving.
 *
 * - Forged checkpoints (the checksum recomputed, as a forger would): a
 *   negative or textual step, a step past the run, unknown or missing header
 *   fields, a tensor the model lacks, code points that
 *   are negative, surrogates, beyond U+10FFFF, repeated or out of order, a
 *   vocabulary over its bound of 65,536, tensors that do not tile the data, a
 *   non-finite weight: CheckpointCorrupt, for `load` and `train --resume`.
 *   A version 1 file loads, unless its step tensor disagrees with its header.
 * - Sizes: a batch, a context or a width that would take gigabytes, a
 *   vocabulary of 40,000 characters for a bigram: refused with the estimate
 *   and the limit before anything is allocated (the daemon's memory stays
 *   where it was).
 * - A train refused for its run id, its eval windows, its checkpoint path or
 *   its model's own rules; a GPT seq_len of 1 gets BadRequest even while a
 *   job runs (checked before queueing), never Busy.
 * - Weights with NaN or infinite values are not imported.
 * - While a job trains and evaluates at every step, another client's large
 *   requests do not trip its memory guard. */
#define _GNU_SOURCE
#include "svc.h"
#include "trainutil.h"
#include "engine/store/checkpoint.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tu_daemon d;
static nc_client c;

static void start_with(const char *const extra[]) {
    svc_start(&d, extra);
    tu_connect(&c, &d);
}

static void stop(void) {
    nc_client_close(&c);
    tu_daemon_cleanup(&d);
}

static json_t *ckpt(const char *action, const char *path) {
    return json_pack("{s:s, s:s}", "action", action, "path", path);
}

/* What a refusal must not change: the resident model's step, run, unsaved
 * flag and a sample from it. */
typedef struct snapshot {
    json_t *model;
    char *text;
} snapshot;

static snapshot take_snapshot(void) {
    json_t *st = tu_call(&c, "status", NULL), *sample = tu_call(&c, "sample", json_pack("{s:i}", "max_new_tokens", 40));
    snapshot s = {json_incref(json_object_get(st, "model")), strdup(json_string_value(json_object_get(sample, "text")))};
    json_decref(st);
    json_decref(sample);
    return s;
}

static void assert_unchanged(snapshot *before, const char *after_what) {
    snapshot now = take_snapshot();
    ck_assert_msg(json_equal(before->model, now.model), "the resident model changed after %s", after_what);
    ck_assert_msg(strcmp(before->text, now.text) == 0, "the samples differ after %s", after_what);
    json_decref(now.model);
    free(now.text);
}

static void free_snapshot(snapshot *s) {
    json_decref(s->model);
    free(s->text);
}

/* ---- forged checkpoints ------------------------------------------------------------------------ */

/* A checkpoint's header and data section. */
typedef struct parts {
    json_t *hdr;
    uint8_t *data;
    size_t D;
} parts;

static parts read_parts(const char *path) {
    size_t len;
    uint8_t *buf = (uint8_t *)tu_read_file(path, &len);
    ck_assert_ptr_nonnull(buf);
    uint64_t H;
    memcpy(&H, buf + 16, 8);
    parts p = {json_loadb((const char *)buf + 40, H, 0, NULL), malloc(len - 40 - H + 1), len - 40 - H};
    memcpy(p.data, buf + 40 + H, p.D);
    free(buf);
    ck_assert_ptr_nonnull(p.hdr);
    return p;
}

/* Writes hdr and data as a checkpoint with a checksum that matches. */
static void write_forged(const char *path, uint32_t version, json_t *hdr, const uint8_t *data, size_t D) {
    char *text = json_dumps(hdr, JSON_COMPACT);
    size_t H = strlen(text), len = 40 + H + D;
    uint8_t *buf = calloc(1, len);
    memcpy(buf, "NCCKPT\0\0", 8);
    memcpy(buf + 8, &version, 4);
    uint64_t h = H, dd = D;
    memcpy(buf + 16, &h, 8);
    memcpy(buf + 24, &dd, 8);
    memcpy(buf + 40, text, H);
    memcpy(buf + 40 + H, data, D);
    uint64_t sum = nc_checkpoint_checksum(buf, len);
    memcpy(buf + 32, &sum, 8);
    FILE *f = fopen(path, "wb");
    ck_assert(f && fwrite(buf, 1, len, f) == len);
    fclose(f);
    free(buf);
    free(text);
}

/* The checkpoint at good rewritten in format version 1, which also kept the
 * step as a float tensor ("optimizer.step" for this model) after the others:
 * the header's step plus `off`. */
static void write_version_1(const char *good, const char *path, int off) {
    parts p = read_parts(good);
    float step = (float)(json_integer_value(json_object_get(p.hdr, "step")) + off);
    json_array_append_new(json_object_get(p.hdr, "tensors"), json_pack("{s:s, s:[i], s:I}", "name", "optimizer.step",
                                                                        "shape", 1, "offset", (json_int_t)p.D));
    uint8_t *data = malloc(p.D + sizeof step);
    memcpy(data, p.data, p.D);
    memcpy(data + p.D, &step, sizeof step);
    write_forged(path, 1, p.hdr, data, p.D + sizeof step);
    free(data);
    free(p.data);
    json_decref(p.hdr);
}

typedef void (*forge_fn)(json_t *hdr, uint8_t *data, size_t D);

static void step_negative(json_t *h, uint8_t *d, size_t n) { (void)d, (void)n; json_object_set_new(h, "step", json_integer(-100000000)); }
static void step_text(json_t *h, uint8_t *d, size_t n) { (void)d, (void)n; json_object_set_new(h, "step", json_string("x")); }
static void step_past_run(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    json_object_set_new(h, "step", json_integer(json_integer_value(json_object_get(json_object_get(h, "config"), "steps")) + 1));
}
static void tensor_renamed(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    json_object_set_new(json_array_get(json_object_get(h, "tensors"), 0), "name", json_string("surprise.weight"));
}
static void unknown_field(json_t *h, uint8_t *d, size_t n) { (void)d, (void)n; json_object_set_new(h, "surprise", json_true()); }
static void no_config(json_t *h, uint8_t *d, size_t n) { (void)d, (void)n; json_object_del(h, "config"); }
static void config_unresolved(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    json_object_set_new(json_object_get(h, "config"), "batch_size", json_integer(0));
}
static void set_cp(json_t *h, size_t i, json_int_t cp) { json_array_set_new(json_object_get(h, "vocab"), i, json_integer(cp)); }
static void cp_negative(json_t *h, uint8_t *d, size_t n) { (void)d, (void)n; set_cp(h, 0, -5); }
static void cp_surrogate(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    set_cp(h, json_array_size(json_object_get(h, "vocab")) - 1, 0xD800);
}
static void cp_beyond(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    set_cp(h, json_array_size(json_object_get(h, "vocab")) - 1, 0x110000);
}
static void cp_repeated(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    set_cp(h, 1, json_integer_value(json_array_get(json_object_get(h, "vocab"), 0)));
}
static void vocab_huge(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    json_t *v = json_array();
    for (int i = 0; i < NC_MAX_VOCAB + 1; i++) json_array_append_new(v, json_integer(i < 0xD800 ? i : i + 0x800));
    json_object_set_new(h, "vocab", v);
}
static void tensor_gap(json_t *h, uint8_t *d, size_t n) {
    (void)d, (void)n;
    json_t *t = json_array_get(json_object_get(h, "tensors"), 1);
    json_object_set_new(t, "offset", json_integer(json_integer_value(json_object_get(t, "offset")) + 4));
}
static void weight_nan(json_t *h, uint8_t *d, size_t n) {
    (void)h, (void)n;
    float nan = NAN;
    memcpy(d, &nan, sizeof nan);
}
static void run_id_path(json_t *h, uint8_t *d, size_t n) { (void)d, (void)n; json_object_set_new(h, "run_id", json_string("a/../b")); }

START_TEST(forged_checkpoints_are_corrupt_and_change_nothing) {
    start_with(NULL);
    json_t *res = tu_call(&c, "train", svc_bigram(3, 3));
    char good[PATH_MAX];
    snprintf(good, sizeof good, "%s", json_string_value(json_object_get(res, "checkpoint")));
    json_decref(res);
    snapshot before = take_snapshot();
    static const struct { const char *name; forge_fn forge; } forgeries[] = {
        {"step -100000000", step_negative}, {"step \"x\"", step_text}, {"step past the run", step_past_run},
        {"a tensor the model lacks", tensor_renamed}, {"an unknown field", unknown_field},
        {"no config", no_config}, {"an unresolved config", config_unresolved}, {"a negative code point", cp_negative},
        {"a surrogate", cp_surrogate}, {"a code point past U+10FFFF", cp_beyond}, {"a repeated code point", cp_repeated},
        {"65,537 code points", vocab_huge}, {"a gap in the data", tensor_gap}, {"a NaN weight", weight_nan},
        {"a run id with a slash", run_id_path},
    };
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/forged.ckpt", d.checkpoints);
    for (size_t i = 0; i < sizeof forgeries / sizeof forgeries[0]; i++) {
        parts p = read_parts(good);
        forgeries[i].forge(p.hdr, p.data, p.D);
        write_forged(path, NC_CHECKPOINT_VERSION, p.hdr, p.data, p.D);
        json_decref(p.hdr);
        free(p.data);
        const char *msg = tu_call_error(&c, "checkpoint", ckpt("load", "forged.ckpt"), NC_E_CHECKPOINT_CORRUPT);
        ck_assert_msg(strstr(msg, "forged.ckpt"), "%s: %s", forgeries[i].name, msg);
        json_t *resume = svc_bigram(10, 5);
        json_object_set_new(resume, "resume", json_string("forged.ckpt"));
        tu_call_error(&c, "train", resume, NC_E_CHECKPOINT_CORRUPT);
        assert_unchanged(&before, forgeries[i].name);
    }
    parts p = read_parts(good); /* the control: rewritten unforged, it loads */
    write_forged(path, NC_CHECKPOINT_VERSION, p.hdr, p.data, p.D);
    json_decref(p.hdr);
    free(p.data);
    json_decref(tu_call(&c, "checkpoint", ckpt("load", "forged.ckpt")));
    write_version_1(good, path, 1);
    tu_call_error(&c, "checkpoint", ckpt("load", "forged.ckpt"), NC_E_CHECKPOINT_CORRUPT);
    write_version_1(good, path, 0);
    res = tu_call(&c, "checkpoint", ckpt("load", "forged.ckpt"));
    ck_assert_int_eq(json_integer_value(json_object_get(res, "step")), 3);
    json_decref(res);
    free_snapshot(&before);
    stop();
}
END_TEST

/* ---- sizes ---------------------------------------------------------------------------------------- */

static json_t *gpt(const char *k1, json_int_t v1, const char *k2, json_int_t v2) {
    return json_pack("{s:s, s:i, s:I, s:I, s:i}", "device", "cpu", "steps", 2, k1, v1, k2, v2, "eval_windows", 2);
}

/* Against a 1 GiB limit: each request is refused with the estimate, at once,
 * and the daemon's resident memory does not grow. */
START_TEST(sizes_are_estimated_before_anything_is_allocated) {
    start_with((const char *const[]){"--max-memory", "1073741824", NULL});
    json_decref(tu_call(&c, "train", svc_bigram(2, 2)));
    snapshot before = take_snapshot();
    long rss = svc_rss_kb(d.pid);
    json_t *asks[] = {gpt("batch_size", 1000000, "seq_len", 4), gpt("batch_size", 1024, "seq_len", 4096),
                      gpt("depth", 1, "aspect_ratio", 4096)};
    for (size_t i = 0; i < sizeof asks / sizeof asks[0]; i++) {
        double t0 = svc_now_ms();
        const char *msg = tu_call_error(&c, "train", asks[i], NC_E_BAD_REQUEST);
        ck_assert_msg(strstr(msg, "GiB") && strstr(msg, "--max-memory"), "%s", msg);
        ck_assert_double_lt(svc_now_ms() - t0, 500);
    }
    ck_assert_int_lt(svc_rss_kb(d.pid), rss + 65536);
    assert_unchanged(&before, "the oversized requests");
    free_snapshot(&before);
    stop();
}
END_TEST

/* A corpus of 40,000 distinct characters: the bigram it implies (2 x 40,000^2
 * weights) is refused by its estimate; one of 70,000 by the vocabulary's bound. */
START_TEST(a_wide_vocabulary_is_refused) {
    start_with(NULL);
    for (int distinct = 40000; distinct <= 70000; distinct += 30000) {
        char path[PATH_MAX + 16];
        snprintf(path, sizeof path, "%s/wide.txt", d.results);
        mkdir(d.results, 0755);
        FILE *f = fopen(path, "w");
        for (int i = 0; i < distinct; i++) { /* CJK and beyond: 3- and 4-byte characters */
            char ch[5] = {0};
            uint32_t cp = 0x4E00 + (uint32_t)i;
            nc_utf8_put(ch, cp < 0xD800 ? cp : cp + 0x800); /* past the surrogates */
            fputs(ch, f);
        }
        fclose(f);
        json_t *a = svc_bigram(2, 2);
        json_object_set_new(a, "data", json_string(path));
        const char *msg = tu_call_error(&c, "train", a, NC_E_BAD_REQUEST);
        ck_assert_msg(strstr(msg, distinct > NC_MAX_VOCAB ? "distinct characters" : "--max-memory"), "%s", msg);
    }
    json_decref(tu_call(&c, "status", NULL)); /* alive */
    stop();
}
END_TEST

/* ---- refused trains -------------------------------------------------------------------------------- */

START_TEST(a_refused_train_leaves_the_resident_model) {
    start_with(NULL);
    json_decref(tu_call(&c, "train", svc_bigram(3, 3)));
    json_decref(tu_call(&c, "checkpoint", ckpt("export", "w.safetensors")));
    json_decref(tu_call(&c, "checkpoint", ckpt("import", "w.safetensors"))); /* unsaved now */
    snapshot before = take_snapshot();
    ck_assert(json_is_true(json_object_get(before.model, "unsaved")));
    struct { const char *key; json_t *value; nc_code code; } bad[] = {
        {"run_id", json_string("a/b"), NC_E_BAD_REQUEST},
        {"eval_windows", json_integer(1), NC_E_BAD_REQUEST},
        {"checkpoint", json_string("/proc/nope/x.ckpt"), NC_E_PERMISSION_DENIED},
        {"data", NULL, NC_E_NOT_FOUND},
    };
    char missing[PATH_MAX + 16];
    snprintf(missing, sizeof missing, "%s/missing.txt", d.checkpoints);
    bad[3].value = json_string(missing);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *a = svc_bigram(2, 2);
        json_object_set_new(a, bad[i].key, bad[i].value);
        const char *msg = tu_call_error(&c, "train", a, bad[i].code);
        if (i < 2) ck_assert_msg(strstr(msg, bad[i].key), "%s", msg); /* it names the argument */
        assert_unchanged(&before, bad[i].key);
    }
    tu_call_error(&c, "train", gpt("seq_len", 1, "batch_size", 2), NC_E_BAD_REQUEST);
    assert_unchanged(&before, "a gpt seq_len of 1");
    free_snapshot(&before);
    stop();
}
END_TEST

/* Checked before queueing: BadRequest while another job runs, not Busy. */
START_TEST(bad_requests_are_refused_while_a_job_runs) {
    start_with(NULL);
    int fd = svc_connect(d.socket);
    svc_send(fd, nc_msg_request(1, "train", svc_bigram(1000000, 1000000)));
    nc_reply r;
    for (int i = 0; i < 200; i++) { /* until the job runs */
        json_t *st = tu_call(&c, "status", NULL);
        bool busy = strcmp(json_string_value(json_object_get(st, "state")), "busy") == 0;
        json_decref(st);
        if (busy) break;
        usleep(5000);
    }
    tu_call_error(&c, "train", gpt("seq_len", 1, "batch_size", 2), NC_E_BAD_REQUEST);
    json_t *a = svc_bigram(2, 2);
    json_object_set_new(a, "eval_windows", json_integer(1));
    tu_call_error(&c, "train", a, NC_E_BAD_REQUEST);
    tu_call_error(&c, "eval", json_pack("{s:i}", "windows", 1), NC_E_BAD_REQUEST);
    tu_call_error(&c, "checkpoint", json_pack("{s:s}", "action", "load"), NC_E_BAD_REQUEST);
    tu_call_error(&c, "train", svc_bigram(2, 2), NC_E_BUSY); /* a good one waits its turn */
    json_decref(tu_call(&c, "cancel", NULL));
    svc_recv_final(fd, 5000, &r);
    ck_assert_int_eq(r.code, NC_E_CANCELLED);
    nc_reply_free(&r);
    close(fd);
    stop();
}
END_TEST

/* Weights with a NaN or an infinity: refused, the model unchanged and not
 * marked unsaved (so the shutdown save cannot overwrite a good checkpoint). */
START_TEST(non_finite_weights_are_not_imported) {
    start_with(NULL);
    json_decref(tu_call(&c, "train", svc_bigram(3, 3)));
    json_decref(tu_call(&c, "checkpoint", ckpt("export", "w.safetensors")));
    snapshot before = take_snapshot();
    ck_assert(json_is_false(json_object_get(before.model, "unsaved")));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/w.safetensors", d.checkpoints);
    size_t len;
    char *bytes = tu_read_file(path, &len);
    float bad[] = {NAN, INFINITY};
    for (int i = 0; i < 2; i++) {
        memcpy(bytes + len - sizeof(float), &bad[i], sizeof(float)); /* the last weight */
        FILE *f = fopen(path, "wb");
        ck_assert(f && fwrite(bytes, 1, len, f) == len);
        fclose(f);
        const char *msg = tu_call_error(&c, "checkpoint", ckpt("import", "w.safetensors"), NC_E_CHECKPOINT_CORRUPT);
        ck_assert_msg(strstr(msg, "non-finite"), "%s", msg);
        assert_unchanged(&before, "a non-finite import");
    }
    free(bytes);
    free_snapshot(&before);
    stop();
}
END_TEST

/* ---- the memory guard and other clients ------------------------------------------------------------------------- */

/* A run evaluated at every step, its guard at its default growth of 1.5,
 * while another client sends 15 MiB prompts: the run completes. */
START_TEST(other_clients_do_not_trip_a_jobs_guard) {
    start_with((const char *const[]){"--guard-window", "4", NULL});
    int fd = svc_connect(d.socket), other = svc_connect(d.socket);
    json_t *a = svc_bigram(60, 10);
    json_object_set_new(a, "eval_every", json_integer(1));
    json_object_set_new(a, "eval_windows", json_integer(8));
    svc_send(fd, nc_msg_request(1, "train", a));
    size_t n = 15u << 20;
    char *prompt = malloc(n + 1);
    memset(prompt, 'a', n);
    prompt[n] = 0;
    for (int i = 0; i < 3; i++) {
        svc_send(other, nc_msg_request((uint64_t)(10 + i), "sample", json_pack("{s:s}", "prompt", prompt)));
        nc_reply r;
        ck_assert_int_eq(svc_recv(other, 5000, &r), 0);
        ck_assert_int_eq(r.kind, NC_REPLY_ERROR); /* the prompt is over its limit */
        nc_reply_free(&r);
    }
    free(prompt);
    nc_reply r;
    svc_recv_final(fd, 10000, &r);
    ck_assert_msg(r.kind == NC_REPLY_OK, "the run failed: %s", r.message);
    nc_reply_free(&r);
    close(fd);
    close(other);
    stop();
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_refusals");
    tu_tcase(s, "refusals", forged_checkpoints_are_corrupt_and_change_nothing,
             sizes_are_estimated_before_anything_is_allocated, a_wide_vocabulary_is_refused,
             a_refused_train_leaves_the_resident_model, bad_requests_are_refused_while_a_job_runs,
             non_finite_weights_are_not_imported, other_clients_do_not_trip_a_jobs_guard);
    return tu_run(s);
}
