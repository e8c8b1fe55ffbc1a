/*
 * reply.h - building RESP2 / RESP3 replies into a connection's buffer.
 *
 * Handlers write replies through these calls only, so the protocol
 * version a client chose with HELLO is applied in one place: maps become
 * flat arrays, doubles become bulk strings and nulls become $-1 for RESP2
 * clients.
 *
 * Growth fails softly: when the buffer cannot grow, `failed` is set, the
 * reply being built is incomplete and every later append is dropped; the
 * client layer then closes that client (alloc.h explains why only client
 * buffers may fail like this).  A drained buffer larger than
 * VL_REPLY_KEEP_BYTES is released, so an idle client that once received a
 * large reply holds no memory for it.
 *
 * Consuming sent bytes advances `data` inside the allocation (`base`)
 * instead of moving the rest down, so a slow reader of a large reply does
 * not cost a copy of the remainder per partial write.  The unsent bytes
 * are moved to the front only when that copy is paid for by bytes already
 * sent: once the offset passes half the buffer, or when an append would
 * otherwise need room and the offset is at least the unsent length (a
 * growth compacts too; it copies anyway).  `data` and `len` always denote
 * the unsent bytes, so positions callers keep (client.c's durability
 * marks, a handler's "reply started here") are relative to `data` and
 * only consume shifts them; `data` itself may move on any append or
 * consume (conn_tls.c accepts a moving write buffer).
 */
#ifndef VL_NETWORK_REPLY_H
#define VL_NETWORK_REPLY_H

#include <stddef.h>

#include "util/error.h"

/** Capacity a drained reply buffer may keep for the next reply. */
#define VL_REPLY_KEEP_BYTES (64u * 1024)

typedef struct {
    char *base;      /* the allocation, cap bytes (NULL when cap is 0) */
    char *data;      /* first unsent byte, inside base */
    size_t len, cap; /* unsent bytes; allocated bytes */
    int proto;       /* 2 or 3 */
    int failed;      /* the buffer could not grow: the client must be closed */
} vl_reply;

void vl_reply_init(vl_reply *r);
void vl_reply_free(vl_reply *r);
/** Drop the first n bytes (already sent); releases a large drained buffer. */
void vl_reply_consume(vl_reply *r, size_t n);
/** Bytes that can be appended without allocating more. */
size_t vl_reply_room(const vl_reply *r);

void vl_reply_raw(vl_reply *r, const void *data, size_t len);
void vl_reply_simple(vl_reply *r, const char *s);
void vl_reply_simple_n(vl_reply *r, const char *s, size_t len);
/** msg must start with an error code word, e.g. "ERR ..." or "WRONGTYPE ...". */
void vl_reply_error(vl_reply *r, const char *fmt, ...) VL_PRINTF(2, 3);
void vl_reply_int(vl_reply *r, long long v);
void vl_reply_bulk(vl_reply *r, const void *data, size_t len);
void vl_reply_bulk_str(vl_reply *r, const char *s);
void vl_reply_null(vl_reply *r);
void vl_reply_array(vl_reply *r, size_t n);
/** A map of n pairs (RESP2: an array of 2n elements). */
void vl_reply_map(vl_reply *r, size_t n);
/** RESP3 double, or a bulk string with the same text for RESP2. */
void vl_reply_double(vl_reply *r, double v);

#endif
