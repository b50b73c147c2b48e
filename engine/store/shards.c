/* shards.c: a folder of token shards opened and checked (shards.h). */
#define _GNU_SOURCE
#include "shards.h"
#include "files.h"
#include "core/memory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char MAGIC[8] = {'N', 'C', 'T', 'O', 'K', 'E', 'N', 'S'};
static const char SUFFIX[] = ".tokens";

static uint64_t le(const uint8_t *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

typedef char shard_name[sizeof ((nc_shard *)0)->name];

static int is_shard_name(const char *name) {
    size_t n = strlen(name), k = sizeof SUFFIX - 1;
    return n > k && n < sizeof(shard_name) && strcmp(name + n - k, SUFFIX) == 0 && name[0] != '.';
}

static int by_name(const void *a, const void *b) { return strcmp(a, b); }

void nc_shard_header_bytes(uint8_t h[NC_SHARD_HEADER_BYTES], int width, uint64_t count,
                           const uint8_t hash[NC_TOKENIZER_HASH_BYTES]) {
    memset(h, 0, NC_SHARD_HEADER_BYTES);
    memcpy(h, MAGIC, sizeof MAGIC);
    h[8] = 1;
    h[12] = (uint8_t)width;
    for (int i = 0; i < 8; i++) h[16 + i] = (uint8_t)(count >> (8 * i));
    memcpy(h + 24, hash, NC_TOKENIZER_HASH_BYTES);
}

int nc_shard_header(nc_shard *s, int64_t size, const uint8_t want[NC_TOKENIZER_HASH_BYTES], nc_error *err) {
    uint8_t h[NC_SHARD_HEADER_BYTES];
    if (pread(s->fd, h, sizeof h, 0) != (ssize_t)sizeof h || memcmp(h, MAGIC, sizeof MAGIC) != 0)
        return nc_fail(err, NC_E_BAD_REQUEST, "%s is not a token shard (no NCTOKENS header)", s->name);
    uint64_t version = le(h + 8, 4), width = le(h + 12, 4), count = le(h + 16, 8);
    if (version != 1)
        return nc_fail(err, NC_E_UNSUPPORTED_VERSION, "token shard %s has version %llu; this nanochatd reads 1", s->name,
                       (unsigned long long)version);
    if (width != 2 && width != 4)
        return nc_fail(err, NC_E_BAD_REQUEST, "token shard %s: %llu bytes a token (2 or 4)", s->name, (unsigned long long)width);
    if (le(h + 56, 8) != 0 || count > (uint64_t)(size - NC_SHARD_HEADER_BYTES) / width ||
        (int64_t)(NC_SHARD_HEADER_BYTES + count * width) != size)
        return nc_fail(err, NC_E_BAD_REQUEST, "token shard %s: %lld bytes do not hold the %llu tokens its header says",
                       s->name, (long long)size, (unsigned long long)count);
    if (memcmp(h + 24, want, NC_TOKENIZER_HASH_BYTES) != 0) {
        char theirs[NC_TOKENIZER_HASH_HEX], ours[NC_TOKENIZER_HASH_HEX];
        nc_hash_hex(h + 24, theirs);
        nc_hash_hex(want, ours);
        return nc_fail(err, NC_E_BAD_REQUEST,
                       "token shard %s was made by another tokenizer (sha256 %.16s...) than this one (%.16s...)", s->name,
                       theirs, ours);
    }
    s->width = (int)width;
    s->count = (size_t)count;
    s->offset = NC_SHARD_HEADER_BYTES;
    return 0;
}

static int open_shard(int dir, const char *folder, const char *name, const uint8_t *want, nc_shard *s, nc_error *err) {
    snprintf(s->name, sizeof s->name, "%s", name);
    s->fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    if (s->fd < 0)
        return nc_fail(err, errno == ELOOP ? NC_E_PERMISSION_DENIED : NC_E_IO, "cannot open token shard %s/%s: %s%s", folder,
                       name, strerror(errno), errno == ELOOP ? " (nanochatd does not follow symlinks)" : "");
    struct stat st;
    if (fstat(s->fd, &st) < 0 || !S_ISREG(st.st_mode))
        return nc_fail(err, NC_E_BAD_REQUEST, "token shard %s/%s is not a regular file", folder, name);
    fcntl(s->fd, F_SETFL, fcntl(s->fd, F_GETFL) & ~O_NONBLOCK);
    return nc_shard_header(s, (int64_t)st.st_size, want, err);
}

/* The shard names of the open folder dir, sorted (malloc'd; *n of them). */
static shard_name *shard_names(int dir, const char *folder, int *n, nc_error *err) {
    DIR *d = fdopendir(dup(dir));
    if (!d) {
        nc_fail(err, NC_E_IO, "cannot list %s: %s", folder, strerror(errno));
        return NULL;
    }
    shard_name *names = nc_xcalloc(NC_MAX_SHARDS + 1, sizeof *names);
    *n = 0;
    for (struct dirent *e; (e = readdir(d)) && *n <= NC_MAX_SHARDS;)
        if (is_shard_name(e->d_name)) snprintf(names[(*n)++], sizeof *names, "%s", e->d_name);
    closedir(d);
    qsort(names, (size_t)*n, sizeof *names, by_name);
    return names;
}

int nc_shards_open(nc_shard_set *s, const char *folder, const nc_tokenizer *tok, nc_error *err) {
    *s = (nc_shard_set){0};
    uint8_t want[NC_TOKENIZER_HASH_BYTES];
    nc_tokenizer_hash(tok, want);
    int dir = nc_open_folder(folder, err), n = 0, rc = -1;
    shard_name *names = dir >= 0 ? shard_names(dir, folder, &n, err) : NULL;
    if (!names) goto out;
    if (n < 2 || n > NC_MAX_SHARDS) {
        nc_fail(err, NC_E_BAD_REQUEST, "%s holds %s%d token shards (*.tokens); a corpus takes 2 to %d (the last validates)",
                folder, n > NC_MAX_SHARDS ? "more than " : "", n > NC_MAX_SHARDS ? NC_MAX_SHARDS : n, NC_MAX_SHARDS);
        goto out;
    }
    s->shards = nc_xcalloc((size_t)n, sizeof *s->shards);
    for (rc = 0; s->n < n && rc == 0; s->n++) rc = open_shard(dir, folder, names[s->n], want, &s->shards[s->n], err);
out:
    free(names);
    if (dir >= 0) close(dir);
    if (rc) nc_shards_close(s);
    return rc;
}

void nc_shards_close(nc_shard_set *s) {
    for (int i = 0; i < s->n; i++)
        if (s->shards[i].fd >= 0) close(s->shards[i].fd);
    free(s->shards);
    *s = (nc_shard_set){0};
}

nc_tokens nc_shards_tokens(const nc_shard_set *s, int first, int count, int vocab) {
    nc_tokens t = {.shards = s->shards + first, .n_shards = count, .vocab = vocab};
    for (int i = first; i < first + count; i++) t.n += s->shards[i].count;
    return t;
}
