/* test_emu_optim.c: the optimizer kernels (AdamW; Muon's momentum, row
 * equilibration + normalization, and finish) on the emulator against the cpu
 * twins, on d6-like groups shrunk: tall, wide and square matrices. */
#include "emu_check.h"

#include <stdio.h>
#include <string.h>

static void adamw(ec_ctx *c, int64_t n) {
    char shape[32];
    snprintf(shape, sizeof shape, "n %lld", (long long)n);
    ec_buf p = ec_in(c, n, NC_F32, -1, 1), g = ec_in(c, n, NC_F32, -1, 1), m = ec_in(c, n, NC_F32, -0.1f, 0.1f);
    ec_buf v = ec_in(c, n, NC_F32, 0, 0.01f), hp = ec_in(c, 8, NC_F32, 0, 0);
    nc_adamw_hp h = {.lr = 0.004f, .beta1 = 0.8f, .beta2 = 0.95f, .eps = 1e-10f, .wd = 0.01f, .bias1 = 0.2f,
                     .bias2 = 0.05f};
    memcpy(hp.h, &h, sizeof h), ec_sync(&hp);
    BOTH(adamw, P(p), P(g), P(m), P(v), n, P(hp));
    ec_check(c, "adamw p", shape, &p, TOL_F32);
    ec_check(c, "adamw m", shape, &m, TOL_F32);
    ec_check(c, "adamw v", shape, &v, TOL_F32);
    ec_free(&p), ec_free(&g), ec_free(&m), ec_free(&v), ec_free(&hp);
}

/* K matrices (R, C): momentum, normalize into x, then finish into p */
static void muon(ec_ctx *c, int K, int R, int C) {
    char shape[48];
    snprintf(shape, sizeof shape, "K %d R %d C %d", K, R, C);
    int64_t n = (int64_t)K * R * C, n2 = (int64_t)K * (R >= C ? R : C);
    ec_buf g = ec_in(c, n, NC_F32, -1, 1), buf = ec_in(c, n, NC_F32, -1, 1), hp = ec_in(c, 4, NC_F32, 0, 0);
    ec_buf x = ec_out(c, n, NC_BF16), p = ec_in(c, n, NC_F32, -1, 1), v2 = ec_in(c, n2, NC_F32, 0, 0.1f);
    nc_muon_hp h = {.lr = 0.02f, .momentum = 0.95f, .wd = 0.2f, .beta2 = 0.9f};
    memcpy(hp.h, &h, sizeof h), ec_sync(&hp);
    BOTH(muon_momentum, P(g), P(buf), n, P(hp));
    ec_check(c, "muon_momentum g", shape, &g, TOL_F32);
    ec_check(c, "muon_momentum buf", shape, &buf, TOL_F32);
    ec_sync(&g);
    BOTH(muon_normalize, P(x), P(g), K, R, C);
    ec_check(c, "muon_normalize", shape, &x, TOL_BF16);
    ec_sync(&x);
    BOTH(muon_finish, P(p), P(x), P(v2), K, R, C, P(hp));
    ec_check(c, "muon_finish p", shape, &p, TOL_F32);
    ec_check(c, "muon_finish v2", shape, &v2, TOL_SUM);
    ec_free(&g), ec_free(&buf), ec_free(&hp), ec_free(&x), ec_free(&p), ec_free(&v2);
}

static void cases(ec_ctx *c) {
    for (c->shift = 0; c->shift < 2; c->shift++) {
        adamw(c, 1001);
        muon(c, 2, 40, 13); /* tall (per-row second moments) */
    }
    c->shift = 0;
    muon(c, 3, 12, 48); /* wide (per-column) */
    muon(c, 1, 24, 24);
}

START_TEST(the_optimizer_kernels_match_the_twins) { ck_assert_int_eq(ec_run(cases), 0); }
END_TEST

EC_MAIN("emu_optim", the_optimizer_kernels_match_the_twins)
