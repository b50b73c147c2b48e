/* corpus.h: a corpus: its tokens, its split and its style. The tokens are
 * its characters (the vocabulary made from the text) or a BPE's; with a BPE
 * the text is one document, so its tokens begin with <|bos|> as upstream's
 * dataloader begins every document. The first 90% of the base corpus's
 * tokens train, the last 10% validate; a style appends its text (another
 * document) to the training part. */
#ifndef NC_CORPUS_H
#define NC_CORPUS_H

#include "api.h"
#include "tokenizer/tokenizer.h"

#define NC_MAX_TOKENIZER_BYTES (4 << 20) /* a tokenizer.json (65,536 tokens: about 1 MB); parsed, several times that */

typedef struct nc_corpus {
    nc_tokenizer tok;
    int32_t *train;    /* (n_train) token ids */
    size_t n_train;
    int32_t *val;      /* (n_val) token ids */
    size_t n_val;
    uint8_t *style_only; /* characters: (vocabulary) 1 where only the style's text has it; a BPE: NULL */
    char path[NC_ARG_STR_MAX];
    nc_style style;
} nc_corpus;

/* The futuristic style's built-in corpus: code points tiny Shakespeare lacks. */
const char *nc_style_text(nc_style style);

/* The corpus of UTF-8 `text` (len bytes) read from `path` (kept as its name),
 * in its characters, or in the tokens of bpe (copied) when not NULL (stop
 * may cancel that encoding; NULL: never). */
int nc_corpus_load(nc_corpus *c, const char *text, size_t len, const char *path, nc_style style,
                   const nc_tokenizer *bpe, const nc_stop *stop, nc_error *err);
void nc_corpus_free(nc_corpus *c);

#endif
