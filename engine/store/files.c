/* files.c: confined paths, and files opened without following symlinks. */
#define _GNU_SOURCE
#include "files.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void nc_folders_add(nc_folders *f, const char *dir, bool writable) {
    if (f->n >= NC_MAX_FOLDERS) return;
    f->dir[f->n] = dir;
    f->writable[f->n++] = writable;
}

/* ---- resolving ---------------------------------------------------------------- */

static int resolve(const char *path, char out[PATH_MAX], nc_error *err);

/* A path's parent resolved, then its last name (which need not exist). */
static int resolve_missing(const char *path, char out[PATH_MAX], nc_error *err) {
    const char *slash = strrchr(path, '/'), *leaf = slash ? slash + 1 : path;
    if (!*leaf || strcmp(leaf, ".") == 0 || strcmp(leaf, "..") == 0)
        return nc_fail(err, NC_E_PERMISSION_DENIED, "%s does not end in a plain name", path);
    char parent[PATH_MAX], dir[PATH_MAX];
    if (!slash) snprintf(parent, sizeof parent, ".");
    else if (slash == path) snprintf(parent, sizeof parent, "/");
    else snprintf(parent, sizeof parent, "%.*s", (int)(slash - path), path);
    if (resolve(parent, dir, err)) return -1;
    int len = snprintf(out, PATH_MAX, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, leaf);
    if (len < 0 || len >= PATH_MAX) return nc_fail(err, NC_E_BAD_REQUEST, "path too long: %s", path);
    return 0;
}

static int resolve(const char *path, char out[PATH_MAX], nc_error *err) {
    struct stat st;
    if (lstat(path, &st) < 0) {
        if (errno == ENOENT) return resolve_missing(path, out, err);
        return nc_fail(err, NC_E_PERMISSION_DENIED, "%s cannot be checked: %s", path, strerror(errno));
    }
    if (!realpath(path, out))
        return nc_fail(err, NC_E_PERMISSION_DENIED, "%s cannot be resolved: %s", path, strerror(errno));
    return 0;
}

static bool within(const char *path, const char *dir) {
    size_t len = strlen(dir);
    if (strcmp(dir, "/") == 0) return true;
    return strncmp(path, dir, len) == 0 && (path[len] == '/' || path[len] == '\0');
}

/* out within a folder allowed for the access. */
static int confine(const nc_folders *f, const char *path, const char *out, nc_access access, const char *what,
                   nc_error *err) {
    if (!f || !f->confined) return 0;
    for (int i = 0; i < f->n; i++) {
        char dir[PATH_MAX];
        nc_error ignored;
        if ((access == NC_ACCESS_READ || f->writable[i]) && resolve(f->dir[i], dir, &ignored) == 0 && within(out, dir))
            return 0;
    }
    return nc_fail(err, NC_E_PERMISSION_DENIED, "%s %s resolves to %s, outside the folders nanochatd may %s", what, path,
                   out, access == NC_ACCESS_READ ? "read" : "write");
}

int nc_resolve(const nc_folders *f, const char *path, const char *base, nc_access access, const char *what,
               char out[PATH_MAX], nc_error *err) {
    if (!*path) return nc_fail(err, NC_E_BAD_REQUEST, "%s must not be empty", what);
    char joined[PATH_MAX];
    int len = path[0] == '/' || !base ? snprintf(joined, sizeof joined, "%s", path)
                                      : snprintf(joined, sizeof joined, "%s/%s", base, path);
    if (len < 0 || len >= PATH_MAX) return nc_fail(err, NC_E_BAD_REQUEST, "%s is too long", what);
    int rc = access == NC_ACCESS_WRITE ? resolve_missing(joined, out, err) : resolve(joined, out, err);
    return rc ? -1 : confine(f, path, out, access, what, err);
}

int nc_resolve_folder(const nc_folders *f, const char *dir, const char *what, char out[PATH_MAX], nc_error *err) {
    if (!*dir) return nc_fail(err, NC_E_BAD_REQUEST, "%s must not be empty", what);
    return resolve(dir, out, err) || confine(f, dir, out, NC_ACCESS_WRITE, what, err) ? -1 : 0;
}

/* ---- walking --------------------------------------------------------------------- */

static int walk_failure(const char *dir, const char *name, int e, nc_error *err) {
    if (e == ENOENT) return nc_fail(err, NC_E_NOT_FOUND, "%s does not exist (at %s)", dir, name);
    if (e == ELOOP || e == ENOTDIR)
        return nc_fail(err, NC_E_PERMISSION_DENIED, "%s: %s is a symlink or not a folder; nanochatd does not follow it",
                       dir, name);
    return nc_fail(err, NC_E_IO, "cannot open %s: %s", dir, strerror(e));
}

/* Opens the folder at a resolved path, one name at a time, following no
 * symlink; missing folders are created when `create`. */
static int walk(const char *dir, bool create, nc_error *err) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", dir);
    int fd = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
    char *save = NULL;
    for (char *name = strtok_r(buf, "/", &save); fd >= 0 && name; name = strtok_r(NULL, "/", &save)) {
        int flags = O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | (save && *save ? O_PATH : O_RDONLY);
        int next = openat(fd, name, flags);
        if (next < 0 && errno == ENOENT && create && (mkdirat(fd, name, 0755) == 0 || errno == EEXIST))
            next = openat(fd, name, flags);
        int e = errno;
        close(fd);
        if (next < 0) return walk_failure(dir, name, e, err);
        fd = next;
    }
    if (fd < 0) return nc_fail(err, NC_E_IO, "cannot open /: %s", strerror(errno));
    return fd;
}

int nc_open_folder(const char *resolved, nc_error *err) { return walk(resolved, false, err); }

/* The folder of a resolved path, opened, and its last name. */
static int open_parent(const char *resolved, bool create, char leaf[NAME_MAX + 1], nc_error *err) {
    const char *slash = strrchr(resolved, '/');
    if (!slash || !slash[1] || strlen(slash + 1) > NAME_MAX)
        return nc_fail(err, NC_E_BAD_REQUEST, "%s does not end in a file name", resolved);
    snprintf(leaf, NAME_MAX + 1, "%s", slash + 1);
    char parent[PATH_MAX];
    snprintf(parent, sizeof parent, "%.*s", slash == resolved ? 1 : (int)(slash - resolved), resolved);
    return walk(parent, create, err);
}

/* ---- reading ------------------------------------------------------------------------ */

int nc_file_id_of(const char *resolved, nc_file_id *id, nc_error *err) {
    struct stat st;
    if (stat(resolved, &st) < 0)
        return nc_fail(err, errno == ENOENT ? NC_E_NOT_FOUND : NC_E_IO, "cannot read %s: %s", resolved, strerror(errno));
    *id = (nc_file_id){(uint64_t)st.st_dev, (uint64_t)st.st_ino, (int64_t)st.st_size,
                       (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec, S_ISDIR(st.st_mode)};
    return 0;
}

bool nc_file_id_equal(const nc_file_id *a, const nc_file_id *b) {
    return a->dev == b->dev && a->ino == b->ino && a->size == b->size && a->mtime_ns == b->mtime_ns &&
           a->folder == b->folder;
}

int nc_open_regular(const char *resolved, int64_t max_bytes, const char *what, int *fd, int64_t *size, nc_error *err) {
    char leaf[NAME_MAX + 1];
    int dir = open_parent(resolved, false, leaf, err);
    if (dir < 0) return -1;
    int f = openat(dir, leaf, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
    int e = errno;
    close(dir);
    if (f < 0) {
        if (e == ENOENT) return nc_fail(err, NC_E_NOT_FOUND, "%s %s does not exist", what, resolved);
        if (e == ELOOP) return nc_fail(err, NC_E_PERMISSION_DENIED, "%s %s is a symlink; nanochatd does not follow it", what, resolved);
        return nc_fail(err, NC_E_IO, "cannot open %s %s: %s", what, resolved, strerror(e));
    }
    struct stat st;
    if (fstat(f, &st) < 0 || !S_ISREG(st.st_mode)) {
        close(f);
        return nc_fail(err, NC_E_BAD_REQUEST, "%s %s is not a regular file", what, resolved);
    }
    if (st.st_size > max_bytes) {
        close(f);
        return nc_fail(err, NC_E_BAD_REQUEST, "%s %s holds %lld bytes, over the limit of %lld", what, resolved,
                       (long long)st.st_size, (long long)max_bytes);
    }
    fcntl(f, F_SETFL, fcntl(f, F_GETFL) & ~O_NONBLOCK);
    *fd = f;
    *size = st.st_size;
    return 0;
}

int nc_read_file(const char *resolved, int64_t max_bytes, const char *what, char **data, size_t *len, nc_error *err) {
    int fd;
    int64_t size;
    if (nc_open_regular(resolved, max_bytes, what, &fd, &size, err)) return -1;
    char *buf = malloc((size_t)size + 1);
    size_t n = 0;
    while (buf && n < (size_t)size) {
        ssize_t got = read(fd, buf + n, (size_t)size - n);
        if (got < 0 && errno == EINTR) continue;
        if (got <= 0) break;
        n += (size_t)got;
    }
    close(fd);
    if (!buf) return nc_fail(err, NC_E_INTERNAL, "out of memory reading %s (%lld bytes)", resolved, (long long)size);
    if (n < (size_t)size) {
        free(buf);
        return nc_fail(err, NC_E_IO, "cannot read %s %s: it ended early or failed", what, resolved);
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 0;
}

/* ---- writing ----------------------------------------------------------------------------- */

int nc_write_fully(int fd, const void *data, size_t left) {
    const char *p = data;
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w;
        left -= (size_t)w;
    }
    return 0;
}

/* Removes temporaries of `leaf` left by writers that died (kill -9, power loss). */
static void remove_stale_temps(int dir, const char *leaf) {
    int again = dup(dir);
    DIR *d = again >= 0 ? fdopendir(again) : NULL;
    if (!d) {
        if (again >= 0) close(again);
        return;
    }
    size_t n = strlen(leaf);
    for (struct dirent *de; (de = readdir(d));) {
        int pid;
        unsigned tag;
        char extra;
        if (strncmp(de->d_name, leaf, n) != 0 || sscanf(de->d_name + n, ".tmp.%d.%u%c", &pid, &tag, &extra) != 2)
            continue;
        if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH) unlinkat(dir, de->d_name, 0);
    }
    closedir(d);
}

/* A new temporary file beside `leaf`, created exclusively: a name someone
 * planted (a symlink, a file) is skipped, never opened. */
static int create_temp(int dir, const char *leaf, char tmp[NAME_MAX + 1]) {
    static unsigned counter;
    for (int attempt = 0; attempt < 16; attempt++) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        unsigned tag = __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED) * 2654435761u ^ (unsigned)ts.tv_nsec;
        int len = snprintf(tmp, NAME_MAX + 1, "%s.tmp.%d.%u", leaf, (int)getpid(), tag);
        if (len < 0 || len > NAME_MAX) {
            errno = ENAMETOOLONG;
            return -1;
        }
        int fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
        if (fd >= 0 || errno != EEXIST) return fd;
    }
    return -1;
}

int nc_write_file(const char *resolved, nc_write_fn fn, void *ctx, nc_error *err) {
    char leaf[NAME_MAX + 1], tmp[NAME_MAX + 1];
    int dir = open_parent(resolved, true, leaf, err);
    if (dir < 0) return -1;
    remove_stale_temps(dir, leaf);
    int fd = create_temp(dir, leaf, tmp);
    if (fd < 0) {
        int e = errno;
        close(dir);
        return nc_fail(err, NC_E_IO, "cannot create a temporary file beside %s: %s", resolved, strerror(e));
    }
    int e = fn(fd, ctx);
    if (!e && fsync(fd) < 0) e = errno;
    if (close(fd) < 0 && !e) e = errno;
    if (!e && renameat(dir, tmp, dir, leaf) < 0) e = errno;
    if (e) unlinkat(dir, tmp, 0);
    else fsync(dir);
    close(dir);
    if (e) return nc_fail(err, NC_E_IO, "cannot write %s: %s (any previous version of it is unchanged)", resolved, strerror(e));
    return 0;
}

typedef struct bytes {
    const void *data;
    size_t len;
} bytes;

static int write_bytes(int fd, void *ctx) {
    const bytes *b = ctx;
    return nc_write_fully(fd, b->data, b->len);
}

int nc_write_bytes(const char *resolved, const void *data, size_t len, nc_error *err) {
    bytes b = {data, len};
    return nc_write_file(resolved, write_bytes, &b, err);
}

int nc_make_folder(const char *resolved, bool fresh, nc_error *err) {
    char leaf[NAME_MAX + 1];
    int dir = open_parent(resolved, true, leaf, err);
    if (dir < 0) return -1;
    int rc = 0;
    struct stat st;
    if (mkdirat(dir, leaf, 0755) < 0) {
        if (errno != EEXIST) rc = nc_fail(err, NC_E_IO, "cannot create %s: %s", resolved, strerror(errno));
        else if (fresh) rc = 1;
        else if (fstatat(dir, leaf, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
            rc = nc_fail(err, NC_E_PERMISSION_DENIED, "%s exists and is not a folder", resolved);
    }
    close(dir);
    return rc;
}

FILE *nc_create_file(const char *resolved, nc_error *err) {
    char leaf[NAME_MAX + 1];
    int dir = open_parent(resolved, false, leaf, err);
    if (dir < 0) return NULL;
    unlinkat(dir, leaf, 0); /* a planted symlink goes, its target untouched */
    int fd = openat(dir, leaf, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int e = errno;
    close(dir);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f) {
        if (fd >= 0) close(fd);
        nc_fail(err, NC_E_IO, "cannot create %s: %s", resolved, strerror(fd >= 0 ? errno : e));
    }
    return f;
}
