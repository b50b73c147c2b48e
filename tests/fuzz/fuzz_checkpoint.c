/* fuzz_checkpoint.c: a libFuzzer target over the checkpoint reader, as a
 * forger would attack it: the input's checksum is set right before it is
 * read, so every mutation reaches the header's fields and the tensors (a
 * checksum catches accidents, not forgery). Whatever parses must describe a
 * model the registry knows, with a vocabulary and a step inside their
 * bounds. Built with NC_FUZZ=ON (clang); scripts/fuzz.sh runs it. */
#include "engine/store/checkpoint.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    if (size >= 40) {
        uint64_t sum = nc_checkpoint_checksum(buf, size);
        memcpy(buf + 32, &sum, 8);
    }
    nc_checkpoint c;
    nc_error err;
    if (nc_checkpoint_parse(buf, size, "fuzz.ckpt", &c, &err) == 0) {
        const nc_resident *r = &c.r;
        if (!r->ops || nc_tokenizer_size(&r->tok) < 1 || nc_tokenizer_size(&r->tok) > NC_MAX_VOCAB || c.step < 0 || c.step > r->cfg.steps) abort();
        nc_checkpoint_free(&c);
    } else if (err.code != NC_E_CHECKPOINT_CORRUPT && err.code != NC_E_UNSUPPORTED_VERSION && err.code != NC_E_INTERNAL) {
        abort();
    }
    free(buf);
    return 0;
}
