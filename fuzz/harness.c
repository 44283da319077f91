/*
 * fuzz/harness.c - the start-up and input framing the fuzz harnesses
 * share (contracts in harness.h).
 */
#include "harness.h"

#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "../clock.h"
#include "../memcached.h"
#include "../options.h"
#include "../storage.h"

static size_t start_maxbytes;

void fuzz_start_daemon(char **argv)
{
    int argc = 0;
    while (argv[argc])
        argc++;
    /* A client or peer that goes away must not kill the process. */
    signal(SIGPIPE, SIG_IGN);
    options_defaults();
    options_parse(argc, argv);
    settings.verbose = 0;
    clock_init();
    if (!storage_init())
        fuzz_fail(__FILE__, __LINE__, "the storage engine did not start");
    start_maxbytes = settings.maxbytes;
}

void fuzz_begin_input(void)
{
    clock_tick();
    settings.verbose = 0;
    if (settings.maxbytes != start_maxbytes)
        storage_set_memlimit(start_maxbytes);
}

size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **stream,
                  size_t *len)
{
    if (size == 0) {
        *stream = data;
        *len = 0;
        return 1;
    }
    *stream = data + 1;
    *len = size - 1;
    size_t piece = data[0] != 0 ? data[0] : *len;
    size_t shortest = (*len + FUZZ_MAX_PIECES - 1) / FUZZ_MAX_PIECES;
    if (piece < shortest)
        piece = shortest;
    return piece > 0 ? piece : 1;
}

void fuzz_fail(const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "%s:%d: fuzz check failed: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}
