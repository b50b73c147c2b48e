/* internal.h: what the GPT's files share: the parameter layout, the
 * activation buffers, the model struct and the passes.
 *
 * Shapes: N = B * T tokens, C = n_embd, H = n_head, D = head_dim, L = n_layer,
 * V = vocabulary, Vp = V padded to 64. Activations ("act") are the backend's
 * activation dtype; everything else is f32. */
#ifndef NC_GPT_INTERNAL_H
#define NC_GPT_INTERNAL_H

#include "testing.h"

#include "optim/muon_adamw.h"
#include "optim/snapshot.h"
#include "backend/backend.h"

#define GPT_SOFTCAP 15.0f
#define GPT_ROPE_BASE 100000.0f
#define GPT_ROPE_SPAN 10 /* rotary tables cover 10 x seq_len positions, as upstream */

/* One parameter tensor, under upstream's state_dict name and shape. */
typedef struct gpt_tensor {
    char name[96];
    int64_t offset; /* in the parameter arena, floats */
    int ndim;
    int64_t shape[2];
} gpt_tensor;

/* A layer's parameters: offsets into the arena (-1: the layer has none). */
typedef struct gpt_layer_params {
    int64_t qkv;       /* (3C, C): c_q, c_k, c_v stacked, so QKV is one gemm */
    int64_t attn_proj; /* (C, C) */
    int64_t ve_gate;   /* (H, 12) */
    int64_t ve;        /* (Vp, C) value embeddings */
    int64_t fc;        /* (4C, C) */
    int64_t mlp_proj;  /* (C, 4C) */
} gpt_layer_params;

/* The parameter arena: the Muon groups first, each a contiguous stack of one
 * shape ((C, C): every layer's q, k, v, then every c_proj; (4C, C); (C, 4C);
 * (H, 12)), then the AdamW tensors (lm_head, wte, value embeddings, the
 * per-layer lambdas, smear gate and lambda, backout lambda). */
typedef struct gpt_layout {
    gpt_tensor *tensors;
    int count;
    int64_t total;  /* floats in the arena, gaps included */
    int64_t params; /* the parameters themselves */
    gpt_layer_params layer[NC_GPT_MAX_LAYERS];
    int64_t square, fc, proj, gates;   /* starts of the Muon groups */
    int64_t lm_head, wte, ve_tables;   /* (Vp, C); ve_tables: (n_ve, Vp, C) */
    int64_t resid, x0;                 /* (L) */
    int64_t smear_gate, smear_lambda, backout; /* (24), (1), (1): contiguous */
    int n_ve;
} gpt_layout;

int gpt_layout_init(gpt_layout *lay, const nc_gpt_config *g, nc_error *err);
void gpt_layout_free(gpt_layout *lay);
/* Upstream's init_weights into host (total floats), from the seed's init stream. */
void gpt_init_weights(const gpt_layout *lay, const nc_gpt_config *g, uint64_t seed, float *host);

/* One layer's activations, saved by the forward for the backward. */
typedef struct gpt_acts {
    void *ln1;      /* (N, C) rmsnorm of the block input */
    float *rstd1;   /* (N) */
    void *qkv;      /* (N, 3C) final q, k (rotated, normed, x1.2) and v (+ value embedding) */
    float *qk_rstd; /* (N, 2, H) */
    float *gate;    /* (N, H) value-embedding gates */
    void *att;      /* (N, C) attention output */
    float *lse;     /* (B, H, T) */
    void *ln2;      /* (N, C) */
    float *rstd2;   /* (N) */
    void *fc;       /* (N, 4C) c_fc output (relu(fc)^2 is recomputed from it: gpt_buffers.act) */
    void *out;      /* (N, C) the layer's output (residual stream) */
} gpt_acts;

/* Every buffer of a pass over up to `capacity` tokens, carved from one allocation. */
typedef struct gpt_buffers {
    int64_t capacity;
    int64_t logit_capacity; /* rows of logits at a time (gpt_head_rows: the head goes in chunks) */
    bool train; /* has the backward's buffers */
    void *arena;
    int32_t *ids, *targets; /* (N) */
    void *emb;              /* (N, C) normalized token embeddings */
    float *rstd0;           /* (N) */
    void *x0;               /* (N, C) after smear */
    gpt_acts *layer;        /* (L), host array */
    void *xm, *xmid;        /* (N, C) scratch: block input, stream after attention */
    void *act;              /* (N, 4C) scratch: relu(fc)^2 of the layer at hand, made again
                             * by the backward (one buffer instead of L: d20 -6.4 GB) */
    void *xf, *lnf;         /* (N, C) stream minus backout, its rmsnorm */
    float *rstdf;           /* (N) */
    void *logits;           /* (logit_capacity, Vp); the backward turns it into dlogits */
    float *losses;          /* (N) */
    float *loss;            /* (1) */
    /* the backward's */
    void *dres, *dxf, *dx0, *dln, *datt, *dve; /* (N, C) */
    void *dqkv;                                /* (N, 3C) */
    void *dfc;                                 /* (N, 4C) */
    float *work;                               /* (B, H, T) attention scratch */
} gpt_buffers;

struct nc_model {
    nc_backend *be;
    nc_model_cfg cfg;
    nc_gpt_config g;
    gpt_layout lay;
    float *params, *grads; /* (P) f32 arenas */
    nc_snapshot snap;      /* params and the optimizer's state: the step, the last good copy */
    void *wact;            /* (P) act copy of params (params itself when act is f32) */
    float *cos, *sin;      /* (10 T, D / 2) */
    nc_muonadamw *opt;
    gpt_buffers train;     /* sized by the first batch */
    struct gpt_stepper *stepper; /* the training step (step.c) */
    double lr_scale, wd;   /* base_train's batch scaling */
};

int gpt_buffers_init(nc_model *m, gpt_buffers *buf, int64_t capacity, int64_t logit_capacity, bool train,
                     nc_error *err);
/* The bytes gpt_buffers_init allocates (m: its config and layout; act: bytes of an activation). */
size_t gpt_buffers_bytes(const nc_model *m, size_t act, int64_t capacity, int64_t logit_capacity, bool train);

/* Rows of logits the head computes at a time in a training or eval pass
 * (up to n): about 2^21 of them in f32 on a CPU, 2^24 in bf16 on a GPU, at
 * least 256 rows; so the (N, V) logits never exist at once. Fixed by the
 * shapes and the backend, never the thread count. */
int64_t gpt_head_rows(const nc_model *m, int64_t n);
void gpt_buffers_free(nc_model *m, gpt_buffers *buf);

/* One forward (and backward) pass over B sequences of T tokens. */
typedef struct gpt_pass {
    int B, T;
    int pos0;         /* position of token 0 (decoding; 0 in training) */
    const void *prev; /* (B, C) act embedding before token 0, or NULL */
    void **kv;        /* decoding: per layer a (cap, B, 3C) act cache (B 1 or T 1); NULL in training */
    int cached;       /* decoding: rows already in the caches */
    int64_t logit_row, logit_rows; /* rows of the stream that get logits in the forward (decoding;
                                    * 0 in training and eval, whose head goes in chunks) */
} gpt_pass;

void gpt_forward(nc_model *m, gpt_buffers *buf, const gpt_pass *p);
/* logits (rows, Vp) of the stream's rows [row, row + rows) (after gpt_forward). */
void gpt_head_logits(nc_model *m, gpt_buffers *buf, int64_t row, int64_t rows);
/* Layer l's attention geometry in pass p (q, k, v from the packed qkv or the cache). */
nc_attn gpt_attn_shape(const nc_model *m, const gpt_pass *p, int l);
/* The per-token losses of the pass's N rows into buf->losses (after
 * gpt_forward), a chunk of gpt_head_rows at a time; with grad, each
 * chunk's logits become their gradient in place (scaled by 1/N) and go back
 * through lm_head: its gradient accumulates, dln's rows are written. */
void gpt_head_loss(nc_model *m, gpt_buffers *buf, int64_t N, bool grad);
/* Loss into buf->loss, gradients into m->grads (zeroed first). */
void gpt_backward(nc_model *m, gpt_buffers *buf, const gpt_pass *p);

/* The AdamW and Muon groups of the layout, as upstream's setup_optimizer. */
void gpt_optimizer_setup(const nc_model *m, nc_muon_setup *s);

/* Checks a batch and uploads it into m->train (grown to fit); p: its pass. */
int gpt_load_batch(nc_model *m, const nc_batch *b, bool targets, gpt_pass *p, nc_error *err);
/* The act copy of the weights the gemms read (params itself when act is f32). */
void gpt_sync_weights(nc_model *m);

/* The training step (step.c): with graphs, the loss one call late. */
typedef struct gpt_stepper gpt_stepper;
int gpt_stepper_new(nc_model *m, nc_error *err); /* sets m->stepper */
void gpt_stepper_free(nc_model *m);
int gpt_stepper_step(nc_model *m, const nc_batch *b, int64_t step, int64_t steps, double *loss, nc_error *err);
int gpt_stepper_drain(nc_model *m, double *loss, nc_error *err);
bool gpt_stepper_lagged(const nc_model *m); /* losses come a call late */
/* The state was replaced (an import): no pending loss, nothing kept of it yet. */
void gpt_stepper_forget(nc_model *m);

/* Decoding with a KV cache (decode.c). */
nc_decoder *gpt_decoder_new(nc_model *m, int batch, int64_t positions, nc_error *err);
void gpt_decoder_footprint(const nc_model *m, int batch, int64_t positions, nc_footprint *out);
int gpt_decoder_feed(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err);
int gpt_decoder_step(nc_decoder *d, const int32_t *ids, float *logits, nc_error *err);
void gpt_decoder_free(nc_decoder *d);

/* base + i elements of the backend's activation dtype */
static inline void *gpt_at(const nc_model *m, const void *base, int64_t i) {
    return (char *)base + i * (int64_t)nc_dtype_size(m->be->act);
}

/* Weights, gradients and optimizer state <-> host tensor lists. */
int gpt_export(nc_model *m, const float *arena, const char *prefix, nc_tensor_list *out, nc_error *err);
int gpt_export_optimizer(nc_model *m, nc_tensor_list *out, nc_error *err);
int gpt_import(nc_model *m, const nc_tensor_list *in, bool optimizer, nc_error *err);
int gpt_state_spec(const nc_model_cfg *cfg, int V, bool optimizer, nc_tensor_list *out, nc_error *err);

#endif
