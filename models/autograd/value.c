/* value.c: the scalar autograd arena. */
#include "value.h"
#include "core/memory.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>

enum { OP_LEAF, OP_ADD, OP_MUL, OP_SCALE, OP_SHIFT, OP_POW, OP_EXP, OP_LOG, OP_RELU };

_Static_assert(sizeof(sv_node) == 32, "a node is 32 bytes");

void sv_init(sv_graph *g) { *g = (sv_graph){0}; }

#define FIRST_CAP (1 << 16) /* nodes of a graph's first arena */

double sv_graph_bytes(double nodes) {
    if (nodes > INT32_MAX) return INFINITY;
    return (2 * nodes > FIRST_CAP ? 2 * nodes : FIRST_CAP) * sizeof(sv_node); /* the arena doubles from FIRST_CAP */
}

void sv_free(sv_graph *g) {
    free(g->n);
    *g = (sv_graph){0};
}

void sv_reset(sv_graph *g) { g->len = 0; }

static sv_node *push(sv_graph *g, uint8_t op, double v, sv_id a) {
    if (g->len == g->cap) {
        g->cap = g->cap ? 2 * g->cap : FIRST_CAP;
        g->n = nc_xrealloc(g->n, (size_t)g->cap * sizeof *g->n); /* within the model's footprint */
    }
    sv_node *n = &g->n[g->len++];
    n->v = v;
    n->g = 0.0;
    n->a = a;
    n->op = op;
    return n;
}

static sv_id binary(sv_graph *g, uint8_t op, double v, sv_id a, sv_id b) {
    push(g, op, v, a)->b = b;
    return g->len - 1;
}

static sv_id unary(sv_graph *g, uint8_t op, double v, sv_id a, double k) {
    push(g, op, v, a)->k = k;
    return g->len - 1;
}

sv_id sv_leaf(sv_graph *g, double v) { return unary(g, OP_LEAF, v, -1, 0); }
sv_id sv_leaves(sv_graph *g, const float *w, int64_t n) {
    sv_id first = g->len;
    for (int64_t i = 0; i < n; i++) sv_leaf(g, w[i]);
    return first;
}

void sv_begin(sv_graph *g, const float *w, int64_t n) {
    sv_reset(g);
    sv_leaves(g, w, n);
}

void sv_leaf_grads(const sv_graph *g, float *grad, int64_t n) {
    for (int64_t i = 0; i < n; i++) grad[i] = (float)g->n[i].g;
}

sv_id sv_add(sv_graph *g, sv_id a, sv_id b) { return binary(g, OP_ADD, g->n[a].v + g->n[b].v, a, b); }
sv_id sv_mul(sv_graph *g, sv_id a, sv_id b) { return binary(g, OP_MUL, g->n[a].v * g->n[b].v, a, b); }
sv_id sv_scale(sv_graph *g, sv_id a, double k) { return unary(g, OP_SCALE, k * g->n[a].v, a, k); }
sv_id sv_shift(sv_graph *g, sv_id a, double k) { return unary(g, OP_SHIFT, g->n[a].v + k, a, k); }
sv_id sv_pow(sv_graph *g, sv_id a, double k) { return unary(g, OP_POW, pow(g->n[a].v, k), a, k); }
sv_id sv_exp(sv_graph *g, sv_id a) { return unary(g, OP_EXP, exp(g->n[a].v), a, 0); }
sv_id sv_log(sv_graph *g, sv_id a) { return unary(g, OP_LOG, log(g->n[a].v), a, 0); }
sv_id sv_relu(sv_graph *g, sv_id a) { return unary(g, OP_RELU, g->n[a].v > 0 ? g->n[a].v : 0, a, 0); }

sv_id sv_dot(sv_graph *g, const sv_id *xs, const sv_id *ys, int n) {
    sv_id s = sv_mul(g, xs[0], ys[0]);
    for (int i = 1; i < n; i++) s = sv_add(g, s, sv_mul(g, xs[i], ys[i]));
    return s;
}

void sv_linear(sv_graph *g, const sv_id *x, int in, sv_id w0, int out, sv_id *y) {
    for (int r = 0; r < out; r++) {
        sv_id w = w0 + r * in, s = sv_mul(g, x[0], w);
        for (int c = 1; c < in; c++) s = sv_add(g, s, sv_mul(g, x[c], w + c));
        y[r] = s;
    }
}

void sv_rmsnorm(sv_graph *g, const sv_id *x, int n, sv_id *out) {
    sv_id ss = sv_dot(g, x, x, n);
    sv_id rstd = sv_pow(g, sv_shift(g, sv_scale(g, ss, 1.0 / n), FLT_EPSILON), -0.5);
    for (int i = 0; i < n; i++) out[i] = sv_mul(g, x[i], rstd);
}

static double max_value(const sv_graph *g, const sv_id *x, int n) {
    double max = -INFINITY;
    for (int i = 0; i < n; i++) max = fmax(max, g->n[x[i]].v);
    return max;
}

/* sum_i exp(x_i - max) */
static sv_id sum_exp(sv_graph *g, const sv_id *x, int n, double max) {
    sv_id s = sv_exp(g, sv_shift(g, x[0], -max));
    for (int i = 1; i < n; i++) s = sv_add(g, s, sv_exp(g, sv_shift(g, x[i], -max)));
    return s;
}

void sv_softmax(sv_graph *g, const sv_id *x, int n, sv_id *out) {
    double max = max_value(g, x, n);
    sv_id inv = sv_pow(g, sum_exp(g, x, n, max), -1.0);
    for (int i = 0; i < n; i++) out[i] = sv_mul(g, sv_exp(g, sv_shift(g, x[i], -max)), inv);
}

sv_id sv_cross_entropy(sv_graph *g, const sv_id *logits, int n, int target) {
    double max = max_value(g, logits, n);
    sv_id lse = sv_shift(g, sv_log(g, sum_exp(g, logits, n, max)), max);
    return sv_add(g, lse, sv_scale(g, logits[target], -1.0)); /* log(sum) + max - logit[target] */
}

void sv_backward(sv_graph *g, sv_id root) {
    sv_node *n = g->n;
    n[root].g = 1;
    for (int32_t i = root; i >= 0; i--) {
        const sv_node *x = &n[i];
        double d = x->g;
        if (d == 0) continue;
        switch (x->op) {
        case OP_ADD: n[x->a].g += d; n[x->b].g += d; break;
        case OP_MUL: n[x->a].g += d * n[x->b].v; n[x->b].g += d * n[x->a].v; break;
        case OP_SCALE: n[x->a].g += d * x->k; break;
        case OP_SHIFT: n[x->a].g += d; break;
        case OP_POW: n[x->a].g += d * x->k * pow(n[x->a].v, x->k - 1); break;
        case OP_EXP: n[x->a].g += d * x->v; break;
        case OP_LOG: n[x->a].g += d / n[x->a].v; break;
        case OP_RELU: n[x->a].g += n[x->a].v > 0 ? d : 0; break;
        default: break;
        }
    }
}
