/* api.h: the wire contract, the one header clients, the daemon and the
 * engine share: the protocol's version, the error codes (error.h), the
 * command schema (schema.h) and the typed argument structs requests parse
 * into (args.h). It needs nothing but the C library (JSON values are named,
 * not included), so ncctl links it without the engine. */
#ifndef NC_API_H
#define NC_API_H

#include "args.h"
#include "error.h"
#include "schema.h"

#define NC_VERSION "0.1.0"
#define NC_PROTOCOL_VERSION 1

/* Monotonic seconds, for every timing in the project. */
double nc_now(void);

#endif
