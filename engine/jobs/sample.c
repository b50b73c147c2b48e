/* sample.c: text from the resident model: temperature, top-k, a seed, and
 * the prompt checks (InvalidTemperature, UnknownCharacter, PromptTooLong). */
#define _GNU_SOURCE
#include "engine/engine.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define NC_PROMPT_CAP 4096 /* prompt limit of models that condition on one token */
#define NC_STYLE_BIAS 2.5  /* logit bonus of style-only characters for a styled bigram */

/* The longest prompt the model accepts by default. */
static int64_t prompt_limit(const nc_resident *r) {
    int ctx = r->ops->context_len(r->model);
    return ctx > 1 ? ctx - 1 : NC_PROMPT_CAP;
}

int nc_sample_check(const void *args, nc_error *err) {
    const nc_sample_cfg *req = args;
    if (!isfinite(req->temperature) || req->temperature <= 0)
        return nc_fail(err, NC_E_INVALID_TEMPERATURE, "temperature must be a finite number above 0 (got %g)", req->temperature);
    if (!req->prompt[0]) return nc_fail(err, NC_E_BAD_REQUEST, "args.prompt must not be empty");
    return 0;
}

/* The request against the resident model: the prompt limit it may ask for. */
static int check_request(const nc_resident *r, const nc_sample_cfg *cfg, int64_t *limit, nc_error *err) {
    *limit = prompt_limit(r);
    if (cfg->max_prompt_tokens > *limit)
        return nc_fail(err, NC_E_BAD_REQUEST, "args.max_prompt_tokens (%lld) exceeds the model's context limit (%lld)",
                       (long long)cfg->max_prompt_tokens, (long long)*limit);
    if (cfg->max_prompt_tokens > 0) *limit = cfg->max_prompt_tokens;
    return 0;
}

/* A styled bigram leans toward its style's own characters. */
static bool style_biased(const nc_resident *r) {
    return r->ops->kind == NC_KIND_BIGRAM && r->cfg.style != NC_STYLE_CLASSIC;
}

/* Draws the next token from logits (V): temperature, then top-k, in double. */
static int32_t draw(float *logits, int V, double temperature, int64_t top_k, nc_rng *rng) {
    double kth = -INFINITY, *p = nc_xmalloc((size_t)V * sizeof *p);
    if (top_k > 0 && top_k < V) {
        float *sorted = nc_xmalloc((size_t)V * sizeof *sorted);
        memcpy(sorted, logits, (size_t)V * sizeof *sorted);
        for (int64_t i = 0; i < top_k; i++) /* partial selection: the k-th largest */
            for (int j = (int)i + 1; j < V; j++)
                if (sorted[j] > sorted[i]) { float t = sorted[i]; sorted[i] = sorted[j]; sorted[j] = t; }
        kth = sorted[top_k - 1];
        free(sorted);
    }
    double max = -INFINITY, sum = 0;
    for (int i = 0; i < V; i++)
        if (logits[i] >= kth && logits[i] > max) max = logits[i];
    for (int i = 0; i < V; i++) sum += p[i] = logits[i] >= kth ? exp((logits[i] - max) / temperature) : 0;
    double u = nc_rng_uniform(rng) * sum, acc = 0;
    int32_t pick = 0;
    for (int i = 0; i < V; i++)
        if (p[i] > 0) {
            pick = i;
            if ((acc += p[i]) > u) break;
        }
    free(p);
    return pick;
}

static int generate(nc_resident *r, const nc_sample_cfg *cfg, const int32_t *prompt, size_t n, int32_t *out,
                    const nc_sink *sink, nc_error *err) {
    int V = r->vocab.size;
    float *logits = nc_xmalloc((size_t)V * sizeof *logits);
    nc_decoder *d = r->ops->decoder_new(r->model, err);
    nc_rng rng;
    nc_rng_seed(&rng, (uint64_t)cfg->seed, NC_STREAM_SAMPLE);
    int rc = d ? r->ops->decoder_feed(d, prompt, (int)n, logits, err) : -1;
    for (int64_t i = 0; rc == 0 && i < cfg->max_new_tokens; i++) {
        if (nc_step_boundary(sink)) {
            rc = nc_fail(err, NC_E_CANCELLED, "sampling cancelled after %lld tokens", (long long)i);
            break;
        }
        for (int v = 0; style_biased(r) && v < V; v++) logits[v] += r->style_only[v] ? (float)NC_STYLE_BIAS : 0.0f;
        out[i] = draw(logits, V, cfg->temperature, cfg->top_k, &rng);
        if (i + 1 < cfg->max_new_tokens) rc = r->ops->decoder_feed(d, &out[i], 1, logits, err);
    }
    if (d) r->ops->decoder_free(d);
    free(logits);
    return rc;
}

json_t *nc_cmd_sample(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    const nc_sample_cfg *cfg = args;
    nc_resident *r = &e->res;
    int64_t limit = 0;
    if (nc_require_model(r, err) || check_request(r, cfg, &limit, err)) return NULL;
    int32_t *prompt;
    size_t n;
    if (nc_encode(&r->vocab, cfg->prompt, &prompt, &n, err)) return NULL;
    int64_t positions = r->ops->max_positions ? r->ops->max_positions(r->model) : 0;
    if (positions && (int64_t)n + cfg->max_new_tokens > positions) {
        free(prompt);
        nc_fail(err, NC_E_BAD_REQUEST, "args.max_new_tokens: the prompt and the new tokens may span at most %lld positions",
                (long long)positions);
        return NULL;
    }
    if ((int64_t)n > limit) {
        free(prompt);
        nc_fail(err, NC_E_PROMPT_TOO_LONG, "the prompt has %zu tokens; at most %lld are accepted", n, (long long)limit);
        return NULL;
    }
    int32_t *all = nc_xmalloc((n + (size_t)cfg->max_new_tokens + 1) * sizeof *all); /* at most 1e6 + a prompt */
    memcpy(all, prompt, n * sizeof *all);
    free(prompt);
    double t0 = nc_now();
    json_t *res = NULL;
    if (generate(r, cfg, all, n, all + n, sink, err) == 0) {
        double dt = nc_now() - t0;
        char *text = nc_decode(&r->vocab, all, n + (size_t)cfg->max_new_tokens);
        res = json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:I, s:I}", "text", text, "prompt", cfg->prompt,
                        "prompt_tokens", (json_int_t)n, "new_tokens", (json_int_t)cfg->max_new_tokens, "temperature",
                        cfg->temperature, "tokens_per_s", dt > 0 ? (double)cfg->max_new_tokens / dt : 0.0,
                        "top_k", (json_int_t)cfg->top_k, "seed", (json_int_t)cfg->seed);
        free(text);
    }
    free(all);
    return res;
}
