/*
 * conn.c - the plain-socket connection (see conn.h).
 *
 * EINTR is retried; EAGAIN is "nothing now" (0); a zero-byte read (the
 * peer closed) and every other error finish the connection (-1).
 */
#include "network/conn.h"

#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/alloc.h"

static ssize_t plain_result(ssize_t n)
{
    if (n > 0)
        return n;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        return 0;
    return -1;
}

static ssize_t plain_read(vl_conn *c, void *buf, size_t len)
{
    ssize_t n;
    do
        n = read(c->fd, buf, len);
    while (n < 0 && errno == EINTR);
    return plain_result(n);
}

static ssize_t plain_write(vl_conn *c, const void *buf, size_t len)
{
    ssize_t n;
    do
        n = write(c->fd, buf, len);
    while (n < 0 && errno == EINTR);
    return plain_result(n);
}

static int plain_same(vl_conn *c, int mask)
{
    (void)c;
    return mask;
}

static int plain_has_pending(vl_conn *c)
{
    (void)c;
    return 0;
}

static void plain_close(vl_conn *c)
{
    close(c->fd);
    free(c);
}

static const vl_conn_ops plain_ops = {plain_read, plain_write,       plain_same,
                                      plain_same, plain_has_pending, plain_close};

vl_conn *vl_conn_plain_new(int fd)
{
    vl_conn *c = vl_malloc(sizeof *c);
    c->ops = &plain_ops;
    c->fd = fd;
    return c;
}
