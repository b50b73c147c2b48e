/* log.c: one line per message: "<level>nanochatd[pid]: LEVEL message". */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static log_level current = LOG_LEVEL_INFO;

void log_set_level(log_level level) { current = level; }

int log_level_parse(const char *name, log_level *out) {
    static const struct { const char *name; log_level level; } names[] = {
        {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN}, {"info", LOG_LEVEL_INFO}, {"debug", LOG_LEVEL_DEBUG}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(names[i].name, name) == 0) {
            *out = names[i].level;
            return 0;
        }
    return -1;
}

void log_msg(log_level level, const char *fmt, ...) {
    if (level > current) return;
    const char *tag = level == LOG_LEVEL_ERROR ? "ERROR" : level == LOG_LEVEL_WARN ? "WARN" : level == LOG_LEVEL_INFO ? "INFO" : "DEBUG";
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    fprintf(stderr, "<%d>nanochatd[%d]: %s %s\n", (int)level, (int)getpid(), tag, line);
}
