/* reply.c - see reply.h. */
#include "network/reply.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

void vl_reply_init(vl_reply *r)
{
    memset(r, 0, sizeof *r);
    r->proto = 2;
}

void vl_reply_free(vl_reply *r)
{
    free(r->base);
    r->base = r->data = NULL;
    r->len = r->cap = 0;
}

/* Sent bytes in front of the unsent ones. */
static size_t offset(const vl_reply *r)
{
    return r->base ? (size_t)(r->data - r->base) : 0;
}

/* Move the unsent bytes to the front of the buffer. */
static void compact(vl_reply *r)
{
    if (r->data != r->base)
        memmove(r->base, r->data, r->len);
    r->data = r->base;
}

void vl_reply_consume(vl_reply *r, size_t n)
{
    if (n >= r->len) {
        r->len = 0;
        r->data = r->base;
        if (r->cap > VL_REPLY_KEEP_BYTES) {
            free(r->base);
            r->base = r->data = NULL;
            r->cap = 0;
        }
        return;
    }
    r->data += n;
    r->len -= n;
    if (offset(r) > r->cap / 2) /* copies fewer bytes than were sent */
        compact(r);
}

size_t vl_reply_room(const vl_reply *r)
{
    size_t off = offset(r);
    return r->cap - r->len - (off >= r->len ? 0 : off); /* reserve() compacts a cheap offset */
}

/* Room for extra more bytes; 0, or -1 (and r->failed) when it cannot grow.
 * Compacts when the copy is cheap (no more than was sent) or the buffer
 * grows anyway; otherwise grows past the offset, which consume drops. */
static int reserve(vl_reply *r, size_t extra)
{
    if (r->failed)
        return -1;
    size_t off = offset(r);
    if (off + r->len + extra <= r->cap)
        return 0;
    if (off >= r->len || r->len + extra > r->cap) {
        compact(r);
        off = 0;
        if (r->len + extra <= r->cap)
            return 0;
    }
    size_t need = off + r->len + extra;
    size_t cap = r->cap ? r->cap : 1024;
    while (cap < need)
        cap *= 2;
    char *base = vl_try_realloc(r->base, cap);
    if (!base) {
        r->failed = 1;
        return -1;
    }
    r->base = base;
    r->data = base + off;
    r->cap = cap;
    return 0;
}

void vl_reply_raw(vl_reply *r, const void *data, size_t len)
{
    if (reserve(r, len) != 0)
        return;
    memcpy(r->data + r->len, data, len);
    r->len += len;
}

static void line(vl_reply *r, char type, const char *s, size_t len)
{
    if (reserve(r, len + 3) != 0)
        return;
    r->data[r->len++] = type;
    memcpy(r->data + r->len, s, len);
    r->len += len;
    r->data[r->len++] = '\r';
    r->data[r->len++] = '\n';
}

/* A search reply is eleven of these lines (the array and K bulk headers):
 * digits by hand, as snprintf cost more than building the rest. */
static void number_line(vl_reply *r, char type, long long v)
{
    char buf[24];
    size_t n = sizeof buf;
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        buf[--n] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        buf[--n] = '-';
    line(r, type, buf + n, sizeof buf - n);
}

void vl_reply_simple(vl_reply *r, const char *s)
{
    line(r, '+', s, strlen(s));
}

void vl_reply_simple_n(vl_reply *r, const char *s, size_t len)
{
    line(r, '+', s, len);
}

void vl_reply_error(vl_reply *r, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof buf)
        n = sizeof buf - 1;
    for (int i = 0; i < n; i++) /* an error is one line: never let CR/LF through */
        if (buf[i] == '\r' || buf[i] == '\n')
            buf[i] = ' ';
    line(r, '-', buf, (size_t)n);
}

void vl_reply_int(vl_reply *r, long long v)
{
    number_line(r, ':', v);
}

void vl_reply_bulk(vl_reply *r, const void *data, size_t len)
{
    number_line(r, '$', (long long)len);
    if (reserve(r, len + 2) != 0)
        return;
    memcpy(r->data + r->len, data, len);
    r->len += len;
    r->data[r->len++] = '\r';
    r->data[r->len++] = '\n';
}

void vl_reply_bulk_str(vl_reply *r, const char *s)
{
    vl_reply_bulk(r, s, strlen(s));
}

void vl_reply_null(vl_reply *r)
{
    if (r->proto == 3)
        vl_reply_raw(r, "_\r\n", 3);
    else
        vl_reply_raw(r, "$-1\r\n", 5);
}

void vl_reply_array(vl_reply *r, size_t n)
{
    number_line(r, '*', (long long)n);
}

void vl_reply_map(vl_reply *r, size_t n)
{
    if (r->proto == 3)
        number_line(r, '%', (long long)n);
    else
        number_line(r, '*', (long long)(2 * n));
}

void vl_reply_double(vl_reply *r, double v)
{
    char buf[40];
    int n = snprintf(buf, sizeof buf, "%.17g", v);
    if (r->proto == 3)
        line(r, ',', buf, (size_t)n);
    else
        vl_reply_bulk(r, buf, (size_t)n);
}
