/*
 * proto_text.c - memcached's text protocol (doc: memcached-protocol.txt):
 * the command table, the parser, and every classic command with
 * memcached's exact answers.
 *
 * A command line is split on spaces only (a tab or control byte is part of
 * a key, as in memcached); leading spaces are skipped, one "\r" before the
 * "\n" is dropped.  Each command lists how many tokens it accepts (its name
 * included; parse_store() knows the storage commands'); any other count is
 * "ERROR", memcached's answer.  The command table is the one place a
 * command is named; the meta commands (mg ms md ma mn me) are in it too
 * and are run by proto_meta.c, which shares this file's tokenizer.
 * Numbers are formatted by item_fmt_u64() (items.h); a get's VALUE line
 * usually needs none: the item holds it pre-formatted.
 *
 * The parser never allocates: tokens point into the connection's read
 * buffer, numbers are parsed in place, and answers are formatted straight
 * into the connection's output blocks.  Retrieval commands are not
 * tokenized at all: their keys are walked in the line, and a multi-get
 * whose answer reaches the output bound (conn_out_full) pauses with the
 * rest of its keys in proto_text_state and resumes after the answer so far
 * is written, so a get of thousands of large values streams.  Keys are
 * checked before anything is answered, so a bad key answers only
 * CLIENT_ERROR (memcached 1.6.18 also discards the answers of the earlier
 * commands of the same batch; we keep them).
 *
 * "noreply" (the last token of the commands that take it) suppresses every
 * line the command would answer, errors included, as memcached 1.6 does.
 *
 * Deliberate differences from memcached 1.6.18, which follow the 1.6.45
 * documentation instead: flags above 2^32-1 are rejected ("CLIENT_ERROR
 * bad command line format") rather than truncated; a value length above
 * 2^31-3 is rejected rather than wrapped; "version" answers 1.6.45.
 *
 * Threads: runs on the connection's worker thread; shared state is only
 * reached through the storage, stats and settings APIs.
 */
#include "proto_text.h"

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "assoc.h"
#include "clock.h"
#include "conn.h"
#include "hash.h"
#include "memcached.h"
#include "proto_meta.h"
#include "stats_report.h"
#include "thread.h"
#include "util.h"

/* memcached's rule for a line still missing its "\n": past this many bytes
 * only a get/gets (after at most LEADING_SPACE_MAX spaces) may go on; any
 * other line closes the connection. */
#define LINE_WITHOUT_NEWLINE_MAX 2048
#define LEADING_SPACE_MAX 100
/* Tokens kept for a non-retrieval command (more than any command takes). */
#define MAX_TOKENS 24
/* Longest "VALUE <key> <flags> <bytes> <cas>\r\n" line. */
#define VALUE_LINE_MAX (KEY_MAX_LENGTH + 64)

#define TEXT_GET_CAS 0x01   /* gets, gats: answer the CAS unique */
#define TEXT_GET_TOUCH 0x02 /* gat, gats: first argument is an exptime */

/* ---- Tokens and numbers ---- */

#define BYTES_01 0x0101010101010101ULL
#define BYTES_0A 0x0a0a0a0a0a0a0a0aULL
#define BYTES_20 0x2020202020202020ULL
#define BYTES_80 0x8080808080808080ULL

/* The bytes of the word w equal to the byte repeated in pattern, flagged
 * (0x80 in their byte).  In x = w ^ pattern such a byte is zero; (x -
 * 0x01..) & ~x & 0x80.. flags it, and can only flag wrongly a byte above
 * a true zero, so the lowest flag is the first match (bytes are loaded
 * little-endian), also in the OR of two such masks. */
static inline uint64_t word_matches(uint64_t w, uint64_t pattern)
{
    uint64_t x = w ^ pattern;
    return (x - BYTES_01) & ~x & BYTES_80;
}

/* The index of the first ' ' (with nl: ' ' or '\n') among the 8 bytes at
 * s, or 8. */
static inline unsigned stop_in_word(const char *s, bool nl)
{
    uint64_t w;
    memcpy(&w, s, 8);
#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
    w = __builtin_bswap64(w);
#endif
    uint64_t m = word_matches(w, BYTES_20);
    if (nl)
        m |= word_matches(w, BYTES_0A);
    return m ? (unsigned)__builtin_ctzll(m) / 8 : 8;
}

/* The first ' ' (with nl: ' ' or '\n') of [s, end), or end.  Keys are
 * walked by the prefetch scan and again when they run, so this looks at 8
 * bytes at a time, never reading outside [s, end): the last partial word
 * is read as the 8 bytes ending at end (those overlapping what was
 * already checked hold no match). */
static inline char *find_stop(char *s, char *end, bool nl)
{
    if (end - s < 8) {
        while (s < end && *s != ' ' && !(nl && *s == '\n'))
            s++;
        return s;
    }
    for (; end - s >= 8; s += 8) {
        unsigned i = stop_in_word(s, nl);
        if (i < 8)
            return s + i;
    }
    if (s == end)
        return end;
    return end - 8 + stop_in_word(end - 8, nl);
}

/* The first ' ' of [s, end), or end. */
static inline char *find_space(char *s, char *end)
{
    return find_stop(s, end, false);
}

/* proto_next_token's body, inlined into this file's scans. */
static inline bool next_token(char **p, char *end, struct proto_token *t)
{
    char *s = *p;
    while (s < end && *s == ' ')
        s++;
    if (s == end) {
        *p = s;
        return false;
    }
    char *e = find_space(s, end);
    t->s = s;
    t->len = (size_t)(e - s);
    *p = e;
    return true;
}

bool proto_next_token(char **p, char *end, struct proto_token *t)
{
    return next_token(p, end, t);
}

/* Split [p, end) into at most max tokens (the rest of a longer line is
 * ignored: max is more than any fixed-size command accepts). */
static int tokenize(char *p, char *end, struct proto_token *tok, int max)
{
    int n = 0;
    while (n < max && next_token(&p, end, &tok[n]))
        n++;
    return n;
}

/* [p, end) holds no token. */
static inline bool only_spaces(const char *p, const char *end)
{
    while (p < end && *p == ' ')
        p++;
    return p == end;
}

/* a and b hold the same n bytes.  For command words and the like (a few
 * bytes): a loop costs less than a memcmp call. */
static inline bool bytes_eq(const char *a, const char *b, size_t n)
{
    size_t k = 0;
    while (k < n && a[k] == b[k])
        k++;
    return k == n;
}

static inline bool tok_is(const struct proto_token *t, const char *word)
{
    size_t len = strlen(word);
    return t->len == len && bytes_eq(t->s, word, len);
}

/* Terminate the token in place for the APIs that take a C string.  Safe:
 * every token is followed, inside the buffer, by at least the line's
 * "\n", which has already been consumed. */
static const char *tok_cstr(struct proto_token *t)
{
    t->s[t->len] = '\0';
    return t->s;
}

/* tok_digits() for any token but plain digits short enough not to
 * overflow. */
static bool tok_digits_slow(const struct proto_token *t, uint64_t *out, bool *neg)
{
    const char *p = t->s, *end = t->s + t->len;
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (neg) {
        *neg = p < end && *p == '-';
        if (*neg)
            p++;
    }
    if (p < end && *p == '+' && !(neg && *neg))
        p++;
    if (p == end || !isdigit((unsigned char)*p))
        return false;
    uint64_t v = 0;
    for (; p < end && isdigit((unsigned char)*p); p++) {
        unsigned d = (unsigned)(*p - '0');
        if (v > (UINT64_MAX - d) / 10)
            return false;
        v = v * 10 + d;
    }
    while (p < end && isspace((unsigned char)*p))
        p++;
    if (p != end)
        return false;
    *out = v;
    return true;
}

/* Parse a decimal token the way memcached's strtoull-based helpers do:
 * blanks around it and a leading '+' are allowed, nothing else, and a
 * value that overflows 64 bits is refused.  neg (may be NULL) accepts and
 * reports a leading '-'.  The usual token, 1 to 19 plain digits (which
 * can't overflow), is parsed inline: a storage command has three numbers. */
static inline bool tok_digits(const struct proto_token *t, uint64_t *out, bool *neg)
{
    if (t->len - 1 < 19) {
        const char *p = t->s, *end = t->s + t->len;
        uint64_t v = 0;
        while (p < end && (unsigned)(*p - '0') <= 9)
            v = v * 10 + (unsigned)(*p++ - '0');
        if (p == end) {
            if (neg)
                *neg = false;
            *out = v;
            return true;
        }
    }
    return tok_digits_slow(t, out, neg);
}

static bool tok_u64(const struct proto_token *t, uint64_t *out)
{
    return tok_digits(t, out, NULL);
}

static bool tok_u32(const struct proto_token *t, uint32_t *out)
{
    uint64_t v;
    if (!tok_digits(t, &v, NULL) || v > UINT32_MAX)
        return false;
    *out = (uint32_t)v;
    return true;
}

static bool tok_i64(const struct proto_token *t, int64_t *out)
{
    uint64_t v;
    bool neg;
    if (!tok_digits(t, &v, &neg) || v > (uint64_t)INT64_MAX + neg)
        return false;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return true;
}

static bool tok_i32(const struct proto_token *t, int32_t *out)
{
    int64_t v;
    if (!tok_i64(t, &v) || v < INT32_MIN || v > INT32_MAX)
        return false;
    *out = (int32_t)v;
    return true;
}

/* ---- Answers ---- */

/* Queue one answer line (given without "\r\n"), unless the command said
 * noreply.  Returns PROTO_NEXT_CMD so a handler can end with it. */
static enum proto_next reply(struct conn *c, const char *s)
{
    if (c->text.noreply) {
        if (settings.verbose >= 2)
            mc_logf(">%d NOREPLY %s", c->fd, s);
        return PROTO_NEXT_CMD;
    }
    size_t len = strlen(s);
    char *p = conn_out_reserve(c, len + 2);
    if (p) {
        memcpy(p, s, len);
        p[len] = '\r';
        p[len + 1] = '\n';
        conn_out_commit(c, len + 2);
    }
    if (settings.verbose >= 2)
        mc_logf(">%d %s", c->fd, s);
    return PROTO_NEXT_CMD;
}

static enum proto_next reply_u64(struct conn *c, uint64_t v)
{
    char line[24];
    *item_fmt_u64(line, v) = '\0';
    return reply(c, line);
}

/* Values up to this size (with their "\r\n") are copied into the answer
 * text, right after their VALUE line, instead of being sent from item
 * memory: for a small value the copy costs less than an iovec of its own
 * (sendmsg pays per segment) and than keeping the item referenced until
 * the answer is written.  A pipelined batch of small gets then leaves as
 * one contiguous iovec. */
#define VALUE_COPY_MAX 512

/* Copy the n bytes of a key.  Keys of 8 to 16 bytes, the usual, move as
 * two (overlapping) words: the compiler would otherwise emit a rep movs,
 * slow to start for a dozen bytes. */
static inline void copy_key(char *dst, const char *src, size_t n)
{
    if (n >= 8 && n <= 16) {
        uint64_t head, tail;
        memcpy(&head, src, 8);
        memcpy(&tail, src + n - 8, 8);
        memcpy(dst, &head, 8);
        memcpy(dst + n - 8, &tail, 8);
    } else {
        memcpy(dst, src, n);
    }
}

/* The room value_text() may need. */
static inline size_t value_room(const item *it, bool copy, bool end)
{
    return VALUE_LINE_MAX + (copy ? it->nbytes : 0) + (end ? 5 : 0);
}

/* Write "VALUE <key> <flags> <bytes>[ <cas>]\r\n" at p, then, when
 * copy, the value itself, and when end, the retrieval's "END\r\n";
 * returns the end of what it wrote.  An item that holds its line's
 * " <flags> <bytes>\r\n" after the key (items.h) needs no number
 * formatted: without the CAS its line and a copied value are one copy of
 * its bytes. */
static inline char *value_text(char *p, const item *it, bool with_cas,
                               bool copy, bool end)
{
    memcpy(p, "VALUE ", 6);
    p += 6;
    if (it->nsuffix > 1 && !with_cas) {
        size_t n = (size_t)it->nkey + it->nsuffix + (copy ? it->nbytes : 0);
        memcpy(p, ITEM_key(it), n);
        p += n;
    } else {
        copy_key(p, ITEM_key(it), it->nkey);
        p += it->nkey;
        *p++ = ' ';
        p = item_fmt_u64(p, it->client_flags);
        *p++ = ' ';
        p = item_fmt_u64(p, it->nbytes - 2);
        if (with_cas) {
            *p++ = ' ';
            p = item_fmt_u64(p, it->cas);
        }
        *p++ = '\r';
        *p++ = '\n';
        if (copy) {
            memcpy(p, ITEM_data(it), it->nbytes);
            p += it->nbytes;
        }
    }
    if (end) {
        memcpy(p, "END\r\n", 5);
        p += 5;
    }
    return p;
}

/* The VALUE line of it, then the value itself, copied (small) or sent
 * from item memory; consumes the caller's reference on it.  When last
 * (the retrieval's last key) and the value is copied, the "END\r\n"
 * follows in the same stretch of output, and true is returned: the
 * common single-key get then queues its whole answer at once. */
static bool out_value(struct conn *c, item *it, bool with_cas, bool last)
{
    bool copy = it->nbytes <= VALUE_COPY_MAX;
    bool end = last && copy;
    char *start = conn_out_reserve(c, value_room(it, copy, end));
    if (!start) {
        item_release(it);
        return false;
    }
    conn_out_commit(c, (size_t)(value_text(start, it, with_cas, copy, end) - start));
    if (settings.verbose >= 2)
        mc_logf(">%d sending key %.*s", c->fd, (int)it->nkey, ITEM_key(it));
    if (copy)
        item_release(it);
    else
        conn_out_item(c, it);
    return end;
}

/* "STAT <name> <value>\r\n": the add_stat_fn of every report.  Pieces
 * queued back to back in a block merge into one iovec. */
static void add_stat(const char *name, size_t nlen, const char *val,
                     size_t vlen, void *ctx)
{
    struct conn *c = ctx;
    conn_out(c, "STAT ", 5);
    conn_out(c, name, nlen);
    conn_out(c, " ", 1);
    conn_out(c, val, vlen);
    conn_out(c, "\r\n", 2);
}

/* The last line of retrievals and reports. */
static enum proto_next out_end(struct conn *c)
{
    /* Reserved and copied here (a constant-size copy) rather than through
     * conn_out: every get ends with it. */
    char *p = conn_out_reserve(c, 5);
    if (p) {
        memcpy(p, "END\r\n", 5);
        conn_out_commit(c, 5);
    }
    return PROTO_NEXT_CMD;
}

/* A line of a dump (cachedump, metadump): sent as given, terminated with
 * "\r\n" (or "\n" for metadump, as memcached) unless it already is.  Long
 * dumps can't pause, so they are written out as they grow. */
static void out_dump_line(struct conn *c, const char *line, size_t len,
                          const char *eol)
{
    conn_out(c, line, len);
    if (len == 0 || line[len - 1] != '\n')
        conn_out(c, eol, strlen(eol));
    if (conn_out_full(c))
        conn_out_drain(c);
}

/* line_fn adapters for the engine's dumps. */
static void cachedump_line(const char *line, size_t len, void *ctx)
{
    out_dump_line(ctx, line, len, "\r\n");
}

static void metadump_line(const char *line, size_t len, void *ctx)
{
    out_dump_line(ctx, line, len, "\n");
}

/* The last token is "noreply": the command answers nothing. */
static void set_noreply(struct conn *c, const struct proto_token *tok, int ntok)
{
    c->text.noreply = tok_is(&tok[ntok - 1], "noreply");
}

/* ---- Prefetching a pipelined batch ---- */

/* Keys hashed per pass: enough requests of a pipelined batch to overlap
 * their cache misses, few enough that what is loaded stays cached until
 * the requests run. */
#define PREFETCH_KEYS PROTO_TEXT_PREFETCH_KEYS

/* What the prefetch scan makes of a command (its command table entry
 * says). */
enum scan_kind {
    SCAN_OTHER,     /* not understood: the scan stops */
    SCAN_GET,       /* get, gets: keys follow */
    SCAN_STORE,     /* a storage command: a key, numbers, then a value block */
};

/* How a line the scan read runs (proto_text_line.how). */
enum line_run {
    LINE_RUN,       /* through its command table entry (run()) */
    LINE_GET_ONE,   /* a get or gets of one valid key: get_one() */
    LINE_STORE,     /* a storage command, parsed: store_run() */
};

typedef enum proto_next (*text_tokens_fn)(struct conn *c, struct proto_token *t, int ntok, int arg);
typedef enum proto_next (*text_line_fn)(struct conn *c, char *rest, char *end, int arg);

struct text_command {
    const char *name;
    uint8_t len;
    int8_t min_tokens;      /* counts include the command name */
    int8_t max_tokens;      /* 0: any */
    uint8_t scan;           /* enum scan_kind */
    int arg;
    text_tokens_fn run;         /* gets the tokens, or */
    text_line_fn run_line;      /* gets the raw rest of the line (retrieval) */
};

static inline const struct text_command *lookup(const char *name, size_t len);
static inline const struct text_command *scan_command(char **p, char *end);
static inline bool scan_get_one(struct proto_text_state *st, unsigned n,
                                char *p, char *end, struct proto_text_line *l);

/* The connection is about to read: it may move its unprocessed input, or
 * give its buffer back to the thread and borrow another, so the end of
 * the scanned input (an address compared with rcurr, never read through)
 * would mean nothing.  Every path to a read passes here. */
static void forget_prefetch(struct conn *c)
{
    c->text.prefetched = NULL;
    c->text.nhashed = 0;
    c->text.nlines = 0;
}

/* hash_key() of the key [key, key + len) of the command running now,
 * computed, after passing over the scan's hashes of keys before it (the
 * scan's keys are in input order and commands run in that order). */
static uint32_t key_hash_slow(struct conn *c, const char *key, size_t len)
{
    struct proto_text_state *st = &c->text;
    while (st->hashed_rgen == c->rgen && st->hashed_next < st->nhashed) {
        unsigned i = st->hashed_next;
        if ((uintptr_t)st->hashed_key[i] > (uintptr_t)key)
            break;
        st->hashed_next++;
        if (st->hashed_key[i] == key && st->hashed_len[i] == len)
            return st->hashed_hv[i];
    }
    return hash_key_inline(key, len);
}

/* hash_key() of the key [key, key + len) of the command running now: the
 * prefetch scan's hash when it hashed this very key (same address and
 * length, and the connection's rgen says the input has not been
 * overwritten or moved since, so the bytes are the ones it hashed).  The
 * next unused hash is nearly always the one. */
static inline uint32_t key_hash(struct conn *c, const char *key, size_t len)
{
    struct proto_text_state *st = &c->text;
    unsigned i = st->hashed_next;
    if (i < st->nhashed && st->hashed_key[i] == key && st->hashed_len[i] == len &&
        st->hashed_rgen == c->rgen) {
        st->hashed_next = (uint8_t)(i + 1);
        return st->hashed_hv[i];
    }
    return key_hash_slow(c, key, len);
}

/* Hash the key [key, key + len) as the n-th key of the scan (kept for
 * key_hash()) and start loading its bucket. */
static inline void hash_ahead(struct proto_text_state *st, unsigned n,
                              const char *key, size_t len)
{
    st->hashed_key[n] = key;
    st->hashed_len[n] = (uint32_t)len;
    st->hashed_hv[n] = hash_key_inline(key, len);
    assoc_prefetch_bucket(st->hashed_hv[n]);
}

/* How a storage command line parsed (proto_text_store_args.status). */
enum store_parse {
    STORE_PARSE_OK,
    STORE_PARSE_ERROR,      /* a wrong number of tokens: "ERROR" */
    STORE_PARSE_BAD,        /* "CLIENT_ERROR bad command line format" */
};

/* parse_store() for any line: split into tokens, then each checked. */
static void parse_store_tokens(int op, char *p, char *end,
                               struct proto_text_store_args *a)
{
    int nargs = op == STORE_OP_CAS ? 5 : 4;
    struct proto_token t[7];
    int n = tokenize(p, end, t, nargs + 2);
    if (n < nargs || n > nargs + 1) {
        a->status = STORE_PARSE_ERROR;
        return;
    }
    a->noreply = tok_is(&t[n - 1], "noreply");
    int64_t vlen;
    uint64_t cas = 0;
    if (t[0].len > KEY_MAX_LENGTH || !tok_u32(&t[1], &a->flags) ||
        !tok_i64(&t[2], &a->exptime) || !tok_i64(&t[3], &vlen) ||
        vlen < 0 || vlen > INT_MAX - 2 ||
        (op == STORE_OP_CAS && !tok_u64(&t[4], &cas))) {
        a->status = STORE_PARSE_BAD;
        return;
    }
    a->key = t[0].s;
    a->nkey = (uint32_t)t[0].len;
    a->vlen = (int32_t)vlen;
    a->cas = cas;
    a->status = STORE_PARSE_OK;
}

/* Longest run of digits scan_digits() takes: below 10^18, no number it
 * reads can overflow an int64_t. */
#define SCAN_DIGITS_MAX 18

/* After the spaces at *p, a number of 1 to SCAN_DIGITS_MAX plain digits
 * that ends at a space or at end: its value in *out, *p moved past it.
 * False for anything else (nothing is consumed then). */
static inline bool scan_digits(char **p, char *end, uint64_t *out)
{
    char *s = *p;
    while (s < end && *s == ' ')
        s++;
    char *d = s;
    uint64_t v = 0;
    while (d < end && (unsigned)(*d - '0') <= 9)
        v = v * 10 + (unsigned)(*d++ - '0');
    if ((size_t)(d - s) - 1 >= SCAN_DIGITS_MAX || (d < end && *d != ' '))
        return false;
    *p = d;
    *out = v;
    return true;
}

/* parse_store() for the usual line, in one pass: a key of valid length,
 * plain numbers that are in range, at most one more token (noreply), each
 * number's value taken as its digits are walked.  False, leaving *a to
 * parse_store_tokens(), for every other line: what it accepts is exactly
 * what that walk would accept, with the same result. */
static inline bool parse_store_line(int op, char *p, char *end,
                                    struct proto_text_store_args *a)
{
    struct proto_token key, last;
    uint64_t flags, exptime, vlen, cas = 0;
    if (!next_token(&p, end, &key) || key.len > KEY_MAX_LENGTH ||
        !scan_digits(&p, end, &flags) || flags > UINT32_MAX ||
        !scan_digits(&p, end, &exptime) || !scan_digits(&p, end, &vlen) ||
        vlen > INT_MAX - 2 || (op == STORE_OP_CAS && !scan_digits(&p, end, &cas)))
        return false;
    a->noreply = false;
    if (next_token(&p, end, &last)) {
        if (!only_spaces(p, end))
            return false;
        a->noreply = tok_is(&last, "noreply");
    }
    a->key = key.s;
    a->nkey = (uint32_t)key.len;
    a->flags = (uint32_t)flags;
    a->exptime = (int64_t)exptime;
    a->vlen = (int32_t)vlen;
    a->cas = cas;
    a->status = STORE_PARSE_OK;
    return true;
}

/* Parse [p, end), the arguments of the storage command op, into *a:
 *   <key> <flags> <exptime> <bytes> [noreply]
 *   cas: <key> <flags> <exptime> <bytes> <cas unique> [noreply]
 * With a valid number of tokens, the last one saying "noreply" silences
 * the command, even if it stands where <bytes> should (the line is then
 * refused without a word). */
static void parse_store(int op, char *p, char *end, struct proto_text_store_args *a)
{
    if (!parse_store_line(op, p, end, a))
        parse_store_tokens(op, p, end, a);
}

/* Scan the complete commands buffered from rcurr on and ask the hash table
 * to load the buckets, then the items, of their keys (up to PREFETCH_KEYS),
 * before any of them runs: the lookups of a pipelined batch then find their
 * memory cached instead of each waiting for its own misses (most of the
 * CPU of a get was those misses).  Only get/gets and the storage commands
 * are understood; the scan stops at anything else, or at an incomplete
 * command.  Nothing here answers: a malformed line is answered when it
 * runs (a storage line from the verdict parse_store() gave here), and at
 * worst costs a useless prefetch.  The lines read, their commands and how
 * they run are kept (scanned_line()): running them does not search or
 * parse them again.  The usual line of a pipelined batch, a get of one
 * key, is read in one pass (scan_get_one()); any other is first searched
 * for its "\n", then walked. */
static void prefetch_ahead(struct conn *c)
{
    struct proto_text_state *st = &c->text;
    unsigned n = 0, nlines = 0;
    char *p = c->rcurr, *end = c->rcurr + c->rbytes;
    st->hashed_next = 0;
    st->lines_next = 0;
    st->hashed_rgen = c->rgen;
    while (n < PREFETCH_KEYS && nlines < PREFETCH_KEYS) {
        struct proto_text_line *l = &st->lines[nlines];
        if (scan_get_one(st, n, p, end, l)) {
            n++;
            nlines++;
            p = l->nl + 1;
            continue;
        }
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl)
            break;
        char *line_end = nl > p && nl[-1] == '\r' ? nl - 1 : nl;
        char *next = nl + 1;
        char *q = p;
        const struct text_command *cmd = scan_command(&q, line_end);
        enum scan_kind kind = cmd ? cmd->scan : SCAN_OTHER;
        if (kind != SCAN_OTHER) {
            l->start = p;
            l->nl = nl;
            l->rest = q;
            l->cmd = cmd;
            nlines++;
        }
        if (kind == SCAN_GET) {
            struct proto_token t;
            unsigned first = n;
            while (n < PREFETCH_KEYS && next_token(&q, line_end, &t))
                hash_ahead(st, n++, t.s, t.len);
            bool one = n == first + 1 && st->hashed_len[first] <= KEY_MAX_LENGTH &&
                       only_spaces(q, line_end);
            l->how = one ? LINE_GET_ONE : LINE_RUN;
            l->key = (uint8_t)first;
        } else if (kind == SCAN_STORE) {
            /* A refused line's value would run as lines: stop there. */
            l->how = LINE_STORE;
            parse_store(cmd->arg, q, line_end, &l->store);
            if (l->store.status != STORE_PARSE_OK)
                break;
            hash_ahead(st, n++, l->store.key, l->store.nkey);
            if (l->store.vlen > end - next - 2)
                break;
            next += l->store.vlen + 2;
        } else {
            break;
        }
        p = next;
    }
    st->prefetched = p;
    st->nhashed = (uint8_t)n;
    st->nlines = (uint8_t)nlines;
    if (n > 1)
        assoc_prefetch_items(st->hashed_hv, n);
}

/* ---- Retrieval: get, gets, gat, gats ---- */

/* Every key of [p, end) fits the protocol's limit (no key can be too long
 * in a rest of line that short: the common case costs no walk). */
static bool keys_valid(char *p, char *end)
{
    if (end - p <= KEY_MAX_LENGTH)
        return true;
    struct proto_token t;
    while (next_token(&p, end, &t))
        if (t.len > KEY_MAX_LENGTH)
            return false;
    return true;
}

/* Every key of the retrieval is answered; its "END" still to be queued
 * unless out_value() already did. */
static enum proto_next get_done(struct conn *c, bool queue_end)
{
    c->text.keys = c->text.keys_end = NULL;
    if (settings.verbose >= 2)
        mc_logf(">%d END", c->fd);
    return queue_end ? out_end(c) : PROTO_NEXT_CMD;
}

/* The retrieval's next key, from the saved position on, which it passes;
 * false when none is left.  A key the prefetch scan read (the next unused
 * hash is for this address: see key_hash) has the length the scan found,
 * so its bytes are not walked again. */
static inline bool next_key(struct conn *c, struct proto_token *key)
{
    struct proto_text_state *st = &c->text;
    char *s = st->keys, *end = st->keys_end;
    while (s < end && *s == ' ')
        s++;
    if (s == end) {
        st->keys = s;
        return false;
    }
    unsigned i = st->hashed_next;
    bool scanned = i < st->nhashed && st->hashed_key[i] == s &&
                   st->hashed_rgen == c->rgen;
    key->s = s;
    key->len = scanned ? st->hashed_len[i] : (size_t)(find_space(s, end) - s);
    st->keys = s + key->len;
    return true;
}

/* Count a retrieval's key for "stats detail". */
static inline void detail_get(const char *key, size_t nkey, bool hit)
{
    if (settings.detail_enabled)
        stats_prefix_record_get(key, nkey, hit);
}

/* Answer the key [key, key + nkey) of a gat or gats with it, what the
 * touch found (or NULL); true when out_value() ended the answer with its
 * "END" (last: no key follows). */
static bool touch_answer(struct conn *c, item *it, const char *key,
                         size_t nkey, bool with_cas, bool last)
{
    detail_get(key, nkey, it != NULL);
    return it && out_value(c, it, with_cas, last);
}

/* Look up and answer the key [key, key + nkey) (hv its hash) of a get or
 * gets; true when the answer's "END" is queued too, as out_value() says.
 * A small value that the last output block has room for is copied while
 * the item lock is held: no reference is taken and dropped.  Any other
 * hit is referenced and answered by out_value(), which may grow the
 * output (not under the lock); both write the same bytes. */
static inline bool get_key(struct conn *c, const char *key, size_t nkey,
                           uint32_t hv, bool with_cas, bool last)
{
    conn_out_open(c);   /* a VALUE or the "END" follows anyway */
    item *it = storage_get_locked(key, nkey, hv, c->ts);
    bool hit = it != NULL;
    char *start;
    if (hit && it->nbytes <= VALUE_COPY_MAX &&
        (start = conn_out_room(c, value_room(it, true, last))) != NULL) {
        conn_out_commit(c, (size_t)(value_text(start, it, with_cas, true, last) -
                                    start));
        storage_get_unlock(hv);
        if (settings.verbose >= 2)
            mc_logf(">%d sending key %.*s", c->fd, (int)nkey, key);
        detail_get(key, nkey, true);
        return last;
    }
    if (hit)
        item_ref(it);
    storage_get_unlock(hv);
    detail_get(key, nkey, hit);
    return hit && out_value(c, it, with_cas, last);
}

/* Answer keys from the saved position until done or the output is full. */
static enum proto_next get_continue(struct conn *c)
{
    struct proto_text_state *st = &c->text;
    bool with_cas = st->get_flags & TEXT_GET_CAS;
    bool touch = st->get_flags & TEXT_GET_TOUCH;
    struct proto_token key;
    while (next_key(c, &key)) {
        bool last = only_spaces(st->keys, st->keys_end);
        bool end = touch ? touch_answer(c, storage_touch(key.s, key.len, st->exptime,
                                                         true, c->ts),
                                        key.s, key.len, with_cas, last)
                         : get_key(c, key.s, key.len, key_hash(c, key.s, key.len),
                                   with_cas, last);
        if (end)
            return get_done(c, false);
        if (conn_out_full(c))
            return PROTO_SUSPEND;
    }
    return get_done(c, true);
}

/* The line l, a get or gets of one key of valid length, as the prefetch
 * scan found it (LINE_GET_ONE): the key, its length and its hash come from
 * the scan, and nothing of the line is walked again.  Answers as cmd_get()
 * would; end is the end of the line. */
static enum proto_next get_one(struct conn *c, const struct proto_text_line *l,
                               char *end)
{
    struct proto_text_state *st = &c->text;
    unsigned i = l->key;
    st->hashed_next = (uint8_t)(i + 1);
    if (get_key(c, st->hashed_key[i], st->hashed_len[i], st->hashed_hv[i],
                l->cmd->arg & TEXT_GET_CAS, true))
        return get_done(c, false);
    if (conn_out_full(c)) {
        /* Only the "END" is left: get_continue() adds it on resuming. */
        st->keys = st->keys_end = end;
        return PROTO_SUSPEND;
    }
    return get_done(c, true);
}

/* get|gets <key>*, gat|gats <exptime> <key>*: the rest of the line is
 * [p, end). */
static enum proto_next cmd_get(struct conn *c, char *p, char *end, int flags)
{
    rel_time_t exptime = 0;
    struct proto_token t;
    char *keys = p;
    if (flags & TEXT_GET_TOUCH) {
        int64_t e;
        if (!next_token(&keys, end, &t))
            return reply(c, "ERROR");
        if (!tok_i64(&t, &e))
            return reply(c, "CLIENT_ERROR invalid exptime argument");
        exptime = realtime(e);
    } else {
        while (keys < end && *keys == ' ')
            keys++;
        if (keys == end)
            return reply(c, "ERROR");
    }
    if (!keys_valid(keys, end))
        return reply(c, "CLIENT_ERROR bad command line format");
    c->text.keys = keys;
    c->text.keys_end = end;
    c->text.exptime = exptime;
    c->text.get_flags = (uint8_t)flags;
    return get_continue(c);
}

/* ---- Storage: set, add, replace, append, prepend, cas ---- */

/* Run the storage command op, its line parsed into *a (parse_store()). */
static enum proto_next store_run(struct conn *c, int op,
                                 const struct proto_text_store_args *a)
{
    if (a->status == STORE_PARSE_ERROR)
        return reply(c, "ERROR");
    c->text.noreply = a->noreply;
    if (a->status != STORE_PARSE_OK)
        return reply(c, "CLIENT_ERROR bad command line format");

    const char *key = a->key;
    size_t nkey = a->nkey;
    size_t vlen = (size_t)a->vlen;
    if (settings.detail_enabled)
        stats_prefix_record_set(key, nkey);
    enum alloc_result why = ALLOC_OK;
    item *it = storage_alloc(key, nkey, a->flags, realtime(a->exptime),
                             vlen + 2, &why, c->ts);
    if (!it) {
        reply(c, why == ALLOC_TOO_LARGE ? "SERVER_ERROR object too large for cache"
                                        : "SERVER_ERROR out of memory storing object");
        /* As memcached: a set that could not be stored must not leave the
         * old value readable.  This removal is not a client delete, so it
         * is counted where nobody reports it. */
        if (op == STORE_OP_SET)
            storage_delete(key, nkey, 0, conn_scratch_stats(c));
        return conn_swallow_value(c, vlen + 2);
    }
    c->text.it = it;
    c->text.it_hv = key_hash(c, key, nkey);
    c->text.op = (enum store_op)op;
    c->text.cas_in = a->cas;
    return conn_expect_value(c, ITEM_data(it), vlen + 2);
}

/* set|add|replace|append|prepend|cas, a line the prefetch scan did not
 * parse: the arguments are [p, end). */
static enum proto_next cmd_store(struct conn *c, char *p, char *end, int op)
{
    struct proto_text_store_args a;
    parse_store(op, p, end, &a);
    return store_run(c, op, &a);
}

enum proto_next proto_text_value_read(struct conn *c)
{
    if (c->text.meta.it)
        return proto_meta_value_read(c);
    item *it = c->text.it;
    c->text.it = NULL;
    if (c->rbytes == 0)
        forget_prefetch(c);
    const char *crlf = ITEM_data(it) + it->nbytes - 2;
    if (crlf[0] != '\r' || crlf[1] != '\n') {
        item_release(it);
        return reply(c, "CLIENT_ERROR bad data chunk");
    }
    struct store_req req = {.op = c->text.op, .cas_in = c->text.cas_in};
    enum store_result r = storage_store_hv(it, &req, c->text.it_hv, NULL, c->ts);
    item_release(it);
    switch (r) {
    case STORE_STORED:
        return reply(c, "STORED");
    case STORE_EXISTS:
        return reply(c, "EXISTS");
    case STORE_NOT_FOUND:
        return reply(c, "NOT_FOUND");
    case STORE_NOT_STORED:
    case STORE_NO_MEMORY:   /* append/prepend: memcached says NOT_STORED */
    case STORE_TOO_LARGE:
        break;
    }
    return reply(c, "NOT_STORED");
}

/* ---- Other key commands ---- */

/* delete <key> [0] [noreply]: memcached still accepts a hold time of 0. */
static enum proto_next cmd_delete(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    set_noreply(c, t, ntok);
    if (ntok > 2) {
        bool zero = tok_is(&t[2], "0");
        bool valid = (ntok == 3 && (zero || c->text.noreply)) ||
                     (ntok == 4 && zero && c->text.noreply);
        if (!valid)
            return reply(c, "CLIENT_ERROR bad command line format.  "
                            "Usage: delete <key> [noreply]");
    }
    if (t[1].len > KEY_MAX_LENGTH)
        return reply(c, "CLIENT_ERROR bad command line format");
    if (settings.detail_enabled)
        stats_prefix_record_delete(t[1].s, t[1].len);
    if (storage_delete(t[1].s, t[1].len, 0, c->ts) == DELETE_DELETED)
        return reply(c, "DELETED");
    return reply(c, "NOT_FOUND");
}

/* incr|decr <key> <delta> [noreply] */
static enum proto_next cmd_arith(struct conn *c, struct proto_token *t, int ntok, int incr)
{
    uint64_t delta, value;
    set_noreply(c, t, ntok);
    if (t[1].len > KEY_MAX_LENGTH)
        return reply(c, "CLIENT_ERROR bad command line format");
    if (!tok_u64(&t[2], &delta))
        return reply(c, "CLIENT_ERROR invalid numeric delta argument");
    switch (storage_delta(t[1].s, t[1].len, incr, delta, 0, &value, NULL, c->ts)) {
    case DELTA_OK:
        return reply_u64(c, value);
    case DELTA_NON_NUMERIC:
        return reply(c, "CLIENT_ERROR cannot increment or decrement non-numeric value");
    case DELTA_NO_MEMORY:
        return reply(c, "SERVER_ERROR out of memory");
    case DELTA_EXISTS:
        return reply(c, "EXISTS");
    case DELTA_NOT_FOUND:
        break;
    }
    return reply(c, "NOT_FOUND");
}

/* touch <key> <exptime> [noreply] */
static enum proto_next cmd_touch(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    int64_t exptime;
    set_noreply(c, t, ntok);
    if (t[1].len > KEY_MAX_LENGTH)
        return reply(c, "CLIENT_ERROR bad command line format");
    if (!tok_i64(&t[2], &exptime))
        return reply(c, "CLIENT_ERROR invalid exptime argument");
    item *it = storage_touch(t[1].s, t[1].len, realtime(exptime), false, c->ts);
    if (!it)
        return reply(c, "NOT_FOUND");
    item_release(it);
    return reply(c, "TOUCHED");
}

/* ---- Server commands ---- */

/* flush_all [delay] [noreply] */
static enum proto_next cmd_flush_all(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    int64_t delay = 0;
    set_noreply(c, t, ntok);
    if (!settings.flush_enabled)
        return reply(c, "CLIENT_ERROR flush_all not allowed");
    bool has_delay = ntok == 3 || (ntok == 2 && !c->text.noreply);
    if (has_delay && !tok_i64(&t[1], &delay))
        return reply(c, "CLIENT_ERROR invalid exptime argument");
    storage_flush(delay > 0 ? realtime(delay) : 0, c->ts);
    return reply(c, "OK");
}

/* verbosity <level> [noreply] */
static enum proto_next cmd_verbosity(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    uint64_t level;
    set_noreply(c, t, ntok);
    if (!tok_u64(&t[1], &level))
        return reply(c, "CLIENT_ERROR bad command line format");
    /* memcached caps what the command can set at 2 (-vv). */
    __atomic_store_n(&settings.verbose, level > 2 ? 2 : (int)level, __ATOMIC_RELAXED);
    return reply(c, "OK");
}

static enum proto_next cmd_version(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    return reply(c, "VERSION " MC_PROTOCOL_VERSION);
}

static enum proto_next cmd_quit(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    return PROTO_CLOSE;
}

/* shutdown [graceful]: only with -A.  Answers nothing: the connection is
 * closed once earlier answers are written, and the server stops. */
static enum proto_next cmd_shutdown(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    bool graceful = false;
    if (!settings.shutdown_command)
        return reply(c, "ERROR: shutdown not enabled");
    if (ntok == 2 && tok_is(&t[1], "graceful"))
        graceful = true;
    else if (ntok > 1)
        return reply(c, "CLIENT_ERROR invalid shutdown mode");
    mc_log(1, "<%d shutdown%s requested by a client", c->fd,
           graceful ? " (graceful)" : "");
    server_request_stop(graceful);
    return PROTO_CLOSE;
}

/* cache_memlimit <megabytes> [noreply] */
static enum proto_next cmd_cache_memlimit(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    uint64_t mb;
    set_noreply(c, t, ntok);
    if (!tok_u64(&t[1], &mb))
        return reply(c, "ERROR");
    if (mb < 8)
        return reply(c, "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m");
    if (mb > (SIZE_MAX >> 20) || !storage_set_memlimit((size_t)mb << 20))
        return reply(c, "MEMLIMIT_ADJUST_FAILED out of bounds or unable to adjust");
    return reply(c, "OK");
}

/* slabs reassign <src> <dst> | slabs automove <0|1|2> [noreply] */
static enum proto_next cmd_slabs(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    if (ntok >= 2 && tok_is(&t[1], "reassign")) {
        int32_t src, dst;
        if (ntok != 4)
            return reply(c, "ERROR");
        if (!settings.slab_reassign)
            return reply(c, "CLIENT_ERROR slab reassignment disabled");
        if (!tok_i32(&t[2], &src) || !tok_i32(&t[3], &dst))
            return reply(c, "CLIENT_ERROR bad command line format");
        switch (storage_slabs_reassign(src, dst)) {
        case REASSIGN_OK:
            return reply(c, "OK");
        case REASSIGN_RUNNING:
            return reply(c, "BUSY currently processing reassign request");
        case REASSIGN_BADCLASS:
            return reply(c, "BADCLASS invalid src or dst class id");
        case REASSIGN_NOSPARE:
            return reply(c, "NOSPARE source class has no spare pages");
        case REASSIGN_SRC_DST_SAME:
            return reply(c, "SAME src and dst class are identical");
        }
        return reply(c, "ERROR");
    }
    if (ntok >= 3 && tok_is(&t[1], "automove")) {
        uint32_t mode;
        set_noreply(c, t, ntok);
        if (!tok_u32(&t[2], &mode))
            return reply(c, "CLIENT_ERROR bad command line format");
        if (mode > 2)
            return reply(c, "ERROR");
        storage_slabs_automove((int)mode);
        return reply(c, "OK");
    }
    return reply(c, "ERROR");
}

/* mgdump: turn a metadump line ("key=<uri-encoded> ...") into "mg <key>",
 * or "mg <base64 key> b" for a key a text command could not carry. */
static void mgdump_line(const char *line, size_t len, void *ctx)
{
    unsigned char key[KEY_MAX_LENGTH];
    size_t nkey = 0;
    bool binary = false;
    const char *p = line + 4, *end = line + len;
    if (len < 4 || memcmp(line, "key=", 4) != 0)
        return;
    while (p < end && *p != ' ' && *p != '\n' && nkey < sizeof(key)) {
        unsigned v = (unsigned char)*p++;
        if (v == '%' && end - p >= 2 && isxdigit((unsigned char)p[0]) &&
            isxdigit((unsigned char)p[1])) {
            char hex[3] = {p[0], p[1], '\0'};
            v = (unsigned)strtoul(hex, NULL, 16);
            p += 2;
        }
        binary |= v <= ' ' || v >= 0x7f;
        key[nkey++] = (unsigned char)v;
    }
    char out[KEY_MAX_LENGTH * 2 + 16];
    char *o = out;
    memcpy(o, "mg ", 3);
    o += 3;
    if (binary) {
        o = proto_meta_base64(o, key, nkey);
        memcpy(o, " b", 2);
        o += 2;
    } else {
        memcpy(o, key, nkey);
        o += nkey;
    }
    out_dump_line(ctx, out, (size_t)(o - out), "\r\n");
}

/* lru_crawler crawl|metadump|mgdump <classes> | sleep <us> |
 * tocrawl <n> | enable | disable */
static enum proto_next cmd_lru_crawler(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    uint32_t v;
    if (ntok == 2 && tok_is(&t[1], "enable"))
        return reply(c, storage_crawler_enable(true) ? "OK"
                        : "ERROR failed to start lru crawler thread");
    if (ntok == 2 && tok_is(&t[1], "disable"))
        return reply(c, storage_crawler_enable(false) ? "OK"
                        : "ERROR failed to stop lru crawler thread");
    if (ntok != 3)
        return reply(c, "ERROR");
    if (tok_is(&t[1], "crawl")) {
        switch (storage_crawler_crawl(tok_cstr(&t[2]))) {
        case 0:
            return reply(c, "OK");
        case -2:
            return reply(c, "BUSY currently processing crawler request");
        default:
            return reply(c, "BADCLASS invalid class id");
        }
    }
    bool metadump = tok_is(&t[1], "metadump");
    if (metadump || tok_is(&t[1], "mgdump")) {
        if (!settings.dump_enabled)
            return reply(c, metadump ? "ERROR metadump not allowed"
                                     : "ERROR mgdump not allowed");
        if (storage_crawler_metadump(tok_cstr(&t[2]),
                                     metadump ? metadump_line : mgdump_line, c) < 0)
            return reply(c, "BADCLASS invalid class id");
        conn_out(c, metadump ? "END\r\n" : "EN\r\n", metadump ? 5 : 4);
        return PROTO_NEXT_CMD;
    }
    if (tok_is(&t[1], "sleep")) {
        if (!tok_u32(&t[2], &v))
            return reply(c, "CLIENT_ERROR bad command line format");
        if (v > 1000000)
            return reply(c, "CLIENT_ERROR sleep must be one second or less");
        __atomic_store_n(&settings.lru_crawler_sleep, (int)v, __ATOMIC_RELAXED);
        return reply(c, "OK");
    }
    if (tok_is(&t[1], "tocrawl")) {
        if (!tok_u32(&t[2], &v))
            return reply(c, "CLIENT_ERROR bad command line format");
        __atomic_store_n(&settings.lru_crawler_tocrawl, v, __ATOMIC_RELAXED);
        return reply(c, "OK");
    }
    return reply(c, "ERROR");
}

/* ---- stats ---- */

/* stats detail on|off|dump */
static enum proto_next stats_detail(struct conn *c, struct proto_token *t, int ntok)
{
    if (ntok >= 3 && tok_is(&t[2], "on")) {
        __atomic_store_n(&settings.detail_enabled, true, __ATOMIC_RELAXED);
        return reply(c, "OK");
    }
    if (ntok >= 3 && tok_is(&t[2], "off")) {
        __atomic_store_n(&settings.detail_enabled, false, __ATOMIC_RELAXED);
        return reply(c, "OK");
    }
    if (ntok >= 3 && tok_is(&t[2], "dump")) {
        size_t len;
        char *dump = stats_prefix_dump(&len);
        if (!dump)
            return reply(c, "SERVER_ERROR out of memory writing stats");
        conn_out(c, dump, len);
        free(dump);
        return PROTO_NEXT_CMD;
    }
    return reply(c, "CLIENT_ERROR usage: stats detail on|off|dump");
}

/* stats cachedump <class> <limit> */
static enum proto_next stats_cachedump(struct conn *c, struct proto_token *t, int ntok)
{
    uint32_t id, limit;
    if (!settings.dump_enabled)
        return reply(c, "CLIENT_ERROR stats cachedump not allowed");
    if (ntok < 4)
        return reply(c, "CLIENT_ERROR bad command line");
    if (!tok_u32(&t[2], &id) || !tok_u32(&t[3], &limit))
        return reply(c, "CLIENT_ERROR bad command line format");
    if (id >= MAX_SLAB_CLASSES)
        return reply(c, "CLIENT_ERROR Illegal slab id");
    storage_cachedump(id, limit, cachedump_line, c);
    return out_end(c);
}

static enum proto_next cmd_stats(struct conn *c, struct proto_token *t, int ntok, int arg)
{
    if (ntok == 1) {
        stats_report_general(add_stat, c);
        return out_end(c);
    }
    struct proto_token *sub = &t[1];
    if (tok_is(sub, "settings")) {
        stats_report_settings(add_stat, c);
    } else if (tok_is(sub, "items")) {
        storage_report_items(add_stat, c);
    } else if (tok_is(sub, "slabs")) {
        struct thread_stats sum;
        stats_aggregate(&sum);
        storage_report_slabs(add_stat, c, &sum);
    } else if (tok_is(sub, "sizes")) {
        storage_report_sizes(add_stat, c);
    } else if (tok_is(sub, "conns")) {
        conn_report(add_stat, c);
    } else if (tok_is(sub, "reset")) {
        stats_reset();
        storage_stats_reset();
        conn_stats_reset();
        stats_prefix_clear();
        return reply(c, "RESET");
    } else if (tok_is(sub, "detail")) {
        return stats_detail(c, t, ntok);
    } else if (tok_is(sub, "cachedump")) {
        return stats_cachedump(c, t, ntok);
    } else {
        return reply(c, "ERROR");
    }
    return out_end(c);
}

/* ---- The command table ---- */

#define CMD(n, lo, hi, fn, a) {n, sizeof(n) - 1, lo, hi, SCAN_OTHER, a, fn, NULL}
#define SCAN_LINE_CMD(n, fn, a, scan) {n, sizeof(n) - 1, 0, 0, scan, a, NULL, fn}
#define LINE_CMD(n, fn, a) SCAN_LINE_CMD(n, fn, a, SCAN_OTHER)

/* The entries scan_command() finds without a lookup. */
enum { CMD_GET, CMD_SET };

/* Most frequent first: the lookup is a scan. */
static const struct text_command commands[] = {
    [CMD_GET] = SCAN_LINE_CMD("get", cmd_get, 0, SCAN_GET),
    [CMD_SET] = SCAN_LINE_CMD("set", cmd_store, STORE_OP_SET, SCAN_STORE),
    SCAN_LINE_CMD("gets", cmd_get, TEXT_GET_CAS, SCAN_GET),
    CMD("delete", 2, 4, cmd_delete, 0),
    CMD("incr", 3, 4, cmd_arith, 1),
    CMD("decr", 3, 4, cmd_arith, 0),
    CMD("touch", 3, 4, cmd_touch, 0),
    LINE_CMD("gat", cmd_get, TEXT_GET_TOUCH),
    LINE_CMD("gats", cmd_get, TEXT_GET_TOUCH | TEXT_GET_CAS),
    SCAN_LINE_CMD("add", cmd_store, STORE_OP_ADD, SCAN_STORE),
    SCAN_LINE_CMD("replace", cmd_store, STORE_OP_REPLACE, SCAN_STORE),
    SCAN_LINE_CMD("append", cmd_store, STORE_OP_APPEND, SCAN_STORE),
    SCAN_LINE_CMD("prepend", cmd_store, STORE_OP_PREPEND, SCAN_STORE),
    SCAN_LINE_CMD("cas", cmd_store, STORE_OP_CAS, SCAN_STORE),
    LINE_CMD("mg", proto_meta_command, META_MG),
    LINE_CMD("ms", proto_meta_command, META_MS),
    LINE_CMD("md", proto_meta_command, META_MD),
    LINE_CMD("ma", proto_meta_command, META_MA),
    LINE_CMD("mn", proto_meta_command, META_MN),
    LINE_CMD("me", proto_meta_command, META_ME),
    CMD("stats", 1, 0, cmd_stats, 0),
    CMD("flush_all", 1, 3, cmd_flush_all, 0),
    CMD("version", 1, 0, cmd_version, 0),
    CMD("quit", 1, 0, cmd_quit, 0),
    CMD("verbosity", 2, 3, cmd_verbosity, 0),
    CMD("cache_memlimit", 2, 3, cmd_cache_memlimit, 0),
    CMD("slabs", 1, 0, cmd_slabs, 0),
    CMD("lru_crawler", 1, 0, cmd_lru_crawler, 0),
    CMD("shutdown", 1, 0, cmd_shutdown, 0),
};

/* a and b hold the same n bytes, n the length of a command word: the
 * usual lengths compare as a couple of loads (a memcmp of constant size). */
static inline bool word_eq(const char *a, const char *b, size_t n)
{
    switch (n) {
    case 2:
        return memcmp(a, b, 2) == 0;
    case 3:
        return memcmp(a, b, 3) == 0;
    case 4:
        return memcmp(a, b, 4) == 0;
    default:
        return bytes_eq(a, b, n);
    }
}

static inline const struct text_command *lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (commands[i].len == len && word_eq(commands[i].name, name, len))
            return &commands[i];
    return NULL;
}

/* The command of the line [*p, end), or NULL (no word, or not a command);
 * *p is moved past its word.  A line that starts "get " or "set ", nearly
 * every line of a pipelined batch, is recognised by one 4-byte compare
 * instead of being tokenized and looked up. */
static inline const struct text_command *scan_command(char **p, char *end)
{
    char *s = *p;
    if (end - s >= 4 && (memcmp(s, "get ", 4) == 0 || memcmp(s, "set ", 4) == 0)) {
        *p = s + 3;
        return &commands[s[0] == 'g' ? CMD_GET : CMD_SET];
    }
    struct proto_token name;
    if (!next_token(p, end, &name))
        return NULL;
    return lookup(name.s, name.len);
}

/* The line at p, in the input that ends at end, when it is the usual
 * "get <key>\r\n" (or "...\n"): one key of valid length and nothing else.
 * It is read in one pass, its key's end and its "\n" found together,
 * where any other line is searched for its "\n" and then walked again;
 * l and the scan's n-th key are then what that walk would have made of
 * it, and true is returned.  False, with nothing changed, for any other
 * line. */
static inline bool scan_get_one(struct proto_text_state *st, unsigned n,
                                char *p, char *end, struct proto_text_line *l)
{
    if (end - p < 6 || memcmp(p, "get ", 4) != 0)
        return false;
    char *key = p + 4;
    char *nl = find_stop(key, end, true);
    if (nl == end || *nl != '\n')
        return false;
    char *key_end = nl[-1] == '\r' ? nl - 1 : nl;
    size_t len = (size_t)(key_end - key);
    if (len - 1 >= KEY_MAX_LENGTH)
        return false;
    l->start = p;
    l->nl = nl;
    l->rest = p + 3;
    l->cmd = &commands[CMD_GET];
    l->how = LINE_GET_ONE;
    l->key = (uint8_t)n;
    hash_ahead(st, n, key, len);
    return true;
}

/* Run cmd, the command of a line whose arguments are [rest, end): rest
 * is right after the command word. */
static enum proto_next run(struct conn *c, const struct text_command *cmd,
                           char *rest, char *end)
{
    if (cmd->run_line)
        return cmd->run_line(c, rest, end, cmd->arg);
    struct proto_token tok[MAX_TOKENS];
    tok[0].s = rest - cmd->len;
    tok[0].len = cmd->len;
    int ntok = 1 + tokenize(rest, end, tok + 1, MAX_TOKENS - 1);
    if (ntok < cmd->min_tokens || (cmd->max_tokens && ntok > cmd->max_tokens))
        return reply(c, "ERROR");
    return cmd->run(c, tok, ntok, cmd->arg);
}

/* Run one complete command line (without its line end). */
static enum proto_next execute(struct conn *c, char *line, size_t len)
{
    char *end = line + len;
    char *rest = line;
    const struct text_command *cmd = scan_command(&rest, end);
    if (!cmd)
        return reply(c, "ERROR");
    return run(c, cmd, rest, end);
}

/* The prefetch scan's entry for the line at rcurr, or NULL when its next
 * unused entry is not for this line or its entries are stale (the input
 * has changed since: see hashed_rgen).  Lines run in input order, so the
 * next entry is the one, except after a command whose value the scan
 * skipped was refused without it (its value's bytes then run as lines):
 * those lines, and any the scan read past them, simply run unhelped. */
static inline const struct proto_text_line *scanned_line(struct conn *c)
{
    struct proto_text_state *st = &c->text;
    unsigned i = st->lines_next;
    if (i < st->nlines && st->lines[i].start == c->rcurr &&
        st->hashed_rgen == c->rgen) {
        st->lines_next = (uint8_t)(i + 1);
        return &st->lines[i];
    }
    return NULL;
}

/* No "\n" yet: wait for more, unless the line is already longer than
 * memcached allows (only a multi-get line may grow). */
static enum proto_next incomplete_line(struct conn *c)
{
    if (c->rbytes <= LINE_WITHOUT_NEWLINE_MAX)
        return PROTO_NEED_DATA;
    const char *p = c->rcurr, *end = c->rcurr + c->rbytes;
    while (p < end && *p == ' ')
        p++;
    bool get = (end - p >= 4 && memcmp(p, "get ", 4) == 0) ||
               (end - p >= 5 && memcmp(p, "gets ", 5) == 0);
    if (!get || p - c->rcurr > LEADING_SPACE_MAX) {
        mc_log(1, "<%d command line of more than %d bytes without a newline; "
                  "closing connection", c->fd, LINE_WITHOUT_NEWLINE_MAX);
        return PROTO_CLOSE_NOW;
    }
    return PROTO_NEED_DATA;
}

enum proto_next proto_text_process(struct conn *c)
{
    if (c->text.keys)
        return get_continue(c);
    if ((uintptr_t)c->text.prefetched <= (uintptr_t)c->rcurr)
        prefetch_ahead(c);
    char *line = c->rcurr;
    const struct proto_text_line *scanned = scanned_line(c);
    char *nl = scanned ? scanned->nl : memchr(line, '\n', c->rbytes);
    if (!nl) {
        forget_prefetch(c);
        return incomplete_line(c);
    }
    size_t len = (size_t)(nl - line);
    conn_consume(c, len + 1);
    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (settings.verbose >= 2)
        mc_logf("<%d %.*s", c->fd, (int)len, line);
    c->text.noreply = false;
    enum proto_next next;
    if (!scanned)
        next = execute(c, line, len);
    else if (scanned->how == LINE_GET_ONE)
        next = get_one(c, scanned, line + len);
    else if (scanned->how == LINE_STORE)
        next = store_run(c, scanned->cmd->arg, &scanned->store);
    else
        next = run(c, scanned->cmd, scanned->rest, line + len);
    if (c->rbytes == 0 || (next == PROTO_NREAD && c->nread_left > 0) ||
        (next == PROTO_SWALLOW && c->swallow_left > 0))
        forget_prefetch(c);
    return next;
}

void proto_text_abort(struct conn *c)
{
    proto_meta_abort(c);
    if (c->text.it) {
        item_release(c->text.it);
        c->text.it = NULL;
    }
    c->text.keys = c->text.keys_end = NULL;
    forget_prefetch(c);
}
