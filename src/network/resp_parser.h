/*
 * resp_parser.h - incremental parser of client requests (RESP2/RESP3
 * multibulk arrays, and inline commands for telnet users).
 *
 * The parser works on the connection's query buffer in place: it records
 * where each argument starts (an offset, since the buffer may be
 * reallocated while a request is incomplete) and resumes where it stopped
 * when more bytes arrive, so a large request split across many reads is
 * scanned once.  Limits (documented in README "Limits"):
 *   VL_RESP_MAX_BULK     bytes in one argument
 *   VL_RESP_MAX_ARGS     arguments in one request
 *   VL_RESP_MAX_INLINE   bytes in one inline request line
 * A request over a limit, or bytes that are not RESP, give
 * VL_RESP_PROTOCOL_ERROR with a message; the server then replies with the
 * error and closes the connection, as Redis does.
 */
#ifndef VL_NETWORK_RESP_PARSER_H
#define VL_NETWORK_RESP_PARSER_H

#include <stddef.h>
#include <stdint.h>

#define VL_RESP_MAX_BULK (8u * 1024 * 1024)
#define VL_RESP_MAX_ARGS (1024 * 1024)
#define VL_RESP_MAX_INLINE (64 * 1024)

typedef enum { VL_RESP_INCOMPLETE, VL_RESP_COMMAND, VL_RESP_PROTOCOL_ERROR } vl_resp_result;

typedef struct {
    size_t pos;       /* bytes of the current request consumed so far */
    int64_t expected; /* arguments announced by '*N', -1 before it */
    int64_t bulk_len; /* length announced by '$N', -1 before it */
    size_t argc, cap;
    size_t *offs, *lens;
    char error[128];
} vl_resp_parser;

void vl_resp_parser_init(vl_resp_parser *p);
void vl_resp_parser_free(vl_resp_parser *p);
/** Forget the finished request (call after handling a command). */
void vl_resp_parser_reset(vl_resp_parser *p);

/**
 * Continue parsing buf[0..len), where buf starts at the current request.
 * VL_RESP_COMMAND: p->argc arguments at buf + p->offs[i], p->lens[i]; the
 * request used p->pos bytes.  An empty inline line gives a command with
 * argc == 0 (skip it).  VL_RESP_PROTOCOL_ERROR: p->error says why.
 */
vl_resp_result vl_resp_parse(vl_resp_parser *p, const char *buf, size_t len);

#endif
