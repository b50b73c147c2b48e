/* gpt.h: upstream nanochat's GPT (92d63d4), trained with its MuonAdamW, on
 * any tensor backend. The model ops are nc_tensor_gpt_ops; this header adds
 * the config arithmetic (testing.h: the hooks the tests use).
 *
 * Read in this order: config.c (the shape from the config), params.c (the
 * parameter arena under upstream's names), internal.h (what the files share),
 * forward.c (top to bottom like upstream's GPT.forward), backward.c (its
 * steps in reverse), optim.c (upstream's setup_optimizer), step.c (the one
 * training step, graph or eager), gpt.c (the model ops), then decode.c
 * (the KV cache), state.c (named tensors for checkpoints) and buffers.c. */
#ifndef NC_GPT_H
#define NC_GPT_H

#include "models/model.h"

#define NC_GPT_MAX_LAYERS 256 /* the args schema's bound on depth */
#define NC_GPT_MAX_HEADS 512  /* the value-embedding gate kernels keep 13 floats a head in shared memory */
#define NC_GPT_PAD_VOCAB 64   /* wte, lm_head and value embeddings pad the vocabulary to this */

typedef struct nc_gpt_config {
    int n_layer, n_embd, n_head, head_dim; /* n_kv_head = n_head */
    int vocab, padded_vocab, seq_len;
    int window[NC_GPT_MAX_LAYERS]; /* left attention window of each layer */
} nc_gpt_config;

/* n_embd = depth * aspect_ratio rounded up to head_dim; windows from the
 * pattern ("S" = a quarter of seq_len rounded up to 128, last layer "L").
 * BadRequest names the offending field. */
int nc_gpt_config_init(nc_gpt_config *g, const nc_model_cfg *cfg, int vocab, nc_error *err);
/* Value embeddings on layers i with i % 2 == (n_layer - 1) % 2. */
bool nc_gpt_has_ve(const nc_gpt_config *g, int layer);
/* Parameters of the matrices in the blocks plus lm_head (base_train's scaling params). */
int64_t nc_gpt_scaling_params(const nc_gpt_config *g);
/* upstream's estimate_flops: 6 x matmul params + 12 x n_head x head_dim x effective window per layer */
double nc_gpt_flops_per_token(const nc_gpt_config *g);
/* base_train's batch scaling for cfg: the lr factor and Muon's weight decay
 * (both as given when cfg->batch_scaling is none). */
void nc_gpt_batch_scaling(const nc_gpt_config *g, const nc_model_cfg *cfg, double *lr_scale, double *wd);

extern const nc_model_ops nc_tensor_gpt_ops;

#endif
