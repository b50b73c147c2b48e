/* access.h: who may talk to the daemon (SO_PEERCRED). */
#ifndef NCD_ACCESS_H
#define NCD_ACCESS_H

#include <stdbool.h>
#include <sys/types.h>

/* True for our own uid, root, and members of allowed_gid ((gid_t)-1: none).
 * *uid receives the peer's uid ((uid_t)-1 when it cannot be read). */
bool access_peer_allowed(int fd, gid_t allowed_gid, uid_t *uid);

#endif
