/* fuzz_safetensors.c: a libFuzzer target over the safetensors reader (the
 * weights `checkpoint import` takes from a client's file): anything that
 * parses holds tensors whose data matches their shapes, and a failure is
 * CheckpointCorrupt with the list left as it was. Built with NC_FUZZ=ON
 * (clang); scripts/fuzz.sh runs it. */
#include "engine/store/safetensors.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nc_tensor_list l = {0};
    json_t *meta = NULL;
    nc_error err;
    if (nc_safetensors_parse(data, size, &l, &meta, &err) == 0) {
        for (int i = 0; i < l.count; i++) { /* every tensor's data is as long as its shape says */
            size_t bytes = sizeof(float) * (size_t)nc_tensor_numel(&l.items[i]);
            void *copy = malloc(bytes + 1);
            memcpy(copy, l.items[i].data, bytes);
            free(copy);
        }
        if (!json_is_object(meta)) abort();
    } else if (err.code != NC_E_CHECKPOINT_CORRUPT || l.count != 0) {
        abort();
    }
    json_decref(meta);
    nc_tensors_free(&l);
    return 0;
}
