/*
 * memcached.h - process-wide definitions shared by every module.
 *
 * What lives here: the settings struct (every command-line knob, filled once
 * by options.c before any thread starts and read-only afterwards, except the
 * few fields the protocol may change at run time, noted below), the server
 * clock, and the limits that the protocols and the storage engine agree on.
 *
 * Nothing here takes a lock.  The clock (current_time) is written by the
 * main thread's timer once per tick and read everywhere with a relaxed load.
 */
#ifndef MEMCACHED_H
#define MEMCACHED_H

#include "config.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* The memcached protocol level we implement: "version" answers this, and
 * it is the first line of -h.  Our own version (PACKAGE_VERSION) is on the
 * second line. */
#define MC_PROTOCOL_VERSION "1.6.45"

/* Limits of the protocol. */
#define KEY_MAX_LENGTH 250
#define ITEM_SIZE_MAX_LOWER_LIMIT 1024
#define ITEM_SIZE_MAX_UPPER_LIMIT (1024 * 1024 * 1024)
/* Expiry times up to this many seconds are relative; larger ones are
 * absolute unix times. */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)
/* An item's LRU position is refreshed at most this often (seconds), so a
 * hot key does not take the LRU lock on every hit. */
#define ITEM_UPDATE_INTERVAL 60

/* Time in seconds since the server started (memcached's "rel_time_t"). */
typedef uint32_t rel_time_t;

enum protocol {
    PROTO_ASCII = 1,
    PROTO_BINARY = 2,
    PROTO_NEGOTIATE = 3, /* decide per connection from the first byte */
};

enum hash_algorithm {
    HASH_MURMUR3 = 0,
    HASH_JENKINS = 1,
    HASH_XXH3 = 2,
};

/*
 * Every command-line option.  Defaults are set by options_defaults(); the
 * parser in options.c is the only writer during start-up.  At run time only
 * `verbose` (verbosity command), `maxbytes` (cache_memlimit),
 * `detail_enabled` (stats detail on|off), `slab_automove` (slabs automove)
 * and the lru_crawler knobs change, each with a single aligned store.
 */
struct settings {
    /* Memory and storage. */
    size_t maxbytes;            /* -m: item memory in bytes */
    bool evict_to_free;         /* false with -M */
    double factor;              /* -f: slab chunk growth factor */
    int chunk_size;             /* -n: min space for key+value+flags */
    int item_size_max;          /* -I: largest item, bytes */
    int slab_page_size;         /* bytes per slab page (1 MB) */
    int slab_chunk_size_max;    /* -o slab_chunk_max, bytes */
    bool use_cas;               /* false with -C */
    bool lock_memory;           /* -k */
    bool use_large_pages;       /* -L */
    bool flush_enabled;         /* false with -F */
    bool dump_enabled;          /* false with --disable-dumping */
    int hashpower_init;         /* -o hashpower (0 = default) */
    bool hash_expand;           /* false with -o no_hashexpand */
    enum hash_algorithm hash_algorithm;
    int tail_repair_time;
    bool lru_crawler;
    int lru_crawler_sleep;      /* microseconds */
    uint32_t lru_crawler_tocrawl;
    bool lru_maintainer_thread;
    int hot_lru_pct;
    int warm_lru_pct;
    double hot_max_factor;
    double warm_max_factor;
    bool temp_lru;
    uint32_t temporary_ttl;
    bool slab_reassign;
    int slab_automove;          /* 0, 1 or 2 */
    double slab_automove_ratio;
    uint32_t slab_automove_window;
    double slab_automove_freeratio;
    bool track_sizes;

    /* Network. */
    int port;                   /* -p: TCP port, 0 = off */
    int udpport;                /* -U: UDP port, 0 = off */
    char *inter;                /* -l: listen list (NULL = any) */
    char *socketpath;           /* -s: UNIX socket, disables TCP/UDP */
    int access;                 /* -a: UNIX socket mode */
    int backlog;                /* -b */
    int maxconns;               /* -c */
    bool maxconns_fast;
    int num_threads;            /* -t */
    int reqs_per_event;         /* -R */
    enum protocol binding_protocol; /* -B */
    int idle_timeout;           /* seconds, 0 = never */
    uint32_t read_buf_mem_limit;/* MB, 0 = unlimited */
    bool shutdown_command;      /* -A */

    /* Stats. */
    char prefix_delimiter;      /* -D */
    bool detail_enabled;        /* -D or "stats detail on" */

    /* Logging. */
    int verbose;                /* -v count; "verbosity" command */
    uint32_t watcher_logbuf_size;
    uint32_t worker_logbuf_size;

    /* Process. */
    bool daemonize;             /* -d */
    bool maxcore;               /* -r */
    char *username;             /* -u */
    char *pid_file;             /* -P */
    bool relaxed_privileges;
    bool drop_privileges;

    /* Replication (repcached's flags). */
    char *repl_peer;            /* -x host[:port], NULL = no replication */
    int repl_port;              /* -X, default 11212 */
    int repl_queue_max;         /* -q: bound on pending entries */
    uint32_t repl_tombstone_ttl;/* -o repl_tombstone_ttl: seconds a delete's
                                 * tombstone is kept (default 3600) */
    int repl_drain_timeout;     /* -o repl_drain_timeout: seconds shutdown
                                 * waits for the peer's acks (default 10) */
};

extern struct settings settings;

#endif /* MEMCACHED_H */
