/*
 * thread.h - the server's threads: the main (listener) thread and the
 * worker threads, each running its own libevent loop.
 *
 * memcached.c calls, in order: server_start() once settings are final and
 * the process is daemonized, then server_run(), which returns when a
 * SIGTERM/SIGINT or the "shutdown" command asks the server to stop.
 * Below them, the two listener reports conn.c's "stats" functions use.
 */
#ifndef THREAD_H
#define THREAD_H

#include "memcached.h"   /* first: config.h's feature macros */

#include <stdbool.h>

#include "stats.h"

struct conn_totals;

/* Hold SIGTERM, SIGINT and SIGUSR1 (blocked) until server_start() has its
 * handlers in place.  Called on the main thread before any other thread
 * starts, so every thread inherits the mask and a stop asked during
 * start-up waits, then stops the server cleanly (pid file removed), rather
 * than killing the process by the default action. */
void server_hold_signals(void);

/* Open every listener named by settings (TCP, UDP, UNIX socket) and start
 * the worker threads.  Returns false after printing one line on stderr
 * when a socket can't be opened (the caller exits 1). */
bool server_start(void);

/* Run the main event loop (accepting, the clock timer, signals) until a
 * stop is requested; then stop accepting, let workers finish, return. */
void server_run(void);

/* Ask server_run() to return; safe from any thread (the "shutdown"
 * command, signals).  Listeners close first, then every connection;
 * graceful: each connection first gets one (non-blocking) attempt to send
 * what it has queued.  A non-graceful request wins over a graceful one. */
void server_request_stop(bool graceful);

/* ---- For conn.c's reports ---- */

/* The listener fields of the "stats" connection gauges: accepting_conns,
 * listen_disabled_num, time_in_listen_disabled_us, and the listening
 * sockets' share of total_connections / connection_structures. */
void thread_listen_totals(struct conn_totals *out);

/* "stats conns" lines of the listening sockets. */
void thread_report_listeners(add_stat_fn add, void *ctx);

#endif /* THREAD_H */
