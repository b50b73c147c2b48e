/* tokenizer.h: what turns a model's text into token ids and back: the
 * characters of its corpus (vocab.h: token id = the rank of a code point) or
 * a byte-level BPE as upstream's (bpe.h: a tokenizer.json). The engine keeps
 * one with the resident model, its corpus and its checkpoints; models see
 * only its size. */
#ifndef NC_TOKENIZER_H
#define NC_TOKENIZER_H

#include "bpe.h"
#include "vocab.h"

#include <stdbool.h>

typedef struct nc_tokenizer {
    nc_vocab chars; /* the characters (size 0 with a BPE) */
    nc_bpe *bpe;    /* the BPE, or NULL */
    char *json;     /* the BPE's tokenizer.json as read (what a checkpoint keeps), json_len bytes */
    size_t json_len;
} nc_tokenizer;

/* A BPE tokenizer from the content of a tokenizer.json (BadRequest naming the field). */
int nc_tokenizer_bpe(nc_tokenizer *t, const char *json, size_t len, nc_error *err);
int nc_tokenizer_copy(nc_tokenizer *dst, const nc_tokenizer *src);
void nc_tokenizer_free(nc_tokenizer *t);
/* The same tokenizer: the same characters, or the same tokenizer.json content. */
bool nc_tokenizer_equal(const nc_tokenizer *a, const nc_tokenizer *b);

/* The SHA-256 of a BPE's tokenizer.json as read: what token shards carry
 * to name the tokenizer that made them. */
#define NC_TOKENIZER_HASH_BYTES 32
#define NC_TOKENIZER_HASH_HEX (2 * NC_TOKENIZER_HASH_BYTES + 1)
void nc_tokenizer_hash(const nc_tokenizer *t, uint8_t out[NC_TOKENIZER_HASH_BYTES]);
/* SHA-256 of n bytes; a digest in lowercase hex, NUL-terminated. */
void nc_sha256(const void *data, size_t n, uint8_t out[NC_TOKENIZER_HASH_BYTES]);
void nc_hash_hex(const uint8_t h[NC_TOKENIZER_HASH_BYTES], char out[NC_TOKENIZER_HASH_HEX]);

int nc_tokenizer_size(const nc_tokenizer *t);
int nc_tokenizer_longest(const nc_tokenizer *t); /* bytes of its longest token (a character: 4) */
const char *nc_tokenizer_kind(const nc_tokenizer *t); /* "characters" | "bpe" */
/* The ids of text (n bytes), appended to *ids (*count of them, *cap
 * allocated; realloc'd): characters fail with UnknownCharacter (or
 * BadRequest on invalid UTF-8); a BPE encodes as tiktoken's encode_ordinary
 * (nc_bpe_encode: stop may cancel it). */
int nc_tokenizer_encode(const nc_tokenizer *t, const char *text, size_t n, int32_t **ids, size_t *count,
                        size_t *cap, const nc_stop *stop, nc_error *err);
/* The bytes token id stands for (in the tokenizer, or in buf for a
 * character); NULL outside the vocabulary. */
const uint8_t *nc_tokenizer_bytes(const nc_tokenizer *t, int id, uint8_t buf[4], size_t *len);
/* The bytes id counts for bits per byte: a character's UTF-8 length; a BPE
 * token's token_bytes (0 for special tokens, which upstream's evaluate_bpb
 * leaves out). */
int nc_tokenizer_byte_count(const nc_tokenizer *t, int id);
/* The bytes of ids (n of them), NUL-terminated and malloc'd, *len without the
 * NUL. With a BPE they may end inside a UTF-8 character, or hold invalid
 * UTF-8 (a model can put any tokens in any order). */
char *nc_tokenizer_decode(const nc_tokenizer *t, const int32_t *ids, size_t n, size_t *len);

#endif
