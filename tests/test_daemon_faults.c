/* test_daemon_faults.c: checkpoints and training under faults. kill -9 at
 * random moments while checkpoints are being written: every load afterwards
 * gives the previous checkpoint or the new complete one, never an error
 * (NC_TEST_KILL_TRIALS trials; scripts/stress.sh runs many). A write limit
 * (RLIMIT_FSIZE, set on the running daemon) while saving: the save fails
 * with a clear IoError, the old checkpoint is intact, training continues
 * once space is back. SIGTERM mid-training: checkpoint written, exit 0, and a
 * restarted daemon resumes at that step with exactly the next losses of an
 * uninterrupted run of the same configuration. A non-finite loss: NonFiniteLoss, the model keeps its
 * last good weights, the daemon keeps serving. */
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

static int temp_files(const char *dir) {
    DIR *d = opendir(dir);
    int n = 0;
    for (struct dirent *de; d && (de = readdir(d));) n += strstr(de->d_name, ".tmp.") != NULL;
    if (d) closedir(d);
    return n;
}

/* Reads a job's events until `event` arrives. */
static void wait_event(int fd, const char *event) {
    for (nc_reply r; svc_recv(fd, 5000, &r) == 0; nc_reply_free(&r)) {
        ck_assert_msg(r.kind == NC_REPLY_EVENT, "the job ended: %s", r.message ? r.message : "ok");
        if (strcmp(r.event, event)) continue;
        nc_reply_free(&r);
        return;
    }
    ck_abort_msg("no %s event", event);
}

static void set(json_t *args, const char *key, json_t *value) { json_object_set_new(args, key, value); }

START_TEST(kill_9_while_checkpointing_never_breaks_a_checkpoint) {
    long trials = svc_env("NC_TEST_KILL_TRIALS", 2);
    char dir[PATH_MAX], ckpt[PATH_MAX + 16];
    tu_tmpdir(dir, sizeof dir, "kill9");
    snprintf(ckpt, sizeof ckpt, "%s/k.ckpt", dir);
    unsigned seed = (unsigned)getpid();
    int64_t last = -1;
    int mid_write = 0;
    for (long t = 0; t < trials; t++) {
        tu_daemon d;
        svc_spawn(&d, SVC_AS_IS, NULL, (const char *const[]){"--allow-dir", dir, NULL});
        svc_wait_ready(&d);
        int fd = svc_connect(d.socket);
        json_t *a = svc_bigram(1000000, 1000000); /* checkpoints at every step until killed */
        set(a, "checkpoint_every", json_integer(1));
        set(a, "eval_windows", json_integer(2));
        set(a, "checkpoint", json_string(ckpt));
        if (last >= 0) set(a, "resume", json_string(ckpt));
        svc_send(fd, nc_msg_request(1, "train", a));
        wait_event(fd, "checkpoint");
        usleep(rand_r(&seed) % 20000);
        kill(d.pid, SIGKILL);
        svc_wait_exit(&d);
        mid_write += temp_files(dir) > 0;
        nc_error err;
        int64_t step = svc_checkpoint_load(ckpt, &err);
        ck_assert_msg(step >= 0 || (last < 0 && err.code == NC_E_NOT_FOUND), "trial %ld: %s", t, err.message);
        ck_assert_msg(step >= last, "trial %ld: step %lld went back from %lld", t, (long long)step, (long long)last);
        last = step;
        close(fd);
        tu_daemon_cleanup(&d);
    }
    svc_figure("kill9 trials=%ld killed_mid_write=%d loads_ok=%ld final_step=%lld", trials, mid_write, trials,
               (long long)last);
    tu_rmtree(dir);
}
END_TEST

static void set_fsize(pid_t pid, rlim_t bytes) {
    struct rlimit rl = {bytes, RLIM_INFINITY}; /* the soft limit: raising it again needs no privilege */
    ck_assert_msg(prlimit(pid, RLIMIT_FSIZE, &rl, NULL) == 0, "prlimit %d: %s", (int)pid, strerror(errno));
}

START_TEST(a_full_disk_fails_the_save_and_keeps_the_old_checkpoint) {
    tu_daemon d;
    svc_start(&d, NULL);
    nc_client c;
    tu_connect(&c, &d);
    json_t *a = svc_bigram(5, 5);
    set(a, "checkpoint", json_string("full.ckpt"));
    json_decref(tu_call(&c, "train", a));
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/full.ckpt", d.checkpoints);
    size_t n0, n1;
    char *before = tu_read_file(path, &n0);
    set_fsize(d.pid, 16384); /* smaller than the checkpoint: its write fails (EFBIG) */
    a = svc_bigram(10, 10);
    set(a, "resume", json_string("full.ckpt"));
    set(a, "checkpoint", json_string("full.ckpt"));
    const char *msg = tu_call_error(&c, "train", a, NC_E_IO);
    ck_assert_msg(strstr(msg, "full.ckpt") && strstr(msg, "File too large") && strstr(msg, "unchanged"), "%s", msg);
    tu_call_error(&c, "checkpoint", json_pack("{s:s}", "action", "save"), NC_E_IO);
    char *after = tu_read_file(path, &n1);
    ck_assert_msg(n0 == n1 && memcmp(before, after, n0) == 0, "the old checkpoint changed");
    ck_assert_int_eq(temp_files(d.checkpoints), 0);
    set_fsize(d.pid, RLIM_INFINITY);
    a = svc_bigram(10, 10);
    set(a, "resume", json_string("full.ckpt"));
    set(a, "checkpoint", json_string("full.ckpt"));
    json_t *res = tu_call(&c, "train", a);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "start_step")), 5);
    ck_assert_int_eq(json_integer_value(json_object_get(res, "steps")), 10);
    json_decref(res);
    free(before);
    free(after);
    nc_client_close(&c);
    tu_daemon_cleanup(&d);
}
END_TEST

enum { STEPS = 2000, COMPARED = 20 }; /* runs are stopped long before STEPS */

/* Trains on a raw connection, collecting the losses, until the job has
 * passed step `until`; then stops it: SIGTERM to the daemon, or cancel. */
static void train_until(tu_daemon *d, json_t *args, int64_t until, bool sigterm, svc_losses *l) {
    int fd = svc_connect(d->socket);
    svc_send(fd, nc_msg_request(1, "train", args));
    bool stopped = false, events = true;
    for (nc_reply r; events && svc_recv(fd, 5000, &r) == 0; nc_reply_free(&r)) {
        events = r.kind == NC_REPLY_EVENT; /* until the final reply (or cancel's) */
        if (events) svc_collect_loss(l, r.event, r.body);
        if (stopped || l->n == 0 || l->step[l->n - 1] < until) continue;
        stopped = true;
        if (sigterm) kill(d->pid, SIGTERM);
        else svc_send(fd, nc_msg_request(2, "cancel", NULL));
    }
    ck_assert_msg(stopped, "the job ended before step %lld", (long long)until);
    close(fd);
}

static json_t *run_args(const char *key, const char *value) {
    json_t *a = svc_bigram(STEPS, 1);
    set(a, key, json_string(value));
    return a;
}

START_TEST(sigterm_saves_and_a_restart_resumes_with_the_same_losses) {
    tu_daemon first, quiet, second;
    static svc_losses head, all, tail;
    svc_start(&first, NULL);
    train_until(&first, run_args("checkpoint", "run.ckpt"), 5, true, &head);
    ck_assert_int_eq(svc_wait_exit(&first), 0);
    char ckpt[PATH_MAX + 16];
    snprintf(ckpt, sizeof ckpt, "%s/run.ckpt", first.checkpoints);
    nc_error err;
    int64_t at = svc_checkpoint_load(ckpt, &err);
    ck_assert_msg(at >= 5, "no checkpoint after SIGTERM: %s", err.message);

    svc_start(&quiet, NULL);
    train_until(&quiet, run_args("run_id", "quiet"), at + COMPARED, false, &all);
    svc_start(&second, (const char *const[]){"--allow-dir", first.checkpoints, NULL});
    train_until(&second, run_args("resume", ckpt), at + COMPARED, false, &tail);
    ck_assert_int_eq(tail.step[0], at + 1);
    for (int i = 0; i < COMPARED; i++)
        ck_assert_msg(tail.loss[i] == all.loss[at + i], "step %lld: resumed loss %.17g, uninterrupted %.17g",
                      (long long)tail.step[i], tail.loss[i], all.loss[at + i]);
    svc_figure("sigterm stopped_at=%lld compared_steps=%d identical_losses=%d", (long long)at, COMPARED, COMPARED);
    tu_daemon_cleanup(&first);
    tu_daemon_cleanup(&quiet);
    tu_daemon_cleanup(&second);
}
END_TEST

static json_t *diverging(int steps) {
    json_t *a = svc_bigram(steps, 1);
    set(a, "optimizer", json_string("sgd"));
    set(a, "lr", json_real(1e6));
    return a;
}

START_TEST(a_non_finite_loss_fails_the_job_and_keeps_the_last_good_model) {
    tu_daemon d;
    svc_start(&d, NULL);
    nc_client c;
    tu_connect(&c, &d);
    static svc_losses l;
    nc_error err;
    ck_assert_ptr_null(nc_client_call(&c, "train", diverging(100), svc_collect_loss, &l, &err));
    ck_assert_msg(err.code == NC_E_NON_FINITE_LOSS, "%s: %s", nc_code_name(err.code), err.message);
    /* progress step s reports the loss of the weights after s - 1 updates: the
     * last finite one came from the weights after good - 1 updates, kept */
    int64_t good = l.step[l.n - 1] - 1;
    ck_assert_int_gt(good, 0);
    json_t *st = tu_call(&c, "status", NULL);
    ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "idle");
    ck_assert_int_eq(json_integer_value(json_object_get(json_object_get(st, "model"), "step")), good);
    json_decref(st);
    json_decref(tu_call(&c, "sample", json_pack("{s:i}", "max_new_tokens", 8)));
    json_decref(tu_call(&c, "checkpoint", json_pack("{s:s, s:s}", "action", "save", "path", "after-nan.ckpt")));
    json_t *a = diverging((int)good);
    set(a, "checkpoint", json_string("good.ckpt"));
    json_decref(tu_call(&c, "train", a));
    char p1[PATH_MAX + 32], p2[PATH_MAX + 32];
    snprintf(p1, sizeof p1, "%s/after-nan.ckpt", d.checkpoints);
    snprintf(p2, sizeof p2, "%s/good.ckpt", d.checkpoints);
    size_t n1, n2;
    uint8_t *t1 = svc_checkpoint_tensors(p1, &n1), *t2 = svc_checkpoint_tensors(p2, &n2);
    ck_assert_msg(n1 == n2 && memcmp(t1, t2, n1) == 0, "the weights after the failure are not those of step %lld",
                  (long long)good);
    free(t1);
    free(t2);
    nc_client_close(&c);
    tu_daemon_cleanup(&d);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_faults");
    tu_tcase(s, "faults", kill_9_while_checkpointing_never_breaks_a_checkpoint,
             a_full_disk_fails_the_save_and_keeps_the_old_checkpoint,
             sigterm_saves_and_a_restart_resumes_with_the_same_losses,
             a_non_finite_loss_fails_the_job_and_keeps_the_last_good_model);
    return tu_run(s);
}
