/* test_emu_attention.c: the attention kernels (tensor-core and generic paths,
 * forward and backward) on the emulator against the cpu twin. */
#include "emu_check.h"

#include <math.h>
#include <stdio.h>

/* q, k, v from packed (B, Tk, 3 H D) rows, the last Tq of them the queries; o (B, Tq, H D). */
static void attention(ec_ctx *c, int B, int H, int D, int Tq, int Tk, int window) {
    char shape[64];
    snprintf(shape, sizeof shape, "B %d H %d D %d Tq %d Tk %d w %d", B, H, D, Tq, Tk, window);
    int64_t C = (int64_t)H * D, row = 3 * C, nl = (int64_t)B * H * Tq, q0 = (int64_t)(Tk - Tq) * row;
    nc_attn a = {.B = B, .H = H, .D = D, .Tq = Tq, .Tk = Tk, .window = window, .scale = 1.0f / sqrtf((float)D),
                 .q_ld = row, .q_bs = Tk * row, .k_ld = row, .k_bs = Tk * row, .v_ld = row, .v_bs = Tk * row,
                 .o_ld = C, .o_bs = Tq * C};
    ec_buf qkv = ec_in(c, B * Tk * row, NC_BF16, -2, 2), o = ec_out(c, B * Tq * C, NC_BF16);
    ec_buf lse = ec_out(c, nl, NC_F32);
    BOTH(attention_forward, &a, P(o), P(lse), ec_at(c, &qkv, q0), ec_at(c, &qkv, C), ec_at(c, &qkv, 2 * C));
    ec_check(c, "attention_forward", shape, &o, TOL_BF16);
    ec_check(c, "attention_forward lse", shape, &lse, TOL_F32);
    if (Tq == Tk) {
        ec_buf dout = ec_in(c, o.n, NC_BF16, -1, 1), d = ec_out(c, qkv.n, NC_BF16), work = ec_out(c, nl, NC_F32);
        ec_sync(&o), ec_sync(&lse); /* the twin's forward on both sides */
        BOTH(attention_backward, &a, P(d), ec_at(c, &d, C), ec_at(c, &d, 2 * C), P(dout), P(qkv),
             ec_at(c, &qkv, C), ec_at(c, &qkv, 2 * C), P(o), P(lse), P(work));
        ec_check(c, "attention_backward dq dk dv", shape, &d, TOL_BF16);
        ec_check(c, "attention_backward delta", shape, &work, TOL_F32);
        ec_free(&dout), ec_free(&d), ec_free(&work);
    }
    ec_free(&qkv), ec_free(&o), ec_free(&lse);
}

static void tensor_core_cases(ec_ctx *c) {
    nc_cuda_attention_init(emu_backend()); /* the shared memory opt-in the D 128 kernels need */
    attention(c, 1, 1, 64, 70, 70, 70);  /* a partial second tile of queries and keys */
    attention(c, 1, 1, 128, 70, 70, 20); /* D 128 (inner tiles of 32), a window inside a tile */
    attention(c, 1, 1, 64, 5, 70, 40);   /* decode: a few queries after a cache */
}

static void generic_cases(ec_ctx *c) {
    attention(c, 2, 2, 40, 9, 9, 3); /* odd head size, a window */
    attention(c, 1, 2, 40, 3, 7, 9); /* decode */
}

START_TEST(the_tensor_core_kernels_match_the_twin) {
    int mma0 = emu_launches("(mma)");
    ck_assert_int_eq(ec_run(tensor_core_cases), 0);
    ck_assert_int_eq(emu_launches("(mma)") - mma0, 2 * 7);
}
END_TEST

START_TEST(the_generic_kernels_match_the_twin) {
    int generic0 = emu_launches("(generic)");
    ck_assert_int_eq(ec_run(generic_cases), 0);
    ck_assert_int_eq(emu_launches("(generic)") - generic0, 2 * 4);
}
END_TEST

EC_MAIN("emu_attention", the_tensor_core_kernels_match_the_twin, the_generic_kernels_match_the_twin)
