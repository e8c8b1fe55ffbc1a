/* test_manifest.c - manifests (JSON + embedded CRC, put_if_absent commits,
 * version listing) and deletion files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "testutil.h"

#include <stdlib.h>
#include <string.h>

#include "storage/crc32c.h"
#include "storage/deletes.h"
#include "storage/manifest.h"

static vl_manifest sample(uint64_t version, size_t nsegs)
{
    vl_manifest m;
    memset(&m, 0, sizeof m);
    strcpy(m.collection, "default");
    m.version = version;
    m.parent = version - 1;
    m.created_ms = 1795684308566;
    m.dim = 128;
    m.metric = VL_METRIC_L2;
    m.wal_lsn = 4500 + version;
    m.nsegs = nsegs;
    m.segs = calloc(nsegs + 1, sizeof *m.segs);
    for (size_t i = 0; i < nsegs; i++) {
        vl_manifest_segment *g = &m.segs[i];
        snprintf(g->name, sizeof g->name, "tables/default/segments/%020zu-0000abcd.parquet", i + 1);
        g->rows = 1000 + i;
        g->bytes = 123456 + i;
        g->crc32c = 0xdeadbeefu - (uint32_t)i;
        g->min_seq = 1;
        g->max_seq = (int64_t)(1000 + i);
        if (i % 2) {
            snprintf(g->del_name, sizeof g->del_name, "tables/default/deletes/x-%zu.del", i);
            g->del_count = 7;
            g->del_bytes = 48;
            g->del_crc32c = 0x01020304;
        }
        if (i % 3 != 1) { /* an index file on some segments; none on others (old manifests) */
            snprintf(g->idx.name, sizeof g->idx.name, "tables/default/indexes/x-%zu.hnsw", i);
            g->idx.kind = i % 3 ? VL_INDEX_IVF : VL_INDEX_HNSW;
            g->idx.bytes = 4096 + i;
            g->idx.crc32c = 0x0a0b0c0du + (uint32_t)i;
        }
        m.live_rows += g->rows - g->del_count;
    }
    return m;
}

static void test_roundtrip(void **state)
{
    (void)state;
    vl_manifest m = sample(3, 4), back;
    char *text;
    size_t len;
    vl_error err;
    assert_int_equal(vl_manifest_encode(&m, &text, &len, &err), VL_OK);
    assert_int_equal(vl_manifest_decode(text, len, "m", &back, &err), VL_OK);
    assert_string_equal(back.collection, "default");
    assert_int_equal(back.version, 3);
    assert_int_equal(back.parent, 2);
    assert_int_equal(back.created_ms, m.created_ms);
    assert_int_equal(back.dim, 128);
    assert_int_equal(back.metric, VL_METRIC_L2);
    assert_int_equal(back.wal_lsn, m.wal_lsn);
    assert_int_equal(back.live_rows, m.live_rows);
    assert_int_equal(back.nsegs, 4);
    for (size_t i = 0; i < 4; i++) {
        assert_memory_equal(&back.segs[i], &m.segs[i], sizeof m.segs[i]);
    }
    vl_manifest_free(&back);
    vl_manifest_free(&m);
    free(text);
}

/* Any single changed byte is caught: by the CRC, or by the JSON parser. */
static void test_every_byte_flip_detected(void **state)
{
    (void)state;
    vl_manifest m = sample(9, 2), back;
    char *text;
    size_t len;
    vl_error err;
    assert_int_equal(vl_manifest_encode(&m, &text, &len, &err), VL_OK);
    for (size_t i = 0; i < len; i++) {
        char saved = text[i];
        text[i] = (char)(saved ^ 0x01);
        vl_status st =
            vl_manifest_decode(text, len, "tables/default/manifests/x.json", &back, &err);
        assert_int_equal(st, VL_ERR_CORRUPT);
        assert_non_null(strstr(err.msg, "tables/default/manifests/x.json"));
        text[i] = saved;
    }
    for (size_t cut = 0; cut < len; cut += 7)
        assert_int_equal(vl_manifest_decode(text, cut, "m", &back, &err), VL_ERR_CORRUPT);
    vl_manifest_free(&m);
    free(text);
}

static void test_rejects_bad_fields(void **state)
{
    (void)state;
    vl_manifest back;
    vl_error err;
    const char *not_manifest = "{\"format\":\"other\",\"crc32c\":\"00000000\"}";
    assert_int_equal(vl_manifest_decode(not_manifest, strlen(not_manifest), "m", &back, &err),
                     VL_ERR_CORRUPT);
}

/* Found by fuzz_manifest: a segment whose CRC is 0 wrote the member
 * "crc32c":"00000000" before the document's own, and the encoder took
 * that one for the placeholder and refused the manifest. */
static void test_segment_crc_zero_encodes(void **state)
{
    (void)state;
    vl_manifest m = sample(4, 2), back;
    m.segs[0].crc32c = 0;
    m.segs[1].del_crc32c = 0;
    char *text;
    size_t len;
    vl_error err;
    assert_int_equal(vl_manifest_encode(&m, &text, &len, &err), VL_OK);
    assert_int_equal(vl_manifest_decode(text, len, "m", &back, &err), VL_OK);
    assert_int_equal(back.segs[0].crc32c, 0);
    assert_int_equal(back.segs[1].del_crc32c, 0);
    vl_manifest_free(&back);
    vl_manifest_free(&m);
    free(text);
}

/* Replace the first occurrence of from in *text by to, then rewrite the
 * document checksum so only the edit can make the decoder refuse it. */
static void edit_and_recrc(char **text, size_t *len, const char *from, const char *to)
{
    char *at = strstr(*text, from);
    assert_non_null(at);
    size_t pre = (size_t)(at - *text), nf = strlen(from), nt = strlen(to);
    char *out = malloc(*len - nf + nt + 1);
    memcpy(out, *text, pre);
    memcpy(out + pre, to, nt);
    memcpy(out + pre + nt, at + nf, *len - pre - nf + 1);
    *len = *len - nf + nt;
    free(*text);
    char *hex = out + *len - 10; /* ..."crc32c":"xxxxxxxx"} */
    memset(hex, '0', 8);
    char digits[9];
    snprintf(digits, sizeof digits, "%08x", vl_crc32c(0, out, *len));
    memcpy(hex, digits, 8);
    *text = out;
}

/* Found by fuzz_manifest: "deletes" with an empty name decoded into a
 * segment that counts deleted rows but has no deletion file. */
static void test_rejects_empty_names(void **state)
{
    (void)state;
    vl_manifest m = sample(5, 2), back;
    char *text;
    size_t len;
    vl_error err;
    assert_int_equal(vl_manifest_encode(&m, &text, &len, &err), VL_OK);
    edit_and_recrc(&text, &len, "\"tables/default/deletes/x-1.del\"", "\"\"");
    assert_int_equal(vl_manifest_decode(text, len, "m", &back, &err), VL_ERR_CORRUPT);
    assert_non_null(strstr(err.msg, "\"name\""));
    free(text);
    assert_int_equal(vl_manifest_encode(&m, &text, &len, &err), VL_OK);
    edit_and_recrc(&text, &len, "\"tables/default/segments/00000000000000000001-0000abcd.parquet\"",
                   "\"\"");
    assert_int_equal(vl_manifest_decode(text, len, "m", &back, &err), VL_ERR_CORRUPT);
    free(text);
    vl_manifest_free(&m);
}

static void test_commit_versions_and_conflict(void **state)
{
    (void)state;
    char dir[64];
    assert_non_null(vl_test_tmpdir(dir, sizeof dir, "manifest"));
    vl_objstore *s;
    vl_error err;
    assert_int_equal(vl_objstore_local_open(dir, &s, &err), VL_OK);
    for (uint64_t v = 1; v <= 12; v++) {
        vl_manifest m = sample(v, (size_t)v % 3);
        assert_int_equal(vl_manifest_commit(s, &m, &err), VL_OK);
        vl_manifest_free(&m);
    }
    vl_manifest again = sample(7, 1);
    assert_int_equal(vl_manifest_commit(s, &again, &err), VL_ERR_CONFLICT);
    vl_manifest_free(&again);
    uint64_t *vs;
    size_t n;
    assert_int_equal(vl_manifest_versions(s, "default", &vs, &n, &err), VL_OK);
    assert_int_equal(n, 12);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(vs[i], i + 1); /* numeric order, 10 after 9 */
    free(vs);
    vl_manifest m;
    assert_int_equal(vl_manifest_load(s, "default", 7, &m, &err), VL_OK);
    assert_int_equal(m.version, 7);
    assert_int_equal(m.nsegs, 1);
    vl_manifest_free(&m);
    assert_int_equal(vl_manifest_load(s, "default", 99, &m, &err), VL_ERR_NOTFOUND);
    vl_obj_close(s);
    vl_test_rmtree(dir);
}

static void test_deletes_roundtrip_and_damage(void **state)
{
    (void)state;
    uint32_t rows[] = {0, 3, 4, 99, 1000};
    uint8_t *buf;
    size_t len;
    vl_deletes_encode(rows, 5, &buf, &len);
    uint32_t *back;
    uint64_t n;
    vl_error err;
    assert_int_equal(vl_deletes_decode(buf, len, 1001, "d", &back, &n, &err), VL_OK);
    assert_int_equal(n, 5);
    assert_memory_equal(back, rows, sizeof rows);
    free(back);
    /* a row beyond the segment */
    assert_int_equal(vl_deletes_decode(buf, len, 1000, "d", &back, &n, &err), VL_ERR_CORRUPT);
    for (size_t i = 0; i < len; i++) {
        buf[i] ^= 0x40;
        assert_int_equal(vl_deletes_decode(buf, len, 1001, "del", &back, &n, &err), VL_ERR_CORRUPT);
        assert_non_null(strstr(err.msg, "del"));
        buf[i] ^= 0x40;
    }
    for (size_t cut = 0; cut < len; cut++)
        assert_int_equal(vl_deletes_decode(buf, cut, 1001, "d", &back, &n, &err), VL_ERR_CORRUPT);
    free(buf);
    vl_deletes_encode(NULL, 0, &buf, &len);
    assert_int_equal(vl_deletes_decode(buf, len, 0, "d", &back, &n, &err), VL_OK);
    assert_int_equal(n, 0);
    free(back);
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_every_byte_flip_detected),
        cmocka_unit_test(test_rejects_bad_fields),
        cmocka_unit_test(test_segment_crc_zero_encodes),
        cmocka_unit_test(test_rejects_empty_names),
        cmocka_unit_test(test_commit_versions_and_conflict),
        cmocka_unit_test(test_deletes_roundtrip_and_damage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
