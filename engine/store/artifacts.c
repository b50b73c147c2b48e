/* artifacts.c: run folders, run.json and metrics.jsonl (written through files.h). */
#define _GNU_SOURCE
#include "artifacts.h"
#include "nc_commit.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *nc_source_commit(void) { return NC_SOURCE_COMMIT; }

void nc_utc_iso(char *buf, size_t n) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, n, "%s.%03ldZ", base, ts.tv_nsec / 1000000);
}

static int write_info(nc_run *run, nc_error *err) {
    char path[PATH_MAX + 16], *text = json_dumps(run->info, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    if (!text) return nc_fail(err, NC_E_INTERNAL, "out of memory writing run.json");
    snprintf(path, sizeof path, "%s/run.json", run->dir);
    int rc = nc_write_bytes(path, text, strlen(text), err);
    free(text);
    return rc;
}

int nc_run_id_check(const char *id, nc_error *err) {
    if (strlen(id) > NC_RUN_ID_MAX || strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.run_id must be a plain folder name of at most %d bytes, not '%.64s'",
                       NC_RUN_ID_MAX, id);
    return 0;
}

/* The run's folder in `root`: named run_id (reused when it exists), or the
 * first of stem, stem-2, stem-3, ... that does not exist yet. */
static int make_run_folder(nc_run *run, const char *root, const char *run_id, const char *stem, nc_error *err) {
    for (int n = 1; n < 1000; n++) {
        if (*run_id) snprintf(run->id, sizeof run->id, "%s", run_id);
        else if (n == 1) snprintf(run->id, sizeof run->id, "%s", stem);
        else snprintf(run->id, sizeof run->id, "%s-%d", stem, n);
        snprintf(run->dir, sizeof run->dir, "%s/%s", root, run->id);
        int rc = nc_make_folder(run->dir, !*run_id, err);
        if (rc <= 0) return rc;
    }
    return nc_fail(err, NC_E_IO, "no free run folder for %s in %s", stem, root);
}

int nc_run_open(nc_run *run, const nc_folders *folders, const char *results_dir, const char *run_id, const char *stem,
                json_t *info, nc_error *err) {
    memset(run, 0, sizeof *run);
    run->info = info;
    char root[PATH_MAX];
    if (nc_run_id_check(run_id, err) ||
        nc_resolve_folder(folders, results_dir, "the results folder", root, err) ||
        make_run_folder(run, root, run_id, stem, err))
        return -1;
    char path[PATH_MAX + 16], when[40];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->dir);
    if (!(run->metrics = nc_create_file(path, err))) return -1;
    nc_utc_iso(when, sizeof when);
    json_object_set_new(info, "run_id", json_string(run->id));
    json_object_set_new(info, "commit", json_string(nc_source_commit()));
    json_object_set_new(info, "start_time", json_string(when));
    json_object_set_new(info, "status", json_string("running"));
    return write_info(run, err);
}

void nc_run_metric(nc_run *run, json_t *line) {
    if (!run->metrics) return;
    json_dumpf(line, run->metrics, JSON_COMPACT | JSON_REAL_PRECISION(10));
    fputc('\n', run->metrics);
    fflush(run->metrics);
}

int nc_run_close(nc_run *run, const char *status, json_t *final, nc_error *err) {
    char when[40];
    nc_utc_iso(when, sizeof when);
    if (final) json_object_update_new(run->info, final);
    json_object_set_new(run->info, "end_time", json_string(when));
    json_object_set_new(run->info, "status", json_string(status));
    int rc = run->dir[0] ? write_info(run, err) : 0;
    if (run->metrics) fclose(run->metrics);
    json_decref(run->info);
    memset(run, 0, sizeof *run);
    return rc;
}
