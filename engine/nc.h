/* nc.h: the one public header of the nanochat-c engine.
 *
 * The daemon, ncctl, the tools and the tests include this file. It declares
 * the stable error codes, the command schema (every command's arguments with
 * type, default, bounds and help), and the engine: a resident object that runs
 * commands given as JSON arguments and reports events and results as JSON.
 * Nothing here knows about sockets or msgpack. */
#ifndef NC_H
#define NC_H

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NC_VERSION "0.1.0"
#define NC_PROTOCOL_VERSION 1

/* ---- errors ------------------------------------------------------------ */

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
    NC_E_UNSUPPORTED_VERSION, /* checkpoint or protocol version not supported */
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

/* ---- command schema ------------------------------------------------------ */

typedef enum nc_arg_type {
    NC_ARG_INT,    /* int64 */
    NC_ARG_FLOAT,  /* double */
    NC_ARG_BOOL,   /* bool */
    NC_ARG_STRING, /* char[NC_ARG_STR_MAX], UTF-8 */
    NC_ARG_CHOICE, /* char[NC_ARG_STR_MAX], one of `choices` ("a|b|c") */
} nc_arg_type;

#define NC_ARG_STR_MAX 512

typedef struct nc_arg_spec {
    const char *name;    /* snake_case wire name; ncctl's flag is --kebab-case */
    nc_arg_type type;
    const char *def;     /* default, as text ("" for empty string) */
    const char *choices; /* NC_ARG_CHOICE only */
    double min, max;     /* bounds for INT and FLOAT (inclusive) */
    size_t offset;       /* offset of the field in the command's config struct */
    const char *help;
} nc_arg_spec;

typedef struct nc_command_spec {
    const char *name;
    const char *summary;
    bool engine;         /* run by the engine worker (false: by the daemon loop) */
    bool long_running;   /* streams events; cancellable */
    const nc_arg_spec *args;
    size_t nargs;
    size_t cfg_size;     /* size of the config struct args parse into */
} nc_command_spec;

const nc_command_spec *nc_commands(size_t *count);
const nc_command_spec *nc_command_find(const char *name);
const nc_arg_spec *nc_arg_find(const nc_command_spec *cmd, const char *name);
/* Fills cfg with defaults, then with `args` (a JSON object or NULL).
 * Unknown names, wrong types and out-of-range values fail with
 * NC_E_BAD_REQUEST naming the field. */
int nc_args_parse(const nc_command_spec *cmd, json_t *args, void *cfg, nc_error *err);
/* Every argument of cfg as a JSON object (new reference). */
json_t *nc_args_to_json(const nc_command_spec *cmd, const void *cfg);
/* Whether two configs of cmd hold the same arguments. */
bool nc_args_equal(const nc_command_spec *cmd, const void *a, const void *b);
/* JSON cannot hold NaN or infinities: they travel as the strings "nan",
 * "inf" and "-inf", which float arguments accept. */
json_t *nc_json_number(double v);
bool nc_json_nonfinite(json_t *v, double *out);
/* Parses one argument's text form (a flag's value) into JSON of its type. */
json_t *nc_arg_value_from_text(const nc_arg_spec *spec, const char *text, nc_error *err);

/* ---- engine -------------------------------------------------------------- */

typedef struct nc_engine nc_engine;

typedef struct nc_engine_opts {
    const char *data_path;      /* default corpus (UTF-8 text) */
    const char *results_dir;    /* run artifacts: <results_dir>/<run-id>/ */
    const char *checkpoint_dir; /* checkpoints; relative checkpoint paths resolve here */
    int threads;                /* CPU threads; 0 = number of cores */
    int guard_window;           /* memory guard: rolling window of observations */
    double guard_max_growth;    /* memory guard: allowed growth over the window minimum */
    /* NULL: request paths are not confined. Else a NULL-terminated list of
     * folders (at most NC_MAX_ALLOW_DIRS; it must outlive the engine): the
     * paths in requests (data, checkpoint, resume, path) must resolve, symlinks
     * followed, inside one of them, checkpoint_dir, results_dir or the default
     * corpus's folder; others fail with PermissionDenied. */
    const char *const *allow_dirs;
    /* Backend opened by nc_engine_new (auto|cpu|cuda), so that a GPU context
     * exists before the engine is reported ready; NULL: on first use. */
    const char *preload_device;
    /* Memory a request or a file may claim (memory.h); 0: the defaults (80% of
     * the host's memory, 90% of the GPU's). */
    int64_t max_memory_bytes, max_device_memory_bytes;
} nc_engine_opts;

#define NC_MAX_ALLOW_DIRS 32

/* Events: `event` names the kind ("progress", "eval", ...); the callee owns `data`. */
typedef void (*nc_emit_fn)(void *ctx, const char *event, json_t *data);

typedef struct nc_sink {
    nc_emit_fn emit;      /* may be NULL */
    void *ctx;
    atomic_bool *cancel;  /* polled at step boundaries; may be NULL */
    atomic_uint_fast64_t *beats; /* bumped at every step boundary, a heartbeat; may be NULL */
} nc_sink;

nc_engine *nc_engine_new(const nc_engine_opts *opts, nc_error *err);
void nc_engine_free(nc_engine *engine);
/* Runs one engine command (see nc_commands(); engine == true). Returns the
 * result object (new reference) or NULL with *err set. Not thread-safe: one
 * thread (the daemon's worker) owns the engine. */
json_t *nc_engine_run(nc_engine *engine, const char *cmd, json_t *args,
                      const nc_sink *sink, nc_error *err);
/* The checks of a parsed request (cfg from nc_args_parse) that need no
 * engine state: cross-field rules, a model's own (seq_len for the GPT, ...),
 * names and limits. The daemon runs them before it queues a request, so a
 * bad request is refused the same way whether a job runs or not. */
int nc_request_check(const nc_command_spec *cmd, const void *cfg, nc_error *err);
/* A summary of the resident model (null fields when none), for `status`. */
json_t *nc_engine_describe(nc_engine *engine);
/* Saves the resident model to its default checkpoint, if one is loaded and
 * has changed since the last save. Returns 0 when nothing needed saving. */
int nc_engine_save_resident(nc_engine *engine, json_t **result, nc_error *err);

#endif
