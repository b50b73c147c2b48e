/* codec.c: msgpack <-> JSON conversion with limits, and frame headers.
 *
 * msgpack-c allocates arrays and maps from their declared counts before it
 * reads their elements, so a hostile 5-byte header could ask for gigabytes.
 * scan() therefore walks the body first and checks every declared count
 * against the bytes actually present and against the limits; only then does
 * msgpack-c unpack it. Within those, each value costs about 65 bytes once
 * unpacked (msgpack-c's object, then jansson's), against one byte on the
 * wire for a small integer: the scan also counts the values of the whole
 * frame against NC_MSG_MAX_VALUES, adding each container's declared count
 * when it reaches its header, so an over-budget frame is refused there. */
#include "proto.h"

#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

uint32_t nc_frame_length(const uint8_t h[NC_FRAME_HEADER]) {
    return (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
}

/* ---- scan: structure and limits ------------------------------------------ */

typedef struct scanner {
    const uint8_t *p;
    size_t len, pos;
    uint64_t values; /* values seen or announced by their containers so far */
    const char *why;
} scanner;

#define STR_(x) #x
#define STR(x) STR_(x)

static uint64_t be(const uint8_t *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = v << 8 | p[i];
    return v;
}

static bool take(scanner *s, uint64_t n) {
    if (n > s->len - s->pos) {
        s->why = "truncated msgpack value";
        return false;
    }
    s->pos += n;
    return true;
}

static bool scan_value(scanner *s, int depth);

static bool scan_items(scanner *s, uint64_t count, int per_item, int depth) {
    if (depth >= NC_MSG_MAX_DEPTH) { s->why = "nesting deeper than the limit"; return false; }
    if (count > NC_MSG_MAX_ITEMS) { s->why = "map or array larger than the limit"; return false; }
    if (count * (uint64_t)per_item > s->len - s->pos) { s->why = "truncated msgpack value"; return false; }
    s->values += count * (uint64_t)per_item;
    if (s->values > NC_MSG_MAX_VALUES) { s->why = "more than " STR(NC_MSG_MAX_VALUES) " values"; return false; }
    for (uint64_t i = 0; i < count * (uint64_t)per_item; i++)
        if (!scan_value(s, depth + 1)) return false;
    return true;
}

/* Bytes of the length field that follows marker b for str/array/map, else 0. */
static int length_bytes(uint8_t b) {
    switch (b) {
    case 0xd9: return 1;
    case 0xda: case 0xdc: case 0xde: return 2;
    case 0xdb: case 0xdd: case 0xdf: return 4;
    default: return 0;
    }
}

static bool scan_value(scanner *s, int depth) {
    if (!take(s, 1)) return false;
    uint8_t b = s->p[s->pos - 1];
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) return true;
    if (b >= 0x80 && b <= 0x8f) return scan_items(s, b & 0x0f, 2, depth);
    if (b >= 0x90 && b <= 0x9f) return scan_items(s, b & 0x0f, 1, depth);
    if (b >= 0xa0 && b <= 0xbf) return take(s, b & 0x1f);
    switch (b) {
    case 0xca: return take(s, 4);
    case 0xcb: return take(s, 8);
    case 0xcc: case 0xd0: return take(s, 1);
    case 0xcd: case 0xd1: return take(s, 2);
    case 0xce: case 0xd2: return take(s, 4);
    case 0xcf: case 0xd3: return take(s, 8);
    }
    int lb = length_bytes(b);
    if (lb == 0) {
        s->why = (b >= 0xc4 && b <= 0xc6) ? "binary values are not accepted" : "extension or reserved msgpack type";
        return false;
    }
    size_t at = s->pos;
    if (!take(s, (uint64_t)lb)) return false;
    uint64_t n = be(s->p + at, lb);
    if (b <= 0xdb) return take(s, n);
    return scan_items(s, n, b >= 0xde ? 2 : 1, depth);
}

/* ---- msgpack object -> JSON ---------------------------------------------- */

static json_t *to_json(const msgpack_object *o, const char **why);

/* A NUL would silently cut a string short wherever C reads it. */
static bool has_nul(const msgpack_object_str *s) { return s->size && memchr(s->ptr, 0, s->size); }

static char *key_copy(const msgpack_object_str *s) {
    char *key = malloc(s->size + 1);
    if (!key) return NULL;
    if (s->size) memcpy(key, s->ptr, s->size);
    key[s->size] = '\0';
    return key;
}

static json_t *map_to_json(const msgpack_object_map *m, const char **why) {
    json_t *obj = json_object();
    for (uint32_t i = 0; i < m->size; i++) {
        const msgpack_object *k = &m->ptr[i].key;
        if (k->type != MSGPACK_OBJECT_STR) { *why = "map keys must be strings"; break; }
        if (has_nul(&k->via.str)) { *why = "map key holds a NUL byte"; break; }
        char *key = key_copy(&k->via.str);
        if (!key) { *why = "out of memory"; break; }
        json_t *v = to_json(&m->ptr[i].val, why);
        if (v && json_object_set_new(obj, key, v)) { v = NULL; *why = "map key is not valid UTF-8"; }
        free(key);
        if (!v) break;
    }
    if (*why) { json_decref(obj); return NULL; }
    return obj;
}

static json_t *to_json(const msgpack_object *o, const char **why) {
    switch (o->type) {
    case MSGPACK_OBJECT_NIL: return json_null();
    case MSGPACK_OBJECT_BOOLEAN: return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX) { *why = "integer beyond int64"; return NULL; }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer(o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64: return nc_json_number(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        if (has_nul(&o->via.str)) { *why = "string holds a NUL byte"; return NULL; }
        json_t *s = json_stringn(o->via.str.size ? o->via.str.ptr : "", o->via.str.size); /* "" may come as NULL */
        if (!s) *why = "string is not valid UTF-8";
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *a = json_array();
        for (uint32_t i = 0; i < o->via.array.size; i++) {
            json_t *v = to_json(&o->via.array.ptr[i], why);
            if (!v) { json_decref(a); return NULL; }
            json_array_append_new(a, v);
        }
        return a;
    }
    case MSGPACK_OBJECT_MAP: return map_to_json(&o->via.map, why);
    default: *why = "unsupported msgpack type"; return NULL;
    }
}

json_t *nc_frame_unpack(const uint8_t *body, size_t len, nc_error *err) {
    scanner s = {body, len, 0, 1, NULL}; /* the frame's own value */
    if (len == 0) s.why = "empty frame";
    else if (scan_value(&s, 0) && s.pos != len) s.why = "trailing bytes after the msgpack value";
    if (s.why) {
        nc_fail(err, NC_E_BAD_REQUEST, "undecodable frame: %s", s.why);
        return NULL;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    json_t *out = NULL;
    const char *why = NULL;
    if (msgpack_unpack_next(&u, (const char *)body, len, &off) != MSGPACK_UNPACK_SUCCESS)
        why = "msgpack parse error";
    else
        out = to_json(&u.data, &why);
    msgpack_unpacked_destroy(&u);
    if (!out) nc_fail(err, NC_E_BAD_REQUEST, "undecodable frame: %s", why ? why : "invalid value");
    return out;
}

/* ---- JSON -> msgpack ------------------------------------------------------ */

static void pack_str(msgpack_packer *pk, const char *s, size_t n) {
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

static void pack(msgpack_packer *pk, json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        msgpack_pack_map(pk, json_object_size(v));
        const char *k;
        json_t *x;
        json_object_foreach(v, k, x) {
            pack_str(pk, k, strlen(k));
            pack(pk, x);
        }
        break;
    }
    case JSON_ARRAY: {
        msgpack_pack_array(pk, json_array_size(v));
        size_t i;
        json_t *x;
        json_array_foreach(v, i, x) pack(pk, x);
        break;
    }
    case JSON_STRING: pack_str(pk, json_string_value(v), json_string_length(v)); break;
    case JSON_INTEGER: msgpack_pack_int64(pk, json_integer_value(v)); break;
    case JSON_REAL: msgpack_pack_double(pk, json_real_value(v)); break;
    case JSON_TRUE: msgpack_pack_true(pk); break;
    case JSON_FALSE: msgpack_pack_false(pk); break;
    case JSON_NULL: msgpack_pack_nil(pk); break;
    }
}

int nc_frame_pack(json_t *msg, uint8_t **out, size_t *len) {
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_sbuffer_write(&sb, "\0\0\0\0", NC_FRAME_HEADER);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    pack(&pk, msg);
    if (!sb.data) return -1;
    uint32_t n = (uint32_t)(sb.size - NC_FRAME_HEADER);
    uint8_t *p = (uint8_t *)sb.data;
    p[0] = (uint8_t)(n >> 24); p[1] = (uint8_t)(n >> 16); p[2] = (uint8_t)(n >> 8); p[3] = (uint8_t)n;
    *out = p;
    *len = sb.size;
    return 0;
}
