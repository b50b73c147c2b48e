/* memory_limits.c: the memory limits and the check of an estimate against them. */
#include "memory_limits.h"

#include <stdio.h>
#include <unistd.h>

/* The cgroup v2 memory limit of this process, or 0. */
static int64_t cgroup_limit(void) {
    FILE *f = fopen("/sys/fs/cgroup/memory.max", "r");
    long long v = 0;
    if (f) {
        if (fscanf(f, "%lld", &v) != 1) v = 0; /* "max": no limit */
        fclose(f);
    }
    return v > 0 ? v : 0;
}

int64_t nc_default_host_limit(void) {
    int64_t phys = (int64_t)sysconf(_SC_PHYS_PAGES) * (int64_t)sysconf(_SC_PAGESIZE), cg = cgroup_limit();
    if (phys <= 0) phys = (int64_t)1 << 32;
    if (cg > 0 && cg < phys) phys = cg;
    return phys / 5 * 4;
}

int64_t nc_corpus_max_bytes(const nc_limits *l) { return l->host_bytes / NC_CORPUS_BYTES_PER_BYTE; }

static int over(const char *what, const char *where, double need, int64_t limit, const char *option, nc_code code,
                nc_error *err) {
    if (need > 1e18) /* no machine's: more than any size nanochatd counts */
        return nc_fail(err, code, "%s needs more %s memory than any machine has; the limit is %.2f GiB (nanochatd %s)",
                       what, where, (double)limit / (1 << 30), option);
    return nc_fail(err, code, "%s needs about %.2f GiB of %s memory; the limit is %.2f GiB (nanochatd %s)", what,
                   need / (1 << 30), where, (double)limit / (1 << 30), option);
}

int nc_footprint_check(const nc_limits *l, int64_t device_limit, const nc_footprint *fp, nc_code code,
                       const char *what, nc_error *err) {
    double host = fp->host + fp->host_transient;
    if (host > (double)l->host_bytes) return over(what, "host", host, l->host_bytes, "--max-memory", code, err);
    if (fp->device > 0 && fp->device > (double)device_limit)
        return over(what, "device", fp->device, device_limit, "--max-device-memory", code, err);
    return 0;
}
