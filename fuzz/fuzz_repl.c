/*
 * fuzz/fuzz_repl.c - fuzz the replication receive path: whatever a peer
 * sends on the link is decoded, checked and applied by replication.c.
 *
 * What it drives: the real replication thread, started once by
 * repl_start() with -x 127.0.0.1:P -X P on a free port P (it dials its own
 * listener, recognises itself in the handshake and stops dialing, as a
 * node of a same-host pair does), on a storage engine started once with
 * -m 8.  Each input is one peer connection to P: the thread accepts it,
 * sends its HELLO, and treats every byte we send as the peer's stream
 * (doc/replication.md sections 3 and 4): HELLO, then ITEM, DELETE, FLUSH,
 * SYNC_BEGIN/END, ACK, PING/PONG, BYE.  Once a HELLO is accepted the link
 * is up and the thread runs its bulk sync towards us, so the send path
 * runs too.  Before each input the cache is flushed (a local flush_all),
 * so the bulk sync of the next link stays short.
 *
 * How an input is interpreted (harness.h, fuzz_split): byte 0 is the piece
 * length (0 = all at once), the rest is the peer's byte stream, sent in
 * pieces of that length; after each piece we wait until the replication
 * thread has received it (its repl_bytes_received counter) or closed the
 * link, so frames split across reads are exercised.  Then we shut our
 * sending side down and read until the thread closes the link.
 *
 * Checks beyond the sanitizers: every frame the thread sends us has a
 * known type, zero reserved bytes and a plausible length; the link closes
 * within 10 s of our EOF; the node's version clock still moves forward
 * after the input (clock.h: strictly increasing).
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../clock.h"
#include "../memcached.h"
#include "../replication.h"
#include "../stats.h"
#include "../storage.h"

#define LINK_TIMEOUT_MS 10000
#define MSG_TYPE_MAX 10     /* BYE: the highest type of section 4.1 */

static int repl_port;
static struct thread_stats harness_stats;

/* A TCP port nobody listens on right now (the kernel's pick). */
static int free_port(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_ANY_INIT};
    socklen_t al = sizeof(a);
    FUZZ_CHECK(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
               getsockname(fd, (struct sockaddr *)&a, &al) == 0,
               "cannot find a free port: %s", strerror(errno));
    close(fd);
    return ntohs(a.sin6_port);
}

static void start_node(void)
{
    static char port[8], peer[32];
    repl_port = free_port();
    snprintf(port, sizeof(port), "%d", repl_port);
    snprintf(peer, sizeof(peer), "127.0.0.1:%d", repl_port);
    static char *argv[] = {"fuzz_repl", "-m", "8", "-x", peer, "-X", port, NULL};
    fuzz_start_daemon(argv);
    stats_register(&harness_stats);
    FUZZ_CHECK(repl_start(), "replication did not start");
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- What the node has received: its repl_bytes_received counter ---- */

static void take_bytes_received(const char *name, size_t nlen, const char *val,
                                size_t vlen, void *ctx)
{
    if (nlen == strlen("repl_bytes_received") &&
        memcmp(name, "repl_bytes_received", nlen) == 0)
        *(uint64_t *)ctx = strtoull(val, NULL, 10);
}

static uint64_t bytes_received(void)
{
    uint64_t n = 0;
    repl_report(take_bytes_received, &n);
    return n;
}

/* ---- The link, seen from the fake peer ---- */

struct peer {
    int fd;
    bool closed;            /* the node closed the link (EOF or reset) */
    uint8_t hdr[8];         /* the header of the frame being read */
    size_t hdr_have;
    uint64_t body_left;
};

/* Check the framing of what the node sends (doc section 3). */
static void check_frames(struct peer *p, const uint8_t *b, size_t n)
{
    while (n > 0) {
        if (p->body_left > 0) {
            size_t k = n < p->body_left ? n : (size_t)p->body_left;
            p->body_left -= k;
            b += k;
            n -= k;
            continue;
        }
        p->hdr[p->hdr_have++] = *b++;
        n--;
        if (p->hdr_have < sizeof(p->hdr))
            continue;
        p->hdr_have = 0;
        uint32_t len = (uint32_t)p->hdr[0] << 24 | (uint32_t)p->hdr[1] << 16 |
                       (uint32_t)p->hdr[2] << 8 | p->hdr[3];
        FUZZ_CHECK(p->hdr[4] >= 1 && p->hdr[4] <= MSG_TYPE_MAX,
                   "the node sent a frame of unknown type %u", p->hdr[4]);
        FUZZ_CHECK(!p->hdr[5] && !p->hdr[6] && !p->hdr[7],
                   "the node sent a frame with reserved bytes set");
        FUZZ_CHECK(len <= (uint32_t)settings.item_size_max + 1024 + 300,
                   "the node sent a %u-byte frame", len);
        p->body_left = len;
    }
}

/* Wait up to timeout_ms for the link to become readable (and writable
 * when want_write), reading and checking whatever the node sent.  Returns
 * true when the socket is writable. */
static bool peer_poll(struct peer *p, bool want_write, int timeout_ms)
{
    struct pollfd pfd = {.fd = p->fd, .events = POLLIN | (want_write ? POLLOUT : 0)};
    if (poll(&pfd, 1, timeout_ms) <= 0)
        return false;
    if (pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
        uint8_t buf[65536];
        ssize_t n = recv(p->fd, buf, sizeof(buf), MSG_DONTWAIT);
        if (n > 0)
            check_frames(p, buf, (size_t)n);
        else if (n == 0 || (errno != EAGAIN && errno != EINTR))
            p->closed = true;
    }
    return (pfd.revents & POLLOUT) != 0;
}

/* Send one piece and wait until the node has received all we sent
 * (target: its counter's value then) or has closed the link. */
static void send_piece(struct peer *p, const uint8_t *b, size_t len, uint64_t target)
{
    uint64_t deadline = now_ms() + LINK_TIMEOUT_MS;
    while (len > 0 && !p->closed) {
        ssize_t n = send(p->fd, b, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            b += n;
            len -= (size_t)n;
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
            p->closed = true;
        } else {
            peer_poll(p, true, 10);
            FUZZ_CHECK(now_ms() < deadline, "the node stopped reading the link");
        }
    }
    /* The thread takes a piece within microseconds: yield rather than
     * sleep while it does. */
    while (!p->closed && bytes_received() < target) {
        peer_poll(p, false, 0);
        sched_yield();
        FUZZ_CHECK(now_ms() < deadline, "the node stopped reading the link");
    }
}

static int connect_to_node(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)repl_port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint64_t deadline = now_ms() + LINK_TIMEOUT_MS;
    for (;;) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        FUZZ_CHECK(fd >= 0, "socket: %s", strerror(errno));
        if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0) {
            /* Each piece leaves at once, as a peer's frames do. */
            int one = 1;
            setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
            return fd;
        }
        close(fd);
        /* Only at start-up: the thread may not be listening yet. */
        FUZZ_CHECK(now_ms() < deadline, "cannot connect to the node: %s", strerror(errno));
        struct timespec pause = {0, 10 * 1000 * 1000};
        nanosleep(&pause, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (repl_port == 0)
        start_node();
    fuzz_begin_input();
    storage_flush(0, &harness_stats);
    uint64_t version_before = clock_next_version();

    const uint8_t *stream;
    size_t len;
    size_t piece = fuzz_split(data, size, &stream, &len);

    struct peer p = {.fd = connect_to_node()};
    uint64_t target = bytes_received();
    for (size_t off = 0; off < len && !p.closed; off += piece) {
        size_t n = len - off < piece ? len - off : piece;
        target += n;
        send_piece(&p, stream + off, n, target);
    }

    shutdown(p.fd, SHUT_WR);
    uint64_t deadline = now_ms() + LINK_TIMEOUT_MS;
    while (!p.closed) {
        peer_poll(&p, false, 100);
        FUZZ_CHECK(now_ms() < deadline, "the link stayed open after the peer's EOF");
    }
    close(p.fd);

    uint64_t version_after = clock_next_version();
    FUZZ_CHECK(version_after > version_before,
               "the version clock went backwards: %#llx after %#llx",
               (unsigned long long)version_after, (unsigned long long)version_before);
    return 0;
}
