/* test_wal_store.c - the WAL kept as objects in a store (storage/wal_store.c)
 * against a real SeaweedFS (scripts/seaweedfs.sh start; scripts/run-tests.sh
 * starts it).  Never mocked and never skipped: without SeaweedFS on
 * VL_S3_ENDPOINT (default http://127.0.0.1:8333, bucket vexlake-test)
 * every test fails.  Each test works under its own fresh key prefix.
 *
 * Faults are injected by a thin store that forwards to the real one and
 * fails (or loses the answer of) a put on request. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/crc32c.h"
#include "storage/objstore_s3.h"
#include "storage/wal.h"
#include "testutil_forward.h"
#include "testutil_s3.h"
#include "util/error.h"

/* ---- a fault-injecting store around the real one ------------------------- */

typedef struct {
    vl_test_forward fw;
    int fail_puts;    /* atomic: put_if_absent fails with VL_ERR_IO without sending */
    int lose_reply;   /* atomic: the next put_if_absent is stored, then reported failed */
    const char *hide; /* list leaves out this name (created "just after" the listing) */
} faulty;

static vl_status f_put_if_absent(vl_objstore *s, const char *n, const void *d, size_t l,
                                 vl_error *e)
{
    faulty *f = (faulty *)(void *)s;
    if (__atomic_load_n(&f->fail_puts, __ATOMIC_SEQ_CST))
        return vl_fail(e, VL_ERR_IO, "put_if_absent %s: injected failure", n);
    vl_status st = vl_obj_put_if_absent(fwd_real(s), n, d, l, e);
    if (st == VL_OK && __atomic_exchange_n(&f->lose_reply, 0, __ATOMIC_SEQ_CST))
        return vl_fail(e, VL_ERR_IO, "put_if_absent %s: injected timeout after storing", n);
    return st;
}

static vl_status f_list(vl_objstore *s, const char *p, vl_objinfo **o, size_t *n, vl_error *e)
{
    faulty *f = (faulty *)(void *)s;
    vl_status st = vl_obj_list(fwd_real(s), p, o, n, e);
    for (size_t i = 0; st == VL_OK && f->hide && i < *n; i++)
        if (strcmp((*o)[i].name, f->hide) == 0) {
            free((*o)[i].name);
            memmove(*o + i, *o + i + 1, (*n - i - 1) * sizeof **o);
            (*n)--;
        }
    return st;
}

static const vl_objstore_ops faulty_ops = {
    fwd_put, f_put_if_absent,   fwd_get, fwd_get_range, f_list,
    fwd_del, fwd_close_nothing, NULL,    NULL};

/* ---- fixture -------------------------------------------------------------- */

typedef struct {
    char prefix[64];
    vl_objstore *s;
    faulty f;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    assert_non_null(f);
    f->s = vl_test_s3_open("unit-wal", f->prefix, sizeof f->prefix);
    f->f.fw.base.ops = &faulty_ops;
    f->f.fw.real = f->s;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    vl_obj_close(f->s);
    free(f);
    return 0;
}

/* ---- helpers -------------------------------------------------------------- */

typedef struct {
    uint64_t lsns[64];
    char keys[64][16];
    size_t n;
} seen;

static vl_status collect(void *ctx, const vl_wal_record *rec, vl_error *err)
{
    (void)err;
    seen *s = ctx;
    assert_true(s->n < 64);
    s->lsns[s->n] = rec->lsn;
    snprintf(s->keys[s->n], sizeof s->keys[s->n], "%.*s", (int)rec->key_len, rec->key);
    s->n++;
    return VL_OK;
}

static void append_put(vl_wal *w, const char *key, float x)
{
    float v[2] = {x, 1.0f};
    vl_wal_record r = {.type = VL_WAL_PUT,
                       .coll = "c",
                       .coll_len = 1,
                       .key = key,
                       .key_len = (uint32_t)strlen(key),
                       .vec = v,
                       .dim = 2};
    vl_error err;
    assert_int_equal(vl_wal_append(w, &r, &err), VL_OK);
}

/* Hand the pending records to the store thread, as the server does. */
static void commit(vl_wal *w)
{
    vl_error err;
    assert_int_equal(vl_wal_write(w, &err), VL_OK);
    vl_wal_request_sync(w);
}

/* Wait (bounded) until the thread reports: durable reaches lsn (VL_OK) or
 * the log refuses changes (that status). */
static vl_status wait_outcome(vl_wal *w, uint64_t lsn, vl_error *err)
{
    for (int i = 0; i < 600; i++) {
        if (vl_wal_durable_lsn(w) >= lsn)
            return VL_OK;
        struct pollfd p = {vl_wal_sync_fd(w), POLLIN, 0};
        poll(&p, 1, 100);
        vl_status st = vl_wal_check(w, err);
        if (st != VL_OK)
            return st;
    }
    fail_msg("the store thread reported nothing for 60 s");
    return VL_ERR_IO;
}

static void names(vl_objstore *s, char out[][32], size_t *n)
{
    vl_objinfo *objs;
    vl_error err;
    assert_int_equal(vl_obj_list(s, "wal/", &objs, n, &err), VL_OK);
    for (size_t i = 0; i < *n; i++)
        snprintf(out[i], 32, "%s", objs[i].name);
    vl_objinfo_free(objs, *n);
}

static uint32_t rd32(const unsigned char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

/* ---- tests ---------------------------------------------------------------- */

/* A fresh log claims object 1 (a fence: 16 bytes no batch can be); each
 * committed batch is the next object, holding that batch's records in the
 * WAL file format. */
static void test_batches_become_numbered_objects(void **state)
{
    fixture *f = *state;
    vl_wal *w;
    vl_error err;
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w, &err), VL_OK);
    append_put(w, "a", 1);
    append_put(w, "b", 2);
    append_put(w, "c", 3);
    commit(w);
    assert_int_equal(wait_outcome(w, 3, &err), VL_OK);
    append_put(w, "d", 4);
    commit(w);
    assert_int_equal(wait_outcome(w, 4, &err), VL_OK);
    vl_wal_stats st;
    vl_wal_stats_get(w, &st);
    assert_int_equal(st.puts, 2);

    char list[8][32];
    size_t n;
    names(f->s, list, &n);
    assert_int_equal(n, 3);
    assert_string_equal(list[0], "wal/00000000000000000001.log");
    assert_string_equal(list[1], "wal/00000000000000000002.log");
    assert_string_equal(list[2], "wal/00000000000000000003.log");

    void *data;
    size_t len;
    assert_int_equal(vl_obj_get(f->s, list[0], &data, &len, &err), VL_OK);
    assert_int_equal(len, 16);
    assert_memory_equal(data, "VLWAL-FENCE-0001", 16);
    free(data);
    assert_int_equal(vl_obj_get(f->s, list[1], &data, &len, &err), VL_OK);
    const unsigned char *p = data;
    for (uint64_t lsn = 1; lsn <= 3; lsn++) { /* body_len, crc, type, reserved, lsn, ... */
        uint32_t body = rd32(p);
        assert_true(8 + body <= len - (size_t)(p - (const unsigned char *)data));
        assert_int_equal(rd32(p + 4), vl_crc32c(0, p + 8, body));
        assert_int_equal(p[8], VL_WAL_PUT);
        uint64_t got;
        memcpy(&got, p + 12, 8);
        assert_int_equal(got, lsn);
        p += 8 + body;
    }
    assert_ptr_equal(p, (const unsigned char *)data + len);
    free(data);
    vl_wal_close(w);
}

/* A second writer replays everything in order and claims the next number;
 * the first one's next batch then finds its number taken: fenced, never
 * durable, and it refuses changes from then on. */
static void test_second_writer_replays_and_fences_the_first(void **state)
{
    fixture *f = *state;
    vl_wal *w1, *w2;
    vl_error err;
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w1, &err), VL_OK);
    append_put(w1, "a", 1);
    append_put(w1, "b", 2);
    commit(w1);
    assert_int_equal(wait_outcome(w1, 2, &err), VL_OK);
    append_put(w1, "c", 3);
    commit(w1);
    assert_int_equal(wait_outcome(w1, 3, &err), VL_OK);

    seen s = {0};
    assert_int_equal(vl_wal_open_store(f->s, collect, &s, &w2, &err), VL_OK);
    assert_int_equal(s.n, 3);
    for (size_t i = 0; i < 3; i++)
        assert_int_equal(s.lsns[i], i + 1);
    assert_string_equal(s.keys[2], "c");
    assert_int_equal(vl_wal_last_lsn(w2), 3);

    append_put(w1, "lost", 9);
    commit(w1);
    assert_int_equal(wait_outcome(w1, 4, &err), VL_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "fenced: another writer took over"));
    assert_int_equal(vl_wal_durable_lsn(w1), 3);
    assert_int_equal(vl_wal_writable(w1, &err), VL_ERR_CONFLICT);
    assert_int_equal(vl_wal_sync(w1, &err), VL_ERR_CONFLICT);

    append_put(w2, "d", 4);
    commit(w2);
    assert_int_equal(wait_outcome(w2, 4, &err), VL_OK);
    vl_wal_close(w1);
    vl_wal_close(w2);

    seen again = {0};
    vl_wal *w3;
    assert_int_equal(vl_wal_open_store(f->s, collect, &again, &w3, &err), VL_OK);
    assert_int_equal(again.n, 4);
    assert_string_equal(again.keys[3], "d"); /* not "lost" */
    vl_wal_close(w3);
}

/* A claim that finds its number taken by a writer still writing leaps
 * ahead, replays what that writer stored below the claimed number and
 * fences it at the first number it had not reached. */
static void test_claim_past_a_busy_writer_replays_its_objects(void **state)
{
    fixture *f = *state;
    vl_wal *w1, *w2;
    vl_error err;
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w1, &err), VL_OK);
    append_put(w1, "a", 1);
    commit(w1);
    assert_int_equal(wait_outcome(w1, 1, &err), VL_OK);
    append_put(w1, "b", 2);
    commit(w1);
    assert_int_equal(wait_outcome(w1, 2, &err), VL_OK);
    /* The listing misses w1's newest object, as if w1 stored it just after
     * the listing: the claim of number 3 then conflicts. */
    f->f.hide = "wal/00000000000000000003.log";
    seen s = {0};
    assert_int_equal(vl_wal_open_store(&f->f.fw.base, collect, &s, &w2, &err), VL_OK);
    assert_int_equal(s.n, 2);
    assert_string_equal(s.keys[1], "b");

    append_put(w1, "lost", 3);
    commit(w1);
    assert_int_equal(wait_outcome(w1, 3, &err), VL_ERR_CONFLICT);
    append_put(w2, "c", 3);
    commit(w2);
    assert_int_equal(wait_outcome(w2, 3, &err), VL_OK);
    vl_wal_close(w1);
    vl_wal_close(w2);

    seen again = {0};
    assert_int_equal(vl_wal_open_store(f->s, collect, &again, &w2, &err), VL_OK);
    assert_int_equal(again.n, 3);
    assert_string_equal(again.keys[2], "c");
    vl_wal_close(w2);
}

/* Damage inside an object is never a torn tail: the open refuses, naming
 * the object and the offset. */
static void test_damaged_object_refuses_open(void **state)
{
    fixture *f = *state;
    vl_wal *w;
    vl_error err;
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w, &err), VL_OK);
    append_put(w, "a", 1);
    append_put(w, "b", 2);
    commit(w);
    assert_int_equal(wait_outcome(w, 2, &err), VL_OK);
    vl_wal_close(w);

    const char *name = "wal/00000000000000000002.log";
    void *data;
    size_t len;
    assert_int_equal(vl_obj_get(f->s, name, &data, &len, &err), VL_OK);
    ((unsigned char *)data)[len - 1] ^= 0x40; /* a vector byte of record 2 */
    assert_int_equal(vl_obj_put(f->s, name, data, len, &err), VL_OK);
    free(data);
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, name));
    assert_non_null(strstr(err.msg, "checksum mismatch"));
}

/* Removal only ever takes the oldest objects, so a gap in the middle is
 * damage: the open refuses, naming the missing number. */
static void test_missing_object_refuses_open(void **state)
{
    fixture *f = *state;
    vl_wal *w;
    vl_error err;
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w, &err), VL_OK);
    for (int i = 0; i < 3; i++) {
        append_put(w, i == 0 ? "a" : i == 1 ? "b" : "c", (float)i + 1);
        commit(w);
        assert_int_equal(wait_outcome(w, (uint64_t)i + 1, &err), VL_OK);
    }
    vl_wal_close(w);
    assert_int_equal(vl_obj_del(f->s, "wal/00000000000000000003.log", &err), VL_OK);
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "00000000000000000003.log is missing"));
}

/* 1 once the store's wal/ objects are exactly want[0..n) (bounded wait:
 * removal runs in the background). */
static int wait_for_objects(vl_objstore *s, const char *const *want, size_t n)
{
    for (int i = 0; i < 600; i++) {
        char list[64][32];
        size_t got;
        names(s, list, &got);
        size_t same = 0;
        while (same < got && same < n && strcmp(list[same], want[same]) == 0)
            same++;
        if (same == n && got == n)
            return 1;
        usleep(100 * 1000);
    }
    return 0;
}

/* Objects covered by a commit are removed in the background, oldest first,
 * but the newest number always stays: while its records are not all
 * covered the object itself, once they are an empty successor.  The claim's
 * fence (object 1) stays too. */
static void test_removal_keeps_the_newest_number(void **state)
{
    fixture *f = *state;
    vl_wal *w;
    vl_error err;
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w, &err), VL_OK);
    for (int i = 0; i < 3; i++) { /* objects 2, 3, 4 hold LSNs 1, 2, 3 */
        append_put(w, "k", (float)i + 1);
        commit(w);
        assert_int_equal(wait_outcome(w, (uint64_t)i + 1, &err), VL_OK);
    }
    assert_int_equal(vl_wal_remove_through(w, 2, &err), VL_OK);
    const char *newest[] = {"wal/00000000000000000001.log", "wal/00000000000000000004.log"};
    assert_true(wait_for_objects(f->s, newest, 2));

    assert_int_equal(vl_wal_remove_through(w, 3, &err), VL_OK);
    const char *successor[] = {"wal/00000000000000000001.log", "wal/00000000000000000005.log"};
    assert_true(wait_for_objects(f->s, successor, 2));
    void *data;
    size_t len;
    assert_int_equal(vl_obj_get(f->s, successor[1], &data, &len, &err), VL_OK);
    assert_int_equal(len, 0);
    free(data);
    vl_wal_close(w);

    seen s = {0};
    assert_int_equal(vl_wal_open_store(f->s, collect, &s, &w, &err), VL_OK);
    assert_int_equal(s.n, 0); /* everything was covered */
    vl_wal_close(w);
}

/* 1 when no wal/ object holds records (a fence is 16 bytes, a record at
 * least 25) and the newest is empty: the trimming is done. */
static int trimmed(vl_objstore *s)
{
    vl_objinfo *objs;
    size_t n, full = 0;
    assert_int_equal(vl_obj_list(s, "wal/", &objs, &n, NULL), VL_OK);
    for (size_t i = 0; i < n; i++)
        full += objs[i].size > 16;
    int done = full == 0 && n > 0 && objs[n - 1].size == 0;
    vl_objinfo_free(objs, n);
    return done;
}

/* The fence a new writer claimed survives its trimming: an idle writer it
 * fenced, whose next batch comes after the new writer's commit covered
 * (and removed) everything else, still finds its number taken.  Were the
 * fence removed, that batch would land there and be acknowledged with no
 * one ever replaying it. */
static void test_fence_outlives_the_new_writers_trimming(void **state)
{
    fixture *f = *state;
    vl_wal *w1, *w2;
    vl_error err;
    assert_int_equal(vl_wal_open_store(f->s, NULL, NULL, &w1, &err), VL_OK);
    append_put(w1, "a", 1); /* objects: 1 fence, 2 a */
    commit(w1);
    assert_int_equal(wait_outcome(w1, 1, &err), VL_OK);
    seen s = {0};
    assert_int_equal(vl_wal_open_store(f->s, collect, &s, &w2, &err), VL_OK); /* 3 fence */
    assert_int_equal(s.n, 1);
    append_put(w2, "b", 2); /* 4 b */
    commit(w2);
    assert_int_equal(wait_outcome(w2, 2, &err), VL_OK);
    assert_int_equal(vl_wal_remove_through(w2, 2, &err), VL_OK); /* a version covers a, b */
    const char *left[] = {"wal/00000000000000000001.log", "wal/00000000000000000003.log",
                          "wal/00000000000000000005.log"};
    for (int i = 0; i < 600 && !trimmed(f->s); i++) /* removal runs in the background */
        usleep(100 * 1000);
    assert_true(trimmed(f->s));

    append_put(w1, "lost", 9); /* w1 never noticed: its next number is 3 */
    commit(w1);
    assert_int_equal(wait_outcome(w1, 2, &err), VL_ERR_CONFLICT);
    assert_non_null(strstr(err.msg, "fenced: another writer took over"));
    assert_true(wait_for_objects(f->s, left, 3)); /* 2, 4 removed; 5 the empty successor */
    vl_wal_close(w1);
    vl_wal_close(w2);

    seen again = {0};
    vl_wal *w3;
    assert_int_equal(vl_wal_open_store(f->s, collect, &again, &w3, &err), VL_OK);
    assert_int_equal(again.n, 0); /* everything was covered; "lost" nowhere */
    vl_wal_close(w3);
}

/* A batch the store refuses stays pending: the log refuses changes while
 * it is retried and takes them again, with nothing lost, once it lands. */
static void test_refused_batch_is_retried_until_it_lands(void **state)
{
    fixture *f = *state;
    vl_wal *w;
    vl_error err;
    assert_int_equal(vl_wal_open_store(&f->f.fw.base, NULL, NULL, &w, &err), VL_OK);
    __atomic_store_n(&f->f.fail_puts, 1, __ATOMIC_SEQ_CST);
    append_put(w, "a", 1);
    commit(w);
    assert_int_equal(wait_outcome(w, 1, &err), VL_ERR_IO);
    assert_non_null(strstr(err.msg, "store unavailable"));
    assert_int_equal(vl_wal_writable(w, &err), VL_ERR_IO);
    assert_int_equal(vl_wal_durable_lsn(w), 0);

    __atomic_store_n(&f->f.fail_puts, 0, __ATOMIC_SEQ_CST);
    for (int i = 0; i < 600 && vl_wal_durable_lsn(w) < 1; i++)
        usleep(100 * 1000);
    assert_int_equal(vl_wal_durable_lsn(w), 1);
    assert_int_equal(vl_wal_writable(w, &err), VL_OK);
    vl_wal_close(w);

    seen s = {0};
    assert_int_equal(vl_wal_open_store(f->s, collect, &s, &w, &err), VL_OK);
    assert_int_equal(s.n, 1);
    vl_wal_close(w);
}

/* An attempt that was stored but whose answer was lost: the retry finds
 * its own bytes there, which is success, not a fence. */
static void test_own_landed_attempt_is_not_a_fence(void **state)
{
    fixture *f = *state;
    vl_wal *w;
    vl_error err;
    assert_int_equal(vl_wal_open_store(&f->f.fw.base, NULL, NULL, &w, &err), VL_OK);
    __atomic_store_n(&f->f.lose_reply, 1, __ATOMIC_SEQ_CST);
    append_put(w, "a", 1);
    commit(w);
    vl_status st = wait_outcome(w, 1, &err);
    assert_true(st == VL_OK || st == VL_ERR_IO); /* IO: the lost answer, retried next */
    for (int i = 0; i < 600 && vl_wal_durable_lsn(w) < 1; i++)
        usleep(100 * 1000);
    assert_int_equal(vl_wal_durable_lsn(w), 1);
    assert_int_equal(vl_wal_writable(w, &err), VL_OK);
    vl_wal_close(w);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_batches_become_numbered_objects, setup, teardown),
        cmocka_unit_test_setup_teardown(test_second_writer_replays_and_fences_the_first, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_claim_past_a_busy_writer_replays_its_objects, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_damaged_object_refuses_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_missing_object_refuses_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_keeps_the_newest_number, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fence_outlives_the_new_writers_trimming, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_refused_batch_is_retried_until_it_lands, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_own_landed_attempt_is_not_a_fence, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
