/* utf8.c: UTF-8 decoding (checked) and encoding. */
#include "utf8.h"

#include <stdlib.h>

int nc_utf8_len(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

int nc_utf8_put(char *b, uint32_t cp) {
    int n = nc_utf8_len(cp);
    if (n == 1) b[0] = (char)cp;
    else if (n == 2) { b[0] = (char)(0xC0 | cp >> 6); b[1] = (char)(0x80 | (cp & 0x3F)); }
    else if (n == 3) { b[0] = (char)(0xE0 | cp >> 12); b[1] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[2] = (char)(0x80 | (cp & 0x3F)); }
    else { b[0] = (char)(0xF0 | cp >> 18); b[1] = (char)(0x80 | ((cp >> 12) & 0x3F)); b[2] = (char)(0x80 | ((cp >> 6) & 0x3F)); b[3] = (char)(0x80 | (cp & 0x3F)); }
    return n;
}

/* Decodes one code point at s (len bytes left); returns its length or 0 if invalid. */
static int utf8_next(const unsigned char *s, size_t len, uint32_t *cp) {
    if (s[0] < 0x80) { *cp = s[0]; return 1; }
    int n = (s[0] & 0xE0) == 0xC0 ? 2 : (s[0] & 0xF0) == 0xE0 ? 3 : (s[0] & 0xF8) == 0xF0 ? 4 : 0;
    if (n == 0 || (size_t)n > len) return 0;
    uint32_t c = s[0] & (0x7F >> n);
    for (int i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        c = c << 6 | (s[i] & 0x3F);
    }
    static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
    if (c < min_cp[n] || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    *cp = c;
    return n;
}

int nc_utf8_decode(const char *s, size_t len, uint32_t **out, size_t *n, nc_error *err) {
    uint32_t *cps = malloc((len + 1) * sizeof *cps);
    if (!cps) return nc_fail(err, NC_E_INTERNAL, "out of memory decoding %zu bytes", len);
    size_t k = 0;
    for (size_t i = 0; i < len;) {
        int m = utf8_next((const unsigned char *)s + i, len - i, &cps[k]);
        if (m == 0) {
            free(cps);
            return nc_fail(err, NC_E_BAD_REQUEST, "invalid UTF-8 at byte %zu", i);
        }
        i += (size_t)m;
        k++;
    }
    *out = cps;
    *n = k;
    return 0;
}

size_t nc_utf8_complete(const char *s, size_t n) {
    size_t start = n; /* the last lead byte within 4 bytes of the end */
    while (start > 0 && n - start < 4 && ((unsigned char)s[start - 1] & 0xC0) == 0x80) start--;
    if (start == 0) return n;
    unsigned char lead = (unsigned char)s[start - 1];
    size_t need = lead < 0x80 ? 1 : (lead & 0xE0) == 0xC0 ? 2 : (lead & 0xF0) == 0xE0 ? 3 : (lead & 0xF8) == 0xF0 ? 4 : 1;
    return n - (start - 1) >= need ? n : start - 1;
}

/* The bytes a character starting with lead continues with: the first
 * continuation's range (lo, hi), and how many follow in all (0: not a lead). */
static int continuation(unsigned char lead, unsigned char *lo, unsigned char *hi) {
    *lo = 0x80, *hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) return 1;
    if (lead == 0xE0) *lo = 0xA0;
    if (lead == 0xED) *hi = 0x9F;
    if (lead >= 0xE0 && lead <= 0xEF) return 2;
    if (lead == 0xF0) *lo = 0x90;
    if (lead == 0xF4) *hi = 0x8F;
    return lead >= 0xF0 && lead <= 0xF4 ? 3 : 0;
}

char *nc_utf8_repair(const char *s, size_t n, size_t *len) {
    const unsigned char *u = (const unsigned char *)s;
    char *out = malloc(3 * n + 1); /* each byte at most one U+FFFD */
    if (!out) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            out[k++] = (char)u[i++];
            continue;
        }
        unsigned char lo, hi;
        int need = continuation(u[i], &lo, &hi), got = 0;
        while (got < need && i + 1 + (size_t)got < n && u[i + 1 + got] >= lo && u[i + 1 + got] <= hi) {
            got++;
            lo = 0x80, hi = 0xBF; /* only the first continuation has a narrower range */
        }
        if (need > 0 && got == need) {
            for (int j = 0; j <= need; j++) out[k++] = (char)u[i + (size_t)j];
        } else {
            k += (size_t)nc_utf8_put(out + k, 0xFFFD);
        }
        i += 1 + (size_t)got;
    }
    *len = k;
    return out;
}
