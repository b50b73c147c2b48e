/* ncctl: the command-line client of nanochatd.
 *
 * Flags come from the command schema (nc_commands()): every argument `foo_bar`
 * of a command is the flag --foo-bar. Exit codes: 0 success, 1 the daemon
 * answered with an error, 2 usage error, 3 cannot connect. */
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

enum { EXIT_DAEMON_ERROR = 1, EXIT_USAGE = 2, EXIT_CONNECT = 3 };
enum { OPT_SOCKET = 1000, OPT_JSON, OPT_NO_AUTOSTART, OPT_HELP, OPT_FIRST_ARG = 2000 };

typedef struct options {
    char socket[108];
    bool json;
    bool autostart;
    bool progress; /* a progress bar on a terminal */
} options;

static void to_flag(const char *name, char *out, size_t n) {
    snprintf(out, n, "%s", name);
    for (char *p = out; *p; p++)
        if (*p == '_') *p = '-';
}

static void usage_all(FILE *f) {
    size_t n;
    const nc_command_spec *cmds = nc_commands(&n);
    fprintf(f, "usage: ncctl <command> [flags]\n\ncommands:\n");
    for (size_t i = 0; i < n; i++) fprintf(f, "  %-11s %s\n", cmds[i].name, cmds[i].summary);
    fprintf(f, "\nflags of every command:\n"
               "  --socket PATH     daemon socket (default: $NANOCHAT_SOCKET, $XDG_RUNTIME_DIR/nanochat/nanochatd.sock,\n"
               "                    /tmp/nanochat-$UID/nanochatd.sock)\n"
               "  --json            print every event and the result as JSON lines\n"
               "  --no-autostart    do not start nanochatd when none answers\n"
               "  --help            this help, or a command's flags: ncctl <command> --help\n"
               "\nexit codes: 0 success, 1 daemon error, 2 usage error, 3 cannot connect\n");
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
    printf("  --socket PATH, --json, --no-autostart, --help\n");
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
    longopts[k++] = (struct option){"socket", required_argument, NULL, OPT_SOCKET};
    longopts[k++] = (struct option){"json", no_argument, NULL, OPT_JSON};
    longopts[k++] = (struct option){"no-autostart", no_argument, NULL, OPT_NO_AUTOSTART};
    longopts[k++] = (struct option){"help", no_argument, NULL, OPT_HELP};
    longopts[k] = (struct option){0};
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == OPT_SOCKET) snprintf(o->socket, sizeof o->socket, "%s", optarg);
        else if (c == OPT_JSON) o->json = true;
        else if (c == OPT_NO_AUTOSTART) o->autostart = false;
        else if (c == OPT_HELP) { usage_cmd(cmd); exit(EXIT_SUCCESS); }
        else if (c >= OPT_FIRST_ARG) {
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

static void on_event(void *ctx, const char *event, json_t *data) {
    options *o = ctx;
    if (o->json) print_json_line("event", event, data);
    else if (strcmp(event, "progress") == 0 && o->progress) progress_bar(data);
    else if (strcmp(event, "eval") == 0) {
        if (o->progress) fprintf(stderr, "\n");
        fprintf(stderr, "eval step %lld: val loss %.4f, %.4f bits per byte\n",
                (long long)json_integer_value(json_object_get(data, "step")),
                json_number_value(json_object_get(data, "val_loss")), json_number_value(json_object_get(data, "bpb")));
    }
}

static void print_result(const char *cmd, json_t *res) {
    json_t *text = json_object_get(res, "text");
    if (strcmp(cmd, "sample") == 0 && json_is_string(text)) {
        printf("%s\n", json_string_value(text));
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

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        usage_all(argc < 2 ? stderr : stdout);
        return argc < 2 ? EXIT_USAGE : EXIT_SUCCESS;
    }
    const nc_command_spec *cmd = nc_command_find(argv[1]);
    if (!cmd) {
        fprintf(stderr, "ncctl: unknown command '%s' (see ncctl --help)\n", argv[1]);
        return EXIT_USAGE;
    }
    options o = {.autostart = true};
    nc_default_socket(o.socket, sizeof o.socket);
    json_t *args = json_object();
    int rc = parse_flags(cmd, argc - 1, argv + 1, &o, args);
    if (rc == EXIT_SUCCESS) rc = parse_positionals(cmd, argc - 1, argv + 1, args);
    if (rc != EXIT_SUCCESS) { json_decref(args); return rc; }
    o.progress = !o.json && cmd->long_running && isatty(STDERR_FILENO);
    nc_client c;
    if ((rc = connect_or_start(&c, &o))) { json_decref(args); return rc; }
    nc_error err;
    double t0 = nc_now();
    json_t *res = nc_client_call(&c, cmd->name, args, on_event, &o, &err);
    nc_client_close(&c);
    if (o.progress) fprintf(stderr, "\n");
    if (!res) {
        if (o.json) {
            json_t *e = json_pack("{s:s, s:s}", "code", nc_code_name(err.code), "message", err.message);
            print_json_line("error", NULL, e);
            json_decref(e);
        }
        fprintf(stderr, "ncctl %s: %s: %s\n", cmd->name, nc_code_name(err.code), err.message);
        return err.code == NC_E_IO ? EXIT_CONNECT : EXIT_DAEMON_ERROR;
    }
    if (o.json) print_json_line("result", NULL, res);
    else print_result(cmd->name, res);
    if (!o.json && cmd->long_running) fprintf(stderr, "done in %.1f s\n", nc_now() - t0);
    json_decref(res);
    return EXIT_SUCCESS;
}
