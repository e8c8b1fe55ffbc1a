/*
 * objstore_conformance.h - what every object-store backend must do, as
 * cmocka tests.  Included by test_objstore.c (local directory) and
 * test_objstore_s3.c (S3 on SeaweedFS); each sets store_of, which gives
 * the open, empty store of a test's fixture state, before running them.
 */
#ifndef VL_OBJSTORE_CONFORMANCE_H
#define VL_OBJSTORE_CONFORMANCE_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "storage/objstore.h"

/** The store under test, from a test's fixture state. */
static vl_objstore *(*store_of)(void **state);

static void put_str(vl_objstore *s, const char *name, const char *text)
{
    vl_error err;
    assert_int_equal(vl_obj_put(s, name, text, strlen(text), &err), VL_OK);
}

static void assert_content(vl_objstore *s, const char *name, const char *text)
{
    void *data = NULL;
    size_t len = 0;
    vl_error err;
    assert_int_equal(vl_obj_get(s, name, &data, &len, &err), VL_OK);
    assert_int_equal(len, strlen(text));
    assert_memory_equal(data, text, len);
    free(data);
}

static void test_put_get_overwrite(void **state)
{
    vl_objstore *s = store_of(state);
    put_str(s, "a", "hello");
    assert_content(s, "a", "hello");
    put_str(s, "a", "a longer replacement");
    assert_content(s, "a", "a longer replacement");
    put_str(s, "deep/er/still/x.bin", "nested");
    assert_content(s, "deep/er/still/x.bin", "nested");
    put_str(s, "empty", "");
    assert_content(s, "empty", "");
}

static void test_get_missing(void **state)
{
    vl_objstore *s = store_of(state);
    void *data;
    size_t len;
    vl_error err;
    assert_int_equal(vl_obj_get(s, "nope", &data, &len, &err), VL_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(vl_obj_get(s, "no/such/dir", &data, &len, &err), VL_ERR_NOTFOUND);
    char buf[4];
    size_t got;
    assert_int_equal(vl_obj_get_range(s, "nope", 0, 4, buf, &got, &err), VL_ERR_NOTFOUND);
}

static void test_get_range(void **state)
{
    vl_objstore *s = store_of(state);
    put_str(s, "r", "0123456789");
    char buf[16];
    size_t got = 99;
    vl_error err;
    assert_int_equal(vl_obj_get_range(s, "r", 3, 4, buf, &got, &err), VL_OK);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "3456", 4);
    assert_int_equal(vl_obj_get_range(s, "r", 8, 10, buf, &got, &err), VL_OK);
    assert_int_equal(got, 2);
    assert_memory_equal(buf, "89", 2);
    assert_int_equal(vl_obj_get_range(s, "r", 10, 5, buf, &got, &err), VL_OK);
    assert_int_equal(got, 0);
    assert_int_equal(vl_obj_get_range(s, "r", 1000, 5, buf, &got, &err), VL_OK);
    assert_int_equal(got, 0);
}

static void test_list_sorted_with_prefix(void **state)
{
    vl_objstore *s = store_of(state);
    const char *names[] = {"collections/b.desc",
                           "collections/a.desc",
                           "collections/a-b.desc",
                           "collectionsX",
                           "other/z",
                           "collections/sub/c",
                           "a"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        put_str(s, names[i], names[i]);
    vl_objinfo *l;
    size_t n;
    vl_error err;
    assert_int_equal(vl_obj_list(s, "collections/", &l, &n, &err), VL_OK);
    assert_int_equal(n, 4);
    assert_string_equal(l[0].name, "collections/a-b.desc");
    assert_string_equal(l[1].name, "collections/a.desc");
    assert_string_equal(l[2].name, "collections/b.desc");
    assert_string_equal(l[3].name, "collections/sub/c");
    assert_int_equal(l[1].size, strlen("collections/a.desc"));
    vl_objinfo_free(l, n);

    assert_int_equal(vl_obj_list(s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, 7);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(l[i - 1].name, l[i].name) < 0);
    vl_objinfo_free(l, n);

    assert_int_equal(vl_obj_list(s, "collections", &l, &n, &err), VL_OK);
    assert_int_equal(n, 5); /* includes collectionsX */
    vl_objinfo_free(l, n);

    assert_int_equal(vl_obj_list(s, "zzz/", &l, &n, &err), VL_OK);
    assert_int_equal(n, 0);
    vl_objinfo_free(l, n);
}

static void test_del(void **state)
{
    vl_objstore *s = store_of(state);
    vl_error err;
    put_str(s, "d/x", "1");
    assert_int_equal(vl_obj_del(s, "d/x", &err), VL_OK);
    void *data;
    size_t len;
    assert_int_equal(vl_obj_get(s, "d/x", &data, &len, &err), VL_ERR_NOTFOUND);
    assert_int_equal(vl_obj_del(s, "d/x", &err), VL_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "d/x"));
    assert_int_equal(vl_obj_del(s, "never/was", &err), VL_ERR_NOTFOUND);
}

static void test_put_if_absent(void **state)
{
    vl_objstore *s = store_of(state);
    vl_error err;
    assert_int_equal(vl_obj_put_if_absent(s, "m/one", "first", 5, &err), VL_OK);
    assert_int_equal(vl_obj_put_if_absent(s, "m/one", "second", 6, &err), VL_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "m/one"));
    assert_non_null(strstr(err.msg, "exists"));
    assert_content(s, "m/one", "first");
    /* Nothing else may be left behind by either call. */
    vl_objinfo *l;
    size_t n;
    assert_int_equal(vl_obj_list(s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, 1);
    vl_objinfo_free(l, n);
}

static void test_bad_names(void **state)
{
    vl_objstore *s = store_of(state);
    const char *bad[] = {"",   "/abs", ".",    "..",      "a/../b",     "a/./b", "a//b",
                         "a/", "../x", "x/..", "a.tmp.1", "d/f.tmp.zz", "./a"};
    vl_error err;
    void *data;
    size_t len, got;
    char buf[4];
    vl_objinfo *l;
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(vl_obj_put(s, bad[i], "x", 1, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_put_if_absent(s, bad[i], "x", 1, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_get(s, bad[i], &data, &len, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_get_range(s, bad[i], 0, 1, buf, &got, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_del(s, bad[i], &err), VL_ERR_ARG);
    }
    assert_int_equal(vl_obj_put(s, NULL, "x", 1, &err), VL_ERR_ARG);
    assert_int_equal(vl_obj_list(s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, 0);
    vl_objinfo_free(l, n);
    /* Dots inside a component are fine. */
    put_str(s, "a..b/.hidden/x.y", "ok");
    assert_content(s, "a..b/.hidden/x.y", "ok");
}

#define VL_OBJSTORE_CONFORMANCE_TESTS(setup, teardown)                                             \
    cmocka_unit_test_setup_teardown(test_put_get_overwrite, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_get_missing, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_get_range, setup, teardown),                          \
        cmocka_unit_test_setup_teardown(test_list_sorted_with_prefix, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_del, setup, teardown),                                \
        cmocka_unit_test_setup_teardown(test_put_if_absent, setup, teardown),                      \
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown)

#endif
