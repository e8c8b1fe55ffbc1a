/*
 * fuzz_thrift.c - the Thrift compact reader and the Parquet metadata
 * decoders on top of it (FileMetaData, PageHeader), without the rest of
 * the file around them.
 *
 * Input: one byte choosing the struct (bit 0: page header, else file
 * metadata), then the encoded struct.  A struct that decodes must
 * re-encode to bytes that decode again, and re-encoding that second
 * decoding must give the same bytes (encode . decode is a projection:
 * applying it twice changes nothing).
 */
#include "fuzz.h"
#include "storage/parquet_meta.h"

static void file_meta(const uint8_t *p, size_t len)
{
    vl_pq_file_meta m, back;
    const char *why = NULL;
    if (vl_pq_decode_file_meta(p, len, &m, &why) != 0) {
        VL_FUZZ_CHECK(why != NULL); /* the decoder freed m */
        return;
    }
    vl_buf once = {0}, twice = {0};
    vl_pq_encode_file_meta(&once, &m);
    VL_FUZZ_CHECK(vl_pq_decode_file_meta(once.data, once.len, &back, &why) == 0);
    vl_pq_encode_file_meta(&twice, &back);
    VL_FUZZ_CHECK(twice.len == once.len && memcmp(twice.data, once.data, once.len) == 0);
    vl_pq_file_meta_free(&back);
    vl_pq_file_meta_free(&m);
    vl_buf_free(&once);
    vl_buf_free(&twice);
}

static void page_header(const uint8_t *p, size_t len)
{
    vl_pq_page_header h, back;
    const char *why = NULL;
    size_t used = 0, used2 = 0;
    if (vl_pq_decode_page_header(p, len, &h, &used, &why) != 0) {
        VL_FUZZ_CHECK(why != NULL);
        return;
    }
    VL_FUZZ_CHECK(used > 0 && used <= len);
    vl_buf once = {0}, twice = {0};
    vl_pq_encode_page_header(&once, &h);
    VL_FUZZ_CHECK(vl_pq_decode_page_header(once.data, once.len, &back, &used2, &why) == 0);
    VL_FUZZ_CHECK(used2 == once.len);
    vl_pq_encode_page_header(&twice, &back);
    VL_FUZZ_CHECK(twice.len == once.len && memcmp(twice.data, once.data, once.len) == 0);
    vl_buf_free(&once);
    vl_buf_free(&twice);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    uint8_t *copy = malloc(size - 1 ? size - 1 : 1); /* exact size: overreads are reported */
    memcpy(copy, data + 1, size - 1);
    if (data[0] & 1)
        page_header(copy, size - 1);
    else
        file_meta(copy, size - 1);
    free(copy);
    return 0;
}
