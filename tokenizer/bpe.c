/* bpe.c: the byte-level BPE tokenizer of bpe.h: tokenizer.json checked and
 * loaded, tiktoken's encode_ordinary (the regex split, then byte-pair merges
 * by rank), token bytes for decoding. */
#define PCRE2_CODE_UNIT_WIDTH 8
#include "bpe.h"

#include "utf8.h"

#include "core/memory.h"

#include <jansson.h>
#include <pcre2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NO_RANK UINT32_MAX
#define MAX_SPECIAL_NAME 256

struct nc_bpe {
    int ranks;           /* mergeable tokens: ids 0..ranks-1, an id is its rank */
    int vocab;           /* ranks, then the special tokens */
    uint8_t *bytes;      /* every token's bytes, in id order (a special token: its name) */
    size_t *start;       /* (vocab + 1) offsets into bytes */
    int32_t *token_bytes; /* (vocab) bytes for bits per byte */
    int32_t *slots;      /* (cap) the mergeable ids by their bytes, open addressing; -1 empty */
    uint32_t cap;
    pcre2_code *re;
    pcre2_match_context *limits; /* heap and depth limits of every match */
};

/* ---- the rank map ------------------------------------------------------------------------ */

static uint32_t hash(const uint8_t *p, size_t n) {
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ p[i]) * 16777619u;
    return h;
}

static bool same(const nc_bpe *t, int id, const uint8_t *p, size_t n) {
    return t->start[id + 1] - t->start[id] == n && memcmp(t->bytes + t->start[id], p, n) == 0;
}

/* The slot holding p's id, or the empty slot where it belongs. */
static int32_t *slot(const nc_bpe *t, const uint8_t *p, size_t n) {
    for (uint32_t i = hash(p, n) & (t->cap - 1);; i = (i + 1) & (t->cap - 1))
        if (t->slots[i] < 0 || same(t, t->slots[i], p, n)) return &t->slots[i];
}

static uint32_t rank_of(const nc_bpe *t, const uint8_t *p, size_t n) {
    int32_t id = *slot(t, p, n);
    return id < 0 ? NO_RANK : (uint32_t)id;
}

/* ---- loading ------------------------------------------------------------------------------- */

static int b64_value(char c) {
    if (c >= 'A' && c <= 'Z') return c - 'A';
    if (c >= 'a' && c <= 'z') return c - 'a' + 26;
    if (c >= '0' && c <= '9') return c - '0' + 52;
    return c == '+' ? 62 : c == '/' ? 63 : -1;
}

/* Standard base64 (padded) s into out (room for 3/4 of its length); the bytes, or -1. */
static long b64_decode(const char *s, uint8_t *out) {
    size_t n = strlen(s);
    if (n == 0 || n % 4) return -1;
    long k = 0;
    for (size_t i = 0; i < n; i += 4) {
        int v[4], pad = 0;
        for (int j = 0; j < 4; j++) {
            bool tail = i + 4 == n && j >= 2 && s[i + j] == '=' && (j == 3 || s[i + 3] == '=');
            v[j] = tail ? (pad++, 0) : b64_value(s[i + j]);
            if (v[j] < 0) return -1;
        }
        uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
        for (int j = 0; j < 3 - pad; j++) out[k++] = (uint8_t)(w >> (16 - 8 * j));
    }
    return k;
}

void nc_bpe_free(nc_bpe *t) {
    if (!t) return;
    pcre2_code_free(t->re);
    pcre2_match_context_free(t->limits);
    free(t->bytes), free(t->start), free(t->token_bytes), free(t->slots), free(t);
}

/* tiktoken's regex (Rust) means Unicode White_Space by \s: PCRE2's \p{Z} and
 * \t..\r, and U+0085 (NEL), which PCRE2's \s leaves out even with UCP. */
#define WHITE_SPACE "\\t-\\r\\p{Z}\\x{85}"

/* pattern with \s and \S spelled as WHITE_SPACE (malloc'd; NULL: a construct
 * this rewriting does not follow: \S or a POSIX class inside a class, \Q, a
 * (?# comment). */
static char *translate(const char *pattern) {
    size_t n = strlen(pattern), k = 0;
    char *out = malloc(n * sizeof WHITE_SPACE + 1);
    bool in_class = false;
    for (size_t i = 0; out && i < n; i++) {
        char c = pattern[i], d = i + 1 < n ? pattern[i + 1] : 0;
        if ((c == '\\' && (d == 'Q' || (d == 'S' && in_class))) || (in_class && c == '[' && d == ':') ||
            (c == '(' && d == '?' && i + 2 < n && pattern[i + 2] == '#')) {
            free(out);
            return NULL;
        }
        if (c == '\\' && (d == 's' || d == 'S')) {
            k += (size_t)sprintf(out + k, in_class ? "%s" : d == 'S' ? "[^%s]" : "[%s]", WHITE_SPACE);
            i++;
            continue;
        }
        out[k++] = c;
        if (c == '\\' && d) {
            out[k++] = pattern[++i]; /* an escaped character, as it is (\cX: X too) */
            if (d == 'c' && i + 1 < n) out[k++] = pattern[++i];
        } else if (c == '[' && !in_class) {
            in_class = true;
            if (i + 1 < n && pattern[i + 1] == '^') out[k++] = pattern[++i];
            if (i + 1 < n && pattern[i + 1] == ']') out[k++] = pattern[++i]; /* a first ] is a member */
        } else if (c == ']' && in_class) {
            in_class = false;
        }
    }
    if (out) out[k] = 0;
    return out;
}

#define HEAP_LIMIT_KIB (16 << 10) /* a match's backtracking memory (the interpreter's; JIT has its own 32 KiB stack) */
#define DEPTH_LIMIT_KIB (16 << 10)

static int compile(nc_bpe *t, json_t *doc, nc_error *err) {
    const char *given = json_string_value(json_object_get(doc, "pattern"));
    if (!given) return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: no \"pattern\" string");
    if (strlen(given) > NC_BPE_MAX_PATTERN)
        return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: the pattern is over %d bytes", NC_BPE_MAX_PATTERN);
    char *pattern = translate(given);
    if (!pattern)
        return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: the pattern has \\S or a POSIX class inside a class, \\Q "
                                              "or a (?# comment (unsupported)");
    int code;
    PCRE2_SIZE at;
    /* anchored: a match is tried at one position per call (nc_bpe_encode), JIT-compiled so */
    uint32_t options = PCRE2_UTF | PCRE2_UCP | PCRE2_NEVER_BACKSLASH_C | PCRE2_ANCHORED;
    t->re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED, options, &code, &at, NULL);
    free(pattern);
    if (!t->re) {
        PCRE2_UCHAR why[256];
        pcre2_get_error_message(code, why, sizeof why);
        return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: the pattern does not compile at %zu: %s", (size_t)at,
                       (const char *)why);
    }
    pcre2_jit_compile(t->re, PCRE2_JIT_COMPLETE); /* without JIT ((*NO_JIT), or none here) the limits hold too */
    if (!(t->limits = pcre2_match_context_create(NULL))) return nc_fail(err, NC_E_INTERNAL, "out of memory");
    pcre2_set_heap_limit(t->limits, HEAP_LIMIT_KIB);
    pcre2_set_depth_limit(t->limits, DEPTH_LIMIT_KIB);
    return 0;
}

/* Every token's bytes into t->bytes / t->start: the ranks, then the special tokens' names. */
static int load_tokens(nc_bpe *t, json_t *ranks, json_t *special, nc_error *err) {
    size_t total = 0, i;
    json_t *v;
    json_array_foreach(ranks, i, v) total += json_is_string(v) ? json_string_length(v) : 0;
    json_array_foreach(special, i, v) total += MAX_SPECIAL_NAME;
    t->bytes = malloc(total + 1);
    t->start = malloc(sizeof *t->start * ((size_t)t->vocab + 1));
    if (!t->bytes || !t->start) return nc_fail(err, NC_E_INTERNAL, "out of memory for a tokenizer");
    size_t k = 0;
    json_array_foreach(ranks, i, v) {
        const char *s = json_string_value(v);
        long n = s ? b64_decode(s, t->bytes + k) : -1;
        if (n <= 0 || n > NC_BPE_MAX_TOKEN)
            return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: ranks[%zu] is not the base64 of 1 to %d bytes", i,
                           NC_BPE_MAX_TOKEN);
        t->start[i] = k;
        k += (size_t)n;
    }
    json_array_foreach(special, i, v) {
        const char *name = json_string_value(json_object_get(v, "name"));
        json_t *id = json_object_get(v, "id");
        size_t n = name ? strlen(name) : 0;
        if (n == 0 || n >= MAX_SPECIAL_NAME || !json_is_integer(id) || json_integer_value(id) != t->ranks + (json_int_t)i)
            return nc_fail(err, NC_E_BAD_REQUEST,
                           "tokenizer: special[%zu] must be {\"name\": 1 to %d bytes, \"id\": %d}", i,
                           MAX_SPECIAL_NAME - 1, t->ranks + (int)i);
        t->start[t->ranks + i] = k;
        memcpy(t->bytes + k, name, n);
        k += n;
    }
    t->start[t->vocab] = k;
    return 0;
}

/* The rank map: every mergeable token once, every single byte among them. */
static int index_ranks(nc_bpe *t, nc_error *err) {
    t->cap = 1;
    while (t->cap < 2u * (uint32_t)t->ranks) t->cap <<= 1;
    t->slots = malloc(sizeof *t->slots * t->cap);
    if (!t->slots) return nc_fail(err, NC_E_INTERNAL, "out of memory for a tokenizer");
    memset(t->slots, 0xff, sizeof *t->slots * t->cap);
    for (int id = 0; id < t->ranks; id++) {
        int32_t *s = slot(t, t->bytes + t->start[id], t->start[id + 1] - t->start[id]);
        if (*s >= 0) return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: ranks %d and %d are the same bytes", *s, id);
        *s = id;
    }
    for (int b = 0; b < 256; b++) {
        uint8_t byte = (uint8_t)b;
        if (rank_of(t, &byte, 1) == NO_RANK)
            return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: byte 0x%02x is no token (byte-level BPE needs all 256)", b);
    }
    return 0;
}

/* token_bytes: each mergeable token's length, 0 for the special tokens (upstream's token_bytes.pt). */
static int load_token_bytes(nc_bpe *t, json_t *tb, nc_error *err) {
    if (json_array_size(tb) != (size_t)t->vocab)
        return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: \"token_bytes\" must list %d counts", t->vocab);
    t->token_bytes = malloc(sizeof *t->token_bytes * (size_t)t->vocab);
    if (!t->token_bytes) return nc_fail(err, NC_E_INTERNAL, "out of memory for a tokenizer");
    for (int id = 0; id < t->vocab; id++) {
        json_t *v = json_array_get(tb, (size_t)id);
        json_int_t want = id < t->ranks ? (json_int_t)(t->start[id + 1] - t->start[id]) : 0;
        if (!json_is_integer(v) || json_integer_value(v) != want)
            return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: token_bytes[%d] must be %lld", id, (long long)want);
        t->token_bytes[id] = (int32_t)want;
    }
    return 0;
}

static int load(nc_bpe *t, json_t *doc, nc_error *err) {
    const char *format = json_string_value(json_object_get(doc, "format"));
    if (!format || strcmp(format, "nanochat-bpe") != 0)
        return nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: \"format\" is not \"nanochat-bpe\"");
    if (json_integer_value(json_object_get(doc, "version")) != 1)
        return nc_fail(err, NC_E_UNSUPPORTED_VERSION, "tokenizer: only version 1 is supported");
    json_t *ranks = json_object_get(doc, "ranks"), *special = json_object_get(doc, "special");
    size_t nr = json_array_size(ranks), ns = json_array_size(special);
    if (!json_is_array(ranks) || !json_is_array(special) || nr < 256 || nr + ns > NC_BPE_MAX_VOCAB)
        return nc_fail(err, NC_E_BAD_REQUEST,
                       "tokenizer: \"ranks\" (at least 256) and \"special\" must be arrays of %d tokens at most",
                       NC_BPE_MAX_VOCAB);
    t->ranks = (int)nr;
    t->vocab = (int)(nr + ns);
    if (compile(t, doc, err) || load_tokens(t, ranks, special, err) || index_ranks(t, err)) return -1;
    return load_token_bytes(t, json_object_get(doc, "token_bytes"), err);
}

/* A bound on the values a JSON text holds (commas and openings outside
 * strings, plus one), counted from its bytes: what parsing it would build. */
static size_t json_values(const char *s, size_t n) {
    size_t values = 1;
    bool in_string = false;
    for (size_t i = 0; i < n; i++) {
        if (in_string) {
            if (s[i] == '\\') i++;
            else if (s[i] == '"') in_string = false;
        } else if (s[i] == '"') {
            in_string = true;
        } else if (s[i] == ',' || s[i] == '[' || s[i] == '{') {
            values++;
        }
    }
    return values;
}

nc_bpe *nc_bpe_parse(const char *text, size_t len, nc_error *err) {
    if (json_values(text, len) > 3 * (size_t)NC_BPE_MAX_VOCAB) { /* ranks and token_bytes: 2 a token */
        nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: more JSON values than a vocabulary of %d tokens has", NC_BPE_MAX_VOCAB);
        return NULL;
    }
    json_error_t je;
    json_t *doc = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!json_is_object(doc)) {
        json_decref(doc);
        nc_fail(err, NC_E_BAD_REQUEST, "tokenizer: not a JSON object (%s)", je.text);
        return NULL;
    }
    nc_bpe *t = calloc(1, sizeof *t);
    int rc = t ? load(t, doc, err) : nc_fail(err, NC_E_INTERNAL, "out of memory for a tokenizer");
    json_decref(doc);
    if (rc == 0) return t;
    nc_bpe_free(t);
    return NULL;
}

int nc_bpe_vocab(const nc_bpe *t) { return t->vocab; }

int nc_bpe_longest(const nc_bpe *t) {
    size_t longest = 0;
    for (int id = 0; id < t->vocab; id++)
        if (t->start[id + 1] - t->start[id] > longest) longest = t->start[id + 1] - t->start[id];
    return (int)longest;
}

int nc_bpe_special(const nc_bpe *t, const char *name) {
    for (int id = t->ranks; id < t->vocab; id++)
        if (same(t, id, (const uint8_t *)name, strlen(name))) return id;
    return -1;
}

const uint8_t *nc_bpe_bytes(const nc_bpe *t, int id, size_t *len) {
    if (id < 0 || id >= t->vocab) return NULL;
    *len = t->start[id + 1] - t->start[id];
    return t->bytes + t->start[id];
}

int nc_bpe_token_bytes(const nc_bpe *t, int id) { return id >= 0 && id < t->vocab ? t->token_bytes[id] : 0; }

/* ---- encoding ------------------------------------------------------------------------------ */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

typedef struct id_list {
    int32_t **ids;
    size_t *count, *cap;
} id_list;

static bool push(id_list *l, uint32_t id) {
    if (*l->count == *l->cap) {
        size_t cap = *l->cap ? 2 * *l->cap : 256;
        int32_t *p = realloc(*l->ids, sizeof *p * cap);
        if (!p) return false;
        *l->ids = p, *l->cap = cap;
    }
    (*l->ids)[(*l->count)++] = (int32_t)id;
    return true;
}

/* A piece's parts while it is merged: a list of parts, each named by the
 * byte it starts at, with the rank of the pair it starts (itself and the
 * next part) and a heap of (rank, start) keys, stale ones skipped. */
typedef struct parts {
    const nc_bpe *t;
    const uint8_t *p;
    size_t n;
    size_t *next;    /* (n + 1) the next part's start (n: the end) */
    size_t *prev;    /* (n + 1) the previous part's start */
    uint32_t *rank;  /* (n + 1) the rank of the pair starting here (NO_RANK: none, or merged away) */
    uint64_t *heap;  /* rank << 32 | start, a binary min-heap */
    size_t heap_n, heap_cap;
} parts;

static void heap_push(parts *q, uint32_t rank, size_t start) {
    if (rank == NO_RANK) return;
    if (q->heap_n == q->heap_cap) q->heap = nc_xrealloc(q->heap, sizeof *q->heap * (q->heap_cap = 2 * q->heap_cap + 16));
    size_t i = q->heap_n++;
    uint64_t key = (uint64_t)rank << 32 | start;
    for (; i > 0 && q->heap[(i - 1) / 2] > key; i = (i - 1) / 2) q->heap[i] = q->heap[(i - 1) / 2];
    q->heap[i] = key;
}

static uint64_t heap_pop(parts *q) {
    uint64_t top = q->heap[0], last = q->heap[--q->heap_n];
    size_t i = 0;
    for (size_t c; (c = 2 * i + 1) < q->heap_n; i = c) {
        if (c + 1 < q->heap_n && q->heap[c + 1] < q->heap[c]) c++;
        if (q->heap[c] >= last) break;
        q->heap[i] = q->heap[c];
    }
    q->heap[i] = last;
    return top;
}

/* Sets and queues the rank of the pair starting at part s. */
static void rank_pair(parts *q, size_t s) {
    size_t mid = q->next[s], end = mid < q->n ? q->next[mid] : q->n;
    q->rank[s] = mid < q->n ? rank_of(q->t, q->p + s, end - s) : NO_RANK;
    heap_push(q, q->rank[s], s);
}

/* tiktoken's byte_pair_merge of piece p (n bytes, not itself a token): the
 * lowest-ranked adjacent pair merged first, the leftmost of equal ranks;
 * O(n log n) with the heap, so that a long piece (a megabyte of one letter)
 * cannot stall the daemon. */
static bool merge(const nc_bpe *t, const uint8_t *p, size_t n, id_list *out) {
    parts q = {t, p, n, nc_xmalloc(sizeof(size_t) * (n + 1)), nc_xmalloc(sizeof(size_t) * (n + 1)),
               nc_xmalloc(sizeof(uint32_t) * (n + 1)), NULL, 0, 0};
    for (size_t i = 0; i <= n; i++) q.next[i] = i + 1, q.prev[i] = i - 1;
    for (size_t i = 0; i < n; i++) rank_pair(&q, i);
    while (q.heap_n) {
        uint64_t key = heap_pop(&q);
        size_t s = (size_t)(key & 0xffffffffu);
        if (q.rank[s] != (uint32_t)(key >> 32)) continue; /* stale: the pair changed since */
        size_t gone = q.next[s];                         /* s absorbs the next part */
        q.next[s] = q.next[gone];
        if (q.next[s] < n) q.prev[q.next[s]] = s;
        q.rank[gone] = NO_RANK;
        rank_pair(&q, s);
        if (s > 0) rank_pair(&q, q.prev[s]);
    }
    bool ok = true;
    for (size_t s = 0; ok && s < n; s = q.next[s]) ok = push(out, rank_of(t, p + s, q.next[s] - s));
    free(q.next), free(q.prev), free(q.rank), free(q.heap);
    return ok;
}

int nc_bpe_encode(const nc_bpe *t, const char *text, size_t n, int32_t **ids, size_t *count, size_t *cap,
                  const nc_stop *stop, nc_error *err) {
    size_t len;
    char *s = nc_utf8_repair(text, n, &len);
    pcre2_match_data *md = s ? pcre2_match_data_create_from_pattern(t->re, NULL) : NULL;
    id_list out = {ids, count, cap};
    int rc = md ? 0 : PCRE2_ERROR_NOMEMORY; /* a PCRE2 error, 1: a piece too long, 2: stopped */
    size_t at = 0;
    double polled = now_s() - NC_BPE_POLL_S; /* the first poll at once */
    /* One position a call (the pattern is anchored), in turn: the leftmost match tiktoken's
     * find_iter takes, each call bounded by the match limit (which an unanchored search resets at
     * every start it tries, so a forged pattern could run one call for hours). */
    while (rc == 0 && at < len) {
        if (stop && now_s() - polled > NC_BPE_POLL_S) {
            polled = now_s();
            if (stop->fn(stop->ctx)) {
                rc = 2;
                break;
            }
        }
        int m = pcre2_match(t->re, (PCRE2_SPTR)s, len, at, PCRE2_NO_UTF_CHECK, md, t->limits);
        if (m < 0 && m != PCRE2_ERROR_NOMATCH) { /* past PCRE2's limits (a forged pattern backtracking without end) */
            rc = m;
            break;
        }
        const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
        size_t from = at, to = m < 0 ? at : ov[1];
        if (to == from) { /* no match here (tiktoken skips the character), or an empty one: on by a character */
            for (at = at + 1; at < len && ((unsigned char)s[at] & 0xC0) == 0x80; at++) {}
            continue;
        }
        if (to - from > UINT32_MAX) { /* merge() keys parts by a 32-bit start */
            rc = 1;
            break;
        }
        const uint8_t *piece = (const uint8_t *)s + from;
        uint32_t whole = rank_of(t, piece, to - from);
        if (!(whole != NO_RANK ? push(&out, whole) : merge(t, piece, to - from, &out))) rc = PCRE2_ERROR_NOMEMORY;
        at = to;
    }
    pcre2_match_data_free(md);
    free(s);
    if (rc == 0) return 0;
    if (rc == 1) return nc_fail(err, NC_E_BAD_REQUEST, "a piece of the text is over 4 GiB");
    if (rc == 2) return nc_fail(err, NC_E_CANCELLED, "tokenizing cancelled after %zu of %zu bytes", at, len);
    if (rc == PCRE2_ERROR_NOMEMORY) return nc_fail(err, NC_E_INTERNAL, "out of memory encoding %zu bytes", n);
    PCRE2_UCHAR why[256];
    pcre2_get_error_message(rc, why, sizeof why);
    return nc_fail(err, NC_E_BAD_REQUEST, "the tokenizer's pattern fails at byte %zu (of the text as repaired): %s", at,
                   (const char *)why);
}
