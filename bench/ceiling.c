/*
 * The ceiling: a trivial fan-out server in C with one epoll loop, speaking
 * just enough of chatd's line protocol for bench/loadgen.c: a nickname, then
 * "/join #rN" (announced to the room's members, as chatd announces a join)
 * and "/part" are acknowledged; every other line goes to every other member
 * of the sender's room as "#rN <nick> text".  Each message is formatted once,
 * and each recipient's output is written once per loop turn, which is the
 * shape chatd aims for; no lobby, no flood limits, no bound on buffers.  What
 * it reaches is what the load generator can measure on this machine.
 *
 * Usage: ceiling PORT   (0 picks a free port; prints "listening on PORT")
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct {
    int *fds, n, cap;
} room_t;

typedef struct {
    int open, dirty, watchingOut;
    room_t *room;
    char nick[32];
    char *in; size_t inlen, incap;
    char *out; size_t outlen, outcap;
} client_t;

static client_t *clients;
static room_t rooms[65536];
static int maxClients, ep, *dirty, ndirty;

static void append(int fd, const char *data, size_t len) {
    client_t *c = &clients[fd];
    if (c->outlen + len > c->outcap) {
        c->outcap = (c->outlen + len) * 2;
        c->out = realloc(c->out, c->outcap);
    }
    memcpy(c->out + c->outlen, data, len);
    c->outlen += len;
    if (!c->dirty) { c->dirty = 1; dirty[ndirty++] = fd; }
}

static void drop(int fd) {
    client_t *c = &clients[fd];
    if (!c->open) return;
    c->open = 0;
    room_t *r = c->room;
    if (r)
        for (int i = 0; i < r->n; i++)
            if (r->fds[i] == fd) { r->fds[i] = r->fds[--r->n]; break; }
    c->room = NULL;
    c->inlen = c->outlen = 0;
    close(fd);
}

static void line(int fd, char *p, size_t len) {
    client_t *c = &clients[fd];
    char buf[4200];
    if (!c->nick[0]) {
        snprintf(c->nick, sizeof c->nick, "%.*s", (int)len, p);
        append(fd, buf, snprintf(buf, sizeof buf, "=== #lobby members (1): %s\r\n", c->nick));
    } else if (len >= 8 && !memcmp(p, "/join #r", 8)) {
        int number = atoi(p + 8) & 65535;
        room_t *r = &rooms[number];
        if (!c->room) {
            int n = snprintf(buf, sizeof buf, "-- #r%d %s has joined\r\n", number, c->nick);
            for (int i = 0; i < r->n; i++) append(r->fds[i], buf, n);
            if (r->n == r->cap) { r->cap = r->cap ? r->cap * 2 : 16; r->fds = realloc(r->fds, r->cap * sizeof *r->fds); }
            r->fds[r->n++] = fd;
            c->room = r;
        }
        append(fd, buf, snprintf(buf, sizeof buf, "=== #r%d members\r\n", number));
    } else if (len >= 5 && !memcmp(p, "/part", 5)) {
        append(fd, buf, snprintf(buf, sizeof buf, "=== left #lobby\r\n=== now talking in #r%d\r\n",
                                 c->room ? (int)(c->room - rooms) : 0));
    } else if (c->room && len < 4096) {
        room_t *r = c->room;
        int n = snprintf(buf, sizeof buf, "#r%d <%s> %.*s\r\n", (int)(r - rooms), c->nick, (int)len, p);
        for (int i = 0; i < r->n; i++)
            if (r->fds[i] != fd) append(r->fds[i], buf, n);
    }
}

static void readable(int fd) {
    client_t *c = &clients[fd];
    char tmp[65536];
    for (;;) {
        ssize_t n = recv(fd, tmp, sizeof tmp, 0);
        if (n == 0 || (n < 0 && errno != EAGAIN)) { drop(fd); return; }
        if (n < 0) return;
        if (c->inlen + n > c->incap) { c->incap = (c->inlen + n) * 2; c->in = realloc(c->in, c->incap); }
        memcpy(c->in + c->inlen, tmp, n);
        c->inlen += n;
        char *p = c->in, *end = c->in + c->inlen, *nl;
        while ((nl = memchr(p, '\n', end - p))) {
            size_t len = nl - p;
            if (len && p[len - 1] == '\r') len--;
            line(fd, p, len);
            if (!c->open) return;
            p = nl + 1;
        }
        c->inlen = end - p;
        memmove(c->in, p, c->inlen);
        if ((size_t)n < sizeof tmp) return;
    }
}

static void writeOut(int fd) {
    client_t *c = &clients[fd];
    size_t off = 0;
    while (off < c->outlen) {
        ssize_t n = send(fd, c->out + off, c->outlen - off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EAGAIN) break;
            drop(fd);
            return;
        }
        off += n;
    }
    memmove(c->out, c->out + off, c->outlen - off);
    c->outlen -= off;
    /* Watch for writability only while something is left over. */
    if (!c->outlen != !c->watchingOut) {
        c->watchingOut = c->outlen != 0;
        struct epoll_event e = {.events = EPOLLIN | (c->outlen ? EPOLLOUT : 0), .data.fd = fd};
        epoll_ctl(ep, EPOLL_CTL_MOD, fd, &e);
    }
}

int main(int argc, char **argv) {
    maxClients = 65536;
    clients = calloc(maxClients, sizeof *clients);
    dirty = calloc(maxClients, sizeof *dirty);
    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 0)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) { perror("listen"); return 1; }
    getsockname(ls, (struct sockaddr *)&a, &alen);
    printf("listening on %d\n", ntohs(a.sin_port));
    fflush(stdout);
    ep = epoll_create1(0);
    struct epoll_event e = {.events = EPOLLIN, .data.fd = ls}, evs[1024];
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &e);
    for (;;) {
        int n = epoll_wait(ep, evs, 1024, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == ls) {
                int s;
                while ((s = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    if (s >= maxClients) { close(s); continue; }
                    setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    clients[s].open = 1;
                    clients[s].nick[0] = 0;
                    clients[s].watchingOut = 0;
                    struct epoll_event ce = {.events = EPOLLIN, .data.fd = s};
                    epoll_ctl(ep, EPOLL_CTL_ADD, s, &ce);
                    append(s, "??? nick\r\n", 10);
                }
                continue;
            }
            if (!clients[fd].open) continue;
            if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) readable(fd);
            if (clients[fd].open && (evs[i].events & EPOLLOUT) && !clients[fd].dirty) writeOut(fd);
        }
        /* One write per recipient per turn. */
        for (int i = 0; i < ndirty; i++) {
            int fd = dirty[i];
            clients[fd].dirty = 0;
            if (clients[fd].open) writeOut(fd);
        }
        ndirty = 0;
    }
}
