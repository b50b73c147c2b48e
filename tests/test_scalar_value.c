/* test_scalar_value.c: the scalar autograd arena. Every primitive and
 * composite's gradient against central finite differences, the 32-byte
 * node, and an arena that keeps its memory across sv_reset. */
#include "testutil.h"
#include "models/autograd/value.h"

#include <math.h>

#define N_IN 5

/* A scalar function of N_IN leaves built on the graph. */
typedef sv_id (*build_fn)(sv_graph *g, const sv_id *x);

static double eval_at(build_fn f, const double *x) {
    sv_graph g;
    sv_init(&g);
    sv_id ids[N_IN];
    for (int i = 0; i < N_IN; i++) ids[i] = sv_leaf(&g, x[i]);
    double v = sv_val(&g, f(&g, ids));
    sv_free(&g);
    return v;
}

/* The graph's gradient at x equals central differences (relative 1e-6). */
static void check_grad(build_fn f, const double *x) {
    sv_graph g;
    sv_init(&g);
    sv_id ids[N_IN];
    for (int i = 0; i < N_IN; i++) ids[i] = sv_leaf(&g, x[i]);
    sv_backward(&g, f(&g, ids));
    for (int i = 0; i < N_IN; i++) {
        double lo[N_IN], hi[N_IN], h = 1e-6;
        for (int j = 0; j < N_IN; j++) lo[j] = hi[j] = x[j];
        lo[i] -= h, hi[i] += h;
        double fd = (eval_at(f, hi) - eval_at(f, lo)) / (2 * h), ad = sv_grad(&g, ids[i]);
        ck_assert_msg(fabs(fd - ad) <= 1e-6 * fmax(1.0, fabs(fd)), "d/dx%d: graph %.10g, finite differences %.10g", i, ad, fd);
    }
    sv_free(&g);
}

static const double X[N_IN] = {0.7, -1.3, 0.4, 2.1, -0.2};
static const double POS[N_IN] = {0.7, 1.3, 0.4, 2.1, 0.2};

static sv_id f_arith(sv_graph *g, const sv_id *x) {
    sv_id a = sv_mul(g, sv_add(g, x[0], x[1]), sv_scale(g, x[2], 3.0));
    return sv_add(g, sv_shift(g, a, 0.5), sv_mul(g, x[3], x[4]));
}

static sv_id f_unary(sv_graph *g, const sv_id *x) {
    sv_id a = sv_add(g, sv_exp(g, x[0]), sv_log(g, x[1]));
    sv_id b = sv_add(g, sv_pow(g, x[2], -0.5), sv_pow(g, x[3], 3.0));
    return sv_add(g, sv_add(g, a, b), sv_relu(g, x[4]));
}

static sv_id f_relu_negative(sv_graph *g, const sv_id *x) { return sv_add(g, sv_relu(g, x[1]), sv_relu(g, x[3])); }

static sv_id f_rmsnorm(sv_graph *g, const sv_id *x) {
    sv_id y[N_IN];
    sv_rmsnorm(g, x, N_IN, y);
    const sv_id w[N_IN] = {x[4], x[3], x[2], x[1], x[0]};
    return sv_dot(g, y, w, N_IN);
}

static sv_id f_softmax(sv_graph *g, const sv_id *x) {
    sv_id p[N_IN];
    sv_softmax(g, x, N_IN, p);
    return sv_add(g, sv_scale(g, p[1], 2.0), sv_mul(g, p[3], p[0]));
}

static sv_id f_cross_entropy(sv_graph *g, const sv_id *x) { return sv_cross_entropy(g, x, N_IN, 2); }

/* y = W x with W (2, 2) the leaves x[1..4] and x = (x[0], x[4]). */
static sv_id f_linear(sv_graph *g, const sv_id *x) {
    sv_id in[2] = {x[0], x[4]}, y[2];
    sv_linear(g, in, 2, x[1], 2, y);
    return sv_mul(g, y[0], sv_shift(g, y[1], 1.0));
}

START_TEST(gradients_match_finite_differences) {
    check_grad(f_arith, X);
    check_grad(f_unary, POS);
    check_grad(f_relu_negative, X);
    check_grad(f_rmsnorm, X);
    check_grad(f_softmax, X);
    check_grad(f_cross_entropy, X);
    check_grad(f_linear, X);
}
END_TEST

START_TEST(values_are_the_functions) {
    sv_graph g;
    sv_init(&g);
    sv_id x[3] = {sv_leaf(&g, 1.0), sv_leaf(&g, 2.0), sv_leaf(&g, 3.0)};
    sv_id p[3];
    sv_softmax(&g, x, 3, p);
    double z = exp(1.0) + exp(2.0) + exp(3.0);
    ck_assert_double_eq_tol(sv_val(&g, p[2]), exp(3.0) / z, 1e-15);
    ck_assert_double_eq_tol(sv_val(&g, sv_cross_entropy(&g, x, 3, 0)), log(z) - 1.0, 1e-14);
    sv_id w = sv_leaves(&g, (const float[]){1, 2, 3, 4, 5, 6}, 6), y[2];
    sv_linear(&g, x, 3, w, 2, y);
    ck_assert_double_eq(sv_val(&g, y[0]), 14.0);
    ck_assert_double_eq(sv_val(&g, y[1]), 32.0);
    sv_free(&g);
}
END_TEST

START_TEST(nodes_are_lean_and_the_arena_is_reused) {
    ck_assert_uint_eq(sizeof(sv_node), 32);
    sv_graph g;
    sv_init(&g);
    for (int i = 0; i < 100000; i++) sv_leaf(&g, i);
    sv_node *arena = g.n;
    int32_t cap = g.cap;
    sv_reset(&g);
    ck_assert_int_eq(g.len, 0);
    for (int i = 0; i < 100000; i++) sv_leaf(&g, i);
    ck_assert_ptr_eq(g.n, arena);
    ck_assert_int_eq(g.cap, cap);
    sv_free(&g);
}
END_TEST

int main(void) {
    Suite *s = suite_create("scalar_value");
    tu_tcase(s, "autograd", gradients_match_finite_differences, values_are_the_functions,
             nodes_are_lean_and_the_arena_is_reused);
    return tu_run(s);
}
