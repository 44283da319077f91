/*
 * slabs.c - the memory allocator.
 *
 * Owns: the slab classes (chunk size, pages, free chunk list), the global
 * page pool, the memory limit and its accounting, and the slab maintenance
 * thread that moves pages between classes.
 *
 * Classes.  Class 1 holds chunks of align8(48 + settings.chunk_size) bytes
 * (48 is memcached's item header without CAS, so the class sizes are
 * exactly memcached's: 96, 120, 152... with the defaults); each next class
 * is align8(previous * factor) while that stays <= slab_chunk_size_max /
 * factor, and the last class is slab_chunk_size_max itself.  Ids start at
 * 1; there are at most MAX_SLAB_CLASSES - 1 of them.  A page is
 * settings.slab_page_size bytes (1 MB), malloc'd the first time a class
 * runs out of chunks and carved at once into perslab chunks on the class's
 * free list (so free_chunks_end is always 0).
 *
 * Large items.  An item bigger than slab_chunk_size_max is one malloc'd
 * block (items.c keeps them in their own LRU, SLABS_LARGE_CLASS).  Their
 * bytes count against the same limit as pages.
 *
 * The limit.  settings.maxbytes bounds pages + large items.  A class that
 * has no page yet may always get its first one, even over the limit (as in
 * memcached: otherwise a late-coming size could never be stored); for the
 * same reason items.c may force one large item when the large LRU is
 * empty.  Pages are never given back to the system while the server runs,
 * except pages sitting in the global pool, which are freed when a large
 * item needs their room.  Lowering the limit (cache_memlimit) only stops
 * new pages.  With -L (use_large_pages) every page the limit allows is
 * malloc'd at start-up into the global pool.
 *
 * The page mover.  "slabs reassign src dst" (and the automover) take one
 * page out of class src: its free chunks are taken off the free list, then
 * every item still in it is copied into a free chunk elsewhere in the same
 * class or, when there is none, evicted (items_evacuate_page(), which
 * knows the item locks).  Items that are allocated but not linked yet, or
 * unlinked but still referenced, cannot be touched: the mover sleeps and
 * retries until slabs_free() has handed every one of them back.  Chunks of
 * the page being moved never return to the free list: slabs_free() counts
 * them as cleared instead.  When all perslab chunks are cleared the page
 * goes to class dst (carved anew) or to the global pool (dst 0).  One move
 * at a time; REASSIGN_RUNNING while it lasts.
 *
 * Automove.  Mode 1: a class holding more than two pages' worth of free
 * chunks gives one page back to the global pool, from which any class
 * short of memory takes pages before mallocing new ones.  Mode 2 (memcached
 * calls it aggressive): after an eviction in class X, move a page to X
 * from the class with the most pages.  The maintenance thread checks once
 * a second; the ratio/window knobs of memcached's automover are accepted
 * by options but not used by this simpler policy.
 *
 * Locking.  Each class has its own mutex (free list, pages, mover state of
 * that class), an item_mutex (items.h): every store takes it twice (its
 * new chunk, the chunk of the item it replaces), so its uncontended lock
 * and unlock are one inlined atomic instruction each.  mem_lock guards
 * the accounting, the pool and the limit.
 * Order: item lock -> LRU lock -> class lock -> mem_lock; the mover takes
 * mover.lock before any class lock and never holds a class lock while
 * calling into items.c.  Nothing here is taken on a cache hit.
 */
#include "config.h"

#include "slabs.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "items.h"
#include "util.h"

/* memcached's item header without CAS: keeps the class sizes identical. */
#define SLABS_BASE_HEADER 48

struct slab_class {
    struct item_mutex lock;
    uint32_t size;          /* chunk size in bytes */
    uint32_t perslab;       /* chunks per page */
    item *free_list;        /* linked through it->next */
    uint32_t free_count;
    char **pages;
    uint32_t npages;
    uint32_t pages_cap;
    char *moving;           /* page being emptied by the mover, or NULL */
    uint32_t moving_cleared;/* chunks of `moving` already off limits */
};

static struct slab_class classes[MAX_SLAB_CLASSES];
static unsigned largest;

/* The class of the sizes most items have, without a search (every store
 * asks): clsid_by_8[k] is the class of the sizes 8k - 7 .. 8k, for sizes up
 * to clsid_table_max.  Those sizes share a class because every chunk size
 * but the largest is a multiple of 8, and the table stops at the one
 * below the largest.  Set by slabs_init(), read-only afterwards. */
#define CLSID_TABLE_MAX 4096
static uint8_t clsid_by_8[CLSID_TABLE_MAX / 8 + 1];
static size_t clsid_table_max;
static size_t page_size;

/* mem_lock guards everything down to pool_cap. */
static pthread_mutex_t mem_lock = PTHREAD_MUTEX_INITIALIZER;
static size_t mem_limit;
static uint64_t mem_malloced;   /* pages (in classes or pooled) + large */
static uint64_t large_bytes;
static char **pool;             /* the global page pool */
static uint32_t pool_count;
static uint32_t pool_cap;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t tid;
    bool running;
    bool stop;              /* also read without the lock by a running move */
    bool busy;              /* a move is queued or running */
    int src;
    int dst;
    unsigned pick_cursor;   /* rotation for "slabs reassign -1 dst" */
    unsigned evict_hint;    /* automove 2: last class that evicted */
    uint64_t moved;
} mover = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

static inline size_t align8(size_t n)
{
    return (n + 7) & ~(size_t)7;
}

/* Append p to a growable page array; false when out of memory. */
static bool page_array_push(char ***arr, uint32_t *n, uint32_t *cap, char *p)
{
    if (*n == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 16;
        char **grown = realloc(*arr, ncap * sizeof(char *));
        if (grown == NULL)
            return false;
        *arr = grown;
        *cap = ncap;
    }
    (*arr)[(*n)++] = p;
    return true;
}

/* -L: malloc every page the limit allows into the global pool now.  When
 * the system refuses, say so and let the rest come lazily. */
static void preallocate(void)
{
    size_t n = mem_limit / page_size;
    for (size_t i = 0; i < n; i++) {
        char *p = malloc(page_size);
        if (p == NULL || !page_array_push(&pool, &pool_count, &pool_cap, p)) {
            free(p);
            mc_logf("Failed to preallocate slab memory after %zu of %zu "
                    "bytes; the rest will be allocated as needed",
                    (size_t)mem_malloced, mem_limit);
            return;
        }
        mem_malloced += page_size;
    }
}

/* slabs_clsid() by a binary search: class sizes grow with the id. */
static unsigned clsid_search(size_t size)
{
    if (size > classes[largest].size)
        return SLABS_LARGE_CLASS;
    unsigned lo = 1, hi = largest;
    while (lo < hi) {
        unsigned mid = (lo + hi) / 2;
        if (classes[mid].size >= size)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

void slabs_init(void)
{
    page_size = (size_t)settings.slab_page_size;
    size_t chunk_max = (size_t)settings.slab_chunk_size_max;
    if (chunk_max > page_size) {
        mc_log(1, "slab_chunk_max %zu is larger than a slab page; using %zu",
               chunk_max, page_size);
        chunk_max = page_size;
    }
    mem_limit = settings.maxbytes;

    unsigned id = 1;
    size_t size = align8(SLABS_BASE_HEADER + (size_t)settings.chunk_size);
    while (id < MAX_SLAB_CLASSES - 1 && size <= chunk_max / settings.factor &&
           size < chunk_max) {
        classes[id].size = (uint32_t)size;
        id++;
        size = align8((size_t)(size * settings.factor));
    }
    classes[id].size = (uint32_t)chunk_max;
    largest = id;

    clsid_table_max = 0;
    if (largest > 1)
        clsid_table_max = classes[largest - 1].size < CLSID_TABLE_MAX
                              ? classes[largest - 1].size : CLSID_TABLE_MAX;
    for (size_t k = 0; 8 * k <= clsid_table_max; k++)
        clsid_by_8[k] = (uint8_t)clsid_search(8 * k);

    for (unsigned i = 1; i <= largest; i++) {
        classes[i].perslab = (uint32_t)(page_size / classes[i].size);
        mc_log(2, "slab class %3u: chunk size %9u perslab %7u", i,
               classes[i].size, classes[i].perslab);
    }

    if (settings.use_large_pages)
        preallocate();
}

unsigned slabs_clsid(size_t size)
{
    if (size <= clsid_table_max)
        return clsid_by_8[(size + 7) / 8];
    return clsid_search(size);
}

uint32_t slabs_chunk_size(unsigned id)
{
    return classes[id].size;
}

unsigned slabs_largest(void)
{
    return largest;
}

/* A page for class c (its lock held): from the pool first, else a new one
 * while the limit allows or c has none yet.  NULL when neither. */
static char *page_get(struct slab_class *c)
{
    char *p = NULL;
    pthread_mutex_lock(&mem_lock);
    if (pool_count > 0) {
        p = pool[--pool_count];
    } else if (c->npages == 0 || mem_malloced + page_size <= mem_limit) {
        p = malloc(page_size);
        if (p != NULL)
            mem_malloced += page_size;
    }
    pthread_mutex_unlock(&mem_lock);
    return p;
}

/* Put a page back into the pool (it stays counted as malloced). */
static void pool_put(char *p)
{
    pthread_mutex_lock(&mem_lock);
    if (!page_array_push(&pool, &pool_count, &pool_cap, p)) {
        /* No room to remember it: give it back to the system instead. */
        free(p);
        mem_malloced -= page_size;
    }
    pthread_mutex_unlock(&mem_lock);
}

/* Add page p to class c (lock held) and carve it into free chunks; the
 * list then starts at the page's first chunk. */
static bool class_add_page(struct slab_class *c, char *p)
{
    if (!page_array_push(&c->pages, &c->npages, &c->pages_cap, p))
        return false;
    for (uint32_t i = c->perslab; i-- > 0;) {
        item *it = (item *)(p + (size_t)i * c->size);
        __atomic_store_n(&it->it_flags, ITEM_SLABBED, __ATOMIC_RELAXED);
        it->slabs_clsid = 0;
        it->next = c->free_list;
        c->free_list = it;
    }
    c->free_count += c->perslab;
    return true;
}

void *slabs_alloc(unsigned id, bool grow)
{
    struct slab_class *c = &classes[id];
    item_mutex_lock(&c->lock);
    if (c->free_list == NULL && grow) {
        char *p = page_get(c);
        if (p != NULL && !class_add_page(c, p))
            pool_put(p);
    }
    item *it = c->free_list;
    if (it != NULL) {
        c->free_list = it->next;
        c->free_count--;
        __atomic_store_n(&it->it_flags, 0, __ATOMIC_RELAXED);
    }
    item_mutex_unlock(&c->lock);
    return it;
}

/* Is chunk inside the page that class c is moving? (lock held) */
static inline bool in_moving_page(const struct slab_class *c, const void *chunk)
{
    return c->moving != NULL && (const char *)chunk >= c->moving &&
           (const char *)chunk < c->moving + page_size;
}

void slabs_free(void *chunk, unsigned id)
{
    struct slab_class *c = &classes[id];
    item *it = chunk;
    item_mutex_lock(&c->lock);
    __atomic_store_n(&it->it_flags, ITEM_SLABBED, __ATOMIC_RELAXED);
    it->slabs_clsid = 0;
    if (in_moving_page(c, chunk)) {
        c->moving_cleared++;
    } else {
        it->next = c->free_list;
        c->free_list = it;
        c->free_count++;
    }
    item_mutex_unlock(&c->lock);
}

void *slabs_alloc_large(size_t size, bool force)
{
    pthread_mutex_lock(&mem_lock);
    while (mem_malloced + size > mem_limit && pool_count > 0) {
        free(pool[--pool_count]);
        mem_malloced -= page_size;
    }
    if (!force && mem_malloced + size > mem_limit) {
        pthread_mutex_unlock(&mem_lock);
        return NULL;
    }
    void *p = malloc(size);
    if (p != NULL) {
        mem_malloced += size;
        large_bytes += size;
    }
    pthread_mutex_unlock(&mem_lock);
    return p;
}

void slabs_free_large(void *p, size_t size)
{
    free(p);
    pthread_mutex_lock(&mem_lock);
    mem_malloced -= size;
    large_bytes -= size;
    pthread_mutex_unlock(&mem_lock);
}

void slabs_set_limit(size_t limit)
{
    pthread_mutex_lock(&mem_lock);
    mem_limit = limit;
    pthread_mutex_unlock(&mem_lock);
}

bool slabs_class_info(unsigned id, struct slabs_class_info *out)
{
    if (id < 1 || id > largest)
        return false;
    struct slab_class *c = &classes[id];
    item_mutex_lock(&c->lock);
    out->chunk_size = c->size;
    out->perslab = c->perslab;
    out->pages = c->npages;
    out->free_chunks = c->free_count;
    item_mutex_unlock(&c->lock);
    return true;
}

void slabs_get_totals(struct slabs_totals *out)
{
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&mem_lock);
    out->malloced = mem_malloced;
    out->large_bytes = large_bytes;
    out->pool_pages = pool_count;
    pthread_mutex_unlock(&mem_lock);
    for (unsigned i = 1; i <= largest; i++) {
        item_mutex_lock(&classes[i].lock);
        if (classes[i].npages > 0)
            out->active_classes++;
        item_mutex_unlock(&classes[i].lock);
    }
    pthread_mutex_lock(&mover.lock);
    out->pages_moved = mover.moved;
    out->mover_busy = mover.busy;
    pthread_mutex_unlock(&mover.lock);
}

void slabs_stats_reset(void)
{
    pthread_mutex_lock(&mover.lock);
    mover.moved = 0;
    pthread_mutex_unlock(&mover.lock);
}

/* ---- The page mover ---- */

/* Pages of class id (0 = the pool) that could be given away. */
static uint32_t spare_pages(unsigned id)
{
    uint32_t n;
    if (id == SLABS_POOL) {
        pthread_mutex_lock(&mem_lock);
        n = pool_count;
        pthread_mutex_unlock(&mem_lock);
        return n;
    }
    item_mutex_lock(&classes[id].lock);
    n = classes[id].npages > 1 ? classes[id].npages - 1 : 0;
    item_mutex_unlock(&classes[id].lock);
    return n;
}

/* "slabs reassign -1 dst": the next class (rotating) other than dst with a
 * spare page, or -1.  mover.lock held. */
static int pick_any_source(int dst)
{
    for (unsigned n = 0; n < largest; n++) {
        mover.pick_cursor = mover.pick_cursor % largest + 1;
        if ((int)mover.pick_cursor != dst && spare_pages(mover.pick_cursor) > 0)
            return (int)mover.pick_cursor;
    }
    return -1;
}

enum reassign_result slabs_reassign(int src, int dst)
{
    enum reassign_result r = REASSIGN_OK;
    pthread_mutex_lock(&mover.lock);
    if (mover.busy)
        r = REASSIGN_RUNNING;
    else if (src == dst)
        r = REASSIGN_SRC_DST_SAME;
    else {
        if (src == -1)
            src = pick_any_source(dst);
        if (src < SLABS_POOL || src > (int)largest || dst < SLABS_POOL ||
            dst > (int)largest)
            r = REASSIGN_BADCLASS;
        else if (spare_pages((unsigned)src) == 0)
            r = REASSIGN_NOSPARE;
    }
    if (r == REASSIGN_OK) {
        mover.busy = true;
        mover.src = src;
        mover.dst = dst;
        pthread_cond_signal(&mover.cond);
    }
    pthread_mutex_unlock(&mover.lock);
    return r;
}

void slabs_set_automove(int mode)
{
    pthread_mutex_lock(&mover.lock);
    settings.slab_automove = mode;
    pthread_cond_signal(&mover.cond);
    pthread_mutex_unlock(&mover.lock);
}

void slabs_note_eviction(unsigned id)
{
    __atomic_store_n(&mover.evict_hint, id, __ATOMIC_RELAXED);
}

static bool mover_stopping(void)
{
    return __atomic_load_n(&mover.stop, __ATOMIC_RELAXED);
}

/* Take the first page away from class c: mark it moving and drop its
 * free chunks from the free list.  NULL when c has no spare page. */
static char *class_begin_move(struct slab_class *c)
{
    item_mutex_lock(&c->lock);
    char *page = NULL;
    if (c->npages > 1 && c->moving == NULL) {
        page = c->pages[0];
        c->moving = page;
        c->moving_cleared = 0;
        item **pp = &c->free_list;
        while (*pp != NULL) {
            if (in_moving_page(c, *pp)) {
                *pp = (*pp)->next;
                c->free_count--;
                c->moving_cleared++;
            } else {
                pp = &(*pp)->next;
            }
        }
    }
    item_mutex_unlock(&c->lock);
    return page;
}

/* Has every chunk of c's moving page come back? */
static bool class_move_done(struct slab_class *c)
{
    item_mutex_lock(&c->lock);
    bool done = c->moving_cleared == c->perslab;
    item_mutex_unlock(&c->lock);
    return done;
}

/* Forget the (fully cleared) moving page of class c. */
static void class_end_move(struct slab_class *c, char *page)
{
    item_mutex_lock(&c->lock);
    for (uint32_t i = 0; i < c->npages; i++) {
        if (c->pages[i] == page) {
            c->pages[i] = c->pages[--c->npages];
            break;
        }
    }
    c->moving = NULL;
    item_mutex_unlock(&c->lock);
}

/* Hand an empty page to class dst, or to the pool. */
static void give_page(unsigned dst, char *page)
{
    if (dst != SLABS_POOL) {
        struct slab_class *c = &classes[dst];
        item_mutex_lock(&c->lock);
        bool added = class_add_page(c, page);
        item_mutex_unlock(&c->lock);
        if (added)
            return;
    }
    pool_put(page);
}

/* Move one page from src to dst (mover thread, no lock held).  Returns
 * false when there was nothing to move or shutdown interrupted it (the
 * process is exiting; the page stays marked moving). */
static bool move_page(unsigned src, unsigned dst)
{
    char *page;
    if (src == SLABS_POOL) {
        pthread_mutex_lock(&mem_lock);
        page = pool_count > 0 ? pool[--pool_count] : NULL;
        pthread_mutex_unlock(&mem_lock);
        if (page == NULL)
            return false;
    } else {
        struct slab_class *c = &classes[src];
        page = class_begin_move(c);
        if (page == NULL)
            return false;
        while (items_evacuate_page(src, page, c->size, c->perslab),
               !class_move_done(c)) {
            if (mover_stopping())
                return false;
            /* Someone still holds an item of the page: let them finish. */
            struct timespec nap = {0, 1000000};
            nanosleep(&nap, NULL);
        }
        class_end_move(c, page);
    }
    give_page(dst, page);
    mc_log(2, "Moved a slab page from class %u to class %u", src, dst);
    return true;
}

/* Automove: choose a move to make now (mover.lock held); false if none. */
static bool automove_pick(int *src, int *dst)
{
    if (!settings.slab_reassign)
        return false;
    if (settings.slab_automove == 1) {
        for (unsigned i = 1; i <= largest; i++) {
            struct slabs_class_info info;
            slabs_class_info(i, &info);
            if (info.pages > 1 && info.free_chunks > 2 * info.perslab) {
                *src = (int)i;
                *dst = SLABS_POOL;
                return true;
            }
        }
    } else if (settings.slab_automove == 2) {
        unsigned want = __atomic_exchange_n(&mover.evict_hint, 0,
                                            __ATOMIC_RELAXED);
        if (want == 0)
            return false;
        unsigned best = 0;
        uint32_t best_pages = 1;
        for (unsigned i = 1; i <= largest; i++) {
            struct slabs_class_info info;
            slabs_class_info(i, &info);
            if (i != want && info.pages > best_pages) {
                best = i;
                best_pages = info.pages;
            }
        }
        if (best != 0) {
            *src = (int)best;
            *dst = (int)want;
            return true;
        }
    }
    return false;
}

/* The slab maintenance thread: runs queued moves, and every second asks
 * the automover for one. */
static void *maintenance_main(void *arg)
{
    pthread_setname_np(pthread_self(), "mc-slabmaint");
    pthread_mutex_lock(&mover.lock);
    while (!mover.stop) {
        if (!mover.busy && automove_pick(&mover.src, &mover.dst))
            mover.busy = true;
        if (mover.busy) {
            unsigned src = (unsigned)mover.src, dst = (unsigned)mover.dst;
            pthread_mutex_unlock(&mover.lock);
            bool moved = move_page(src, dst);
            pthread_mutex_lock(&mover.lock);
            if (moved)
                mover.moved++;
            mover.busy = false;
            continue;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += 1;
        pthread_cond_timedwait(&mover.cond, &mover.lock, &until);
    }
    pthread_mutex_unlock(&mover.lock);
    return NULL;
}

bool slabs_start_maintenance(void)
{
    pthread_mutex_lock(&mover.lock);
    mover.stop = false;
    int rc = pthread_create(&mover.tid, NULL, maintenance_main, NULL);
    mover.running = rc == 0;
    pthread_mutex_unlock(&mover.lock);
    if (rc != 0)
        mc_logf("Can't start the slab maintenance thread: %s", strerror(rc));
    return rc == 0;
}

void slabs_stop_maintenance(void)
{
    pthread_mutex_lock(&mover.lock);
    if (!mover.running) {
        pthread_mutex_unlock(&mover.lock);
        return;
    }
    __atomic_store_n(&mover.stop, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&mover.cond);
    pthread_mutex_unlock(&mover.lock);
    pthread_join(mover.tid, NULL);
    mover.running = false;
    mover.busy = false;
}
