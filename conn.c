/*
 * conn.c - client connections: the state machine that moves bytes between
 * a socket and a protocol module, the buffers it uses, and the TCP, UNIX
 * and UDP transports.
 *
 * What this module owns:
 *   - struct conn and its life, from conn_new_client()/conn_new_udp() to
 *     conn_close();
 *   - per worker (struct conn_thread): the list of its connections, a pool
 *     of read buffers and a pool of output blocks, the idle-timeout timer;
 *   - the process-wide connection counters behind "stats".
 *
 * The machine (conn_drive) runs one connection until it must wait for its
 * socket.  It reads as much input as one read() gives, lets the protocol
 * execute every complete command in it, queues all their answers, and only
 * then writes, with one sendmsg() per IOV_MAX pieces.  States and
 * transitions:
 *
 *   conn_waiting  --readable-->  conn_read / conn_nread / conn_swallow
 *   conn_read     --bytes-->     conn_parse_cmd      (EOF/error: conn_closing)
 *   conn_parse_cmd --protocol--> conn_new_cmd (command done; when that
 *                                would only come back here, the next
 *                                command runs at once), conn_read
 *                                (incomplete), conn_nread, conn_swallow,
 *                                conn_write (pause, close)
 *   conn_nread    --value in-->  protocol value_read --> conn_new_cmd
 *   conn_swallow  --discarded--> conn_new_cmd
 *   conn_new_cmd  --> conn_parse_cmd (input left), conn_read (the last read
 *                     filled the buffer), conn_write then conn_waiting
 *                     (nothing left), or a yield after -R commands
 *   conn_write    --drained-->   write_then      (EAGAIN: wait writable)
 *   conn_closing  --> conn_closed (freed)
 *
 * Memory: an idle connection holds only its struct.  Read buffers
 * (RBUF_SIZE) are borrowed from the thread's pool while a connection has
 * unprocessed input and returned as soon as it has none.  Output goes into
 * blocks (CONN_OUT_BLOCK_SIZE) borrowed the same way: each block has room for
 * response text, the iovecs that point at that text and at item values,
 * and the items those iovecs reference.  Text never moves once queued, and
 * every referenced item is released right after its bytes are written.
 * A line longer than a read buffer is only legal for get/gets (memcached's
 * rule, enforced by the protocol); the buffer is then replaced by a
 * malloc'd one that doubles up to RBUF_LINE_MAX.
 *
 * UDP: every worker has its own conn on each shared UDP socket.  A
 * datagram is one request (8-byte header, then commands); the answer to
 * each command is sent as one message of datagrams of at most
 * UDP_DGRAM_MAX bytes, each with the header (request id, sequence number,
 * total datagrams, 0).  A command that does not fit in its datagram is
 * dropped, as memcached does.
 *
 * Protocols: the first byte of a connection picks the module (under
 * -B auto; -B ascii/binary fix it) and the machine calls it through a
 * proto_ops table: proto_text.c, or proto_bin.c for a first byte of 0x80.
 *
 * maxconns: a TCP/UNIX connection is admitted when fewer than
 * settings.maxconns client connections are open (UDP and listening sockets
 * are not counted); otherwise it is answered "ERROR Too many open
 * connections" and closed.  reserved_fds is informational only: the fds
 * the server holds for itself, which the fd limit must cover on top of
 * maxconns.
 *
 * Locking: a connection is only touched by its worker thread.  "stats
 * conns" (conn_report) walks other threads' lists: list membership is
 * guarded by conn_thread.lock, held by the owner only while linking or
 * unlinking; state and last_cmd_time are read with relaxed atomic loads.
 * Counters shared by threads are atomics; pool gauges are written by their
 * owner and read with relaxed loads.
 */
#include "conn.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include "clock.h"
#include "thread.h"
#include "util.h"

#define RBUF_SIZE 16384
#define RBUF_LINE_MAX (16u << 20)   /* longest line (a multi-get) we buffer */
#define RBUF_POOL_MAX 64            /* free read buffers kept per thread */
#define UDP_RBUF_SIZE 65536
#define UDP_HEADER_SIZE 8
#define UDP_DGRAM_MAX 1400          /* memcached's datagram size, header included */
#define UDP_SEND_WAIT_MS 100
#define OUT_POOL_MAX 64             /* free output blocks kept per thread */
#define OUT_FULL_BLOCKS 4           /* a long response pauses at this many blocks */
#define OUT_FULL_HELD (4u << 20)    /* ... or this many bytes of item values */
#define DRAIN_TIMEOUT_MS 5000
#define GATHER_MAX 1024             /* iovecs per sendmsg (Linux IOV_MAX) */

_Static_assert(CONN_OUT_TEXT_SIZE >= 4 * CONN_OUT_RESERVE_MAX,
               "an output block must hold several reserved text pieces");

/* A pooled read buffer, linked through its first bytes while free. */
struct free_buf {
    struct free_buf *next;
};

struct conn_thread {
    struct event_base *base;
    struct thread_stats *ts;
    struct thread_stats scratch;    /* counts nobody reports */
    pthread_mutex_t lock;           /* guards conns membership */
    struct conn *conns;
    struct free_buf *rbuf_pool;
    uint32_t rbuf_pool_n;
    struct out_block *out_pool;
    uint32_t out_pool_n;
    struct event idle_timer;
    bool idle_timer_on;
    /* Gauges: written by the owner, read by conn_get_totals(). */
    uint64_t g_conns;               /* conn structs */
    uint64_t g_rbufs;               /* read buffers allocated */
    uint64_t g_rbufs_free;          /* of which in the pool */
    uint64_t g_outs;                /* output blocks allocated */
    struct conn_thread *next;
};

static pthread_mutex_t threads_lock = PTHREAD_MUTEX_INITIALIZER;
static struct conn_thread *threads;

/* Process-wide counters (atomic). */
static uint64_t clients_open;       /* admitted TCP/UNIX connections */
static uint64_t udp_open;
static uint64_t total_conns;
static uint64_t rejected_conns;
static uint64_t total_conns_base;   /* values at the last "stats reset" */
static uint64_t rejected_conns_base;
static uint32_t reserved_fds;

#define ATOMIC_GET(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define ATOMIC_SET(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)
#define ATOMIC_ADD(v, n) __atomic_add_fetch(&(v), (n), __ATOMIC_RELAXED)
#define ATOMIC_SUB(v, n) __atomic_sub_fetch(&(v), (n), __ATOMIC_RELAXED)
/* Single-writer gauge update: no read-modify-write atomics needed. */
#define GAUGE_ADD(v, n) ATOMIC_SET(v, ATOMIC_GET(v) + (n))

enum flush_result {
    FLUSH_DONE,
    FLUSH_AGAIN,
    FLUSH_ERROR,
};

static void conn_drive(struct conn *c);
static void conn_close(struct conn *c);
static void conn_event_cb(evutil_socket_t fd, short what, void *arg);
static void udp_send_message(struct conn *c);

static const char *const state_names[] = {
    [conn_listening] = "conn_listening",
    [conn_new_cmd] = "conn_new_cmd",
    [conn_waiting] = "conn_waiting",
    [conn_read] = "conn_read",
    [conn_parse_cmd] = "conn_parse_cmd",
    [conn_nread] = "conn_nread",
    [conn_swallow] = "conn_swallow",
    [conn_write] = "conn_write",
    [conn_closing] = "conn_closing",
    [conn_closed] = "conn_closed",
};

/* Every transition goes through here, so "stats conns" on another thread
 * reads a whole value. */
static inline void conn_set_state(struct conn *c, enum conn_state s)
{
    ATOMIC_SET(c->state, s);
}

/* ---- Pools ---- */

/* A read buffer of RBUF_SIZE bytes, or NULL (counted) when out of memory. */
static char *rbuf_get(struct conn_thread *ct)
{
    struct free_buf *b = ct->rbuf_pool;
    if (b) {
        ct->rbuf_pool = b->next;
        ct->rbuf_pool_n--;
        GAUGE_ADD(ct->g_rbufs_free, -1);
        return (char *)b;
    }
    char *p = malloc(RBUF_SIZE);
    if (!p) {
        STATS_INCR(ct->ts, read_buf_oom);
        return NULL;
    }
    GAUGE_ADD(ct->g_rbufs, 1);
    return p;
}

static void rbuf_put(struct conn_thread *ct, char *p)
{
    if (ct->rbuf_pool_n >= RBUF_POOL_MAX) {
        free(p);
        GAUGE_ADD(ct->g_rbufs, -1);
        return;
    }
    struct free_buf *b = (struct free_buf *)p;
    b->next = ct->rbuf_pool;
    ct->rbuf_pool = b;
    ct->rbuf_pool_n++;
    GAUGE_ADD(ct->g_rbufs_free, 1);
}

/* Give the read buffer back once nothing in it is needed any more. */
static void conn_release_rbuf(struct conn *c)
{
    if (!c->rbuf || c->rbytes > 0 || c->transport == CONN_UDP)
        return;
    if (c->rbuf_own)
        free(c->rbuf);
    else
        rbuf_put(c->thread, c->rbuf);
    c->rgen++;
    c->rbuf = c->rcurr = NULL;
    c->rsize = 0;
    c->rbuf_own = false;
}

/* An empty output block from the pool, or NULL when out of memory. */
static struct out_block *out_block_get(struct conn_thread *ct)
{
    struct out_block *b = ct->out_pool;
    if (b) {
        ct->out_pool = b->next;
        ct->out_pool_n--;
    } else {
        b = malloc(CONN_OUT_BLOCK_SIZE);
        if (!b)
            return NULL;
        GAUGE_ADD(ct->g_outs, 1);
    }
    b->next = NULL;
    b->niov = b->iov_done = b->nitems = b->text_used = 0;
    return b;
}

/* Release the items a block references and return it to the pool. */
static void out_block_put(struct conn *c, struct out_block *b)
{
    struct conn_thread *ct = c->thread;
    for (uint32_t i = 0; i < b->nitems; i++) {
        c->out_held -= b->items[i]->nbytes;
        item_release(b->items[i]);
    }
    if (ct->out_pool_n >= OUT_POOL_MAX) {
        free(b);
        GAUGE_ADD(ct->g_outs, -1);
        return;
    }
    b->next = ct->out_pool;
    ct->out_pool = b;
    ct->out_pool_n++;
}

/* Drop everything queued (written or not). */
static void conn_out_discard(struct conn *c)
{
    while (c->out_head) {
        struct out_block *b = c->out_head;
        c->out_head = b->next;
        out_block_put(c, b);
    }
    c->out_tail = NULL;
    c->out_blocks = 0;
}

/* ---- Queuing output ---- */

/* Append a fresh block to the chain; NULL (the connection will close) when
 * memory is exhausted or an earlier failure already doomed the output. */
static struct out_block *conn_out_grow(struct conn *c)
{
    if (c->out_failed)
        return NULL;
    struct out_block *b = out_block_get(c->thread);
    if (!b) {
        STATS_INCR(c->ts, response_obj_oom);
        c->out_failed = true;
        return NULL;
    }
    if (c->out_tail)
        c->out_tail->next = b;
    else
        c->out_head = b;
    c->out_tail = b;
    c->out_blocks++;
    return b;
}

char *conn_out_reserve_fresh(struct conn *c)
{
    struct out_block *b = conn_out_grow(c);
    return b ? b->text : NULL;
}

void conn_out(struct conn *c, const char *s, size_t len)
{
    while (len > 0) {
        size_t chunk = len < CONN_OUT_TEXT_SIZE ? len : CONN_OUT_TEXT_SIZE;
        char *p = conn_out_reserve(c, chunk);
        if (!p)
            return;
        memcpy(p, s, chunk);
        conn_out_commit(c, chunk);
        s += chunk;
        len -= chunk;
    }
}

/* Queue the first len bytes of the value of it, from item memory (see
 * conn_out_item). */
static void conn_out_item_bytes(struct conn *c, item *it, size_t len)
{
    struct out_block *b = c->out_tail;
    if (!b || b->niov == CONN_OUT_IOV || b->nitems == CONN_OUT_ITEMS) {
        b = conn_out_grow(c);
        if (!b) {
            item_release(it);
            return;
        }
    }
    b->iov[b->niov].iov_base = ITEM_data(it);
    b->iov[b->niov].iov_len = len;
    b->niov++;
    b->items[b->nitems++] = it;
    c->out_held += it->nbytes;
}

void conn_out_item(struct conn *c, item *it)
{
    conn_out_item_bytes(c, it, it->nbytes);
}

void conn_out_item_value(struct conn *c, item *it)
{
    conn_out_item_bytes(c, it, it->nbytes - 2);
}

bool conn_out_full(const struct conn *c)
{
    return c->out_blocks >= OUT_FULL_BLOCKS || c->out_held >= OUT_FULL_HELD;
}

/* ---- Writing output ---- */

/* Mark n more bytes as written: finished blocks go back to the pool and
 * their items are released; a partly written iovec is moved forward. */
static void conn_out_advance(struct conn *c, size_t n)
{
    while (c->out_head) {
        struct out_block *b = c->out_head;
        while (b->iov_done < b->niov) {
            struct iovec *v = &b->iov[b->iov_done];
            if (n < v->iov_len) {
                v->iov_base = (char *)v->iov_base + n;
                v->iov_len -= n;
                return;
            }
            n -= v->iov_len;
            b->iov_done++;
        }
        c->out_head = b->next;
        c->out_blocks--;
        if (!c->out_head)
            c->out_tail = NULL;
        out_block_put(c, b);
    }
}

/* Write as much queued output as the socket takes, IOV_MAX pieces per
 * sendmsg (gathered across blocks so a batch is one system call). */
static enum flush_result conn_flush(struct conn *c)
{
    struct iovec vec[GATHER_MAX];
    while (c->out_head) {
        int n = 0;
        for (struct out_block *b = c->out_head; b && n < GATHER_MAX; b = b->next) {
            uint32_t take = b->niov - b->iov_done;
            if (take > (uint32_t)(GATHER_MAX - n))
                take = (uint32_t)(GATHER_MAX - n);
            memcpy(&vec[n], &b->iov[b->iov_done], take * sizeof(*vec));
            n += (int)take;
        }
        if (n == 0) {           /* only empty blocks left */
            conn_out_advance(c, 0);
            continue;
        }
        struct msghdr msg = {.msg_iov = vec, .msg_iovlen = (size_t)n};
        ssize_t w = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return FLUSH_AGAIN;
            mc_log(1, "<%d write failed: %s; closing connection", c->fd,
                   strerror(errno));
            return FLUSH_ERROR;
        }
        STATS_ADD(c->ts, bytes_written, (uint64_t)w);
        conn_out_advance(c, (size_t)w);
    }
    return FLUSH_DONE;
}

void conn_out_drain(struct conn *c)
{
    if (c->transport == CONN_UDP) {
        udp_send_message(c);
        return;
    }
    for (;;) {
        enum flush_result r = conn_flush(c);
        if (r == FLUSH_DONE)
            return;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        if (r == FLUSH_ERROR || poll(&p, 1, DRAIN_TIMEOUT_MS) <= 0) {
            mc_log(1, "<%d client stopped reading a long report; closing connection",
                   c->fd);
            conn_out_discard(c);
            c->out_failed = true;
            return;
        }
    }
}

/* ---- UDP ---- */

/* The UDP frame header is four 16-bit fields, high byte first. */
static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

/* Send one datagram; when the socket buffer is full wait a little, then
 * give up (UDP makes no delivery promise). */
static bool udp_send_datagram(struct conn *c, const void *buf, size_t len)
{
    for (int tries = 0; tries < 2; tries++) {
        ssize_t w = sendto(c->fd, buf, len, 0, &c->peer.sa, c->peer_len);
        if (w >= 0) {
            STATS_ADD(c->ts, bytes_written, (uint64_t)w);
            return true;
        }
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            break;
        struct pollfd p = {.fd = c->fd, .events = POLLOUT};
        poll(&p, 1, UDP_SEND_WAIT_MS);
    }
    mc_log(1, "<%d UDP reply to request %u dropped: %s", c->fd,
           c->udp_request_id, strerror(errno));
    return false;
}

/* Frame everything queued as one UDP message and send it. */
static void udp_send_message(struct conn *c)
{
    const size_t payload = UDP_DGRAM_MAX - UDP_HEADER_SIZE;
    size_t total = 0;
    for (struct out_block *b = c->out_head; b; b = b->next)
        for (uint32_t i = 0; i < b->niov; i++)
            total += b->iov[i].iov_len;
    size_t count = (total + payload - 1) / payload;
    if (count > UINT16_MAX) {
        mc_log(1, "<%d UDP reply of %zu bytes is too large; dropped", c->fd, total);
        count = 0;
    }
    unsigned char dgram[UDP_DGRAM_MAX];
    struct out_block *b = c->out_head;
    uint32_t i = 0;
    size_t off = 0;
    for (size_t seq = 0; seq < count; seq++) {
        put_be16(dgram, c->udp_request_id);
        put_be16(dgram + 2, (uint16_t)seq);
        put_be16(dgram + 4, (uint16_t)count);
        put_be16(dgram + 6, 0);
        size_t len = UDP_HEADER_SIZE;
        while (b && len < UDP_DGRAM_MAX) {
            if (i == b->niov) {
                b = b->next;
                i = 0;
                continue;
            }
            size_t take = b->iov[i].iov_len - off;
            if (take > UDP_DGRAM_MAX - len)
                take = UDP_DGRAM_MAX - len;
            memcpy(dgram + len, (char *)b->iov[i].iov_base + off, take);
            len += take;
            off += take;
            if (off == b->iov[i].iov_len) {
                i++;
                off = 0;
            }
        }
        if (!udp_send_datagram(c, dgram, len))
            break;
    }
    conn_out_discard(c);
}

/* Receive the next request datagram into the conn's buffer. */
static void udp_read(struct conn *c)
{
    for (;;) {
        c->peer_len = sizeof(c->peer);
        c->rgen++;
        ssize_t n = recvfrom(c->fd, c->rbuf, c->rsize, 0, &c->peer.sa, &c->peer_len);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                mc_log(1, "<%d UDP receive failed: %s", c->fd, strerror(errno));
            c->wait_for = conn_read;
            conn_set_state(c, conn_waiting);
            return;
        }
        STATS_ADD(c->ts, bytes_read, (uint64_t)n);
        const unsigned char *h = (const unsigned char *)c->rbuf;
        /* A request must fit one datagram ("total" = 1); memcached drops
         * anything else without an answer. */
        if (n <= UDP_HEADER_SIZE || h[4] != 0 || h[5] != 1)
            continue;
        c->udp_request_id = (uint16_t)(h[0] << 8 | h[1]);
        c->rcurr = c->rbuf + UDP_HEADER_SIZE;
        c->rbytes = (uint32_t)(n - UDP_HEADER_SIZE);
        c->protocol = settings.binding_protocol;
        conn_set_state(c, conn_parse_cmd);
        return;
    }
}

/* The rest of the datagram can't be used (incomplete command or value). */
static void udp_drop_rest(struct conn *c)
{
    c->rbytes = 0;
    c->nread_left = 0;
    c->swallow_left = 0;
    conn_set_state(c, conn_new_cmd);
}

/* ---- Events ---- */

/* Register the connection's event for flags (EV_READ or EV_WRITE), only
 * touching the event base when that changes. */
static bool conn_set_event(struct conn *c, short flags)
{
    if (c->ev_flags == flags)
        return true;
    event_del(&c->ev);
    event_assign(&c->ev, c->thread->base, c->fd, flags | EV_PERSIST,
                 conn_event_cb, c);
    if (event_add(&c->ev, NULL) != 0) {
        mc_log(1, "<%d could not register the connection's event", c->fd);
        return false;
    }
    c->ev_flags = flags;
    return true;
}

/* The socket is ready (or the connection yielded): a new event, a new -R
 * budget; resume where the connection was waiting. */
static void conn_event_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn *c = arg;
    c->nreqs = 0;
    if (c->state == conn_waiting)
        conn_set_state(c, c->wait_for);
    conn_drive(c);
}

/* ---- The state machine ---- */

/* Go to `next` once the queued output is written. */
static void conn_write_then(struct conn *c, enum conn_state next)
{
    c->write_then = next;
    conn_set_state(c, c->out_head ? conn_write : next);
}

/* Nothing more to do until the socket is readable: resume `resume` then.
 * Queued answers are written first, so a client that waits for them
 * before sending more is never stuck. */
static void conn_wait_for(struct conn *c, enum conn_state resume)
{
    c->wait_for = resume;
    conn_release_rbuf(c);
    conn_write_then(c, conn_waiting);
}

/* After -R commands in one event: write what is queued, then let the
 * event loop serve other connections before coming back. */
static bool conn_yield(struct conn *c)
{
    STATS_INCR(c->ts, conn_yields);
    if (c->transport != CONN_UDP && c->out_head) {
        enum flush_result r = conn_flush(c);
        if (r == FLUSH_ERROR) {
            conn_set_state(c, conn_closing);
            return true;
        }
        if (r == FLUSH_AGAIN) {
            /* Waiting to write is a yield too. */
            conn_write_then(c, conn_new_cmd);
            if (conn_set_event(c, EV_WRITE))
                return false;
            conn_set_state(c, conn_closing);
            return true;
        }
    }
    event_active(&c->ev, EV_READ, 0);
    return false;
}

/* conn_new_cmd: between two commands. */
static bool conn_next_command(struct conn *c)
{
    if (c->transport == CONN_UDP && c->out_head)
        udp_send_message(c);
    if (c->out_failed) {
        conn_set_state(c, conn_closing);
        return true;
    }
    bool more = c->rbytes > 0 || c->read_filled || c->transport == CONN_UDP;
    if (!more) {
        conn_wait_for(c, conn_read);
        return true;
    }
    if (conn_out_full(c)) {
        conn_write_then(c, conn_new_cmd);
        return true;
    }
    if (c->nreqs >= settings.reqs_per_event)
        return conn_yield(c);
    conn_set_state(c, c->rbytes > 0 ? conn_parse_cmd : conn_read);
    return true;
}

/* Make room at the end of the read buffer: borrow one, move unprocessed
 * input to the front, or (buffer full of one line) switch to a bigger
 * malloc'd buffer.  False when the line is too long or memory is out. */
static bool conn_make_room(struct conn *c)
{
    c->rgen++;
    if (!c->rbuf) {
        c->rbuf = c->rcurr = rbuf_get(c->thread);
        if (!c->rbuf)
            return false;
        c->rsize = RBUF_SIZE;
        c->rbytes = 0;
        return true;
    }
    if (c->rcurr != c->rbuf) {
        memmove(c->rbuf, c->rcurr, c->rbytes);
        c->rcurr = c->rbuf;
    }
    if (c->rbytes < c->rsize)
        return true;
    if (c->rsize >= RBUF_LINE_MAX) {
        mc_log(1, "<%d command line longer than %u bytes; closing connection",
               c->fd, RBUF_LINE_MAX);
        return false;
    }
    char *bigger = malloc((size_t)c->rsize * 2);
    if (!bigger) {
        STATS_INCR(c->ts, read_buf_oom);
        return false;
    }
    memcpy(bigger, c->rbuf, c->rbytes);
    if (c->rbuf_own)
        free(c->rbuf);
    else
        rbuf_put(c->thread, c->rbuf);
    c->rbuf = c->rcurr = bigger;
    c->rsize *= 2;
    c->rbuf_own = true;
    return true;
}

/* One read() of up to len bytes into dst for the current state.  Returns
 * the byte count (counted in bytes_read), or 0 after moving the machine
 * on: waiting for readable (the state resumes then), or closing at EOF or
 * on an error.  EINTR returns 0 leaving the state as it was, to retry. */
static size_t conn_read_some(struct conn *c, char *dst, size_t len)
{
    c->rgen++;
    ssize_t n = read(c->fd, dst, len);
    if (n > 0) {
        STATS_ADD(c->ts, bytes_read, (uint64_t)n);
        return (size_t)n;
    }
    if (n < 0 && errno == EINTR)
        return 0;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        conn_wait_for(c, c->state);
        return 0;
    }
    if (n < 0)
        mc_log(1, "<%d read failed: %s", c->fd, strerror(errno));
    conn_set_state(c, conn_closing);
    return 0;
}

/* conn_read: one read() into the free end of the buffer. */
static void conn_read_input(struct conn *c)
{
    if (c->transport == CONN_UDP) {
        udp_read(c);
        return;
    }
    if (!conn_make_room(c)) {
        conn_set_state(c, conn_closing);
        return;
    }
    size_t room = c->rsize - c->rbytes;
    size_t n = conn_read_some(c, c->rcurr + c->rbytes, room);
    c->read_filled = n == room;
    if (n > 0) {
        c->rbytes += (uint32_t)n;
        conn_set_state(c, conn_parse_cmd);
    }
}

/* What the connection machine calls in a protocol module. */
struct proto_ops {
    enum proto_next (*process)(struct conn *c);
    enum proto_next (*value_read)(struct conn *c);
    void (*abort)(struct conn *c);
};

static const struct proto_ops text_ops = {
    .process = proto_text_process,
    .value_read = proto_text_value_read,
    .abort = proto_text_abort,
};

static const struct proto_ops bin_ops = {
    .process = proto_bin_process,
    .value_read = proto_bin_value_read,
    .abort = proto_bin_abort,
};

/* The module of a decided protocol; NULL while not decided yet. */
static const struct proto_ops *proto_ops_of(enum protocol p)
{
    switch (p) {
    case PROTO_ASCII:
        return &text_ops;
    case PROTO_BINARY:
        return &bin_ops;
    case PROTO_NEGOTIATE:
        break;
    }
    return NULL;
}

/* The protocol module for this connection's commands (see proto_ops_of).
 * Under -B auto the first byte decides: 0x80 is the binary protocol's
 * request magic. */
static inline const struct proto_ops *conn_proto(struct conn *c)
{
    if (c->protocol == PROTO_NEGOTIATE) {
        c->protocol = (unsigned char)c->rcurr[0] == PROTO_BIN_REQ_MAGIC
                      ? PROTO_BINARY : PROTO_ASCII;
        mc_log(2, "%d: Client using the %s protocol", c->fd,
               c->protocol == PROTO_BINARY ? "binary" : "ascii");
    }
    return proto_ops_of(c->protocol);
}

/* Act on what the protocol asked for. */
static void conn_after_protocol(struct conn *c, enum proto_next next)
{
    bool udp = c->transport == CONN_UDP;
    switch (next) {
    case PROTO_NEXT_CMD:
        c->nreqs++;
        conn_set_state(c, conn_new_cmd);
        break;
    case PROTO_NEED_DATA:
        if (udp)
            udp_drop_rest(c);
        else
            conn_set_state(c, conn_read);
        break;
    case PROTO_NREAD:
        conn_set_state(c, conn_nread);
        break;
    case PROTO_SWALLOW:
        conn_set_state(c, conn_swallow);
        break;
    case PROTO_SUSPEND:
        if (udp) {
            udp_send_message(c);
            conn_set_state(c, conn_parse_cmd);
        } else {
            conn_write_then(c, conn_parse_cmd);
        }
        break;
    case PROTO_CLOSE:
        if (udp)
            udp_drop_rest(c);
        else
            conn_write_then(c, conn_closing);
        break;
    case PROTO_CLOSE_NOW:
        if (udp)
            udp_drop_rest(c);
        else
            conn_set_state(c, conn_closing);
        break;
    }
}

/* After a command completed: true when conn_next_command() would only go
 * back to conn_parse_cmd (a TCP/UNIX connection with input left, room for
 * more output, -R budget left and nothing failed). */
static inline bool conn_parse_goes_on(const struct conn *c)
{
    return c->transport != CONN_UDP && !c->out_failed && c->rbytes > 0 &&
           !conn_out_full(c) && c->nreqs + 1 < settings.reqs_per_event;
}

/* conn_parse_cmd: let the protocol run the buffered commands.  A command
 * that completes at once is followed by the next one right here when the
 * machine would come straight back (conn_parse_goes_on): a pipelined batch
 * then makes no round trip through conn_new_cmd per command. */
static void conn_parse_input(struct conn *c)
{
    enum proto_next (*process)(struct conn *) = conn_proto(c)->process;
    for (;;) {
        ATOMIC_SET(c->last_cmd_time, current_time);
        enum proto_next next = process(c);
        if (next != PROTO_NEXT_CMD || !conn_parse_goes_on(c)) {
            conn_after_protocol(c, next);
            return;
        }
        c->nreqs++;
    }
}

/* conn_nread: move value bytes from the socket straight into the item. */
static void conn_read_value(struct conn *c)
{
    if (c->nread_left == 0) {
        conn_after_protocol(c, conn_proto(c)->value_read(c));
        return;
    }
    if (c->transport == CONN_UDP) {
        conn_proto(c)->abort(c);
        udp_drop_rest(c);
        return;
    }
    size_t n = conn_read_some(c, c->nread_dst, c->nread_left);
    c->nread_dst += n;
    c->nread_left -= n;
}

/* conn_swallow: read and drop the bytes of a refused value. */
static void conn_discard_input(struct conn *c)
{
    if (c->swallow_left == 0) {
        conn_set_state(c, conn_new_cmd);
        return;
    }
    if (c->transport == CONN_UDP) {
        udp_drop_rest(c);
        return;
    }
    if (!conn_make_room(c)) {
        conn_set_state(c, conn_closing);
        return;
    }
    size_t want = c->rsize < c->swallow_left ? c->rsize : c->swallow_left;
    c->swallow_left -= conn_read_some(c, c->rbuf, want);
}

/* conn_write: false when the socket is full (wait for writable). */
static bool conn_write_out(struct conn *c)
{
    switch (conn_flush(c)) {
    case FLUSH_DONE:
        conn_set_state(c, c->write_then);
        return true;
    case FLUSH_AGAIN:
        if (conn_set_event(c, EV_WRITE))
            return false;
        break;
    case FLUSH_ERROR:
        break;
    }
    conn_set_state(c, conn_closing);
    return true;
}

/* Run the connection until it has to wait for its socket (or is gone). */
static void conn_drive(struct conn *c)
{
    for (;;) {
        switch (c->state) {
        case conn_new_cmd:
            if (!conn_next_command(c))
                return;
            break;
        case conn_waiting:
            if (!conn_set_event(c, EV_READ)) {
                conn_set_state(c, conn_closing);
                break;
            }
            return;
        case conn_read:
            conn_read_input(c);
            break;
        case conn_parse_cmd:
            conn_parse_input(c);
            break;
        case conn_nread:
            conn_read_value(c);
            break;
        case conn_swallow:
            conn_discard_input(c);
            break;
        case conn_write:
            if (!conn_write_out(c))
                return;
            break;
        case conn_closing:
            conn_close(c);
            return;
        case conn_listening:
        case conn_closed:
            return;
        }
    }
}

/* ---- Protocol helpers ---- */

enum proto_next conn_expect_value(struct conn *c, char *dst, size_t len)
{
    size_t have = c->rbytes < len ? c->rbytes : len;
    memcpy(dst, c->rcurr, have);
    conn_consume(c, have);
    c->nread_dst = dst + have;
    c->nread_left = len - have;
    return PROTO_NREAD;
}

enum proto_next conn_swallow_value(struct conn *c, size_t len)
{
    size_t have = c->rbytes < len ? c->rbytes : len;
    conn_consume(c, have);
    c->swallow_left = len - have;
    return PROTO_SWALLOW;
}

struct thread_stats *conn_scratch_stats(struct conn *c)
{
    return &c->thread->scratch;
}

/* ---- Life of a connection ---- */

/* Add c to / remove c from its thread's list (see "Locking" above). */
static void conn_link(struct conn_thread *ct, struct conn *c)
{
    pthread_mutex_lock(&ct->lock);
    c->next = ct->conns;
    if (ct->conns)
        ct->conns->prev = c;
    ct->conns = c;
    pthread_mutex_unlock(&ct->lock);
    GAUGE_ADD(ct->g_conns, 1);
}

static void conn_unlink(struct conn_thread *ct, struct conn *c)
{
    pthread_mutex_lock(&ct->lock);
    if (c->prev)
        c->prev->next = c->next;
    else
        ct->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    pthread_mutex_unlock(&ct->lock);
    GAUGE_ADD(ct->g_conns, -1);
}

/* A connection struct for fd (its peer address recorded), registered for
 * reading and linked. */
static struct conn *conn_create(struct conn_thread *ct, int fd,
                                enum conn_transport t, const char *listen_name)
{
    struct conn *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->fd = fd;
    c->transport = t;
    c->protocol = settings.binding_protocol;
    c->thread = ct;
    c->ts = ct->ts;
    c->listen_name = listen_name;
    c->last_cmd_time = current_time;
    c->state = conn_waiting;
    c->wait_for = conn_read;
    if (t == CONN_TCP) {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    /* Before linking: "stats conns" may read it from then on. */
    c->peer_len = sizeof(c->peer);
    if (t == CONN_UDP || getpeername(fd, &c->peer.sa, &c->peer_len) != 0)
        c->peer_len = 0;
    event_assign(&c->ev, ct->base, fd, EV_READ | EV_PERSIST, conn_event_cb, c);
    if (event_add(&c->ev, NULL) != 0) {
        free(c);
        return NULL;
    }
    c->ev_flags = EV_READ;
    conn_link(ct, c);
    return c;
}

bool conn_admit(int fd)
{
    if (ATOMIC_GET(clients_open) >= (uint64_t)settings.maxconns) {
        static const char msg[] = "ERROR Too many open connections\r\n";
        /* Counted before the client is told: once it has read the refusal,
         * "stats" must show it. */
        ATOMIC_ADD(rejected_conns, 1);
        ssize_t w = write(fd, msg, sizeof(msg) - 1);
        (void)w;
        close(fd);
        mc_log(1, "Too many open connections (-c %d): rejected a new one",
               settings.maxconns);
        return false;
    }
    ATOMIC_ADD(clients_open, 1);
    ATOMIC_ADD(total_conns, 1);
    return true;
}

bool conn_at_limit(void)
{
    return ATOMIC_GET(clients_open) >= (uint64_t)settings.maxconns;
}

void conn_abandon(int fd)
{
    close(fd);
    ATOMIC_SUB(clients_open, 1);
}

bool conn_new_client(struct conn_thread *ct, int fd, enum conn_transport t,
                     const char *listen_name)
{
    struct conn *c = conn_create(ct, fd, t, listen_name);
    if (!c) {
        mc_log(0, "out of memory for a new connection; closing fd %d", fd);
        conn_abandon(fd);
        return false;
    }
    mc_log(2, "<%d new %s client connection%s", fd,
           c->protocol == PROTO_NEGOTIATE ? "auto-negotiating"
           : c->protocol == PROTO_BINARY ? "binary" : "ascii",
           c->protocol == PROTO_NEGOTIATE ? "" : ".");
    return true;
}

bool conn_new_udp(struct conn_thread *ct, int fd, const char *listen_name)
{
    char *buf = malloc(UDP_RBUF_SIZE);
    if (!buf)
        return false;
    struct conn *c = conn_create(ct, fd, CONN_UDP, listen_name);
    if (!c) {
        free(buf);
        return false;
    }
    c->rbuf = c->rcurr = buf;
    c->rsize = UDP_RBUF_SIZE;
    c->rbuf_own = true;
    ATOMIC_ADD(udp_open, 1);
    ATOMIC_ADD(total_conns, 1);
    mc_log(2, "<%d server listening (udp)", fd);
    return true;
}

/* Free everything the connection holds; close its socket (a UDP conn
 * shares its socket with the other workers: thread.c closes that). */
static void conn_close(struct conn *c)
{
    struct conn_thread *ct = c->thread;
    if (c->transport != CONN_UDP)
        mc_log(2, "<%d connection closed.", c->fd);
    conn_set_state(c, conn_closed);
    const struct proto_ops *ops = proto_ops_of(c->protocol);
    if (ops)
        ops->abort(c);
    event_del(&c->ev);
    conn_out_discard(c);
    c->rbytes = 0;
    if (c->transport == CONN_UDP) {
        free(c->rbuf);
        ATOMIC_SUB(udp_open, 1);
    } else {
        conn_release_rbuf(c);
        close(c->fd);
        ATOMIC_SUB(clients_open, 1);
    }
    conn_unlink(ct, c);
    free(c);
}

/* ---- Per-thread context ---- */

/* Close connections that have waited for a command longer than
 * -o idle_timeout. */
static void idle_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct conn_thread *ct = arg;
    rel_time_t now = current_time;
    struct conn *next;
    for (struct conn *c = ct->conns; c; c = next) {
        next = c->next;
        if (c->transport == CONN_UDP || c->state != conn_waiting)
            continue;
        if (now - c->last_cmd_time > (rel_time_t)settings.idle_timeout) {
            STATS_INCR(ct->ts, idle_kicks);
            mc_log(1, "<%d closing idle connection (idle for more than %d s)",
                   c->fd, settings.idle_timeout);
            conn_close(c);
        }
    }
}

struct conn_thread *conn_thread_new(struct event_base *base, struct thread_stats *ts)
{
    struct conn_thread *ct = calloc(1, sizeof(*ct));
    if (!ct)
        return NULL;
    ct->base = base;
    ct->ts = ts;
    pthread_mutex_init(&ct->lock, NULL);
    if (settings.idle_timeout > 0) {
        struct timeval tick = {.tv_sec = 1, .tv_usec = 0};
        event_assign(&ct->idle_timer, base, -1, EV_PERSIST, idle_timer_cb, ct);
        ct->idle_timer_on = event_add(&ct->idle_timer, &tick) == 0;
    }
    pthread_mutex_lock(&threads_lock);
    ct->next = threads;
    threads = ct;
    pthread_mutex_unlock(&threads_lock);
    return ct;
}

void conn_thread_stop(struct conn_thread *ct, bool graceful)
{
    while (ct->conns) {
        struct conn *c = ct->conns;
        if (graceful && c->transport != CONN_UDP)
            conn_flush(c);
        conn_close(c);
    }
    if (ct->idle_timer_on)
        event_del(&ct->idle_timer);

    pthread_mutex_lock(&threads_lock);
    for (struct conn_thread **p = &threads; *p; p = &(*p)->next) {
        if (*p == ct) {
            *p = ct->next;
            break;
        }
    }
    pthread_mutex_unlock(&threads_lock);

    while (ct->rbuf_pool) {
        struct free_buf *b = ct->rbuf_pool;
        ct->rbuf_pool = b->next;
        free(b);
    }
    while (ct->out_pool) {
        struct out_block *b = ct->out_pool;
        ct->out_pool = b->next;
        free(b);
    }
    pthread_mutex_destroy(&ct->lock);
    free(ct);
}

/* ---- Reports ---- */

void conn_set_reserved_fds(uint32_t n)
{
    ATOMIC_SET(reserved_fds, n);
}

void conn_get_totals(struct conn_totals *out)
{
    memset(out, 0, sizeof(*out));
    out->curr_connections = ATOMIC_GET(clients_open) + ATOMIC_GET(udp_open);
    out->total_connections = ATOMIC_GET(total_conns) - ATOMIC_GET(total_conns_base);
    out->rejected_connections =
        ATOMIC_GET(rejected_conns) - ATOMIC_GET(rejected_conns_base);
    out->reserved_fds = ATOMIC_GET(reserved_fds);
    pthread_mutex_lock(&threads_lock);
    for (struct conn_thread *ct = threads; ct; ct = ct->next) {
        uint64_t outs = ATOMIC_GET(ct->g_outs);
        uint64_t rbufs = ATOMIC_GET(ct->g_rbufs);
        out->connection_structures += ATOMIC_GET(ct->g_conns);
        out->response_obj_count += outs;
        out->response_obj_bytes += outs * CONN_OUT_BLOCK_SIZE;
        out->read_buf_count += rbufs;
        out->read_buf_bytes += rbufs * RBUF_SIZE;
        out->read_buf_bytes_free += ATOMIC_GET(ct->g_rbufs_free) * RBUF_SIZE;
    }
    pthread_mutex_unlock(&threads_lock);
    thread_listen_totals(out);
}

void conn_stats_reset(void)
{
    ATOMIC_SET(total_conns_base, ATOMIC_GET(total_conns));
    ATOMIC_SET(rejected_conns_base, ATOMIC_GET(rejected_conns));
}

/* "tcp:127.0.0.1:41574", "tcp6:[::1]:41574", "unix:/path". */
static void conn_peer_name(const struct conn *c, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    const char *proto = c->transport == CONN_UDP ? "udp" : "tcp";
    if (c->transport == CONN_UNIX || c->peer_len == 0) {
        snprintf(buf, len, "%s", c->listen_name ? c->listen_name : "?");
    } else if (c->peer.sa.sa_family == AF_INET6) {
        inet_ntop(AF_INET6, &c->peer.in6.sin6_addr, host, sizeof(host));
        snprintf(buf, len, "%s6:[%s]:%u", proto, host, ntohs(c->peer.in6.sin6_port));
    } else {
        inet_ntop(AF_INET, &c->peer.in.sin_addr, host, sizeof(host));
        snprintf(buf, len, "%s:%s:%u", proto, host, ntohs(c->peer.in.sin_port));
    }
}

/* One "stats conns" group; name is "<fd>:<stat>". */
static void conn_report_one(const struct conn *c, add_stat_fn add, void *ctx)
{
    char name[64], addr[sizeof(struct sockaddr_un) + 16];
    enum conn_state st = ATOMIC_GET(c->state);
    rel_time_t last = ATOMIC_GET(c->last_cmd_time);
    if (c->transport == CONN_UDP) {
        snprintf(name, sizeof(name), "%d:UDP", c->fd);
        add(name, strlen(name), "UDP", 3, ctx);
        snprintf(addr, sizeof(addr), "%s", c->listen_name ? c->listen_name : "udp:?");
    } else {
        conn_peer_name(c, addr, sizeof(addr));
    }
    snprintf(name, sizeof(name), "%d:addr", c->fd);
    add(name, strlen(name), addr, strlen(addr), ctx);
    if (c->transport != CONN_UDP && c->listen_name) {
        snprintf(name, sizeof(name), "%d:listen_addr", c->fd);
        add(name, strlen(name), c->listen_name, strlen(c->listen_name), ctx);
    }
    snprintf(name, sizeof(name), "%d:state", c->fd);
    add(name, strlen(name), state_names[st], strlen(state_names[st]), ctx);
    snprintf(name, sizeof(name), "%d:secs_since_last_cmd", c->fd);
    stats_addf(add, ctx, name, "%u", (unsigned)(current_time - last));
}

void conn_report(add_stat_fn add, void *ctx)
{
    thread_report_listeners(add, ctx);
    pthread_mutex_lock(&threads_lock);
    for (struct conn_thread *ct = threads; ct; ct = ct->next) {
        pthread_mutex_lock(&ct->lock);
        for (const struct conn *c = ct->conns; c; c = c->next)
            conn_report_one(c, add, ctx);
        pthread_mutex_unlock(&ct->lock);
    }
    pthread_mutex_unlock(&threads_lock);
}
