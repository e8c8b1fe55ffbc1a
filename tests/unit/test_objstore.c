/* test_objstore.c - the local object store: the conformance suite every
 * backend passes (objstore_conformance.h), then what is local-only. */
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

#include "objstore_conformance.h"

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

static void test_put_if_absent_no_temp_left(void **state)
{
    fixture *f = *state;
    vl_error err;
    assert_int_equal(vl_obj_put_if_absent(f->s, "m/one", "first", 5, &err), VL_OK);
    assert_int_equal(vl_obj_put_if_absent(f->s, "m/one", "second", 6, &err), VL_ERR_CONFLICT);
    char path[128];
    snprintf(path, sizeof path, "%s/m", f->dir);
    assert_int_equal(count_entries(path), 1);
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

/* vl_obj_read maps a local object (the bytes get returns, still readable
 * after the object is deleted or replaced); an empty one, which cannot be
 * mapped, and a missing one go through get. */
static void test_read_maps_local_objects(void **state)
{
    fixture *f = *state;
    vl_error err;
    enum { N = 3 * 4096 + 5 };
    char *big = malloc(N);
    for (size_t i = 0; i < N; i++)
        big[i] = (char)(i * 7);
    assert_int_equal(vl_obj_put(f->s, "seg/a", big, N, &err), VL_OK);
    assert_int_equal(vl_obj_put(f->s, "seg/empty", "", 0, &err), VL_OK);
    const void *d;
    size_t n;
    int mapped;
    assert_int_equal(vl_obj_read(f->s, "seg/a", &d, &n, &mapped, &err), VL_OK);
    assert_int_equal(mapped, 1);
    assert_int_equal(n, N);
    assert_int_equal(vl_obj_put(f->s, "seg/a", "other", 5, &err), VL_OK);
    assert_int_equal(vl_obj_del(f->s, "seg/a", &err), VL_OK);
    assert_memory_equal(d, big, N);
    vl_obj_release(f->s, d, n, mapped);
    assert_int_equal(vl_obj_read(f->s, "seg/empty", &d, &n, &mapped, &err), VL_OK);
    assert_int_equal(mapped, 0);
    assert_int_equal(n, 0);
    vl_obj_release(f->s, d, n, mapped);
    assert_int_equal(vl_obj_read(f->s, "seg/none", &d, &n, &mapped, &err), VL_ERR_NOTFOUND);
    free(big);
}

static vl_objstore *fixture_store(void **state)
{
    return ((fixture *)*state)->s;
}

int main(void)
{
    store_of = fixture_store;
    const struct CMUnitTest tests[] = {
        VL_OBJSTORE_CONFORMANCE_TESTS(setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_if_absent_no_temp_left, setup, teardown),
        cmocka_unit_test_setup_teardown(test_temp_files_removed_on_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_creates_nested_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_has_context, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_maps_local_objects, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
