/*
 * util.h - small helpers every module uses: verbose logging and strict
 * number parsing (the protocol and the command line both reject "12abc",
 * signs where none are allowed, and overflow).
 */
#ifndef UTIL_H
#define UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "memcached.h"

/* Verbose logging to stderr, only when settings.verbose >= level. */
#define mc_log(level, ...)                                                   \
    do {                                                                     \
        if (settings.verbose >= (level))                                     \
            mc_logf(__VA_ARGS__);                                            \
    } while (0)

/* One line to stderr; a newline is added when fmt has none. */
void mc_logf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Parse a whole NUL-terminated token.  Return false (leaving *out alone)
 * on an empty string, trailing garbage, overflow, or (for the unsigned
 * forms) a leading minus sign. */
bool safe_strtoull(const char *s, uint64_t *out);
bool safe_strtoul(const char *s, uint32_t *out);
bool safe_strtoll(const char *s, int64_t *out);
bool safe_strtol(const char *s, int32_t *out);
bool safe_strtod(const char *s, double *out);

#endif /* UTIL_H */
