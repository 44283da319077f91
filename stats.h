/*
 * stats.h - counters and the "stats" reports.
 *
 * Counters that move on every request live in a struct thread_stats owned
 * by one thread (each worker, the replication thread...).  Only the owner
 * writes them, with STATS_INCR/STATS_ADD (a relaxed load and store: no lock,
 * no atomic read-modify-write on the hot path); stats_aggregate() sums all
 * registered blocks with relaxed loads.  "stats reset" does not write other
 * threads' counters: it records the current sums as a baseline that later
 * reports subtract.
 *
 * Which layer counts what:
 *   - the storage engine (storage.c) counts per key outcomes: get hits,
 *     misses, expired, flushed, sets per class, delete/incr/decr/cas/touch
 *     hits and misses, store_too_large, store_no_memory;
 *   - the connection and protocol layers count bytes, commands that do not
 *     reach storage, connection events;
 *   - gauges that are not per request (connections, items, memory) live in
 *     the module that owns them and are read when a report is made.
 *
 * Reports are produced through an add_stat_fn callback, so the text and
 * binary protocols share every report.
 */
#ifndef STATS_H
#define STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define MAX_SLAB_CLASSES 64

/* Per slab class counters (the "stats slabs" per-class lines). */
struct slab_counters {
    uint64_t get_hits;
    uint64_t cmd_set;
    uint64_t delete_hits;
    uint64_t incr_hits;
    uint64_t decr_hits;
    uint64_t cas_hits;
    uint64_t cas_badval;
    uint64_t touch_hits;
};

struct thread_stats {
    uint64_t get_cmds;
    uint64_t get_misses;
    uint64_t get_expired;
    uint64_t get_flushed;
    uint64_t touch_cmds;
    uint64_t touch_misses;
    uint64_t delete_misses;
    uint64_t incr_misses;
    uint64_t decr_misses;
    uint64_t cas_misses;
    uint64_t store_too_large;
    uint64_t store_no_memory;
    uint64_t flush_cmds;
    uint64_t bytes_read;
    uint64_t bytes_written;
    uint64_t conn_yields;
    uint64_t idle_kicks;
    uint64_t auth_cmds;
    uint64_t auth_errors;
    uint64_t meta_cmds;
    uint64_t response_obj_oom;
    uint64_t read_buf_oom;
    struct slab_counters slab[MAX_SLAB_CLASSES];
    struct thread_stats *registered_next; /* stats.c's list */
};

#define STATS_ADD(ts, field, n)                                              \
    __atomic_store_n(&(ts)->field,                                           \
                     __atomic_load_n(&(ts)->field, __ATOMIC_RELAXED) + (n),  \
                     __ATOMIC_RELAXED)
#define STATS_INCR(ts, field) STATS_ADD(ts, field, 1)

/* Report callback: one "name value" pair. */
typedef void (*add_stat_fn)(const char *name, size_t nlen, const char *val,
                            size_t vlen, void *ctx);

/* Format "value" with printf and pass it with name to add. */
void stats_addf(add_stat_fn add, void *ctx, const char *name,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* Make ts part of every aggregate; call from the owning thread's start-up. */
void stats_register(struct thread_stats *ts);

/* Sum of every registered block, minus the baseline of the last reset. */
void stats_aggregate(struct thread_stats *out);

/* "stats reset": later aggregates start from zero. */
void stats_reset(void);

#endif /* STATS_H */
