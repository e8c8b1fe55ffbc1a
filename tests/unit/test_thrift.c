/* test_thrift.c - Thrift compact protocol and the Parquet metadata codec. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "storage/parquet_meta.h"
#include "storage/thrift_compact.h"

static void expect_bytes(const vl_buf *b, const uint8_t *want, size_t n)
{
    assert_int_equal(b->len, n);
    assert_memory_equal(b->data, want, n);
}

/* ---- integers -------------------------------------------------------------- */

static void test_varint_zigzag_bytes(void **state)
{
    (void)state;
    vl_buf b = {0};
    vl_tc_writer w;
    vl_tc_writer_init(&w, &b);
    vl_tc_put_i32(&w, 0);         /* 00 */
    vl_tc_put_i32(&w, -1);        /* 01 */
    vl_tc_put_i32(&w, 1);         /* 02 */
    vl_tc_put_i32(&w, 300);       /* zigzag 600 = d8 04 */
    vl_tc_put_i16(&w, -64);       /* 127 = 7f */
    vl_tc_put_i64(&w, -65);       /* 129 = 81 01 */
    vl_tc_put_i32(&w, INT32_MIN); /* ff ff ff ff 0f */
    static const uint8_t want[] = {0x00, 0x01, 0x02, 0xd8, 0x04, 0x7f, 0x81,
                                   0x01, 0xff, 0xff, 0xff, 0xff, 0x0f};
    expect_bytes(&b, want, sizeof want);
    vl_buf_free(&b);
}

static void test_integer_roundtrip(void **state)
{
    (void)state;
    static const int64_t vals[] = {0,         1,         -1,          63,        -64,
                                   64,        127,       128,         16383,     16384,
                                   INT16_MAX, INT16_MIN, INT32_MAX,   INT32_MIN, INT64_MAX,
                                   INT64_MIN, 1LL << 40, -(1LL << 40)};
    size_t n = sizeof vals / sizeof vals[0];
    vl_buf b = {0};
    vl_tc_writer w;
    vl_tc_writer_init(&w, &b);
    for (size_t i = 0; i < n; i++) {
        if (vals[i] >= INT16_MIN && vals[i] <= INT16_MAX)
            vl_tc_put_i16(&w, (int16_t)vals[i]);
        if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX)
            vl_tc_put_i32(&w, (int32_t)vals[i]);
        vl_tc_put_i64(&w, vals[i]);
        vl_tc_put_byte(&w, (int8_t)(vals[i] & 0x7f));
    }
    vl_tc_reader r;
    vl_tc_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < n; i++) {
        int16_t s;
        int32_t x;
        int64_t y;
        int8_t c;
        if (vals[i] >= INT16_MIN && vals[i] <= INT16_MAX) {
            assert_int_equal(vl_tc_get_i16(&r, &s), 0);
            assert_int_equal(s, vals[i]);
        }
        if (vals[i] >= INT32_MIN && vals[i] <= INT32_MAX) {
            assert_int_equal(vl_tc_get_i32(&r, &x), 0);
            assert_int_equal(x, vals[i]);
        }
        assert_int_equal(vl_tc_get_i64(&r, &y), 0);
        assert_true(y == vals[i]);
        assert_int_equal(vl_tc_get_byte(&r, &c), 0);
        assert_int_equal(c, vals[i] & 0x7f);
    }
    assert_ptr_equal(r.p, r.end);
    assert_null(r.err);
    vl_buf_free(&b);
}

static void test_integer_range_checks(void **state)
{
    (void)state;
    /* zigzag 70000 does not fit an i16; 2^33 does not fit an i32 */
    static const uint8_t big16[] = {0xe0, 0xc5, 0x08};
    static const uint8_t big32[] = {0x80, 0x80, 0x80, 0x80, 0x20};
    static const uint8_t endless[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                      0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    vl_tc_reader r;
    int16_t s;
    int32_t x;
    int64_t y;
    vl_tc_reader_init(&r, big16, sizeof big16);
    assert_int_equal(vl_tc_get_i16(&r, &s), -1);
    assert_string_equal(r.err, "integer out of range");
    vl_tc_reader_init(&r, big32, sizeof big32);
    assert_int_equal(vl_tc_get_i32(&r, &x), -1);
    vl_tc_reader_init(&r, endless, sizeof endless);
    assert_int_equal(vl_tc_get_i64(&r, &y), -1);
    assert_string_equal(r.err, "varint too long");
    vl_tc_reader_init(&r, endless, 3);
    assert_int_equal(vl_tc_get_i64(&r, &y), -1);
    assert_string_equal(r.err, "truncated varint");
    /* errors are sticky */
    assert_int_equal(vl_tc_get_i64(&r, &y), -1);
    assert_string_equal(r.err, "truncated varint");
}

/* ---- fields, structs, containers ------------------------------------------- */

static void test_field_headers(void **state)
{
    (void)state;
    vl_buf b = {0};
    vl_tc_writer w;
    vl_tc_writer_init(&w, &b);
    vl_tc_struct_begin(&w);
    vl_tc_field(&w, VL_TC_I32, 1); /* delta 1: 0x15 */
    vl_tc_put_i32(&w, 7);
    vl_tc_field_bool(&w, 2, 1);        /* 0x11 */
    vl_tc_field_bool(&w, 3, 0);        /* 0x12 */
    vl_tc_field(&w, VL_TC_BINARY, 20); /* delta 17: long form 0x08 + zigzag(20)=0x28 */
    vl_tc_put_binary(&w, "hi", 2);
    vl_tc_field(&w, VL_TC_I64, 5); /* backwards: long form 0x06 0x0a */
    vl_tc_put_i64(&w, -2);
    vl_tc_field(&w, VL_TC_DOUBLE, 6); /* delta 1: 0x17 */
    vl_tc_put_double(&w, 1.0);
    vl_tc_field(&w, VL_TC_I16, 300); /* long form: 0x04, zigzag 600 */
    vl_tc_put_i16(&w, 3);
    vl_tc_field(&w, VL_TC_BYTE, 315); /* delta 15: still the short form, 0xf3 */
    vl_tc_put_byte(&w, 9);
    vl_tc_struct_end(&w);
    static const uint8_t want[] = {0x15, 0x0e, 0x11, 0x12, 0x08, 0x28, 0x02, 'h', 'i', 0x06,
                                   0x0a, 0x03, 0x17, 0,    0,    0,    0,    0,   0,   0xf0,
                                   0x3f, 0x04, 0xd8, 0x04, 0x06, 0xf3, 0x09, 0x00};
    expect_bytes(&b, want, sizeof want);

    vl_tc_reader r;
    vl_tc_type t;
    int16_t id;
    int32_t i32;
    int64_t i64;
    int16_t i16;
    double d;
    const uint8_t *p;
    uint32_t n;
    vl_tc_reader_init(&r, b.data, b.len);
    assert_int_equal(vl_tc_struct_enter(&r), 0);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(t, VL_TC_I32);
    assert_int_equal(id, 1);
    assert_int_equal(vl_tc_get_i32(&r, &i32), 0);
    assert_int_equal(i32, 7);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(t, VL_TC_TRUE);
    assert_int_equal(id, 2);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(t, VL_TC_FALSE);
    assert_int_equal(id, 3);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(id, 20);
    assert_int_equal(vl_tc_get_binary(&r, &p, &n), 0);
    assert_int_equal(n, 2);
    assert_memory_equal(p, "hi", 2);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(id, 5);
    assert_int_equal(vl_tc_get_i64(&r, &i64), 0);
    assert_int_equal(i64, -2);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(t, VL_TC_DOUBLE);
    assert_int_equal(id, 6);
    assert_int_equal(vl_tc_get_double(&r, &d), 0);
    assert_true(d == 1.0);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(id, 300);
    assert_int_equal(vl_tc_get_i16(&r, &i16), 0);
    assert_int_equal(i16, 3);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 1);
    assert_int_equal(t, VL_TC_BYTE);
    assert_int_equal(id, 315);
    int8_t i8;
    assert_int_equal(vl_tc_get_byte(&r, &i8), 0);
    assert_int_equal(i8, 9);
    assert_int_equal(vl_tc_next_field(&r, &t, &id), 0);
    assert_int_equal(r.depth, 0);
    assert_ptr_equal(r.p, r.end);
    vl_buf_free(&b);
}

static void test_doubles_and_binary(void **state)
{
    (void)state;
    const double ds[] = {0.0, -0.0, 3.141592653589793, -1e300, INFINITY, 5e-324};
    vl_buf b = {0};
    vl_tc_writer w;
    vl_tc_writer_init(&w, &b);
    for (size_t i = 0; i < 6; i++)
        vl_tc_put_double(&w, ds[i]);
    vl_tc_put_binary(&w, "", 0);
    char big[300];
    for (int i = 0; i < 300; i++)
        big[i] = (char)i;
    vl_tc_put_binary(&w, big, sizeof big);
    assert_int_equal(b.len, 6 * 8 + 1 + 2 + 300);
    assert_int_equal(b.data[8 * 2], 0x18); /* pi, little-endian: 0x400921fb54442d18 */
    assert_int_equal(b.data[8 * 2 + 7], 0x40);
    vl_tc_reader r;
    vl_tc_reader_init(&r, b.data, b.len);
    for (size_t i = 0; i < 6; i++) {
        double d;
        assert_int_equal(vl_tc_get_double(&r, &d), 0);
        assert_memory_equal(&d, &ds[i], 8);
    }
    const uint8_t *p;
    uint32_t n;
    assert_int_equal(vl_tc_get_binary(&r, &p, &n), 0);
    assert_int_equal(n, 0);
    assert_int_equal(vl_tc_get_binary(&r, &p, &n), 0);
    assert_int_equal(n, 300);
    assert_memory_equal(p, big, 300);
    assert_ptr_equal(r.p, r.end);
    vl_buf_free(&b);
}

static void test_lists_short_and_long(void **state)
{
    (void)state;
    vl_buf b = {0};
    vl_tc_writer w;
    vl_tc_writer_init(&w, &b);
    vl_tc_list_begin(&w, VL_TC_I32, 3); /* 0x35 */
    for (int i = 0; i < 3; i++)
        vl_tc_put_i32(&w, i);
    vl_tc_list_begin(&w, VL_TC_BYTE, 20); /* 0xf3 0x14 */
    for (int i = 0; i < 20; i++)
        vl_tc_put_byte(&w, (int8_t)i);
    vl_tc_list_begin(&w, VL_TC_TRUE, 2); /* bools: one byte each */
    vl_tc_put_bool_elem(&w, 1);
    vl_tc_put_bool_elem(&w, 0);
    assert_int_equal(b.data[0], 0x35);
    assert_int_equal(b.data[4], 0xf3);
    assert_int_equal(b.data[5], 0x14);
    assert_int_equal(b.data[26], 0x21);
    assert_int_equal(b.data[27], 1);
    assert_int_equal(b.data[28], 2);

    vl_tc_reader r;
    vl_tc_type et;
    uint32_t n;
    vl_tc_reader_init(&r, b.data, b.len);
    assert_int_equal(vl_tc_list_begin_read(&r, &et, &n), 0);
    assert_int_equal(et, VL_TC_I32);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++) {
        int32_t v;
        assert_int_equal(vl_tc_get_i32(&r, &v), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(vl_tc_list_begin_read(&r, &et, &n), 0);
    assert_int_equal(et, VL_TC_BYTE);
    assert_int_equal(n, 20);
    assert_int_equal(vl_tc_skip(&r, VL_TC_STOP), -1); /* not a value type */
    r.err = NULL;
    for (int i = 0; i < 20; i++) {
        int8_t v;
        assert_int_equal(vl_tc_get_byte(&r, &v), 0);
        assert_int_equal(v, i);
    }
    assert_int_equal(vl_tc_list_begin_read(&r, &et, &n), 0);
    int v1, v2;
    assert_int_equal(vl_tc_get_bool_elem(&r, &v1), 0);
    assert_int_equal(vl_tc_get_bool_elem(&r, &v2), 0);
    assert_int_equal(v1, 1);
    assert_int_equal(v2, 0);
    assert_ptr_equal(r.p, r.end);

    /* a list may not claim more elements than bytes remain */
    static const uint8_t lie[] = {0xf5, 0x80, 0x80, 0x04, 0x00};
    vl_tc_reader_init(&r, lie, sizeof lie);
    assert_int_equal(vl_tc_list_begin_read(&r, &et, &n), -1);
    assert_string_equal(r.err, "list size beyond end of input");
    vl_buf_free(&b);
}

/* A struct holding fields of every type, unknown to the reader, nested. */
static void write_everything(vl_tc_writer *w)
{
    vl_tc_struct_begin(w);
    vl_tc_field(w, VL_TC_BYTE, 1);
    vl_tc_put_byte(w, -5);
    vl_tc_field(w, VL_TC_I16, 2);
    vl_tc_put_i16(w, -300);
    vl_tc_field_bool(w, 3, 1);
    vl_tc_field(w, VL_TC_DOUBLE, 4);
    vl_tc_put_double(w, 2.5);
    vl_tc_field(w, VL_TC_MAP, 40);
    vl_tc_map_begin(w, VL_TC_BINARY, VL_TC_LIST, 2);
    for (int i = 0; i < 2; i++) {
        vl_tc_put_binary(w, "k", 1);
        vl_tc_list_begin(w, VL_TC_STRUCT, 2);
        for (int j = 0; j < 2; j++) {
            vl_tc_struct_begin(w);
            vl_tc_field(w, VL_TC_SET, 1);
            vl_tc_list_begin(w, VL_TC_I64, 16);
            for (int k = 0; k < 16; k++)
                vl_tc_put_i64(w, (int64_t)k << 40);
            vl_tc_field(w, VL_TC_LIST, 2);
            vl_tc_list_begin(w, VL_TC_TRUE, 3);
            for (int k = 0; k < 3; k++)
                vl_tc_put_bool_elem(w, k & 1);
            vl_tc_field(w, VL_TC_MAP, 3);
            vl_tc_map_begin(w, VL_TC_I32, VL_TC_DOUBLE, 0);
            vl_tc_struct_end(w);
        }
    }
    vl_tc_field(w, VL_TC_STRUCT, 41);
    vl_tc_struct_begin(w);
    vl_tc_field(w, VL_TC_STRUCT, 1);
    vl_tc_struct_begin(w);
    vl_tc_struct_end(w);
    vl_tc_struct_end(w);
    vl_tc_field(w, VL_TC_I32, 42); /* the only field the reader knows */
    vl_tc_put_i32(w, 4242);
    vl_tc_struct_end(w);
}

/* Read a struct, skipping everything but field 42 (i32). -1 on error. */
static int read_known(const uint8_t *p, size_t n, int32_t *v42)
{
    vl_tc_reader r;
    vl_tc_type t;
    int16_t id;
    int rc;
    vl_tc_reader_init(&r, p, n);
    if (vl_tc_struct_enter(&r) < 0)
        return -1;
    while ((rc = vl_tc_next_field(&r, &t, &id)) == 1) {
        if (id == 42 && t == VL_TC_I32)
            rc = vl_tc_get_i32(&r, v42);
        else
            rc = vl_tc_skip(&r, t);
        if (rc < 0)
            return -1;
    }
    if (rc == 0 && r.p != r.end)
        return -1;
    return rc;
}

static void test_skip_unknown_nested(void **state)
{
    (void)state;
    vl_buf b = {0};
    vl_tc_writer w;
    vl_tc_writer_init(&w, &b);
    write_everything(&w);
    int32_t v = 0;
    assert_int_equal(read_known(b.data, b.len, &v), 0);
    assert_int_equal(v, 4242);
    /* every strict prefix fails cleanly */
    for (size_t n = 0; n < b.len; n++) {
        uint8_t *cut = malloc(n ? n : 1);
        memcpy(cut, b.data, n);
        assert_int_equal(read_known(cut, n, &v), -1);
        free(cut);
    }
    vl_buf_free(&b);
}

static void test_malformed_input(void **state)
{
    (void)state;
    int32_t v;
    static const uint8_t bad_type[] = {0x1e, 0x00};                   /* type 14 */
    static const uint8_t bad_stop[] = {0x10};                         /* delta with type 0 */
    static const uint8_t bad_bool[] = {0x19, 0x21, 0x07, 0x01, 0x00}; /* list<bool> with 7 */
    static const uint8_t good_bool[] = {0x19, 0x21, 0x02, 0x01, 0x00};
    static const uint8_t huge_bin[] = {0x18, 0xff, 0xff, 0xff, 0xff, 0x0f, 'x', 0x00};
    static const uint8_t big_map[] = {0x1b, 0x7f, 0x55, 1, 2, 0x00};
    assert_int_equal(read_known(bad_type, sizeof bad_type, &v), -1);
    assert_int_equal(read_known(bad_stop, sizeof bad_stop, &v), -1);
    assert_int_equal(read_known(bad_bool, sizeof bad_bool, &v), -1);
    assert_int_equal(read_known(good_bool, sizeof good_bool, &v), 0);
    assert_int_equal(read_known(huge_bin, sizeof huge_bin, &v), -1);
    assert_int_equal(read_known(big_map, sizeof big_map, &v), -1);

    /* nesting: 100 structs deep is refused, 10 deep is fine */
    uint8_t deep[2 * 100 + 1];
    for (int depth = 10; depth <= 100; depth += 90) {
        size_t n = 0;
        for (int i = 0; i < depth; i++)
            deep[n++] = 0x1c; /* field 1, struct */
        for (int i = 0; i <= depth; i++)
            deep[n++] = 0x00;
        assert_int_equal(read_known(deep, n, &v), depth == 10 ? 0 : -1);
    }
    /* lists of lists too */
    uint8_t lists[64];
    lists[0] = 0x19;
    for (int i = 1; i < 63; i++)
        lists[i] = 0x19; /* list of one list */
    lists[63] = 0x00;
    assert_int_equal(read_known(lists, sizeof lists, &v), -1);
}

static void test_random_garbage(void **state)
{
    (void)state;
    uint8_t buf[64];
    srand(7);
    int ok = 0;
    for (int iter = 0; iter < 200000; iter++) {
        size_t n = (size_t)(rand() % (int)sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (uint8_t)rand();
        int32_t v;
        ok += read_known(buf, n, &v) == 0;
        vl_pq_file_meta m;
        const char *why;
        if (vl_pq_decode_file_meta(buf, n, &m, &why) == 0)
            vl_pq_file_meta_free(&m);
        vl_pq_page_header h;
        size_t used;
        if (vl_pq_decode_page_header(buf, n, &h, &used, &why) == 0)
            assert_true(used <= n);
    }
    assert_true(ok < 200000);
}

/* ---- Parquet metadata codec ------------------------------------------------ */

#define B(s) ((vl_pq_bytes){(const uint8_t *)(s), (uint32_t)strlen(s)})

static void build_meta(vl_pq_file_meta *m, vl_pq_schema_elem *schema, vl_pq_row_group *rg,
                       vl_pq_column_chunk *cc, vl_pq_kv *kv)
{
    static int32_t enc[] = {0, 3, 8};
    static vl_pq_bytes path[3];
    path[0] = B("vector");
    path[1] = B("list");
    path[2] = B("element");
    vl_pq_schema_elem s[3] = {
        {-1, -1, B("schema"), 2, -1, 0},
        {VL_PQ_BYTE_ARRAY, VL_PQ_OPTIONAL, B("key"), -1, VL_PQ_CT_UTF8, VL_PQ_LT_STRING},
        {VL_PQ_INT64, VL_PQ_REQUIRED, B("seq"), -1, -1, 0},
    };
    memcpy(schema, s, sizeof s);
    memset(cc, 0, 2 * sizeof *cc);
    for (int i = 0; i < 2; i++) {
        cc[i].file_offset = 4 + 1000 * i;
        cc[i].has_meta = 1;
        cc[i].meta.type = i ? VL_PQ_INT64 : VL_PQ_BYTE_ARRAY;
        cc[i].meta.encodings = enc;
        cc[i].meta.n_encodings = 3;
        cc[i].meta.path = path;
        cc[i].meta.n_path = 3;
        cc[i].meta.codec = VL_PQ_CODEC_ZSTD;
        cc[i].meta.num_values = 1LL << 33;
        cc[i].meta.total_uncompressed_size = 123456789012LL;
        cc[i].meta.total_compressed_size = 99;
        cc[i].meta.data_page_offset = 4 + 1000 * i;
        cc[i].meta.has_dictionary_page_offset = i;
        cc[i].meta.dictionary_page_offset = 77;
        cc[i].meta.has_stats = 1;
        cc[i].meta.stats.min_value = B("aaa");
        cc[i].meta.stats.max_value = B("zzzz");
        cc[i].meta.stats.has_null_count = 1;
        cc[i].meta.stats.null_count = 5;
        cc[i].meta.stats.has_exact = 1;
    }
    memset(rg, 0, sizeof *rg);
    rg->columns = cc;
    rg->n_columns = 2;
    rg->total_byte_size = 2000;
    rg->num_rows = 17;
    rg->has_offsets = 1;
    rg->file_offset = 4;
    rg->total_compressed_size = 198;
    kv[0] = (vl_pq_kv){B("a"), B("1")};
    kv[1] = (vl_pq_kv){B("novalue"), {NULL, 0}};
    memset(m, 0, sizeof *m);
    m->version = 2;
    m->schema = schema;
    m->n_schema = 3;
    m->num_rows = 17;
    m->row_groups = rg;
    m->n_row_groups = 1;
    m->kv = kv;
    m->n_kv = 2;
    m->created_by = B("test");
    m->n_column_orders = 2;
}

static void test_file_meta_roundtrip(void **state)
{
    (void)state;
    vl_pq_file_meta m, d;
    vl_pq_schema_elem schema[3];
    vl_pq_row_group rg;
    vl_pq_column_chunk cc[2];
    vl_pq_kv kv[2];
    build_meta(&m, schema, &rg, cc, kv);
    vl_buf b = {0};
    vl_pq_encode_file_meta(&b, &m);
    const char *why = NULL;
    assert_int_equal(vl_pq_decode_file_meta(b.data, b.len, &d, &why), 0);
    assert_int_equal(d.version, 2);
    assert_int_equal(d.num_rows, 17);
    assert_int_equal(d.n_schema, 3);
    assert_int_equal(d.schema[0].type, -1);
    assert_int_equal(d.schema[0].num_children, 2);
    assert_int_equal(d.schema[1].type, VL_PQ_BYTE_ARRAY);
    assert_int_equal(d.schema[1].repetition, VL_PQ_OPTIONAL);
    assert_int_equal(d.schema[1].converted_type, VL_PQ_CT_UTF8);
    assert_int_equal(d.schema[1].logical_type, VL_PQ_LT_STRING);
    assert_int_equal(d.schema[2].converted_type, -1);
    assert_int_equal(d.schema[2].logical_type, 0);
    assert_int_equal(d.schema[2].name.n, 3);
    assert_memory_equal(d.schema[2].name.p, "seq", 3);
    assert_int_equal(d.n_row_groups, 1);
    assert_int_equal(d.row_groups[0].num_rows, 17);
    assert_int_equal(d.row_groups[0].total_byte_size, 2000);
    assert_int_equal(d.row_groups[0].n_columns, 2);
    const vl_pq_column_meta *c1 = &d.row_groups[0].columns[1].meta;
    assert_int_equal(d.row_groups[0].columns[1].file_offset, 1004);
    assert_int_equal(c1->type, VL_PQ_INT64);
    assert_int_equal(c1->n_encodings, 3);
    assert_int_equal(c1->encodings[2], 8);
    assert_int_equal(c1->n_path, 3);
    assert_memory_equal(c1->path[2].p, "element", 7);
    assert_int_equal(c1->codec, VL_PQ_CODEC_ZSTD);
    assert_true(c1->num_values == 1LL << 33);
    assert_true(c1->total_uncompressed_size == 123456789012LL);
    assert_int_equal(c1->total_compressed_size, 99);
    assert_int_equal(c1->data_page_offset, 1004);
    assert_int_equal(c1->has_dictionary_page_offset, 1);
    assert_int_equal(c1->dictionary_page_offset, 77);
    assert_int_equal(d.row_groups[0].columns[0].meta.has_dictionary_page_offset, 0);
    assert_int_equal(c1->has_stats, 1);
    assert_int_equal(c1->stats.null_count, 5);
    assert_memory_equal(c1->stats.min_value.p, "aaa", 3);
    assert_int_equal(c1->stats.max_value.n, 4);
    assert_int_equal(d.n_kv, 2);
    assert_memory_equal(d.kv[0].value.p, "1", 1);
    assert_null(d.kv[1].value.p);
    assert_int_equal(d.created_by.n, 4);
    vl_pq_file_meta_free(&d);

    /* every truncation and one trailing byte are errors */
    for (size_t n = 0; n < b.len; n++) {
        assert_int_equal(vl_pq_decode_file_meta(b.data, n, &d, &why), -1);
        assert_non_null(why);
    }
    vl_buf_put_byte(&b, 0);
    assert_int_equal(vl_pq_decode_file_meta(b.data, b.len, &d, &why), -1);
    assert_string_equal(why, "trailing bytes");
    vl_buf_free(&b);
}

static void test_file_meta_bit_flips(void **state)
{
    (void)state;
    vl_pq_file_meta m, d;
    vl_pq_schema_elem schema[3];
    vl_pq_row_group rg;
    vl_pq_column_chunk cc[2];
    vl_pq_kv kv[2];
    build_meta(&m, schema, &rg, cc, kv);
    vl_buf b = {0};
    vl_pq_encode_file_meta(&b, &m);
    const char *why;
    for (size_t i = 0; i < b.len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            b.data[i] ^= (uint8_t)(1u << bit);
            if (vl_pq_decode_file_meta(b.data, b.len, &d, &why) == 0)
                vl_pq_file_meta_free(&d);
            b.data[i] ^= (uint8_t)(1u << bit);
        }
    }
    vl_buf_free(&b);
}

static void test_page_header_roundtrip(void **state)
{
    (void)state;
    for (int type = 0; type < 3; type++) {
        vl_pq_page_header h, d;
        memset(&h, 0, sizeof h);
        h.type = type == 0   ? VL_PQ_PAGE_DATA
                 : type == 1 ? VL_PQ_PAGE_DATA_V2
                             : VL_PQ_PAGE_DICTIONARY;
        h.uncompressed_size = 100000 + type;
        h.compressed_size = 5000;
        h.num_values = 1234;
        h.encoding = VL_PQ_ENC_RLE_DICTIONARY;
        h.def_encoding = h.rep_encoding = VL_PQ_ENC_RLE;
        h.num_nulls = 0;
        h.num_rows = 99;
        h.def_bytes = 12;
        h.rep_bytes = 34;
        h.is_compressed = 0;
        h.has_stats = 1;
        h.stats.min_value = B("\x01\x02");
        h.stats.max_value = B("\x03\x04");
        vl_buf b = {0};
        vl_pq_encode_page_header(&b, &h);
        vl_buf_put(&b, "payload", 7);
        size_t used = 0;
        const char *why = NULL;
        assert_int_equal(vl_pq_decode_page_header(b.data, b.len, &d, &used, &why), 0);
        assert_int_equal(used, b.len - 7);
        assert_int_equal(d.type, h.type);
        assert_int_equal(d.uncompressed_size, 100000 + type);
        assert_int_equal(d.compressed_size, 5000);
        assert_int_equal(d.num_values, 1234);
        if (type != 2) {
            assert_int_equal(d.encoding, VL_PQ_ENC_RLE_DICTIONARY);
            assert_int_equal(d.has_stats, 1);
            assert_memory_equal(d.stats.max_value.p, "\x03\x04", 2);
        }
        if (type == 1) {
            assert_int_equal(d.num_rows, 99);
            assert_int_equal(d.def_bytes, 12);
            assert_int_equal(d.rep_bytes, 34);
            assert_int_equal(d.is_compressed, 0);
        }
        for (size_t n = 0; n < used; n++)
            assert_int_equal(vl_pq_decode_page_header(b.data, n, &d, &used, &why), -1);
        vl_buf_free(&b);
    }
    /* a data page type with a dictionary header is refused */
    vl_buf b = {0};
    vl_tc_writer w;
    vl_tc_writer_init(&w, &b);
    vl_tc_struct_begin(&w);
    vl_tc_field(&w, VL_TC_I32, 1);
    vl_tc_put_i32(&w, VL_PQ_PAGE_DATA);
    vl_tc_field(&w, VL_TC_I32, 2);
    vl_tc_put_i32(&w, 1);
    vl_tc_field(&w, VL_TC_I32, 3);
    vl_tc_put_i32(&w, 1);
    vl_tc_field(&w, VL_TC_STRUCT, 7);
    vl_tc_struct_begin(&w);
    vl_tc_field(&w, VL_TC_I32, 1);
    vl_tc_put_i32(&w, 1);
    vl_tc_field(&w, VL_TC_I32, 2);
    vl_tc_put_i32(&w, 0);
    vl_tc_struct_end(&w);
    vl_tc_struct_end(&w);
    vl_pq_page_header d;
    size_t used;
    const char *why = NULL;
    assert_int_equal(vl_pq_decode_page_header(b.data, b.len, &d, &used, &why), -1);
    assert_string_equal(why, "page header does not match its page type");
    vl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_varint_zigzag_bytes),  cmocka_unit_test(test_integer_roundtrip),
        cmocka_unit_test(test_integer_range_checks), cmocka_unit_test(test_field_headers),
        cmocka_unit_test(test_doubles_and_binary),   cmocka_unit_test(test_lists_short_and_long),
        cmocka_unit_test(test_skip_unknown_nested),  cmocka_unit_test(test_malformed_input),
        cmocka_unit_test(test_random_garbage),       cmocka_unit_test(test_file_meta_roundtrip),
        cmocka_unit_test(test_file_meta_bit_flips),  cmocka_unit_test(test_page_header_roundtrip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
