/* notify.h: systemd readiness, status and watchdog (sd_notify). All calls are
 * no-ops when the daemon was not started by systemd (no NOTIFY_SOCKET). */
#ifndef NCD_NOTIFY_H
#define NCD_NOTIFY_H

#include <event2/event.h>

void notify_ready(void);
void notify_stopping(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Feeds the watchdog from the loop at half its interval, but only while
 * `healthy` says the worker is making progress; returns NULL when systemd
 * asked for no watchdog. */
struct event *notify_watchdog_start(struct event_base *base, int (*healthy)(void *ctx), void *ctx);
void notify_watchdog_free(struct event *ev);

#endif
