/* tokens.c: reading a window of a corpus's tokens, from memory or shards. */
#include "tokens.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

enum { CHUNK = 4096 }; /* tokens a read: the scratch on the stack */

/* count tokens from a shard's token `at` (all within it) into out. */
static int read_shard(const nc_shard *s, size_t at, size_t count, int vocab, int32_t *out, nc_error *err) {
    uint8_t raw[CHUNK * 4];
    for (size_t done = 0; done < count;) {
        size_t k = count - done < CHUNK ? count - done : CHUNK, bytes = k * (size_t)s->width;
        off_t pos = (off_t)(s->offset + (int64_t)((at + done) * (size_t)s->width));
        ssize_t got = pread(s->fd, raw, bytes, pos);
        if (got < 0 && errno == EINTR) continue;
        if (got != (ssize_t)bytes)
            return nc_fail(err, NC_E_BAD_REQUEST, "token shard %s cannot be read at token %zu (%s)", s->name,
                           at + done, got < 0 ? strerror(errno) : "it is shorter than its header says");
        for (size_t i = 0; i < k; i++) {
            const uint8_t *p = raw + i * (size_t)s->width;
            uint32_t id = s->width == 2 ? (uint32_t)(p[0] | p[1] << 8)
                                        : (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
            if (id >= (uint32_t)vocab)
                return nc_fail(err, NC_E_BAD_REQUEST, "token shard %s holds id %u at token %zu, outside the tokenizer's %d",
                               s->name, id, at + done + i, vocab);
            out[done + i] = (int32_t)id;
        }
        done += k;
    }
    return 0;
}

int nc_tokens_read(const nc_tokens *t, size_t start, size_t count, int32_t *out, nc_error *err) {
    if (start > t->n || count > t->n - start)
        return nc_fail(err, NC_E_INTERNAL, "tokens [%zu, +%zu) past the %zu there are", start, count, t->n);
    if (t->ids) {
        memcpy(out, t->ids + start, count * sizeof *out);
        return 0;
    }
    for (int i = 0; i < t->n_shards && count > 0; i++) {
        const nc_shard *s = &t->shards[i];
        if (start >= s->count) {
            start -= s->count;
            continue;
        }
        size_t k = s->count - start < count ? s->count - start : count;
        if (read_shard(s, start, k, t->vocab, out, err)) return -1;
        out += k;
        count -= k;
        start = 0;
    }
    return 0;
}

int nc_tokens_window(const nc_tokens *t, size_t start, int T, int32_t *x, int32_t *y, nc_error *err) {
    if (nc_tokens_read(t, start, (size_t)T, x, err) || nc_tokens_read(t, start + (size_t)T, 1, y + T - 1, err)) return -1;
    memcpy(y, x + 1, (size_t)(T - 1) * sizeof *y); /* the T - 1 tokens both hold, read once */
    return 0;
}
