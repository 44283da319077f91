/*
 * hash.h - the key hash used by the hash table and the item lock table.
 *
 * Two algorithms, chosen once at start-up from settings.hash_algorithm:
 * murmur3 (32-bit, the default) and jenkins (Bob Jenkins' lookup3).  xxh3 is
 * not built in; the options module reports that and falls back to murmur3,
 * and hash_init() does the same if asked for it.
 *
 * The hash of a key must be the same for the whole life of the process: the
 * item locks, the hash buckets and the expansion thread all derive their
 * index from it.  hash_key is written once by hash_init() before any other
 * thread starts and only read afterwards.
 */
#ifndef HASH_H
#define HASH_H

#include <stddef.h>
#include <stdint.h>

#include "memcached.h"

/* Hash of len bytes at key with the algorithm chosen by hash_init(). */
extern uint32_t (*hash_key)(const void *key, size_t len);

/* Select the algorithm (xxh3 falls back to murmur3). */
void hash_init(enum hash_algorithm algorithm);

/* The two algorithms, seed 0, exposed for the unit test's known vectors. */
uint32_t hash_murmur3(const void *key, size_t len);
uint32_t hash_jenkins(const void *key, size_t len);

#endif /* HASH_H */
