/* checkpoint.h: full checkpoints (format in checkpoint.c) and weight
 * interchange with upstream nanochat (safetensors, upstream names). */
#ifndef NC_CHECKPOINT_H
#define NC_CHECKPOINT_H

#include "engine.h"

#define NC_CHECKPOINT_VERSION 1

int nc_checkpoint_write(const nc_resident *r, const char *path, nc_error *err);
/* Builds a new resident model from the file; `out` is untouched on failure. */
int nc_checkpoint_read(nc_engine *e, const char *path, nc_resident *out, nc_error *err);
/* Loads r's own checkpoint file (r->checkpoint) back into its model: weights,
 * optimizer state, data stream and step. The file must hold the same model. */
int nc_checkpoint_reload(nc_resident *r, nc_error *err);
/* Writes the resident model to path and makes it its default checkpoint. */
int nc_resident_save(nc_resident *r, const char *path, nc_error *err);

/* The resident model's weights as safetensors with upstream's names, and back. */
json_t *nc_weights_export(nc_engine *e, const char *path, nc_error *err);
json_t *nc_weights_import(nc_engine *e, const char *path, nc_error *err);

#endif
