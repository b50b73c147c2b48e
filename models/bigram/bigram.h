/* bigram.h: the character bigram, shared by its two implementations
 * (scalar.c on scalar autograd, tensor.c on batched
 * host arrays), so that both train the same model from the same numbers.
 *
 * Architecture: a V x V embedding E; the embedded token h = E[x], optionally
 * RMS-normalized (no weight, eps = FLT_EPSILON); logits = h @ W^T with W a
 * separate V x V lm head, or W = E when the head is tied. Initialization:
 * every parameter N(0, 0.1^2) from the seed's init stream, E first. */
#ifndef NC_BIGRAM_H
#define NC_BIGRAM_H

#include "optim/host_optim.h"
#include "models/model.h"

/* out (n, V) = the logits of the token after each of ids (n): the implementation's. */
typedef int (*nc_bigram_logits_fn)(nc_model *m, const int32_t *ids, int n, float *out, nc_error *err);

typedef struct nc_bigram {
    nc_model_cfg cfg;
    int V;
    int64_t P;        /* parameters: V*V (tied) or 2*V*V */
    float *w;         /* (P): E (V, V), then W (V, V) when untied */
    nc_host_optim opt;
    nc_bigram_logits_fn logits;
} nc_bigram;

/* The bigram's defaults (batch 32 pairs, lr, eval windows); seq_len must be 1. */
int nc_bigram_resolve(nc_model_cfg *cfg, int64_t *eval_windows, nc_error *err);
void nc_bigram_init(nc_bigram *b, const nc_model_cfg *cfg, int V, nc_bigram_logits_fn logits);
void nc_bigram_free(nc_bigram *b);
/* Offset of the lm head W in w: 0 when tied. */
int64_t nc_bigram_head_offset(const nc_bigram *b);

/* Model ops both implementations share; their struct nc_model begins with
 * an nc_bigram. The state is "wte.weight", "lm_head.weight" (untied) and the
 * optimizer's. Decoding a bigram needs no state: a session is the model and
 * its batch, and each token's logits come from the implementation's logits(). */
int nc_bigram_export_state(nc_model *m, bool optimizer, nc_tensor_list *out, nc_error *err);
int nc_bigram_import_state(nc_model *m, const nc_tensor_list *in, bool optimizer, int64_t step, nc_error *err);
int nc_bigram_state_spec(const nc_model_cfg *cfg, int V, bool optimizer, nc_tensor_list *out, nc_error *err);
/* Bytes of the weights, their gradient and the optimizer (each
 * implementation adds its own working memory). */
double nc_bigram_bytes(const nc_model_cfg *cfg, int V);
int64_t nc_bigram_num_params(const nc_model *m);
int64_t nc_bigram_updates(const nc_model *m);
int nc_bigram_context_len(const nc_model *m);
nc_decoder *nc_bigram_decoder_new(nc_model *m, int batch, int64_t positions, nc_error *err);
int nc_bigram_decoder_feed(nc_decoder *d, const int32_t *ids, int n, float *logits, nc_error *err);
int nc_bigram_decoder_step(nc_decoder *d, const int32_t *ids, float *logits, nc_error *err);
void nc_bigram_decoder_free(nc_decoder *d);
/* Those ops, for a bigram's nc_model_ops initializer. */
#define NC_BIGRAM_SHARED_OPS                                                                        \
    .context_len = nc_bigram_context_len, .decoder_new = nc_bigram_decoder_new,                     \
    .decoder_feed = nc_bigram_decoder_feed, .decoder_step = nc_bigram_decoder_step,                 \
    .decoder_free = nc_bigram_decoder_free, .export_state = nc_bigram_export_state,                 \
    .import_state = nc_bigram_import_state, .state_spec = nc_bigram_state_spec, .num_params = nc_bigram_num_params, \
    .updates = nc_bigram_updates

#endif
