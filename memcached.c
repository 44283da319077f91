/*
 * memcached.c - main(): start-up and wiring, nothing else.
 *
 * The order matters and is explained step by step below; in short:
 * process limits while still root, detach before any thread exists, write
 * the pid file while still allowed to, drop root before opening anything a
 * client can reach, and tell the waiting `memcached -d` parent we are up
 * only once the listeners are open.  Every start-up failure has already
 * printed its one line when main() returns 1.
 */
#include "memcached.h"

#include "clock.h"
#include "daemon.h"
#include "options.h"
#include "replication.h"
#include "storage.h"
#include "thread.h"
#include "util.h"

int main(int argc, char **argv)
{
    options_defaults();
    options_parse(argc, argv);
    clock_init();

    /* Limits are inherited by the daemon and can only be raised as root. */
    if (settings.maxcore && !daemon_enable_coredumps())
        return 1;
    if (!daemon_raise_fd_limit(settings.maxconns))
        return 1;

    /* fork() keeps only the calling thread: detach before the engine or
     * the server starts any.  mlockall() is not inherited, so it follows. */
    if (settings.daemonize && !daemon_detach())
        return 1;
    /* A stop asked from here on waits for the main loop (thread.h). */
    server_hold_signals();
    if (settings.lock_memory)
        daemon_lock_memory(); /* a warning only, as in memcached */

    /* Written before dropping root, so a root-owned run directory works;
     * memcached writes it with or without -d. */
    if (settings.pid_file != NULL && !pidfile_write(settings.pid_file))
        return 1;

    if (!daemon_drop_root(settings.username) || !storage_init()) {
        pidfile_remove();
        return 1;
    }
    /* Replication registers its storage hooks before any client can write,
     * and binds -X before we report the start-up as done. */
    if (!repl_start()) {
        storage_shutdown();
        pidfile_remove();
        return 1;
    }
    if (!server_start()) {
        repl_drain_and_stop();
        storage_shutdown();
        pidfile_remove();
        return 1;
    }
    daemon_started();

    server_run();
    /* Clients are gone: what they wrote goes to the peer before we exit
     * (doc/replication.md section 6); its walks end before the engine. */
    repl_drain_and_stop();
    storage_shutdown();
    pidfile_remove();
    mc_log(1, "Exiting normally");
    return 0;
}
