/* listen.c: bind or inherit the Unix socket; its folder, lock and stale files. */
#define _GNU_SOURCE
#include "listen.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#define NO_GROUP ((gid_t)-1)

/* An existing folder must be ours (or root's) and closed to other writers. */
static int check_dir(const char *dir, nc_error *err) {
    struct stat st;
    if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
        return nc_fail(err, NC_E_IO, "socket directory %s is not a directory", dir);
    if (st.st_uid != geteuid() && st.st_uid != 0)
        return nc_fail(err, NC_E_PERMISSION_DENIED,
                       "socket directory %s belongs to uid %u, not to this user; refusing it", dir, (unsigned)st.st_uid);
    if ((st.st_mode & (S_IWGRP | S_IWOTH)) && !(st.st_mode & S_ISVTX))
        return nc_fail(err, NC_E_PERMISSION_DENIED, "socket directory %s is writable by others (mode %03o); refusing it",
                       dir, (unsigned)(st.st_mode & 0777));
    return 0;
}

static int prepare_dir(const char *path, gid_t group, nc_error *err) {
    char dir[108];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) slash[1] = '\0';
    else *slash = '\0';
    if (mkdir(dir, 0700) < 0) {
        if (errno != EEXIST)
            return nc_fail(err, NC_E_IO, "cannot create socket directory %s: %s", dir, strerror(errno));
        return check_dir(dir, err);
    }
    if (group != NO_GROUP && (chown(dir, (uid_t)-1, group) < 0 || chmod(dir, 0750) < 0))
        return nc_fail(err, NC_E_IO, "cannot give socket directory %s to group %u: %s", dir, (unsigned)group,
                       strerror(errno));
    return 0;
}

/* The lock file is held for the daemon's lifetime: whoever holds it owns the socket path. */
static int take_lock(listener_fd *l, nc_error *err) {
    char lock[128];
    snprintf(lock, sizeof lock, "%s.lock", l->path);
    l->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
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

/* A socket file nobody serves is a crashed daemon's: replace it. Anything else stays. */
static int clear_stale(const struct sockaddr_un *sa, nc_error *err) {
    struct stat st;
    if (lstat(sa->sun_path, &st) < 0)
        return errno == ENOENT ? 0 : nc_fail(err, NC_E_IO, "%s: %s", sa->sun_path, strerror(errno));
    if (!S_ISSOCK(st.st_mode))
        return nc_fail(err, NC_E_IO, "%s exists and is not a socket; not replacing it", sa->sun_path);
    if (someone_answers(sa)) return nc_fail(err, NC_E_IO, "another process is serving %s", sa->sun_path);
    if (unlink(sa->sun_path) < 0)
        return nc_fail(err, NC_E_IO, "cannot remove stale %s: %s", sa->sun_path, strerror(errno));
    log_warn("replaced a stale socket file at %s", sa->sun_path);
    return 0;
}

static int bind_socket(listener_fd *l, gid_t group, nc_error *err) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", l->path);
    if (clear_stale(&sa, err)) return -1;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return nc_fail(err, NC_E_IO, "socket: %s", strerror(errno));
    mode_t old = umask(0177), mode = group == NO_GROUP ? 0600 : 0660;
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof sa);
    umask(old);
    if (rc == 0 && group != NO_GROUP) rc = chown(l->path, (uid_t)-1, group);
    if (rc < 0 || chmod(l->path, mode) < 0 || listen(fd, NCD_LISTEN_BACKLOG) < 0) {
        int e = errno;
        close(fd);
        return nc_fail(err, NC_E_IO, "cannot listen on %s: %s", l->path, strerror(e));
    }
    l->fd = fd;
    return 0;
}

static int take_activated(listener_fd *l, nc_error *err) {
    if (sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, NULL, 0) <= 0)
        return nc_fail(err, NC_E_BAD_REQUEST, "the socket systemd passed is not a listening Unix stream socket");
    l->fd = SD_LISTEN_FDS_START;
    l->activated = true;
    fcntl(l->fd, F_SETFD, FD_CLOEXEC);
    fcntl(l->fd, F_SETFL, fcntl(l->fd, F_GETFL) | O_NONBLOCK);
    struct sockaddr_un sa = {0};
    socklen_t len = sizeof sa;
    if (getsockname(l->fd, (struct sockaddr *)&sa, &len) == 0 && len > offsetof(struct sockaddr_un, sun_path) &&
        sa.sun_path[0])
        snprintf(l->path, sizeof l->path, "%s", sa.sun_path);
    return 0;
}

int listen_open(listener_fd *l, const char *path, gid_t group, nc_error *err) {
    memset(l, 0, sizeof *l);
    l->fd = l->lock_fd = -1;
    snprintf(l->path, sizeof l->path, "%s", path);
    int n = sd_listen_fds(1);
    if (n > 1) return nc_fail(err, NC_E_BAD_REQUEST, "systemd passed %d sockets; nanochatd takes one", n);
    if (n == 1) return take_activated(l, err);
    if (strlen(path) >= sizeof ((struct sockaddr_un *)0)->sun_path)
        return nc_fail(err, NC_E_BAD_REQUEST, "socket path too long: %s", path);
    if (prepare_dir(path, group, err) || take_lock(l, err)) return -1;
    if (bind_socket(l, group, err) == 0) return 0;
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
