/* bpe.h: upstream nanochat's byte-level BPE tokenizer (rustbpe-trained, run
 * by tiktoken), from the one file scripts/tokenizer.py writes
 * (DIR/tokenizer.json: README, "Tokenizers").
 *
 * Encoding is tiktoken's encode_ordinary: the text is split by the file's
 * regex (PCRE2, UTF and Unicode properties, JIT-compiled), each piece is one
 * token when its bytes are one, else its bytes are merged pair by pair, the
 * pair whose concatenation has the lowest rank first (the leftmost of equal
 * ranks). Special tokens are never produced by encoding.
 *
 * Text that is not valid UTF-8 is first repaired as Python's
 * bytes.decode("utf-8", errors="replace") does (nc_utf8_repair): each maximal
 * invalid subsequence becomes U+FFFD. */
#ifndef NC_BPE_H
#define NC_BPE_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NC_BPE_MAX_VOCAB 65536   /* ids fit uint16 token shards (upstream pads to 64) */
#define NC_BPE_MAX_TOKEN 1024    /* bytes of the longest mergeable token */
#define NC_BPE_MAX_PATTERN 4096  /* bytes of the split pattern (upstream's: 107) */

typedef struct nc_bpe nc_bpe;

/* The tokenizer in json (len bytes, the content of a tokenizer.json), every
 * field checked: BadRequest says which is wrong. */
nc_bpe *nc_bpe_parse(const char *json, size_t len, nc_error *err);
void nc_bpe_free(nc_bpe *t);

int nc_bpe_vocab(const nc_bpe *t); /* mergeable and special tokens */
int nc_bpe_longest(const nc_bpe *t); /* bytes of its longest token */
int nc_bpe_special(const nc_bpe *t, const char *name); /* its id, or -1 */
/* The bytes token id stands for (a special token: its name); NULL outside the vocabulary. */
const uint8_t *nc_bpe_bytes(const nc_bpe *t, int id, size_t *len);
/* The bytes id counts for bits per byte (0 for special tokens). */
int nc_bpe_token_bytes(const nc_bpe *t, int id);

/* What a long encoding polls (every NC_BPE_POLL_S seconds, between matches):
 * fn(ctx) true stops it. */
typedef struct nc_stop {
    bool (*fn)(void *ctx);
    void *ctx;
} nc_stop;
#define NC_BPE_POLL_S 0.05

/* Appends the ids of text (n bytes) to *ids (*count of them, *cap allocated;
 * realloc'd as needed). Matching runs under PCRE2 limits (match steps, 16 MiB
 * of heap, depth), so a forged pattern fails with BadRequest instead of
 * backtracking without end or taking the machine's memory; `stop` (NULL:
 * never) makes a long encoding Cancelled. Fails when out of memory too. */
int nc_bpe_encode(const nc_bpe *t, const char *text, size_t n, int32_t **ids, size_t *count, size_t *cap,
                  const nc_stop *stop, nc_error *err);

#endif
