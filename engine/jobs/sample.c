/* sample.c: text from the resident model: temperature, top-k, a seed, the
 * prompt checks (InvalidTemperature, UnknownCharacter, PromptTooLong), and
 * num_samples samples decoded together, their text streamed as it is made. */
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
    return r->ops->kind == NC_KIND_BIGRAM && r->cfg.style != NC_STYLE_CLASSIC && r->style_only;
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

/* ---- streaming ------------------------------------------------------------------------------ */

/* Each sample's new text as it is made, sent as "text" events ({sample,
 * text}) at most every NC_SAMPLE_FLUSH_S seconds and once at the end; a
 * sample's bytes that end inside a character wait for the rest of it (a BPE
 * token may end there), and bytes that are no UTF-8 (a model may put BPE
 * tokens in any order) go out as U+FFFD, as the result's texts have them. */
#define NC_SAMPLE_FLUSH_S 0.005

typedef struct text_stream {
    const nc_sink *sink;
    const nc_tokenizer *tok;
    int n;
    int64_t *sent;   /* (n) tokens of each sample already in its pending bytes or in events */
    char **pending;  /* (n) bytes not yet sent (at most a partial character after a flush) */
    size_t *len, *cap; /* (n) */
    double last;     /* time of the last flush */
} text_stream;

static void stream_init(text_stream *s, const nc_sink *sink, const nc_tokenizer *tok, int n) {
    *s = (text_stream){sink, tok, n, nc_xcalloc((size_t)n, sizeof *s->sent), nc_xcalloc((size_t)n, sizeof(char *)),
                       nc_xcalloc((size_t)n, sizeof *s->len), nc_xcalloc((size_t)n, sizeof *s->cap), nc_now()};
}

static void stream_free(text_stream *s) {
    for (int i = 0; s->pending && i < s->n; i++) free(s->pending[i]);
    free(s->pending);
    free(s->sent);
    free(s->len);
    free(s->cap);
}

/* Sends sample i's first `whole` pending bytes (complete characters, or invalid bytes) as one event. */
static void send(text_stream *s, int i, size_t whole) {
    size_t n;
    char *text = nc_utf8_repair(s->pending[i], whole, &n);
    nc_emit(s->sink, "text", json_pack("{s:i, s:s%}", "sample", i, "text", text, n));
    free(text);
    memmove(s->pending[i], s->pending[i] + whole, s->len[i] - whole);
    s->len[i] -= whole;
}

/* Sends what each sample made since the last flush: out (n, stride) holds
 * the new tokens, `made` of them per sample so far. */
static void stream_flush(text_stream *s, const int32_t *out, int64_t stride, int64_t made, bool last) {
    if (!last && nc_now() - s->last < NC_SAMPLE_FLUSH_S) return;
    s->last = nc_now();
    for (int i = 0; i < s->n; i++) {
        size_t add;
        char *text = nc_tokenizer_decode(s->tok, out + i * stride + s->sent[i], (size_t)(made - s->sent[i]), &add);
        if (s->len[i] + add > s->cap[i])
            s->pending[i] = nc_xrealloc(s->pending[i], s->cap[i] = 2 * (s->len[i] + add));
        memcpy(s->pending[i] + s->len[i], text, add);
        free(text);
        s->sent[i] = made;
        s->len[i] += add;
        size_t whole = last ? s->len[i] : nc_utf8_complete(s->pending[i], s->len[i]);
        if (whole) send(s, i, whole);
    }
}

/* ---- decoding ------------------------------------------------------------------------------- */

/* Sample i draws from its own stream: the seed's sampling stream plus i, so
 * that it is the same whatever the number of samples. */
static void sample_rngs(nc_rng *rng, int n, int64_t seed) {
    for (int i = 0; i < n; i++) nc_rng_seed(&rng[i], (uint64_t)seed, NC_STREAM_SAMPLE + (uint64_t)i);
}

/* The N samples' new tokens into out (N, max_new_tokens), streamed as they come. */
static int generate(nc_resident *r, const nc_sample_cfg *cfg, const int32_t *prompt, size_t n, int32_t *out,
                    const nc_sink *sink, nc_error *err) {
    int V = nc_tokenizer_size(&r->tok), N = (int)cfg->num_samples;
    int64_t T = cfg->max_new_tokens;
    float *logits = nc_xmalloc((size_t)N * (size_t)V * sizeof *logits); /* (N, V) */
    int32_t *next = nc_xmalloc((size_t)N * sizeof *next);               /* (N) */
    nc_rng *rng = nc_xmalloc((size_t)N * sizeof *rng);
    sample_rngs(rng, N, cfg->seed);
    text_stream stream;
    stream_init(&stream, sink, &r->tok, N);
    nc_decoder *d = r->ops->decoder_new(r->model, N, (int64_t)n + T, err);
    int rc = d ? r->ops->decoder_feed(d, prompt, (int)n, logits, err) : -1;
    for (int i = 1; rc == 0 && i < N; i++) memcpy(logits + (size_t)i * V, logits, (size_t)V * sizeof *logits);
    for (int64_t t = 0; rc == 0 && t < T; t++) {
        if (nc_step_boundary(sink)) {
            rc = nc_fail(err, NC_E_CANCELLED, "sampling cancelled after %lld tokens", (long long)t);
            break;
        }
        for (int i = 0; i < N; i++) {
            float *row = logits + (size_t)i * V;
            for (int v = 0; style_biased(r) && v < V; v++) row[v] += r->style_only[v] ? (float)NC_STYLE_BIAS : 0.0f;
            out[i * T + t] = next[i] = draw(row, V, cfg->temperature, cfg->top_k, &rng[i]);
        }
        stream_flush(&stream, out, T, t + 1, t + 1 == T);
        if (t + 1 < T) rc = r->ops->decoder_step(d, next, logits, err);
    }
    if (d) r->ops->decoder_free(d);
    stream_free(&stream);
    free(rng);
    free(next);
    free(logits);
    return rc;
}

/* The session's memory beside the resident model: the decoder's, and the
 * host's logits, tokens and texts: a token's bytes at most TEXT_COPIES times
 * (decoded, repaired to up to 3 bytes a byte, in the JSON reply, in its frame). */
#define TEXT_COPIES 8.0
static int check_memory(nc_engine *e, const nc_sample_cfg *cfg, size_t n, nc_error *err) {
    const nc_resident *r = &e->res;
    int64_t N = cfg->num_samples, positions = (int64_t)n + cfg->max_new_tokens;
    nc_footprint fp = {0};
    if (r->ops->decoder_footprint) r->ops->decoder_footprint(r->model, (int)N, positions, &fp);
    fp.host += (double)N * ((double)nc_tokenizer_size(&r->tok) * sizeof(float) +
                            (double)positions * (sizeof(int32_t) + TEXT_COPIES * nc_tokenizer_longest(&r->tok)));
    return nc_engine_fits_beside(e, &fp, NC_E_BAD_REQUEST, "the sampling session", err);
}

/* texts (N): the prompt and each sample's new tokens; the result. */
static json_t *result_of(const nc_resident *r, const nc_sample_cfg *cfg, const int32_t *prompt, size_t n,
                         const int32_t *out, double seconds) {
    int64_t T = cfg->max_new_tokens, N = cfg->num_samples;
    int32_t *ids = nc_xmalloc((n + (size_t)T + 1) * sizeof *ids);
    memcpy(ids, prompt, n * sizeof *ids);
    json_t *texts = json_array();
    for (int64_t i = 0; i < N; i++) {
        memcpy(ids + n, out + i * T, (size_t)T * sizeof *ids);
        size_t len, fixed_len;
        char *bytes = nc_tokenizer_decode(&r->tok, ids, n + (size_t)T, &len), *text = nc_utf8_repair(bytes, len, &fixed_len);
        json_array_append_new(texts, json_stringn(text, fixed_len));
        free(bytes), free(text);
    }
    free(ids);
    return json_pack("{s:O, s:o, s:s, s:I, s:I, s:I, s:f, s:f, s:I, s:I}", "text", json_array_get(texts, 0), "texts",
                     texts, "prompt", cfg->prompt, "prompt_tokens", (json_int_t)n, "new_tokens", (json_int_t)T,
                     "num_samples", (json_int_t)N, "temperature", cfg->temperature, "tokens_per_s",
                     seconds > 0 ? (double)(N * T) / seconds : 0.0, "top_k", (json_int_t)cfg->top_k, "seed",
                     (json_int_t)cfg->seed);
}

json_t *nc_cmd_sample(nc_engine *e, const void *args, const nc_sink *sink, nc_error *err) {
    const nc_sample_cfg *cfg = args;
    nc_resident *r = &e->res;
    int64_t limit = 0;
    if (nc_require_model(r, err) || check_request(r, cfg, &limit, err)) return NULL;
    int32_t *prompt = NULL;
    size_t n = 0, cap = 0;
    nc_stop stop = nc_sink_stop(sink);
    if (nc_tokenizer_encode(&r->tok, cfg->prompt, strlen(cfg->prompt), &prompt, &n, &cap, &stop, err)) {
        free(prompt);
        return NULL;
    }
    int64_t positions = r->ops->max_positions ? r->ops->max_positions(r->model) : 0;
    int rc = 0;
    if (positions && (int64_t)n + cfg->max_new_tokens > positions)
        rc = nc_fail(err, NC_E_BAD_REQUEST, "args.max_new_tokens: the prompt and the new tokens may span at most %lld positions",
                     (long long)positions);
    else if ((int64_t)n > limit)
        rc = nc_fail(err, NC_E_PROMPT_TOO_LONG, "the prompt has %zu tokens; at most %lld are accepted", n, (long long)limit);
    else rc = check_memory(e, cfg, n, err);
    json_t *res = NULL;
    if (rc == 0) {
        int32_t *out = nc_xmalloc(((size_t)cfg->num_samples * (size_t)cfg->max_new_tokens + 1) * sizeof *out); /* within check_memory */
        double t0 = nc_now();
        if (generate(r, cfg, prompt, n, out, sink, err) == 0) res = result_of(r, cfg, prompt, n, out, nc_now() - t0);
        free(out);
    }
    free(prompt);
    return res;
}
