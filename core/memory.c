/* memory.c: allocations that abort with a message when memory is out. */
#include "memory.h"

#include <stdio.h>
#include <stdlib.h>

static void *checked(void *p, size_t bytes) {
    if (p || bytes == 0) return p;
    fprintf(stderr, "nanochatd: out of memory allocating %zu bytes\n", bytes);
    abort();
}

void *nc_xmalloc(size_t bytes) { return checked(malloc(bytes ? bytes : 1), bytes); }
void *nc_xcalloc(size_t n, size_t size) { return checked(calloc(n ? n : 1, size ? size : 1), n * size); }
void *nc_xrealloc(void *p, size_t bytes) { return checked(realloc(p, bytes ? bytes : 1), bytes); }
