/* listen.h: the daemon's listening socket. */
#ifndef NCD_LISTEN_H
#define NCD_LISTEN_H

/* Pending connections the kernel queues before connect() waits. Small on
 * purpose: a client that connects during a flood waits behind at most this
 * many (1,000 at once, timed status: median 12 ms at 128, 22-25 ms at 4096).
 * The socket units set the same Backlog=. */
#define NCD_LISTEN_BACKLOG 128

#include "engine/nc.h"

#include <sys/types.h>

typedef struct listener_fd {
    int fd;
    int lock_fd;     /* flock on <socket>.lock while we serve (-1 when activated) */
    bool activated;  /* passed in by systemd (sd_listen_fds) */
    char path[108];  /* where it listens (for an activated socket: its bound name) */
} listener_fd;

/* Takes the socket systemd passed, or binds `path`. Its folder is created
 * 0700 when missing (0750 and owned by `group` when one is given) and must
 * otherwise belong to us or root and not be writable by others; the socket
 * is 0600 (0660 with `group`). A stale socket file left by a crashed daemon
 * is replaced; one a live daemon serves, or any file that is not a socket,
 * is refused. group (gid_t)-1: none. */
int listen_open(listener_fd *l, const char *path, gid_t group, nc_error *err);
/* Removes our socket file (not systemd's) and the lock. */
void listen_close(listener_fd *l);

#endif
