/*
 * assoc.h - the hash table from key to linked item.
 *
 * Every function except init, the expander control, stats and walk is
 * called with item_lock(hv) held for the key's hash hv; the table grows in
 * a background thread without stopping requests (assoc.c explains how).
 */
#ifndef ASSOC_H
#define ASSOC_H

#include <stdbool.h>
#include <stdint.h>

#include "items.h"

/* Allocate 2^hashpower buckets.  False (logged) when out of memory or
 * hashpower is above 32. */
bool assoc_init(unsigned hashpower);

/* The item stored under key, or NULL (item lock held). */
item *assoc_find(const char *key, size_t nkey, uint32_t hv);

/* Prefetching for a batch of lookups (a pipelined read buffer), so the
 * cache misses of many keys overlap instead of costing one after the
 * other.  Neither changes anything; both are hints that may do nothing.
 * assoc_prefetch_bucket: start loading hv's bucket head into the cache.
 * assoc_prefetch_items: start loading the first item of each of the n
 * buckets (whose heads should have been asked for a little earlier, or
 * this waits for them), then the second item of each chain that has one,
 * read under the chain's item lock when that lock is free (never waiting
 * for it; the caller must hold no item lock it could need to keep).
 * Skipped when the expansion thread is switching to a larger table, or
 * freeing the old one, at that moment. */
void assoc_prefetch_bucket(uint32_t hv);
void assoc_prefetch_items(const uint32_t *hv, unsigned n);
/* Before a batch of replaces or deletes (the replication thread applying a
 * peer's stream), after assoc_prefetch_items(): start loading, for
 * writing, the LRU neighbours of the item stored under each of the n keys
 * (keys[i], nkeys[i] bytes, hash hv[i]), which unlinking it writes.  Each
 * item is found under its item lock, taken only if free; the neighbour
 * pointers are read without the LRU lock.  The caller holds no item lock.
 * (A separate function rather than a call to assoc_find(): one more
 * caller of that made the compiler stop inlining it into the request
 * path's lookups.) */
void assoc_prefetch_neighbours(const uint8_t *const *keys, const uint8_t *nkeys,
                               const uint32_t *hv, unsigned n);

/* Add it (its key must not be in the table); may wake the expander. */
void assoc_insert(item *it, uint32_t hv);

/* Make room for n items in all: ask the expansion thread to grow the table
 * in one step to the size n items need (no-op when it is big enough or
 * expansion is off).  Takes no item lock. */
void assoc_reserve(uint64_t n);

/* Remove it from the table (it must be there). */
void assoc_delete(item *it, uint32_t hv);

/* Put new_it in old_it's place (same key). */
void assoc_replace(item *old_it, item *new_it, uint32_t hv);

/* Start / stop the expansion thread (only with settings.hash_expand). */
bool assoc_start_expander(void);
void assoc_stop_expander(void);

/* A walk over every bucket of the table, one bucket at a time, that may
 * be spread over many calls (the replication bulk sync).  From begin to
 * end the table does not change shape: expansion pauses (several walks may
 * run at once), so no bucket is missed or visited twice.  Begin, next and
 * end must run on the same thread. */
struct assoc_walk {
    bool in_old;        /* past the primary table, in the old one */
    uint64_t bucket;    /* next bucket to visit */
    item **refs;        /* references to the last bucket's items */
    size_t n;           /* how many */
    size_t cap;
};
void assoc_walk_begin(struct assoc_walk *w);
/* Take a reference to every item of the next bucket that has any for which
 * keep(it) (called under the bucket's item lock; NULL keeps all) holds,
 * into w->refs[0 .. w->n), for the caller to item_release().  False, with
 * w->n = 0, once every bucket is visited, or (also setting *oom) when out
 * of memory. */
bool assoc_walk_bucket(struct assoc_walk *w, bool (*keep)(const item *it),
                       bool *oom);
/* Resume expansion and free w's buffer (its references must be gone). */
void assoc_walk_end(struct assoc_walk *w);

/* A whole walk in one call: fn on every item in the table, with a
 * reference to it held and no item lock (fn may block).  False when out
 * of memory part-way. */
bool assoc_walk(void (*fn)(item *it, void *ctx), void *ctx);

struct assoc_stats {
    unsigned hash_power_level;
    uint64_t hash_bytes;
    bool is_expanding;
    uint64_t items;
};
void assoc_get_stats(struct assoc_stats *out);

#endif /* ASSOC_H */
