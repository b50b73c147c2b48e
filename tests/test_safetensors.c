/* test_safetensors.c: the safetensors reader and writer: round trips with
 * metadata, reduced-precision dtypes, stable errors for malformed files, and
 * the GPT's weights file (upstream's names) moving a model exactly. */
#include "engine/store/checkpoint.h"
#include "engine/store/safetensors.h"

#include "trainutil.h"
#include "models/gpt/testing.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/nc_safetensors_XXXXXX";

static void path_of(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void write_raw(const char *path, const char *header, const void *data, size_t bytes) {
    FILE *f = fopen(path, "wb");
    uint64_t n = strlen(header);
    unsigned char len[8];
    for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
    fwrite(len, 1, 8, f);
    fwrite(header, 1, n, f);
    fwrite(data, 1, bytes, f);
    fclose(f);
}

START_TEST(round_trip) {
    char path[256];
    path_of(path, sizeof path, "a.safetensors");
    nc_tensor_list l = {0}, back = {0};
    nc_tensor *a = nc_tensors_add(&l, "layer.weight", 2, (int64_t[]){2, 3});
    for (int i = 0; i < 6; i++) a->data[i] = (float)i * 0.5f - 1.0f;
    nc_tensors_add(&l, "scalar", 1, (int64_t[]){1})->data[0] = 42.0f;
    json_t *meta = json_pack("{s:s}", "note", "hello");
    nc_error err = {0};
    ck_assert_int_eq(nc_safetensors_save(path, &l, meta, &err), 0);
    json_t *got = NULL;
    ck_assert_int_eq(nc_safetensors_load(path, INT64_MAX, &back, &got, &err), 0);
    ck_assert_str_eq(json_string_value(json_object_get(got, "note")), "hello");
    ck_assert_int_eq(back.count, 2);
    const nc_tensor *b = nc_tensors_get(&back, "layer.weight");
    ck_assert(b && b->ndim == 2 && b->shape[0] == 2 && b->shape[1] == 3);
    ck_assert_mem_eq(b->data, nc_tensors_get(&l, "layer.weight")->data, 6 * sizeof(float)); /* a moved */
    ck_assert_float_eq(nc_tensors_get(&back, "scalar")->data[0], 42.0f);
    json_decref(meta);
    json_decref(got);
    nc_tensors_free(&l);
    nc_tensors_free(&back);
}
END_TEST

START_TEST(reduced_precision) {
    char path[256];
    path_of(path, sizeof path, "b.safetensors");
    uint16_t data[4] = {0x3f80, 0xc040, 0x3c00, 0xc200}; /* bf16 1, -3; f16 1, -3 */
    write_raw(path, "{\"x\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]},"
                    "\"y\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[4,8]}}", data, sizeof data);
    nc_tensor_list l = {0};
    nc_error err = {0};
    ck_assert_int_eq(nc_safetensors_load(path, INT64_MAX, &l, NULL, &err), 0);
    const nc_tensor *x = nc_tensors_get(&l, "x"), *y = nc_tensors_get(&l, "y");
    ck_assert(x->data[0] == 1.0f && x->data[1] == -3.0f && y->data[0] == 1.0f && y->data[1] == -3.0f);
    nc_tensors_free(&l);
}
END_TEST

/* Each malformed file fails with its code and leaves the list as it was. */
START_TEST(malformed_files) {
    static const struct { const char *header; size_t bytes; } bad[] = {
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 8},  /* offsets past the data */
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,8]}}", 8},   /* shape and size disagree */
        {"{\"x\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}", 8},   /* unsupported dtype */
        {"{\"x\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,8]}}", 8},  /* negative dimension */
        {"{\"x\":", 8},                                                               /* not JSON */
    };
    char path[256];
    path_of(path, sizeof path, "bad.safetensors");
    float zeros[2] = {0};
    nc_tensor_list l = {0};
    nc_tensors_add(&l, "kept", 1, (int64_t[]){1});
    nc_error err = {0};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_raw(path, bad[i].header, zeros, bad[i].bytes);
        ck_assert_int_eq(nc_safetensors_load(path, INT64_MAX, &l, NULL, &err), -1);
        ck_assert_int_eq(err.code, NC_E_CHECKPOINT_CORRUPT);
        ck_assert_int_eq(l.count, 1);
    }
    FILE *f = fopen(path, "wb"); /* a header length beyond the file */
    fwrite("\xff\xff\xff\x00\x00\x00\x00\x00{}", 1, 10, f);
    fclose(f);
    ck_assert_int_eq(nc_safetensors_load(path, INT64_MAX, &l, NULL, &err), -1);
    ck_assert_int_eq(err.code, NC_E_CHECKPOINT_CORRUPT);
    path_of(path, sizeof path, "missing.safetensors");
    ck_assert_int_eq(nc_safetensors_load(path, INT64_MAX, &l, NULL, &err), -1);
    ck_assert_int_eq(err.code, NC_E_NOT_FOUND);
    nc_tensors_free(&l);
}
END_TEST

/* A GPT of `seed`, trained for a step in an engine of its own. */
static void gpt_engine(tu_engine *t, const char *tag, int seed) {
    tu_engine_open(t, tag, 0, 0);
    json_t *args = json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s}", "device", "cpu", "depth", 2,
                             "aspect_ratio", 16, "head_dim", 16, "seq_len", 32, "batch_size", 2, "steps", 1,
                             "eval_windows", 2, "data", t->corpus);
    json_object_set_new(args, "seed", json_integer(seed));
    json_decref(tu_engine_call(t, "train", args));
}

/* The logits of a fixed window from the resident GPT. */
static void logits_of(tu_engine *t, float *out, int V) {
    int32_t ids[32];
    for (int i = 0; i < 32; i++) ids[i] = (i * 7) % V;
    nc_batch batch = {ids, NULL, 1, 32};
    nc_error err;
    ck_assert_int_eq(nc_gpt_logits(t->e->res.model, &batch, out, &err), 0);
}

/* `checkpoint export` writes weights under upstream's names (padded
 * vocabulary, as upstream's state_dict), and `checkpoint import` of them
 * makes another model of the same config compute exactly the same. */
START_TEST(gpt_weights_move_a_model) {
    tu_engine a, b;
    gpt_engine(&a, "st-a", 1);
    gpt_engine(&b, "st-b", 2);
    char path[PATH_MAX + 32];
    snprintf(path, sizeof path, "%s/w.safetensors", a.checkpoints);
    json_decref(tu_engine_call(&a, "checkpoint", json_pack("{s:s, s:s}", "action", "export", "path", path)));
    json_decref(tu_engine_call(&b, "checkpoint", json_pack("{s:s, s:s}", "action", "import", "path", path)));
    int V = nc_tokenizer_size(&a.e->res.tok);
    float *la = malloc(sizeof(float) * 32 * (size_t)V), *lb = malloc(sizeof(float) * 32 * (size_t)V);
    logits_of(&a, la, V);
    logits_of(&b, lb, V);
    ck_assert_mem_eq(la, lb, sizeof(float) * 32 * (size_t)V);
    nc_tensor_list l = {0};
    json_t *meta = NULL;
    nc_error err;
    ck_assert_int_eq(nc_safetensors_load(path, INT64_MAX, &l, &meta, &err), 0);
    ck_assert(nc_tensors_get(&l, "transformer.h.1.attn.ve_gate.weight") && nc_tensors_get(&l, "value_embeds.1.weight"));
    ck_assert_int_eq(nc_tensors_get(&l, "lm_head.weight")->shape[0], 64); /* padded to 64, as upstream */
    ck_assert_str_eq(json_string_value(json_object_get(meta, "format")), "nanochat-c weights");
    /* a wrong shape or a foreign tensor is refused before anything changes */
    const nc_resident *r = &b.e->res;
    ((nc_tensor *)nc_tensors_get(&l, "lm_head.weight"))->shape[0] = 128;
    ck_assert_int_eq(nc_state_check(r->ops, &r->cfg.model, V, &l, false, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "wrong shape"));
    ((nc_tensor *)nc_tensors_get(&l, "lm_head.weight"))->shape[0] = 64;
    ck_assert_int_eq(nc_state_check(r->ops, &r->cfg.model, V, &l, false, &err), 0);
    nc_tensors_add(&l, "transformer.h.9.attn.c_q.weight", 2, (int64_t[]){32, 32});
    ck_assert_int_eq(nc_state_check(r->ops, &r->cfg.model, V, &l, false, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "not part of the gpt model"));
    json_decref(meta);
    nc_tensors_free(&l);
    free(la);
    free(lb);
    tu_engine_close(&a);
    tu_engine_close(&b);
}
END_TEST

int main(void) {
    if (!mkdtemp(dir)) return EXIT_FAILURE;
    Suite *s = suite_create("safetensors");
    tu_tcase(s, "format", round_trip, reduced_precision, malformed_files, gpt_weights_move_a_model);
    int status = tu_run(s);
    const char *files[] = {"a.safetensors", "b.safetensors", "bad.safetensors"};
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[256];
        path_of(path, sizeof path, files[i]);
        unlink(path);
    }
    rmdir(dir);
    return status;
}
