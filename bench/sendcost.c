/*
 * The machine's floor for fan-out: what one loopback send of a chat line
 * costs, measured without any server.  It opens N loopback TCP connections,
 * has a child process read them all through epoll (as the load generator
 * does, so each send wakes a reader), and times sending one 80-byte line to
 * each of the N sockets in turn, TCP_NODELAY on, best of 20 rounds.
 *
 * Usage: sendcost [N]   (1000 by default; prints one line of JSON:
 *                        {"connections": N, "send_us": ...})
 *
 * Any server that writes each recipient's line with its own send (as every
 * server must when lines arrive one at a time) needs about N x send_us to
 * reach the last member of a room of N + 1.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec / 1e9;
}

static void drain(int *fds, int n) {
    int ep = epoll_create1(0);
    for (int i = 0; i < n; i++) {
        struct epoll_event e = {.events = EPOLLIN, .data.fd = fds[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &e);
    }
    struct epoll_event evs[1024];
    char buf[65536];
    for (;;) {
        int got = epoll_wait(ep, evs, 1024, -1);
        for (int i = 0; i < got; i++)
            if (recv(evs[i].data.fd, buf, sizeof buf, 0) == 0) _exit(0);
    }
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 1000, one = 1;
    struct rlimit lim = {2 * n + 64, 2 * n + 64};
    setrlimit(RLIMIT_NOFILE, &lim);
    int *clients = calloc(n, sizeof *clients), *servers = calloc(n, sizeof *servers);
    int ls = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t alen = sizeof a;
    if (bind(ls, (struct sockaddr *)&a, sizeof a) < 0 || listen(ls, 4096) < 0) {
        perror("listen");
        return 1;
    }
    getsockname(ls, (struct sockaddr *)&a, &alen);
    for (int i = 0; i < n; i++) {
        clients[i] = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(clients[i], (struct sockaddr *)&a, sizeof a) < 0) { perror("connect"); return 1; }
        servers[i] = accept(ls, NULL, NULL);
        setsockopt(servers[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    pid_t reader = fork();
    if (reader == 0) drain(clients, n);
    usleep(100000);
    char line[80];
    memset(line, 'x', sizeof line - 2);
    memcpy(line + sizeof line - 2, "\r\n", 2);
    double best = 1e9;
    for (int round = 0; round < 20; round++) {
        double t = now();
        for (int i = 0; i < n; i++) send(servers[i], line, sizeof line, MSG_NOSIGNAL);
        t = now() - t;
        if (t < best) best = t;
        usleep(20000);
    }
    kill(reader, SIGKILL);
    waitpid(reader, NULL, 0);
    printf("{\"connections\": %d, \"send_us\": %.2f}\n", n, best * 1e6 / n);
    return 0;
}
