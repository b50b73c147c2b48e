/* test_cpu_backend.c: the cpu backend's gemm and attention against naive
 * loops, on shapes and strides the models use (transposes, batches, C != D,
 * row strides, a KV-cache geometry with Tq < Tk and a sliding window), and
 * symmetric products, the attention backward against finite differences,
 * bf16 casts and the memory accounting. */
#include "backend/backend.h"
#include "backend/cpu/internal.h"
#include "testutil.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static double max_abs_diff(const float *a, const float *b, int64_t n) {
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - b[i]));
    return m;
}

static nc_backend *open_cpu(int threads) {
    nc_error err = {0};
    nc_backend *be = nc_backend_cpu_new(threads, &err);
    ck_assert_msg(be, "%s", err.message);
    return be;
}

/* D = alpha op(A) op(B) + beta C, element by element. */
static void naive_gemm(const nc_gemm *g, float *d) {
    for (int i = 0; i < g->batch; i++)
        for (int r = 0; r < g->m; r++)
            for (int c = 0; c < g->n; c++) {
                const float *a = (const float *)g->a + i * g->sa, *b = (const float *)g->b + i * g->sb;
                double s = 0;
                for (int k = 0; k < g->k; k++)
                    s += (double)(g->ta ? a[k * g->lda + r] : a[r * g->lda + k]) * (g->tb ? b[c * g->ldb + k] : b[k * g->ldb + c]);
                double cv = g->c ? ((const float *)g->c)[i * g->sc + r * g->ldc + c] : 0;
                d[i * g->sd + r * g->ldd + c] = (float)(g->alpha * s + (g->c ? g->beta * cv : 0));
            }
}

START_TEST(gemm_matches_naive) {
    nc_backend *be = open_cpu(2);
    /* a product sgemm does whole; skinny ones (sgemv row by row), whole and in column slices */
    static const int shapes[][3] = {{70, 90, 50}, {1, 90, 50}, {1, 600, 300}, {5, 600, 300}};
    for (int v = 0; v < 8 * 4; v++) {
        bool ta = v & 1, tb = v & 2, with_c = v & 4;
        int m = shapes[v / 8][0], n = shapes[v / 8][1], k = shapes[v / 8][2], batch = 3;
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldd = n + 7;
        int64_t sa = (int64_t)lda * (ta ? k : m), sb = (int64_t)ldb * (tb ? n : k), sd = (int64_t)ldd * m;
        float *a = malloc(sizeof(float) * batch * sa), *b = malloc(sizeof(float) * batch * sb);
        float *c = malloc(sizeof(float) * batch * sd), *d = malloc(sizeof(float) * batch * sd);
        float *want = malloc(sizeof(float) * batch * sd);
        tu_random_floats(a, batch * sa, 1);
        tu_random_floats(b, batch * sb, 2);
        tu_random_floats(c, batch * sd, 3);
        memcpy(d, c, sizeof(float) * batch * sd);
        memcpy(want, c, sizeof(float) * batch * sd);
        nc_gemm g = {.m = m, .n = n, .k = k, .batch = batch, .ta = ta, .tb = tb, .alpha = 0.5f, .beta = 2.0f,
                     .a = a, .at = NC_F32, .lda = lda, .sa = sa, .b = b, .bt = NC_F32, .ldb = ldb, .sb = sb,
                     .c = with_c ? c : NULL, .ldc = ldd, .sc = sd, .d = d, .dt = NC_F32, .ldd = ldd, .sd = sd};
        be->ops->gemm(be, &g);
        naive_gemm(&g, want);
        ck_assert_msg(max_abs_diff(d, want, batch * sd) < 1e-4, "variant %d (m %d): %g", v % 8, m, max_abs_diff(d, want, batch * sd));
        free(a), free(b), free(c), free(d), free(want);
    }
    nc_backend_free(be);
}
END_TEST

/* Symmetric products (Muon's x x^T, x^T x and A A) take the ssyrk path. */
START_TEST(symmetric_gemm_matches_naive) {
    nc_backend *be = open_cpu(2);
    for (int v = 0; v < 2; v++) {
        bool ta = v; /* x^T x (tall) or x x^T (wide) */
        int R = 40, C = 24, s = ta ? C : R, k = ta ? R : C, batch = 3;
        int64_t sx = (int64_t)R * C, ss = (int64_t)s * s;
        float *x = malloc(sizeof(float) * batch * sx), *c = malloc(sizeof(float) * batch * ss);
        float *d = malloc(sizeof(float) * batch * ss), *want = malloc(sizeof(float) * batch * ss);
        tu_random_floats(x, batch * sx, 5);
        for (int i = 0; i < batch; i++) /* a symmetric C */
            for (int r = 0; r < s; r++)
                for (int q = 0; q < s; q++) c[i * ss + r * s + q] = (float)((r + 1) * (q + 1) % 7) - 3.0f;
        nc_gemm g = {.m = s, .n = s, .k = k, .batch = batch, .ta = ta, .tb = !ta, .symmetric = true, .alpha = 1.5f,
                     .beta = -0.5f, .a = x, .at = NC_F32, .lda = C, .sa = sx, .b = x, .bt = NC_F32, .ldb = C, .sb = sx,
                     .c = c, .ldc = s, .sc = ss, .d = d, .dt = NC_F32, .ldd = s, .sd = ss};
        be->ops->gemm(be, &g);
        naive_gemm(&g, want);
        ck_assert_msg(max_abs_diff(d, want, batch * ss) < 1e-4, "variant %d: %g", v, max_abs_diff(d, want, batch * ss));
        free(x), free(c), free(d), free(want);
    }
    nc_backend_free(be);
}
END_TEST

/* o, lse by explicit softmax over the visible keys. */
static void naive_attention(const nc_attn *a, const float *q, const float *k, const float *v, float *o, float *lse) {
    float *s = malloc(sizeof(float) * (size_t)a->Tk);
    for (int b = 0; b < a->B; b++)
        for (int h = 0; h < a->H; h++)
            for (int i = 0; i < a->Tq; i++) {
                int pos = i + a->Tk - a->Tq;
                const float *qi = q + b * a->q_bs + i * a->q_ld + h * a->D;
                double mx = -INFINITY, sum = 0;
                for (int j = 0; j <= pos; j++) {
                    s[j] = -INFINITY;
                    if (pos - j > a->window) continue;
                    double x = 0;
                    for (int d = 0; d < a->D; d++) x += (double)qi[d] * k[b * a->k_bs + j * a->k_ld + h * a->D + d];
                    s[j] = (float)(x * a->scale);
                    mx = fmax(mx, s[j]);
                }
                for (int j = 0; j <= pos; j++) sum += exp(s[j] - mx);
                float *oi = o + b * a->o_bs + i * a->o_ld + h * a->D;
                for (int d = 0; d < a->D; d++) {
                    double acc = 0;
                    for (int j = 0; j <= pos; j++) acc += exp(s[j] - mx) / sum * v[b * a->v_bs + j * a->v_ld + h * a->D + d];
                    oi[d] = (float)acc;
                }
                lse[(b * a->H + h) * a->Tq + i] = (float)(mx + log(sum));
            }
    free(s);
}

/* A packed qkv of B sequences of Tk tokens; the queries are the last Tq. */
static void check_attention(int B, int Tq, int Tk, int window) {
    int H = 3, D = 16, C = H * D;
    nc_attn a = {.B = B, .H = H, .D = D, .Tq = Tq, .Tk = Tk, .window = window, .scale = 0.25f,
                 .q_ld = 3 * C, .q_bs = (int64_t)Tk * 3 * C, .k_ld = 3 * C, .k_bs = (int64_t)Tk * 3 * C,
                 .v_ld = 3 * C, .v_bs = (int64_t)Tk * 3 * C, .o_ld = C, .o_bs = (int64_t)Tq * C};
    int64_t n = (int64_t)B * Tk * 3 * C, no = (int64_t)B * Tq * C, nl = (int64_t)B * H * Tq;
    float *qkv = malloc(sizeof(float) * n), *o = malloc(sizeof(float) * no), *want = malloc(sizeof(float) * no);
    float *lse = malloc(sizeof(float) * nl), *want_lse = malloc(sizeof(float) * nl);
    tu_random_floats(qkv, n, 7);
    const float *q = qkv + (int64_t)(Tk - Tq) * 3 * C;
    nc_backend *be = open_cpu(2);
    be->ops->attention_forward(be, &a, o, lse, q, qkv + C, qkv + 2 * C);
    naive_attention(&a, q, qkv + C, qkv + 2 * C, want, want_lse);
    ck_assert_msg(max_abs_diff(o, want, no) < 1e-5, "Tq %d Tk %d window %d: o off by %g", Tq, Tk, window, max_abs_diff(o, want, no));
    ck_assert_msg(max_abs_diff(lse, want_lse, nl) < 1e-5, "lse off by %g", max_abs_diff(lse, want_lse, nl));
    nc_backend_free(be);
    free(qkv), free(o), free(want), free(lse), free(want_lse);
}

START_TEST(attention_matches_naive) {
    check_attention(2, 150, 150, 150); /* causal, several query blocks */
    check_attention(2, 150, 150, 40);  /* sliding window */
    check_attention(1, 7, 90, 30);     /* decoding: queries at the end of a cache */
    check_attention(1, 1, 200, 1000);  /* one query, the whole cache */
}
END_TEST

/* The attention backward against central differences of a scalar of o. */
START_TEST(attention_backward_matches_differences) {
    int B = 1, T = 70, H = 2, D = 8, C = H * D;
    nc_attn a = {.B = B, .H = H, .D = D, .Tq = T, .Tk = T, .window = 20, .scale = 0.35f, .q_ld = 3 * C,
                 .q_bs = T * 3 * C, .k_ld = 3 * C, .k_bs = T * 3 * C, .v_ld = 3 * C, .v_bs = T * 3 * C,
                 .o_ld = C, .o_bs = T * C};
    int64_t n = (int64_t)T * 3 * C, no = (int64_t)T * C;
    float *qkv = malloc(sizeof(float) * n), *dqkv = malloc(sizeof(float) * n), *w = malloc(sizeof(float) * no);
    float *o = malloc(sizeof(float) * no), *lse = malloc(sizeof(float) * H * T), *work = malloc(sizeof(float) * H * T);
    tu_random_floats(qkv, n, 11);
    tu_random_floats(w, no, 12); /* loss = sum(w * o): dout = w */
    nc_backend *be = open_cpu(2);
    be->ops->attention_forward(be, &a, o, lse, qkv, qkv + C, qkv + 2 * C);
    be->ops->attention_backward(be, &a, dqkv, dqkv + C, dqkv + 2 * C, w, qkv, qkv + C, qkv + 2 * C, o, lse, work);
    for (int64_t i = 0; i < n; i += 37) {
        double loss[2];
        float keep = qkv[i];
        for (int side = 0; side < 2; side++) {
            qkv[i] = keep + (side ? 1e-2f : -1e-2f);
            be->ops->attention_forward(be, &a, o, NULL, qkv, qkv + C, qkv + 2 * C);
            loss[side] = 0;
            for (int64_t j = 0; j < no; j++) loss[side] += (double)w[j] * o[j];
        }
        qkv[i] = keep;
        double fd = (loss[1] - loss[0]) / 2e-2;
        ck_assert_msg(fabs(fd - dqkv[i]) < 2e-3 * (1 + fabs(fd)), "element %lld: %g vs %g", (long long)i, dqkv[i], fd);
    }
    nc_backend_free(be);
    free(qkv), free(dqkv), free(w), free(o), free(lse), free(work);
}
END_TEST

/* The vectorizable exp the attention and the loss use: within 1 ulp. */
START_TEST(exp_accuracy) {
    double worst = 0;
    for (float x = -87.0f; x <= 0.0f; x += 0.00123f) {
        float want = expf(x), got = nc_cpu_exp_nonpos(x);
        double ulp = nextafterf(want, INFINITY) - want;
        worst = fmax(worst, fabs((double)got - want) / ulp);
    }
    ck_assert_msg(worst <= 1.5, "exp off by %.2f ulp", worst);
    ck_assert_float_eq(nc_cpu_exp_nonpos(0.0f), 1.0f);
    ck_assert_float_eq(nc_cpu_exp_nonpos(-1000.0f), 0.0f);
}
END_TEST

/* bf16 casts round to nearest even and come back exactly. */
START_TEST(casts) {
    nc_backend *be = open_cpu(1);
    float x[4] = {1.0f, 1.00390625f, 1.01171875f, -3.5f}, back[4];
    uint16_t h[4];
    be->ops->cast(be, h, NC_BF16, x, NC_F32, 4);
    be->ops->cast(be, back, NC_F32, h, NC_BF16, 4);
    ck_assert_float_eq(back[0], 1.0f);
    ck_assert_float_eq(back[1], 1.0f);        /* a tie: rounds to even */
    ck_assert_float_eq(back[2], 1.015625f);   /* a tie: rounds to even (up) */
    ck_assert_float_eq(back[3], -3.5f);
    ck_assert_int_eq(nc_backend_device_bytes(be, false), 0);
    void *p = be->ops->alloc(be, 1000);
    ck_assert_int_ge(nc_backend_device_bytes(be, false), 1000);
    be->ops->free(be, p);
    ck_assert_int_eq(nc_backend_device_bytes(be, false), 0);
    ck_assert_int_ge(nc_backend_device_bytes(be, true), 1000);
    nc_backend_free(be);
}
END_TEST

int main(void) {
    Suite *s = suite_create("cpu_backend");
    tu_tcase(s, "ops", gemm_matches_naive, symmetric_gemm_matches_naive, attention_matches_naive,
             attention_backward_matches_differences, exp_accuracy, casts);
    return tu_run(s);
}
