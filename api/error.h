/* error.h: the stable error codes every answer carries (PROTOCOL.md), and
 * the error value that functions fill (`return nc_fail(err, code, ...)`). */
#ifndef NC_ERROR_H
#define NC_ERROR_H

/* Stable error codes; nc_code_name() gives the wire string (PROTOCOL.md). */
typedef enum nc_code {
    NC_OK = 0,
    NC_E_BAD_REQUEST,         /* a field is missing, mistyped or out of range */
    NC_E_UNKNOWN_COMMAND,     /* cmd is not a known command */
    NC_E_FRAME_TOO_LARGE,     /* a frame exceeds the daemon's limit */
    NC_E_BUSY,                /* a job is already running */
    NC_E_CANCELLED,           /* the job was cancelled */
    NC_E_NOT_FOUND,           /* no such model / checkpoint / file */
    NC_E_INVALID_TEMPERATURE, /* temperature <= 0 or not finite */
    NC_E_PROMPT_TOO_LONG,     /* prompt longer than max_prompt_tokens */
    NC_E_UNKNOWN_CHARACTER,   /* prompt character outside the vocabulary */
    NC_E_INTERNAL,            /* a bug or an unexpected system failure */
    NC_E_CHECKPOINT_CORRUPT,  /* truncated, corrupt or mismatched checkpoint */
    NC_E_UNSUPPORTED_VERSION, /* checkpoint, token shard or protocol version not supported */
    NC_E_MEMORY_DRIFT,        /* memory guard tripped */
    NC_E_PERMISSION_DENIED,   /* peer or path not allowed */
    NC_E_NON_FINITE_LOSS,     /* the loss became NaN or Inf */
    NC_E_IO,                  /* a file could not be read or written */
    NC_E_DEVICE_UNAVAILABLE,  /* the requested device (cuda) is not available */
    NC_E_SHUTTING_DOWN,       /* the daemon is stopping */
    NC_CODE_COUNT
} nc_code;

typedef struct nc_error {
    nc_code code;
    char message[512];
} nc_error;

const char *nc_code_name(nc_code code);
nc_code nc_code_from_name(const char *name); /* NC_E_INTERNAL if unknown */
/* Sets *err (when err is not NULL) and returns -1, for `return nc_fail(...)`. */
int nc_fail(nc_error *err, nc_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
