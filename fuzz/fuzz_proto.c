/*
 * fuzz/fuzz_proto.c - fuzz the client protocols through the real
 * connection state machine.
 *
 * What it drives: one client connection per input, served by conn.c
 * exactly as a worker thread serves it (conn_thread_new() on an event base
 * of our own, conn_admit() + conn_new_client() on one end of a UNIX
 * socketpair), with -B auto, so the first byte of the stream picks the text
 * protocol (with the meta commands) or the binary one.  The storage engine
 * is started once for the whole run with -m 8 (small, so eviction and the
 * LRU run) and keeps what earlier inputs stored, as a daemon would.
 *
 * How an input is interpreted (harness.h, fuzz_split): byte 0 is the piece
 * length (0 = all at once), the rest is what the client sends.  Each piece
 * is written to the socket and the event loop runs until the connection
 * has consumed it and is waiting again, so lines, binary headers and
 * values arriving in pieces are exercised.  Then the client shuts its
 * sending side down (EOF) and the loop runs until the connection is
 * closed.  A thread reads and discards everything the server answers, so
 * large answers and dumps never block it.
 *
 * Checks beyond the sanitizers: the connection must close once its input
 * ended (no stuck state), and no connection may be left open after it.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "../conn.h"
#include "../memcached.h"
#include "../stats.h"

static struct event_base *base;
static struct conn_thread *ct;
static struct thread_stats worker_stats;

/* What thread.c's worker_main() sets up for a worker, on this thread. */
static void start_worker(void)
{
    static char *argv[] = {"fuzz_proto", "-m", "8", "-B", "auto", NULL};
    fuzz_start_daemon(argv);
    stats_register(&worker_stats);
    base = event_base_new();
    ct = base ? conn_thread_new(base, &worker_stats) : NULL;
    FUZZ_CHECK(ct != NULL, "could not set up the worker context");
}

/* The client's reading side: discard the answers until the server closes. */
static void *drain_answers(void *arg)
{
    int fd = *(int *)arg;
    char buf[65536];
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n > 0 || (n < 0 && errno == EINTR))
            continue;
        return NULL;
    }
}

/* The connection is gone when its event is: the worker context registers
 * no other event (no idle timeout). */
static bool conn_gone(void)
{
    return event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) == 0;
}

/* Run the worker's loop until the connection has read everything sent so
 * far and has nothing left to do but wait (or has closed). */
static void run_until_idle(int sfd)
{
    for (;;) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        if (conn_gone())
            return;
        int unread = 0;
        if (ioctl(sfd, FIONREAD, &unread) != 0)
            unread = 0;
        if (unread == 0 &&
            event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0)
            return;
    }
}

/* Send one piece from the client, letting the server run whenever the
 * socket is full. */
static void send_piece(int cfd, int sfd, const uint8_t *p, size_t len)
{
    while (len > 0 && !conn_gone()) {
        ssize_t n = send(cfd, p, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            p += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
            return; /* the server closed its end */
        } else {
            event_base_loop(base, EVLOOP_NONBLOCK);
        }
    }
    run_until_idle(sfd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!ct)
        start_worker();
    fuzz_begin_input();

    const uint8_t *stream;
    size_t len;
    size_t piece = fuzz_split(data, size, &stream, &len);

    int sv[2];
    FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) == 0,
               "socketpair: %s", strerror(errno));
    int cfd = sv[0], sfd = sv[1];
    /* The server's end is non-blocking, as accept4(SOCK_NONBLOCK) makes it. */
    int one = 1;
    ioctl(sfd, FIONBIO, &one);
    FUZZ_CHECK(conn_admit(sfd), "the connection was not admitted");
    FUZZ_CHECK(conn_new_client(ct, sfd, CONN_UNIX, "fuzz"), "conn_new_client failed");

    pthread_t reader;
    FUZZ_CHECK(pthread_create(&reader, NULL, drain_answers, &cfd) == 0,
               "cannot start the reader thread");
    for (size_t off = 0; off < len && !conn_gone(); off += piece)
        send_piece(cfd, sfd, stream + off, len - off < piece ? len - off : piece);

    /* End of input: the connection must see EOF and close. */
    shutdown(cfd, SHUT_WR);
    while (!conn_gone())
        event_base_loop(base, EVLOOP_ONCE);
    pthread_join(reader, NULL);
    close(cfd);

    struct conn_totals t;
    conn_get_totals(&t);
    FUZZ_CHECK(t.curr_connections == 0, "%llu connection(s) still open after EOF",
               (unsigned long long)t.curr_connections);
    return 0;
}
