/*
 * resp.c - see resp.h.  The reader walks nested aggregates recursively up
 * to a fixed depth (a reply nested deeper is a protocol error here; no
 * command this tool sends gets one).
 */
#include "resp.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 16
#define MAX_BULK ((int64_t)512 * 1024 * 1024)

void vb_buf_reserve(vb_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 4096;
    while (cap - b->len < extra)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        fprintf(stderr, "vexlake-bench: out of memory (%zu bytes)\n", cap);
        exit(1);
    }
    b->data = p;
    b->cap = cap;
}

void vb_buf_put(vb_buf *b, const void *p, size_t n)
{
    vb_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void vb_buf_free(vb_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

size_t vb_format_uint(char *dst, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        dst[i] = tmp[n - 1 - i];
    return n;
}

static void put_header(vb_buf *b, char type, size_t n)
{
    vb_buf_reserve(b, 24);
    b->data[b->len++] = type;
    b->len += vb_format_uint(b->data + b->len, n);
    b->data[b->len++] = '\r';
    b->data[b->len++] = '\n';
}

void vb_resp_command(vb_buf *b, int argc, const char *const *argv, const size_t *lens)
{
    put_header(b, '*', (size_t)argc);
    for (int i = 0; i < argc; i++) {
        put_header(b, '$', lens[i]);
        vb_buf_reserve(b, lens[i] + 2);
        memcpy(b->data + b->len, argv[i], lens[i]);
        memcpy(b->data + b->len + lens[i], "\r\n", 2);
        b->len += lens[i] + 2;
    }
}

typedef struct {
    const char *buf;
    size_t len, pos;
} cursor;

/* The line at the cursor without its CRLF; 0 when the CRLF has not come. */
static int take_line(cursor *c, vb_str *line)
{
    const char *start = c->buf + c->pos;
    const char *lf = memchr(start, '\n', c->len - c->pos);
    if (!lf)
        return 0;
    if (lf == start || lf[-1] != '\r')
        return -1;
    line->ptr = start;
    line->len = (size_t)(lf - 1 - start);
    c->pos = (size_t)(lf + 1 - c->buf);
    return 1;
}

static int parse_int(vb_str s, int64_t *out)
{
    size_t i = 0;
    int neg = 0;
    if (s.len && s.ptr[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == s.len || s.len - i > 18)
        return -1;
    int64_t v = 0;
    for (; i < s.len; i++) {
        if (s.ptr[i] < '0' || s.ptr[i] > '9')
            return -1;
        v = v * 10 + (s.ptr[i] - '0');
    }
    *out = neg ? -v : v;
    return 0;
}

/* One value at the cursor: 1 done, 0 incomplete, -1 protocol error.  When
 * str is given, a string value's bytes go there. */
static int parse_value(cursor *c, int depth, vb_str *str, char *type, vb_str *text, int64_t *count,
                       vb_reply *top)
{
    if (depth > MAX_DEPTH)
        return -1;
    if (c->pos >= c->len)
        return 0;
    char t = c->buf[c->pos++];
    vb_str line;
    int r = take_line(c, &line);
    if (r <= 0)
        return r;
    if (type)
        *type = t;
    if (text)
        *text = line;
    int64_t n;
    switch (t) {
    case ':':
        for (size_t i = line.len && line.ptr[0] == '-'; i < line.len; i++) {
            if (line.ptr[i] < '0' || line.ptr[i] > '9')
                return -1;
        }
        if (line.len == 0 || (line.len == 1 && line.ptr[0] == '-'))
            return -1;
        if (str)
            *str = line;
        return 1;
    case '+':
    case '-':
    case ',':
    case '#':
    case '(':
    case '_':
        if (str)
            *str = line;
        return 1;
    case '$':
    case '=':
    case '!':
        if (parse_int(line, &n) != 0 || n < -1 || n > MAX_BULK)
            return -1;
        if (n == -1) {
            if (text)
                *text = (vb_str){NULL, 0};
            return 1;
        }
        if (c->len - c->pos < (size_t)n + 2)
            return 0;
        if (c->buf[c->pos + (size_t)n] != '\r' || c->buf[c->pos + (size_t)n + 1] != '\n')
            return -1;
        if (str)
            *str = (vb_str){c->buf + c->pos, (size_t)n};
        if (text)
            *text = (vb_str){c->buf + c->pos, (size_t)n};
        c->pos += (size_t)n + 2;
        return 1;
    case '*':
    case '~':
    case '>':
    case '%':
    case '|':
        if (parse_int(line, &n) != 0 || n < -1)
            return -1;
        if (count)
            *count = n;
        int pairs = t == '%' || t == '|';
        vb_reply *rec = t == '|' ? NULL : top; /* an attribute's keys are not the reply's */
        for (int64_t i = 0; i < n * (pairs ? 2 : 1); i++) {
            vb_str s = {NULL, 0};
            r = parse_value(c, depth + 1, &s, NULL, NULL, NULL, NULL);
            if (r <= 0)
                return r;
            int is_key = !pairs || i % 2 == 0;
            if (rec && is_key && rec->nitems < rec->max_items)
                rec->items[rec->nitems++] = s;
        }
        if (t == '|') /* an attribute comes before the value it describes */
            return parse_value(c, depth, str, type, text, count, top);
        return 1;
    default: return -1;
    }
}

long vb_resp_parse(const char *buf, size_t len, vb_reply *out)
{
    cursor c = {buf, len, 0};
    out->nitems = 0;
    out->count = 0;
    out->text = (vb_str){NULL, 0};
    int r = parse_value(&c, 0, NULL, &out->type, &out->text, &out->count, out);
    if (r < 0)
        return VB_RESP_PROTOCOL;
    if (r == 0)
        return VB_RESP_INCOMPLETE;
    return (long)c.pos;
}
