/*
 * clock.h - the server's two clocks.
 *
 * 1. The seconds clock used for expiry and LRU ages: current_time counts
 *    seconds since process_started.  The main thread's timer calls
 *    clock_tick() (several times a second); everybody else only reads it.
 *
 * 2. The hybrid logical clock (HLC) that stamps every mutation with a
 *    cluster-wide version, and gives new items their CAS unique.  A version
 *    is one 64-bit number, compared as an integer:
 *
 *        bits 63..20  milliseconds since CLOCK_EPOCH_MS (wall clock)
 *        bits 19..8   logical counter within that millisecond
 *        bits  7..0   node id (settings / replication handshake)
 *
 *    clock_next_version() is strictly increasing on one node; a version
 *    received from a peer is folded in with clock_observe() so that local
 *    writes made afterwards order after it.  Both are lock-free (one atomic
 *    compare-and-swap loop on a single shared word).
 */
#ifndef CLOCK_H
#define CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "memcached.h"

/* 2020-01-01T00:00:00Z in milliseconds. */
#define CLOCK_EPOCH_MS 1577836800000ULL
#define CLOCK_NODE_BITS 8
#define CLOCK_LOGICAL_SHIFT 8
#define CLOCK_PHYS_SHIFT 20

extern volatile rel_time_t current_time;
extern time_t process_started;

/* Set process_started and current_time; call once before anything else. */
void clock_init(void);

/* Advance current_time from the wall clock. */
void clock_tick(void);

/* Convert a protocol expiry (0 = never, <= 30 days relative, larger =
 * absolute unix time, negative = already expired) to server time.  An
 * already-expired time is returned as 1 (in the past, but not "never"). */
rel_time_t realtime(int64_t exptime);

/* Unix time of a server time (0 stays 0: "never"). */
static inline int64_t rel_to_unix(rel_time_t t)
{
    return t == 0 ? 0 : (int64_t)process_started + t;
}

/* This node's id in the low CLOCK_NODE_BITS of every version it makes. */
void clock_set_node_id(uint8_t id);
uint8_t clock_node_id(void);

/* A new version, greater than every version made or observed before. */
uint64_t clock_next_version(void);

/* Fold a version seen from another node into the clock.  Returns false,
 * folding nothing, when the version's wall-clock part is more than
 * CLOCK_MAX_AHEAD_MS ahead of this node's wall clock: only a broken or
 * hostile peer sends one, and following it could bring the clock to the
 * end of its 64 bits, where the next version would wrap around and order
 * before everything made so far. */
#define CLOCK_MAX_AHEAD_MS (10ULL * 366 * 24 * 3600 * 1000)   /* 10 years */
bool clock_observe(uint64_t version);

#endif /* CLOCK_H */
