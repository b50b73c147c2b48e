/* adamw.c: the AdamW update, elementwise. */
#include "internal.h"

#include <math.h>

#define ADAMW_GRAIN 16384

typedef struct adamw_job {
    float *p, *m, *v;
    const float *g;
    const nc_adamw_hp *hp;
} adamw_job;

static void adamw_range(void *ctx, int64_t lo, int64_t hi) {
    adamw_job *j = ctx;
    nc_adamw_hp hp = *j->hp;
    float decay = 1.0f - hp.lr * hp.wd, step = hp.lr / hp.bias1;
    float w1 = 1.0f - hp.beta1, w2 = 1.0f - hp.beta2;
    for (int64_t i = lo; i < hi; i++) {
        float g = j->g[i];
        j->m[i] = nc_cpu_lerp(j->m[i], g, w1);
        j->v[i] = nc_cpu_lerp(j->v[i], g * g, w2);
        float denom = sqrtf(j->v[i] / hp.bias2) + hp.eps;
        j->p[i] = j->p[i] * decay - step * (j->m[i] / denom);
    }
}

void nc_cpu_adamw(nc_backend *be, float *p, const float *g, float *m, float *v, int64_t n,
                  const nc_adamw_hp *hp) {
    adamw_job j = {.p = p, .m = m, .v = v, .g = g, .hp = hp};
    nc_pool_for(nc_cpu_pool(be), n, ADAMW_GRAIN, adamw_range, &j);
}
