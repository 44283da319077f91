/*
 * items.h - the item: one key/value pair in slab memory, and its life.
 *
 * Layout: a fixed 64-byte header, then the key (nkey bytes), then nsuffix
 * bytes: either one '\0', or, when the item's slab chunk has room for it
 * anyway, the rest of its text-protocol answer line, " <flags> <bytes>\r\n"
 * (formatted by item_alloc(); neither number ever changes afterwards);
 * then the value (nbytes bytes, always ending in "\r\n").  With the
 * suffix, "VALUE " followed by the item's bytes from the key to the
 * value's end is a get's whole answer for the key, with no number to
 * format.  The whole item is one slab chunk, or one malloc'd block for
 * items larger than settings.slab_chunk_size_max.
 *
 * Ownership: an item is referenced by the hash table + LRU while linked
 * (that link counts as one reference) and by every reader that holds it
 * (a connection writing it out, the replication stream sending it).  It is
 * freed when the count drops to zero and it is no longer linked.  Memory
 * of an item that somebody else references is never modified in place:
 * a mutation builds a new item and swaps it into the hash table.  A
 * reader that only copies from a linked item (a get's small value) needs
 * no reference while it holds the key's item lock: meanwhile the item
 * can't be unlinked or freed, and of its fields only the LRU's (next,
 * prev, time, the FETCHED/ACTIVE bits) may change.
 *
 * Tombstones (kept only while replication runs, see storage.h): an item
 * with ITEM_TOMBSTONE, the key, an empty value ("\r\n") and the version of
 * the delete it records.  It is linked, evicted, expired and flushed like
 * any item, but clients never see it and it is counted apart: in no item
 * gauge or counter (number, bytes, total_items, sizes, evictions...), only
 * in `tombstones`.  ITEM_TOMBSTONE is set before linking and never changes.
 *
 * Locking (items.c has the details):
 *   - item locks: a fixed table of mutexes striped by key hash; every
 *     lookup or change of a key's hash chain and of its item's fields
 *     happens under item_lock(hv).  The hash table's background expansion
 *     takes the same locks (assoc.c).
 *   - one LRU lock per slab class guards next/prev and the class's
 *     counters; taken after an item lock, never before.
 *   - refcount is atomic.
 */
#ifndef ITEMS_H
#define ITEMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "memcached.h"

/* it_flags */
#define ITEM_LINKED     0x01 /* in the hash table and an LRU */
#define ITEM_SLABBED    0x02 /* on a slab free list (not in use) */
#define ITEM_FETCHED    0x04 /* read at least once since stored */
#define ITEM_ACTIVE     0x08 /* read again since last LRU bump */
#define ITEM_TOMBSTONE  0x10 /* a versioned delete marker (replication) */
#define ITEM_STALE      0x20 /* meta "invalidate": served as stale */
#define ITEM_TOKEN_SENT 0x40 /* meta "win" token handed to a client */

typedef struct _item {
    struct _item *next;     /* LRU, towards the tail (older) */
    struct _item *prev;     /* LRU, towards the head (newer) */
    struct _item *h_next;   /* hash chain */
    rel_time_t time;        /* last access (server time) */
    rel_time_t exptime;     /* 0 = never */
    uint32_t nbytes;        /* value length including the final "\r\n" */
    uint32_t client_flags;  /* opaque flags the client stored */
    uint32_t refcount;      /* atomic; see "Ownership" above */
    uint8_t it_flags;       /* ITEM_* */
    uint8_t slabs_clsid;    /* slab class, or SLABS_LARGE_CLASS */
    uint8_t nkey;           /* key length */
    uint8_t nsuffix;        /* bytes between key and value: 1, or the suffix */
    uint64_t cas;           /* CAS unique as clients see it */
    uint64_t version;       /* cluster-wide version of this state (clock.h) */
    char data[];            /* key, '\0' or suffix, value */
} item;

#define ITEM_key(it)    ((it)->data)
#define ITEM_suffix(it) ((it)->data + (it)->nkey)
#define ITEM_data(it)   ((it)->data + (it)->nkey + (it)->nsuffix)
/* The bytes the item occupies (within its slab chunk or malloc'd block). */
#define ITEM_mem(it)                                                        \
    (sizeof(item) + (size_t)(it)->nkey + (it)->nsuffix + (size_t)(it)->nbytes)
/* The size that decides the item's slab class, and that reports show
 * (stats bytes and sizes, me, metadump, the replication queue): a suffix
 * counts as one byte, as it is only kept in room the chunk has anyway. */
#define ITEM_ntotal(nkey, nbytes) (sizeof(item) + (size_t)(nkey) + 1 + (size_t)(nbytes))
#define ITEM_size(it)   ITEM_ntotal((it)->nkey, (it)->nbytes)

/* The decimal digits of v written at p; returns the end.  The one number
 * formatter: it writes the items' suffixes, and the protocols answer every
 * number with it. */
char *item_fmt_u64(char *p, uint64_t v);

/* ---- Item locks (striped by key hash) ---- */
/* The spinlocks (items.c): item_lock_table[hv & item_lock_mask] is 1 while
 * held.  Set up by items_init() before any other thread starts, read-only
 * afterwards; public only so that the lock and unlock of every request are
 * inlined. */
extern uint32_t *item_lock_table;
extern uint32_t item_lock_mask;

/* The spinlock l was busy: wait until it is free and take it. */
void item_spin_wait(uint32_t *l);

static inline void item_spin_lock(uint32_t *l)
{
    if (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) != 0)
        item_spin_wait(l);
}

static inline void item_spin_unlock(uint32_t *l)
{
    __atomic_store_n(l, 0, __ATOMIC_RELEASE);
}

static inline void item_lock(uint32_t hv)
{
    item_spin_lock(&item_lock_table[hv & item_lock_mask]);
}

static inline void item_unlock(uint32_t hv)
{
    item_spin_unlock(&item_lock_table[hv & item_lock_mask]);
}

/* Take the spinlock l if it is free, without waiting: true when taken. */
static inline bool item_spin_trylock(uint32_t *l)
{
    return __atomic_load_n(l, __ATOMIC_RELAXED) == 0 &&
           __atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) == 0;
}

/* item_lock() without waiting: true when taken. */
static inline bool item_trylock(uint32_t hv)
{
    return item_spin_trylock(&item_lock_table[hv & item_lock_mask]);
}
/* Take every item lock in order (hash table resize switches tables under
 * this); never called with an item lock already held. */
void item_lock_all(void);
void item_unlock_all(void);

/* ---- References ---- */
static inline void item_ref(item *it)
{
    __atomic_add_fetch(&it->refcount, 1, __ATOMIC_ACQ_REL);
}
/* Drop a reference taken by item_ref, storage_get, storage_alloc...; frees
 * the item when it was the last one and the item is not linked. */
void item_release(item *it);

/* The rest of the item API (alloc, link, unlink, LRU, eviction, expiry
 * checks, stats) is used only by the storage engine; see items.c. */

/* ---- Engine-internal API (hash.c, slabs.c, assoc.c, crawler.c and
 * storage.c only; protocols use storage.h) ---- */

/* A crawler's place holder in an LRU: never in the hash table, skipped by
 * every LRU walk. */
#define ITEM_CURSOR 0x80

/* it_flags is read without the item lock by LRU walkers, so it is only
 * changed with atomic operations. */
static inline uint8_t item_flags(const item *it)
{
    return __atomic_load_n(&it->it_flags, __ATOMIC_ACQUIRE);
}
static inline void item_flags_set(item *it, uint8_t f)
{
    __atomic_or_fetch(&it->it_flags, f, __ATOMIC_ACQ_REL);
}
static inline void item_flags_clear(item *it, uint8_t f)
{
    __atomic_and_fetch(&it->it_flags, (uint8_t)~f, __ATOMIC_ACQ_REL);
}

/* ---- The engine's short locks (an LRU's, a slab class's) ---- */
/* A store takes its LRU's lock and its slab class's (twice: the new
 * chunk, then the freeing of the item it replaced) besides its item lock.
 * A pthread mutex costs a library call of some 30 instructions each way;
 * this one-word mutex costs one inlined atomic instruction each way when
 * nobody waits.  A waiter sleeps in the kernel (a futex), as on a pthread
 * mutex, rather than spinning: some holders keep these locks long
 * (cachedump formats its lines under its LRU's lock, a class carves a new
 * page under its lock).  state: 0 free, 1 held, 2 held and maybe waited
 * for.  Not recursive; zeroed memory is an unlocked mutex. */
struct item_mutex {
    uint32_t state;
};

/* item_mutex_lock() found m held: sleep until it can be taken. */
void item_mutex_wait(struct item_mutex *m);
/* item_mutex_unlock() found waiters: wake one. */
void item_mutex_wake(struct item_mutex *m);

static inline void item_mutex_lock(struct item_mutex *m)
{
    uint32_t unlocked = 0;
    if (!__atomic_compare_exchange_n(&m->state, &unlocked, 1, false,
                                     __ATOMIC_ACQUIRE, __ATOMIC_RELAXED))
        item_mutex_wait(m);
}

static inline void item_mutex_unlock(struct item_mutex *m)
{
    if (__atomic_exchange_n(&m->state, 0, __ATOMIC_RELEASE) == 2)
        item_mutex_wake(m);
}

/* Set up the item locks (2^min(hashpower, 12) of them, never more buckets
 * than the initial hash table has) and the LRUs.  False on out of memory. */
bool items_init(unsigned hashpower);


/* A new unlinked item with refcount 1: key copied, suffix written (when
 * its chunk has room), value space of nbytes (the caller writes the value
 * and its "\r\n").  NULL with *too_large set when the item can never fit
 * (settings.item_size_max, measured as memcached measures it), or with
 * *too_large clear when memory is exhausted: before that an expired item
 * is reclaimed from the class's LRU tail or, unless settings.evict_to_free
 * is false, the tail is evicted. */
item *item_alloc(const char *key, size_t nkey, uint32_t client_flags,
                 rel_time_t exptime, size_t nbytes, bool *too_large);

/* Why a lookup found nothing usable. */
enum item_state {
    ITEM_STATE_LIVE = 0,
    ITEM_STATE_MISSING,
    ITEM_STATE_EXPIRED,     /* found expired and unlinked */
    ITEM_STATE_FLUSHED,     /* found flushed and unlinked */
    ITEM_STATE_TOMBSTONE,   /* a delete marker; still linked */
};

/* Under item_lock(hv): the linked item for key (no reference taken), with
 * *state LIVE, or TOMBSTONE for a delete marker (returned so it can be
 * replaced).  An expired or flushed item is unlinked on the way and NULL
 * returned (state EXPIRED or FLUSHED; MISSING for a dead tombstone, which
 * no client ever saw). */
item *item_lookup(const char *key, size_t nkey, uint32_t hv,
                  enum item_state *state);

/* EXPIRED, FLUSHED or LIVE for a linked item (item lock held). */
enum item_state item_liveness(const item *it);

/* Under item_lock(hv): link it (hash table + head of its LRU, one more
 * reference, last access = now), unlink it, or swap old for new. */
void item_link(item *it, uint32_t hv);
void item_unlink(item *it, uint32_t hv);
void item_replace(item *old_it, item *new_it, uint32_t hv);

/* Under the item lock: mark it fetched (and active when fetched before)
 * and move it to the head of its LRU if its last bump is more than
 * ITEM_UPDATE_INTERVAL seconds old.  Only then is the LRU lock taken. */
void item_touch_lru(item *it);

/* Under item_lock(hv): item_lookup() for a read, in one call.  A live
 * item is marked as item_touch_lru() marks it and returned, without a
 * reference (it stays valid while the lock is held); anything else (a
 * tombstone included) is NULL, with *state saying why. */
item *item_get(const char *key, size_t nkey, uint32_t hv,
               enum item_state *state);

/* add on an existing key: refresh its LRU position (same interval rule)
 * without marking it fetched. */
void item_bump(item *it);

/* A flush_all, local or a peer's, made with command version `version`:
 * items (and tombstones) whose version is below `floor` are dead from now
 * on (0: nothing at once).  A non-zero `threshold`, the first version of
 * server second W, is a delayed flush: items below it are dead from second
 * W - 1 on (memcached's delayed flush takes effect one second early, hiding
 * even items written during that last second until W comes).  At most one
 * delayed flush is pending: the flush with the newest command version
 * decides it (an immediate one cancels it), so two nodes that apply the
 * same flushes in any order end up with the same floor and pending flush.
 * Serialized internally; readers never wait. */
void items_flush(uint64_t floor, uint64_t threshold, uint64_t version);

/* Is version v older than a flush_all that has taken effect? */
bool items_version_flushed(uint64_t v);

/* The crawler's walk of one LRU, tail to head, with `cursor` (an item with
 * ITEM_CURSOR set, owned by the caller) marking its place between calls.
 * step() examines up to batch items, reclaims the expired and flushed ones
 * and counts them; it returns false once the head is reached (the cursor
 * is then out of the LRU) or *budget (items left to examine) reaches 0. */
void items_crawl_begin(unsigned id, item *cursor);
bool items_crawl_step(unsigned id, item *cursor, unsigned batch,
                      uint32_t *budget);
void items_crawl_end(unsigned id, item *cursor);

/* The page mover's pass over a page of class id: every linked item in it
 * is copied into a free chunk of the class outside the page, or evicted
 * when there is none.  Items it could not lock right now are left for the
 * next pass. */
void items_evacuate_page(unsigned id, char *page, uint32_t chunk_size,
                         uint32_t perslab);

/* The event counters of one LRU, kept under its LRU lock and zeroed by
 * "stats reset". */
struct lru_counters {
    uint64_t evicted;
    uint64_t evicted_nonzero;
    rel_time_t evicted_time;    /* idle time of the last evicted item */
    uint64_t outofmemory;
    uint64_t reclaimed;
    uint64_t expired_unfetched;
    uint64_t evicted_unfetched;
    uint64_t evicted_active;
    uint64_t crawler_reclaimed;
    uint64_t crawler_items_checked;
    uint64_t lrutail_reflocked;
    uint64_t direct_reclaims;
};

/* Per-LRU numbers for "stats items" (id SLABS_LARGE_CLASS is the large
 * items' LRU).  Tombstones are in none of them but `tombstones`. */
struct items_lru_stats {
    uint64_t number;            /* linked items, tombstones excluded */
    uint64_t tombstones;        /* linked tombstones */
    uint64_t bytes;             /* sum of ITEM_size of the items */
    rel_time_t tail_time;       /* last access of the oldest, 0 if empty */
    struct lru_counters c;
};
void items_lru_stats(unsigned id, struct items_lru_stats *out);

/* Items linked since start-up (or the last items_stats_reset()). */
uint64_t items_total_linked(void);

/* Zero total_items and every LRU's counters (not number and bytes). */
void items_stats_reset(void);

/* "stats cachedump": up to limit (0 = all, within 2 MB of text) lines
 * "ITEM <key> [<bytes> b; <exptime> s]\r\n" of LRU id, newest first, each
 * passed to line() with no lock held (line may block).  Returns how many
 * lines it passed (0 also when out of memory). */
unsigned items_cachedump(unsigned id, unsigned limit,
                         void (*line)(const char *line, size_t len, void *ctx),
                         void *ctx);

/* "stats sizes" histogram (settings.track_sizes): calls fn for every
 * 32-byte bucket holding items, smallest first. */
void items_sizes(void (*fn)(uint32_t bucket_size, uint64_t count, void *ctx),
                 void *ctx);

#endif /* ITEMS_H */
