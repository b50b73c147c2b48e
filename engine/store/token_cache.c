/* token_cache.c: a text file's BPE tokens, made once (token_cache.h). */
#include "token_cache.h"
#include "files.h"
#include "shards.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void nc_token_cache_path(const char *results, const char *text, size_t len, const nc_tokenizer *t,
                         char out[PATH_MAX]) {
    uint8_t h[NC_TOKENIZER_HASH_BYTES];
    char text_hex[NC_TOKENIZER_HASH_HEX], tok_hex[NC_TOKENIZER_HASH_HEX];
    nc_sha256(text, len, h);
    nc_hash_hex(h, text_hex);
    nc_tokenizer_hash(t, h);
    nc_hash_hex(h, tok_hex);
    snprintf(out, PATH_MAX, "%s/token-cache/%s-%.16s.tokens", results, text_hex, tok_hex);
}

int32_t *nc_token_cache_read(const char *path, const nc_tokenizer *t, size_t max, size_t *n) {
    nc_error ignored;
    nc_shard s = {.fd = -1};
    int64_t size;
    uint8_t want[NC_TOKENIZER_HASH_BYTES];
    nc_tokenizer_hash(t, want);
    snprintf(s.name, sizeof s.name, "%s", strrchr(path, '/') + 1);
    if (nc_open_regular(path, INT64_MAX, "token cache", &s.fd, &size, &ignored)) return NULL;
    int32_t *ids = NULL;
    struct stat st; /* the daemon's own file, which no one else may have written */
    bool own = fstat(s.fd, &st) == 0 && st.st_uid == geteuid() && (st.st_mode & 022) == 0;
    if (own && nc_shard_header(&s, size, want, &ignored) == 0 && s.count > 0 && s.count <= max) {
        nc_tokens all = {.shards = &s, .n_shards = 1, .n = s.count, .vocab = nc_tokenizer_size(t)};
        ids = malloc(s.count * sizeof *ids);
        if (ids && nc_tokens_read(&all, 0, s.count, ids, &ignored)) {
            free(ids);
            ids = NULL;
        }
    }
    close(s.fd);
    *n = ids ? s.count : 0;
    return ids;
}

typedef struct shard_out {
    const nc_tokenizer *t;
    const int32_t *ids;
    size_t n;
} shard_out;

static int write_shard(int fd, void *ctx) {
    const shard_out *o = ctx;
    return nc_shard_write(fd, o->t, o->ids, o->n);
}

int nc_token_cache_write(const char *path, const nc_tokenizer *t, const int32_t *ids, size_t n) {
    nc_error ignored;
    char folder[PATH_MAX];
    snprintf(folder, sizeof folder, "%.*s", (int)(strrchr(path, '/') - path), path);
    shard_out o = {t, ids, n};
    if (nc_make_folder(folder, false, &ignored) < 0) return -1;
    return nc_write_file(path, write_shard, &o, &ignored) ? -1 : 0;
}
