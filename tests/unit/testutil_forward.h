/*
 * testutil_forward.h - a store in front of another one that passes every
 * call on: the base of the tests' spies and fault injectors.  A test puts
 * a vl_test_forward first in its own struct, points real at the store it
 * wraps, and builds its ops table from the fwd_* calls below and the few
 * of its own that count, hook or fail a call (each starts from
 * fwd_real()).  Self-contained: it includes what it uses.
 */
#ifndef VL_TESTUTIL_FORWARD_H
#define VL_TESTUTIL_FORWARD_H

#include <stdlib.h>

#include "storage/objstore.h"

typedef struct {
    vl_objstore base;
    vl_objstore *real; /* every call goes on to it */
} vl_test_forward;

static inline vl_objstore *fwd_real(vl_objstore *s)
{
    return ((vl_test_forward *)(void *)s)->real;
}

static inline vl_status fwd_put(vl_objstore *s, const char *n, const void *d, size_t l, vl_error *e)
{
    return vl_obj_put(fwd_real(s), n, d, l, e);
}

static inline vl_status fwd_put_if_absent(vl_objstore *s, const char *n, const void *d, size_t l,
                                          vl_error *e)
{
    return vl_obj_put_if_absent(fwd_real(s), n, d, l, e);
}

static inline vl_status fwd_get(vl_objstore *s, const char *n, void **d, size_t *l, vl_error *e)
{
    return vl_obj_get(fwd_real(s), n, d, l, e);
}

static inline vl_status fwd_get_range(vl_objstore *s, const char *n, uint64_t o, size_t l, void *b,
                                      size_t *g, vl_error *e)
{
    return vl_obj_get_range(fwd_real(s), n, o, l, b, g, e);
}

static inline vl_status fwd_list(vl_objstore *s, const char *p, vl_objinfo **o, size_t *n,
                                 vl_error *e)
{
    return vl_obj_list(fwd_real(s), p, o, n, e);
}

static inline vl_status fwd_del(vl_objstore *s, const char *n, vl_error *e)
{
    return vl_obj_del(fwd_real(s), n, e);
}

/* Close for a forwarder the fixture owns: the fixture closes real. */
static inline void fwd_close_nothing(vl_objstore *s)
{
    (void)s;
}

/* Close for a forwarder handed over (malloc'd): real, then itself. */
static inline void fwd_close_all(vl_objstore *s)
{
    vl_obj_close(fwd_real(s));
    free(s);
}

#endif
