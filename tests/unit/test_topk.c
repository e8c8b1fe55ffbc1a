/* test_topk.c - the bounded heap keeps the K best, ties by smaller row. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/topk.h"

static int cmp_ref(const void *a, const void *b)
{
    const vl_candidate *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return x->row < y->row ? -1 : (x->row > y->row);
}

static void test_basic(void **state)
{
    (void)state;
    vl_candidate items[3];
    vl_topk t;
    vl_topk_init(&t, items, 3);
    assert_true(isinf(vl_topk_bound(&t)));
    const double d[] = {5, 1, 4, 2, 8, 0.5, 3};
    for (uint64_t i = 0; i < 7; i++)
        vl_topk_push(&t, d[i], i);
    assert_int_equal(t.n, 3);
    assert_true(vl_topk_bound(&t) == 2.0);
    vl_topk_sort(&t);
    assert_true(items[0].dist == 0.5 && items[0].row == 5);
    assert_true(items[1].dist == 1.0 && items[1].row == 1);
    assert_true(items[2].dist == 2.0 && items[2].row == 3);
}

static void test_ties_prefer_smaller_row(void **state)
{
    (void)state;
    vl_candidate items[4];
    vl_topk t;
    vl_topk_init(&t, items, 4);
    /* Rows offered out of order, all at the same distance. */
    const uint64_t rows[] = {9, 3, 7, 1, 8, 2, 6, 0, 5, 4};
    for (int i = 0; i < 10; i++)
        vl_topk_push(&t, 1.0, rows[i]);
    vl_topk_sort(&t);
    assert_int_equal(t.n, 4);
    for (uint64_t i = 0; i < 4; i++) {
        assert_int_equal(items[i].row, i);
        assert_true(items[i].dist == 1.0);
    }
    /* In order of arrival, a tie never evicts an earlier row. */
    vl_topk_init(&t, items, 2);
    vl_topk_push(&t, 2.0, 0);
    vl_topk_push(&t, 1.0, 1);
    vl_topk_push(&t, 2.0, 2);
    vl_topk_push(&t, 1.0, 3);
    vl_topk_sort(&t);
    assert_int_equal(items[0].row, 1);
    assert_int_equal(items[1].row, 3);
    vl_topk_init(&t, items, 2);
    vl_topk_push(&t, 1.0, 0);
    vl_topk_push(&t, 2.0, 1);
    vl_topk_push(&t, 2.0, 2);
    vl_topk_sort(&t);
    assert_int_equal(items[0].row, 0);
    assert_int_equal(items[1].row, 1);
}

static void test_k_larger_than_count(void **state)
{
    (void)state;
    vl_candidate items[10];
    vl_topk t;
    vl_topk_init(&t, items, 10);
    vl_topk_push(&t, 3.0, 0);
    vl_topk_push(&t, -1.0, 1);
    vl_topk_push(&t, 2.0, 2);
    assert_int_equal(t.n, 3);
    assert_true(isinf(vl_topk_bound(&t)));
    vl_topk_sort(&t);
    assert_true(items[0].dist == -1.0 && items[0].row == 1);
    assert_true(items[1].dist == 2.0 && items[1].row == 2);
    assert_true(items[2].dist == 3.0 && items[2].row == 0);

    /* K = 0 keeps nothing and must not touch items. */
    items[0].dist = 42.0;
    items[0].row = 42;
    vl_topk_init(&t, items, 0);
    vl_topk_push(&t, 1.0, 0);
    assert_int_equal(t.n, 0);
    vl_topk_sort(&t);
    assert_true(items[0].dist == 42.0 && items[0].row == 42);
}

static uint32_t rng = 2463534242u;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static void test_random_against_sort(void **state)
{
    (void)state;
    enum { N = 3000 };
    vl_candidate *all = malloc(N * sizeof *all), *items = malloc(N * sizeof *items);
    assert_non_null(all);
    assert_non_null(items);
    const uint32_t ks[] = {1, 2, 3, 10, 64, 999, N, N + 5};
    for (int round = 0; round < 16; round++) {
        /* Few distinct distances in half the rounds: many ties. */
        uint32_t distinct = round % 2 ? 7 : 1000000;
        for (uint32_t i = 0; i < N; i++) {
            all[i].dist = (double)(rnd() % distinct) * 0.25 - 3;
            all[i].row = i;
        }
        /* Offer in a shuffled order. */
        for (uint32_t i = N - 1; i > 0; i--) {
            uint32_t j = rnd() % (i + 1);
            vl_candidate tmp = all[i];
            all[i] = all[j];
            all[j] = tmp;
        }
        uint32_t k = ks[round % 8];
        vl_topk t;
        vl_topk_init(&t, items, k);
        for (uint32_t i = 0; i < N; i++) {
            vl_topk_push(&t, all[i].dist, all[i].row);
            if (t.n == t.k) {
                /* The bound is the worst kept distance. */
                double worst = -INFINITY;
                if (i % 97 == 0) {
                    for (uint32_t j = 0; j < t.n; j++)
                        worst = items[j].dist > worst ? items[j].dist : worst;
                    assert_true(vl_topk_bound(&t) == worst);
                }
            }
        }
        vl_topk_sort(&t);
        qsort(all, N, sizeof *all, cmp_ref);
        uint32_t want = k < N ? k : N;
        assert_int_equal(t.n, want);
        for (uint32_t i = 0; i < want; i++) {
            if (items[i].row != all[i].row || items[i].dist != all[i].dist)
                fail_msg("round %d k %u pos %u: got (%g,%llu) want (%g,%llu)", round, k, i,
                         items[i].dist, (unsigned long long)items[i].row, all[i].dist,
                         (unsigned long long)all[i].row);
        }
    }
    free(all);
    free(items);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_ties_prefer_smaller_row),
        cmocka_unit_test(test_k_larger_than_count),
        cmocka_unit_test(test_random_against_sort),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
