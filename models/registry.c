/* registry.c: the (mode, kind) pairs the engine can train. */
#include "model.h"

#include <string.h>

extern const nc_model_ops nc_scalar_bigram_ops;
extern const nc_model_ops nc_scalar_minigpt_ops;
extern const nc_model_ops nc_tensor_bigram_ops;
extern const nc_model_ops nc_tensor_gpt_ops;

static const nc_model_ops *const registry[] = {
    &nc_scalar_bigram_ops,
    &nc_scalar_minigpt_ops,
    &nc_tensor_bigram_ops,
    &nc_tensor_gpt_ops,
};

const nc_model_ops *nc_model_find(nc_mode mode, nc_model_kind kind) {
    for (size_t i = 0; i < sizeof registry / sizeof registry[0]; i++)
        if (registry[i]->mode == mode && registry[i]->kind == kind) return registry[i];
    return NULL;
}
