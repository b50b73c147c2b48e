/* eval.c: validation loss, bits per byte, and the eval command. */
#define _GNU_SOURCE
#include "eval.h"
#include "backend/backend.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

size_t nc_eval_window_start(size_t n, int T, int64_t W, int64_t i) {
    size_t span = n - (size_t)T - 1;
    return W < 2 ? 0 : (size_t)((unsigned __int128)span * (uint64_t)i / (uint64_t)(W - 1));
}

/* What the windows sum: the loss of every target, and, as upstream's
 * evaluate_bpb, the loss and the bytes of the targets that have bytes (a
 * special token has none: it counts in neither). */
typedef struct eval_sums {
    double nats, byte_nats, bytes;
} eval_sums;

/* Sums over W windows, B at a time, in window order; stops with Cancelled
 * between batches when the sink is cancelled. */
static int score(nc_resident *r, const nc_corpus *c, int64_t W, const nc_sink *sink, eval_sums *s, nc_error *err) {
    int T = (int)r->cfg.model.seq_len, B = (int)r->cfg.model.batch_size;
    int32_t *x = malloc((size_t)B * T * sizeof *x), *y = malloc((size_t)B * T * sizeof *y); /* (B, T) */
    float *loss = malloc((size_t)B * T * sizeof *loss);                                       /* (B, T) */
    int rc = x && y && loss ? 0 : nc_fail(err, NC_E_INTERNAL, "out of memory for an eval batch of %d x %d", B, T);
    *s = (eval_sums){0};
    for (int64_t w0 = 0; w0 < W && rc == 0; w0 += B) {
        if (nc_step_boundary(sink)) {
            rc = nc_fail(err, NC_E_CANCELLED, "eval cancelled after %lld of %lld windows", (long long)w0, (long long)W);
            break;
        }
        int nb = (int)(W - w0 < B ? W - w0 : B);
        for (int b = 0; b < nb && rc == 0; b++)
            rc = nc_tokens_window(&c->val, nc_eval_window_start(c->val.n, T, W, w0 + b), T, x + (size_t)b * T,
                                  y + (size_t)b * T, err);
        if (rc) break;
        nc_batch batch = {x, y, nb, T};
        rc = r->ops->eval_losses(r->model, &batch, loss, err);
        for (int64_t i = 0; rc == 0 && i < (int64_t)nb * T; i++) {
            int b = nc_tokenizer_byte_count(&r->tok, y[i]);
            s->nats += loss[i];
            s->byte_nats += b ? loss[i] : 0;
            s->bytes += b;
        }
    }
    free(x);
    free(y);
    free(loss);
    return rc;
}

int nc_eval_model(nc_engine *e, nc_resident *r, int64_t W, const nc_sink *sink, nc_eval_result *out, nc_error *err) {
    const nc_train_cfg *cfg = &r->cfg;
    if (W == 0) W = cfg->eval_windows;
    if (W < 2) return nc_fail(err, NC_E_BAD_REQUEST, "args.windows must be at least 2");
    const nc_corpus *c = nc_resident_corpus(e, r, sink, err);
    if (!c) return -1;
    eval_sums s;
    if (score(r, c, W, sink, &s, err)) return -1;
    int64_t tokens = W * cfg->model.seq_len;
    *out = (nc_eval_result){s.nats / (double)tokens, s.byte_nats / (log(2.0) * s.bytes), W, tokens};
    return 0;
}

/* The job's own memory: the model's host bytes and what its backend holds
 * (host memory on the cpu); not the process's, which other clients' requests
 * also use. */
static void job_bytes(const nc_resident *r, int64_t *host, int64_t *device) {
    *host = r->ops->memory_bytes ? r->ops->memory_bytes(r->model) : 0;
    *device = -1;
    if (!r->backend) return;
    int64_t held = nc_backend_device_bytes(r->backend, false);
    if (r->backend->gpu) *device = held;
    else *host += held;
}

int nc_eval_guarded(nc_engine *e, nc_resident *r, int64_t W, const nc_sink *sink, nc_eval_result *out, nc_error *err) {
    if (nc_eval_model(e, r, W, sink, out, err)) return -1;
    int64_t host, device; /* observed with the eval's working set in place, as every eval has it */
    job_bytes(r, &host, &device);
    return nc_guard_observe(&e->guard, host, device, err);
}

json_t *nc_eval_json(const nc_eval_result *ev, int64_t step) {
    return json_pack("{s:s, s:I, s:o, s:o, s:I, s:I}", "type", "eval", "step", (json_int_t)step, "val_loss",
                     nc_json_number(ev->val_loss), "bpb", nc_json_number(ev->bpb), "windows", (json_int_t)ev->windows,
                     "tokens", (json_int_t)ev->tokens);
}

#define NC_TWIN_BATCH 8 /* windows per batch of a cpu twin's eval */

/* An fp32 copy of the resident model on the cpu backend: same config,
 * vocabulary and weights (no optimizer state). */
static int cpu_twin(nc_engine *e, nc_resident *twin, nc_error *err) {
    const nc_resident *r = &e->res;
    memset(twin, 0, sizeof *twin);
    twin->ops = r->ops;
    twin->cfg = r->cfg;
    twin->cfg.device = NC_DEVICE_CPU;
    if (twin->cfg.model.batch_size > NC_TWIN_BATCH) twin->cfg.model.batch_size = NC_TWIN_BATCH; /* the windows do not depend on it */
    if (nc_tokenizer_copy(&twin->tok, &r->tok)) return nc_fail(err, NC_E_INTERNAL, "out of memory");
    nc_tensor_list tl = {0};
    int rc = -1;
    if ((twin->backend = nc_engine_backend(e, NC_DEVICE_CPU, err)) &&
        nc_engine_build(e, twin, false, NC_E_BAD_REQUEST, "a cpu copy of the resident model", err) == 0 &&
        r->ops->export_state(r->model, false, &tl, err) == 0)
        rc = twin->ops->import_state(twin->model, &tl, false, 0, err);
    nc_tensors_free(&tl);
    return rc;
}

int nc_eval_check(const void *args, nc_error *err) {
    const nc_eval_cfg *req = args;
    if (req->windows != 1) return 0;
    return nc_fail(err, NC_E_BAD_REQUEST, "args.windows must be 0 (the model's default) or at least 2");
}

json_t *nc_cmd_eval(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    const nc_eval_cfg *cfg = args;
    nc_resident *r = &e->res, twin = {0};
    if (nc_require_model(r, err)) return NULL;
    bool on_cpu = cfg->device == NC_DEVICE_CPU && r->backend && r->backend->gpu;
    nc_eval_result ev;
    int rc = on_cpu ? cpu_twin(e, &twin, err) : 0;
    /* the twin is a passing visitor: the memory guard watches the resident model's evals */
    if (rc == 0) rc = on_cpu ? nc_eval_model(e, &twin, cfg->windows, sink, &ev, err)
                             : nc_eval_guarded(e, r, cfg->windows, sink, &ev, err);
    nc_backend *be = on_cpu ? twin.backend : r->backend;
    nc_resident_clear(&twin);
    if (rc) return NULL;
    json_t *res = nc_eval_json(&ev, nc_resident_step(r));
    json_object_del(res, "type");
    json_object_update_new(res, json_pack("{s:I, s:s, s:s}", "seq_len", (json_int_t)r->cfg.model.seq_len, "backend",
                                          be ? be->name : "cpu", "compute_dtype",
                                          be && be->act == NC_BF16 ? "bfloat16" : "float32"));
    return res;
}

double nc_peak_flops(const struct nc_backend *be) {
    if (!be || !be->gpu) return 0;
    /* bf16 dense peaks, as upstream's get_peak_flops (more specific names first) */
    static const struct { const char *a, *b; double flops; } table[] = {
        {"H200", "NVL", 836e12}, {"H200", "PCIe", 836e12}, {"H200", NULL, 989e12}, {"H100", "NVL", 835e12},
        {"H100", "PCIe", 756e12}, {"H100", NULL, 989e12}, {"A100", NULL, 312e12},  {"L40S", NULL, 362e12},
        {"4090", NULL, 165.2e12}, {"5090", NULL, 209.5e12}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcasestr(be->device, table[i].a) && (!table[i].b || strcasestr(be->device, table[i].b))) return table[i].flops;
    return 0;
}

int64_t nc_peak_rss_bytes(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %lld kB", &kb) == 1) break;
    if (f) fclose(f);
    return kb * 1024;
}
