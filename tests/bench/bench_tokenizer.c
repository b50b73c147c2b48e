/* bench_tokenizer.c: nc-bench-tokenizer TOKENIZER_JSON TEXT_FILE [REPEATS]:
 * tokenizer/bpe.c's encoding speed on one core, the best of REPEATS (default
 * 5) encodings of the whole file: "<ids> ids, <MB/s> MB/s". scripts/
 * bench_tokenizer.py runs it beside tiktoken. */
#include "tokenizer/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static char *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    rewind(f);
    char *s = len >= 0 ? malloc((size_t)len + 1) : NULL;
    *n = s ? fread(s, 1, (size_t)len, f) : 0;
    fclose(f);
    return s;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: nc-bench-tokenizer TOKENIZER_JSON TEXT_FILE [REPEATS]\n");
        return 2;
    }
    size_t jn, tn;
    char *json = slurp(argv[1], &jn), *text = slurp(argv[2], &tn);
    nc_error err = {0};
    nc_bpe *t = json && text ? nc_bpe_parse(json, jn, &err) : NULL;
    if (!t) {
        fprintf(stderr, "nc-bench-tokenizer: %s\n", json && text ? err.message : "cannot read the files");
        return 1;
    }
    int repeats = argc > 3 ? atoi(argv[3]) : 5;
    int32_t *ids = NULL;
    size_t count = 0, cap = 0;
    double best = 1e30;
    for (int r = 0; r < repeats; r++) {
        count = 0;
        double t0 = now();
        if (nc_bpe_encode(t, text, tn, &ids, &count, &cap, NULL, &err)) {
            fprintf(stderr, "nc-bench-tokenizer: %s\n", err.message);
            return 1;
        }
        double dt = now() - t0;
        if (dt < best) best = dt;
    }
    printf("%zu ids, %.1f MB/s\n", count, (double)tn / best / 1e6);
    free(ids), free(json), free(text);
    nc_bpe_free(t);
    return 0;
}
