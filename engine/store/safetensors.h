/* safetensors.h: read and write the safetensors format (Hugging Face), the
 * project's weight interchange format and the fixtures' container.
 *
 * A file is an 8-byte little-endian header length, a JSON header mapping each
 * tensor name to {dtype, shape, data_offsets} (plus an optional "__metadata__"
 * object of strings), then the raw little-endian data. Tensors are written as
 * F32; F32, F64, F16 and BF16 are read and converted to f32. */
#ifndef NC_SAFETENSORS_H
#define NC_SAFETENSORS_H

#include "models/model.h"

/* Writes the tensors of l (in order) and metadata (a JSON object whose values
 * are strings; NULL for none) to a resolved path (files.h: atomically,
 * never through a symlink). */
int nc_safetensors_save(const char *path, const nc_tensor_list *l, json_t *metadata, nc_error *err);

/* Appends every tensor of the file's bytes to out (nc_tensors_free it) and,
 * when metadata is not NULL, returns the "__metadata__" object (new
 * reference, an empty object when absent). CheckpointCorrupt for anything
 * malformed (at most 65,536 tensors, a 100 MB header); out is unchanged on
 * failure. */
int nc_safetensors_parse(const unsigned char *buf, size_t len, nc_tensor_list *out, json_t **metadata, nc_error *err);
/* nc_safetensors_parse of a file (a regular file of at most max_bytes, files.h);
 * NotFound / Io / BadRequest for a file that cannot be read. */
int nc_safetensors_load(const char *path, int64_t max_bytes, nc_tensor_list *out, json_t **metadata, nc_error *err);

#endif
