/* test_daemon_files.c: what nanochatd does with the files and paths a hostile
 * client names (it may run as root): a refused path is never remembered (a
 * later save or the shutdown save writes where it should, never outside); no
 * write follows a symlink planted at a checkpoint, an export, a run's
 * metrics.jsonl or run.json (the link is replaced, its target untouched); a
 * FIFO or another non-regular file is refused at once instead of wedging the
 * worker; the default corpus's folder is read, not written, unless the
 * operator allows it. A real daemon, real files. */
#define _GNU_SOURCE
#include "svc.h"
#include "trainutil.h"

#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tu_daemon d;
static char outside[PATH_MAX];
static char victim[PATH_MAX + 16]; /* a file outside that no write may reach */
#define VICTIM_TEXT "precious\n"

static void start_with(const char *const extra[]) {
    tu_tmpdir(outside, sizeof outside, "outside");
    snprintf(victim, sizeof victim, "%s/victim", outside);
    tu_write_text(victim, VICTIM_TEXT, 1);
    svc_start(&d, extra);
}

static void start(void) { start_with(NULL); }

static void stop(void) {
    tu_daemon_cleanup(&d);
    tu_rmtree(outside);
}

static void assert_victim_intact(void) {
    size_t n;
    char *text = tu_read_file(victim, &n);
    ck_assert_ptr_nonnull(text);
    ck_assert_str_eq(text, VICTIM_TEXT);
    free(text);
}

static json_t *ckpt(const char *action, const char *path) {
    return json_pack("{s:s, s:s}", "action", action, "path", path);
}

static json_t *train_with(const char *key, const char *value) {
    json_t *a = svc_bigram(2, 2);
    json_object_set_new(a, key, json_string(value));
    return a;
}

static bool is_regular(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* A train refused for its checkpoint path leaves no trace of that path: the
 * next save without a path, and the shutdown save, go where they went before. */
START_TEST(a_refused_path_is_never_remembered) {
    start();
    nc_client c;
    tu_connect(&c, &d);
    json_decref(tu_call(&c, "train", svc_bigram(3, 3)));
    char bad[PATH_MAX + 32];
    snprintf(bad, sizeof bad, "%s/newdir/pwned", outside);
    tu_call_error(&c, "train", train_with("checkpoint", bad), NC_E_PERMISSION_DENIED);
    tu_call_error(&c, "train", train_with("checkpoint", victim), NC_E_PERMISSION_DENIED);
    json_t *saved = tu_call(&c, "checkpoint", json_pack("{s:s}", "action", "save"));
    ck_assert_ptr_nonnull(strstr(json_string_value(json_object_get(saved, "path")), d.checkpoints));
    json_decref(saved);
    json_decref(tu_call(&c, "checkpoint", ckpt("export", "w.safetensors")));
    json_decref(tu_call(&c, "checkpoint", ckpt("import", "w.safetensors"))); /* unsaved: shutdown saves it */
    nc_client_close(&c);
    ck_assert_int_eq(tu_daemon_stop(&d), 0);
    char newdir[PATH_MAX + 16];
    snprintf(newdir, sizeof newdir, "%s/newdir", outside);
    ck_assert_int_ne(access(newdir, F_OK), 0);
    assert_victim_intact();
    stop();
}
END_TEST

/* Symlinks planted where nanochatd writes: replaced, never written through. */
START_TEST(writes_never_follow_planted_symlinks) {
    start();
    nc_client c;
    tu_connect(&c, &d);
    json_decref(tu_call(&c, "train", svc_bigram(2, 2)));
    char link[PATH_MAX + 64];
    const char *names[] = {"w.safetensors", "w.safetensors.tmp", "x.ckpt", "x.ckpt.tmp.1.1"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(link, sizeof link, "%s/%s", d.checkpoints, names[i]);
        ck_assert_int_eq(symlink(victim, link), 0);
    }
    json_decref(tu_call(&c, "checkpoint", ckpt("export", "w.safetensors")));
    json_decref(tu_call(&c, "checkpoint", ckpt("save", "x.ckpt")));
    snprintf(link, sizeof link, "%s/w.safetensors", d.checkpoints);
    ck_assert(is_regular(link));
    snprintf(link, sizeof link, "%s/x.ckpt", d.checkpoints);
    ck_assert(is_regular(link));
    /* a run folder prepared with links at its artifacts */
    char run[PATH_MAX + 16];
    snprintf(run, sizeof run, "%s/planted", d.results);
    ck_assert_int_eq(mkdir(run, 0755), 0);
    for (int i = 0; i < 2; i++) {
        snprintf(link, sizeof link, "%s/%s", run, i ? "run.json" : "metrics.jsonl");
        ck_assert_int_eq(symlink(victim, link), 0);
    }
    json_decref(tu_call(&c, "train", train_with("run_id", "planted")));
    ck_assert(is_regular(link));
    snprintf(link, sizeof link, "%s/metrics.jsonl", run);
    ck_assert(is_regular(link));
    /* a run folder that is itself a link */
    snprintf(link, sizeof link, "%s/linked", d.results);
    ck_assert_int_eq(symlink(outside, link), 0);
    tu_call_error(&c, "train", train_with("run_id", "linked"), NC_E_PERMISSION_DENIED);
    nc_client_close(&c);
    assert_victim_intact();
    stop();
}
END_TEST

/* A FIFO (or a folder, or a device) as a corpus or a checkpoint: refused at
 * once, the worker free for the next request. */
START_TEST(non_regular_files_are_refused_at_once) {
    start();
    nc_client c;
    tu_connect(&c, &d);
    char fifo[PATH_MAX + 16];
    ck_assert_int_eq(mkdir(d.checkpoints, 0755), 0);
    snprintf(fifo, sizeof fifo, "%s/fifo.txt", d.checkpoints);
    ck_assert_int_eq(mkfifo(fifo, 0600), 0);
    double t0 = svc_now_ms();
    const char *msg = tu_call_error(&c, "train", train_with("data", fifo), NC_E_BAD_REQUEST);
    ck_assert_msg(strstr(msg, "not a regular file"), "%s", msg);
    tu_call_error(&c, "checkpoint", ckpt("load", "fifo.txt"), NC_E_BAD_REQUEST);
    tu_call_error(&c, "train", train_with("data", d.checkpoints), NC_E_BAD_REQUEST);
    ck_assert_double_lt(svc_now_ms() - t0, 1000);
    json_t *st = tu_call(&c, "status", NULL);
    ck_assert_str_eq(json_string_value(json_object_get(st, "state")), "idle");
    json_decref(st);
    json_decref(tu_call(&c, "train", svc_bigram(2, 2))); /* the worker is free */
    nc_client_close(&c);
    ck_assert_int_eq(tu_daemon_stop(&d), 0); /* SIGTERM stops it at once */
    stop();
}
END_TEST

/* The default corpus's folder can be read, not written: the corpus itself
 * cannot be overwritten by a save, an export or a run's checkpoint. */
START_TEST(the_corpus_folder_is_read_only) {
    start();
    nc_client c;
    tu_connect(&c, &d);
    char corpus[PATH_MAX + 32], other[PATH_MAX + 32];
    snprintf(corpus, sizeof corpus, "%s/data/corpus.txt", d.dir);
    snprintf(other, sizeof other, "%s/data/x.ckpt", d.dir);
    size_t before_len, after_len;
    char *before = tu_read_file(corpus, &before_len);
    ck_assert_ptr_nonnull(before);
    json_decref(tu_call(&c, "train", svc_bigram(2, 2))); /* it reads the corpus there */
    const char *msg = tu_call_error(&c, "checkpoint", ckpt("save", corpus), NC_E_PERMISSION_DENIED);
    ck_assert_msg(strstr(msg, "may write"), "%s", msg);
    tu_call_error(&c, "checkpoint", ckpt("export", other), NC_E_PERMISSION_DENIED);
    tu_call_error(&c, "train", train_with("checkpoint", other), NC_E_PERMISSION_DENIED);
    char *after = tu_read_file(corpus, &after_len);
    ck_assert_uint_eq(before_len, after_len);
    ck_assert_mem_eq(before, after, before_len);
    ck_assert_int_ne(access(other, F_OK), 0);
    free(before);
    free(after);
    nc_client_close(&c);
    stop();
}
END_TEST

/* --allow-dir on the corpus's folder makes it writable: the operator's call. */
START_TEST(the_operator_may_allow_writes_to_the_corpus_folder) {
    char data[PATH_MAX];
    tu_tmpdir(data, sizeof data, "allowdata"); /* svc_spawn's corpus folder is made below its own */
    start_with((const char *const[]){"--allow-dir", data, NULL});
    nc_client c;
    tu_connect(&c, &d);
    char corpus[PATH_MAX + 16], saved[PATH_MAX + 16];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", data);
    snprintf(saved, sizeof saved, "%s/x.ckpt", data);
    tu_write_text(corpus, TU_CORPUS_TEXT, 40);
    json_decref(tu_call(&c, "train", train_with("data", corpus)));
    json_decref(tu_call(&c, "checkpoint", ckpt("save", saved)));
    ck_assert(is_regular(saved));
    nc_client_close(&c);
    stop();
    tu_rmtree(data);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_files");
    tu_tcase(s, "files", a_refused_path_is_never_remembered, writes_never_follow_planted_symlinks,
             non_regular_files_are_refused_at_once, the_corpus_folder_is_read_only,
             the_operator_may_allow_writes_to_the_corpus_folder);
    return tu_run(s);
}
