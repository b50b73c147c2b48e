/* schema.h: the command schema: every command (its id, name, whether the
 * engine runs it) and every argument of each (wire name, type, default,
 * bounds, help, and its field in the command's argument struct, args.h).
 * The daemon parses and checks requests with it, ncctl derives its flags and
 * --help from it, and run.json records every resolved value. Arguments come
 * and go as JSON values (jansson's json_t, declared here only by name). */
#ifndef NC_SCHEMA_H
#define NC_SCHEMA_H

#include "error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct json_t json_t;

typedef enum nc_arg_type {
    NC_ARG_INT,    /* int64 */
    NC_ARG_FLOAT,  /* double */
    NC_ARG_BOOL,   /* bool */
    NC_ARG_STRING, /* char[NC_ARG_STR_MAX], UTF-8 */
    NC_ARG_CHOICE, /* an enum (int): the index of one of `choices` */
} nc_arg_type;

#define NC_ARG_STR_MAX 512

typedef struct nc_arg_spec {
    const char *name;    /* snake_case wire name; ncctl's flag is --kebab-case */
    nc_arg_type type;
    const char *def;     /* default, as text ("" for empty string) */
    const char *const *choices; /* NC_ARG_CHOICE only: the enum's names, NULL-terminated */
    double min, max;     /* bounds for INT and FLOAT (inclusive) */
    size_t offset;       /* offset of the field in the command's config struct */
    const char *help;
} nc_arg_spec;

/* Every command, by the id its spec carries: dispatch goes by id. */
typedef enum nc_command_id {
    NC_CMD_STATUS, NC_CMD_TRAIN, NC_CMD_SAMPLE, NC_CMD_EVAL, NC_CMD_CHECKPOINT, NC_CMD_ABLATE, NC_CMD_TOKENIZE,
    NC_CMD_CANCEL, NC_CMD_SHUTDOWN, NC_CMD_COUNT
} nc_command_id;

typedef struct nc_command_spec {
    nc_command_id id;
    const char *name;
    const char *summary;
    bool engine;         /* run by the engine worker (false: by the daemon loop) */
    bool long_running;   /* streams progress; keeps running when its client goes (its results are on
                          * disk); any other job of the engine ends at its next step when its client goes */
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
/* A figure that may not exist: null for NaN (none), else nc_json_number. */
json_t *nc_json_measured(double v);
bool nc_json_nonfinite(json_t *v, double *out);
/* A choice argument's names joined with '|' ("scalar|tensor"), into out. */
void nc_choices_text(const nc_arg_spec *spec, char *out, size_t n);
/* Parses one argument's text form (a flag's value) into JSON of its type. */
json_t *nc_arg_value_from_text(const nc_arg_spec *spec, const char *text, nc_error *err);

#endif
