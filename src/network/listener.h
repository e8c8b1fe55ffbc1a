/* listener.h - the listening TCP socket. */
#ifndef VL_NETWORK_LISTENER_H
#define VL_NETWORK_LISTENER_H

#include <stddef.h>

/** Bind addr:port (IPv4 or IPv6 literal, or a host name) and listen.
 *  Returns the non-blocking fd, or -1 with a message in err. */
int vl_listen_tcp(const char *addr, int port, char *err, size_t errlen);

#endif
