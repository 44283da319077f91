/*
 * stats.c - per-thread counter blocks, their sum, and "stats reset".
 *
 * Every thread that counts owns one struct thread_stats and registers it
 * once.  The registry is a list guarded by reg_lock, which is taken only to
 * register, aggregate and reset (never on the request path).  Reading other
 * threads' counters with relaxed loads gives each counter's recent value;
 * a report is not an atomic snapshot, as in memcached.
 *
 * Reset keeps `baseline` = the sum at reset time, subtracted from every
 * later aggregate, so no thread ever writes another thread's counters.
 */
#include "stats.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static struct thread_stats *registered;
static struct thread_stats baseline;

#define NCOUNTERS (offsetof(struct thread_stats, registered_next) / sizeof(uint64_t))

void stats_register(struct thread_stats *ts)
{
    pthread_mutex_lock(&reg_lock);
    ts->registered_next = registered;
    registered = ts;
    pthread_mutex_unlock(&reg_lock);
}

/* Sum the raw counters of every block (the struct is all uint64_t up to
 * registered_next, which a static assertion below keeps true). */
static void sum_raw(struct thread_stats *out)
{
    memset(out, 0, sizeof(*out));
    uint64_t *o = (uint64_t *)out;
    for (struct thread_stats *ts = registered; ts; ts = ts->registered_next) {
        const uint64_t *c = (const uint64_t *)ts;
        for (size_t i = 0; i < NCOUNTERS; i++)
            o[i] += __atomic_load_n(&c[i], __ATOMIC_RELAXED);
    }
}

_Static_assert(offsetof(struct thread_stats, registered_next) % sizeof(uint64_t) == 0,
               "thread_stats must hold only uint64_t counters before registered_next");

void stats_aggregate(struct thread_stats *out)
{
    pthread_mutex_lock(&reg_lock);
    sum_raw(out);
    uint64_t *o = (uint64_t *)out;
    const uint64_t *b = (const uint64_t *)&baseline;
    for (size_t i = 0; i < NCOUNTERS; i++)
        o[i] -= b[i];
    pthread_mutex_unlock(&reg_lock);
    out->registered_next = NULL;
}

void stats_reset(void)
{
    pthread_mutex_lock(&reg_lock);
    sum_raw(&baseline);
    pthread_mutex_unlock(&reg_lock);
}

void stats_addf(add_stat_fn add, void *ctx, const char *name, const char *fmt, ...)
{
    char val[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(val, sizeof(val), fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(val))
        n = sizeof(val) - 1;
    add(name, strlen(name), val, (size_t)n, ctx);
}
