/*
 * thread.c - the server's threads: the main thread (listening sockets,
 * accept, the clock, signals, stopping) and the worker threads that serve
 * connections.
 *
 * What this module owns:
 *   - the listening sockets: TCP on every address of -l (default: every
 *     interface, IPv4 and IPv6), or the UNIX socket of -s; UDP sockets on
 *     -U, on the same addresses;
 *   - settings.num_threads workers, each with its own event base, its
 *     thread_stats block, and a queue of accepted sockets fed by the main
 *     thread through an eventfd (round robin);
 *   - the stop sequence.
 *
 * Main thread: accepts (non-blocking, several per event), asks conn.c to
 * admit each socket (-c), and queues it to the next worker.  With
 * -o no_maxconns_fast, or when accept() runs out of file descriptors, it
 * stops listening instead (listen_disabled_num) and its clock timer, which
 * calls clock_tick() every CLOCK_TICK_MS, turns listening back on when
 * there is room again.  SIGTERM and SIGINT stop the server, SIGUSR1 stops
 * it gracefully (memcached's "shutdown graceful" signal); SIGHUP and
 * SIGPIPE are ignored.  Signals are delivered through libevent's signal
 * events, so no work happens in a signal handler; the workers block them.
 *
 * Stopping (server_request_stop, from any thread, or a signal): the main
 * loop ends, the TCP/UNIX listeners are closed (no new connections), every
 * worker is told through its eventfd to close its connections (graceful:
 * after trying once to send what they have queued) and exits, the workers
 * are joined, and only then are the UDP sockets closed.
 *
 * Locking: a worker's queue and stop flag are guarded by its queue_lock
 * (taken once per accepted connection); the listener gauges are atomics
 * read by "stats" on worker threads; everything else belongs to one
 * thread.
 */
#include "config.h"

#include "thread.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/event.h>

#include "clock.h"
#include "conn.h"
#include "memcached.h"
#include "options.h"
#include "util.h"

#define CLOCK_TICK_MS 100
#define ACCEPTS_PER_EVENT 64
#define LISTENER_NAME_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) + 16)

struct listener {
    int fd;
    enum conn_transport transport;
    char name[LISTENER_NAME_MAX];   /* "tcp:127.0.0.1:11211": stats conns */
    rel_time_t opened;              /* for secs_since_last_cmd */
    struct event ev;
    bool ev_added;
};

/* An accepted socket on its way to a worker. */
struct pending_conn {
    int fd;
    enum conn_transport transport;
    const char *listen_name;
    struct pending_conn *next;
};

enum stop_mode {
    STOP_NONE = 0,
    STOP_GRACEFUL = 1,
    STOP_NOW = 2,   /* stronger: wins over a graceful request */
};

struct worker {
    pthread_t tid;
    struct event_base *base;
    int notify_fd;                  /* eventfd: queue not empty, or stop */
    struct event notify_ev;
    pthread_mutex_t queue_lock;
    struct pending_conn *queue_head, *queue_tail;
    enum stop_mode stop;            /* under queue_lock */
    struct thread_stats stats;
    struct conn_thread *ct;
};

static struct listener *listeners;
static int nlisteners;
static struct worker *workers;
static int nworkers;
static unsigned next_worker;

static struct event_base *main_base;
static struct event *clock_ev;
static struct event *stop_ev;

static const int stop_signals[] = {SIGTERM, SIGINT, SIGUSR1};
static struct event *signal_evs[sizeof(stop_signals) / sizeof(stop_signals[0])];

/* The set of stop_signals. */
static sigset_t stop_signal_set(void)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
        sigaddset(&set, stop_signals[i]);
    return set;
}

void server_hold_signals(void)
{
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_BLOCK, &set, NULL);
}

static int stop_fd = -1;
static int stop_requested;          /* enum stop_mode, atomic */

/* Listener gauges (atomics: read by "stats" on worker threads). */
static bool accepting = true;
static uint64_t listen_disabled_num;
static uint64_t time_in_listen_disabled_us;
static struct timeval disabled_since;   /* main thread only */

static pthread_mutex_t ready_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t ready_cond = PTHREAD_COND_INITIALIZER;
static int workers_ready;
static bool workers_failed;         /* a worker could not set itself up */

#define ATOMIC_GET(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)
#define ATOMIC_SET(v, x) __atomic_store_n(&(v), (x), __ATOMIC_RELAXED)

/* ---- Listening sockets ---- */

static struct listener *listener_add(int fd, enum conn_transport t, const char *name)
{
    struct listener *l = realloc(listeners, sizeof(*l) * (size_t)(nlisteners + 1));
    if (!l)
        return NULL;
    listeners = l;
    l = &listeners[nlisteners++];
    memset(l, 0, sizeof(*l));
    l->fd = fd;
    l->transport = t;
    l->opened = current_time;
    snprintf(l->name, sizeof(l->name), "%s", name);
    return l;
}

/* "tcp:127.0.0.1:11211" / "udp6:[::1]:11211" of a bound socket (the
 * names memcached's "stats conns" uses). */
static void inet_name(int fd, bool udp, char *buf, size_t len)
{
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    const char *proto = udp ? "udp" : "tcp";
    if (getsockname(fd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
            snprintf(buf, len, "%s6:[%s]:%u", proto, host, port);
            return;
        }
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    }
    snprintf(buf, len, "%s:%s:%u", proto, host, port);
}

/* One socket bound to ai, listening (TCP) or ready to receive (UDP).
 * Returns -1 with errno set. */
static int open_inet_socket(const struct addrinfo *ai, bool udp)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
    if (udp) {
        /* Room for the bursts a multi-datagram reply makes. */
        int size = 4 << 20;
        setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
    } else {
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 ||
        (!udp && listen(fd, settings.backlog) != 0)) {
        int err = errno;
        close(fd);
        errno = err;
        return -1;
    }
    return fd;
}

/* Listen on host (NULL = every interface) and port, on every address it
 * resolves to.  An address family the machine lacks is skipped, as long as
 * one address works. */
static bool listen_inet(const char *host, int port, bool udp)
{
    const char *kind = udp ? "UDP" : "TCP";
    char portstr[8];
    snprintf(portstr, sizeof(portstr), "%d", port);
    struct addrinfo hints = {
        .ai_flags = AI_PASSIVE,
        .ai_family = AF_UNSPEC,
        .ai_socktype = udp ? SOCK_DGRAM : SOCK_STREAM,
    };
    struct addrinfo *res;
    int gai = getaddrinfo(host, portstr, &hints, &res);
    if (gai != 0) {
        fprintf(stderr, "failed to listen on %s port %d: cannot resolve '%s': %s\n",
                kind, port, host ? host : "*", gai_strerror(gai));
        return false;
    }
    int opened = 0, err = 0;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = open_inet_socket(ai, udp);
        if (fd < 0) {
            err = errno;
            /* No IPv6 (or IPv4) on this machine: skip that address, for the
             * wildcard also when the family exists but has no address. */
            if (err == EAFNOSUPPORT || (host == NULL && err == EADDRNOTAVAIL))
                continue;
            break;
        }
        char name[LISTENER_NAME_MAX];
        inet_name(fd, udp, name, sizeof(name));
        if (!listener_add(fd, udp ? CONN_UDP : CONN_TCP, name)) {
            close(fd);
            err = ENOMEM;
            break;
        }
        opened++;
        err = 0;
    }
    freeaddrinfo(res);
    if (err != 0 || opened == 0) {
        if (host)
            fprintf(stderr, "failed to listen on %s port %d: %s (interface %s)\n",
                    kind, port, strerror(err ? err : EADDRNOTAVAIL), host);
        else
            fprintf(stderr, "failed to listen on %s port %d: %s\n", kind, port,
                    strerror(err ? err : EADDRNOTAVAIL));
        return false;
    }
    return true;
}

/* One entry of -l: "host", "host:port", "[v6]", "[v6]:port" or a bare
 * IPv6 address.  A port given here overrides -p for TCP. */
static bool listen_interface(char *spec)
{
    char *host = spec, *port = NULL;
    if (spec[0] == '[') {
        char *close_br = strchr(spec, ']');
        if (!close_br) {
            fprintf(stderr, "failed to listen: bad address '%s' in -l\n", spec);
            return false;
        }
        *close_br = '\0';
        host = spec + 1;
        if (close_br[1] == ':')
            port = close_br + 2;
    } else {
        char *colon = strchr(spec, ':');
        if (colon && !strchr(colon + 1, ':')) {
            *colon = '\0';
            port = colon + 1;
        }
    }
    int tcp_port = settings.port;
    if (port) {
        int32_t p;
        if (!safe_strtol(port, &p) || p < 0 || p > 65535) {
            fprintf(stderr, "failed to listen: bad port '%s' in -l\n", port);
            return false;
        }
        tcp_port = p;
    }
    if (tcp_port > 0 && !listen_inet(host, tcp_port, false))
        return false;
    if (settings.udpport > 0 && !listen_inet(host, settings.udpport, true))
        return false;
    return true;
}

static bool listen_unix(const char *path)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "failed to listen on UNIX socket %s: path too long\n", path);
        return false;
    }
    strcpy(sun.sun_path, path);
    /* A socket file left by an earlier run would make bind() fail. */
    struct stat st;
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
        unlink(path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        fprintf(stderr, "failed to listen on UNIX socket %s: %s\n", path, strerror(errno));
        return false;
    }
    mode_t old_mask = umask((mode_t)(~settings.access & 0777));
    int rc = bind(fd, (struct sockaddr *)&sun, sizeof(sun));
    umask(old_mask);
    if (rc != 0 || listen(fd, settings.backlog) != 0) {
        fprintf(stderr, "failed to listen on UNIX socket %s: %s\n", path, strerror(errno));
        close(fd);
        return false;
    }
    char name[LISTENER_NAME_MAX];
    snprintf(name, sizeof(name), "unix:%s", path);
    if (!listener_add(fd, CONN_UNIX, name)) {
        close(fd);
        return false;
    }
    return true;
}

/* Every listener settings ask for: the UNIX socket alone, or TCP and UDP
 * on each -l address. */
static bool open_listeners(void)
{
    if (settings.socketpath)
        return listen_unix(settings.socketpath);
    if (!settings.inter)
        return (settings.port <= 0 || listen_inet(NULL, settings.port, false)) &&
               (settings.udpport <= 0 || listen_inet(NULL, settings.udpport, true));
    char *list = strdup(settings.inter);
    if (!list) {
        fprintf(stderr, "failed to listen: out of memory\n");
        return false;
    }
    bool ok = true;
    char *save = NULL;
    for (char *spec = strtok_r(list, ", ", &save); spec && ok;
         spec = strtok_r(NULL, ", ", &save))
        ok = listen_interface(spec);
    free(list);
    return ok;
}

/* ---- Accepting ---- */

static void listeners_enable(bool on)
{
    for (int i = 0; i < nlisteners; i++) {
        struct listener *l = &listeners[i];
        if (l->transport == CONN_UDP || l->ev_added == on)
            continue;
        if (on)
            l->ev_added = event_add(&l->ev, NULL) == 0;
        else
            l->ev_added = !(event_del(&l->ev) == 0);
    }
}

static void stop_accepting(void)
{
    if (!ATOMIC_GET(accepting))
        return;
    listeners_enable(false);
    ATOMIC_SET(accepting, false);
    __atomic_add_fetch(&listen_disabled_num, 1, __ATOMIC_RELAXED);
    gettimeofday(&disabled_since, NULL);
}

/* Called on every clock tick: listen again once there is room. */
static void maybe_resume_accepting(void)
{
    if (ATOMIC_GET(accepting) || conn_at_limit())
        return;
    struct timeval now;
    gettimeofday(&now, NULL);
    uint64_t us = (uint64_t)(now.tv_sec - disabled_since.tv_sec) * 1000000 +
                  (uint64_t)(now.tv_usec - disabled_since.tv_usec);
    __atomic_add_fetch(&time_in_listen_disabled_us, us, __ATOMIC_RELAXED);
    ATOMIC_SET(accepting, true);
    listeners_enable(true);
}

/* Queue fd to the next worker (round robin) and wake it. */
static void dispatch(int fd, const struct listener *l)
{
    struct pending_conn *p = malloc(sizeof(*p));
    if (!p) {
        mc_log(0, "out of memory accepting a connection; closing it");
        conn_abandon(fd);
        return;
    }
    p->fd = fd;
    p->transport = l->transport;
    p->listen_name = l->name;
    p->next = NULL;
    struct worker *w = &workers[next_worker];
    next_worker = (next_worker + 1) % (unsigned)nworkers;
    pthread_mutex_lock(&w->queue_lock);
    if (w->queue_tail)
        w->queue_tail->next = p;
    else
        w->queue_head = p;
    w->queue_tail = p;
    pthread_mutex_unlock(&w->queue_lock);
    uint64_t one = 1;
    if (write(w->notify_fd, &one, sizeof(one)) != sizeof(one))
        mc_log(0, "could not wake worker thread: %s", strerror(errno));
}

static void accept_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        if (!settings.maxconns_fast && conn_at_limit()) {
            stop_accepting();
            return;
        }
        int cfd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE) {
                mc_log(0, "Too many open connections: accept() failed (%s); "
                          "not accepting until a descriptor is free", strerror(errno));
                stop_accepting();
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                mc_log(0, "accept() on %s failed: %s", l->name, strerror(errno));
            }
            return;
        }
        if (conn_admit(cfd))
            dispatch(cfd, l);
    }
}

/* ---- Workers ---- */

/* The worker's eventfd fired: serve queued sockets; stop when told to. */
static void worker_notify_cb(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    uint64_t count;
    if (read(w->notify_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        mc_log(0, "worker notify read failed: %s", strerror(errno));
    pthread_mutex_lock(&w->queue_lock);
    struct pending_conn *p = w->queue_head;
    w->queue_head = w->queue_tail = NULL;
    enum stop_mode stop = w->stop;
    pthread_mutex_unlock(&w->queue_lock);
    while (p) {
        struct pending_conn *next = p->next;
        conn_new_client(w->ct, p->fd, p->transport, p->listen_name);
        free(p);
        p = next;
    }
    if (stop != STOP_NONE) {
        conn_thread_stop(w->ct, stop == STOP_GRACEFUL);
        w->ct = NULL;
        event_del(&w->notify_ev);
        event_base_loopbreak(w->base);
    }
}

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    pthread_setname_np(pthread_self(), "mc-worker");
    stats_register(&w->stats);
    w->ct = conn_thread_new(w->base, &w->stats);
    bool ok = w->ct != NULL;
    for (int i = 0; ok && i < nlisteners; i++)
        if (listeners[i].transport == CONN_UDP)
            ok = conn_new_udp(w->ct, listeners[i].fd, listeners[i].name);

    pthread_mutex_lock(&ready_lock);
    workers_ready++;
    workers_failed |= !ok;
    pthread_cond_signal(&ready_cond);
    pthread_mutex_unlock(&ready_lock);

    /* A worker that failed sits idle: server_start() reports the failure
     * and the process exits. */
    if (ok)
        event_base_dispatch(w->base);
    return NULL;
}

static bool start_workers(void)
{
    nworkers = settings.num_threads > 0 ? settings.num_threads : 1;
    workers = calloc((size_t)nworkers, sizeof(*workers));
    if (!workers) {
        fprintf(stderr, "failed to start worker threads: out of memory\n");
        return false;
    }
    /* Workers never take the signals the main loop handles. */
    sigset_t block = stop_signal_set(), old;
    pthread_sigmask(SIG_BLOCK, &block, &old);
    bool ok = true;
    for (int i = 0; i < nworkers && ok; i++) {
        struct worker *w = &workers[i];
        pthread_mutex_init(&w->queue_lock, NULL);
        w->base = event_base_new();
        w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (!w->base || w->notify_fd < 0) {
            fprintf(stderr, "failed to start worker threads: %s\n",
                    w->base ? strerror(errno) : "cannot create an event base");
            ok = false;
            break;
        }
        event_assign(&w->notify_ev, w->base, w->notify_fd, EV_READ | EV_PERSIST,
                     worker_notify_cb, w);
        event_add(&w->notify_ev, NULL);
        int rc = pthread_create(&w->tid, NULL, worker_main, w);
        if (rc != 0) {
            fprintf(stderr, "failed to start worker threads: %s\n", strerror(rc));
            ok = false;
        }
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (!ok)
        return false;
    pthread_mutex_lock(&ready_lock);
    while (workers_ready < nworkers)
        pthread_cond_wait(&ready_cond, &ready_lock);
    ok = !workers_failed;
    pthread_mutex_unlock(&ready_lock);
    if (!ok)
        fprintf(stderr, "failed to start worker threads: out of memory\n");
    return ok;
}

/* ---- Main loop: clock, signals, stop ---- */

static void clock_cb(evutil_socket_t fd, short what, void *arg)
{
    clock_tick();
    maybe_resume_accepting();
}

static void stop_cb(evutil_socket_t fd, short what, void *arg)
{
    uint64_t count;
    if (read(stop_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        mc_log(0, "stop notify read failed: %s", strerror(errno));
    event_base_loopbreak(main_base);
}

static void record_stop(enum stop_mode mode)
{
    int cur = __atomic_load_n(&stop_requested, __ATOMIC_RELAXED);
    while ((int)mode > cur &&
           !__atomic_compare_exchange_n(&stop_requested, &cur, (int)mode, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
        ;
}

static void signal_cb(evutil_socket_t sig, short what, void *arg)
{
    mc_log(1, "Signal handled: %s.", strsignal((int)sig));
    record_stop(sig == SIGUSR1 ? STOP_GRACEFUL : STOP_NOW);
    event_base_loopbreak(main_base);
}

void server_request_stop(bool graceful)
{
    record_stop(graceful ? STOP_GRACEFUL : STOP_NOW);
    uint64_t one = 1;
    if (stop_fd >= 0 && write(stop_fd, &one, sizeof(one)) != sizeof(one))
        mc_log(0, "could not signal the main thread to stop: %s", strerror(errno));
}


/* Register the main thread's events: accept, clock, stop, signals; then
 * let the main thread take the signals server_hold_signals() held (one
 * that arrived meanwhile is handled by the first loop iteration). */
static bool main_events(void)
{
    struct timeval tick = {.tv_sec = 0, .tv_usec = CLOCK_TICK_MS * 1000};
    for (int i = 0; i < nlisteners; i++) {
        struct listener *l = &listeners[i];
        if (l->transport == CONN_UDP)
            continue;
        event_assign(&l->ev, main_base, l->fd, EV_READ | EV_PERSIST, accept_cb, l);
        l->ev_added = event_add(&l->ev, NULL) == 0;
        mc_log(2, "<%d server listening (%s)", l->fd, options_protocol_name(settings.binding_protocol));
    }
    clock_ev = event_new(main_base, -1, EV_PERSIST, clock_cb, NULL);
    stop_ev = event_new(main_base, stop_fd, EV_READ | EV_PERSIST, stop_cb, NULL);
    if (!clock_ev || !stop_ev || event_add(clock_ev, &tick) != 0 ||
        event_add(stop_ev, NULL) != 0)
        return false;
    for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++) {
        signal_evs[i] = evsignal_new(main_base, stop_signals[i], signal_cb, NULL);
        if (!signal_evs[i] || event_add(signal_evs[i], NULL) != 0)
            return false;
    }
    sigset_t set = stop_signal_set();
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    return true;
}

/* File descriptors the server itself holds: stdio, listeners, the main
 * loop (event base, its signal pair, the stop eventfd) and per worker an
 * event base and an eventfd. */
static uint32_t count_reserved_fds(void)
{
    return (uint32_t)(3 + nlisteners + 4 + 2 * nworkers);
}

bool server_start(void)
{
    signal(SIGPIPE, SIG_IGN);
    signal(SIGHUP, SIG_IGN);
    main_base = event_base_new();
    stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!main_base || stop_fd < 0) {
        fprintf(stderr, "failed to start the main event loop: %s\n",
                main_base ? strerror(errno) : "cannot create an event base");
        return false;
    }
    if (!open_listeners())
        return false;
    if (!start_workers())
        return false;
    if (!main_events()) {
        fprintf(stderr, "failed to register the main loop's events\n");
        return false;
    }
    conn_set_reserved_fds(count_reserved_fds());
    return true;
}

void server_run(void)
{
    if (__atomic_load_n(&stop_requested, __ATOMIC_RELAXED) == STOP_NONE)
        event_base_dispatch(main_base);
    enum stop_mode mode = __atomic_load_n(&stop_requested, __ATOMIC_RELAXED);
    if (mode == STOP_NONE)
        mode = STOP_NOW;

    /* No new connections from here on. */
    for (int i = 0; i < nlisteners; i++) {
        struct listener *l = &listeners[i];
        if (l->transport == CONN_UDP)
            continue;
        if (l->ev_added)
            event_del(&l->ev);
        close(l->fd);
    }
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        pthread_mutex_lock(&w->queue_lock);
        w->stop = mode;
        pthread_mutex_unlock(&w->queue_lock);
        uint64_t one = 1;
        if (write(w->notify_fd, &one, sizeof(one)) != sizeof(one))
            mc_log(0, "could not tell a worker to stop: %s", strerror(errno));
    }
    for (int i = 0; i < nworkers; i++) {
        struct worker *w = &workers[i];
        pthread_join(w->tid, NULL);
        event_base_free(w->base);
        close(w->notify_fd);
        pthread_mutex_destroy(&w->queue_lock);
    }
    for (int i = 0; i < nlisteners; i++)
        if (listeners[i].transport == CONN_UDP)
            close(listeners[i].fd);
    free(listeners);
    listeners = NULL;
    nlisteners = 0;

    for (size_t i = 0; i < sizeof(signal_evs) / sizeof(signal_evs[0]); i++)
        if (signal_evs[i])
            event_free(signal_evs[i]);
    event_free(clock_ev);
    event_free(stop_ev);
    event_base_free(main_base);
    main_base = NULL;
    close(stop_fd);
    stop_fd = -1;
    /* workers[] stays: its stats blocks remain registered with stats.c. */
}

/* ---- Reports ---- */

void thread_listen_totals(struct conn_totals *out)
{
    int n = __atomic_load_n(&nlisteners, __ATOMIC_RELAXED);
    out->accepting_conns = ATOMIC_GET(accepting);
    out->listen_disabled_num = ATOMIC_GET(listen_disabled_num);
    out->time_in_listen_disabled_us = ATOMIC_GET(time_in_listen_disabled_us);
    for (int i = 0; i < n; i++) {
        if (listeners[i].transport == CONN_UDP)
            continue;
        out->total_connections++;
        out->connection_structures++;
    }
}

void thread_report_listeners(add_stat_fn add, void *ctx)
{
    char name[64];
    for (int i = 0; i < nlisteners; i++) {
        const struct listener *l = &listeners[i];
        if (l->transport == CONN_UDP)
            continue;
        snprintf(name, sizeof(name), "%d:addr", l->fd);
        add(name, strlen(name), l->name, strlen(l->name), ctx);
        snprintf(name, sizeof(name), "%d:state", l->fd);
        add(name, strlen(name), "conn_listening", 14, ctx);
        snprintf(name, sizeof(name), "%d:secs_since_last_cmd", l->fd);
        stats_addf(add, ctx, name, "%u", (unsigned)(current_time - l->opened));
    }
}
