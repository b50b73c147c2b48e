/* test_e2e.c: a real nanochatd process on a temporary socket, driven through
 * the client library: status, a short train with its events and artifacts,
 * sample from the trained weights, Busy and cancel during a train, a client
 * that hangs up mid-job, and shutdown. */
#define _GNU_SOURCE
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

static tu_daemon d;

static json_t *bigram_args(int steps) {
    return json_pack("{s:s, s:s, s:i, s:i, s:i, s:i}", "mode", "scalar", "model_kind", "bigram", "steps", steps,
                     "eval_windows", 64, "log_every", 1, "batch_size", 8);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

typedef struct events {
    int progress, eval;
    double last_loss;
} events;

static void count_events(void *ctx, const char *event, json_t *data) {
    events *e = ctx;
    if (!strcmp(event, "progress")) {
        e->progress++;
        e->last_loss = json_number_value(json_object_get(data, "loss"));
        ck_assert(json_is_number(json_object_get(data, "tok_per_s")));
        ck_assert(json_is_number(json_object_get(data, "elapsed_s")));
    } else if (!strcmp(event, "eval")) {
        e->eval++;
        ck_assert(json_is_number(json_object_get(data, "val_loss")));
    }
}

static void check_artifacts(const char *run_id) {
    char path[PATH_MAX + 256];
    snprintf(path, sizeof path, "%s/%s/run.json", d.results, run_id);
    json_t *run = json_load_file(path, 0, NULL);
    ck_assert_msg(run != NULL, "missing %s", path);
    static const char *const keys[] = {"config", "seed", "backend", "device", "using_gpu", "commit", "start_time",
                                       "end_time", "final_train_loss", "final_val_loss", "status"};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        ck_assert_msg(json_object_get(run, keys[i]), "run.json lacks %s", keys[i]);
    ck_assert_str_eq(json_string_value(json_object_get(run, "status")), "completed");
    ck_assert(json_is_false(json_object_get(run, "using_gpu")));
    json_decref(run);
    snprintf(path, sizeof path, "%s/%s/metrics.jsonl", d.results, run_id);
    char *text = tu_read_file(path, NULL);
    ck_assert_ptr_nonnull(text);
    int lines = 0;
    for (char *p = text; *p; p++) lines += *p == '\n';
    ck_assert_int_eq(lines, 20 + 2); /* 20 steps logged, eval at 0 and at the end */
    free(text);
}

START_TEST(train_then_sample_from_the_trained_weights) {
    nc_client c;
    tu_connect(&c, &d);
    json_t *st = tu_call(&c, "status", NULL);
    ck_assert(json_is_null(json_object_get(st, "model")));
    json_decref(st);
    events ev = {0};
    nc_error err;
    json_t *res = nc_client_call(&c, "train", bigram_args(20), count_events, &ev, &err);
    ck_assert_msg(res != NULL, "%s", err.message);
    ck_assert_int_eq(ev.progress, 20);
    ck_assert_int_eq(ev.eval, 2);
    double base = json_number_value(json_object_get(res, "baseline_val_loss"));
    double final = json_number_value(json_object_get(res, "final_val_loss"));
    ck_assert_msg(fabs(base - log(65.0)) < 0.3, "baseline %.3f is not about ln 65", base);
    ck_assert_msg(final < base, "val loss did not drop: %.4f -> %.4f", base, final);
    check_artifacts(json_string_value(json_object_get(res, "run_id")));
    json_decref(res);

    json_t *s1 = tu_call(&c, "sample", json_pack("{s:s, s:i, s:i}", "prompt", "ROMEO:", "max_new_tokens", 40, "seed", 7));
    json_t *s2 = tu_call(&c, "sample", json_pack("{s:s, s:i, s:i}", "prompt", "ROMEO:", "max_new_tokens", 40, "seed", 7));
    const char *text = json_string_value(json_object_get(s1, "text"));
    ck_assert_int_eq(strncmp(text, "ROMEO:", 6), 0);
    ck_assert_str_eq(text, json_string_value(json_object_get(s2, "text")));
    json_decref(s1);
    json_decref(s2);
    st = tu_call(&c, "status", NULL);
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(st, "model"), "step")), 20);
    json_decref(st);
    nc_client_close(&c);
}
END_TEST

/* Waits for the first progress event of a train sent on `a`. */
static void wait_first_progress(nc_client *a) {
    for (;;) {
        nc_reply r;
        nc_error err;
        ck_assert_msg(nc_client_recv(a, &r, 5000, &err) == 0, "%s", err.message);
        bool progress = r.kind == NC_REPLY_EVENT && !strcmp(r.event, "progress");
        ck_assert_msg(r.kind == NC_REPLY_EVENT, "train ended early: %s", r.message ? r.message : "ok");
        nc_reply_free(&r);
        if (progress) return;
    }
}

START_TEST(busy_status_and_cancel_during_a_train) {
    nc_client a, b;
    tu_connect(&a, &d);
    tu_connect(&b, &d);
    nc_error err;
    json_t *req = nc_msg_request(1, "train", bigram_args(1000000));
    ck_assert_int_eq(nc_client_send(&a, req, &err), 0);
    json_decref(req);
    wait_first_progress(&a);

    double t0 = now_ms();
    json_t *st = tu_call(&b, "status", NULL);
    double dt = now_ms() - t0;
    ck_assert_msg(dt < 50, "status took %.1f ms during a train", dt);
    ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "busy");
    ck_assert_str_eq(json_string_value(json_object_get(json_object_get(st, "job"), "cmd")), "train");
    json_decref(st);
    tu_call_error(&b, "train", bigram_args(5), NC_E_BUSY);
    tu_call_error(&b, "sample", NULL, NC_E_BUSY);

    t0 = now_ms();
    json_t *cancel = tu_call(&b, "cancel", NULL);
    ck_assert_msg(now_ms() - t0 < 50, "cancel took too long");
    ck_assert(json_is_true(json_object_get(cancel, "cancelled")));
    json_decref(cancel);
    for (;;) { /* the train's final reply is Cancelled */
        nc_reply r;
        ck_assert_int_eq(nc_client_recv(&a, &r, 5000, &err), 0);
        bool final = r.kind != NC_REPLY_EVENT;
        if (final) ck_assert_int_eq(r.code, NC_E_CANCELLED);
        nc_reply_free(&r);
        if (final) break;
    }
    nc_client_close(&a);
    nc_client_close(&b);
}
END_TEST

/* An eval stops between batches when cancelled, and answers Cancelled. */
START_TEST(cancel_stops_a_long_eval) {
    nc_client a, b;
    tu_connect(&a, &d);
    tu_connect(&b, &d);
    json_decref(tu_call(&a, "train", bigram_args(2)));
    nc_error err;
    json_t *req = nc_msg_request(9, "eval", json_pack("{s:i}", "windows", 5000000));
    ck_assert_int_eq(nc_client_send(&a, req, &err), 0);
    json_decref(req);
    json_t *cancel = NULL;
    for (int i = 0; i < 500 && !json_is_true(json_object_get(cancel, "cancelled")); i++) {
        json_decref(cancel);
        usleep(2000);
        cancel = tu_call(&b, "cancel", NULL); /* until the eval is running */
    }
    ck_assert(json_is_true(json_object_get(cancel, "cancelled")));
    json_decref(cancel);
    nc_reply r;
    ck_assert_int_eq(nc_client_recv(&a, &r, 5000, &err), 0);
    ck_assert_int_eq(r.kind, NC_REPLY_ERROR);
    ck_assert_int_eq(r.code, NC_E_CANCELLED);
    nc_reply_free(&r);
    nc_client_close(&a);
    nc_client_close(&b);
}
END_TEST

START_TEST(a_train_outlives_its_client) {
    nc_client a, b;
    tu_connect(&a, &d);
    nc_error err;
    json_t *req = nc_msg_request(1, "train", bigram_args(30));
    ck_assert_int_eq(nc_client_send(&a, req, &err), 0);
    json_decref(req);
    nc_client_close(&a); /* hang up at once */
    tu_connect(&b, &d);
    int64_t step = 0;
    for (int i = 0; i < 500 && step != 30; i++) {
        json_t *st = tu_call(&b, "status", NULL);
        json_t *model = json_object_get(st, "model");
        bool idle = !strcmp(json_string_value(json_object_get(st, "state")), "idle");
        step = idle && json_is_object(model) ? json_integer_value(json_object_get(model, "step")) : 0;
        json_decref(st);
        if (step != 30) usleep(10000);
    }
    ck_assert_int_eq(step, 30);
    nc_client_close(&b);
}
END_TEST

START_TEST(shutdown_saves_and_exits_zero) {
    nc_client c;
    tu_connect(&c, &d);
    json_decref(tu_call(&c, "train", bigram_args(3)));
    json_t *res = tu_call(&c, "shutdown", NULL);
    ck_assert(json_is_true(json_object_get(res, "stopped")));
    json_decref(res);
    nc_client_close(&c);
    int st;
    ck_assert_int_eq(waitpid(d.pid, &st, 0), d.pid);
    d.pid = 0;
    ck_assert(WIFEXITED(st));
    ck_assert_int_eq(WEXITSTATUS(st), 0);
}
END_TEST

static void setup(void) { tu_daemon_start(&d, NULL); }
static void teardown(void) { tu_daemon_cleanup(&d); }

int main(void) {
    Suite *s = suite_create("e2e");
    TCase *tc = tu_tcase(s, "daemon", train_then_sample_from_the_trained_weights, busy_status_and_cancel_during_a_train,
                         cancel_stops_a_long_eval, a_train_outlives_its_client, shutdown_saves_and_exits_zero);
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_set_timeout(tc, 30);
    return tu_run(s);
}
