/* alloc.c - see alloc.h. */
#include "util/alloc.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void out_of_memory(size_t n)
{
    fprintf(stderr, "vexlake: out of memory allocating %zu bytes\n", n);
    abort();
}

void *vl_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *vl_calloc(size_t count, size_t size)
{
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *vl_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        out_of_memory(n);
    return q;
}

void *vl_try_realloc(void *p, size_t n)
{
    return realloc(p, n ? n : 1);
}

void *vl_aligned_alloc(size_t n)
{
    void *p = NULL;
    if (posix_memalign(&p, 64, n ? n : 64) != 0)
        out_of_memory(n);
    return p;
}

char *vl_strndup(const char *s, size_t n)
{
    char *d = vl_malloc(n + 1);
    memcpy(d, s, n);
    d[n] = '\0';
    return d;
}
