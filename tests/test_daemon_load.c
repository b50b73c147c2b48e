/* test_daemon_load.c: NC_TEST_CLIENTS clients (200) ask status and sample in
 * a loop while a training job of NC_TEST_TRAIN_STEPS (100) runs. Every request is answered: status
 * always, sample with a result or Busy (the documented answer while a job
 * runs), nothing else; and the job's loss trajectory is identical, step for
 * step, to a quiet run with the same seed. */
#define _GNU_SOURCE
#include "svc.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct crowd {
    const char *socket;
    atomic_bool done;
    atomic_long status_ok, sample_ok, busy, other;
    char other_message[256];
} crowd;

static void count(crowd *c, json_t *res, const nc_error *err, atomic_long *ok) {
    if (res) atomic_fetch_add(ok, 1);
    else if (err->code == NC_E_BUSY) atomic_fetch_add(&c->busy, 1);
    else if (atomic_fetch_add(&c->other, 1) == 0) snprintf(c->other_message, sizeof c->other_message, "%s: %s",
                                                          nc_code_name(err->code), err->message);
    json_decref(res);
}

static void *client_loop(void *arg) {
    crowd *c = arg;
    nc_client cl;
    nc_error err;
    if (nc_client_connect(&cl, c->socket, &err)) {
        count(c, NULL, &err, NULL);
        return NULL;
    }
    while (!atomic_load(&c->done)) {
        count(c, nc_client_call(&cl, "status", NULL, NULL, NULL, &err), &err, &c->status_ok);
        json_t *args = json_pack("{s:i, s:i}", "max_new_tokens", 16, "seed", 7);
        count(c, nc_client_call(&cl, "sample", args, NULL, NULL, &err), &err, &c->sample_ok);
    }
    nc_client_close(&cl);
    return NULL;
}

/* Trains, asking again while the crowd's samples keep the worker busy. */
static void train(const tu_daemon *d, svc_losses *l) {
    nc_client c;
    tu_connect(&c, d);
    nc_error err;
    json_t *res;
    int steps = (int)svc_env("NC_TEST_TRAIN_STEPS", 100);
    while (!(res = nc_client_call(&c, "train", svc_bigram(steps, 1), svc_collect_loss, l, &err)) &&
           err.code == NC_E_BUSY)
        usleep(500);
    ck_assert_msg(res != NULL, "train: %s", err.message);
    json_decref(res);
    nc_client_close(&c);
}

START_TEST(a_crowd_of_clients_during_training) {
    tu_daemon d;
    svc_start(&d, NULL);
    static svc_losses quiet, loaded;
    train(&d, &quiet); /* also leaves a model to sample from */
    long n = svc_env("NC_TEST_CLIENTS", 200);
    crowd c = {.socket = d.socket};
    pthread_t *t = calloc((size_t)n, sizeof *t);
    for (long i = 0; i < n; i++) ck_assert_int_eq(pthread_create(&t[i], NULL, client_loop, &c), 0);
    double t0 = svc_now_ms();
    train(&d, &loaded);
    double ms = svc_now_ms() - t0;
    atomic_store(&c.done, true);
    for (long i = 0; i < n; i++) pthread_join(t[i], NULL);
    free(t);
    ck_assert_msg(c.other == 0, "%ld requests got neither an answer nor Busy, e.g. %s", (long)c.other, c.other_message);
    ck_assert_int_gt(c.status_ok, 0);
    ck_assert_int_gt(c.busy, 0);
    ck_assert_int_eq(loaded.n, quiet.n);
    for (int i = 0; i < quiet.n; i++)
        ck_assert_msg(loaded.loss[i] == quiet.loss[i], "step %lld: %.17g under load, %.17g quiet",
                      (long long)quiet.step[i], loaded.loss[i], quiet.loss[i]);
    svc_figure("load clients=%ld train_ms=%.0f status_ok=%ld sample_ok=%ld busy=%ld other=%ld identical_steps=%d", n,
               ms, (long)c.status_ok, (long)c.sample_ok, (long)c.busy, (long)c.other, quiet.n);
    tu_daemon_cleanup(&d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_load");
    tu_tcase(s, "load", a_crowd_of_clients_during_training);
    return tu_run(s);
}
