/* artifacts.c: run folders, run.json, metrics.jsonl, atomic writes. */
#define _GNU_SOURCE
#include "artifacts.h"
#include "nc_commit.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

int nc_mkdirs(const char *path, nc_error *err) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return nc_fail(err, NC_E_IO, "cannot create %s: %s", buf, strerror(errno));
            *p = c;
            if (c == '\0') break;
        }
    }
    return 0;
}

static int fsync_dir_of(const char *path) {
    char buf[PATH_MAX];
    snprintf(buf, sizeof buf, "%s", path);
    int fd = open(dirname(buf), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    close(fd);
    return rc;
}

int nc_write_atomic(const char *path, const void *data, size_t len, nc_error *err) {
    static unsigned counter;
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", path, (int)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return nc_fail(err, NC_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    const char *p = data;
    size_t left = len;
    int rc = 0;
    while (left > 0 && rc == 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) rc = nc_fail(err, NC_E_IO, "cannot write %s: %s", tmp, w < 0 ? strerror(errno) : "short write");
        else { p += w; left -= (size_t)w; }
    }
    if (rc == 0 && fsync(fd) < 0) rc = nc_fail(err, NC_E_IO, "cannot sync %s: %s", tmp, strerror(errno));
    if (close(fd) < 0 && rc == 0) rc = nc_fail(err, NC_E_IO, "cannot close %s: %s", tmp, strerror(errno));
    if (rc == 0 && rename(tmp, path) < 0) rc = nc_fail(err, NC_E_IO, "cannot rename %s: %s", tmp, strerror(errno));
    if (rc) unlink(tmp);
    else fsync_dir_of(path);
    return rc;
}

static int write_info(nc_run *run, nc_error *err) {
    char path[PATH_MAX + 16], *text = json_dumps(run->info, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    snprintf(path, sizeof path, "%s/run.json", run->dir);
    int rc = nc_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

int nc_run_open(nc_run *run, const char *results_dir, const char *run_id, const char *stem, json_t *info,
                nc_error *err) {
    memset(run, 0, sizeof *run);
    run->info = info;
    if (nc_mkdirs(results_dir, err)) return -1;
    for (int n = 1; n < 1000; n++) {
        if (*run_id) snprintf(run->id, sizeof run->id, "%s", run_id);
        else if (n == 1) snprintf(run->id, sizeof run->id, "%s", stem);
        else snprintf(run->id, sizeof run->id, "%s-%d", stem, n);
        snprintf(run->dir, sizeof run->dir, "%s/%s", results_dir, run->id);
        if (mkdir(run->dir, 0755) == 0 || (*run_id && errno == EEXIST)) break;
        if (errno != EEXIST) return nc_fail(err, NC_E_IO, "cannot create %s: %s", run->dir, strerror(errno));
    }
    char path[PATH_MAX + 16], when[40];
    snprintf(path, sizeof path, "%s/metrics.jsonl", run->dir);
    run->metrics = fopen(path, "w");
    if (!run->metrics) return nc_fail(err, NC_E_IO, "cannot create %s: %s", path, strerror(errno));
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
