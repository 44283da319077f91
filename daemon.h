/*
 * daemon.h - process set-up: daemonizing, the pid file, resource limits,
 * dropping root, locking memory.  Each function prints one line on stderr
 * and returns false when it fails, so main() can exit 1.
 *
 * Start-up order (memcached.c): limits, daemon_detach(), memory lock, pid
 * file, daemon_drop_root(), storage and listeners, then daemon_started().
 * Until daemon_started(), a detached process still writes to the caller's
 * stderr, and the caller's `memcached -d` waits: it exits 0 once the
 * daemon is serving, or with the daemon's status if start-up failed.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stdbool.h>

/* Detach from the terminal: fork (the parent waits as described above and
 * never returns), setsid.  Must be called before any thread is started. */
bool daemon_detach(void);

/* Start-up is complete: when detached, chdir("/"), point stdin (and,
 * unless -v, stdout and stderr) at /dev/null and release the waiting
 * parent.  Does nothing otherwise. */
void daemon_started(void);

/* Write our pid to path (memcached writes it with or without -d);
 * pidfile_remove() deletes that file at clean exit, wherever the working
 * directory is by then. */
bool pidfile_write(const char *path);
void pidfile_remove(void);

/* -r: raise the core file limit to the maximum (and keep the process
 * dumpable after daemon_drop_root()). */
bool daemon_enable_coredumps(void);

/* Raise RLIMIT_NOFILE to fit maxconns client connections plus the
 * listeners and each worker thread's internal descriptors. */
bool daemon_raise_fd_limit(int maxconns);

/* -u: when running as root, switch to username; refuse to run as root
 * without -u (memcached's rule).  Does nothing when not root. */
bool daemon_drop_root(const char *username);

/* -k: mlockall().  A failure is a warning in memcached: the caller goes
 * on after the line is printed. */
bool daemon_lock_memory(void);

#endif /* DAEMON_H */
