/*
 * items.c - the life of an item: allocation (with reclaim and eviction),
 * the item locks, linking into the hash table and an LRU, references,
 * expiry and flush checks, the per-class LRUs and their counters.
 *
 * Owns: the item lock table, one LRU per slab class (index 0,
 * SLABS_LARGE_CLASS, is the LRU of malloc'd large items), the flush
 * watermarks, the item size histogram, total_items.
 *
 * Flush watermarks.  flush_floor: every version below it is dead.
 * flush_pending: the threshold of the one delayed flush waiting for its
 * second (0 = none); the first lookup after it is due raises flush_floor
 * to it.  flush_newest: the command version of the newest flush applied,
 * which alone may set or cancel flush_pending, so the order in which a
 * node applies its own and its peer's flushes does not matter.
 *
 * Tombstones (items.h) share the LRUs and the eviction and crawler walks;
 * only the counting differs: lru_link_locked / lru_unlink_locked keep them
 * in l->tombstones, and count_removal / crawl_check count nothing for them.
 *
 * Invariants.
 *   - An item is ITEM_LINKED exactly while it is in the hash table and in
 *     the LRU of its class; the link holds one reference.
 *   - refcount 0 means unlinked and unreferenced: the item is freed at that
 *     moment (item_release) and never touched again.
 *   - Memory of an item that someone else references is not modified,
 *     except the LRU fields and the ITEM_FETCHED/ACTIVE bits; storage.c
 *     builds a new item when it must change one that is shared.
 *   - A lookup never returns an expired or flushed item: it unlinks it.
 *
 * The LRU.  Each LRU is a doubly linked list, head = most recently used.
 * Stores link at the head; a hit moves the item to the head only when its
 * last move is more than ITEM_UPDATE_INTERVAL seconds old, so hot keys do
 * not take the LRU lock.  A hit only sets bits: ITEM_FETCHED the first
 * time, ITEM_ACTIVE after that.  When a class has no free chunk,
 * allocation looks at the five oldest items of its LRU: an expired or
 * flushed one is reclaimed (its chunk reused), else, unless -M, the oldest
 * one nobody holds is evicted - but an active one gets a second chance
 * first (back to the head, active bit cleared), which is how an item that
 * keeps being read survives, as it does in memcached's segmented LRU.
 * Items somebody holds (refcount > 1) are skipped and counted as
 * lrutail_reflocked.  Large items live in their own LRU and are
 * evicted from it to make room for another large item; when that LRU is
 * empty one large item may exceed the memory limit (see slabs.c).
 *
 * Locking.
 *   - item locks: 2^min(hashpower_init, 12) spinlocks, item_lock(hv) =
 *     item_lock_table[hv & item_lock_mask] (inlined from items.h).  Held
 *     for every lookup and change of a key's hash chain and item fields.
 *     item_lock_all() takes them all in index order
 *     (only the hash expansion does, holding no other item lock).  Spin,
 *     not mutex: they are held for a lookup or a relink, and a mutex's
 *     lock/unlock pair cost several times the instructions of a lookup
 *     itself; a waiter that spins too long yields its CPU (the holder
 *     may have been preempted, or be allocating a slab page).
 *   - LRU lock, one per class: the list links, the counters, and the
 *     ITEM_LINKED bit (so an LRU walker holding it sees a stable LINKED
 *     state and, for linked items, a stable key).  An item_mutex
 *     (items.h): a futex mutex, not a spinlock, as some holders are long
 *     (cachedump, eviction passes), but inlined, as a store takes it.
 *   - Order: item lock -> LRU lock -> slab class lock.  Code that starts
 *     from an LRU (eviction, crawler, page mover) holds the LRU lock and
 *     can therefore only *try* item locks; a busy lock means "skip it".
 *   - refcount and it_flags are atomic.  The flush watermarks are atomics
 *     read on every lookup; flush_lock serializes the flushes themselves
 *     (never held with another lock).
 */
#include "items.h"

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "assoc.h"
#include "clock.h"
#include "hash.h"
#include "slabs.h"
#include "util.h"

/* memcached's item header (48 bytes, + 8 with CAS): item_size_max is
 * measured against it so that exactly the same values fit. */
#define MC_HEADER_SIZE 48
#define ITEM_LOCK_POWER_MAX 12
/* How many of an LRU's oldest items allocation looks at. */
#define TAIL_SEARCH 5
/* How many recently read tail items one eviction may send back to the
 * head (bounds the LRU lock hold when everything is hot). */
#define MAX_SECOND_CHANCES 20
/* Rounds of "free list, then LRU tail" before giving up. */
#define ALLOC_TRIES 3
/* Bytes of text "stats cachedump" returns at most, as memcached. */
#define CACHEDUMP_MAX_BYTES (2 * 1024 * 1024)
#define SIZES_BUCKET 32

/* One slab class's LRU; "stats reset" zeroes its counters (c). */
struct lru {
    struct item_mutex lock;
    item *head;
    item *tail;
    uint64_t number;            /* items, tombstones excluded */
    uint64_t tombstones;
    uint64_t bytes;
    struct lru_counters c;
};

static struct lru lrus[MAX_SLAB_CLASSES];

uint32_t *item_lock_table;          /* atomic: 1 while held */
uint32_t item_lock_mask;
static uint32_t item_lock_count;

static uint64_t total_items;        /* atomic */
static uint64_t flush_floor;        /* atomic: versions below are dead */
static uint64_t flush_pending;      /* atomic: delayed flush threshold */
static uint64_t flush_newest;       /* under flush_lock */
static pthread_mutex_t flush_lock = PTHREAD_MUTEX_INITIALIZER;

static uint64_t *size_hist;         /* atomic buckets, track_sizes only */
static size_t size_hist_len;

/* ---- Item locks ---- */

bool items_init(unsigned hashpower)
{
    unsigned power = hashpower < ITEM_LOCK_POWER_MAX ? hashpower
                                                     : ITEM_LOCK_POWER_MAX;
    item_lock_count = 1u << power;
    item_lock_mask = item_lock_count - 1;
    item_lock_table = calloc(item_lock_count, sizeof(*item_lock_table));
    if (item_lock_table == NULL)
        return false;
    memset(lrus, 0, sizeof(lrus));
    if (settings.track_sizes) {
        size_hist_len = ((size_t)settings.item_size_max + sizeof(item) +
                         KEY_MAX_LENGTH) / SIZES_BUCKET + 2;
        size_hist = calloc(size_hist_len, sizeof(uint64_t));
        if (size_hist == NULL)
            return false;
    }
    return true;
}

/* Tries of a busy item lock between two sched_yield() calls. */
#define ITEM_LOCK_SPINS 256

/* The spinlock l was busy: wait reading it (no cache line ping-pong),
 * politely, yielding now and then, and take it once it is free. */
void item_spin_wait(uint32_t *l)
{
    do {
        unsigned spins = 0;
        while (__atomic_load_n(l, __ATOMIC_RELAXED) != 0) {
            if (++spins < ITEM_LOCK_SPINS) {
#if defined(__x86_64__) || defined(__i386__)
                __builtin_ia32_pause();
#endif
            } else {
                sched_yield();
                spins = 0;
            }
        }
    } while (__atomic_exchange_n(l, 1, __ATOMIC_ACQUIRE) != 0);
}

void item_lock_all(void)
{
    for (uint32_t i = 0; i < item_lock_count; i++)
        item_spin_lock(&item_lock_table[i]);
}

void item_unlock_all(void)
{
    for (uint32_t i = item_lock_count; i-- > 0;)
        item_spin_unlock(&item_lock_table[i]);
}

void item_mutex_wait(struct item_mutex *m)
{
    /* Mark the mutex waited for; whoever held it wakes a sleeper when it
     * lets go.  The kernel sleeps only while the state is still 2, so a
     * release between the exchange and the sleep is never missed. */
    while (__atomic_exchange_n(&m->state, 2, __ATOMIC_ACQUIRE) != 0)
        syscall(SYS_futex, &m->state, FUTEX_WAIT_PRIVATE, 2, NULL, NULL, 0);
}

void item_mutex_wake(struct item_mutex *m)
{
    syscall(SYS_futex, &m->state, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

/* ---- LRU lists (the LRU's lock held) ---- */

static void lru_insert_head(struct lru *l, item *it)
{
    it->prev = NULL;
    it->next = l->head;
    if (l->head != NULL)
        l->head->prev = it;
    l->head = it;
    if (l->tail == NULL)
        l->tail = it;
}

/* Insert it just before (towards the head of) pos. */
static void lru_insert_before(struct lru *l, item *pos, item *it)
{
    it->next = pos;
    it->prev = pos->prev;
    if (pos->prev != NULL)
        pos->prev->next = it;
    else
        l->head = it;
    pos->prev = it;
}

static void lru_remove(struct lru *l, item *it)
{
    if (it->prev != NULL)
        it->prev->next = it->next;
    else
        l->head = it->next;
    if (it->next != NULL)
        it->next->prev = it->prev;
    else
        l->tail = it->prev;
    it->next = it->prev = NULL;
}

/* ---- Size histogram ---- */

static void size_hist_add(const item *it, int64_t delta)
{
    if (size_hist == NULL)
        return;
    size_t b = (ITEM_size(it) + SIZES_BUCKET - 1) / SIZES_BUCKET;
    if (b >= size_hist_len)
        b = size_hist_len - 1;
    __atomic_add_fetch(&size_hist[b], (uint64_t)delta, __ATOMIC_RELAXED);
}

void items_sizes(void (*fn)(uint32_t bucket_size, uint64_t count, void *ctx),
                 void *ctx)
{
    for (size_t b = 0; b < size_hist_len; b++) {
        uint64_t n = __atomic_load_n(&size_hist[b], __ATOMIC_RELAXED);
        if (n != 0)
            fn((uint32_t)(b * SIZES_BUCKET), n, ctx);
    }
}

/* ---- Life and death ---- */

/* Give the memory of an unreferenced, unlinked item back. */
static void item_free(item *it)
{
    if (it->slabs_clsid == SLABS_LARGE_CLASS)
        slabs_free_large(it, ITEM_mem(it));
    else
        slabs_free(it, it->slabs_clsid);
}

void item_release(item *it)
{
    if (__atomic_sub_fetch(&it->refcount, 1, __ATOMIC_ACQ_REL) == 0)
        item_free(it);
}

/* The server second in which version v was made. */
static rel_time_t version_rel_time(uint64_t v)
{
    uint64_t ms = (v >> CLOCK_PHYS_SHIFT) + CLOCK_EPOCH_MS;
    return (rel_time_t)((int64_t)(ms / 1000) - (int64_t)process_started);
}

/* flush_floor = max(flush_floor, floor), lock-free. */
static void raise_flush_floor(uint64_t floor)
{
    uint64_t cur = __atomic_load_n(&flush_floor, __ATOMIC_ACQUIRE);
    while (cur < floor &&
           !__atomic_compare_exchange_n(&flush_floor, &cur, floor, true,
                                        __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
        ;
}

/* items_version_flushed once no flush is known to cover v yet: v is
 * flushed only by a delayed flush that has come due. */
static bool version_flushed_pending(uint64_t v)
{
    uint64_t pending = __atomic_load_n(&flush_pending, __ATOMIC_ACQUIRE);
    if (pending == 0 || v >= pending ||
        version_rel_time(pending) >
            __atomic_load_n(&current_time, __ATOMIC_RELAXED) + 1)
        return false;
    /* The delayed flush is due: make it the floor so later checks are one
     * comparison.  The pending slot is cleared only if no newer flush
     * replaced it meanwhile. */
    raise_flush_floor(pending);
    __atomic_compare_exchange_n(&flush_pending, &pending, 0, false,
                                __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
    return true;
}

/* The check every lookup makes, inlined: below the floor is flushed; the
 * pending delayed flush is looked at only when there is one. */
static inline bool version_flushed(uint64_t v)
{
    if (v < __atomic_load_n(&flush_floor, __ATOMIC_ACQUIRE))
        return true;
    return __atomic_load_n(&flush_pending, __ATOMIC_RELAXED) != 0 &&
           version_flushed_pending(v);
}

bool items_version_flushed(uint64_t v)
{
    return version_flushed(v);
}

/* item_liveness, inlined into item_lookup. */
static inline enum item_state liveness(const item *it)
{
    if (version_flushed(it->version))
        return ITEM_STATE_FLUSHED;
    rel_time_t exp = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);
    if (exp != 0 && exp <= __atomic_load_n(&current_time, __ATOMIC_RELAXED))
        return ITEM_STATE_EXPIRED;
    return ITEM_STATE_LIVE;
}

enum item_state item_liveness(const item *it)
{
    return liveness(it);
}

void items_flush(uint64_t floor, uint64_t threshold, uint64_t version)
{
    pthread_mutex_lock(&flush_lock);
    raise_flush_floor(floor);
    if (version > flush_newest) {
        flush_newest = version;
        __atomic_store_n(&flush_pending, threshold, __ATOMIC_RELEASE);
    }
    pthread_mutex_unlock(&flush_lock);
}

/* The LRU half of linking it into l (item lock and l's lock held): the
 * link's reference, last access = now, head of the LRU, counters. */
static void lru_link_locked(struct lru *l, item *it)
{
    it->time = current_time;
    item_ref(it);
    item_flags_set(it, ITEM_LINKED);
    lru_insert_head(l, it);
    if (item_flags(it) & ITEM_TOMBSTONE) {
        l->tombstones++;
        return;
    }
    l->number++;
    l->bytes += ITEM_size(it);
    size_hist_add(it, 1);
    __atomic_add_fetch(&total_items, 1, __ATOMIC_RELAXED);
}

/* The LRU half of unlinking (both locks held); the link's reference is
 * left for the caller to drop or reuse. */
static void lru_unlink_locked(struct lru *l, item *it)
{
    lru_remove(l, it);
    item_flags_clear(it, ITEM_LINKED);
    if (item_flags(it) & ITEM_TOMBSTONE) {
        l->tombstones--;
        return;
    }
    l->number--;
    l->bytes -= ITEM_size(it);
    size_hist_add(it, -1);
}

/* Take it out of LRU l and the hash table (both locks held); the link's
 * reference is handed to the caller. */
static void unlink_locked(struct lru *l, item *it, uint32_t hv)
{
    lru_unlink_locked(l, it);
    assoc_delete(it, hv);
}

/* Count in l why it left the LRU without anyone deleting it (a tombstone
 * counts nothing: clients never saw it). */
static void count_removal(struct lru *l, const item *it, bool dead)
{
    uint8_t f = item_flags(it);
    if (f & ITEM_TOMBSTONE)
        return;
    if (dead) {
        l->c.reclaimed++;
        if (!(f & ITEM_FETCHED))
            l->c.expired_unfetched++;
        return;
    }
    l->c.evicted++;
    l->c.evicted_time = current_time - it->time;
    if (it->exptime != 0)
        l->c.evicted_nonzero++;
    if (!(f & ITEM_FETCHED))
        l->c.evicted_unfetched++;
    if (f & ITEM_ACTIVE)
        l->c.evicted_active++;
}

/* What lru_take() did with an LRU item. */
enum take_result { TAKE_NONE, TAKE_RECLAIMED, TAKE_EVICTED };

/* Try to take LRU item it for reuse (l's lock held): it must be lockable
 * and held by nobody but its link; when only_dead, it must also be expired
 * or flushed.  When taken it is unlinked, counted, and its link's
 * reference (refcount 1) now belongs to the caller. */
static enum take_result lru_take(struct lru *l, item *it, bool only_dead)
{
    uint32_t hv = hash_key(ITEM_key(it), it->nkey);
    if (!item_trylock(hv))
        return TAKE_NONE;
    enum take_result r = TAKE_NONE;
    if (__atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) != 1) {
        l->c.lrutail_reflocked++;
    } else {
        bool dead = item_liveness(it) != ITEM_STATE_LIVE;
        if (dead || !only_dead) {
            unlink_locked(l, it, hv);
            count_removal(l, it, dead);
            r = dead ? TAKE_RECLAIMED : TAKE_EVICTED;
        }
    }
    item_unlock(hv);
    return r;
}

/* Free one item's worth of room in LRU id: first an expired or flushed
 * item among the TAIL_SEARCH oldest, else (when evict) the oldest of them
 * nobody holds.  An item read again since it was last moved gets a second
 * chance instead of being evicted: it goes back to the head, no longer
 * active.  Returns the item taken, unlinked, refcount 1, or NULL. */
static item *lru_pull_tail(unsigned id, bool evict)
{
    struct lru *l = &lrus[id];
    item *got = NULL;
    enum take_result r = TAKE_NONE;
    int second_chances = 0;
    item_mutex_lock(&l->lock);
    l->c.direct_reclaims++;
    for (int pass = 0; pass < (evict ? 2 : 1) && got == NULL; pass++) {
        int seen = 0;
        item *prev;
        for (item *it = l->tail; it != NULL && seen < TAIL_SEARCH; it = prev) {
            prev = it->prev;
            uint8_t f = item_flags(it);
            if (f & ITEM_CURSOR)
                continue;
            if (pass == 1 && (f & ITEM_ACTIVE) &&
                second_chances++ < MAX_SECOND_CHANCES) {
                item_flags_clear(it, ITEM_ACTIVE);
                lru_remove(l, it);
                lru_insert_head(l, it);
                continue;
            }
            seen++;
            r = lru_take(l, it, pass == 0);
            if (r != TAKE_NONE) {
                got = it;
                break;
            }
        }
    }
    item_mutex_unlock(&l->lock);
    if (r == TAKE_EVICTED && id != SLABS_LARGE_CLASS)
        slabs_note_eviction(id);
    return got;
}

/* Memory for a slab item of class id. */
static item *alloc_chunk(unsigned id)
{
    for (int tries = 0; tries < ALLOC_TRIES; tries++) {
        item *it = slabs_alloc(id, true);
        if (it == NULL)
            it = lru_pull_tail(id, settings.evict_to_free);
        if (it != NULL)
            return it;
    }
    return NULL;
}

/* Memory for a large item of ntotal bytes: evict other large items until
 * it fits; with none left to evict it may exceed the limit. */
static item *alloc_large(size_t ntotal)
{
    struct lru *l = &lrus[SLABS_LARGE_CLASS];
    for (;;) {
        item_mutex_lock(&l->lock);
        bool empty = l->number == 0;
        item_mutex_unlock(&l->lock);
        item *it = slabs_alloc_large(ntotal, empty);
        if (it != NULL)
            return it;
        item *victim = lru_pull_tail(SLABS_LARGE_CLASS, settings.evict_to_free);
        if (victim == NULL)
            return NULL;
        item_release(victim);
    }
}

/* ---- Numbers ---- */

/* "00" "01" ... "99": two digits per division. */
static const char digit_pairs[201] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* The number of decimal digits of v.  Flags (often 0) and value lengths
 * (often below 1000) take a branch of their own. */
static inline unsigned decimal_len(uint64_t v)
{
    if (v < 10)
        return 1;
    if (v < 100)
        return 2;
    if (v < 1000)
        return 3;
    unsigned n = 4;
    for (uint64_t lim = 10000; n < 20 && v >= lim; lim *= 10)
        n++;
    return n;
}

/* Write the decimal digits of v so that they end at end, two at a time. */
static inline void decimal_write(char *end, uint64_t v)
{
    while (v >= 100) {
        unsigned r = (unsigned)(v % 100);
        v /= 100;
        end -= 2;
        memcpy(end, digit_pairs + 2 * r, 2);
    }
    if (v >= 10)
        memcpy(end - 2, digit_pairs + 2 * v, 2);
    else
        end[-1] = (char)('0' + v);
}

char *item_fmt_u64(char *p, uint64_t v)
{
    p += decimal_len(v);
    decimal_write(p, v);
    return p;
}

item *item_alloc(const char *key, size_t nkey, uint32_t client_flags,
                 rel_time_t exptime, size_t nbytes, bool *too_large)
{
    /* memcached's size: its header, the key and its '\0', the value. */
    size_t mc_size = MC_HEADER_SIZE + (settings.use_cas ? 8 : 0) + nkey + 1 + nbytes;
    *too_large = nkey == 0 || nkey > KEY_MAX_LENGTH || nbytes < 2 ||
                 mc_size > (size_t)settings.item_size_max;
    if (*too_large)
        return NULL;

    size_t ntotal = ITEM_ntotal(nkey, nbytes);
    unsigned id = slabs_clsid(ntotal);
    /* The suffix " <flags> <bytes>\r\n" is kept only when the chunk of the
     * class has room for it: it never takes memory (a larger class, or a
     * larger malloc) of its own. */
    size_t vlen = nbytes - 2;
    unsigned nflags = decimal_len(client_flags), nvlen = decimal_len(vlen);
    size_t nsuffix = 4 + nflags + nvlen;
    if (id == SLABS_LARGE_CLASS || ntotal - 1 + nsuffix > slabs_chunk_size(id))
        nsuffix = 1;
    item *it = id == SLABS_LARGE_CLASS ? alloc_large(ntotal) : alloc_chunk(id);
    if (it == NULL) {
        struct lru *l = &lrus[id];
        item_mutex_lock(&l->lock);
        l->c.outofmemory++;
        item_mutex_unlock(&l->lock);
        return NULL;
    }

    it->next = it->prev = it->h_next = NULL;
    it->time = current_time;
    it->exptime = exptime;
    it->nbytes = (uint32_t)nbytes;
    it->client_flags = client_flags;
    __atomic_store_n(&it->refcount, 1, __ATOMIC_RELAXED);
    __atomic_store_n(&it->it_flags, 0, __ATOMIC_RELAXED);
    it->slabs_clsid = (uint8_t)id;
    it->nkey = (uint8_t)nkey;
    it->nsuffix = (uint8_t)nsuffix;
    it->cas = 0;
    it->version = 0;
    memcpy(ITEM_key(it), key, nkey);
    char *p = ITEM_suffix(it);
    if (nsuffix == 1) {
        p[0] = '\0';
        return it;
    }
    p[0] = ' ';
    decimal_write(p + 1 + nflags, client_flags);
    p[1 + nflags] = ' ';
    decimal_write(p + 2 + nflags + nvlen, vlen);
    memcpy(p + 2 + nflags + nvlen, "\r\n", 2);
    return it;
}

void item_link(item *it, uint32_t hv)
{
    struct lru *l = &lrus[it->slabs_clsid];
    item_mutex_lock(&l->lock);
    lru_link_locked(l, it);
    item_mutex_unlock(&l->lock);
    assoc_insert(it, hv);
}

void item_unlink(item *it, uint32_t hv)
{
    struct lru *l = &lrus[it->slabs_clsid];
    item_mutex_lock(&l->lock);
    bool linked = item_flags(it) & ITEM_LINKED;
    if (linked)
        unlink_locked(l, it, hv);
    item_mutex_unlock(&l->lock);
    if (linked)
        item_release(it);
}

/* Within one class (the common case: a set over a same-sized value) the
 * swap takes the LRU lock once and walks the hash chain once. */
void item_replace(item *old_it, item *new_it, uint32_t hv)
{
    struct lru *l = &lrus[new_it->slabs_clsid];
    if (old_it->slabs_clsid != new_it->slabs_clsid) {
        item_unlink(old_it, hv);
        item_link(new_it, hv);
        return;
    }
    item_mutex_lock(&l->lock);
    bool linked = item_flags(old_it) & ITEM_LINKED;
    if (linked)
        lru_unlink_locked(l, old_it);
    lru_link_locked(l, new_it);
    item_mutex_unlock(&l->lock);
    if (linked) {
        assoc_replace(old_it, new_it, hv);
        item_release(old_it);
    } else {
        assoc_insert(new_it, hv);
    }
}

/* lookup()'s end for a tombstone or an item found dead (*state says
 * which liveness), out of the inlined path of a hit. */
static item *lookup_unusual(item *it, uint32_t hv, enum item_state *state)
{
    bool tombstone = item_flags(it) & ITEM_TOMBSTONE;
    if (*state != ITEM_STATE_LIVE) {
        item_unlink(it, hv);
        if (tombstone)
            *state = ITEM_STATE_MISSING;
        return NULL;
    }
    *state = ITEM_STATE_TOMBSTONE;
    return it;
}

/* item_lookup's body, inlined into item_get() too. */
static inline item *lookup(const char *key, size_t nkey, uint32_t hv,
                           enum item_state *state)
{
    item *it = assoc_find(key, nkey, hv);
    if (it == NULL) {
        *state = ITEM_STATE_MISSING;
        return NULL;
    }
    *state = liveness(it);
    if (*state != ITEM_STATE_LIVE || (item_flags(it) & ITEM_TOMBSTONE))
        return lookup_unusual(it, hv, state);
    return it;
}

item *item_lookup(const char *key, size_t nkey, uint32_t hv,
                  enum item_state *state)
{
    return lookup(key, nkey, hv, state);
}

/* Move it to the head of its LRU if the last move is old enough. */
static void lru_refresh(item *it)
{
    if (it->time + ITEM_UPDATE_INTERVAL >=
        __atomic_load_n(&current_time, __ATOMIC_RELAXED))
        return;
    struct lru *l = &lrus[it->slabs_clsid];
    item_mutex_lock(&l->lock);
    if (item_flags(it) & ITEM_LINKED) {
        lru_remove(l, it);
        lru_insert_head(l, it);
        it->time = current_time;
        item_flags_clear(it, ITEM_ACTIVE);
    }
    item_mutex_unlock(&l->lock);
}

/* item_touch_lru's body, inlined into item_get(): an item read again and
 * again (both bits set, bumped less than ITEM_UPDATE_INTERVAL ago) costs
 * a load and two compares. */
static inline void touch_lru(item *it)
{
    uint8_t f = item_flags(it);
    if (!(f & ITEM_FETCHED))
        item_flags_set(it, ITEM_FETCHED);
    else if (!(f & ITEM_ACTIVE))
        item_flags_set(it, ITEM_ACTIVE);
    lru_refresh(it);
}

void item_touch_lru(item *it)
{
    touch_lru(it);
}

item *item_get(const char *key, size_t nkey, uint32_t hv,
               enum item_state *state)
{
    item *it = lookup(key, nkey, hv, state);
    if (*state != ITEM_STATE_LIVE)
        return NULL;
    touch_lru(it);
    return it;
}

void item_bump(item *it)
{
    lru_refresh(it);
}

/* ---- The crawler's walk ---- */

void items_crawl_begin(unsigned id, item *cursor)
{
    struct lru *l = &lrus[id];
    item_mutex_lock(&l->lock);
    cursor->prev = l->tail;
    cursor->next = NULL;
    if (l->tail != NULL)
        l->tail->next = cursor;
    else
        l->head = cursor;
    l->tail = cursor;
    item_mutex_unlock(&l->lock);
}

void items_crawl_end(unsigned id, item *cursor)
{
    struct lru *l = &lrus[id];
    item_mutex_lock(&l->lock);
    lru_remove(l, cursor);
    item_mutex_unlock(&l->lock);
}

/* Reclaim x if it is expired or flushed (l's lock held); tombstones are
 * reclaimed alike but not counted. */
static void crawl_check(struct lru *l, item *x)
{
    uint32_t hv = hash_key(ITEM_key(x), x->nkey);
    if (!item_trylock(hv))
        return;
    uint8_t f = item_flags(x);
    bool counted = !(f & ITEM_TOMBSTONE);
    if (counted)
        l->c.crawler_items_checked++;
    if (item_liveness(x) != ITEM_STATE_LIVE) {
        unlink_locked(l, x, hv);
        if (counted) {
            l->c.crawler_reclaimed++;
            if (!(f & ITEM_FETCHED))
                l->c.expired_unfetched++;
        }
        item_release(x);
    }
    item_unlock(hv);
}

bool items_crawl_step(unsigned id, item *cursor, unsigned batch,
                      uint32_t *budget)
{
    struct lru *l = &lrus[id];
    bool more = true;
    item_mutex_lock(&l->lock);
    for (unsigned n = 0; n < batch; n++) {
        item *x = cursor->prev;
        if (x == NULL || *budget == 0) {
            lru_remove(l, cursor);
            more = false;
            break;
        }
        /* Step over x: it is now behind the cursor, whatever happens. */
        lru_remove(l, cursor);
        lru_insert_before(l, x, cursor);
        if (item_flags(x) & ITEM_CURSOR)
            continue;
        (*budget)--;
        crawl_check(l, x);
    }
    item_mutex_unlock(&l->lock);
    return more;
}

/* ---- The page mover's evacuation ---- */

/* Move linked item it (in a page being emptied) out: copy it into a free
 * chunk of its class, or evict it.  LRU lock and item lock held. */
static void evacuate(struct lru *l, item *it, uint32_t hv, unsigned id)
{
    item *copy = slabs_alloc(id, false);
    if (copy != NULL) {
        memcpy(copy, it, ITEM_mem(it));
        __atomic_store_n(&copy->refcount, 1, __ATOMIC_RELAXED);
        lru_insert_before(l, it, copy);
        lru_remove(l, it);
        assoc_replace(it, copy, hv);
        item_flags_clear(it, ITEM_LINKED);
    } else {
        /* No room to rescue it: the page move drops it (not counted as
         * an eviction: memory pressure did not ask for it). */
        unlink_locked(l, it, hv);
    }
    item_release(it);
}

void items_evacuate_page(unsigned id, char *page, uint32_t chunk_size,
                         uint32_t perslab)
{
    struct lru *l = &lrus[id];
    for (uint32_t i = 0; i < perslab; i++) {
        item *it = (item *)(page + (size_t)i * chunk_size);
        item_mutex_lock(&l->lock);
        if (item_flags(it) & ITEM_LINKED) {
            uint32_t hv = hash_key(ITEM_key(it), it->nkey);
            if (item_trylock(hv)) {
                evacuate(l, it, hv, id);
                item_unlock(hv);
            }
        }
        item_mutex_unlock(&l->lock);
    }
}

/* ---- Reports ---- */

void items_lru_stats(unsigned id, struct items_lru_stats *out)
{
    struct lru *l = &lrus[id];
    item_mutex_lock(&l->lock);
    item *tail = l->tail;
    while (tail != NULL && (item_flags(tail) & ITEM_CURSOR))
        tail = tail->prev;
    *out = (struct items_lru_stats){
        .number = l->number,
        .tombstones = l->tombstones,
        .bytes = l->bytes,
        .tail_time = tail != NULL ? tail->time : 0,
        .c = l->c,
    };
    item_mutex_unlock(&l->lock);
}

uint64_t items_total_linked(void)
{
    return __atomic_load_n(&total_items, __ATOMIC_RELAXED);
}

void items_stats_reset(void)
{
    __atomic_store_n(&total_items, 0, __ATOMIC_RELAXED);
    for (unsigned id = 0; id < MAX_SLAB_CLASSES; id++) {
        item_mutex_lock(&lrus[id].lock);
        memset(&lrus[id].c, 0, sizeof(lrus[id].c));
        item_mutex_unlock(&lrus[id].lock);
    }
}

unsigned items_cachedump(unsigned id, unsigned limit,
                         void (*line)(const char *line, size_t len, void *ctx),
                         void *ctx)
{
    /* The lines are formatted under the LRU lock into one buffer, each
     * after its 16-bit length, and handed to line() once the lock is
     * dropped: line() may block on a slow client. */
    size_t size = CACHEDUMP_MAX_BYTES + CACHEDUMP_MAX_BYTES / 4;
    char *buf = malloc(size);
    if (buf == NULL)
        return 0;
    struct lru *l = &lrus[id];
    size_t used = 0, text = 0;
    unsigned shown = 0;
    item_mutex_lock(&l->lock);
    for (item *it = l->head; it != NULL && (limit == 0 || shown < limit);
         it = it->next) {
        if (item_flags(it) & (ITEM_CURSOR | ITEM_TOMBSTONE))
            continue;
        uint16_t len;
        size_t room = size - used - sizeof(len);
        rel_time_t exp = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);
        int n = snprintf(buf + used + sizeof(len), room,
                         "ITEM %.*s [%u b; %lld s]\r\n", (int)it->nkey,
                         ITEM_key(it), it->nbytes - 2,
                         (long long)rel_to_unix(exp));
        if (n < 0 || (size_t)n >= room || text + (size_t)n > CACHEDUMP_MAX_BYTES)
            break;
        len = (uint16_t)n;
        memcpy(buf + used, &len, sizeof(len));
        used += sizeof(len) + (size_t)n;
        text += (size_t)n;
        shown++;
    }
    item_mutex_unlock(&l->lock);
    for (size_t off = 0; off < used;) {
        uint16_t len;
        memcpy(&len, buf + off, sizeof(len));
        line(buf + off + sizeof(len), len, ctx);
        off += sizeof(len) + len;
    }
    free(buf);
    return shown;
}
