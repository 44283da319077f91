/*
 * clock.c - the seconds clock for expiry and the hybrid logical clock that
 * versions every mutation (format in clock.h).
 *
 * Seconds clock: process_started is set one ITEM_UPDATE_INTERVAL + 2
 * seconds in the past, so rel_time 0 ("never") is never a real access time
 * and freshly stored items are not instantly "old" for the LRU.  Only the
 * main thread's timer writes current_time.
 *
 * HLC: one 64-bit word, hlc_last, holds the highest version made or seen,
 * node id bits cleared.  A new version is max(hlc_last + 1 tick, now) where
 * a tick is one logical step (1 << CLOCK_LOGICAL_SHIFT) and now is the wall
 * clock in the physical field; an observed version raises hlc_last, unless
 * it is more than CLOCK_MAX_AHEAD_MS ahead of the wall clock (so hlc_last
 * stays centuries away from the end of its 64 bits and never wraps).  When
 * the logical counter of a millisecond runs out it carries into the
 * physical field, which only makes versions run slightly ahead of the wall
 * clock; ordering is still total and monotonic.  Lock-free: a CAS loop.
 */
#include "clock.h"

#include <time.h>

volatile rel_time_t current_time;
time_t process_started;

static uint64_t hlc_last;
static uint8_t node_id;

#define HLC_TICK (1ULL << CLOCK_LOGICAL_SHIFT)
#define HLC_NODE_MASK ((1ULL << CLOCK_NODE_BITS) - 1)

void clock_init(void)
{
    process_started = time(NULL) - ITEM_UPDATE_INTERVAL - 2;
    clock_tick();
}

void clock_tick(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    rel_time_t now = (rel_time_t)(ts.tv_sec - process_started);
    __atomic_store_n(&current_time, now, __ATOMIC_RELAXED);
}

rel_time_t realtime(int64_t exptime)
{
    if (exptime == 0)
        return 0;
    if (exptime < 0)
        return 1; /* already expired */
    if (exptime > REALTIME_MAXDELTA) {
        /* Absolute unix time.  One at or before the server start is in the
         * past; "1" is the earliest time that still means "expired". */
        if (exptime <= process_started)
            return 1;
        int64_t rel = exptime - process_started;
        return rel > UINT32_MAX ? UINT32_MAX : (rel_time_t)rel;
    }
    int64_t rel = exptime + __atomic_load_n(&current_time, __ATOMIC_RELAXED);
    return rel > UINT32_MAX ? UINT32_MAX : (rel_time_t)rel;
}

void clock_set_node_id(uint8_t id)
{
    __atomic_store_n(&node_id, id, __ATOMIC_RELAXED);
}

uint8_t clock_node_id(void)
{
    return __atomic_load_n(&node_id, __ATOMIC_RELAXED);
}

/* The wall clock in the physical field of a version. */
static uint64_t hlc_wall(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    ms = ms > CLOCK_EPOCH_MS ? ms - CLOCK_EPOCH_MS : 0;
    return ms << CLOCK_PHYS_SHIFT;
}

uint64_t clock_next_version(void)
{
    uint64_t wall = hlc_wall();
    uint64_t last = __atomic_load_n(&hlc_last, __ATOMIC_RELAXED);
    uint64_t next;
    do {
        next = last + HLC_TICK;
        if (wall > next)
            next = wall;
    } while (!__atomic_compare_exchange_n(&hlc_last, &last, next, true,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    return next | clock_node_id();
}

bool clock_observe(uint64_t version)
{
    uint64_t seen = version & ~HLC_NODE_MASK;
    if (seen > hlc_wall() + (CLOCK_MAX_AHEAD_MS << CLOCK_PHYS_SHIFT))
        return false;
    uint64_t last = __atomic_load_n(&hlc_last, __ATOMIC_RELAXED);
    while (seen > last &&
           !__atomic_compare_exchange_n(&hlc_last, &last, seen, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    return true;
}
