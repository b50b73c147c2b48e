/* test_gpt_determinism.c: same seed, same batches: bit-identical losses and
 * weights whatever the thread count (1, 2 or 3), under the
 * detected OpenBLAS core type and two others this CPU can run (each in a
 * process of its own: OpenBLAS picks its kernels when it loads); an exported
 * state resumes exactly; a non-finite loss leaves the weights at their last
 * good state. */
#include "test_gpt_common.h"

#include <cblas.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <unistd.h>

#define V 65
#define B 4
#define T 64
#define STEPS 2
/* n_embd 128 and 256 tokens: the block's matrix products are big enough to
 * be cut into slices (backend/cpu/gemm.c), so a slicing that followed the thread
 * count would show. */
#define ARGS "{\"depth\": 1, \"aspect_ratio\": 128, \"head_dim\": 32, \"seq_len\": 64, \"batch_size\": 4, " \
             "\"window_pattern\": \"SL\", \"seed\": 11, \"device\": \"cpu\"}"

/* STEPS training steps on a fixed batch with a backend of `threads` threads:
 * the losses, and the final weights (nc_tensors_free them). */
static void run(int threads, double *losses, nc_tensor_list *weights) {
    gpt_fixture f;
    gpt_fixture_open(&f, ARGS, V);
    nc_tensor_gpt_ops.destroy(f.m); /* again, on a backend of `threads` threads */
    nc_backend_free(f.be);
    nc_error err = {0};
    f.be = nc_backend_cpu_new(threads, &err);
    f.m = nc_tensor_gpt_ops.create(&f.cfg.model, f.vocab_size, f.be, &err);
    ck_assert_msg(f.m, "%s", err.message);
    int32_t x[B * T], y[B * T];
    gpt_random_ids(x, B * T, 100, V);
    gpt_random_ids(y, B * T, 200, V);
    nc_batch b = {x, y, B, T}; /* one batch: the loss must fall as the model learns it */
    for (int s = 0; s < STEPS; s++) {
        ck_assert_int_eq(nc_tensor_gpt_ops.train_step(f.m, &b, s, STEPS, &losses[s], &err), 0);
    }
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(f.m, true, weights, &err), 0);
    gpt_fixture_close(&f);
}

static void assert_same(const nc_tensor_list *a, const nc_tensor_list *b) {
    ck_assert_int_eq(a->count, b->count);
    for (int i = 0; i < a->count; i++)
        ck_assert_msg(memcmp(a->items[i].data, b->items[i].data, sizeof(float) * (size_t)nc_tensor_numel(&a->items[i])) == 0,
                      "%s differs", a->items[i].name);
}

START_TEST(bit_identical_runs) {
    enum { RUNS = 3 };
    const int threads[RUNS] = {1, 2, 3};
    double losses[RUNS][STEPS];
    nc_tensor_list w[RUNS] = {0};
    for (int r = 0; r < RUNS; r++) run(threads[r], losses[r], &w[r]);
    ck_assert_msg(losses[0][STEPS - 1] < losses[0][0], "the loss did not fall: %f -> %f", losses[0][0],
                  losses[0][STEPS - 1]);
    for (int r = 1; r < RUNS; r++) {
        ck_assert_msg(memcmp(losses[0], losses[r], sizeof losses[0]) == 0, "losses differ: %d threads vs 1", threads[r]);
        assert_same(&w[0], &w[r]);
    }
    for (int r = 0; r < RUNS; r++) nc_tensors_free(&w[r]);
}
END_TEST

/* The cpu backend's products on their own, at shapes cut into 1 to 16 slices
 * of rows or columns (uneven ones too), batched and transposed: the same bits
 * at 1, 2 and 3 threads. */
START_TEST(gemm_bits_do_not_follow_threads) {
    static const struct { int m, n, k, batch; bool ta, tb; } shapes[] = {
        {2048, 256, 256, 1, false, false}, {8192, 64, 64, 1, false, true}, {300, 1030, 200, 1, true, true},
        {256, 256, 2048, 3, true, false},  {96, 80, 24, 5, false, false},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        int m = shapes[s].m, n = shapes[s].n, k = shapes[s].k, batch = shapes[s].batch;
        int64_t sa = (int64_t)m * k, sb = (int64_t)k * n, sd = (int64_t)m * n;
        float *a = malloc(sizeof(float) * (size_t)(sa * batch)), *b = malloc(sizeof(float) * (size_t)(sb * batch));
        float *d[3];
        tu_random_floats(a, sa * batch, 1 + (uint32_t)s);
        tu_random_floats(b, sb * batch, 100 + (uint32_t)s);
        for (int t = 0; t < 3; t++) {
            nc_error err = {0};
            nc_backend *be = nc_backend_cpu_new(t + 1, &err);
            ck_assert_msg(be, "%s", err.message);
            d[t] = malloc(sizeof(float) * (size_t)(sd * batch));
            nc_gemm g = {.m = m, .n = n, .k = k, .batch = batch, .ta = shapes[s].ta, .tb = shapes[s].tb,
                         .alpha = 1.0f, .a = a, .at = NC_F32, .lda = shapes[s].ta ? m : k, .sa = sa,
                         .b = b, .bt = NC_F32, .ldb = shapes[s].tb ? k : n, .sb = sb,
                         .d = d[t], .dt = NC_F32, .ldd = n, .sd = sd};
            be->ops->gemm(be, &g);
            nc_backend_free(be);
        }
        for (int t = 1; t < 3; t++)
            ck_assert_msg(memcmp(d[0], d[t], sizeof(float) * (size_t)(sd * batch)) == 0,
                          "(%d, %d, %d) x %d differs at %d threads", m, n, k, batch, t + 1);
        for (int t = 0; t < 3; t++) free(d[t]);
        free(a);
        free(b);
    }
}
END_TEST

/* The exported state (weights, optimizer moments) with the step count resumes a run
 * exactly: a fresh model that imports it continues with the same bits. */
START_TEST(resume_from_exported_state) {
    gpt_fixture a, b;
    gpt_fixture_open(&a, ARGS, V);
    gpt_fixture_open(&b, ARGS, V);
    int32_t x[B * T], y[B * T];
    gpt_random_ids(x, B * T, 5, V);
    gpt_random_ids(y, B * T, 6, V);
    nc_batch batch = {x, y, B, T};
    nc_error err = {0};
    double la, lb;
    enum { RESUME_STEPS = 4 };
    for (int s = 0; s < 2; s++) ck_assert_int_eq(nc_tensor_gpt_ops.train_step(a.m, &batch, s, RESUME_STEPS, &la, &err), 0);
    nc_tensor_list state = {0}, wa = {0}, wb = {0};
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(a.m, true, &state, &err), 0);
    ck_assert_msg(nc_tensor_gpt_ops.import_state(b.m, &state, true, nc_tensor_gpt_ops.updates(a.m), &err) == 0, "%s", err.message);
    for (int s = 2; s < RESUME_STEPS; s++) {
        ck_assert_int_eq(nc_tensor_gpt_ops.train_step(a.m, &batch, s, RESUME_STEPS, &la, &err), 0);
        ck_assert_int_eq(nc_tensor_gpt_ops.train_step(b.m, &batch, s, RESUME_STEPS, &lb, &err), 0);
        ck_assert_msg(la == lb, "step %d: %.9g vs %.9g", s, la, lb);
    }
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(a.m, true, &wa, &err), 0);
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(b.m, true, &wb, &err), 0);
    assert_same(&wa, &wb);
    nc_tensors_free(&state);
    nc_tensors_free(&wa);
    nc_tensors_free(&wb);
    gpt_fixture_close(&a);
    gpt_fixture_close(&b);
}
END_TEST

/* An absurd Muon lr blows the activations up within a few steps: the step
 * whose loss is not finite fails and returns to the weights and optimizer
 * state that produced the last finite loss (those before the previous step). */
START_TEST(non_finite_loss_keeps_last_good_state) {
    gpt_fixture f;
    gpt_fixture_open(&f, "{\"depth\": 2, \"aspect_ratio\": 32, \"head_dim\": 16, \"seq_len\": 64, \"batch_size\": 4, "
                         "\"seed\": 11, \"device\": \"cpu\", \"batch_scaling\": \"none\", \"matrix_lr\": 1e6, "
                         "\"scalar_lr\": 1e6, \"warmup_steps\": 0}", V);
    int32_t x[B * T], y[B * T];
    gpt_random_ids(x, B * T, 1, V);
    gpt_random_ids(y, B * T, 2, V);
    nc_batch b = {x, y, B, T};
    nc_error err = {0};
    nc_tensor_list before_previous = {0}, before = {0}, after = {0};
    double loss;
    int s = 0, rc = 0;
    for (; s < 20; s++) {
        nc_tensors_free(&before_previous);
        before_previous = before;
        before = (nc_tensor_list){0};
        ck_assert_int_eq(nc_tensor_gpt_ops.export_state(f.m, true, &before, &err), 0);
        if ((rc = nc_tensor_gpt_ops.train_step(f.m, &b, s, 20, &loss, &err))) break;
    }
    ck_assert_msg(rc == -1 && s >= 1, "the loss stayed finite (%d steps)", s);
    ck_assert_int_eq(err.code, NC_E_NON_FINITE_LOSS);
    ck_assert_int_eq(nc_tensor_gpt_ops.export_state(f.m, true, &after, &err), 0);
    assert_same(&before_previous, &after);
    nc_tensors_free(&before_previous);
    nc_tensors_free(&before);
    nc_tensors_free(&after);
    gpt_fixture_close(&f);
}
END_TEST

/* Core types besides the detected one (which the "cpu" case runs in this
 * process): the first two of Haswell, Sandybridge and Prescott kernels that
 * this CPU can run. */
static int other_core_types(const char *out[2]) {
    __builtin_cpu_init();
    const char *cands[] = {"Haswell", "Sandybridge", "Prescott"};
    bool runs[] = {__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma"), __builtin_cpu_supports("avx"),
                   __builtin_cpu_supports("sse3")};
    int n = 0;
    for (int i = 0; i < 3 && n < 2; i++)
        if (runs[i] && strcasecmp(cands[i], openblas_get_corename()) != 0) out[n++] = cands[i];
    return n;
}

static const char *self_path;

/* This suite's thread cases again, in a process of their own under each other
 * core type: it must run them under the kernels asked for, and pass. */
START_TEST(same_bits_under_each_core_type) {
    const char *types[2];
    int n = other_core_types(types);
    ck_assert_msg(n >= 1, "no OpenBLAS core type but %s runs here", openblas_get_corename());
    for (int i = 0; i < n; i++) {
        int fds[2];
        ck_assert_int_eq(pipe(fds), 0);
        pid_t pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
            dup2(fds[1], STDOUT_FILENO);
            close(fds[0]);
            setenv("OPENBLAS_CORETYPE", types[i], 1);
            unsetenv("CK_RUN_CASE"); /* the child's cases are its own */
            execl(self_path, self_path, "--threads-only", (char *)NULL);
            _exit(127);
        }
        close(fds[1]);
        char out[4096] = "";
        size_t len = 0;
        ssize_t got;
        while ((got = read(fds[0], out + len, sizeof out - 1 - len)) > 0) len += (size_t)got;
        out[len] = 0;
        close(fds[0]);
        int status;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        char core[64] = "";
        ck_assert_msg(sscanf(out, "core type: %63s", core) == 1, "%s: no core type reported:\n%s", types[i], out);
        ck_assert_msg(strcasecmp(core, types[i]) == 0, "asked for %s, ran %s", types[i], core);
        ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0, "under %s:\n%s", types[i], out);
    }
}
END_TEST

int main(int argc, char **argv) {
    self_path = argv[0];
    Suite *s = suite_create("gpt_determinism");
    if (argc > 1 && strcmp(argv[1], "--threads-only") == 0) {
        printf("core type: %s\n", openblas_get_corename());
        fflush(stdout);
        tu_tcase(s, "threads", bit_identical_runs, gemm_bits_do_not_follow_threads);
        return tu_run(s);
    }
    tu_tcase(s, "cpu", bit_identical_runs, gemm_bits_do_not_follow_threads, resume_from_exported_state,
             non_finite_loss_keeps_last_good_state);
    tu_tcase(s, "core_types", same_bits_under_each_core_type);
    return tu_run(s);
}
