/* args.h: the typed argument structs requests parse into, one per command
 * (schema.c holds their schema: names, types, defaults, bounds and help). */
#ifndef NC_ARGS_H
#define NC_ARGS_H

#include "schema.h"

typedef char nc_str[NC_ARG_STR_MAX];

/* The choices of the schema's choice arguments: each an enum whose names
 * (NULL-terminated, in its order) are the wire's words. */
typedef enum nc_mode { NC_MODE_SCALAR, NC_MODE_TENSOR } nc_mode;
typedef enum nc_model_kind { NC_KIND_BIGRAM, NC_KIND_MINI_GPT, NC_KIND_GPT } nc_model_kind;
typedef enum nc_device { NC_DEVICE_AUTO, NC_DEVICE_CPU, NC_DEVICE_CUDA } nc_device;
typedef enum nc_style { NC_STYLE_CLASSIC, NC_STYLE_FUTURISTIC } nc_style;
typedef enum nc_optimizer { NC_OPTIMIZER_SGD, NC_OPTIMIZER_ADAMW } nc_optimizer;
typedef enum nc_batch_scaling { NC_SCALING_BASE_TRAIN, NC_SCALING_NONE } nc_batch_scaling;
typedef enum nc_ckpt_action { NC_CKPT_SAVE, NC_CKPT_LOAD, NC_CKPT_LIST, NC_CKPT_EXPORT, NC_CKPT_IMPORT } nc_ckpt_action;
_Static_assert(sizeof(nc_mode) == sizeof(int), "choice fields hold an int");
extern const char *const nc_mode_names[], *const nc_kind_names[], *const nc_device_names[], *const nc_style_names[],
    *const nc_optimizer_names[], *const nc_scaling_names[], *const nc_action_names[];

/* What a model is built and optimized from: the model section of a train
 * request (the models see this, never the run's knobs). */
typedef struct nc_model_cfg {
    int64_t batch_size;    /* 0 = the model's default */
    int64_t seq_len;       /* 0 = the model's default */
    int64_t seed;          /* base seed of the init (and the run's data) streams */
    bool deterministic;
    /* bigram and mini-gpt */
    bool tie_lm_head;
    bool input_rmsnorm;
    nc_optimizer optimizer; /* gpt: always muon+adamw */
    double lr;             /* 0 = the model's default */
    double weight_decay;   /* adamw decay; for gpt, Muon's cautious decay; -1 = the model's default */
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
    nc_batch_scaling batch_scaling;
} nc_model_cfg;

typedef struct nc_train_cfg {
    /* what to train, where, on what */
    nc_mode mode;
    nc_model_kind model_kind;
    nc_device device;
    nc_style style;
    nc_str data;           /* corpus path; "" = the daemon's default */
    nc_str tokenizer;      /* folder of a BPE tokenizer.json; "" = the corpus's characters */
    int64_t steps;
    nc_model_cfg model;
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
    int64_t num_samples;       /* decoded together: 1..NC_MAX_SAMPLES */
} nc_sample_cfg;
#define NC_MAX_SAMPLES 256

typedef struct nc_eval_cfg {
    int64_t windows; /* 0 = the model's default */
    nc_device device; /* auto: where the model lives | cpu: an fp32 cpu copy */
} nc_eval_cfg;

typedef struct nc_checkpoint_cfg {
    nc_ckpt_action action;
    nc_str path;   /* "" = the resident model's default */
} nc_checkpoint_cfg;

typedef struct nc_tokenize_cfg {
    nc_str text;      /* the text, or "" with file */
    nc_str file;      /* a UTF-8 file (at most NC_TOKENIZE_MAX_BYTES), or "" with text */
    nc_str tokenizer; /* a folder holding tokenizer.json; "" = the resident model's characters */
} nc_tokenize_cfg;
#define NC_TOKENIZE_MAX_BYTES (64 << 10)
#define NC_TOKENIZE_MAX_TOKENS 4096 /* a reply's arrays hold at most this many (the protocol's limit) */

typedef struct nc_ablate_cfg {
    nc_mode mode;
    nc_model_kind model_kind; /* bigram | mini-gpt */
    nc_style style;
    int64_t steps;
    int64_t seed;
    int64_t batch_size;
    double lr;
    nc_optimizer optimizer;
    int64_t eval_windows;
} nc_ablate_cfg;

typedef struct nc_empty_cfg {
    char unused;
} nc_empty_cfg;

#endif
