/* files.h: the folders nanochatd may use, and every file it opens in them.
 *
 * The daemon may run as root, so every path in a request is hostile. A path
 * is first resolved as the kernel would open it (symlinks followed, "." and
 * ".." folded, a missing tail kept by name) and must then lie in a folder
 * allowed for the access: the checkpoint and results folders and every
 * --allow-dir may be read and written; the default corpus's folder may only
 * be read. The file is then opened by walking the resolved path one folder
 * at a time without following any symlink, so a link planted after the check
 * fails the open instead of leading elsewhere. Reads take regular files only
 * (opened without blocking: a FIFO or a device is refused, never waited on)
 * and no larger than the caller's limit. Writes create a temporary file
 * exclusively (O_EXCL | O_NOFOLLOW) in the target's folder and rename it into
 * place; nothing is ever written through a symlink. */
#ifndef NC_FILES_H
#define NC_FILES_H

#include "engine/nc.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>

typedef enum nc_access { NC_ACCESS_READ, NC_ACCESS_WRITE } nc_access;

#define NC_MAX_FOLDERS (NC_MAX_ALLOW_DIRS + 3)

typedef struct nc_folders {
    bool confined;                      /* false: any path (an engine used without the daemon) */
    int n;
    const char *dir[NC_MAX_FOLDERS];    /* as configured; resolved at each check */
    bool writable[NC_MAX_FOLDERS];
} nc_folders;

/* Adds a folder (kept by pointer: it must outlive f). */
void nc_folders_add(nc_folders *f, const char *dir, bool writable);

/* Resolves `path` (relative paths: against `base`, or the working folder when
 * base is NULL) into `out`, an absolute path without "." or "..", and checks
 * it against the folders for the access; PermissionDenied naming `what` when
 * it lies outside, BadRequest when it is empty or too long. A file to read
 * is resolved through every symlink; a file to write keeps its last name (a
 * symlink there is replaced by the write, never followed), so only its
 * folder is resolved. */
int nc_resolve(const nc_folders *f, const char *path, const char *base, nc_access access, const char *what,
               char out[PATH_MAX], nc_error *err);
/* A folder to write into (the results or checkpoint folder, which may be a
 * symlink the operator made), resolved through every symlink and checked. */
int nc_resolve_folder(const nc_folders *f, const char *dir, const char *what, char out[PATH_MAX], nc_error *err);

/* What tells one version of a file from another: a cache reloads a file
 * whose identity changed. */
typedef struct nc_file_id {
    uint64_t dev, ino;
    int64_t size, mtime_ns;
    bool folder;
} nc_file_id;
/* NotFound when absent. */
int nc_file_id_of(const char *resolved, nc_file_id *id, nc_error *err);
bool nc_file_id_equal(const nc_file_id *a, const nc_file_id *b);

/* Opens a resolved path for reading: a regular file of at most max_bytes.
 * NotFound when absent; BadRequest when it is not a regular file or is
 * larger; PermissionDenied when a symlink stands on the way. */
int nc_open_regular(const char *resolved, int64_t max_bytes, const char *what, int *fd, int64_t *size, nc_error *err);
/* The whole file (nc_open_regular's rules), malloc'd with a NUL after it. */
int nc_read_file(const char *resolved, int64_t max_bytes, const char *what, char **data, size_t *len, nc_error *err);

/* Writes a file through `fn`, which writes the whole content to fd (0 or an
 * errno); atomically: a crash leaves the old file or the complete new one.
 * Missing folders on the way are created (they were checked by nc_resolve). */
typedef int (*nc_write_fn)(int fd, void *ctx);
int nc_write_file(const char *resolved, nc_write_fn fn, void *ctx, nc_error *err);
int nc_write_bytes(const char *resolved, const void *data, size_t len, nc_error *err);
/* Writes everything to fd; 0 or an errno. */
int nc_write_fully(int fd, const void *data, size_t len);

/* Creates a folder (and its parents); `fresh`: it must not exist yet (EEXIST
 * is then returned as 1, not an error). */
int nc_make_folder(const char *resolved, bool fresh, nc_error *err);
/* Creates a file for appending, replacing any entry of that name (a planted
 * symlink is removed, not followed). */
FILE *nc_create_file(const char *resolved, nc_error *err);

/* Opens the folder at a resolved path (no symlink on the way); -1 with *err. */
int nc_open_folder(const char *resolved, nc_error *err);

#endif
