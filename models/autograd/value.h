/* value.h: autograd on scalars. A graph is an arena of nodes appended in
 * creation order, so operands always precede their results and the backward
 * pass is one reverse sweep. The arena keeps its memory from step to step
 * (sv_reset), so a training step allocates nothing once it has grown.
 *
 * A node is 32 bytes: value, gradient, first operand, and either the second
 * operand (binary ops) or a constant (unary ops). Values are doubles; models
 * keep their parameters as floats and make them leaves each step. */
#ifndef NC_VALUE_H
#define NC_VALUE_H

#include <stdint.h>

typedef int32_t sv_id;

typedef struct sv_node {
    double v, g;     /* value, gradient */
    union {
        sv_id b;     /* second operand of add and mul */
        double k;    /* constant of scale, shift and pow */
    };
    sv_id a;         /* first operand (-1 for leaves) */
    uint8_t op;
} sv_node;

typedef struct sv_graph {
    sv_node *n;      /* (cap) nodes, the first len in use */
    int32_t len, cap;
} sv_graph;

void sv_init(sv_graph *g);
/* Bytes a graph of `nodes` nodes may hold (its arena doubles as it grows);
 * infinite when the count exceeds what a node id can name. */
double sv_graph_bytes(double nodes);
void sv_free(sv_graph *g);
void sv_reset(sv_graph *g);

sv_id sv_leaf(sv_graph *g, double v);
/* n leaves with the values w (n), as consecutive nodes; returns the first. */
sv_id sv_leaves(sv_graph *g, const float *w, int64_t n);
/* A model's graph: reset, then its n parameters w (n) as leaves 0..n-1. */
void sv_begin(sv_graph *g, const float *w, int64_t n);
/* grad (n) = the gradients of leaves 0..n-1 (after sv_backward). */
void sv_leaf_grads(const sv_graph *g, float *grad, int64_t n);
sv_id sv_add(sv_graph *g, sv_id a, sv_id b);
sv_id sv_mul(sv_graph *g, sv_id a, sv_id b);
sv_id sv_scale(sv_graph *g, sv_id a, double k);  /* k * a */
sv_id sv_shift(sv_graph *g, sv_id a, double k);  /* a + k */
sv_id sv_pow(sv_graph *g, sv_id a, double k);    /* a ^ k, a > 0 unless k is a small integer */
sv_id sv_exp(sv_graph *g, sv_id a);
sv_id sv_log(sv_graph *g, sv_id a);
sv_id sv_relu(sv_graph *g, sv_id a);

static inline double sv_val(const sv_graph *g, sv_id a) { return g->n[a].v; }
static inline double sv_grad(const sv_graph *g, sv_id a) { return g->n[a].g; }

/* Composites built from the primitives. */
sv_id sv_dot(sv_graph *g, const sv_id *xs, const sv_id *ys, int n);
/* y (out) = W x for x (in) and W (out, in) the consecutive nodes from w0. */
void sv_linear(sv_graph *g, const sv_id *x, int in, sv_id w0, int out, sv_id *y);
/* out (n) = x / sqrt(mean(x^2) + eps), no weight (eps = FLT_EPSILON, as the GPT).
 * out may be x. */
void sv_rmsnorm(sv_graph *g, const sv_id *x, int n, sv_id *out);
/* out (n) = softmax(x), with the max subtracted as a constant; out may be x. */
void sv_softmax(sv_graph *g, const sv_id *x, int n, sv_id *out);
/* -log softmax(logits)[target], with the max subtracted as a constant. */
sv_id sv_cross_entropy(sv_graph *g, const sv_id *logits, int n, int target);

/* Sets d(root)/d(root) = 1 and sweeps every node before it in reverse. Nodes
 * are created with a zero gradient, so call it once per graph. */
void sv_backward(sv_graph *g, sv_id root);

#endif
