/*
 * storage.h - the one storage API every protocol calls.
 *
 * The text, meta and binary protocols parse their own wire formats and then
 * call these functions; the meaning of every command (what set, add, cas,
 * incr, touch, delete and flush_all do to the cache, which counters move)
 * is written once, here.  Replication hooks in at the same level: every
 * successful mutation is reported through the storage_hooks registered by
 * replication.c, and remote writes come back in through the storage_apply_*
 * functions, which decide by version (doc/replication.md section 1).
 *
 * All functions are thread-safe: they take the key's item lock internally
 * and return with no lock held.  An item returned to the caller carries a
 * reference the caller must drop with item_release().  The one exception
 * to both is storage_get_locked(), for the hot path of a get.
 *
 * Expiry times passed in are server times (use realtime() from clock.h).
 */
#ifndef STORAGE_H
#define STORAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "items.h"
#include "stats.h"

/* Start the engine: slab allocator (settings.maxbytes, factor, chunk_size,
 * item_size_max...), hash table, LRU crawler.  Returns false and logs a
 * line if memory could not be set up. */
bool storage_init(void);

/* Stop background threads (hash expansion, crawler) before exit. */
void storage_shutdown(void);

/* ---- Writing ---- */

enum alloc_result {
    ALLOC_OK = 0,
    ALLOC_TOO_LARGE,   /* "SERVER_ERROR object too large for cache" */
    ALLOC_NO_MEMORY,   /* "SERVER_ERROR out of memory storing object" */
};

/* Allocate an unlinked item for key with room for a value of nbytes
 * (including the trailing "\r\n").  The caller copies the value into
 * ITEM_data(it) and then calls storage_store().  Returns NULL and sets *why
 * when the item exceeds settings.item_size_max or memory is exhausted
 * (after evicting, unless settings.evict_to_free is false); those failures
 * are counted (store_too_large, store_no_memory). */
item *storage_alloc(const char *key, size_t nkey, uint32_t client_flags,
                    rel_time_t exptime, size_t nbytes, enum alloc_result *why,
                    struct thread_stats *ts);

enum store_op {
    STORE_OP_SET = 1,
    STORE_OP_ADD,
    STORE_OP_REPLACE,
    STORE_OP_APPEND,
    STORE_OP_PREPEND,
    STORE_OP_CAS,      /* text "cas": SET that requires cas_in to match */
};

enum store_result {
    STORE_STORED = 1,  /* STORED / HD */
    STORE_NOT_STORED,  /* NOT_STORED / NS */
    STORE_EXISTS,      /* EXISTS / EX: CAS mismatch */
    STORE_NOT_FOUND,   /* NOT_FOUND / NF: CAS (or append) on a missing key */
    STORE_NO_MEMORY,   /* append/prepend could not allocate the result */
    STORE_TOO_LARGE,   /* append/prepend result larger than item_size_max */
};

struct store_req {
    enum store_op op;
    uint64_t cas_in;     /* compare with the item's CAS when non-zero
                          * (always for STORE_OP_CAS) */
    uint64_t cas_new;    /* meta E: the new CAS; 0 = generate one */
    bool invalidate;     /* meta I: an older cas_in marks the stored item
                          * stale instead of failing */
    bool vivify;         /* meta N with append/prepend: create on miss */
};

/* Store it (from storage_alloc, value filled in) under req.  On success
 * *cas_out (when not NULL) gets the stored item's CAS.  The caller keeps
 * its reference to it and must still item_release() it. */
enum store_result storage_store(item *it, const struct store_req *req,
                                uint64_t *cas_out, struct thread_stats *ts);

/* storage_store for a caller that already has hv = hash_key() of it's
 * key (the text protocol hashes the keys of a pipelined batch ahead). */
enum store_result storage_store_hv(item *it, const struct store_req *req,
                                   uint32_t hv, uint64_t *cas_out,
                                   struct thread_stats *ts);

/* storage_store, handing back the key's new item (it, or for append/
 * prepend the combined one) with a reference the caller drops, NULL
 * unless STORE_STORED: meta "ms" reports its size. */
enum store_result storage_store_ex(item *it, const struct store_req *req,
                                   item **stored_out, struct thread_stats *ts);

/* ---- Reading ---- */

/* Look key up for a read: returns the item with a reference held, or NULL
 * (missing, expired, flushed or a tombstone: each counted).  Marks the item
 * fetched and refreshes its LRU position at most every
 * ITEM_UPDATE_INTERVAL seconds. */
item *storage_get(const char *key, size_t nkey, struct thread_stats *ts);

/* storage_get for a caller that has hv = hash_key(key, nkey) and uses a
 * hit at once (a get copying a small value into its answer): the item,
 * counted and marked as storage_get does, is returned WITHOUT a
 * reference, and the key's item lock is still held, miss (NULL) or hit.
 * The caller must not block or take another item lock before it calls
 * storage_get_unlock(hv); after that it may touch the item only if it
 * took a reference (item_ref) first.  A copied answer then costs no
 * reference taken and dropped. */
item *storage_get_locked(const char *key, size_t nkey, uint32_t hv,
                         struct thread_stats *ts);

/* End storage_get_locked(). */
static inline void storage_get_unlock(uint32_t hv)
{
    item_unlock(hv);
}

/* touch / gat: like storage_get, and give the item a new expiry.  This is
 * a mutation (new version, replicated) but the CAS stays as it was, as in
 * memcached.  Counted as a touch (cmd_touch, touch_hits/misses), and for
 * gat (is_gat) also as a get. */
item *storage_touch(const char *key, size_t nkey, rel_time_t exptime,
                    bool is_gat, struct thread_stats *ts);

/* ---- Meta reads (mg, me) ---- */

/* What an mg does besides reading. */
struct mget_req {
    bool no_bump;               /* u: leave the LRU place, the fetched bit
                                 * and the access time alone */
    bool touch;                 /* T: give a hit the expiry exptime */
    rel_time_t exptime;
    bool vivify;                /* N: on a miss create an empty item
                                 * (flags 0) expiring at vivify_exptime */
    rel_time_t vivify_exptime;
    uint64_t cas_new;           /* E: the vivified item's CAS (0: new) */
    bool recache;               /* R: a hit with less than recache_ttl
                                 * seconds to live is up for recache */
    int64_t recache_ttl;
};

/* What an mg reports besides the item. */
struct mget_info {
    bool created;               /* vivified by this call */
    bool fetched_before;        /* h: read before this call */
    rel_time_t last_access;     /* l: access time before this call */
    rel_time_t exptime_before;  /* t asked before T: expiry before it */
    bool won;                   /* W: this client is to recache */
    bool stale;                 /* X: marked stale (md I, ms I) */
    bool token_sent;            /* Z: another client is recaching */
};

/* mg: like storage_get, with req's options, atomically under the key's
 * lock.  A stale item (or one due for recache under R) hands its win
 * token (W) to the first client only; a vivified item's token goes to its
 * creator.  Counted as memcached counts mg: a hit with T as a touch
 * (touch_cmds, touch_hits), everything else, a vivified item included, as
 * a get (hit or miss).  Touching and vivifying are mutations (new
 * version, hooks); win tokens and the stale mark are this node's only.
 * Returns the item with a reference, or NULL. */
item *storage_mget(const char *key, size_t nkey, const struct mget_req *req,
                   struct mget_info *info, struct thread_stats *ts);

/* What "me" shows of an item (metadump's fields). */
struct storage_item_debug {
    int64_t ttl;                /* seconds left, -1 for never */
    uint32_t idle;              /* seconds since the last access */
    uint64_t cas;
    bool fetched;
    unsigned clsid;             /* large items: the largest class */
    size_t size;                /* bytes of memory the item takes */
};

/* me: fill *out for the key's live item and return true, or false when
 * there is none.  No LRU bump, no counter, nothing marked. */
bool storage_debug(const char *key, size_t nkey, struct storage_item_debug *out);

/* ---- Arithmetic ---- */

enum delta_result {
    DELTA_OK = 1,
    DELTA_NOT_FOUND,    /* NOT_FOUND */
    DELTA_NON_NUMERIC,  /* "CLIENT_ERROR cannot increment or decrement
                         *  non-numeric value" */
    DELTA_EXISTS,       /* cas_in given and different */
    DELTA_NO_MEMORY,    /* "SERVER_ERROR out of memory" */
};

/* incr (wraps at 2^64) or decr (floors at 0) the decimal value of key.
 * On DELTA_OK *value_out is the new value and *cas_out (when not NULL) its
 * CAS.  As memcached does, a shorter result is written in place padded with
 * spaces when nobody else holds the item; otherwise a new item replaces it. */
enum delta_result storage_delta(const char *key, size_t nkey, bool incr,
                                uint64_t delta, uint64_t cas_in,
                                uint64_t *value_out, uint64_t *cas_out,
                                struct thread_stats *ts);

/* incr/decr with the options meta "ma" and binary increment/decrement
 * need.  On a miss with req->vivify the key is created holding
 * req->initial (as decimal text, client flags 0, expiry req->exptime) and
 * DELTA_OK is returned with *value_out = initial (the delta is NOT applied
 * on creation, as in memcached; and, as there, the creation moves no
 * counter but total_items).  req->cas_in != 0 requires a match
 * (DELTA_EXISTS); req->cas_new (meta E) sets the new CAS.  A successful
 * change with req->exptime_set also sets the expiry (binary doesn't; meta
 * T does). */
struct delta_req {
    bool incr;
    uint64_t delta;
    uint64_t cas_in;
    uint64_t cas_new;
    bool vivify;
    uint64_t initial;
    rel_time_t exptime;     /* for a vivified item, and with exptime_set */
    bool exptime_set;
};
enum delta_result storage_delta_ex(const char *key, size_t nkey,
                                   const struct delta_req *req,
                                   uint64_t *value_out, uint64_t *cas_out,
                                   struct thread_stats *ts);

/* storage_delta_ex, handing back the key's new item instead of its CAS
 * (with a reference the caller drops; NULL unless DELTA_OK), for what
 * meta "ma" reports about it. */
enum delta_result storage_delta_item(const char *key, size_t nkey,
                                     const struct delta_req *req,
                                     uint64_t *value_out, item **it_out,
                                     struct thread_stats *ts);

/* ---- Removing ---- */

enum delete_result {
    DELETE_DELETED = 1, /* DELETED / HD */
    DELETE_NOT_FOUND,   /* NOT_FOUND / NF */
    DELETE_EXISTS,      /* cas_in given and different: EXISTS / EX */
};

/* Delete key (when cas_in is non-zero, only if its CAS matches).  While
 * tombstones are kept (storage_keep_tombstones) the key becomes a
 * tombstone, reported through the on_item hook. */
enum delete_result storage_delete(const char *key, size_t nkey,
                                  uint64_t cas_in, struct thread_stats *ts);

/* md's options.  Plain (neither invalidate nor remove_value) it is
 * storage_delete. */
struct mdelete_req {
    uint64_t cas_in;        /* C: only if the CAS matches (0: no check) */
    bool invalidate;        /* I: keep the item, marked stale, its win
                             * token back in play */
    bool remove_value;      /* x: keep the item with an empty value */
    bool exptime_set;       /* T, with I only: the new expiry */
    rel_time_t exptime;
    uint64_t cas_new;       /* E: the CAS of the kept item (0: new) */
};

/* md: storage_delete with req's options.  I and x keep the key as a new
 * version (replicated like any write) and count as no delete; when memory
 * for that version can't be found the key is deleted instead.  Unlike
 * delete, a CAS mismatch counts as a delete miss (as memcached counts). */
enum delete_result storage_mdelete(const char *key, size_t nkey,
                                   const struct mdelete_req *req,
                                   struct thread_stats *ts);

/* flush_all: invalidate every item stored before `when` (server time; a
 * time not in the future means now).  Items vanish lazily on access and are
 * reclaimed by the crawler.  A later flush (by version) replaces a pending
 * delayed one. */
void storage_flush(rel_time_t when, struct thread_stats *ts);

/* ---- Replication interface ---- */

/* Reported after every successful local mutation, with no lock held.  The
 * hook must item_ref() the item if it keeps it past the call.  A delete is
 * reported through on_item with its tombstone (storage_keep_tombstones);
 * without tombstones it is not reported. */
struct storage_hooks {
    void (*on_item)(item *it);      /* it is now the key's state */
    void (*on_flush)(rel_time_t when, uint64_t version);
};

/* Register the hooks (NULL to remove); call before worker threads start. */
void storage_set_hooks(const struct storage_hooks *hooks);

/* ---- Replication: applying a peer's states (doc/replication.md 1) ---- */

enum apply_result {
    APPLY_APPLIED = 1,  /* it is now the key's state */
    APPLY_STALE,        /* what we hold (item or tombstone) or the last
                           flush is newer: ignored, a "conflict" */
};

/* it: from storage_alloc(), value filled in, it->cas and it->version set
 * by the caller (the peer's values).  Becomes the key's state when
 * it->version is greater than the version of the key's current item or
 * tombstone (an expired or flushed item counts as absent) and not older
 * than the last flush_all (local or applied).  Does NOT call the hooks (a
 * peer's write is not sent back).  The caller keeps its reference.  Counts
 * as a set (total_items etc.) but in no client counter (ts is not
 * touched).  With -C the CAS is stored as 0. */
enum apply_result storage_apply_item(item *it, struct thread_stats *ts);

/* A peer's delete: make the key a tombstone of this version when newer
 * than what is held -- also when the key is absent, so an older write that
 * arrives later loses.  No hooks, no counters.  When memory for the
 * tombstone can't be found the key is still removed (APPLY_APPLIED). */
enum apply_result storage_apply_delete(const char *key, size_t nkey,
                                       uint64_t version,
                                       struct thread_stats *ts);

/* A peer's flush_all: exactly what storage_flush does locally, with the
 * peer's version (when = 0 or in the past: at once).  No hooks. */
void storage_apply_flush(rel_time_t when, uint64_t version);

/* From now on, deletes (storage_delete, and a delete by any future meta
 * command) leave a tombstone instead of unlinking: an item with
 * ITEM_TOMBSTONE, the key, no value ("\r\n" only), the delete's version,
 * exptime = now + ttl seconds; invisible to every client command (get,
 * touch, incr, add/replace/append/cas treat it as absent; add/set over it
 * replace it), never counted in curr_items (storage_totals.tombstones
 * counts them), evictable by memory pressure like any item, reclaimed by
 * the crawler when expired.  The on_item hook is called with the
 * tombstone.  Call before worker threads start. */
void storage_keep_tombstones(uint32_t ttl_seconds);

/* ---- Replication: walking the whole cache for a bulk sync (4.3) ---- */

struct storage_walk;

/* Start a walk over every bucket of the hash table; hash expansion waits
 * until storage_walk_end() (so no bucket is missed or visited twice).
 * NULL on out of memory.  Several walks may run at once; one walk's calls
 * must all come from the thread that began it, and every walk must end
 * before storage_shutdown(). */
struct storage_walk *storage_walk_begin(void);

/* Up to max items (live items and tombstones; expired and flushed ones
 * skipped), each with a reference the caller drops with item_release().
 * Holds one bucket's item lock at a time and only while taking
 * references.  Returns 0 when the walk is complete (also, after logging a
 * line, when memory ran out part-way). */
size_t storage_walk_next(struct storage_walk *w, item **out, size_t max);

/* End the walk (complete or not) and let the hash table grow again. */
void storage_walk_end(struct storage_walk *w);

/* A bulk sync announces how many items are coming: grow the hash table
 * once, in the background, to hold n items in all, instead of doubling
 * it again and again while they arrive.  n is capped at the number of
 * items -m can hold (the count is the peer's word). */
void storage_reserve(uint64_t n);

/* ---- Reports and controls (stats, slabs, lru_crawler commands) ---- */

/* Engine gauges and counters for the general "stats" report. */
struct storage_totals {
    uint64_t curr_items;
    uint64_t tombstones;         /* replication's delete markers */
    uint64_t total_items;
    uint64_t bytes;              /* bytes of items currently stored */
    uint64_t evictions;
    uint64_t reclaimed;
    uint64_t expired_unfetched;
    uint64_t evicted_unfetched;
    uint64_t evicted_active;
    uint64_t crawler_reclaimed;
    uint64_t crawler_items_checked;
    uint64_t lrutail_reflocked;
    uint64_t lru_crawler_starts;
    uint64_t direct_reclaims;
    uint64_t slabs_moved;
    bool slab_reassign_running;
    uint32_t slab_global_page_pool;
    uint64_t total_malloced;     /* bytes of slab pages and large items */
    uint32_t hash_power_level;
    uint64_t hash_bytes;
    bool hash_is_expanding;
};
void storage_get_totals(struct storage_totals *out);

/* "stats reset": zero the engine's counters (total_items, evictions,
 * reclaimed, the per-class counters of "stats items", slabs_moved,
 * lru_crawler_starts...); gauges such as curr_items and bytes stay. */
void storage_stats_reset(void);

/* "stats slabs", "stats items", "stats sizes": every line of the report,
 * in memcached's names and order, through add (see stats.h).  cmd_counters
 * is the aggregate of all threads, for the per-class hit counters. */
void storage_report_slabs(add_stat_fn add, void *ctx,
                          const struct thread_stats *cmd_counters);
void storage_report_items(add_stat_fn add, void *ctx);
void storage_report_sizes(add_stat_fn add, void *ctx);

/* "stats cachedump <class> <limit>": one line per item,
 * "ITEM <key> [<bytes> b; <exptime unix> s]", through line(). */
typedef void (*line_fn)(const char *line, size_t len, void *ctx);
void storage_cachedump(unsigned int clsid, unsigned int limit, line_fn line,
                       void *ctx);

/* "slabs reassign <src> <dst>" */
enum reassign_result {
    REASSIGN_OK = 1,       /* OK */
    REASSIGN_RUNNING,      /* BUSY currently processing reassign request */
    REASSIGN_BADCLASS,     /* BADCLASS invalid src or dst class id */
    REASSIGN_NOSPARE,      /* NOSPARE source class has no spare pages */
    REASSIGN_SRC_DST_SAME, /* SAME src and dst class are identical */
};
enum reassign_result storage_slabs_reassign(int src, int dst);
/* "slabs automove <0|1|2>" */
void storage_slabs_automove(int mode);

/* "lru_crawler crawl <classes>": classes is "all" or a comma list of
 * class ids.  Returns 0 (OK), -1 (BADCLASS) or -2 (BUSY). */
int storage_crawler_crawl(const char *classes);
/* "lru_crawler metadump <classes|all>": one line per live item
 * ("key=<urlencoded> exp=<unix|-1> la=<unix> cas=<n> fetch=<yes|no>
 *  cls=<id> size=<bytes>") through line(); -1 on a bad class list. */
int storage_crawler_metadump(const char *classes, line_fn line, void *ctx);
/* "lru_crawler enable|disable": false when the thread can't start/stop. */
bool storage_crawler_enable(bool on);

/* "cache_memlimit <mb>": change settings.maxbytes at run time. */
bool storage_set_memlimit(size_t bytes);

#endif /* STORAGE_H */
