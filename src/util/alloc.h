/*
 * alloc.h - allocation that never returns NULL.
 *
 * Like Redis' zmalloc, running out of memory is treated as fatal: the
 * process prints a message and aborts.  Every acknowledged write is already
 * in the WAL, so aborting loses nothing durable, while trying to limp on
 * with half-applied in-memory state could serve wrong answers.
 */
#ifndef VL_UTIL_ALLOC_H
#define VL_UTIL_ALLOC_H

#include <stddef.h>

void *vl_malloc(size_t n);
void *vl_calloc(size_t count, size_t size);
void *vl_realloc(void *p, size_t n);
/** 64-byte aligned block (SIMD loads, cache lines); release with free(). */
void *vl_aligned_alloc(size_t n);
char *vl_strndup(const char *s, size_t n);

#endif
