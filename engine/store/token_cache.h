/* token_cache.h: a text file's BPE tokens, made once. Under a BPE (and no
 * style) a text corpus's tokens (<|bos|>, then the text's) are kept in the
 * results folder as token-cache/<text>-<tokenizer>.tokens, named by the
 * SHA-256 of the text's bytes and the first 16 hex digits of the
 * tokenizer.json's (the header holds the whole of that one), in the token
 * shard format (shards.h). Loading the same
 * text under the same tokenizer again reads them instead of encoding (28
 * MB/s); a file there that is not that tokenizer's shard, holds an id
 * outside its vocabulary, is not the daemon's own or may be written by
 * others, is ignored and made again. Nothing removes old ones. */
#ifndef NC_TOKEN_CACHE_H
#define NC_TOKEN_CACHE_H

#include "tokenizer/tokenizer.h"

#include <limits.h>

/* The cache file for text (len bytes) under t, in the resolved results folder. */
void nc_token_cache_path(const char *results, const char *text, size_t len, const nc_tokenizer *t,
                         char out[PATH_MAX]);
/* Its ids (malloc'd, *n of them), or NULL when it is absent or unusable,
 * or holds more than max (a text of len bytes has at most 3 len + 1 tokens:
 * an invalid byte becomes U+FFFD's three, and <|bos|>; so a forged file
 * cannot make the daemon allocate more than the text would). */
int32_t *nc_token_cache_read(const char *path, const nc_tokenizer *t, size_t max, size_t *n);
/* Writes ids (n) there (the folder made if missing; atomically); 0 or -1. */
int nc_token_cache_write(const char *path, const nc_tokenizer *t, const int32_t *ids, size_t n);

#endif
