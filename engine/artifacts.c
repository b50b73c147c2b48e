/* artifacts.c: run folders, run.json, metrics.jsonl, atomic writes. */
#define _GNU_SOURCE
#include "artifacts.h"
#include "nc_commit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <signal.h>
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

/* Removes temporaries of `path` left by writers that died (kill -9, power loss). */
static void remove_stale_temps(const char *path) {
    char dir[PATH_MAX], base[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    snprintf(base, sizeof base, "%s", path);
    const char *b = basename(base);
    size_t blen = strlen(b);
    DIR *d = opendir(dirname(dir));
    for (struct dirent *de; d && (de = readdir(d));) {
        int pid;
        unsigned n;
        char extra;
        if (strncmp(de->d_name, b, blen) != 0 || sscanf(de->d_name + blen, ".tmp.%d.%u%c", &pid, &n, &extra) != 2)
            continue;
        if (pid > 0 && pid != getpid() && kill(pid, 0) < 0 && errno == ESRCH) unlinkat(dirfd(d), de->d_name, 0);
    }
    if (d) closedir(d);
}

/* Writes everything; 0 or an errno. */
static int write_fully(int fd, const char *p, size_t left) {
    while (left > 0) {
        ssize_t w = write(fd, p, left);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return w < 0 ? errno : EIO;
        p += w;
        left -= (size_t)w;
    }
    return 0;
}

int nc_write_atomic(const char *path, const void *data, size_t len, nc_error *err) {
    static unsigned counter;
    char tmp[PATH_MAX];
    remove_stale_temps(path);
    snprintf(tmp, sizeof tmp, "%s.tmp.%d.%u", path, (int)getpid(), __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) return nc_fail(err, NC_E_IO, "cannot create %s: %s", tmp, strerror(errno));
    int e = write_fully(fd, data, len);
    if (!e && fsync(fd) < 0) e = errno;
    if (close(fd) < 0 && !e) e = errno;
    if (!e && rename(tmp, path) < 0) e = errno;
    if (e) {
        unlink(tmp);
        return nc_fail(err, NC_E_IO, "cannot write %s: %s (any previous version of it is unchanged)", path, strerror(e));
    }
    fsync_dir_of(path);
    return 0;
}

static int write_info(nc_run *run, nc_error *err) {
    char path[PATH_MAX + 16], *text = json_dumps(run->info, JSON_INDENT(2) | JSON_REAL_PRECISION(10));
    snprintf(path, sizeof path, "%s/run.json", run->dir);
    int rc = nc_write_atomic(path, text, strlen(text), err);
    free(text);
    return rc;
}

/* A run id names one folder directly inside the results folder. */
static int check_run_id(const char *id, nc_error *err) {
    if (strchr(id, '/') || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.run_id must be a plain folder name, not '%s'", id);
    return 0;
}

static bool is_real_dir(const char *path) {
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int nc_run_open(nc_run *run, const char *results_dir, const char *run_id, const char *stem, json_t *info,
                nc_error *err) {
    memset(run, 0, sizeof *run);
    run->info = info;
    if (check_run_id(run_id, err) || nc_mkdirs(results_dir, err)) return -1;
    for (int n = 1; n < 1000; n++) {
        if (*run_id) snprintf(run->id, sizeof run->id, "%s", run_id);
        else if (n == 1) snprintf(run->id, sizeof run->id, "%s", stem);
        else snprintf(run->id, sizeof run->id, "%s-%d", stem, n);
        snprintf(run->dir, sizeof run->dir, "%s/%s", results_dir, run->id);
        if (mkdir(run->dir, 0755) == 0) break;
        if (errno != EEXIST) return nc_fail(err, NC_E_IO, "cannot create %s: %s", run->dir, strerror(errno));
        if (*run_id && is_real_dir(run->dir)) break;
        if (*run_id) return nc_fail(err, NC_E_PERMISSION_DENIED, "%s exists and is not a folder", run->dir);
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
