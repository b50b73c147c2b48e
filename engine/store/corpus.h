/* corpus.h: a corpus: its tokens, its split and its style. A text file's
 * tokens are its characters (the vocabulary made from the text) or a BPE's;
 * with a BPE the text is one document, so its tokens begin with <|bos|> as
 * upstream's dataloader begins every document. The first 90% of the text's
 * tokens train, the last 10% validate; a style appends its text (another
 * document) to the training part. A folder of token shards (shards.h) is
 * in a BPE's tokens already: its last shard validates, the others train. */
#ifndef NC_CORPUS_H
#define NC_CORPUS_H

#include "api.h"
#include "shards.h"
#include "tokenizer/tokenizer.h"

#define NC_MAX_TOKENIZER_BYTES (4 << 20) /* a tokenizer.json (65,536 tokens: about 1 MB); parsed, several times that */

typedef struct nc_corpus {
    nc_tokenizer tok;
    nc_tokens train, val; /* what trains and what validates */
    int32_t *ids;         /* a text's: (train.n + val.n) ids, train's then val's; shards: NULL */
    nc_shard_set shards;  /* a folder's */
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
/* The corpus of a text's BPE tokens already made (ids: n of them, <|bos|>
 * first; taken, freed on failure too), as nc_corpus_load would make them. */
int nc_corpus_from_ids(nc_corpus *c, int32_t *ids, size_t n, const char *path, const nc_tokenizer *bpe, nc_error *err);
/* The corpus of the token shards in a resolved folder (path: its name as
 * given), made with bpe (copied); a style is refused (a style is text). */
int nc_corpus_load_shards(nc_corpus *c, const char *folder, const char *path, nc_style style, const nc_tokenizer *bpe,
                          nc_error *err);
void nc_corpus_free(nc_corpus *c);
/* Windows of seq_len + 1 tokens fit in both splits; BadRequest otherwise
 * (a folder's shards size its splits apart, and may change under a
 * checkpoint that names them). */
int nc_corpus_fits(const nc_corpus *c, int64_t seq_len, nc_error *err);

#endif
