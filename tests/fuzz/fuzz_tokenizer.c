/* fuzz_tokenizer.c: a libFuzzer target over the tokenizer.json reader (the
 * file `tokenize --tokenizer` takes from a client's folder) and the encoder:
 * anything that parses encodes a fixed text (valid and invalid UTF-8) into
 * ids inside its vocabulary whose bytes are pieces of the repaired text, in
 * order; a failure is BadRequest or UnsupportedVersion. Built with NC_FUZZ=ON (clang);
 * scripts/fuzz.sh runs it. */
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TEXT[] = "ROMEO: Wherefore art thou?\r\n  \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x91\x8d \xff\xe0\x80 12345 don't";

/* The ids are tokens, and their bytes, in order, are pieces of the repaired
 * text in order (the whole of it when the pattern matches everything, as
 * upstream's does; a pattern that skips characters drops them, as tiktoken's
 * find_iter does): a subsequence of it. */
static void check_pieces(const nc_bpe *t, const int32_t *ids, size_t n) {
    size_t want_len, at = 0;
    char *want = nc_utf8_repair(TEXT, sizeof TEXT - 1, &want_len);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *b = nc_bpe_bytes(t, ids[i], &len);
        if (!b || ids[i] >= nc_bpe_vocab(t)) abort();
        for (size_t k = 0; k < len; k++, at++) {
            while (at < want_len && (uint8_t)want[at] != b[k]) at++;
            if (at == want_len) abort();
        }
    }
    free(want);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nc_error err;
    nc_bpe *t = nc_bpe_parse((const char *)data, size, &err);
    if (!t) {
        if (err.code != NC_E_BAD_REQUEST && err.code != NC_E_UNSUPPORTED_VERSION) abort();
        return 0;
    }
    int32_t *ids = NULL;
    size_t n = 0, cap = 0;
    if (nc_bpe_encode(t, TEXT, sizeof TEXT - 1, &ids, &n, &cap, NULL, &err) == 0) check_pieces(t, ids, n);
    free(ids);
    nc_bpe_free(t);
    return 0;
}
