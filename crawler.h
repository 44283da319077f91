/*
 * crawler.h - the LRU crawler: a background thread that walks the LRUs and
 * reclaims expired and flushed items, plus the "lru_crawler" entry points
 * that storage.c exposes (crawl, metadump, enable/disable).
 */
#ifndef CRAWLER_H
#define CRAWLER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

/* Start the crawler thread when settings.lru_crawler is set. */
bool crawler_init(void);

/* Stop the thread (an unfinished crawl is abandoned cleanly). */
void crawler_shutdown(void);

/* Queue a crawl of "all" or a comma list of class ids (1..63).
 * 0 = queued, -1 = bad class list, -2 = a crawl is already queued or
 * running, -3 = the crawler is disabled. */
int crawler_crawl(const char *classes);

/* One line per live item of the listed classes ("all", "hash" or a comma
 * list), each with its trailing "\n", through line(); -1 on a bad list.
 * Runs in the caller's thread, walking the hash table; line() is called
 * with no engine lock held and may block. */
int crawler_metadump(const char *classes, line_fn line, void *ctx);

/* Start (true unless already running or the thread can't be created) or
 * stop (always true) the crawler thread; keeps settings.lru_crawler. */
bool crawler_enable(bool on);

/* Crawls started since start-up or the last crawler_stats_reset(). */
uint64_t crawler_starts(void);
void crawler_stats_reset(void);

#endif /* CRAWLER_H */
