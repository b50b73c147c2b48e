/* test_docs.c: the documents keep up with the schema. Every command and
 * every error code appears in proto/PROTOCOL.md, every argument in its
 * command's table there ("#### `cmd` arguments"), and every command in
 * README.md. */
#define _GNU_SOURCE
#include "testutil.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *doc(const char *name) {
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/%s", NC_SOURCE_DIR, name);
    char *text = tu_read_file(path, NULL);
    ck_assert_msg(text != NULL, "missing %s", path);
    return text;
}

/* True when text holds `word` between backticks. */
static bool mentions(const char *text, const char *word) {
    char quoted[256];
    snprintf(quoted, sizeof quoted, "`%s`", word);
    return strstr(text, quoted) != NULL;
}

/* The argument table of cmd: from its heading to the next heading (copy). */
static char *arguments_section(const char *text, const char *cmd) {
    char heading[128];
    snprintf(heading, sizeof heading, "#### `%s` arguments", cmd);
    const char *start = strstr(text, heading);
    ck_assert_msg(start != NULL, "PROTOCOL.md lacks the section \"%s\"", heading);
    const char *end = strstr(start + strlen(heading), "\n#");
    return strndup(start, end ? (size_t)(end - start) : strlen(start));
}

START_TEST(protocol_documents_the_schema) {
    char *text = doc("proto/PROTOCOL.md");
    size_t n;
    const nc_command_spec *cmds = nc_commands(&n);
    for (size_t i = 0; i < n; i++) {
        ck_assert_msg(mentions(text, cmds[i].name), "PROTOCOL.md lacks command `%s`", cmds[i].name);
        if (cmds[i].nargs == 0) continue;
        char *section = arguments_section(text, cmds[i].name);
        for (size_t a = 0; a < cmds[i].nargs; a++)
            ck_assert_msg(mentions(section, cmds[i].args[a].name), "PROTOCOL.md lacks %s argument `%s`",
                          cmds[i].name, cmds[i].args[a].name);
        free(section);
    }
    for (int c = NC_E_BAD_REQUEST; c < NC_CODE_COUNT; c++)
        ck_assert_msg(mentions(text, nc_code_name(c)), "PROTOCOL.md lacks error code `%s`", nc_code_name(c));
    free(text);
}
END_TEST

START_TEST(readme_documents_every_command) {
    char *text = doc("README.md");
    size_t n;
    const nc_command_spec *cmds = nc_commands(&n);
    for (size_t i = 0; i < n; i++) {
        char cmd[64];
        snprintf(cmd, sizeof cmd, "ncctl %s", cmds[i].name);
        ck_assert_msg(strstr(text, cmd), "README.md lacks `%s`", cmd);
    }
    ck_assert_ptr_nonnull(strstr(text, "./scripts/demo.sh"));
    ck_assert_ptr_nonnull(strstr(text, "./scripts/test.sh"));
    free(text);
}
END_TEST

int main(void) {
    Suite *s = suite_create("docs");
    TCase *tc = tcase_create("docs");
    tcase_add_test(tc, protocol_documents_the_schema);
    tcase_add_test(tc, readme_documents_every_command);
    suite_add_tcase(s, tc);
    return tu_run(s);
}
