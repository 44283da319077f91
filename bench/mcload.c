/*
 * mcload.c - a load generator for memcached's text protocol, the client
 * side of scripts/bench.
 *
 * Three modes, one per job the suite needs:
 *   load (default)  closed-loop traffic for -D seconds: every connection
 *                   sends a batch of -d requests in one write(), waits for
 *                   all of their answers, and sends the next batch.  A
 *                   request is a set (-S percent of them) or a get of -w
 *                   random keys out of -k.  -r caps the total request rate
 *                   (the background load of the lag scenario).
 *   fill (-F)       sets every key of the key space exactly once, batched
 *                   -d deep, then exits (pre-loading a server).
 *   lag (-L)        replication lag: set a fresh key on the -s node, and as
 *                   soon as it answers STORED, get that key from the -L
 *                   node again and again until it is there.
 *
 * It prints one line of key=value figures on stdout (see print_result and
 * run_lag), so that the suite can parse it; diagnostics go to stderr.
 * Counting: a "request" is one command; "keys" counts the keys it names
 * (a multi-get of 16 is 1 request, 16 keys; a set is 1 and 1).  Latency is
 * per request: from the write() of its batch to the read() that completed
 * its answer.
 *
 * Threads: -t threads, each with its own epoll set, its own share of the
 * connections, its own random generator and its own counters.  They share
 * only the read-only configuration and the value bytes; main() sums their
 * counters after joining them.  No locks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Read buffer of a connection.  Values are skipped as they stream through,
 * so only an answer's text line has to fit in it. */
#define RBUF_SIZE 65536
/* Longest key this tool makes: prefix (at most KEY_PREFIX_MAX) + 20 digits. */
#define KEY_PREFIX_MAX 64
#define KEY_MAX (KEY_PREFIX_MAX + 20)
/* Latency histogram: 1 us buckets up to HIST_LINEAR, then HIST_SUB buckets
 * per power of two (precision better than 2%) up to 2^HIST_TOP_POW us. */
#define HIST_LINEAR 1024
#define HIST_SUB 64
#define HIST_LINEAR_POW 10
#define HIST_TOP_POW 40
#define HIST_BUCKETS (HIST_LINEAR + (HIST_TOP_POW - HIST_LINEAR_POW) * HIST_SUB)
/* After -D seconds, how long the answers still in flight are waited for. */
#define DRAIN_NS 2000000000LL
/* Lag mode: a key not seen on the observer after this long counts as lost. */
#define LAG_GIVE_UP_NS 2000000000LL

struct config {
    struct sockaddr_storage addr;      /* -s: the server under load */
    socklen_t addrlen;
    struct sockaddr_storage lag_addr;  /* -L: the observing node */
    socklen_t lag_addrlen;
    bool fill;
    unsigned conns;
    unsigned threads;
    unsigned depth;
    unsigned width;
    unsigned set_pct;
    unsigned value_size;
    uint64_t keyspace;
    double duration;
    double rate;                       /* requests/s over all threads; 0 = no cap */
    unsigned lag_gap_us;
    const char *prefix;
};

static struct config cfg = {
    .conns = 10, .threads = 1, .depth = 1, .width = 1, .set_pct = 10,
    .value_size = 100, .keyspace = 100000, .duration = 2.0, .rate = 0,
    .lag_gap_us = 500, .prefix = "key:",
};

/* The value every set sends: value_size bytes of a printable pattern, then
 * CRLF.  Built once, read by all threads. */
static char *value_bytes;

/* What every thread counts; summed into one at the end. */
struct counters {
    uint64_t requests;
    uint64_t keys;
    uint64_t sets;
    uint64_t gets;
    uint64_t hits;
    uint64_t misses;
    uint64_t errors;
    uint64_t max_ns;
    uint64_t hist[HIST_BUCKETS];
};

enum req_type { REQ_GET, REQ_SET };

struct conn {
    int fd;
    /* The batch in flight: its request types in order, how many have been
     * answered, when it was written. */
    uint8_t *types;
    unsigned batch;
    unsigned answered;
    uint64_t sent_ns;
    /* Values seen so far in the answer of the current get. */
    unsigned values;
    /* Bytes of value data plus CRLF still to skip in the input. */
    size_t skip;
    char *wbuf;
    size_t wlen;
    size_t woff;
    bool want_out;
    char rbuf[RBUF_SIZE];
    size_t rlen;
    /* Fill mode: next key of this connection, and the stride between its
     * keys (the total number of connections). */
    uint64_t next_key;
    uint64_t key_step;
};

struct worker {
    pthread_t tid;
    struct conn *conns;
    unsigned nconns;
    uint64_t rng;
    uint64_t start_ns;
    uint64_t end_ns;
    /* -r share of this thread, and requests it has started so far. */
    double rate;
    uint64_t started;
    int epfd;
    struct counters c;
};

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* xorshift64*: cheap and good enough to spread keys uniformly. */
static uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

/* ---- Latency histogram ---- */

/* Bucket of a latency of us microseconds: exact below HIST_LINEAR, then
 * HIST_SUB buckets per power of two; the last bucket holds everything above. */
static unsigned hist_bucket(uint64_t us)
{
    if (us < HIST_LINEAR)
        return (unsigned)us;
    unsigned pow = 63 - (unsigned)__builtin_clzll(us);
    if (pow >= HIST_TOP_POW)
        return HIST_BUCKETS - 1;
    unsigned sub = (unsigned)(us >> (pow - 6)) & (HIST_SUB - 1);
    return HIST_LINEAR + (pow - HIST_LINEAR_POW) * HIST_SUB + sub;
}

/* Smallest latency (us) that falls in bucket b: the inverse of hist_bucket. */
static uint64_t hist_floor(unsigned b)
{
    if (b < HIST_LINEAR)
        return b;
    unsigned pow = HIST_LINEAR_POW + (b - HIST_LINEAR) / HIST_SUB;
    unsigned sub = (b - HIST_LINEAR) % HIST_SUB;
    return ((uint64_t)(HIST_SUB + sub)) << (pow - 6);
}

static void hist_add(struct counters *c, uint64_t ns)
{
    c->hist[hist_bucket(ns / 1000)]++;
    if (ns > c->max_ns)
        c->max_ns = ns;
}

/* Latency (us) below which a fraction q of the samples fall. */
static uint64_t hist_quantile(const struct counters *c, double q)
{
    uint64_t total = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        total += c->hist[b];
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total);
    if (rank >= total)
        rank = total - 1;
    uint64_t seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++) {
        seen += c->hist[b];
        if (seen > rank)
            return hist_floor(b);
    }
    return hist_floor(HIST_BUCKETS - 1);
}

static void counters_add(struct counters *into, const struct counters *from)
{
    into->requests += from->requests;
    into->keys += from->keys;
    into->sets += from->sets;
    into->gets += from->gets;
    into->hits += from->hits;
    into->misses += from->misses;
    into->errors += from->errors;
    if (from->max_ns > into->max_ns)
        into->max_ns = from->max_ns;
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        into->hist[b] += from->hist[b];
}

/* ---- Sockets ---- */

/* Parse "host:port" or "[v6]:port" into a socket address; exit on error. */
static void parse_addr(const char *spec, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host)) {
        fprintf(stderr, "mcload: bad address '%s' (want host:port)\n", spec);
        exit(2);
    }
    size_t hlen = (size_t)(colon - spec);
    memcpy(host, spec, hlen);
    host[hlen] = '\0';
    char *h = host;
    if (h[0] == '[' && hlen > 2 && h[hlen - 1] == ']') {
        h[hlen - 1] = '\0';
        h++;
    }
    struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *res;
    int rc = getaddrinfo(h, colon + 1, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "mcload: %s: %s\n", spec, gai_strerror(rc));
        exit(2);
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
}

/* A connected TCP socket to addr with Nagle off; exit if the server is not
 * there (the suite starts it first, so that is a real failure). */
static int connect_to(const struct sockaddr_storage *addr, socklen_t len)
{
    int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket");
    if (connect(fd, (const struct sockaddr *)addr, len) < 0)
        die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* ---- Requests ---- */

static size_t put_key(char *p, uint64_t k)
{
    return (size_t)sprintf(p, "%s%08" PRIu64, cfg.prefix, k);
}

static size_t put_set(char *p, uint64_t k)
{
    size_t n = (size_t)sprintf(p, "set ");
    n += put_key(p + n, k);
    n += (size_t)sprintf(p + n, " 0 0 %u\r\n", cfg.value_size);
    memcpy(p + n, value_bytes, cfg.value_size + 2);
    return n + cfg.value_size + 2;
}

/* Room one request may take in a write buffer. */
static size_t request_room(void)
{
    size_t set = 32 + KEY_MAX + cfg.value_size + 2;
    size_t get = 8 + (size_t)cfg.width * (KEY_MAX + 1);
    return set > get ? set : get;
}

static void out_interest(struct worker *w, struct conn *c, bool want_out)
{
    if (c->want_out == want_out)
        return;
    struct epoll_event ev = { .events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        die("epoll_ctl");
    c->want_out = want_out;
}

/* Write what is left of the batch; wait for EPOLLOUT if the socket is full. */
static void flush_out(struct worker *w, struct conn *c)
{
    while (c->woff < c->wlen) {
        ssize_t n = write(c->fd, c->wbuf + c->woff, c->wlen - c->woff);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN)
                die("write");
            out_interest(w, c, true);
            return;
        }
        c->woff += (size_t)n;
    }
    out_interest(w, c, false);
}

/* How many requests the next batch of a connection may hold: the depth, cut
 * by the rate cap, or what is left of the fill.  0 means wait. */
static unsigned batch_size(struct worker *w, struct conn *c, uint64_t now)
{
    unsigned n = cfg.depth;
    if (cfg.fill) {
        uint64_t left = c->next_key < cfg.keyspace
            ? (cfg.keyspace - c->next_key + c->key_step - 1) / c->key_step : 0;
        if (left < n)
            n = (unsigned)left;
    }
    if (w->rate > 0) {
        double allowed = w->rate * (double)(now - w->start_ns) / 1e9 - (double)w->started;
        if (allowed < (double)n)
            n = allowed < 1 ? 0 : (unsigned)allowed;
    }
    return n;
}

/* Build the connection's next batch and write it.  Returns false when it
 * has nothing to send now (fill done, or the rate cap says wait). */
static bool start_batch(struct worker *w, struct conn *c, uint64_t now)
{
    unsigned n = batch_size(w, c, now);
    if (n == 0)
        return false;
    char *p = c->wbuf;
    for (unsigned i = 0; i < n; i++) {
        bool set = cfg.fill || rng_next(&w->rng) % 100 < cfg.set_pct;
        if (set) {
            uint64_t k = cfg.fill ? c->next_key : rng_next(&w->rng) % cfg.keyspace;
            c->next_key += c->key_step;
            p += put_set(p, k);
            c->types[i] = REQ_SET;
        } else {
            memcpy(p, "get", 3);
            p += 3;
            for (unsigned j = 0; j < cfg.width; j++) {
                *p++ = ' ';
                p += put_key(p, rng_next(&w->rng) % cfg.keyspace);
            }
            *p++ = '\r';
            *p++ = '\n';
            c->types[i] = REQ_GET;
        }
    }
    c->batch = n;
    c->answered = 0;
    c->values = 0;
    c->wlen = (size_t)(p - c->wbuf);
    c->woff = 0;
    c->sent_ns = now;
    w->started += n;
    flush_out(w, c);
    return true;
}

/* The current request of c got its whole answer at time now. */
static void request_done(struct worker *w, struct conn *c, uint64_t now, bool ok)
{
    struct counters *k = &w->c;
    k->requests++;
    if (c->types[c->answered] == REQ_SET) {
        k->sets++;
        k->keys++;
    } else {
        k->gets++;
        k->keys += cfg.width;
        k->hits += c->values;
        k->misses += cfg.width - (c->values < cfg.width ? c->values : cfg.width);
    }
    if (!ok)
        k->errors++;
    hist_add(k, now - c->sent_ns);
    c->answered++;
    c->values = 0;
}

/* Report the first few unexpected answer lines on stderr: they say why a
 * run went wrong (out of memory, a protocol mismatch). */
static void report_bad_line(const char *line, size_t len)
{
    static unsigned reported;
    if (__atomic_fetch_add(&reported, 1, __ATOMIC_RELAXED) < 3)
        fprintf(stderr, "mcload: unexpected answer: %.*s\n", (int)len, line);
}

/* Consume answers from the read buffer.  Returns false on a protocol error
 * (an answer nobody asked for). */
static bool parse_answers(struct worker *w, struct conn *c, uint64_t now)
{
    size_t pos = 0;
    while (pos < c->rlen) {
        if (c->skip > 0) {
            size_t n = c->rlen - pos < c->skip ? c->rlen - pos : c->skip;
            pos += n;
            c->skip -= n;
            continue;
        }
        char *line = c->rbuf + pos;
        char *nl = memchr(line, '\n', c->rlen - pos);
        if (!nl)
            break;
        size_t len = (size_t)(nl - line) + 1;
        pos += len;
        if (c->answered >= c->batch) {
            report_bad_line(line, len);
            return false;
        }
        bool get = c->types[c->answered] == REQ_GET;
        if (get && len > 6 && memcmp(line, "VALUE ", 6) == 0) {
            /* VALUE <key> <flags> <bytes> [<cas>] */
            char *sp = memchr(line + 6, ' ', len - 6);
            sp = sp ? memchr(sp + 1, ' ', (size_t)(nl - sp)) : NULL;
            if (!sp) {
                report_bad_line(line, len);
                return false;
            }
            c->skip = strtoull(sp + 1, NULL, 10) + 2;
            c->values++;
            continue;
        }
        bool ok = get ? (len == 5 && memcmp(line, "END\r\n", 5) == 0)
                      : (len == 8 && memcmp(line, "STORED\r\n", 8) == 0);
        if (!ok)
            report_bad_line(line, len);
        request_done(w, c, now, ok);
    }
    c->rlen -= pos;
    memmove(c->rbuf, c->rbuf + pos, c->rlen);
    return true;
}

/* Read what the socket has.  Returns false when the connection is gone. */
static bool read_in(struct worker *w, struct conn *c, uint64_t now)
{
    ssize_t n = read(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen);
    if (n < 0)
        return errno == EAGAIN || errno == EINTR;
    if (n == 0) {
        fprintf(stderr, "mcload: the server closed a connection\n");
        return false;
    }
    c->rlen += (size_t)n;
    if (!parse_answers(w, c, now))
        return false;
    if (c->rlen == RBUF_SIZE) {
        fprintf(stderr, "mcload: an answer line longer than %d bytes\n", RBUF_SIZE);
        return false;
    }
    return true;
}

/* ---- Load and fill ---- */

static void worker_setup(struct worker *w, unsigned first_conn)
{
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (w->epfd < 0)
        die("epoll_create1");
    size_t room = request_room() * cfg.depth;
    w->conns = calloc(w->nconns, sizeof(*w->conns));
    if (!w->conns)
        die("calloc");
    for (unsigned i = 0; i < w->nconns; i++) {
        struct conn *c = &w->conns[i];
        c->fd = connect_to(&cfg.addr, cfg.addrlen);
        if (fcntl(c->fd, F_SETFL, O_NONBLOCK) < 0)
            die("fcntl");
        c->types = malloc(cfg.depth);
        c->wbuf = malloc(room);
        if (!c->types || !c->wbuf)
            die("malloc");
        c->next_key = first_conn + i;
        c->key_step = cfg.conns;
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
            die("epoll_ctl");
    }
}

/* Close a thread's connections and free what worker_setup allocated. */
static void worker_teardown(struct worker *w)
{
    for (unsigned i = 0; i < w->nconns; i++) {
        close(w->conns[i].fd);
        free(w->conns[i].types);
        free(w->conns[i].wbuf);
    }
    free(w->conns);
    close(w->epfd);
}

/* One thread of load or fill: start a batch on every connection, then
 * answer by answer, start the next batch of each connection whose batch is
 * complete, until -D seconds are over (load) or every key is stored
 * (fill).  Answers still in flight at the end are waited for, DRAIN_NS at
 * most; the run's time stops with the last of them. */
static void *worker_run(void *arg)
{
    struct worker *w = arg;
    struct epoll_event evs[64];
    bool *in_flight = calloc(w->nconns, sizeof(*in_flight));
    if (!in_flight)
        die("calloc");
    unsigned busy = 0;
    uint64_t now = now_ns();
    w->start_ns = now;
    w->end_ns = cfg.fill ? UINT64_MAX : now + (uint64_t)(cfg.duration * 1e9);
    for (unsigned i = 0; i < w->nconns; i++)
        if ((in_flight[i] = start_batch(w, &w->conns[i], now)))
            busy++;
    for (;;) {
        bool stopping = now >= w->end_ns;
        if (w->rate > 0 && !stopping)
            for (unsigned i = 0; i < w->nconns; i++)
                if (!in_flight[i] && (in_flight[i] = start_batch(w, &w->conns[i], now)))
                    busy++;
        if (busy == 0 && (stopping || cfg.fill))
            break;
        if (stopping && now >= w->end_ns + DRAIN_NS)
            break;
        int n = epoll_wait(w->epfd, evs, 64, w->rate > 0 ? 1 : 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        now = now_ns();
        stopping = now >= w->end_ns;
        for (int e = 0; e < n; e++) {
            struct conn *c = evs[e].data.ptr;
            unsigned i = (unsigned)(c - w->conns);
            if (evs[e].events & EPOLLOUT)
                flush_out(w, c);
            if ((evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) && !read_in(w, c, now))
                exit(1);
            if (in_flight[i] && c->answered == c->batch) {
                busy--;
                if ((in_flight[i] = !stopping && start_batch(w, c, now)))
                    busy++;
            }
        }
    }
    w->end_ns = now;
    free(in_flight);
    return NULL;
}

static void print_result(const char *mode, const struct counters *c, double seconds)
{
    printf("mode=%s requests=%" PRIu64 " keys=%" PRIu64 " sets=%" PRIu64 " gets=%" PRIu64
           " hits=%" PRIu64 " misses=%" PRIu64 " errors=%" PRIu64 " seconds=%.3f"
           " req_per_s=%.0f keys_per_s=%.0f p50_us=%" PRIu64 " p90_us=%" PRIu64
           " p99_us=%" PRIu64 " p999_us=%" PRIu64 " max_us=%.1f\n",
           mode, c->requests, c->keys, c->sets, c->gets, c->hits, c->misses, c->errors,
           seconds, (double)c->requests / seconds, (double)c->keys / seconds,
           hist_quantile(c, 0.50), hist_quantile(c, 0.90), hist_quantile(c, 0.99),
           hist_quantile(c, 0.999), (double)c->max_ns / 1000.0);
}

/* Load or fill: cfg.conns connections spread over cfg.threads threads. */
static void run_load(void)
{
    struct worker *ws = calloc(cfg.threads, sizeof(*ws));
    if (!ws)
        die("calloc");
    unsigned first = 0;
    for (unsigned t = 0; t < cfg.threads; t++) {
        struct worker *w = &ws[t];
        w->nconns = cfg.conns / cfg.threads + (t < cfg.conns % cfg.threads);
        w->rng = 0x9E3779B97F4A7C15ULL * (t + 1) ^ (uint64_t)getpid() << 20 ^ now_ns();
        w->rate = cfg.rate / cfg.threads;
        worker_setup(w, first);
        first += w->nconns;
    }
    for (unsigned t = 0; t < cfg.threads; t++)
        if (pthread_create(&ws[t].tid, NULL, worker_run, &ws[t]) != 0)
            die("pthread_create");
    static struct counters total;
    uint64_t start = UINT64_MAX, end = 0;
    for (unsigned t = 0; t < cfg.threads; t++) {
        pthread_join(ws[t].tid, NULL);
        counters_add(&total, &ws[t].c);
        if (ws[t].start_ns < start)
            start = ws[t].start_ns;
        if (ws[t].end_ns > end)
            end = ws[t].end_ns;
        worker_teardown(&ws[t]);
    }
    free(ws);
    print_result(cfg.fill ? "fill" : "load", &total, (double)(end - start) / 1e9);
}

/* ---- Lag ---- */

/* Send all of buf on a blocking socket. */
static void send_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            die("write");
        buf += n;
        len -= (size_t)n;
    }
}

/* Read one whole answer from a blocking socket into buf: up to a line that
 * is `last` (a get's "END\r\n"), or up to the first line when last is NULL,
 * or an error line.  Returns its length. */
static size_t read_answer(int fd, char *buf, size_t cap, const char *last)
{
    size_t len = 0, ll = last ? strlen(last) : 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, cap - len - 1);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            fprintf(stderr, "mcload: lag: the server closed the connection\n");
            exit(1);
        }
        len += (size_t)n;
        buf[len] = '\0';
        if (len < 2 || memcmp(buf + len - 2, "\r\n", 2) != 0)
            continue;
        if (!last || strstr(buf, "ERROR") == buf || strstr(buf, "_ERROR ") != NULL ||
            (len >= ll && memcmp(buf + len - ll, last, ll) == 0))
            return len;
    }
}

/* Lag mode: for -D seconds, set a fresh key on node A; from its STORED on,
 * get it from node B until B has it.  The lag of a sample is the time from
 * A's STORED to the answer from B that holds the value (an upper bound: B
 * may have had it up to one get round trip earlier).  A key B still lacks
 * after LAG_GIVE_UP_NS is counted as lost.  -g microseconds pass between
 * samples on average. */
static void run_lag(void)
{
    int a = connect_to(&cfg.addr, cfg.addrlen);
    int b = connect_to(&cfg.lag_addr, cfg.lag_addrlen);
    size_t cap = cfg.value_size + 1024;
    char *req = malloc(cap), *ans = malloc(cap);
    if (!req || !ans)
        die("malloc");
    static struct counters c;
    uint64_t lost = 0, polls = 0, samples = 0;
    uint64_t rng = now_ns() | 1;
    uint64_t end = now_ns() + (uint64_t)(cfg.duration * 1e9);
    for (uint64_t i = 0; now_ns() < end; i++) {
        char key[KEY_MAX + 16];
        snprintf(key, sizeof(key), "%s%d:%" PRIu64, cfg.prefix, (int)getpid(), i);
        int n = snprintf(req, cap, "set %s 0 0 %u\r\n", key, cfg.value_size);
        memcpy(req + n, value_bytes, cfg.value_size + 2);
        send_all(a, req, (size_t)n + cfg.value_size + 2);
        size_t len = read_answer(a, ans, cap, NULL);
        if (len != 8 || memcmp(ans, "STORED\r\n", 8) != 0) {
            fprintf(stderr, "mcload: lag: set answered %.*s", (int)len, ans);
            exit(1);
        }
        uint64_t stored = now_ns();
        n = snprintf(req, cap, "get %s\r\n", key);
        for (;;) {
            send_all(b, req, (size_t)n);
            len = read_answer(b, ans, cap, "END\r\n");
            polls++;
            uint64_t t = now_ns();
            if (len > 6 && memcmp(ans, "VALUE ", 6) == 0) {
                hist_add(&c, t - stored);
                samples++;
                break;
            }
            if (t - stored > LAG_GIVE_UP_NS) {
                lost++;
                break;
            }
        }
        /* A random pause, uniform in [0, 2 * -g): with a fixed one the
         * samples lock in phase with the sender's batching period and the
         * percentiles measure that phase instead of the lag. */
        if (cfg.lag_gap_us)
            usleep((useconds_t)(rng_next(&rng) % (2 * (uint64_t)cfg.lag_gap_us)));
    }
    uint64_t min_us = 0;
    for (unsigned bkt = 0; bkt < HIST_BUCKETS; bkt++)
        if (c.hist[bkt]) {
            min_us = hist_floor(bkt);
            break;
        }
    printf("mode=lag samples=%" PRIu64 " lost=%" PRIu64 " polls_per_sample=%.2f min_us=%" PRIu64
           " p50_us=%" PRIu64 " p90_us=%" PRIu64 " p99_us=%" PRIu64 " p999_us=%" PRIu64
           " max_us=%.1f\n",
           samples, lost, samples + lost ? (double)polls / (double)(samples + lost) : 0.0,
           min_us, hist_quantile(&c, 0.50), hist_quantile(&c, 0.90),
           hist_quantile(&c, 0.99), hist_quantile(&c, 0.999), (double)c.max_ns / 1000.0);
    free(req);
    free(ans);
    close(a);
    close(b);
}

/* ---- Command line ---- */

static void usage(FILE *to)
{
    fprintf(to,
        "usage: mcload -s host:port [options]\n"
        "  -s host:port  server to load (in lag mode: the node written to)\n"
        "  -c N          connections (default 10)\n"
        "  -t N          client threads (default 1)\n"
        "  -d N          requests per write, i.e. pipeline depth (default 1)\n"
        "  -w N          keys per get, i.e. multi-get width (default 1)\n"
        "  -S PCT        percent of requests that are sets (default 10)\n"
        "  -v BYTES      value size (default 100)\n"
        "  -k N          key space: keys are <prefix><8+ digits> below N (default 100000)\n"
        "  -P PREFIX     key prefix (default \"key:\")\n"
        "  -D SECONDS    duration (default 2)\n"
        "  -r RATE       cap on requests per second over all connections (default none)\n"
        "  -F            fill: set each key of the key space once, then exit\n"
        "  -L host:port  lag mode: set on -s, then get from this node until it has the key\n"
        "  -g USEC       lag mode: mean random pause between samples (default 500)\n"
        "Prints one line of key=value figures.\n");
}

/* A positive integer option value, or exit with a message. */
static uint64_t arg_uint(int opt, const char *s, uint64_t min, uint64_t max)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "mcload: -%c wants a number from %" PRIu64 " to %" PRIu64 "\n",
                opt, min, max);
        exit(2);
    }
    return v;
}

static double arg_double(int opt, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end || end == s || !(v >= 0)) {
        fprintf(stderr, "mcload: -%c wants a non-negative number\n", opt);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    const char *server = NULL, *observer = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "s:c:t:d:w:S:v:k:P:D:r:FL:g:h")) != -1) {
        switch (opt) {
        case 's': server = optarg; break;
        case 'c': cfg.conns = (unsigned)arg_uint(opt, optarg, 1, 10000); break;
        case 't': cfg.threads = (unsigned)arg_uint(opt, optarg, 1, 64); break;
        case 'd': cfg.depth = (unsigned)arg_uint(opt, optarg, 1, 4096); break;
        case 'w': cfg.width = (unsigned)arg_uint(opt, optarg, 1, 1000); break;
        case 'S': cfg.set_pct = (unsigned)arg_uint(opt, optarg, 0, 100); break;
        case 'v': cfg.value_size = (unsigned)arg_uint(opt, optarg, 0, 64 << 20); break;
        case 'k': cfg.keyspace = arg_uint(opt, optarg, 1, UINT64_MAX); break;
        case 'P':
            if (strlen(optarg) > KEY_PREFIX_MAX) {
                fprintf(stderr, "mcload: -P longer than %d bytes\n", KEY_PREFIX_MAX);
                return 2;
            }
            cfg.prefix = optarg;
            break;
        case 'D': cfg.duration = arg_double(opt, optarg); break;
        case 'r': cfg.rate = arg_double(opt, optarg); break;
        case 'F': cfg.fill = true; break;
        case 'L': observer = optarg; break;
        case 'g': cfg.lag_gap_us = (unsigned)arg_uint(opt, optarg, 0, 10000000); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (!server || optind != argc) {
        usage(stderr);
        return 2;
    }
    if (cfg.threads > cfg.conns)
        cfg.threads = cfg.conns;
    parse_addr(server, &cfg.addr, &cfg.addrlen);
    value_bytes = malloc(cfg.value_size + 2);
    if (!value_bytes)
        die("malloc");
    for (unsigned i = 0; i < cfg.value_size; i++)
        value_bytes[i] = (char)('a' + i % 26);
    memcpy(value_bytes + cfg.value_size, "\r\n", 2);
    if (observer) {
        parse_addr(observer, &cfg.lag_addr, &cfg.lag_addrlen);
        run_lag();
    } else {
        run_load();
    }
    free(value_bytes);
    return 0;
}
