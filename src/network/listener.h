/* listener.h - the listening TCP socket. */
#ifndef VL_NETWORK_LISTENER_H
#define VL_NETWORK_LISTENER_H

#include <stddef.h>
#include <stdint.h>

/** Bind addr:port (IPv4 or IPv6 literal, or a host name) and listen.
 *  Returns the non-blocking fd, or -1 with a message in err. */
int vl_listen_tcp(const char *addr, int port, char *err, size_t errlen);

/** Raise the soft open-files limit (RLIMIT_NOFILE) toward the hard limit,
 *  as far as clients + reserved descriptors need.  Returns how many
 *  clients the limit now in force allows (clients itself when it allows
 *  them all, at least 1) and sets *soft to that limit. */
uint64_t vl_fd_limit_fit(uint64_t clients, unsigned reserved, uint64_t *soft);

#endif
