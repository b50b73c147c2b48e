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

/* 1: a shard's name; 0: another file (dot-files included); -1: a *.tokens name too long to keep */
static int is_shard_name(const char *name) {
    size_t n = strlen(name), k = sizeof SUFFIX - 1;
    if (n <= k || strcmp(name + n - k, SUFFIX) != 0 || name[0] == '.') return 0;
    return n < sizeof(shard_name) ? 1 : -1;
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

int nc_shard_write(int fd, const nc_tokenizer *t, const int32_t *ids, size_t n) {
    int width = nc_tokenizer_size(t) <= 65536 ? 2 : 4;
    uint8_t h[NC_SHARD_HEADER_BYTES], hash[NC_TOKENIZER_HASH_BYTES];
    nc_tokenizer_hash(t, hash);
    nc_shard_header_bytes(h, width, n, hash);
    int rc = nc_write_fully(fd, h, sizeof h);
    uint8_t buf[4096 * 4]; /* (4096 ids) little-endian */
    for (size_t i = 0; rc == 0 && i < n;) {
        size_t k = 0;
        for (; i < n && k + (size_t)width <= sizeof buf; i++)
            for (int b = 0; b < width; b++) buf[k++] = (uint8_t)((uint32_t)ids[i] >> (8 * b));
        rc = nc_write_fully(fd, buf, k);
    }
    return rc;
}

int nc_shard_header(nc_shard *s, int64_t size, const uint8_t want[NC_TOKENIZER_HASH_BYTES], nc_error *err) {
    uint8_t h[NC_SHARD_HEADER_BYTES];
    if (size < NC_SHARD_HEADER_BYTES || pread(s->fd, h, sizeof h, 0) != (ssize_t)sizeof h ||
        memcmp(h, MAGIC, sizeof MAGIC) != 0)
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

/* Every id of shard s below vocab, read once in chunks; a hole (sparse
 * file) reads as zeros, token 0, so only the file's data is read.
 * BadRequest naming the first that is not. */
static int check_ids(const nc_shard *s, int vocab, nc_error *err) {
    enum { CHUNK = 1 << 16 };
    nc_tokens one = {.shards = s, .n_shards = 1, .n = s->count, .vocab = vocab};
    int32_t *ids = nc_xmalloc(CHUNK * sizeof *ids); /* (CHUNK) scratch */
    off_t end = (off_t)(s->offset + (int64_t)(s->count * (size_t)s->width));
    int rc = 0;
    for (size_t at = 0; rc == 0 && at < s->count;) {
        off_t pos = (off_t)(s->offset + (int64_t)(at * (size_t)s->width)), data = lseek(s->fd, pos, SEEK_DATA), hole;
        if (data < 0 && errno == ENXIO) break; /* a hole to the end */
        if (data < 0) data = pos, hole = end;  /* no SEEK_DATA here: read it all */
        else if ((hole = lseek(s->fd, data, SEEK_HOLE)) < 0 || hole > end) hole = end;
        size_t w = (size_t)s->width, from = (size_t)(data - s->offset) / w, to = ((size_t)(hole - s->offset) + w - 1) / w;
        if (from < at) from = at; /* tokens [from, to) start in this data; a hole's are zeros */
        size_t k = to - from < CHUNK ? to - from : CHUNK;
        rc = k ? nc_tokens_read(&one, from, k, ids, err) : 0;
        at = from + (k ? k : 1);
    }
    free(ids);
    return rc;
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

/* What tells one version of an open shard from another: its inode, size and mtime. */
static void identify(int fd, nc_file_id *id) {
    struct stat st;
    *id = (nc_file_id){0};
    if (fstat(fd, &st) == 0)
        *id = (nc_file_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (int64_t)st.st_size,
                           (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, false};
}

/* The shard names of the open folder dir, sorted (malloc'd; *n of them). */
static shard_name *shard_names(int dir, const char *folder, int *n, nc_error *err) {
    int fd = dup(dir);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        nc_fail(err, NC_E_IO, "cannot list %s: %s", folder, strerror(errno));
        if (fd >= 0) close(fd);
        return NULL;
    }
    shard_name *names = nc_xcalloc(NC_MAX_SHARDS + 1, sizeof *names);
    *n = 0;
    int kind = 0;
    struct dirent *e;
    for (errno = 0; kind >= 0 && *n <= NC_MAX_SHARDS && (e = readdir(d)); errno = 0)
        if ((kind = is_shard_name(e->d_name)) > 0) snprintf(names[(*n)++], sizeof *names, "%s", e->d_name);
    int listing = errno;
    if (kind < 0) nc_fail(err, NC_E_BAD_REQUEST, "%s: a token shard's name is at most %zu bytes: %.80s...", folder,
                          sizeof(shard_name) - 1, e->d_name);
    else if (listing) nc_fail(err, NC_E_IO, "cannot list %s: %s", folder, strerror(listing));
    closedir(d);
    if (kind < 0 || listing) {
        free(names);
        return NULL;
    }
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
    s->ids = nc_xcalloc((size_t)n, sizeof *s->ids);
    for (rc = 0; s->n < n && rc == 0; s->n++) {
        nc_shard *sh = &s->shards[s->n];
        rc = open_shard(dir, folder, names[s->n], want, sh, err) || check_ids(sh, nc_tokenizer_size(tok), err) ? -1 : 0;
        if (rc == 0) identify(sh->fd, &s->ids[s->n]);
    }
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
    free(s->ids);
    *s = (nc_shard_set){0};
}

bool nc_shards_current(const nc_shard_set *s, const char *folder) {
    for (int i = 0; i < s->n; i++) {
        char path[PATH_MAX + sizeof(shard_name)];
        struct stat st;
        nc_file_id now;
        identify(s->shards[i].fd, &now);
        snprintf(path, sizeof path, "%s/%s", folder, s->shards[i].name);
        if (!nc_file_id_equal(&now, &s->ids[i]) || lstat(path, &st) < 0 || (uint64_t)st.st_ino != now.ino ||
            (uint64_t)st.st_dev != now.dev)
            return false;
    }
    return true;
}

nc_tokens nc_shards_tokens(const nc_shard_set *s, int first, int count, int vocab) {
    nc_tokens t = {.shards = s->shards + first, .n_shards = count, .vocab = vocab};
    for (int i = first; i < first + count; i++) t.n += s->shards[i].count;
    return t;
}
