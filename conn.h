/*
 * conn.h - client connections: the per-connection state machine, buffered
 * reads, batched writes, and the TCP / UNIX / UDP transports.
 *
 * A connection belongs to exactly one worker thread (thread.c) and is only
 * ever touched by it; the one exception is "stats conns", which reads the
 * fields marked "reported" from other threads (see conn.c for how).
 *
 * Protocol modules (proto_text.c, proto_bin.c) see a connection
 * through the functions below: they read the unprocessed input at
 * rcurr/rbytes, queue output with conn_out_*(), and return a proto_next
 * (proto_text.h) telling the state machine what to do next.
 */
#ifndef CONN_H
#define CONN_H

#include "memcached.h"   /* first: config.h's feature macros */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <event2/event.h>
#include <event2/event_struct.h>

#include "items.h"
#include "proto_bin.h"
#include "proto_text.h"
#include "stats.h"

/* Connection gauges for the general "stats" report. */
struct conn_totals {
    uint64_t curr_connections;
    uint64_t total_connections;
    uint64_t rejected_connections;
    uint64_t connection_structures;
    uint64_t listen_disabled_num;
    uint64_t time_in_listen_disabled_us;
    bool accepting_conns;
    uint32_t reserved_fds;
    uint64_t response_obj_count;
    uint64_t response_obj_bytes;
    uint64_t read_buf_count;
    uint64_t read_buf_bytes;
    uint64_t read_buf_bytes_free;
};
void conn_get_totals(struct conn_totals *out);

/* "stats conns": per connection lines, through add. */
void conn_report(add_stat_fn add, void *ctx);

/* "stats reset": total/rejected connection counters start from zero. */
void conn_stats_reset(void);

enum conn_transport {
    CONN_TCP = 1,
    CONN_UNIX,
    CONN_UDP,
};

/* The states of the connection machine (conn.c, conn_drive()).  The names
 * are what "stats conns" prints. */
enum conn_state {
    conn_listening = 1, /* a listening socket (only in reports) */
    conn_new_cmd,       /* between commands: decide to parse, read, yield */
    conn_waiting,       /* blocked until the socket is readable */
    conn_read,          /* reading more command bytes */
    conn_parse_cmd,     /* parsing / executing a command */
    conn_nread,         /* reading a value straight into its item */
    conn_swallow,       /* discarding a value that can't be stored */
    conn_write,         /* writing queued output */
    conn_closing,       /* about to close */
    conn_closed,        /* closed; the struct is being freed */
};

struct conn_thread;
struct out_block;

struct conn {
    int fd;
    enum conn_state state;          /* reported */
    enum conn_state wait_for;       /* state to resume when readable */
    enum conn_state write_then;     /* state to enter when output drained */
    enum conn_transport transport;
    enum protocol protocol;         /* PROTO_NEGOTIATE until the first byte */
    struct conn_thread *thread;
    struct thread_stats *ts;        /* the owning worker's counters */

    struct event ev;
    short ev_flags;                 /* flags ev is registered with */

    /* Unprocessed input is [rcurr, rcurr + rbytes) inside rbuf[0..rsize).
     * rbuf is borrowed from the thread's pool only while there is input to
     * keep (or a paused command pointing into it). */
    char *rbuf;
    char *rcurr;
    uint32_t rsize;
    uint32_t rbytes;
    bool rbuf_own;                  /* malloc'd (long line / UDP), not pooled */
    bool read_filled;               /* the last read filled the buffer */
    /* Changes (wrapping) whenever bytes of the input buffer may have been
     * overwritten or moved: before every read or receive into it and on
     * every compaction or buffer switch.  A protocol that remembers
     * something about a byte range (proto_text's prefetched key hashes)
     * trusts it only while rgen is unchanged. */
    uint32_t rgen;

    /* conn_nread: the value's remaining destination; conn_swallow: bytes
     * still to discard. */
    char *nread_dst;
    size_t nread_left;
    size_t swallow_left;

    /* Queued output: a chain of blocks, written in order. */
    struct out_block *out_head;
    struct out_block *out_tail;
    uint32_t out_blocks;
    size_t out_held;                /* bytes of item values referenced */
    bool out_failed;                /* output memory ran out: close */

    int nreqs;                      /* commands run in this event */
    rel_time_t last_cmd_time;       /* reported */

    /* Addresses, for UDP replies and "stats conns". */
    union {
        struct sockaddr sa;
        struct sockaddr_in in;
        struct sockaddr_in6 in6;
    } peer;
    socklen_t peer_len;
    const char *listen_name;        /* "tcp:127.0.0.1:11211", owned by thread.c */
    uint16_t udp_request_id;        /* of the datagram being answered */

    struct proto_text_state text;
    struct proto_bin_state bin;

    struct conn *next, *prev;       /* the thread's list */
};

/* ---- Used by thread.c ---- */

/* Per-worker connection context: buffer pools, the connection list, the
 * idle timer.  Called on the worker thread with its own event base. */
struct conn_thread *conn_thread_new(struct event_base *base,
                                    struct thread_stats *ts);

/* Close every connection of the worker and free its pools.  graceful:
 * first try once (without blocking) to send what each has queued. */
void conn_thread_stop(struct conn_thread *ct, bool graceful);

/* Decide whether a just-accepted client socket may stay: false when
 * settings.maxconns client connections are already open, after answering
 * "ERROR Too many open connections" and closing fd.  Called by the
 * listener thread; counts the connection as open when it returns true. */
bool conn_admit(int fd);

/* True while settings.maxconns client connections are open. */
bool conn_at_limit(void);

/* Close an admitted socket that could not be handed to a worker. */
void conn_abandon(int fd);

/* Start serving an accepted TCP or UNIX socket (admitted by conn_admit)
 * on this worker.  Returns false, closing fd, when out of memory. */
bool conn_new_client(struct conn_thread *ct, int fd, enum conn_transport t,
                     const char *listen_name);

/* Serve the shared UDP socket fd from this worker too. */
bool conn_new_udp(struct conn_thread *ct, int fd, const char *listen_name);

/* The number of file descriptors the server keeps for itself (listeners,
 * notify fds...), reported as reserved_fds; set once by thread.c. */
void conn_set_reserved_fds(uint32_t n);

/* ---- Used by the protocol modules ---- */

/* Consume n bytes of unprocessed input. */
static inline void conn_consume(struct conn *c, size_t n)
{
    c->rcurr += n;
    c->rbytes -= (uint32_t)n;
}

/* Queue len bytes of response text (copied). */
void conn_out(struct conn *c, const char *s, size_t len);

/* An output block (conn.c): response text, the iovecs that point at that
 * text and at item values, and the items those iovecs reference.  Defined
 * here only so that conn_out_reserve() and conn_out_commit(), called for
 * every answer, are inlined into the protocols; nothing else outside
 * conn.c touches it. */
#define CONN_OUT_BLOCK_SIZE 16384
#define CONN_OUT_IOV 256
#define CONN_OUT_ITEMS 128
struct out_block {
    struct out_block *next;
    uint32_t niov;          /* iovecs in use */
    uint32_t iov_done;      /* iovecs completely written */
    uint32_t nitems;
    uint32_t text_used;
    struct iovec iov[CONN_OUT_IOV];
    item *items[CONN_OUT_ITEMS];
    char text[];
};
#define CONN_OUT_TEXT_SIZE (CONN_OUT_BLOCK_SIZE - offsetof(struct out_block, text))

/* conn_out_reserve() when the last block is full: the text of a fresh
 * block appended to the output, or NULL when out of memory. */
char *conn_out_reserve_fresh(struct conn *c);

/* Room for up to len (<= CONN_OUT_RESERVE_MAX) bytes of response text;
 * conn_out_commit() then queues the bytes actually written.  Returns NULL
 * when out of memory (the connection will be closed). */
#define CONN_OUT_RESERVE_MAX 2048

/* conn_out_reserve() when the last block has the room, else NULL (and
 * nothing allocated): for a caller holding a lock, who calls
 * conn_out_open() before taking it. */
static inline char *conn_out_room(struct conn *c, size_t len)
{
    struct out_block *b = c->out_tail;
    if (b && b->niov < CONN_OUT_IOV && CONN_OUT_TEXT_SIZE - b->text_used >= len)
        return b->text + b->text_used;
    return NULL;
}

static inline char *conn_out_reserve(struct conn *c, size_t len)
{
    char *p = conn_out_room(c, len);
    return p ? p : conn_out_reserve_fresh(c);
}

/* The command is sure to queue output: give the output its first block
 * now if it has none, so that conn_out_room() can succeed. */
static inline void conn_out_open(struct conn *c)
{
    if (!c->out_tail)
        conn_out_reserve_fresh(c);
}

/* The text just written at the reserved spot becomes part of the output;
 * it extends the previous iovec when that one ends right there. */
static inline void conn_out_commit(struct conn *c, size_t len)
{
    struct out_block *b = c->out_tail;
    if (len == 0)
        return;
    char *p = b->text + b->text_used;
    b->text_used += (uint32_t)len;
    if (b->niov > 0) {
        struct iovec *last = &b->iov[b->niov - 1];
        if ((char *)last->iov_base + last->iov_len == p) {
            last->iov_len += len;
            return;
        }
    }
    b->iov[b->niov].iov_base = p;
    b->iov[b->niov].iov_len = len;
    b->niov++;
}

/* Queue the value of it (ITEM_data, nbytes, "\r\n" included), sent straight
 * from item memory.  Takes over the caller's reference, which is dropped
 * once the bytes are written. */
void conn_out_item(struct conn *c, item *it);

/* The same without the value's "\r\n" (it->nbytes - 2 bytes), as the
 * binary protocol sends values. */
void conn_out_item_value(struct conn *c, item *it);

/* True when the queued output has reached the bound at which a long
 * response (a multi-get) must pause and let it be written. */
bool conn_out_full(const struct conn *c);

/* Write the queued output now, waiting for the socket if needed; for
 * reports that are produced by a callback and can't pause (metadump).
 * On failure the connection is marked for closing. */
void conn_out_drain(struct conn *c);

/* The command needs len more bytes (a value) at dst: take what is already
 * buffered, read the rest straight into dst, then call the protocol's
 * value_read.  Returns PROTO_NREAD. */
enum proto_next conn_expect_value(struct conn *c, char *dst, size_t len);

/* Discard the next len bytes of input.  Returns PROTO_SWALLOW. */
enum proto_next conn_swallow_value(struct conn *c, size_t len);

/* Counters of the owning thread that must not be aggregated (a removal
 * done on the protocol's behalf that is not a client delete). */
struct thread_stats *conn_scratch_stats(struct conn *c);

#endif /* CONN_H */
