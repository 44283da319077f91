/*
 * storage.c - what every command means to the cache (storage.h), and the
 * engine's start-up, reports and controls.
 *
 * Owns: the replication hooks, the rules of set/add/replace/append/
 * prepend/cas, incr/decr, touch, delete and flush_all, the rules by which
 * a peer's states are applied, the tombstone setting, and the per key
 * counters of stats.h.  The memory, items, hash table and crawler are the
 * other engine modules'; this file only combines them.
 *
 * Every command follows one pattern: hash the key, take its item lock,
 * look the key up (item_lookup() drops an expired or flushed item on the
 * way), decide, change, unlock, then count and call the hooks with no lock
 * held.  A mutation stamps the item with a new version from the hybrid
 * logical clock; a new item's CAS is that version (or meta E's value), and
 * 0 for every item with -C.
 *
 * Items that somebody else holds are never modified: incr/decr and touch
 * change an item in place only when its link is its only reference,
 * otherwise they build a new item and swap it in.
 *
 * memcached's answers this follows (checked against memcached 1.6):
 *   - add on a live key is NOT_STORED and refreshes that item's LRU place;
 *   - append/prepend keep the old flags and exptime; when the result can't
 *     be allocated (too large, or no memory) the answer is NOT_STORED;
 *   - with -C (no CAS) a "cas" always answers EXISTS on an existing key,
 *     and CAS checks of delete and incr/decr fail; append ignores them;
 *   - incr/decr accept what strtoull accepts (leading blanks, a sign,
 *     leading zeros) followed by a blank or the end of the value; a value
 *     that is 2^63 or more and contains a '-' is rejected, as is
 *     overflow; decr stops at 0, incr wraps at 2^64;
 *   - get_expired / get_flushed are counted by reads (get, gat, mg) only;
 *   - meta: a value stored with I and an older CAS is stale and keeps the
 *     expiry and win token of the item it replaces; md I marks stale in
 *     place of deleting (no delete counted); a vivified counter (ma N,
 *     binary incr with an initial value) counts nothing but total_items,
 *     a vivified mg stub counts as a get hit; mg with T counts as a touch
 *     on a hit and as a get miss on a miss.
 * flush_all: an immediate flush kills every item whose version is older
 * than the flush (exact within a second).  A delayed one to second W kills
 * every item last written before W (before version_at(W), so two nodes
 * whose clocks agree cut at the same point); like memcached's, it takes
 * effect one second early, so items written during second W - 1 are
 * hidden at once (memcached answers a get right after such a set with a
 * miss too).  A later flush (by version) replaces a pending delayed one;
 * unlike memcached, a delayed flush never brings back items an earlier
 * immediate flush killed.  A peer's flush is applied by the same code.
 *
 * Replication (doc/replication.md 1).  A peer's state (item or delete)
 * wins when its version is greater than the version of what the key holds
 * (a live item or a tombstone; expired and flushed ones count as absent)
 * and is not older than the flushes: so applying is idempotent and
 * order-independent.  While tombstones are kept, a delete replaces the
 * item with a tombstone carrying the delete's version, which is what the
 * hook reports and what beats an older write arriving later.  Tombstones
 * are invisible to clients because item_lookup() reports them as
 * ITEM_STATE_TOMBSTONE, which every command treats as absent.  If no
 * memory can be found for a tombstone (-M with a full cache) the key is
 * simply unlinked: a local delete is then not replicated, and a peer's
 * delete does not refuse an older write arriving later (logged at -v).
 */
#include "storage.h"

#include <assert.h>
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assoc.h"
#include "clock.h"
#include "crawler.h"
#include "hash.h"
#include "items.h"
#include "slabs.h"
#include "util.h"

#define DEFAULT_HASHPOWER 16

static struct storage_hooks hooks;
static bool keep_tombstones;        /* set before workers start */
static uint32_t tombstone_ttl;      /* seconds */

/* Counters tolerate a NULL block (internal callers count nothing). */
#define COUNT(ts, field)                                                     \
    do {                                                                     \
        if ((ts) != NULL)                                                    \
            STATS_INCR(ts, field);                                           \
    } while (0)

bool storage_init(void)
{
    unsigned power = settings.hashpower_init > 0 ? (unsigned)settings.hashpower_init
                                                 : DEFAULT_HASHPOWER;
    hash_init(settings.hash_algorithm);
    if (!items_init(power) || !assoc_init(power)) {
        mc_logf("Failed to allocate memory for the storage engine");
        return false;
    }
    slabs_init();
    if (settings.hash_expand && !assoc_start_expander())
        return false;
    return slabs_start_maintenance() && crawler_init();
}

void storage_shutdown(void)
{
    crawler_shutdown();
    slabs_stop_maintenance();
    assoc_stop_expander();
}

void storage_set_hooks(const struct storage_hooks *h)
{
    if (h != NULL)
        hooks = *h;
    else
        memset(&hooks, 0, sizeof(hooks));
}

/* Report it as the key's new state (no lock held), then drop the
 * reference taken for the call. */
static void announce_item(item *it)
{
    if (hooks.on_item != NULL)
        hooks.on_item(it);
    item_release(it);
}

/* Stamp a mutation: a new version; the CAS is cas_new when given, else
 * the version, and always 0 without CAS. */
static void stamp(item *it, uint64_t cas_new)
{
    it->version = clock_next_version();
    it->cas = !settings.use_cas ? 0 : cas_new != 0 ? cas_new : it->version;
}

/* ---- Writing ---- */

item *storage_alloc(const char *key, size_t nkey, uint32_t client_flags,
                    rel_time_t exptime, size_t nbytes, enum alloc_result *why,
                    struct thread_stats *ts)
{
    bool too_large;
    item *it = item_alloc(key, nkey, client_flags, exptime, nbytes, &too_large);
    if (it != NULL) {
        *why = ALLOC_OK;
    } else if (too_large) {
        *why = ALLOC_TOO_LARGE;
        COUNT(ts, store_too_large);
    } else {
        *why = ALLOC_NO_MEMORY;
        COUNT(ts, store_no_memory);
    }
    return it;
}

/* The value of old with it's value appended (or prepended), in a new item
 * with old's flags and exptime; NULL when it can't be allocated. */
static item *concat_values(const item *old, const item *it, bool append)
{
    bool too_large;
    size_t olen = old->nbytes - 2, ilen = it->nbytes - 2;
    item *n = item_alloc(ITEM_key(old), old->nkey, old->client_flags,
                         old->exptime, olen + ilen + 2, &too_large);
    if (n == NULL)
        return NULL;
    const item *first = append ? old : it;
    const item *second = append ? it : old;
    memcpy(ITEM_data(n), ITEM_data(first), first->nbytes - 2);
    memcpy(ITEM_data(n) + first->nbytes - 2, ITEM_data(second), second->nbytes);
    return n;
}

/* Link it as the key's state in place of old (NULL, a live item or a
 * tombstone); item lock held. */
static void install(item *it, item *old, uint32_t hv)
{
    if (old != NULL)
        item_replace(old, it, hv);
    else
        item_link(it, hv);
}

/* Make it the key's state in place of old: stamp and link it. */
static void put(item *it, item *old, uint32_t hv, uint64_t cas_new)
{
    stamp(it, cas_new);
    install(it, old, hv);
}

/* The CAS part of a set/replace/cas under req (old live, item lock
 * held): STORED after storing it, or EXISTS. */
static enum store_result store_checked(item *it, item *old, uint32_t hv,
                                       const struct store_req *req,
                                       struct thread_stats *ts)
{
    struct slab_counters *sc = ts != NULL ? &ts->slab[it->slabs_clsid] : NULL;
    bool match = settings.use_cas && req->cas_in == old->cas;
    /* Meta "I": an older CAS still stores, but marks the result stale. */
    bool stale = settings.use_cas && !match && req->invalidate &&
                 req->cas_in < old->cas;
    if (!match && !stale) {
        if (sc != NULL)
            STATS_INCR(sc, cas_badval);
        return STORE_EXISTS;
    }
    if (stale) {
        /* As memcached: the stale value keeps the expiry of the item it
         * replaces, and its win token, so a recache already handed out is
         * not handed out again. */
        it->exptime = old->exptime;
        item_flags_set(it, ITEM_STALE | (item_flags(old) & ITEM_TOKEN_SENT));
    }
    put(it, old, hv, req->cas_new);
    if (sc != NULL)
        STATS_INCR(sc, cas_hits);
    return STORE_STORED;
}

/* storage_store_ex with hv = hash_key() of it's key; stored_out (when
 * not NULL) gets the key's new item with a reference, cas_out (when not
 * NULL) its CAS.  A reference is taken only for whoever needs one (the
 * caller's stored_out, the on_item hook): a plain set takes none. */
static enum store_result store_hashed(item *it, const struct store_req *req,
                                      uint32_t hv, item **stored_out,
                                      uint64_t *cas_out, struct thread_stats *ts)
{
    const char *key = ITEM_key(it);
    enum store_result r;
    item *now = it; /* the key's state after a successful store */
    bool cas_mode = req->op == STORE_OP_CAS ||
                    (req->cas_in != 0 && (req->op == STORE_OP_SET ||
                                          req->op == STORE_OP_REPLACE));
    bool missed_cas = false;

    item_lock(hv);
    enum item_state st;
    item *old = item_lookup(key, it->nkey, hv, &st);
    bool exists = st == ITEM_STATE_LIVE;

    switch (req->op) {
    case STORE_OP_ADD:
        if (exists) {
            item_bump(old);
            r = STORE_NOT_STORED;
        } else {
            put(it, old, hv, req->cas_new);
            r = STORE_STORED;
        }
        break;
    case STORE_OP_APPEND:
    case STORE_OP_PREPEND:
        if (!exists) {
            r = STORE_NOT_STORED;
            if (req->vivify) {
                put(it, old, hv, req->cas_new);
                r = STORE_STORED;
            }
        } else if (req->cas_in != 0 && settings.use_cas &&
                   req->cas_in != old->cas) {
            r = STORE_EXISTS;
        } else {
            now = concat_values(old, it, req->op == STORE_OP_APPEND);
            r = STORE_NOT_STORED;
            if (now != NULL) {
                put(now, old, hv, req->cas_new);
                r = STORE_STORED;
            }
        }
        break;
    default: /* SET, REPLACE, CAS */
        if (!exists && req->op == STORE_OP_REPLACE) {
            r = STORE_NOT_STORED;
        } else if (!exists && cas_mode) {
            r = STORE_NOT_FOUND;
            missed_cas = true;
        } else if (cas_mode) {
            r = store_checked(it, old, hv, req, ts);
        } else {
            put(it, old, hv, req->cas_new);
            r = STORE_STORED;
        }
        break;
    }

    /* The caller's reference (a new item from append/prepend already
     * carries its allocation one), and one the hook call below consumes
     * (announce_item() drops it whether or not the hook is still set). */
    bool announce = hooks.on_item != NULL;
    if (r == STORE_STORED) {
        if (stored_out != NULL && now == it)
            item_ref(now);
        if (announce)
            item_ref(now);
        if (cas_out != NULL)
            *cas_out = now->cas;
    }
    item_unlock(hv);

    if (ts != NULL) {
        STATS_INCR(&ts->slab[it->slabs_clsid], cmd_set);
        if (missed_cas)
            STATS_INCR(ts, cas_misses);
    }
    if (r == STORE_STORED && announce)
        announce_item(now);
    if (stored_out != NULL)
        *stored_out = r == STORE_STORED ? now : NULL;
    else if (r == STORE_STORED && now != it)
        item_release(now);
    return r;
}

enum store_result storage_store_ex(item *it, const struct store_req *req,
                                   item **stored_out, struct thread_stats *ts)
{
    return store_hashed(it, req, hash_key(ITEM_key(it), it->nkey), stored_out,
                        NULL, ts);
}

enum store_result storage_store_hv(item *it, const struct store_req *req,
                                   uint32_t hv, uint64_t *cas_out,
                                   struct thread_stats *ts)
{
    return store_hashed(it, req, hv, NULL, cas_out, ts);
}

enum store_result storage_store(item *it, const struct store_req *req,
                                uint64_t *cas_out, struct thread_stats *ts)
{
    return storage_store_hv(it, req, hash_key(ITEM_key(it), it->nkey), cas_out, ts);
}

/* ---- Reading ---- */

/* Count a read of one key (get or gat). */
static inline void count_read(struct thread_stats *ts, const item *it,
                              enum item_state st)
{
    if (ts == NULL)
        return;
    STATS_INCR(ts, get_cmds);
    if (it != NULL) {
        STATS_INCR(&ts->slab[it->slabs_clsid], get_hits);
        return;
    }
    STATS_INCR(ts, get_misses);
    if (st == ITEM_STATE_EXPIRED)
        STATS_INCR(ts, get_expired);
    else if (st == ITEM_STATE_FLUSHED)
        STATS_INCR(ts, get_flushed);
}

item *storage_get_locked(const char *key, size_t nkey, uint32_t hv,
                         struct thread_stats *ts)
{
    enum item_state st;
    item_lock(hv);
    item *it = item_get(key, nkey, hv, &st);
    count_read(ts, it, st);
    return it;
}

item *storage_get(const char *key, size_t nkey, struct thread_stats *ts)
{
    uint32_t hv = hash_key(key, nkey);
    item *it = storage_get_locked(key, nkey, hv, ts);
    if (it != NULL)
        item_ref(it);
    storage_get_unlock(hv);
    return it;
}

/* A copy of it (same value, flags, CAS and state bits) with a new
 * exptime, or NULL when memory is short. */
static item *copy_with_exptime(const item *it, rel_time_t exptime)
{
    bool too_large;
    item *n = item_alloc(ITEM_key(it), it->nkey, it->client_flags, exptime,
                         it->nbytes, &too_large);
    if (n == NULL)
        return NULL;
    memcpy(ITEM_data(n), ITEM_data(it), it->nbytes);
    n->cas = it->cas;
    item_flags_set(n, item_flags(it) & (ITEM_FETCHED | ITEM_ACTIVE |
                                        ITEM_STALE | ITEM_TOKEN_SENT));
    return n;
}

/* Give it (the key's live item; item lock held) the expiry exptime as a
 * new version with the same CAS, and refresh its LRU place unless
 * no_bump.  Returns the key's item with a reference for the caller: a
 * copy swapped in when somebody else holds it; only if memory is too
 * short for one is the shared item's expiry changed where it is (touch
 * can't fail in memcached). */
static item *retime(item *it, uint32_t hv, rel_time_t exptime, bool no_bump)
{
    item *copy = NULL;
    if (__atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) > 1)
        copy = copy_with_exptime(it, exptime);
    if (copy != NULL) {
        /* The copy's allocation reference is the one returned. */
        copy->version = clock_next_version();
        item_replace(it, copy, hv);
        it = copy;
    } else {
        __atomic_store_n(&it->exptime, exptime, __ATOMIC_RELAXED);
        it->version = clock_next_version();
        item_ref(it);
    }
    if (!no_bump)
        item_touch_lru(it);
    return it;
}

/* Count a touch of one key (touch, gat, mg with T). */
static void count_touch(struct thread_stats *ts, const item *it)
{
    if (ts == NULL)
        return;
    STATS_INCR(ts, touch_cmds);
    if (it != NULL)
        STATS_INCR(&ts->slab[it->slabs_clsid], touch_hits);
    else
        STATS_INCR(ts, touch_misses);
}

item *storage_touch(const char *key, size_t nkey, rel_time_t exptime,
                    bool is_gat, struct thread_stats *ts)
{
    uint32_t hv = hash_key(key, nkey);
    enum item_state st;
    item_lock(hv);
    item *it = item_lookup(key, nkey, hv, &st);
    it = st == ITEM_STATE_LIVE ? retime(it, hv, exptime, false) : NULL;
    item_unlock(hv);

    count_touch(ts, it);
    if (is_gat)
        count_read(ts, it, st);
    if (it != NULL && hooks.on_item != NULL)
        hooks.on_item(it);
    return it;
}

/* ---- Meta reads ---- */

/* mg's recache rules on a hit (item lock held): a stale item, or one
 * with less than req->recache_ttl seconds to live (R), is offered to the
 * first client that asks (W); every later client, and every client of an
 * item whose token is out, is told somebody else won (Z). */
static void decide_win(item *it, const struct mget_req *req,
                       struct mget_info *info)
{
    uint8_t f = item_flags(it);
    rel_time_t now = __atomic_load_n(&current_time, __ATOMIC_RELAXED);
    rel_time_t exp = __atomic_load_n(&it->exptime, __ATOMIC_RELAXED);
    info->stale = (f & ITEM_STALE) != 0;
    bool due = info->stale ||
               (req->recache && exp != 0 &&
                (int64_t)exp - now < req->recache_ttl);
    if (due && !(f & ITEM_TOKEN_SENT)) {
        item_flags_set(it, ITEM_TOKEN_SENT);
        info->won = true;
    } else {
        info->token_sent = (f & ITEM_TOKEN_SENT) != 0;
    }
}

/* mg N on a miss: link an empty item in place of old (NULL or a
 * tombstone; item lock held), its win token already handed to this
 * client, expiring as T says if given (memcached applies T to it too),
 * else as N says.  Returns it with a reference for the caller, or NULL
 * when memory is short. */
static item *vivify_empty(const char *key, size_t nkey, item *old,
                          uint32_t hv, const struct mget_req *req)
{
    bool too_large;
    rel_time_t exp = req->touch ? req->exptime : req->vivify_exptime;
    item *it = item_alloc(key, nkey, 0, exp, 2, &too_large);
    if (it == NULL)
        return NULL;
    memcpy(ITEM_data(it), "\r\n", 2);
    item_flags_set(it, ITEM_TOKEN_SENT);
    put(it, old, hv, req->cas_new);
    return it;
}

item *storage_mget(const char *key, size_t nkey, const struct mget_req *req,
                   struct mget_info *info, struct thread_stats *ts)
{
    uint32_t hv = hash_key(key, nkey);
    enum item_state st;
    bool touched = false;
    memset(info, 0, sizeof(*info));

    item_lock(hv);
    item *it = item_lookup(key, nkey, hv, &st);
    if (st == ITEM_STATE_LIVE) {
        info->fetched_before = (item_flags(it) & ITEM_FETCHED) != 0;
        info->last_access = it->time;
        info->exptime_before = it->exptime;
        if (req->touch) {
            it = retime(it, hv, req->exptime, req->no_bump);
            touched = true;
        } else {
            item_ref(it);
            if (!req->no_bump)
                item_touch_lru(it);
        }
        decide_win(it, req, info);
    } else if (req->vivify) {
        it = vivify_empty(key, nkey, it, hv, req);
        if (it != NULL) {
            /* This mg is the stub's first read, as in memcached. */
            if (!req->no_bump)
                item_touch_lru(it);
            info->created = info->won = true;
            info->last_access = it->time;
            info->exptime_before = req->vivify_exptime;
        }
    } else {
        it = NULL;
    }
    item_unlock(hv);

    /* As memcached counts mg: a hit with T as a touch, anything else (a
     * vivified item too) as a read. */
    if (touched)
        count_touch(ts, it);
    else
        count_read(ts, it, st);
    if (info->created) {
        item_ref(it);
        announce_item(it);
    } else if (touched && hooks.on_item != NULL) {
        hooks.on_item(it);
    }
    return it;
}

bool storage_debug(const char *key, size_t nkey, struct storage_item_debug *out)
{
    uint32_t hv = hash_key(key, nkey);
    enum item_state st;
    rel_time_t now = __atomic_load_n(&current_time, __ATOMIC_RELAXED);
    item_lock(hv);
    item *it = item_lookup(key, nkey, hv, &st);
    if (st == ITEM_STATE_LIVE) {
        out->ttl = it->exptime == 0 ? -1 : (int64_t)it->exptime - now;
        out->idle = now - it->time;
        out->cas = it->cas;
        out->fetched = (item_flags(it) & ITEM_FETCHED) != 0;
        out->clsid = it->slabs_clsid == SLABS_LARGE_CLASS ? slabs_largest()
                                                          : it->slabs_clsid;
        out->size = ITEM_size(it);
    }
    /* Tested before the unlock: st's address went to item_lookup, so past
     * an opaque call the compiler could no longer tell that *out is set
     * whenever true is returned (gcc -flto warns). */
    bool live = st == ITEM_STATE_LIVE;
    item_unlock(hv);
    return live;
}

/* ---- Arithmetic ---- */

/* The number at the start of a value (nbytes including its "\r\n"), read
 * the way memcached reads it (see the top of this file). */
static bool parse_counter(const char *data, size_t nbytes, uint64_t *out)
{
    size_t len = nbytes - 2, i = 0;
    if (nbytes <= 2)
        return false;
    while (i < len && isspace((unsigned char)data[i]))
        i++;
    bool negative = false;
    if (i < len && (data[i] == '+' || data[i] == '-'))
        negative = data[i++] == '-';
    if (i >= len || !isdigit((unsigned char)data[i]))
        return false;
    uint64_t v = 0;
    for (; i < len && isdigit((unsigned char)data[i]); i++) {
        unsigned d = (unsigned)(data[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    /* After the digits: a blank, a NUL, or the value's own "\r\n". */
    if (i < len && !isspace((unsigned char)data[i]) && data[i] != '\0')
        return false;
    if (negative)
        v = 0 - v;
    if ((v >> 63) != 0 && memchr(data, '-', len) != NULL)
        return false;
    *out = v;
    return true;
}

/* A new unlinked item for key holding value as decimal text (its
 * allocation reference is the caller's), or NULL when memory is short. */
static item *counter_item(const char *key, size_t nkey, uint32_t client_flags,
                          rel_time_t exptime, const char *digits, size_t len)
{
    bool too_large;
    item *n = item_alloc(key, nkey, client_flags, exptime, len + 2, &too_large);
    if (n != NULL) {
        memcpy(ITEM_data(n), digits, len);
        memcpy(ITEM_data(n) + len, "\r\n", 2);
    }
    return n;
}

/* Apply req's delta to it (the key's live item, holding value; item lock
 * held).  Returns the key's new state with a reference for the caller, or
 * NULL when memory for a new item is short.  As memcached does, a result
 * that fits is written in place padded with blanks when nobody else holds
 * the item, and the LRU place is refreshed but the item is not marked
 * fetched. */
static item *apply_delta(item *it, uint32_t hv, const struct delta_req *req,
                         uint64_t value)
{
    char digits[24];
    size_t len = (size_t)snprintf(digits, sizeof(digits), "%llu",
                                  (unsigned long long)value);
    item *now;
    if (len + 2 <= it->nbytes &&
        __atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) == 1) {
        memcpy(ITEM_data(it), digits, len);
        memset(ITEM_data(it) + len, ' ', it->nbytes - 2 - len);
        if (req->exptime_set)
            __atomic_store_n(&it->exptime, req->exptime, __ATOMIC_RELAXED);
        stamp(it, req->cas_new);
        now = it;
        item_ref(now);
    } else {
        now = counter_item(ITEM_key(it), it->nkey, it->client_flags,
                           req->exptime_set ? req->exptime : it->exptime,
                           digits, len);
        if (now == NULL)
            return NULL;
        put(now, it, hv, req->cas_new);
    }
    item_bump(now);
    return now;
}

/* A miss with req->vivify: link a new item holding req->initial in place
 * of old (NULL or a tombstone; item lock held).  Returns it with a
 * reference for the caller, or NULL when memory is short. */
static item *vivify_counter(const char *key, size_t nkey, item *old,
                            uint32_t hv, const struct delta_req *req)
{
    char digits[24];
    size_t len = (size_t)snprintf(digits, sizeof(digits), "%llu",
                                  (unsigned long long)req->initial);
    item *now = counter_item(key, nkey, 0, req->exptime, digits, len);
    if (now != NULL)
        put(now, old, hv, req->cas_new);
    return now;
}

enum delta_result storage_delta_item(const char *key, size_t nkey,
                                     const struct delta_req *req,
                                     uint64_t *value_out, item **it_out,
                                     struct thread_stats *ts)
{
    uint32_t hv = hash_key(key, nkey);
    enum delta_result r;
    uint64_t value = 0;
    item *now = NULL;
    bool created = false;

    item_lock(hv);
    enum item_state st;
    item *it = item_lookup(key, nkey, hv, &st);
    if (st != ITEM_STATE_LIVE) {
        r = DELTA_NOT_FOUND;
        if (req->vivify) {
            value = req->initial;
            now = vivify_counter(key, nkey, it, hv, req);
            r = now != NULL ? DELTA_OK : DELTA_NO_MEMORY;
            created = now != NULL;
        }
    } else if (it->nbytes <= 2) {
        /* memcached refuses an empty value before looking at the CAS. */
        r = DELTA_NON_NUMERIC;
    } else if (req->cas_in != 0 &&
               (!settings.use_cas || req->cas_in != it->cas)) {
        r = DELTA_EXISTS;
    } else if (!parse_counter(ITEM_data(it), it->nbytes, &value)) {
        r = DELTA_NON_NUMERIC;
    } else {
        value = req->incr ? value + req->delta
                          : req->delta > value ? 0 : value - req->delta;
        now = apply_delta(it, hv, req, value);
        r = now != NULL ? DELTA_OK : DELTA_NO_MEMORY;
    }
    item_unlock(hv);

    if (ts != NULL && !created) {
        if (r == DELTA_NOT_FOUND) {
            if (req->incr)
                STATS_INCR(ts, incr_misses);
            else
                STATS_INCR(ts, decr_misses);
        } else if (r == DELTA_OK) {
            if (req->incr)
                STATS_INCR(&ts->slab[now->slabs_clsid], incr_hits);
            else
                STATS_INCR(&ts->slab[now->slabs_clsid], decr_hits);
        }
    }
    if (now != NULL) {
        *value_out = value;
        item_ref(now);
        announce_item(now);
    }
    *it_out = now;
    return r;
}

enum delta_result storage_delta_ex(const char *key, size_t nkey,
                                   const struct delta_req *req,
                                   uint64_t *value_out, uint64_t *cas_out,
                                   struct thread_stats *ts)
{
    item *it;
    enum delta_result r = storage_delta_item(key, nkey, req, value_out, &it, ts);
    if (it != NULL) {
        if (cas_out != NULL)
            *cas_out = it->cas;
        item_release(it);
    }
    return r;
}

enum delta_result storage_delta(const char *key, size_t nkey, bool incr,
                                uint64_t delta, uint64_t cas_in,
                                uint64_t *value_out, uint64_t *cas_out,
                                struct thread_stats *ts)
{
    struct delta_req req = {.incr = incr, .delta = delta, .cas_in = cas_in};
    return storage_delta_ex(key, nkey, &req, value_out, cas_out, ts);
}

/* ---- Removing ---- */

/* Make the key a tombstone of `version` in place of old (NULL or the
 * key's item or tombstone; item lock held).  Returns the tombstone with
 * its allocation reference, or NULL when no memory could be found for it:
 * old is then just unlinked. */
static item *bury(const char *key, size_t nkey, item *old, uint64_t version,
                  uint32_t hv)
{
    uint32_t ttl = __atomic_load_n(&tombstone_ttl, __ATOMIC_RELAXED);
    rel_time_t now = __atomic_load_n(&current_time, __ATOMIC_RELAXED);
    rel_time_t exp = ttl > UINT32_MAX - now ? UINT32_MAX : now + ttl;
    bool too_large;
    item *t = item_alloc(key, nkey, 0, exp, 2, &too_large);
    if (t == NULL) {
        if (old != NULL)
            item_unlink(old, hv);
        mc_log(1, "No memory for a tombstone: the delete of \"%.*s\" is "
               "done here but not recorded for replication", (int)nkey, key);
        return NULL;
    }
    memcpy(ITEM_data(t), "\r\n", 2);
    t->version = version;
    item_flags_set(t, ITEM_TOMBSTONE);
    install(t, old, hv);
    return t;
}

/* Remove the key's live item it (item lock held): a tombstone in its
 * place while tombstones are kept (returned with its allocation
 * reference, for the hook), else just unlinked (NULL). */
static item *remove_item(const char *key, size_t nkey, item *it, uint32_t hv)
{
    if (__atomic_load_n(&keep_tombstones, __ATOMIC_RELAXED))
        return bury(key, nkey, it, clock_next_version(), hv);
    item_unlink(it, hv);
    return NULL;
}

/* md I / md x on the key's live item it (item lock held): a new version
 * of it, emptied (x) and/or marked stale with its win token back in play
 * (I), with the new expiry of T (only with I) and the CAS of E or a new
 * one; changed where it is when only marked and nobody else holds it.
 * Returns the key's item with a reference for the hook, or NULL when
 * memory for a new one is short: the key is then removed instead (a
 * client sees a miss rather than a value that should no longer be
 * served). */
static item *invalidate(item *it, uint32_t hv, const struct mdelete_req *req)
{
    rel_time_t exp = req->invalidate && req->exptime_set ? req->exptime
                                                         : it->exptime;
    item *n;
    if (!req->remove_value &&
        __atomic_load_n(&it->refcount, __ATOMIC_ACQUIRE) == 1) {
        __atomic_store_n(&it->exptime, exp, __ATOMIC_RELAXED);
        item_flags_clear(it, ITEM_TOKEN_SENT);
        item_flags_set(it, ITEM_STALE);
        stamp(it, req->cas_new);
        item_ref(it);
        return it;
    }
    if (req->remove_value) {
        bool too_large;
        n = item_alloc(ITEM_key(it), it->nkey, it->client_flags, exp, 2,
                       &too_large);
        if (n != NULL)
            memcpy(ITEM_data(n), "\r\n", 2);
    } else {
        n = copy_with_exptime(it, exp);
    }
    if (n == NULL)
        return NULL;
    item_flags_clear(n, ITEM_TOKEN_SENT);
    if (req->invalidate)
        item_flags_set(n, ITEM_STALE);
    put(n, it, hv, req->cas_new);
    return n;
}

/* delete and md: see storage_mdelete.  count_exists: a CAS mismatch
 * counts as a delete miss (md does, binary delete doesn't). */
static enum delete_result delete_key(const char *key, size_t nkey,
                                     const struct mdelete_req *req,
                                     bool count_exists, struct thread_stats *ts)
{
    uint32_t hv = hash_key(key, nkey);
    enum delete_result r;
    unsigned clsid = 0;
    bool counted = true;
    item *now = NULL;

    item_lock(hv);
    enum item_state st;
    item *it = item_lookup(key, nkey, hv, &st);
    if (st != ITEM_STATE_LIVE) {
        r = DELETE_NOT_FOUND;
    } else if (req->cas_in != 0 &&
               (!settings.use_cas || req->cas_in != it->cas)) {
        r = DELETE_EXISTS;
        counted = count_exists;
    } else {
        r = DELETE_DELETED;
        clsid = it->slabs_clsid;
        if (req->invalidate || req->remove_value) {
            /* Not a delete for the counters, as in memcached. */
            counted = false;
            now = invalidate(it, hv, req);
        }
        if (now == NULL)
            now = remove_item(key, nkey, it, hv);
    }
    item_unlock(hv);

    if (ts != NULL && counted) {
        if (r == DELETE_DELETED)
            STATS_INCR(&ts->slab[clsid], delete_hits);
        else
            STATS_INCR(ts, delete_misses);
    }
    if (now != NULL)
        announce_item(now);
    return r;
}

enum delete_result storage_delete(const char *key, size_t nkey,
                                  uint64_t cas_in, struct thread_stats *ts)
{
    struct mdelete_req req = {.cas_in = cas_in};
    return delete_key(key, nkey, &req, false, ts);
}

enum delete_result storage_mdelete(const char *key, size_t nkey,
                                   const struct mdelete_req *req,
                                   struct thread_stats *ts)
{
    return delete_key(key, nkey, req, true, ts);
}

/* The first version of server second `when`: every item written before
 * that second has a smaller one. */
static uint64_t version_at(rel_time_t when)
{
    uint64_t ms = ((uint64_t)process_started + when) * 1000;
    return ms > CLOCK_EPOCH_MS ? (ms - CLOCK_EPOCH_MS) << CLOCK_PHYS_SHIFT : 0;
}

/* A flush_all to `when` made with command version `version`, local or a
 * peer's, so both nodes cut at the same point.  A time not in the future
 * flushes at once everything older than the command and, for a delayed
 * flush whose second has passed (a peer's that arrived late), everything
 * older than that second, as it did on the node that made it. */
static void flush_to(rel_time_t when, uint64_t version)
{
    uint64_t cut = when != 0 ? version_at(when) : 0;
    if (when <= __atomic_load_n(&current_time, __ATOMIC_RELAXED))
        items_flush(cut > version ? cut : version, 0, version);
    else
        items_flush(0, cut, version);
}

void storage_flush(rel_time_t when, struct thread_stats *ts)
{
    uint64_t version = clock_next_version();
    flush_to(when, version);
    COUNT(ts, flush_cmds);
    if (hooks.on_flush != NULL)
        hooks.on_flush(when, version);
}

/* ---- Replication ---- */

void storage_keep_tombstones(uint32_t ttl_seconds)
{
    __atomic_store_n(&tombstone_ttl, ttl_seconds, __ATOMIC_RELAXED);
    __atomic_store_n(&keep_tombstones, true, __ATOMIC_RELEASE);
}

/* Does a peer's state of version v beat old (the key's live item or
 * tombstone, NULL when absent) and every flush? */
static bool peer_wins(const item *old, uint64_t v)
{
    return (old == NULL || v > old->version) && !items_version_flushed(v);
}

enum apply_result storage_apply_item(item *it, struct thread_stats *ts)
{
    assert(!(item_flags(it) & (ITEM_LINKED | ITEM_TOMBSTONE)));
    const char *key = ITEM_key(it);
    uint32_t hv = hash_key(key, it->nkey);
    enum apply_result r = APPLY_STALE;
    if (!settings.use_cas)
        it->cas = 0;

    item_lock(hv);
    enum item_state st;
    item *old = item_lookup(key, it->nkey, hv, &st);
    if (peer_wins(old, it->version)) {
        install(it, old, hv);
        r = APPLY_APPLIED;
    }
    item_unlock(hv);
    return r;
}

enum apply_result storage_apply_delete(const char *key, size_t nkey,
                                       uint64_t version,
                                       struct thread_stats *ts)
{
    uint32_t hv = hash_key(key, nkey);
    enum apply_result r = APPLY_STALE;
    item *tomb = NULL;

    item_lock(hv);
    enum item_state st;
    item *old = item_lookup(key, nkey, hv, &st);
    if (peer_wins(old, version)) {
        tomb = bury(key, nkey, old, version, hv);
        r = APPLY_APPLIED;
    }
    item_unlock(hv);
    if (tomb != NULL)
        item_release(tomb);
    return r;
}

void storage_apply_flush(rel_time_t when, uint64_t version)
{
    flush_to(when, version);
}

/* A bulk sync walk: the hash table walk, and the references of the
 * current bucket not handed out yet (aw.refs[handed .. aw.n)). */
struct storage_walk {
    struct assoc_walk aw;
    size_t handed;
    bool done;
};

/* What a bulk sync sends: live items and tombstones (item lock held). */
static bool walk_keeps(const item *it)
{
    return item_liveness(it) == ITEM_STATE_LIVE;
}

struct storage_walk *storage_walk_begin(void)
{
    struct storage_walk *w = calloc(1, sizeof(*w));
    if (w != NULL)
        assoc_walk_begin(&w->aw);
    return w;
}

size_t storage_walk_next(struct storage_walk *w, item **out, size_t max)
{
    size_t n = 0;
    while (n < max) {
        if (w->handed == w->aw.n) {
            bool oom = false;
            w->handed = 0;
            if (w->done || !assoc_walk_bucket(&w->aw, walk_keeps, &oom)) {
                if (oom)
                    mc_logf("Out of memory while walking the cache for a "
                            "bulk sync: the sync is incomplete");
                w->done = true;
                break;
            }
        }
        size_t k = w->aw.n - w->handed;
        if (k > max - n)
            k = max - n;
        memcpy(out + n, w->aw.refs + w->handed, k * sizeof(*out));
        n += k;
        w->handed += k;
    }
    return n;
}

void storage_walk_end(struct storage_walk *w)
{
    while (w->handed < w->aw.n)
        item_release(w->aw.refs[w->handed++]);
    assoc_walk_end(&w->aw);
    free(w);
}

/* n comes from the network (a peer's SYNC_BEGIN), so it is capped at the
 * items this node's memory can hold, each in at least one chunk of the
 * smallest class: a bogus count, or a peer with far more memory, would
 * otherwise ask for a table of up to 2^32 buckets (32 GB), whose failed
 * allocation also stops the table from ever growing again. */
void storage_reserve(uint64_t n)
{
    struct slabs_class_info smallest;
    if (slabs_class_info(1, &smallest) && smallest.chunk_size > 0) {
        uint64_t most = settings.maxbytes / smallest.chunk_size;
        if (n > most)
            n = most;
    }
    assoc_reserve(n);
}

/* ---- Reports ---- */

void storage_get_totals(struct storage_totals *out)
{
    memset(out, 0, sizeof(*out));
    for (unsigned id = 0; id < MAX_SLAB_CLASSES; id++) {
        struct items_lru_stats s;
        items_lru_stats(id, &s);
        out->curr_items += s.number;
        out->tombstones += s.tombstones;
        out->bytes += s.bytes;
        out->evictions += s.c.evicted;
        out->reclaimed += s.c.reclaimed;
        out->expired_unfetched += s.c.expired_unfetched;
        out->evicted_unfetched += s.c.evicted_unfetched;
        out->evicted_active += s.c.evicted_active;
        out->crawler_reclaimed += s.c.crawler_reclaimed;
        out->crawler_items_checked += s.c.crawler_items_checked;
        out->lrutail_reflocked += s.c.lrutail_reflocked;
        out->direct_reclaims += s.c.direct_reclaims;
    }
    out->total_items = items_total_linked();
    out->lru_crawler_starts = crawler_starts();

    struct slabs_totals sl;
    slabs_get_totals(&sl);
    out->slabs_moved = sl.pages_moved;
    out->slab_reassign_running = sl.mover_busy;
    out->slab_global_page_pool = sl.pool_pages;
    out->total_malloced = sl.malloced;

    struct assoc_stats as;
    assoc_get_stats(&as);
    out->hash_power_level = as.hash_power_level;
    out->hash_bytes = as.hash_bytes;
    out->hash_is_expanding = as.is_expanding;
}

void storage_stats_reset(void)
{
    items_stats_reset();
    slabs_stats_reset();
    crawler_stats_reset();
}

/* "<id>:<name>" or "items:<id>:<name>" stat with a number. */
static void add_class_stat(add_stat_fn add, void *ctx, const char *prefix,
                           unsigned id, const char *name, uint64_t value)
{
    char key[64];
    snprintf(key, sizeof(key), "%s%u:%s", prefix, id, name);
    stats_addf(add, ctx, key, "%llu", (unsigned long long)value);
}

/* Class id's per class command counters; large items count in the
 * largest class, where memcached keeps them too. */
static struct slab_counters class_counters(const struct thread_stats *agg,
                                           unsigned id)
{
    struct slab_counters c = {0};
    if (agg == NULL)
        return c;
    c = agg->slab[id];
    if (id == slabs_largest()) {
        const struct slab_counters *l = &agg->slab[SLABS_LARGE_CLASS];
        c.get_hits += l->get_hits;
        c.cmd_set += l->cmd_set;
        c.delete_hits += l->delete_hits;
        c.incr_hits += l->incr_hits;
        c.decr_hits += l->decr_hits;
        c.cas_hits += l->cas_hits;
        c.cas_badval += l->cas_badval;
        c.touch_hits += l->touch_hits;
    }
    return c;
}

void storage_report_slabs(add_stat_fn add, void *ctx,
                          const struct thread_stats *cmd_counters)
{
    for (unsigned id = 1; id <= slabs_largest(); id++) {
        struct slabs_class_info info;
        if (!slabs_class_info(id, &info) || info.pages == 0)
            continue;
        struct slab_counters c = class_counters(cmd_counters, id);
        uint64_t total = (uint64_t)info.pages * info.perslab;
        add_class_stat(add, ctx, "", id, "chunk_size", info.chunk_size);
        add_class_stat(add, ctx, "", id, "chunks_per_page", info.perslab);
        add_class_stat(add, ctx, "", id, "total_pages", info.pages);
        add_class_stat(add, ctx, "", id, "total_chunks", total);
        add_class_stat(add, ctx, "", id, "used_chunks", total - info.free_chunks);
        add_class_stat(add, ctx, "", id, "free_chunks", info.free_chunks);
        add_class_stat(add, ctx, "", id, "free_chunks_end", 0);
        add_class_stat(add, ctx, "", id, "get_hits", c.get_hits);
        add_class_stat(add, ctx, "", id, "cmd_set", c.cmd_set);
        add_class_stat(add, ctx, "", id, "delete_hits", c.delete_hits);
        add_class_stat(add, ctx, "", id, "incr_hits", c.incr_hits);
        add_class_stat(add, ctx, "", id, "decr_hits", c.decr_hits);
        add_class_stat(add, ctx, "", id, "cas_hits", c.cas_hits);
        add_class_stat(add, ctx, "", id, "cas_badval", c.cas_badval);
        add_class_stat(add, ctx, "", id, "touch_hits", c.touch_hits);
    }
    struct slabs_totals sl;
    slabs_get_totals(&sl);
    stats_addf(add, ctx, "active_slabs", "%u", sl.active_classes);
    stats_addf(add, ctx, "total_malloced", "%llu",
               (unsigned long long)sl.malloced);
}

/* Fold the large items' LRU into the largest class's numbers. */
static void merge_lru_stats(struct items_lru_stats *s,
                            const struct items_lru_stats *l)
{
    if (l->tail_time != 0 && (s->tail_time == 0 || l->tail_time < s->tail_time))
        s->tail_time = l->tail_time;
    if (l->c.evicted != 0)
        s->c.evicted_time = l->c.evicted_time;
    s->number += l->number;
    s->bytes += l->bytes;
    s->c.evicted += l->c.evicted;
    s->c.evicted_nonzero += l->c.evicted_nonzero;
    s->c.outofmemory += l->c.outofmemory;
    s->c.reclaimed += l->c.reclaimed;
    s->c.expired_unfetched += l->c.expired_unfetched;
    s->c.evicted_unfetched += l->c.evicted_unfetched;
    s->c.evicted_active += l->c.evicted_active;
    s->c.crawler_reclaimed += l->c.crawler_reclaimed;
    s->c.crawler_items_checked += l->c.crawler_items_checked;
    s->c.lrutail_reflocked += l->c.lrutail_reflocked;
    s->c.direct_reclaims += l->c.direct_reclaims;
}

void storage_report_items(add_stat_fn add, void *ctx)
{
    static struct thread_stats agg; /* too big for a worker's stack */
    static pthread_mutex_t agg_lock = PTHREAD_MUTEX_INITIALIZER;
    pthread_mutex_lock(&agg_lock);
    stats_aggregate(&agg);
    rel_time_t now = __atomic_load_n(&current_time, __ATOMIC_RELAXED);
    for (unsigned id = 1; id <= slabs_largest(); id++) {
        struct items_lru_stats s;
        items_lru_stats(id, &s);
        if (id == slabs_largest()) {
            struct items_lru_stats large;
            items_lru_stats(SLABS_LARGE_CLASS, &large);
            merge_lru_stats(&s, &large);
        }
        if (s.number == 0)
            continue;
        /* One flat LRU per class: in memcached's segmented terms every
         * item is COLD and there is no HOT, WARM or TEMP. */
        const char *p = "items:";
        add_class_stat(add, ctx, p, id, "number", s.number);
        add_class_stat(add, ctx, p, id, "number_hot", 0);
        add_class_stat(add, ctx, p, id, "number_warm", 0);
        add_class_stat(add, ctx, p, id, "number_cold", s.number);
        if (settings.temp_lru)
            add_class_stat(add, ctx, p, id, "number_temp", 0);
        add_class_stat(add, ctx, p, id, "age_hot", 0);
        add_class_stat(add, ctx, p, id, "age_warm", 0);
        add_class_stat(add, ctx, p, id, "age",
                       s.tail_time != 0 && now > s.tail_time ? now - s.tail_time : 0);
        add_class_stat(add, ctx, p, id, "mem_requested", s.bytes);
        add_class_stat(add, ctx, p, id, "evicted", s.c.evicted);
        add_class_stat(add, ctx, p, id, "evicted_nonzero", s.c.evicted_nonzero);
        add_class_stat(add, ctx, p, id, "evicted_time", s.c.evicted_time);
        add_class_stat(add, ctx, p, id, "outofmemory", s.c.outofmemory);
        /* memcached's repair of leaked references is not done here. */
        add_class_stat(add, ctx, p, id, "tailrepairs", 0);
        add_class_stat(add, ctx, p, id, "reclaimed", s.c.reclaimed);
        add_class_stat(add, ctx, p, id, "expired_unfetched", s.c.expired_unfetched);
        add_class_stat(add, ctx, p, id, "evicted_unfetched", s.c.evicted_unfetched);
        add_class_stat(add, ctx, p, id, "evicted_active", s.c.evicted_active);
        add_class_stat(add, ctx, p, id, "crawler_reclaimed", s.c.crawler_reclaimed);
        add_class_stat(add, ctx, p, id, "crawler_items_checked",
                       s.c.crawler_items_checked);
        add_class_stat(add, ctx, p, id, "lrutail_reflocked", s.c.lrutail_reflocked);
        add_class_stat(add, ctx, p, id, "moves_to_cold", 0);
        add_class_stat(add, ctx, p, id, "moves_to_warm", 0);
        add_class_stat(add, ctx, p, id, "moves_within_lru", 0);
        add_class_stat(add, ctx, p, id, "direct_reclaims", s.c.direct_reclaims);
        add_class_stat(add, ctx, p, id, "hits_to_hot", 0);
        add_class_stat(add, ctx, p, id, "hits_to_warm", 0);
        add_class_stat(add, ctx, p, id, "hits_to_cold",
                       class_counters(&agg, id).get_hits);
        add_class_stat(add, ctx, p, id, "hits_to_temp", 0);
    }
    pthread_mutex_unlock(&agg_lock);
}

struct sizes_ctx {
    add_stat_fn add;
    void *ctx;
};

static void add_size_bucket(uint32_t bucket_size, uint64_t count, void *arg)
{
    struct sizes_ctx *s = arg;
    char key[16];
    snprintf(key, sizeof(key), "%u", bucket_size);
    stats_addf(s->add, s->ctx, key, "%llu", (unsigned long long)count);
}

void storage_report_sizes(add_stat_fn add, void *ctx)
{
    if (!settings.track_sizes) {
        stats_addf(add, ctx, "sizes_status", "disabled");
        return;
    }
    struct sizes_ctx s = {add, ctx};
    items_sizes(add_size_bucket, &s);
}

void storage_cachedump(unsigned int clsid, unsigned int limit, line_fn line,
                       void *ctx)
{
    if (clsid < 1 || clsid > slabs_largest())
        return;
    unsigned shown = items_cachedump(clsid, limit, line, ctx);
    if (clsid == slabs_largest() && (limit == 0 || shown < limit))
        items_cachedump(SLABS_LARGE_CLASS, limit ? limit - shown : 0, line, ctx);
}

/* ---- Controls ---- */

enum reassign_result storage_slabs_reassign(int src, int dst)
{
    return slabs_reassign(src, dst);
}

void storage_slabs_automove(int mode)
{
    slabs_set_automove(mode);
}

int storage_crawler_crawl(const char *classes)
{
    return crawler_crawl(classes);
}

int storage_crawler_metadump(const char *classes, line_fn line, void *ctx)
{
    return crawler_metadump(classes, line, ctx);
}

bool storage_crawler_enable(bool on)
{
    return crawler_enable(on);
}

bool storage_set_memlimit(size_t bytes)
{
    settings.maxbytes = bytes;
    slabs_set_limit(bytes);
    return true;
}
