/* test_objstore_cache.c - the local cache of immutable lake objects
 * (storage/objstore_cache.h) in front of a local store wrapped in a
 * counter, so each test sees which reads reached the inner store.
 * First the conformance suite every store passes, then the cache's own
 * promises: hits, checksums, deletion at any time, LRU, adoption at open. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "storage/objstore.h"
#include "storage/objstore_cache.h"
#include "testutil.h"
#include "testutil_forward.h"

/* ---- an inner store that counts reads ------------------------------------ */

typedef struct {
    vl_test_forward fw; /* fw.real: the inner local store */
    int gets, ranges;
} counting;

static counting *as_counting(vl_objstore *s)
{
    return (counting *)(void *)s;
}

static vl_status c_get(vl_objstore *s, const char *n, void **d, size_t *l, vl_error *e)
{
    as_counting(s)->gets++;
    return fwd_get(s, n, d, l, e);
}
static vl_status c_get_range(vl_objstore *s, const char *n, uint64_t o, size_t l, void *b,
                             size_t *g, vl_error *e)
{
    as_counting(s)->ranges++;
    return fwd_get_range(s, n, o, l, b, g, e);
}
static const vl_objstore_ops counting_ops = {
    fwd_put, fwd_put_if_absent, c_get, c_get_range, fwd_list, fwd_del, fwd_close_all, NULL, NULL};

typedef struct {
    char dir[64];   /* the inner store lives in dir/store, the cache in dir/cache */
    char cdir[128]; /* dir/cache */
    counting *inner;
    vl_objstore *s; /* the cache */
} fixture;

#include "objstore_conformance.h"

static void open_cache(fixture *f, uint64_t capacity)
{
    char sdir[128];
    snprintf(sdir, sizeof sdir, "%s/store", f->dir);
    f->inner = calloc(1, sizeof *f->inner);
    assert_non_null(f->inner);
    f->inner->fw.base.ops = &counting_ops;
    vl_error err;
    assert_int_equal(vl_objstore_local_open(sdir, &f->inner->fw.real, &err), VL_OK);
    assert_int_equal(vl_objstore_cache_open(&f->inner->fw.base, f->cdir, capacity, &f->s, &err),
                     VL_OK);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    assert_non_null(vl_test_tmpdir(f->dir, sizeof f->dir, "cache"));
    snprintf(f->cdir, sizeof f->cdir, "%s/cache", f->dir);
    open_cache(f, 1 << 20);
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

static vl_objstore *fixture_store(void **state)
{
    return ((fixture *)*state)->s;
}

static vl_cache_stats stats(fixture *f)
{
    vl_cache_stats st;
    vl_objstore_cache_stats(f->s, &st);
    return st;
}

/* Put text into the inner store only, as another node would. */
static void put_behind(fixture *f, const char *name, const char *text)
{
    vl_error err;
    assert_int_equal(vl_obj_put(f->inner->fw.real, name, text, strlen(text), &err), VL_OK);
}

static void cache_path(fixture *f, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", f->cdir, name);
}

#define SEG "tables/default/segments/00000000000000000001-0badf00d.parquet"
#define SEG2 "tables/default/segments/00000000000000000002-0badf00d.parquet"
#define SEG3 "tables/default/segments/00000000000000000003-0badf00d.parquet"
#define DEL "tables/default/deletes/00000000000000000001-0badf00d-v00000000000000000002.del"
#define MANIFEST "tables/default/manifests/00000000000000000001.json"
#define DESC "collections/default.desc"

static void test_keeps_only_immutable_lake_objects(void **state)
{
    (void)state;
    assert_true(vl_objstore_cache_keeps(SEG));
    assert_true(vl_objstore_cache_keeps(DEL));
    assert_true(vl_objstore_cache_keeps(MANIFEST));
    assert_true(vl_objstore_cache_keeps("tables/default/indexes/00000000000000000001-0badf00d-"
                                        "v00000000000000000002.hnsw"));
    assert_false(vl_objstore_cache_keeps(DESC));
    assert_false(vl_objstore_cache_keeps("tables/default/segments/"));
    assert_false(vl_objstore_cache_keeps("tables//segments/x"));
    assert_false(vl_objstore_cache_keeps("tables/default/segmentsx/x"));
    assert_false(vl_objstore_cache_keeps("wal/00000001.log"));
    assert_false(vl_objstore_cache_keeps("tables/d/segments/x.tmp.1"));
}

static void test_second_read_is_a_hit(void **state)
{
    fixture *f = *state;
    put_behind(f, SEG, "segment bytes");
    assert_content(f->s, SEG, "segment bytes");
    assert_content(f->s, SEG, "segment bytes");
    assert_int_equal(f->inner->gets, 1);
    vl_cache_stats st = stats(f);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.files, 1);
    assert_int_equal(st.bytes, strlen("segment bytes") + 8);
}

static void test_descriptors_always_go_to_the_store(void **state)
{
    fixture *f = *state;
    put_str(f->s, DESC, "{}");
    assert_content(f->s, DESC, "{}");
    assert_content(f->s, DESC, "{}");
    assert_int_equal(f->inner->gets, 2);
    assert_int_equal(stats(f).files, 0);
    char path[256];
    cache_path(f, DESC, path, sizeof path);
    assert_int_not_equal(access(path, F_OK), 0);
}

static void test_a_manifest_created_once_is_cached(void **state)
{
    fixture *f = *state;
    vl_error err;
    assert_int_equal(vl_obj_put_if_absent(f->s, MANIFEST, "{\"v\":1}", 7, &err), VL_OK);
    assert_int_equal(vl_obj_put_if_absent(f->s, MANIFEST, "{\"v\":2}", 7, &err), VL_ERR_CONFLICT);
    assert_content(f->s, MANIFEST, "{\"v\":1}"); /* the loser's bytes were not kept */
    assert_int_equal(f->inner->gets, 0);
}

static void test_put_fills_and_del_removes(void **state)
{
    fixture *f = *state;
    put_str(f->s, SEG, "written here");
    assert_content(f->s, SEG, "written here");
    assert_int_equal(f->inner->gets, 0);
    vl_error err;
    assert_int_equal(vl_obj_del(f->s, SEG, &err), VL_OK);
    assert_int_equal(stats(f).files, 0);
    char path[256];
    cache_path(f, SEG, path, sizeof path);
    assert_int_not_equal(access(path, F_OK), 0);
    void *d;
    size_t n;
    assert_int_equal(vl_obj_get(f->s, SEG, &d, &n, &err), VL_ERR_NOTFOUND);
}

/* Flip one byte of the cached copy (object bytes or trailer). */
static void flip(const char *path, long at)
{
    FILE *fp = fopen(path, "r+b");
    assert_non_null(fp);
    assert_int_equal(fseek(fp, at, at < 0 ? SEEK_END : SEEK_SET), 0);
    int c = fgetc(fp);
    assert_int_equal(fseek(fp, -1, SEEK_CUR), 0);
    fputc(c ^ 0x01, fp);
    fclose(fp);
}

static void test_corrupt_copy_is_dropped_and_fetched_again(void **state)
{
    fixture *f = *state;
    char path[256];
    cache_path(f, SEG, path, sizeof path);
    put_str(f->s, SEG, "the true bytes");
    long places[] = {0, 5, -1, -6}; /* body, body, CRC, magic */
    for (int i = 0; i < 4; i++) {
        flip(path, places[i]);
        assert_content(f->s, SEG, "the true bytes");
        assert_int_equal(f->inner->gets, i + 1);
        assert_int_equal(stats(f).dropped, i + 1);
        assert_content(f->s, SEG, "the true bytes"); /* the fresh copy is good */
        assert_int_equal(f->inner->gets, i + 1);
    }
    truncate(path, 3); /* shorter than a trailer */
    assert_content(f->s, SEG, "the true bytes");
    assert_int_equal(stats(f).dropped, 5);
}

static void test_deleting_files_or_the_whole_cache_is_a_miss(void **state)
{
    fixture *f = *state;
    char path[256];
    cache_path(f, SEG, path, sizeof path);
    put_str(f->s, SEG, "one");
    put_str(f->s, SEG2, "two");
    assert_int_equal(unlink(path), 0);
    assert_content(f->s, SEG, "one");
    assert_int_equal(f->inner->gets, 1);
    assert_int_equal(stats(f).dropped, 0); /* missing is not corrupt */
    vl_test_rmtree(f->cdir);
    assert_content(f->s, SEG, "one");
    assert_content(f->s, SEG2, "two");
    assert_int_equal(f->inner->gets, 3);
    assert_int_equal(access(path, F_OK), 0); /* refilled, directories made again */
    assert_content(f->s, SEG2, "two");
    assert_int_equal(f->inner->gets, 3);
    assert_int_equal(stats(f).files, 2);
}

static void test_least_recently_used_goes_first(void **state)
{
    fixture *f = *state;
    vl_obj_close(f->s);
    open_cache(f, 2 * (100 + 8)); /* room for two 100-byte objects */
    char body[101];
    memset(body, 'x', 100);
    body[100] = '\0';
    put_behind(f, SEG, body);
    put_behind(f, SEG2, body);
    put_behind(f, SEG3, body);
    assert_content(f->s, SEG, body);
    assert_content(f->s, SEG2, body);
    assert_content(f->s, SEG, body);  /* SEG is now more recent than SEG2 */
    assert_content(f->s, SEG3, body); /* evicts SEG2 */
    vl_cache_stats st = stats(f);
    assert_int_equal(st.evictions, 1);
    assert_int_equal(st.files, 2);
    assert_true(st.bytes <= st.capacity);
    int before = f->inner->gets;
    assert_content(f->s, SEG, body);
    assert_content(f->s, SEG3, body);
    assert_int_equal(f->inner->gets, before);
    assert_content(f->s, SEG2, body);
    assert_int_equal(f->inner->gets, before + 1);
}

static void test_object_larger_than_the_cache_is_not_kept(void **state)
{
    fixture *f = *state;
    vl_obj_close(f->s);
    open_cache(f, 16);
    put_behind(f, SEG, "a body of more than sixteen bytes");
    assert_content(f->s, SEG, "a body of more than sixteen bytes");
    assert_content(f->s, SEG, "a body of more than sixteen bytes");
    assert_int_equal(f->inner->gets, 2);
    assert_int_equal(stats(f).files, 0);
}

static void test_reopen_adopts_copies_newest_first(void **state)
{
    fixture *f = *state;
    char body[101];
    memset(body, 'y', 100);
    body[100] = '\0';
    put_str(f->s, SEG, body);
    put_str(f->s, SEG2, body);
    char path[256], tmp[300];
    cache_path(f, SEG, path, sizeof path);
    struct timespec old[2] = {{1000, 0}, {1000, 0}}; /* SEG used long ago */
    assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
    snprintf(tmp, sizeof tmp, "%s.tmp.123.4", path); /* a fill cut short */
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    fclose(fp);
    vl_obj_close(f->s);
    open_cache(f, 108); /* room for one: the older copy goes */
    assert_int_not_equal(access(tmp, F_OK), 0);
    assert_int_not_equal(access(path, F_OK), 0);
    vl_cache_stats st = stats(f);
    assert_int_equal(st.files, 1);
    assert_int_equal(st.evictions, 1);
    assert_content(f->s, SEG2, body);
    assert_int_equal(f->inner->gets, 0);
}

static void test_range_read_of_a_cached_object(void **state)
{
    fixture *f = *state;
    put_behind(f, SEG, "0123456789");
    char buf[16];
    size_t got;
    vl_error err;
    assert_int_equal(vl_obj_get_range(f->s, SEG, 2, 3, buf, &got, &err), VL_OK);
    assert_int_equal(got, 3);
    assert_memory_equal(buf, "234", 3);
    assert_int_equal(f->inner->ranges, 1); /* a range does not fill */
    assert_content(f->s, SEG, "0123456789");
    assert_int_equal(vl_obj_get_range(f->s, SEG, 8, 5, buf, &got, &err), VL_OK);
    assert_int_equal(got, 2);
    assert_memory_equal(buf, "89", 2);
    assert_int_equal(vl_obj_get_range(f->s, SEG, 20, 5, buf, &got, &err), VL_OK);
    assert_int_equal(got, 0);
    assert_int_equal(f->inner->ranges, 1);
    assert_int_equal(stats(f).hits, 2);
}

static void test_files_not_ours_are_left_alone(void **state)
{
    fixture *f = *state;
    char other[256];
    snprintf(other, sizeof other, "%s/notes.txt", f->cdir);
    FILE *fp = fopen(other, "wb");
    assert_non_null(fp);
    fputs("mine", fp);
    fclose(fp);
    vl_obj_close(f->s);
    open_cache(f, 1 << 20);
    assert_int_equal(access(other, F_OK), 0);
    assert_int_equal(stats(f).files, 0);
}

/* A second cache on the directory is refused before it touches a file:
 * it would evict the first one's copies and remove its fills in flight. */
static void test_second_cache_on_a_directory_is_refused(void **state)
{
    fixture *f = *state;
    put_str(f->s, SEG, "kept");
    char path[256], tmp[300];
    cache_path(f, SEG, path, sizeof path);
    snprintf(tmp, sizeof tmp, "%s.tmp.99.1", path); /* the first one's fill in flight */
    FILE *fp = fopen(tmp, "wb");
    assert_non_null(fp);
    fclose(fp);
    vl_objstore *second;
    vl_error err;
    assert_int_equal(vl_objstore_cache_open(f->inner->fw.real, f->cdir, 1, &second, &err),
                     VL_ERR_BUSY);
    char pid[64];
    snprintf(pid, sizeof pid, "(pid %ld)", (long)getpid());
    assert_non_null(strstr(err.msg, f->cdir));
    assert_non_null(strstr(err.msg, pid));
    assert_int_equal(access(tmp, F_OK), 0);  /* not removed */
    assert_int_equal(access(path, F_OK), 0); /* not evicted (capacity 1) */
    assert_content(f->s, SEG, "kept");
    assert_int_equal(f->inner->gets, 0);
    vl_obj_close(f->s); /* the directory is free again */
    open_cache(f, 1 << 20);
    assert_int_equal(access(tmp, F_OK), -1); /* now a leftover: removed */
    assert_content(f->s, SEG, "kept");
}

/* Threads reading six objects through a cache with room for two: every
 * read gives the object's bytes while copies come and go under them. */
typedef struct {
    vl_objstore *s;
    int seed, bad;
} reader;

static void *read_many(void *arg)
{
    reader *r = arg;
    for (int i = 0; i < 300; i++) {
        char name[96], want[64];
        int k = (r->seed + i * 7) % 6;
        snprintf(name, sizeof name, "tables/t/segments/%d.parquet", k);
        snprintf(want, sizeof want, "object %d with a body of some length", k);
        void *d;
        size_t n;
        vl_error err;
        if (vl_obj_get(r->s, name, &d, &n, &err) != VL_OK) {
            r->bad++;
            continue;
        }
        r->bad += n != strlen(want) || memcmp(d, want, n) != 0;
        free(d);
    }
    return NULL;
}

static void test_concurrent_readers_always_get_the_object(void **state)
{
    fixture *f = *state;
    vl_obj_close(f->s);
    open_cache(f, 2 * 48);
    for (int k = 0; k < 6; k++) {
        char name[96], body[64];
        snprintf(name, sizeof name, "tables/t/segments/%d.parquet", k);
        snprintf(body, sizeof body, "object %d with a body of some length", k);
        put_behind(f, name, body);
    }
    pthread_t th[4];
    reader rs[4];
    for (int i = 0; i < 4; i++) {
        rs[i] = (reader){f->s, i, 0};
        assert_int_equal(pthread_create(&th[i], NULL, read_many, &rs[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(rs[i].bad, 0);
    }
    vl_cache_stats st = stats(f);
    assert_true(st.bytes <= st.capacity);
    assert_int_equal(st.hits + st.misses, 4 * 300);
}

int main(void)
{
    store_of = fixture_store;
    const struct CMUnitTest tests[] = {
        VL_OBJSTORE_CONFORMANCE_TESTS(setup, teardown),
        cmocka_unit_test(test_keeps_only_immutable_lake_objects),
        cmocka_unit_test_setup_teardown(test_second_read_is_a_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_descriptors_always_go_to_the_store, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_manifest_created_once_is_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_put_fills_and_del_removes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_corrupt_copy_is_dropped_and_fetched_again, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_deleting_files_or_the_whole_cache_is_a_miss, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_least_recently_used_goes_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_object_larger_than_the_cache_is_not_kept, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_reopen_adopts_copies_newest_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_range_read_of_a_cached_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_files_not_ours_are_left_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_readers_always_get_the_object, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_second_cache_on_a_directory_is_refused, setup,
                                        teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
