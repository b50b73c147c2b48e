/* safetensors.c: the safetensors reader and writer. */
#include "safetensors.h"
#include "files.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_HEADER (100u << 20) /* the format's own limit */
#define MAX_TENSORS 65536

typedef struct dtype_info {
    const char *name;
    size_t size;
} dtype_info;

static const dtype_info dtypes[] = {{"F32", 4}, {"F64", 8}, {"F16", 2}, {"BF16", 2}};

/* ---- writing ------------------------------------------------------------- */

static json_t *header_json(const nc_tensor_list *l, json_t *metadata) {
    json_t *h = json_object();
    uint64_t offset = 0;
    if (metadata) json_object_set(h, "__metadata__", metadata);
    for (int i = 0; i < l->count; i++) {
        const nc_tensor *t = &l->items[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        uint64_t bytes = (uint64_t)nc_tensor_numel(t) * sizeof(float);
        json_object_set_new(h, t->name, json_pack("{s:s, s:o, s:[I, I]}", "dtype", "F32", "shape", shape,
                                                  "data_offsets", (json_int_t)offset, (json_int_t)(offset + bytes)));
        offset += bytes;
    }
    return h;
}

static void put_u64(unsigned char *b, uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (8 * i));
}

typedef struct st_out {
    const nc_tensor_list *l;
    const char *header;
    size_t len;
} st_out;

/* The length, the header padded with spaces to 8 bytes, then the data. */
static int write_safetensors(int fd, void *ctx) {
    const st_out *o = ctx;
    size_t padded = (o->len + 7) / 8 * 8;
    unsigned char n[8];
    put_u64(n, padded);
    int e = nc_write_fully(fd, n, 8);
    if (!e) e = nc_write_fully(fd, o->header, o->len);
    if (!e) e = nc_write_fully(fd, "        ", padded - o->len);
    for (int i = 0; !e && i < o->l->count; i++)
        e = nc_write_fully(fd, o->l->items[i].data, sizeof(float) * (size_t)nc_tensor_numel(&o->l->items[i]));
    return e;
}

int nc_safetensors_save(const char *path, const nc_tensor_list *l, json_t *metadata, nc_error *err) {
    json_t *h = header_json(l, metadata);
    char *text = h ? json_dumps(h, JSON_COMPACT) : NULL;
    json_decref(h);
    if (!text) return nc_fail(err, NC_E_INTERNAL, "out of memory writing %s", path);
    st_out o = {l, text, strlen(text)};
    int rc = nc_write_file(path, write_safetensors, &o, err);
    free(text);
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

static float half_to_f32(uint16_t h) {
    int e = (h >> 10) & 0x1f, m = h & 0x3ff;
    float v = e == 0 ? ldexpf((float)m, -24) : e == 31 ? (m ? NAN : INFINITY) : ldexpf((float)(m | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

static void convert(float *dst, const unsigned char *src, const dtype_info *dt, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const unsigned char *p = src + i * (int64_t)dt->size;
        if (dt->size == 4) {
            memcpy(&dst[i], p, 4);
        } else if (dt->size == 8) {
            double d;
            memcpy(&d, p, 8);
            dst[i] = (float)d;
        } else {
            uint16_t h = (uint16_t)(p[0] | p[1] << 8);
            uint32_t u = (uint32_t)h << 16;
            if (strcmp(dt->name, "BF16") == 0) memcpy(&dst[i], &u, 4);
            else dst[i] = half_to_f32(h);
        }
    }
}

static const dtype_info *find_dtype(const char *name) {
    for (size_t i = 0; name && i < sizeof dtypes / sizeof dtypes[0]; i++)
        if (strcmp(dtypes[i].name, name) == 0) return &dtypes[i];
    return NULL;
}

/* One header entry: checks it against the data (size bytes) and appends the tensor. */
static int take_entry(nc_tensor_list *out, const char *name, json_t *e, const unsigned char *data,
                      uint64_t size, nc_error *err) {
    const dtype_info *dt = find_dtype(json_string_value(json_object_get(e, "dtype")));
    json_t *shape = json_object_get(e, "shape"), *offs = json_object_get(e, "data_offsets");
    if (!dt) return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s: unsupported dtype", name);
    if (strlen(name) >= sizeof out->items[0].name || !json_is_array(shape) || json_array_size(shape) > 4 ||
        json_array_size(offs) != 2)
        return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s: malformed header entry", name);
    int64_t dims[4], numel = 1;
    for (size_t d = 0; d < json_array_size(shape); d++) {
        dims[d] = json_integer_value(json_array_get(shape, d));
        if (!json_is_integer(json_array_get(shape, d)) || dims[d] < 0 || dims[d] > (int64_t)size ||
            (dims[d] > 0 && numel > (int64_t)size / dims[d]))
            return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s: bad shape", name);
        numel *= dims[d];
    }
    json_int_t b = json_integer_value(json_array_get(offs, 0)), end = json_integer_value(json_array_get(offs, 1));
    if (b < 0 || end < b || (uint64_t)end > size || (uint64_t)(end - b) != (uint64_t)numel * dt->size)
        return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s: data offsets do not match its shape", name);
    nc_tensor *t = nc_tensors_add(out, name, (int)json_array_size(shape), dims);
    if (!t || !t->data) return nc_fail(err, NC_E_INTERNAL, "out of memory reading tensor %s", name);
    convert(t->data, data + b, dt, numel);
    return 0;
}

static int parse(const unsigned char *buf, uint64_t len, nc_tensor_list *out, json_t **metadata, nc_error *err) {
    uint64_t n = 0;
    for (int i = 7; len >= 8 && i >= 0; i--) n = n << 8 | buf[i];
    if (len < 8 || n > MAX_HEADER || n > len - 8)
        return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "bad safetensors header length");
    json_error_t je;
    json_t *h = json_loadb((const char *)buf + 8, (size_t)n, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(h)) {
        json_decref(h);
        return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "bad safetensors header: %s", je.text);
    }
    if (json_object_size(h) > MAX_TENSORS + 1) {
        json_decref(h);
        return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "more than %d tensors", MAX_TENSORS);
    }
    const char *name;
    json_t *e;
    int rc = 0;
    json_object_foreach(h, name, e) {
        if (strcmp(name, "__metadata__") == 0) continue;
        if ((rc = take_entry(out, name, e, buf + 8 + n, len - 8 - n, err))) break;
    }
    json_t *meta = json_object_get(h, "__metadata__");
    if (rc == 0 && metadata) *metadata = json_is_object(meta) ? json_incref(meta) : json_object();
    json_decref(h);
    return rc;
}

/* Drops the tensors appended after the first `keep`. */
static void truncate_list(nc_tensor_list *l, int keep) {
    for (int i = keep; i < l->count; i++) free(l->items[i].data);
    l->count = keep;
}

int nc_safetensors_parse(const unsigned char *buf, size_t len, nc_tensor_list *out, json_t **metadata, nc_error *err) {
    int keep = out->count;
    if (parse(buf, len, out, metadata, err) == 0) return 0;
    truncate_list(out, keep);
    return -1;
}

int nc_safetensors_load(const char *path, int64_t max_bytes, nc_tensor_list *out, json_t **metadata, nc_error *err) {
    char *buf;
    size_t len;
    if (nc_read_file(path, max_bytes, "safetensors file", &buf, &len, err)) return -1;
    nc_error why = {0};
    int rc = nc_safetensors_parse((const unsigned char *)buf, len, out, metadata, &why);
    free(buf);
    return rc ? nc_fail(err, why.code, "%s: %s", path, why.message) : 0;
}
