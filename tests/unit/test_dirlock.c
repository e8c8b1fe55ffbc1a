/* test_dirlock.c - one engine per data directory: a second vl_open of a
 * directory that is open, in this process or another, is refused with
 * VL_ERR_BUSY; closing (or the holder exiting) releases it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "vexlake.h"

typedef vl_test_dir tmp;

static int setup_dir(void **state)
{
    return vl_test_dir_setup(state, "dirlock");
}

static int teardown_dir(void **state)
{
    return vl_test_dir_teardown(state);
}

static vl_status open_dir(const char *dir, vl_engine **e, vl_error *err)
{
    vl_options opt;
    vl_options_init(&opt);
    opt.fsync = VL_FSYNC_NO;
    memset(err, 0, sizeof *err);
    *e = NULL;
    return vl_open(dir, &opt, e, err);
}

static void second_open_in_same_process_is_refused(void **state)
{
    tmp *t = *state;
    vl_engine *a, *b;
    vl_error err;
    assert_int_equal(open_dir(t->dir, &a, &err), VL_OK);
    float v[2] = {1, 2};
    assert_int_equal(vl_put(a, "default", "k", 1, v, 2, &err), VL_OK);

    assert_int_equal(open_dir(t->dir, &b, &err), VL_ERR_BUSY);
    assert_null(b);
    assert_non_null(strstr(err.msg, t->dir));
    char pid[32];
    snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
    assert_non_null(strstr(err.msg, pid));

    /* The refused open touched nothing: the owner still works. */
    assert_int_equal(vl_put(a, "default", "k2", 2, v, 2, &err), VL_OK);
    vl_close(a);

    assert_int_equal(open_dir(t->dir, &b, &err), VL_OK);
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(b, "default", &info), VL_OK);
    assert_int_equal(info.count, 2);
    vl_close(b);
}

/* Exit status of a child that tries to open dir: 0 opened, 1 busy, 2 other. */
static int open_in_child(const char *dir)
{
    pid_t pid = fork();
    if (pid == 0) {
        vl_engine *e;
        vl_error err;
        vl_status st = open_dir(dir, &e, &err);
        if (st == VL_OK)
            vl_close(e);
        _exit(st == VL_OK ? 0 : st == VL_ERR_BUSY && strstr(err.msg, dir) ? 1 : 2);
    }
    int status = 0;
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static void other_process_is_refused_until_close(void **state)
{
    tmp *t = *state;
    vl_engine *a;
    vl_error err;
    assert_int_equal(open_dir(t->dir, &a, &err), VL_OK);
    assert_int_equal(open_in_child(t->dir), 1);
    vl_close(a);
    assert_int_equal(open_in_child(t->dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(second_open_in_same_process_is_refused, setup_dir,
                                        teardown_dir),
        cmocka_unit_test_setup_teardown(other_process_is_refused_until_close, setup_dir,
                                        teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
