/* fuzz_checkpoint.c: a libFuzzer target over the checkpoint reader, as a
 * forger would attack it: the input's checksum is set right before it is
 * read, so every mutation reaches the header's fields and the tensors (a
 * checksum catches accidents, not forgery). Whatever parses must describe a
 * model the registry knows, with a vocabulary and a step inside their
 * bounds. Built with NC_FUZZ=ON (clang); scripts/fuzz.sh runs it. */
#include "checkpoint.h"

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
    nc_resident r = {0};
    nc_tensor_list tl = {0};
    nc_error err;
    if (nc_checkpoint_parse(buf, size, "fuzz.ckpt", &r, &tl, &err) == 0) {
        if (!r.ops || r.vocab.size < 1 || r.vocab.size > NC_MAX_VOCAB || r.step < 0 || r.step > r.cfg.steps) abort();
    } else if (err.code != NC_E_CHECKPOINT_CORRUPT && err.code != NC_E_UNSUPPORTED_VERSION && err.code != NC_E_INTERNAL) {
        abort();
    }
    nc_tensors_free(&tl);
    nc_resident_clear(&r);
    free(buf);
    return 0;
}
