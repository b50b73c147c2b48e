/* notify.c: sd_notify wrappers and the watchdog timer. */
#include "notify.h"
#include "log.h"
#include "core/memory.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <systemd/sd-daemon.h>

void notify_ready(void) { sd_notify(0, "READY=1\nSTATUS=idle"); }

void notify_stopping(void) { sd_notify(0, "STOPPING=1\nSTATUS=stopping"); }

void notify_status(const char *fmt, ...) {
    char line[256] = "STATUS=";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + 7, sizeof line - 7, fmt, ap);
    va_end(ap);
    sd_notify(0, line);
}

typedef struct watchdog {
    struct event *ev;
    int (*healthy)(void *ctx);
    void *ctx;
    int warned;
} watchdog;

static void on_tick(evutil_socket_t fd, short what, void *arg) {
    (void)fd, (void)what;
    watchdog *wd = arg;
    if (wd->healthy(wd->ctx)) {
        sd_notify(0, "WATCHDOG=1");
        wd->warned = 0;
    } else if (!wd->warned++) {
        log_error("the training worker stopped making progress; no longer feeding the watchdog");
        sd_notify(0, "STATUS=worker stalled");
    }
}

struct event *notify_watchdog_start(struct event_base *base, int (*healthy)(void *ctx), void *ctx) {
    uint64_t usec = 0;
    if (sd_watchdog_enabled(0, &usec) <= 0 || usec == 0) return NULL;
    watchdog *wd = nc_xcalloc(1, sizeof *wd);
    wd->healthy = healthy;
    wd->ctx = ctx;
    wd->ev = event_new(base, -1, EV_PERSIST, on_tick, wd);
    struct timeval tv = {(time_t)(usec / 2 / 1000000), (suseconds_t)(usec / 2 % 1000000)};
    event_add(wd->ev, &tv);
    sd_notify(0, "WATCHDOG=1");
    return wd->ev;
}

void notify_watchdog_free(struct event *ev) {
    if (!ev) return;
    free(event_get_callback_arg(ev));
    event_free(ev);
}
