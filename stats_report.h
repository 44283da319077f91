/*
 * stats_report.h - the reports behind "stats" (general), "stats settings"
 * and "stats detail" (per key-prefix counters), shared by every protocol.
 * The engine's own reports (slabs, items, sizes, cachedump) are in
 * storage.h and the connection list ("stats conns") in conn.h.
 */
#ifndef STATS_REPORT_H
#define STATS_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "stats.h"

/* "stats": every general line, in memcached's names and order. */
void stats_report_general(add_stat_fn add, void *ctx);

/* "stats settings". */
void stats_report_settings(add_stat_fn add, void *ctx);

/* Per-prefix counters ("stats detail on|off|dump", -D).  The record
 * functions cost nothing unless settings.detail_enabled; they are called by
 * the protocol layer once per key. */
void stats_prefix_record_get(const char *key, size_t nkey, bool hit);
void stats_prefix_record_set(const char *key, size_t nkey);
void stats_prefix_record_delete(const char *key, size_t nkey);
void stats_prefix_clear(void);
/* "stats detail dump": lines "PREFIX <p> get <n> hit <n> set <n> del <n>\r\n"
 * followed by "END\r\n", in a malloc'd buffer the caller frees (NULL when
 * out of memory); *len gets its length. */
char *stats_prefix_dump(size_t *len);

#endif /* STATS_REPORT_H */
