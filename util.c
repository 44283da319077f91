/*
 * util.c - logging and strict number parsing shared by every module.
 *
 * The parsers accept exactly what memcached accepts for numeric tokens: an
 * optional sign where the type allows one, decimal digits, nothing after.
 * They never touch *out on failure, so callers can keep a default.
 * No state, no locks.
 */
#include "util.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mc_logf(const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    size_t len = strlen(line);
    if (len == 0 || line[len - 1] != '\n')
        fprintf(stderr, "%s\n", line);
    else
        fputs(line, stderr);
}

/* strtoull() skips leading blanks and accepts "-1" (wrapping it); a
 * memcached number token must start with a digit. */
static bool digits_first(const char *s)
{
    return s != NULL && isdigit((unsigned char)s[0]);
}

bool safe_strtoull(const char *s, uint64_t *out)
{
    if (!digits_first(s))
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool safe_strtoul(const char *s, uint32_t *out)
{
    uint64_t v;
    if (!safe_strtoull(s, &v) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

bool safe_strtoll(const char *s, int64_t *out)
{
    if (s == NULL || !(isdigit((unsigned char)s[0]) ||
                       ((s[0] == '-' || s[0] == '+') &&
                        isdigit((unsigned char)s[1]))))
        return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return false;
    *out = v;
    return true;
}

bool safe_strtol(const char *s, int32_t *out)
{
    int64_t v;
    if (!safe_strtoll(s, &v) || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

bool safe_strtod(const char *s, double *out)
{
    if (s == NULL || *s == '\0' || isspace((unsigned char)s[0]))
        return false;
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno == ERANGE || *end != '\0')
        return false;
    *out = v;
    return true;
}
