/* rng.h: deterministic random streams (xoshiro256**).
 *
 * Every code path owns a stream seeded with the base seed XOR a constant
 * unique to that path, so that adding draws to one path never shifts
 * another. Same seed, same bits, on every machine. */
#ifndef NC_RNG_H
#define NC_RNG_H

#include <stdint.h>

typedef struct nc_rng {
    uint64_t s[4];
} nc_rng;

/* One constant per code path. */
enum {
    NC_STREAM_INIT = 0x1a17c0de5eedULL,     /* parameter initialization */
    NC_STREAM_DATA = 0xda7a5a3b1e5ULL,      /* training batch windows */
    NC_STREAM_SAMPLE = 0x5a3b1e0f7e47ULL,   /* sampling */
    NC_STREAM_ABLATE = 0xab1a7e5eedULL,     /* ablation variant seeds */
};

void nc_rng_seed(nc_rng *r, uint64_t seed, uint64_t stream);
uint64_t nc_rng_next(nc_rng *r);
double nc_rng_uniform(nc_rng *r);            /* [0, 1) with 53 random bits */
uint64_t nc_rng_below(nc_rng *r, uint64_t n); /* uniform in [0, n), unbiased */
double nc_rng_normal(nc_rng *r);             /* standard normal (Box-Muller) */

#endif
