/* args.h: the typed argument structs requests parse into, one per command
 * (schema.c holds their schema: names, types, defaults, bounds and help). */
#ifndef NC_ARGS_H
#define NC_ARGS_H

#include "schema.h"

typedef char nc_str[NC_ARG_STR_MAX];

typedef struct nc_train_cfg {
    /* what to train */
    nc_str mode;           /* scalar | tensor */
    nc_str model_kind;     /* bigram | mini-gpt | gpt */
    nc_str device;         /* auto | cpu | cuda */
    nc_str style;          /* classic | futuristic */
    nc_str data;           /* corpus path; "" = the daemon's default */
    int64_t steps;
    int64_t batch_size;    /* 0 = the model's default */
    int64_t seq_len;       /* 0 = the model's default */
    int64_t seed;
    bool tie_lm_head;
    bool input_rmsnorm;
    bool deterministic;
    /* optimizer for bigram and mini-gpt */
    nc_str optimizer;      /* sgd | adamw (gpt: always muon+adamw) */
    double lr;             /* 0 = the model's default */
    double weight_decay;   /* adamw decay; for gpt, Muon's cautious decay */
    double beta1, beta2, eps;
    /* gpt architecture (upstream nanochat) */
    int64_t depth;
    int64_t aspect_ratio;
    int64_t head_dim;
    nc_str window_pattern;
    /* gpt optimizer and schedules (upstream base_train) */
    double embedding_lr, unembedding_lr, matrix_lr, scalar_lr;
    int64_t warmup_steps;
    double warmdown_ratio, final_lr_frac;
    nc_str batch_scaling;  /* base_train | none */
    /* logging, evaluation, checkpoints */
    int64_t log_every;
    int64_t eval_every;    /* 0 = only at the end */
    int64_t eval_windows;  /* 0 = the model's default */
    int64_t checkpoint_every;
    nc_str checkpoint;     /* path of the run's checkpoint; "" = <run-id>.ckpt */
    nc_str resume;         /* checkpoint to continue from; "" = fresh start */
    nc_str run_id;         /* "" = generated */
} nc_train_cfg;

typedef struct nc_sample_cfg {
    nc_str prompt;
    int64_t max_new_tokens;
    double temperature;
    int64_t top_k;             /* 0 = off */
    int64_t seed;
    int64_t max_prompt_tokens; /* 0 = the model's limit */
} nc_sample_cfg;

typedef struct nc_eval_cfg {
    int64_t windows; /* 0 = the model's default */
    nc_str device;   /* auto: where the model lives | cpu: an fp32 cpu copy */
} nc_eval_cfg;

typedef struct nc_checkpoint_cfg {
    nc_str action; /* save | load | list | export | import */
    nc_str path;   /* "" = the resident model's default */
} nc_checkpoint_cfg;

typedef struct nc_ablate_cfg {
    nc_str mode;
    nc_str model_kind;
    nc_str style;
    int64_t steps;
    int64_t seed;
    int64_t batch_size;
    double lr;
    nc_str optimizer;
    int64_t eval_windows;
} nc_ablate_cfg;

typedef struct nc_empty_cfg {
    char unused;
} nc_empty_cfg;

#endif
