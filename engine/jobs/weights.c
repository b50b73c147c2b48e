/* weights.c: the resident model's weights as safetensors (for the GPT with
 * upstream nanochat's state_dict names, so either side can load the other's;
 * the metadata names the tokenizer: its kind and, for a BPE, the SHA-256 of
 * its tokenizer.json, which the config's tokenizer folder holds). */
#include "engine/store/checkpoint.h"
#include "engine/store/safetensors.h"

json_t *nc_weights_export(nc_engine *e, const char *path, nc_error *err) {
    nc_resident *r = &e->res;
    nc_tensor_list tl = {0};
    if (r->ops->export_state(r->model, false, &tl, err)) {
        nc_tensors_free(&tl);
        return NULL;
    }
    json_t *cfg = nc_args_to_json(nc_command_find("train"), &r->cfg);
    char *config = json_dumps(cfg, JSON_COMPACT);
    json_decref(cfg);
    json_t *meta = json_pack("{s:s, s:s, s:s, s:s, s:s}", "format", "nanochat-c weights", "mode",
                             nc_mode_names[r->ops->mode], "kind", nc_kind_names[r->ops->kind], "config",
                             config ? config : "{}", "tokenizer", nc_tokenizer_kind(&r->tok));
    free(config);
    if (r->tok.bpe) {
        uint8_t h[NC_TOKENIZER_HASH_BYTES];
        char hex[NC_TOKENIZER_HASH_HEX];
        nc_tokenizer_hash(&r->tok, h);
        nc_hash_hex(h, hex);
        json_object_set_new(meta, "tokenizer_sha256", json_string(hex));
    }
    int rc = nc_safetensors_save(path, &tl, meta, err);
    int count = tl.count;
    json_decref(meta);
    nc_tensors_free(&tl);
    if (rc) return NULL;
    return json_pack("{s:s, s:i, s:I, s:I}", "path", path, "tensors", count, "params",
                     (json_int_t)r->ops->num_params(r->model), "step", (json_int_t)nc_resident_step(r));
}

/* The file's tensors must be exactly the model's weights, all finite, before
 * any of them replaces one: a refused import leaves the model as it was. */
json_t *nc_weights_import(nc_engine *e, const char *path, nc_error *err) {
    nc_resident *r = &e->res;
    nc_tensor_list tl = {0};
    if (nc_safetensors_load(path, e->limits.host_bytes, &tl, NULL, err)) return NULL;
    nc_error why;
    int rc = nc_state_check(r->ops, &r->cfg.model, nc_tokenizer_size(&r->tok), &tl, false, &why) ||
                     r->ops->import_state(r->model, &tl, false, 0, &why) ? -1 : 0;
    int count = tl.count;
    nc_tensors_free(&tl);
    if (rc) {
        nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "%s does not fit the resident %s model: %s", path, nc_kind_names[r->ops->kind], why.message);
        return NULL;
    }
    r->dirty = true;
    return json_pack("{s:s, s:i}", "path", path, "tensors", count);
}
