/* schema.c: the command schema and the table-driven argument parser.
 *
 * One table per command gives every argument's wire name, type, default,
 * bounds and help. The daemon validates requests with it, ncctl derives its
 * flags and --help from it, and run.json records every resolved value. */
#include "api.h"

#include <jansson.h>

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const nc_mode_names[] = {"scalar", "tensor", NULL};
const char *const nc_kind_names[] = {"bigram", "mini-gpt", "gpt", NULL};
const char *const nc_device_names[] = {"auto", "cpu", "cuda", NULL};
const char *const nc_style_names[] = {"classic", "futuristic", NULL};
const char *const nc_optimizer_names[] = {"sgd", "adamw", NULL};
const char *const nc_scaling_names[] = {"base_train", "none", NULL};
const char *const nc_action_names[] = {"save", "load", "list", "export", "import", NULL};
/* Choices that take the first names of an enum only. */
static const char *const eval_devices[] = {"auto", "cpu", NULL};          /* nc_device */
static const char *const ablate_kinds[] = {"bigram", "mini-gpt", NULL}; /* nc_model_kind */

#define ARG(st, field, type, def, choices, lo, hi, help) \
    { #field, type, def, choices, lo, hi, offsetof(st, field), help }
#define I64 9.2e18

#define T(f, ty, d, c, lo, hi, h) ARG(nc_train_cfg, f, ty, d, c, lo, hi, h)
#define M(f, ty, d, c, lo, hi, h) { #f, ty, d, c, lo, hi, offsetof(nc_train_cfg, model.f), h } /* nc_model_cfg */
static const nc_arg_spec train_args[] = {
    T(mode, NC_ARG_CHOICE, "tensor", nc_mode_names, 0, 0, "autograd on scalars or batched tensors"),
    T(model_kind, NC_ARG_CHOICE, "gpt", nc_kind_names, 0, 0, "model to train"),
    T(device, NC_ARG_CHOICE, "auto", nc_device_names, 0, 0, "backend for tensor models (auto: cuda when present)"),
    T(style, NC_ARG_CHOICE, "classic", nc_style_names, 0, 0, "corpus style (futuristic appends a built-in corpus)"),
    T(data, NC_ARG_STRING, "", NULL, 0, 0, "corpus: a UTF-8 file, or a folder of token shards (with tokenizer); empty: the daemon's default"),
    T(tokenizer, NC_ARG_STRING, "", NULL, 0, 0, "folder of a BPE tokenizer.json (scripts/tokenizer.py); empty: the corpus's characters"),
    T(steps, NC_ARG_INT, "500", NULL, 0, 1e9, "optimizer steps (0: report the baseline loss only)"),
    M(batch_size, NC_ARG_INT, "0", NULL, 0, 1e6, "sequences (pairs for bigram) per step; 0: model default"),
    M(seq_len, NC_ARG_INT, "0", NULL, 0, 65536, "context length; 0: model default"),
    M(seed, NC_ARG_INT, "1337", NULL, 0, I64, "base seed of every random stream"),
    M(tie_lm_head, NC_ARG_BOOL, "false", NULL, 0, 0, "share the token embedding with the output head (bigram, mini-gpt)"),
    M(input_rmsnorm, NC_ARG_BOOL, "false", NULL, 0, 0, "RMSNorm the input embedding (bigram, mini-gpt)"),
    M(deterministic, NC_ARG_BOOL, "false", NULL, 0, 0, "bit-identical GPU runs (CPU runs always are)"),
    M(optimizer, NC_ARG_CHOICE, "adamw", nc_optimizer_names, 0, 0, "optimizer for bigram and mini-gpt (gpt: Muon+AdamW)"),
    M(lr, NC_ARG_FLOAT, "0", NULL, 0, 1e6, "learning rate for bigram and mini-gpt; 0: model default"),
    M(weight_decay, NC_ARG_FLOAT, "-1", NULL, -1, 1e6, "AdamW decay (bigram, mini-gpt) or Muon cautious decay (gpt); -1: model default"),
    M(beta1, NC_ARG_FLOAT, "0.9", NULL, 0, 1, "AdamW beta1 (bigram, mini-gpt)"),
    M(beta2, NC_ARG_FLOAT, "0.999", NULL, 0, 1, "AdamW beta2 (bigram, mini-gpt)"),
    M(eps, NC_ARG_FLOAT, "1e-8", NULL, 0, 1, "AdamW epsilon (bigram, mini-gpt)"),
    M(depth, NC_ARG_INT, "6", NULL, 1, 256, "gpt: number of layers"),
    M(aspect_ratio, NC_ARG_INT, "64", NULL, 1, 4096, "gpt: n_embd = depth * aspect_ratio, rounded up to head_dim"),
    M(head_dim, NC_ARG_INT, "128", NULL, 2, 1024, "gpt: attention head dimension (even; at most 512 heads)"),
    M(window_pattern, NC_ARG_STRING, "L", NULL, 0, 0, "gpt: sliding windows tiled over layers (L full, S quarter; last layer L)"),
    M(embedding_lr, NC_ARG_FLOAT, "0.3", NULL, 0, 1e6, "gpt: AdamW lr of the token embedding"),
    M(unembedding_lr, NC_ARG_FLOAT, "0.008", NULL, 0, 1e6, "gpt: AdamW lr of lm_head"),
    M(matrix_lr, NC_ARG_FLOAT, "0.02", NULL, 0, 1e6, "gpt: Muon lr of the block matrices"),
    M(scalar_lr, NC_ARG_FLOAT, "0.5", NULL, 0, 1e6, "gpt: AdamW lr of the per-layer scalars"),
    M(warmup_steps, NC_ARG_INT, "40", NULL, 0, 1e9, "gpt: linear lr warmup steps"),
    M(warmdown_ratio, NC_ARG_FLOAT, "0.65", NULL, 0, 1, "gpt: fraction of steps in the final linear warmdown"),
    M(final_lr_frac, NC_ARG_FLOAT, "0.05", NULL, 0, 1, "gpt: lr multiplier at the end of warmdown"),
    M(batch_scaling, NC_ARG_CHOICE, "base_train", nc_scaling_names, 0, 0, "gpt: scale lrs and decay by batch size as base_train does, or use them as given"),
    T(log_every, NC_ARG_INT, "10", NULL, 1, 1e9, "steps between progress events and metrics.jsonl lines"),
    T(eval_every, NC_ARG_INT, "0", NULL, 0, 1e9, "steps between evals (0: at the start and the end only)"),
    T(eval_windows, NC_ARG_INT, "0", NULL, 0, 1e7, "validation windows per eval; 0: model default"),
    T(checkpoint_every, NC_ARG_INT, "0", NULL, 0, 1e9, "steps between checkpoints (0: at the end only); eval runs on the reloaded file"),
    T(checkpoint, NC_ARG_STRING, "", NULL, 0, 0, "checkpoint path (relative: in the checkpoint dir); empty: <run-id>.ckpt"),
    T(resume, NC_ARG_STRING, "", NULL, 0, 0, "checkpoint to continue from (its config wins; steps is the new total)"),
    T(run_id, NC_ARG_STRING, "", NULL, 0, 0, "name of the run's artifact folder; empty: generated"),
};
#undef T
#undef M

#define S(f, ty, d, c, lo, hi, h) ARG(nc_sample_cfg, f, ty, d, c, lo, hi, h)
static const nc_arg_spec sample_args[] = {
    S(prompt, NC_ARG_STRING, "ROMEO:", NULL, 0, 0, "text the sample starts with"),
    S(max_new_tokens, NC_ARG_INT, "200", NULL, 0, 1e6, "characters to generate after the prompt"),
    S(temperature, NC_ARG_FLOAT, "0.8", NULL, -INFINITY, INFINITY, "softmax temperature (> 0)"),
    S(top_k, NC_ARG_INT, "0", NULL, 0, 1e6, "sample among the k most likely (0: all)"),
    S(seed, NC_ARG_INT, "42", NULL, 0, I64, "sampling seed"),
    S(max_prompt_tokens, NC_ARG_INT, "0", NULL, 0, 1e7, "longest prompt accepted; 0: the model's context limit"),
    S(num_samples, NC_ARG_INT, "1", NULL, 1, NC_MAX_SAMPLES, "samples decoded together from the prompt, each with its own random stream"),
};
#undef S

static const nc_arg_spec eval_args[] = {
    ARG(nc_eval_cfg, windows, NC_ARG_INT, "0", NULL, 0, 1e7, "validation windows (0: model default)"),
    ARG(nc_eval_cfg, device, NC_ARG_CHOICE, "auto", eval_devices, 0, 0,
        "auto: evaluate where the model lives; cpu: on an fp32 cpu copy of its weights (exact, for cross-checks)"),
};

static const nc_arg_spec checkpoint_args[] = {
    ARG(nc_checkpoint_cfg, action, NC_ARG_CHOICE, "list", nc_action_names, 0, 0,
        "save/load a full checkpoint, list them, or export/import gpt weights as safetensors (upstream names)"),
    ARG(nc_checkpoint_cfg, path, NC_ARG_STRING, "", NULL, 0, 0, "file (relative: in the checkpoint dir); empty: the model's default"),
};

static const nc_arg_spec tokenize_args[] = {
    ARG(nc_tokenize_cfg, text, NC_ARG_STRING, "", NULL, 0, 0, "text to tokenize (or --file)"),
    ARG(nc_tokenize_cfg, file, NC_ARG_STRING, "", NULL, 0, 0, "UTF-8 file to tokenize instead (at most 64 KiB, in the daemon's folders)"),
    ARG(nc_tokenize_cfg, tokenizer, NC_ARG_STRING, "", NULL, 0, 0,
        "folder holding a tokenizer.json (scripts/tokenizer.py); empty: the resident model's tokenizer"),
};

#define A(f, ty, d, c, lo, hi, h) ARG(nc_ablate_cfg, f, ty, d, c, lo, hi, h)
static const nc_arg_spec ablate_args[] = {
    A(mode, NC_ARG_CHOICE, "scalar", nc_mode_names, 0, 0, "autograd on scalars or batched tensors"),
    A(model_kind, NC_ARG_CHOICE, "bigram", ablate_kinds, 0, 0, "model of the four variants"),
    A(style, NC_ARG_CHOICE, "classic", nc_style_names, 0, 0, "corpus style"),
    A(steps, NC_ARG_INT, "200", NULL, 0, 1e9, "steps per variant"),
    A(seed, NC_ARG_INT, "1337", NULL, 0, I64, "base seed"),
    A(batch_size, NC_ARG_INT, "0", NULL, 0, 1e6, "batch size; 0: model default"),
    A(lr, NC_ARG_FLOAT, "0", NULL, 0, 1e6, "learning rate; 0: model default"),
    A(optimizer, NC_ARG_CHOICE, "adamw", nc_optimizer_names, 0, 0, "optimizer"),
    A(eval_windows, NC_ARG_INT, "0", NULL, 0, 1e7, "validation windows per eval; 0: model default"),
};
#undef A

#define CMD(id, name, summary, engine, lr, args, st) \
    [id] = {id, name, summary, engine, lr, args, sizeof(args) / sizeof(args[0]), sizeof(st)}
#define CMD0(id, name, summary) [id] = {id, name, summary, false, false, NULL, 0, sizeof(nc_empty_cfg)}
static const nc_command_spec commands[NC_CMD_COUNT] = {
    CMD0(NC_CMD_STATUS, "status", "report the daemon, the running job and the resident model"),
    CMD(NC_CMD_TRAIN, "train", "train a model (streams progress and eval events)", true, true, train_args, nc_train_cfg),
    CMD(NC_CMD_SAMPLE, "sample", "generate text from the resident model", true, false, sample_args, nc_sample_cfg),
    CMD(NC_CMD_EVAL, "eval", "validation loss and bits per byte of the resident model", true, false, eval_args,
        nc_eval_cfg),
    CMD(NC_CMD_CHECKPOINT, "checkpoint", "save, load, list checkpoints; export or import gpt weights (safetensors)",
        true, false, checkpoint_args, nc_checkpoint_cfg),
    CMD(NC_CMD_ABLATE, "ablate", "train the four tie/rmsnorm variants and write CSV and JSONL", true, true,
        ablate_args, nc_ablate_cfg),
    CMD(NC_CMD_TOKENIZE, "tokenize", "token ids of a text, and each token's bytes", true, false, tokenize_args,
        nc_tokenize_cfg),
    CMD0(NC_CMD_CANCEL, "cancel", "cancel the running job at its next step"),
    CMD0(NC_CMD_SHUTDOWN, "shutdown", "stop at the next step boundary, save the resident model, exit"),
};

const nc_command_spec *nc_commands(size_t *count) {
    *count = sizeof(commands) / sizeof(commands[0]);
    return commands;
}

const nc_command_spec *nc_command_find(const char *name) {
    size_t n;
    const nc_command_spec *all = nc_commands(&n);
    for (size_t i = 0; i < n; i++)
        if (strcmp(all[i].name, name) == 0) return &all[i];
    return NULL;
}

const nc_arg_spec *nc_arg_find(const nc_command_spec *cmd, const char *name) {
    for (size_t i = 0; i < cmd->nargs; i++)
        if (strcmp(cmd->args[i].name, name) == 0) return &cmd->args[i];
    return NULL;
}

static int choice_index(const char *const *choices, const char *s) {
    for (int i = 0; choices[i]; i++)
        if (strcmp(choices[i], s) == 0) return i;
    return -1;
}

void nc_choices_text(const nc_arg_spec *a, char *out, size_t n) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; a->choices[i] && used < n; i++)
        used += (size_t)snprintf(out + used, n - used, "%s%s", i ? "|" : "", a->choices[i]);
}

/* Stores one JSON value into the field; fails naming the field. */
static int store(const nc_arg_spec *a, json_t *v, void *cfg, nc_error *err) {
    char *field = (char *)cfg + a->offset;
    switch (a->type) {
    case NC_ARG_INT: {
        double d;
        if (json_is_integer(v)) d = (double)json_integer_value(v);
        else if (json_is_real(v) && floor(json_real_value(v)) == json_real_value(v)) d = json_real_value(v);
        else return nc_fail(err, NC_E_BAD_REQUEST, "args.%s must be an integer", a->name);
        if (d < a->min || d > a->max)
            return nc_fail(err, NC_E_BAD_REQUEST, "args.%s must be between %.0f and %.0f", a->name, a->min, a->max);
        *(int64_t *)field = json_is_integer(v) ? json_integer_value(v) : (int64_t)d;
        return 0;
    }
    case NC_ARG_FLOAT: {
        double d;
        if (json_is_number(v)) d = json_number_value(v);
        else if (!nc_json_nonfinite(v, &d))
            return nc_fail(err, NC_E_BAD_REQUEST, "args.%s must be a number", a->name);
        if (isfinite(a->min) && isfinite(a->max) && !(d >= a->min && d <= a->max))
            return nc_fail(err, NC_E_BAD_REQUEST, "args.%s must be between %g and %g", a->name, a->min, a->max);
        *(double *)field = d;
        return 0;
    }
    case NC_ARG_BOOL:
        if (!json_is_boolean(v)) return nc_fail(err, NC_E_BAD_REQUEST, "args.%s must be a boolean", a->name);
        *(bool *)field = json_is_true(v);
        return 0;
    case NC_ARG_STRING:
    case NC_ARG_CHOICE: {
        if (!json_is_string(v)) return nc_fail(err, NC_E_BAD_REQUEST, "args.%s must be a string", a->name);
        const char *s = json_string_value(v);
        size_t len = json_string_length(v);
        if (len >= NC_ARG_STR_MAX || strlen(s) != len)
            return nc_fail(err, NC_E_BAD_REQUEST, "args.%s is too long or holds a NUL byte (max %d bytes)", a->name, NC_ARG_STR_MAX - 1);
        if (a->type == NC_ARG_STRING) {
            memcpy(field, s, len + 1);
            return 0;
        }
        int index = choice_index(a->choices, s);
        if (index >= 0) {
            *(int *)field = index;
            return 0;
        }
        char names[128];
        nc_choices_text(a, names, sizeof names);
        return nc_fail(err, NC_E_BAD_REQUEST, "args.%s must be one of %s", a->name, names);
    }
    }
    return nc_fail(err, NC_E_INTERNAL, "args.%s has an unknown type", a->name);
}

json_t *nc_json_number(double v) {
    if (isfinite(v)) return json_real(v);
    return json_string(isnan(v) ? "nan" : v > 0 ? "inf" : "-inf");
}

json_t *nc_json_measured(double v) { return isnan(v) ? json_null() : nc_json_number(v); }

bool nc_json_nonfinite(json_t *v, double *out) {
    const char *s = json_string_value(v);
    if (!s) return false;
    if (!strcmp(s, "nan")) *out = NAN;
    else if (!strcmp(s, "inf")) *out = INFINITY;
    else if (!strcmp(s, "-inf")) *out = -INFINITY;
    else return false;
    return true;
}

json_t *nc_arg_value_from_text(const nc_arg_spec *a, const char *text, nc_error *err) {
    char *end = NULL;
    errno = 0;
    switch (a->type) {
    case NC_ARG_INT: {
        long long v = strtoll(text, &end, 10);
        if (*text == '\0' || *end != '\0' || errno) break;
        return json_integer(v);
    }
    case NC_ARG_FLOAT: {
        double v = strtod(text, &end);
        if (*text == '\0' || *end != '\0' || (errno && isfinite(v))) break;
        return nc_json_number(v);
    }
    case NC_ARG_BOOL:
        if (!strcmp(text, "true") || !strcmp(text, "1") || !strcmp(text, "yes")) return json_true();
        if (!strcmp(text, "false") || !strcmp(text, "0") || !strcmp(text, "no")) return json_false();
        break;
    case NC_ARG_STRING:
    case NC_ARG_CHOICE: {
        json_t *s = json_string(text);
        if (s) return s;
        nc_fail(err, NC_E_BAD_REQUEST, "%s is not valid UTF-8", a->name);
        return NULL;
    }
    }
    nc_fail(err, NC_E_BAD_REQUEST, "%s: cannot read '%s' as %s", a->name, text,
            a->type == NC_ARG_INT ? "an integer" : a->type == NC_ARG_FLOAT ? "a number" : "a boolean");
    return NULL;
}

int nc_args_parse(const nc_command_spec *cmd, json_t *args, void *cfg, nc_error *err) {
    memset(cfg, 0, cmd->cfg_size);
    for (size_t i = 0; i < cmd->nargs; i++) {
        json_t *v = nc_arg_value_from_text(&cmd->args[i], cmd->args[i].def, err);
        int rc = v ? store(&cmd->args[i], v, cfg, err) : -1;
        json_decref(v);
        if (rc) return nc_fail(err, NC_E_INTERNAL, "bad default for %s.%s", cmd->name, cmd->args[i].name);
    }
    if (args == NULL || json_is_null(args)) return 0;
    if (!json_is_object(args)) return nc_fail(err, NC_E_BAD_REQUEST, "args must be a map");
    const char *key;
    json_t *v;
    json_object_foreach(args, key, v) {
        const nc_arg_spec *a = nc_arg_find(cmd, key);
        if (!a) return nc_fail(err, NC_E_BAD_REQUEST, "args.%s is not an argument of %s", key, cmd->name);
        if (store(a, v, cfg, err)) return -1;
    }
    return 0;
}

json_t *nc_args_to_json(const nc_command_spec *cmd, const void *cfg) {
    json_t *o = json_object();
    for (size_t i = 0; i < cmd->nargs; i++) {
        const nc_arg_spec *a = &cmd->args[i];
        const char *field = (const char *)cfg + a->offset;
        json_t *v = NULL;
        switch (a->type) {
        case NC_ARG_INT: v = json_integer(*(const int64_t *)field); break;
        case NC_ARG_FLOAT: v = nc_json_number(*(const double *)field); break;
        case NC_ARG_BOOL: v = json_boolean(*(const bool *)field); break;
        case NC_ARG_STRING: v = json_string(field); break;
        case NC_ARG_CHOICE: v = json_string(a->choices[*(const int *)field]); break;
        }
        json_object_set_new(o, a->name, v);
    }
    return o;
}

bool nc_args_equal(const nc_command_spec *cmd, const void *a, const void *b) {
    json_t *ja = nc_args_to_json(cmd, a), *jb = nc_args_to_json(cmd, b);
    bool same = json_equal(ja, jb);
    json_decref(ja);
    json_decref(jb);
    return same;
}
