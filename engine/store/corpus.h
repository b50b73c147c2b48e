/* corpus.h: a corpus: its character vocabulary, its split and its style.
 * The first 90% of the base corpus trains, the last 10% validates; a style
 * may append text to the training part. */
#ifndef NC_CORPUS_H
#define NC_CORPUS_H

#include "api.h"
#include "tokenizer/vocab.h"

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

#endif
