/* listen.c: bind or inherit the Unix socket; stale-socket handling. */
#define _GNU_SOURCE
#include "listen.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

static int make_parent_dir(const char *path, nc_error *err) {
    char dir[108];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return 0;
    *slash = '\0';
    if (mkdir(dir, 0700) == 0 || errno == EEXIST) return 0;
    return nc_fail(err, NC_E_IO, "cannot create socket directory %s: %s", dir, strerror(errno));
}

/* The lock file is held for the daemon's lifetime: whoever holds it owns the socket path. */
static int take_lock(listener_fd *l, nc_error *err) {
    char lock[128];
    snprintf(lock, sizeof lock, "%s.lock", l->path);
    l->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l->lock_fd < 0) return nc_fail(err, NC_E_IO, "cannot open %s: %s", lock, strerror(errno));
    if (flock(l->lock_fd, LOCK_EX | LOCK_NB) == 0) return 0;
    close(l->lock_fd);
    l->lock_fd = -1;
    return nc_fail(err, NC_E_IO, "another nanochatd is serving %s (its lock %s is held)", l->path, lock);
}

static bool someone_answers(const struct sockaddr_un *sa) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool live = fd >= 0 && connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    if (fd >= 0) close(fd);
    return live;
}

static int bind_socket(listener_fd *l, nc_error *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->path);
    if (someone_answers(&sa)) return nc_fail(err, NC_E_IO, "another process is serving %s", l->path);
    if (unlink(l->path) == 0) log_warn("replaced a stale socket file at %s", l->path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return nc_fail(err, NC_E_IO, "socket: %s", strerror(errno));
    mode_t old = umask(0177);
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc < 0 || chmod(l->path, 0600) < 0 || listen(fd, 1024) < 0) {
        int e = errno;
        close(fd);
        return nc_fail(err, NC_E_IO, "cannot listen on %s: %s", l->path, strerror(e));
    }
    l->fd = fd;
    return 0;
}

int listen_open(listener_fd *l, const char *path, nc_error *err) {
    memset(l, 0, sizeof *l);
    l->fd = l->lock_fd = -1;
    snprintf(l->path, sizeof l->path, "%s", path);
    int n = sd_listen_fds(1);
    if (n > 1) return nc_fail(err, NC_E_BAD_REQUEST, "systemd passed %d sockets; nanochatd takes one", n);
    if (n == 1) {
        if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
            return nc_fail(err, NC_E_BAD_REQUEST, "the socket systemd passed is not a listening Unix stream socket");
        l->fd = SD_LISTEN_FDS_START;
        l->activated = true;
        fcntl(l->fd, F_SETFD, FD_CLOEXEC);
        fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
        return 0;
    }
    if (strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
        return nc_fail(err, NC_E_BAD_REQUEST, "socket path too long: %s", path);
    if (make_parent_dir(path, err) || take_lock(l, err)) return -1;
    if (bind_socket(l, err) == 0) return 0;
    close(l->lock_fd);
    l->lock_fd = -1;
    return -1;
}

void listen_close(listener_fd *l) {
    if (!l->activated && l->fd >= 0) unlink(l->path);
    if (l->fd >= 0) close(l->fd);
    if (l->lock_fd >= 0) close(l->lock_fd); /* the lock file stays: unlinking it would race a successor */
    l->fd = l->lock_fd = -1;
}
