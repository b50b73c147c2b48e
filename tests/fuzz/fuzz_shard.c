/* fuzz_shard.c: a libFuzzer target over a token shard's header and ids (a
 * file in a folder a client names for `train --data`, or in the token
 * cache): a header that passes says exactly the file's size, and every id
 * read is inside the vocabulary; anything else is refused with BadRequest or
 * UnsupportedVersion. The shard's tokenizer hash is SHA-256("fuzz") (the
 * seed corpus holds a valid shard). Built with NC_FUZZ=ON (clang);
 * scripts/fuzz.sh runs it. */
#define _GNU_SOURCE
#include "engine/store/shards.h"

#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define VOCAB 1000

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t want[NC_TOKENIZER_HASH_BYTES];
    nc_sha256("fuzz", 4, want);
    nc_shard s = {.fd = memfd_create("shard", 0), .name = "fuzz.tokens"};
    if (s.fd < 0 || write(s.fd, data, size) != (ssize_t)size) abort();
    nc_error err;
    if (nc_shard_header(&s, (int64_t)size, want, &err) == 0) {
        if (s.offset + (int64_t)(s.count * (size_t)s.width) != (int64_t)size) abort();
        nc_tokens all = {.shards = &s, .n_shards = 1, .n = s.count, .vocab = VOCAB};
        int32_t *ids = malloc((s.count ? s.count : 1) * sizeof *ids);
        if (nc_tokens_read(&all, 0, s.count, ids, &err) == 0) {
            for (size_t i = 0; i < s.count; i++)
                if (ids[i] < 0 || ids[i] >= VOCAB) abort();
        } else if (err.code != NC_E_BAD_REQUEST) {
            abort();
        }
        free(ids);
    } else if (err.code != NC_E_BAD_REQUEST && err.code != NC_E_UNSUPPORTED_VERSION) {
        abort();
    }
    close(s.fd);
    return 0;
}
