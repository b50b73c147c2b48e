/* confine.c: request paths stay inside the allowed folders. */
#define _GNU_SOURCE
#include "confine.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A path that does not exist: its parent resolved, then its last name. */
static int resolve_missing(const char *path, char *out, size_t n, nc_error *err) {
    const char *slash = strrchr(path, '/'), *leaf = slash ? slash + 1 : path;
    if (!*leaf || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
        return nc_fail(err, NC_E_PERMISSION_DENIED, "%s does not exist and does not end in a plain name", path);
    char parent[PATH_MAX];
    if (!slash) snprintf(parent, sizeof parent, ".");
    else if (slash == path) snprintf(parent, sizeof parent, "/");
    else snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
    char dir[PATH_MAX];
    if (nc_path_resolve(parent, dir, sizeof dir, err)) return -1;
    int len = snprintf(out, n, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, leaf);
    if (len < 0 || (size_t)len >= n) return nc_fail(err, NC_E_BAD_REQUEST, "path too long: %s", path);
    return 0;
}

int nc_path_resolve(const char *path, char *out, size_t n, nc_error *err) {
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) return resolve_missing(path, out, n, err);
        return nc_fail(err, NC_E_PERMISSION_DENIED, "%s cannot be checked: %s", path, strerror(errno));
    }
    char buf[PATH_MAX];
    if (!realpath(path, buf))
        return nc_fail(err, NC_E_PERMISSION_DENIED, "%s cannot be resolved: %s", path, strerror(errno));
    if (strlen(buf) >= n) return nc_fail(err, NC_E_BAD_REQUEST, "path too long: %s", path);
    memcpy(out, buf, strlen(buf) + 1);
    return 0;
}

static bool within(const char *path, const char *dir) {
    size_t len = strlen(dir);
    if (strcmp(dir, "/") == 0) return true;
    return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

int nc_path_confine(const char *path, const char *const *dirs, size_t n, const char *what, nc_error *err) {
    char real[PATH_MAX], dir[PATH_MAX];
    if (nc_path_resolve(path, real, sizeof real, err)) return -1;
    for (size_t i = 0; i < n; i++) {
        nc_error ignored;
        if (nc_path_resolve(dirs[i], dir, sizeof dir, &ignored) == 0 && within(real, dir)) return 0;
    }
    return nc_fail(err, NC_E_PERMISSION_DENIED, "%s %s resolves to %s, outside the folders nanochatd may use", what,
                   path, real);
}
