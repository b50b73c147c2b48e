/* test_service_units.c: the systemd units pass `systemd-analyze verify`
 * without a single warning (system units, and the user units under a
 * private XDG_RUNTIME_DIR), and keep the settings the service relies on.
 * Exits 77 (skipped) when systemd-analyze is not usable here. */
#define _GNU_SOURCE
#include "svc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define UNITS NC_BIN_DIR "/../systemd/check"

static char out[65536];

static void verify(const char *const argv[]) {
    int rc = svc_run(argv, out, sizeof out);
    ck_assert_msg(rc == 0 && out[0] == '\0', "systemd-analyze verify (exit %d):\n%s", rc, out);
}

START_TEST(system_units_verify) {
    verify((const char *const[]){"systemd-analyze", "verify", UNITS "/nanochatd.service", UNITS "/nanochatd.socket",
                                 NULL});
}
END_TEST

START_TEST(user_units_verify) {
    char xdg[PATH_MAX];
    tu_tmpdir(xdg, sizeof xdg, "xdg");
    setenv("XDG_RUNTIME_DIR", xdg, 1);
    verify((const char *const[]){"systemd-analyze", "--user", "verify", UNITS "/user/nanochatd.service",
                                 UNITS "/user/nanochatd.socket", NULL});
    tu_rmtree(xdg);
}
END_TEST

static void has_lines(const char *file, const char *const lines[]) {
    char *text = tu_read_file(file, NULL);
    ck_assert_msg(text != NULL, "missing %s", file);
    for (int i = 0; lines[i]; i++) {
        char *at = strstr(text, lines[i]);
        bool whole = at && (at == text || at[-1] == '\n') && strchr("\n ", at[strlen(lines[i])]);
        ck_assert_msg(whole, "%s lacks the line '%s'", file, lines[i]);
    }
    free(text);
}

START_TEST(units_keep_the_service_contract) {
    has_lines(UNITS "/nanochatd.service",
              (const char *const[]){"Type=notify", "NotifyAccess=main", "WatchdogSec=120", "Restart=on-failure",
                                    "User=nanochat", "StateDirectory=nanochat", "RuntimeDirectory=nanochat",
                                    "NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=read-only",
                                    "PrivateTmp=yes", NULL});
    has_lines(UNITS "/nanochatd.socket",
              (const char *const[]){"ListenStream=/run/nanochat/nanochatd.sock", "SocketMode=0660",
                                    "SocketGroup=nanochat-users", NULL});
    has_lines(UNITS "/user/nanochatd.socket", (const char *const[]){"ListenStream=%t/nanochat/nanochatd.sock", NULL});
}
END_TEST

static bool analyze_usable(void) {
    return svc_run((const char *const[]){"systemd-analyze", "--version", NULL}, out, sizeof out) == 0;
}

int main(void) {
    if (!analyze_usable()) {
        printf("SKIP: systemd-analyze is not usable here: %s\n", out);
        return 77;
    }
    Suite *s = suite_create("service_units");
    tu_tcase(s, "verify", system_units_verify, user_units_verify, units_keep_the_service_contract);
    return tu_run(s);
}
