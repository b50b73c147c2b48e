/* minigpt.h: a one-layer GPT on scalar autograd (the model of karpathy's
 * microgpt, at character level).
 *
 *   x_t   = wte[tok_t] + wpe[t]                      (C = 16)
 *   x_t   = rmsnorm(x_t)                             when input_rmsnorm
 *   x_t  += c_proj(attn(rmsnorm(x)))_t               4 causal heads of 4
 *   x_t  += mlp.c_proj(relu(mlp.c_fc(rmsnorm(x_t)))^2)   (4C hidden)
 *   logits_t = x_t @ W^T                             W = lm_head, or wte when tied
 *
 * RMSNorm has no weight (eps = FLT_EPSILON); linear layers have no bias.
 * BLOCK_SIZE is the context window: seq_len is at most BLOCK_SIZE, so a
 * training window never crosses it, and decoding keeps the last BLOCK_SIZE
 * tokens. Initialization: every weight N(0, 0.08^2) from the init stream. */
#ifndef NC_MINIGPT_H
#define NC_MINIGPT_H

#include "models/model.h"

#define NC_MINIGPT_BLOCK_SIZE 8
#define NC_MINIGPT_EMBD 16
#define NC_MINIGPT_HEADS 4

extern const nc_model_ops nc_scalar_minigpt_ops;

#endif
