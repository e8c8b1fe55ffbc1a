/*
 * listener.c - the listening socket, and fitting the client limit to the
 * process's open-files limit.
 *
 * Every client costs a descriptor; when they run out, accept() fails and
 * new clients would wait unanswered.  So at start the soft limit is raised
 * as far as --maxclients needs (never past the hard limit), and when that
 * is not enough, maxclients is lowered so that clients past it are refused
 * with an error instead (the WAL, segments, listeners and event fds keep a
 * reserve).  Redis does the same.
 */
#include "network/listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

int vl_listen_tcp(const char *addr, int port, char *err, size_t errlen)
{
    struct addrinfo hints = {0}, *res = NULL;
    char portstr[16];
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(portstr, sizeof portstr, "%d", port);
    int rc = getaddrinfo(addr, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot resolve bind address '%s': %s", addr, gai_strerror(rc));
        return -1;
    }
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 511) == 0)
            break;
        snprintf(err, errlen, "cannot listen on %s:%d: %s", addr, port, strerror(errno));
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    return fd;
}

uint64_t vl_fd_limit_fit(uint64_t clients, unsigned reserved, uint64_t *soft)
{
    struct rlimit rl;
    *soft = UINT64_MAX;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return clients;
    rlim_t want = (rlim_t)(clients + reserved);
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
        struct rlimit raised = rl;
        raised.rlim_cur =
            (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want) ? want : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = raised.rlim_cur;
    }
    if (rl.rlim_cur == RLIM_INFINITY)
        return clients;
    *soft = (uint64_t)rl.rlim_cur;
    if (rl.rlim_cur >= want)
        return clients;
    return rl.rlim_cur > reserved + 1 ? (uint64_t)rl.rlim_cur - reserved : 1;
}
