/* guards.c: rolling-minimum memory guard over the job's counted memory. */
#include "guards.h"


void nc_guard_init(nc_guard *g, int window, double max_growth) {
    *g = (nc_guard){0};
    g->window = window < 1 ? 1 : window > NC_GUARD_MAX_WINDOW ? NC_GUARD_MAX_WINDOW : window;
    g->max_growth = max_growth;
}

void nc_guard_reset(nc_guard *g) {
    g->host = g->device = (nc_guard_series){0};
}

static double series_min(const nc_guard_series *s) {
    double m = s->obs[0];
    for (int i = 1; i < s->count; i++)
        if (s->obs[i] < m) m = s->obs[i];
    return m;
}

static int check(const nc_guard *g, const nc_guard_series *s, double current, const char *what, nc_error *err) {
    if (s->count == 0) return 0;
    double base = series_min(s), ratio = base > 0 ? current / base : 1.0;
    if (ratio <= g->max_growth) return 0;
    return nc_fail(err, NC_E_MEMORY_DRIFT, "%s memory grew from a baseline of %.0f bytes to %.0f bytes (ratio %.3f > %.3f)",
                   what, base, current, ratio, g->max_growth);
}

static void record(nc_guard *g, nc_guard_series *s, double v) {
    s->obs[s->head] = v;
    s->head = (s->head + 1) % g->window;
    if (s->count < g->window) s->count++;
}

int nc_guard_observe(nc_guard *g, int64_t host_bytes, int64_t device_bytes, nc_error *err) {
    if (check(g, &g->host, (double)host_bytes, "host", err)) return -1;
    if (device_bytes >= 0 && check(g, &g->device, (double)device_bytes, "device", err)) return -1;
    record(g, &g->host, (double)host_bytes);
    if (device_bytes >= 0) record(g, &g->device, (double)device_bytes);
    return 0;
}
