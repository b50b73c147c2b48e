/* proto.h: nanochat-c's wire protocol (the contract is PROTOCOL.md).
 *
 * A frame is a 4-byte big-endian length followed by exactly that many bytes
 * holding one msgpack map. Messages are built and read as JSON values
 * (jansson), so that the engine, the artifacts and the wire share one data
 * model; this module converts between them with strict limits. */
#ifndef NC_PROTO_H
#define NC_PROTO_H

#include "api.h"

#include <jansson.h>

#include <stddef.h>
#include <stdint.h>

#define NC_FRAME_HEADER 4
#define NC_FRAME_MAX_DEFAULT (16u << 20) /* bytes of one frame body */
#define NC_MSG_MAX_DEPTH 16              /* nesting of maps and arrays */
#define NC_MSG_MAX_ITEMS 4096            /* entries of one map or array */
/* Values of one frame, every key, element and container counted (the
 * frame's own map too). Decoding costs some 65 bytes per value, so this
 * bounds what a frame can expand to (16 MiB of one-byte integers would be
 * 16 M values, over a gigabyte decoded). The largest legitimate message is
 * the reply to `checkpoint list` at its 4096 files: 13 values each, 53,259
 * in all; requests hold at most a few hundred. */
#define NC_MSG_MAX_VALUES 65536

/* The default socket: $NANOCHAT_SOCKET, else $XDG_RUNTIME_DIR/nanochat/nanochatd.sock,
 * else /tmp/nanochat-$UID/nanochatd.sock. */
void nc_default_socket(char *buf, size_t n);

/* Length announced by a frame header. */
uint32_t nc_frame_length(const uint8_t header[NC_FRAME_HEADER]);
/* Packs a JSON value as msgpack with its frame header; *out is malloc'd. */
int nc_frame_pack(json_t *msg, uint8_t **out, size_t *len);
/* Unpacks one frame body (msgpack) into JSON. Fails with BadRequest on
 * anything that is not exactly one well-formed value within the limits:
 * non-string keys, binary or extension values, invalid UTF-8 or NUL bytes
 * in strings, integers beyond int64, depth, size or number of values over
 * the limits, trailing bytes. The limits are checked on the bytes, in time
 * linear in them and without allocating, before anything is unpacked. */
json_t *nc_frame_unpack(const uint8_t *body, size_t len, nc_error *err);

/* A validated request. `args` is a borrowed reference into `msg`. */
typedef struct nc_request {
    json_t *msg;
    uint64_t id;
    bool has_id;       /* false: id missing or invalid; replies use id 0 */
    const char *cmd;
    json_t *args;
} nc_request;

/* Checks v, id, cmd and args; takes ownership of msg (also on failure). */
int nc_request_parse(json_t *msg, nc_request *req, nc_error *err);
void nc_request_free(nc_request *req);

/* Message builders (new references). */
json_t *nc_msg_request(uint64_t id, const char *cmd, json_t *args /* stolen; NULL = {} */);
json_t *nc_msg_ok(uint64_t id, json_t *result /* stolen; NULL = {} */);
json_t *nc_msg_error(uint64_t id, nc_code code, const char *message);
json_t *nc_msg_event(uint64_t id, const char *event, json_t *data /* stolen */);

/* A reply or event as the client sees it. */
typedef enum { NC_REPLY_OK, NC_REPLY_ERROR, NC_REPLY_EVENT } nc_reply_kind;
typedef struct nc_reply {
    json_t *msg;
    nc_reply_kind kind;
    uint64_t id;
    const char *event;  /* NC_REPLY_EVENT */
    json_t *body;       /* result (OK) or data (EVENT); borrowed */
    nc_code code;       /* NC_REPLY_ERROR */
    const char *code_name;
    const char *message;
} nc_reply;

int nc_reply_parse(json_t *msg, nc_reply *r, nc_error *err); /* takes ownership */
void nc_reply_free(nc_reply *r);

#endif
