/* test_guard.c: the memory-drift guard (FR-007). Its rule on given numbers
 * (baseline = minimum of a rolling window of accepted observations; growth
 * beyond the ratio fails and is not recorded), and on the real thing: an
 * eval made to leak its backend's memory on purpose, here only, fails with
 * MemoryDrift, and passes again once the memory is given back; memory taken
 * elsewhere in the process is not the job's and trips nothing. */
#include "trainutil.h"
#include "engine/engine.h"
#include "engine/guards.h"
#include "backend/backend.h"

#include <string.h>
#include <sys/mman.h>

START_TEST(the_baseline_is_the_minimum_of_a_rolling_window) {
    nc_guard g;
    nc_error err;
    nc_guard_init(&g, 3, 1.5);
    ck_assert_int_eq(nc_guard_observe(&g, 100, -1, &err), 0);
    ck_assert_int_eq(nc_guard_observe(&g, 140, -1, &err), 0);
    ck_assert_int_eq(nc_guard_observe(&g, 151, -1, &err), -1);
    ck_assert_int_eq(err.code, NC_E_MEMORY_DRIFT);
    ck_assert_ptr_nonnull(strstr(err.message, "baseline of 100 bytes"));
    ck_assert_ptr_nonnull(strstr(err.message, "151 bytes"));
    ck_assert_ptr_nonnull(strstr(err.message, "ratio 1.510 > 1.500"));
    ck_assert_int_eq(g.host.count, 2); /* the failed observation was not recorded */
    ck_assert_int_eq(nc_guard_observe(&g, 145, -1, &err), 0);
    ck_assert_int_eq(nc_guard_observe(&g, 149, -1, &err), 0); /* 100 leaves the window */
    ck_assert_int_eq(nc_guard_observe(&g, 151, -1, &err), 0);
    nc_guard_reset(&g);
    ck_assert_int_eq(nc_guard_observe(&g, 1000, -1, &err), 0);
}
END_TEST

START_TEST(device_memory_is_a_series_of_its_own) {
    nc_guard g;
    nc_error err;
    nc_guard_init(&g, 8, 2.0);
    ck_assert_int_eq(nc_guard_observe(&g, 100, 1000, &err), 0);
    ck_assert_int_eq(nc_guard_observe(&g, 150, 1900, &err), 0);
    ck_assert_int_eq(nc_guard_observe(&g, 150, 2100, &err), -1);
    ck_assert_ptr_nonnull(strstr(err.message, "device"));
}
END_TEST

#define LEAK_BYTES (96u << 20)

static void *leaked;
static nc_backend *leaked_on;
static const nc_model_ops *real_ops;

/* The model's eval, leaking LEAK_BYTES of its backend's memory on the side:
 * a buffer allocated per eval and never freed. */
static int leaky_eval(nc_model *m, const nc_batch *b, float *losses, nc_error *err) {
    if (!leaked) ck_assert_ptr_nonnull(leaked = leaked_on->ops->alloc(leaked_on, LEAK_BYTES));
    return real_ops->eval_losses(m, b, losses, err);
}

static json_t *eval_args(void) { return json_pack("{s:i}", "windows", 8); }

START_TEST(an_eval_that_leaks_trips_the_guard) {
    tu_engine t;
    tu_engine_open(&t, "guard", 4, 1.5);
    json_decref(tu_engine_call(&t, "train", tu_train_args("tensor", "bigram", 2, t.corpus)));
    json_decref(tu_engine_call(&t, "eval", eval_args()));
    real_ops = t.e->res.ops;
    leaked_on = t.e->res.backend;
    nc_model_ops leaky = *real_ops;
    leaky.eval_losses = leaky_eval;
    t.e->res.ops = &leaky;
    nc_error err; /* the leak happens while it scores; the guard observes after */
    ck_assert_ptr_null(tu_engine_try(t.e, "eval", eval_args(), NULL, &err));
    ck_assert_int_eq(err.code, NC_E_MEMORY_DRIFT);
    ck_assert_ptr_nonnull(strstr(err.message, "baseline"));
    ck_assert_ptr_nonnull(strstr(err.message, "ratio"));
    leaked_on->ops->free(leaked_on, leaked);
    leaked = NULL;
    t.e->res.ops = real_ops;
    json_decref(tu_engine_call(&t, "eval", eval_args()));
    tu_engine_close(&t);
}
END_TEST

/* Memory the rest of the process takes (another client's request being
 * decoded, say) is not the job's: the guard does not count it. */
START_TEST(memory_outside_the_job_does_not_trip_the_guard) {
    tu_engine t;
    tu_engine_open(&t, "guard-other", 4, 1.5);
    json_decref(tu_engine_call(&t, "train", tu_train_args("scalar", "bigram", 2, t.corpus)));
    json_decref(tu_engine_call(&t, "eval", eval_args()));
    void *other = mmap(NULL, LEAK_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    ck_assert_ptr_ne(other, MAP_FAILED);
    memset(other, 1, LEAK_BYTES); /* resident: the process's RSS grows by far more than 1.5x */
    json_decref(tu_engine_call(&t, "eval", eval_args()));
    munmap(other, LEAK_BYTES);
    tu_engine_close(&t);
}
END_TEST

int main(void) {
    Suite *s = suite_create("guard");
    tu_tcase(s, "guard", the_baseline_is_the_minimum_of_a_rolling_window, device_memory_is_a_series_of_its_own,
             an_eval_that_leaks_trips_the_guard, memory_outside_the_job_does_not_trip_the_guard);
    return tu_run(s);
}
