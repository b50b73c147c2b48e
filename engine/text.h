/* text.h: the corpus, its character vocabulary, encode/decode, the split and
 * the styles.
 *
 * Tokens are Unicode code points of the UTF-8 corpus; the vocabulary is the
 * sorted set of code points of the whole text (token id = rank). The first
 * 90% of the base corpus trains, the last 10% validates; a style may append
 * text to the training part. */
#ifndef NC_TEXT_H
#define NC_TEXT_H

#include "nc.h"

#include <stddef.h>
#include <stdint.h>

/* The most distinct characters a corpus (or a checkpoint's vocabulary) may have. */
#define NC_MAX_VOCAB 65536

typedef struct nc_vocab {
    int size;
    uint32_t *cps; /* (size) code points, ascending */
} nc_vocab;

typedef struct nc_corpus {
    nc_vocab vocab;
    int32_t *train;    /* (n_train) token ids */
    size_t n_train;
    int32_t *val;      /* (n_val) token ids */
    size_t n_val;
    uint8_t *style_only; /* (vocab.size) 1 where only the style's text has the character */
    char path[NC_ARG_STR_MAX];
    nc_style style;
} nc_corpus;

/* The futuristic style's built-in corpus: code points tiny Shakespeare lacks. */
const char *nc_style_text(nc_style style);

/* The corpus of UTF-8 `text` (len bytes) read from `path` (kept as its name). */
int nc_corpus_load(nc_corpus *c, const char *text, size_t len, const char *path, nc_style style, nc_error *err);
void nc_corpus_free(nc_corpus *c);

/* Decodes UTF-8 into code points; fails with BadRequest on invalid UTF-8. */
int nc_utf8_decode(const char *s, size_t len, uint32_t **out, size_t *n, nc_error *err);
/* Bytes of the UTF-8 encoding of cp (1..4). */
int nc_utf8_len(uint32_t cp);
/* Appends the UTF-8 encoding of cp to buf (needs 4 bytes); returns its length. */
int nc_utf8_put(char *buf, uint32_t cp);

int nc_vocab_init(nc_vocab *v, const uint32_t *cps, size_t n);
void nc_vocab_free(nc_vocab *v);
int nc_vocab_copy(nc_vocab *dst, const nc_vocab *src);
int nc_vocab_id(const nc_vocab *v, uint32_t cp); /* -1 if absent */
/* BadRequest unless a model's vocabulary is exactly that of the corpus at path. */
int nc_vocab_check(const nc_vocab *model, const nc_vocab *corpus, const char *path, nc_error *err);
/* UTF-8 text to ids; UnknownCharacter names the first character not in v. */
int nc_encode(const nc_vocab *v, const char *text, int32_t **ids, size_t *n, nc_error *err);
/* ids to a NUL-terminated UTF-8 string (malloc'd). */
char *nc_decode(const nc_vocab *v, const int32_t *ids, size_t n);

#endif
