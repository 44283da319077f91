/*
 * proto_meta.c - memcached's meta commands (memcached-protocol.txt, "Meta
 * Commands" and "Meta Debug" to "Meta No-Op"): mg, ms, md, ma, mn and me,
 * with memcached's exact answers.
 *
 * Owns: parsing a meta line (key, flags and their tokens), base64 keys,
 * the answers (return code, the flags echoed back in request order, mg's
 * W/X/Z markers), and the state of an ms between its line and its value
 * (struct proto_meta_pending, in proto_text.h because it lives in the
 * text protocol's per-connection state).  What a command does to the
 * cache is storage.h's (storage_mget, storage_store_ex, storage_mdelete,
 * storage_delta_item, storage_debug), the same code the text and binary
 * protocols call, so every meta mutation replicates like its twin.
 *
 * A line is checked in memcached's order, which decides which error a
 * line with several faults gets: a missing key is "ERROR"; a key longer
 * than KEY_MAX_LENGTH, or ms's missing or bad <datalen>, is "CLIENT_ERROR
 * bad command line format"; 20 words or more are too many; then a pass
 * over the flags stops at the first unknown or repeated one; then, in
 * request order, the base64 key (b) is decoded and every flag's token is
 * parsed, whichever command uses it, the last fault deciding the error;
 * then F's token; then ms's and ma's modes and the opaque's length.  md
 * and ma answer "invalid or duplicate flag" for every fault before the
 * modes.  Every error of ms after its <datalen> was read discards the
 * value that follows.
 *
 * Answers: "q" drops mg's EN, ms's and md's HD, and ma's HD or VA; every
 * other answer is sent.  On a miss or a failure only O and k are echoed
 * (and ms's c, as 0).  A key given in base64 is returned in base64
 * followed by " b" (decided by the request: 1.6.18's mg decides by how
 * the item was stored).
 *
 * Where memcached 1.6.18 (the oracle) and the 1.6.45 documentation
 * differ, this follows the documentation: E (explicit new CAS) is taken
 * by mg (for a vivified item), ms, md and ma; md takes x; ms's s returns
 * the stored size; ms's N vivifies a missed append; ma's T sets the
 * expiry; mg's C with a matching CAS drops the value; q also silences an
 * ma that vivified; mg and me return a base64 key in base64; me's exp is
 * the seconds left (1.6.18 prints it negated).  And it is stricter than
 * 1.6.18 in two places: a too long opaque rejects an mg or ma before it
 * changes anything (1.6.18 acts first), and an ms always discards its
 * value after an error (1.6.18 runs it as a command after a too long
 * opaque).  One simplification: "C0" (compare with CAS 0) in md and ma
 * means no comparison.
 *
 * The line is parsed in place (tokens point into the read buffer; a
 * number's token is NUL-terminated where it stands) and the answer is
 * formatted straight into the connection's output, the value sent from
 * item memory: no allocation per command.
 *
 * Threads: runs on the connection's worker thread.
 */
#include "proto_meta.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "clock.h"
#include "conn.h"
#include "memcached.h"
#include "stats_report.h"
#include "storage.h"
#include "util.h"

/* Words after the command name a line may have (memcached refuses 20
 * words or more, the name included). */
#define META_ARGS_MAX 18
/* Bytes of an opaque token after its "O". */
#define META_OPAQUE_MAX 31
/* Longest answer line: code, size and every flag (a key in base64 is
 * the longest one). */
#define META_LINE_MAX 1024

#define ERR_BAD_FORMAT "CLIENT_ERROR bad command line format"
#define ERR_FLAG_MD_MA "CLIENT_ERROR invalid or duplicate flag"

/* The flags every meta command accepts (memcached checks them all
 * alike; a command ignores those it has no use for). */
#define META_FLAGS "bcfhklqstuvxCDEFIJLMNOPRT"

/* What the commands differ in. */
struct meta_rules {
    const char *returns;    /* the flags echoed back in the answer */
    const char *too_many;   /* 20 words or more */
    const char *any_error;  /* md, ma: the one message of every flag and
                             * key error; NULL: each its own */
};

static const struct meta_rules rules[] = {
    [META_MG] = {"cfhklOst", "CLIENT_ERROR options flags are too long", NULL},
    [META_MS] = {"ckOs", "CLIENT_ERROR options flags too long", NULL},
    [META_MD] = {"kO", "CLIENT_ERROR options flags too long", ERR_FLAG_MD_MA},
    [META_MA] = {"ckOt", "CLIENT_ERROR options flags too long", ERR_FLAG_MD_MA},
};

/* A parsed meta line. */
struct meta_req {
    const struct meta_rules *rules;
    struct proto_token *flag;   /* the flags, in request order */
    int nflags;
    uint64_t seen;              /* flag_bit() of every flag given */
    char ret[9];                /* the flags to echo, in request order */
    const char *key;            /* the key as stored (decoded under b) */
    size_t nkey;
    const char *opaque;         /* O's token */
    size_t nopaque;
    uint64_t cas_in;            /* C */
    uint64_t cas_new;           /* E */
    uint64_t delta;             /* D */
    uint64_t initial;           /* J */
    int64_t ttl;                /* T */
    int64_t vivify_ttl;         /* N */
    int64_t last_ttl;           /* the later of T and N (ma uses one) */
    int64_t recache_ttl;        /* R */
    uint32_t client_flags;      /* F */
    char mode;                  /* M */
    unsigned char keybuf[KEY_MAX_LENGTH];
};

/* ---- Base64 keys ---- */

static const char b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *proto_meta_base64(char *out, const unsigned char *in, size_t n)
{
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n)
            v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n)
            v |= in[i + 2];
        *out++ = b64_digits[v >> 18 & 63];
        *out++ = b64_digits[v >> 12 & 63];
        *out++ = i + 1 < n ? b64_digits[v >> 6 & 63] : '=';
        *out++ = i + 2 < n ? b64_digits[v & 63] : '=';
    }
    return out;
}

/* The value of a base64 digit, -1 for any other byte. */
static int b64_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '+')
        return 62;
    if (ch == '/')
        return 63;
    return -1;
}

/* Decode padded base64 [in, in + n) into out (room for 3 * n / 4 bytes).
 * Returns the decoded length, 0 when the input is not padded base64. */
static size_t base64_decode(const char *in, size_t n, unsigned char *out)
{
    size_t o = 0;
    if (n == 0 || n % 4 != 0)
        return 0;
    for (size_t i = 0; i < n; i += 4) {
        uint32_t w = 0;
        int pad = 0;
        for (int j = 0; j < 4; j++) {
            unsigned char ch = (unsigned char)in[i + j];
            int v = 0;
            if (ch == '=' && j >= 2 && i + 4 == n) {
                pad++;
            } else if (pad > 0 || (v = b64_value(ch)) < 0) {
                return 0;
            }
            w = w << 6 | (uint32_t)v;
        }
        out[o++] = (unsigned char)(w >> 16);
        if (pad < 2)
            out[o++] = (unsigned char)(w >> 8);
        if (pad < 1)
            out[o++] = (unsigned char)w;
    }
    return o;
}

/* ---- Parsing ---- */

/* A flag's bit in meta_req.seen; -1 for a byte no flag can be. */
static int flag_bit(char f)
{
    if (f >= 'a' && f <= 'z')
        return f - 'a';
    if (f >= 'A' && f <= 'Z')
        return f - 'A' + 26;
    return -1;
}

static bool has(const struct meta_req *r, char f)
{
    return (r->seen >> flag_bit(f)) & 1;
}

/* Was flag a given before flag b (which is given)? */
static bool given_before(const struct meta_req *r, char a, char b)
{
    for (int i = 0; i < r->nflags; i++) {
        if (r->flag[i].s[0] == a)
            return true;
        if (r->flag[i].s[0] == b)
            return false;
    }
    return false;
}

/* A token as a C string: terminated in place, over the blank or line
 * end that follows it inside the consumed line. */
static const char *token_cstr(struct proto_token *t)
{
    t->s[t->len] = '\0';
    return t->s;
}

/* The token of a flag, after its letter. */
static const char *flag_arg(struct proto_token *t)
{
    return token_cstr(t) + 1;
}

/* First pass: every flag a known one, none twice (the first fault
 * decides the error); note the ones the command echoes. */
static const char *check_flags(struct meta_req *r)
{
    size_t nret = 0;
    for (int i = 0; i < r->nflags; i++) {
        char f = r->flag[i].s[0];
        int bit = flag_bit(f);
        if (bit < 0 || strchr(META_FLAGS, f) == NULL)
            return "CLIENT_ERROR invalid flag";
        if ((r->seen >> bit) & 1)
            return "CLIENT_ERROR duplicate flag";
        r->seen |= (uint64_t)1 << bit;
        if (strchr(r->rules->returns, f) != NULL)
            r->ret[nret++] = f;
    }
    r->ret[nret] = '\0';
    return NULL;
}

/* Second pass, in request order: the base64 key (b) and the tokens of
 * the flags that take one, whichever command uses them.  As in memcached,
 * every one is parsed and the last fault decides the error; F's token is
 * only looked at when all else is well. */
static const char *parse_tokens(struct meta_req *r, const struct proto_token *key)
{
    const char *err = NULL;
    const char *client_flags = NULL;
    for (int i = 0; i < r->nflags; i++) {
        struct proto_token *t = &r->flag[i];
        const char *arg = flag_arg(t);
        bool ok = true;
        switch (t->s[0]) {
        case 'b':
            r->nkey = base64_decode(key->s, key->len, r->keybuf);
            r->key = (const char *)r->keybuf;
            if (r->nkey == 0)
                err = "CLIENT_ERROR error decoding key";
            break;
        case 'O':
            r->opaque = arg;
            r->nopaque = t->len - 1;
            break;
        case 'T':
            ok = safe_strtoll(arg, &r->ttl);
            r->last_ttl = r->ttl;
            break;
        case 'N':
            ok = safe_strtoll(arg, &r->vivify_ttl);
            r->last_ttl = r->vivify_ttl;
            break;
        case 'R':
            ok = safe_strtoll(arg, &r->recache_ttl);
            break;
        case 'C':
            ok = safe_strtoull(arg, &r->cas_in);
            break;
        case 'E':
            ok = safe_strtoull(arg, &r->cas_new);
            break;
        case 'D':
            if (!safe_strtoull(arg, &r->delta))
                err = "CLIENT_ERROR invalid numeric delta value";
            break;
        case 'J':
            if (!safe_strtoull(arg, &r->initial))
                err = "CLIENT_ERROR invalid numeric initial value";
            break;
        case 'F':
            client_flags = arg;
            break;
        case 'M':
            if (t->len != 2)
                err = "CLIENT_ERROR incorrect length for M token";
            r->mode = t->s[1];
            break;
        default:
            break;
        }
        if (!ok)
            err = "CLIENT_ERROR bad token in command line format";
    }
    if (err == NULL && client_flags != NULL &&
        !safe_strtoul(client_flags, &r->client_flags))
        err = ERR_BAD_FORMAT;
    return err;
}

/* The checks memcached makes once the line is parsed: ms's and ma's
 * modes, then the opaque's length. */
static const char *check_values(const struct meta_req *r, int cmd)
{
    if (has(r, 'M') && cmd == META_MS && strchr("EAPRS", r->mode) == NULL)
        return "CLIENT_ERROR invalid mode for ms M token";
    if (has(r, 'M') && cmd == META_MA && strchr("I+D-", r->mode) == NULL)
        return "CLIENT_ERROR invalid mode for ma M token";
    if (r->nopaque > META_OPAQUE_MAX)
        return "CLIENT_ERROR opaque token too long";
    return NULL;
}

/* Check the flags, then decode the key and parse the tokens: NULL, or
 * the error line. */
static const char *parse(struct meta_req *r, struct proto_token *key, int cmd)
{
    r->key = key->s;
    r->nkey = key->len;
    const char *err = check_flags(r);
    if (err == NULL)
        err = parse_tokens(r, key);
    if (err != NULL)
        return r->rules->any_error != NULL ? r->rules->any_error : err;
    return check_values(r, cmd);
}

/* ---- Answers ---- */

/* Queue a whole line given without its "\r\n" (errors, "MN"). */
static enum proto_next out_line(struct conn *c, const char *s)
{
    conn_out(c, s, strlen(s));
    conn_out(c, "\r\n", 2);
    if (settings.verbose >= 2)
        mc_logf(">%d %s", c->fd, s);
    return PROTO_NEXT_CMD;
}

/* An answer line being formatted in the connection's output. */
struct answer {
    char *start;
    char *p;
};

/* Start a line with its return code (and, for "VA", the value's size).
 * False when output memory ran out (the connection is being closed). */
static bool answer_begin(struct conn *c, struct answer *a, const char *code,
                         bool with_size, uint64_t size)
{
    a->start = a->p = conn_out_reserve(c, META_LINE_MAX);
    if (a->start == NULL)
        return false;
    memcpy(a->p, code, 2);
    a->p += 2;
    if (with_size) {
        *a->p++ = ' ';
        a->p = item_fmt_u64(a->p, size);
    }
    return true;
}

static void answer_end(struct conn *c, struct answer *a)
{
    if (settings.verbose >= 2)
        mc_logf(">%d %.*s", c->fd, (int)(a->p - a->start), a->start);
    *a->p++ = '\r';
    *a->p++ = '\n';
    conn_out_commit(c, (size_t)(a->p - a->start));
}

static void put_u64(struct answer *a, char flag, uint64_t v)
{
    *a->p++ = ' ';
    *a->p++ = flag;
    a->p = item_fmt_u64(a->p, v);
}

static void put_bytes(struct answer *a, char flag, const char *s, size_t n)
{
    *a->p++ = ' ';
    *a->p++ = flag;
    memcpy(a->p, s, n);
    a->p += n;
}

/* " k<key>", or " k<base64 key> b" for a key given in base64. */
static void put_key(struct answer *a, const char *key, size_t nkey, bool b64)
{
    if (!b64) {
        put_bytes(a, 'k', key, nkey);
        return;
    }
    *a->p++ = ' ';
    *a->p++ = 'k';
    a->p = proto_meta_base64(a->p, (const unsigned char *)key, nkey);
    memcpy(a->p, " b", 2);
    a->p += 2;
}

/* " t<seconds left>", -1 for never; as memcached, the difference is
 * printed unsigned (an expiry just set in the past wraps). */
static void put_ttl(struct answer *a, rel_time_t exptime)
{
    if (exptime == 0) {
        memcpy(a->p, " t-1", 4);
        a->p += 4;
        return;
    }
    put_u64(a, 't', (uint32_t)(exptime - current_time));
}

/* What an answer's echoed flags report. */
struct echo {
    const char *ret;            /* flags to echo, request order */
    const char *key;
    size_t nkey;
    bool b64;
    const char *opaque;
    size_t nopaque;
    const item *it;             /* NULL: a miss or failure, where only O
                                 * and k are echoed (and c as 0 when
                                 * zero_cas) */
    bool zero_cas;
    rel_time_t exptime;         /* what t reports */
    const struct mget_info *info;   /* mg: h and l */
};

static void put_echo(struct answer *a, const struct echo *e)
{
    for (const char *f = e->ret; *f; f++) {
        if (*f == 'O') {
            put_bytes(a, 'O', e->opaque, e->nopaque);
        } else if (*f == 'k') {
            put_key(a, e->key, e->nkey, e->b64);
        } else if (e->it == NULL) {
            if (*f == 'c' && e->zero_cas)
                put_u64(a, 'c', 0);
        } else if (*f == 'c') {
            put_u64(a, 'c', e->it->cas);
        } else if (*f == 'f') {
            put_u64(a, 'f', e->it->client_flags);
        } else if (*f == 's') {
            put_u64(a, 's', e->it->nbytes - 2);
        } else if (*f == 't') {
            put_ttl(a, e->exptime);
        } else if (*f == 'h') {
            put_u64(a, 'h', e->info->fetched_before);
        } else if (*f == 'l') {
            put_u64(a, 'l', current_time - e->info->last_access);
        }
    }
}

/* The echo of a parsed line. */
static struct echo echo_of(const struct meta_req *r, const item *it)
{
    struct echo e = {
        .ret = r->ret, .key = r->key, .nkey = r->nkey, .b64 = has(r, 'b'),
        .opaque = r->opaque, .nopaque = r->nopaque, .it = it,
        .exptime = it != NULL ? it->exptime : 0,
    };
    return e;
}

/* A line of a return code and the echoed flags. */
static enum proto_next answer(struct conn *c, const char *code,
                              const struct echo *e)
{
    struct answer a;
    if (answer_begin(c, &a, code, false, 0)) {
        put_echo(&a, e);
        answer_end(c, &a);
    }
    return PROTO_NEXT_CMD;
}

/* ---- mg ---- */

static enum proto_next meta_get(struct conn *c, struct meta_req *r)
{
    struct mget_req g = {
        .no_bump = has(r, 'u'),
        .touch = has(r, 'T'),
        .exptime = realtime(r->ttl),
        .vivify = has(r, 'N'),
        .vivify_exptime = realtime(r->vivify_ttl),
        .cas_new = r->cas_new,
        .recache = has(r, 'R'),
        .recache_ttl = r->recache_ttl,
    };
    struct mget_info info;
    item *it = storage_mget(r->key, r->nkey, &g, &info, c->ts);
    if (settings.detail_enabled)
        stats_prefix_record_get(r->key, r->nkey, it != NULL);
    struct echo e = echo_of(r, it);
    if (it == NULL)
        return has(r, 'q') ? PROTO_NEXT_CMD : answer(c, "EN", &e);

    /* C: a client that holds this version doesn't need the value. */
    bool value = has(r, 'v') && !(has(r, 'C') && r->cas_in == it->cas);
    e.info = &info;
    /* memcached applies N and T as it walks the flags, so a t asked
     * before them reports the expiry as it was at that point. */
    if (info.created && given_before(r, 't', 'N'))
        e.exptime = 0;
    else if (has(r, 'T') && given_before(r, 't', 'T'))
        e.exptime = info.exptime_before;
    struct answer a;
    if (!answer_begin(c, &a, value ? "VA" : "HD", value, it->nbytes - 2)) {
        item_release(it);
        return PROTO_NEXT_CMD;
    }
    put_echo(&a, &e);
    if (info.token_sent) {
        memcpy(a.p, " Z", 2);
        a.p += 2;
    }
    if (info.stale) {
        memcpy(a.p, " X", 2);
        a.p += 2;
    }
    if (info.won) {
        memcpy(a.p, " W", 2);
        a.p += 2;
    }
    answer_end(c, &a);
    if (value)
        conn_out_item(c, it);
    else
        item_release(it);
    return PROTO_NEXT_CMD;
}

/* ---- ms ---- */

/* The store_req of ms's mode and flags: C makes set and replace a cas
 * (NF on a miss, as memcached answers); add ignores C; append and prepend
 * compare it and, with N, create a missing key. */
static struct store_req store_req_of(const struct meta_req *r)
{
    struct store_req req = {
        .cas_new = r->cas_new,
        .invalidate = has(r, 'I'),
    };
    switch (r->mode) {
    case 'E':
        req.op = STORE_OP_ADD;
        break;
    case 'A':
    case 'P':
        req.op = r->mode == 'A' ? STORE_OP_APPEND : STORE_OP_PREPEND;
        req.cas_in = r->cas_in;
        req.vivify = has(r, 'N');
        break;
    default: /* S, R */
        req.op = has(r, 'C') ? STORE_OP_CAS
                 : r->mode == 'R' ? STORE_OP_REPLACE : STORE_OP_SET;
        req.cas_in = r->cas_in;
        break;
    }
    return req;
}

/* ms <key> <datalen> <flags>*: allocate the item and read the value into
 * it; the answer waits for proto_meta_value_read(). */
static enum proto_next meta_set(struct conn *c, struct meta_req *r,
                                size_t vlen)
{
    struct store_req req = store_req_of(r);
    bool appending = req.op == STORE_OP_APPEND || req.op == STORE_OP_PREPEND;
    /* An append keeps the item's expiry; only one it creates (N) has one. */
    rel_time_t exptime = realtime(appending ? r->vivify_ttl : r->ttl);
    if (settings.detail_enabled)
        stats_prefix_record_set(r->key, r->nkey);
    enum alloc_result why = ALLOC_OK;
    item *it = storage_alloc(r->key, r->nkey, r->client_flags, exptime,
                             vlen + 2, &why, c->ts);
    if (it == NULL) {
        out_line(c, why == ALLOC_TOO_LARGE
                        ? "SERVER_ERROR object too large for cache"
                        : "SERVER_ERROR out of memory storing object");
        /* As set: a value that could not be stored must not leave the old
         * one readable (not a client delete: counted nowhere). */
        if (req.op == STORE_OP_SET)
            storage_delete(r->key, r->nkey, 0, conn_scratch_stats(c));
        return conn_swallow_value(c, vlen + 2);
    }
    struct proto_meta_pending *m = &c->text.meta;
    m->it = it;
    m->req = req;
    m->quiet = has(r, 'q');
    m->base64_key = has(r, 'b');
    _Static_assert(sizeof(m->ret) > 4, "ms echoes at most c k O s");
    strcpy(m->ret, r->ret);
    m->opaque_len = (uint8_t)r->nopaque;
    memcpy(m->opaque, r->opaque, r->nopaque);
    return conn_expect_value(c, ITEM_data(it), vlen + 2);
}

enum proto_next proto_meta_value_read(struct conn *c)
{
    struct proto_meta_pending *m = &c->text.meta;
    item *it = m->it;
    m->it = NULL;
    const char *crlf = ITEM_data(it) + it->nbytes - 2;
    if (crlf[0] != '\r' || crlf[1] != '\n') {
        item_release(it);
        return out_line(c, "CLIENT_ERROR bad data chunk");
    }
    item *stored;
    enum store_result r = storage_store_ex(it, &m->req, &stored, c->ts);
    struct echo e = {
        .ret = m->ret, .key = ITEM_key(it), .nkey = it->nkey,
        .b64 = m->base64_key, .opaque = m->opaque, .nopaque = m->opaque_len,
        .it = stored, .zero_cas = true,
    };
    const char *code = "NS";    /* also append/prepend out of memory */
    if (r == STORE_STORED)
        code = "HD";
    else if (r == STORE_EXISTS)
        code = "EX";
    else if (r == STORE_NOT_FOUND)
        code = "NF";
    if (r != STORE_STORED || !m->quiet)
        answer(c, code, &e);
    if (stored != NULL)
        item_release(stored);
    item_release(it);
    return PROTO_NEXT_CMD;
}

void proto_meta_abort(struct conn *c)
{
    if (c->text.meta.it != NULL) {
        item_release(c->text.meta.it);
        c->text.meta.it = NULL;
    }
}

/* ---- md ---- */

static enum proto_next meta_delete(struct conn *c, struct meta_req *r)
{
    struct mdelete_req req = {
        .cas_in = r->cas_in,
        .invalidate = has(r, 'I'),
        .remove_value = has(r, 'x'),
        .exptime_set = has(r, 'T'),
        .exptime = realtime(r->ttl),
        .cas_new = r->cas_new,
    };
    if (settings.detail_enabled)
        stats_prefix_record_delete(r->key, r->nkey);
    struct echo e = echo_of(r, NULL);
    switch (storage_mdelete(r->key, r->nkey, &req, c->ts)) {
    case DELETE_DELETED:
        return has(r, 'q') ? PROTO_NEXT_CMD : answer(c, "HD", &e);
    case DELETE_EXISTS:
        return answer(c, "EX", &e);
    case DELETE_NOT_FOUND:
        break;
    }
    return answer(c, "NF", &e);
}

/* ---- ma ---- */

static enum proto_next meta_arith(struct conn *c, struct meta_req *r)
{
    /* memcached keeps one expiry for ma: N and T set the same one. */
    struct delta_req req = {
        .incr = r->mode != 'D' && r->mode != '-',
        .delta = has(r, 'D') ? r->delta : 1,
        .cas_in = r->cas_in,
        .cas_new = r->cas_new,
        .vivify = has(r, 'N'),
        .initial = r->initial,
        .exptime = realtime(r->last_ttl),
        .exptime_set = has(r, 'T'),
    };
    uint64_t value = 0;
    item *it;
    struct echo e = echo_of(r, NULL);
    switch (storage_delta_item(r->key, r->nkey, &req, &value, &it, c->ts)) {
    case DELTA_OK:
        break;
    case DELTA_NOT_FOUND:
        return answer(c, "NF", &e);
    case DELTA_EXISTS:
        return answer(c, "EX", &e);
    case DELTA_NON_NUMERIC:
        return out_line(c, "CLIENT_ERROR cannot increment or decrement "
                           "non-numeric value");
    case DELTA_NO_MEMORY:
        /* A key that could not be created is "not stored". */
        return req.vivify ? answer(c, "NS", &e)
                          : out_line(c, "SERVER_ERROR out of memory");
    }
    if (!has(r, 'q')) {
        char digits[24];
        size_t len = (size_t)(item_fmt_u64(digits, value) - digits);
        bool with_value = has(r, 'v');
        struct answer a;
        e.it = it;
        e.exptime = it->exptime;
        if (answer_begin(c, &a, with_value ? "VA" : "HD", with_value, len)) {
            put_echo(&a, &e);
            answer_end(c, &a);
            if (with_value) {
                memcpy(digits + len, "\r\n", 2);
                conn_out(c, digits, len + 2);
            }
        }
    }
    item_release(it);
    return PROTO_NEXT_CMD;
}

/* ---- me, mn ---- */

/* me <key> [b]: memcached's debug line for a key, counted in cmd_meta. */
static enum proto_next meta_debug(struct conn *c, char *rest, char *end)
{
    struct proto_token key, flag;
    unsigned char keybuf[KEY_MAX_LENGTH];
    if (!proto_next_token(&rest, end, &key) || key.len > KEY_MAX_LENGTH)
        return out_line(c, ERR_BAD_FORMAT);
    const char *k = key.s;
    size_t nkey = key.len;
    bool b64 = proto_next_token(&rest, end, &flag) && flag.len == 1 &&
               flag.s[0] == 'b';
    if (b64) {
        nkey = base64_decode(key.s, key.len, keybuf);
        if (nkey == 0)
            return out_line(c, ERR_BAD_FORMAT);
        k = (const char *)keybuf;
    }
    STATS_INCR(c->ts, meta_cmds);
    struct storage_item_debug d;
    if (!storage_debug(k, nkey, &d))
        return out_line(c, "EN");
    struct answer a;
    if (answer_begin(c, &a, "ME", false, 0)) {
        /* The key goes back the way it came, in base64 under b. */
        *a.p++ = ' ';
        if (b64) {
            a.p = proto_meta_base64(a.p, keybuf, nkey);
        } else {
            memcpy(a.p, k, nkey);
            a.p += nkey;
        }
        a.p += snprintf(a.p, META_LINE_MAX - (size_t)(a.p - a.start) - 2,
                        " exp=%lld la=%lu cas=%llu fetch=%s cls=%u size=%zu",
                        (long long)d.ttl, (unsigned long)d.idle,
                        (unsigned long long)d.cas, d.fetched ? "yes" : "no",
                        d.clsid, d.size);
        answer_end(c, &a);
    }
    return PROTO_NEXT_CMD;
}

/* ---- Dispatch ---- */

enum proto_next proto_meta_command(struct conn *c, char *rest, char *end,
                                   int cmd)
{
    if (cmd == META_MN)
        return out_line(c, "MN");
    if (cmd == META_ME)
        return meta_debug(c, rest, end);

    /* The key, ms's <datalen>, the flags; one word more is too many. */
    struct proto_token word[META_ARGS_MAX + 1];
    int n = 0;
    while (n < META_ARGS_MAX + 1 && proto_next_token(&rest, end, &word[n]))
        n++;
    if (n == 0)
        return out_line(c, "ERROR");
    if (word[0].len > KEY_MAX_LENGTH)
        return out_line(c, ERR_BAD_FORMAT);
    int first_flag = 1;
    int32_t vlen = 0;
    if (cmd == META_MS) {
        if (n < 2 || !safe_strtol(token_cstr(&word[1]), &vlen) ||
            vlen < 0 || vlen > INT_MAX - 2)
            return out_line(c, ERR_BAD_FORMAT);
        first_flag = 2;
    }
    struct meta_req r = {
        .rules = &rules[cmd],
        .opaque = "",
        .flag = word + first_flag,
        .nflags = n - first_flag,
    };
    if (n > META_ARGS_MAX)
        return out_line(c, r.rules->too_many);
    const char *err = parse(&r, &word[0], cmd);
    if (err != NULL) {
        out_line(c, err);
        return cmd == META_MS ? conn_swallow_value(c, (size_t)vlen + 2)
                              : PROTO_NEXT_CMD;
    }
    switch (cmd) {
    case META_MG:
        return meta_get(c, &r);
    case META_MS:
        return meta_set(c, &r, (size_t)vlen);
    case META_MD:
        return meta_delete(c, &r);
    default:
        return meta_arith(c, &r);
    }
}
