/* fuzz_tokenizer.c: a libFuzzer target over the tokenizer.json reader (the
 * file `tokenize --tokenizer` takes from a client's folder) and the encoder:
 * anything that parses encodes a fixed text (valid and invalid UTF-8) into
 * ids inside its vocabulary whose bytes make the repaired text again; a
 * failure is BadRequest or UnsupportedVersion. Built with NC_FUZZ=ON (clang);
 * scripts/fuzz.sh runs it. */
#include "tokenizer/bpe.h"
#include "tokenizer/utf8.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char TEXT[] = "ROMEO: Wherefore art thou?\r\n  \xe4\xbd\xa0\xe5\xa5\xbd \xf0\x9f\x91\x8d \xff\xe0\x80 12345 don't";

/* The ids' bytes, concatenated, are the repaired text. */
static void check_round_trip(const nc_bpe *t, const int32_t *ids, size_t n) {
    size_t want_len, at = 0;
    char *want = nc_utf8_repair(TEXT, sizeof TEXT - 1, &want_len);
    for (size_t i = 0; i < n; i++) {
        size_t len;
        const uint8_t *b = nc_bpe_bytes(t, ids[i], &len);
        if (!b || at + len > want_len || memcmp(want + at, b, len) != 0) abort();
        at += len;
    }
    if (at != want_len) abort();
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
    if (nc_bpe_encode(t, TEXT, sizeof TEXT - 1, &ids, &n, &cap, &err) == 0) check_round_trip(t, ids, n);
    free(ids);
    nc_bpe_free(t);
    return 0;
}
