/*
 * fuzz_hnsw.c - HNSW index files (vl_hnsw_load, src/core/index/hnsw_io.c).
 *
 * Input: one control byte, then the index body.  The segment's vectors
 * are made up by the harness from the header's dim and count (capped at
 * 4096 floats; larger claims get no vectors and must be refused), with the
 * same formula gen_corpus.c builds the seeds from.  With VL_FUZZ_FIX_CRC
 * the harness writes the vectors' CRC, the body length and the trailing
 * CRC into the body first, so mutations reach the graph checks.  An index
 * that loads answers a search with distinct rows below its count, and
 * saves back to the bytes it was loaded from (the SQ8 map's two floats
 * compared by value: a stored -0 loads as 0; a version 1 body saves as
 * version 2, see check_loaded).
 */
#include "core/index/hnsw.h"
#include "fuzz.h"
#include "storage/crc32c.h"

#define MAX_FLOATS 4096u

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void check_loaded(vl_hnsw *h, const uint8_t *body, size_t len, const float *vecs,
                         uint32_t count, uint32_t dim)
{
    vl_error err;
    if (count > 0) {
        vl_hnsw_hit hits[8];
        uint32_t n = 0;
        VL_FUZZ_CHECK(vl_hnsw_search(h, vecs, 8, 16, NULL, NULL, hits, &n, &err) == VL_OK);
        VL_FUZZ_CHECK(n <= 8 && n <= count);
        for (uint32_t i = 0; i < n; i++) {
            VL_FUZZ_CHECK(hits[i].row < count);
            for (uint32_t j = 0; j < i; j++)
                VL_FUZZ_CHECK(hits[j].row != hits[i].row);
        }
    }
    VL_FUZZ_CHECK(vl_hnsw_count(h) == count && vl_hnsw_dim(h) == dim);
    uint8_t *again;
    size_t n;
    VL_FUZZ_CHECK(vl_hnsw_save(h, &again, &n, &err) == VL_OK);
    /* The same bytes, except that the SQ8 map's floats compare by value
     * (-0 is read as 0) and so the trailing CRC may differ with them.  A
     * version 1 body saves as version 2: its bytes up to its CRC again
     * except the version and the length, then (SQ8) the codes. */
    int v1 = rd32(body + 8) == 1;
    VL_FUZZ_CHECK(v1 ? n >= len && rd32(again + 8) == 2 : n == len);
    VL_FUZZ_CHECK(memcmp(again, body, 8) == 0 && memcmp(again + 12, body + 12, 52) == 0);
    VL_FUZZ_CHECK(v1 || memcmp(again + 64, body + 64, 8) == 0);
    VL_FUZZ_CHECK(memcmp(again + 72, body + 72, 4) == 0);
    VL_FUZZ_CHECK(memcmp(again + 84, body + 84, len - 88) == 0);
    float a[2], b[2];
    memcpy(a, again + 76, 8);
    memcpy(b, body + 76, 8);
    VL_FUZZ_CHECK(a[0] == b[0] && a[1] == b[1]);
    free(again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = size - 1;
    uint8_t *body = malloc(len ? len : 1);
    memcpy(body, data + 1, len);
    uint32_t dim = len >= 88 ? rd32(body + 12) : 1, count = len >= 88 ? rd32(body + 48) : 0;
    float *vecs = NULL;
    uint64_t nf = (uint64_t)dim * count;
    if (nf <= MAX_FLOATS) {
        vecs = malloc((nf ? nf : 1) * sizeof *vecs);
        for (uint64_t i = 0; i < nf; i++)
            vecs[i] = (float)((i * 2654435761u) % 1000) / 100.0f - 5.0f;
    } else {
        count = 0; /* the body claims more rows than the segment has */
    }
    if ((data[0] & VL_FUZZ_FIX_CRC) && len >= 92) {
        wr32(body + 60, vecs ? vl_crc32c(0, vecs, nf * sizeof *vecs) : 0);
        for (int i = 0; i < 8; i++)
            body[64 + i] = (uint8_t)((uint64_t)len >> (8 * i));
        wr32(body + len - 4, vl_crc32c(0, body, len - 4));
    }
    vl_hnsw *h = NULL;
    vl_error err = {{0}};
    if (vl_hnsw_load(body, len, vecs, count, dim, &h, &err) == VL_OK) {
        check_loaded(h, body, len, vecs, count, dim);
        vl_hnsw_free(h);
    } else {
        VL_FUZZ_CHECK(h == NULL && err.msg[0] != '\0');
    }
    free(vecs);
    free(body);
    return 0;
}
