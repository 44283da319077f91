/*
 * hash.c - murmur3 (x86, 32-bit) and jenkins lookup3 ("hashlittle") key
 * hashes, both with seed 0.
 *
 * Both read the key byte by byte and assemble little-endian words, so the
 * result does not depend on the host's byte order or on the key's
 * alignment (keys sit at odd offsets inside items and read buffers).
 * murmur3's body is an inline function of hash.h (hash_murmur3_inline), so
 * the hot paths (hash_key_inline) do not call through hash_key for it.
 * No state besides the hash_key pointer, which is set before threads start.
 */
#include "hash.h"

uint32_t (*hash_key)(const void *key, size_t len) = hash_murmur3;

/* ---- murmur3 ---- */

uint32_t hash_murmur3(const void *key, size_t len)
{
    return hash_murmur3_inline(key, len);
}

/* ---- jenkins lookup3 ---- */

/* Reversibly mix three words (done once per 12-byte block). */
#define JENKINS_MIX(a, b, c)                                                 \
    do {                                                                     \
        a -= c; a ^= hash_rotl32(c, 4);  c += b;                             \
        b -= a; b ^= hash_rotl32(a, 6);  a += c;                             \
        c -= b; c ^= hash_rotl32(b, 8);  b += a;                             \
        a -= c; a ^= hash_rotl32(c, 16); c += b;                             \
        b -= a; b ^= hash_rotl32(a, 19); a += c;                             \
        c -= b; c ^= hash_rotl32(b, 4);  b += a;                             \
    } while (0)

/* Final mixing of the three words into c. */
#define JENKINS_FINAL(a, b, c)                                               \
    do {                                                                     \
        c ^= b; c -= hash_rotl32(b, 14);                                     \
        a ^= c; a -= hash_rotl32(c, 11);                                     \
        b ^= a; b -= hash_rotl32(a, 25);                                     \
        c ^= b; c -= hash_rotl32(b, 16);                                     \
        a ^= c; a -= hash_rotl32(c, 4);                                      \
        b ^= a; b -= hash_rotl32(a, 14);                                     \
        c ^= b; c -= hash_rotl32(b, 24);                                     \
    } while (0)

uint32_t hash_jenkins(const void *key, size_t len)
{
    const unsigned char *k = key;
    uint32_t a, b, c;
    a = b = c = 0xdeadbeefu + (uint32_t)len;

    while (len > 12) {
        a += hash_load_le32(k);
        b += hash_load_le32(k + 4);
        c += hash_load_le32(k + 8);
        JENKINS_MIX(a, b, c);
        len -= 12;
        k += 12;
    }

    /* The last 1..12 bytes; an empty tail means the state is final. */
    switch (len) {
    case 12: c += (uint32_t)k[11] << 24; /* fall through */
    case 11: c += (uint32_t)k[10] << 16; /* fall through */
    case 10: c += (uint32_t)k[9] << 8;   /* fall through */
    case 9:  c += k[8];                  /* fall through */
    case 8:  b += (uint32_t)k[7] << 24;  /* fall through */
    case 7:  b += (uint32_t)k[6] << 16;  /* fall through */
    case 6:  b += (uint32_t)k[5] << 8;   /* fall through */
    case 5:  b += k[4];                  /* fall through */
    case 4:  a += (uint32_t)k[3] << 24;  /* fall through */
    case 3:  a += (uint32_t)k[2] << 16;  /* fall through */
    case 2:  a += (uint32_t)k[1] << 8;   /* fall through */
    case 1:  a += k[0];
        break;
    case 0:
        return c;
    }
    JENKINS_FINAL(a, b, c);
    return c;
}

void hash_init(enum hash_algorithm algorithm)
{
    hash_key = algorithm == HASH_JENKINS ? hash_jenkins : hash_murmur3;
}
