/*
 * proto_text.h - memcached's text ("ascii") protocol: parsing command lines
 * and answering them with memcached's exact response and error lines.
 *
 * The connection layer (conn.c) owns the socket and the buffers; it hands
 * this module the unprocessed input and acts on the proto_next it gets
 * back.  Everything a command must remember across events (the item a set
 * is reading its value into, the rest of a multi-get's key list) lives in
 * struct proto_text_state, embedded in the connection, so the parser never
 * allocates.
 */
#ifndef PROTO_TEXT_H
#define PROTO_TEXT_H

#include <stdbool.h>
#include <stdint.h>

#include "items.h"
#include "storage.h"

struct conn;

/* What a protocol handler asks its connection to do next.  Shared by every
 * protocol the connection layer dispatches to. */
enum proto_next {
    PROTO_NEXT_CMD = 1,     /* a command is complete: go on with the next */
    PROTO_NEED_DATA,        /* no complete command buffered: read more */
    PROTO_NREAD,            /* conn_expect_value() was called */
    PROTO_SWALLOW,          /* conn_swallow_value() was called */
    PROTO_SUSPEND,          /* output bound reached mid-command: write it
                             * out, then call the protocol again, which
                             * resumes where it stopped */
    PROTO_CLOSE,            /* write what is queued, then close */
    PROTO_CLOSE_NOW,        /* close without writing (protocol error) */
};

/* A meta set (proto_meta.c) waiting for its value: the item being filled
 * and what its answer needs once the line is gone from the buffer. */
struct proto_meta_pending {
    item *it;
    struct store_req req;
    bool quiet;             /* q: no "HD" */
    bool base64_key;        /* b: the key is returned in base64 */
    char ret[8];            /* the return flags asked for (c k O s), in
                             * request order, NUL-terminated */
    uint8_t opaque_len;
    char opaque[32];        /* O's token */
};

/* Keys hashed ahead by the prefetch scan of a pipelined batch, at most. */
#define PROTO_TEXT_PREFETCH_KEYS 16

/* The arguments of a storage command line (set add replace append
 * prepend cas), parsed once: by the prefetch scan, or when the line runs
 * unscanned.  status is proto_text.c's enum store_parse; when it says the
 * line is refused, only noreply (and not always that) is meaningful. */
struct proto_text_store_args {
    char *key;              /* in the read buffer */
    uint32_t nkey;
    uint32_t flags;
    int64_t exptime;
    uint64_t cas;           /* cas only */
    int32_t vlen;           /* the value's length, without its "\r\n" */
    uint8_t status;
    bool noreply;
};

/* A command line the prefetch scan read (a retrieval or a storage
 * command): where it starts and where its "\n" is, where the arguments
 * after its command word start, and its entry in proto_text.c's command
 * table; how it runs (proto_text.c's enum line_run), with, for a get of
 * one key, that key's entry in the scan's hashed_* arrays, and for a
 * storage command its arguments.  Describes the bytes at start only while
 * they are unchanged (see hashed_rgen). */
struct text_command;
struct proto_text_line {
    const char *start;
    char *nl;
    char *rest;
    const struct text_command *cmd;
    uint8_t how;
    uint8_t key;
    struct proto_text_store_args store;     /* storage commands only */
};

/* Per-connection text protocol state that outlives one event. */
struct proto_text_state {
    /* A storage command waiting for its value: the item being filled, and
     * the hash of its key. */
    item *it;
    uint32_t it_hv;
    enum store_op op;
    uint64_t cas_in;
    /* A retrieval command paused by PROTO_SUSPEND: the keys not answered
     * yet are [keys, keys_end), inside the connection's read buffer. */
    char *keys;
    char *keys_end;
    rel_time_t exptime;     /* gat/gats: the new expiry */
    uint8_t get_flags;      /* TEXT_GET_* of the paused command */
    /* The current command said "noreply": its reply lines are dropped. */
    bool noreply;
    struct proto_meta_pending meta;
    /* End of the input already scanned by the prefetch pass (proto_text.c):
     * a hint only, compared with rcurr but never read through. */
    const char *prefetched;
    /* The keys that pass hashed, in input order: where each is in the read
     * buffer, its length and its hash_key(); entries hashed_next..nhashed
     * are not used yet.  Valid only while the connection's rgen is still
     * hashed_rgen (the bytes have not moved or changed since). */
    const char *hashed_key[PROTO_TEXT_PREFETCH_KEYS];
    uint32_t hashed_len[PROTO_TEXT_PREFETCH_KEYS];
    uint32_t hashed_hv[PROTO_TEXT_PREFETCH_KEYS];
    uint8_t nhashed;
    uint8_t hashed_next;
    /* The lines that pass read, in input order, under the same rule: the
     * command at rcurr reuses its line's entry instead of finding its
     * "\n" and looking its word up again; lines_next..nlines not run yet. */
    uint8_t nlines;
    uint8_t lines_next;
    uint32_t hashed_rgen;
    struct proto_text_line lines[PROTO_TEXT_PREFETCH_KEYS];
};

/* A space-separated token of a command line, inside the read buffer. */
struct proto_token {
    char *s;
    size_t len;
};

/* The next token of [*p, end) (split on spaces only, as memcached does),
 * advancing *p past it; false when only spaces are left. */
bool proto_next_token(char **p, char *end, struct proto_token *t);

/* Process the command at the start of the connection's unprocessed input
 * (or resume a paused one).  Consumes the bytes it used. */
enum proto_next proto_text_process(struct conn *c);

/* The value announced by a storage command has been read in full (after
 * PROTO_NREAD): check its terminator, store it, queue the answer. */
enum proto_next proto_text_value_read(struct conn *c);

/* The connection is going away with a command in progress: drop every
 * reference that command holds. */
void proto_text_abort(struct conn *c);

#endif /* PROTO_TEXT_H */
