/* test_parquet.c - segment files: RLE levels, write/read roundtrips, page
 * layout and statistics, hand-built files in pyarrow's shapes (dictionary
 * pages, data page v2, optional columns), and damage of every kind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "storage/parquet.h"
#include "storage/parquet_meta.h"
#include "storage/rle_levels.h"

/* ---- RLE / bit-packing hybrid ---------------------------------------------- */

static void test_rle_spec_example(void **state)
{
    (void)state;
    /* The format spec's example: 0..7 at bit width 3 bit-pack into one group
     * of bytes 10001000 11000110 11111010. */
    uint32_t v[8] = {0, 1, 2, 3, 4, 5, 6, 7}, out[8];
    vl_buf b = {0};
    vl_rle_encode(&b, v, 8, 3);
    static const uint8_t want[] = {0x03, 0x88, 0xc6, 0xfa};
    assert_int_equal(b.len, sizeof want);
    assert_memory_equal(b.data, want, sizeof want);
    const char *why = NULL;
    assert_int_equal(vl_rle_decode(b.data, b.len, 3, out, 8, &why), 0);
    assert_memory_equal(out, v, sizeof v);
    /* a run of 100 fives at width 3: header 200 (c8 01), value 05 */
    b.len = 0;
    uint32_t fives[100];
    for (int i = 0; i < 100; i++)
        fives[i] = 5;
    vl_rle_encode(&b, fives, 100, 3);
    static const uint8_t want2[] = {0xc8, 0x01, 0x05};
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, want2, 3);
    vl_buf_free(&b);
}

static void test_rle_roundtrip_widths(void **state)
{
    (void)state;
    srand(11);
    for (int w = 0; w <= 32; w++) {
        for (int iter = 0; iter < 20; iter++) {
            size_t n = (size_t)(rand() % 300);
            uint32_t *v = malloc((n + 1) * sizeof *v), *out = malloc((n + 1) * sizeof *out);
            uint32_t mask = w == 32 ? 0xffffffffu : (1u << w) - 1;
            for (size_t i = 0; i < n;) {
                uint32_t x = ((uint32_t)rand() << 16 ^ (uint32_t)rand()) & mask;
                size_t run = rand() % 3 == 0 ? (size_t)(rand() % 40) : 1;
                for (size_t k = 0; k < run && i < n; k++)
                    v[i++] = x;
            }
            vl_buf b = {0};
            vl_rle_encode(&b, v, n, w);
            const char *why = NULL;
            assert_int_equal(vl_rle_decode(b.data, b.len, w, out, n, &why), 0);
            assert_memory_equal(out, v, n * sizeof *v);
            /* cut short: never succeeds for more values than were encoded
             * unless the last run was padded */
            for (size_t cut = 0; cut < b.len && w > 0; cut++)
                if (vl_rle_decode(b.data, cut, w, out, n, &why) == 0)
                    assert_true(n == 0);
            vl_buf_free(&b);
            free(v);
            free(out);
        }
    }
}

static void test_rle_malformed(void **state)
{
    (void)state;
    uint32_t out[16];
    const char *why = NULL;
    static const uint8_t wide[] = {0x10, 0x09}; /* 8 x 9 at width 3 */
    assert_int_equal(vl_rle_decode(wide, 2, 3, out, 8, &why), -1);
    assert_string_equal(why, "run value wider than its bit width");
    static const uint8_t packed[] = {0x05, 0xff}; /* 2 groups, 1 byte at width 1 */
    assert_int_equal(vl_rle_decode(packed, 2, 1, out, 16, &why), -1);
    assert_int_equal(vl_rle_decode(packed, 2, 33, out, 1, &why), -1);
    static const uint8_t zero_runs[] = {0x00, 0x01, 0x00, 0x01};
    assert_int_equal(vl_rle_decode(zero_runs, 4, 1, out, 1, &why), -1);
    assert_string_equal(why, "level/index data ends early");
    static const uint8_t longhdr[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(vl_rle_decode(longhdr, sizeof longhdr, 1, out, 1, &why), -1);
    assert_int_equal(vl_rle_bit_width(0), 0);
    assert_int_equal(vl_rle_bit_width(1), 1);
    assert_int_equal(vl_rle_bit_width(3), 2);
    assert_int_equal(vl_rle_bit_width(4), 3);
}

/* ---- rows ---------------------------------------------------------------- */

typedef struct {
    vl_segment_rows r;
    char **keys;
    uint32_t *lens;
    float *vecs;
    int64_t *seqs;
} rowset;

static uint32_t rnd32(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(*s >> 32);
}

/* keys: 0 ascii "key<i>", 1 random binary (1..20 bytes), 2 UTF-8 text */
static void rows_make(rowset *rs, uint64_t n, uint32_t dim, int keys, uint64_t seed)
{
    memset(rs, 0, sizeof *rs);
    rs->keys = calloc(n + 1, sizeof *rs->keys);
    rs->lens = calloc(n + 1, sizeof *rs->lens);
    rs->vecs = calloc(n * dim + 1, sizeof *rs->vecs);
    rs->seqs = calloc(n + 1, sizeof *rs->seqs);
    for (uint64_t i = 0; i < n; i++) {
        char *k = malloc(64);
        if (keys == 0) {
            rs->lens[i] = (uint32_t)snprintf(k, 64, "key%llu", (unsigned long long)i);
        } else if (keys == 1) {
            rs->lens[i] = 1 + rnd32(&seed) % 20;
            for (uint32_t j = 0; j < rs->lens[i]; j++)
                k[j] = (char)rnd32(&seed);
            k[0] = (char)(0x80 | (i & 0x3f)); /* a lone continuation byte: not UTF-8 */
        } else {
            rs->lens[i] = (uint32_t)snprintf(k, 64, "clé-%llu-\xe2\x82\xac", (unsigned long long)i);
        }
        rs->keys[i] = k;
        rs->seqs[i] = (int64_t)(rnd32(&seed) | (uint64_t)rnd32(&seed) << 32);
        for (uint32_t d = 0; d < dim; d++) {
            uint32_t u = rnd32(&seed);
            memcpy(&rs->vecs[i * dim + d], &u, 4); /* any bits, NaNs included */
        }
    }
    rs->r = (vl_segment_rows){n, dim, (const char *const *)rs->keys, rs->lens, rs->vecs, rs->seqs};
}

static void rows_free(rowset *rs)
{
    for (uint64_t i = 0; i < rs->r.nrows; i++)
        free(rs->keys[i]);
    free(rs->keys);
    free(rs->lens);
    free(rs->vecs);
    free(rs->seqs);
}

static void expect_same(const rowset *rs, const vl_segment *s)
{
    assert_int_equal(s->nrows, rs->r.nrows);
    assert_int_equal(s->dim, rs->r.dim);
    assert_int_equal((uintptr_t)s->vecs % 64, 0);
    for (uint64_t i = 0; i < s->nrows; i++) {
        assert_int_equal(s->key_offs[i + 1] - s->key_offs[i], rs->lens[i]);
        assert_memory_equal(s->key_data + s->key_offs[i], rs->keys[i], rs->lens[i]);
        assert_true(s->seqs[i] == rs->seqs[i]);
    }
    if (s->nrows)
        assert_memory_equal(s->vecs, rs->vecs, s->nrows * s->dim * sizeof(float));
}

static void write_ok(const rowset *rs, int level, uint32_t page_bytes, uint8_t **buf, size_t *len)
{
    vl_parquet_options o;
    vl_parquet_options_init(&o);
    o.zstd_level = level;
    o.page_bytes = page_bytes;
    vl_error err = {{0}};
    vl_status st = vl_parquet_write_segment(&rs->r, &o, buf, len, &err);
    if (st != VL_OK)
        fail_msg("write: %s", err.msg);
}

static void roundtrip(uint64_t n, uint32_t dim, int keys, int level, uint32_t page_bytes)
{
    rowset rs;
    rows_make(&rs, n, dim, keys, n * 31 + dim);
    uint8_t *buf;
    size_t len;
    write_ok(&rs, level, page_bytes, &buf, &len);
    vl_segment s;
    vl_error err = {{0}};
    vl_status st = vl_parquet_read_segment(buf, len, &s, &err);
    if (st != VL_OK)
        fail_msg("read: %s", err.msg);
    expect_same(&rs, &s);
    vl_segment_free(&s);
    free(buf);
    rows_free(&rs);
}

static void test_roundtrip_basic(void **state)
{
    (void)state;
    roundtrip(100, 8, 0, 3, 1 << 20);
    roundtrip(100, 8, 1, 3, 1 << 20);
    roundtrip(100, 8, 2, 0, 1 << 20);
    roundtrip(1, 1, 0, 1, 1 << 20);
    roundtrip(1000, 1, 1, 3, 1 << 20);
    roundtrip(3, 4096, 1, 3, 1 << 20);
    roundtrip(3, 4096, 0, 0, 100); /* one row per page */
}

static void test_roundtrip_multipage(void **state)
{
    (void)state;
    for (int level = 0; level <= 19; level += 19) {
        roundtrip(500, 7, 1, level, 64);
        roundtrip(500, 16, 0, level, 1000);
        roundtrip(257, 3, 2, level, 1);
    }
}

static void test_zero_rows(void **state)
{
    (void)state;
    for (uint32_t dim = 0; dim <= 4; dim += 4) {
        rowset rs;
        rows_make(&rs, 0, dim, 0, 1);
        uint8_t *buf;
        size_t len;
        write_ok(&rs, 3, 1 << 20, &buf, &len);
        vl_segment s;
        vl_error err = {{0}};
        assert_int_equal(vl_parquet_read_segment(buf, len, &s, &err), VL_OK);
        assert_int_equal(s.nrows, 0);
        assert_int_equal(s.dim, dim);
        assert_int_equal(s.key_offs[0], 0);
        vl_segment_free(&s);
        free(buf);
        rows_free(&rs);
    }
}

static void test_write_rejects_bad_args(void **state)
{
    (void)state;
    rowset rs;
    rows_make(&rs, 2, 3, 0, 1);
    vl_parquet_options o;
    vl_parquet_options_init(&o);
    assert_int_equal(o.zstd_level, 1);
    assert_int_equal(o.page_bytes, 1u << 20);
    uint8_t *buf = NULL;
    size_t len = 0;
    vl_error err = {{0}};
    o.zstd_level = 1000;
    assert_int_equal(vl_parquet_write_segment(&rs.r, &o, &buf, &len, &err), VL_ERR_ARG);
    assert_non_null(strstr(err.msg, "zstd level"));
    o.zstd_level = 3;
    o.page_bytes = 0;
    assert_int_equal(vl_parquet_write_segment(&rs.r, &o, &buf, &len, &err), VL_ERR_ARG);
    o.page_bytes = 4096;
    rs.r.dim = 0;
    assert_int_equal(vl_parquet_write_segment(&rs.r, &o, &buf, &len, &err), VL_ERR_ARG);
    rs.r.dim = VL_MAX_DIM + 1;
    assert_int_equal(vl_parquet_write_segment(&rs.r, &o, &buf, &len, &err), VL_ERR_ARG);
    assert_null(buf);
    rs.r.dim = 3;
    rows_free(&rs);
}

/* ---- layout, metadata and statistics --------------------------------------- */

static const vl_pq_column_meta *col(const vl_pq_file_meta *m, int c)
{
    return &m->row_groups[0].columns[c].meta;
}

static void footer(const uint8_t *buf, size_t len, vl_pq_file_meta *m)
{
    uint32_t flen;
    memcpy(&flen, buf + len - 8, 4);
    const char *why = NULL;
    assert_memory_equal(buf, "PAR1", 4);
    assert_memory_equal(buf + len - 4, "PAR1", 4);
    assert_int_equal(vl_pq_decode_file_meta(buf + len - 8 - flen, flen, m, &why), 0);
}

static int bytes_is(vl_pq_bytes b, const void *p, size_t n)
{
    return b.p && b.n == n && memcmp(b.p, p, n) == 0;
}

static void test_metadata_and_stats(void **state)
{
    (void)state;
    const char *keys[] = {"b", "ab", "a", "zz", "aa"};
    uint32_t lens[] = {1, 2, 1, 2, 2};
    float vecs[] = {1.5f, 0.0f, -2.0f, 7.0f, 3.0f, 0.0f, 0.0f, 9.0f, 4.0f, 1.0f};
    int64_t seqs[] = {10, -5, 99, 7, 3};
    vl_segment_rows rows = {5, 2, keys, lens, vecs, seqs};
    uint8_t *buf;
    size_t len;
    vl_error err;
    vl_parquet_options o;
    vl_parquet_options_init(&o);
    assert_int_equal(vl_parquet_write_segment(&rows, &o, &buf, &len, &err), VL_OK);
    vl_pq_file_meta m;
    footer(buf, len, &m);
    assert_int_equal(m.version, 2);
    assert_int_equal(m.num_rows, 5);
    assert_int_equal(m.n_schema, 6);
    assert_int_equal(m.schema[1].converted_type, VL_PQ_CT_UTF8);
    assert_int_equal(m.schema[1].logical_type, VL_PQ_LT_STRING);
    assert_int_equal(m.schema[2].converted_type, VL_PQ_CT_LIST);
    assert_int_equal(m.schema[2].logical_type, VL_PQ_LT_LIST);
    assert_int_equal(m.schema[3].repetition, VL_PQ_REPEATED);
    assert_true(bytes_is(m.schema[4].name, "element", 7));
    assert_int_equal(m.schema[4].type, VL_PQ_FLOAT);
    assert_int_equal(m.schema[5].type, VL_PQ_INT64);
    assert_true(bytes_is(m.created_by, "vexlake version 0.1.0", 21));
    assert_int_equal(m.n_kv, 2);
    assert_true(bytes_is(m.kv[0].key, "vexlake.format_version", 22));
    assert_true(bytes_is(m.kv[0].value, "1", 1));
    assert_true(bytes_is(m.kv[1].key, "vexlake.dim", 11));
    assert_true(bytes_is(m.kv[1].value, "2", 1));
    assert_int_equal(m.n_row_groups, 1);

    const vl_pq_column_meta *k = col(&m, 0), *v = col(&m, 1), *s = col(&m, 2);
    assert_int_equal(k->codec, VL_PQ_CODEC_ZSTD);
    assert_int_equal(k->num_values, 5);
    assert_int_equal(v->num_values, 10);
    assert_int_equal(v->n_path, 3);
    assert_int_equal(v->n_encodings, 2);
    assert_int_equal(k->data_page_offset, 4);
    assert_int_equal(v->data_page_offset, 4 + k->total_compressed_size);
    assert_int_equal(s->data_page_offset, v->data_page_offset + v->total_compressed_size);
    assert_true(bytes_is(k->stats.min_value, "a", 1));
    assert_true(bytes_is(k->stats.max_value, "zz", 2));
    assert_int_equal(k->stats.null_count, 0);
    float fmin, fmax;
    memcpy(&fmin, v->stats.min_value.p, 4);
    memcpy(&fmax, v->stats.max_value.p, 4);
    assert_true(fmin == -2.0f && fmax == 9.0f);
    int64_t smin, smax;
    memcpy(&smin, s->stats.min_value.p, 8);
    memcpy(&smax, s->stats.max_value.p, 8);
    assert_int_equal(smin, -5);
    assert_int_equal(smax, 99);
    vl_pq_file_meta_free(&m);
    free(buf);

    /* all-zero vectors: min is -0.0, max +0.0; a non-UTF-8 key drops STRING */
    float zeros[10] = {0};
    keys[3] = "\xff";
    lens[3] = 1;
    rows.vecs = zeros;
    assert_int_equal(vl_parquet_write_segment(&rows, &o, &buf, &len, &err), VL_OK);
    footer(buf, len, &m);
    assert_int_equal(m.schema[1].converted_type, -1);
    assert_int_equal(m.schema[1].logical_type, 0);
    assert_true(bytes_is(col(&m, 0)->stats.max_value, "\xff", 1));
    assert_true(bytes_is(col(&m, 1)->stats.min_value, "\x00\x00\x00\x80", 4));
    assert_true(bytes_is(col(&m, 1)->stats.max_value, "\x00\x00\x00\x00", 4));
    vl_pq_file_meta_free(&m);
    free(buf);
}

static void test_page_layout(void **state)
{
    (void)state;
    rowset rs;
    rows_make(&rs, 100, 5, 0, 3);
    for (uint64_t i = 0; i < 100; i++)
        rs.seqs[i] = (int64_t)i;
    uint8_t *buf;
    size_t len;
    write_ok(&rs, 0, 64, &buf, &len); /* 64 B: 3 vectors or 8 seqs a page */
    vl_pq_file_meta m;
    footer(buf, len, &m);
    int expect_pages[3] = {0, 34, 13};
    for (int c = 0; c < 3; c++) {
        const vl_pq_column_meta *cm = col(&m, c);
        assert_int_equal(cm->codec, VL_PQ_CODEC_UNCOMPRESSED);
        size_t pos = (size_t)cm->data_page_offset, end = pos + (size_t)cm->total_compressed_size;
        int pages = 0;
        int64_t values = 0, unc = 0;
        while (pos < end) {
            vl_pq_page_header h;
            size_t used;
            const char *why;
            assert_int_equal(vl_pq_decode_page_header(buf + pos, end - pos, &h, &used, &why), 0);
            assert_int_equal(h.type, VL_PQ_PAGE_DATA);
            assert_int_equal(h.encoding, VL_PQ_ENC_PLAIN);
            assert_int_equal(h.uncompressed_size, h.compressed_size);
            assert_int_equal(h.has_stats, 1);
            if (c == 1)
                assert_int_equal(h.num_values % 5, 0); /* whole rows only */
            if (c == 2) {
                int64_t lo, hi;
                memcpy(&lo, h.stats.min_value.p, 8);
                memcpy(&hi, h.stats.max_value.p, 8);
                assert_int_equal(lo, values);
                assert_int_equal(hi, values + h.num_values - 1);
            }
            values += h.num_values;
            unc += (int64_t)used + h.uncompressed_size;
            pos += used + (size_t)h.compressed_size;
            pages++;
        }
        assert_int_equal(pos, end);
        assert_int_equal(values, cm->num_values);
        assert_int_equal(unc, cm->total_uncompressed_size);
        if (expect_pages[c])
            assert_int_equal(pages, expect_pages[c]);
        else
            assert_true(pages > 10);
    }
    vl_pq_file_meta_free(&m);
    free(buf);
    rows_free(&rs);
}

/* ---- hand-built files in pyarrow's shapes ---------------------------------- */

typedef struct {
    vl_buf f;
    vl_pq_column_chunk cc[3];
    int32_t enc[3][3];
    vl_pq_bytes path[3][3];
    int c;
} fbuild;

#define BY(s) ((vl_pq_bytes){(const uint8_t *)(s), (uint32_t)strlen(s)})

static void fb_column(fbuild *b, int c, int type, int codec, const char *p0, const char *p1,
                      const char *p2)
{
    vl_pq_column_chunk *cc = &b->cc[c];
    b->c = c;
    memset(cc, 0, sizeof *cc);
    cc->file_offset = (int64_t)b->f.len;
    cc->has_meta = 1;
    cc->meta.type = type;
    cc->meta.codec = codec;
    b->enc[c][0] = VL_PQ_ENC_PLAIN;
    b->enc[c][1] = VL_PQ_ENC_RLE;
    b->enc[c][2] = VL_PQ_ENC_RLE_DICTIONARY;
    cc->meta.encodings = b->enc[c];
    cc->meta.n_encodings = 3;
    b->path[c][0] = BY(p0);
    if (p1) {
        b->path[c][1] = BY(p1);
        b->path[c][2] = BY(p2);
    }
    cc->meta.path = b->path[c];
    cc->meta.n_path = p1 ? 3 : 1;
    cc->meta.data_page_offset = -1;
}

/* Append a page; body is compressed with zstd when the column's codec says so
 * (for v2 only the part after the levels). */
static void fb_page(fbuild *b, vl_pq_page_header h, const vl_buf *body)
{
    vl_pq_column_meta *m = &b->cc[b->c].meta;
    size_t lv = h.type == VL_PQ_PAGE_DATA_V2 ? (size_t)(h.rep_bytes + h.def_bytes) : 0;
    vl_buf payload = {0};
    vl_buf_put(&payload, body->data, lv);
    if (m->codec == VL_PQ_CODEC_ZSTD && !(h.type == VL_PQ_PAGE_DATA_V2 && !h.is_compressed)) {
        size_t cap = ZSTD_compressBound(body->len - lv);
        vl_buf_reserve(&payload, cap);
        size_t n = ZSTD_compress(payload.data + lv, cap, body->data + lv, body->len - lv, 1);
        assert_false(ZSTD_isError(n));
        payload.len += n;
    } else {
        vl_buf_put(&payload, body->data + lv, body->len - lv);
    }
    h.uncompressed_size = (int32_t)body->len;
    h.compressed_size = (int32_t)payload.len;
    size_t at = b->f.len;
    vl_pq_encode_page_header(&b->f, &h);
    vl_buf_put(&b->f, payload.data, payload.len);
    if (h.type == VL_PQ_PAGE_DICTIONARY) {
        m->has_dictionary_page_offset = 1;
        m->dictionary_page_offset = (int64_t)at;
    } else {
        m->num_values += h.num_values;
        if (m->data_page_offset < 0)
            m->data_page_offset = (int64_t)at;
    }
    m->total_compressed_size += (int64_t)(b->f.len - at);
    m->total_uncompressed_size += (int64_t)(b->f.len - at - payload.len + body->len);
    vl_buf_free(&payload);
}

static vl_pq_page_header hdr(int type, int32_t nv, int enc)
{
    vl_pq_page_header h;
    memset(&h, 0, sizeof h);
    h.type = type;
    h.num_values = nv;
    h.encoding = enc;
    h.def_encoding = h.rep_encoding = VL_PQ_ENC_RLE;
    h.is_compressed = 1;
    return h;
}

static void put_v1_levels(vl_buf *b, const uint32_t *lv, size_t n, int width)
{
    vl_buf t = {0};
    vl_rle_encode(&t, lv, n, width);
    vl_buf_put_u32le(b, (uint32_t)t.len);
    vl_buf_put(b, t.data, t.len);
    vl_buf_free(&t);
}

static void put_f32(vl_buf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    vl_buf_put_u32le(b, u);
}

enum {
    V_OK,
    V_NULL_KEY,
    V_RAGGED,
    V_EMPTY_LIST,
    V_NULL_LIST,
    V_NULL_ELEM,
    V_GZIP,
    V_BAD_INDEX,
    V_NO_DICT
};

/* Three rows, dim 2, every column OPTIONAL (what pyarrow writes for
 * nullable fields), leaf named "item", two row groups:
 *   key:    dictionary page + data page v2 (RLE_DICTIONARY)
 *   vector: two zstd data pages v1; row 1 straddles them
 *   seq:    dictionary page + data page v1 (PLAIN_DICTIONARY)
 * plus a second row group holding one row in v2 pages (PLAIN, the vector
 * BYTE_STREAM_SPLIT). */
static uint8_t *build_custom(int variant, size_t *len)
{
    fbuild b;
    memset(&b, 0, sizeof b);
    vl_buf_put(&b.f, "PAR1", 4);
    vl_pq_row_group rg[2];
    memset(rg, 0, sizeof rg);
    vl_pq_column_chunk cc2[3];
    vl_buf body = {0};

    /* key */
    fb_column(&b, 0, VL_PQ_BYTE_ARRAY, VL_PQ_CODEC_UNCOMPRESSED, "key", NULL, NULL);
    const char *dict[] = {"a", "bb", "ccc"};
    for (int i = 0; i < 3; i++) {
        vl_buf_put_u32le(&body, (uint32_t)strlen(dict[i]));
        vl_buf_put(&body, dict[i], strlen(dict[i]));
    }
    if (variant != V_NO_DICT)
        fb_page(&b, hdr(VL_PQ_PAGE_DICTIONARY, 3, VL_PQ_ENC_PLAIN), &body);
    body.len = 0;
    uint32_t kdef[3] = {1, variant == V_NULL_KEY ? 0 : 1, 1};
    uint32_t kidx[3] = {2, 0, variant == V_BAD_INDEX ? 5 : 1};
    vl_rle_encode(&body, kdef, 3, 1);
    vl_pq_page_header h = hdr(VL_PQ_PAGE_DATA_V2, 3, VL_PQ_ENC_RLE_DICTIONARY);
    h.def_bytes = (int32_t)body.len;
    h.num_rows = 3;
    vl_buf_put_byte(&body, 3);
    vl_rle_encode(&body, kidx, variant == V_NULL_KEY ? 2 : 3, 3);
    fb_page(&b, h, &body);
    body.len = 0;

    /* vector: levels and values by variant */
    uint32_t rep[8], def[8];
    float vals[8];
    size_t nl = 0;
    int rows_len[3] = {2, variant == V_RAGGED ? 1 : 2, 2};
    for (int r = 0; r < 3; r++) {
        if (r == 1 && (variant == V_EMPTY_LIST || variant == V_NULL_LIST)) {
            rep[nl] = 0;
            def[nl++] = variant == V_EMPTY_LIST ? 1 : 0;
            continue;
        }
        for (int e = 0; e < rows_len[r]; e++) {
            rep[nl] = e != 0;
            def[nl] = variant == V_NULL_ELEM && r == 1 && e == 1 ? 2 : 3;
            vals[nl++] = (float)(10 * r + e) + 0.25f;
        }
    }
    fb_column(&b, 1, VL_PQ_FLOAT, VL_PQ_CODEC_ZSTD, "vector", "list", "item");
    size_t split = 3;
    for (int part = 0; part < 2; part++) {
        size_t from = part ? split : 0, to = part ? nl : split;
        put_v1_levels(&body, rep + from, to - from, 1);
        put_v1_levels(&body, def + from, to - from, 2);
        for (size_t i = from; i < to; i++)
            if (def[i] == 3)
                put_f32(&body, vals[i]);
        fb_page(&b, hdr(VL_PQ_PAGE_DATA, (int32_t)(to - from), VL_PQ_ENC_PLAIN), &body);
        body.len = 0;
    }

    /* seq */
    fb_column(&b, 2, VL_PQ_INT64, variant == V_GZIP ? VL_PQ_CODEC_GZIP : VL_PQ_CODEC_UNCOMPRESSED,
              "seq", NULL, NULL);
    for (int i = 0; i < 2; i++) {
        uint8_t le[8];
        uint64_t v = (uint64_t)(int64_t)(i ? -7 : 1000000000000LL);
        for (int k = 0; k < 8; k++)
            le[k] = (uint8_t)(v >> (8 * k));
        vl_buf_put(&body, le, 8);
    }
    fb_page(&b, hdr(VL_PQ_PAGE_DICTIONARY, 2, VL_PQ_ENC_PLAIN_DICTIONARY), &body);
    body.len = 0;
    uint32_t sdef[3] = {1, 1, 1}, sidx[3] = {1, 0, 1};
    put_v1_levels(&body, sdef, 3, 1);
    vl_buf_put_byte(&body, 1);
    vl_rle_encode(&body, sidx, 3, 1);
    fb_page(&b, hdr(VL_PQ_PAGE_DATA, 3, VL_PQ_ENC_PLAIN_DICTIONARY), &body);
    body.len = 0;
    memcpy(cc2, b.cc, sizeof cc2);
    rg[0].columns = cc2;
    rg[0].n_columns = 3;
    rg[0].num_rows = 3;

    /* row group 1: key "d", vector [5, 6], seq 42, plain v2 pages */
    fb_column(&b, 0, VL_PQ_BYTE_ARRAY, VL_PQ_CODEC_ZSTD, "key", NULL, NULL);
    uint32_t one = 1;
    vl_rle_encode(&body, &one, 1, 1);
    h = hdr(VL_PQ_PAGE_DATA_V2, 1, VL_PQ_ENC_PLAIN);
    h.def_bytes = (int32_t)body.len;
    vl_buf_put_u32le(&body, 1);
    vl_buf_put(&body, "d", 1);
    fb_page(&b, h, &body);
    body.len = 0;
    fb_column(&b, 1, VL_PQ_FLOAT, VL_PQ_CODEC_ZSTD, "vector", "list", "item");
    uint32_t r2[2] = {0, 1}, d2[2] = {3, 3};
    vl_rle_encode(&body, r2, 2, 1);
    h = hdr(VL_PQ_PAGE_DATA_V2, 2, VL_PQ_ENC_BYTE_STREAM_SPLIT);
    h.rep_bytes = (int32_t)body.len;
    size_t at = body.len;
    vl_rle_encode(&body, d2, 2, 2);
    h.def_bytes = (int32_t)(body.len - at);
    h.is_compressed = 0;
    float f56[2] = {5.0f, 6.0f};
    for (int k = 0; k < 4; k++) /* byte k of every value, then byte k + 1 */
        for (int i = 0; i < 2; i++)
            vl_buf_put_byte(&body, ((const uint8_t *)&f56[i])[k]);
    fb_page(&b, h, &body);
    body.len = 0;
    fb_column(&b, 2, VL_PQ_INT64, VL_PQ_CODEC_UNCOMPRESSED, "seq", NULL, NULL);
    vl_rle_encode(&body, &one, 1, 1);
    h = hdr(VL_PQ_PAGE_DATA_V2, 1, VL_PQ_ENC_PLAIN);
    h.def_bytes = (int32_t)body.len;
    uint8_t s42[8] = {42, 0, 0, 0, 0, 0, 0, 0};
    vl_buf_put(&body, s42, 8);
    fb_page(&b, h, &body);
    rg[1].columns = b.cc;
    rg[1].n_columns = 3;
    rg[1].num_rows = 1;

    vl_pq_schema_elem schema[6] = {
        {-1, -1, BY("schema"), 3, -1, 0},
        {VL_PQ_BYTE_ARRAY, VL_PQ_OPTIONAL, BY("key"), -1, VL_PQ_CT_UTF8, VL_PQ_LT_STRING},
        {-1, VL_PQ_OPTIONAL, BY("vector"), 1, VL_PQ_CT_LIST, VL_PQ_LT_LIST},
        {-1, VL_PQ_REPEATED, BY("list"), 1, -1, 0},
        {VL_PQ_FLOAT, VL_PQ_OPTIONAL, BY("item"), -1, -1, 0},
        {VL_PQ_INT64, VL_PQ_OPTIONAL, BY("seq"), -1, -1, 0},
    };
    vl_pq_file_meta m = {.version = 1,
                         .schema = schema,
                         .n_schema = 6,
                         .num_rows = 4,
                         .row_groups = rg,
                         .n_row_groups = 2,
                         .created_by = BY("test")};
    size_t fat = b.f.len;
    vl_pq_encode_file_meta(&b.f, &m);
    vl_buf_put_u32le(&b.f, (uint32_t)(b.f.len - fat));
    vl_buf_put(&b.f, "PAR1", 4);
    vl_buf_free(&body);
    *len = b.f.len;
    return b.f.data;
}

static void test_custom_pyarrow_shapes(void **state)
{
    (void)state;
    size_t len;
    uint8_t *buf = build_custom(V_OK, &len);
    vl_segment s;
    vl_error err = {{0}};
    vl_status st = vl_parquet_read_segment(buf, len, &s, &err);
    if (st != VL_OK)
        fail_msg("read: %s", err.msg);
    assert_int_equal(s.nrows, 4);
    assert_int_equal(s.dim, 2);
    const char *keys[] = {"ccc", "a", "bb", "d"};
    const int64_t seqs[] = {-7, 1000000000000LL, -7, 42};
    const float vecs[] = {0.25f, 1.25f, 10.25f, 11.25f, 20.25f, 21.25f, 5.0f, 6.0f};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(s.key_offs[i + 1] - s.key_offs[i], strlen(keys[i]));
        assert_memory_equal(s.key_data + s.key_offs[i], keys[i], strlen(keys[i]));
        assert_true(s.seqs[i] == seqs[i]);
    }
    assert_memory_equal(s.vecs, vecs, sizeof vecs);
    vl_segment_free(&s);
    free(buf);
}

static void expect_custom_error(int variant, const char *part1, const char *part2)
{
    size_t len;
    uint8_t *buf = build_custom(variant, &len);
    vl_segment s;
    vl_error err = {{0}};
    assert_int_equal(vl_parquet_read_segment(buf, len, &s, &err), VL_ERR_CORRUPT);
    if (!strstr(err.msg, part1) || (part2 && !strstr(err.msg, part2)))
        fail_msg("variant %d: unexpected message \"%s\"", variant, err.msg);
    assert_null(s.vecs);
    free(buf);
}

static void test_custom_errors(void **state)
{
    (void)state;
    expect_custom_error(V_NULL_KEY, "column key: row group 0: page 1", "row 1: null key");
    expect_custom_error(V_RAGGED, "column vector", "row 1: vector has 1 elements, expected 2");
    expect_custom_error(V_EMPTY_LIST, "column vector", "row 1: vector has 0 elements");
    expect_custom_error(V_NULL_LIST, "column vector: row group 0: page 0", "row 1: vector is null");
    expect_custom_error(V_NULL_ELEM, "column vector: row group 0: page 1",
                        "row 1: null vector element");
    expect_custom_error(V_GZIP, "column seq", "unsupported compression GZIP");
    expect_custom_error(V_BAD_INDEX, "column key", "dictionary index 5 out of range");
    expect_custom_error(V_NO_DICT, "column key: row group 0: page 0", "without a");
}

/* ---- damage ---------------------------------------------------------------- */

static void test_truncation_every_length(void **state)
{
    (void)state;
    rowset rs;
    rows_make(&rs, 20, 3, 1, 5);
    for (int level = 0; level <= 3; level += 3) {
        uint8_t *buf;
        size_t len;
        write_ok(&rs, level, 40, &buf, &len);
        for (size_t n = 0; n < len; n++) {
            uint8_t *cut = malloc(n ? n : 1);
            memcpy(cut, buf, n);
            vl_segment s;
            vl_error err = {{0}};
            assert_int_equal(vl_parquet_read_segment(cut, n, &s, &err), VL_ERR_CORRUPT);
            assert_true(strncmp(err.msg, "parquet: ", 9) == 0);
            free(cut);
        }
        free(buf);
    }
    rows_free(&rs);
}

/* Flip bytes everywhere: the result is an error, or rows of the right shape
 * (a flip inside float payload or a statistic is not detectable). */
static void flip_all(const uint8_t *buf, size_t len, uint64_t nrows, uint32_t dim)
{
    static const uint8_t masks[] = {0x01, 0x80, 0xff, 0x10};
    uint8_t *copy = malloc(len);
    for (size_t i = 0; i < len; i++) {
        for (size_t k = 0; k < sizeof masks; k++) {
            memcpy(copy, buf, len);
            copy[i] ^= masks[k];
            vl_segment s;
            vl_error err = {{0}};
            vl_status st = vl_parquet_read_segment(copy, len, &s, &err);
            if (st == VL_OK) {
                assert_int_equal(s.nrows, nrows);
                assert_int_equal(s.dim, dim);
                vl_segment_free(&s);
            } else {
                assert_int_equal(st, VL_ERR_CORRUPT);
                assert_true(err.msg[0] != '\0');
            }
        }
    }
    free(copy);
}

static void test_byte_flips(void **state)
{
    (void)state;
    rowset rs;
    rows_make(&rs, 12, 3, 0, 9);
    for (int level = 0; level <= 3; level += 3) {
        uint8_t *buf;
        size_t len;
        write_ok(&rs, level, 40, &buf, &len);
        flip_all(buf, len, 12, 3);
        free(buf);
    }
    rows_free(&rs);
    size_t len;
    uint8_t *buf = build_custom(V_OK, &len);
    flip_all(buf, len, 4, 2);
    free(buf);
}

static void test_random_mutations(void **state)
{
    (void)state;
    rowset rs;
    rows_make(&rs, 30, 4, 2, 13);
    uint8_t *buf;
    size_t len;
    write_ok(&rs, 3, 100, &buf, &len);
    uint8_t *copy = malloc(len);
    uint64_t seed = 99;
    for (int iter = 0; iter < 3000; iter++) {
        memcpy(copy, buf, len);
        int nflips = 1 + (int)(rnd32(&seed) % 8);
        for (int k = 0; k < nflips; k++)
            copy[rnd32(&seed) % len] = (uint8_t)rnd32(&seed);
        vl_segment s;
        vl_error err = {{0}};
        if (vl_parquet_read_segment(copy, len, &s, &err) == VL_OK)
            vl_segment_free(&s);
    }
    free(copy);
    free(buf);
    rows_free(&rs);
}

static void test_garbage_headers(void **state)
{
    (void)state;
    vl_segment s;
    vl_error err = {{0}};
    static const uint8_t tiny[] = "PAR1PAR1";
    assert_int_equal(vl_parquet_read_segment(tiny, 8, &s, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "magic"));
    uint8_t fake[32] = "PAR1";
    memcpy(fake + 24, "\xff\xff\xff\x7fPAR1", 8);
    assert_int_equal(vl_parquet_read_segment(fake, 32, &s, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "footer length"));
    memcpy(fake + 24, "\x10\x00\x00\x00PAR1", 8);
    assert_int_equal(vl_parquet_read_segment(fake, 32, &s, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "footer: "));
    assert_int_equal(vl_parquet_read_segment(NULL, 0, &s, &err), VL_ERR_CORRUPT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rle_spec_example),
        cmocka_unit_test(test_rle_roundtrip_widths),
        cmocka_unit_test(test_rle_malformed),
        cmocka_unit_test(test_roundtrip_basic),
        cmocka_unit_test(test_roundtrip_multipage),
        cmocka_unit_test(test_zero_rows),
        cmocka_unit_test(test_write_rejects_bad_args),
        cmocka_unit_test(test_metadata_and_stats),
        cmocka_unit_test(test_page_layout),
        cmocka_unit_test(test_custom_pyarrow_shapes),
        cmocka_unit_test(test_custom_errors),
        cmocka_unit_test(test_truncation_every_length),
        cmocka_unit_test(test_byte_flips),
        cmocka_unit_test(test_random_mutations),
        cmocka_unit_test(test_garbage_headers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
