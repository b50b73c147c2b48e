/* testutil.h: helpers shared by the test suites: temporary folders, a real
 * nanochatd process on a private socket, and a client connected to it. */
#ifndef NC_TESTUTIL_H
#define NC_TESTUTIL_H

#include "ncclient.h"

#include <check.h>
#include <limits.h>
#include <sys/types.h>

/* A fresh folder under $TMPDIR (or /tmp); removed by tu_rmtree. */
void tu_tmpdir(char *out, size_t n, const char *tag);
void tu_rmtree(const char *path);

typedef struct tu_daemon {
    pid_t pid;
    char dir[PATH_MAX];    /* its state: socket, results/, checkpoints/ */
    char socket[108];
    char results[PATH_MAX];
    char checkpoints[PATH_MAX];
} tu_daemon;

/* Starts build/bin/nanochatd in a new temporary folder with extra arguments
 * (NULL-terminated), and waits until it answers status. */
void tu_daemon_start(tu_daemon *d, const char *const extra[]);
/* SIGTERM, wait for exit; returns the exit status (or -1 when killed by a signal). */
int tu_daemon_stop(tu_daemon *d);
void tu_daemon_cleanup(tu_daemon *d);

/* A connected client (fails the test when it cannot connect). */
void tu_connect(nc_client *c, const tu_daemon *d);
/* One call; fails the test on error unless want_error; returns the result. */
json_t *tu_call(nc_client *c, const char *cmd, json_t *args);
/* One call expected to fail with `code`; returns the message (static buffer). */
const char *tu_call_error(nc_client *c, const char *cmd, json_t *args, nc_code code);

/* Reads a whole file (NUL-terminated, malloc'd); NULL when missing. */
char *tu_read_file(const char *path, size_t *len);

/* Runs a suite with CK_NORMAL output; returns the process exit status. */
int tu_run(Suite *s);

#endif
