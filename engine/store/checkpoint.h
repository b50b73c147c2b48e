/* checkpoint.h: full checkpoints (format in checkpoint_file.c), the
 * checkpoint command (checkpoint.c) and weight interchange with upstream
 * nanochat (safetensors, upstream names; weights.c). Paths here are
 * resolved and confined already (nc_engine_checkpoint_path). */
#ifndef NC_CHECKPOINT_H
#define NC_CHECKPOINT_H

#include "engine/engine.h"

#define NC_CHECKPOINT_VERSION 3

/* What a checkpoint file holds, read and checked: the model it describes (r:
 * config, vocabulary, style, data stream, run id; no model built), the step
 * its state has seen, and its tensors (weights and optimizer state). */
typedef struct nc_checkpoint {
    nc_resident r;
    int64_t step;
    nc_tensor_list tensors;
} nc_checkpoint;

int nc_checkpoint_write(const nc_resident *r, const char *path, nc_error *err);
/* Builds a new resident model from the file, every field checked first;
 * `out` is cleared on failure. */
int nc_checkpoint_read(nc_engine *e, const char *path, nc_resident *out, nc_error *err);
/* Loads r's own checkpoint file (r->checkpoint) back into its model: weights,
 * optimizer state, data stream and step. The file must hold the same model. */
int nc_checkpoint_reload(nc_engine *e, nc_resident *r, nc_error *err);
/* Everything a checkpoint's bytes say, checked (checksum, every header field,
 * the tensors against the model the header describes; checkpoint_file.c),
 * into c (nc_checkpoint_free it; on failure there is nothing to free). */
int nc_checkpoint_parse(const uint8_t *buf, size_t len, const char *path, nc_checkpoint *c, nc_error *err);
void nc_checkpoint_free(nc_checkpoint *c);
/* The checksum the prefix of a file of len bytes should hold (bytes 32..39). */
uint64_t nc_checkpoint_checksum(const uint8_t *buf, size_t len);
/* path, bytes, step, mode, kind and run_id from a checkpoint's header alone. */
json_t *nc_checkpoint_describe(const char *path, nc_error *err);
/* The tensors `in` are exactly those a model of cfg and vocabulary V exports
 * (ops->state_spec: names and shapes, with the optimizer's state when
 * `optimizer`), each once, all finite; CheckpointCorrupt otherwise. Nothing
 * is built or changed, so a file can be refused before it costs anything. */
int nc_state_check(const nc_model_ops *ops, const nc_model_cfg *cfg, int V, const nc_tensor_list *in, bool optimizer,
                   nc_error *err);

/* Writes r to path (resolved and confined for writing again, now) and makes
 * it r's default checkpoint. */
int nc_resident_save(nc_engine *e, nc_resident *r, const char *path, nc_error *err);

/* The resident model's weights as safetensors with upstream's names, and back
 * (the file's tensors checked whole before the model changes). */
json_t *nc_weights_export(nc_engine *e, const char *path, nc_error *err);
json_t *nc_weights_import(nc_engine *e, const char *path, nc_error *err);

#endif
