/* artifacts.h: every run writes <results_dir>/<run-id>/run.json (config,
 * seed, backend, device, using_gpu, source commit, times, final metrics) and
 * metrics.jsonl (one JSON object per logged step or eval). */
#ifndef NC_ARTIFACTS_H
#define NC_ARTIFACTS_H

#include "files.h"

#include <limits.h>
#include <stdio.h>

typedef struct nc_run {
    char id[128];
    char dir[PATH_MAX];
    FILE *metrics;
    json_t *info; /* run.json as it stands */
} nc_run;

#define NC_RUN_ID_MAX 100
/* BadRequest unless id ("" for a generated one) is a plain folder name. */
int nc_run_id_check(const char *id, nc_error *err);
/* Creates the run folder in results_dir (confined by folders: it must be
 * writable; a unique id from `stem` when run_id is empty) and writes run.json
 * with `info` (stolen) plus id, commit and start time. */
int nc_run_open(nc_run *run, const nc_folders *folders, const char *results_dir, const char *run_id, const char *stem,
                json_t *info, nc_error *err);
/* Appends one line to metrics.jsonl (does not steal). */
void nc_run_metric(nc_run *run, json_t *line);
/* Merges `final` (stolen) into run.json with end time and status, rewrites it atomically, closes. */
int nc_run_close(nc_run *run, const char *status, json_t *final, nc_error *err);

/* The source commit the engine was built from ("unknown" outside git). */
const char *nc_source_commit(void);
void nc_utc_iso(char *buf, size_t n);

#endif
