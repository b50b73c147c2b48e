/* test_emu_rows.c: the row and elementwise kernels (rmsnorm, rope + qk norm,
 * smear, value embeddings, embedding, loss, casts, scaled sums, relu^2,
 * guards) on the emulator against the cpu twins, aligned and unaligned. */
#include "emu_check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BF NC_BF16
#define F32 NC_F32

static char shape[64];
#define SHAPE(...) (snprintf(shape, sizeof shape, __VA_ARGS__), shape)

static void rmsnorm(ec_ctx *c, int64_t N, int C, bool accumulate) {
    ec_buf x = ec_in(c, N * C, BF, -2, 2), y = ec_out(c, N * C, BF), rstd = ec_out(c, N, F32);
    ec_buf dy = ec_in(c, N * C, BF, -1, 1), dx = accumulate ? ec_in(c, N * C, BF, -1, 1) : ec_out(c, N * C, BF);
    BOTH(rmsnorm_forward, P(y), P(rstd), P(x), N, C);
    ec_check(c, "rmsnorm_forward", SHAPE("N %lld C %d", (long long)N, C), &y, TOL_BF16);
    ec_check(c, "rmsnorm_forward rstd", shape, &rstd, TOL_F32);
    /* dy mostly along y, as in a model (random dy would make mean(dy * y), the term the backward
     * subtracts, vanish, and hide an error in it) */
    for (int64_t i = 0; i < N * C; i++) dy.h[i] = y.h[i] + 0.1f * dy.h[i];
    ec_sync(&y), ec_sync(&dy);
    BOTH(rmsnorm_backward, P(dx), P(dy), P(y), P(rstd), N, C, accumulate);
    ec_check(c, accumulate ? "rmsnorm_backward +=" : "rmsnorm_backward", shape, &dx, TOL_BF16);
    ec_free(&x), ec_free(&y), ec_free(&rstd), ec_free(&dy), ec_free(&dx);
}

static void rope(ec_ctx *c, int B, int T, int H, int D) {
    int64_t n = (int64_t)B * T * 3 * H * D, half = (int64_t)T * D / 2;
    ec_buf qkv = ec_in(c, n, BF, -2, 2), rstd = ec_out(c, (int64_t)B * T * 2 * H, F32), dqkv = ec_in(c, n, BF, -1, 1);
    ec_buf cs = ec_in(c, half, F32, -1, 1), sn = ec_in(c, half, F32, -1, 1);
    for (int64_t i = 0; i < half; i++) { /* a rotation: cos^2 + sin^2 = 1 */
        double th = atan2(sn.h[i], cs.h[i]);
        cs.h[i] = (float)cos(th), sn.h[i] = (float)sin(th);
    }
    ec_sync(&cs), ec_sync(&sn);
    BOTH(rope_qknorm_forward, P(qkv), P(rstd), P(cs), P(sn), B, T, 0, H, D);
    ec_check(c, "rope_qknorm_forward", SHAPE("B %d T %d H %d D %d", B, T, H, D), &qkv, TOL_BF16);
    ec_check(c, "rope_qknorm_forward rstd", shape, &rstd, TOL_F32);
    ec_sync(&qkv);
    BOTH(rope_qknorm_backward, P(dqkv), P(qkv), P(rstd), P(cs), P(sn), B, T, H, D);
    ec_check(c, "rope_qknorm_backward", shape, &dqkv, TOL_BF16);
    ec_free(&qkv), ec_free(&rstd), ec_free(&dqkv), ec_free(&cs), ec_free(&sn);
}

static void smear(ec_ctx *c, int B, int T, int C) {
    int64_t n = (int64_t)B * T * C;
    ec_buf e = ec_in(c, n, BF, -1, 1), x = ec_out(c, n, BF), prev = ec_in(c, (int64_t)B * C, BF, -1, 1);
    ec_buf w = ec_in(c, NC_SMEAR_CHANNELS, F32, -1, 1), lambda = ec_in(c, 1, F32, 0.2f, 1);
    ec_buf dx = ec_in(c, n, BF, -1, 1), de = ec_out(c, n, BF);
    ec_buf dw = ec_in(c, NC_SMEAR_CHANNELS, F32, -1, 1), dlambda = ec_in(c, 1, F32, -1, 1);
    BOTH(smear_forward, P(x), P(e), P(prev), P(w), P(lambda), B, T, C);
    ec_check(c, "smear_forward prev", SHAPE("B %d T %d C %d", B, T, C), &x, TOL_BF16);
    BOTH(smear_forward, P(x), P(e), NULL, P(w), P(lambda), B, T, C);
    ec_check(c, "smear_forward", shape, &x, TOL_BF16);
    BOTH(smear_backward, P(de), P(dx), P(e), P(w), P(lambda), P(dw), P(dlambda), B, T, C);
    ec_check(c, "smear_backward", shape, &de, TOL_BF16);
    ec_check(c, "smear_backward dw", shape, &dw, TOL_SUM);
    ec_check(c, "smear_backward dlambda", shape, &dlambda, TOL_SUM);
    ec_buf *all[] = {&e, &x, &prev, &w, &lambda, &dx, &de, &dw, &dlambda};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ec_free(all[i]);
}

/* v rows of stride 3 H D (the v part of qkv), xn rows of stride H D. */
static void value_embed(ec_ctx *c, int64_t N, int H, int D, int V) {
    int64_t C = (int64_t)H * D;
    int32_t *ids = ec_ids(c, N, V);
    ec_buf v = ec_in(c, N * 3 * C, BF, -1, 1), gate = ec_out(c, N * H, F32), xn = ec_in(c, N * C, BF, -2, 2);
    ec_buf w = ec_in(c, (int64_t)H * NC_VE_CHANNELS, F32, -0.5f, 0.5f), table = ec_in(c, V * C, F32, -1, 1);
    ec_buf dve = ec_out(c, N * C, BF), dxn = ec_in(c, N * C, BF, -1, 1), dv = ec_in(c, N * 3 * C, BF, -1, 1);
    ec_buf dw = ec_in(c, (int64_t)H * NC_VE_CHANNELS, F32, -1, 1);
    BOTH(ve_forward, P(v), 3 * C, P(gate), P(xn), C, P(w), P(table), ids, N, H, D);
    ec_check(c, "ve_forward", SHAPE("N %lld H %d D %d V %d", (long long)N, H, D, V), &v, TOL_BF16);
    ec_check(c, "ve_forward gate", shape, &gate, TOL_F32);
    ec_sync(&gate);
    BOTH(ve_backward, P(dve), P(dxn), C, P(dw), P(dv), 3 * C, P(gate), P(xn), P(w), P(table), ids, N, H, D);
    ec_check(c, "ve_backward dve", shape, &dve, TOL_BF16);
    ec_check(c, "ve_backward dxn", shape, &dxn, TOL_BF16);
    ec_check(c, "ve_backward dw", shape, &dw, TOL_SUM);
    ec_buf *all[] = {&v, &gate, &xn, &w, &table, &dve, &dxn, &dv, &dw};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ec_free(all[i]);
    free(ids);
}

static void embedding(ec_ctx *c, int64_t N, int C, int V) {
    int32_t *ids = ec_ids(c, N, V);
    ec_buf table = ec_in(c, (int64_t)V * C, F32, -1, 1), out = ec_out(c, N * C, BF);
    ec_buf dout = ec_in(c, N * C, BF, -1, 1), dtable = ec_in(c, (int64_t)V * C, F32, -1, 1);
    BOTH(embedding_forward, P(out), P(table), ids, N, C);
    ec_check(c, "embedding_forward", SHAPE("N %lld C %d V %d", (long long)N, C, V), &out, TOL_BF16);
    BOTH(embedding_backward, P(dtable), P(dout), ids, N, C, V);
    ec_check(c, "embedding_backward", shape, &dtable, TOL_SUM);
    ec_free(&table), ec_free(&out), ec_free(&dout), ec_free(&dtable);
    free(ids);
}

/* The gradient in place of the logits (as the model calls it), then the capped logits. */
static void loss(ec_ctx *c, int64_t N, int V, int Vp, float cap) {
    int32_t *targets = ec_ids(c, N, V);
    ec_buf z = ec_in(c, N * Vp, BF, -30, 30), losses = ec_out(c, N, F32), capped = ec_out(c, N * V, F32);
    ec_buf mean = ec_out(c, 1, F32);
    BOTH(softcap, P(capped), P(z), N, V, Vp, cap);
    ec_check(c, "softcap", SHAPE("N %lld V %d Vp %d cap %g", (long long)N, V, Vp, cap), &capped, TOL_F32);
    BOTH(softcap_ce, P(losses), P(z), P(z), targets, N, V, Vp, cap, 0.5f);
    ec_check(c, "softcap_ce losses", shape, &losses, TOL_F32);
    ec_check(c, "softcap_ce dlogits", shape, &z, TOL_BF16);
    BOTH(mean, P(mean), P(losses), N);
    ec_check(c, "mean", shape, &mean, TOL_SUM);
    ec_free(&z), ec_free(&losses), ec_free(&capped), ec_free(&mean);
    free(targets);
}

/* cast both ways (no twin: exact bf16 rounding), scale_add with a (dx in
 * place of dout) and without, add, relu^2 */
static void elementwise(ec_ctx *c, int64_t n, bool with_a) {
    float s = with_a ? 1.0f : -1.0f;
    ec_buf f = ec_in(c, n, F32, -3, 3), h = ec_out(c, n, BF), back = ec_out(c, n, F32), out = ec_out(c, n, BF);
    ec_buf x = ec_in(c, n, BF, -0.5f, 1.5f), y = ec_in(c, n, BF, -0.5f, 1.5f), dy = ec_in(c, n, BF, -1, 1);
    ec_buf a = ec_in(c, 1, F32, 0.5f, 1.5f), b = ec_in(c, 1, F32, 0.1f, 1), da = ec_in(c, 1, F32, -1, 1);
    ec_buf db = ec_in(c, 1, F32, -1, 1), dout = ec_in(c, n, BF, -0.5f, 1.5f), want = ec_in(c, n, BF, 0, 0);
    memcpy(want.h, f.h, sizeof(float) * (size_t)n);
    ec_sync(&want); /* want.h: f rounded to bf16 */
    memcpy(h.h, want.h, sizeof(float) * (size_t)n), memcpy(back.h, want.h, sizeof(float) * (size_t)n);
    nc_cuda_cast(emu_backend(), h.d, BF, f.d, F32, n);
    ec_check(c, "cast f32 -> bf16", SHAPE("n %lld%s", (long long)n, with_a ? " a" : ""), &h, 0);
    nc_cuda_cast(emu_backend(), back.d, F32, h.d, BF, n);
    ec_check(c, "cast bf16 -> f32", shape, &back, 0);
    BOTH(scale_add_forward, P(out), P(x), with_a ? P(a) : NULL, P(y), P(b), s, n);
    ec_check(c, "scale_add_forward", shape, &out, TOL_BF16);
    BOTH(scale_add_backward, with_a ? P(dout) : NULL, P(dy), P(da), P(db), P(dout), P(x), with_a ? P(a) : NULL, P(y),
         P(b), s, n);
    ec_check(c, "scale_add_backward dx", shape, &dout, TOL_BF16);
    ec_check(c, "scale_add_backward dy", shape, &dy, TOL_BF16);
    ec_check(c, "scale_add_backward da", shape, &da, TOL_SUM);
    ec_check(c, "scale_add_backward db", shape, &db, TOL_SUM);
    BOTH(add, P(y), P(x), n);
    ec_check(c, "add", shape, &y, TOL_BF16);
    BOTH(relu2_forward, P(out), P(x), n);
    ec_check(c, "relu2_forward", shape, &out, TOL_BF16);
    ec_buf again = ec_out(c, n, NC_BF16);
    BOTH(relu2_backward, P(dy), P(again), P(dy), P(x), n);
    ec_check(c, "relu2_backward", shape, &dy, TOL_BF16);
    ec_check(c, "relu2_backward relu2 again", shape, &again, TOL_BF16);
    ck_assert_msg(memcmp(again.d, out.d, sizeof(uint16_t) * (size_t)n) == 0, "%s: relu2 again is not the forward's bits",
                  shape);
    ec_buf *all[] = {&f, &h, &back, &out, &x, &y, &dy, &a, &b, &da, &db, &dout, &want, &again};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) ec_free(all[i]);
}

/* finite_and (finite, then NaN) and copy_if behind each flag */
static void guards(ec_ctx *c, int64_t n) {
    ec_buf flag = ec_in(c, 1, F32, 1, 1), x = ec_in(c, 1, F32, 2, 3), src = ec_in(c, n, F32, -1, 1);
    ec_buf dst = ec_in(c, n, F32, -1, 1);
    for (int pass = 0; pass < 2; pass++) {
        BOTH(finite_and, P(flag), P(x));
        ec_check(c, "finite_and", SHAPE("pass %d", pass), &flag, 0);
        BOTH(copy_if, P(dst), P(src), sizeof(float) * (size_t)n, P(flag));
        ec_check(c, "copy_if", shape, &dst, 0);
        x.h[0] = NAN, ec_sync(&x), src.h[0] = 5, ec_sync(&src);
    }
    ec_free(&flag), ec_free(&x), ec_free(&src), ec_free(&dst);
}

static void cases(ec_ctx *c) {
    for (c->shift = 0; c->shift < 2; c->shift++) { /* aligned (vector paths), then one element off */
        rmsnorm(c, 37, 200, c->shift);
        rope(c, 1, 5, 3, 40);
        smear(c, 2, 9, 200);
        value_embed(c, 37, 3, 16, 11);
        embedding(c, 300, 77, 13);
        elementwise(c, 1001, !c->shift);
        guards(c, 1003);
    }
    c->shift = 0;
    rmsnorm(c, 9, 600, false); /* a row of more than 256 elements: lanes loop */
    loss(c, 21, 77, 80, 15.0f);
    loss(c, 3, 77, 77, 0.0f);
    loss(c, 3, 32768, 32768, 15.0f); /* upstream's vocabulary */
    loss(c, 2, 32001, 32064, 15.0f); /* an odd one, padded to 64 */
}

START_TEST(the_row_and_elementwise_kernels_match_the_twins) { ck_assert_int_eq(ec_run(cases), 0); }
END_TEST

EC_MAIN("emu_rows", the_row_and_elementwise_kernels_match_the_twins)
