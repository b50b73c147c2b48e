/* testutil.h: helpers shared by the test suites: temporary folders, a real
 * nanochatd process on a private socket, and a client connected to it. */
#ifndef NC_TESTUTIL_H
#define NC_TESTUTIL_H

#include "ncclient.h"
#include "suite.h"

#include <check.h>
#include <limits.h>
#include <sys/types.h>

/* A fresh folder under $TMPDIR (or /tmp); removed by tu_rmtree. */
void tu_tmpdir(char *out, size_t n, const char *tag);
void tu_rmtree(const char *path);

/* Under AddressSanitizer a freed block waits in a quarantine (256 MB by
 * default) before it is reused or unmapped, so resident memory overstates
 * the working set and the memory guard would trip on runs that leak nothing.
 * LeakSanitizer watches for leaks in that build, and the daemons and engines
 * the tests start get a growth ratio out of the guard's reach unless a test
 * sets its own (test_guard does). In other builds the defaults stand:
 * tu_guard_args is empty and tu_guard_max_growth() is 0. */
extern const char *const tu_guard_args[]; /* extra nanochatd arguments, NULL-terminated */
double tu_guard_max_growth(void);         /* for nc_engine_opts.guard_max_growth */

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

/* The next draw of a fixed pseudo-random stream for test data (an LCG; 24 bits). */
static inline uint32_t tu_lcg(uint32_t *state) {
    *state = *state * 1664525u + 1013904223u;
    return *state >> 8;
}

/* n floats in [-1, 1] (steps of 0.001) from the fixed stream of `seed`. */
static inline void tu_random_floats(float *x, int64_t n, uint32_t seed) {
    for (int64_t i = 0; i < n; i++) x[i] = (float)(tu_lcg(&seed) % 2001) / 1000.0f - 1.0f;
}

#endif
