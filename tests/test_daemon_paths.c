/* test_daemon_paths.c: the paths in requests (data, checkpoint, resume, the
 * checkpoint command's path, run_id) stay inside the folders nanochatd was
 * given (--allow-dir, the results and checkpoint dirs, the default corpus's
 * dir). Absolute paths, "..", new subfolders and symlinked folders that lead
 * outside get PermissionDenied and create nothing there; a file written
 * where a symlink stands replaces the link (a dangling one too) and creates
 * nothing where it pointed; paths inside work. */
#define _GNU_SOURCE
#include "svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static tu_daemon d;
static char allowed[PATH_MAX], outside[PATH_MAX];
static char valid_outside[PATH_MAX + 16]; /* a good checkpoint, but outside */

static void copy_file(const char *from, const char *to, size_t max) {
    size_t n;
    char *text = tu_read_file(from, &n);
    ck_assert_ptr_nonnull(text);
    FILE *f = fopen(to, "wb");
    fwrite(text, 1, n < max ? n : max, f);
    fclose(f);
    free(text);
}

static void start(void) {
    tu_tmpdir(allowed, sizeof allowed, "allowed");
    tu_tmpdir(outside, sizeof outside, "outside");
    svc_start(&d, (const char *const[]){"--allow-dir", allowed, NULL});
    nc_client c;
    tu_connect(&c, &d);
    json_t *res = tu_call(&c, "train", svc_bigram(3, 3));
    snprintf(valid_outside, sizeof valid_outside, "%s/valid.ckpt", outside);
    copy_file(json_string_value(json_object_get(res, "checkpoint")), valid_outside, SIZE_MAX);
    json_decref(res);
    nc_client_close(&c);
    char corpus[PATH_MAX + 16];
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", allowed);
    copy_file(NC_SOURCE_DIR "/data/tinyshakespeare.txt", corpus, 20000);
    snprintf(corpus, sizeof corpus, "%s/corpus.txt", outside);
    copy_file(NC_SOURCE_DIR "/data/tinyshakespeare.txt", corpus, 20000);
}

static void stop(void) {
    tu_daemon_cleanup(&d);
    tu_rmtree(allowed);
    tu_rmtree(outside);
}

static void link_in_checkpoints(const char *name, const char *target) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", d.checkpoints, name);
    ck_assert_int_eq(symlink(target, path), 0);
}

static json_t *ckpt(const char *action, const char *path) {
    return json_pack("{s:s, s:s}", "action", action, "path", path);
}

static void denied(nc_client *c, const char *cmd, json_t *args) {
    tu_call_error(c, cmd, args, NC_E_PERMISSION_DENIED);
}

static json_t *train_with(const char *key, const char *value) {
    json_t *a = svc_bigram(2, 2);
    json_object_set_new(a, key, json_string(value));
    return a;
}

static int entries(const char *dir) {
    char out[4096];
    return svc_run((const char *const[]){"ls", "-A", dir, NULL}, out, sizeof out) == 0 ? (int)strlen(out) : -1;
}

START_TEST(writes_outside_are_refused_and_create_nothing) {
    nc_client c;
    tu_connect(&c, &d);
    char path[PATH_MAX + 32];
    int before = entries(outside);
    snprintf(path, sizeof path, "%s/x.ckpt", outside);
    const char *msg = tu_call_error(&c, "checkpoint", ckpt("save", path), NC_E_PERMISSION_DENIED);
    ck_assert_msg(strstr(msg, "outside the folders"), "%s", msg);
    denied(&c, "checkpoint", ckpt("save", "../escape.ckpt"));
    denied(&c, "checkpoint", ckpt("save", "new/../../escape.ckpt"));
    link_in_checkpoints("linkdir", outside);
    denied(&c, "checkpoint", ckpt("save", "linkdir/x.ckpt"));
    snprintf(path, sizeof path, "%s/created-by-dangling", outside);
    link_in_checkpoints("dangling.ckpt", path);
    json_decref(tu_call(&c, "checkpoint", ckpt("save", "dangling.ckpt"))); /* replaces the link, follows nothing */
    snprintf(path, sizeof path, "%s/dangling.ckpt", d.checkpoints);
    struct stat st;
    ck_assert(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
    snprintf(path, sizeof path, "%s/w.safetensors", outside);
    denied(&c, "checkpoint", ckpt("export", path));
    snprintf(path, sizeof path, "%s/run.ckpt", outside);
    denied(&c, "train", train_with("checkpoint", path));
    tu_call_error(&c, "train", train_with("run_id", "../../escaped"), NC_E_BAD_REQUEST);
    ck_assert_int_eq(entries(outside), before);
    nc_client_close(&c);
}
END_TEST

START_TEST(reads_outside_are_refused) {
    nc_client c;
    tu_connect(&c, &d);
    denied(&c, "train", train_with("data", "/etc/passwd"));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/corpus.txt", outside);
    denied(&c, "train", train_with("data", path));
    link_in_checkpoints("corpus-link.txt", path);
    denied(&c, "train", train_with("data", "corpus-link.txt")); /* relative: the daemon's cwd, outside */
    snprintf(path, sizeof path, "%s/corpus-link.txt", d.checkpoints);
    denied(&c, "train", train_with("data", path));
    denied(&c, "checkpoint", ckpt("load", valid_outside));
    link_in_checkpoints("evil.ckpt", valid_outside);
    denied(&c, "checkpoint", ckpt("load", "evil.ckpt"));
    denied(&c, "train", train_with("resume", valid_outside));
    nc_client_close(&c);
}
END_TEST

START_TEST(paths_inside_work) {
    nc_client c;
    tu_connect(&c, &d);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/corpus.txt", allowed);
    json_decref(tu_call(&c, "train", train_with("data", path)));
    snprintf(path, sizeof path, "%s/here.ckpt", allowed);
    json_decref(tu_call(&c, "checkpoint", ckpt("save", path)));
    json_decref(tu_call(&c, "checkpoint", ckpt("save", "sub/dir/new.ckpt")));
    json_decref(tu_call(&c, "checkpoint", ckpt("load", "sub/dir/../dir/new.ckpt")));
    json_decref(tu_call(&c, "checkpoint", ckpt("load", path)));
    nc_client_close(&c);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_paths");
    TCase *tc = tu_tcase(s, "confinement", writes_outside_are_refused_and_create_nothing, reads_outside_are_refused,
                         paths_inside_work);
    tcase_add_unchecked_fixture(tc, start, stop);
    return tu_run(s);
}
