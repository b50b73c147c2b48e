/* vocab.h: the character vocabulary: tokens are the Unicode code points of
 * a UTF-8 text, the vocabulary is the sorted set of them (token id = rank). */
#ifndef NC_VOCAB_H
#define NC_VOCAB_H

#include "utf8.h"

/* The most distinct characters a corpus (or a checkpoint's vocabulary) may have. */
#define NC_MAX_VOCAB 65536

typedef struct nc_vocab {
    int size;
    uint32_t *cps; /* (size) code points, ascending */
} nc_vocab;

int nc_vocab_init(nc_vocab *v, const uint32_t *cps, size_t n);
void nc_vocab_free(nc_vocab *v);
int nc_vocab_copy(nc_vocab *dst, const nc_vocab *src);
int nc_vocab_id(const nc_vocab *v, uint32_t cp); /* -1 if absent */
/* The ids of UTF-8 text (len bytes), appended to *ids (*count of them, *cap
 * allocated; realloc'd), as nc_bpe_encode appends; UnknownCharacter names
 * the first character not in v (*count then unchanged). */
int nc_encode(const nc_vocab *v, const char *text, size_t len, int32_t **ids, size_t *count, size_t *cap,
              nc_error *err);

#endif
