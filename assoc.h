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

/* Add it (its key must not be in the table); may wake the expander. */
void assoc_insert(item *it, uint32_t hv);

/* Remove it from the table (it must be there). */
void assoc_delete(item *it, uint32_t hv);

/* Put new_it in old_it's place (same key). */
void assoc_replace(item *old_it, item *new_it, uint32_t hv);

/* Start / stop the expansion thread (only with settings.hash_expand). */
bool assoc_start_expander(void);
void assoc_stop_expander(void);

/* Call fn on every item in the table, with a reference to it held and no
 * item lock (fn may block); expansion pauses meanwhile.  References are
 * taken one bucket at a time.  False when out of memory part-way. */
bool assoc_walk(void (*fn)(item *it, void *ctx), void *ctx);

struct assoc_stats {
    unsigned hash_power_level;
    uint64_t hash_bytes;
    bool is_expanding;
    uint64_t items;
};
void assoc_get_stats(struct assoc_stats *out);

#endif /* ASSOC_H */
