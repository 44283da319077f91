/*
 * fuzz/harness.h - what the fuzz harnesses (fuzz_proto.c, fuzz_repl.c)
 * share: starting the daemon's engine once inside the fuzzing process,
 * and the rule that cuts an input into the pieces that arrive as
 * separate reads.
 *
 * Every harness exports LLVMFuzzerTestOneInput(); it is linked either with
 * libFuzzer (clang -fsanitize=fuzzer, scripts/fuzz) or with driver.c, which
 * replays files through it (gcc, t/fuzz_corpus.t).
 */
#ifndef FUZZ_HARNESS_H
#define FUZZ_HARNESS_H

#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Start what main() starts before the network, on the given command line
 * (argv[0] first, NULL-terminated): settings (options.c, which exits on a
 * bad option), the clocks, the storage engine.  Call once; aborts the
 * process with a message when the engine can't start.  Logging stays off
 * (the fuzzed input could otherwise turn -vv on and flood stderr). */
void fuzz_start_daemon(char **argv);

/* Before each input: advance the seconds clock (expiry and LRU ages move
 * as in the daemon, whose timer ticks it) and undo the run-time changes a
 * previous input may have made through the protocol that would change
 * what later inputs do beyond the cache's contents: verbosity back to 0,
 * the memory limit back to the one of the command line. */
void fuzz_begin_input(void);

/* The input's framing, the same for every harness: the first byte is the
 * piece length (0 = everything in one piece), the rest is the byte stream
 * sent in pieces of that length, each one delivered and processed before
 * the next is sent.  A stream is cut into at most FUZZ_MAX_PIECES pieces
 * (a longer one gets longer pieces), so that a long input in one-byte
 * pieces does not cost thousands of round trips.  fuzz_split() returns the
 * stream and its length through *stream / *len and the piece length
 * (never 0). */
#define FUZZ_MAX_PIECES 64
size_t fuzz_split(const uint8_t *data, size_t size, const uint8_t **stream,
                  size_t *len);

/* Abort (a crash libFuzzer reports) with a message when cond is false:
 * the harnesses' sanity checks on what the daemon did. */
#define FUZZ_CHECK(cond, ...) \
    do { if (!(cond)) fuzz_fail(__FILE__, __LINE__, __VA_ARGS__); } while (0)
void fuzz_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 3, 4)));

#endif /* FUZZ_HARNESS_H */
