/*
 * daemon.h - process set-up: daemonizing, the pid file, resource limits,
 * dropping root, locking memory.  Each function prints one line on stderr
 * and returns false when it fails, so main() can exit 1.
 */
#ifndef DAEMON_H
#define DAEMON_H

#include <stdbool.h>

/* Detach from the terminal (fork, setsid, stdio to /dev/null). */
bool daemon_detach(void);

/* Write our pid to path; pidfile_remove() deletes it at clean exit. */
bool pidfile_write(const char *path);
void pidfile_remove(const char *path);

/* -r: raise the core file limit to the maximum. */
bool daemon_enable_coredumps(void);

/* Raise RLIMIT_NOFILE to fit maxconns (+ listeners and internal fds). */
bool daemon_raise_fd_limit(int maxconns);

/* -u: when running as root, switch to username; refuse to run as root
 * without -u (memcached's rule). */
bool daemon_drop_root(const char *username);

/* -k: mlockall(). */
bool daemon_lock_memory(void);

#endif /* DAEMON_H */
