/* test_objstore.c - the local object store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"
#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/objstore.h"

#include "testutil_store.h"

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
    fixture *f = *state;
    put_str(f->s, "a", "hello");
    assert_content(f->s, "a", "hello");
    put_str(f->s, "a", "a longer replacement");
    assert_content(f->s, "a", "a longer replacement");
    put_str(f->s, "deep/er/still/x.bin", "nested");
    assert_content(f->s, "deep/er/still/x.bin", "nested");
    put_str(f->s, "empty", "");
    assert_content(f->s, "empty", "");
}

static void test_get_missing(void **state)
{
    fixture *f = *state;
    void *data;
    size_t len;
    vl_error err;
    assert_int_equal(vl_obj_get(f->s, "nope", &data, &len, &err), VL_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "nope"));
    assert_int_equal(vl_obj_get(f->s, "no/such/dir", &data, &len, &err), VL_ERR_NOTFOUND);
    char buf[4];
    size_t got;
    assert_int_equal(vl_obj_get_range(f->s, "nope", 0, 4, buf, &got, &err), VL_ERR_NOTFOUND);
}

static void test_get_range(void **state)
{
    fixture *f = *state;
    put_str(f->s, "r", "0123456789");
    char buf[16];
    size_t got = 99;
    vl_error err;
    assert_int_equal(vl_obj_get_range(f->s, "r", 3, 4, buf, &got, &err), VL_OK);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "3456", 4);
    assert_int_equal(vl_obj_get_range(f->s, "r", 8, 10, buf, &got, &err), VL_OK);
    assert_int_equal(got, 2);
    assert_memory_equal(buf, "89", 2);
    assert_int_equal(vl_obj_get_range(f->s, "r", 10, 5, buf, &got, &err), VL_OK);
    assert_int_equal(got, 0);
    assert_int_equal(vl_obj_get_range(f->s, "r", 1000, 5, buf, &got, &err), VL_OK);
    assert_int_equal(got, 0);
}

static void test_list_sorted_with_prefix(void **state)
{
    fixture *f = *state;
    const char *names[] = {"collections/b.desc",
                           "collections/a.desc",
                           "collections/a-b.desc",
                           "collectionsX",
                           "other/z",
                           "collections/sub/c",
                           "a"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        put_str(f->s, names[i], names[i]);
    vl_objinfo *l;
    size_t n;
    vl_error err;
    assert_int_equal(vl_obj_list(f->s, "collections/", &l, &n, &err), VL_OK);
    assert_int_equal(n, 4);
    assert_string_equal(l[0].name, "collections/a-b.desc");
    assert_string_equal(l[1].name, "collections/a.desc");
    assert_string_equal(l[2].name, "collections/b.desc");
    assert_string_equal(l[3].name, "collections/sub/c");
    assert_int_equal(l[1].size, strlen("collections/a.desc"));
    vl_objinfo_free(l, n);

    assert_int_equal(vl_obj_list(f->s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, 7);
    for (size_t i = 1; i < n; i++)
        assert_true(strcmp(l[i - 1].name, l[i].name) < 0);
    vl_objinfo_free(l, n);

    assert_int_equal(vl_obj_list(f->s, "collections", &l, &n, &err), VL_OK);
    assert_int_equal(n, 5); /* includes collectionsX */
    vl_objinfo_free(l, n);

    assert_int_equal(vl_obj_list(f->s, "zzz/", &l, &n, &err), VL_OK);
    assert_int_equal(n, 0);
    vl_objinfo_free(l, n);
}

static void test_del(void **state)
{
    fixture *f = *state;
    vl_error err;
    put_str(f->s, "d/x", "1");
    assert_int_equal(vl_obj_del(f->s, "d/x", &err), VL_OK);
    void *data;
    size_t len;
    assert_int_equal(vl_obj_get(f->s, "d/x", &data, &len, &err), VL_ERR_NOTFOUND);
    assert_int_equal(vl_obj_del(f->s, "d/x", &err), VL_ERR_NOTFOUND);
    assert_non_null(strstr(err.msg, "d/x"));
    assert_int_equal(vl_obj_del(f->s, "never/was", &err), VL_ERR_NOTFOUND);
}

static int count_entries(const char *path)
{
    DIR *d = opendir(path);
    assert_non_null(d);
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

static void test_put_if_absent(void **state)
{
    fixture *f = *state;
    vl_error err;
    assert_int_equal(vl_obj_put_if_absent(f->s, "m/one", "first", 5, &err), VL_OK);
    assert_int_equal(vl_obj_put_if_absent(f->s, "m/one", "second", 6, &err), VL_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "m/one"));
    assert_non_null(strstr(err.msg, "exists"));
    assert_content(f->s, "m/one", "first");
    /* No temp file may be left behind by either call. */
    vl_objinfo *l;
    size_t n;
    assert_int_equal(vl_obj_list(f->s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, 1);
    vl_objinfo_free(l, n);
    char path[128];
    snprintf(path, sizeof path, "%s/m", f->dir);
    assert_int_equal(count_entries(path), 1);
}

static void test_bad_names(void **state)
{
    fixture *f = *state;
    const char *bad[] = {"",   "/abs", ".",    "..",      "a/../b",     "a/./b", "a//b",
                         "a/", "../x", "x/..", "a.tmp.1", "d/f.tmp.zz", "./a"};
    vl_error err;
    void *data;
    size_t len, got;
    char buf[4];
    vl_objinfo *l;
    size_t n;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(vl_obj_put(f->s, bad[i], "x", 1, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_put_if_absent(f->s, bad[i], "x", 1, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_get(f->s, bad[i], &data, &len, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_get_range(f->s, bad[i], 0, 1, buf, &got, &err), VL_ERR_ARG);
        assert_int_equal(vl_obj_del(f->s, bad[i], &err), VL_ERR_ARG);
    }
    assert_int_equal(vl_obj_put(f->s, NULL, "x", 1, &err), VL_ERR_ARG);
    assert_int_equal(vl_obj_list(f->s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, 0);
    vl_objinfo_free(l, n);
    /* Dots inside a component are fine. */
    put_str(f->s, "a..b/.hidden/x.y", "ok");
    assert_content(f->s, "a..b/.hidden/x.y", "ok");
}

static void write_raw(const char *dir, const char *rel, const char *text)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static void test_temp_files_removed_on_open(void **state)
{
    fixture *f = *state;
    vl_error err;
    put_str(f->s, "keep/a", "A");
    write_raw(f->dir, "keep/a.tmp.123abc", "partial");
    write_raw(f->dir, "top.tmp.x", "partial");
    vl_objinfo *l;
    size_t n;
    assert_int_equal(vl_obj_list(f->s, "", &l, &n, &err), VL_OK);
    assert_int_equal(n, 1); /* temp files never listed */
    vl_objinfo_free(l, n);

    vl_obj_close(f->s);
    assert_int_equal(vl_objstore_local_open(f->dir, &f->s, &err), VL_OK);
    char path[256];
    snprintf(path, sizeof path, "%s/keep/a.tmp.123abc", f->dir);
    assert_int_equal(access(path, F_OK), -1);
    snprintf(path, sizeof path, "%s/top.tmp.x", f->dir);
    assert_int_equal(access(path, F_OK), -1);
    assert_content(f->s, "keep/a", "A");
}

static void test_open_creates_nested_dir(void **state)
{
    fixture *f = *state;
    char sub[128];
    snprintf(sub, sizeof sub, "%s/x/y/z", f->dir);
    vl_objstore *s2;
    vl_error err;
    assert_int_equal(vl_objstore_local_open(sub, &s2, &err), VL_OK);
    put_str(s2, "o", "v");
    assert_content(s2, "o", "v");
    vl_obj_close(s2);
    assert_int_equal(vl_objstore_local_open("", &s2, &err), VL_ERR_ARG);
}

static void test_error_has_context(void **state)
{
    fixture *f = *state;
    vl_error err;
    put_str(f->s, "file", "x");
    /* "file" is a regular file, so it cannot be a directory. */
    assert_int_equal(vl_obj_put(f->s, "file/child", "y", 1, &err), VL_ERR_IO);
    assert_non_null(strstr(err.msg, "put file/child"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_put_get_overwrite, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_get_range, setup, teardown),
        cmocka_unit_test_setup_teardown(test_list_sorted_with_prefix, setup, teardown),
        cmocka_unit_test_setup_teardown(test_del, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_if_absent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_files_removed_on_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_nested_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_has_context, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
