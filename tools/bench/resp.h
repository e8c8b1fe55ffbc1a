/*
 * resp.h - the load generator's own RESP: a request writer and a reply
 * reader, standalone (nothing from src/), so bin/vexlake-bench can drive any
 * Redis-protocol server.
 *
 * Requests are RESP arrays of bulk strings appended to a growable buffer.
 * The reader parses one complete reply from the front of a buffer; a reply
 * still arriving parses as "incomplete" and is parsed again from its start
 * when more bytes come (replies here are small, so re-parsing is cheaper
 * than keeping parser state).  RESP2 and RESP3 types are understood.
 */
#ifndef VB_RESP_H
#define VB_RESP_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *data;
    size_t len, cap;
} vb_buf;

/* Abort the process on allocation failure: a load generator without memory
 * has nothing better to do. */
void vb_buf_reserve(vb_buf *b, size_t extra);
void vb_buf_put(vb_buf *b, const void *p, size_t n);
void vb_buf_free(vb_buf *b);
/* v in decimal at dst (20 bytes at most, no NUL); returns the length.  The
 * tool formats numbers on every request, and snprintf was 8% of its CPU. */
size_t vb_format_uint(char *dst, uint64_t v);

/* Append one request: *argc CRLF, then $len CRLF arg CRLF per argument. */
void vb_resp_command(vb_buf *b, int argc, const char *const *argv, const size_t *lens);

typedef struct {
    const char *ptr; /* into the parsed buffer: valid until it changes */
    size_t len;
} vb_str;

typedef struct {
    char type;     /* first byte of the reply: + - : $ * % ~ > _ , # ( = | */
    vb_str text;   /* + - ( , # : the line; $ = the payload (nil: ptr NULL) */
    int64_t count; /* aggregates: elements (maps: pairs); -1 for a nil array */
    /* The first max_items top-level elements of an array or set (the keys
     * of a map) that are strings; other elements as {NULL, 0}. */
    vb_str *items;
    uint32_t nitems, max_items;
} vb_reply;

enum { VB_RESP_INCOMPLETE = 0, VB_RESP_PROTOCOL = -1 };

/* Parse one reply at buf[0..len).  Returns the bytes it takes (> 0),
 * VB_RESP_INCOMPLETE, or VB_RESP_PROTOCOL for bytes that are not RESP.
 * out->items must hold out->max_items entries (max_items may be 0). */
long vb_resp_parse(const char *buf, size_t len, vb_reply *out);

#endif
