/* vocab.c: the character vocabulary, encode and decode. */
#include "vocab.h"
#include "core/memory.h"

#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int nc_vocab_init(nc_vocab *v, const uint32_t *cps, size_t n) {
    uint32_t *sorted = malloc((n + 1) * sizeof *sorted);
    if (!sorted) return -1;
    memcpy(sorted, cps, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u32);
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (k == 0 || sorted[k - 1] != sorted[i]) sorted[k++] = sorted[i];
    v->size = (int)k;
    v->cps = sorted;
    return 0;
}

void nc_vocab_free(nc_vocab *v) {
    free(v->cps);
    v->cps = NULL;
    v->size = 0;
}

int nc_vocab_copy(nc_vocab *dst, const nc_vocab *src) {
    return nc_vocab_init(dst, src->cps, (size_t)src->size);
}

int nc_vocab_id(const nc_vocab *v, uint32_t cp) {
    int lo = 0, hi = v->size - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (v->cps[mid] == cp) return mid;
        if (v->cps[mid] < cp) lo = mid + 1;
        else hi = mid - 1;
    }
    return -1;
}

int nc_encode(const nc_vocab *v, const char *text, size_t len, int32_t **ids, size_t *count, size_t *cap,
              nc_error *err) {
    uint32_t *cps;
    size_t m;
    if (nc_utf8_decode(text, len, &cps, &m, err)) return -1;
    if (*count + m > *cap) {
        int32_t *grown = realloc(*ids, (*count + m + 1) * sizeof *grown);
        if (!grown) {
            free(cps);
            return nc_fail(err, NC_E_INTERNAL, "out of memory encoding %zu characters", m);
        }
        *ids = grown, *cap = *count + m + 1;
    }
    int32_t *out = *ids + *count;
    for (size_t i = 0; i < m; i++) {
        int id = nc_vocab_id(v, cps[i]);
        if (id < 0) {
            char ch[5] = {0};
            nc_utf8_put(ch, cps[i]);
            nc_fail(err, NC_E_UNKNOWN_CHARACTER, "character '%s' (U+%04X) at position %zu is not in the vocabulary",
                    cps[i] >= 0x20 ? ch : "?", cps[i], i);
            free(cps);
            return -1;
        }
        out[i] = id;
    }
    free(cps);
    *count += m;
    return 0;
}


