/*
 * assoc.c - the hash table: 2^hashpower buckets of items chained through
 * it->h_next, grown by a background thread.
 *
 * Owns: the bucket arrays, the item count, the expansion thread.
 *
 * Locking.  A key's chain is only read or changed under item_lock(hv) of
 * that key (items.c).  The item lock table has at most as many locks as the
 * table had buckets at start-up, so every item of one bucket - of the
 * current table or of any older, smaller one - is covered by one lock.
 *
 * Expansion.  When the table holds more than 1.5 items per bucket (and
 * settings.hash_expand), an insert wakes the expansion thread, which:
 *   1. allocates a table twice as large (or larger: assoc_reserve() may
 *      have asked for room for many items at once, as a replication bulk
 *      sync does, so the table grows once instead of once per doubling),
 *      then under item_lock_all() makes it primary, keeps the current one
 *      as old_table (of old_power) and starts moving buckets from
 *      expand_bucket = 0;
 *   2. moves old buckets one at a time, each under its item lock, to their
 *      places in the new table, then advances expand_bucket;
 *   3. under item_lock_all() drops old_table and frees it.
 * A lookup during the move finds its old bucket b = hv & old mask: if
 * b >= expand_bucket it has not moved and the old table is used, else the
 * new one.  That comparison is exact under the key's item lock, because
 * expand_bucket passes b only under the same lock.  Requests never wait
 * for more than one bucket's move.
 *
 * walk_lock (a read-write lock) freezes the tables for the walks
 * (metadump by hash, and the replication bulk sync, whose walk spans many
 * calls from assoc_walk_begin() to assoc_walk_end()): walkers hold it
 * shared for a whole walk, so several can run at once; the expansion
 * thread takes it exclusively around each step (one bucket, or a table
 * switch), so a walker waits for at most one step and expansion simply
 * pauses while walks run (glibc's rwlock prefers readers, so a new walk
 * does not wait behind a paused expansion either).
 * A walker holds a bucket's item lock only while it takes references to
 * that bucket's items, and uses them without any item lock, so a caller
 * that blocks (writing to a slow client) stalls nobody.  Because the
 * expansion thread may be waiting for walk_lock, assoc_stop_expander()
 * returns only once every walk has ended.
 *
 * assoc_prefetch_items() is the one place a bucket is read without its
 * item lock.  It does not take walk_lock (a lock and an unlock call per
 * pipelined batch); it keeps the tables from being switched or freed
 * under its reads with two atomics: it adds itself to `prefetchers`, then
 * reads the tables only if `switching` is clear, and leaves the count.
 * Before a switch or a free, the expansion thread sets `switching`, then
 * waits for `prefetchers` to be 0, and clears it when done.  Each side
 * writes its variable, then reads the other's, all sequentially
 * consistent: so either the prefetcher sees `switching` and reads
 * nothing, or the expansion thread sees it counted and waits for it to
 * leave.  A prefetcher never waits for anything (the item locks it takes
 * are only tried), so that wait is short and cannot deadlock.  Between a
 * switch and a free, while buckets move, both tables stay allocated: a
 * head read meanwhile from either one is at worst stale, which only costs
 * a useless prefetch.  (Its second stage follows a chain one step, and
 * only under the chain's item lock, tried and released at once: items
 * off the table may be freed.  assoc_prefetch_neighbours() searches
 * chains the same way, each under its item lock taken only if free, like
 * assoc_find().)
 *
 * expand_lock only guards the wake-up.  Order: walk_lock -> (the wait for
 * `prefetchers`) -> item locks -> (items.c's locks); an insert holding an
 * item lock may take expand_lock, which the expansion thread never holds
 * while taking item locks.
 */
#include "config.h"

#include "assoc.h"

#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "hash.h"
#include "util.h"

/* Beyond this the bucket array alone would not fit a real machine. */
#define HASHPOWER_MAX 32

static item **primary;
static item **old_table;            /* only while expanding */
static unsigned old_power;          /* of old_table; set under lock_all
                                     * (atomic for reports) */
static unsigned hashpower;          /* of primary; changed under lock_all */
static unsigned wanted_power;       /* atomic: assoc_reserve()'s request */
static bool expanding;              /* changed under lock_all */
/* (Both are also read without locks, for reports only.) */
static uint64_t expand_bucket;      /* next old bucket to move (atomic) */
static uint64_t nitems;             /* atomic */

static pthread_rwlock_t walk_lock = PTHREAD_RWLOCK_INITIALIZER;
static unsigned prefetchers;        /* atomic: assoc_prefetch_items() calls
                                     * under way */
static bool switching;              /* atomic: a table switch or free is
                                     * waiting for them, or under way */
static pthread_mutex_t expand_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t expand_cond = PTHREAD_COND_INITIALIZER;
static pthread_t expand_tid;
static bool expander_running;
static bool expander_stop;          /* atomic */
static bool expand_wanted;          /* under expand_lock */
static bool expand_requested;       /* atomic: a wake-up is pending */
static bool expand_failed;          /* out of memory once: stop trying */

#define BUCKETS(power) ((uint64_t)1 << (power))
#define MASK(power) (BUCKETS(power) - 1)

bool assoc_init(unsigned power)
{
    if (power > HASHPOWER_MAX) {
        mc_logf("A hash table of 2^%u buckets is too large (at most 2^%u)",
                power, HASHPOWER_MAX);
        return false;
    }
    hashpower = power;
    primary = calloc(BUCKETS(power), sizeof(item *));
    if (primary == NULL) {
        mc_logf("Failed to allocate a hash table of 2^%u buckets", power);
        return false;
    }
    return true;
}

/* The head of the chain that holds (or would hold) hv. */
static inline item **bucket_of(uint32_t hv)
{
    if (expanding) {
        uint64_t ob = hv & MASK(old_power);
        if (ob >= __atomic_load_n(&expand_bucket, __ATOMIC_RELAXED))
            return &old_table[ob];
    }
    return &primary[hv & MASK(hashpower)];
}

/* The 8 bytes at p, as one word. */
static inline uint64_t load_word(const char *p)
{
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* The n bytes at a and b are the same.  Keys are short: compared 8 bytes
 * at a time, the last partial word as the 8 bytes ending at n, never
 * reading outside either key, in place of a memcmp call. */
static inline bool key_eq(const char *a, const char *b, size_t n)
{
    if (n < 8) {
        size_t k = 0;
        while (k < n && a[k] == b[k])
            k++;
        return k == n;
    }
    size_t i = 0;
    for (; n - i >= 8; i += 8)
        if (load_word(a + i) != load_word(b + i))
            return false;
    return i == n || load_word(a + n - 8) == load_word(b + n - 8);
}

/* The item for key in the chain starting at it, or NULL. */
static inline item *chain_find(item *it, const char *key, size_t nkey)
{
    for (; it != NULL; it = it->h_next) {
        if (it->nkey == nkey && key_eq(ITEM_key(it), key, nkey))
            return it;
    }
    return NULL;
}

item *assoc_find(const char *key, size_t nkey, uint32_t hv)
{
    return chain_find(*bucket_of(hv), key, nkey);
}

void assoc_prefetch_bucket(uint32_t hv)
{
    /* Only an address is computed: a table being switched at this moment
     * costs a useless prefetch, never a bad read. */
    item **table = __atomic_load_n(&primary, __ATOMIC_RELAXED);
    unsigned power = __atomic_load_n(&hashpower, __ATOMIC_RELAXED);
    __builtin_prefetch(&table[hv & MASK(power)]);
}

/* Cache lines loaded per item: its 64-byte header, then the key and a
 * small value (which the answer's sendmsg copies from item memory), for
 * an item that does not start on a line boundary. */
#define ITEM_PREFETCH_LINES 4

/* assoc_prefetch_items()'s reads, once no table switch or free can start
 * under them (see the top of the file). */
static void prefetch_items(const uint32_t *hv, unsigned n)
{
    /* Until it returns no table is switched or freed, and the item locks
     * never change after start-up: all are read once here, not once per
     * key.  While expanding (rare) each key takes bucket_of()'s way, as
     * buckets move meanwhile. */
    item **table = primary;
    uint64_t mask = MASK(hashpower);
    bool moving = expanding;
    uint32_t *locks = item_lock_table;
    uint32_t lock_mask = item_lock_mask;
    for (unsigned i = 0; i < n; i++) {
        /* The head may be relinked meanwhile: a stale one is still slab
         * memory, and a prefetch never faults. */
        item **head = moving ? bucket_of(hv[i]) : &table[hv[i] & mask];
        const char *it = (const char *)__atomic_load_n(head, __ATOMIC_RELAXED);
        if (it == NULL)
            continue;
        for (int line = 0; line < ITEM_PREFETCH_LINES; line++)
            __builtin_prefetch(it + 64 * line);
    }
    /* Second stage: a key that is not the first item of its chain is
     * most often the second, whose address is in the first's h_next (at
     * 100k keys the table holds ~0.76 items per bucket, and waiting for
     * that second item was ~6% of a worker's CPU under the pipelined
     * benchmark).  Start loading it too.  The first items are arriving by
     * now: this waits once for the batch, as the first lookup would have.
     * An item off the table may be freed, so h_next is read only under
     * the chain's item lock, taken if free and never waited for. */
    for (unsigned i = 0; i < n; i++) {
        uint32_t *lock = &locks[hv[i] & lock_mask];
        if (!item_spin_trylock(lock))
            continue;
        const item *first = *(moving ? bucket_of(hv[i]) : &table[hv[i] & mask]);
        const char *it = first != NULL ? (const char *)first->h_next : NULL;
        item_spin_unlock(lock);
        if (it == NULL)
            continue;
        for (int line = 0; line < ITEM_PREFETCH_LINES; line++)
            __builtin_prefetch(it + 64 * line);
    }
}

void assoc_prefetch_items(const uint32_t *hv, unsigned n)
{
    __atomic_add_fetch(&prefetchers, 1, __ATOMIC_SEQ_CST);
    if (!__atomic_load_n(&switching, __ATOMIC_SEQ_CST))
        prefetch_items(hv, n);
    __atomic_sub_fetch(&prefetchers, 1, __ATOMIC_RELEASE);
}

/* Keep assoc_prefetch_items() off the tables until tables_release()
 * (expansion thread, before a switch or a free). */
static void tables_hold(void)
{
    __atomic_store_n(&switching, true, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(&prefetchers, __ATOMIC_SEQ_CST) != 0)
        sched_yield();
}

static void tables_release(void)
{
    __atomic_store_n(&switching, false, __ATOMIC_RELEASE);
}

void assoc_prefetch_neighbours(const uint8_t *const *keys, const uint8_t *nkeys,
                               const uint32_t *hv, unsigned n)
{
    for (unsigned i = 0; i < n; i++) {
        if (!item_trylock(hv[i]))
            continue;
        item *it = chain_find(*bucket_of(hv[i]), (const char *)keys[i], nkeys[i]);
        if (it != NULL) {
            /* LRU fields, read without the LRU lock: a stale pointer only
             * costs a useless prefetch (one never faults). */
            __builtin_prefetch(__atomic_load_n(&it->prev, __ATOMIC_RELAXED), 1);
            __builtin_prefetch(__atomic_load_n(&it->next, __ATOMIC_RELAXED), 1);
        }
        item_unlock(hv[i]);
    }
}

/* The link that points at it in its chain. */
static item **link_to(item *it, uint32_t hv)
{
    item **pp = bucket_of(hv);
    while (*pp != it) {
        /* Only items known to be in the table are looked for. */
        if (*pp == NULL)
            abort();
        pp = &(*pp)->h_next;
    }
    return pp;
}

/* Wake the expansion thread once. */
static void request_expansion(void)
{
    if (__atomic_exchange_n(&expand_requested, true, __ATOMIC_ACQ_REL))
        return;
    pthread_mutex_lock(&expand_lock);
    expand_wanted = true;
    pthread_cond_signal(&expand_cond);
    pthread_mutex_unlock(&expand_lock);
}

void assoc_insert(item *it, uint32_t hv)
{
    item **head = bucket_of(hv);
    it->h_next = *head;
    *head = it;
    uint64_t n = __atomic_add_fetch(&nitems, 1, __ATOMIC_RELAXED);
    if (!expanding && n > BUCKETS(hashpower) * 3 / 2 && expander_running &&
        !__atomic_load_n(&expand_failed, __ATOMIC_RELAXED) &&
        hashpower < HASHPOWER_MAX)
        request_expansion();
}

void assoc_reserve(uint64_t n)
{
    unsigned power = __atomic_load_n(&hashpower, __ATOMIC_RELAXED);
    while (power < HASHPOWER_MAX && BUCKETS(power) * 3 / 2 < n)
        power++;
    if (power <= __atomic_load_n(&hashpower, __ATOMIC_RELAXED) || !expander_running ||
        __atomic_load_n(&expand_failed, __ATOMIC_RELAXED))
        return;
    unsigned wanted = __atomic_load_n(&wanted_power, __ATOMIC_RELAXED);
    while (wanted < power &&
           !__atomic_compare_exchange_n(&wanted_power, &wanted, power, true,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
    request_expansion();
}

void assoc_delete(item *it, uint32_t hv)
{
    item **pp = link_to(it, hv);
    *pp = it->h_next;
    it->h_next = NULL;
    __atomic_sub_fetch(&nitems, 1, __ATOMIC_RELAXED);
}

void assoc_replace(item *old_it, item *new_it, uint32_t hv)
{
    item **pp = link_to(old_it, hv);
    new_it->h_next = old_it->h_next;
    *pp = new_it;
    old_it->h_next = NULL;
}

/* Move old bucket b into the new table (its item lock held). */
static void move_bucket(uint64_t b)
{
    item *it = old_table[b];
    while (it != NULL) {
        item *next = it->h_next;
        uint32_t hv = hash_key(ITEM_key(it), it->nkey);
        item **head = &primary[hv & MASK(hashpower)];
        it->h_next = *head;
        *head = it;
        it = next;
    }
    old_table[b] = NULL;
}

/* The power to grow to: the next doubling, or what assoc_reserve() asked
 * for when that is more. */
static unsigned next_power(void)
{
    unsigned power = hashpower + 1;
    unsigned wanted = __atomic_load_n(&wanted_power, __ATOMIC_RELAXED);
    if (wanted > power)
        power = wanted;
    return power > HASHPOWER_MAX ? HASHPOWER_MAX : power;
}

/* Buckets moved per hold of walk_lock: walkers wait for at most this many
 * bucket moves, and the expansion does not pay for the lock per bucket. */
#define MOVE_BATCH 256

/* One growth of the table (expansion thread). */
static void expand_table(void)
{
    unsigned power = next_power();
    item **bigger = calloc(BUCKETS(power), sizeof(item *));
    if (bigger == NULL) {
        mc_logf("Hash table expansion to 2^%u buckets failed: out of memory;"
                " the table stays at 2^%u", power, hashpower);
        __atomic_store_n(&expand_failed, true, __ATOMIC_RELAXED);
        return;
    }
    mc_log(2, "Hash table expansion starting");

    pthread_rwlock_wrlock(&walk_lock);
    tables_hold();
    item_lock_all();
    old_table = primary;
    __atomic_store_n(&old_power, hashpower, __ATOMIC_RELAXED);
    primary = bigger;
    __atomic_store_n(&hashpower, power, __ATOMIC_RELAXED);
    __atomic_store_n(&expand_bucket, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&expanding, true, __ATOMIC_RELAXED);
    item_unlock_all();
    tables_release();
    pthread_rwlock_unlock(&walk_lock);

    for (uint64_t b = 0; b < BUCKETS(old_power);) {
        if (__atomic_load_n(&expander_stop, __ATOMIC_RELAXED))
            return; /* the process is exiting */
        pthread_rwlock_wrlock(&walk_lock);
        for (uint64_t end = b + MOVE_BATCH; b < end && b < BUCKETS(old_power); b++) {
            item_lock((uint32_t)b);
            move_bucket(b);
            __atomic_store_n(&expand_bucket, b + 1, __ATOMIC_RELAXED);
            item_unlock((uint32_t)b);
        }
        pthread_rwlock_unlock(&walk_lock);
    }

    pthread_rwlock_wrlock(&walk_lock);
    tables_hold();
    item_lock_all();
    item **done = old_table;
    old_table = NULL;
    __atomic_store_n(&expanding, false, __ATOMIC_RELAXED);
    item_unlock_all();
    tables_release();
    pthread_rwlock_unlock(&walk_lock);
    free(done);
    mc_log(2, "Hash table expansion done");
}

static void *expander_main(void *arg)
{
    pthread_setname_np(pthread_self(), "mc-hashexp");
    pthread_mutex_lock(&expand_lock);
    while (!__atomic_load_n(&expander_stop, __ATOMIC_RELAXED)) {
        if (!expand_wanted) {
            pthread_cond_wait(&expand_cond, &expand_lock);
            continue;
        }
        expand_wanted = false;
        pthread_mutex_unlock(&expand_lock);
        expand_table();
        __atomic_store_n(&expand_requested, false, __ATOMIC_RELEASE);
        pthread_mutex_lock(&expand_lock);
    }
    pthread_mutex_unlock(&expand_lock);
    return NULL;
}

bool assoc_start_expander(void)
{
    __atomic_store_n(&expander_stop, false, __ATOMIC_RELAXED);
    int rc = pthread_create(&expand_tid, NULL, expander_main, NULL);
    if (rc != 0) {
        mc_logf("Can't start the hash table expansion thread: %s",
                strerror(rc));
        return false;
    }
    expander_running = true;
    return true;
}

void assoc_stop_expander(void)
{
    if (!expander_running)
        return;
    pthread_mutex_lock(&expand_lock);
    __atomic_store_n(&expander_stop, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&expand_cond);
    pthread_mutex_unlock(&expand_lock);
    pthread_join(expand_tid, NULL);
    expander_running = false;
    expand_wanted = false;
    __atomic_store_n(&expand_requested, false, __ATOMIC_RELAXED);
}

void assoc_walk_begin(struct assoc_walk *w)
{
    memset(w, 0, sizeof(*w));
    pthread_rwlock_rdlock(&walk_lock);
}

/* References to the kept items of chain b of table, taken under its item
 * lock.  False when out of memory (no reference left taken). */
static bool take_chain(struct assoc_walk *w, item **table, uint64_t b,
                       bool (*keep)(const item *it))
{
    bool ok = true;
    item_lock((uint32_t)b);
    for (item *it = table[b]; it != NULL; it = it->h_next) {
        if (keep != NULL && !keep(it))
            continue;
        if (w->n == w->cap) {
            size_t cap = w->cap ? w->cap * 2 : 16;
            item **grown = realloc(w->refs, cap * sizeof(item *));
            if (grown == NULL) {
                ok = false;
                break;
            }
            w->refs = grown;
            w->cap = cap;
        }
        item_ref(it);
        w->refs[w->n++] = it;
    }
    item_unlock((uint32_t)b);
    if (!ok) {
        while (w->n > 0)
            item_release(w->refs[--w->n]);
    }
    return ok;
}

#define WALK_PREFETCH_AHEAD 16

bool assoc_walk_bucket(struct assoc_walk *w, bool (*keep)(const item *it),
                       bool *oom)
{
    w->n = 0;
    for (;;) {
        /* The primary table first, then what the expansion (paused) has
         * not moved out of the old one yet. */
        item **table = w->in_old ? old_table : primary;
        uint64_t end = w->in_old ? BUCKETS(old_power) : BUCKETS(hashpower);
        if (w->bucket == end) {
            if (w->in_old || !expanding)
                return false;
            w->in_old = true;
            w->bucket = __atomic_load_n(&expand_bucket, __ATOMIC_RELAXED);
            continue;
        }
        /* A bulk sync walks memory no cache holds: ask for the head item
         * of a bucket WALK_PREFETCH_AHEAD on while this one is taken (a
         * relinked head is still slab memory, and a prefetch never
         * faults). */
        if (w->bucket + WALK_PREFETCH_AHEAD < end)
            __builtin_prefetch(__atomic_load_n(&table[w->bucket + WALK_PREFETCH_AHEAD],
                                               __ATOMIC_RELAXED));
        if (!take_chain(w, table, w->bucket, keep)) {
            *oom = true;
            return false;
        }
        w->bucket++;
        if (w->n > 0)
            return true;
    }
}

void assoc_walk_end(struct assoc_walk *w)
{
    pthread_rwlock_unlock(&walk_lock);
    free(w->refs);
    w->refs = NULL;
    w->n = w->cap = 0;
}

bool assoc_walk(void (*fn)(item *it, void *ctx), void *ctx)
{
    struct assoc_walk w;
    bool oom = false;
    assoc_walk_begin(&w);
    while (assoc_walk_bucket(&w, NULL, &oom)) {
        for (size_t i = 0; i < w.n; i++) {
            fn(w.refs[i], ctx);
            item_release(w.refs[i]);
        }
    }
    assoc_walk_end(&w);
    return !oom;
}

void assoc_get_stats(struct assoc_stats *out)
{
    /* Racy but harmless: a report taken during a switch may pair the new
     * power with the old expanding flag. */
    unsigned power = __atomic_load_n(&hashpower, __ATOMIC_RELAXED);
    bool growing = __atomic_load_n(&expanding, __ATOMIC_RELAXED);
    out->hash_power_level = power;
    out->hash_bytes = BUCKETS(power) * sizeof(item *);
    if (growing)
        out->hash_bytes += BUCKETS(__atomic_load_n(&old_power, __ATOMIC_RELAXED)) * sizeof(item *);
    out->is_expanding = growing;
    out->items = __atomic_load_n(&nitems, __ATOMIC_RELAXED);
}
