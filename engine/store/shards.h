/* shards.h: token shards (README "Token shards"), as scripts/prepare_data.py
 * writes them: a folder of files named *.tokens, taken in name order; the
 * last one validates, the others train (upstream's dataset keeps its last
 * parquet shard for validation).
 *
 * A shard is a 64-byte header, then `count` token ids, little-endian:
 *    0   8  magic "NCTOKENS"
 *    8   4  u32 version: 1
 *   12   4  u32 bytes a token: 2 (uint16) or 4 (uint32, vocabularies over 65,536)
 *   16   8  u64 count
 *   24  32  SHA-256 of the tokenizer.json whose ids these are
 *   56   8  zero
 * and the file is exactly 64 + count * width bytes long. Shards are read a
 * window at a time (tokens.h), never loaded. Dot-files are not shards; a
 * *.tokens name longer than 63 bytes is refused. */
#ifndef NC_SHARDS_H
#define NC_SHARDS_H

#include "engine/nc.h"
#include "files.h"
#include "tokens.h"
#include "tokenizer/tokenizer.h"

#define NC_SHARD_HEADER_BYTES 64

typedef struct nc_shard_set {
    nc_shard *shards; /* (n) in name order */
    nc_file_id *ids;  /* (n) each one's inode, size and mtime when opened */
    int n;
} nc_shard_set;

/* Opens the shards of a resolved folder (no symlink followed, regular files
 * only) made with tokenizer tok, and reads every id once (a sparse file's
 * holes excepted: zeros), so that a bad one is refused before anything uses
 * the corpus. BadRequest naming the file for a header that is not a
 * shard's, a size that does not match it, another tokenizer's hash, an id
 * outside its vocabulary, fewer than 2 shards or more than NC_MAX_SHARDS;
 * UnsupportedVersion for another version. */
int nc_shards_open(nc_shard_set *s, const char *folder, const nc_tokenizer *tok, nc_error *err);
void nc_shards_close(nc_shard_set *s);
/* False when a shard changed since it was opened (written in place, or
 * replaced under its name in the resolved folder): the corpus must be
 * opened again. */
bool nc_shards_current(const nc_shard_set *s, const char *folder);

/* A shard's 64 header bytes: width (2 or 4), count, the tokenizer's hash. */
void nc_shard_header_bytes(uint8_t h[NC_SHARD_HEADER_BYTES], int width, uint64_t count,
                           const uint8_t hash[NC_TOKENIZER_HASH_BYTES]);
/* Writes a whole shard of ids (n) made with tokenizer t to fd: uint16 ids,
 * uint32 above 65,536 tokens; 0 or an errno. */
int nc_shard_write(int fd, const nc_tokenizer *t, const int32_t *ids, size_t n);
/* The header of shard s (its fd and name set; the file size bytes) checked
 * against a tokenizer's hash (the errors of nc_shards_open); sets its
 * width, count and offset. */
int nc_shard_header(nc_shard *s, int64_t size, const uint8_t want[NC_TOKENIZER_HASH_BYTES], nc_error *err);

/* The tokens of shards [first, first + count). */
nc_tokens nc_shards_tokens(const nc_shard_set *s, int first, int count, int vocab);

#endif
