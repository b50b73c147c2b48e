/* artifacts.h: every run writes <results_dir>/<run-id>/run.json (config,
 * seed, backend, device, using_gpu, source commit, times, final metrics) and
 * metrics.jsonl (one JSON object per logged step or eval). */
#ifndef NC_ARTIFACTS_H
#define NC_ARTIFACTS_H

#include "nc.h"

#include <limits.h>
#include <stdio.h>

typedef struct nc_run {
    char id[128];
    char dir[PATH_MAX];
    FILE *metrics;
    json_t *info; /* run.json as it stands */
} nc_run;

/* Creates the run folder (a unique id from `stem` when run_id is empty) and
 * writes run.json with `info` (stolen) plus id, commit and start time. */
int nc_run_open(nc_run *run, const char *results_dir, const char *run_id, const char *stem, json_t *info,
                nc_error *err);
/* Appends one line to metrics.jsonl (does not steal). */
void nc_run_metric(nc_run *run, json_t *line);
/* Merges `final` (stolen) into run.json with end time and status, rewrites it atomically, closes. */
int nc_run_close(nc_run *run, const char *status, json_t *final, nc_error *err);

/* Writes `data` to `path` atomically: temporary file in the same folder,
 * write, fsync, rename, fsync of the folder. */
int nc_write_atomic(const char *path, const void *data, size_t len, nc_error *err);
int nc_mkdirs(const char *path, nc_error *err);
/* The source commit the engine was built from ("unknown" outside git). */
const char *nc_source_commit(void);
void nc_utc_iso(char *buf, size_t n);

#endif
