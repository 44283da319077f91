/*
 * replication.h - master-master replication with one peer (-x/-X/-q).
 *
 * The narrow interface between the core and replication.c.  The core calls
 * repl_start() once at start-up, repl_report() for "stats", and
 * repl_drain_and_stop() at shutdown.  Everything else goes through the
 * storage layer: replication registers storage hooks to learn about every
 * local mutation, and applies the peer's writes with storage_apply_*().
 * The design and the wire format are in doc/replication.md.
 */
#ifndef REPLICATION_H
#define REPLICATION_H

#include <stdbool.h>

#include "stats.h"

/* Start replication when settings.repl_peer is set: register the storage
 * hooks, start the replication thread (listen on -X, dial the peer).
 * Call after storage_init() and before worker threads serve clients.
 * Returns false after logging one line when it cannot start. */
bool repl_start(void);

/* True when -x was given and repl_start() succeeded. */
bool repl_active(void);

/* The repl_* lines of "stats" (doc/replication.md section 7). */
void repl_report(add_stat_fn add, void *ctx);

/* Shutdown: wait (bounded) until the peer has acknowledged every write
 * made before this call, say BYE, stop the thread.  Call after client
 * connections are closed so no new writes arrive. */
void repl_drain_and_stop(void);

#endif /* REPLICATION_H */
