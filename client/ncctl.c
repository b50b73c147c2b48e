/* ncctl: the command-line client of nanochatd.
 *
 * Flags come from the command schema (nc_commands()): every argument `foo_bar`
 * of a command is the flag --foo-bar. The global options (--socket, --json,
 * --no-autostart, --timeout) go before or after the command. Exit codes: 0
 * success, 1 the daemon answered with an error, 2 usage error, 3 cannot
 * connect, 4 no reply within --timeout. */
#define _GNU_SOURCE
#include "ncclient.h"

#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { EXIT_DAEMON_ERROR = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3, EXIT_TIMEOUT = 4 };
enum { OPT_SOCKET = 1000, OPT_JSON, OPT_NO_AUTOSTART, OPT_TIMEOUT, OPT_HELP, OPT_FIRST_ARG = 2000 };

typedef struct options {
    char socket[PATH_MAX];
    bool json;
    bool autostart;
    double timeout_s; /* 0: wait as long as the job runs */
    bool progress;    /* a progress bar on a terminal */
    bool stream;      /* a sample's text printed as it comes, on a terminal */
    bool streamed;    /* some of it was */
    char prompt[NC_ARG_STR_MAX];
} options;

/* The global options, for both passes of getopt_long. */
static const struct option global_options[] = {
    {"socket", required_argument, NULL, OPT_SOCKET},
    {"json", no_argument, NULL, OPT_JSON},
    {"no-autostart", no_argument, NULL, OPT_NO_AUTOSTART},
    {"timeout", required_argument, NULL, OPT_TIMEOUT},
    {"help", no_argument, NULL, OPT_HELP},
};
#define N_GLOBAL (sizeof global_options / sizeof global_options[0])

static void to_flag(const char *name, char *out, size_t n) {
    snprintf(out, n, "%s", name);
    for (char *p = out; *p; p++)
        if (*p == '_') *p = '-';
}

static void usage_all(FILE *f) {
    size_t n;
    const nc_command_spec *cmds = nc_commands(&n);
    fprintf(f, "usage: ncctl [global options] <command> [flags]\n\ncommands:\n");
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\nglobal options (before or after the command):\n"
               "  --socket PATH     daemon socket, at most 107 bytes (default: $NANOCHAT_SOCKET,\n"
               "                    $XDG_RUNTIME_DIR/nanochat/nanochatd.sock, /tmp/nanochat-$UID/nanochatd.sock)\n"
               "  --json            print every event and the result as JSON lines\n"
               "  --no-autostart    do not start nanochatd when none answers\n"
               "  --timeout S       give up when no reply has come within S seconds (default: wait)\n"
               "  --help            this help; a command's own flags: ncctl <command> --help\n"
               "\nexit codes: 0 success, 1 daemon error, 2 usage error, 3 cannot connect, 4 timed out\n");
}

static void usage_cmd(const nc_command_spec *cmd) {
    printf("usage: ncctl %s%s [flags]\n%s\n\n", cmd->name, strcmp(cmd->name, "checkpoint") ? "" : " save|load|list|export|import [PATH]",
           cmd->summary);
    for (size_t i = 0; i < cmd->nargs; i++) {
        const nc_arg_spec *a = &cmd->args[i];
        char flag[80];
        to_flag(a->name, flag, sizeof flag);
        const char *meta = a->type == NC_ARG_BOOL ? "[=BOOL]" : a->type == NC_ARG_INT ? " N" : a->type == NC_ARG_FLOAT ? " X" : " S";
        printf("  --%s%s\n      %s", flag, meta, a->help);
        if (a->type == NC_ARG_CHOICE) {
            char choices[128];
            nc_choices_text(a, choices, sizeof choices);
            printf(" (%s)", choices);
        }
        printf(" [default: %s]\n", *a->def ? a->def : "\"\"");
    }
    printf("global options: --socket PATH, --json, --no-autostart, --timeout S, --help (see ncctl --help)\n");
}

/* One global option; EXIT_SUCCESS, or EXIT_USAGE with a line on stderr. */
static int take_global(int c, const char *arg, options *o) {
    char *end;
    switch (c) {
    case OPT_SOCKET:
        if (strlen(arg) >= 108) {
            fprintf(stderr, "ncctl: --socket: a socket path has at most 107 bytes (got %zu)\n", strlen(arg));
            return EXIT_USAGE;
        }
        snprintf(o->socket, sizeof o->socket, "%s", arg);
        return EXIT_SUCCESS;
    case OPT_JSON: o->json = true; return EXIT_SUCCESS;
    case OPT_NO_AUTOSTART: o->autostart = false; return EXIT_SUCCESS;
    case OPT_TIMEOUT:
        o->timeout_s = strtod(arg, &end);
        if (end == arg || *end || !isfinite(o->timeout_s) || o->timeout_s <= 0 || o->timeout_s > 31536000) {
            fprintf(stderr, "ncctl: --timeout: seconds above 0, at most 31536000 (got '%s')\n", arg);
            return EXIT_USAGE;
        }
        return EXIT_SUCCESS;
    }
    return EXIT_USAGE;
}

/* The global options before the command; *next: the command's index. */
static int parse_globals(int argc, char **argv, options *o, int *next) {
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+h", global_options, NULL)) != -1) {
        if (c == OPT_HELP || c == 'h') {
            usage_all(stdout);
            exit(EXIT_SUCCESS);
        }
        if (c == '?' || c == ':') {
            fprintf(stderr, "ncctl: unknown or incomplete option '%s' (see ncctl --help)\n", argv[optind - 1]);
            return EXIT_USAGE;
        }
        if (take_global(c, optarg, o)) return EXIT_USAGE;
    }
    *next = optind;
    return EXIT_SUCCESS;
}

/* Builds the args object from argv; returns EXIT_SUCCESS or EXIT_USAGE. */
static int parse_flags(const nc_command_spec *cmd, int argc, char **argv, options *o, json_t *args) {
    struct option longopts[128];
    char names[128][80];
    size_t k = 0;
    for (size_t i = 0; i < cmd->nargs && k < 120; i++, k++) {
        to_flag(cmd->args[i].name, names[k], sizeof names[k]);
        longopts[k] = (struct option){names[k], cmd->args[i].type == NC_ARG_BOOL ? optional_argument : required_argument,
                                      NULL, OPT_FIRST_ARG + (int)i};
    }
    for (size_t g = 0; g < N_GLOBAL; g++) longopts[k++] = global_options[g];
    longopts[k] = (struct option){0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_HELP) {
            usage_cmd(cmd);
            exit(EXIT_SUCCESS);
        } else if (c >= OPT_SOCKET && c < OPT_HELP) {
            if (take_global(c, optarg, o)) return EXIT_USAGE;
        } else if (c >= OPT_FIRST_ARG) {
            const nc_arg_spec *a = &cmd->args[c - OPT_FIRST_ARG];
            nc_error err;
            json_t *v = nc_arg_value_from_text(a, optarg ? optarg : "true", &err);
            if (!v) { fprintf(stderr, "ncctl %s: %s\n", cmd->name, err.message); return EXIT_USAGE; }
            json_object_set_new(args, a->name, v);
        } else {
            fprintf(stderr, "ncctl %s: unknown or incomplete flag '%s' (see ncctl %s --help)\n", cmd->name,
                    argv[optind - 1], cmd->name);
            return EXIT_USAGE;
        }
    }
    return EXIT_SUCCESS;
}

/* `ncctl checkpoint save PATH`: positional action and path. */
static int parse_positionals(const nc_command_spec *cmd, int argc, char **argv, json_t *args) {
    int left = argc - optind;
    if (strcmp(cmd->name, "checkpoint") == 0 && left <= 2) {
        if (left >= 1) json_object_set_new(args, "action", json_string(argv[optind]));
        if (left == 2) json_object_set_new(args, "path", json_string(argv[optind + 1]));
        return EXIT_SUCCESS;
    }
    if (left == 0) return EXIT_SUCCESS;
    fprintf(stderr, "ncctl %s: unexpected argument '%s'\n", cmd->name, argv[optind]);
    return EXIT_USAGE;
}

static void print_json_line(const char *key, const char *name, json_t *body) {
    json_t *line = name ? json_pack("{s:s, s:O}", key, name, "data", body ? body : json_null())
                        : json_pack("{s:O}", key, body ? body : json_null());
    char *s = json_dumps(line, JSON_COMPACT);
    printf("%s\n", s);
    fflush(stdout);
    free(s);
    json_decref(line);
}

static void progress_bar(json_t *d) {
    double step = json_number_value(json_object_get(d, "step")), steps = json_number_value(json_object_get(d, "steps"));
    double loss = json_number_value(json_object_get(d, "loss")), tps = json_number_value(json_object_get(d, "tok_per_s"));
    double el = json_number_value(json_object_get(d, "elapsed_s"));
    int width = 24, fill = steps > 0 ? (int)(width * step / steps) : 0;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '#' : '.';
    bar[width] = '\0';
    double eta = step > 0 ? el * (steps - step) / step : 0;
    fprintf(stderr, "\r[%s] step %.0f/%.0f loss %.4f %.1fK tok/s ETA %02d:%02d ", bar, step, steps, loss, tps / 1e3,
            (int)eta / 60, (int)eta % 60);
    fflush(stderr);
}

/* A sample's new text, after its prompt, as it comes. */
static void stream_text(options *o, json_t *data) {
    if (!o->streamed) fputs(o->prompt, stdout);
    o->streamed = true;
    fputs(json_string_value(json_object_get(data, "text")), stdout);
    fflush(stdout);
}

static void on_event(void *ctx, const char *event, json_t *data) {
    options *o = ctx;
    if (o->json) print_json_line("event", event, data);
    else if (strcmp(event, "text") == 0 && o->stream) stream_text(o, data);
    else if (strcmp(event, "progress") == 0 && o->progress) progress_bar(data);
    else if (strcmp(event, "eval") == 0) {
        if (o->progress) fprintf(stderr, "\n");
        fprintf(stderr, "eval step %lld: val loss %.4f, %.4f bits per byte\n",
                (long long)json_integer_value(json_object_get(data, "step")),
                json_number_value(json_object_get(data, "val_loss")), json_number_value(json_object_get(data, "bpb")));
    }
}

/* A sample's texts, each after a header line when there are several (the
 * one text already printed as it came needs only its newline). */
static void print_texts(const options *o, json_t *texts) {
    size_t n = json_array_size(texts), i;
    json_t *t;
    if (o->streamed) {
        printf("\n");
        return;
    }
    json_array_foreach(texts, i, t) {
        if (n > 1) printf("%s--- sample %zu ---\n", i ? "\n" : "", i);
        printf("%s\n", json_string_value(t));
    }
}

/* The length of the whole UTF-8 character (2 to 4 bytes) at b (n bytes left), or 0. */
static size_t multibyte_char(const unsigned char *b, size_t n) {
    size_t len = b[0] >= 0xC2 && b[0] < 0xE0 ? 2 : b[0] >= 0xE0 && b[0] < 0xF0 ? 3 : b[0] >= 0xF0 && b[0] < 0xF5 ? 4 : 0;
    if (len == 0 || len > n) return 0;
    for (size_t k = 1; k < len; k++)
        if ((b[k] & 0xC0) != 0x80) return 0;
    return len;
}

/* One token's bytes (hex) readably: characters as they are; backslash, \n,
 * \r, \t escaped; any other byte (a control, part of a character the token
 * cuts) as \xNN. */
static void print_token_bytes(const char *hex) {
    unsigned char b[2048];
    size_t n = strlen(hex) / 2;
    if (n > sizeof b) n = sizeof b;
    for (size_t i = 0; i < n; i++) sscanf(hex + 2 * i, "%2hhx", &b[i]);
    for (size_t i = 0, len; i < n; i += len ? len : 1) {
        len = multibyte_char(b + i, n - i);
        if (len) fwrite(b + i, 1, len, stdout);
        else if (b[i] == '\\') printf("\\\\");
        else if (b[i] == '\n') printf("\\n");
        else if (b[i] == '\r') printf("\\r");
        else if (b[i] == '\t') printf("\\t");
        else if (b[i] >= 0x20 && b[i] < 0x7F) putchar(b[i]);
        else printf("\\x%02x", b[i]);
    }
}

/* tokenize's ids, one a line: the id, a tab, the token's bytes. */
static void print_tokens(json_t *res) {
    json_t *ids = json_object_get(res, "ids"), *tokens = json_object_get(res, "tokens");
    for (size_t i = 0; i < json_array_size(ids); i++) {
        printf("%lld\t", (long long)json_integer_value(json_array_get(ids, i)));
        print_token_bytes(json_string_value(json_array_get(tokens, i)));
        printf("\n");
    }
    fprintf(stderr, "%lld tokens (%s, vocabulary %lld)\n", (long long)json_integer_value(json_object_get(res, "count")),
            json_string_value(json_object_get(res, "tokenizer")),
            (long long)json_integer_value(json_object_get(res, "vocab_size")));
}

static void print_result(const options *o, const char *cmd, json_t *res) {
    json_t *texts = json_object_get(res, "texts");
    if (strcmp(cmd, "sample") == 0 && json_is_array(texts)) {
        print_texts(o, texts);
        return;
    }
    if (strcmp(cmd, "tokenize") == 0) {
        print_tokens(res);
        return;
    }
    char *s = json_dumps(res, JSON_INDENT(2) | JSON_REAL_PRECISION(8));
    printf("%s\n", s);
    free(s);
}

static const char *daemon_path(char *buf, size_t n) {
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
    if (len > 0) {
        self[len] = '\0';
        snprintf(buf, n, "%s/nanochatd", dirname(self));
        if (access(buf, X_OK) == 0) return buf;
    }
    return "nanochatd";
}

static int connect_or_start(nc_client *c, const options *o) {
    nc_error err;
    if (nc_client_connect(c, o->socket, &err) == 0) return 0;
    if (!o->autostart) {
        fprintf(stderr, "ncctl: %s\n", err.message);
        return EXIT_CONNECT;
    }
    char bin[PATH_MAX + 16];
    if (nc_client_spawn_daemon(daemon_path(bin, sizeof bin), o->socket, NULL, 30000, &err) ||
        nc_client_connect(c, o->socket, &err)) {
        fprintf(stderr, "ncctl: could not start nanochatd: %s\n", err.message);
        return EXIT_CONNECT;
    }
    return 0;
}

/* How the reply shows: a progress bar for training on a terminal, a single
 * sample's text as it comes on a terminal. */
static void choose_display(options *o, const nc_command_spec *cmd, json_t *args) {
    o->progress = !o->json && cmd->long_running && isatty(STDERR_FILENO);
    json_t *n = json_object_get(args, "num_samples");
    o->stream = !o->json && cmd->id == NC_CMD_SAMPLE && isatty(STDOUT_FILENO) && (!n || json_integer_value(n) == 1);
    json_t *prompt = json_object_get(args, "prompt");
    if (o->stream) /* args go with the request */
        snprintf(o->prompt, sizeof o->prompt, "%s", prompt ? json_string_value(prompt) : nc_arg_find(cmd, "prompt")->def);
}

static int report_error(const options *o, const nc_command_spec *cmd, const nc_client *c, const nc_error *err) {
    if (o->json) {
        json_t *e = json_pack("{s:s, s:s}", "code", nc_code_name(err->code), "message", err->message);
        print_json_line("error", NULL, e);
        json_decref(e);
    }
    fprintf(stderr, "ncctl %s: %s: %s\n", cmd->name, nc_code_name(err->code), err->message);
    return c->timed_out ? EXIT_TIMEOUT : err->code == NC_E_IO ? EXIT_CONNECT : EXIT_DAEMON_ERROR;
}

int main(int argc, char **argv) {
    options o = {.autostart = true};
    nc_default_socket(o.socket, sizeof o.socket);
    int first;
    if (parse_globals(argc, argv, &o, &first)) return EXIT_USAGE;
    if (first >= argc || !strcmp(argv[first], "help")) {
        usage_all(first >= argc ? stderr : stdout);
        return first >= argc ? EXIT_USAGE : EXIT_SUCCESS;
    }
    const nc_command_spec *cmd = nc_command_find(argv[first]);
    if (!cmd) {
        fprintf(stderr, "ncctl: unknown command '%s' (see ncctl --help)\n", argv[first]);
        return EXIT_USAGE;
    }
    json_t *args = json_object();
    int rc = parse_flags(cmd, argc - first, argv + first, &o, args);
    if (rc == EXIT_SUCCESS) rc = parse_positionals(cmd, argc - first, argv + first, args);
    if (rc != EXIT_SUCCESS) {
        json_decref(args);
        return rc;
    }
    choose_display(&o, cmd, args);
    nc_client c;
    if ((rc = connect_or_start(&c, &o))) {
        json_decref(args);
        return rc;
    }
    c.timeout_ms = o.timeout_s > 0 ? (int64_t)(o.timeout_s * 1000) : -1;
    nc_error err;
    double t0 = nc_now();
    json_t *res = nc_client_call(&c, cmd->name, args, on_event, &o, &err);
    nc_client_close(&c);
    if (o.progress) fprintf(stderr, "\n");
    if (!res) return report_error(&o, cmd, &c, &err);
    if (o.json) print_json_line("result", NULL, res);
    else print_result(&o, cmd->name, res);
    if (!o.json && cmd->long_running) fprintf(stderr, "done in %.1f s\n", nc_now() - t0);
    json_decref(res);
    return EXIT_SUCCESS;
}
