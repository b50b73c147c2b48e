/* test_daemon_access.c: who may use nanochatd, and where its socket lives.
 * Peers are checked by SO_PEERCRED on every connection: the daemon's own
 * uid, root and members of --allowed-group are served, anyone else gets
 * PermissionDenied and is disconnected (even through a socket file opened
 * up by mistake); also with the daemon itself running unprivileged. The
 * socket's folder and file get restrictive modes; a stale socket is
 * replaced, a live one never stolen, and unsafe places are refused. */
#define _GNU_SOURCE
#include "svc.h"

#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define DAEMON_UID ((uid_t)1) /* Debian's "daemon" user: a stranger here */

static mode_t mode_of(const char *path, gid_t *group) {
    struct stat st;
    ck_assert_msg(lstat(path, &st) == 0, "missing %s", path);
    if (group) *group = st.st_gid;
    return st.st_mode & 07777;
}

/* Lets other users reach the socket file, as a careless chmod would. */
static void open_up(const tu_daemon *d) {
    ck_assert_int_eq(chmod(d->dir, 0711), 0);
    ck_assert_int_eq(chmod(d->socket, 0666), 0);
}

static void log_says(const tu_daemon *d, const char *text) {
    char path[PATH_MAX + 8];
    snprintf(path, sizeof path, "%s/log", d->dir);
    char *log = tu_read_file(path, NULL);
    ck_assert_msg(log && strstr(log, text), "the log lacks '%s':\n%s", text, log ? log : "(none)");
    free(log);
}

START_TEST(strangers_are_refused_and_disconnected) {
    tu_daemon d;
    svc_spawn(&d, SVC_AS_IS, NULL, NULL);
    svc_wait_ready(&d);
    ck_assert_int_eq(mode_of(d.socket, NULL), 0600);
    ck_assert_int_eq(svc_status_as(d.socket, SVC_NOBODY, SVC_NOGROUP), SVC_NO_CONNECT); /* the file mode */
    open_up(&d);
    ck_assert_int_eq(svc_status_as(d.socket, SVC_NOBODY, SVC_NOGROUP), SVC_DENIED);     /* the credentials */
    ck_assert_int_eq(svc_status_as(d.socket, DAEMON_UID, DAEMON_UID), SVC_DENIED);
    ck_assert_int_eq(svc_status_as(d.socket, 0, 0), SVC_SERVED);
    log_says(&d, "refused a connection from uid 65534");
    tu_daemon_cleanup(&d);
}
END_TEST

START_TEST(members_of_the_allowed_group_are_served) {
    char base[PATH_MAX], sock[108], dir[108];
    tu_tmpdir(base, sizeof base, "group");
    ck_assert_int_eq(chmod(base, 0711), 0);
    snprintf(dir, sizeof dir, "%s/run", base);
    snprintf(sock, sizeof sock, "%s/n.sock", dir);
    tu_daemon d;
    svc_spawn(&d, SVC_AS_IS, NULL, (const char *const[]){"--socket", sock, "--allowed-group", "nogroup", NULL});
    memcpy(d.socket, sock, sizeof d.socket);
    svc_wait_ready(&d);
    gid_t g;
    ck_assert_int_eq(mode_of(dir, &g), 0750);
    ck_assert_uint_eq(g, SVC_NOGROUP);
    ck_assert_int_eq(mode_of(sock, &g), 0660);
    ck_assert_uint_eq(g, SVC_NOGROUP);
    ck_assert_int_eq(svc_status_as(sock, SVC_NOBODY, SVC_NOGROUP), SVC_SERVED);
    ck_assert_int_eq(svc_status_as(sock, DAEMON_UID, DAEMON_UID), SVC_NO_CONNECT);
    ck_assert_int_eq(chmod(dir, 0755) | chmod(sock, 0666), 0);
    ck_assert_int_eq(svc_status_as(sock, DAEMON_UID, DAEMON_UID), SVC_DENIED);
    tu_daemon_cleanup(&d);
    tu_rmtree(base);
}
END_TEST

static uid_t euid_of(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    unsigned r = 0, e = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "Uid: %u %u", &r, &e) == 2) break;
    if (f) fclose(f);
    return (uid_t)e;
}

START_TEST(an_unprivileged_daemon_serves_its_uid_and_root_only) {
    tu_daemon d;
    svc_spawn(&d, SVC_NOBODY, NULL, NULL);
    svc_wait_ready(&d);
    ck_assert_uint_eq(euid_of(d.pid), SVC_NOBODY);
    ck_assert_int_eq(svc_status_as(d.socket, SVC_NOBODY, SVC_NOGROUP), SVC_SERVED);
    ck_assert_int_eq(svc_status_as(d.socket, 0, 0), SVC_SERVED);
    open_up(&d);
    ck_assert_int_eq(svc_status_as(d.socket, DAEMON_UID, DAEMON_UID), SVC_DENIED);
    nc_client c;
    tu_connect(&c, &d);
    json_t *res = tu_call(&c, "train", svc_bigram(5, 5));
    struct stat st;
    ck_assert_int_eq(stat(json_string_value(json_object_get(res, "checkpoint")), &st), 0);
    ck_assert_uint_eq(st.st_uid, SVC_NOBODY);
    json_decref(res);
    nc_client_close(&c);
    kill(d.pid, SIGTERM);
    ck_assert_int_eq(svc_wait_exit(&d), 0);
    tu_daemon_cleanup(&d);
}
END_TEST

START_TEST(a_live_daemon_is_never_replaced) {
    tu_daemon first, second;
    svc_spawn(&first, SVC_AS_IS, NULL, NULL);
    svc_wait_ready(&first);
    struct stat before, after;
    ck_assert_int_eq(stat(first.socket, &before), 0);
    svc_spawn(&second, SVC_AS_IS, NULL, (const char *const[]){"--socket", first.socket, NULL});
    ck_assert_int_eq(svc_wait_exit(&second), 1);
    log_says(&second, "another nanochatd is serving");
    ck_assert_int_eq(stat(first.socket, &after), 0);
    ck_assert_uint_eq(before.st_ino, after.st_ino);
    ck_assert_int_eq(svc_status_as(first.socket, 0, 0), SVC_SERVED);
    tu_daemon_cleanup(&second);
    tu_daemon_cleanup(&first);
}
END_TEST

/* A socket file nobody listens on: what a crashed daemon leaves behind. */
static void leave_stale_socket(const char *path) {
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
}

START_TEST(a_stale_socket_is_replaced) {
    char dir[PATH_MAX], stale[108];
    tu_tmpdir(dir, sizeof dir, "stale");
    snprintf(stale, sizeof stale, "%s/stale.sock", dir);
    leave_stale_socket(stale);
    tu_daemon d;
    svc_spawn(&d, SVC_AS_IS, NULL, (const char *const[]){"--socket", stale, NULL});
    memcpy(d.socket, stale, sizeof d.socket);
    svc_wait_ready(&d);
    log_says(&d, "replaced a stale socket file");
    tu_daemon_cleanup(&d);
    tu_rmtree(dir);
}
END_TEST

/* Starts a daemon on `sock` that must refuse to start, saying `why`. */
static void refuses(const char *sock, const char *why) {
    tu_daemon d;
    svc_spawn(&d, SVC_AS_IS, NULL, (const char *const[]){"--socket", sock, NULL});
    ck_assert_int_eq(svc_wait_exit(&d), 1);
    log_says(&d, why);
    tu_daemon_cleanup(&d);
}

START_TEST(unsafe_places_are_refused) {
    char dir[PATH_MAX], path[PATH_MAX + 32];
    tu_tmpdir(dir, sizeof dir, "unsafe");
    snprintf(path, sizeof path, "%s/file.sock", dir);
    FILE *f = fopen(path, "w");
    fputs("precious", f);
    fclose(f);
    refuses(path, "is not a socket; not replacing it");
    char *kept = tu_read_file(path, NULL);
    ck_assert_str_eq(kept, "precious");
    free(kept);
    snprintf(path, sizeof path, "%s/open", dir);
    ck_assert_int_eq(mkdir(path, 0700) | chmod(path, 0777), 0);
    refuses(strcat(path, "/d.sock"), "is writable by others");
    snprintf(path, sizeof path, "%s/theirs", dir);
    ck_assert_int_eq(mkdir(path, 0700) | chown(path, DAEMON_UID, DAEMON_UID), 0);
    refuses(strcat(path, "/d.sock"), "belongs to uid 1");
    tu_rmtree(dir);
}
END_TEST

int main(void) {
    Suite *s = suite_create("daemon_access");
    tu_tcase(s, "peers", strangers_are_refused_and_disconnected, members_of_the_allowed_group_are_served,
             an_unprivileged_daemon_serves_its_uid_and_root_only);
    tu_tcase(s, "socket", a_live_daemon_is_never_replaced, a_stale_socket_is_replaced, unsafe_places_are_refused);
    return tu_run(s);
}
