/* test_keymap.c - the key -> row map against a plain array reference. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "core/keymap.h"

/* Key ids 0..NKEYS-1; rows are handed out sequentially and row_key[row]
 * says which key a row belongs to (the map asks us through key_of). */
typedef struct {
    size_t nkeys;
    char (*keys)[48];
    size_t *keylen;
    uint32_t *row_key; /* row -> key id */
    uint32_t nrows, cap_rows;
    uint32_t *ref; /* key id -> row, VL_KEYMAP_NONE when absent */
    size_t live;
    int hash_mode; /* 0: real siphash; 1: few clustered hashes near the top */
} world;

static void key_of(void *ctx, uint32_t row, const char **key, size_t *len)
{
    world *w = ctx;
    assert_true(row < w->nrows);
    uint32_t id = w->row_key[row];
    *key = w->keys[id];
    *len = w->keylen[id];
}

/* Keys: ids < 64 are 'x' * (id + 1) (each a prefix of the next); the rest
 * are 'p' * (id % 30) followed by the 4 little-endian bytes of the id, so
 * they contain NULs and share prefixes. */
static void make_keys(world *w, size_t n)
{
    w->nkeys = n;
    w->keys = calloc(n, sizeof *w->keys);
    w->keylen = calloc(n, sizeof *w->keylen);
    w->ref = malloc(n * sizeof *w->ref);
    assert_non_null(w->keys);
    assert_non_null(w->keylen);
    assert_non_null(w->ref);
    for (size_t id = 0; id < n; id++) {
        w->ref[id] = VL_KEYMAP_NONE;
        if (id < 64) {
            memset(w->keys[id], 'x', id + 1);
            w->keylen[id] = id + 1;
        } else {
            size_t l = id % 30;
            memset(w->keys[id], 'p', l);
            for (int b = 0; b < 4; b++)
                w->keys[id][l + (size_t)b] = (char)(id >> (8 * b));
            w->keylen[id] = l + 4;
        }
    }
    w->cap_rows = 1024;
    w->row_key = malloc(w->cap_rows * sizeof *w->row_key);
    assert_non_null(w->row_key);
}

static void free_world(world *w)
{
    free(w->keys);
    free(w->keylen);
    free(w->ref);
    free(w->row_key);
}

static uint64_t hash_of(const world *w, uint32_t id)
{
    if (w->hash_mode == 0)
        return vl_keymap_hash(w->keys[id], w->keylen[id]);
    /* Homes in the last few slots whatever the capacity: long probe runs
     * that wrap around the end of the table. */
    return UINT64_MAX - (id % 5);
}

static uint32_t new_row(world *w, uint32_t id)
{
    if (w->nrows == w->cap_rows) {
        w->cap_rows *= 2;
        w->row_key = realloc(w->row_key, w->cap_rows * sizeof *w->row_key);
        assert_non_null(w->row_key);
    }
    w->row_key[w->nrows] = id;
    return w->nrows++;
}

static void do_set(world *w, vl_keymap *m, uint32_t id)
{
    uint32_t row = new_row(w, id);
    uint32_t prev = vl_keymap_set(m, w->keys[id], w->keylen[id], hash_of(w, id), row);
    assert_int_equal(prev, w->ref[id]);
    if (w->ref[id] == VL_KEYMAP_NONE)
        w->live++;
    w->ref[id] = row;
    assert_int_equal(m->count, w->live);
}

static void do_remove(world *w, vl_keymap *m, uint32_t id)
{
    uint32_t got = vl_keymap_remove(m, w->keys[id], w->keylen[id], hash_of(w, id));
    assert_int_equal(got, w->ref[id]);
    if (w->ref[id] != VL_KEYMAP_NONE)
        w->live--;
    w->ref[id] = VL_KEYMAP_NONE;
    assert_int_equal(m->count, w->live);
}

static void verify_all(const world *w, const vl_keymap *m)
{
    for (uint32_t id = 0; id < w->nkeys; id++) {
        uint32_t got = vl_keymap_get(m, w->keys[id], w->keylen[id], hash_of(w, id));
        if (got != w->ref[id])
            fail_msg("key %u: map says %u, reference %u", id, got, w->ref[id]);
    }
    assert_int_equal(m->count, w->live);
    assert_true(m->count * 4 <= m->cap * 3);
    size_t used = 0;
    for (size_t i = 0; i < m->cap; i++)
        used += m->hashes[i] != 0;
    assert_int_equal(used, m->count);
}

static uint64_t rng = 88172645463325252ull;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static void test_empty(void **state)
{
    (void)state;
    world w;
    memset(&w, 0, sizeof w);
    make_keys(&w, 4);
    vl_keymap m;
    vl_keymap_init(&m, key_of, &w);
    assert_int_equal(vl_keymap_get(&m, "x", 1, vl_keymap_hash("x", 1)), VL_KEYMAP_NONE);
    assert_int_equal(vl_keymap_remove(&m, "x", 1, vl_keymap_hash("x", 1)), VL_KEYMAP_NONE);
    assert_true(vl_keymap_hash("", 0) != 0);
    assert_true(vl_keymap_hash("ab", 2) == vl_keymap_hash("ab", 2));
    assert_true(vl_keymap_hash("ab", 2) != vl_keymap_hash("ab\0", 3));
    vl_keymap_free(&m);
    free_world(&w);
}

static void test_bulk_insert_replace_remove(void **state)
{
    (void)state;
    enum { N = 50000 };
    world w;
    memset(&w, 0, sizeof w);
    make_keys(&w, N);
    vl_keymap m;
    vl_keymap_init(&m, key_of, &w);
    size_t last_cap = 0;
    int grows = 0;
    for (uint32_t id = 0; id < N; id++) {
        do_set(&w, &m, id);
        if (m.cap != last_cap) {
            assert_true(m.cap > last_cap);
            assert_int_equal(m.cap & (m.cap - 1), 0); /* power of two */
            last_cap = m.cap;
            grows++;
        }
    }
    assert_true(grows >= 10);
    verify_all(&w, &m);
    /* Replace every third key: previous row returned, count unchanged. */
    for (uint32_t id = 0; id < N; id += 3)
        do_set(&w, &m, id);
    assert_int_equal(m.count, N);
    verify_all(&w, &m);
    /* Remove the even ids; odd ones must all stay findable. */
    for (uint32_t id = 0; id < N; id += 2)
        do_remove(&w, &m, id);
    assert_int_equal(m.count, N / 2);
    verify_all(&w, &m);
    /* Removing again is a no-op. */
    do_remove(&w, &m, 0);
    assert_int_equal(m.count, N / 2);
    /* Remove the rest: the table ends empty. */
    for (uint32_t id = 1; id < N; id += 2)
        do_remove(&w, &m, id);
    assert_int_equal(m.count, 0);
    verify_all(&w, &m);
    /* And is reusable. */
    for (uint32_t id = 0; id < 100; id++)
        do_set(&w, &m, id);
    verify_all(&w, &m);
    vl_keymap_free(&m);
    free_world(&w);
}

static void random_churn(int hash_mode, uint32_t nkeys, int ops, int verify_every)
{
    world w;
    memset(&w, 0, sizeof w);
    w.hash_mode = hash_mode;
    make_keys(&w, nkeys);
    vl_keymap m;
    vl_keymap_init(&m, key_of, &w);
    for (int op = 0; op < ops; op++) {
        uint32_t id = rnd(nkeys), what = rnd(10);
        if (what < 5)
            do_set(&w, &m, id);
        else if (what < 9)
            do_remove(&w, &m, id);
        else
            assert_int_equal(vl_keymap_get(&m, w.keys[id], w.keylen[id], hash_of(&w, id)),
                             w.ref[id]);
        if (op % verify_every == 0)
            verify_all(&w, &m);
    }
    verify_all(&w, &m);
    vl_keymap_free(&m);
    free_world(&w);
}

static void test_random_against_reference(void **state)
{
    (void)state;
    random_churn(0, 4000, 200000, 5000);
}

/* Every key hashes to one of 5 slots at the very end of the table: probe
 * runs are long and wrap around, so backward shifting must handle homes
 * on both sides of the wrap. */
static void test_clustered_hashes_wrap(void **state)
{
    (void)state;
    random_churn(1, 300, 20000, 97);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty),
        cmocka_unit_test(test_bulk_insert_replace_remove),
        cmocka_unit_test(test_random_against_reference),
        cmocka_unit_test(test_clustered_hashes_wrap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
