/* listen.h: the daemon's listening socket. */
#ifndef NCD_LISTEN_H
#define NCD_LISTEN_H

#include "nc.h"

typedef struct listener_fd {
    int fd;
    int lock_fd;     /* flock on <socket>.lock while we serve (-1 when activated) */
    bool activated;  /* passed in by systemd (sd_listen_fds) */
    char path[108];
} listener_fd;

/* Takes the socket systemd passed, or binds `path` (its directory created
 * 0700 when missing, the socket 0600). A stale socket file left by a crashed
 * daemon is replaced; one a live daemon serves is refused. */
int listen_open(listener_fd *l, const char *path, nc_error *err);
/* Removes our socket file (not systemd's) and the lock. */
void listen_close(listener_fd *l);

#endif
