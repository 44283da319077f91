/*
 * daemon.c - process set-up: detaching, the pid file, resource limits,
 * switching user, locking memory.
 *
 * What it owns: the pipe that ties a detached daemon to the `memcached -d`
 * that started it, and the absolute path of the pid file it wrote.
 *
 * Detaching: memcached forks and lets the parent exit 0 at once, so a
 * daemon that then fails to bind its port dies silently.  Here the parent
 * waits on a pipe until the daemon calls daemon_started() (after the
 * listeners are open): one byte means "serving" and the parent exits 0;
 * end-of-file means the daemon exited during start-up, and the parent
 * exits with its status.  Until then the daemon keeps the caller's stderr,
 * so its one error line reaches the terminal or the init system's log.
 *
 * Invariants: daemon_detach() runs before any thread exists (fork copies
 * only the calling thread).  The pid file path is made absolute when it is
 * written, because daemon_started() changes directory to "/".
 *
 * Locking: none; every function runs on the main thread during start-up
 * or after server_run() returned.
 */
#include "daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "memcached.h" /* config.h first: HAVE_SYS_PRCTL_H */
#include "util.h"

#ifdef HAVE_SYS_PRCTL_H
#include <sys/prctl.h>
#endif

/* Write end of the start-up pipe in a detached daemon, -1 otherwise. */
static int ready_fd = -1;
/* The pid file we wrote (absolute), NULL if none. */
static char *pidfile_path;
/* -r was given: stay dumpable after changing user. */
static bool want_coredumps;

/* Descriptors needed besides client connections: stdio, listeners (TCP
 * v4/v6, UDP, UNIX), replication, the pid file while written, and slack
 * for libevent; plus per worker thread its event base and notify pipe. */
#define FD_HEADROOM 32
#define FD_PER_THREAD 4

/* In the parent of a detached daemon: wait for its verdict and exit with
 * it.  _exit, so stdio buffers (flushed before fork) are not written twice. */
static void __attribute__((noreturn)) wait_for_daemon(pid_t child, int fd)
{
    char byte;
    ssize_t n;
    do {
        n = read(fd, &byte, 1);
    } while (n < 0 && errno == EINTR);
    if (n == 1)
        _exit(0);

    int status;
    pid_t r;
    do {
        r = waitpid(child, &status, 0);
    } while (r < 0 && errno == EINTR);
    if (r == child && WIFEXITED(status))
        _exit(WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : 1);
    if (r == child && WIFSIGNALED(status))
        fprintf(stderr, "memcached: the daemon was killed by signal %d during start-up\n",
                WTERMSIG(status));
    else
        fprintf(stderr, "memcached: the daemon ended during start-up\n");
    _exit(1);
}

bool daemon_detach(void)
{
    int fds[2];
    if (pipe(fds) != 0) {
        fprintf(stderr, "memcached: cannot daemonize: pipe: %s\n", strerror(errno));
        return false;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "memcached: cannot daemonize: fork: %s\n", strerror(errno));
        close(fds[0]);
        close(fds[1]);
        return false;
    }
    if (pid > 0) {
        close(fds[1]);
        wait_for_daemon(pid, fds[0]);
    }
    close(fds[0]);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    ready_fd = fds[1];
    if (setsid() < 0) {
        fprintf(stderr, "memcached: cannot daemonize: setsid: %s\n", strerror(errno));
        return false;
    }
    return true;
}

/* Point fd at /dev/null. */
static void to_dev_null(int fd, int devnull)
{
    if (devnull >= 0 && devnull != fd)
        dup2(devnull, fd);
}

void daemon_started(void)
{
    if (ready_fd < 0)
        return;
    if (chdir("/") != 0)
        mc_log(1, "memcached: chdir(\"/\") failed: %s", strerror(errno));
    int devnull = open("/dev/null", O_RDWR);
    to_dev_null(STDIN_FILENO, devnull);
    /* Under -v the log lines are what the user asked for: like memcached,
     * keep stdout and stderr where the caller pointed them. */
    if (settings.verbose == 0) {
        fflush(stdout);
        fflush(stderr);
        to_dev_null(STDOUT_FILENO, devnull);
        to_dev_null(STDERR_FILENO, devnull);
    }
    if (devnull > STDERR_FILENO)
        close(devnull);

    ssize_t n;
    do {
        n = write(ready_fd, "1", 1);
    } while (n < 0 && errno == EINTR);
    close(ready_fd);
    ready_fd = -1;
}

/* path made absolute against the current directory (malloc'd). */
static char *absolute_path(const char *path)
{
    if (path[0] == '/')
        return strdup(path);
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof(cwd)) == NULL)
        return NULL;
    size_t len = strlen(cwd) + 1 + strlen(path) + 1;
    char *abs = malloc(len);
    if (abs != NULL)
        snprintf(abs, len, "%s/%s", cwd, path);
    return abs;
}

bool pidfile_write(const char *path)
{
    char *abs = absolute_path(path);
    if (abs == NULL) {
        fprintf(stderr, "memcached: cannot resolve the pid file path %s: %s\n", path,
                strerror(errno));
        return false;
    }
    FILE *f = fopen(abs, "w");
    bool ok = f != NULL;
    if (ok) {
        ok = fprintf(f, "%ld\n", (long)getpid()) > 0;
        ok = (fclose(f) == 0) && ok;
    }
    if (!ok) {
        fprintf(stderr, "memcached: could not write the pid file %s: %s\n", path,
                strerror(errno));
        free(abs);
        return false;
    }
    pidfile_path = abs;
    return true;
}

void pidfile_remove(void)
{
    if (pidfile_path == NULL)
        return;
    /* After -u the directory may not let us delete it; say so, once. */
    if (unlink(pidfile_path) != 0 && errno != ENOENT)
        fprintf(stderr, "memcached: could not remove the pid file %s: %s\n", pidfile_path,
                strerror(errno));
    free(pidfile_path);
    pidfile_path = NULL;
}

bool daemon_enable_coredumps(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_CORE, &rl) != 0) {
        fprintf(stderr, "memcached: -r: cannot read the core file limit: %s\n",
                strerror(errno));
        return false;
    }
    /* Unlimited if allowed, else as high as the hard limit lets us. */
    struct rlimit want = {RLIM_INFINITY, RLIM_INFINITY};
    if (setrlimit(RLIMIT_CORE, &want) != 0) {
        want.rlim_cur = want.rlim_max = rl.rlim_max;
        setrlimit(RLIMIT_CORE, &want);
    }
    if (getrlimit(RLIMIT_CORE, &rl) != 0 || rl.rlim_cur == 0) {
        fprintf(stderr, "memcached: -r: cannot raise the core file limit above 0\n");
        return false;
    }
    want_coredumps = true;
    return true;
}

bool daemon_raise_fd_limit(int maxconns)
{
    rlim_t needed = (rlim_t)maxconns + FD_HEADROOM + (rlim_t)settings.num_threads * FD_PER_THREAD;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "memcached: cannot read the open files limit: %s\n", strerror(errno));
        return false;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= needed)
        return true;
    rl.rlim_cur = needed;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < needed)
        rl.rlim_max = needed;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr,
                "memcached: failed to set rlimit for open files to %llu for -c %d: %s; "
                "start as root or ask for fewer connections\n",
                (unsigned long long)needed, maxconns, strerror(errno));
        return false;
    }
    return true;
}

bool daemon_drop_root(const char *username)
{
    if (getuid() != 0 && geteuid() != 0)
        return true;
    if (username == NULL) {
        fprintf(stderr, "memcached: can't run as root without the -u switch\n");
        return false;
    }
    struct passwd *pw = getpwnam(username);
    if (pw == NULL) {
        fprintf(stderr, "memcached: can't find the user %s to switch to (-u)\n", username);
        return false;
    }
    /* Groups first: once the uid changes we may no longer set them. */
    if (initgroups(pw->pw_name, pw->pw_gid) != 0 || setgid(pw->pw_gid) != 0 ||
        setuid(pw->pw_uid) != 0) {
        fprintf(stderr, "memcached: failed to assume the identity of user %s: %s\n",
                username, strerror(errno));
        return false;
    }
#ifdef HAVE_SYS_PRCTL_H
    /* Changing uid clears the dumpable flag; -r asked for core files. */
    if (want_coredumps)
        prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
#endif
    return true;
}

bool daemon_lock_memory(void)
{
    if (mlockall(MCL_CURRENT | MCL_FUTURE) != 0) {
        fprintf(stderr, "memcached: warning: -k: mlockall() failed, memory stays unlocked: %s\n",
                strerror(errno));
        return false;
    }
    return true;
}
