/* test_memory.c - the engine's memory accounting (vl_collection_memory,
 * vl_memory_used) and vl_options.max_memory, through include/vexlake.h. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nftw, mkdtemp */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"
#include <stdio.h>
#include <string.h>

#include "vexlake.h"

#define DIM 8
#define CHUNK_ROWS 4096 /* rows per allocation of vectors (core/rowstore.h) */

typedef vl_test_dir tmp;

static int setup_dir(void **state)
{
    return vl_test_dir_setup(state, "memory");
}

static int teardown_dir(void **state)
{
    return vl_test_dir_teardown(state);
}

static vl_engine *open_limited(const char *dir, uint64_t max_memory)
{
    vl_options opt;
    vl_options_init(&opt);
    opt.fsync = VL_FSYNC_NO;
    opt.default_metric = VL_METRIC_L2;
    opt.max_memory = max_memory;
    vl_engine *e = NULL;
    vl_error err;
    assert_int_equal(vl_open(dir, &opt, &e, &err), VL_OK);
    return e;
}

/* key i: a 1000-byte key naming i */
static size_t make_key(char *buf, int i)
{
    memset(buf, 'k', 1000);
    snprintf(buf, 16, "%08d", i);
    buf[8] = 'k';
    return 1000;
}

static vl_status put(vl_engine *e, int i)
{
    char key[1000];
    float v[DIM];
    for (int d = 0; d < DIM; d++)
        v[d] = (float)(i + d);
    vl_error err;
    return vl_put(e, "c", key, make_key(key, i), v, DIM, &err);
}

static vl_memory_usage usage(vl_engine *e)
{
    vl_memory_usage u;
    assert_int_equal(vl_collection_memory(e, "c", &u), VL_OK);
    assert_int_equal(u.total, u.vectors + u.keys + u.index);
    return u;
}

static void test_accounting_follows_the_data(void **state)
{
    tmp *t = *state;
    vl_engine *e = open_limited(t->dir, 0);
    vl_memory_usage u;
    assert_int_equal(vl_memory_used(e), 0);
    assert_int_equal(vl_collection_memory(e, "c", &u), VL_ERR_NOTFOUND);
    assert_null(vl_collection_name(e, 0));

    assert_int_equal(put(e, 0), VL_OK);
    vl_memory_usage one = usage(e);
    assert_string_equal(vl_collection_name(e, 0), "c");
    assert_null(vl_collection_name(e, 1));
    /* the first row allocates a whole chunk of vectors */
    assert_true(one.vectors >= (uint64_t)CHUNK_ROWS * DIM * sizeof(float));
    assert_true(one.keys >= 1000 && one.keys < 1100);
    assert_true(one.index > 0);
    assert_int_equal(vl_memory_used(e), one.total);

    for (int i = 1; i < 100; i++)
        assert_int_equal(put(e, i), VL_OK);
    vl_memory_usage hundred = usage(e);
    assert_int_equal(hundred.vectors, one.vectors); /* same chunk */
    assert_true(hundred.keys >= 100 * 1000 && hundred.keys < 100 * 1100);

    for (int i = 100; i < CHUNK_ROWS + 1; i++)
        assert_int_equal(put(e, i), VL_OK);
    assert_int_equal(usage(e).vectors, 2 * one.vectors); /* a second chunk */

    /* An overwrite keeps the old row until it is reclaimed: keys grow. */
    uint64_t keys_before = usage(e).keys;
    assert_int_equal(put(e, 5), VL_OK);
    assert_true(usage(e).keys > keys_before);

    vl_error err;
    assert_int_equal(vl_clear(e, "c", &err), VL_OK);
    assert_true(usage(e).total < one.total); /* a new, empty generation */
    assert_int_equal(usage(e).keys, 0);
    vl_close(e);
}

static void test_max_memory_refuses_puts_only(void **state)
{
    tmp *t = *state;
    vl_engine *e = open_limited(t->dir, 0);
    assert_int_equal(put(e, 0), VL_OK);
    uint64_t base = vl_memory_used(e);
    vl_close(e);

    /* Room for about 50 more 1000-byte keys. */
    e = open_limited(t->dir, base + 50 * 1100);
    int stored = 1;
    vl_status st;
    while ((st = put(e, stored)) == VL_OK)
        stored++;
    assert_int_equal(st, VL_ERR_NOMEM);
    assert_true(stored > 40 && stored < 60);
    assert_true(vl_memory_used(e) <= base + 50 * 1100);

    /* the refused put left nothing behind */
    char key[1000];
    float out[DIM];
    uint32_t dim;
    assert_int_equal(vl_get(e, "c", key, make_key(key, stored), out, DIM, &dim), VL_ERR_NOTFOUND);
    assert_int_equal(vl_get(e, "c", key, make_key(key, 3), out, DIM, &dim), VL_OK);
    vl_error err;
    vl_snapshot *s = vl_snapshot_open(e, "c");
    assert_int_equal(vl_snapshot_count(s), (uint64_t)stored);
    vl_snapshot_close(s);

    /* Deleting under pressure makes room once maintenance reclaims rows. */
    int deleted;
    for (int i = 0; i < 20; i++) {
        assert_int_equal(vl_delete(e, "c", key, make_key(key, i), &deleted, &err), VL_OK);
        assert_int_equal(deleted, 1);
    }
    uint64_t before = vl_memory_used(e);
    vl_maintenance(e);
    assert_true(vl_memory_used(e) < before);
    assert_int_equal(put(e, 1000), VL_OK);

    /* CLEAR always runs and frees everything. */
    while (put(e, stored++) == VL_OK)
        ;
    assert_int_equal(vl_clear(e, "c", &err), VL_OK);
    assert_true(vl_memory_used(e) < base);
    assert_int_equal(put(e, 0), VL_OK);
    vl_close(e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_accounting_follows_the_data, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_max_memory_refuses_puts_only, setup_dir, teardown_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
