/*
 * conn.h - one client's byte stream: a plain socket or a TLS session.
 *
 * The client layer (client.c) reads and writes only through these calls
 * and never sees what carries the bytes; everything OpenSSL lives in
 * conn_tls.c.  The shape is that of Redis' connection types.
 *
 * Decisions a reader cannot see from the code:
 *  - The client speaks of what it wants to do ("read requests", "write
 *    replies"); a TLS session may need the opposite socket event for it
 *    (SSL_read wanting a write, the handshake wanting either).  So the
 *    client asks vl_conn_interest() which socket events to watch, and
 *    hands what the socket reported to vl_conn_ready(), which says which
 *    of its wishes can now make progress.  For a plain socket both are
 *    the identity.
 *  - Read and write return the byte count, 0 for "nothing now, wait for
 *    an event", and -1 when the connection is finished (peer closed it,
 *    an error, a failed handshake).  End of stream is -1, not 0.
 *  - vl_conn_has_pending() reports bytes already inside the conn (a TLS
 *    record decrypted but not yet read) that no socket event will
 *    announce; a reader drains them before waiting.
 *  - The conn owns the socket: vl_conn_close() closes it.
 */
#ifndef VL_NETWORK_CONN_H
#define VL_NETWORK_CONN_H

#include <stddef.h>
#include <sys/types.h>

typedef struct vl_conn vl_conn;

typedef struct {
    ssize_t (*read)(vl_conn *c, void *buf, size_t len);
    ssize_t (*write)(vl_conn *c, const void *buf, size_t len);
    int (*interest)(vl_conn *c, int mask);
    int (*ready)(vl_conn *c, int events);
    int (*has_pending)(vl_conn *c);
    void (*close)(vl_conn *c);
} vl_conn_ops;

/** Implementations embed this first. */
struct vl_conn {
    const vl_conn_ops *ops;
    int fd;
};

/** Wrap an accepted socket as a plain connection (takes the fd). */
vl_conn *vl_conn_plain_new(int fd);

static inline int vl_conn_fd(const vl_conn *c)
{
    return c->fd;
}

static inline ssize_t vl_conn_read(vl_conn *c, void *buf, size_t len)
{
    return c->ops->read(c, buf, len);
}

static inline ssize_t vl_conn_write(vl_conn *c, const void *buf, size_t len)
{
    return c->ops->write(c, buf, len);
}

/** Socket events (VL_EV_*) to watch so that the wishes in mask can progress. */
static inline int vl_conn_interest(vl_conn *c, int mask)
{
    return c->ops->interest(c, mask);
}

/** Which wishes (VL_EV_*) the socket events reported can now serve. */
static inline int vl_conn_ready(vl_conn *c, int events)
{
    return c->ops->ready(c, events);
}

static inline int vl_conn_has_pending(vl_conn *c)
{
    return c->ops->has_pending(c);
}

/** Close the socket and free the conn. */
static inline void vl_conn_close(vl_conn *c)
{
    c->ops->close(c);
}

#endif
