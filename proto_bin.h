/*
 * proto_bin.h - memcached's binary protocol (memcached-protocol-binary.txt):
 * 24-byte request headers, opcodes, status codes, and the answers memcached
 * 1.6 gives to each.
 *
 * Like the text protocol, this module sees a connection only through
 * conn.h: it parses requests in place in the read buffer, queues answers
 * with conn_out_*() and returns a proto_next (proto_text.h).  What a
 * command must remember while its value is read straight into an item
 * lives in struct proto_bin_state, embedded in the connection, so the
 * parser never allocates.
 */
#ifndef PROTO_BIN_H
#define PROTO_BIN_H

#include <stdbool.h>
#include <stdint.h>

#include "items.h"
#include "proto_text.h"  /* enum proto_next */
#include "storage.h"

/* The first byte of every binary request; under -B auto it is what makes
 * a connection binary. */
#define PROTO_BIN_REQ_MAGIC 0x80

/* A storage request (set, add, replace, append, prepend and their quiet
 * forms) waiting for its value: the item being filled and what the answer
 * needs once it is stored. */
struct proto_bin_state {
    item *it;
    enum store_op op;
    uint64_t cas_in;
    uint32_t opaque;
    uint8_t opcode;         /* echoed in the answer */
    bool quiet;             /* answer failures only */
};

/* Process the request at the start of the connection's unprocessed input.
 * Consumes the bytes it used. */
enum proto_next proto_bin_process(struct conn *c);

/* The value of a storage request has been read in full (after
 * PROTO_NREAD): store it and queue the answer. */
enum proto_next proto_bin_value_read(struct conn *c);

/* The connection is going away with a request in progress: drop the item
 * it holds. */
void proto_bin_abort(struct conn *c);

#endif /* PROTO_BIN_H */
