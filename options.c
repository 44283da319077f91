/*
 * options.c - the command line: memcached 1.6's options plus replication's
 * -x/-X/-q, parsed into `settings`.
 *
 * What it owns: the definition of `settings`, its defaults, and every rule
 * about which values are acceptable.  Two tables describe the whole command
 * line: `options` (one entry per short/long option) and `sub_options` (the
 * keys of -o).  The getopt_long tables, the parser's dispatch and the -h
 * text are all generated from them, so what -h says and what the parser
 * accepts cannot drift apart.
 *
 * Rules (checked against memcached 1.6 and its 1.6.45 help text):
 *   - every bad option or value prints one line on stderr, naming the
 *     option, the value and what was expected, and exits 1 (memcached
 *     exits 1 or 64 depending on the option; we always exit 1);
 *   - values are parsed strictly: "12abc", "-5" for a count, or an empty
 *     string are errors, where memcached's atoi() would read 12, -5 or 0;
 *   - checks that involve several options (-I against -m, slab_chunk_max
 *     against -I, hot + warm LRU percentages) run after the whole command
 *     line is read, so the order of the options does not matter;
 *   - options memcached accepts but that change nothing in this server
 *     (extstore, live-log buffers, NAPI ids...) are accepted, validated,
 *     and each one is reported with one line under -v;
 *   - features that cannot be honoured safely are refused rather than
 *     ignored: -Y (ASCII authentication: ignoring it would leave a cache
 *     its operator believes is protected open to anyone); -S (SASL) and -Z
 *     (TLS), which memcached only has when built with them, are unknown;
 *   - as in repcached, -x, -X and -q are replication's: memcached's -X
 *     (disable dumping) keeps only its long form, --disable-dumping;
 *   - sizes: -m is megabytes, or k/m/g/t-suffixed; -I is bytes, or
 *     k/m-suffixed; -o slab_chunk_max is kilobytes, as the 1.6.45 help
 *     says (memcached 1.6.18 reads it as bytes).
 *
 * Locking: none.  options_parse() runs in main() before any other thread
 * exists; afterwards `settings` is read-only except for the few fields
 * memcached.h lists.
 */
#include "options.h"

#include <float.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "items.h"
#include "memcached.h"
#include "util.h"

struct settings settings;

/* Replication's default bound on pending entries (doc/replication.md,
 * section 5): a million entries, the byte bound does the rest. */
#define REPL_QUEUE_MAX_DEFAULT 1000000
#define REPL_PORT_DEFAULT 11212
/* doc/replication.md sections 5 and 6. */
#define REPL_TOMBSTONE_TTL_DEFAULT 3600
#define REPL_DRAIN_TIMEOUT_DEFAULT 10

/* memcached warns above this many worker threads. */
#define THREADS_WARN 64

void options_defaults(void)
{
    memset(&settings, 0, sizeof(settings));

    settings.maxbytes = 64 * 1024 * 1024;
    settings.evict_to_free = true;
    settings.factor = 1.25;
    settings.chunk_size = 48;
    settings.item_size_max = 1024 * 1024;
    settings.slab_page_size = 1024 * 1024;
    settings.slab_chunk_size_max = settings.slab_page_size / 2;
    settings.use_cas = true;
    settings.flush_enabled = true;
    settings.dump_enabled = true;
    settings.hashpower_init = 0;
    settings.hash_expand = true;
    settings.hash_algorithm = HASH_MURMUR3;
    settings.tail_repair_time = 0;
    settings.lru_crawler = true;
    settings.lru_crawler_sleep = 100;
    settings.lru_crawler_tocrawl = 0;
    settings.lru_maintainer_thread = true;
    settings.hot_lru_pct = 20;
    settings.warm_lru_pct = 40;
    settings.hot_max_factor = 0.2;
    settings.warm_max_factor = 2.0;
    settings.temp_lru = false;
    settings.temporary_ttl = 61;
    settings.slab_reassign = true;
    settings.slab_automove = 1;
    settings.slab_automove_ratio = 0.8;
    settings.slab_automove_window = 30;
    settings.slab_automove_freeratio = 0.01;
    settings.track_sizes = false;

    settings.port = 11211;
    settings.udpport = 0;
    settings.inter = NULL;
    settings.socketpath = NULL;
    settings.access = 0700;
    settings.backlog = 1024;
    settings.maxconns = 1024;
    settings.maxconns_fast = true;
    settings.num_threads = 4;
    settings.reqs_per_event = 20;
    settings.binding_protocol = PROTO_NEGOTIATE;
    settings.idle_timeout = 0;
    settings.read_buf_mem_limit = 0;
    settings.shutdown_command = false;

    settings.prefix_delimiter = ':';
    settings.detail_enabled = false;

    settings.verbose = 0;
    settings.watcher_logbuf_size = 256 * 1024;
    settings.worker_logbuf_size = 64 * 1024;

    settings.daemonize = false;
    settings.maxcore = false;
    settings.username = NULL;
    settings.pid_file = NULL;
    settings.relaxed_privileges = false;
    settings.drop_privileges = true;

    settings.repl_peer = NULL;
    settings.repl_port = REPL_PORT_DEFAULT;
    settings.repl_queue_max = REPL_QUEUE_MAX_DEFAULT;
    settings.repl_tombstone_ttl = REPL_TOMBSTONE_TTL_DEFAULT;
    settings.repl_drain_timeout = REPL_DRAIN_TIMEOUT_DEFAULT;
}

/* ---- Errors and -v notes ---- */

/* Print "memcached: <message>" on stderr and exit 1: the one way a bad
 * command line ends. */
static void __attribute__((noreturn, format(printf, 1, 2)))
usage_error(const char *fmt, ...)
{
    va_list ap;
    fputs("memcached: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(1);
}

/* Options that were accepted but change nothing here, reported once the
 * whole command line (and so the final -v level) is known.  Every string
 * is static (table entries), so nothing is copied. */
#define NOTES_MAX 32
static struct {
    const char *prefix; /* "-o " or "--" */
    const char *name;
    const char *why;
} notes[NOTES_MAX];
static int n_notes;

static void add_note(const char *prefix, const char *name, const char *why)
{
    if (n_notes == NOTES_MAX)
        return;
    notes[n_notes].prefix = prefix;
    notes[n_notes].name = name;
    notes[n_notes].why = why;
    n_notes++;
}

/* ---- Value parsers (each returns false on any malformed value) ---- */

/* An integer token within [min, max]. */
static bool parse_int_range(const char *s, long long min, long long max,
                            long long *out)
{
    int64_t v;
    if (!safe_strtoll(s, &v) || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A finite number within [min, max] (DBL_MIN as min means "above 0"). */
static bool parse_double_range(const char *s, double min, double max,
                               double *out)
{
    double v;
    if (!safe_strtod(s, &v) || !(v >= min && v <= max))
        return false;
    *out = v;
    return true;
}

/* A size: a positive integer counted in `unit` bytes, or followed by one
 * of the suffixes in `suffixes` (k, m, g, t: powers of 1024 bytes). */
static bool parse_size(const char *s, uint64_t unit, const char *suffixes,
                       uint64_t *out)
{
    char num[32];
    size_t len = strlen(s);
    if (len == 0 || len >= sizeof(num))
        return false;
    memcpy(num, s, len + 1);
    const char *suffix = strchr(suffixes, num[len - 1]);
    if (suffix != NULL) {
        static const char units[] = "kKmMgGtT";
        const char *u = strchr(units, *suffix);
        unit = 1ULL << (10 * (1 + (u - units) / 2));
        num[len - 1] = '\0';
    }
    uint64_t v;
    if (!safe_strtoull(num, &v) || v == 0 || v > UINT64_MAX / unit)
        return false;
    *out = v * unit;
    return true;
}

/* ---- The -o keys ---- */

enum sub_kind {
    SUB_ON,     /* a flag: the bool field becomes true */
    SUB_OFF,    /* a flag: the bool field becomes false */
    SUB_INT,    /* an integer in [min, max] into an int field */
    SUB_U32,    /* an integer in [min, max] into a uint32_t field */
    SUB_DOUBLE, /* a number in [min, max] into a double field */
    SUB_TEXT,   /* any non-empty text (only for ignored keys) */
    SUB_HASH,   /* jenkins, murmur3 or xxh3 */
};

/* One -o key.  Fields left out of an entry are 0/NULL, which always means
 * "nothing": no field, no scaling, no implied value, unlisted in -h... */
struct sub_option {
    const char *name;
    enum sub_kind kind;
    void *field;            /* where the value goes; NULL: nowhere */
    double min, max;        /* inclusive range of the value as written */
    uint32_t scale;         /* stored = written * scale (KB: 1024); 0 = 1 */
    const char *implied;    /* value assumed when none is given */
    void (*then)(void);     /* further effect once the value is stored */
    const char *expect;     /* for errors: what a valid value looks like */
    const char *arg;        /* -h: the value's name (NULL for flags) */
    const char *help;       /* -h text (wrapped when printed); NULL: unlisted */
    const char *ignored;    /* -v note when the key changes nothing here */
};

/* -o temporary_ttl also turns the temporary LRU on, as in memcached. */
static void enable_temp_lru(void)
{
    settings.temp_lru = true;
}

/* Chunked items off: any item up to a whole slab page is one chunk. */
static void unchunk_items(void)
{
    settings.slab_chunk_size_max = settings.slab_page_size;
}

/* -o no_modern: memcached 1.4's defaults, as memcached 1.6 applies them
 * (observed with "stats settings"): no fast maxconns, no slab page mover,
 * unchunked items, no crawler, jenkins hash, no segmented LRU. */
static void apply_no_modern(void)
{
    settings.maxconns_fast = false;
    settings.slab_reassign = false;
    settings.slab_automove = 0;
    unchunk_items();
    settings.lru_crawler = false;
    settings.hash_algorithm = HASH_JENKINS;
    settings.lru_maintainer_thread = false;
}

#define NOEXT "ignored, this server has no external storage (extstore)"
#define NOLOG "ignored, this server has no live log (watch) buffers"
#define NOSANDBOX "ignored, no system call sandbox is installed here"
#define NOINLINE "ignored, answers are never stored inline in items here"

/* Shorthands for the common shapes of an entry. */
#define FLAG_ON(f) .kind = SUB_ON, .field = &settings.f
#define FLAG_OFF(f) .kind = SUB_OFF, .field = &settings.f
#define COUNT_U32 .kind = SUB_U32, .min = 0, .max = UINT32_MAX
#define EXT_U32(key) \
    {.name = key, COUNT_U32, .expect = "a non-negative integer", .ignored = NOEXT}

static const struct sub_option sub_options[] = {
    {.name = "maxconns_fast", FLAG_ON(maxconns_fast),
     .help = "close a new connection at once when -c is reached (default)"},
    {.name = "no_maxconns_fast", FLAG_OFF(maxconns_fast)},
    {.name = "hashpower", .kind = SUB_INT, .field = &settings.hashpower_init,
     .min = 12, .max = 32, .expect = "an integer from 12 to 32", .arg = "<n>",
     .help = "start the hash table with 2^n buckets; it grows by itself "
             "(default: 16; see \"STAT hash_power_level\")"},
    {.name = "tail_repair_time", .kind = SUB_INT, .field = &settings.tail_repair_time,
     .min = 10, .max = INT32_MAX, .expect = "seconds, at least 10", .arg = "<sec>",
     .help = "free an LRU tail item still referenced after this long "
             "(default: off; dangerous)"},
    {.name = "hash_algorithm", .kind = SUB_HASH, .expect = "jenkins, murmur3 or xxh3",
     .arg = "<name>",
     .help = "key hash: murmur3 (default), jenkins, or xxh3 (which falls back to "
             "murmur3 here)"},
    {.name = "no_lru_crawler", FLAG_OFF(lru_crawler),
     .help = "no background LRU crawler (it reclaims expired items)"},
    {.name = "lru_crawler", FLAG_ON(lru_crawler)},
    {.name = "lru_crawler_sleep", .kind = SUB_INT, .field = &settings.lru_crawler_sleep,
     .min = 0, .max = 1000000, .expect = "microseconds, from 0 to 1000000", .arg = "<usec>",
     .help = "crawler pause between items (default: 100)"},
    {.name = "lru_crawler_tocrawl", COUNT_U32, .field = &settings.lru_crawler_tocrawl,
     .expect = "a non-negative 32-bit integer", .arg = "<n>",
     .help = "items the crawler checks per class per run (default: 0, no limit)"},
    {.name = "read_buf_mem_limit", COUNT_U32, .field = &settings.read_buf_mem_limit,
     .expect = "megabytes, a non-negative integer", .arg = "<mb>",
     .help = "cap on memory for connection buffers (default: 0, no cap)"},
    {.name = "no_lru_maintainer", FLAG_OFF(lru_maintainer_thread),
     .help = "one plain LRU per class instead of hot/warm/cold"},
    {.name = "lru_maintainer", FLAG_ON(lru_maintainer_thread)},
    {.name = "hot_lru_pct", .kind = SUB_INT, .field = &settings.hot_lru_pct,
     .min = 1, .max = 79, .expect = "a percentage from 1 to 79", .arg = "<pct>",
     .help = "share of a class's memory for the hot LRU (default: 20)"},
    {.name = "warm_lru_pct", .kind = SUB_INT, .field = &settings.warm_lru_pct,
     .min = 1, .max = 79, .expect = "a percentage from 1 to 79", .arg = "<pct>",
     .help = "share for the warm LRU (default: 40; hot + warm <= 80)"},
    {.name = "hot_max_factor", .kind = SUB_DOUBLE, .field = &settings.hot_max_factor,
     .min = DBL_MIN, .max = DBL_MAX, .expect = "a number above 0", .arg = "<x>",
     .help = "items idle longer than x times the cold age leave the hot LRU "
             "(default: 0.20)"},
    {.name = "warm_max_factor", .kind = SUB_DOUBLE, .field = &settings.warm_max_factor,
     .min = DBL_MIN, .max = DBL_MAX, .expect = "a number above 0", .arg = "<x>",
     .help = "the same for the warm LRU (default: 2.00)"},
    {.name = "temporary_ttl", COUNT_U32, .field = &settings.temporary_ttl,
     .then = enable_temp_lru, .expect = "seconds, a non-negative integer", .arg = "<sec>",
     .help = "items with a shorter TTL go to a temporary LRU and are never evicted "
             "(default: 61)"},
    {.name = "idle_timeout", .kind = SUB_INT, .field = &settings.idle_timeout,
     .min = 0, .max = INT32_MAX, .expect = "seconds, a non-negative integer", .arg = "<sec>",
     .help = "close connections idle this long (default: 0, never)"},
    {.name = "slab_chunk_max", .kind = SUB_INT, .field = &settings.slab_chunk_size_max,
     .min = 1, .max = 1024, .scale = 1024, .expect = "kilobytes, from 1 to 1024",
     .arg = "<kb>",
     .help = "largest slab chunk; bigger items are stored whole outside the slabs "
             "(default: 512)"},
    {.name = "watcher_logbuf_size", .kind = SUB_U32, .field = &settings.watcher_logbuf_size,
     .min = 0, .max = UINT32_MAX / 1024, .scale = 1024,
     .expect = "kilobytes, a non-negative integer", .arg = "<kb>",
     .help = "per-watcher log buffer (default: 256)", .ignored = NOLOG},
    {.name = "worker_logbuf_size", .kind = SUB_U32, .field = &settings.worker_logbuf_size,
     .min = 1, .max = UINT32_MAX / 1024, .scale = 1024,
     .expect = "kilobytes, a positive integer", .arg = "<kb>",
     .help = "per-worker log buffer (default: 64)", .ignored = NOLOG},
    {.name = "track_sizes", FLAG_ON(track_sizes),
     .help = "keep the histogram behind \"stats sizes\""},
    {.name = "no_hashexpand", FLAG_OFF(hash_expand),
     .help = "never grow the hash table (dangerous)"},
    {.name = "modern", .kind = SUB_ON, .help = "today's defaults (they already are)",
     .ignored = "nothing to do, the defaults are already the modern ones"},
    {.name = "no_modern", .kind = SUB_ON, .then = apply_no_modern,
     .help = "memcached 1.4's defaults: jenkins hash, plain LRU, no crawler, no slab "
             "page mover"},
    {.name = "sock_cookie_id", COUNT_U32, .expect = "a non-negative integer", .arg = "<id>",
     .help = "accepted for compatibility (socket mark for firewalls)",
     .ignored = "ignored, sockets are not marked here"},
    {.name = "slab_reassign", FLAG_ON(slab_reassign),
     .help = "allow moving slab pages between classes (default)"},
    {.name = "no_slab_reassign", FLAG_OFF(slab_reassign)},
    {.name = "slab_automove", .kind = SUB_INT, .field = &settings.slab_automove,
     .min = 0, .max = 2, .implied = "1", .expect = "0, 1 or 2", .arg = "<0|1|2>",
     .help = "automatic page moves: 0 off, 1 gentle (default), 2 eager"},
    {.name = "slab_automove_ratio", .kind = SUB_DOUBLE, .field = &settings.slab_automove_ratio,
     .min = DBL_MIN, .max = 1 - DBL_EPSILON, .expect = "a number above 0 and below 1",
     .arg = "<x>", .help = "age ratio that triggers a page move (default: 0.80)"},
    {.name = "slab_automove_window", .kind = SUB_U32,
     .field = &settings.slab_automove_window, .min = 3, .max = UINT32_MAX,
     .expect = "an integer above 2", .arg = "<n>",
     .help = "number of samples it looks at (default: 30)"},
    {.name = "slab_automove_freeratio", .kind = SUB_DOUBLE,
     .field = &settings.slab_automove_freeratio, .min = 0, .max = 1 - DBL_EPSILON,
     .expect = "a number from 0 to below 1", .arg = "<x>",
     .help = "share of memory kept free as a buffer (default: 0.010)"},
    {.name = "drop_privileges", FLAG_ON(drop_privileges), .ignored = NOSANDBOX},
    {.name = "no_drop_privileges", FLAG_OFF(drop_privileges), .ignored = NOSANDBOX},
    {.name = "relaxed_privileges", FLAG_ON(relaxed_privileges), .ignored = NOSANDBOX},
    {.name = "inline_ascii_resp", .kind = SUB_ON, .ignored = NOINLINE},
    {.name = "no_inline_ascii_resp", .kind = SUB_ON, .ignored = NOINLINE},
    {.name = "no_chunked_items", .kind = SUB_ON, .then = unchunk_items},
    {.name = "resp_obj_mem_limit", COUNT_U32, .expect = "a non-negative integer",
     .ignored = "ignored, deprecated in memcached 1.6 (see read_buf_mem_limit)"},
    {.name = "ext_path", .kind = SUB_TEXT, .expect = "a file and size, e.g. /d/file:5G",
     .arg = "<file:size>",
     .help = "external storage file: accepted and ignored, as are all ext_* keys "
             "(ext_page_size, ext_wbuf_size, ext_threads, ext_item_size, ext_item_age, "
             "ext_low_ttl, ext_drop_unread, ext_recache_rate, ext_compact_under, "
             "ext_drop_under, ext_max_frag, ext_max_sleep)",
     .ignored = NOEXT},
    EXT_U32("ext_page_size"),
    EXT_U32("ext_wbuf_size"),
    EXT_U32("ext_threads"),
    EXT_U32("ext_item_size"),
    EXT_U32("ext_item_age"),
    EXT_U32("ext_low_ttl"),
    EXT_U32("ext_recache_rate"),
    EXT_U32("ext_compact_under"),
    EXT_U32("ext_drop_under"),
    EXT_U32("ext_max_sleep"),
    {.name = "ext_max_frag", .kind = SUB_DOUBLE, .min = 0, .max = 1,
     .expect = "a number from 0 to 1", .ignored = NOEXT},
    {.name = "ext_drop_unread", .kind = SUB_ON, .ignored = NOEXT},
    {.name = "repl_tombstone_ttl", .kind = SUB_U32, .field = &settings.repl_tombstone_ttl,
     .min = 1, .max = REALTIME_MAXDELTA, .expect = "seconds, from 1 to 2592000",
     .arg = "<sec>",
     .help = "replication: how long a deleted key's tombstone is kept, so that an "
             "older copy from the peer cannot bring the key back (default: 3600)"},
    {.name = "repl_drain_timeout", .kind = SUB_INT, .field = &settings.repl_drain_timeout,
     .min = 0, .max = 3600, .expect = "seconds, from 0 to 3600", .arg = "<sec>",
     .help = "replication: at shutdown, wait this long without progress for the peer "
             "to acknowledge what was sent (default: 10)"},
};

#define N_SUB_OPTIONS (sizeof(sub_options) / sizeof(sub_options[0]))

static const struct sub_option *find_sub_option(const char *name)
{
    for (size_t i = 0; i < N_SUB_OPTIONS; i++)
        if (strcmp(sub_options[i].name, name) == 0)
            return &sub_options[i];
    return NULL;
}

/* hash_algorithm: xxh3 is not built, so it falls back to murmur3 (the
 * hash only has to be the same for every key of this process). */
static bool set_hash_algorithm(const char *val)
{
    if (strcmp(val, "murmur3") == 0) {
        settings.hash_algorithm = HASH_MURMUR3;
    } else if (strcmp(val, "jenkins") == 0) {
        settings.hash_algorithm = HASH_JENKINS;
    } else if (strcmp(val, "xxh3") == 0) {
        settings.hash_algorithm = HASH_MURMUR3;
        add_note("-o ", "hash_algorithm=xxh3",
                 "xxh3 is not built here, murmur3 is used instead");
    } else {
        return false;
    }
    return true;
}

/* Store one "key" or "key=value" of -o (val is NULL without '='). */
static void apply_sub_option(const char *key, const char *val)
{
    const struct sub_option *so = find_sub_option(key);
    if (so == NULL)
        usage_error("unknown -o key '%s' (memcached -h lists them)", key);
    bool is_flag = so->kind == SUB_ON || so->kind == SUB_OFF;
    if (is_flag && val != NULL)
        usage_error("-o %s takes no value (got '%s')", key, val);
    if (!is_flag && val == NULL)
        val = so->implied;
    if (!is_flag && val == NULL)
        usage_error("-o %s needs a value: %s=<%s>", key, key, so->expect);

    long long i = 0;
    double d = 0;
    bool ok = true;
    uint64_t scale = so->scale ? so->scale : 1;
    switch (so->kind) {
    case SUB_ON:
    case SUB_OFF:
        if (so->field)
            *(bool *)so->field = so->kind == SUB_ON;
        break;
    case SUB_INT:
        ok = parse_int_range(val, (long long)so->min, (long long)so->max, &i);
        if (ok && so->field)
            *(int *)so->field = (int)((uint64_t)i * scale);
        break;
    case SUB_U32:
        ok = parse_int_range(val, (long long)so->min, (long long)so->max, &i);
        if (ok && so->field)
            *(uint32_t *)so->field = (uint32_t)((uint64_t)i * scale);
        break;
    case SUB_DOUBLE:
        ok = parse_double_range(val, so->min, so->max, &d);
        if (ok && so->field)
            *(double *)so->field = d;
        break;
    case SUB_TEXT:
        ok = *val != '\0';
        break;
    case SUB_HASH:
        ok = set_hash_algorithm(val);
        break;
    }
    if (!ok)
        usage_error("invalid value '%s' for -o %s (%s)", val, key, so->expect);
    if (so->then)
        so->then();
    if (so->ignored)
        add_note("-o ", so->name, so->ignored);
}

/* -o a,b=1,c: split a copy of the list and apply each key in order (later
 * keys override earlier ones, as in memcached). */
static void parse_sub_options(const char *list)
{
    char *copy = strdup(list);
    if (copy == NULL)
        usage_error("out of memory reading -o");
    char *rest = copy;
    while (*list != '\0' && rest != NULL) {
        char *key = strsep(&rest, ",");
        if (*key == '\0')
            usage_error("empty key in -o '%s'", list);
        char *eq = strchr(key, '=');
        if (eq != NULL)
            *eq++ = '\0';
        apply_sub_option(key, eq);
    }
    free(copy);
}

/* ---- The options ---- */

/* Long-only options get codes above any letter. */
enum {
    OPT_DISABLE_DUMPING = 256,
};

struct option_spec {
    int key;           /* the short letter, or an OPT_ code (long only) */
    const char *name;  /* long name, or NULL */
    int has_arg;       /* getopt_long's; optional arguments exist only in
                        * the long form (so that -vv means -v -v) */
    const char *arg;   /* -h: the argument's name, NULL for flags */
    const char *help;  /* -h text (wrapped when printed); NULL: unlisted alias */
};

static const struct option_spec options[] = {
    {'p', "port", required_argument, "<num>",
     "TCP port to listen on, 0 for none (default: 11211)"},
    {'U', "udp-port", required_argument, "<num>",
     "UDP port to listen on, 0 for none (default: 0)"},
    {'s', "unix-socket", required_argument, "<file>",
     "listen on this UNIX socket, and not on TCP or UDP"},
    {'a', "unix-mask", required_argument, "<mask>",
     "permissions of the UNIX socket, octal (default: 700)"},
    {'A', "enable-shutdown", no_argument, NULL,
     "accept the \"shutdown\" command"},
    {'l', "listen", required_argument, "<addr>",
     "where to listen (default: every interface): a comma "
     "separated list of host, host:port or [ipv6]:port; "
     "may be repeated"},
    {'d', "daemon", no_argument, NULL, "run in the background"},
    {'r', "enable-coredumps", no_argument, NULL,
     "raise the core file size limit to its maximum"},
    {'u', "user", required_argument, "<user>",
     "switch to this user at start-up (needed as root)"},
    {'m', "memory-limit", required_argument, "<num>",
     "memory for items in megabytes, or with a k/m/g/t "
     "suffix (default: 64)"},
    {'M', "disable-evictions", no_argument, NULL,
     "when memory is full, refuse new items with an error "
     "instead of evicting old ones"},
    {'c', "conn-limit", required_argument, "<num>",
     "most simultaneous connections (default: 1024)"},
    {'k', "lock-memory", no_argument, NULL,
     "keep all of the process's memory in RAM (mlockall)"},
    {'v', "verbose", optional_argument, "<level>",
     "log errors and warnings; -vv also logs every command "
     "and answer, -vvv internal state changes"},
    {'h', "help", no_argument, NULL, "print this help and exit"},
    {'i', "license", no_argument, NULL, "print the licence and exit"},
    {'V', "version", no_argument, NULL, "print the version and exit"},
    {'P', "pidfile", required_argument, "<file>",
     "write the process id to this file (removed at exit)"},
    {'f', "slab-growth-factor", required_argument, "<num>",
     "size ratio of consecutive slab classes, above 1 "
     "(default: 1.25)"},
    {'n', "slab-min-size", required_argument, "<bytes>",
     "room for key, value and flags in the smallest chunk "
     "(default: 48)"},
    {'L', "enable-largepages", no_argument, NULL,
     "use large memory pages where the system offers them"},
    {'D', NULL, required_argument, "<char>",
     "the character that ends a key's prefix for per-prefix "
     "stats (default: ':'); giving it also turns those stats "
     "on, as \"stats detail on\" does"},
    {'t', "threads", required_argument, "<num>",
     "worker threads (default: 4)"},
    {'R', "max-reqs-per-event", required_argument, "<num>",
     "requests served from one connection before the others "
     "get a turn (default: 20)"},
    {'C', "disable-cas", no_argument, NULL, "no CAS unique values"},
    {'b', "listen-backlog", required_argument, "<num>",
     "queue length for connections not yet accepted "
     "(default: 1024)"},
    {'B', "protocol", required_argument, "<name>",
     "client protocol: ascii, binary or auto (default: auto)"},
    {'I', "max-item-size", required_argument, "<size>",
     "largest item, bytes or with a k/m suffix, from 1k to "
     "1024m and at most half of -m (default: 1m)"},
    {'F', "disable-flush-all", no_argument, NULL, "refuse the flush_all command"},
    {OPT_DISABLE_DUMPING, "disable-dumping", no_argument, NULL,
     "refuse stats cachedump, stats detail dump and "
     "lru_crawler metadump (memcached's -X: here -X is the "
     "replication port)"},
    {'W', "disable-watch", no_argument, NULL,
     "accepted for compatibility (there is no watch command)"},
    {'Y', "auth-file", required_argument, "<file>",
     "memcached's ASCII authentication: not supported, so it "
     "is refused rather than silently left open"},
    {'e', "memory-file", required_argument, "<file>",
     "accepted for compatibility: the cache always starts "
     "empty (memcached's restartable cache file)"},
    {'N', "napi-ids", required_argument, "<num>",
     "accepted for compatibility (NAPI id count)"},
    {'N', "napi_ids", required_argument, NULL, NULL},
    {'o', "extended", required_argument, "<list>",
     "extended settings, a comma separated list of keys "
     "and key=value pairs among these (most flags also "
     "have a no_ form that turns them off):"},
    {'x', "repl-peer", required_argument, "<host[:port]>",
     "replicate with this peer (replication is off without)"},
    {'X', "repl-port", required_argument, "<port>",
     "TCP port of the replication link (default: 11212)"},
    {'q', "repl-queue", required_argument, "<num>",
     "most replication entries waiting for the peer "
     "(default: 1000000)"},
};

#define N_OPTIONS (sizeof(options) / sizeof(options[0]))

/* ---- -h, -V, -i ---- */

#define HELP_COLUMN 30
#define HELP_WIDTH 79

/* Print help text from HELP_COLUMN, after a left part of `used`
 * characters, wrapping words so that no line passes HELP_WIDTH. */
static void print_help_text(int used, const char *text)
{
    if (used >= HELP_COLUMN) {
        putchar('\n');
        used = 0;
    }
    printf("%*s", HELP_COLUMN - used, "");
    int col = HELP_COLUMN;
    const char *p = text;
    while (*p != '\0') {
        int word = (int)strcspn(p, " ");
        if (col > HELP_COLUMN && col + 1 + word > HELP_WIDTH) {
            printf("\n%*s", HELP_COLUMN, "");
            col = HELP_COLUMN;
        } else if (col > HELP_COLUMN) {
            putchar(' ');
            col++;
        }
        printf("%.*s", word, p);
        col += word;
        p += word;
        p += strspn(p, " ");
    }
    putchar('\n');
}

static void print_help(void)
{
    printf("memcached %s\n", MC_PROTOCOL_VERSION);
    printf("%s %s\n", PACKAGE_NAME, PACKAGE_VERSION);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_spec *o = &options[i];
        if (o->help == NULL)
            continue;
        char left[64];
        int n;
        const char *eq = o->has_arg == optional_argument ? "[=" : "=";
        const char *close = o->has_arg == optional_argument ? "]" : "";
        if (o->name == NULL)
            n = snprintf(left, sizeof(left), "-%c %s", o->key, o->arg);
        else if (o->key > 255)
            n = snprintf(left, sizeof(left), "    --%s", o->name);
        else if (o->arg != NULL)
            n = snprintf(left, sizeof(left), "-%c, --%s%s%s%s", o->key, o->name, eq,
                         o->arg, close);
        else
            n = snprintf(left, sizeof(left), "-%c, --%s", o->key, o->name);
        fputs(left, stdout);
        print_help_text(n, o->help);
        if (o->key != 'o')
            continue;
        for (size_t j = 0; j < N_SUB_OPTIONS; j++) {
            const struct sub_option *so = &sub_options[j];
            if (so->help == NULL)
                continue;
            n = so->arg ? printf("    %s=%s", so->name, so->arg) : printf("    %s", so->name);
            print_help_text(n, so->help);
        }
    }
}

static void print_license(void)
{
    printf("%s %s (memcached protocol %s)\n\n", PACKAGE_NAME, PACKAGE_VERSION,
           MC_PROTOCOL_VERSION);
    fputs("Copyright (c) 2026 the memcachedrep authors.  All rights reserved.\n"
          "\n"
          "Redistribution and use in source and binary forms, with or without\n"
          "modification, are permitted provided that the following conditions are\n"
          "met:\n"
          "\n"
          "1. Redistributions of source code must retain the above copyright\n"
          "   notice, this list of conditions and the following disclaimer.\n"
          "2. Redistributions in binary form must reproduce the above copyright\n"
          "   notice, this list of conditions and the following disclaimer in the\n"
          "   documentation and/or other materials provided with the distribution.\n"
          "3. Neither the name of the copyright holder nor the names of its\n"
          "   contributors may be used to endorse or promote products derived from\n"
          "   this software without specific prior written permission.\n"
          "\n"
          "THIS SOFTWARE IS PROVIDED BY THE COPYRIGHT HOLDERS AND CONTRIBUTORS \"AS\n"
          "IS\" AND ANY EXPRESS OR IMPLIED WARRANTIES, INCLUDING, BUT NOT LIMITED\n"
          "TO, THE IMPLIED WARRANTIES OF MERCHANTABILITY AND FITNESS FOR A\n"
          "PARTICULAR PURPOSE ARE DISCLAIMED. IN NO EVENT SHALL THE COPYRIGHT\n"
          "HOLDER OR CONTRIBUTORS BE LIABLE FOR ANY DIRECT, INDIRECT, INCIDENTAL,\n"
          "SPECIAL, EXEMPLARY, OR CONSEQUENTIAL DAMAGES (INCLUDING, BUT NOT LIMITED\n"
          "TO, PROCUREMENT OF SUBSTITUTE GOODS OR SERVICES; LOSS OF USE, DATA, OR\n"
          "PROFITS; OR BUSINESS INTERRUPTION) HOWEVER CAUSED AND ON ANY THEORY OF\n"
          "LIABILITY, WHETHER IN CONTRACT, STRICT LIABILITY, OR TORT (INCLUDING\n"
          "NEGLIGENCE OR OTHERWISE) ARISING IN ANY WAY OUT OF THE USE OF THIS\n"
          "SOFTWARE, EVEN IF ADVISED OF THE POSSIBILITY OF SUCH DAMAGE.\n"
          "\n",
          stdout);
    printf("This program uses libevent %s (https://libevent.org), which its\n"
           "authors, Niels Provos and Nick Mathewson among them, distribute under\n"
           "the 3-clause BSD licence; see the copyright file of your libevent\n"
           "package for its full text.\n",
           event_get_version());
}

/* ---- Per-option parsing ---- */

/* How an error names the option: its short form when it has one. */
static const char *option_label(const struct option_spec *o)
{
    static char label[40];
    if (o->key <= 255)
        snprintf(label, sizeof(label), "-%c", o->key);
    else
        snprintf(label, sizeof(label), "--%s", o->name);
    return label;
}

static void __attribute__((noreturn))
bad_value(const struct option_spec *o, const char *val, const char *expect)
{
    usage_error("invalid value '%s' for %s (%s)", val, option_label(o), expect);
}

/* An integer argument in [min, max], or exit with expect's description. */
static int int_arg(const struct option_spec *o, const char *val, long long min,
                   long long max, const char *expect)
{
    long long v;
    if (!parse_int_range(val, min, max, &v))
        bad_value(o, val, expect);
    return (int)v;
}

/* -l may be repeated: the lists are joined with commas. */
static void add_listen(const char *val)
{
    if (*val == '\0')
        usage_error("-l needs an address");
    if (settings.inter == NULL) {
        settings.inter = strdup(val);
    } else {
        size_t a = strlen(settings.inter), b = strlen(val);
        char *joined = realloc(settings.inter, a + 1 + b + 1);
        if (joined != NULL) {
            joined[a] = ',';
            memcpy(joined + a + 1, val, b + 1);
        } else {
            free(settings.inter);
        }
        settings.inter = joined;
    }
    if (settings.inter == NULL)
        usage_error("out of memory reading -l");
}

/* -x host[:port], [ipv6]:port or a bare IPv6 address.  Only the form is
 * checked here; replication resolves the name when it starts. */
static void set_repl_peer(const struct option_spec *o, const char *val)
{
    static const char expect[] = "host, host:port, [ipv6]:port or an IPv6 address";
    const char *port = NULL;
    const char *colon = strchr(val, ':');
    if (val[0] == '[') {
        const char *close = strchr(val, ']');
        if (close == NULL || close == val + 1 || (close[1] != '\0' && close[1] != ':'))
            bad_value(o, val, expect);
        if (close[1] == ':')
            port = close + 2;
    } else if (colon != NULL && strchr(colon + 1, ':') != NULL) {
        /* a bare IPv6 address: the port is -X */
    } else {
        if (val[0] == '\0' || colon == val)
            bad_value(o, val, expect);
        if (colon != NULL)
            port = colon + 1;
    }
    long long p;
    if (port != NULL && !parse_int_range(port, 1, 65535, &p))
        bad_value(o, val, "the port must be from 1 to 65535");
    settings.repl_peer = (char *)val;
}

/* Apply one option; val is its argument (NULL for flags). */
static void apply_option(const struct option_spec *o, const char *val)
{
    uint64_t size;
    double d;
    switch (o->key) {
    case 'p':
        settings.port = int_arg(o, val, 0, 65535, "a port from 0 to 65535");
        break;
    case 'U':
        settings.udpport = int_arg(o, val, 0, 65535, "a port from 0 to 65535");
        break;
    case 's':
        if (*val == '\0')
            bad_value(o, val, "a path");
        settings.socketpath = (char *)val;
        break;
    case 'a': {
        char *end;
        long mode = strtol(val, &end, 8);
        if (val[0] < '0' || val[0] > '7' || *end != '\0' || mode > 0777)
            bad_value(o, val, "octal permissions from 0 to 777");
        settings.access = (int)mode;
        break;
    }
    case 'A':
        settings.shutdown_command = true;
        break;
    case 'l':
        add_listen(val);
        break;
    case 'd':
        settings.daemonize = true;
        break;
    case 'r':
        settings.maxcore = true;
        break;
    case 'u':
        if (*val == '\0')
            bad_value(o, val, "a user name");
        settings.username = (char *)val;
        break;
    case 'm':
        if (!parse_size(val, 1024 * 1024, "kKmMgGtT", &size) || size > SIZE_MAX / 2)
            bad_value(o, val, "megabytes, a positive number, or with a k/m/g/t suffix");
        settings.maxbytes = (size_t)size;
        break;
    case 'M':
        settings.evict_to_free = false;
        break;
    case 'c':
        settings.maxconns = int_arg(o, val, 1, INT32_MAX, "a positive number");
        break;
    case 'k':
        settings.lock_memory = true;
        break;
    case 'v':
        if (val == NULL)
            settings.verbose++;
        else
            settings.verbose = int_arg(o, val, 0, 3, "a level from 0 to 3");
        break;
    case 'h':
        print_help();
        exit(0);
    case 'i':
        print_license();
        exit(0);
    case 'V':
        printf("memcached %s\n", MC_PROTOCOL_VERSION);
        exit(0);
    case 'P':
        if (*val == '\0')
            bad_value(o, val, "a path");
        settings.pid_file = (char *)val;
        break;
    case 'f':
        if (!parse_double_range(val, 1 + DBL_EPSILON, DBL_MAX, &d))
            bad_value(o, val, "a number greater than 1");
        settings.factor = d;
        break;
    case 'n':
        settings.chunk_size = int_arg(o, val, 1, INT32_MAX, "bytes, a positive number");
        break;
    case 'L':
        settings.use_large_pages = true;
        break;
    case 'D':
        if (val[0] == '\0' || val[1] != '\0')
            bad_value(o, val, "a single character");
        settings.prefix_delimiter = val[0];
        settings.detail_enabled = true;
        break;
    case 't':
        settings.num_threads = int_arg(o, val, 1, INT32_MAX, "a positive number");
        break;
    case 'R':
        settings.reqs_per_event = int_arg(o, val, 1, INT32_MAX, "a positive number");
        break;
    case 'C':
        settings.use_cas = false;
        break;
    case 'b':
        settings.backlog = int_arg(o, val, 0, INT32_MAX, "a non-negative number");
        break;
    case 'B':
        if (strcmp(val, "ascii") == 0)
            settings.binding_protocol = PROTO_ASCII;
        else if (strcmp(val, "binary") == 0)
            settings.binding_protocol = PROTO_BINARY;
        else if (strcmp(val, "auto") == 0)
            settings.binding_protocol = PROTO_NEGOTIATE;
        else
            bad_value(o, val, "ascii, binary or auto");
        break;
    case 'I':
        if (!parse_size(val, 1, "kKmM", &size) || size < ITEM_SIZE_MAX_LOWER_LIMIT ||
            size > ITEM_SIZE_MAX_UPPER_LIMIT)
            bad_value(o, val, "bytes or with a k/m suffix, from 1k to 1024m");
        settings.item_size_max = (int)size;
        break;
    case 'F':
        settings.flush_enabled = false;
        break;
    case OPT_DISABLE_DUMPING:
        settings.dump_enabled = false;
        break;
    case 'W':
        add_note("--", o->name, "ignored, this server has no watch command");
        break;
    case 'Y':
        usage_error("-Y: ASCII authentication is not supported by this server; "
                    "refusing to run without it");
    case 'e':
        if (*val == '\0')
            bad_value(o, val, "a path");
        add_note("--", o->name,
                 "ignored, the cache is not restartable here and starts empty");
        break;
    case 'N':
        int_arg(o, val, 1, INT32_MAX, "a positive number");
        add_note("--", "napi-ids", "ignored, connections are not grouped by NAPI id here");
        break;
    case 'o':
        parse_sub_options(val);
        break;
    case 'x':
        set_repl_peer(o, val);
        break;
    case 'X':
        settings.repl_port = int_arg(o, val, 1, 65535, "a port from 1 to 65535");
        break;
    case 'q':
        settings.repl_queue_max = int_arg(o, val, 1, INT32_MAX, "a positive number");
        break;
    }
}

/* ---- Checks across options ---- */

/* Rules that involve several options, in memcached's terms. */
static void check_combination(void)
{
    if ((size_t)settings.item_size_max > settings.maxbytes / 2)
        usage_error("-I %d bytes is more than half of -m (%zu bytes); raise -m or lower -I",
                    settings.item_size_max, settings.maxbytes);
    if (settings.slab_chunk_size_max > settings.item_size_max)
        usage_error("the largest slab chunk (%d bytes) is larger than -I (%d bytes); "
                    "lower it with -o slab_chunk_max=<kb>",
                    settings.slab_chunk_size_max, settings.item_size_max);
    if (settings.item_size_max % settings.slab_chunk_size_max != 0)
        usage_error("-I (%d bytes) must be a multiple of the largest slab chunk "
                    "(%d bytes, -o slab_chunk_max)",
                    settings.item_size_max, settings.slab_chunk_size_max);
    if ((size_t)settings.chunk_size + sizeof(item) > (size_t)settings.slab_chunk_size_max)
        usage_error("-n %d and an item header (%zu bytes) do not fit in the largest slab "
                    "chunk (%d bytes)",
                    settings.chunk_size, sizeof(item), settings.slab_chunk_size_max);
    if (settings.hot_lru_pct + settings.warm_lru_pct > 80)
        usage_error("-o hot_lru_pct (%d) + warm_lru_pct (%d) must not exceed 80",
                    settings.hot_lru_pct, settings.warm_lru_pct);
    if (settings.num_threads > THREADS_WARN)
        fprintf(stderr, "memcached: warning: %d worker threads (-t) is more than %d; "
                        "the number of CPU cores or fewer is recommended\n",
                settings.num_threads, THREADS_WARN);
}

/* getopt_long's tables, generated from `options`.  A leading ':' makes a
 * missing argument come back as ':' so we word the error ourselves. */
static void build_getopt_tables(char *shortopts, struct option *longopts)
{
    char *s = shortopts;
    *s++ = ':';
    *s = '\0';
    size_t nl = 0;
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const struct option_spec *o = &options[i];
        if (o->key <= 255 && strchr(shortopts, o->key) == NULL) {
            *s++ = (char)o->key;
            if (o->has_arg == required_argument)
                *s++ = ':';
            *s = '\0';
        }
        if (o->name != NULL)
            longopts[nl++] = (struct option){o->name, o->has_arg, NULL, o->key};
    }
    longopts[nl] = (struct option){NULL, 0, NULL, 0};
}

static const struct option_spec *find_option(int key)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].key == key)
            return &options[i];
    return NULL;
}

void options_parse(int argc, char **argv)
{
    char shortopts[2 * N_OPTIONS + 2];
    struct option longopts[N_OPTIONS + 1];
    build_getopt_tables(shortopts, longopts);

    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const char *given = argv[optind - 1];
        if (c == '?') {
            /* optopt is 0 for an unknown long option, the letter of an
             * unknown short one, or the key of a known long option that
             * was given a value it does not take. */
            const struct option_spec *o = find_option(optopt);
            if (optopt == 0)
                usage_error("unknown option '%s' (memcached -h lists them)", given);
            if (o == NULL || o->has_arg != no_argument)
                usage_error("unknown option '-%c' (memcached -h lists them)", optopt);
            usage_error("option '--%s' takes no value", o->name);
        }
        if (c == ':') {
            /* The option ended its argv element, so `given` is it. */
            if (optopt > 0 && optopt <= 255 && given[0] == '-' && given[1] != '-')
                usage_error("option '-%c' needs a value", optopt);
            usage_error("option '%s' needs a value", given);
        }
        apply_option(find_option(c), optarg);
    }
    if (optind < argc)
        usage_error("unexpected argument '%s' (options start with '-')", argv[optind]);

    check_combination();

    for (int i = 0; i < n_notes; i++)
        mc_log(1, "memcached: %s%s: %s", notes[i].prefix,
               notes[i].name, notes[i].why);
}

const char *options_protocol_name(enum protocol p)
{
    switch (p) {
    case PROTO_ASCII:
        return "ascii";
    case PROTO_BINARY:
        return "binary";
    case PROTO_NEGOTIATE:
        break;
    }
    return "auto-negotiate";
}
