/* test_descriptor.c - collection descriptors: format, parse, store. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "storage/crc32c.h"
#include "storage/descriptor.h"

/* Seal body (every line but the crc one) into out with its crc line. */
static size_t seal(const char *body, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%scrc32c %08x\n", body, vl_crc32c(0, body, strlen(body)));
    assert_true(n > 0 && (size_t)n < cap);
    return (size_t)n;
}

static vl_status parse_str(const char *text, vl_descriptor *d, vl_error *err)
{
    return vl_descriptor_parse(text, strlen(text), d, err);
}

static void test_format_exact_text(void **state)
{
    (void)state;
    vl_descriptor d = {.name = "default", .metric = VL_METRIC_COSINE};
    char buf[256], want[256];
    size_t n = vl_descriptor_format(&d, buf, sizeof buf);
    size_t m = seal("vexlake-collection 1\nname default\nmetric cosine\n", want, sizeof want);
    assert_int_equal(n, m);
    assert_string_equal(buf, want);
    /* Too small a buffer: the needed length is still returned. */
    char tiny[8];
    assert_int_equal(vl_descriptor_format(&d, tiny, sizeof tiny), n);
}

static void test_roundtrip_all_metrics(void **state)
{
    (void)state;
    const vl_metric ms[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    const char *names[] = {"a", "My_Coll-2.v1",
                           "0123456789012345678901234567890123456789"
                           "012345678901234567890123"};
    for (size_t i = 0; i < 3; i++) {
        for (size_t j = 0; j < 3; j++) {
            vl_descriptor d, back;
            memset(&d, 0, sizeof d);
            strcpy(d.name, names[j]);
            d.metric = ms[i];
            char buf[256];
            size_t n = vl_descriptor_format(&d, buf, sizeof buf);
            vl_error err;
            assert_int_equal(vl_descriptor_parse(buf, n, &back, &err), VL_OK);
            assert_string_equal(back.name, d.name);
            assert_int_equal(back.metric, d.metric);
        }
    }
}

/* The index line round-trips; a descriptor without it (written before
 * indexes) still parses, as one without index parameters. */
static void test_index_line(void **state)
{
    (void)state;
    vl_descriptor d = {.name = "v", .metric = VL_METRIC_COSINE, .has_index = 1}, back;
    d.index = (vl_index_params){VL_INDEX_IVF, VL_QUANT_RABITQ, 0, 0, 512};
    char buf[256];
    size_t n = vl_descriptor_format(&d, buf, sizeof buf);
    assert_non_null(strstr(buf, "\nindex ivf rabitq 0 0 512\ncrc32c "));
    vl_error err;
    assert_int_equal(vl_descriptor_parse(buf, n, &back, &err), VL_OK);
    assert_int_equal(back.has_index, 1);
    assert_memory_equal(&back.index, &d.index, sizeof d.index);
    d.has_index = 0;
    n = vl_descriptor_format(&d, buf, sizeof buf);
    assert_null(strstr(buf, "index"));
    assert_int_equal(vl_descriptor_parse(buf, n, &back, &err), VL_OK);
    assert_int_equal(back.has_index, 0);
    const char *bad[] = {"index hnsw\n",
                         "index graph sq8 0 0 0\n",
                         "index hnsw sq8 16 200 0 9\n",
                         "index hnsw sq8  16 200 0\n",
                         "index hnsw sq8 016 200 0\n",
                         "index hnsw sq8 -1 200 0\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[160];
        snprintf(text, sizeof text, "vexlake-collection 1\nname x\nmetric l2\n%s", bad[i]);
        seal(text, buf, sizeof buf);
        assert_int_equal(parse_str(buf, &back, &err), VL_ERR_CORRUPT);
    }
}

static void test_bad_crc(void **state)
{
    (void)state;
    vl_descriptor d = {.name = "default", .metric = VL_METRIC_L2}, back;
    char buf[256];
    size_t n = vl_descriptor_format(&d, buf, sizeof buf);
    vl_error err;
    buf[25] ^= 1; /* inside the name */
    assert_int_equal(vl_descriptor_parse(buf, n, &back, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "checksum mismatch"));
    buf[25] ^= 1;
    buf[n - 2] = buf[n - 2] == '0' ? '1' : '0'; /* inside the crc digits */
    assert_int_equal(vl_descriptor_parse(buf, n, &back, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "checksum mismatch"));
}

static void test_bad_metric(void **state)
{
    (void)state;
    char buf[256];
    vl_descriptor d;
    vl_error err;
    seal("vexlake-collection 1\nname x\nmetric hamming\n", buf, sizeof buf);
    assert_int_equal(parse_str(buf, &d, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "unknown metric \"hamming\""));
    seal("vexlake-collection 1\nname x\nmetric COSINE\n", buf, sizeof buf);
    assert_int_equal(parse_str(buf, &d, &err), VL_ERR_CORRUPT);
    seal("vexlake-collection 1\nname x\nmetric \n", buf, sizeof buf);
    assert_int_equal(parse_str(buf, &d, &err), VL_ERR_CORRUPT);
}

static void test_unknown_version(void **state)
{
    (void)state;
    char buf[256];
    vl_descriptor d;
    vl_error err;
    seal("vexlake-collection 2\nname x\nmetric l2\n", buf, sizeof buf);
    assert_int_equal(parse_str(buf, &d, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "unsupported descriptor version \"2\""));
    seal("vexlake-collection 10\nname x\nmetric l2\n", buf, sizeof buf);
    assert_int_equal(parse_str(buf, &d, &err), VL_ERR_CORRUPT);
    seal("vexlake-index 1\nname x\nmetric l2\n", buf, sizeof buf);
    assert_int_equal(parse_str(buf, &d, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "not a collection descriptor"));
}

static void test_strict_syntax(void **state)
{
    (void)state;
    const char *bodies[] = {
        "vexlake-collection 1\nname x\n",                     /* no metric */
        "vexlake-collection 1\nmetric l2\nname x\n",          /* wrong order */
        "vexlake-collection 1\nname x\nmetric l2\nextra 1\n", /* extra line */
        "vexlake-collection 1\n\nname x\nmetric l2\n",        /* blank line */
        "vexlake-collection 1\r\nname x\r\nmetric l2\r\n",    /* CRLF */
        "vexlake-collection 1\nname  x\nmetric l2\n",         /* two spaces */
        "vexlake-collection 1\nname x y\nmetric l2\n",        /* bad name */
        "vexlake-collection 1\nname ..\nmetric l2\n",         /* bad name */
        "vexlake-collection 1\nname \nmetric l2\n",           /* empty name */
        "vexlake-collection 1\nname x\nmetric l2 \n",         /* trailing space */
    };
    char buf[256];
    vl_descriptor d;
    vl_error err;
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
        seal(bodies[i], buf, sizeof buf);
        assert_int_equal(parse_str(buf, &d, &err), VL_ERR_CORRUPT);
    }
    /* Damage to the crc line itself. */
    vl_descriptor good = {.name = "x", .metric = VL_METRIC_IP};
    size_t n = vl_descriptor_format(&good, buf, sizeof buf);
    assert_int_equal(vl_descriptor_parse(buf, n - 1, &d, &err), VL_ERR_CORRUPT); /* no '\n' */
    for (size_t len = 0; len < n; len++)
        assert_int_equal(vl_descriptor_parse(buf, len, &d, &err), VL_ERR_CORRUPT);
    char longer[300];
    memcpy(longer, buf, n);
    memcpy(longer + n, "x", 1);
    assert_int_equal(vl_descriptor_parse(longer, n + 1, &d, &err), VL_ERR_CORRUPT);
    for (char *p = buf + n - 9; p < buf + n - 1; p++) /* uppercase hex is not accepted */
        if (*p >= 'a' && *p <= 'f')
            *p = (char)(*p - 'a' + 'A');
    if (strpbrk(buf + n - 9, "ABCDEF"))
        assert_int_equal(vl_descriptor_parse(buf, n, &d, &err), VL_ERR_CORRUPT);
    /* An embedded NUL in the name. */
    char nul[256];
    size_t bl = strlen("vexlake-collection 1\nname ab\nmetric l2\n");
    memcpy(nul, "vexlake-collection 1\nname ab\nmetric l2\n", bl);
    nul[27] = '\0';
    uint32_t crc = vl_crc32c(0, nul, bl);
    snprintf(nul + bl, sizeof nul - bl, "crc32c %08x\n", crc);
    assert_int_equal(vl_descriptor_parse(nul, bl + 16, &d, &err), VL_ERR_CORRUPT);
}

static void test_name_validation(void **state)
{
    (void)state;
    char max[VL_MAX_COLLECTION_NAME + 2];
    memset(max, 'a', sizeof max);
    max[VL_MAX_COLLECTION_NAME] = '\0';
    assert_true(vl_collection_name_valid(max));
    max[VL_MAX_COLLECTION_NAME] = 'a';
    max[VL_MAX_COLLECTION_NAME + 1] = '\0';
    assert_false(vl_collection_name_valid(max));
    const char *good[] = {"a", "default", "A-b_c.1", "...", ".hidden", "x..y", "0"};
    const char *bad[] = {"", ".", "..", "a b", "a/b", "a\\b", "caf\xc3\xa9", "a:b", "a\n"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_true(vl_collection_name_valid(good[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_false(vl_collection_name_valid(bad[i]));
    assert_false(vl_collection_name_valid(NULL));
}

/* ---- through the object store -------------------------------------------- */

#include "testutil_store.h"

static void test_write_load_remove(void **state)
{
    fixture *f = *state;
    vl_error err;
    vl_descriptor a = {.name = "zeta", .metric = VL_METRIC_IP},
                  b = {.name = "alpha", .metric = VL_METRIC_L2},
                  c = {.name = "mid", .metric = VL_METRIC_COSINE};
    assert_int_equal(vl_descriptor_write(f->s, &a, &err), VL_OK);
    assert_int_equal(vl_descriptor_write(f->s, &b, &err), VL_OK);
    assert_int_equal(vl_descriptor_write(f->s, &c, &err), VL_OK);
    c.metric = VL_METRIC_IP; /* replace */
    assert_int_equal(vl_descriptor_write(f->s, &c, &err), VL_OK);
    assert_int_equal(vl_obj_put(f->s, "collections/notes.txt", "x", 1, &err), VL_OK);
    assert_int_equal(vl_obj_put(f->s, "collections/sub/y.desc", "x", 1, &err), VL_OK);

    vl_descriptor *ds;
    size_t n;
    assert_int_equal(vl_descriptor_load_all(f->s, &ds, &n, &err), VL_OK);
    assert_int_equal(n, 3);
    assert_string_equal(ds[0].name, "alpha");
    assert_int_equal(ds[0].metric, VL_METRIC_L2);
    assert_string_equal(ds[1].name, "mid");
    assert_int_equal(ds[1].metric, VL_METRIC_IP);
    assert_string_equal(ds[2].name, "zeta");
    free(ds);

    void *data;
    size_t len;
    assert_int_equal(vl_obj_get(f->s, "collections/alpha.desc", &data, &len, &err), VL_OK);
    free(data);

    assert_int_equal(vl_descriptor_remove(f->s, "mid", &err), VL_OK);
    assert_int_equal(vl_descriptor_remove(f->s, "mid", &err), VL_OK); /* already gone */
    assert_int_equal(vl_descriptor_load_all(f->s, &ds, &n, &err), VL_OK);
    assert_int_equal(n, 2);
    free(ds);
}

static void test_load_all_empty(void **state)
{
    fixture *f = *state;
    vl_descriptor *ds = NULL;
    size_t n = 9;
    vl_error err;
    assert_int_equal(vl_descriptor_load_all(f->s, &ds, &n, &err), VL_OK);
    assert_int_equal(n, 0);
    free(ds);
}

static void test_load_all_reports_damage(void **state)
{
    fixture *f = *state;
    vl_error err;
    vl_descriptor a = {.name = "good", .metric = VL_METRIC_IP};
    assert_int_equal(vl_descriptor_write(f->s, &a, &err), VL_OK);
    char buf[256];
    size_t n = vl_descriptor_format(&a, buf, sizeof buf);
    buf[30] ^= 2;
    assert_int_equal(vl_obj_put(f->s, "collections/bad.desc", buf, n, &err), VL_OK);
    vl_descriptor *ds;
    size_t cnt;
    assert_int_equal(vl_descriptor_load_all(f->s, &ds, &cnt, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "collections/bad.desc: "));
    assert_non_null(strstr(err.msg, "checksum"));

    /* A valid descriptor stored under another collection's name. */
    n = vl_descriptor_format(&a, buf, sizeof buf);
    assert_int_equal(vl_obj_put(f->s, "collections/bad.desc", buf, n, &err), VL_OK);
    assert_int_equal(vl_descriptor_load_all(f->s, &ds, &cnt, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "collections/bad.desc"));
}

static void test_write_rejects_bad_input(void **state)
{
    fixture *f = *state;
    vl_error err;
    vl_descriptor d = {.name = "a b", .metric = VL_METRIC_L2};
    assert_int_equal(vl_descriptor_write(f->s, &d, &err), VL_ERR_ARG);
    vl_descriptor e = {.name = "ok", .metric = (vl_metric)7};
    assert_int_equal(vl_descriptor_write(f->s, &e, &err), VL_ERR_ARG);
    assert_int_equal(vl_descriptor_remove(f->s, "..", &err), VL_ERR_ARG);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_exact_text),
        cmocka_unit_test(test_roundtrip_all_metrics),
        cmocka_unit_test(test_index_line),
        cmocka_unit_test(test_bad_crc),
        cmocka_unit_test(test_bad_metric),
        cmocka_unit_test(test_unknown_version),
        cmocka_unit_test(test_strict_syntax),
        cmocka_unit_test(test_name_validation),
        cmocka_unit_test_setup_teardown(test_write_load_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_all_empty, setup, teardown),
        cmocka_unit_test_setup_teardown(test_load_all_reports_damage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_rejects_bad_input, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
