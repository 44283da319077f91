/*
 * replication.c - master-master replication with one peer.
 *
 * What this module owns: the replication thread, its libevent loop, the
 * listening socket on -X, the dialer for -x, the link to the peer (at most
 * one established at a time), the queues that carry local mutations to
 * it, and the application of the peer's writes.  The design, the message
 * formats and the rules (last writer wins by version, tombstones, bulk sync
 * on every connect, bounds, drain) are in doc/replication.md; section
 * numbers below refer to it.
 *
 * Threads and locking:
 *   - Worker threads only run the storage hooks (repl_hook_item,
 *     repl_hook_flush).  Each worker pushes the new states into its own
 *     single-producer/single-consumer byte ring: a small state as its
 *     encoded wire frame, a larger one as an item pointer with a reference
 *     taken (see RING_BYTES); the replication thread is the only consumer.
 *     No lock on that path; a worker writes the wake-up eventfd only when
 *     the replication thread has said it is going to sleep
 *     (ring_sleeping).  Once woken, the thread lingers: it polls the rings
 *     every linger_us (200 to 600 us, see LINGER_MIN_US) for as long as
 *     writes keep coming and only then goes back to sleep, so a busy
 *     stream costs the workers no system call and the link one writev per
 *     batch, at the price of up to LINGER_MAX_US of lag.  Flush events are
 *     rare and go through a mutex-protected list.  (Tried and measured
 *     worse: workers sending the batch themselves under a trylock, with a
 *     timer in their own loops instead of this thread's wake-ups: +7% CPU
 *     per request on the serving node under the pipelined load, although
 *     this thread's own cost fell from 0.06 to 0.002 us per request; the
 *     peer's receive path and wake-up then run in the middle of a worker's
 *     batch.)
 *   - link_up (seq_cst) tells workers whether to queue at all: while no
 *     link is up nothing is queued, because the bulk sync on the next
 *     connect carries everything.  The flag is raised before the sync walk
 *     starts, so a write is either seen by the walk or queued (4.3).
 *   - Everything else (links, out queue, counters) belongs to the
 *     replication thread.  Counters read by "stats" are written with relaxed
 *     stores by their single writer.
 *   - repl_drain_and_stop() runs on the main thread and talks to the
 *     replication thread through drain_lock/drain_cond.
 */
#include "config.h"

#include "replication.h"

#include <arpa/inet.h>
#include <endian.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "assoc.h"
#include "clock.h"
#include "hash.h"
#include "items.h"
#include "memcached.h"
#include "storage.h"
#include "util.h"

#define REPL_PROTO_VERSION 1
#define REPL_PROTO_MIN 1
#define REPL_MAGIC "MCREPL"
#define FRAME_HDR 8
#define MAX_KEY 250

enum msg_type {
    MSG_HELLO = 1,
    MSG_ITEM = 2,
    MSG_DELETE = 3,
    MSG_FLUSH = 4,
    MSG_SYNC_BEGIN = 5,
    MSG_SYNC_END = 6,
    MSG_ACK = 7,
    MSG_PING = 8,
    MSG_PONG = 9,
    MSG_BYE = 10,
};

#define HELLO_BODY (6 + 2 + 2 + 8 + 1 + 1 + 8)
#define ITEM_FIXED (8 + 8 + 4 + 8 + 1 + 1 + 4)
#define DELETE_FIXED (8 + 1)

enum link_state { STATE_DOWN, STATE_CONNECTING, STATE_SYNCING, STATE_STREAMING };
static const char *const state_names[] = {"down", "connecting", "syncing", "streaming"};

/* ---- Counters (doc section 7) ---- */

static struct {
    uint64_t items_sent, bytes_sent, items_received, bytes_received;
    uint64_t pending_items, pending_bytes;
    uint64_t bulk_syncs, reconnects, links, conflicts, overflows;
    uint64_t lag_us, rtt_us;
    uint32_t state;
    uint32_t role_dialed;
} rs;

#define RS_SET(f, v) __atomic_store_n(&rs.f, (v), __ATOMIC_RELAXED)
#define RS_GET(f) __atomic_load_n(&rs.f, __ATOMIC_RELAXED)
#define RS_ADD(f, n) RS_SET(f, RS_GET(f) + (n))

/* ---- Producer rings (workers -> replication thread) ---- */

/* A ring is a byte FIFO of records, each starting with a frame header
 * (section 3): a small state (SMALL_MSG bytes at most) is its wire frame,
 * serialized by the worker; a larger one is a REC_REF record holding the
 * item pointer (a reference taken).  A record never wraps: the producer
 * skips the end of the ring with a REC_PAD record, or without one when
 * fewer than FRAME_HDR bytes are left.  head and tail are byte positions
 * that only grow, on separate cache lines; the producer re-reads tail only
 * when its last look says the ring is full. */
#define RING_BYTES (4u << 20)
#define SMALL_MSG 512
enum { REC_REF = 0xf0, REC_PAD = 0xf1 }; /* ring-only types, never sent */

struct repl_ring {
    uint64_t head __attribute__((aligned(64)));  /* next byte the producer fills */
    uint64_t tail_seen;     /* the producer's last look at tail */
    struct repl_ring *next; /* rings list, under rings_lock */
    uint64_t tail __attribute__((aligned(64)));  /* next byte the consumer takes */
    uint8_t bytes[RING_BYTES] __attribute__((aligned(64)));
};

static __thread struct repl_ring *my_ring;
static pthread_mutex_t rings_lock = PTHREAD_MUTEX_INITIALIZER;
static struct repl_ring *rings;

struct flush_event {
    rel_time_t when;
    uint64_t version;
    struct flush_event *next;
};
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;
static struct flush_event *flushes;     /* queued for the link */
static struct flush_event last_flush;   /* newest flush seen, version 0 = none */

static int wake_fd = -1;
static int ring_sleeping;       /* consumer is about to wait for wake_fd */
static int link_up;             /* workers queue only while set (seq_cst) */
static int ring_overflowed;     /* a producer found its ring full */

/* ---- The replication thread's state ---- */

/* An out queue entry: an item state to encode (it), a frame already
 * encoded into the link's out buffer (OUT_RAW: a = its position in the
 * buffer's byte sequence, b = its length), or another message (a, b: its
 * fields). */
enum { OUT_RAW = 0xf2 };
struct out_msg {
    item *it;           /* ITEM or DELETE (tombstone): referenced */
    uint8_t type;       /* MSG_* or OUT_RAW */
    uint64_t a, b;
};

struct link {
    int fd;
    bool dialed;            /* we opened it */
    bool connected;         /* TCP connect finished */
    bool hello_done;        /* handshake complete */
    struct event *rev;
    struct event *wev;
    struct event *hello_timer;
    uint64_t peer_run_id;
    char peer_name[INET6_ADDRSTRLEN + 8];

    /* Receiving. */
    char *rbuf;
    size_t rsize, rlen;
    uint64_t msgs_received;     /* applied messages: what we ACK */
    uint64_t ack_sent;          /* msgs_received in the last ACK */
    bool ack_due;               /* msgs_received moved since that ACK */
    bool ack_now;               /* the ACK timer says: don't wait longer */
    bool peer_synced;           /* peer's SYNC_END arrived */
    uint64_t lag_version;       /* newest version applied by this read, 0: none */

    /* Sending: a FIFO of messages, head sent partially up to out_off. */
    struct out_msg *out;
    size_t out_cap, out_head, out_len;
    size_t out_off;
    uint64_t out_bytes;         /* item and OUT_RAW bytes held by the queue */
    /* The out buffer: the frames of the OUT_RAW entries, in queue order.
     * Positions are a byte sequence that only grows; obuf[0] is position
     * obuf_base, obuf_done is the end of the last entry sent, obuf_end
     * the end of the last one queued. */
    uint8_t *obuf;
    size_t obuf_cap;
    uint64_t obuf_base, obuf_done, obuf_end;
    uint64_t msgs_sent;         /* messages fully written (ACK-comparable) */
    uint64_t msgs_queued;       /* messages queued so far (ACK-comparable) */
    uint64_t peer_acked;
    uint8_t ctrl[64];           /* a control message being sent */
    size_t ctrl_len, ctrl_off;

    /* Bulk sync walk (4.3). */
    struct storage_walk *walk;
    uint64_t walk_sent;
    uint64_t sync_end_at;       /* msgs_queued after our SYNC_END */
    bool sync_end_queued;
    struct timespec sync_started;
};

static struct event_base *base;
static pthread_t repl_thread;
static bool started;
static struct thread_stats repl_ts;

static char *peer_host;
static char peer_port[8];
static char peer_label[300];
static uint64_t run_id;

static int listen_fd = -1;
static struct event *listen_ev;
static struct event *retry_timer;
static struct event *ping_timer;
static struct event *wake_ev;
static struct event *linger_timer;
static struct event *ack_timer;

/* Stay awake linger_us after a batch before sleeping (see the top).  The
 * linger starts at LINGER_MIN_US when a worker wakes the thread and grows
 * by LINGER_STEP_US per batch, up to LINGER_MAX_US, while batches stay
 * under LINGER_TARGET_BYTES: a steady stream of small writes then costs
 * fewer wake-ups and writevs (each one also runs the peer's TCP receive
 * path and wake-up on this node's CPU), while a stream heavy enough to
 * fill batches on its own, or a lone write after a quiet spell, keeps the
 * short linger.  LINGER_MAX_US bounds the lag it adds (doc section 1).
 * Each batch costs this node ~25 us of CPU whatever its size (the timer
 * wake-up and context switch, the writev, and on loopback the peer's TCP
 * receive path and wake-up), so the maximum sets the replication's CPU
 * share under a busy stream: 400 us cost ~6% of the CPU per request of the
 * pipelined benchmark, 600 us ~4.5%; 800 us would cost ~3.5% but put the
 * p99 lag at 50k writes/s over 1 ms (doc/performance.md, (d) and (e)). */
#define LINGER_MIN_US 200
#define LINGER_MAX_US 600
#define LINGER_STEP_US 50
#define LINGER_TARGET_BYTES (32u << 10)
static unsigned linger_us = LINGER_MIN_US;
/* ACK every ACK_EVERY messages, and at the latest ACK_DELAY_US after the
 * first unacknowledged one: under a steady stream the timer decides, so
 * about 1 s / ACK_DELAY_US ACKs a second, each a wake-up of the sender
 * and of this thread.  Nothing waits for an ACK but the shutdown drain
 * and the repl_pending_* figures (sent messages are released at once), so
 * 20 ms costs them little; at 5 ms the ACKs were ~10% of both threads'
 * wake-ups under the pipelined benchmark. */
#define ACK_EVERY 4096
#define ACK_DELAY_US 20000
static int retry_ms = 100;
static bool self_dial;          /* dialing -x reached our own listener */

#define MAX_PENDING_LINKS 4
static struct link *active;
static struct link *pending[MAX_PENDING_LINKS];
static bool ever_linked;
static bool overflowed;         /* pending bound hit; next link must resync */

static uint64_t queue_max_items;
static uint64_t queue_max_bytes;

/* Drain handshake with the main thread (section 6). */
static int drain_requested;     /* set by the main thread */
static bool drain_running;      /* the replication thread's drain loop */

static void link_close(struct link *l, const char *why);
static void drain_step(evutil_socket_t fd, short what, void *arg);
static void link_try_write(struct link *l);
static void schedule_retry(void);
static void set_state(enum link_state s);

/* ---- Small helpers ---- */

/* Big-endian stores and loads of the wire's integers: one byte swap and an
 * unaligned move each (the byte-at-a-time loops cost a worker ~180
 * instructions per replicated set). */
static void put16(uint8_t *p, uint16_t v) { v = htobe16(v); memcpy(p, &v, 2); }
static void put32(uint8_t *p, uint32_t v) { v = htobe32(v); memcpy(p, &v, 4); }
static void put64(uint8_t *p, uint64_t v) { v = htobe64(v); memcpy(p, &v, 8); }
static uint16_t get16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return be16toh(v); }
static uint32_t get32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return be32toh(v); }
static uint64_t get64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return be64toh(v); }

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000 + (uint64_t)ts.tv_nsec / 1000;
}

static void frame_header(uint8_t *p, uint32_t len, uint8_t type)
{
    put32(p, len);
    p[4] = type;
    p[5] = p[6] = p[7] = 0;
}

static bool set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && fcntl(fd, F_SETFL, fl | O_NONBLOCK) == 0;
}

/* ---- Encoding of item states (4.1) ---- */

/* Bytes of the ITEM or DELETE frame (header included) carrying it: a
 * tombstone travels as DELETE, anything else as ITEM. */
static size_t state_size(const item *it)
{
    if (it->it_flags & ITEM_TOMBSTONE)
        return FRAME_HDR + DELETE_FIXED + it->nkey;
    return FRAME_HDR + ITEM_FIXED + it->nkey + it->nbytes - 2;
}

/* Write the frame header and the fixed fields of it's ITEM or DELETE
 * frame at h (FRAME_HDR + ITEM_FIXED bytes at most); the key, then the
 * value for an ITEM, follow them.  Returns the bytes written. */
static size_t encode_state_head(uint8_t *h, const item *it)
{
    uint8_t *b = h + FRAME_HDR;
    if (it->it_flags & ITEM_TOMBSTONE) {
        frame_header(h, DELETE_FIXED + it->nkey, MSG_DELETE);
        put64(b, it->version);
        b[8] = it->nkey;
        return FRAME_HDR + DELETE_FIXED;
    }
    uint32_t vlen = it->nbytes - 2;
    frame_header(h, ITEM_FIXED + it->nkey + vlen, MSG_ITEM);
    put64(b, it->version);
    put64(b + 8, it->cas);
    put32(b + 16, it->client_flags);
    put64(b + 20, (uint64_t)rel_to_unix(it->exptime));
    b[28] = it->nkey;
    b[29] = 0;
    put32(b + 30, vlen);
    return FRAME_HDR + ITEM_FIXED;
}

/* ---- Producer side: the storage hooks (run on worker threads) ---- */

static struct repl_ring *ring_for_this_thread(void)
{
    if (my_ring == NULL) {
        /* The bytes are left untouched: pages come in as the ring fills. */
        struct repl_ring *r = aligned_alloc(64, sizeof(*r));
        if (r == NULL)
            return NULL;
        r->head = r->tail_seen = r->tail = 0;
        pthread_mutex_lock(&rings_lock);
        r->next = rings;
        rings = r;
        pthread_mutex_unlock(&rings_lock);
        my_ring = r;
    }
    return my_ring;
}

/* Wake the replication thread if it said it sleeps.  The fence orders the
 * caller's push before the look at ring_sleeping (the consumer fences
 * between raising the flag and its last look at the rings, see
 * on_linger); reading the flag before exchanging it keeps the producers
 * from writing that shared cache line while the consumer is awake. */
static void wake_consumer(void)
{
    __atomic_thread_fence(__ATOMIC_SEQ_CST);
    if (__atomic_load_n(&ring_sleeping, __ATOMIC_RELAXED) &&
        __atomic_exchange_n(&ring_sleeping, 0, __ATOMIC_SEQ_CST)) {
        uint64_t one = 1;
        ssize_t n = write(wake_fd, &one, sizeof(one));
        (void)n; /* a full eventfd counter already means "wake up" */
    }
}

/* Room for a record of len bytes (at most RING_BYTES / 2) at the head of
 * r, skipping the end of the ring when the record would not fit there;
 * NULL when the ring is full.  *next is the head after the record, to
 * publish once it is written. */
static uint8_t *ring_reserve(struct repl_ring *r, size_t len, uint64_t *next)
{
    uint64_t head = r->head;
    size_t off = head & (RING_BYTES - 1);
    size_t to_end = RING_BYTES - off;
    size_t skip = len <= to_end ? 0 : to_end;
    if (head + skip + len - r->tail_seen > RING_BYTES) {
        r->tail_seen = __atomic_load_n(&r->tail, __ATOMIC_ACQUIRE);
        if (head + skip + len - r->tail_seen > RING_BYTES)
            return NULL;
    }
    if (skip) {
        if (skip >= FRAME_HDR)
            frame_header(r->bytes + off, (uint32_t)(skip - FRAME_HDR), REC_PAD);
        off = 0;
    }
    *next = head + skip + len;
    return r->bytes + off;
}

/* Queue the key's new state for the peer; called by storage after every
 * local mutation (items and tombstones alike).  A small state is
 * serialized here, while the item is hot in this core's cache: the
 * replication thread then never touches the item nor its reference
 * count. */
static void repl_hook_item(item *it)
{
    if (!__atomic_load_n(&link_up, __ATOMIC_SEQ_CST))
        return;
    struct repl_ring *r = ring_for_this_thread();
    size_t size = state_size(it);
    bool by_ref = size > SMALL_MSG;
    uint64_t next = 0;
    uint8_t *p = r ? ring_reserve(r, by_ref ? FRAME_HDR + sizeof(it) : size, &next) : NULL;
    if (p == NULL) {
        /* The consumer is far behind: give up streaming, resync later. */
        __atomic_store_n(&ring_overflowed, 1, __ATOMIC_RELAXED);
        wake_consumer();
        return;
    }
    if (by_ref) {
        item_ref(it);
        frame_header(p, sizeof(it), REC_REF);
        memcpy(p + FRAME_HDR, &it, sizeof(it));
    } else {
        size_t h = encode_state_head(p, it);
        memcpy(p + h, ITEM_key(it), it->nkey);
        if (!(it->it_flags & ITEM_TOMBSTONE))
            memcpy(p + h + it->nkey, ITEM_data(it), it->nbytes - 2);
    }
    __atomic_store_n(&r->head, next, __ATOMIC_RELEASE);
    wake_consumer();
}

/* Remember the newest flush (local or the peer's): every bulk sync starts
 * with it, so a flush made while the nodes were apart reaches the other
 * side (4.3). */
static void remember_flush(rel_time_t when, uint64_t version)
{
    pthread_mutex_lock(&flush_lock);
    if (version > last_flush.version) {
        last_flush.when = when;
        last_flush.version = version;
    }
    pthread_mutex_unlock(&flush_lock);
}

static void repl_hook_flush(rel_time_t when, uint64_t version)
{
    remember_flush(when, version);
    if (!__atomic_load_n(&link_up, __ATOMIC_SEQ_CST))
        return;
    struct flush_event *f = malloc(sizeof(*f));
    if (f == NULL) {
        __atomic_store_n(&ring_overflowed, 1, __ATOMIC_RELAXED);
        wake_consumer();
        return;
    }
    f->when = when;
    f->version = version;
    pthread_mutex_lock(&flush_lock);
    f->next = flushes;
    flushes = f;
    pthread_mutex_unlock(&flush_lock);
    wake_consumer();
}

/* ---- Out queue (replication thread) ---- */

/* The out queue's slot i places after its head (i < out_cap), without a
 * division: build_iov looks up two slots per message. */
static inline struct out_msg *out_at(const struct link *l, size_t i)
{
    size_t k = l->out_head + i;
    return &l->out[k < l->out_cap ? k : k - l->out_cap];
}

static bool out_push(struct link *l, uint8_t type, item *it, uint64_t a, uint64_t b)
{
    if (l->out_len == l->out_cap) {
        size_t ncap = l->out_cap ? l->out_cap * 2 : 1024;
        struct out_msg *n = malloc(ncap * sizeof(*n));
        if (n == NULL)
            return false;
        for (size_t i = 0; i < l->out_len; i++)
            n[i] = *out_at(l, i);
        free(l->out);
        l->out = n;
        l->out_cap = ncap;
        l->out_head = 0;
    }
    struct out_msg *m = out_at(l, l->out_len);
    m->type = type;
    m->it = it;
    m->a = a;
    m->b = b;
    l->out_len++;
    l->msgs_queued++;
    if (it)
        l->out_bytes += ITEM_size(it);
    return true;
}

static void out_pop(struct link *l)
{
    struct out_msg *m = &l->out[l->out_head];
    if (m->it) {
        l->out_bytes -= ITEM_size(m->it);
        item_release(m->it);
    } else if (m->type == OUT_RAW) {
        l->out_bytes -= m->b;
        l->obuf_done = m->a + m->b;
    }
    l->out_head = (l->out_head + 1) % l->out_cap;
    l->out_len--;
    l->out_off = 0;
    l->msgs_sent++;
    RS_ADD(items_sent, 1);
}

static void out_clear(struct link *l)
{
    while (l->out_len) {
        struct out_msg *m = &l->out[l->out_head];
        if (m->it)
            item_release(m->it);
        l->out_head = (l->out_head + 1) % l->out_cap;
        l->out_len--;
    }
    l->out_bytes = 0;
    free(l->out);
    l->out = NULL;
    l->out_cap = 0;
    free(l->obuf);
    l->obuf = NULL;
    l->obuf_cap = 0;
    l->obuf_base = l->obuf_done = l->obuf_end;
}

/* Queue a frame a worker encoded (len bytes at f): copied to the end of
 * the out buffer, so that consecutive ones leave as one iovec.  The space
 * of frames already sent is reused first (moving the rest to the front),
 * then the buffer grows.  False when out of memory. */
static bool queue_raw(struct link *l, const uint8_t *f, size_t len)
{
    if (l->obuf_done == l->obuf_end)
        l->obuf_base = l->obuf_end; /* all sent: start again at the front */
    if (l->obuf_end + len - l->obuf_base > l->obuf_cap) {
        size_t live = (size_t)(l->obuf_end - l->obuf_done);
        if (live > 0 && l->obuf_done != l->obuf_base)
            memmove(l->obuf, l->obuf + (l->obuf_done - l->obuf_base), live);
        l->obuf_base = l->obuf_done;
        if (live + len > l->obuf_cap) {
            size_t ncap = l->obuf_cap ? l->obuf_cap : 65536;
            while (ncap < live + len)
                ncap *= 2;
            uint8_t *n = realloc(l->obuf, ncap);
            if (n == NULL)
                return false;
            l->obuf = n;
            l->obuf_cap = ncap;
        }
    }
    uint64_t at = l->obuf_end;
    if (!out_push(l, OUT_RAW, NULL, at, len))
        return false;
    memcpy(l->obuf + (at - l->obuf_base), f, len);
    l->obuf_end = at + len;
    l->out_bytes += len;
    return true;
}

/* Queue an item state: a tombstone travels as DELETE, anything else as
 * ITEM (4.1). */
static bool queue_state(struct link *l, item *it)
{
    return out_push(l, (it->it_flags & ITEM_TOMBSTONE) ? MSG_DELETE : MSG_ITEM, it, 0, 0);
}

/* Move everything the workers queued into the active link's out queue (or
 * drop it when there is no link).  Returns with the overflow rule applied
 * (section 5).  Returns how many entries it took. */
static size_t drain_rings(void)
{
    size_t taken = 0;
    pthread_mutex_lock(&rings_lock);
    struct repl_ring *list = rings;
    pthread_mutex_unlock(&rings_lock);
    struct link *l = (active && active->hello_done) ? active : NULL;

    bool lost = false;
    for (struct repl_ring *r = list; r; r = r->next) {
        uint64_t head = __atomic_load_n(&r->head, __ATOMIC_ACQUIRE);
        uint64_t tail = r->tail;
        while (tail != head) {
            size_t off = tail & (RING_BYTES - 1);
            size_t to_end = RING_BYTES - off;
            const uint8_t *h = r->bytes + off;
            if (to_end < FRAME_HDR || h[4] == REC_PAD) {
                tail += to_end;
                continue;
            }
            size_t len = FRAME_HDR + get32(h);
            tail += len;
            taken++;
            if (h[4] == REC_REF) {
                item *it;
                memcpy(&it, h + FRAME_HDR, sizeof(it));
                if (l == NULL || !queue_state(l, it)) {
                    item_release(it);
                    lost = lost || l != NULL;
                }
            } else if (l != NULL && !queue_raw(l, h, len)) {
                lost = true;
            }
        }
        __atomic_store_n(&r->tail, tail, __ATOMIC_RELEASE);
    }

    pthread_mutex_lock(&flush_lock);
    struct flush_event *f = flushes;
    flushes = NULL;
    pthread_mutex_unlock(&flush_lock);
    while (f) {
        struct flush_event *next = f->next;
        taken++;
        if (l)
            out_push(l, MSG_FLUSH, NULL, f->version, (uint64_t)rel_to_unix(f->when));
        free(f);
        f = next;
    }

    if (l && (__atomic_exchange_n(&ring_overflowed, 0, __ATOMIC_RELAXED) || lost ||
              l->out_len > queue_max_items || l->out_bytes > queue_max_bytes)) {
        RS_ADD(overflows, 1);
        overflowed = true;
        mc_log(1, "Replication to %s: pending stream over its bound (%zu messages, %llu bytes); "
               "dropping the link, the next connect resyncs everything",
               peer_label, l->out_len, (unsigned long long)l->out_bytes);
        link_close(l, "pending stream overflow");
    }
    return taken;
}

/* ---- Encoding (4.1) ---- */

/* Fill iov with up to max_msgs next messages of l, starting at the head
 * (skipping out_off bytes of it).  hdrs holds the per-message fixed part.
 * Frames the workers encoded are sent from the out buffer; item states of
 * at most SMALL_MSG bytes (the bulk sync's) are copied into one staging
 * buffer, larger ones are sent from item memory.  Adjacent pieces share
 * an iovec, so a batch of small writes leaves as a few iovecs instead of
 * three per message (the kernel's per-segment cost dominated the stream's
 * CPU). */
#define MAX_BATCH 256
#define IOV_PREFETCH_AHEAD 8
#define STAGE_SIZE (MAX_BATCH * SMALL_MSG)
static int build_iov(struct link *l, struct iovec *iov, uint8_t (*hdrs)[FRAME_HDR + ITEM_FIXED],
                     size_t max_msgs)
{
    static char stage[STAGE_SIZE];
    size_t staged = 0;
    int n = 0;
    size_t skip = l->out_off;
    size_t msgs = 0;
    for (size_t i = 0; i < l->out_len && msgs < max_msgs; i++, msgs++) {
        struct out_msg *m = out_at(l, i);
        /* A bulk sync's items were walked long ago: their headers are out
         * of the cache by now.  Ask for one IOV_PREFETCH_AHEAD on. */
        if (i + IOV_PREFETCH_AHEAD < l->out_len) {
            const item *ahead = out_at(l, i + IOV_PREFETCH_AHEAD)->it;
            if (ahead != NULL)
                __builtin_prefetch(ahead);
        }
        uint8_t *h = hdrs[msgs];
        struct iovec parts[3];
        int np = 0;
        switch (m->type) {
        case MSG_ITEM:
        case MSG_DELETE: {
            item *it = m->it;
            parts[np++] = (struct iovec){h, encode_state_head(h, it)};
            parts[np++] = (struct iovec){ITEM_key(it), it->nkey};
            if (m->type == MSG_ITEM)
                parts[np++] = (struct iovec){ITEM_data(it), it->nbytes - 2};
            break;
        }
        case OUT_RAW:
            parts[np++] = (struct iovec){l->obuf + (m->a - l->obuf_base), m->b};
            break;
        case MSG_FLUSH:
            frame_header(h, 16, MSG_FLUSH);
            put64(h + FRAME_HDR, m->a);
            put64(h + FRAME_HDR + 8, m->b);
            parts[np++] = (struct iovec){h, FRAME_HDR + 16};
            break;
        case MSG_SYNC_BEGIN:
            frame_header(h, 8, MSG_SYNC_BEGIN);
            put64(h + FRAME_HDR, m->a);
            parts[np++] = (struct iovec){h, FRAME_HDR + 8};
            break;
        case MSG_SYNC_END:
            frame_header(h, 8, MSG_SYNC_END);
            put64(h + FRAME_HDR, m->a);
            parts[np++] = (struct iovec){h, FRAME_HDR + 8};
            break;
        default:
            abort(); /* only the types above are queued */
        }
        size_t total = 0;
        for (int p = 0; p < np; p++)
            total += parts[p].iov_len;
        bool copy = total <= SMALL_MSG && m->type != OUT_RAW;
        for (int p = 0; p < np; p++) {
            if (skip >= parts[p].iov_len) {
                skip -= parts[p].iov_len;
                continue;
            }
            char *src = (char *)parts[p].iov_base + skip;
            size_t len = parts[p].iov_len - skip;
            skip = 0;
            if (copy) {
                memcpy(stage + staged, src, len);
                src = stage + staged;
                staged += len;
            }
            if (n > 0 && (char *)iov[n - 1].iov_base + iov[n - 1].iov_len == src) {
                iov[n - 1].iov_len += len;
                continue;
            }
            iov[n].iov_base = src;
            iov[n].iov_len = len;
            n++;
        }
    }
    return n;
}

static size_t msg_size(const struct out_msg *m)
{
    switch (m->type) {
    case MSG_ITEM:
    case MSG_DELETE: return state_size(m->it);
    case OUT_RAW: return m->b;
    case MSG_FLUSH: return FRAME_HDR + 16;
    case MSG_SYNC_BEGIN:
    case MSG_SYNC_END: return FRAME_HDR + 8;
    default: return FRAME_HDR;
    }
}

/* Control messages (ACK, PING, PONG, HELLO) jump the queue, but only at a
 * message boundary: one is started only when no data message is half
 * written, and while one waits, data is written only up to the end of the
 * message in progress. */
static bool ctrl_set(struct link *l, uint8_t type, const uint8_t *body, size_t len)
{
    if (l->ctrl_len != 0 || len + FRAME_HDR > sizeof(l->ctrl))
        return false;
    frame_header(l->ctrl, (uint32_t)len, type);
    memcpy(l->ctrl + FRAME_HDR, body, len);
    l->ctrl_len = FRAME_HDR + len;
    l->ctrl_off = 0;
    return true;
}

/* ---- Sync walk (4.3) ---- */

#define WALK_BATCH 512
#define OUT_HIGH_WATER (8u << 20)

/* Feed the next part of the cache into the out queue while the queue is
 * short, so the walk never holds more than a few MB of references. */
static void walk_feed(struct link *l)
{
    while (l->walk && l->out_bytes < OUT_HIGH_WATER) {
        item *batch[WALK_BATCH];
        size_t n = storage_walk_next(l->walk, batch, WALK_BATCH);
        if (n == 0) {
            storage_walk_end(l->walk);
            l->walk = NULL;
            out_push(l, MSG_SYNC_END, NULL, l->walk_sent, 0);
            l->sync_end_at = l->msgs_queued;
            l->sync_end_queued = true;
            struct timespec t;
            clock_gettime(CLOCK_MONOTONIC, &t);
            double secs = (double)(t.tv_sec - l->sync_started.tv_sec) +
                          (double)(t.tv_nsec - l->sync_started.tv_nsec) / 1e9;
            mc_log(1, "Replication to %s: bulk sync walked %llu items in %.3f s",
                   peer_label, (unsigned long long)l->walk_sent, secs);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            if (!queue_state(l, batch[i]))
                item_release(batch[i]);
            else
                l->walk_sent++;
        }
    }
}

/* ---- Writing ---- */

/* What to do after send/writev returned w < 0: wait for the socket to be
 * writable, try again (EINTR), or give up (the link is closed). */
enum send_outcome { SEND_WAIT, SEND_RETRY, SEND_CLOSED };
static enum send_outcome send_failed(struct link *l)
{
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return SEND_WAIT;
    if (errno == EINTR)
        return SEND_RETRY;
    link_close(l, strerror(errno));
    return SEND_CLOSED;
}

/* An ACK is sent once ACK_EVERY messages are waiting for one, or when
 * the ACK timer has fired. */
static bool ack_ready(const struct link *l)
{
    return l->ack_due && (l->ack_now || l->msgs_received - l->ack_sent >= ACK_EVERY);
}

static void link_try_write(struct link *l)
{
    for (;;) {
        if (l->out_off == 0 && l->ctrl_len == 0 && ack_ready(l)) {
            uint8_t b[8];
            put64(b, l->msgs_received);
            if (ctrl_set(l, MSG_ACK, b, 8)) {
                l->ack_due = l->ack_now = false;
                l->ack_sent = l->msgs_received;
            }
        }
        if (l->ctrl_len && (l->ctrl_off > 0 || l->out_off == 0)) {
            ssize_t w = send(l->fd, l->ctrl + l->ctrl_off, l->ctrl_len - l->ctrl_off, MSG_NOSIGNAL);
            if (w < 0) {
                enum send_outcome o = send_failed(l);
                if (o == SEND_CLOSED)
                    return;
                if (o == SEND_WAIT)
                    break;
                continue;
            }
            RS_ADD(bytes_sent, (uint64_t)w);
            l->ctrl_off += (size_t)w;
            if (l->ctrl_off == l->ctrl_len)
                l->ctrl_len = l->ctrl_off = 0;
            continue;
        }
        if (!l->hello_done)
            break;
        walk_feed(l);
        if (l->out_len == 0)
            break;
        struct iovec iov[MAX_BATCH * 3];
        static uint8_t hdrs[MAX_BATCH][FRAME_HDR + ITEM_FIXED];
        int niov = build_iov(l, iov, hdrs, l->ctrl_len ? 1 : MAX_BATCH);
        ssize_t w = writev(l->fd, iov, niov);
        if (w < 0) {
            enum send_outcome o = send_failed(l);
            if (o == SEND_CLOSED)
                return;
            if (o == SEND_WAIT)
                break;
            continue;
        }
        RS_ADD(bytes_sent, (uint64_t)w);
        size_t done = (size_t)w + l->out_off;
        while (l->out_len) {
            size_t sz = msg_size(&l->out[l->out_head]);
            if (done < sz) {
                l->out_off = done;
                break;
            }
            done -= sz;
            out_pop(l);
        }
    }
    bool want_write = l->ctrl_len || ack_ready(l) || (l->hello_done && (l->out_len || l->walk));
    if (want_write)
        event_add(l->wev, NULL);
    else
        event_del(l->wev);
}

/* ---- Receiving and applying (4.1, 1) ---- */

/* A peer whose clock runs this far ahead of ours is broken (clock.h). */
#define VERSION_AHEAD "a version more than 10 years ahead of our clock"

/* Only a key's length is checked: base64 meta keys, binary protocol keys
 * and even text keys (split on spaces only) may hold any bytes. */
static bool key_len_ok(size_t n)
{
    return n > 0 && n <= MAX_KEY;
}

/* The "lag" stat from the version of the last write a read applied (one
 * clock reading per read, not per message). */
static void record_lag(uint64_t version)
{
    uint64_t ms = (version >> CLOCK_PHYS_SHIFT) + CLOCK_EPOCH_MS;
    uint64_t now = now_us();
    uint64_t then = ms * 1000;
    RS_SET(lag_us, now > then ? now - then : 0);
}

static const char *apply_item(struct link *l, const uint8_t *b, uint32_t len)
{
    if (len < ITEM_FIXED)
        return "ITEM too short";
    uint64_t version = get64(b);
    uint64_t cas = get64(b + 8);
    uint32_t flags = get32(b + 16);
    int64_t exptime = (int64_t)get64(b + 20);
    uint8_t nkey = b[28];
    uint32_t vlen = get32(b + 30);
    if (b[29] != 0 || (uint64_t)ITEM_FIXED + nkey + vlen != len)
        return "ITEM lengths do not add up";
    const uint8_t *key = b + ITEM_FIXED;
    if (!key_len_ok(nkey))
        return "ITEM with an invalid key";
    if (!clock_observe(version))
        return VERSION_AHEAD;
    rel_time_t exp = exptime == 0 ? 0 : realtime(exptime > REALTIME_MAXDELTA ? exptime : -1);
    enum alloc_result why;
    item *it = storage_alloc((const char *)key, nkey, flags, exp, (size_t)vlen + 2, &why, &repl_ts);
    if (it == NULL) {
        mc_log(1, "Replication from %s: could not store a %u-byte item (%s)", peer_label, vlen,
               why == ALLOC_TOO_LARGE ? "larger than -I here" : "out of memory");
        return NULL;
    }
    memcpy(ITEM_data(it), key + nkey, vlen);
    memcpy(ITEM_data(it) + vlen, "\r\n", 2);
    it->cas = cas;
    it->version = version;
    if (storage_apply_item(it, &repl_ts) == APPLY_STALE)
        RS_ADD(conflicts, 1);
    item_release(it);
    if (l->peer_synced)
        l->lag_version = version;
    return NULL;
}

static const char *apply_delete(struct link *l, const uint8_t *b, uint32_t len)
{
    if (len < DELETE_FIXED)
        return "DELETE too short";
    uint64_t version = get64(b);
    uint8_t nkey = b[8];
    if ((uint64_t)DELETE_FIXED + nkey != len || !key_len_ok(nkey))
        return "DELETE with a bad key";
    if (!clock_observe(version))
        return VERSION_AHEAD;
    if (storage_apply_delete((const char *)b + DELETE_FIXED, nkey, version, &repl_ts) == APPLY_STALE)
        RS_ADD(conflicts, 1);
    if (l->peer_synced)
        l->lag_version = version;
    return NULL;
}

static const char *link_became_up(struct link *l);

static const char *handle_hello(struct link *l, const uint8_t *b, uint32_t len)
{
    if (l->hello_done)
        return "second HELLO";
    if (len != HELLO_BODY || memcmp(b, REPL_MAGIC, 6) != 0)
        return "not a memcachedrep replication peer (bad HELLO)";
    uint16_t ver = get16(b + 6), lowest = get16(b + 8);
    if (ver < REPL_PROTO_MIN || lowest > REPL_PROTO_VERSION)
        return "no common replication protocol version";
    l->peer_run_id = get64(b + 10);
    uint8_t peer_node = b[18];
    if (!clock_observe(get64(b + 20)))
        return VERSION_AHEAD;
    if (l->peer_run_id == run_id) {
        if (l->dialed)
            self_dial = true;
        return "connected to ourselves";
    }
    if (peer_node == clock_node_id() && run_id > l->peer_run_id)
        clock_set_node_id((uint8_t)(peer_node + 1));
    l->hello_done = true;
    event_del(l->hello_timer);
    return link_became_up(l);
}

/* Handle one complete frame; returns an error text to close the link. */
static const char *handle_frame(struct link *l, uint8_t type, const uint8_t *b, uint32_t len)
{
    if (type != MSG_HELLO && !l->hello_done)
        return "message before HELLO";
    switch (type) {
    case MSG_HELLO:
        return handle_hello(l, b, len);
    case MSG_ITEM:
        l->msgs_received++;
        l->ack_due = true;
        RS_ADD(items_received, 1);
        return apply_item(l, b, len);
    case MSG_DELETE:
        l->msgs_received++;
        l->ack_due = true;
        RS_ADD(items_received, 1);
        return apply_delete(l, b, len);
    case MSG_FLUSH: {
        if (len != 16)
            return "FLUSH of the wrong size";
        uint64_t version = get64(b);
        int64_t when = (int64_t)get64(b + 8);
        if (!clock_observe(version))
            return VERSION_AHEAD;
        rel_time_t at = when == 0 ? 0 : realtime(when);
        storage_apply_flush(at, version);
        remember_flush(at, version);
        l->msgs_received++;
        l->ack_due = true;
        RS_ADD(items_received, 1);
        return NULL;
    }
    case MSG_SYNC_BEGIN: {
        if (len != 8)
            return "SYNC_BEGIN of the wrong size";
        struct storage_totals t;
        storage_get_totals(&t);
        storage_reserve(t.curr_items + t.tombstones + get64(b));
        l->msgs_received++;
        l->ack_due = true;
        l->peer_synced = false;
        return NULL;
    }
    case MSG_SYNC_END:
        if (len != 8)
            return "SYNC_END of the wrong size";
        l->msgs_received++;
        l->ack_due = true;
        l->peer_synced = true;
        mc_log(1, "Replication from %s: bulk sync received (%llu items)", peer_label,
               (unsigned long long)get64(b));
        return NULL;
    case MSG_ACK: {
        if (len != 8)
            return "ACK of the wrong size";
        uint64_t n = get64(b);
        if (n > l->msgs_sent)
            return "ACK beyond what was sent";
        l->peer_acked = n;
        return NULL;
    }
    case MSG_PING:
        if (len != 8)
            return "PING of the wrong size";
        if (!ctrl_set(l, MSG_PONG, b, 8))
            return NULL; /* a control message is in flight; skip this one */
        return NULL;
    case MSG_PONG:
        if (len != 8)
            return "PONG of the wrong size";
        RS_SET(rtt_us, now_us() - get64(b));
        return NULL;
    case MSG_BYE: {
        char why[201];
        size_t n = len < 200 ? len : 200;
        for (size_t i = 0; i < n; i++)
            why[i] = (b[i] >= ' ' && b[i] < 0x7f) ? (char)b[i] : '?';
        why[n] = '\0';
        mc_log(1, "Replication: %s said goodbye: %s", peer_label, why);
        return "peer closed the link";
    }
    default:
        return "unknown message type";
    }
}

/* The key of a complete ITEM or DELETE frame (body b, len bytes), or NULL
 * for any other frame or one too short to hold its key (handle_frame
 * rejects those). */
static const uint8_t *frame_key(uint8_t type, const uint8_t *b, uint32_t len, uint8_t *nkey)
{
    if (type == MSG_ITEM && len >= ITEM_FIXED && ITEM_FIXED + (uint32_t)b[28] <= len) {
        *nkey = b[28];
        return b + ITEM_FIXED;
    }
    if (type == MSG_DELETE && len >= DELETE_FIXED && DELETE_FIXED + (uint32_t)b[8] <= len) {
        *nkey = b[8];
        return b + DELETE_FIXED;
    }
    return NULL;
}

/* Before the complete frames from p on (up to end) are applied, start
 * loading the hash buckets and chain heads of the next PREFETCH_FRAMES
 * keys: a receiving node's table is cold (it serves no reads of these
 * keys), and applying a frame was mostly waiting for those misses, one at
 * a time (this cut the receiving node's CPU per replicated write by about
 * a quarter).  Then, once those items are arriving, the LRU neighbours of
 * each one the frame will replace or delete: unlinking it writes to them,
 * and they are as cold.  Returns where the frames it looked at end: the caller asks
 * again when it gets there.  Like the workers' prefetch scan
 * (proto_text.c), nothing is validated here and a bad frame costs at most
 * a useless prefetch. */
#define PREFETCH_FRAMES 64
static const uint8_t *prefetch_frames(const uint8_t *p, const uint8_t *end)
{
    uint32_t hv[PREFETCH_FRAMES];
    const uint8_t *keys[PREFETCH_FRAMES];
    uint8_t nkeys[PREFETCH_FRAMES];
    unsigned n = 0;
    while (n < PREFETCH_FRAMES && end - p >= FRAME_HDR) {
        uint32_t len = get32(p);
        if ((uint64_t)(end - p - FRAME_HDR) < len)
            break;
        keys[n] = frame_key(p[4], p + FRAME_HDR, len, &nkeys[n]);
        if (keys[n] != NULL) {
            hv[n] = hash_key_inline(keys[n], nkeys[n]);
            assoc_prefetch_bucket(hv[n++]);
        }
        p += FRAME_HDR + len;
    }
    if (n > 1) {
        assoc_prefetch_items(hv, n);
        assoc_prefetch_neighbours(keys, nkeys, hv, n);
    }
    return p;
}

/* Read and apply what the peer sent; at most READ_BUDGET bytes per event
 * so a bulk sync coming in does not starve the one going out. */
#define READ_BUDGET (4u << 20)
static void link_on_read(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;
    size_t budget = READ_BUDGET;
    for (;;) {
        if (l->rsize - l->rlen < 65536) {
            size_t max = (size_t)settings.item_size_max + 1024 + FRAME_HDR + ITEM_FIXED + MAX_KEY;
            size_t nsize = l->rsize ? l->rsize * 2 : 262144;
            if (nsize > max + 262144)
                nsize = max + 262144;
            if (nsize > l->rsize) {
                char *n = realloc(l->rbuf, nsize);
                if (n == NULL) {
                    link_close(l, "out of memory for the receive buffer");
                    return;
                }
                l->rbuf = n;
                l->rsize = nsize;
            }
        }
        if (l->rlen == l->rsize)
            break;
        size_t room = l->rsize - l->rlen;
        ssize_t r = recv(fd, l->rbuf + l->rlen, room, 0);
        if (r == 0) {
            link_close(l, "connection closed by the peer");
            return;
        }
        if (r < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            link_close(l, strerror(errno));
            return;
        }
        RS_ADD(bytes_received, (uint64_t)r);
        l->rlen += (size_t)r;
        budget = (size_t)r >= budget ? 0 : budget - (size_t)r;

        size_t pos = 0;
        const uint8_t *prefetched = (const uint8_t *)l->rbuf;
        while (l->rlen - pos >= FRAME_HDR) {
            const uint8_t *h = (const uint8_t *)l->rbuf + pos;
            if (h >= prefetched)
                prefetched = prefetch_frames(h, (const uint8_t *)l->rbuf + l->rlen);
            uint32_t len = get32(h);
            if (h[5] || h[6] || h[7]) {
                link_close(l, "reserved header bytes are not zero");
                return;
            }
            if ((uint64_t)len > (uint64_t)settings.item_size_max + 1024 + ITEM_FIXED + MAX_KEY) {
                link_close(l, "message larger than any item");
                return;
            }
            if (l->rlen - pos < FRAME_HDR + (size_t)len)
                break;
            const char *err = handle_frame(l, h[4], h + FRAME_HDR, len);
            if (err) {
                link_close(l, err);
                return;
            }
            pos += FRAME_HDR + len;
        }
        if (pos) {
            memmove(l->rbuf, l->rbuf + pos, l->rlen - pos);
            l->rlen -= pos;
        }
        /* A short read emptied the socket: no second recv just to see
         * EAGAIN (the read event is level-triggered). */
        if (budget == 0 || (size_t)r < room)
            break;
    }
    if (l->lag_version) {
        record_lag(l->lag_version);
        l->lag_version = 0;
    }
    if (l->ack_due && l == active && !evtimer_pending(ack_timer, NULL)) {
        struct timeval tv = {0, ACK_DELAY_US};
        evtimer_add(ack_timer, &tv);
    }
    link_try_write(l);
}

static void link_on_write(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = arg;
    if (!l->connected) {
        int err = 0;
        socklen_t el = sizeof(err);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
        if (err != 0) {
            link_close(l, strerror(err));
            return;
        }
        l->connected = true;
        event_add(l->rev, NULL);
    }
    link_try_write(l);
}

/* ---- Link life ---- */

static void hello_timeout(evutil_socket_t fd, short what, void *arg)
{
    link_close(arg, "no HELLO from the peer within 5 s");
}

static void send_hello(struct link *l)
{
    uint8_t b[HELLO_BODY];
    memcpy(b, REPL_MAGIC, 6);
    put16(b + 6, REPL_PROTO_VERSION);
    put16(b + 8, REPL_PROTO_MIN);
    put64(b + 10, run_id);
    b[18] = clock_node_id();
    b[19] = 0;
    put64(b + 20, clock_next_version());
    ctrl_set(l, MSG_HELLO, b, sizeof(b));
}

static struct link *link_new(int fd, bool dialed, const char *name)
{
    struct link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return NULL;
    l->fd = fd;
    l->dialed = dialed;
    l->connected = !dialed;
    snprintf(l->peer_name, sizeof(l->peer_name), "%s", name);
    l->rev = event_new(base, fd, EV_READ | EV_PERSIST, link_on_read, l);
    l->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, link_on_write, l);
    l->hello_timer = evtimer_new(base, hello_timeout, l);
    if (!l->rev || !l->wev || !l->hello_timer) {
        if (l->rev) event_free(l->rev);
        if (l->wev) event_free(l->wev);
        if (l->hello_timer) event_free(l->hello_timer);
        free(l);
        return NULL;
    }
    struct timeval tv = {5, 0};
    evtimer_add(l->hello_timer, &tv);
    send_hello(l);
    if (l->connected)
        event_add(l->rev, NULL);
    event_add(l->wev, NULL);
    for (int i = 0; i < MAX_PENDING_LINKS; i++) {
        if (pending[i] == NULL) {
            pending[i] = l;
            return l;
        }
    }
    event_free(l->rev);
    event_free(l->wev);
    event_free(l->hello_timer);
    free(l);
    return NULL;
}

/* A handshake finished: make l the active link (2: of duplicate links,
 * keep the one dialed by the node with the smaller run id), then start the
 * bulk sync (4.3).  Returns an error text when l must be closed instead;
 * the caller closes it. */
static const char *link_became_up(struct link *l)
{
    if (active) {
        uint64_t dialer_old = active->dialed ? run_id : active->peer_run_id;
        uint64_t dialer_new = l->dialed ? run_id : l->peer_run_id;
        if (dialer_old <= dialer_new)
            return "a link to this peer is already up";
        link_close(active, "replaced by a simultaneous link");
    }
    for (int i = 0; i < MAX_PENDING_LINKS; i++)
        if (pending[i] == l)
            pending[i] = NULL;
    active = l;
    RS_ADD(links, 1);
    if (ever_linked)
        RS_ADD(reconnects, 1);
    ever_linked = true;
    overflowed = false;
    retry_ms = 100;
    RS_SET(role_dialed, l->dialed);
    int one = 1;
    setsockopt(l->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    mc_log(1, "Replication: link up with %s (%s, peer run id %016llx); starting bulk sync",
           l->peer_name, l->dialed ? "we dialed" : "it dialed us",
           (unsigned long long)l->peer_run_id);

    __atomic_store_n(&link_up, 1, __ATOMIC_SEQ_CST);
    set_state(STATE_SYNCING);
    clock_gettime(CLOCK_MONOTONIC, &l->sync_started);
    struct storage_totals t;
    storage_get_totals(&t);
    out_push(l, MSG_SYNC_BEGIN, NULL, t.curr_items + t.tombstones, 0);
    pthread_mutex_lock(&flush_lock);
    struct flush_event f = last_flush;
    pthread_mutex_unlock(&flush_lock);
    if (f.version != 0)
        out_push(l, MSG_FLUSH, NULL, f.version, (uint64_t)rel_to_unix(f.when));
    l->walk = storage_walk_begin();
    RS_ADD(bulk_syncs, 1);
    return NULL;
}

static void link_free(struct link *l)
{
    if (l->walk)
        storage_walk_end(l->walk);
    out_clear(l);
    event_free(l->rev);
    event_free(l->wev);
    event_free(l->hello_timer);
    close(l->fd);
    free(l->rbuf);
    free(l);
}

static void link_close(struct link *l, const char *why)
{
    if (l == active) {
        __atomic_store_n(&link_up, 0, __ATOMIC_SEQ_CST);
        active = NULL;
        mc_log(1, "Replication: link with %s lost: %s", l->peer_name, why);
        link_free(l);
        drain_rings(); /* release what workers queued for the dead link */
        set_state(STATE_DOWN);
        schedule_retry();
        return;
    }
    for (int i = 0; i < MAX_PENDING_LINKS; i++)
        if (pending[i] == l)
            pending[i] = NULL;
    mc_log(2, "Replication: connection with %s closed: %s", l->peer_name, why);
    link_free(l);
    if (!active)
        schedule_retry();
}

/* ---- Dialing and listening (2) ---- */

static bool dialing(void)
{
    for (int i = 0; i < MAX_PENDING_LINKS; i++)
        if (pending[i] && pending[i]->dialed)
            return true;
    return false;
}

static void try_dial(void)
{
    if (active || dialing() || (self_dial && listen_fd >= 0))
        return;
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int rc = getaddrinfo(peer_host, peer_port, &hints, &res);
    if (rc != 0) {
        mc_log(1, "Replication: cannot resolve peer %s: %s", peer_label, gai_strerror(rc));
        return;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0)
            continue;
        if (!set_nonblock(fd) ||
            (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 && errno != EINPROGRESS)) {
            close(fd);
            continue;
        }
        set_state(STATE_CONNECTING);
        mc_log(2, "Replication: dialing %s", peer_label);
        if (link_new(fd, true, peer_label) == NULL)
            close(fd);
        break;
    }
    freeaddrinfo(res);
}

static void on_accept(evutil_socket_t fd, short what, void *arg)
{
    for (;;) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        int c = accept4(fd, (struct sockaddr *)&ss, &sl, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0)
            return;
        char host[INET6_ADDRSTRLEN] = "?", name[INET6_ADDRSTRLEN + 8];
        int port = 0;
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &s4->sin_addr, host, sizeof(host));
            port = ntohs(s4->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &s6->sin6_addr, host, sizeof(host));
            port = ntohs(s6->sin6_port);
        }
        snprintf(name, sizeof(name), "%s:%d", host, port);
        mc_log(2, "Replication: connection from %s", name);
        if (link_new(c, false, name) == NULL)
            close(c);
    }
}

static void try_listen(void)
{
    if (listen_fd >= 0)
        return;
    struct addrinfo hints = {.ai_family = AF_INET6, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE};
    char port[8];
    snprintf(port, sizeof(port), "%d", settings.repl_port);
    struct addrinfo *res = NULL;
    int fd = -1;
    if (getaddrinfo(NULL, port, &hints, &res) == 0) {
        fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd >= 0) {
            int one = 1, zero = 0;
            setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof(zero));
            if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, 16) < 0) {
                close(fd);
                fd = -1;
            }
        }
        freeaddrinfo(res);
    }
    if (fd < 0)
        return; /* probably the other node of a same-host pair: retry later */
    listen_fd = fd;
    listen_ev = event_new(base, fd, EV_READ | EV_PERSIST, on_accept, NULL);
    event_add(listen_ev, NULL);
    mc_log(1, "Replication: listening on port %d for %s", settings.repl_port, peer_label);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    if (active)
        return;
    try_dial();
    try_listen();
    if (retry_ms < 2000)
        retry_ms *= 2;
    schedule_retry();
}

static void schedule_retry(void)
{
    if (active || evtimer_pending(retry_timer, NULL))
        return;
    struct timeval tv = {retry_ms / 1000, (retry_ms % 1000) * 1000};
    evtimer_add(retry_timer, &tv);
}

/* "down" means no link and no dial in progress (a listening node waiting
 * for its peer is down until the peer dials in). */
static void set_state(enum link_state s)
{
    if (s == STATE_DOWN && dialing())
        s = STATE_CONNECTING;
    RS_SET(state, (uint32_t)s);
}

/* ---- Timers and wake-ups ---- */

static bool drained(void)
{
    if (!active || !active->hello_done)
        return true;
    bool rings_empty = true;
    pthread_mutex_lock(&rings_lock);
    for (struct repl_ring *r = rings; r; r = r->next)
        if (__atomic_load_n(&r->head, __ATOMIC_ACQUIRE) != r->tail)
            rings_empty = false;
    pthread_mutex_unlock(&rings_lock);
    return rings_empty && active->out_len == 0 && active->peer_acked >= active->msgs_queued;
}

static void update_gauges(void)
{
    struct link *l = active;
    if (l && l->hello_done) {
        RS_SET(pending_items, l->msgs_queued - l->peer_acked);
        RS_SET(pending_bytes, l->out_bytes);
        if (l->sync_end_queued && l->peer_acked >= l->sync_end_at && l->peer_synced)
            RS_SET(state, STATE_STREAMING);
    } else {
        RS_SET(pending_items, 0);
        RS_SET(pending_bytes, 0);
    }
}

/* Take what the workers queued and send it; true when there was any.
 * *batch (when not NULL) is set to the item bytes then waiting to be sent. */
static bool pump(uint64_t *batch)
{
    size_t n = drain_rings();
    if (batch)
        *batch = active ? active->out_bytes : 0;
    if (active && active->hello_done)
        link_try_write(active);
    return n > 0;
}

static void linger(void)
{
    struct timeval tv = {0, linger_us};
    evtimer_add(linger_timer, &tv);
}

/* Adapt the linger to the batch just taken (see LINGER_MIN_US). */
static void adapt_linger(uint64_t batch)
{
    if (batch >= LINGER_TARGET_BYTES)
        linger_us = LINGER_MIN_US;
    else if (linger_us < LINGER_MAX_US)
        linger_us += LINGER_STEP_US;
}

/* Woken by a worker: send, then linger instead of sleeping at once. */
static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    uint64_t v;
    ssize_t n = read(wake_fd, &v, sizeof(v));
    (void)n;
    pump(NULL);
    update_gauges();
    if (__atomic_load_n(&drain_requested, __ATOMIC_SEQ_CST) && !drain_running) {
        drain_running = true;
        drain_step(-1, 0, NULL);
        return;
    }
    linger_us = LINGER_MIN_US;
    linger();
}

/* linger_us after a batch: more writes came in meanwhile -> send them and
 * linger again; none -> go to sleep until a worker wakes us. */
static void on_linger(evutil_socket_t fd, short what, void *arg)
{
    uint64_t batch;
    if (pump(&batch)) {
        adapt_linger(batch);
        linger();
        return;
    }
    __atomic_store_n(&ring_sleeping, 1, __ATOMIC_SEQ_CST);
    __atomic_thread_fence(__ATOMIC_SEQ_CST); /* pairs with wake_consumer's */
    /* A producer may have pushed after our drain but before the flag went
     * up, without waking us: look once more. */
    if (pump(NULL) && __atomic_exchange_n(&ring_sleeping, 0, __ATOMIC_SEQ_CST))
        linger();
}

static void on_ack_timer(evutil_socket_t fd, short what, void *arg)
{
    if (active && active->ack_due) {
        active->ack_now = true;
        link_try_write(active);
    }
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    struct link *l = active;
    if (l && l->hello_done && l->ctrl_len == 0) {
        uint8_t b[8];
        put64(b, now_us());
        ctrl_set(l, MSG_PING, b, 8);
        link_try_write(l);
    }
    update_gauges();
}

static void *repl_main(void *arg)
{
    pthread_setname_np(pthread_self(), "mc-repl");
    event_base_dispatch(base);
    return NULL;
}

/* ---- Public interface ---- */

static bool parse_peer(void)
{
    const char *p = settings.repl_peer;
    const char *port = NULL;
    size_t hlen;
    if (p[0] == '[') {
        const char *end = strchr(p, ']');
        if (end == NULL)
            return false;
        peer_host = strndup(p + 1, (size_t)(end - p - 1));
        if (end[1] == ':')
            port = end + 2;
        else if (end[1] != '\0')
            return false;
    } else {
        const char *colon = strchr(p, ':');
        if (colon && strchr(colon + 1, ':'))
            colon = NULL; /* a bare IPv6 address */
        hlen = colon ? (size_t)(colon - p) : strlen(p);
        peer_host = strndup(p, hlen);
        if (colon)
            port = colon + 1;
    }
    uint32_t pn = (uint32_t)settings.repl_port;
    if (port && (!safe_strtoul(port, &pn) || pn == 0 || pn > 65535))
        return false;
    snprintf(peer_port, sizeof(peer_port), "%u", pn);
    snprintf(peer_label, sizeof(peer_label), "%s:%u", peer_host, pn);
    return peer_host[0] != '\0';
}

bool repl_start(void)
{
    if (settings.repl_peer == NULL)
        return true;
    if (!parse_peer()) {
        fprintf(stderr, "memcached: invalid replication peer '%s' for -x (host or host:port)\n",
                settings.repl_peer);
        return false;
    }
    uint64_t r = 0;
    int ufd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (ufd < 0 || read(ufd, &r, sizeof(r)) != sizeof(r))
        r = now_us() ^ ((uint64_t)getpid() << 32);
    if (ufd >= 0)
        close(ufd);
    run_id = r ? r : 1;
    clock_set_node_id((uint8_t)(run_id >> 56));

    queue_max_items = settings.repl_queue_max > 0 ? (uint64_t)settings.repl_queue_max : 1000000;
    queue_max_bytes = settings.maxbytes / 4;
    if (queue_max_bytes < 4 * (uint64_t)OUT_HIGH_WATER)
        queue_max_bytes = 4 * (uint64_t)OUT_HIGH_WATER;

    wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    /* The linger is a fraction of a millisecond: ask for a timerfd-backed
     * timer, epoll_wait alone rounds timeouts to milliseconds. */
    struct event_config *cfg = event_config_new();
    if (cfg != NULL) {
        event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
        base = event_base_new_with_config(cfg);
        event_config_free(cfg);
    }
    if (wake_fd < 0 || base == NULL) {
        fprintf(stderr, "memcached: cannot start replication: %s\n", strerror(errno));
        return false;
    }
    wake_ev = event_new(base, wake_fd, EV_READ | EV_PERSIST, on_wake, NULL);
    linger_timer = evtimer_new(base, on_linger, NULL);
    ack_timer = evtimer_new(base, on_ack_timer, NULL);
    retry_timer = evtimer_new(base, on_retry, NULL);
    ping_timer = event_new(base, -1, EV_PERSIST, on_ping, NULL);
    struct timeval second = {1, 0};
    event_add(wake_ev, NULL);
    event_add(ping_timer, &second);
    stats_register(&repl_ts);
    storage_keep_tombstones(settings.repl_tombstone_ttl);
    static const struct storage_hooks hooks = {
        .on_item = repl_hook_item,
        .on_flush = repl_hook_flush,
    };
    storage_set_hooks(&hooks);
    __atomic_store_n(&ring_sleeping, 1, __ATOMIC_SEQ_CST);

    try_dial();
    try_listen();
    set_state(dialing() ? STATE_CONNECTING : STATE_DOWN);
    schedule_retry();
    if (pthread_create(&repl_thread, NULL, repl_main, NULL) != 0) {
        fprintf(stderr, "memcached: cannot start the replication thread\n");
        return false;
    }
    started = true;
    return true;
}

bool repl_active(void)
{
    return started;
}

void repl_report(add_stat_fn add, void *ctx)
{
    if (!started)
        return;
    stats_addf(add, ctx, "repl_peer", "%s", peer_label);
    stats_addf(add, ctx, "repl_state", "%s", state_names[RS_GET(state)]);
    stats_addf(add, ctx, "repl_role", "%s", RS_GET(role_dialed) ? "dialing" : "listening");
    stats_addf(add, ctx, "repl_items_sent", "%llu", (unsigned long long)RS_GET(items_sent));
    stats_addf(add, ctx, "repl_bytes_sent", "%llu", (unsigned long long)RS_GET(bytes_sent));
    stats_addf(add, ctx, "repl_items_received", "%llu", (unsigned long long)RS_GET(items_received));
    stats_addf(add, ctx, "repl_bytes_received", "%llu", (unsigned long long)RS_GET(bytes_received));
    stats_addf(add, ctx, "repl_pending_items", "%llu", (unsigned long long)RS_GET(pending_items));
    stats_addf(add, ctx, "repl_pending_bytes", "%llu", (unsigned long long)RS_GET(pending_bytes));
    stats_addf(add, ctx, "repl_bulk_syncs", "%llu", (unsigned long long)RS_GET(bulk_syncs));
    stats_addf(add, ctx, "repl_reconnects", "%llu", (unsigned long long)RS_GET(reconnects));
    stats_addf(add, ctx, "repl_conflicts", "%llu", (unsigned long long)RS_GET(conflicts));
    stats_addf(add, ctx, "repl_overflows", "%llu", (unsigned long long)RS_GET(overflows));
    stats_addf(add, ctx, "repl_lag_us", "%llu", (unsigned long long)RS_GET(lag_us));
    stats_addf(add, ctx, "repl_rtt_us", "%llu", (unsigned long long)RS_GET(rtt_us));
}

/* Section 6: wait while the peer keeps acknowledging, give up after
 * repl_drain_timeout seconds without progress. */
static void drain_step(evutil_socket_t fd, short what, void *arg)
{
    static uint64_t last_acked;
    static struct timespec last_progress;
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (last_progress.tv_sec == 0)
        last_progress = now;
    drain_rings();
    if (active && active->hello_done)
        link_try_write(active);
    uint64_t acked = active ? active->peer_acked : 0;
    if (acked != last_acked) {
        last_acked = acked;
        last_progress = now;
    }
    bool done = drained();
    bool timed_out = now.tv_sec - last_progress.tv_sec >= settings.repl_drain_timeout;
    if (done || timed_out) {
        if (!done)
            mc_log(1, "Replication: giving up the drain to %s after %d s without progress",
                   peer_label, settings.repl_drain_timeout);
        else
            mc_log(1, "Replication: every write is on %s; stopping", peer_label);
        if (active) {
            static const char bye[] = "shutting down";
            uint8_t hdr[FRAME_HDR];
            frame_header(hdr, sizeof(bye) - 1, MSG_BYE);
            struct iovec iov[2] = {{hdr, FRAME_HDR}, {(void *)bye, sizeof(bye) - 1}};
            if (active->ctrl_len == 0 && active->out_off == 0) {
                ssize_t w = writev(active->fd, iov, 2);
                (void)w;
            }
        }
        event_base_loopbreak(base);
        return;
    }
    struct timeval tv = {0, 10000};
    event_base_once(base, -1, EV_TIMEOUT, drain_step, NULL, &tv);
}

void repl_drain_and_stop(void)
{
    if (!started)
        return;
    __atomic_store_n(&drain_requested, 1, __ATOMIC_SEQ_CST);
    uint64_t one = 1;
    ssize_t n = write(wake_fd, &one, sizeof(one));
    (void)n;
    pthread_join(repl_thread, NULL);
    storage_set_hooks(NULL);
    if (active)
        link_free(active);
    active = NULL;
    for (int i = 0; i < MAX_PENDING_LINKS; i++) {
        if (pending[i])
            link_free(pending[i]);
        pending[i] = NULL;
    }
    drain_rings();
    started = false;
}
