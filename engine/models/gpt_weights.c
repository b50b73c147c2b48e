/* gpt_weights.c: weights as safetensors under upstream's names, so that
 * upstream's GPT.load_state_dict reads ours and we read its. */
#include "gpt_internal.h"

#include "../safetensors.h"

#include <stdlib.h>

/* safetensors metadata values are strings: the config travels as JSON text */
static json_t *config_metadata(const nc_model *m) {
    json_t *config = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:s}", "sequence_len", m->g.seq_len, "vocab_size",
                               m->g.vocab, "n_layer", m->g.n_layer, "n_head", m->g.n_head, "n_kv_head", m->g.n_head,
                               "n_embd", m->g.n_embd, "window_pattern", m->cfg.window_pattern);
    char *text = json_dumps(config, JSON_COMPACT | JSON_SORT_KEYS);
    json_t *meta = json_pack("{s:s, s:s, s:s}", "format", "nanochat-c gpt weights", "upstream_commit",
                             "92d63d4e8bb4df75c3b71618f31ddde2378b2bcd", "model_config", text ? text : "{}");
    free(text);
    json_decref(config);
    return meta;
}

int nc_gpt_save_weights(nc_model *m, const char *path, nc_error *err) {
    nc_tensor_list l = {0};
    json_t *meta = config_metadata(m);
    int rc = gpt_export(m, m->params, "", &l, err);
    if (rc == 0) rc = nc_safetensors_save(path, &l, meta, err);
    json_decref(meta);
    nc_tensors_free(&l);
    return rc;
}

int nc_gpt_load_weights(nc_model *m, const char *path, nc_error *err) {
    nc_tensor_list l = {0};
    int rc = nc_safetensors_load(path, INT64_MAX, &l, NULL, err);
    if (rc == 0) rc = nc_tensor_gpt_ops.import_state(m, &l, false, err);
    nc_tensors_free(&l);
    return rc;
}
