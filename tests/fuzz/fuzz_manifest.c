/*
 * fuzz_manifest.c - manifest JSON decoding (vl_manifest_decode).
 *
 * Input: one control byte, then the manifest document.  With
 * VL_FUZZ_FIX_CRC the harness rewrites the value of the last "crc32c"
 * member to the document's real checksum first, so mutations get past
 * the checksum into the JSON decoding.  A manifest that decodes must
 * encode, and its encoding must decode to the same manifest.
 */
#include "fuzz.h"
#include "storage/crc32c.h"
#include "storage/manifest.h"

static void fix_crc(char *doc, size_t len)
{
    static const char key[] = "\"crc32c\":\"";
    char *last = NULL;
    for (char *p = doc; (p = memmem(p, len - (size_t)(p - doc), key, sizeof key - 1)); p++)
        last = p;
    if (!last || (size_t)(last - doc) + sizeof key - 1 + 8 > len)
        return;
    char *hex = last + sizeof key - 1, digits[9];
    memset(hex, '0', 8);
    snprintf(digits, sizeof digits, "%08x", vl_crc32c(0, doc, len));
    memcpy(hex, digits, 8);
}

static void check_same(const vl_manifest *a, const vl_manifest *b)
{
    VL_FUZZ_CHECK(strcmp(a->collection, b->collection) == 0);
    VL_FUZZ_CHECK(a->version == b->version && a->parent == b->parent);
    VL_FUZZ_CHECK(a->created_ms == b->created_ms && a->dim == b->dim && a->metric == b->metric);
    VL_FUZZ_CHECK(a->wal_lsn == b->wal_lsn && a->live_rows == b->live_rows);
    VL_FUZZ_CHECK(a->nsegs == b->nsegs);
    for (size_t i = 0; i < a->nsegs; i++)
        VL_FUZZ_CHECK(memcmp(&a->segs[i], &b->segs[i], sizeof a->segs[i]) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = size - 1;
    char *doc = malloc(len ? len : 1);
    memcpy(doc, data + 1, len);
    if (data[0] & VL_FUZZ_FIX_CRC)
        fix_crc(doc, len);
    vl_manifest m, back;
    vl_error err = {{0}};
    if (vl_manifest_decode(doc, len, "fuzz", &m, &err) == VL_OK) {
        char *text;
        size_t n;
        VL_FUZZ_CHECK(vl_manifest_encode(&m, &text, &n, &err) == VL_OK);
        VL_FUZZ_CHECK(vl_manifest_decode(text, n, "fuzz", &back, &err) == VL_OK);
        check_same(&m, &back);
        free(text);
        vl_manifest_free(&back);
        vl_manifest_free(&m);
    } else {
        VL_FUZZ_CHECK(err.msg[0] != '\0' && m.segs == NULL);
    }
    free(doc);
    return 0;
}
