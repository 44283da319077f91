/*
 * items.h - the item: one key/value pair in slab memory, and its life.
 *
 * Layout: a fixed 48-byte header, then the key (nkey bytes and a '\0'),
 * then the value (nbytes bytes, always ending in "\r\n" so a reply can
 * point straight at it).  The whole item is one slab chunk, or one
 * malloc'd block for items larger than settings.slab_chunk_size_max.
 *
 * Ownership: an item is referenced by the hash table + LRU while linked
 * (that link counts as one reference) and by every reader that holds it
 * (a connection writing it out, the replication stream sending it).  It is
 * freed when the count drops to zero and it is no longer linked.  Memory
 * of an item that somebody else references is never modified in place:
 * a mutation builds a new item and swaps it into the hash table.
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
    uint8_t nkey;           /* key length, without the '\0' */
    uint8_t _unused;
    uint64_t cas;           /* CAS unique as clients see it */
    uint64_t version;       /* cluster-wide version of this state (clock.h) */
    char data[];            /* key '\0' value */
} item;

#define ITEM_key(it)   ((it)->data)
#define ITEM_data(it)  ((it)->data + (it)->nkey + 1)
/* Bytes of memory an item with this key and value length needs. */
#define ITEM_ntotal(nkey, nbytes) (sizeof(item) + (size_t)(nkey) + 1 + (size_t)(nbytes))
#define ITEM_size(it)  ITEM_ntotal((it)->nkey, (it)->nbytes)

/* ---- Item locks (striped by key hash) ---- */
void item_lock(uint32_t hv);
void item_unlock(uint32_t hv);
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

#endif /* ITEMS_H */
