/* svc.h: helpers of the service, security and fault suites (test_service_*,
 * test_daemon_*): daemons started under another uid or environment, raw
 * connections, connections made as another user, /proc figures of a
 * process, a status prober that measures latency while other things happen,
 * and checkpoint files compared by their contents. */
#ifndef NC_SVC_H
#define NC_SVC_H

#include "testutil.h"

#include <pthread.h>
#include <stdatomic.h>

#define SVC_NOBODY ((uid_t)65534)
#define SVC_NOGROUP ((gid_t)65534)
#define SVC_AS_IS ((uid_t)-1)

/* Starts nanochatd as tu_daemon_start does, but with a small corpus (the
 * first 64 KiB of the bundled one, in <dir>/data/) and without waiting for
 * it: as `uid` (its folder given to that uid) unless SVC_AS_IS. `wrapper`
 * (NULL: none) is a command line the daemon's own is appended to, such as
 * systemd-socket-activate. */
void svc_spawn(tu_daemon *d, uid_t uid, const char *const wrapper[], const char *const extra[]);
/* svc_spawn as ourselves, then svc_wait_ready. */
void svc_start(tu_daemon *d, const char *const extra[]);
/* Waits until it answers status; fails the test when it exits or takes 5 s. */
void svc_wait_ready(const tu_daemon *d);
/* Waits for its exit; the exit status, or -1 when killed by a signal. */
int svc_wait_exit(tu_daemon *d);

/* Runs argv with stdout and stderr captured together in out; the exit status
 * (-1 when it could not run). Usable outside a test. */
int svc_run(const char *const argv[], char *out, size_t cap);

/* A raw connection (-1 on failure, no assertion: usable in children). */
int svc_connect(const char *socket);
void svc_send(int fd, json_t *msg); /* steals msg */
void svc_send_bytes(int fd, const void *p, size_t n);
/* The next reply within timeout_ms; its kind, with its code when an error. */
int svc_recv(int fd, int timeout_ms, nc_reply *r);
/* Skips a job's events to its final reply (each within timeout_ms), left in r. */
void svc_recv_final(int fd, int timeout_ms, nc_reply *r);
/* True when the peer closes within timeout_ms (data before the close is skipped). */
bool svc_closed_within(int fd, int timeout_ms);

/* What a client running as uid:gid gets when it connects and asks status. */
typedef enum { SVC_SERVED, SVC_DENIED, SVC_NO_CONNECT, SVC_OTHER } svc_outcome;
svc_outcome svc_status_as(const char *socket, uid_t uid, gid_t gid);

/* The process's open descriptors and resident memory. */
int svc_fd_count(pid_t pid);
long svc_rss_kb(pid_t pid);

/* Asks status on a fresh connection every few ms from a thread, recording
 * the slowest answer and any failure. */
typedef struct svc_prober {
    pthread_t thread;
    char socket[108];
    atomic_bool stop;
    double max_ms;
    atomic_long probes; /* read while it runs */
    long failures;
} svc_prober;
void svc_prober_start(svc_prober *p, const char *socket);
void svc_prober_stop(svc_prober *p);
/* Stops it after one probe at least, fails the test unless every probe was
 * answered, prints the figure of `scenario`; the slowest answer (ms). */
double svc_prober_finish(svc_prober *p, const char *scenario);
/* svc_prober_finish, and every answer came within svc_latency_ms(). */
void svc_prober_content(svc_prober *p, const char *scenario);
/* The bound on a status answer: 50 ms; NC_TEST_LATENCY_MS raises it (sanitizer builds). */
double svc_latency_ms(void);

double svc_now_ms(void);
/* Short scalar bigram training arguments (the fast, always-available model). */
json_t *svc_bigram(int steps, int log_every);
/* The losses of a train call's progress events, in step order. */
typedef struct svc_losses {
    int n;
    int64_t step[4096];
    double loss[4096];
} svc_losses;
void svc_collect_loss(void *ctx, const char *event, json_t *data);
/* The tensor section of a checkpoint file (malloc'd), to compare weights. */
uint8_t *svc_checkpoint_tensors(const char *path, size_t *len);
/* Loads a checkpoint with the engine library, as a restarted daemon would:
 * its step, or -1 with *err set. */
int64_t svc_checkpoint_load(const char *path, nc_error *err);

/* The suites run small by default; scripts/stress.sh scales them up through
 * the environment and collects the figures they print. */
long svc_env(const char *name, long fallback);
void svc_figure(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
