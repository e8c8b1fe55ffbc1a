/* test_lake_takeover.c - a writer taking over a store from another one,
 * with the races of the takeover forced, against a real SeaweedFS
 * (scripts/seaweedfs.sh start; scripts/run-tests.sh starts it).  Never
 * mocked and never skipped: without SeaweedFS on VL_S3_ENDPOINT (default
 * http://127.0.0.1:8333, bucket vexlake-test) every test fails.
 *
 * Engine A writes, engine B opens on the same prefix and so fences A, the
 * way two nodes do.  A thin store in front of B's runs A's SAVE at the
 * exact moment a race needs it (inside B's WAL listing at open, or just
 * before B's manifest commit).  After each race a third engine, C, opens
 * fresh and must hold every write A and B acknowledged. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/objstore_s3.h"
#include "testutil.h"
#include "testutil_forward.h"
#include "testutil_s3.h"
#include "vexlake.h"

#define DIM 4

/* ---- a store that runs a hook inside one call ---------------------------- */

typedef struct {
    vl_test_forward fw;
    void (*on_wal_list)(void *ctx);     /* once, inside the first list of "wal/" */
    void (*on_manifest_put)(void *ctx); /* once, before the first manifest commit */
    void *ctx;
} hooked;

static vl_status h_put_if_absent(vl_objstore *s, const char *n, const void *d, size_t l,
                                 vl_error *e)
{
    hooked *h = (hooked *)(void *)s;
    if (h->on_manifest_put && strstr(n, "/manifests/")) {
        void (*fn)(void *) = h->on_manifest_put;
        h->on_manifest_put = NULL;
        fn(h->ctx);
    }
    return vl_obj_put_if_absent(fwd_real(s), n, d, l, e);
}

static vl_status h_list(vl_objstore *s, const char *p, vl_objinfo **o, size_t *n, vl_error *e)
{
    hooked *h = (hooked *)(void *)s;
    if (h->on_wal_list && strcmp(p, "wal/") == 0) {
        void (*fn)(void *) = h->on_wal_list;
        h->on_wal_list = NULL;
        fn(h->ctx);
    }
    return vl_obj_list(fwd_real(s), p, o, n, e);
}

static const vl_objstore_ops hooked_ops = {
    fwd_put, h_put_if_absent,   fwd_get, fwd_get_range, h_list,
    fwd_del, fwd_close_nothing, NULL,    NULL};

/* ---- fixture: one prefix, three node directories -------------------------- */

typedef struct {
    char prefix[64];
    char dirs[3][64];
    vl_objstore *s;
    hooked h[3];
    vl_engine *a;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->s = vl_test_s3_open("unit-takeover", f->prefix, sizeof f->prefix);
    for (int i = 0; i < 3; i++) {
        assert_non_null(vl_test_tmpdir(f->dirs[i], sizeof f->dirs[i], "takeover"));
        f->h[i].fw.base.ops = &hooked_ops;
        f->h[i].fw.real = f->s;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    for (int i = 0; i < 3; i++)
        vl_test_rmtree(f->dirs[i]);
    vl_obj_close(f->s);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

static vl_engine *open_node(fixture *f, int i)
{
    vl_options o;
    vl_options_init(&o);
    o.default_metric = VL_METRIC_L2;
    o.deferred_sync = 1;
    o.flush_rows = o.flush_wal_bytes = 0;
    o.flush_seconds = 0;
    o.index.kind = VL_INDEX_FLAT; /* no background builds: the races stay the test's */
    o.index.quant = VL_QUANT_NONE;
    o.store = &f->h[i].fw.base;
    vl_engine *e = NULL;
    vl_error err = {{0}};
    if (vl_open(f->dirs[i], &o, &e, &err) != VL_OK)
        fail_msg("open of node %d failed: %s", i, err.msg);
    return e;
}

static void put_range(vl_engine *e, int from, int to)
{
    vl_error err = {{0}};
    for (int i = from; i < to; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        float v[DIM] = {(float)i, 1, 2, 3};
        assert_int_equal(vl_put(e, "default", key, strlen(key), v, DIM, &err), VL_OK);
    }
    if (vl_sync(e, &err) != VL_OK) /* acknowledged from here on */
        fail_msg("sync: %s", err.msg);
}

/* Every key k<from>..k<to - 1> is there with its vector. */
static void assert_has(vl_engine *e, int from, int to)
{
    for (int i = from; i < to; i++) {
        char key[16];
        snprintf(key, sizeof key, "k%d", i);
        float v[DIM];
        uint32_t dim = 0;
        if (vl_get(e, "default", key, strlen(key), v, DIM, &dim) != VL_OK)
            fail_msg("acknowledged write %s is missing", key);
        assert_true(v[0] == (float)i);
    }
}

static void save(vl_engine *e)
{
    vl_error err = {{0}};
    if (vl_save(e, "default", &err) != VL_OK)
        fail_msg("SAVE failed: %s", err.msg);
}

/* Wait until the store holds no WAL object with records (a writer's
 * commit covered them and its WAL thread removed them); a fence is 16
 * bytes, a record at least 25. */
static void wait_wal_emptied(vl_objstore *s)
{
    for (int tries = 0; tries < 400; tries++) {
        vl_objinfo *o;
        size_t n, full = 0;
        assert_int_equal(vl_obj_list(s, "wal/", &o, &n, NULL), VL_OK);
        for (size_t i = 0; i < n; i++)
            full += o[i].size > 16;
        vl_objinfo_free(o, n);
        if (full == 0)
            return;
        usleep(25000);
    }
    fail_msg("the writer's covered WAL objects were never removed");
}

/* ---- the races ------------------------------------------------------------ */

/* Inside B's open, between its manifest load and its WAL listing: A
 * commits k100..k199 and removes the WAL objects holding them. */
static void a_saves_and_trims(void *ctx)
{
    fixture *f = ctx;
    save(f->a);
    wait_wal_emptied(f->s);
}

static void test_open_sees_a_commit_made_while_it_loaded(void **state)
{
    fixture *f = *state;
    f->a = open_node(f, 0);
    put_range(f->a, 0, 100);
    save(f->a);
    put_range(f->a, 100, 200);
    f->h[1].on_wal_list = a_saves_and_trims;
    f->h[1].ctx = f;
    vl_engine *b = open_node(f, 1);
    assert_null(f->h[1].on_wal_list); /* the race happened */
    assert_has(b, 0, 200);
    assert_int_equal(vl_current_version(b, "default"), 2);
    put_range(b, 200, 250);
    save(b);
    vl_close(b);
    vl_close(f->a);
    vl_engine *c = open_node(f, 2);
    assert_has(c, 0, 250);
    vl_close(c);
}

/* Just before B's first manifest commit (its segment already stored): A,
 * fenced by B's open but not knowing it, commits that same version and
 * then runs its GC, which must not touch B's new segment. */
static void a_commits_first(void *ctx)
{
    fixture *f = ctx;
    save(f->a);
}

static void test_commit_lost_to_a_fenced_writer_goes_above_it(void **state)
{
    fixture *f = *state;
    f->a = open_node(f, 0);
    put_range(f->a, 0, 100);
    save(f->a);                /* version 1 */
    put_range(f->a, 100, 200); /* acknowledged, only in WAL objects */
    vl_engine *b = open_node(f, 1);
    assert_has(b, 0, 200);
    put_range(b, 200, 300);
    f->h[1].on_manifest_put = a_commits_first;
    f->h[1].ctx = f;
    save(b); /* A's version 2 is there first; B's goes above it */
    assert_null(f->h[1].on_manifest_put);
    assert_int_equal(vl_current_version(b, "default"), 3);
    vl_version_info *v;
    size_t n;
    vl_versions(b, "default", &v, &n);
    assert_int_equal(n, 3); /* A's version 2 is kept as history */
    assert_int_equal(v[1].version, 2);
    free(v);

    /* A learnt it is fenced (its GC asked) and refuses to save, by name. */
    vl_error err = {{0}};
    assert_int_equal(vl_save(f->a, "default", &err), VL_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "fenced"));
    assert_int_equal(vl_write_refusal(f->a, &err), VL_ERR_CONFLICT);

    put_range(b, 300, 320);
    save(b); /* and commits go on above */
    assert_int_equal(vl_current_version(b, "default"), 4);
    vl_close(b);
    vl_close(f->a);
    vl_engine *c = open_node(f, 2);
    assert_has(c, 0, 320);
    assert_int_equal(vl_current_version(c, "default"), 4);
    vl_close(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_sees_a_commit_made_while_it_loaded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_commit_lost_to_a_fenced_writer_goes_above_it, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
