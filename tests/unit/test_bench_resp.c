/* test_bench_resp.c - bin/vexlake-bench's own RESP reader and writer, its
 * latency histogram and its recall scoring (tools/bench/; the Makefile
 * links their objects into this test).  Replies are fed
 * the way driver.c feeds them: a stream cut at every byte, parsed again
 * from the start of an unfinished reply when more bytes come. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../tools/bench/dataset.h"
#include "../../tools/bench/hist.h"
#include "../../tools/bench/resp.h"

static void test_command_writer(void **state)
{
    (void)state;
    vb_buf b = {0};
    const char *argv[] = {"VSET", "k1", "FP32", "\x00\x00\x80\x3f"};
    const size_t lens[] = {4, 2, 4, 4};
    vb_resp_command(&b, 4, argv, lens);
    const char want[] = "*4\r\n$4\r\nVSET\r\n$2\r\nk1\r\n$4\r\nFP32\r\n$4\r\n\x00\x00\x80\x3f\r\n";
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, sizeof want - 1);
    vb_buf_free(&b);
}

/* One reply of each kind the tool may meet, RESP2 and RESP3. */
static const char stream[] = "+OK\r\n"
                             "-ERR dimension mismatch: expected 128, got 4\r\n"
                             ":42\r\n"
                             "$5\r\nhe\r\no\r\n"
                             "$-1\r\n"
                             "*3\r\n$1\r\n7\r\n$2\r\n12\r\n$0\r\n\r\n"
                             "*2\r\n*1\r\n:1\r\n$3\r\nabc\r\n"
                             "*-1\r\n"
                             "%2\r\n$1\r\na\r\n,0.5\r\n$1\r\nb\r\n,1.5\r\n"
                             "_\r\n"
                             "|1\r\n+ttl\r\n:3\r\n*1\r\n$1\r\nz\r\n";

typedef struct {
    char type;
    const char *text;
    int64_t count;
    uint32_t nitems;
    const char *items[3];
} expect;

static const expect expected[] = {
    {'+', "OK", 0, 0, {0}},
    {'-', "ERR dimension mismatch: expected 128, got 4", 0, 0, {0}},
    {':', "42", 0, 0, {0}},
    {'$', "he\r\no", 0, 0, {0}},
    {'$', NULL, 0, 0, {0}},
    {'*', "3", 3, 3, {"7", "12", ""}},
    {'*', "2", 2, 2, {NULL, "abc"}},
    {'*', "-1", -1, 0, {0}},
    {'%', "2", 2, 2, {"a", "b"}},
    {'_', "", 0, 0, {0}},
    {'*', "1", 1, 1, {"z"}},
};

static void check(const vb_reply *r, const expect *e)
{
    assert_int_equal(r->type, e->type);
    if (e->text) {
        assert_int_equal(r->text.len, strlen(e->text));
        assert_memory_equal(r->text.ptr, e->text, r->text.len);
    } else {
        assert_null(r->text.ptr);
    }
    assert_int_equal(r->count, e->count);
    assert_int_equal(r->nitems, e->nitems);
    for (uint32_t i = 0; i < e->nitems; i++) {
        if (!e->items[i]) {
            assert_null(r->items[i].ptr); /* a nested array is not a string */
            continue;
        }
        assert_int_equal(r->items[i].len, strlen(e->items[i]));
        assert_memory_equal(r->items[i].ptr, e->items[i], r->items[i].len);
    }
}

/* Every cut of the stream: bytes arrive up to `cut`, then the rest. */
static void test_stream_split_at_every_byte(void **state)
{
    (void)state;
    const size_t total = sizeof stream - 1, nexp = sizeof expected / sizeof expected[0];
    for (size_t cut = 0; cut <= total; cut++) {
        size_t avail = cut, pos = 0, seen = 0;
        vb_str items[3];
        vb_reply r = {.items = items, .max_items = 3};
        while (seen < nexp) {
            long n = vb_resp_parse(stream + pos, avail - pos, &r);
            assert_true(n >= 0);
            if (n == VB_RESP_INCOMPLETE) {
                assert_true(avail < total); /* only a cut leaves a reply unfinished */
                avail = total;
                continue;
            }
            check(&r, &expected[seen++]);
            pos += (size_t)n;
        }
        assert_int_equal(pos, total);
    }
}

static void test_max_items_bounds_the_copy(void **state)
{
    (void)state;
    const char big[] = "*4\r\n$1\r\na\r\n$1\r\nb\r\n$1\r\nc\r\n$1\r\nd\r\n";
    vb_str items[2];
    vb_reply r = {.items = items, .max_items = 2};
    assert_int_equal(vb_resp_parse(big, sizeof big - 1, &r), sizeof big - 1);
    assert_int_equal(r.count, 4);
    assert_int_equal(r.nitems, 2);
    assert_memory_equal(items[1].ptr, "b", 1);
}

static void test_not_resp(void **state)
{
    (void)state;
    const char *bad[] = {"PONG\r\n",  "+OK\n",   "$3\r\nabcd\r\n", "$x\r\n",          "*1\r\n?\r\n",
                         ":12a\r\n$", "$-2\r\n", "*-2\r\n",        "$99999999999\r\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        vb_reply r = {0};
        long n = vb_resp_parse(bad[i], strlen(bad[i]), &r);
        if (n != VB_RESP_PROTOCOL)
            fail_msg("'%s' parsed as %ld", bad[i], n);
    }
    char deep[64 * 4 + 8] = "";
    for (int i = 0; i < 64; i++)
        strcat(deep, "*1\r\n");
    strcat(deep, ":1\r\n");
    vb_reply r = {0};
    assert_int_equal(vb_resp_parse(deep, strlen(deep), &r), VB_RESP_PROTOCOL);
}

static void test_histogram_quantiles(void **state)
{
    (void)state;
    static vb_hist h;
    memset(&h, 0, sizeof h);
    assert_int_equal(vb_hist_quantile(&h, 0.5), 0);
    for (uint64_t v = 1; v <= 100000; v++)
        vb_hist_record(&h, v * 1000); /* 1 us .. 100 ms */
    assert_int_equal(h.n, 100000);
    assert_int_equal(vb_hist_quantile(&h, 1.0), 100000000);
    const double qs[] = {0.5, 0.95, 0.99, 0.999};
    for (size_t i = 0; i < 4; i++) {
        double want = qs[i] * 100000 * 1000, got = (double)vb_hist_quantile(&h, qs[i]);
        if (got < want * 0.992 || got > want * 1.008)
            fail_msg("q%.3f: %.0f, want %.0f within 0.8%%", qs[i], got, want);
    }
    static vb_hist small, merged;
    memset(&small, 0, sizeof small);
    memset(&merged, 0, sizeof merged);
    for (uint64_t v = 0; v < 128; v++)
        vb_hist_record(&small, v); /* exact below 128 */
    assert_int_equal(vb_hist_quantile(&small, 0.5), 63);
    vb_hist_merge(&merged, &small);
    vb_hist_merge(&merged, &h);
    assert_int_equal(merged.n, 100128);
    assert_int_equal(merged.max, 100000000);
}

static void test_format_uint(void **state)
{
    (void)state;
    const uint64_t v[] = {0, 7, 10, 99, 1234567890123ull, UINT64_MAX};
    const char *want[] = {"0", "7", "10", "99", "1234567890123", "18446744073709551615"};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char buf[24] = {0};
        assert_int_equal(vb_format_uint(buf, v[i]), strlen(want[i]));
        assert_string_equal(buf, want[i]);
    }
}

/* One query at the origin; base rows at distances 1, 2, 2 (a tie with
 * the 2nd true neighbour), 3 and 5; the true 2 nearest are rows 0 and 1. */
static void score(vb_metric metric, const int64_t *rows, uint32_t n, uint64_t *ids, uint64_t *tie)
{
    float base[5 * 2] = {1, 0, 0, 2, -2, 0, 3, 0, 0, 5};
    float query[2] = {0, 0}, gt_dist[2] = {1, 2};
    int32_t gt[2] = {0, 1};
    if (metric == VB_METRIC_COSINE) { /* the same rows by angle from (1, 0) */
        float cb[5 * 2] = {1, 0, 3, 1, 3, -1, 1, 1, -1, 0};
        memcpy(base, cb, sizeof base);
        query[0] = 1;
        gt_dist[0] = 0;
        gt_dist[1] = (float)(1.0 - 3.0 / sqrt(10.0));
    }
    vb_dataset d = {.dim = 2,
                    .nbase = 5,
                    .nquery = 1,
                    .base = base,
                    .query = query,
                    .gt_k = 2,
                    .gt = gt,
                    .gt_dist = gt_dist,
                    .metric = metric};
    *ids = *tie = 0;
    vb_dataset_score(&d, 0, rows, n, 2, ids, tie);
}

static void test_recall_scoring(void **state)
{
    (void)state;
    uint64_t ids, tie;
    for (int m = 0; m < 2; m++) {
        vb_metric metric = m ? VB_METRIC_COSINE : VB_METRIC_L2;
        score(metric, (int64_t[]){0, 1}, 2, &ids, &tie); /* exact */
        assert_int_equal(ids, 2);
        assert_int_equal(tie, 2);
        score(metric, (int64_t[]){0, 2}, 2, &ids, &tie); /* the tie counts by distance */
        assert_int_equal(ids, 1);
        assert_int_equal(tie, 2);
        score(metric, (int64_t[]){1, 3}, 2, &ids, &tie); /* row 3 is past the 2nd */
        assert_int_equal(ids, 1);
        assert_int_equal(tie, 1);
        score(metric, (int64_t[]){4, -1}, 2, &ids, &tie); /* far, and not a base key */
        assert_int_equal(ids, 0);
        assert_int_equal(tie, 0);
        score(metric, (int64_t[]){1}, 1, &ids, &tie); /* a short reply misses the rest */
        assert_int_equal(ids, 1);
        assert_int_equal(tie, 1);
    }
}

/* The memo gives the counts a fresh score gives, reply after reply of one
 * query, also when a reply differs from the last one (order, rows, length),
 * and it does not serve another k. */
static void test_recall_memo(void **state)
{
    (void)state;
    float base[5 * 2] = {1, 0, 0, 2, -2, 0, 3, 0, 0, 5};
    float query[2 * 2] = {0, 0, 0, 0}, gt_dist[2 * 2] = {1, 2, 1, 2};
    int32_t gt[2 * 2] = {0, 1, 0, 1};
    vb_dataset d = {.dim = 2,
                    .nbase = 5,
                    .nquery = 2,
                    .base = base,
                    .query = query,
                    .gt_k = 2,
                    .gt = gt,
                    .gt_dist = gt_dist,
                    .metric = VB_METRIC_L2};
    const int64_t replies[][2] = {{0, 1}, {0, 1}, {3, 4}, {3, 4}, {1, 0}, {0, 2}, {0, 2}, {4, -1}};
    const uint32_t lens[] = {2, 2, 2, 2, 2, 2, 1, 2};
    vb_score_memo m;
    vb_score_memo_init(&m, &d, 2);
    for (int round = 0; round < 2; round++) {
        for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
            for (uint32_t qi = 0; qi < 2; qi++) {
                uint64_t ids = 0, tie = 0, want_ids = 0, want_tie = 0;
                vb_dataset_score_memo(&d, &m, qi, replies[i], lens[i], 2, &ids, &tie);
                vb_dataset_score(&d, qi, replies[i], lens[i], 2, &want_ids, &want_tie);
                assert_int_equal(ids, want_ids);
                assert_int_equal(tie, want_tie);
            }
        }
    }
    uint64_t ids = 0, tie = 0;
    vb_dataset_score_memo(&d, &m, 0, replies[0], 2, 1, &ids, &tie); /* k 1: not the memo's */
    assert_int_equal(ids, 1);
    assert_int_equal(tie, 1);
    vb_score_memo_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_writer),
        cmocka_unit_test(test_stream_split_at_every_byte),
        cmocka_unit_test(test_max_items_bounds_the_copy),
        cmocka_unit_test(test_not_resp),
        cmocka_unit_test(test_histogram_quantiles),
        cmocka_unit_test(test_recall_scoring),
        cmocka_unit_test(test_recall_memo),
        cmocka_unit_test(test_format_uint),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
