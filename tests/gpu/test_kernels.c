/* test_kernels.c: every op of the cuda backend against its cpu twin, on fresh
 * random inputs (a new draw for every op and size), with every output
 * poisoned before the call, at the real model shapes (d6, d12 subsets) and
 * odd ones that take the unaligned and generic paths. Prints one row per
 * output; exits 77 (skipped) without a CUDA device, 1 on any failure.
 *
 *   test_kernels [--filter NAME] [--log FILE] [--quick]                      */
#include "gpu_check.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define CPU (c->cpu->ops)
#define GPU (c->gpu->ops)
#define BF NC_BF16

static bool quick;

/* ---- gemm ---------------------------------------------------------------------------- */

typedef struct gemm_case {
    int m, n, k, batch;
    bool ta, tb;
    nc_dtype in, out;
    int c_mode; /* 0: no C, 1: C is D, 2: C apart */
    float alpha, beta;
    int skew;  /* a and b start this many elements into their buffers (poor alignment) */
    int dskew; /* d (C is D) likewise */
} gemm_case;

static void t_gemm(gc_ctx *c, gemm_case k) {
    int64_t lda = k.ta ? k.m : k.k, ldb = k.tb ? k.k : k.n, sa = lda * (k.ta ? k.k : k.m);
    int64_t sb = ldb * (k.tb ? k.n : k.k), sd = (int64_t)k.m * k.n;
    gc_buf a = gc_in(c, sa * k.batch + k.skew, k.in, -1, 1), b = gc_in(c, sb * k.batch + k.skew, k.in, -1, 1);
    size_t skew = (size_t)k.skew * nc_dtype_size(k.in);
    size_t dskew = (size_t)k.dskew * nc_dtype_size(k.out);
    gc_buf d = k.c_mode == 1 ? gc_in(c, sd * k.batch + k.dskew, k.out, -1, 1) : gc_out(c, sd * k.batch, k.out);
    gc_buf cm = gc_in(c, k.c_mode == 2 ? sd * k.batch : 1, k.out, -1, 1);
    nc_gemm g = {.m = k.m, .n = k.n, .k = k.k, .batch = k.batch, .ta = k.ta, .tb = k.tb, .alpha = k.alpha,
                 .beta = k.beta, .at = k.in, .lda = lda, .sa = sa, .bt = k.in, .ldb = ldb, .sb = sb,
                 .ldc = k.n, .sc = sd, .dt = k.out, .ldd = k.n, .sd = sd};
    nc_gemm hg = g, dg = g;
    hg.a = a.h + k.skew, hg.b = b.h + k.skew, hg.d = d.h + k.dskew;
    hg.c = k.c_mode == 1 ? hg.d : k.c_mode == 2 ? cm.h : NULL;
    dg.a = (char *)a.d + skew, dg.b = (char *)b.d + skew, dg.d = (char *)d.d + dskew;
    dg.c = k.c_mode == 1 ? dg.d : k.c_mode == 2 ? cm.d : NULL;
    CPU->gemm(c->cpu, &hg);
    gc_start(c);
    GPU->gemm(c->gpu, &dg);
    double ms = gc_stop(c);
    char shape[96];
    snprintf(shape, sizeof shape, "%dx%dx%d b%d %c%c %s->%s C%d skew %d/%d", k.m, k.n, k.k, k.batch,
             k.ta ? 'T' : 'N', k.tb ? 'T' : 'N', k.in == BF ? "bf16" : "f32", k.out == BF ? "bf16" : "f32", k.c_mode,
             k.skew, k.dskew);
    gc_check(c, "gemm", shape, &d, k.out == BF ? TOL_BF16 : TOL_SUM, ms);
    gc_free(c, &a), gc_free(c, &b), gc_free(c, &d), gc_free(c, &cm);
}

static void gemms(gc_ctx *c) {
    if (!gc_wanted(c, "gemm")) return;
    for (int v = 0; v < 4; v++) /* every transpose, odd sizes, a batch */
        t_gemm(c, (gemm_case){77, 45, 33, 3, v & 1, v & 2, BF, BF, 0, 1, 0, 0, 0});
    t_gemm(c, (gemm_case){2048, 1152, 384, 1, false, true, BF, BF, 0, 1, 0, 0, 0});   /* d6 qkv */
    t_gemm(c, (gemm_case){2048, 384, 1536, 1, false, true, BF, BF, 2, 1, 1, 0, 0});  /* mlp proj + residual */
    t_gemm(c, (gemm_case){1536, 384, 2048, 1, true, false, BF, NC_F32, 1, 1, 1, 0, 0}); /* weight grad += */
    t_gemm(c, (gemm_case){2048, 384, 1536, 1, false, false, BF, BF, 0, 1, 0, 0, 0}); /* input grad */
    t_gemm(c, (gemm_case){384, 384, 1536, 4, false, true, BF, BF, 0, 1, 0, 0, 0});  /* Polar Express x x^T */
    t_gemm(c, (gemm_case){384, 384, 384, 4, false, false, BF, BF, 2, -2.8f, 4.0f, 0, 0}); /* b A + c A A */
    t_gemm(c, (gemm_case){1024, 128, 768, 1, false, true, BF, BF, 0, 1, 0, 0, 0});  /* d12 lm_head */
    t_gemm(c, (gemm_case){65, 70, 129, 2, true, true, NC_F32, NC_F32, 2, 0.5f, 2, 0, 0}); /* f32 */
    t_gemm(c, (gemm_case){2048, 128, 384, 1, false, true, BF, BF, 0, 1, 0, 4, 0}); /* d6 lm_head shape, 8-byte aligned inputs */
    t_gemm(c, (gemm_case){128, 384, 2048, 1, true, false, BF, NC_F32, 1, 1, 1, 1, 0}); /* 2-byte aligned */
    t_gemm(c, (gemm_case){65, 65, 256, 1, true, false, BF, NC_F32, 1, 1, 0, 0, 1}); /* untied bigram dW: d 4-byte aligned */
}

/* ---- rows: rmsnorm, rope + qk norm, smear ------------------------------------------------ */

static void t_rmsnorm(gc_ctx *c, int64_t N, int C) {
    char shape[64];
    snprintf(shape, sizeof shape, "N %lld C %d", (long long)N, C);
    gc_buf x = gc_in(c, N * C, BF, -2, 2), out = gc_out(c, N * C, BF), rstd = gc_out(c, N, NC_F32);
    CPU->rmsnorm_forward(c->cpu, out.h, rstd.h, x.h, N, C);
    gc_start(c);
    GPU->rmsnorm_forward(c->gpu, out.d, rstd.d, x.d, N, C);
    double ms = gc_stop(c);
    gc_check(c, "rmsnorm_forward", shape, &out, TOL_BF16, ms);
    gc_check(c, "rmsnorm_forward rstd", shape, &rstd, TOL_F32, ms);
    for (int acc = 0; acc < 2; acc++) {
        gc_buf dout = gc_in(c, N * C, BF, -1, 1), dx = acc ? gc_in(c, N * C, BF, -1, 1) : gc_out(c, N * C, BF);
        gc_upload(c, &out); /* the forward's output, rounded to bf16 on both sides */
        /* dout mostly along out, as in a model (a random one makes mean(dout * out) vanish, and
         * with it an error in that term) */
        for (int64_t i = 0; i < N * C; i++) dout.h[i] = out.h[i] + 0.1f * dout.h[i];
        gc_upload(c, &dout);
        CPU->rmsnorm_backward(c->cpu, dx.h, dout.h, out.h, rstd.h, N, C, acc);
        gc_start(c);
        GPU->rmsnorm_backward(c->gpu, dx.d, dout.d, out.d, rstd.d, N, C, acc);
        gc_check(c, acc ? "rmsnorm_backward +=" : "rmsnorm_backward", shape, &dx, TOL_BF16, gc_stop(c));
        gc_free(c, &dout), gc_free(c, &dx);
    }
    gc_free(c, &x), gc_free(c, &out), gc_free(c, &rstd);
}

static void rope_tables(gc_ctx *c, int T, int D, gc_buf *cs, gc_buf *sn) {
    *cs = gc_in(c, (int64_t)T * D / 2, NC_F32, -1, 1);
    *sn = gc_in(c, (int64_t)T * D / 2, NC_F32, -1, 1);
    for (int64_t i = 0; i < cs->n; i++) { /* a real rotation: cos^2 + sin^2 = 1 */
        double th = atan2(sn->h[i], cs->h[i]);
        cs->h[i] = (float)cos(th), sn->h[i] = (float)sin(th);
    }
    gc_upload(c, cs), gc_upload(c, sn);
}

static void t_rope(gc_ctx *c, int B, int T, int pos0, int H, int D) {
    char shape[64];
    snprintf(shape, sizeof shape, "B %d T %d pos0 %d H %d D %d", B, T, pos0, H, D);
    int64_t n = (int64_t)B * T * 3 * H * D;
    gc_buf qkv = gc_in(c, n, BF, -2, 2), rstd = gc_out(c, (int64_t)B * T * 2 * H, NC_F32), cs, sn;
    rope_tables(c, pos0 + T, D, &cs, &sn);
    CPU->rope_qknorm_forward(c->cpu, qkv.h, rstd.h, cs.h, sn.h, B, T, pos0, H, D);
    gc_start(c);
    GPU->rope_qknorm_forward(c->gpu, qkv.d, rstd.d, cs.d, sn.d, B, T, pos0, H, D);
    double ms = gc_stop(c);
    gc_check(c, "rope_qknorm_forward", shape, &qkv, TOL_BF16, ms);
    gc_check(c, "rope_qknorm_forward rstd", shape, &rstd, TOL_F32, ms);
    if (pos0 == 0) {
        gc_buf d = gc_in(c, n, BF, -1, 1);
        gc_upload(c, &qkv), gc_upload(c, &rstd); /* the twin's forward, on both sides */
        CPU->rope_qknorm_backward(c->cpu, d.h, qkv.h, rstd.h, cs.h, sn.h, B, T, H, D);
        gc_start(c);
        GPU->rope_qknorm_backward(c->gpu, d.d, qkv.d, rstd.d, cs.d, sn.d, B, T, H, D);
        gc_check(c, "rope_qknorm_backward", shape, &d, TOL_BF16, gc_stop(c));
        gc_free(c, &d);
    }
    gc_free(c, &qkv), gc_free(c, &rstd), gc_free(c, &cs), gc_free(c, &sn);
}

static void t_smear(gc_ctx *c, int B, int T, int C, bool prev) {
    char shape[64];
    snprintf(shape, sizeof shape, "B %d T %d C %d%s", B, T, C, prev ? " prev" : "");
    int64_t n = (int64_t)B * T * C;
    gc_buf e = gc_in(c, n, BF, -1, 1), x = gc_out(c, n, BF), w = gc_in(c, 24, NC_F32, -1, 1);
    gc_buf lam = gc_in(c, 1, NC_F32, 0.2f, 1), p = gc_in(c, (int64_t)B * C, BF, -1, 1);
    CPU->smear_forward(c->cpu, x.h, e.h, prev ? p.h : NULL, w.h, lam.h, B, T, C);
    gc_start(c);
    GPU->smear_forward(c->gpu, x.d, e.d, prev ? p.d : NULL, w.d, lam.d, B, T, C);
    gc_check(c, "smear_forward", shape, &x, TOL_BF16, gc_stop(c));
    if (!prev) {
        gc_buf dx = gc_in(c, n, BF, -1, 1), de = gc_out(c, n, BF);
        gc_buf dw = gc_in(c, 24, NC_F32, -1, 1), dl = gc_in(c, 1, NC_F32, -1, 1);
        CPU->smear_backward(c->cpu, de.h, dx.h, e.h, w.h, lam.h, dw.h, dl.h, B, T, C);
        gc_start(c);
        GPU->smear_backward(c->gpu, de.d, dx.d, e.d, w.d, lam.d, dw.d, dl.d, B, T, C);
        double ms = gc_stop(c);
        gc_check(c, "smear_backward", shape, &de, TOL_BF16, ms);
        gc_check(c, "smear_backward dw", shape, &dw, TOL_SUM, ms);
        gc_check(c, "smear_backward dlambda", shape, &dl, TOL_SUM, ms);
        gc_free(c, &dx), gc_free(c, &de), gc_free(c, &dw), gc_free(c, &dl);
    }
    gc_free(c, &e), gc_free(c, &x), gc_free(c, &w), gc_free(c, &lam), gc_free(c, &p);
}

static void rows(gc_ctx *c) {
    if (gc_wanted(c, "rmsnorm")) {
        t_rmsnorm(c, 16384, 384);
        t_rmsnorm(c, 1024, 768);
        t_rmsnorm(c, 333, 200);
    }
    if (gc_wanted(c, "rope")) {
        t_rope(c, 4, 256, 0, 3, 128);
        t_rope(c, 1, 64, 700, 6, 128);
        t_rope(c, 3, 37, 0, 5, 40);
        t_rope(c, 2, 64, 0, 4, 16);
    }
    if (gc_wanted(c, "smear")) {
        t_smear(c, 4, 256, 384, false);
        t_smear(c, 3, 37, 200, false);
        t_smear(c, 2, 1, 384, true);
        t_smear(c, 2, 5, 200, true);
    }
}

/* ---- elementwise ------------------------------------------------------------------------------ */

static void t_scale_add(gc_ctx *c, int64_t n, bool with_a, float s) {
    char shape[64];
    snprintf(shape, sizeof shape, "n %lld%s s %g", (long long)n, with_a ? " a" : "", s);
    gc_buf x = gc_in(c, n, BF, -0.5f, 1.5f), y = gc_in(c, n, BF, -0.5f, 1.5f), out = gc_out(c, n, BF);
    gc_buf a = gc_in(c, 1, NC_F32, 0.5f, 1.5f), b = gc_in(c, 1, NC_F32, 0.1f, 1);
    CPU->scale_add_forward(c->cpu, out.h, x.h, with_a ? a.h : NULL, y.h, b.h, s, n);
    gc_start(c);
    GPU->scale_add_forward(c->gpu, out.d, x.d, with_a ? a.d : NULL, y.d, b.d, s, n);
    gc_check(c, "scale_add_forward", shape, &out, TOL_BF16, gc_stop(c));
    /* dx in place of dout when a is given (the residual mix), none otherwise (backout) */
    gc_buf dout = gc_in(c, n, BF, -0.5f, 1.5f), dy = gc_in(c, n, BF, -1, 1);
    gc_buf da = gc_in(c, 1, NC_F32, -1, 1), db = gc_in(c, 1, NC_F32, -1, 1);
    CPU->scale_add_backward(c->cpu, with_a ? dout.h : NULL, dy.h, da.h, db.h, dout.h, x.h, with_a ? a.h : NULL, y.h,
                            b.h, s, n);
    gc_start(c);
    GPU->scale_add_backward(c->gpu, with_a ? dout.d : NULL, dy.d, da.d, db.d, dout.d, x.d, with_a ? a.d : NULL, y.d,
                            b.d, s, n);
    double ms = gc_stop(c);
    if (with_a) gc_check(c, "scale_add_backward dx", shape, &dout, TOL_BF16, ms);
    gc_check(c, "scale_add_backward dy +=", shape, &dy, TOL_BF16, ms);
    if (with_a) gc_check(c, "scale_add_backward da +=", shape, &da, TOL_SUM, ms);
    gc_check(c, "scale_add_backward db +=", shape, &db, TOL_SUM, ms);
    gc_buf *all[] = {&x, &y, &out, &a, &b, &dout, &dy, &da, &db};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) gc_free(c, all[i]);
}

static void t_pointwise(gc_ctx *c, int64_t n) {
    char shape[64];
    snprintf(shape, sizeof shape, "n %lld", (long long)n);
    gc_buf x = gc_in(c, n, BF, -2, 2), y = gc_in(c, n, BF, -2, 2), out = gc_out(c, n, BF);
    CPU->add(c->cpu, y.h, x.h, n);
    gc_start(c);
    GPU->add(c->gpu, y.d, x.d, n);
    gc_check(c, "add +=", shape, &y, TOL_BF16, gc_stop(c));
    CPU->relu2_forward(c->cpu, out.h, x.h, n);
    gc_start(c);
    GPU->relu2_forward(c->gpu, out.d, x.d, n);
    gc_check(c, "relu2_forward", shape, &out, TOL_BF16, gc_stop(c));
    gc_upload(c, &y); /* the twin's sum, rounded, on both sides */
    gc_buf again = gc_out(c, n, BF);
    CPU->relu2_backward(c->cpu, y.h, again.h, y.h, x.h, n);
    gc_start(c);
    GPU->relu2_backward(c->gpu, y.d, again.d, y.d, x.d, n);
    double ms = gc_stop(c);
    gc_check(c, "relu2_backward (in place)", shape, &y, TOL_BF16, ms);
    gc_check(c, "relu2_backward relu2 again", shape, &again, TOL_BF16, ms);
    gc_check_same(c, "relu2_backward relu2 again = forward", shape, &again, &out);
    gc_free(c, &x), gc_free(c, &y), gc_free(c, &out), gc_free(c, &again);
}

static void t_cast(gc_ctx *c, int64_t n) {
    char shape[64];
    snprintf(shape, sizeof shape, "n %lld", (long long)n);
    /* the expected results (the harness rounds to nearest even, as the twin's cast) */
    gc_buf f = gc_in(c, n, NC_F32, -3, 3), h = gc_out(c, n, BF), back = gc_out(c, n, NC_F32);
    memcpy(h.h, f.h, sizeof(float) * (size_t)n);
    gc_buf want = gc_out(c, n, BF);
    memcpy(want.h, f.h, sizeof(float) * (size_t)n);
    gc_upload(c, &want); /* want.h: f rounded to bf16 */
    memcpy(h.h, want.h, sizeof(float) * (size_t)n);
    memcpy(back.h, want.h, sizeof(float) * (size_t)n);
    gc_start(c);
    GPU->cast(c->gpu, h.d, BF, f.d, NC_F32, n);
    gc_check(c, "cast f32 -> bf16", shape, &h, 0, gc_stop(c)); /* exact */
    gc_start(c);
    GPU->cast(c->gpu, back.d, NC_F32, h.d, BF, n);
    gc_check(c, "cast bf16 -> f32", shape, &back, 0, gc_stop(c));
    gc_free(c, &f), gc_free(c, &h), gc_free(c, &back), gc_free(c, &want);
}

static void t_guards(gc_ctx *c) {
    gc_buf flag = gc_in(c, 1, NC_F32, 1, 1), x = gc_in(c, 1, NC_F32, 2, 3);
    gc_buf src = gc_in(c, 1003, NC_F32, -1, 1), dst = gc_in(c, 1003, NC_F32, -1, 1);
    for (int round = 0; round < 2; round++) { /* finite: copied; then NaN: flag drops, no copy */
        if (round) {
            x.h[0] = NAN;
            gc_upload(c, &x);
            gc_free(c, &src);
            src = gc_in(c, 1003, NC_F32, -1, 1);
        }
        CPU->finite_and(c->cpu, flag.h, x.h);
        CPU->copy_if(c->cpu, dst.h, src.h, sizeof(float) * 1003, flag.h);
        gc_start(c);
        GPU->finite_and(c->gpu, flag.d, x.d);
        GPU->copy_if(c->gpu, dst.d, src.d, sizeof(float) * 1003, flag.d);
        double ms = gc_stop(c);
        gc_check(c, "finite_and", round ? "NaN" : "finite", &flag, 0, ms);
        gc_check(c, "copy_if", round ? "flag 0" : "flag 1", &dst, 0, ms);
    }
    gc_free(c, &flag), gc_free(c, &x), gc_free(c, &src), gc_free(c, &dst);
}

static void elementwise(gc_ctx *c) {
    if (gc_wanted(c, "scale_add")) {
        t_scale_add(c, 16384 * 384, true, 1.0f);
        t_scale_add(c, 16384 * 384, false, -1.0f);
        t_scale_add(c, 100003, true, 1.0f);
    }
    if (gc_wanted(c, "relu2") || gc_wanted(c, "add")) {
        t_pointwise(c, 16384 * 1536);
        t_pointwise(c, 100003);
    }
    if (gc_wanted(c, "cast")) {
        t_cast(c, 1 << 20);
        t_cast(c, 1001);
    }
    if (gc_wanted(c, "finite_and") || gc_wanted(c, "copy_if")) t_guards(c);
}

/* ---- embeddings, value embeddings ------------------------------------------------------------- */

static void t_embedding(gc_ctx *c, int64_t N, int C, int V) {
    char shape[64];
    snprintf(shape, sizeof shape, "N %lld C %d V %d", (long long)N, C, V);
    int32_t *ids_d, *ids = gc_ids(c, N, V, &ids_d);
    gc_buf table = gc_in(c, (int64_t)V * C, NC_F32, -1, 1), out = gc_out(c, N * C, BF);
    CPU->embedding_forward(c->cpu, out.h, table.h, ids, N, C);
    gc_start(c);
    GPU->embedding_forward(c->gpu, out.d, table.d, ids_d, N, C);
    gc_check(c, "embedding_forward", shape, &out, TOL_BF16, gc_stop(c));
    gc_buf dout = gc_in(c, N * C, BF, -1, 1), dtable = gc_in(c, (int64_t)V * C, NC_F32, -1, 1);
    CPU->embedding_backward(c->cpu, dtable.h, dout.h, ids, N, C, V);
    gc_start(c);
    GPU->embedding_backward(c->gpu, dtable.d, dout.d, ids_d, N, C, V);
    gc_check(c, "embedding_backward +=", shape, &dtable, TOL_SUM, gc_stop(c));
    gc_free(c, &table), gc_free(c, &out), gc_free(c, &dout), gc_free(c, &dtable);
    gc_free_ids(c, ids, ids_d);
}

/* v: the value part of a packed (N, 3C) qkv (row stride 3C); xn (N, C). */
static void t_ve(gc_ctx *c, int64_t N, int H, int D, int V) {
    char shape[64];
    int64_t C = (int64_t)H * D;
    snprintf(shape, sizeof shape, "N %lld H %d D %d", (long long)N, H, D);
    int32_t *ids_d, *ids = gc_ids(c, N, V, &ids_d);
    gc_buf v = gc_in(c, N * C * 3, BF, -1, 1), gate = gc_out(c, N * H, NC_F32), xn = gc_in(c, N * C, BF, -2, 2);
    gc_buf w = gc_in(c, (int64_t)H * 12, NC_F32, -0.5f, 0.5f), table = gc_in(c, V * C, NC_F32, -1, 1);
    CPU->ve_forward(c->cpu, v.h + 2 * C, 3 * C, gate.h, xn.h, C, w.h, table.h, ids, N, H, D);
    gc_start(c);
    GPU->ve_forward(c->gpu, (char *)v.d + 2 * C * 2, 3 * C, gate.d, xn.d, C, w.d, table.d, ids_d, N, H, D);
    double ms = gc_stop(c);
    gc_check(c, "ve_forward", shape, &v, TOL_BF16, ms);
    gc_check(c, "ve_forward gate", shape, &gate, TOL_F32, ms);
    gc_buf dve = gc_out(c, N * C, BF), dxn = gc_in(c, N * C, BF, -1, 1), dw = gc_in(c, (int64_t)H * 12, NC_F32, -1, 1);
    gc_buf dv = gc_in(c, N * C * 3, BF, -1, 1);
    CPU->ve_backward(c->cpu, dve.h, dxn.h, C, dw.h, dv.h + 2 * C, 3 * C, gate.h, xn.h, w.h, table.h, ids, N, H, D);
    gc_start(c);
    GPU->ve_backward(c->gpu, dve.d, dxn.d, C, dw.d, (char *)dv.d + 2 * C * 2, 3 * C, gate.d, xn.d, w.d, table.d,
                     ids_d, N, H, D);
    ms = gc_stop(c);
    gc_check(c, "ve_backward dve", shape, &dve, TOL_BF16, ms);
    gc_check(c, "ve_backward dxn +=", shape, &dxn, TOL_BF16, ms);
    gc_check(c, "ve_backward dw +=", shape, &dw, TOL_SUM, ms);
    gc_buf *all[] = {&v, &gate, &xn, &w, &table, &dve, &dxn, &dw, &dv};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) gc_free(c, all[i]);
    gc_free_ids(c, ids, ids_d);
}

static void embeddings(gc_ctx *c) {
    if (gc_wanted(c, "embedding")) {
        t_embedding(c, 16384, 384, 65);
        t_embedding(c, 5000, 200, 300);
        t_embedding(c, 77, 768, 128);
    }
    if (gc_wanted(c, "ve_")) {
        t_ve(c, 1024, 3, 128, 65);
        t_ve(c, 111, 5, 40, 97);
    }
}

/* ---- attention -------------------------------------------------------------------------------------- */

typedef struct attn_case {
    int B, H, D, Tq, Tk, window;
} attn_case;

/* q, k, v from packed (B, Tk, 3C) rows (the last Tq of them query), o (B, Tq, C). */
static nc_attn attn_geometry(attn_case k) {
    int64_t C = (int64_t)k.H * k.D;
    return (nc_attn){.B = k.B, .H = k.H, .D = k.D, .Tq = k.Tq, .Tk = k.Tk, .window = k.window,
                     .scale = 1.0f / sqrtf((float)k.D), .q_ld = 3 * C, .q_bs = k.Tk * 3 * C, .k_ld = 3 * C,
                     .k_bs = k.Tk * 3 * C, .v_ld = 3 * C, .v_bs = k.Tk * 3 * C, .o_ld = C, .o_bs = k.Tq * C};
}

/* The backward (training geometry, Tq == Tk) from the forward's o and lse. */
static void t_attention_backward(gc_ctx *c, const nc_attn *a, gc_buf *qkv, gc_buf *o, gc_buf *lse,
                                 const char *shape) {
    int64_t C = (int64_t)a->H * a->D, nqkv = qkv->n, no = o->n, nl = lse->n;
    size_t e = sizeof(uint16_t);
    gc_buf dout = gc_in(c, no, BF, -1, 1), d = gc_out(c, nqkv, BF), work = gc_out(c, nl, NC_F32);
    gc_upload(c, o), gc_upload(c, lse); /* the twin's, on both sides */
    CPU->attention_backward(c->cpu, a, d.h, d.h + C, d.h + 2 * C, dout.h, qkv->h, qkv->h + C, qkv->h + 2 * C, o->h,
                            lse->h, work.h);
    gc_start(c);
    GPU->attention_backward(c->gpu, a, d.d, (char *)d.d + C * e, (char *)d.d + 2 * C * e, dout.d, qkv->d,
                            (char *)qkv->d + C * e, (char *)qkv->d + 2 * C * e, o->d, lse->d, work.d);
    double ms = gc_stop(c);
    gc_check(c, "attention_backward dq dk dv", shape, &d, TOL_BF16, ms);
    gc_check(c, "attention_backward delta", shape, &work, TOL_F32, ms);
    gc_free(c, &dout), gc_free(c, &d), gc_free(c, &work);
}

static void t_attention(gc_ctx *c, attn_case k) {
    char shape[96];
    snprintf(shape, sizeof shape, "B %d H %d D %d Tq %d Tk %d w %d", k.B, k.H, k.D, k.Tq, k.Tk, k.window);
    nc_attn a = attn_geometry(k);
    int64_t C = (int64_t)k.H * k.D, nqkv = (int64_t)k.B * k.Tk * 3 * C, no = (int64_t)k.B * k.Tq * C;
    int64_t q0 = (int64_t)(k.Tk - k.Tq) * 3 * C, nl = (int64_t)k.B * k.H * k.Tq; /* q: the last Tq rows */
    size_t e = sizeof(uint16_t);
    gc_buf qkv = gc_in(c, nqkv, BF, -2, 2), o = gc_out(c, no, BF), lse = gc_out(c, nl, NC_F32);
    CPU->attention_forward(c->cpu, &a, o.h, lse.h, qkv.h + q0, qkv.h + C, qkv.h + 2 * C);
    gc_start(c);
    GPU->attention_forward(c->gpu, &a, o.d, lse.d, (char *)qkv.d + q0 * e, (char *)qkv.d + C * e,
                           (char *)qkv.d + 2 * C * e);
    double ms = gc_stop(c);
    gc_check(c, "attention_forward", shape, &o, TOL_BF16, ms);
    gc_check(c, "attention_forward lse", shape, &lse, TOL_F32, ms);
    if (k.Tq == k.Tk) t_attention_backward(c, &a, &qkv, &o, &lse, shape);
    gc_free(c, &qkv), gc_free(c, &o), gc_free(c, &lse);
}

static void attention(gc_ctx *c) {
    if (!gc_wanted(c, "attention")) return;
    attn_case cases[] = {
        {4, 3, 128, 256, 256, 256},   /* d6, full causal (tensor cores) */
        {4, 3, 128, 256, 256, 128},   /* d6, a short window */
        {1, 6, 128, 1024, 1024, 256}, /* d12, "S" window */
        {2, 4, 64, 200, 200, 1000},   /* D 64, partial tiles */
        {2, 4, 64, 200, 200, 37},     /* D 64, window inside a tile */
        {3, 5, 40, 37, 37, 10},       /* generic path */
        {2, 4, 16, 64, 64, 64},       /* generic, D 16 */
        {1, 3, 128, 1, 300, 256},     /* decode: one query, KV cache */
        {2, 3, 128, 64, 320, 128},    /* a chunk of queries after a cache */
        {1, 2, 40, 5, 9, 3},          /* generic decode */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if (!quick || i % 3 == 0) t_attention(c, cases[i]);
}

/* ---- loss ------------------------------------------------------------------------------------------- */

static void t_softcap_ce(gc_ctx *c, int64_t N, int V, int Vp, bool in_place, float cap) {
    char shape[64];
    snprintf(shape, sizeof shape, "N %lld V %d Vp %d cap %g%s", (long long)N, V, Vp, cap, in_place ? " in place" : "");
    int32_t *y_d, *y = gc_ids(c, N, V, &y_d);
    gc_buf z = gc_in(c, N * Vp, BF, -30, 30), losses = gc_out(c, N, NC_F32), dz = gc_out(c, N * Vp, BF);
    gc_buf *g = in_place ? &z : &dz;
    CPU->softcap_ce(c->cpu, losses.h, g->h, z.h, y, N, V, Vp, cap, 1.0f / (float)N);
    gc_start(c);
    GPU->softcap_ce(c->gpu, losses.d, g->d, z.d, y_d, N, V, Vp, cap, 1.0f / (float)N);
    double ms = gc_stop(c);
    gc_check(c, "softcap_ce losses", shape, &losses, TOL_F32, ms);
    gc_check(c, "softcap_ce dlogits", shape, g, TOL_BF16, ms);
    gc_buf out = gc_out(c, N * V, NC_F32), mean = gc_out(c, 1, NC_F32);
    gc_buf zs = gc_in(c, N * Vp, BF, -30, 30); /* fresh: z may hold dlogits by now */
    CPU->softcap(c->cpu, out.h, zs.h, N, V, Vp, cap);
    gc_start(c);
    GPU->softcap(c->gpu, out.d, zs.d, N, V, Vp, cap);
    gc_check(c, "softcap", shape, &out, TOL_F32, gc_stop(c));
    CPU->mean(c->cpu, mean.h, losses.h, N);
    gc_upload(c, &losses);
    gc_start(c);
    GPU->mean(c->gpu, mean.d, losses.d, N);
    gc_check(c, "mean", shape, &mean, TOL_F32, gc_stop(c));
    gc_free(c, &z), gc_free(c, &zs), gc_free(c, &losses), gc_free(c, &dz), gc_free(c, &out), gc_free(c, &mean);
    gc_free_ids(c, y, y_d);
}

static void losses(gc_ctx *c) {
    if (!gc_wanted(c, "softcap") && !gc_wanted(c, "mean")) return;
    t_softcap_ce(c, 16384, 65, 128, true, 15.0f);
    t_softcap_ce(c, 1024, 65, 128, false, 15.0f);
    t_softcap_ce(c, 77, 300, 320, true, 15.0f);
    t_softcap_ce(c, 512, 32768, 32768, true, 15.0f); /* upstream's vocabulary, a chunk of the head's rows */
    t_softcap_ce(c, 256, 32001, 32064, true, 15.0f); /* an odd one, padded to 64 */
    t_softcap_ce(c, 333, 65, 65, false, 0.0f); /* no cap (the bigram) */
}

/* ---- optimizers ------------------------------------------------------------------------------------- */

static void t_adamw(gc_ctx *c, int64_t n) {
    char shape[64];
    snprintf(shape, sizeof shape, "n %lld", (long long)n);
    gc_buf p = gc_in(c, n, NC_F32, -1, 1), g = gc_in(c, n, NC_F32, -1, 1), m = gc_in(c, n, NC_F32, -0.1f, 0.1f);
    gc_buf v = gc_in(c, n, NC_F32, 0, 0.01f), hp = gc_in(c, 8, NC_F32, 0, 0);
    nc_adamw_hp h = {.lr = 0.004f, .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-10f, .wd = 0.01f,
                     .bias1 = 1 - 0.8f * 0.8f * 0.8f, .bias2 = 1 - 0.95f * 0.95f * 0.95f};
    memcpy(hp.h, &h, sizeof h);
    gc_upload(c, &hp);
    CPU->adamw(c->cpu, p.h, g.h, m.h, v.h, n, (const nc_adamw_hp *)hp.h);
    gc_start(c);
    GPU->adamw(c->gpu, p.d, g.d, m.d, v.d, n, (const nc_adamw_hp *)hp.d);
    double ms = gc_stop(c);
    gc_check(c, "adamw p", shape, &p, TOL_F32, ms);
    gc_check(c, "adamw m", shape, &m, TOL_F32, ms);
    gc_check(c, "adamw v", shape, &v, TOL_F32, ms);
    gc_free(c, &p), gc_free(c, &g), gc_free(c, &m), gc_free(c, &v), gc_free(c, &hp);
}

static void t_muon(gc_ctx *c, int K, int R, int C) {
    char shape[64];
    snprintf(shape, sizeof shape, "K %d R %d C %d", K, R, C);
    int64_t n = (int64_t)K * R * C, side = R >= C ? R : C;
    gc_buf g = gc_in(c, n, NC_F32, -1, 1), buf = gc_in(c, n, NC_F32, -1, 1), hp = gc_in(c, 4, NC_F32, 0, 0);
    nc_muon_hp h = {.lr = 0.02f, .momentum = 0.95f, .wd = 0.2f, .beta2 = 0.9f};
    memcpy(hp.h, &h, sizeof h);
    gc_upload(c, &hp);
    CPU->muon_momentum(c->cpu, g.h, buf.h, n, (const nc_muon_hp *)hp.h);
    gc_start(c);
    GPU->muon_momentum(c->gpu, g.d, buf.d, n, (const nc_muon_hp *)hp.d);
    double ms = gc_stop(c);
    gc_check(c, "muon_momentum g", shape, &g, TOL_F32, ms);
    gc_check(c, "muon_momentum buf", shape, &buf, TOL_F32, ms);
    gc_buf x = gc_out(c, n, BF);
    gc_upload(c, &g);
    CPU->muon_normalize(c->cpu, x.h, g.h, K, R, C);
    gc_start(c);
    GPU->muon_normalize(c->gpu, x.d, g.d, K, R, C);
    gc_check(c, "muon_normalize", shape, &x, TOL_BF16, gc_stop(c));
    gc_buf p = gc_in(c, n, NC_F32, -1, 1), v2 = gc_in(c, K * side, NC_F32, 0, 1e-3f);
    gc_upload(c, &x);
    CPU->muon_finish(c->cpu, p.h, x.h, v2.h, K, R, C, (const nc_muon_hp *)hp.h);
    gc_start(c);
    GPU->muon_finish(c->gpu, p.d, x.d, v2.d, K, R, C, (const nc_muon_hp *)hp.d);
    ms = gc_stop(c);
    gc_check(c, "muon_finish p", shape, &p, TOL_F32, ms);
    gc_check(c, "muon_finish v2", shape, &v2, TOL_F32, ms);
    gc_buf *all[] = {&g, &buf, &hp, &x, &p, &v2};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) gc_free(c, all[i]);
}

static void optimizers(gc_ctx *c) {
    if (gc_wanted(c, "adamw")) {
        t_adamw(c, 128 * 384);
        t_adamw(c, 100003);
    }
    if (gc_wanted(c, "muon")) {
        t_muon(c, 4, 384, 384);
        t_muon(c, 2, 1536, 384);
        t_muon(c, 2, 384, 1536);
        t_muon(c, 3, 3, 12);
        t_muon(c, 2, 100, 37);
    }
}

int main(int argc, char **argv) {
    const char *filter = NULL, *log_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--filter") == 0 && i + 1 < argc) filter = argv[++i];
        else if (strcmp(argv[i], "--log") == 0 && i + 1 < argc) log_path = argv[++i];
        else if (strcmp(argv[i], "--quick") == 0) quick = true;
    }
    FILE *log = log_path ? fopen(log_path, "w") : NULL;
    gc_ctx ctx, *c = &ctx;
    int rc = gc_open(c, filter, log);
    if (rc) return rc;
    gemms(c);
    rows(c);
    elementwise(c);
    embeddings(c);
    attention(c);
    losses(c);
    optimizers(c);
    printf("%d of %d checks failed\n", c->failures, c->checks);
    if (log) fprintf(log, "%d of %d checks failed\n", c->failures, c->checks), fclose(log);
    if (!c->checks) printf("FAIL: no op matches --filter %s\n", filter);
    rc = c->failures || !c->checks ? 1 : 0;
    gc_close(c);
    return rc;
}
