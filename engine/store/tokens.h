/* tokens.h: a sequence of token ids a corpus trains or validates on: in
 * memory (a text's tokens), or in token shards read a window at a time
 * (shards.h), so that memory does not grow with the data. */
#ifndef NC_TOKENS_H
#define NC_TOKENS_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

/* One shard's tokens: an open file, its data from offset on. */
typedef struct nc_shard {
    int fd;
    int width;       /* bytes a token: 2 (uint16) or 4 (uint32), little-endian */
    size_t count;    /* tokens */
    int64_t offset;  /* of the first token in the file */
    char name[64];   /* the file's name, for messages */
} nc_shard;

typedef struct nc_tokens {
    const int32_t *ids;      /* (n) in memory, or NULL: */
    const nc_shard *shards;  /* (n_shards) one after another, n tokens in all */
    int n_shards;
    size_t n;
    int vocab;               /* shards: every id read is below it */
} nc_tokens;

/* tokens [start, start + count) into out; a shard that cannot be read, or
 * holds an id outside the vocabulary, fails with BadRequest naming it. */
int nc_tokens_read(const nc_tokens *t, size_t start, size_t count, int32_t *out, nc_error *err);

/* A window: inputs x (T) from start, targets y (T) one token on. */
int nc_tokens_window(const nc_tokens *t, size_t start, int T, int32_t *x, int32_t *y, nc_error *err);

#endif
