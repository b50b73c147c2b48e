/* utf8.h: UTF-8 to code points and back. A code point is a Unicode scalar
 * value: 0..0x10FFFF without the surrogates; encodings are the shortest. */
#ifndef NC_UTF8_H
#define NC_UTF8_H

#include "error.h"

#include <stddef.h>
#include <stdint.h>

/* Decodes UTF-8 into code points; fails with BadRequest on invalid UTF-8. */
int nc_utf8_decode(const char *s, size_t len, uint32_t **out, size_t *n, nc_error *err);
/* Bytes of the UTF-8 encoding of cp (1..4). */
int nc_utf8_len(uint32_t cp);
/* Appends the UTF-8 encoding of cp to buf (needs 4 bytes); returns its length. */
int nc_utf8_put(char *buf, uint32_t cp);
/* The length of s's (n bytes) longest prefix that does not end inside a
 * character: n, less an incomplete sequence at the end (text streamed token by
 * token may stop in the middle of a character). */
size_t nc_utf8_complete(const char *s, size_t n);
/* s (n bytes) as valid UTF-8, as Python's bytes.decode("utf-8",
 * errors="replace") makes it: each maximal invalid subsequence (a byte that
 * starts no character, or the valid start of a character cut short) becomes
 * U+FFFD. A malloc'd copy of *len bytes (NULL when out of memory). */
char *nc_utf8_repair(const char *s, size_t n, size_t *len);

#endif
