/*
 * proto_bin.c - memcached's binary protocol (doc:
 * memcached-protocol-binary.txt): framing, the opcode table, and every
 * opcode memcached 1.6 serves, with its exact status codes and messages.
 *
 * A request is a 24-byte header (magic 0x80, opcode, key length, extras
 * length, data type, reserved, total body length, opaque, CAS, all
 * big-endian), then extras, key and value.  An answer echoes the opcode
 * and the opaque, with magic 0x81 and a status; a failed one carries
 * memcached's message as its value.  Quiet opcodes (the ...Q forms) answer
 * failures only; getq/getkq/gatq/gatkq also stay silent on a miss.
 *
 * Frames are checked in memcached's order, each failure answered the way
 * memcached answers it:
 *   1. magic not 0x80: the connection is closed (after the answers to
 *      earlier requests) without an answer;
 *   2. key + extras longer than the body: "Unknown command", then close;
 *   3. a key longer than 250 bytes: "Invalid arguments", then close;
 *   4. an opcode memcached does not serve: "Unknown command", the body is
 *      skipped and the connection stays open;
 *   5. extras, key or value not allowed or missing for the opcode
 *      ("shape" in the table below): "Invalid arguments", then close.
 * A request is only acted on once its header, extras and key are all
 * buffered (at most 24 + 255 + 250 bytes); a value is read straight into
 * its item (conn_expect_value), or skipped (conn_swallow_value) when it
 * can't be stored, so a value of any size costs no buffer.
 *
 * Every command calls the storage API (storage.h), as the text protocol
 * does; what differs is only the mapping of results to status codes:
 *   - add on a live key is "Data exists for key.", replace on a missing
 *     one "Not found", append/prepend on a missing one "Not stored.";
 *   - a set/add/replace carrying a CAS is a compare-and-swap (so add with
 *     a CAS needs the key to exist); with -C the request's CAS is ignored
 *     by stores, and makes delete and incr/decr fail, as in memcached;
 *   - a set that can't be stored (too large, out of memory) also removes
 *     the key's old value, as text "set" does;
 *   - incr/decr seed a missing key with the initial value unless the
 *     expiry is 0xffffffff, and leave an existing key's expiry alone;
 *   - flush with -F answers "Auth failure.", memcached's answer;
 *   - SASL is answered as by a memcached without SASL: "Unknown command";
 *   - stat serves the groups memcached's binary stat serves: "" (general),
 *     settings, items, slabs, sizes, reset, "detail on|off|dump"; any
 *     other key is "Not found".
 * Deliberate differences from memcached 1.6.18, the oracle:
 *   - verbosity (0x1b, 4 bytes of extras) sets the level like the text
 *     command (1.6.18 answers "Unknown command");
 *   - an unknown opcode's body is skipped whatever it holds (1.6.18 loses
 *     its place in the stream when the body has a key or extras);
 *   - stat, touch and gat with a value are "Invalid arguments" (1.6.18
 *     reads the value as the next request's header, and closes);
 *   - version answers 1.6.45.
 *
 * Threads: runs on the connection's worker thread; shared state is only
 * reached through the storage, stats and settings APIs.
 */
#include "proto_bin.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "memcached.h"
#include "stats_report.h"
#include "util.h"

#define BIN_RES_MAGIC 0x81
#define BIN_HEADER_LEN 24

enum bin_opcode {
    BIN_GET = 0x00,
    BIN_SET = 0x01,
    BIN_ADD = 0x02,
    BIN_REPLACE = 0x03,
    BIN_DELETE = 0x04,
    BIN_INCREMENT = 0x05,
    BIN_DECREMENT = 0x06,
    BIN_QUIT = 0x07,
    BIN_FLUSH = 0x08,
    BIN_GETQ = 0x09,
    BIN_NOOP = 0x0a,
    BIN_VERSION = 0x0b,
    BIN_GETK = 0x0c,
    BIN_GETKQ = 0x0d,
    BIN_APPEND = 0x0e,
    BIN_PREPEND = 0x0f,
    BIN_STAT = 0x10,
    BIN_SETQ = 0x11,
    BIN_ADDQ = 0x12,
    BIN_REPLACEQ = 0x13,
    BIN_DELETEQ = 0x14,
    BIN_INCREMENTQ = 0x15,
    BIN_DECREMENTQ = 0x16,
    BIN_QUITQ = 0x17,
    BIN_FLUSHQ = 0x18,
    BIN_APPENDQ = 0x19,
    BIN_PREPENDQ = 0x1a,
    BIN_VERBOSITY = 0x1b,
    BIN_TOUCH = 0x1c,
    BIN_GAT = 0x1d,
    BIN_GATQ = 0x1e,
    BIN_SASL_LIST_MECHS = 0x20,
    BIN_SASL_AUTH = 0x21,
    BIN_SASL_STEP = 0x22,
    BIN_GATK = 0x23,
    BIN_GATKQ = 0x24,
    BIN_OPCODES             /* one past the highest served opcode */
};

enum bin_status {
    BIN_OK = 0x00,
    BIN_KEY_ENOENT = 0x01,
    BIN_KEY_EEXISTS = 0x02,
    BIN_E2BIG = 0x03,
    BIN_EINVAL = 0x04,
    BIN_NOT_STORED = 0x05,
    BIN_DELTA_BADVAL = 0x06,
    BIN_AUTH_ERROR = 0x20,
    BIN_UNKNOWN_COMMAND = 0x81,
    BIN_ENOMEM = 0x82,
};

/* A decoded request header; extras and key point into the read buffer. */
struct bin_req {
    uint8_t opcode;
    uint8_t extlen;
    uint16_t keylen;
    uint32_t bodylen;
    uint32_t opaque;
    uint64_t cas;
    const unsigned char *extras;
    const char *key;
};

/* ---- Big-endian fields ---- */

static uint16_t get_be16(const unsigned char *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get_be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint64_t get_be64(const unsigned char *p)
{
    return (uint64_t)get_be32(p) << 32 | get_be32(p + 4);
}

static void put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    put_be16(p, (uint16_t)(v >> 16));
    put_be16(p + 2, (uint16_t)v);
}

static void put_be64(unsigned char *p, uint64_t v)
{
    put_be32(p, (uint32_t)(v >> 32));
    put_be32(p + 4, (uint32_t)v);
}

/* A binary expiry is unsigned: 0xffffffff is an absolute time far in the
 * future, never "already expired". */
static rel_time_t bin_realtime(const unsigned char *p)
{
    return realtime((int64_t)get_be32(p));
}

/* ---- Answers ---- */

/* Queue an answer header to the current request (c->bin.opcode, opaque)
 * followed by its extras and key; the caller queues the value, the
 * remaining bodylen - extlen - nkey bytes, right after. */
static void out_head(struct conn *c, uint16_t status, const void *extras,
                     uint8_t extlen, const char *key, uint16_t nkey,
                     uint32_t bodylen, uint64_t cas)
{
    size_t len = BIN_HEADER_LEN + extlen + nkey;
    assert(len <= CONN_OUT_RESERVE_MAX);
    unsigned char *p = (unsigned char *)conn_out_reserve(c, len);
    if (!p)
        return;
    p[0] = BIN_RES_MAGIC;
    p[1] = c->bin.opcode;
    put_be16(p + 2, nkey);
    p[4] = extlen;
    p[5] = 0;           /* data type: raw bytes */
    put_be16(p + 6, status);
    put_be32(p + 8, bodylen);
    put_be32(p + 12, c->bin.opaque);
    put_be64(p + 16, cas);
    if (extlen > 0)
        memcpy(p + BIN_HEADER_LEN, extras, extlen);
    if (nkey > 0)
        memcpy(p + BIN_HEADER_LEN + extlen, key, nkey);
    conn_out_commit(c, len);
    if (status != BIN_OK && settings.verbose >= 2)
        mc_logf(">%d binary opcode 0x%02x answered status 0x%02x", c->fd,
                c->bin.opcode, status);
}

/* memcached's message for a failure status. */
static const char *status_text(uint16_t status)
{
    switch (status) {
    case BIN_KEY_ENOENT:
        return "Not found";
    case BIN_KEY_EEXISTS:
        return "Data exists for key.";
    case BIN_E2BIG:
        return "Too large.";
    case BIN_EINVAL:
        return "Invalid arguments";
    case BIN_NOT_STORED:
        return "Not stored.";
    case BIN_DELTA_BADVAL:
        return "Non-numeric server-side value for incr or decr";
    case BIN_AUTH_ERROR:
        return "Auth failure.";
    case BIN_ENOMEM:
        return "Out of memory";
    default:
        return "Unknown command";
    }
}

/* A failure, quiet request or not; msg NULL means the status's usual
 * message.  Returns PROTO_NEXT_CMD so a handler can end with it. */
static enum proto_next reply_error(struct conn *c, uint16_t status, const char *msg)
{
    if (!msg)
        msg = status_text(status);
    size_t len = strlen(msg);
    out_head(c, status, NULL, 0, NULL, 0, (uint32_t)len, 0);
    conn_out(c, msg, len);
    return PROTO_NEXT_CMD;
}

/* An empty success carrying cas, which quiet requests don't get. */
static enum proto_next reply_ok(struct conn *c, uint64_t cas)
{
    if (!c->bin.quiet)
        out_head(c, BIN_OK, NULL, 0, NULL, 0, 0, cas);
    return PROTO_NEXT_CMD;
}

/* A frame memcached rejects by answering and closing the connection. */
static enum proto_next reject_frame(struct conn *c, const struct bin_req *rq,
                                    uint16_t status)
{
    mc_log(1, "<%d malformed binary request (opcode 0x%02x, extras %u, key %u, "
              "body %u bytes); closing connection", c->fd, rq->opcode,
           rq->extlen, rq->keylen, rq->bodylen);
    reply_error(c, status, NULL);
    return PROTO_CLOSE;
}

/* ---- Retrieval: get, getq, getk, getkq, touch, gat, gatq, gatk, gatkq ---- */

#define GET_KEY 0x01        /* the answer carries the key (getk, gatk) */
#define GET_TOUCH 0x02      /* the extras are a new expiry (touch, gat) */
#define GET_NO_VALUE 0x04   /* answer the flags only (touch) */

static enum proto_next bin_get(struct conn *c, const struct bin_req *rq, int arg)
{
    item *it;
    if (arg & GET_TOUCH)
        it = storage_touch(rq->key, rq->keylen, bin_realtime(rq->extras),
                           !(arg & GET_NO_VALUE), c->ts);
    else
        it = storage_get(rq->key, rq->keylen, c->ts);
    if (settings.detail_enabled && !(arg & GET_NO_VALUE))
        stats_prefix_record_get(rq->key, rq->keylen, it != NULL);
    uint16_t nkey = arg & GET_KEY ? rq->keylen : 0;
    if (!it) {
        if (c->bin.quiet)
            return PROTO_NEXT_CMD;
        if (nkey == 0)
            return reply_error(c, BIN_KEY_ENOENT, NULL);
        /* getk, gatk: the key instead of the message. */
        out_head(c, BIN_KEY_ENOENT, NULL, 0, rq->key, nkey, nkey, 0);
        return PROTO_NEXT_CMD;
    }
    uint32_t vlen = arg & GET_NO_VALUE ? 0 : it->nbytes - 2;
    unsigned char flags[4];
    put_be32(flags, it->client_flags);
    out_head(c, BIN_OK, flags, sizeof(flags), rq->key, nkey,
             (uint32_t)sizeof(flags) + nkey + vlen, it->cas);
    if (settings.verbose >= 2)
        mc_logf(">%d sending key %.*s", c->fd, (int)rq->keylen, rq->key);
    if (vlen > 0)
        conn_out_item_value(c, it);
    else
        item_release(it);
    return PROTO_NEXT_CMD;
}

/* ---- Storage: set, add, replace, append, prepend (and quiet forms) ---- */

static enum proto_next bin_store(struct conn *c, const struct bin_req *rq, int op)
{
    uint32_t vlen = rq->bodylen - rq->extlen - rq->keylen;
    uint32_t flags = 0;
    rel_time_t exptime = 0;
    if (rq->extlen == 8) {
        flags = get_be32(rq->extras);
        exptime = bin_realtime(rq->extras + 4);
    }
    if (settings.detail_enabled)
        stats_prefix_record_set(rq->key, rq->keylen);
    enum alloc_result why = ALLOC_OK;
    item *it = storage_alloc(rq->key, rq->keylen, flags, exptime,
                             (size_t)vlen + 2, &why, c->ts);
    if (!it) {
        if (why == ALLOC_TOO_LARGE)
            reply_error(c, BIN_E2BIG, NULL);
        else
            reply_error(c, BIN_ENOMEM, "Out of memory allocating item");
        /* As text "set": a set that could not be stored must not leave
         * the old value readable (a removal nobody counts). */
        if (op == STORE_OP_SET)
            storage_delete(rq->key, rq->keylen, 0, conn_scratch_stats(c));
        return conn_swallow_value(c, vlen);
    }
    uint64_t cas = settings.use_cas ? rq->cas : 0;
    bool concat = op == STORE_OP_APPEND || op == STORE_OP_PREPEND;
    c->bin.it = it;
    c->bin.op = cas != 0 && !concat ? STORE_OP_CAS : (enum store_op)op;
    c->bin.cas_in = cas;
    return conn_expect_value(c, ITEM_data(it), vlen);
}

enum proto_next proto_bin_value_read(struct conn *c)
{
    struct proto_bin_state *st = &c->bin;
    item *it = st->it;
    st->it = NULL;
    memcpy(ITEM_data(it) + it->nbytes - 2, "\r\n", 2);
    struct store_req req = {.op = st->op, .cas_in = st->cas_in};
    uint64_t cas = 0;
    enum store_result r = storage_store(it, &req, &cas, c->ts);
    item_release(it);
    switch (r) {
    case STORE_STORED:
        return reply_ok(c, cas);
    case STORE_EXISTS:
        return reply_error(c, BIN_KEY_EEXISTS, NULL);
    case STORE_NOT_FOUND:
        return reply_error(c, BIN_KEY_ENOENT, NULL);
    case STORE_NOT_STORED:
        if (st->op == STORE_OP_ADD)
            return reply_error(c, BIN_KEY_EEXISTS, NULL);
        if (st->op == STORE_OP_REPLACE)
            return reply_error(c, BIN_KEY_ENOENT, NULL);
        break;
    case STORE_NO_MEMORY:   /* append/prepend result: memcached says so too */
    case STORE_TOO_LARGE:
        break;
    }
    return reply_error(c, BIN_NOT_STORED, NULL);
}

/* ---- Other key commands ---- */

static enum proto_next bin_delete(struct conn *c, const struct bin_req *rq, int arg)
{
    if (settings.detail_enabled)
        stats_prefix_record_delete(rq->key, rq->keylen);
    switch (storage_delete(rq->key, rq->keylen, rq->cas, c->ts)) {
    case DELETE_DELETED:
        return reply_ok(c, 0);
    case DELETE_EXISTS:
        return reply_error(c, BIN_KEY_EEXISTS, NULL);
    case DELETE_NOT_FOUND:
        break;
    }
    return reply_error(c, BIN_KEY_ENOENT, NULL);
}

/* Extras: delta (8 bytes), initial value (8), expiry (4). */
static enum proto_next bin_arith(struct conn *c, const struct bin_req *rq, int incr)
{
    uint32_t exp = get_be32(rq->extras + 16);
    struct delta_req req = {
        .incr = incr,
        .delta = get_be64(rq->extras),
        .cas_in = rq->cas,
        .vivify = exp != 0xffffffffu,
        .initial = get_be64(rq->extras + 8),
        .exptime = bin_realtime(rq->extras + 16),
    };
    uint64_t value = 0, cas = 0;
    switch (storage_delta_ex(rq->key, rq->keylen, &req, &value, &cas, c->ts)) {
    case DELTA_OK:
        if (!c->bin.quiet) {
            unsigned char v[8];
            put_be64(v, value);
            out_head(c, BIN_OK, NULL, 0, NULL, 0, sizeof(v), cas);
            conn_out(c, (const char *)v, sizeof(v));
        }
        return PROTO_NEXT_CMD;
    case DELTA_NON_NUMERIC:
        return reply_error(c, BIN_DELTA_BADVAL, NULL);
    case DELTA_EXISTS:
        return reply_error(c, BIN_KEY_EEXISTS, NULL);
    case DELTA_NO_MEMORY:
        return reply_error(c, BIN_ENOMEM, NULL);
    case DELTA_NOT_FOUND:
        break;
    }
    return reply_error(c, BIN_KEY_ENOENT, NULL);
}

/* ---- Server commands ---- */

/* Optional extras: the expiry of a delayed flush. */
static enum proto_next bin_flush(struct conn *c, const struct bin_req *rq, int arg)
{
    if (!settings.flush_enabled)
        return reply_error(c, BIN_AUTH_ERROR, NULL);
    rel_time_t when = rq->extlen == 4 ? bin_realtime(rq->extras) : 0;
    storage_flush(when, c->ts);
    return reply_ok(c, 0);
}

static enum proto_next bin_noop(struct conn *c, const struct bin_req *rq, int arg)
{
    out_head(c, BIN_OK, NULL, 0, NULL, 0, 0, 0);
    return PROTO_NEXT_CMD;
}

static enum proto_next bin_version(struct conn *c, const struct bin_req *rq, int arg)
{
    static const char version[] = MC_PROTOCOL_VERSION;
    out_head(c, BIN_OK, NULL, 0, NULL, 0, sizeof(version) - 1, 0);
    conn_out(c, version, sizeof(version) - 1);
    return PROTO_NEXT_CMD;
}

/* quit answers, then closes; quitq just closes (after earlier answers). */
static enum proto_next bin_quit(struct conn *c, const struct bin_req *rq, int arg)
{
    reply_ok(c, 0);
    return PROTO_CLOSE;
}

/* Extras: the level.  memcached caps what a command can set at 2 (-vv). */
static enum proto_next bin_verbosity(struct conn *c, const struct bin_req *rq, int arg)
{
    uint32_t level = get_be32(rq->extras);
    __atomic_store_n(&settings.verbose, level > 2 ? 2 : (int)level, __ATOMIC_RELAXED);
    return reply_ok(c, 0);
}

/* SASL list/auth/step, as a memcached without SASL: "Unknown command",
 * with any value skipped. */
static enum proto_next bin_sasl(struct conn *c, const struct bin_req *rq, int arg)
{
    uint32_t vlen = rq->bodylen - rq->extlen - rq->keylen;
    reply_error(c, BIN_UNKNOWN_COMMAND, NULL);
    return vlen > 0 ? conn_swallow_value(c, vlen) : PROTO_NEXT_CMD;
}

/* ---- stat ---- */

/* One stat answer: the name as key, the value as value.  Names are the
 * reports' own short names. */
static void bin_add_stat(const char *name, size_t nlen, const char *val,
                         size_t vlen, void *ctx)
{
    struct conn *c = ctx;
    out_head(c, BIN_OK, NULL, 0, name, (uint16_t)nlen, (uint32_t)(nlen + vlen), 0);
    conn_out(c, val, vlen);
}

static bool key_is(const struct bin_req *rq, const char *word)
{
    size_t len = strlen(word);
    return rq->keylen == len && memcmp(rq->key, word, len) == 0;
}

/* The group is the key; every answer ends with an empty packet. */
static enum proto_next bin_stat(struct conn *c, const struct bin_req *rq, int arg)
{
    if (rq->keylen == 0) {
        stats_report_general(bin_add_stat, c);
    } else if (key_is(rq, "settings")) {
        stats_report_settings(bin_add_stat, c);
    } else if (key_is(rq, "items")) {
        storage_report_items(bin_add_stat, c);
    } else if (key_is(rq, "slabs")) {
        struct thread_stats sum;
        stats_aggregate(&sum);
        storage_report_slabs(bin_add_stat, c, &sum);
    } else if (key_is(rq, "sizes")) {
        storage_report_sizes(bin_add_stat, c);
    } else if (key_is(rq, "reset")) {
        stats_reset();
        storage_stats_reset();
        conn_stats_reset();
        stats_prefix_clear();
    } else if (key_is(rq, "detail on") || key_is(rq, "detail off")) {
        __atomic_store_n(&settings.detail_enabled, key_is(rq, "detail on"),
                         __ATOMIC_RELAXED);
    } else if (key_is(rq, "detail dump")) {
        size_t len;
        char *dump = stats_prefix_dump(&len);
        if (!dump)
            return reply_error(c, BIN_ENOMEM, NULL);
        bin_add_stat("detailed", 8, dump, len, c);
        free(dump);
    } else {
        return reply_error(c, BIN_KEY_ENOENT, NULL);
    }
    out_head(c, BIN_OK, NULL, 0, NULL, 0, 0, 0);
    return PROTO_NEXT_CMD;
}

/* ---- The opcode table ---- */

typedef enum proto_next (*bin_handler)(struct conn *c, const struct bin_req *rq, int arg);

/* What a request must look like ("shape"); anything else is "Invalid
 * arguments" and closes the connection. */
#define SHAPE_KEY 0x01      /* a key is required */
#define SHAPE_NO_KEY 0x02   /* a key is not allowed */
#define SHAPE_VALUE 0x04    /* a value may follow (the handler reads or
                             * skips it); otherwise there must be none */
#define SHAPE_EXT_OPT 0x08  /* the extras may also be left out */

struct bin_command {
    bin_handler run;        /* NULL: an opcode memcached does not serve */
    uint8_t extlen;         /* the extras' length */
    uint8_t shape;          /* SHAPE_* */
    bool quiet;
    int arg;
};

#define GET(a, q) {bin_get, 0, SHAPE_KEY, q, a}
#define TOUCH(a, q) {bin_get, 4, SHAPE_KEY, q, GET_TOUCH | (a)}
#define STORE(op, ext, q) {bin_store, ext, SHAPE_KEY | SHAPE_VALUE, q, op}

static const struct bin_command commands[BIN_OPCODES] = {
    [BIN_GET] = GET(0, false),
    [BIN_GETQ] = GET(0, true),
    [BIN_GETK] = GET(GET_KEY, false),
    [BIN_GETKQ] = GET(GET_KEY, true),
    [BIN_SET] = STORE(STORE_OP_SET, 8, false),
    [BIN_SETQ] = STORE(STORE_OP_SET, 8, true),
    [BIN_ADD] = STORE(STORE_OP_ADD, 8, false),
    [BIN_ADDQ] = STORE(STORE_OP_ADD, 8, true),
    [BIN_REPLACE] = STORE(STORE_OP_REPLACE, 8, false),
    [BIN_REPLACEQ] = STORE(STORE_OP_REPLACE, 8, true),
    [BIN_APPEND] = STORE(STORE_OP_APPEND, 0, false),
    [BIN_APPENDQ] = STORE(STORE_OP_APPEND, 0, true),
    [BIN_PREPEND] = STORE(STORE_OP_PREPEND, 0, false),
    [BIN_PREPENDQ] = STORE(STORE_OP_PREPEND, 0, true),
    [BIN_DELETE] = {bin_delete, 0, SHAPE_KEY, false, 0},
    [BIN_DELETEQ] = {bin_delete, 0, SHAPE_KEY, true, 0},
    [BIN_INCREMENT] = {bin_arith, 20, SHAPE_KEY, false, 1},
    [BIN_INCREMENTQ] = {bin_arith, 20, SHAPE_KEY, true, 1},
    [BIN_DECREMENT] = {bin_arith, 20, SHAPE_KEY, false, 0},
    [BIN_DECREMENTQ] = {bin_arith, 20, SHAPE_KEY, true, 0},
    [BIN_TOUCH] = TOUCH(GET_NO_VALUE, false),
    [BIN_GAT] = TOUCH(0, false),
    [BIN_GATQ] = TOUCH(0, true),
    [BIN_GATK] = TOUCH(GET_KEY, false),
    [BIN_GATKQ] = TOUCH(GET_KEY, true),
    [BIN_QUIT] = {bin_quit, 0, SHAPE_NO_KEY, false, 0},
    [BIN_QUITQ] = {bin_quit, 0, SHAPE_NO_KEY, true, 0},
    [BIN_FLUSH] = {bin_flush, 4, SHAPE_NO_KEY | SHAPE_EXT_OPT, false, 0},
    [BIN_FLUSHQ] = {bin_flush, 4, SHAPE_NO_KEY | SHAPE_EXT_OPT, true, 0},
    [BIN_NOOP] = {bin_noop, 0, SHAPE_NO_KEY, false, 0},
    [BIN_VERSION] = {bin_version, 0, SHAPE_NO_KEY, false, 0},
    [BIN_STAT] = {bin_stat, 0, 0, false, 0},
    [BIN_VERBOSITY] = {bin_verbosity, 4, SHAPE_NO_KEY, false, 0},
    [BIN_SASL_LIST_MECHS] = {bin_sasl, 0, SHAPE_NO_KEY, false, 0},
    [BIN_SASL_AUTH] = {bin_sasl, 0, SHAPE_KEY | SHAPE_VALUE, false, 0},
    [BIN_SASL_STEP] = {bin_sasl, 0, SHAPE_KEY | SHAPE_VALUE, false, 0},
};

/* Extras, key and value lengths allowed for cmd. */
static bool shape_ok(const struct bin_command *cmd, const struct bin_req *rq)
{
    uint32_t vlen = rq->bodylen - rq->extlen - rq->keylen;
    if (rq->extlen != cmd->extlen && !(cmd->shape & SHAPE_EXT_OPT && rq->extlen == 0))
        return false;
    if ((cmd->shape & SHAPE_KEY) && rq->keylen == 0)
        return false;
    if ((cmd->shape & SHAPE_NO_KEY) && rq->keylen != 0)
        return false;
    return vlen == 0 || (cmd->shape & SHAPE_VALUE);
}

static void decode_header(const unsigned char *h, struct bin_req *rq)
{
    rq->opcode = h[1];
    rq->keylen = get_be16(h + 2);
    rq->extlen = h[4];
    rq->bodylen = get_be32(h + 8);
    rq->opaque = get_be32(h + 12);
    rq->cas = get_be64(h + 16);
    rq->extras = h + BIN_HEADER_LEN;
    rq->key = (const char *)h + BIN_HEADER_LEN + rq->extlen;
}

enum proto_next proto_bin_process(struct conn *c)
{
    if (c->rbytes < BIN_HEADER_LEN)
        return PROTO_NEED_DATA;
    const unsigned char *h = (const unsigned char *)c->rcurr;
    if (h[0] != PROTO_BIN_REQ_MAGIC) {
        mc_log(1, "<%d invalid binary request magic 0x%02x; closing connection",
               c->fd, h[0]);
        return PROTO_CLOSE;
    }
    struct bin_req rq;
    decode_header(h, &rq);
    c->bin.opcode = rq.opcode;
    c->bin.opaque = rq.opaque;
    c->bin.quiet = false;
    if ((uint32_t)rq.keylen + rq.extlen > rq.bodylen)
        return reject_frame(c, &rq, BIN_UNKNOWN_COMMAND);
    if (rq.keylen > KEY_MAX_LENGTH)
        return reject_frame(c, &rq, BIN_EINVAL);
    const struct bin_command *cmd = rq.opcode < BIN_OPCODES ? &commands[rq.opcode] : NULL;
    if (!cmd || !cmd->run) {
        mc_log(2, "<%d unknown binary opcode 0x%02x", c->fd, rq.opcode);
        conn_consume(c, BIN_HEADER_LEN);
        reply_error(c, BIN_UNKNOWN_COMMAND, NULL);
        return rq.bodylen > 0 ? conn_swallow_value(c, rq.bodylen) : PROTO_NEXT_CMD;
    }
    if (!shape_ok(cmd, &rq))
        return reject_frame(c, &rq, BIN_EINVAL);
    /* Everything but a value is acted on from the buffer. */
    size_t need = BIN_HEADER_LEN +
                  (cmd->shape & SHAPE_VALUE ? (size_t)rq.extlen + rq.keylen : rq.bodylen);
    if (c->rbytes < need)
        return PROTO_NEED_DATA;
    conn_consume(c, need);
    c->bin.quiet = cmd->quiet;
    if (settings.verbose >= 2)
        mc_logf("<%d binary opcode 0x%02x key %.*s", c->fd, rq.opcode,
                (int)rq.keylen, rq.key);
    return cmd->run(c, &rq, cmd->arg);
}

void proto_bin_abort(struct conn *c)
{
    if (c->bin.it) {
        item_release(c->bin.it);
        c->bin.it = NULL;
    }
}
