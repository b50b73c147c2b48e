/* access.c: peer credential checks. */
#define _GNU_SOURCE
#include "access.h"

#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

static bool uid_in_group(uid_t uid, gid_t primary, gid_t want) {
    if (primary == want) return true;
    struct passwd pw, *res = NULL;
    char buf[4096];
    if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res) return false;
    gid_t groups[256];
    int n = 256;
    if (getgrouplist(pw.pw_name, pw.pw_gid, groups, &n) < 0) return false;
    for (int i = 0; i < n; i++)
        if (groups[i] == want) return true;
    return false;
}

bool access_peer_allowed(int fd, gid_t allowed_gid, uid_t *uid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    *uid = (uid_t)-1;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return false;
    *uid = cred.uid;
    if (cred.uid == geteuid() || cred.uid == 0) return true;
    return allowed_gid != (gid_t)-1 && uid_in_group(cred.uid, cred.gid, allowed_gid);
}
