/*
 * The benchmark's load generator: many clients of one chat server, speaking
 * either chatd's line protocol or IRC, in one single-threaded epoll loop.
 *
 * Every message a sender writes carries a marker and its origin in its text:
 *     BMK <sender> <seq> <monotonic ns> xxxx...   (64 bytes of text)
 * so each delivery is recognised, counted against the members that should
 * receive it (lost must be 0), checked for order per sender, and timed.
 *
 * It talks to bench/bench.py over stdin/stdout: once every client has joined
 * it prints "READY {json}" and waits (still reading its sockets) for a line
 * "go" on stdin; then it runs the phase and prints "RESULT {json}".
 *
 * Modes:
 *   fanout  senders keep at most --window messages each in flight (not yet
 *           delivered to every member) for --duration seconds: throughput.
 *   rate    --rate messages/s in total, round robin over the senders, for
 *           --duration seconds: latency at a fixed load.
 *   idle    nothing: the phase ends at once (memory is read while READY).
 * --web-port P puts every --web-every'th client (default 2: every other one,
 * senders too) on chatd's WebSocket front end at P instead: an HTTP Upgrade
 * handshake, then masked JSON text frames out (nick, join, part, say) and
 * the server's unmasked frames in; a "said" frame carrying the marker counts
 * as a line does (a browser is also sent its own lines: those are skipped).
 * --slow 1 adds one more member that joins and then never reads; it is not
 * counted in the deliveries, and is drained at the end to see whether the
 * server dropped it.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { CHAT, IRC };
enum { FANOUT, RATE, IDLE };
enum { CONNECTING, HANDSHAKE, LOGIN, JOINING, READY, DEAD };

#define RING 65536               /* per-sender slots for in-flight messages */
#define HIST_US 10               /* latency histogram resolution, in us */
#define HIST_N 2000000           /* ... up to 20 s */
#define TEXT_LEN 64

typedef struct {
    int fd, idx, state, slow, eof, web;
    char *left; size_t leftlen, leftcap;   /* a partial line from the last read */
    char *out; size_t outlen, outoff, outcap;
    uint32_t events;
} conn_t;

static int proto = CHAT, mode = FANOUT, port, port2, members = 10, senders = 2, rooms = 1;
/* chatd's line protocol only: stay in the lobby every login arrives in
 * ("/join #lobby" just makes it the current room), instead of moving to a
 * room #rN. */
static int lobby = 0;
static int webPort = 0, webEvery = 2;
static int window = 16, conc = 32, slowOpt = 0, rcvbuf = 1 << 20;
static double duration = 1.0, rate = 100.0, drainTimeout = 3.0, joinTimeout = 60.0;
static conn_t *conns;
static int nconns, ep, readyCount, deadCount, nextToConnect, inFlight;
static int phase;                /* 0 joining/waiting, 1 running, 2 draining */
static uint64_t *sent, *done, *nextSeq;
static uint32_t *counts;         /* senders x RING */
static uint64_t expectEach;      /* deliveries expected per message */
static uint64_t delivered, slowDelivered, misordered, stray;
static uint32_t *hist;
static uint64_t tStart, tFirstSend, tLastDelivery, tJoinStart, tJoined;
static char scratch[1 << 18];

static uint64_t now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

static void die(const char *what) { perror(what); exit(2); }

static void queue(conn_t *c, const char *data, size_t len) {
    if (c->outlen + len > c->outcap) {
        c->outcap = (c->outlen + len) * 2;
        c->out = realloc(c->out, c->outcap);
        if (!c->out) die("realloc");
    }
    memcpy(c->out + c->outlen, data, len);
    c->outlen += len;
}

/* One client frame: final, text, masked (RFC 6455 5.3) with a fixed key. */
static void queueFrame(conn_t *c, const char *payload, size_t len) {
    static const unsigned char key[4] = {0x37, 0xfa, 0x21, 0x3d};
    unsigned char buf[16 + 1024];
    size_t h = 0;
    if (len > 1024) { fprintf(stderr, "loadgen: frame too long\n"); exit(2); }
    buf[h++] = 0x81;
    if (len < 126) buf[h++] = 0x80 | (unsigned char)len;
    else { buf[h++] = 0x80 | 126; buf[h++] = (unsigned char)(len >> 8); buf[h++] = (unsigned char)len; }
    memcpy(buf + h, key, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) buf[h + i] = (unsigned char)payload[i] ^ key[i & 3];
    queue(c, (const char *)buf, h + len);
}

static void setEvents(conn_t *c, uint32_t ev) {
    if (c->events == ev) return;
    struct epoll_event e = {.events = ev, .data.u32 = (uint32_t)c->idx};
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &e) < 0) die("epoll_ctl");
    c->events = ev;
}

static void markDead(conn_t *c) {
    if (c->state == DEAD) return;
    if (c->state != READY) inFlight--;
    c->state = DEAD;
    deadCount++;
    close(c->fd);
}

static void flush(conn_t *c) {
    while (c->outoff < c->outlen) {
        ssize_t n = send(c->fd, c->out + c->outoff, c->outlen - c->outoff, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            markDead(c);
            return;
        }
        c->outoff += n;
    }
    if (c->outoff == c->outlen) c->outoff = c->outlen = 0;
    uint32_t ev = c->slow && c->state == READY && phase < 2 ? 0 : EPOLLIN;
    setEvents(c, ev | (c->outlen ? EPOLLOUT : 0));
}

static void openOne(void) {
    conn_t *c = &conns[nextToConnect++];
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("socket");
    int one = 1, buf = c->slow ? 4096 : rcvbuf;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &buf, sizeof buf);
    /* --port2: every other client (senders too) on a second server. */
    int to = port2 && c->idx % 2 ? port2 : port;
    if (c->web) to = webPort;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(to)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0 && errno != EINPROGRESS) die("connect");
    c->fd = fd;
    c->state = CONNECTING;
    c->events = EPOLLOUT;
    struct epoll_event e = {.events = EPOLLOUT, .data.u32 = (uint32_t)c->idx};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &e) < 0) die("epoll_ctl add");
    inFlight++;
}

static void fillConnects(void) {
    while (nextToConnect < nconns && inFlight < conc) openOne();
}

static void writeMessage(int s) {
    conn_t *c = &conns[s];
    char text[128], line[256];
    uint64_t t = now();
    if (!tFirstSend) tFirstSend = t;
    int n = snprintf(text, sizeof text, "BMK %d %llu %llu ", s,
                     (unsigned long long)sent[s], (unsigned long long)t);
    memset(text + n, 'x', TEXT_LEN - n);
    int len;
    if (c->web) {
        len = snprintf(line, sizeof line, "{\"type\":\"say\",\"room\":\"#r%d\",\"text\":\"%.*s\"}",
                       c->idx % rooms, TEXT_LEN, text);
        queueFrame(c, line, len);
        sent[s]++;
        return;
    }
    if (proto == CHAT)
        len = snprintf(line, sizeof line, "%.*s\n", TEXT_LEN, text);
    else
        len = snprintf(line, sizeof line, "PRIVMSG #r0 :%.*s\r\n", TEXT_LEN, text);
    queue(c, line, len);
    sent[s]++;
}

/* Fan-out mode: top each sender's window up, in one write. */
static void topUp(int s) {
    if (phase != 1 || mode != FANOUT || conns[s].state != READY) return;
    int wrote = 0;
    while (sent[s] < done[s] + window) { writeMessage(s); wrote = 1; }
    if (wrote) flush(&conns[s]);
}

static void deliver(conn_t *r, const char *p, const char *end, uint64_t t) {
    /* p points after "BMK " */
    uint64_t v[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++) {
        while (p < end && *p >= '0' && *p <= '9') v[i] = v[i] * 10 + (*p++ - '0');
        p++;
    }
    int s = (int)v[0];
    uint64_t seq = v[1];
    if (s < 0 || s >= senders) { stray++; return; }
    if (r->web && s == r->idx) return;   /* a browser's own line, sent back */
    uint64_t lat = t > v[2] ? (t - v[2]) / 1000 / HIST_US : 0;
    uint64_t *next = &nextSeq[(size_t)r->idx * senders + s];
    if (seq != *next) misordered++;
    *next = seq + 1;
    if (r->slow) { slowDelivered++; return; }
    hist[lat < HIST_N ? lat : HIST_N - 1]++;
    delivered++;
    tLastDelivery = t;
    uint32_t *slot = &counts[(size_t)s * RING + (seq & (RING - 1))];
    if (++*slot == expectEach && seq == done[s]) {
        while (done[s] < sent[s] && counts[(size_t)s * RING + (done[s] & (RING - 1))] == expectEach) {
            counts[(size_t)s * RING + (done[s] & (RING - 1))] = 0;
            done[s]++;
        }
        topUp(s);
    }
}

static int startsWith(const char *p, size_t len, const char *prefix) {
    size_t n = strlen(prefix);
    return len >= n && memcmp(p, prefix, n) == 0;
}

static void becomeReady(conn_t *c) {
    c->state = READY;
    readyCount++;
    inFlight--;
}

static void loginLine(conn_t *c, const char *p, size_t len) {
    char buf[256];
    int room = c->slow ? 0 : c->idx % rooms;
    if (proto == CHAT) {
        if (c->state == LOGIN && startsWith(p, len, "??? ")) {
            int n = lobby ? snprintf(buf, sizeof buf, "u%d\n/join #lobby\n", c->idx)
                          : snprintf(buf, sizeof buf, "u%d\n/join #r%d\n/part #lobby\n", c->idx, room);
            queue(c, buf, n);
            c->state = JOINING;
        } else if (c->state == JOINING && startsWith(p, len, "=== now talking in")) {
            becomeReady(c);
        } else if (startsWith(p, len, "!!! ")) {
            fprintf(stderr, "loadgen: client %d refused: %.*s\n", c->idx, (int)len, p);
        }
    } else {
        if (c->state == LOGIN && memmem(p, len, " 001 ", 5)) {
            int n = snprintf(buf, sizeof buf, "JOIN #r%d\r\n", room);
            queue(c, buf, n);
            c->state = JOINING;
        } else if (c->state == JOINING && memmem(p, len, " 366 ", 5)) {
            becomeReady(c);
        } else if (startsWith(p, len, "ERROR")) {
            fprintf(stderr, "loadgen: client %d: %.*s\n", c->idx, (int)len, p);
        }
    }
}

static void webLogin(conn_t *c, const char *p, size_t len) {
    char buf[256];
    int room = c->slow ? 0 : c->idx % rooms;
    if (c->state == LOGIN && memmem(p, len, "\"type\":\"hello\"", 14)) {
        int n = snprintf(buf, sizeof buf, "{\"type\":\"nick\",\"nick\":\"u%d\"}", c->idx);
        queueFrame(c, buf, n);
        n = snprintf(buf, sizeof buf, "{\"type\":\"join\",\"room\":\"#r%d\"}", room);
        queueFrame(c, buf, n);
        n = snprintf(buf, sizeof buf, "{\"type\":\"part\",\"room\":\"#lobby\"}");
        queueFrame(c, buf, n);
        c->state = JOINING;
    } else if (c->state == JOINING) {
        int n = snprintf(buf, sizeof buf, "\"type\":\"room\",\"room\":\"#r%d\"", room);
        if (memmem(p, len, buf, n)) becomeReady(c);
    }
    if (memmem(p, len, "\"type\":\"error\"", 14))
        fprintf(stderr, "loadgen: web client %d refused: %.*s\n", c->idx, (int)len, p);
}

/* A WebSocket's bytes: the 101 answer, then whole frames; returns where the
 * unfinished rest begins, or NULL when the client is dead. */
static char *webBytes(conn_t *c, char *p, char *end, uint64_t t) {
    if (c->state == HANDSHAKE) {
        char *h = memmem(p, end - p, "\r\n\r\n", 4);
        if (!h) return p;
        if (!startsWith(p, h - p, "HTTP/1.1 101")) {
            fprintf(stderr, "loadgen: web client %d: no upgrade: %.*s\n", c->idx,
                    (int)(h - p), p);
            markDead(c);
            return NULL;
        }
        c->state = LOGIN;
        p = h + 4;
    }
    while (end - p >= 2) {
        unsigned char *b = (unsigned char *)p;
        uint64_t len = b[1] & 0x7f;
        size_t hdr = 2;
        if (len == 126) {
            if (end - p < 4) break;
            len = (uint64_t)b[2] << 8 | b[3];
            hdr = 4;
        } else if (len == 127) {
            if (end - p < 10) break;
            len = 0;
            for (int i = 0; i < 8; i++) len = len << 8 | b[2 + i];
            hdr = 10;
        }
        if (b[1] & 0x80) hdr += 4;   /* a server does not mask; skipped, not unmasked */
        if ((uint64_t)(end - p) < hdr + len) break;
        char *payload = p + hdr;
        int opcode = b[0] & 0x0f;
        if (opcode == 0x1) {
            if (c->state == READY) {
                char *m = memmem(payload, len, "BMK ", 4);
                if (m && memmem(payload, m - payload, "\"type\":\"said\"", 13))
                    deliver(c, m + 4, payload + len, t);
            } else {
                webLogin(c, payload, len);
            }
        } else if (opcode == 0x8) {
            fprintf(stderr, "loadgen: web client %d: closed by the server\n", c->idx);
        }
        p = payload + len;
    }
    return p;
}

static void readable(conn_t *c) {
    for (;;) {
        size_t keep = c->leftlen;
        memcpy(scratch, c->left, keep);
        ssize_t n = recv(c->fd, scratch + keep, sizeof scratch - keep, 0);
        if (n == 0) { c->eof = 1; if (!c->slow) markDead(c); else { close(c->fd); c->state = DEAD; } return; }
        if (n < 0) {
            if (errno == EAGAIN) return;
            if (c->slow) { c->eof = 1; close(c->fd); c->state = DEAD; } else markDead(c);
            return;
        }
        uint64_t t = now();
        char *p = scratch, *end = scratch + keep + n, *nl;
        if (c->web) {
            p = webBytes(c, p, end, t);
            if (!p) return;
        }
        while (!c->web && (nl = memchr(p, '\n', end - p))) {
            size_t len = nl - p;
            if (len && p[len - 1] == '\r') len--;
            if (c->state == READY) {
                char *m = memmem(p, len, "BMK ", 4);
                if (m) deliver(c, m + 4, p + len, t);
            } else {
                loginLine(c, p, len);
            }
            p = nl + 1;
        }
        c->leftlen = end - p;
        if (c->leftlen > c->leftcap) {
            c->leftcap = c->leftlen * 2;
            c->left = realloc(c->left, c->leftcap);
        }
        memcpy(c->left, p, c->leftlen);
        if (c->outlen) flush(c);
        if (c->state == READY && c->slow && phase < 2) { flush(c); return; }
        if ((size_t)n < sizeof scratch - keep) return;
    }
}

static void connected(conn_t *c) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err) { fprintf(stderr, "loadgen: connect: %s\n", strerror(err)); markDead(c); return; }
    c->state = LOGIN;
    if (c->web) {
        char buf[512];
        int n = snprintf(buf, sizeof buf,
                         "GET /ws HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nUpgrade: websocket\r\n"
                         "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                         "Sec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:%d\r\n\r\n",
                         webPort, webPort);
        queue(c, buf, n);
        c->state = HANDSHAKE;
    } else if (proto == IRC) {
        char buf[128];
        int n = snprintf(buf, sizeof buf, "NICK u%d\r\nUSER u%d 0 * :u%d\r\n", c->idx, c->idx, c->idx);
        queue(c, buf, n);
    }
    flush(c);
}

static double pct(double q) {
    uint64_t total = 0, seen = 0;
    for (int i = 0; i < HIST_N; i++) total += hist[i];
    if (!total) return 0;
    uint64_t want = (uint64_t)(q * total);
    if (want >= total) want = total - 1;
    for (int i = 0; i < HIST_N; i++) {
        seen += hist[i];
        if (seen > want) return (i + 0.5) * HIST_US / 1000.0;
    }
    return 0;
}

static double cpuSeconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void loop(int (*finished)(void), int waitForGo) {
    struct epoll_event evs[1024];
    uint64_t lastProgress = now(), lastDelivered = delivered;
    uint64_t rateNext = 0, due = 0;
    double interval = 1e9 / rate;
    while (!finished()) {
        int timeout = 100;
        uint64_t t = now();
        if (phase == 1 && mode == RATE) {
            if (!due) due = t;
            while (t >= due && phase == 1) {
                int s = rateNext % senders;
                if (conns[s].state == READY && sent[s] - done[s] < RING) { writeMessage(s); flush(&conns[s]); }
                rateNext++;
                due = tStart + (uint64_t)(rateNext * interval);
            }
            timeout = (int)((due - t) / 1000000);
        }
        if (phase == 1 && t - tStart >= (uint64_t)(duration * 1e9)) { phase = 2; lastProgress = t; }
        if (phase == 2) {
            if (delivered != lastDelivered) { lastDelivered = delivered; lastProgress = t; }
            if (t - lastProgress > (uint64_t)(drainTimeout * 1e9)) break;
        }
        int n = epoll_wait(ep, evs, 1024, timeout);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        for (int i = 0; i < n; i++) {
            uint32_t id = evs[i].data.u32;
            if (id == UINT32_MAX) {          /* stdin: "go" */
                char buf[64];
                ssize_t r = read(0, buf, sizeof buf);
                if (r <= 0) exit(3);
                if (waitForGo) return;
                continue;
            }
            conn_t *c = &conns[id];
            if (c->state == DEAD) continue;
            if (c->state == CONNECTING) {
                if (evs[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) connected(c);
                continue;
            }
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) readable(c);
            if (c->state != DEAD && (evs[i].events & EPOLLOUT)) flush(c);
        }
        if (phase == 0) fillConnects();
    }
}

static int allJoined(void) {
    if (readyCount + deadCount == nconns) { tJoined = now(); return 1; }
    return now() - tJoinStart > (uint64_t)(joinTimeout * 1e9);
}

static int allDone(void) {
    if (phase < 2) return 0;
    for (int s = 0; s < senders; s++)
        if (done[s] < sent[s]) return 0;
    return 1;
}

static int never(void) { return 0; }

static void drainSlow(void) {
    conn_t *c = &conns[nconns - 1];
    if (c->state == DEAD) return;
    setEvents(c, EPOLLIN);
    uint64_t last = now(), before = slowDelivered;
    struct epoll_event evs[64];
    while (c->state != DEAD && now() - last < 500000000ull) {
        int n = epoll_wait(ep, evs, 64, 50);
        for (int i = 0; i < n; i++) {
            conn_t *x = &conns[evs[i].data.u32];
            if (x->state != DEAD) readable(x);
        }
        if (slowDelivered != before) { before = slowDelivered; last = now(); }
    }
}

int main(int argc, char **argv) {
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--proto")) proto = !strcmp(v, "irc") ? IRC : CHAT;
        else if (!strcmp(k, "--mode")) mode = !strcmp(v, "rate") ? RATE : !strcmp(v, "idle") ? IDLE : FANOUT;
        else if (!strcmp(k, "--port")) port = atoi(v);
        else if (!strcmp(k, "--port2")) port2 = atoi(v);
        else if (!strcmp(k, "--web-port")) webPort = atoi(v);
        else if (!strcmp(k, "--web-every")) webEvery = atoi(v);
        else if (!strcmp(k, "--members")) members = atoi(v);
        else if (!strcmp(k, "--senders")) senders = atoi(v);
        else if (!strcmp(k, "--rooms")) rooms = atoi(v);
        else if (!strcmp(k, "--lobby")) lobby = atoi(v);
        else if (!strcmp(k, "--window")) window = atoi(v);
        else if (!strcmp(k, "--concurrency")) conc = atoi(v);
        else if (!strcmp(k, "--slow")) slowOpt = atoi(v);
        else if (!strcmp(k, "--duration")) duration = atof(v);
        else if (!strcmp(k, "--rate")) rate = atof(v);
        else if (!strcmp(k, "--drain-timeout")) drainTimeout = atof(v);
        else { fprintf(stderr, "loadgen: unknown option %s\n", k); return 2; }
    }
    if (senders > members) senders = members;
    if (window >= RING) window = RING - 1;
    nconns = members + (slowOpt ? 1 : 0);
    conns = calloc(nconns, sizeof *conns);
    sent = calloc(senders, 8); done = calloc(senders, 8);
    nextSeq = calloc((size_t)nconns * senders, 8);
    counts = calloc((size_t)senders * RING, 4);
    hist = calloc(HIST_N, 4);
    if (!conns || !nextSeq || !counts || !hist) die("calloc");
    if (webEvery < 1) webEvery = 1;
    for (int i = 0; i < nconns; i++) {
        conns[i].idx = i;
        conns[i].slow = slowOpt && i == nconns - 1;
        conns[i].web = webPort && i % webEvery == webEvery - 1;
    }
    expectEach = (uint64_t)(members - 1);

    ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.u32 = UINT32_MAX};
    tJoinStart = now();
    fillConnects();
    epoll_ctl(ep, EPOLL_CTL_ADD, 0, &e);
    loop(allJoined, 0);
    if (!tJoined) tJoined = now();
    printf("READY {\"joined\": %d, \"failed\": %d, \"join_s\": %.4f}\n", readyCount, deadCount,
           (tJoined - tJoinStart) / 1e9);
    fflush(stdout);
    loop(never, 1);     /* serve the sockets until "go" */
    epoll_ctl(ep, EPOLL_CTL_DEL, 0, NULL);

    int deadBefore = deadCount;
    double cpu0 = cpuSeconds();
    tStart = now();
    if (mode != IDLE) {
        phase = 1;
        for (int s = 0; s < senders; s++) topUp(s);
        loop(allDone, 0);
    }
    phase = 2;
    double cpu = cpuSeconds() - cpu0;
    uint64_t end = tLastDelivery ? tLastDelivery : now();
    double elapsed = tFirstSend ? (end - tFirstSend) / 1e9 : 0;
    uint64_t totalSent = 0;
    for (int s = 0; s < senders; s++) totalSent += sent[s];
    uint64_t expected = totalSent * expectEach;
    int slowEof = 0;
    uint64_t slowReceived = 0;
    if (slowOpt) { drainSlow(); slowEof = conns[nconns - 1].eof; slowReceived = slowDelivered; }
    printf("RESULT {\"sent\": %llu, \"expected\": %llu, \"delivered\": %llu, \"lost\": %lld, "
           "\"misordered\": %llu, \"stray\": %llu, \"disconnects\": %d, \"elapsed_s\": %.4f, "
           "\"deliveries_per_s\": %.0f, \"p50_ms\": %.3f, \"p99_ms\": %.3f, \"max_ms\": %.3f, "
           "\"loadgen_cpu_s\": %.3f, \"slow_received\": %llu, \"slow_dropped\": %s}\n",
           (unsigned long long)totalSent, (unsigned long long)expected,
           (unsigned long long)delivered, (long long)(expected - delivered),
           (unsigned long long)misordered, (unsigned long long)stray, deadCount - deadBefore, elapsed,
           elapsed > 0 ? delivered / elapsed : 0.0, pct(0.50), pct(0.99), pct(1.0), cpu,
           (unsigned long long)slowReceived, slowEof ? "true" : "false");
    fflush(stdout);
    return 0;
}
