/*
 * fuzz/fuzz_udp.c - fuzz the UDP transport: request datagrams (8-byte
 * frame header, then commands) into conn.c's UDP path and the protocols.
 *
 * What it drives: a worker context of our own (conn_thread_new() on our
 * event base) serving a UDP socket bound to 127.0.0.1 through
 * conn_new_udp(), exactly as each worker serves the shared -U socket.  The
 * storage engine is started once for the run with -m 8 and -B auto.  Each
 * input gets a fresh worker context, stopped (conn_thread_stop) at its
 * end, so the UDP conn's life runs whole every time.
 *
 * How an input is interpreted (harness.h, fuzz_split): byte 0 is the
 * datagram size (0 = the whole rest as one datagram), the rest is cut into
 * datagrams of that size, each sent from a client socket and served
 * before the next is sent.  A datagram carries its own frame header
 * (request id, sequence number, total datagrams, reserved: memcached's
 * UDP header), so the fuzzer decides what is well framed.  The answers'
 * datagrams are read and checked: each has the 8-byte header with its
 * reserved bytes 0 and is at most 1400 bytes.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "../conn.h"
#include "../memcached.h"
#include "../stats.h"

#define UDP_HEADER 8
#define UDP_DGRAM_MAX 1400     /* memcached's datagram size, header included */

static struct event_base *base;
static struct thread_stats worker_stats;
static int server_fd = -1, client_fd = -1;

static int udp_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    FUZZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0,
               "cannot open a UDP socket: %s", strerror(errno));
    return fd;
}

static void start_worker(void)
{
    static char *argv[] = {"fuzz_udp", "-m", "8", "-B", "auto", NULL};
    fuzz_start_daemon(argv);
    stats_register(&worker_stats);
    base = event_base_new();
    FUZZ_CHECK(base != NULL, "cannot create an event base");
    server_fd = udp_socket();
    client_fd = udp_socket();
    /* Room for a whole multi-datagram answer between two reads. */
    int size = 4 << 20;
    setsockopt(client_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
    struct sockaddr_in a;
    socklen_t al = sizeof(a);
    FUZZ_CHECK(getsockname(server_fd, (struct sockaddr *)&a, &al) == 0 &&
               connect(client_fd, (struct sockaddr *)&a, al) == 0,
               "cannot connect the UDP client: %s", strerror(errno));
}

/* Read and check every answer datagram waiting at the client. */
static void read_answers(void)
{
    unsigned char d[65536];
    for (;;) {
        ssize_t n = recv(client_fd, d, sizeof(d), 0);
        if (n < 0)
            return;
        FUZZ_CHECK(n >= UDP_HEADER && n <= UDP_DGRAM_MAX,
                   "an answer datagram of %zd bytes", n);
        FUZZ_CHECK(d[6] == 0 && d[7] == 0, "an answer with its reserved bytes set");
    }
}

/* Run the worker until the server socket holds no datagram and nothing is
 * left to do. */
static void run_until_idle(void)
{
    for (;;) {
        event_base_loop(base, EVLOOP_NONBLOCK);
        int next = 0;
        if (ioctl(server_fd, FIONREAD, &next) != 0)
            next = 0;
        if (next == 0 && event_base_get_num_events(base, EVENT_BASE_COUNT_ACTIVE) == 0)
            return;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        start_worker();
    fuzz_begin_input();

    const uint8_t *stream;
    size_t len;
    size_t piece = fuzz_split(data, size, &stream, &len);

    struct conn_thread *ct = conn_thread_new(base, &worker_stats);
    FUZZ_CHECK(ct != NULL && conn_new_udp(ct, server_fd, "udp:fuzz"),
               "cannot set up the UDP connection");
    for (size_t off = 0; off < len; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        if (send(client_fd, stream + off, n, 0) < 0)
            continue; /* too large for a datagram: nothing to serve */
        run_until_idle();
        read_answers();
    }
    conn_thread_stop(ct, false);
    return 0;
}
