/* checkpoint.c: the project's checkpoint format and the checkpoint command.
 *
 * A checkpoint holds everything needed to continue a run: config,
 * vocabulary, weights, optimizer state, the data stream's RNG state (its
 * position: training windows start at random offsets drawn from it; models
 * draw no random numbers after their initialization, and sampling seeds its
 * own stream per request) and the step. Layout (little-endian):
 *
 *   offset 0   8 bytes  magic "NCCKPT\0\0"
 *          8   u32      format version (1)
 *         12   u32      reserved (0)
 *         16   u64      header bytes H
 *         24   u64      data bytes D
 *         32   u64      checksum of the H + D payload bytes (see payload_hash)
 *         40   H bytes  header: UTF-8 JSON (config, vocab, step, rng, tensor index)
 *     40 + H   D bytes  tensors: float32, in index order
 *
 * The header object: "format" ("nanochat-c checkpoint"), "mode", "kind",
 * "config" (every train argument, resolved), "vocab" (the code points, by
 * token id), "style_only" (ids only the style's text has), "step", "run_id",
 * "data_rng" (the four xoshiro256** words as 16-digit hex strings) and
 * "tensors" (each "name", "shape", "offset" in the data section). The tensors
 * are the model's export_state with the optimizer: its weights (bigram:
 * wte.weight, lm_head.weight when untied; mini-gpt: wte, wpe, attn.c_q, c_k,
 * c_v, c_proj, mlp.c_fc, mlp.c_proj, lm_head .weight) and its optimizer state
 * (host optimizers: optimizer.step, and optimizer.exp_avg / exp_avg_sq for
 * AdamW, flat over all parameters in the weights' order).
 *
 * Writes are atomic (nc_write_atomic): a crash leaves the old file or the
 * complete new one. Loads build a new model and replace the resident one only
 * when every check has passed. */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "artifacts.h"
#include "tensor/backend.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAGIC "NCCKPT\0\0"
#define PREFIX 40

/* 64-bit multiply-xor hash over 8-byte little-endian words, tail zero-padded. */
static uint64_t payload_hash(const uint8_t *p, size_t n) {
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ n;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        h = (h ^ w) * 0xff51afd7ed558ccdULL;
        h ^= h >> 32;
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, n - i);
    h = (h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

static json_t *rng_to_json(const nc_rng *r) {
    json_t *a = json_array();
    for (int i = 0; i < 4; i++) {
        char hex[24];
        snprintf(hex, sizeof hex, "%016" PRIx64, r->s[i]);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

static int rng_from_json(json_t *a, nc_rng *r) {
    if (json_array_size(a) != 4) return -1;
    for (int i = 0; i < 4; i++) {
        const char *s = json_string_value(json_array_get(a, (size_t)i));
        if (!s || sscanf(s, "%" SCNx64, &r->s[i]) != 1) return -1;
    }
    return 0;
}

static json_t *header_json(const nc_resident *r, const nc_tensor_list *tl) {
    const nc_command_spec *train = nc_command_find("train");
    json_t *vocab = json_array(), *style = json_array(), *index = json_array();
    for (int i = 0; i < r->vocab.size; i++) {
        json_array_append_new(vocab, json_integer(r->vocab.cps[i]));
        if (r->style_only && r->style_only[i]) json_array_append_new(style, json_integer(i));
    }
    int64_t offset = 0;
    for (int i = 0; i < tl->count; i++) {
        const nc_tensor *t = &tl->items[i];
        json_t *shape = json_array();
        for (int d = 0; d < t->ndim; d++) json_array_append_new(shape, json_integer(t->shape[d]));
        json_array_append_new(index, json_pack("{s:s, s:o, s:I}", "name", t->name, "shape", shape, "offset", (json_int_t)offset));
        offset += nc_tensor_numel(t) * (int64_t)sizeof(float);
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:I, s:s, s:o, s:o}", "format", "nanochat-c checkpoint",
                     "mode", r->ops->mode, "kind", r->ops->kind, "config", nc_args_to_json(train, &r->cfg),
                     "vocab", vocab, "style_only", style, "step", (json_int_t)r->step, "run_id", r->run_id,
                     "data_rng", rng_to_json(&r->data_rng), "tensors", index);
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

int nc_checkpoint_write(const nc_resident *r, const char *path, nc_error *err) {
    nc_tensor_list tl = {0};
    if (r->ops->export_state(r->model, true, &tl, err)) return -1;
    json_t *hdr = header_json(r, &tl);
    char *text = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    size_t H = strlen(text), D = 0;
    for (int i = 0; i < tl.count; i++) D += (size_t)nc_tensor_numel(&tl.items[i]) * sizeof(float);
    uint8_t *buf = malloc(PREFIX + H + D);
    int rc = -1;
    if (!buf) nc_fail(err, NC_E_INTERNAL, "out of memory writing a checkpoint of %zu bytes", PREFIX + H + D);
    else {
        memcpy(buf, MAGIC, 8);
        put_u32(buf + 8, NC_CHECKPOINT_VERSION);
        put_u32(buf + 12, 0);
        put_u64(buf + 16, H);
        put_u64(buf + 24, D);
        memcpy(buf + PREFIX, text, H);
        uint8_t *p = buf + PREFIX + H;
        for (int i = 0; i < tl.count; i++) {
            size_t bytes = (size_t)nc_tensor_numel(&tl.items[i]) * sizeof(float);
            memcpy(p, tl.items[i].data, bytes);
            p += bytes;
        }
        put_u64(buf + 32, payload_hash(buf + PREFIX, H + D));
        char dir[PATH_MAX];
        snprintf(dir, sizeof dir, "%s", path);
        char *slash = strrchr(dir, '/');
        if (slash) *slash = '\0';
        rc = (slash && nc_mkdirs(dir, err)) ? -1 : nc_write_atomic(path, buf, PREFIX + H + D, err);
    }
    free(buf);
    free(text);
    nc_tensors_free(&tl);
    return rc;
}

/* ---- reading ---------------------------------------------------------------- */

static int read_whole(const char *path, uint8_t **out, size_t *len, nc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return nc_fail(err, errno == ENOENT ? NC_E_NOT_FOUND : NC_E_IO, "cannot open checkpoint %s: %s", path, strerror(errno));
    struct stat st;
    uint8_t *buf = NULL;
    int rc = fstat(fileno(f), &st) == 0 && (buf = malloc((size_t)st.st_size + 1)) &&
                     fread(buf, 1, (size_t)st.st_size, f) == (size_t)st.st_size ? 0 : -1;
    fclose(f);
    if (rc) {
        free(buf);
        return nc_fail(err, NC_E_IO, "cannot read checkpoint %s", path);
    }
    *out = buf;
    *len = (size_t)st.st_size;
    return 0;
}

/* Validates the prefix and the checksum; returns the parsed header. */
static json_t *open_payload(const uint8_t *buf, size_t len, const char *path, bool verify, nc_error *err) {
    uint32_t version;
    uint64_t H, D, sum;
    if (len < PREFIX || memcmp(buf, MAGIC, 8) != 0) {
        nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "%s is not a nanochat-c checkpoint", path);
        return NULL;
    }
    memcpy(&version, buf + 8, 4);
    memcpy(&H, buf + 16, 8);
    memcpy(&D, buf + 24, 8);
    memcpy(&sum, buf + 32, 8);
    if (version != NC_CHECKPOINT_VERSION) {
        nc_fail(err, NC_E_UNSUPPORTED_VERSION, "%s has checkpoint format version %u; this build reads version %d", path,
                version, NC_CHECKPOINT_VERSION);
        return NULL;
    }
    if (H > len - PREFIX || (verify && D != len - PREFIX - H)) {
        nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "%s is truncated or padded (%zu bytes)", path, len);
        return NULL;
    }
    if (verify && payload_hash(buf + PREFIX, H + D) != sum) {
        nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "%s fails its checksum", path);
        return NULL;
    }
    json_t *hdr = json_loadb((const char *)buf + PREFIX, H, 0, NULL);
    if (!json_is_object(hdr)) {
        json_decref(hdr);
        nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "%s has an unreadable header", path);
    }
    return hdr;
}

static int corrupt(nc_error *err, const char *path, const char *what) {
    return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "%s: %s", path, what);
}

/* The tensors of the index, pointing into the data section (copied). */
static int read_tensors(json_t *index, const uint8_t *data, size_t D, nc_tensor_list *tl, const char *path, nc_error *err) {
    size_t i;
    json_t *t;
    json_array_foreach(index, i, t) {
        json_t *shape = json_object_get(t, "shape");
        const char *name = json_string_value(json_object_get(t, "name"));
        int64_t dims[4] = {0}, off = json_integer_value(json_object_get(t, "offset"));
        size_t nd = json_array_size(shape);
        if (!name || nd < 1 || nd > 4) return corrupt(err, path, "bad tensor index");
        for (size_t d = 0; d < nd; d++) dims[d] = json_integer_value(json_array_get(shape, d));
        for (size_t d = 0; d < nd; d++)
            if (dims[d] < 1 || dims[d] > (int64_t)(D / sizeof(float))) return corrupt(err, path, "tensor outside the data");
        nc_tensor *x = nc_tensors_add(tl, name, (int)nd, dims);
        if (!x->data) return corrupt(err, path, "tensor too large to hold");
        size_t bytes = (size_t)nc_tensor_numel(x) * sizeof(float);
        if (off < 0 || (size_t)off > D || bytes > D - (size_t)off) return corrupt(err, path, "tensor outside the data");
        memcpy(x->data, data + off, bytes);
    }
    return 0;
}

static int vocab_from_json(json_t *hdr, nc_resident *r) {
    json_t *v = json_object_get(hdr, "vocab"), *st = json_object_get(hdr, "style_only");
    size_t n = json_array_size(v);
    if (n == 0) return -1;
    uint32_t *cps = malloc(n * sizeof *cps);
    for (size_t i = 0; i < n; i++) cps[i] = (uint32_t)json_integer_value(json_array_get(v, i));
    nc_vocab_init(&r->vocab, cps, n);
    free(cps);
    if ((size_t)r->vocab.size != n) return -1;
    r->style_only = calloc(n, 1);
    size_t i;
    json_t *id;
    json_array_foreach(st, i, id) {
        json_int_t k = json_integer_value(id);
        if (k < 0 || (size_t)k >= n) return -1;
        r->style_only[k] = 1;
    }
    return 0;
}

/* Loads the file's tensors, data stream and step into r's model. */
static int load_state(json_t *hdr, const uint8_t *data, size_t D, const char *path, nc_resident *r, nc_error *err) {
    nc_rng rng;
    if (rng_from_json(json_object_get(hdr, "data_rng"), &rng)) return corrupt(err, path, "bad rng state");
    nc_tensor_list tl = {0};
    nc_error why;
    int rc = read_tensors(json_object_get(hdr, "tensors"), data, D, &tl, path, err);
    if (rc == 0 && r->ops->import_state(r->model, &tl, true, &why)) rc = corrupt(err, path, why.message);
    nc_tensors_free(&tl);
    if (rc) return -1;
    r->data_rng = rng;
    r->step = json_integer_value(json_object_get(hdr, "step"));
    return 0;
}

/* Builds the model the header describes and loads its state. */
static int build_from(nc_engine *e, json_t *hdr, const uint8_t *data, size_t D, const char *path, nc_resident *r,
                      nc_error *err) {
    const nc_command_spec *train = nc_command_find("train");
    nc_error why;
    if (nc_args_parse(train, json_object_get(hdr, "config"), &r->cfg, &why)) return corrupt(err, path, why.message);
    r->ops = nc_model_find(r->cfg.mode, r->cfg.model_kind);
    if (!r->ops) return corrupt(err, path, "unknown model kind");
    if (vocab_from_json(hdr, r)) return corrupt(err, path, "bad vocabulary");
    snprintf(r->run_id, sizeof r->run_id, "%s", json_string_value(json_object_get(hdr, "run_id")) ?: "");
    snprintf(r->checkpoint, sizeof r->checkpoint, "%s", path);
    if (strcmp(r->cfg.mode, "tensor") == 0) {
        const char *dev = strcmp(r->cfg.device, "cpu") == 0 ? "cpu" : "auto";
        if (!(r->backend = nc_engine_backend(e, dev, err))) return -1;
    }
    if (!(r->model = r->ops->create(&r->cfg, &r->vocab, r->backend, err))) return -1;
    return load_state(hdr, data, D, path, r, err);
}

/* Reads and verifies a checkpoint file, then hands its header and data to `use`. */
static int with_file(const char *path, nc_error *err, int (*use)(json_t *hdr, const uint8_t *data, size_t D, void *ctx),
                     void *ctx) {
    uint8_t *buf = NULL;
    size_t len = 0;
    if (read_whole(path, &buf, &len, err)) return -1;
    json_t *hdr = open_payload(buf, len, path, true, err);
    int rc = -1;
    if (hdr) {
        uint64_t H;
        memcpy(&H, buf + 16, 8);
        rc = use(hdr, buf + PREFIX + H, len - PREFIX - H, ctx);
    }
    json_decref(hdr);
    free(buf);
    return rc;
}

typedef struct load_job {
    nc_engine *e;
    const char *path;
    nc_resident *r;
    nc_error *err;
} load_job;

static int build_job(json_t *hdr, const uint8_t *data, size_t D, void *ctx) {
    load_job *j = ctx;
    return build_from(j->e, hdr, data, D, j->path, j->r, j->err);
}

int nc_checkpoint_read(nc_engine *e, const char *path, nc_resident *out, nc_error *err) {
    memset(out, 0, sizeof *out);
    load_job j = {e, path, out, err};
    int rc = with_file(path, err, build_job, &j);
    if (rc) nc_resident_clear(out);
    return rc;
}

/* The file must hold this very model: same kind and the same resolved config. */
static int reload_job(json_t *hdr, const uint8_t *data, size_t D, void *ctx) {
    load_job *j = ctx;
    json_t *cfg = nc_args_to_json(nc_command_find("train"), &j->r->cfg);
    bool same = json_equal(cfg, json_object_get(hdr, "config"));
    json_decref(cfg);
    if (!same) return corrupt(j->err, j->path, "it holds another model than the resident one");
    return load_state(hdr, data, D, j->path, j->r, j->err);
}

int nc_checkpoint_reload(nc_resident *r, nc_error *err) {
    load_job j = {NULL, r->checkpoint, r, err};
    return with_file(r->checkpoint, err, reload_job, &j);
}

/* ---- the command ---------------------------------------------------------------- */

static json_t *describe_file(const char *path, nc_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t prefix[PREFIX];
    uint64_t H = 0;
    struct stat st;
    bool ok = fread(prefix, 1, PREFIX, f) == PREFIX && fstat(fileno(f), &st) == 0;
    if (ok) memcpy(&H, prefix + 16, 8);
    ok = ok && H < (uint64_t)st.st_size;
    uint8_t *buf = ok ? malloc(PREFIX + H) : NULL;
    if (buf) {
        memcpy(buf, prefix, PREFIX);
        ok = fread(buf + PREFIX, 1, H, f) == H;
    }
    fclose(f);
    json_t *hdr = ok && buf ? open_payload(buf, PREFIX + H, path, false, err) : NULL;
    free(buf);
    if (!hdr) return NULL;
    json_t *d = json_pack("{s:s, s:I, s:O, s:O, s:O, s:O}", "path", path, "bytes", (json_int_t)st.st_size, "step",
                          json_object_get(hdr, "step"), "mode", json_object_get(hdr, "mode"), "kind",
                          json_object_get(hdr, "kind"), "run_id", json_object_get(hdr, "run_id"));
    json_decref(hdr);
    return d;
}

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static json_t *list_checkpoints(nc_engine *e) {
    json_t *items = json_array();
    DIR *d = opendir(e->checkpoint_dir);
    char *names[4096];
    size_t n = 0;
    for (struct dirent *de; d && (de = readdir(d)) && n < 4096;) {
        size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".ckpt") == 0) names[n++] = strdup(de->d_name);
    }
    if (d) closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX];
        nc_error err;
        snprintf(path, sizeof path, "%s/%s", e->checkpoint_dir, names[i]);
        json_t *info = describe_file(path, &err);
        if (info) json_array_append_new(items, info);
        free(names[i]);
    }
    return json_pack("{s:s, s:o}", "dir", e->checkpoint_dir, "checkpoints", items);
}

int nc_resident_save(nc_resident *r, const char *path, nc_error *err) {
    if (nc_checkpoint_write(r, path, err)) return -1;
    if (path != r->checkpoint) snprintf(r->checkpoint, sizeof r->checkpoint, "%s", path);
    r->dirty = false;
    return 0;
}

int nc_engine_save_resident(nc_engine *e, json_t **result, nc_error *err) {
    *result = NULL;
    nc_resident *r = &e->res;
    if (!nc_resident_loaded(r) || !r->dirty) return 0;
    if (nc_resident_save(r, r->checkpoint, err)) return -1;
    *result = json_pack("{s:s, s:I}", "path", r->checkpoint, "step", (json_int_t)r->step);
    return 1;
}

static json_t *load_into_resident(nc_engine *e, const char *path, nc_error *err) {
    nc_resident fresh;
    if (nc_checkpoint_read(e, path, &fresh, err)) return NULL;
    nc_resident_set(&e->res, &fresh);
    nc_guard_reset(&e->guard);
    return json_pack("{s:s, s:s, s:s, s:I}", "path", path, "mode", e->res.ops->mode, "kind", e->res.ops->kind,
                     "step", (json_int_t)e->res.step);
}

json_t *nc_cmd_checkpoint(nc_engine *e, const nc_checkpoint_cfg *cfg, const nc_sink *sink, nc_error *err) {
    (void)sink;
    if (strcmp(cfg->action, "list") == 0) return list_checkpoints(e);
    char path[PATH_MAX];
    bool given = cfg->path[0] != '\0';
    if (strcmp(cfg->action, "load") == 0) {
        if (!given) {
            nc_fail(err, NC_E_BAD_REQUEST, "args.path is required to load a checkpoint");
            return NULL;
        }
        return nc_engine_checkpoint_path(e, cfg->path, path, sizeof path, err) ? NULL : load_into_resident(e, path, err);
    }
    if (nc_require_model(&e->res, err)) return NULL;
    if (given && nc_engine_checkpoint_path(e, cfg->path, path, sizeof path, err)) return NULL;
    if (strcmp(cfg->action, "save") == 0) {
        if (nc_resident_save(&e->res, given ? path : e->res.checkpoint, err)) return NULL;
        return json_pack("{s:s, s:I}", "path", e->res.checkpoint, "step", (json_int_t)e->res.step);
    }
    if (!given) {
        nc_fail(err, NC_E_BAD_REQUEST, "args.path is required to %s weights", cfg->action);
        return NULL;
    }
    return strcmp(cfg->action, "export") == 0 ? nc_weights_export(e, path, err) : nc_weights_import(e, path, err);
}
