/* test_gpu_train.c: the GPT end to end on the cuda backend against the cpu
 * backend (f32), same seed, same batches of tiny Shakespeare:
 *   - 100 steps: the gpu loss curve tracks the cpu's within 2% (10-step means);
 *   - the gpu's exported weights evaluate on the cpu to its val loss within 1e-2;
 *   - a second gpu run gives bit-identical losses and state (deterministic);
 *   - KV-cache decoding on the gpu gives the cpu decoder's logits (same weights);
 *   - a non-finite loss, seen a step late, fails and keeps the last good state;
 *   - the tensor bigram with --device cuda tracks its host path and learns.
 * Exits 77 without a CUDA device (1 with NC_REQUIRE_GPU set); NC_DATA names
 * the corpus (default: the source tree's data/tinyshakespeare.txt). */
#include "engine/store/corpus.h"
#include "engine/store/files.h"
#include "gpu_check.h"
#include "models/bigram/tensor.h"
#include "models/gpt/testing.h"
#include "backend/backend.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STEPS 100
#define B 8
#define T 128
#define ARGS "{\"depth\": 4, \"aspect_ratio\": 64, \"head_dim\": 64, \"seq_len\": 128, \"batch_size\": 8, " \
             "\"window_pattern\": \"SL\", \"seed\": 7, \"device\": \"%s\"}"

static const nc_model_ops *ops = &nc_tensor_gpt_ops;
static int failures;

static void report(const char *what, bool ok, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void report(const char *what, bool ok, const char *fmt, ...) {
    char detail[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    printf("%-44s %-4s %s\n", what, ok ? "PASS" : "FAIL", detail);
    fflush(stdout);
    failures += !ok;
}

static void die(const char *what, const nc_error *err) {
    printf("FAIL: %s: %s\n", what, err->message);
    exit(1);
}

/* B windows of the split, the same for a given (split, index) on every run. */
static nc_batch windows(const int32_t *tokens, size_t n, uint64_t index, int32_t *x, int32_t *y) {
    uint64_t s = 0x9e3779b97f4a7c15ull * (index + 1);
    for (int b = 0; b < B; b++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        size_t start = (size_t)(s >> 33) % (n - T - 1);
        memcpy(x + b * T, tokens + start, sizeof *x * T);
        memcpy(y + b * T, tokens + start + 1, sizeof *y * T);
    }
    return (nc_batch){x, y, B, T};
}

/* A model of `kind` for the train arguments json (a format with one %s: the device). */
static nc_model *model_of(const nc_model_ops *kind, const char *json_fmt, nc_backend *be, int V) {
    char json[512];
    nc_error err = {0};
    nc_train_cfg cfg;
    snprintf(json, sizeof json, json_fmt, be->name);
    json_t *args = json_loads(json, 0, NULL);
    if (nc_args_parse(nc_command_find("train"), args, &cfg, &err) || kind->resolve(&cfg.model, be, &cfg.eval_windows, &err)) die("config", &err);
    json_decref(args);
    nc_model *m = kind->create(&cfg.model, V, be, &err);
    if (!m) die("create", &err);
    return m;
}

static nc_model *model_on(nc_backend *be, int V) { return model_of(ops, ARGS, be, V); }

/* STEPS steps; losses (STEPS) in step order whatever the model's loss lag. */
static nc_model *train(nc_backend *be, const nc_corpus *c, double *losses) {
    nc_model *m = model_on(be, c->tok.chars.size);
    int32_t x[B * T], y[B * T];
    int lag = ops->loss_lag ? ops->loss_lag(m) : 0;
    nc_error err = {0};
    double l;
    for (int s = 0; s < STEPS; s++) {
        nc_batch b = windows(c->train.ids, c->train.n, (uint64_t)s, x, y);
        if (ops->train_step(m, &b, s, STEPS, &l, &err)) die("train_step", &err);
        if (s >= lag) losses[s - lag] = l;
    }
    if (lag && ops->drain(m, &losses[STEPS - 1], &err)) die("drain", &err);
    return m;
}

static double val_loss(nc_model *m, const nc_corpus *c) {
    int32_t x[B * T], y[B * T];
    float losses[B * T];
    nc_error err = {0};
    nc_batch b = windows(c->val.ids, c->val.n, 12345, x, y);
    if (ops->eval_losses(m, &b, losses, &err)) die("eval_losses", &err);
    double sum = 0;
    for (int i = 0; i < B * T; i++) sum += losses[i];
    return sum / (B * T);
}

static void curves_agree(const double *cpu, const double *gpu) {
    double worst = 0, worst_step = 0;
    for (int w = 0; w < STEPS / 10; w++) {
        double a = 0, b = 0;
        for (int s = w * 10; s < w * 10 + 10; s++) a += cpu[s], b += gpu[s];
        if (fabs(b - a) / a > worst) worst = fabs(b - a) / a;
    }
    for (int s = 0; s < STEPS; s++) worst_step = fmax(worst_step, fabs(gpu[s] - cpu[s]) / cpu[s]);
    report("loss curve gpu vs cpu (10-step means)", worst <= 0.02 && isfinite(worst),
           "worst %.4f (per step %.4f); loss %.4f -> %.4f cpu, %.4f -> %.4f gpu", worst, worst_step, cpu[0],
           cpu[STEPS - 1], gpu[0], gpu[STEPS - 1]);
}

static void weights_move(nc_model *from, nc_model *to, bool optimizer) {
    nc_tensor_list state = {0};
    nc_error err = {0};
    if (ops->export_state(from, optimizer, &state, &err) || ops->import_state(to, &state, optimizer, ops->updates(from), &err))
        die("state exchange", &err);
    nc_tensors_free(&state);
}

static bool same_state(nc_model *a, nc_model *b) {
    nc_tensor_list sa = {0}, sb = {0};
    nc_error err = {0};
    if (ops->export_state(a, true, &sa, &err) || ops->export_state(b, true, &sb, &err)) die("export", &err);
    bool same = sa.count == sb.count;
    for (int i = 0; same && i < sa.count; i++)
        same = memcmp(sa.items[i].data, sb.items[i].data, sizeof(float) * (size_t)nc_tensor_numel(&sa.items[i])) == 0;
    nc_tensors_free(&sa);
    nc_tensors_free(&sb);
    return same;
}

/* Both decoders, `batch` sequences each: a shared prompt, then 300 steps
 * (past T) that feed sequence b the cpu's greedy pick plus b, so that the
 * sequences differ. */
static void decoders_agree(nc_model *gpu, nc_model *cpu, const nc_corpus *c, int batch) {
    nc_error err = {0};
    nc_decoder *dg = ops->decoder_new(gpu, batch, 0, &err), *dc = dg ? ops->decoder_new(cpu, batch, 0, &err) : NULL;
    if (!dc) die("decoder_new", &err);
    int V = c->tok.chars.size;
    float *lg = malloc(sizeof(float) * (size_t)(V * batch)), *lc = malloc(sizeof(float) * (size_t)(V * batch));
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)batch);
    if (ops->decoder_feed(dg, c->val.ids, 16, lg, &err) || ops->decoder_feed(dc, c->val.ids, 16, lc, &err)) die("feed", &err);
    double worst = 0;
    for (int step = 0, rows = 1; step < 300; step++, rows = batch) {
        for (int r = 0; r < rows; r++) {
            const float *g = lg + (size_t)r * V, *l = lc + (size_t)r * V;
            double diff = 0, ref = 0;
            int best = 0;
            for (int v = 0; v < V; v++) {
                diff += ((double)g[v] - l[v]) * (g[v] - l[v]);
                ref += (double)l[v] * l[v];
                best = l[v] > l[best] ? v : best;
            }
            worst = fmax(worst, isfinite(diff) ? sqrt(diff / ref) : INFINITY);
            for (int b = r; b < (rows == 1 ? batch : r + 1); b++) ids[b] = (best + b) % V;
        }
        if (ops->decoder_step(dg, ids, lg, &err) || ops->decoder_step(dc, ids, lc, &err)) die("step", &err);
    }
    char what[80];
    snprintf(what, sizeof what, "KV-cache decoding gpu vs cpu logits, %d sequence%s", batch, batch > 1 ? "s" : "");
    report(what, worst <= 2e-2, "worst rel err %.2e over 300 steps (past T)", worst);
    ops->decoder_free(dg);
    ops->decoder_free(dc);
    free(ids);
    free(lg);
    free(lc);
}

/* A poisoned import: the step after next reports the non-finite loss (a step
 * late) and the model stays at that import, as the cpu's synchronous step. */
static void non_finite_recovers(nc_model *m, const nc_corpus *c) {
    nc_tensor_list good = {0}, bad = {0};
    nc_error err = {0};
    int32_t x[B * T], y[B * T];
    double l;
    if (ops->export_state(m, true, &good, &err) || ops->export_state(m, true, &bad, &err)) die("export", &err);
    ((nc_tensor *)nc_tensors_get(&bad, "lm_head.weight"))->data[0] = NAN;
    if (ops->import_state(m, &bad, true, ops->updates(m), &err)) die("import", &err);
    nc_batch b = windows(c->train.ids, c->train.n, 999, x, y);
    int rc1 = ops->train_step(m, &b, STEPS, STEPS + 4, &l, &err);
    int rc2 = rc1 ? rc1 : ops->train_step(m, &b, STEPS + 1, STEPS + 4, &l, &err);
    if (rc2 == 0 && ops->loss_lag(m)) rc2 = ops->drain(m, &l, &err);
    nc_code code = err.code;
    nc_tensor_list after = {0};
    if (ops->export_state(m, true, &after, &err)) die("export", &err);
    bool kept = true;
    for (int i = 0; i < bad.count; i++)
        kept = kept && memcmp(bad.items[i].data, after.items[i].data,
                              sizeof(float) * (size_t)nc_tensor_numel(&bad.items[i])) == 0;
    report("non-finite loss: fails, keeps last good state", rc2 != 0 && code == NC_E_NON_FINITE_LOSS && kept,
           "rc %d code %d state kept %d", rc2, code, kept);
    if (ops->import_state(m, &good, true, ops->updates(m), &err)) die("import", &err);
    nc_tensors_free(&good);
    nc_tensors_free(&bad);
    nc_tensors_free(&after);
}

/* 200 steps of the bigram both ways on the same pairs: every loss within 2%. */
static void bigram_on_gpu(nc_backend *gpu, nc_backend *cpu, const nc_corpus *c) {
    const char *args = "{\"mode\": \"tensor\", \"model_kind\": \"bigram\", \"optimizer\": \"adamw\", "
                       "\"input_rmsnorm\": true, \"batch_size\": 256, \"seed\": 3, \"device\": \"%s\"}";
    const nc_model_ops *bo = &nc_tensor_bigram_ops;
    nc_model *mg = model_of(bo, args, gpu, c->tok.chars.size), *mc = model_of(bo, args, cpu, c->tok.chars.size);
    int32_t x[256], y[256];
    double lg = 0, lc = 0, first = 0, worst = 0;
    nc_error err = {0};
    for (int s = 0; s < 200; s++) {
        for (int i = 0; i < 256; i++) {
            size_t at = ((size_t)s * 7919u + (size_t)i * 104729u) % (c->train.n - 1);
            x[i] = c->train.ids[at], y[i] = c->train.ids[at + 1];
        }
        nc_batch b = {x, y, 256, 1};
        if (bo->train_step(mg, &b, s, 200, &lg, &err) || bo->train_step(mc, &b, s, 200, &lc, &err)) die("bigram", &err);
        worst = fmax(worst, fabs(lg - lc) / lc);
        if (s == 0) first = lg;
    }
    report("tensor bigram on gpu tracks the cpu", worst <= 0.02 && lg < first - 0.3, "loss %.3f -> %.3f, worst %.4f",
           first, lg, worst);
    bo->destroy(mg);
    bo->destroy(mc);
}

int main(void) {
    nc_error err = {0};
    nc_backend *gpu = nc_backend_cuda_new(&err);
    if (!gpu) return gc_no_backend(err.message);
    nc_backend *cpu = nc_backend_cpu_new(0, &err);
    nc_corpus c;
    const char *data = getenv("NC_DATA") ? getenv("NC_DATA") : NC_SOURCE_DIR "/data/tinyshakespeare.txt";
    char *text = NULL;
    size_t len;
    if (!cpu || nc_read_file(data, INT64_MAX, "corpus", &text, &len, &err) ||
        nc_corpus_load(&c, text, len, data, NC_STYLE_CLASSIC, NULL, NULL, &err))
        die("setup", &err);
    free(text);
    printf("device: %s\n", gpu->device);
    double lc[STEPS], lg[STEPS], lg2[STEPS];
    nc_model *mc = train(cpu, &c, lc), *mg = train(gpu, &c, lg), *mg2 = train(gpu, &c, lg2);
    report("gpu train_step mode", strcmp(nc_gpt_step_mode(mg), "graph") == 0, "%s", nc_gpt_step_mode(mg));
    curves_agree(lc, lg);
    report("deterministic: two gpu runs, same losses", memcmp(lg, lg2, sizeof lg) == 0, "final %.9f vs %.9f",
           lg[STEPS - 1], lg2[STEPS - 1]);
    report("deterministic: two gpu runs, same state", same_state(mg, mg2), "weights and optimizer, bitwise");
    double vg = val_loss(mg, &c);
    weights_move(mg, mc, false);
    double vc = val_loss(mc, &c);
    report("gpu weights evaluated on cpu", fabs(vg - vc) <= 1e-2, "val %.5f gpu, %.5f cpu", vg, vc);
    decoders_agree(mg, mc, &c, 1);
    decoders_agree(mg, mc, &c, 4);
    non_finite_recovers(mg2, &c);
    bigram_on_gpu(gpu, cpu, &c);
    ops->destroy(mc), ops->destroy(mg), ops->destroy(mg2);
    nc_corpus_free(&c);
    nc_backend_free(cpu), nc_backend_free(gpu);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
