/*
 * stats_report.c - the "stats" (general), "stats settings" and
 * "stats detail" reports.
 *
 * What it owns: the names, order and format of the general and settings
 * reports (memcached 1.6's, line for line; our own lines only at the end)
 * and the per-prefix counters behind "stats detail".  The numbers come
 * from their owners at report time: stats_aggregate() for per-thread
 * counters, storage_get_totals() for the engine, conn_get_totals() for
 * connections, getrusage() and `settings`.
 *
 * Lines memcached prints for machinery this server does not have (its log
 * watchers, LRU juggling, slab page rescue counters...) are printed with
 * the value that is true here, 0, so tools that expect them keep working.
 *
 * Per-prefix counters: a chained hash table keyed by the part of the key
 * before settings.prefix_delimiter (keys without it are not counted, as in
 * memcached).  It doubles when it holds twice as many prefixes as buckets.
 * Locking: prefix_lock guards the table and every counter in it; it is
 * taken only when settings.detail_enabled is on (one lock per recorded key:
 * memcached's price for the feature too) and by clear/dump.
 */
#include "stats_report.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "clock.h"
#include "conn.h"
#include "memcached.h"
#include "options.h"
#include "replication.h"
#include "storage.h"

/* The settings that change at run time are read with relaxed atomic loads
 * (memcached.h: each is written with one aligned store). */
#define LIVE(field) __atomic_load_n(&settings.field, __ATOMIC_RELAXED)

/* ---- "stats" ---- */

/* One numeric line of the general report; memcached leaves out the lines
 * of features that are turned off, and so does `shown`. */
struct stat_u64 {
    const char *name;
    uint64_t value;
    bool shown;
};

void stats_report_general(add_stat_fn add, void *ctx)
{
    struct thread_stats ts;
    struct storage_totals st;
    struct conn_totals ct;
    stats_aggregate(&ts);
    storage_get_totals(&st);
    conn_get_totals(&ct);

    /* Hits are counted per slab class; the general report shows sums. */
    struct slab_counters sc = {0};
    for (int i = 0; i < MAX_SLAB_CLASSES; i++) {
        sc.get_hits += ts.slab[i].get_hits;
        sc.cmd_set += ts.slab[i].cmd_set;
        sc.delete_hits += ts.slab[i].delete_hits;
        sc.incr_hits += ts.slab[i].incr_hits;
        sc.decr_hits += ts.slab[i].decr_hits;
        sc.cas_hits += ts.slab[i].cas_hits;
        sc.cas_badval += ts.slab[i].cas_badval;
        sc.touch_hits += ts.slab[i].touch_hits;
    }

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    rel_time_t now = __atomic_load_n(&current_time, __ATOMIC_RELAXED);

    stats_addf(add, ctx, "pid", "%ld", (long)getpid());
    /* memcached counts uptime from ITEM_UPDATE_INTERVAL after its
     * (back-dated) start; clock.c back-dates the same way. */
    stats_addf(add, ctx, "uptime", "%u", now - ITEM_UPDATE_INTERVAL);
    stats_addf(add, ctx, "time", "%lld", (long long)process_started + now);
    stats_addf(add, ctx, "version", "%s", MC_PROTOCOL_VERSION);
    stats_addf(add, ctx, "libevent", "%s", event_get_version());
    stats_addf(add, ctx, "pointer_size", "%d", (int)(8 * sizeof(void *)));
    stats_addf(add, ctx, "rusage_user", "%ld.%06ld", (long)ru.ru_utime.tv_sec,
               (long)ru.ru_utime.tv_usec);
    stats_addf(add, ctx, "rusage_system", "%ld.%06ld", (long)ru.ru_stime.tv_sec,
               (long)ru.ru_stime.tv_usec);

    const bool reassign = settings.slab_reassign;
    const bool crawler = LIVE(lru_crawler);
    const bool maintainer = settings.lru_maintainer_thread;
    const struct stat_u64 lines[] = {
        {"max_connections", (uint64_t)settings.maxconns, true},
        {"curr_connections", ct.curr_connections, true},
        {"total_connections", ct.total_connections, true},
        {"rejected_connections", ct.rejected_connections, settings.maxconns_fast},
        {"connection_structures", ct.connection_structures, true},
        {"response_obj_oom", ts.response_obj_oom, true},
        {"response_obj_count", ct.response_obj_count, true},
        {"response_obj_bytes", ct.response_obj_bytes, true},
        {"read_buf_count", ct.read_buf_count, true},
        {"read_buf_bytes", ct.read_buf_bytes, true},
        {"read_buf_bytes_free", ct.read_buf_bytes_free, true},
        {"read_buf_oom", ts.read_buf_oom, true},
        {"reserved_fds", ct.reserved_fds, true},
        {"cmd_get", ts.get_cmds, true},
        {"cmd_set", sc.cmd_set, true},
        {"cmd_flush", ts.flush_cmds, true},
        {"cmd_touch", ts.touch_cmds, true},
        {"cmd_meta", ts.meta_cmds, true},
        {"get_hits", sc.get_hits, true},
        {"get_misses", ts.get_misses, true},
        {"get_expired", ts.get_expired, true},
        {"get_flushed", ts.get_flushed, true},
        {"delete_misses", ts.delete_misses, true},
        {"delete_hits", sc.delete_hits, true},
        {"incr_misses", ts.incr_misses, true},
        {"incr_hits", sc.incr_hits, true},
        {"decr_misses", ts.decr_misses, true},
        {"decr_hits", sc.decr_hits, true},
        {"cas_misses", ts.cas_misses, true},
        {"cas_hits", sc.cas_hits, true},
        {"cas_badval", sc.cas_badval, true},
        {"touch_hits", sc.touch_hits, true},
        {"touch_misses", ts.touch_misses, true},
        {"store_too_large", ts.store_too_large, true},
        {"store_no_memory", ts.store_no_memory, true},
        {"auth_cmds", ts.auth_cmds, true},
        {"auth_errors", ts.auth_errors, true},
        {"idle_kicks", ts.idle_kicks, settings.idle_timeout != 0},
        {"bytes_read", ts.bytes_read, true},
        {"bytes_written", ts.bytes_written, true},
        {"limit_maxbytes", LIVE(maxbytes), true},
        {"accepting_conns", ct.accepting_conns, true},
        {"listen_disabled_num", ct.listen_disabled_num, true},
        {"time_in_listen_disabled_us", ct.time_in_listen_disabled_us, true},
        {"threads", (uint64_t)settings.num_threads, true},
        {"conn_yields", ts.conn_yields, true},
        {"hash_power_level", st.hash_power_level, true},
        {"hash_bytes", st.hash_bytes, true},
        {"hash_is_expanding", st.hash_is_expanding, true},
        {"slab_reassign_rescues", 0, reassign},
        {"slab_reassign_chunk_rescues", 0, reassign},
        {"slab_reassign_evictions_nomem", 0, reassign},
        {"slab_reassign_inline_reclaim", 0, reassign},
        {"slab_reassign_busy_items", 0, reassign},
        {"slab_reassign_busy_deletes", 0, reassign},
        {"slab_reassign_running", st.slab_reassign_running, reassign},
        {"slabs_moved", st.slabs_moved, reassign},
        {"lru_crawler_running", 0, crawler},
        {"lru_crawler_starts", st.lru_crawler_starts, crawler},
        {"lru_maintainer_juggles", 0, maintainer},
        {"malloc_fails", 0, true},
        {"log_worker_dropped", 0, true},
        {"log_worker_written", 0, true},
        {"log_watcher_skipped", 0, true},
        {"log_watcher_sent", 0, true},
        {"log_watchers", 0, true},
        {"unexpected_napi_ids", 0, true},
        {"round_robin_fallback", 0, true},
        {"bytes", st.bytes, true},
        {"curr_items", st.curr_items, true},
        {"total_items", st.total_items, true},
        {"slab_global_page_pool", st.slab_global_page_pool, true},
        {"expired_unfetched", st.expired_unfetched, true},
        {"evicted_unfetched", st.evicted_unfetched, true},
        {"evicted_active", st.evicted_active, maintainer},
        {"evictions", st.evictions, true},
        {"reclaimed", st.reclaimed, true},
        {"crawler_reclaimed", st.crawler_reclaimed, true},
        {"crawler_items_checked", st.crawler_items_checked, true},
        {"lrutail_reflocked", st.lrutail_reflocked, true},
        {"moves_to_cold", 0, maintainer},
        {"moves_to_warm", 0, maintainer},
        {"moves_within_lru", 0, maintainer},
        {"direct_reclaims", st.direct_reclaims, maintainer},
        {"lru_bumps_dropped", 0, maintainer},
    };
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        if (lines[i].shown)
            stats_addf(add, ctx, lines[i].name, "%llu", (unsigned long long)lines[i].value);
    /* Our own lines come last: replication (doc/replication.md 7). */
    if (repl_active()) {
        stats_addf(add, ctx, "tombstones", "%llu", (unsigned long long)st.tombstones);
        repl_report(add, ctx);
    }
}

/* ---- "stats settings" ---- */

static const char *yes_no(bool b)
{
    return b ? "yes" : "no";
}

static const char *or_null(const char *s)
{
    return s != NULL ? s : "NULL";
}


static const char *hash_name(enum hash_algorithm h)
{
    switch (h) {
    case HASH_JENKINS:
        return "jenkins";
    case HASH_XXH3:
        return "xxh3";
    case HASH_MURMUR3:
        break;
    }
    return "murmur3";
}

void stats_report_settings(add_stat_fn add, void *ctx)
{
    stats_addf(add, ctx, "maxbytes", "%zu", LIVE(maxbytes));
    stats_addf(add, ctx, "maxconns", "%d", settings.maxconns);
    stats_addf(add, ctx, "tcpport", "%d", settings.port);
    stats_addf(add, ctx, "udpport", "%d", settings.udpport);
    stats_addf(add, ctx, "inter", "%s", or_null(settings.inter));
    stats_addf(add, ctx, "verbosity", "%d", LIVE(verbose));
    /* The last flush_all time is the engine's and not in its totals. */
    stats_addf(add, ctx, "oldest", "%u", 0u);
    stats_addf(add, ctx, "evictions", "%s", settings.evict_to_free ? "on" : "off");
    stats_addf(add, ctx, "domain_socket", "%s", or_null(settings.socketpath));
    stats_addf(add, ctx, "umask", "%o", (unsigned)settings.access);
    stats_addf(add, ctx, "shutdown_command", "%s", yes_no(settings.shutdown_command));
    stats_addf(add, ctx, "growth_factor", "%.2f", settings.factor);
    stats_addf(add, ctx, "chunk_size", "%d", settings.chunk_size);
    stats_addf(add, ctx, "num_threads", "%d", settings.num_threads);
    stats_addf(add, ctx, "num_threads_per_udp", "%d", settings.num_threads);
    stats_addf(add, ctx, "stat_key_prefix", "%c", settings.prefix_delimiter);
    stats_addf(add, ctx, "detail_enabled", "%s", yes_no(LIVE(detail_enabled)));
    stats_addf(add, ctx, "reqs_per_event", "%d", settings.reqs_per_event);
    stats_addf(add, ctx, "cas_enabled", "%s", yes_no(settings.use_cas));
    stats_addf(add, ctx, "tcp_backlog", "%d", settings.backlog);
    stats_addf(add, ctx, "binding_protocol", "%s", options_protocol_name(settings.binding_protocol));
    stats_addf(add, ctx, "auth_enabled_sasl", "%s", "no");
    stats_addf(add, ctx, "auth_enabled_ascii", "%s", "no");
    stats_addf(add, ctx, "item_size_max", "%d", settings.item_size_max);
    stats_addf(add, ctx, "maxconns_fast", "%s", yes_no(settings.maxconns_fast));
    stats_addf(add, ctx, "hashpower_init", "%d", settings.hashpower_init);
    stats_addf(add, ctx, "slab_reassign", "%s", yes_no(settings.slab_reassign));
    stats_addf(add, ctx, "slab_automove", "%d", LIVE(slab_automove));
    stats_addf(add, ctx, "slab_automove_ratio", "%.2f", settings.slab_automove_ratio);
    stats_addf(add, ctx, "slab_automove_window", "%u", settings.slab_automove_window);
    stats_addf(add, ctx, "slab_chunk_max", "%d", settings.slab_chunk_size_max);
    stats_addf(add, ctx, "lru_crawler", "%s", yes_no(LIVE(lru_crawler)));
    stats_addf(add, ctx, "lru_crawler_sleep", "%d", LIVE(lru_crawler_sleep));
    stats_addf(add, ctx, "lru_crawler_tocrawl", "%u", LIVE(lru_crawler_tocrawl));
    stats_addf(add, ctx, "tail_repair_time", "%d", settings.tail_repair_time);
    stats_addf(add, ctx, "flush_enabled", "%s", yes_no(settings.flush_enabled));
    stats_addf(add, ctx, "dump_enabled", "%s", yes_no(settings.dump_enabled));
    stats_addf(add, ctx, "hash_algorithm", "%s", hash_name(settings.hash_algorithm));
    stats_addf(add, ctx, "lru_maintainer_thread", "%s", yes_no(settings.lru_maintainer_thread));
    stats_addf(add, ctx, "lru_segmented", "%s", yes_no(settings.lru_maintainer_thread));
    stats_addf(add, ctx, "hot_lru_pct", "%d", settings.hot_lru_pct);
    stats_addf(add, ctx, "warm_lru_pct", "%d", settings.warm_lru_pct);
    stats_addf(add, ctx, "hot_max_factor", "%.2f", settings.hot_max_factor);
    stats_addf(add, ctx, "warm_max_factor", "%.2f", settings.warm_max_factor);
    stats_addf(add, ctx, "temp_lru", "%s", yes_no(settings.temp_lru));
    stats_addf(add, ctx, "temporary_ttl", "%u", settings.temporary_ttl);
    stats_addf(add, ctx, "idle_timeout", "%d", settings.idle_timeout);
    stats_addf(add, ctx, "watcher_logbuf_size", "%u", settings.watcher_logbuf_size);
    stats_addf(add, ctx, "worker_logbuf_size", "%u", settings.worker_logbuf_size);
    stats_addf(add, ctx, "read_buf_mem_limit", "%llu",
               (unsigned long long)settings.read_buf_mem_limit * 1024 * 1024);
    stats_addf(add, ctx, "track_sizes", "%s", yes_no(settings.track_sizes));
    stats_addf(add, ctx, "inline_ascii_response", "%s", "no");
    /* Extstore is not built: its keys are accepted and ignored, and its
     * lines report memcached's defaults. */
    stats_addf(add, ctx, "ext_item_size", "%u", 512u);
    stats_addf(add, ctx, "ext_item_age", "%u", UINT32_MAX);
    stats_addf(add, ctx, "ext_low_ttl", "%u", 0u);
    stats_addf(add, ctx, "ext_recache_rate", "%u", 2000u);
    stats_addf(add, ctx, "ext_wbuf_size", "%u", 4u * 1024 * 1024);
    stats_addf(add, ctx, "ext_compact_under", "%u", 0u);
    stats_addf(add, ctx, "ext_drop_under", "%u", 0u);
    stats_addf(add, ctx, "ext_max_sleep", "%u", 1000000u);
    stats_addf(add, ctx, "ext_max_frag", "%.2f", 0.8);
    stats_addf(add, ctx, "slab_automove_freeratio", "%.3f", settings.slab_automove_freeratio);
    stats_addf(add, ctx, "ext_drop_unread", "%s", "no");
    stats_addf(add, ctx, "num_napi_ids", "%s", "(null)");
    stats_addf(add, ctx, "memory_file", "%s", "(null)");
    /* Ours. */
    stats_addf(add, ctx, "repl_peer", "%s", or_null(settings.repl_peer));
    stats_addf(add, ctx, "repl_port", "%d", settings.repl_port);
    stats_addf(add, ctx, "repl_queue_max", "%d", settings.repl_queue_max);
    stats_addf(add, ctx, "repl_tombstone_ttl", "%u", settings.repl_tombstone_ttl);
    stats_addf(add, ctx, "repl_drain_timeout", "%d", settings.repl_drain_timeout);
}

/* ---- Per-prefix counters ---- */

struct prefix_stats {
    struct prefix_stats *next; /* hash chain */
    uint64_t gets, hits, sets, dels;
    size_t len;
    char prefix[]; /* len bytes, then '\0' */
};

#define PREFIX_BUCKETS_MIN 256

static pthread_mutex_t prefix_lock = PTHREAD_MUTEX_INITIALIZER;
static struct prefix_stats **prefix_table; /* NULL until first use */
static size_t prefix_buckets;              /* a power of two */
static size_t prefix_count;

/* FNV-1a: short prefixes, no need for the item hash. */
static size_t prefix_hash(const char *s, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return (size_t)h;
}

/* Double the table (prefix_lock held); on allocation failure the old
 * table simply stays, with longer chains. */
static void prefix_grow(void)
{
    size_t n = prefix_buckets ? prefix_buckets * 2 : PREFIX_BUCKETS_MIN;
    struct prefix_stats **t = calloc(n, sizeof(*t));
    if (t == NULL)
        return;
    for (size_t b = 0; b < prefix_buckets; b++) {
        struct prefix_stats *ps = prefix_table[b];
        while (ps != NULL) {
            struct prefix_stats *next = ps->next;
            size_t nb = prefix_hash(ps->prefix, ps->len) & (n - 1);
            ps->next = t[nb];
            t[nb] = ps;
            ps = next;
        }
    }
    free(prefix_table);
    prefix_table = t;
    prefix_buckets = n;
}

/* The counters of key's prefix, created on first sight (prefix_lock
 * held); NULL when the key has no delimiter or memory is short. */
static struct prefix_stats *prefix_find(const char *key, size_t nkey)
{
    const char *end = memchr(key, settings.prefix_delimiter, nkey);
    if (end == NULL)
        return NULL;
    size_t len = (size_t)(end - key);
    if (prefix_count >= 2 * prefix_buckets)
        prefix_grow();
    if (prefix_table == NULL)
        return NULL;
    size_t b = prefix_hash(key, len) & (prefix_buckets - 1);
    for (struct prefix_stats *ps = prefix_table[b]; ps != NULL; ps = ps->next)
        if (ps->len == len && memcmp(ps->prefix, key, len) == 0)
            return ps;
    struct prefix_stats *ps = calloc(1, sizeof(*ps) + len + 1);
    if (ps == NULL)
        return NULL;
    memcpy(ps->prefix, key, len);
    ps->len = len;
    ps->next = prefix_table[b];
    prefix_table[b] = ps;
    prefix_count++;
    return ps;
}

enum prefix_event { PREFIX_GET, PREFIX_HIT, PREFIX_SET, PREFIX_DEL };

/* Count one event for key's prefix, when detail stats are on. */
static void prefix_record(const char *key, size_t nkey, enum prefix_event ev)
{
    if (!__atomic_load_n(&settings.detail_enabled, __ATOMIC_RELAXED))
        return;
    pthread_mutex_lock(&prefix_lock);
    struct prefix_stats *ps = prefix_find(key, nkey);
    if (ps != NULL) {
        switch (ev) {
        case PREFIX_GET:
            ps->gets++;
            break;
        case PREFIX_HIT:
            ps->gets++;
            ps->hits++;
            break;
        case PREFIX_SET:
            ps->sets++;
            break;
        case PREFIX_DEL:
            ps->dels++;
            break;
        }
    }
    pthread_mutex_unlock(&prefix_lock);
}

void stats_prefix_record_get(const char *key, size_t nkey, bool hit)
{
    prefix_record(key, nkey, hit ? PREFIX_HIT : PREFIX_GET);
}

void stats_prefix_record_set(const char *key, size_t nkey)
{
    prefix_record(key, nkey, PREFIX_SET);
}

void stats_prefix_record_delete(const char *key, size_t nkey)
{
    prefix_record(key, nkey, PREFIX_DEL);
}

void stats_prefix_clear(void)
{
    pthread_mutex_lock(&prefix_lock);
    for (size_t b = 0; b < prefix_buckets; b++) {
        struct prefix_stats *ps = prefix_table[b];
        while (ps != NULL) {
            struct prefix_stats *next = ps->next;
            free(ps);
            ps = next;
        }
    }
    free(prefix_table);
    prefix_table = NULL;
    prefix_buckets = 0;
    prefix_count = 0;
    pthread_mutex_unlock(&prefix_lock);
}

static const char prefix_format[] = "PREFIX %.*s get %llu hit %llu set %llu del %llu\r\n";
/* Longest line for a prefix of length 0: the format's text plus four
 * 20-digit numbers. */
#define PREFIX_LINE_MAX (sizeof(prefix_format) + 4 * 20)

char *stats_prefix_dump(size_t *len)
{
    static const char end[] = "END\r\n";
    pthread_mutex_lock(&prefix_lock);
    size_t size = sizeof(end);
    for (size_t b = 0; b < prefix_buckets; b++)
        for (struct prefix_stats *ps = prefix_table[b]; ps != NULL; ps = ps->next)
            size += PREFIX_LINE_MAX + ps->len;
    char *buf = malloc(size);
    if (buf == NULL) {
        pthread_mutex_unlock(&prefix_lock);
        return NULL;
    }
    size_t off = 0;
    for (size_t b = 0; b < prefix_buckets; b++)
        for (struct prefix_stats *ps = prefix_table[b]; ps != NULL; ps = ps->next)
            off += (size_t)snprintf(buf + off, size - off, prefix_format, (int)ps->len,
                                    ps->prefix, (unsigned long long)ps->gets,
                                    (unsigned long long)ps->hits,
                                    (unsigned long long)ps->sets,
                                    (unsigned long long)ps->dels);
    pthread_mutex_unlock(&prefix_lock);
    memcpy(buf + off, end, sizeof(end));
    *len = off + sizeof(end) - 1;
    return buf;
}
