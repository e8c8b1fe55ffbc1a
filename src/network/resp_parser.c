/* resp_parser.c - see resp_parser.h. */
#include "network/resp_parser.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/number.h"

void vl_resp_parser_init(vl_resp_parser *p)
{
    memset(p, 0, sizeof *p);
    p->expected = -1;
    p->bulk_len = -1;
}

void vl_resp_parser_free(vl_resp_parser *p)
{
    free(p->offs);
    free(p->lens);
    vl_resp_parser_init(p);
}

void vl_resp_parser_reset(vl_resp_parser *p)
{
    p->pos = 0;
    p->expected = -1;
    p->bulk_len = -1;
    p->argc = 0;
    p->error[0] = '\0';
}

static vl_resp_result fail(vl_resp_parser *p, const char *msg)
{
    snprintf(p->error, sizeof p->error, "Protocol error: %s", msg);
    return VL_RESP_PROTOCOL_ERROR;
}

/* 0, or -1 when the argument tables cannot grow (a client-sized
 * allocation: it fails the request, not the server; see util/alloc.h). */
static int push_arg(vl_resp_parser *p, size_t off, size_t len)
{
    if (p->argc == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        size_t *offs = vl_try_realloc(p->offs, cap * sizeof *offs);
        if (!offs)
            return -1;
        p->offs = offs;
        size_t *lens = vl_try_realloc(p->lens, cap * sizeof *lens);
        if (!lens)
            return -1;
        p->lens = lens;
        p->cap = cap;
    }
    p->offs[p->argc] = off;
    p->lens[p->argc] = len;
    p->argc++;
    return 0;
}

/* Find "\r\n" at or after from; returns its offset or -1. */
static long find_crlf(const char *buf, size_t len, size_t from)
{
    for (size_t i = from; i + 1 < len; i++) {
        const char *cr = memchr(buf + i, '\r', len - 1 - i);
        if (!cr)
            return -1;
        i = (size_t)(cr - buf);
        if (buf[i + 1] == '\n')
            return (long)i;
    }
    return -1;
}

/* One "<prefix>N\r\n" header line at p->pos. 1 = parsed, 0 = need more. */
static int header(vl_resp_parser *p, const char *buf, size_t len, char prefix, int64_t *out,
                  vl_resp_result *res)
{
    long crlf = find_crlf(buf, len, p->pos);
    if (crlf < 0) {
        if (len - p->pos > 32)
            *res = fail(p, prefix == '*' ? "invalid multibulk length" : "invalid bulk length");
        return 0;
    }
    if (buf[p->pos] != prefix) {
        char msg[64];
        snprintf(msg, sizeof msg, "expected '%c', got '%c'", prefix, buf[p->pos]);
        *res = fail(p, msg);
        return 0;
    }
    long long n;
    if (vl_parse_ll(buf + p->pos + 1, (size_t)crlf - (p->pos + 1), &n) != 0) {
        *res = fail(p, prefix == '*' ? "invalid multibulk length" : "invalid bulk length");
        return 0;
    }
    *out = n;
    p->pos = (size_t)crlf + 2;
    return 1;
}

static vl_resp_result parse_multibulk(vl_resp_parser *p, const char *buf, size_t len)
{
    vl_resp_result res = VL_RESP_INCOMPLETE;
    if (p->expected < 0) {
        int64_t n;
        if (!header(p, buf, len, '*', &n, &res))
            return res;
        if (n > VL_RESP_MAX_ARGS)
            return fail(p, "too many arguments in request");
        p->expected = n < 0 ? 0 : n;
    }
    while ((int64_t)p->argc < p->expected) {
        if (p->bulk_len < 0) {
            if (p->pos >= len)
                return VL_RESP_INCOMPLETE;
            int64_t n;
            if (!header(p, buf, len, '$', &n, &res))
                return res;
            if (n < 0 || n > VL_RESP_MAX_BULK)
                return fail(p, "invalid bulk length");
            p->bulk_len = n;
        }
        if (len - p->pos < (size_t)p->bulk_len + 2)
            return VL_RESP_INCOMPLETE;
        if (buf[p->pos + p->bulk_len] != '\r' || buf[p->pos + p->bulk_len + 1] != '\n')
            return fail(p, "bulk string not terminated by CRLF");
        if (push_arg(p, p->pos, (size_t)p->bulk_len) != 0)
            return fail(p, "out of memory for the arguments of the request");
        p->pos += (size_t)p->bulk_len + 2;
        p->bulk_len = -1;
    }
    return VL_RESP_COMMAND;
}

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/* Inline request: words separated by blanks; "..." or '...' group words
 * (no escapes).  Ends at "\n" (a preceding "\r" is dropped). */
static vl_resp_result parse_inline(vl_resp_parser *p, const char *buf, size_t len)
{
    const char *nl = memchr(buf, '\n', len);
    if (!nl)
        return len > VL_RESP_MAX_INLINE ? fail(p, "too big inline request") : VL_RESP_INCOMPLETE;
    size_t end = (size_t)(nl - buf), i = 0;
    if (end > VL_RESP_MAX_INLINE)
        return fail(p, "too big inline request");
    size_t stop = (end > 0 && buf[end - 1] == '\r') ? end - 1 : end;
    while (i < stop) {
        while (i < stop && is_blank(buf[i]))
            i++;
        if (i == stop)
            break;
        if (buf[i] == '"' || buf[i] == '\'') {
            const char *close = memchr(buf + i + 1, buf[i], stop - i - 1);
            if (!close)
                return fail(p, "unbalanced quotes in request");
            if (push_arg(p, i + 1, (size_t)(close - buf) - i - 1) != 0)
                return fail(p, "out of memory for the arguments of the request");
            i = (size_t)(close - buf) + 1;
            if (i < stop && !is_blank(buf[i]))
                return fail(p, "closing quote must be followed by a space");
        } else {
            size_t start = i;
            while (i < stop && !is_blank(buf[i]))
                i++;
            if (push_arg(p, start, i - start) != 0)
                return fail(p, "out of memory for the arguments of the request");
        }
    }
    p->pos = end + 1;
    return VL_RESP_COMMAND;
}

vl_resp_result vl_resp_parse(vl_resp_parser *p, const char *buf, size_t len)
{
    if (len == 0)
        return VL_RESP_INCOMPLETE;
    if (p->expected >= 0 || buf[0] == '*')
        return parse_multibulk(p, buf, len);
    return parse_inline(p, buf, len);
}
