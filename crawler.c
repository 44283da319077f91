/*
 * crawler.c - the LRU crawler thread and the "lru_crawler" commands.
 *
 * Owns: the crawler thread, its request queue (a bit set of LRUs to
 * crawl), the cursor it walks with, and the metadump formatter.
 *
 * A crawl walks each requested LRU from the tail (oldest) to the head
 * through items_crawl_step(): at most CRAWL_BATCH items per LRU lock hold,
 * then a pause of settings.lru_crawler_sleep microseconds, so requests
 * only ever wait for one short batch.  Expired and flushed items are
 * unlinked and freed (crawler_reclaimed), every item looked at is counted
 * (crawler_items_checked), at most settings.lru_crawler_tocrawl per LRU
 * (0 = no limit).  Besides crawls asked for with "lru_crawler crawl", the
 * thread crawls every LRU by itself, waiting between two such passes ten
 * times as long as the last one took, and at least AUTOCRAWL_MIN seconds.
 *
 * The crawler's place in an LRU is a cursor: a bare item header with
 * ITEM_CURSOR set, which every other LRU walk skips.
 *
 * Class ids in requests are 1..MAX_SLAB_CLASSES-1 as in memcached (an id
 * above the largest class is valid and empty).  Large items have their own
 * LRU but are reported as part of the largest class, so asking for the
 * largest class also crawls (or dumps) them.
 *
 * Metadump does not need the thread: it walks the hash table in the
 * caller's thread (assoc_walk), formatting each item with a reference held
 * and no lock, so writing the dump to a slow client blocks nobody else.
 *
 * Locking: crawler.lock guards the request, busy flag and thread state;
 * it is never held while calling into items.c.
 */
#include "config.h"

#include "crawler.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "assoc.h"
#include "clock.h"
#include "items.h"
#include "slabs.h"
#include "util.h"

#define CRAWL_BATCH 50
#define AUTOCRAWL_MIN 10

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t tid;
    bool running;
    bool stop;          /* also read without the lock while crawling */
    bool busy;          /* a crawl is queued or running */
    uint64_t request;   /* LRU ids to crawl (bit 0: large items) */
    uint64_t starts;
} crawler = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .cond = PTHREAD_COND_INITIALIZER,
};

/* The crawler's place in the LRU it is walking. */
static item cursor;

#define LRU_BIT(id) ((uint64_t)1 << (id))

/* Every LRU that may hold items. */
static uint64_t all_lrus(void)
{
    uint64_t mask = LRU_BIT(SLABS_LARGE_CLASS);
    for (unsigned id = 1; id <= slabs_largest(); id++)
        mask |= LRU_BIT(id);
    return mask;
}

/* Parse "all" or "1,2,3" into a set of LRU ids; false on a bad list. */
static bool parse_classes(const char *s, uint64_t *mask)
{
    if (strcmp(s, "all") == 0) {
        *mask = all_lrus();
        return true;
    }
    uint64_t m = 0;
    const char *p = s;
    for (;;) {
        char tok[16];
        size_t len = strcspn(p, ",");
        uint32_t id;
        if (len == 0 || len >= sizeof(tok))
            return false;
        memcpy(tok, p, len);
        tok[len] = '\0';
        if (!safe_strtoul(tok, &id) || id < 1 || id >= MAX_SLAB_CLASSES)
            return false;
        m |= LRU_BIT(id);
        if (id == slabs_largest())
            m |= LRU_BIT(SLABS_LARGE_CLASS);
        if (p[len] == '\0')
            break;
        p += len + 1;
    }
    *mask = m;
    return true;
}

static bool stopping(void)
{
    return __atomic_load_n(&crawler.stop, __ATOMIC_RELAXED);
}

/* Walk one LRU from tail to head, reclaiming what is dead. */
static void crawl_lru(unsigned id)
{
    uint32_t budget = settings.lru_crawler_tocrawl ? settings.lru_crawler_tocrawl
                                                   : UINT32_MAX;
    cursor.slabs_clsid = (uint8_t)id;
    items_crawl_begin(id, &cursor);
    while (items_crawl_step(id, &cursor, CRAWL_BATCH, &budget)) {
        if (stopping()) {
            items_crawl_end(id, &cursor);
            return;
        }
        int pause = __atomic_load_n(&settings.lru_crawler_sleep,
                                    __ATOMIC_RELAXED);
        if (pause > 0) {
            struct timespec nap = {pause / 1000000, (pause % 1000000) * 1000L};
            nanosleep(&nap, NULL);
        }
    }
}

static void *crawler_main(void *arg)
{
    pthread_setname_np(pthread_self(), "mc-crawler");
    time_t next_auto = time(NULL) + AUTOCRAWL_MIN;
    pthread_mutex_lock(&crawler.lock);
    while (!crawler.stop) {
        if (crawler.request == 0) {
            struct timespec until = {next_auto, 0};
            if (pthread_cond_timedwait(&crawler.cond, &crawler.lock,
                                       &until) == ETIMEDOUT &&
                crawler.request == 0 && !crawler.busy) {
                crawler.request = all_lrus();
                crawler.busy = true;
            }
            continue;
        }
        uint64_t mask = crawler.request;
        crawler.request = 0;
        crawler.starts++;
        pthread_mutex_unlock(&crawler.lock);

        time_t began = time(NULL);
        for (unsigned id = 0; id < MAX_SLAB_CLASSES && !stopping(); id++) {
            if (mask & LRU_BIT(id))
                crawl_lru(id);
        }
        time_t took = time(NULL) - began;
        next_auto = time(NULL) +
                    (took * 10 > AUTOCRAWL_MIN ? took * 10 : AUTOCRAWL_MIN);

        pthread_mutex_lock(&crawler.lock);
        crawler.busy = false;
    }
    pthread_mutex_unlock(&crawler.lock);
    return NULL;
}

/* Start the thread (crawler.lock held). */
static bool start_thread(void)
{
    crawler.stop = false;
    crawler.request = 0;
    crawler.busy = false;
    cursor.it_flags = ITEM_CURSOR;
    int rc = pthread_create(&crawler.tid, NULL, crawler_main, NULL);
    if (rc != 0) {
        mc_logf("Can't start the LRU crawler thread: %s", strerror(rc));
        return false;
    }
    crawler.running = true;
    return true;
}

/* Stop and join the thread if it runs. */
static void stop_thread(void)
{
    pthread_mutex_lock(&crawler.lock);
    if (!crawler.running) {
        pthread_mutex_unlock(&crawler.lock);
        return;
    }
    __atomic_store_n(&crawler.stop, true, __ATOMIC_RELAXED);
    pthread_cond_signal(&crawler.cond);
    pthread_mutex_unlock(&crawler.lock);
    pthread_join(crawler.tid, NULL);
    pthread_mutex_lock(&crawler.lock);
    crawler.running = false;
    crawler.busy = false;
    pthread_mutex_unlock(&crawler.lock);
}

bool crawler_init(void)
{
    if (!settings.lru_crawler)
        return true;
    pthread_mutex_lock(&crawler.lock);
    bool ok = start_thread();
    pthread_mutex_unlock(&crawler.lock);
    return ok;
}

void crawler_shutdown(void)
{
    stop_thread();
}

bool crawler_enable(bool on)
{
    if (!on) {
        stop_thread();
        settings.lru_crawler = false;
        return true;
    }
    pthread_mutex_lock(&crawler.lock);
    bool ok = !crawler.running && start_thread();
    if (ok)
        settings.lru_crawler = true;
    pthread_mutex_unlock(&crawler.lock);
    return ok;
}

int crawler_crawl(const char *classes)
{
    uint64_t mask;
    if (!parse_classes(classes, &mask))
        return -1;
    int rc = 0;
    pthread_mutex_lock(&crawler.lock);
    if (!crawler.running) {
        rc = -3;
    } else if (crawler.busy) {
        rc = -2;
    } else {
        crawler.busy = true;
        crawler.request = mask;
        pthread_cond_signal(&crawler.cond);
    }
    pthread_mutex_unlock(&crawler.lock);
    return rc;
}

uint64_t crawler_starts(void)
{
    pthread_mutex_lock(&crawler.lock);
    uint64_t n = crawler.starts;
    pthread_mutex_unlock(&crawler.lock);
    return n;
}

void crawler_stats_reset(void)
{
    pthread_mutex_lock(&crawler.lock);
    crawler.starts = 0;
    pthread_mutex_unlock(&crawler.lock);
}

/* ---- metadump ---- */

struct metadump {
    uint64_t mask;
    line_fn line;
    void *ctx;
};

/* Percent-encode everything but RFC 3986's unreserved characters. */
static size_t url_encode(char *out, const char *in, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)in[i];
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
            (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == '_' ||
            ch == '~') {
            out[o++] = (char)ch;
        } else {
            out[o++] = '%';
            out[o++] = hex[ch >> 4];
            out[o++] = hex[ch & 15];
        }
    }
    out[o] = '\0';
    return o;
}

/* assoc_walk() callback (a reference held, so the item can't change):
 * one line for a live item of a wanted class. */
static void metadump_item(item *it, void *arg)
{
    struct metadump *d = arg;
    if (!(d->mask & LRU_BIT(it->slabs_clsid)) ||
        (item_flags(it) & ITEM_TOMBSTONE) ||
        item_liveness(it) != ITEM_STATE_LIVE)
        return;
    char key[KEY_MAX_LENGTH * 3 + 1];
    char buf[sizeof(key) + 160];
    url_encode(key, ITEM_key(it), it->nkey);
    unsigned cls = it->slabs_clsid == SLABS_LARGE_CLASS ? slabs_largest()
                                                        : it->slabs_clsid;
    int n = snprintf(buf, sizeof(buf),
                     "key=%s exp=%lld la=%lld cas=%llu fetch=%s cls=%u "
                     "size=%zu\n",
                     key,
                     it->exptime == 0 ? -1LL : (long long)rel_to_unix(it->exptime),
                     (long long)rel_to_unix(it->time),
                     (unsigned long long)it->cas,
                     (item_flags(it) & ITEM_FETCHED) ? "yes" : "no", cls,
                     ITEM_size(it));
    if (n > 0 && (size_t)n < sizeof(buf))
        d->line(buf, (size_t)n, d->ctx);
}

int crawler_metadump(const char *classes, line_fn line, void *ctx)
{
    struct metadump d = {.line = line, .ctx = ctx};
    if (strcmp(classes, "hash") == 0)
        d.mask = all_lrus();
    else if (!parse_classes(classes, &d.mask))
        return -1;
    if (!assoc_walk(metadump_item, &d))
        mc_logf("Out of memory during a metadump: the dump is incomplete");
    return 0;
}
