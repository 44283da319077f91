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

static inline uint32_t hash_rotl32(uint32_t x, unsigned r)
{
    return (x << r) | (x >> (32 - r));
}

/* The little-endian 32-bit word at p (any alignment, any host order). */
static inline uint32_t hash_load_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
           (uint32_t)p[3] << 24;
}

/* One 32-bit murmur3 block scrambled before it is mixed into the state. */
static inline uint32_t hash_murmur3_scramble(uint32_t k)
{
    k *= 0xcc9e2d51u;
    k = hash_rotl32(k, 15);
    return k * 0x1b873593u;
}

/* murmur3 (x86, 32-bit, seed 0) of len bytes at key: hash_murmur3's body,
 * here so the hot callers can have it inlined. */
static inline uint32_t hash_murmur3_inline(const void *key, size_t len)
{
    const unsigned char *p = key;
    const unsigned char *blocks_end = p + (len & ~(size_t)3);
    uint32_t h = 0;

    for (; p != blocks_end; p += 4) {
        h ^= hash_murmur3_scramble(hash_load_le32(p));
        h = hash_rotl32(h, 13);
        h = h * 5 + 0xe6546b64u;
    }

    /* The 1 to 3 trailing bytes form one last, partial block. */
    if (len & 3) {
        uint32_t k = 0;
        switch (len & 3) {
        case 3:
            k |= (uint32_t)p[2] << 16;
            /* fall through */
        case 2:
            k |= (uint32_t)p[1] << 8;
            /* fall through */
        default:
            k |= p[0];
        }
        h ^= hash_murmur3_scramble(k);
    }

    /* Finalization: avalanche every input bit over the result. */
    h ^= (uint32_t)len;
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

/* hash_key(key, len) for the hot paths (a pipelined batch hashes every
 * key once): the default murmur3 is inlined instead of called through the
 * pointer; jenkins still goes through it. */
static inline uint32_t hash_key_inline(const void *key, size_t len)
{
    if (hash_key == hash_murmur3)
        return hash_murmur3_inline(key, len);
    return hash_key(key, len);
}

#endif /* HASH_H */
