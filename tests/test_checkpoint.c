/* test_checkpoint.c: the checkpoint format and its guarantees (FR-008).
 *
 * - The file is the documented layout (magic, version, sizes, checksum) and
 *   loads back into the same config, vocabulary, weights, optimizer state,
 *   data RNG state and step.
 * - Loading a truncated, corrupt, foreign or wrong-version file through
 *   nanochatd fails with CheckpointCorrupt or UnsupportedVersion and leaves
 *   the resident model as it was (same step, same samples).
 * - A writer killed at random moments leaves a file that loads.
 * - With --checkpoint-every, each eval event comes after the checkpoint of
 *   its step is on disk.
 * - Resuming from step k to step n gives the losses, final eval and final
 *   state (weights and optimizer, bit for bit) of an uninterrupted n-step
 *   run, and so does a run that reloads itself every few steps. */
#define _GNU_SOURCE
#include "trainutil.h"
#include "engine/store/checkpoint.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_bytes(const char *path, const void *data, size_t n) {
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    ck_assert_uint_eq(fwrite(data, 1, n, f), n);
    fclose(f);
}

/* Every tensor of both lists (same names, same order) is bitwise equal. */
static void assert_same_state(nc_resident *a, nc_resident *b) {
    nc_tensor_list ta = {0}, tb = {0};
    nc_error err;
    ck_assert_int_eq(a->ops->export_state(a->model, true, &ta, &err), 0);
    ck_assert_int_eq(b->ops->export_state(b->model, true, &tb, &err), 0);
    ck_assert_int_eq(ta.count, tb.count);
    for (int i = 0; i < ta.count; i++) {
        ck_assert_str_eq(ta.items[i].name, tb.items[i].name);
        ck_assert_int_eq(nc_tensor_numel(&ta.items[i]), nc_tensor_numel(&tb.items[i]));
        ck_assert_mem_eq(ta.items[i].data, tb.items[i].data, (size_t)nc_tensor_numel(&ta.items[i]) * sizeof(float));
    }
    nc_tensors_free(&ta);
    nc_tensors_free(&tb);
}

START_TEST(the_file_holds_everything_needed_to_continue) {
    tu_engine t;
    tu_engine_open(&t, "ckpt", 0, 0);
    json_t *args = tu_train_args("scalar", "mini-gpt", 3, t.corpus);
    json_object_set_new(args, "style", json_string("futuristic"));
    json_t *res = tu_engine_call(&t, "train", args);
    const char *path = json_string_value(json_object_get(res, "checkpoint"));
    size_t len;
    char *bytes = tu_read_file(path, &len);
    uint32_t version;
    uint64_t H, D;
    memcpy(&version, bytes + 8, 4);
    memcpy(&H, bytes + 16, 8);
    memcpy(&D, bytes + 24, 8);
    ck_assert_mem_eq(bytes, "NCCKPT\0\0", 8);
    ck_assert_uint_eq(version, NC_CHECKPOINT_VERSION);
    ck_assert_uint_eq(len, 40 + H + D);
    free(bytes);
    nc_resident loaded;
    nc_error err;
    ck_assert_msg(nc_checkpoint_read(t.e, path, &loaded, &err) == 0, "%s", err.message);
    nc_resident *r = &t.e->res;
    ck_assert_int_eq(nc_resident_step(&loaded), 3);
    ck_assert_mem_eq(&loaded.data_rng, &r->data_rng, sizeof r->data_rng);
    ck_assert(nc_tokenizer_equal(&loaded.tok, &r->tok));
    ck_assert_mem_eq(loaded.style_only, r->style_only, (size_t)nc_tokenizer_size(&r->tok));
    json_t *ca = nc_args_to_json(nc_command_find("train"), &loaded.cfg), *cb = nc_args_to_json(nc_command_find("train"), &r->cfg);
    ck_assert(json_equal(ca, cb));
    json_decref(ca);
    json_decref(cb);
    assert_same_state(&loaded, r);
    nc_resident_clear(&loaded);
    json_decref(res);
    tu_engine_close(&t);
}
END_TEST

/* The resident model's step and a fixed sample. */
static char *fingerprint(nc_client *c) {
    json_t *st = tu_call(c, "status", NULL);
    json_t *s = tu_call(c, "sample", json_pack("{s:s, s:i, s:i}", "prompt", "the ", "max_new_tokens", 40, "seed", 3));
    char *fp;
    ck_assert_int_ge(asprintf(&fp, "%s %lld %s", json_string_value(json_object_get(json_object_get(st, "model"), "run_id")),
                              (long long)json_integer_value(json_object_get(json_object_get(st, "model"), "step")),
                              json_string_value(json_object_get(s, "text"))), 0);
    json_decref(st);
    json_decref(s);
    return fp;
}

typedef struct damage {
    const char *name;
    nc_code code;
} damage;

/* The good file's bytes, damaged one way; *n is the length to write. */
static void apply(const damage *dm, char *buf, size_t *n) {
    if (!strcmp(dm->name, "half")) *n /= 2;
    else if (!strcmp(dm->name, "short")) *n -= 1;
    else if (!strcmp(dm->name, "prefix")) *n = 20;
    else if (!strcmp(dm->name, "empty")) *n = 0;
    else if (!strcmp(dm->name, "flip")) buf[*n - 3] ^= 0x10;
    else if (!strcmp(dm->name, "header")) buf[41] ^= 0x01;
    else if (!strcmp(dm->name, "magic")) buf[0] = 'X';
    else if (!strcmp(dm->name, "version")) buf[8] = 99;
}

START_TEST(a_bad_file_changes_nothing) {
    tu_fixture_start();
    nc_client c;
    tu_connect(&c, &tu_fx.d);
    json_t *res = tu_call(&c, "train", tu_train_args("tensor", "bigram", 5, tu_fx.corpus));
    size_t len;
    char *good = tu_read_file(json_string_value(json_object_get(res, "checkpoint")), &len), *before = fingerprint(&c);
    static const damage damages[] = {{"half", NC_E_CHECKPOINT_CORRUPT},   {"short", NC_E_CHECKPOINT_CORRUPT},
                                     {"prefix", NC_E_CHECKPOINT_CORRUPT}, {"empty", NC_E_CHECKPOINT_CORRUPT},
                                     {"flip", NC_E_CHECKPOINT_CORRUPT},   {"header", NC_E_CHECKPOINT_CORRUPT},
                                     {"magic", NC_E_CHECKPOINT_CORRUPT},  {"version", NC_E_UNSUPPORTED_VERSION}};
    for (size_t i = 0; i < sizeof damages / sizeof damages[0]; i++) {
        char path[PATH_MAX + 64], *buf = malloc(len);
        size_t n = len;
        memcpy(buf, good, len);
        apply(&damages[i], buf, &n);
        snprintf(path, sizeof path, "%s/%s.ckpt", tu_fx.d.checkpoints, damages[i].name);
        write_bytes(path, buf, n);
        tu_call_error(&c, "checkpoint", json_pack("{s:s, s:s}", "action", "load", "path", path), damages[i].code);
        char *after = fingerprint(&c);
        ck_assert_str_eq(after, before);
        free(after);
        free(buf);
    }
    tu_call_error(&c, "checkpoint", json_pack("{s:s, s:s}", "action", "load", "path", "missing.ckpt"), NC_E_NOT_FOUND);
    free(good);
    free(before);
    json_decref(res);
    nc_client_close(&c);
    tu_fixture_stop();
}
END_TEST

/* Saves the resident model over and over, each time under the next run id
 * ("w<n>"), so that a newer file shows. */
_Noreturn static void save_forever(nc_resident *r, const char *path, long from) {
    nc_error err;
    for (long n = from + 1;; n++) {
        snprintf(r->run_id, sizeof r->run_id, "w%ld", n);
        if (nc_checkpoint_write(r, path, &err)) _exit(1);
    }
}

static long writes_of(const nc_resident *r) { return r->run_id[0] == 'w' ? atol(r->run_id + 1) : 0; }

START_TEST(a_killed_writer_leaves_the_old_or_the_new_file) {
    tu_engine t;
    tu_engine_open(&t, "ckptkill", 0, 0);
    json_t *res = tu_engine_call(&t, "train", tu_train_args("scalar", "mini-gpt", 1, t.corpus));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/target.ckpt", t.checkpoints);
    nc_error err;
    ck_assert_int_eq(nc_checkpoint_write(&t.e->res, path, &err), 0);
    long last = 0;
    for (int round = 0; round < 8; round++) {
        pid_t pid = fork(); /* the writer continues from the file on disk */
        if (pid == 0) save_forever(&t.e->res, path, last);
        usleep(1000 + 1500 * (useconds_t)round);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        nc_resident r;
        ck_assert_msg(nc_checkpoint_read(t.e, path, &r, &err) == 0, "round %d: %s", round, err.message);
        ck_assert_int_ge(writes_of(&r), last);
        last = writes_of(&r);
        nc_resident_clear(&r);
    }
    ck_assert_int_gt(last, 0); /* new files did land between the kills */
    json_decref(res);
    tu_engine_close(&t);
}
END_TEST

typedef struct persisted {
    tu_engine *t;
    char path[PATH_MAX];
    int64_t step; /* of the last checkpoint event */
    int evals;
} persisted;

static void on_event(void *ctx, const char *event, json_t *data) {
    persisted *p = ctx;
    if (!strcmp(event, "checkpoint")) {
        snprintf(p->path, sizeof p->path, "%s", json_string_value(json_object_get(data, "path")));
        p->step = json_integer_value(json_object_get(data, "step"));
    } else if (!strcmp(event, "eval") && json_integer_value(json_object_get(data, "step")) > 0) {
        int64_t step = json_integer_value(json_object_get(data, "step"));
        ck_assert_int_eq(p->step, step);
        nc_resident r;
        nc_error err;
        ck_assert_msg(nc_checkpoint_read(p->t->e, p->path, &r, &err) == 0, "%s", err.message);
        ck_assert_int_eq(nc_resident_step(&r), step);
        nc_resident_clear(&r);
        p->evals++;
    }
    json_decref(data);
}

START_TEST(each_eval_follows_its_checkpoint_on_disk) {
    tu_engine t;
    tu_engine_open(&t, "ckptpte", 0, 0);
    persisted p = {.t = &t, .step = -1};
    nc_sink sink = {.emit = on_event, .ctx = &p};
    json_t *args = tu_train_args("tensor", "bigram", 6, t.corpus);
    json_object_set_new(args, "checkpoint_every", json_integer(2));
    nc_error err;
    json_t *res = tu_engine_try(t.e, "train", args, &sink, &err);
    ck_assert_msg(res != NULL, "%s", err.message);
    ck_assert_int_eq(p.evals, 3);
    ck_assert_str_eq(p.path, json_string_value(json_object_get(res, "checkpoint")));
    json_decref(res);
    tu_engine_close(&t);
}
END_TEST

/* The "train" lines of a run's losses, from step `from` on (malloc'd). */
static char *train_losses(tu_engine *t, const char *run_id, int from) {
    char *all = tu_run_losses(t->results, run_id), *out = calloc(1, strlen(all) + 1), *save = NULL;
    for (char *line = strtok_r(all, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        int step;
        if (sscanf(line, "train %d", &step) == 1 && step >= from) strcat(strcat(out, line), "\n");
    }
    free(all);
    return out;
}

static json_t *run(tu_engine *t, const char *const model[3], int steps, const char *run_id, const char *key,
                   json_t *value) {
    json_t *args = tu_train_args(model[0], model[1], steps, t->corpus);
    json_object_set_new(args, "optimizer", json_string(model[2]));
    json_object_set_new(args, "run_id", json_string(run_id));
    if (key) json_object_set_new(args, key, value);
    return tu_engine_call(t, "train", args);
}

static void load(tu_engine *t, json_t *res, nc_resident *r) {
    nc_error err;
    ck_assert_msg(nc_checkpoint_read(t->e, json_string_value(json_object_get(res, "checkpoint")), r, &err) == 0, "%s",
                  err.message);
}

static const char *const models[][3] = {
    {"scalar", "bigram", "adamw"}, {"tensor", "bigram", "sgd"}, {"tensor", "bigram", "adamw"}, {"scalar", "mini-gpt", "adamw"}};

START_TEST(resuming_is_bit_identical_to_not_stopping) {
    tu_engine t;
    tu_engine_open(&t, "resume", 0, 0);
    const char *const *m = models[_i];
    json_t *full = run(&t, m, 10, "full", NULL, NULL);
    json_decref(run(&t, m, 4, "part", "checkpoint", json_string("part.ckpt")));
    json_t *rest = run(&t, m, 10, "rest", "resume", json_string("part.ckpt"));
    json_t *reloaded = run(&t, m, 10, "reloaded", "checkpoint_every", json_integer(3));
    char *a = train_losses(&t, "full", 5), *b = train_losses(&t, "rest", 5), *c = train_losses(&t, "reloaded", 5);
    ck_assert_int_eq(strlen(a) > 0, 1);
    ck_assert_str_eq(a, b);
    ck_assert_str_eq(a, c);
    ck_assert_double_eq(tu_num(full, "final_val_loss"), tu_num(rest, "final_val_loss"));
    ck_assert_double_eq(tu_num(full, "final_val_loss"), tu_num(reloaded, "final_val_loss"));
    nc_resident ra, rb;
    load(&t, full, &ra);
    load(&t, rest, &rb);
    assert_same_state(&ra, &rb);
    ck_assert_mem_eq(&ra.data_rng, &rb.data_rng, sizeof ra.data_rng);
    nc_resident_clear(&ra);
    nc_resident_clear(&rb);
    free(a), free(b), free(c);
    json_decref(full), json_decref(rest), json_decref(reloaded);
    tu_engine_close(&t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("checkpoint");
    tu_tcase(s, "checkpoint", the_file_holds_everything_needed_to_continue, a_bad_file_changes_nothing,
             a_killed_writer_leaves_the_old_or_the_new_file, each_eval_follows_its_checkpoint_on_disk);
    TCase *resume = tcase_create("resume");
    tcase_add_loop_test(resume, resuming_is_bit_identical_to_not_stopping, 0, sizeof models / sizeof models[0]);
    suite_add_tcase(s, resume);
    return tu_run(s);
}
