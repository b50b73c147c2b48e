/* suite.c: the Check helpers of suite.h. */
#include "suite.h"

#include <stdlib.h>

TCase *tu_tcase_(Suite *s, const char *name, const TTest *const tests[]) {
    TCase *tc = tcase_create(name);
    for (int i = 0; tests[i]; i++) tcase_add_test(tc, tests[i]);
    suite_add_tcase(s, tc);
    return tc;
}

int tu_run(Suite *s) {
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
