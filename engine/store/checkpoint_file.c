/* checkpoint_file.c: the project's checkpoint format: writing it, and
 * reading it as a hostile file (every field is checked before it is used).
 *
 * A checkpoint holds everything needed to continue a run: config,
 * vocabulary, weights, optimizer state, the data stream's RNG state (its
 * position: training windows start at random offsets drawn from it; models
 * draw no random numbers after their initialization, and sampling seeds its
 * own stream per request) and the step. Layout (little-endian):
 *
 *   offset 0   8 bytes  magic "NCCKPT\0\0"
 *          8   u32      format version (3; 1 and 2 are read too, see drop_step_tensor)
 *         12   u32      reserved (0)
 *         16   u64      header bytes H (at most 64 MiB)
 *         24   u64      data bytes D
 *         32   u64      checksum of the H + D payload bytes (see hash_*)
 *         40   H bytes  header: UTF-8 JSON (config, vocab, step, rng, tensor index)
 *     40 + H   D bytes  tensors: float32, in index order, back to back
 *
 * The header object has exactly these fields: "format" ("nanochat-c
 * checkpoint"), "mode", "kind", "config" (every train argument, resolved),
 * "vocab" (the code points, ascending: token id = rank; or, from version 3,
 * a string: the model's BPE tokenizer.json, as it was read), "style_only" (ids
 * only the style's text has, ascending), "step", "run_id", "data_rng" (the
 * four xoshiro256** words as 16-digit hex strings) and "tensors" (each
 * "name", "shape", "offset" in the data section). The tensors are the
 * model's export_state with the optimizer: its weights and optimizer state.
 * "step" is the updates that state has seen, the model's one step counter
 * (version 1 also kept it as a float tensor, "optim.step" or
 * "optimizer.step", exact only to 2^24; version 2 does not).
 *
 * The checksum catches accidents, not forgery, so a file is read as hostile:
 * unknown or missing fields, a config its model would not accept, code points
 * that are not Unicode scalar values or repeat, a step outside [0, steps],
 * tensors that do not tile the data
 * section or are not exactly the model's, non-finite values, and a model too
 * large for the memory limits all make it CheckpointCorrupt. */
#define _GNU_SOURCE
#include "checkpoint.h"
#include "artifacts.h"
#include "backend/backend.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAGIC "NCCKPT\0\0"
#define PREFIX 40
#define MAX_HEADER ((uint64_t)64 << 20)

/* ---- the checksum: a 64-bit multiply-xor hash over 8-byte little-endian
 * words of the payload, the tail zero-padded, fed in pieces -------------- */

typedef struct hasher {
    uint64_t h;
    uint8_t tail[8];
    int n;
} hasher;

static void hash_init(hasher *s, uint64_t total) { *s = (hasher){.h = 0x9e3779b97f4a7c15ULL ^ total}; }

static void hash_word(hasher *s, const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    s->h = (s->h ^ w) * 0xff51afd7ed558ccdULL;
    s->h ^= s->h >> 32;
}

static void hash_update(hasher *s, const uint8_t *p, size_t n) {
    while (n > 0 && (s->n > 0 || n < 8)) {
        s->tail[s->n++] = *p++;
        n--;
        if (s->n == 8) {
            hash_word(s, s->tail);
            s->n = 0;
        }
    }
    for (; n >= 8; p += 8, n -= 8) hash_word(s, p);
    while (n > 0) s->tail[s->n++] = *p++, n--;
}

static uint64_t hash_final(hasher *s) {
    uint64_t tail = 0;
    memcpy(&tail, s->tail, (size_t)s->n);
    uint64_t h = (s->h ^ tail) * 0xc4ceb9fe1a85ec53ULL;
    return h ^ (h >> 29);
}

/* ---- writing -------------------------------------------------------------------- */

static json_t *rng_to_json(const nc_rng *r) {
    json_t *a = json_array();
    for (int i = 0; i < 4; i++) {
        char hex[24];
        snprintf(hex, sizeof hex, "%016" PRIx64, r->s[i]);
        json_array_append_new(a, json_string(hex));
    }
    return a;
}

static json_t *header_json(const nc_resident *r, const nc_tensor_list *tl) {
    const nc_command_spec *train = nc_command_find("train");
    json_t *vocab = r->tok.bpe ? json_stringn(r->tok.json, r->tok.json_len) : json_array();
    json_t *style = json_array(), *index = json_array();
    for (int i = 0; i < nc_tokenizer_size(&r->tok); i++) {
        if (!r->tok.bpe) json_array_append_new(vocab, json_integer(r->tok.chars.cps[i]));
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
                     "mode", nc_mode_names[r->ops->mode], "kind", nc_kind_names[r->ops->kind], "config", nc_args_to_json(train, &r->cfg),
                     "vocab", vocab, "style_only", style, "step", (json_int_t)nc_resident_step(r), "run_id", r->run_id,
                     "data_rng", rng_to_json(&r->data_rng), "tensors", index);
}

static void put_u32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static void put_u64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }

typedef struct ckpt_out {
    const char *header;
    size_t H, D;
    const nc_tensor_list *tl;
} ckpt_out;

/* Streams prefix, header and tensors, then writes the checksum into the prefix. */
static int write_checkpoint(int fd, void *ctx) {
    const ckpt_out *o = ctx;
    uint8_t prefix[PREFIX] = {0}, sum[8];
    memcpy(prefix, MAGIC, 8);
    put_u32(prefix + 8, NC_CHECKPOINT_VERSION);
    put_u64(prefix + 16, o->H);
    put_u64(prefix + 24, o->D);
    hasher h;
    hash_init(&h, o->H + o->D);
    hash_update(&h, (const uint8_t *)o->header, o->H);
    int e = nc_write_fully(fd, prefix, PREFIX);
    if (!e) e = nc_write_fully(fd, o->header, o->H);
    for (int i = 0; !e && i < o->tl->count; i++) {
        size_t bytes = (size_t)nc_tensor_numel(&o->tl->items[i]) * sizeof(float);
        hash_update(&h, (const uint8_t *)o->tl->items[i].data, bytes);
        e = nc_write_fully(fd, o->tl->items[i].data, bytes);
    }
    put_u64(sum, hash_final(&h));
    if (!e && pwrite(fd, sum, 8, 32) != 8) e = errno ? errno : EIO;
    return e;
}

int nc_checkpoint_write(const nc_resident *r, const char *path, nc_error *err) {
    nc_tensor_list tl = {0};
    if (r->ops->export_state(r->model, true, &tl, err)) {
        nc_tensors_free(&tl);
        return -1;
    }
    json_t *hdr = header_json(r, &tl);
    char *text = hdr ? json_dumps(hdr, JSON_COMPACT) : NULL;
    json_decref(hdr);
    int rc = -1;
    if (!text) nc_fail(err, NC_E_INTERNAL, "out of memory writing the checkpoint header");
    else {
        ckpt_out o = {text, strlen(text), 0, &tl};
        for (int i = 0; i < tl.count; i++) o.D += (size_t)nc_tensor_numel(&tl.items[i]) * sizeof(float);
        rc = nc_write_file(path, write_checkpoint, &o, err);
    }
    free(text);
    nc_tensors_free(&tl);
    return rc;
}

/* ---- reading: the prefix and the checksum ------------------------------------------ */

static int corrupt(nc_error *err, const char *path, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int corrupt(nc_error *err, const char *path, const char *fmt, ...) {
    char what[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "%s: %s", path, what);
}

/* The version and the header's and data's lengths from the prefix, checked. */
static int read_prefix(const uint8_t *buf, size_t len, const char *path, uint32_t *version, uint64_t *H, uint64_t *D,
                       nc_error *err) {
    if (len < PREFIX || memcmp(buf, MAGIC, 8) != 0) return corrupt(err, path, "not a nanochat-c checkpoint");
    memcpy(version, buf + 8, 4);
    memcpy(H, buf + 16, 8);
    memcpy(D, buf + 24, 8);
    if (*version < 1 || *version > NC_CHECKPOINT_VERSION)
        return nc_fail(err, NC_E_UNSUPPORTED_VERSION, "%s has checkpoint format version %u; this build reads versions 1 to %d",
                       path, *version, NC_CHECKPOINT_VERSION);
    if (*H > MAX_HEADER) return corrupt(err, path, "a header of %" PRIu64 " bytes (at most %" PRIu64 ")", *H, MAX_HEADER);
    return 0;
}

/* The whole file checked (length, checksum); the header parsed. */
static json_t *open_payload(const uint8_t *buf, size_t len, const char *path, nc_error *err) {
    uint64_t H = 0, D = 0, sum;
    uint32_t version;
    if (read_prefix(buf, len, path, &version, &H, &D, err)) return NULL;
    if (H > len - PREFIX || D != len - PREFIX - H) return corrupt(err, path, "truncated or padded (%zu bytes)", len), NULL;
    hasher h;
    hash_init(&h, H + D);
    hash_update(&h, buf + PREFIX, H + D);
    memcpy(&sum, buf + 32, 8);
    if (hash_final(&h) != sum) return corrupt(err, path, "fails its checksum"), NULL;
    json_error_t je;
    json_t *hdr = json_loadb((const char *)buf + PREFIX, H, JSON_REJECT_DUPLICATES, &je);
    if (json_is_object(hdr)) return hdr;
    json_decref(hdr);
    return corrupt(err, path, "an unreadable header (%s)", je.text), NULL;
}

/* ---- reading: the header's fields ------------------------------------------------------ */

static const char *const header_fields[] = {"format", "mode", "kind", "config", "vocab",
                                            "style_only", "step", "run_id", "data_rng", "tensors"};

static int check_fields(json_t *hdr, const char *path, nc_error *err) {
    const char *key;
    json_t *v;
    size_t n = sizeof header_fields / sizeof header_fields[0];
    json_object_foreach(hdr, key, v) {
        size_t i = 0;
        while (i < n && strcmp(key, header_fields[i]) != 0) i++;
        if (i == n) return corrupt(err, path, "unknown header field '%.64s'", key);
    }
    for (size_t i = 0; i < n; i++)
        if (!json_object_get(hdr, header_fields[i])) return corrupt(err, path, "header field '%s' is missing", header_fields[i]);
    const char *format = json_string_value(json_object_get(hdr, "format"));
    if (!format || strcmp(format, "nanochat-c checkpoint") != 0)
        return corrupt(err, path, "header field 'format' is not \"nanochat-c checkpoint\"");
    return 0;
}

/* An integer field in [lo, hi]. */
static int int_field(json_t *v, const char *name, int64_t lo, int64_t hi, int64_t *out, const char *path, nc_error *err) {
    if (!json_is_integer(v) || json_integer_value(v) < lo || json_integer_value(v) > hi)
        return corrupt(err, path, "'%s' must be an integer between %lld and %lld", name, (long long)lo, (long long)hi);
    *out = json_integer_value(v);
    return 0;
}

/* The config: valid train arguments, already resolved for their model. */
static int check_config(json_t *hdr, nc_resident *r, const char *path, nc_error *err) {
    nc_error why;
    if (nc_args_parse(nc_command_find("train"), json_object_get(hdr, "config"), &r->cfg, &why))
        return corrupt(err, path, "config: %s", why.message);
    r->ops = nc_model_find(r->cfg.mode, r->cfg.model_kind);
    if (!r->ops)
        return corrupt(err, path, "config: no model %s %s", nc_mode_names[r->cfg.mode], nc_kind_names[r->cfg.model_kind]);
    const char *mode = json_string_value(json_object_get(hdr, "mode")), *kind = json_string_value(json_object_get(hdr, "kind"));
    if (!mode || !kind || strcmp(mode, nc_mode_names[r->ops->mode]) || strcmp(kind, nc_kind_names[r->ops->kind]))
        return corrupt(err, path, "'mode' and 'kind' disagree with the config");
    nc_train_cfg again = r->cfg;
    if (r->ops->resolve(&again.model, NULL, &again.eval_windows, &why)) return corrupt(err, path, "config: %s", why.message);
    if (!nc_args_equal(nc_command_find("train"), &again, &r->cfg)) return corrupt(err, path, "config: not resolved for its model");
    return 0;
}

/* A BPE tokenizer.json, checked as one from a folder is (version 3 on). */
static int check_bpe(json_t *v, uint32_t version, nc_resident *r, const char *path, nc_error *err) {
    nc_error why;
    if (version < 3) return corrupt(err, path, "'vocab' must list code points before format version 3");
    if (nc_tokenizer_bpe(&r->tok, json_string_value(v), json_string_length(v), &why))
        return corrupt(err, path, "'vocab': %s", why.message);
    return 0;
}

/* Code points: Unicode scalar values, strictly ascending (so no repeats); or a BPE's tokenizer.json. */
static int check_vocab(json_t *hdr, uint32_t version, nc_resident *r, const char *path, nc_error *err) {
    json_t *v = json_object_get(hdr, "vocab");
    if (json_is_string(v)) return check_bpe(v, version, r, path, err);
    size_t n = json_array_size(v);
    if (!json_is_array(v) || n < 1 || n > NC_MAX_VOCAB)
        return corrupt(err, path, "'vocab' must list 1 to %d code points", NC_MAX_VOCAB);
    uint32_t *cps = malloc(n * sizeof *cps);
    if (!cps) return nc_fail(err, NC_E_INTERNAL, "out of memory reading %s", path);
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array_get(v, i);
        json_int_t cp = json_integer_value(c);
        if (!json_is_integer(c) || cp < 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF) ||
            (i > 0 && (uint32_t)cp <= cps[i - 1])) {
            free(cps);
            return corrupt(err, path, "'vocab' entry %zu is not a new Unicode scalar value above the previous one", i);
        }
        cps[i] = (uint32_t)cp;
    }
    int rc = nc_vocab_init(&r->tok.chars, cps, n);
    free(cps);
    if (rc) return nc_fail(err, NC_E_INTERNAL, "out of memory reading %s", path);
    return 0;
}

static int check_style(json_t *hdr, nc_resident *r, const char *path, nc_error *err) {
    json_t *st = json_object_get(hdr, "style_only");
    if (!json_is_array(st)) return corrupt(err, path, "'style_only' must be an array");
    int V = nc_tokenizer_size(&r->tok);
    if (json_array_size(st) == 0) return 0; /* no style_only: NULL */
    if (r->tok.bpe) return corrupt(err, path, "'style_only' must be empty for a BPE vocabulary");
    if (!(r->style_only = calloc((size_t)V, 1))) return nc_fail(err, NC_E_INTERNAL, "out of memory reading %s", path);
    size_t i;
    json_t *id;
    int64_t prev = -1, k = 0;
    json_array_foreach(st, i, id) {
        if (int_field(id, "style_only", prev + 1, V - 1, &k, path, err)) return -1;
        r->style_only[k] = 1;
        prev = k;
    }
    return 0;
}

static int check_rng(json_t *hdr, nc_rng *rng, const char *path, nc_error *err) {
    json_t *a = json_object_get(hdr, "data_rng");
    uint64_t any = 0;
    size_t i = 0;
    for (const char *s; json_array_size(a) == 4 && i < 4; i++) {
        if (!(s = json_string_value(json_array_get(a, i))) || strlen(s) != 16 || strspn(s, "0123456789abcdef") != 16) break;
        any |= rng->s[i] = strtoull(s, NULL, 16);
    }
    if (i == 4 && any) return 0;
    return corrupt(err, path, "'data_rng' must be four 16-digit hex words, not all zero");
}

static int check_run_id(json_t *hdr, nc_resident *r, const char *path, nc_error *err) {
    const char *id = json_string_value(json_object_get(hdr, "run_id"));
    nc_error why;
    if (!id || nc_run_id_check(id, &why)) return corrupt(err, path, "'run_id': %s", id ? why.message : "not a string");
    snprintf(r->run_id, sizeof r->run_id, "%s", id);
    return 0;
}

/* Everything the header says, checked, into c (its model not yet built). */
static int read_header(json_t *hdr, uint32_t version, nc_checkpoint *c, const char *path, nc_error *err) {
    nc_resident *r = &c->r;
    if (check_fields(hdr, path, err) || check_config(hdr, r, path, err) || check_vocab(hdr, version, r, path, err) ||
        check_style(hdr, r, path, err) || check_rng(hdr, &r->data_rng, path, err) || check_run_id(hdr, r, path, err))
        return -1;
    return int_field(json_object_get(hdr, "step"), "step", 0, r->cfg.steps, &c->step, path, err);
}

/* ---- reading: the tensors ------------------------------------------------------------------ */

/* The index's tensors, which must tile the data section in order, copied out. */
static int read_tensors(json_t *index, const uint8_t *data, uint64_t D, nc_tensor_list *tl, const char *path,
                        nc_error *err) {
    if (!json_is_array(index)) return corrupt(err, path, "'tensors' must be an array");
    uint64_t at = 0;
    size_t i;
    json_t *t;
    json_array_foreach(index, i, t) {
        json_t *shape = json_object_get(t, "shape");
        const char *name = json_string_value(json_object_get(t, "name"));
        size_t nd = json_array_size(shape);
        int64_t dims[4] = {0}, off = 0;
        uint64_t numel = 1;
        if (!json_is_object(t) || json_object_size(t) != 3 || !name || strlen(name) >= sizeof tl->items[0].name ||
            nd < 1 || nd > 4)
            return corrupt(err, path, "tensor %zu: a malformed index entry", i);
        for (size_t d = 0; d < nd; d++) {
            if (int_field(json_array_get(shape, d), "shape", 1, (int64_t)(D / sizeof(float)), &dims[d], path, err)) return -1;
            numel *= (uint64_t)dims[d];
            if (numel > D / sizeof(float)) return corrupt(err, path, "tensor %s lies outside the data", name);
        }
        if (int_field(json_object_get(t, "offset"), "offset", 0, INT64_MAX, &off, path, err)) return -1;
        if ((uint64_t)off != at || numel * sizeof(float) > D - at)
            return corrupt(err, path, "tensor %s does not follow the one before it in the data", name);
        nc_tensor *x = nc_tensors_add(tl, name, (int)nd, dims);
        if (!x || !x->data) return nc_fail(err, NC_E_INTERNAL, "out of memory reading tensor %s of %s", name, path);
        memcpy(x->data, data + at, numel * sizeof(float));
        at += numel * sizeof(float);
    }
    if (at != D) return corrupt(err, path, "the data section holds %" PRIu64 " bytes the index does not name", D - at);
    return 0;
}

/* Version 1 kept the step as a float tensor too: it must agree with the
 * header's, and goes. */
static int drop_step_tensor(nc_checkpoint *c, const char *path, nc_error *err) {
    static const char *const names[] = {"optim.step", "optimizer.step"};
    for (int i = 0; i < 2; i++) {
        const nc_tensor *t = nc_tensors_get(&c->tensors, names[i]);
        if (!t) continue;
        if (nc_tensor_numel(t) != 1 || t->data[0] != (float)c->step)
            return corrupt(err, path, "%s disagrees with 'step' %lld", names[i], (long long)c->step);
        nc_tensors_remove(&c->tensors, names[i]);
    }
    return 0;
}

/* The file's tensors, checked whole against the model the header describes
 * (names, shapes, finite values). */
static int take_tensors(nc_checkpoint *c, json_t *hdr, uint32_t version, const uint8_t *data, uint64_t D,
                        const char *path, nc_error *err) {
    nc_error why;
    if (read_tensors(json_object_get(hdr, "tensors"), data, D, &c->tensors, path, err) ||
        (version == 1 && drop_step_tensor(c, path, err)))
        return -1;
    if (nc_state_check(c->r.ops, &c->r.cfg.model, nc_tokenizer_size(&c->r.tok), &c->tensors, true, &why))
        return corrupt(err, path, "%s", why.message);
    return 0;
}

/* The checked tensors and step into r's built model. */
static int import(nc_resident *r, const nc_checkpoint *c, const char *path, nc_error *err) {
    nc_error why;
    return r->ops->import_state(r->model, &c->tensors, true, c->step, &why) ? corrupt(err, path, "%s", why.message) : 0;
}

/* Builds the model the header describes, within the memory limits (it will
 * replace the resident one). */
static int build(nc_engine *e, nc_resident *r, const char *path, nc_error *err) {
    if (r->cfg.mode == NC_MODE_TENSOR) {
        nc_device dev = r->cfg.device == NC_DEVICE_CPU ? NC_DEVICE_CPU : NC_DEVICE_AUTO;
        if (!(r->backend = nc_engine_backend(e, dev, err))) return -1;
    }
    char what[PATH_MAX + 64];
    snprintf(what, sizeof what, "the model of %s", path);
    return nc_engine_build(e, r, true, NC_E_CHECKPOINT_CORRUPT, what, err);
}

int nc_checkpoint_parse(const uint8_t *buf, size_t len, const char *path, nc_checkpoint *c, nc_error *err) {
    memset(c, 0, sizeof *c);
    json_t *hdr = open_payload(buf, len, path, err);
    if (!hdr) return -1;
    uint64_t H;
    uint32_t version;
    memcpy(&version, buf + 8, 4);
    memcpy(&H, buf + 16, 8);
    int rc = read_header(hdr, version, c, path, err) ||
             take_tensors(c, hdr, version, buf + PREFIX + H, len - PREFIX - H, path, err) ? -1 : 0;
    json_decref(hdr);
    if (rc) nc_checkpoint_free(c);
    return rc;
}

void nc_checkpoint_free(nc_checkpoint *c) {
    nc_resident_clear(&c->r);
    nc_tensors_free(&c->tensors);
}

uint64_t nc_checkpoint_checksum(const uint8_t *buf, size_t len) {
    hasher h;
    hash_init(&h, len > PREFIX ? len - PREFIX : 0);
    if (len > PREFIX) hash_update(&h, buf + PREFIX, len - PREFIX);
    return hash_final(&h);
}

/* The file (a regular file within the host limit), parsed and checked. */
static int read_checkpoint(const nc_engine *e, const char *path, nc_checkpoint *c, nc_error *err) {
    char *buf;
    size_t len;
    if (nc_read_file(path, e->limits.host_bytes, "checkpoint", &buf, &len, err)) return -1;
    int rc = nc_checkpoint_parse((const uint8_t *)buf, len, path, c, err);
    free(buf);
    return rc;
}

int nc_checkpoint_read(nc_engine *e, const char *path, nc_resident *out, nc_error *err) {
    nc_checkpoint c;
    memset(out, 0, sizeof *out);
    if (read_checkpoint(e, path, &c, err)) return -1;
    *out = c.r; /* the resident-to-be takes the header's fields */
    memset(&c.r, 0, sizeof c.r);
    snprintf(out->checkpoint, sizeof out->checkpoint, "%s", path);
    int rc = build(e, out, path, err) || import(out, &c, path, err) ? -1 : 0;
    nc_checkpoint_free(&c);
    if (rc) nc_resident_clear(out);
    return rc;
}

/* The same model: config and vocabulary. */
static bool same_model(const nc_resident *a, const nc_resident *b) {
    return nc_args_equal(nc_command_find("train"), &a->cfg, &b->cfg) && nc_tokenizer_equal(&a->tok, &b->tok);
}

int nc_checkpoint_reload(nc_engine *e, nc_resident *r, nc_error *err) {
    nc_checkpoint c;
    if (read_checkpoint(e, r->checkpoint, &c, err)) return -1;
    int rc = same_model(&c.r, r) ? import(r, &c, r->checkpoint, err)
                                 : corrupt(err, r->checkpoint, "it holds another model than the resident one");
    if (rc == 0) r->data_rng = c.r.data_rng;
    nc_checkpoint_free(&c);
    return rc;
}

int nc_state_check(const nc_model_ops *ops, const nc_model_cfg *cfg, int V, const nc_tensor_list *in, bool optimizer,
                   nc_error *err) {
    nc_tensor_list want = {0};
    int rc = ops->state_spec(cfg, V, optimizer, &want, err);
    for (int i = 0; rc == 0 && i < want.count; i++) {
        const nc_tensor *w = &want.items[i], *t = nc_tensors_get(in, w->name);
        bool same = t && t->ndim == w->ndim;
        for (int d = 0; same && d < w->ndim; d++) same = t->shape[d] == w->shape[d];
        if (!t) rc = nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s is missing", w->name);
        else if (!same) rc = nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s has the wrong shape", w->name);
    }
    for (int i = 0; rc == 0 && i < in->count; i++)
        if (!nc_tensors_get(&want, in->items[i].name))
            rc = nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s is not part of the %s model", in->items[i].name,
                         nc_kind_names[ops->kind]);
    if (rc == 0 && in->count != want.count) rc = nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "a tensor is named twice");
    nc_tensors_free(&want);
    for (int i = 0; rc == 0 && i < in->count; i++) {
        const nc_tensor *t = &in->items[i];
        for (int64_t k = 0, n = nc_tensor_numel(t); rc == 0 && k < n; k++)
            if (!isfinite(t->data[k]))
                rc = nc_fail(err, NC_E_CHECKPOINT_CORRUPT, "tensor %s holds a non-finite value (at %lld)", t->name, (long long)k);
    }
    return rc;
}

json_t *nc_checkpoint_describe(const char *path, nc_error *err) {
    int fd;
    int64_t size;
    if (nc_open_regular(path, INT64_MAX, "checkpoint", &fd, &size, err)) return NULL;
    uint8_t prefix[PREFIX];
    uint64_t H = 0, D;
    uint8_t *buf = NULL;
    uint32_t version;
    bool ok = pread(fd, prefix, PREFIX, 0) == PREFIX && read_prefix(prefix, PREFIX, path, &version, &H, &D, err) == 0 &&
              H <= (uint64_t)size - PREFIX && (buf = malloc(H + 1)) && pread(fd, buf, H, PREFIX) == (ssize_t)H;
    close(fd);
    json_t *hdr = ok ? json_loadb((const char *)buf, H, JSON_REJECT_DUPLICATES, NULL) : NULL;
    free(buf);
    if (!json_is_object(hdr)) {
        json_decref(hdr);
        if (ok) corrupt(err, path, "an unreadable header");
        return NULL;
    }
    json_t *d = json_pack("{s:s, s:I, s:O?, s:O?, s:O?, s:O?}", "path", path, "bytes", (json_int_t)size, "step",
                          json_object_get(hdr, "step"), "mode", json_object_get(hdr, "mode"), "kind",
                          json_object_get(hdr, "kind"), "run_id", json_object_get(hdr, "run_id"));
    json_decref(hdr);
    return d;
}
