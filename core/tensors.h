/* tensors.h: named float32 tensors in host memory, in lists: what models
 * export and import, and what checkpoints and safetensors files hold. */
#ifndef NC_TENSORS_H
#define NC_TENSORS_H

#include "error.h"

#include <stdbool.h>
#include <stdint.h>

/* A named tensor in host memory (float32, row-major). */
typedef struct nc_tensor {
    char name[128];
    int ndim;
    int64_t shape[4];
    float *data; /* owned by the list; NULL in a spec (state_spec) */
} nc_tensor;

typedef struct nc_tensor_list {
    nc_tensor *items;
    int count, cap;
} nc_tensor_list;

/* nc_tensors_add allocates the (zeroed) data; NULL when
 * out of memory (the list is unchanged). */
nc_tensor *nc_tensors_add(nc_tensor_list *l, const char *name, int ndim, const int64_t *shape);
/* A spec entry: name and shape, no data. */
int nc_tensors_declare(nc_tensor_list *l, const char *name, int ndim, const int64_t *shape);
/* nc_tensors_add with a copy of src; Internal when out of memory. */
int nc_tensors_put(nc_tensor_list *l, const char *name, int ndim, const int64_t *shape, const float *src,
                   nc_error *err);
/* Removes the tensor named `name` (freeing its data); false when absent. */
bool nc_tensors_remove(nc_tensor_list *l, const char *name);
const nc_tensor *nc_tensors_get(const nc_tensor_list *l, const char *name);
int64_t nc_tensor_numel(const nc_tensor *t);
void nc_tensors_free(nc_tensor_list *l);
/* Copies `src` into the tensor named `name`, checking its shape. */
int nc_tensors_take(const nc_tensor_list *l, const char *name, int ndim, const int64_t *shape,
                    float *dst, nc_error *err);

#endif
