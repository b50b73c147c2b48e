/* checkpoint.c: the checkpoint command: save, load, list, export, import.
 * Loads build a new model and replace the resident one only when every check
 * has passed; a refused request leaves the resident model as it was. */
#define _GNU_SOURCE
#include "engine/store/checkpoint.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int cmp_names(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

#define MAX_LISTED 4096

/* The .ckpt files directly in the checkpoint folder (no symlinks), by name. */
static json_t *list_checkpoints(nc_engine *e, nc_error *err) {
    char dir[PATH_MAX];
    if (nc_resolve(&e->folders, e->checkpoint_dir, NULL, NC_ACCESS_READ, "the checkpoint folder", dir, err)) return NULL;
    json_t *items = json_array();
    nc_error ignored;
    int fd = nc_open_folder(dir, &ignored);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d && fd >= 0) close(fd);
    char *names[MAX_LISTED];
    size_t n = 0;
    for (struct dirent *de; d && (de = readdir(d)) && n < MAX_LISTED;) {
        size_t len = strlen(de->d_name);
        if (len > 5 && strcmp(de->d_name + len - 5, ".ckpt") == 0 && (names[n] = strdup(de->d_name))) n++;
    }
    if (d) closedir(d);
    qsort(names, n, sizeof names[0], cmp_names);
    for (size_t i = 0; i < n; i++) {
        char path[PATH_MAX * 2];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        json_t *info = nc_checkpoint_describe(path, &ignored);
        if (info) json_array_append_new(items, info);
        free(names[i]);
    }
    return json_pack("{s:s, s:o}", "dir", e->checkpoint_dir, "checkpoints", items);
}

int nc_resident_save(nc_engine *e, nc_resident *r, const char *path, nc_error *err) {
    char real[PATH_MAX]; /* checked again now: a stored path may have been read from a read-only folder */
    if (nc_resolve(&e->folders, path, NULL, NC_ACCESS_WRITE, "checkpoint path", real, err) ||
        nc_checkpoint_write(r, real, err))
        return -1;
    snprintf(r->checkpoint, sizeof r->checkpoint, "%s", real);
    r->dirty = false;
    return 0;
}

int nc_engine_save_resident(nc_engine *e, json_t **result, nc_error *err) {
    *result = NULL;
    nc_resident *r = &e->res;
    if (!nc_resident_loaded(r) || !r->dirty) return 0;
    if (nc_resident_save(e, r, r->checkpoint, err)) return -1;
    *result = json_pack("{s:s, s:I}", "path", r->checkpoint, "step", (json_int_t)nc_resident_step(r));
    return 1;
}

static json_t *load_into_resident(nc_engine *e, const char *path, nc_error *err) {
    nc_resident fresh;
    if (nc_checkpoint_read(e, path, &fresh, err)) return NULL;
    nc_resident_set(&e->res, &fresh);
    nc_guard_reset(&e->guard);
    return json_pack("{s:s, s:s, s:s, s:I}", "path", path, "mode", nc_mode_names[e->res.ops->mode], "kind",
                     nc_kind_names[e->res.ops->kind],
                     "step", (json_int_t)nc_resident_step(&e->res));
}

int nc_checkpoint_check(const void *args, nc_error *err) {
    const nc_checkpoint_cfg *req = args;
    bool needs_path = req->action != NC_CKPT_SAVE && req->action != NC_CKPT_LIST;
    if (needs_path && !req->path[0])
        return nc_fail(err, NC_E_BAD_REQUEST, "args.path is required to %s", nc_action_names[req->action]);
    return 0;
}

json_t *nc_cmd_checkpoint(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    const nc_checkpoint_cfg *cfg = args;
    (void)sink;
    if (cfg->action == NC_CKPT_LIST) return list_checkpoints(e, err);
    char path[PATH_MAX];
    bool given = cfg->path[0] != '\0';
    nc_access access = cfg->action == NC_CKPT_LOAD || cfg->action == NC_CKPT_IMPORT ? NC_ACCESS_READ : NC_ACCESS_WRITE;
    if (cfg->action == NC_CKPT_LOAD)
        return nc_engine_checkpoint_path(e, cfg->path, access, path, err) ? NULL : load_into_resident(e, path, err);
    if (nc_require_model(&e->res, err)) return NULL;
    if (given && nc_engine_checkpoint_path(e, cfg->path, access, path, err)) return NULL;
    switch (cfg->action) {
    case NC_CKPT_SAVE:
        if (nc_resident_save(e, &e->res, given ? path : e->res.checkpoint, err)) return NULL;
        return json_pack("{s:s, s:I}", "path", e->res.checkpoint, "step", (json_int_t)nc_resident_step(&e->res));
    case NC_CKPT_EXPORT: return nc_weights_export(e, path, err);
    default: return nc_weights_import(e, path, err);
    }
}
