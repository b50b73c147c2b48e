/* test_shards.c: training on a folder of token shards (engine/store/shards.h).
 * The shards scripts/prepare_data.py made of a text file (its <|bos|>
 * document, 90% in four training shards, 10% in the validation shard)
 * train exactly as the text does, loss for loss; forged shards are refused
 * naming the file, and the resident model stays (an id outside the
 * vocabulary deep in a training shard too: every id is read when the shards
 * open); a shard written in place after it was opened is opened again, and
 * refused, and one cut shorter than a window refuses eval and a resume; memory does not grow with the data: a 4 GB shard set (sparse
 * files) peaks within 10% of a 40 MB one. A text's BPE tokens are made
 * once: kept in the results folder's token cache and read from there when
 * the text is loaded again; a cache file that is no shard of that
 * tokenizer is made again. */
#define _GNU_SOURCE
#include "trainutil.h"
#include "engine/engine.h"
#include "engine/store/token_cache.h"

#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define TOK NC_FIXTURE_DIR "/bpe"
/* scripts/prepare_data.py --tokenizer TOK --text corpus.txt --shard-tokens 300,
 * corpus.txt being trainutil's corpus (TU_CORPUS_TEXT 60 times) */
#define SHARDS NC_FIXTURE_DIR "/shards"

static json_t *args_on(const char *data, const char *run_id, int steps) {
    json_t *a = tu_train_args("tensor", "gpt", steps, data);
    json_object_update_new(a, json_pack("{s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:s}", "tokenizer", TOK, "device", "cpu",
                                        "depth", 1, "head_dim", 32, "seq_len", 32, "batch_size", 4, "seed", 3, "run_id",
                                        run_id));
    return a;
}

/* The SHA-256 of the fixture tokenizer.json, as shards carry it. */
static void fixture_hash(uint8_t out[NC_TOKENIZER_HASH_BYTES]) {
    size_t len;
    char *json = tu_read_file(TOK "/tokenizer.json", &len);
    nc_tokenizer t;
    nc_error err;
    ck_assert_msg(json && nc_tokenizer_bpe(&t, json, len, &err) == 0, "fixture tokenizer");
    nc_tokenizer_hash(&t, out);
    nc_tokenizer_free(&t);
    free(json);
}

/* dir/name: a uint16 shard of ids (n of them). */
static void write_shard(const char *dir, const char *name, const int32_t *ids, size_t n, const uint8_t *hash) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    ck_assert_ptr_nonnull(f);
    uint8_t h[64];
    nc_shard_header_bytes(h, 2, n, hash);
    fwrite(h, 1, sizeof h, f);
    for (size_t i = 0; i < n; i++) fputc(ids[i] & 0xff, f), fputc(ids[i] >> 8, f);
    fclose(f);
}

/* dir/name: a sparse shard of count zeros (token 0), taking no disk. */
static void write_sparse_shard(const char *dir, const char *name, uint64_t count, const uint8_t *hash) {
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
    uint8_t h[64];
    nc_shard_header_bytes(h, 2, count, hash);
    ck_assert(fd >= 0 && write(fd, h, sizeof h) == (ssize_t)sizeof h && ftruncate(fd, (off_t)(64 + 2 * count)) == 0);
    close(fd);
}

static void make_folder(char *out, size_t n, const tu_engine *t, const char *name) {
    snprintf(out, n, "%s/%s", t->dir, name);
    ck_assert(mkdir(out, 0755) == 0);
}

START_TEST(shards_of_a_texts_tokens_train_as_the_text_does) {
    tu_engine t;
    tu_engine_open(&t, "shards", 0, 0);
    json_t *text_run = tu_engine_call(&t, "train", args_on(t.corpus, "text", 12));
    json_t *shard_run = tu_engine_call(&t, "train", args_on(SHARDS, "shards", 12));
    char *a = tu_run_losses(t.results, "text"), *b = tu_run_losses(t.results, "shards");
    ck_assert_str_eq(a, b); /* the same windows, the same losses, bit for bit */
    ck_assert_double_eq(tu_num(text_run, "final_val_loss"), tu_num(shard_run, "final_val_loss"));
    free(a), free(b);
    json_decref(text_run), json_decref(shard_run);
    nc_error err = {0};
    const nc_corpus *c = nc_resident_corpus(t.e, &t.e->res, NULL, &err);
    ck_assert_msg(c, "%s", err.message);
    ck_assert_int_eq(c->shards.n, 5);
    ck_assert_int_eq(c->train.n, 1080);
    ck_assert_int_eq(c->val.n, 121);
    /* eval after the run reads the validation shard again */
    json_decref(tu_engine_call(&t, "eval", json_pack("{s:i}", "windows", 4)));
    tu_engine_close(&t);
}
END_TEST

START_TEST(a_shard_written_in_place_is_opened_again) {
    tu_engine t;
    tu_engine_open(&t, "shardstale", 0, 0);
    char dir[PATH_MAX], cmd[3 * PATH_MAX];
    make_folder(dir, sizeof dir, &t, "data");
    snprintf(cmd, sizeof cmd, "cp %s/*.tokens %s/", SHARDS, dir);
    ck_assert(system(cmd) == 0);
    json_decref(tu_engine_call(&t, "train", args_on(dir, "stale", 2)));
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/shard_00004.tokens", dir);
    FILE *f = fopen(path, "r+b"); /* the same inode and size: only its bytes and mtime change */
    ck_assert_ptr_nonnull(f);
    fseek(f, 24, SEEK_SET);
    fputc(0xff, f); /* another tokenizer's hash */
    fclose(f);
    struct timespec later[2] = {{.tv_nsec = UTIME_NOW}, {.tv_sec = 2000000000}};
    ck_assert(utimensat(AT_FDCWD, path, later, 0) == 0); /* past the file system's mtime granularity */
    nc_error err = {0};
    ck_assert_ptr_null(tu_engine_try(t.e, "eval", json_pack("{s:i}", "windows", 4), NULL, &err));
    ck_assert_msg(err.code == NC_E_BAD_REQUEST && strstr(err.message, "shard_00004.tokens was made by another tokenizer"),
                  "%s: %s", nc_code_name(err.code), err.message);
    ck_assert_int_eq(nc_resident_step(&t.e->res), 2);

    /* a validation shard too short for the model's context: eval and a resume are refused */
    uint8_t hash[NC_TOKENIZER_HASH_BYTES];
    fixture_hash(hash);
    int32_t few[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    char ckpt[PATH_MAX + 32];
    snprintf(ckpt, sizeof ckpt, "%s/stale.ckpt", t.checkpoints);
    json_decref(tu_engine_call(&t, "checkpoint", json_pack("{s:s, s:s}", "action", "save", "path", ckpt)));
    write_shard(dir, "shard_00004.tokens", few, 8, hash);
    ck_assert_ptr_null(tu_engine_try(t.e, "eval", json_pack("{s:i}", "windows", 4), NULL, &err));
    ck_assert_msg(err.code == NC_E_BAD_REQUEST && strstr(err.message, "too long for the corpus"), "%s", err.message);
    json_t *resume = args_on(dir, "resumed", 4);
    json_object_set_new(resume, "resume", json_string(ckpt));
    ck_assert_ptr_null(tu_engine_try(t.e, "train", resume, NULL, &err));
    ck_assert_msg(err.code == NC_E_BAD_REQUEST && strstr(err.message, "too long for the corpus"), "%s", err.message);
    ck_assert_int_eq(nc_resident_step(&t.e->res), 2);
    tu_engine_close(&t);
}
END_TEST

/* train on dir is refused with code, the message naming what, and the resident bigram stays. */
static void refused(tu_engine *t, const char *dir, nc_code code, const char *what) {
    nc_error err = {0};
    ck_assert_ptr_null(tu_engine_try(t->e, "train", args_on(dir, "refused", 2), NULL, &err));
    ck_assert_msg(err.code == code, "%s: got %s: %s", what, nc_code_name(err.code), err.message);
    ck_assert_msg(strstr(err.message, what), "'%s' not in: %s", what, err.message);
    ck_assert_str_eq(nc_tokenizer_kind(&t->e->res.tok), "characters");
    ck_assert_int_eq(nc_resident_step(&t->e->res), 2);
}

START_TEST(forged_shards_are_refused_naming_the_file) {
    tu_engine t;
    tu_engine_open(&t, "shardbad", 0, 0);
    json_decref(tu_engine_call(&t, "train", tu_train_args("tensor", "bigram", 2, t.corpus)));
    uint8_t hash[NC_TOKENIZER_HASH_BYTES], other[NC_TOKENIZER_HASH_BYTES];
    fixture_hash(hash);
    memcpy(other, hash, sizeof other);
    other[5] ^= 1;
    int32_t ids[4096];
    for (int i = 0; i < 4096; i++) ids[i] = i % 256;
    char dir[PATH_MAX], path[PATH_MAX + 64];

    make_folder(dir, sizeof dir, &t, "one");
    write_shard(dir, "a.tokens", ids, 4096, hash);
    refused(&t, dir, NC_E_BAD_REQUEST, "holds 1 token shards");

    make_folder(dir, sizeof dir, &t, "hash");
    write_shard(dir, "a.tokens", ids, 4096, hash);
    write_shard(dir, "b.tokens", ids, 4096, other);
    refused(&t, dir, NC_E_BAD_REQUEST, "b.tokens was made by another tokenizer");

    make_folder(dir, sizeof dir, &t, "short");
    write_shard(dir, "a.tokens", ids, 4096, hash);
    write_shard(dir, "b.tokens", ids, 4096, hash);
    snprintf(path, sizeof path, "%s/b.tokens", dir);
    ck_assert(truncate(path, 64 + 2 * 4000) == 0);
    refused(&t, dir, NC_E_BAD_REQUEST, "b.tokens: 8064 bytes do not hold the 4096 tokens");

    make_folder(dir, sizeof dir, &t, "magic");
    write_shard(dir, "a.tokens", ids, 4096, hash);
    tu_write_text(strcat(strcpy(path, dir), "/b.tokens"), "not a shard at all, but long enough for a header....", 4);
    refused(&t, dir, NC_E_BAD_REQUEST, "b.tokens is not a token shard");

    make_folder(dir, sizeof dir, &t, "link");
    write_shard(dir, "a.tokens", ids, 4096, hash);
    write_shard(t.dir, "elsewhere.tokens", ids, 4096, hash);
    snprintf(path, sizeof path, "%s/b.tokens", dir);
    char target[PATH_MAX + 64];
    snprintf(target, sizeof target, "%s/elsewhere.tokens", t.dir);
    ck_assert(symlink(target, path) == 0);
    refused(&t, dir, NC_E_PERMISSION_DENIED, "b.tokens");

    make_folder(dir, sizeof dir, &t, "long");
    write_shard(dir, "a.tokens", ids, 4096, hash);
    write_shard(dir, "b_validation_shard_with_a_name_longer_than_the_sixty_three_bytes_kept.tokens", ids, 4096, hash);
    refused(&t, dir, NC_E_BAD_REQUEST, "a token shard's name is at most 63 bytes");

    make_folder(dir, sizeof dir, &t, "vocab"); /* every id is read when the shards open, before the model changes */
    write_shard(dir, "b.tokens", ids, 4096, hash);
    ids[4000] = 5000; /* the fixture tokenizer has 1,024 tokens */
    write_shard(dir, "a.tokens", ids, 4096, hash);
    refused(&t, dir, NC_E_BAD_REQUEST, "a.tokens holds id 5000 at token 4000");
    tu_engine_close(&t);
}
END_TEST

/* The peak RSS an 8-step run on count training tokens reports in run.json,
 * the run in a process of its own (a process's peak only grows). */
static double peak_rss_on(tu_engine *t, const char *name, uint64_t count, const uint8_t *hash) {
    char dir[PATH_MAX];
    make_folder(dir, sizeof dir, t, name);
    write_sparse_shard(dir, "shard_00000.tokens", count, hash);
    write_sparse_shard(dir, "shard_00001.tokens", count / 8, hash);
    pid_t pid = fork();
    if (pid == 0) {
        nc_error err;
        json_t *res = tu_engine_try(t->e, "train", args_on(dir, name, 8), NULL, &err);
        _exit(res ? 0 : 1);
    }
    int status;
    ck_assert(pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char path[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/%s/run.json", t->results, name);
    json_t *run = json_load_file(path, 0, NULL);
    ck_assert_ptr_nonnull(run);
    ck_assert_int_eq(json_integer_value(json_object_get(run, "train_tokens")), count);
    double rss = tu_num(run, "peak_host_rss_bytes");
    json_decref(run);
    return rss;
}

START_TEST(memory_does_not_grow_with_the_shards) {
    tu_engine t;
    tu_engine_open(&t, "shardmem", 0, 0);
    uint8_t hash[NC_TOKENIZER_HASH_BYTES];
    fixture_hash(hash);
    double small = peak_rss_on(&t, "mb40", 20000000, hash), large = peak_rss_on(&t, "gb4", 2000000000, hash);
    ck_assert_msg(large <= 1.1 * small, "peak RSS %.0f MB on 4 GB of shards, %.0f MB on 40 MB", large / 1e6, small / 1e6);
    tu_engine_close(&t);
}
END_TEST

/* The corpus of the engine's resident model, loaded again (the text's mtime moved). */
static const nc_corpus *reloaded(tu_engine *t) {
    static time_t moved = 1000000;
    struct timespec times[2] = {{.tv_nsec = UTIME_NOW}, {.tv_sec = moved++}};
    ck_assert(utimensat(AT_FDCWD, t->corpus, times, 0) == 0);
    nc_error err = {0};
    const nc_corpus *c = nc_resident_corpus(t->e, &t->e->res, NULL, &err);
    ck_assert_msg(c, "%s", err.message);
    return c;
}

START_TEST(a_texts_tokens_are_made_once) {
    tu_engine t;
    tu_engine_open(&t, "tokcache", 0, 0);
    json_decref(tu_engine_call(&t, "train", args_on(t.corpus, "cached", 2)));
    size_t len, n;
    char *text = tu_read_file(t.corpus, &len), path[PATH_MAX], results[PATH_MAX];
    ck_assert_ptr_nonnull(realpath(t.results, results));
    nc_token_cache_path(results, text, len, &t.e->res.tok, path);
    free(text);
    const nc_corpus *c = reloaded(&t);
    size_t all = c->train.n + c->val.n;
    int32_t *ids = nc_token_cache_read(path, &t.e->res.tok, 3 * len + 1, &n); /* what the first load wrote */
    ck_assert_ptr_nonnull(ids);
    ck_assert_uint_eq(n, all);
    ck_assert(memcmp(ids, c->ids, n * sizeof *ids) == 0);
    for (size_t i = 0; i < n; i++) ids[i] = 7; /* the cache, forged: a reload reads it */
    ck_assert_int_eq(nc_token_cache_write(path, &t.e->res.tok, ids, n), 0);
    free(ids);
    c = reloaded(&t);
    ck_assert_int_eq(c->train.ids[0], 7);
    ck_assert_int_eq(c->val.ids[c->val.n - 1], 7);
    tu_write_text(path, "not a shard, and long enough to hold a shard's header; not a shard at all", 2);
    c = reloaded(&t); /* ignored: made again from the text, <|bos|> first, and written again */
    ck_assert_int_eq(c->train.ids[0], nc_bpe_special(c->tok.bpe, "<|bos|>"));
    ids = nc_token_cache_read(path, &t.e->res.tok, 3 * len + 1, &n);
    ck_assert(ids && n == all && ids[0] == c->train.ids[0]);
    ck_assert_ptr_null(nc_token_cache_read(path, &t.e->res.tok, n - 1, &n)); /* more than the text can hold */
    free(ids);
    tu_engine_close(&t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("shards");
    tu_tcase(s, "shards", shards_of_a_texts_tokens_train_as_the_text_does, forged_shards_are_refused_naming_the_file,
             a_shard_written_in_place_is_opened_again,
             memory_does_not_grow_with_the_shards, a_texts_tokens_are_made_once);
    return tu_run(s);
}
