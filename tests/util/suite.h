/* suite.h: Check suites with a line each: tu_tcase adds a case of tests,
 * tu_run runs the suite. Needs nothing but Check, so the emulated kernel
 * tests (tests/emu), which cannot link the rest of testutil, use it too. */
#ifndef NC_TEST_SUITE_H
#define NC_TEST_SUITE_H

#include <check.h>

/* Adds to s a test case named `name` holding the tests (START_TEST names,
 * in order); returns it for fixtures and timeouts. */
#define tu_tcase(s, name, ...) tu_tcase_((s), (name), (const TTest *const[]){__VA_ARGS__, NULL})
TCase *tu_tcase_(Suite *s, const char *name, const TTest *const tests[]);

/* Runs a suite with CK_NORMAL output; returns the process exit status. */
int tu_run(Suite *s);

#endif
