/* socket_path.c: where daemon and clients meet by default. */
#include "proto.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

void nc_default_socket(char *buf, size_t n) {
    const char *env = getenv("NANOCHAT_SOCKET"), *xdg = getenv("XDG_RUNTIME_DIR");
    if (env && *env) snprintf(buf, n, "%s", env);
    else if (xdg && *xdg) snprintf(buf, n, "%s/nanochat/nanochatd.sock", xdg);
    else snprintf(buf, n, "/tmp/nanochat-%u/nanochatd.sock", (unsigned)getuid());
}
