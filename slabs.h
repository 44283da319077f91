/*
 * slabs.h - the memory allocator: slab classes of fixed-size chunks carved
 * from pages, individually malloc'd "large" items, one memory limit over
 * both, and the page mover behind "slabs reassign" / "slabs automove".
 *
 * Only items.c allocates and frees through this API; storage.c reads the
 * reports.  Every function is thread-safe.
 */
#ifndef SLABS_H
#define SLABS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* it->slabs_clsid of an item that is not in a slab chunk but malloc'd on
 * its own (larger than settings.slab_chunk_size_max).  Also the id of the
 * global page pool in "slabs reassign", as in memcached. */
#define SLABS_LARGE_CLASS 0
#define SLABS_POOL 0

/* Build the class table from settings (chunk_size, factor, slab_page_size,
 * slab_chunk_size_max) with settings.maxbytes as the limit; with
 * settings.use_large_pages, preallocate the whole limit as free pages (as
 * much of it as the system gives).  Logs the classes at -vv. */
void slabs_init(void);

/* The smallest class whose chunks hold size bytes, or SLABS_LARGE_CLASS
 * when size is larger than the largest chunk. */
unsigned slabs_clsid(size_t size);

/* The chunk size of class id (1 to slabs_largest()). */
uint32_t slabs_chunk_size(unsigned id);

/* Id of the largest class (its chunks are slab_chunk_size_max bytes). */
unsigned slabs_largest(void);

/* A free chunk of class id, or NULL.  With grow, a class without a free
 * chunk takes a page from the global pool, or mallocs one while the limit
 * allows (a class with no page at all may always get one). */
void *slabs_alloc(unsigned id, bool grow);

/* Give a chunk back to its class. */
void slabs_free(void *chunk, unsigned id);

/* malloc size bytes for a large item, counted against the limit; free
 * pages of the global pool are returned to the system to make room.  NULL
 * when over the limit (unless force) or when malloc fails. */
void *slabs_alloc_large(size_t size, bool force);
void slabs_free_large(void *p, size_t size);

/* cache_memlimit: a lower limit only stops new pages. */
void slabs_set_limit(size_t limit);

/* One class for "stats slabs"; false when id is not a class. */
struct slabs_class_info {
    uint32_t chunk_size;
    uint32_t perslab;
    uint32_t pages;
    uint32_t free_chunks;
};
bool slabs_class_info(unsigned id, struct slabs_class_info *out);

struct slabs_totals {
    uint64_t malloced;      /* pages (in classes or pooled) + large items */
    uint64_t large_bytes;   /* the large items' share of malloced */
    uint32_t pool_pages;    /* pages in the global pool */
    uint32_t active_classes;/* classes with at least one page */
    uint64_t pages_moved;
    bool mover_busy;
};
void slabs_get_totals(struct slabs_totals *out);

/* "stats reset": pages_moved starts again from 0. */
void slabs_stats_reset(void);

/* "slabs reassign src dst": queue one page move (src -1 = any class with
 * a spare page; 0 = the global pool).  The move itself runs in the slab
 * maintenance thread. */
enum reassign_result slabs_reassign(int src, int dst);

/* "slabs automove 0|1|2" (stored in settings.slab_automove). */
void slabs_set_automove(int mode);

/* items.c reports an eviction in class id (automove mode 2 feeds the
 * evicting class). */
void slabs_note_eviction(unsigned id);

/* Start / stop the slab maintenance thread (page mover + automove). */
bool slabs_start_maintenance(void);
void slabs_stop_maintenance(void);

#endif /* SLABS_H */
