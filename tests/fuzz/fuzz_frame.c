/* fuzz_frame.c: a libFuzzer target over everything a client controls: the
 * bytes of a frame body go through the decoder, then request validation,
 * argument parsing against the command schema and the requests' own checks
 * (nc_request_check), as the daemon's dispatch does; the client's reply
 * parser reads them too. Whatever decodes must survive a round trip through
 * the encoder unchanged. Built with NC_FUZZ=ON
 * (clang); scripts/fuzz.sh runs it. */
#include "engine/nc.h"
#include "proto.h"

#include <stdlib.h>

static void validate(json_t *msg) {
    nc_request req;
    nc_error err;
    if (nc_request_parse(json_incref(msg), &req, &err) == 0) {
        const nc_command_spec *cmd = nc_command_find(req.cmd);
        void *cfg = cmd ? malloc(cmd->cfg_size) : NULL;
        if (cmd && nc_args_parse(cmd, req.args, cfg, &err) == 0) nc_request_check(cmd, cfg, &err);
        free(cfg);
    }
    nc_request_free(&req);
    nc_reply r;
    nc_reply_parse(json_incref(msg), &r, &err);
    nc_reply_free(&r);
}

static void round_trip(json_t *msg) {
    uint8_t *frame;
    size_t len;
    nc_error err;
    if (nc_frame_pack(msg, &frame, &len)) abort();
    json_t *again = nc_frame_unpack(frame + NC_FRAME_HEADER, len - NC_FRAME_HEADER, &err);
    if (nc_frame_length(frame) != len - NC_FRAME_HEADER || !json_equal(msg, again)) abort();
    json_decref(again);
    free(frame);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    nc_error err;
    json_t *msg = nc_frame_unpack(data, size, &err);
    if (!msg) return 0;
    validate(msg);
    round_trip(msg);
    json_decref(msg);
    return 0;
}
