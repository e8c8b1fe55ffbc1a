/*
 * testutil_store.h - a cmocka fixture holding a local object store in a
 * fresh temporary directory.  Self-contained: it includes what it uses.
 */
#ifndef VL_TESTUTIL_STORE_H
#define VL_TESTUTIL_STORE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>

#include "storage/objstore.h"
#include "testutil.h"

typedef struct {
    char dir[64];
    vl_objstore *s;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_non_null(vl_test_tmpdir(f->dir, sizeof f->dir, "store"));
    vl_error err;
    assert_int_equal(vl_objstore_local_open(f->dir, &f->s, &err), VL_OK);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vl_obj_close(f->s);
    vl_test_rmtree(f->dir);
    free(f);
    return 0;
}

#endif
