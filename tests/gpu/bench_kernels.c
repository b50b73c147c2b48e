/* bench_kernels.c (nc-bench-kernels): the cuda ops at the d6, d12 and d20
 * shapes of the reference runs, and whole training steps of those models.
 *
 * First the two ceilings of this card, measured: a device-to-device copy
 * (bytes read + written per second) and a large bf16 gemm through our gemm op.
 * Then each op: 3 warm-up calls, the median of 20 timed with events, on random
 * data (never zeros), reported against its floor: the fewest bytes it must
 * move over the copy ceiling, or its FLOPs over the gemm ceiling. Then steps:
 * the GPT on random tokens, warm-up steps (eager, then recorded), 20 timed
 * replays: tok/s, MFU against 989 TFLOP/s (upstream's H100/H200 figure), peak
 * device memory.
 *
 *   nc-bench-kernels [--config d6,d12,d20] [--kernels-only | --steps-only]  */
#include "gpu_check.h"
#include "models/gpt/testing.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REPEATS 20
#define BF NC_BF16
#define V 65
#define VP 128

typedef struct config {
    const char *name;
    int depth, C, H, T, B;
} config;

static const config configs[] = {
    {"d6", 6, 384, 3, 256, 64},
    {"d12", 12, 768, 6, 1024, 32},
    {"d20", 20, 1280, 10, 2048, 16},
};

typedef struct bench {
    nc_backend *be;
    cudaEvent_t e0, e1;
    double copy_bps, gemm_flops; /* the measured ceilings */
    const config *cfg;
    int64_t N;                   /* B T */
    /* one layer's buffers at cfg (act unless noted) */
    void *x, *y, *z, *qkv, *dqkv, *fc, *dfc, *act, *w, *logits;
    float *dw, *rstd, *lse, *work, *losses, *table, *dtable, *gate, *wve, *dwve, *smear_w, *scal, *dscal;
    float *p, *g, *m, *v, *hp;
    int32_t *ids;
} bench;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void check(bench *b, const char *what) {
    nc_error err = {0};
    if (b->be->ops->sync(b->be, &err)) {
        fprintf(stderr, "FAIL: %s: %s\n", what, err.message);
        exit(1);
    }
}

/* ---- buffers with random contents --------------------------------------------------------------- */

static uint64_t rng = 0x123456789abcdefull;

static float uniform(void) {
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    return (float)((rng >> 40) & 0xffffff) / 16777216.0f * 2.0f - 1.0f;
}

/* n elements of dt, uniform in [-scale, scale) (bf16 through a device cast). */
static void *random_buf(bench *b, int64_t n, nc_dtype dt, float scale) {
    const nc_backend_ops *o = b->be->ops;
    float *h = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) h[i] = scale * uniform();
    float *f = o->alloc(b->be, sizeof(float) * (size_t)n);
    void *d = dt == NC_F32 ? f : o->alloc(b->be, 2 * (size_t)n);
    if (!f || !d) {
        fprintf(stderr, "out of device memory\n");
        exit(1);
    }
    o->upload(b->be, f, h, sizeof(float) * (size_t)n);
    if (dt == BF) {
        o->cast(b->be, d, BF, f, NC_F32, n);
        check(b, "fill");
        o->free(b->be, f);
    }
    free(h);
    return d;
}

static void alloc_layer(bench *b) {
    int64_t N = b->N, C = b->cfg->C, H = b->cfg->H;
    b->x = random_buf(b, N * C, BF, 1), b->y = random_buf(b, N * C, BF, 1), b->z = random_buf(b, N * C, BF, 1);
    b->qkv = random_buf(b, N * 3 * C, BF, 1), b->dqkv = random_buf(b, N * 3 * C, BF, 1);
    b->fc = random_buf(b, N * 4 * C, BF, 1), b->dfc = random_buf(b, N * 4 * C, BF, 1);
    b->act = random_buf(b, N * 4 * C, BF, 1);
    b->w = random_buf(b, 4 * C * C, BF, 0.05f), b->logits = random_buf(b, N * VP, BF, 10);
    b->dw = random_buf(b, 4 * C * C, NC_F32, 1), b->rstd = random_buf(b, 2 * N * H, NC_F32, 1);
    b->lse = random_buf(b, N * H, NC_F32, 1), b->work = random_buf(b, N * H, NC_F32, 1);
    b->losses = random_buf(b, N, NC_F32, 1), b->table = random_buf(b, VP * C, NC_F32, 1);
    b->dtable = random_buf(b, VP * C, NC_F32, 1), b->gate = random_buf(b, N * H, NC_F32, 1);
    b->wve = random_buf(b, H * 12, NC_F32, 1), b->dwve = random_buf(b, H * 12, NC_F32, 1);
    b->smear_w = random_buf(b, 24, NC_F32, 1), b->scal = random_buf(b, 4, NC_F32, 1);
    b->dscal = random_buf(b, 4, NC_F32, 1);
    b->p = random_buf(b, 4 * C * C, NC_F32, 1), b->g = random_buf(b, 4 * C * C, NC_F32, 1);
    b->m = random_buf(b, 4 * C * C, NC_F32, 0.1f), b->v = random_buf(b, 4 * C * C, NC_F32, 0.01f);
    float hp[8] = {0.004f, 0.8f, 0.95f, 1e-10f, 0.01f, 0.5f, 0.1f, 0};
    b->hp = b->be->ops->alloc(b->be, sizeof hp);
    b->be->ops->upload(b->be, b->hp, hp, sizeof hp);
    int32_t *ids = malloc(sizeof *ids * (size_t)N);
    for (int64_t i = 0; i < N; i++) ids[i] = (int32_t)((uniform() + 1) * 32) % V;
    b->ids = b->be->ops->alloc(b->be, sizeof *ids * (size_t)N);
    b->be->ops->upload(b->be, b->ids, ids, sizeof *ids * (size_t)N);
    free(ids);
    check(b, "alloc");
}

static void free_layer(bench *b) {
    void *all[] = {b->x, b->y, b->z, b->qkv, b->dqkv, b->fc, b->dfc, b->act, b->w, b->logits, b->dw, b->rstd, b->lse,
                   b->work, b->losses, b->table, b->dtable, b->gate, b->wve, b->dwve, b->smear_w, b->scal,
                   b->dscal, b->p, b->g, b->m, b->v, b->hp, b->ids};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) b->be->ops->free(b->be, all[i]);
}

/* ---- timing --------------------------------------------------------------------------------------- */

typedef void (*op_fn)(bench *b);

static int cmp(const void *a, const void *c) {
    double x = *(const double *)a, y = *(const double *)c;
    return (x > y) - (x < y);
}

/* Median milliseconds of fn over REPEATS calls, after 3 warm-up calls. */
static double time_op(bench *b, op_fn fn) {
    cudaStream_t s = nc_cuda_of(b->be)->stream;
    double ms[REPEATS];
    for (int i = 0; i < 3; i++) fn(b);
    for (int i = 0; i < REPEATS; i++) {
        float t;
        cudaEventRecord(b->e0, s);
        fn(b);
        cudaEventRecord(b->e1, s);
        cudaEventSynchronize(b->e1);
        cudaEventElapsedTime(&t, b->e0, b->e1);
        ms[i] = t;
    }
    check(b, "op");
    qsort(ms, REPEATS, sizeof ms[0], cmp);
    return ms[REPEATS / 2];
}

/* ---- the ops at a config ------------------------------------------------------------------------------ */

#define OPS (b->be->ops)
#define C_ (b->cfg->C)
#define H_ (b->cfg->H)

static nc_gemm linear(bench *b, void *y, const void *x, int out, int in) { /* y (N, out) = x W^T */
    return (nc_gemm){.m = (int)b->N, .n = out, .k = in, .batch = 1, .tb = true, .alpha = 1, .a = x, .at = BF,
                     .lda = in, .b = b->w, .bt = BF, .ldb = in, .d = y, .dt = BF, .ldd = out};
}
static void op_gemm_qkv(bench *b) { nc_gemm g = linear(b, b->qkv, b->x, 3 * C_, C_); OPS->gemm(b->be, &g); }
static void op_gemm_fc(bench *b) { nc_gemm g = linear(b, b->fc, b->x, 4 * C_, C_); OPS->gemm(b->be, &g); }
static void op_gemm_proj(bench *b) { nc_gemm g = linear(b, b->x, b->fc, C_, 4 * C_); OPS->gemm(b->be, &g); }
static void op_gemm_dw(bench *b) { /* dW (4C, C) += dy^T x, f32 */
    nc_gemm g = {.m = 4 * C_, .n = C_, .k = (int)b->N, .batch = 1, .ta = true, .alpha = 1, .beta = 1, .a = b->dfc,
                 .at = BF, .lda = 4 * C_, .b = b->x, .bt = BF, .ldb = C_, .c = b->dw, .ldc = C_, .d = b->dw,
                 .dt = NC_F32, .ldd = C_};
    OPS->gemm(b->be, &g);
}
static nc_attn attn(bench *b) {
    int64_t C = C_, T = b->cfg->T;
    return (nc_attn){.B = b->cfg->B, .H = H_, .D = C_ / H_, .Tq = (int)T, .Tk = (int)T, .window = (int)T,
                     .scale = 1.0f / sqrtf((float)(C_ / H_)), .q_ld = 3 * C, .q_bs = T * 3 * C, .k_ld = 3 * C,
                     .k_bs = T * 3 * C, .v_ld = 3 * C, .v_bs = T * 3 * C, .o_ld = C, .o_bs = T * C};
}
static void *at(void *p, int64_t i) { return (char *)p + 2 * i; }
static void op_attn_fwd(bench *b) {
    nc_attn a = attn(b);
    OPS->attention_forward(b->be, &a, b->y, b->lse, b->qkv, at(b->qkv, C_), at(b->qkv, 2 * C_));
}
static void op_attn_bwd(bench *b) {
    nc_attn a = attn(b);
    OPS->attention_backward(b->be, &a, b->dqkv, at(b->dqkv, C_), at(b->dqkv, 2 * C_), b->z, b->qkv,
                            at(b->qkv, C_), at(b->qkv, 2 * C_), b->y, b->lse, b->work);
}
static void op_rms_fwd(bench *b) { OPS->rmsnorm_forward(b->be, b->y, b->rstd, b->x, b->N, C_); }
static void op_rms_bwd(bench *b) { OPS->rmsnorm_backward(b->be, b->z, b->x, b->y, b->rstd, b->N, C_, true); }
static void op_rope_fwd(bench *b) {
    OPS->rope_qknorm_forward(b->be, b->qkv, b->rstd, b->table, b->table, b->cfg->B, b->cfg->T, 0, H_, C_ / H_);
}
static void op_rope_bwd(bench *b) {
    OPS->rope_qknorm_backward(b->be, b->dqkv, b->qkv, b->rstd, b->table, b->table, b->cfg->B, b->cfg->T, H_, C_ / H_);
}
static void op_relu2_fwd(bench *b) { OPS->relu2_forward(b->be, b->dfc, b->fc, b->N * 4 * C_); }
static void op_relu2_bwd(bench *b) { OPS->relu2_backward(b->be, b->dfc, b->act, b->dfc, b->fc, b->N * 4 * C_); }
static void op_mix_fwd(bench *b) {
    OPS->scale_add_forward(b->be, b->z, b->x, b->scal, b->y, b->scal + 1, 1, b->N * C_);
}
static void op_mix_bwd(bench *b) {
    OPS->scale_add_backward(b->be, b->z, b->y, b->dscal, b->dscal + 1, b->z, b->x, b->scal, b->y, b->scal + 1, 1,
                            b->N * C_);
}
static void op_ce(bench *b) {
    OPS->softcap_ce(b->be, b->losses, b->logits, b->logits, b->ids, b->N, V, VP, 15, 1.0f / (float)b->N);
}
static void op_emb_fwd(bench *b) { OPS->embedding_forward(b->be, b->x, b->table, b->ids, b->N, C_); }
static void op_emb_bwd(bench *b) { OPS->embedding_backward(b->be, b->dtable, b->y, b->ids, b->N, C_, VP); }
static void op_smear_fwd(bench *b) {
    OPS->smear_forward(b->be, b->z, b->x, NULL, b->smear_w, b->scal, b->cfg->B, b->cfg->T, C_);
}
static void op_smear_bwd(bench *b) {
    OPS->smear_backward(b->be, b->z, b->y, b->x, b->smear_w, b->scal, b->dscal, b->dscal + 1, b->cfg->B, b->cfg->T, C_);
}
static void op_ve_fwd(bench *b) {
    OPS->ve_forward(b->be, at(b->qkv, 2 * C_), 3 * C_, b->gate, b->x, C_, b->wve, b->table, b->ids, b->N, H_, C_ / H_);
}
static void op_ve_bwd(bench *b) {
    OPS->ve_backward(b->be, b->z, b->y, C_, b->dwve, at(b->dqkv, 2 * C_), 3 * C_, b->gate, b->x, b->wve, b->table,
                     b->ids, b->N, H_, C_ / H_);
}
static void op_adamw(bench *b) {
    OPS->adamw(b->be, b->p, b->g, b->m, b->v, (int64_t)VP * C_, (const nc_adamw_hp *)b->hp);
}
static void op_momentum(bench *b) { OPS->muon_momentum(b->be, b->g, b->m, 4LL * C_ * C_, (const nc_muon_hp *)b->hp); }
static void op_normalize(bench *b) { OPS->muon_normalize(b->be, b->fc, b->g, 4, C_, C_); }
static void op_finish(bench *b) { OPS->muon_finish(b->be, b->p, b->fc, b->v, 4, C_, C_, (const nc_muon_hp *)b->hp); }

/* An op and its floor: bytes it must move and FLOPs it must do at the config. */
typedef struct op_row {
    const char *name;
    op_fn fn;
    double bytes, flops;
} op_row;

static int op_rows(const bench *b, op_row *r) {
    double N = (double)b->N, C = C_, T = b->cfg->T, Bsz = b->cfg->B, H = H_, D = C / H;
    double causal = Bsz * H * T * (T + 1) / 2 * D; /* multiply-adds of one causal q k^T */
    op_row rows[] = {
        {"gemm qkv (N,3C,C)", op_gemm_qkv, 2 * (N * C + 3 * C * C + N * 3 * C), 2 * N * 3 * C * C},
        {"gemm fc (N,4C,C)", op_gemm_fc, 2 * (N * C + 4 * C * C + N * 4 * C), 2 * N * 4 * C * C},
        {"gemm proj (N,C,4C)", op_gemm_proj, 2 * (N * 4 * C + 4 * C * C + N * C), 2 * N * 4 * C * C},
        {"gemm dW (4C,C,N) f32+=", op_gemm_dw, 2 * (N * 4 * C + N * C) + 8 * 4 * C * C, 2 * N * 4 * C * C},
        {"attention fwd", op_attn_fwd, 2 * (4 * N * C) + 4 * N * H, 4 * causal},
        {"attention bwd", op_attn_bwd, 2 * (8 * N * C) + 8 * N * H, 10 * causal},
        {"rmsnorm fwd", op_rms_fwd, 2 * 2 * N * C + 4 * N, 0},
        {"rmsnorm bwd +=", op_rms_bwd, 2 * 4 * N * C + 4 * N, 0},
        {"rope+qknorm fwd", op_rope_fwd, 2 * 2 * N * 2 * C + 8 * N * H, 0},
        {"rope+qknorm bwd", op_rope_bwd, 2 * 3 * N * 2 * C + 8 * N * H, 0},
        {"relu2 fwd", op_relu2_fwd, 2 * 2 * N * 4 * C, 0},
        {"relu2 bwd (+ relu2 again)", op_relu2_bwd, 2 * 4 * N * 4 * C, 0},
        {"scale_add fwd", op_mix_fwd, 2 * 3 * N * C, 0},
        {"scale_add bwd", op_mix_bwd, 2 * 6 * N * C, 0},
        {"softcap_ce", op_ce, 2 * 2 * N * VP + 8 * N, 0},
        {"embedding fwd", op_emb_fwd, 2 * N * C + 4 * N, 0},
        {"embedding bwd", op_emb_bwd, 2 * N * C + 4 * N + 8 * VP * C, 0},
        {"smear fwd", op_smear_fwd, 2 * 2 * N * C, 0},
        {"smear bwd", op_smear_bwd, 2 * 3 * N * C, 0},
        {"ve fwd", op_ve_fwd, 2 * 3 * N * C + 4 * N * H, 0},
        {"ve bwd", op_ve_bwd, 2 * 3 * N * C + 4 * N * H, 0},
        {"adamw (Vp C)", op_adamw, 4 * 7 * VP * C, 0},
        {"muon momentum (4C^2)", op_momentum, 4 * 4 * 4 * C * C, 0},
        {"muon normalize (4,C,C)", op_normalize, 4 * 4 * C * C + 2 * 4 * C * C, 0},
        {"muon finish (4,C,C)", op_finish, 2 * 4 * C * C + 8 * 4 * C * C, 0},
    };
    memcpy(r, rows, sizeof rows);
    return (int)(sizeof rows / sizeof rows[0]);
}

static void bench_ops(bench *b) {
    op_row rows[32];
    int n = op_rows(b, rows);
    alloc_layer(b);
    printf("\n%-4s %-26s %9s %9s %12s %8s\n", "cfg", "op", "ms", "floor ms", "achieved", "of floor");
    for (int i = 0; i < n; i++) {
        double ms = time_op(b, rows[i].fn);
        double floor_bytes = rows[i].bytes / b->copy_bps * 1e3, floor_flops = rows[i].flops / b->gemm_flops * 1e3;
        double floor = fmax(floor_bytes, floor_flops);
        char got[32];
        if (floor_flops > floor_bytes) snprintf(got, sizeof got, "%.0f TFLOP/s", rows[i].flops / ms / 1e9);
        else snprintf(got, sizeof got, "%.0f GB/s", rows[i].bytes / ms / 1e6);
        printf("%-4s %-26s %9.4f %9.4f %12s %7.0f%%\n", b->cfg->name, rows[i].name, ms, floor, got, 100 * floor / ms);
    }
    free_layer(b);
}

/* ---- ceilings -------------------------------------------------------------------------------------------- */

static void ceilings(bench *b) {
    size_t bytes = (size_t)1 << 30;
    void *src = random_buf(b, (int64_t)(bytes / 4), NC_F32, 1), *dst = b->be->ops->alloc(b->be, bytes);
    cudaStream_t s = nc_cuda_of(b->be)->stream;
    float ms;
    for (int i = 0; i < 2; i++) cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s);
    cudaEventRecord(b->e0, s);
    for (int i = 0; i < 5; i++) cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, s);
    cudaEventRecord(b->e1, s);
    cudaEventSynchronize(b->e1);
    cudaEventElapsedTime(&ms, b->e0, b->e1);
    b->copy_bps = 5.0 * 2 * (double)bytes / (ms / 1e3);
    b->be->ops->free(b->be, src), b->be->ops->free(b->be, dst);
    int n = 8192;
    void *a = random_buf(b, (int64_t)n * n, BF, 1), *c = random_buf(b, (int64_t)n * n, BF, 1);
    void *d = b->be->ops->alloc(b->be, 2 * (size_t)n * n);
    nc_gemm g = {.m = n, .n = n, .k = n, .batch = 1, .alpha = 1, .a = a, .at = BF, .lda = n, .b = c, .bt = BF,
                 .ldb = n, .d = d, .dt = BF, .ldd = n};
    for (int i = 0; i < 3; i++) b->be->ops->gemm(b->be, &g);
    cudaEventRecord(b->e0, s);
    for (int i = 0; i < 10; i++) b->be->ops->gemm(b->be, &g);
    cudaEventRecord(b->e1, s);
    cudaEventSynchronize(b->e1);
    cudaEventElapsedTime(&ms, b->e0, b->e1);
    b->gemm_flops = 10.0 * 2 * (double)n * n * n / (ms / 1e3);
    b->be->ops->free(b->be, a), b->be->ops->free(b->be, c), b->be->ops->free(b->be, d);
    check(b, "ceilings");
    printf("ceilings: copy %.0f GB/s (read + write), bf16 gemm 8192^3 %.0f TFLOP/s\n", b->copy_bps / 1e9,
           b->gemm_flops / 1e12);
}

/* ---- training steps ------------------------------------------------------------------------------------------ */

static void bench_steps(bench *b) {
    const config *c = b->cfg;
    char json[512];
    nc_error err = {0};
    nc_train_cfg cfg;
    snprintf(json, sizeof json,
             "{\"depth\": %d, \"head_dim\": 128, \"seq_len\": %d, \"batch_size\": %d, \"window_pattern\": \"L\", "
             "\"device\": \"cuda\", \"seed\": 1}", c->depth, c->T, c->B);
    json_t *args = json_loads(json, 0, NULL);
    if (nc_args_parse(nc_command_find("train"), args, &cfg, &err) ||
        nc_tensor_gpt_ops.resolve(&cfg.model, b->be, &cfg.eval_windows, &err)) {
        printf("%s: config: %s\n", c->name, err.message);
        return;
    }
    json_decref(args);
    double t0 = now();
    nc_model *m = nc_tensor_gpt_ops.create(&cfg.model, V, b->be, &err);
    if (!m) {
        printf("%s: create: %s\n", c->name, err.message);
        return;
    }
    int64_t n = (int64_t)c->B * c->T, steps = 25, timed = 20;
    int32_t *x = malloc(sizeof *x * (size_t)n), *y = malloc(sizeof *y * (size_t)n);
    for (int64_t i = 0; i < n; i++) {
        x[i] = (int32_t)((uniform() + 1) * 32) % V;
        y[i] = (int32_t)((uniform() + 1) * 32) % V;
    }
    nc_batch batch = {x, y, c->B, c->T};
    double loss, first = 0, start = 0;
    bool ok = true;
    for (int64_t s = 0; s < steps && ok; s++) {
        /* the host runs a step ahead: nothing in flight when the clock starts */
        if (s == steps - timed) ok = !nc_tensor_gpt_ops.drain(m, &loss, &err), start = now();
        ok = ok && !nc_tensor_gpt_ops.train_step(m, &batch, s, 1000, &loss, &err);
        if (s == 0) first = now() - t0;
    }
    ok = ok && !nc_tensor_gpt_ops.drain(m, &loss, &err);
    double dt = now() - start, tps = (double)n * (double)timed / dt;
    double mfu = nc_tensor_gpt_ops.flops_per_token(m) * tps / 989e12;
    if (ok)
        printf("%-4s step: %8.0f tok/s  %6.2f ms/step  MFU %5.1f%%  first step %.3f s (create + eager)  "
               "peak %.2f GiB  [%s] loss %.3f\n", c->name, tps, 1e3 * dt / (double)timed, 100 * mfu, first,
               (double)nc_backend_device_bytes(b->be, true) / (1 << 30), nc_gpt_step_mode(m), loss);
    else
        printf("%-4s step: FAILED: %s\n", c->name, err.message);
    nc_tensor_gpt_ops.destroy(m);
    free(x), free(y);
}

int main(int argc, char **argv) {
    const char *want = "d6,d12,d20";
    bool kernels = true, steps = true;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) want = argv[++i];
        else if (strcmp(argv[i], "--kernels-only") == 0) steps = false;
        else if (strcmp(argv[i], "--steps-only") == 0) kernels = false;
    }
    nc_error err = {0};
    bench b = {.be = nc_backend_cuda_new(&err)};
    if (!b.be) return gc_no_backend(err.message);
    cudaEventCreate(&b.e0), cudaEventCreate(&b.e1);
    printf("device: %s\n", b.be->device);
    ceilings(&b);
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        if (!strstr(want, configs[i].name)) continue;
        b.cfg = &configs[i];
        b.N = (int64_t)configs[i].B * configs[i].T;
        if (kernels) bench_ops(&b);
        if (steps) bench_steps(&b);
        fflush(stdout);
    }
    nc_backend_free(b.be);
    return 0;
}
