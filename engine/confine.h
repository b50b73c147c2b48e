/* confine.h: keeps the paths in requests inside the folders the daemon was
 * configured to use. A path is resolved as the kernel would open it
 * (realpath of the longest part that exists, symlinks followed), then must
 * lie within one of the allowed folders, themselves resolved the same way. */
#ifndef NC_CONFINE_H
#define NC_CONFINE_H

#include "nc.h"

#include <stddef.h>

/* Resolves `path` (which need not exist yet) to an absolute path without
 * symlinks, "." or ".." in `out`. A dangling symlink fails. */
int nc_path_resolve(const char *path, char *out, size_t n, nc_error *err);

/* 0 when `path` lies within one of `dirs` (n of them), else PermissionDenied
 * naming `what` (e.g. "args.path"). */
int nc_path_confine(const char *path, const char *const *dirs, size_t n, const char *what, nc_error *err);

#endif
