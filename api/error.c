/* error.c: stable error code names and the nc_fail helper. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static const char *const names[NC_CODE_COUNT] = {
    [NC_OK] = "Ok",
    [NC_E_BAD_REQUEST] = "BadRequest",
    [NC_E_UNKNOWN_COMMAND] = "UnknownCommand",
    [NC_E_FRAME_TOO_LARGE] = "FrameTooLarge",
    [NC_E_BUSY] = "Busy",
    [NC_E_CANCELLED] = "Cancelled",
    [NC_E_NOT_FOUND] = "NotFound",
    [NC_E_INVALID_TEMPERATURE] = "InvalidTemperature",
    [NC_E_PROMPT_TOO_LONG] = "PromptTooLong",
    [NC_E_UNKNOWN_CHARACTER] = "UnknownCharacter",
    [NC_E_INTERNAL] = "Internal",
    [NC_E_CHECKPOINT_CORRUPT] = "CheckpointCorrupt",
    [NC_E_UNSUPPORTED_VERSION] = "UnsupportedVersion",
    [NC_E_MEMORY_DRIFT] = "MemoryDrift",
    [NC_E_PERMISSION_DENIED] = "PermissionDenied",
    [NC_E_NON_FINITE_LOSS] = "NonFiniteLoss",
    [NC_E_IO] = "IoError",
    [NC_E_DEVICE_UNAVAILABLE] = "DeviceUnavailable",
    [NC_E_SHUTTING_DOWN] = "ShuttingDown",
};

const char *nc_code_name(nc_code code) {
    return (code >= 0 && code < NC_CODE_COUNT) ? names[code] : "Internal";
}

nc_code nc_code_from_name(const char *name) {
    for (int i = 0; i < NC_CODE_COUNT; i++)
        if (name && strcmp(names[i], name) == 0) return (nc_code)i;
    return NC_E_INTERNAL;
}

int nc_fail(nc_error *err, nc_code code, const char *fmt, ...) {
    if (err) {
        err->code = code;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
    }
    return -1;
}
