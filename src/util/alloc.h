/*
 * alloc.h - allocation that never returns NULL, and the one exception.
 *
 * Like Redis' zmalloc, running out of memory is treated as fatal: the
 * process prints a message and aborts.  Every acknowledged write is already
 * in the WAL, so aborting loses nothing durable, while trying to limp on
 * with half-applied in-memory state could serve wrong answers.
 *
 * The exception is memory whose size a client chooses: query and reply
 * buffers (network/client.c, network/reply.c) and a request's argument
 * tables.  Those grow with vl_try_realloc(), and a failure closes that one
 * client instead of the server: client input must never abort the process.
 */
#ifndef VL_UTIL_ALLOC_H
#define VL_UTIL_ALLOC_H

#include <stddef.h>

void *vl_malloc(size_t n);
void *vl_calloc(size_t count, size_t size);
void *vl_realloc(void *p, size_t n);
/** realloc that returns NULL on failure (p is then untouched and still
 *  owned by the caller); for buffers sized by client input. */
void *vl_try_realloc(void *p, size_t n);
/** 64-byte aligned block (SIMD loads, cache lines); release with free(). */
void *vl_aligned_alloc(size_t n);
char *vl_strndup(const char *s, size_t n);

#endif
