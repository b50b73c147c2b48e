/* message.c: the request, reply and event messages of the protocol. */
#include "proto.h"

#include <string.h>

json_t *nc_msg_request(uint64_t id, const char *cmd, json_t *args) {
    return json_pack("{s:i, s:I, s:s, s:o}", "v", NC_PROTOCOL_VERSION, "id", (json_int_t)id, "cmd", cmd,
                     "args", args ? args : json_object());
}

json_t *nc_msg_ok(uint64_t id, json_t *result) {
    return json_pack("{s:I, s:b, s:o}", "id", (json_int_t)id, "ok", 1, "result", result ? result : json_object());
}

json_t *nc_msg_error(uint64_t id, nc_code code, const char *message) {
    return json_pack("{s:I, s:b, s:{s:s, s:s}}", "id", (json_int_t)id, "ok", 0, "error",
                     "code", nc_code_name(code), "message", message);
}

json_t *nc_msg_event(uint64_t id, const char *event, json_t *data) {
    return json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id, "event", event, "data", data ? data : json_object());
}

static int request_fail(nc_request *req, nc_error *err, const char *what) {
    nc_fail(err, NC_E_BAD_REQUEST, "%s", what);
    req->cmd = NULL;
    req->args = NULL;
    return -1;
}

int nc_request_parse(json_t *msg, nc_request *req, nc_error *err) {
    memset(req, 0, sizeof *req);
    req->msg = msg;
    if (!json_is_object(msg)) return request_fail(req, err, "a request must be a map");
    json_t *id = json_object_get(msg, "id");
    if (json_is_integer(id) && json_integer_value(id) >= 0) {
        req->id = (uint64_t)json_integer_value(id);
        req->has_id = true;
    }
    json_t *v = json_object_get(msg, "v");
    json_t *cmd = json_object_get(msg, "cmd");
    json_t *args = json_object_get(msg, "args");
    if (!v) return request_fail(req, err, "field 'v' is missing");
    if (!json_is_integer(v)) return request_fail(req, err, "field 'v' must be an integer");
    if (json_integer_value(v) != NC_PROTOCOL_VERSION) {
        nc_fail(err, NC_E_UNSUPPORTED_VERSION, "protocol version %lld is not supported (this daemon speaks %d)",
                (long long)json_integer_value(v), NC_PROTOCOL_VERSION);
        return -1;
    }
    if (!id) return request_fail(req, err, "field 'id' is missing");
    if (!req->has_id) return request_fail(req, err, "field 'id' must be a non-negative integer");
    if (!cmd) return request_fail(req, err, "field 'cmd' is missing");
    if (!json_is_string(cmd)) return request_fail(req, err, "field 'cmd' must be a string");
    if (args && !json_is_object(args) && !json_is_null(args))
        return request_fail(req, err, "field 'args' must be a map");
    const char *key;
    json_t *x;
    json_object_foreach(msg, key, x)
        if (strcmp(key, "v") && strcmp(key, "id") && strcmp(key, "cmd") && strcmp(key, "args")) {
            request_fail(req, err, "");
            return nc_fail(err, NC_E_BAD_REQUEST, "field '%.64s' is not a request field", key);
        }
    req->cmd = json_string_value(cmd);
    req->args = args;
    return 0;
}

void nc_request_free(nc_request *req) {
    json_decref(req->msg);
    memset(req, 0, sizeof *req);
}

int nc_reply_parse(json_t *msg, nc_reply *r, nc_error *err) {
    memset(r, 0, sizeof *r);
    r->msg = msg;
    json_t *id = json_object_get(msg, "id");
    if (!json_is_object(msg) || !json_is_integer(id))
        return nc_fail(err, NC_E_INTERNAL, "malformed reply from the daemon");
    r->id = (uint64_t)json_integer_value(id);
    json_t *event = json_object_get(msg, "event"), *ok = json_object_get(msg, "ok");
    if (json_is_string(event)) {
        r->kind = NC_REPLY_EVENT;
        r->event = json_string_value(event);
        r->body = json_object_get(msg, "data");
    } else if (json_is_true(ok)) {
        r->kind = NC_REPLY_OK;
        r->body = json_object_get(msg, "result");
    } else if (json_is_false(ok)) {
        json_t *e = json_object_get(msg, "error");
        r->kind = NC_REPLY_ERROR;
        r->code_name = json_string_value(json_object_get(e, "code"));
        r->message = json_string_value(json_object_get(e, "message"));
        if (!r->code_name || !r->message) return nc_fail(err, NC_E_INTERNAL, "malformed error reply from the daemon");
        r->code = nc_code_from_name(r->code_name);
    } else {
        return nc_fail(err, NC_E_INTERNAL, "malformed reply from the daemon");
    }
    return 0;
}

void nc_reply_free(nc_reply *r) {
    json_decref(r->msg);
    memset(r, 0, sizeof *r);
}
