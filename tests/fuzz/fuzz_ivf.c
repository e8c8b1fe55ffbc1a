/*
 * fuzz_ivf.c - IVF index files (vl_ivf_load, src/core/index/ivf_io.c).
 *
 * Input: one control byte, then the index file.  With VL_FUZZ_FIX_CRC the
 * harness rewrites the last four bytes as the CRC-32C of what precedes
 * them, so mutations reach the structural checks.  The layout is canonical
 * (see ivf_io.c), so an index that loads must serialise back to exactly
 * the input, and a search on it must return distinct rows below its count
 * (re-rank vectors, needed by compressed codes, are made up by the harness
 * when the index is small enough).
 */
#include "core/index/ivf.h"
#include "fuzz.h"
#include "storage/crc32c.h"

#define MAX_FLOATS 65536u

static void check_search(const vl_ivf *ix)
{
    uint32_t dim = vl_ivf_dim(ix), count = vl_ivf_count(ix);
    uint64_t nf = (uint64_t)dim * count;
    if (nf > MAX_FLOATS)
        return;
    float *rows = malloc((nf ? nf : 1) * sizeof *rows), *q = malloc(dim * sizeof *q);
    for (uint64_t i = 0; i < nf; i++)
        rows[i] = (float)((i * 2654435761u) % 1000) / 100.0f - 5.0f;
    for (uint32_t j = 0; j < dim; j++)
        q[j] = 0.5f + (float)j;
    vl_ivf_search_opts opt = {0};
    opt.rows = rows;
    vl_ivf_hit hits[8];
    uint32_t n = 0;
    vl_error err;
    if (vl_ivf_search(ix, q, 8, &opt, hits, &n, &err) == VL_OK) {
        VL_FUZZ_CHECK(n <= 8 && n <= count);
        for (uint32_t i = 0; i < n; i++) {
            VL_FUZZ_CHECK(hits[i].row < count);
            for (uint32_t j = 0; j < i; j++)
                VL_FUZZ_CHECK(hits[j].row != hits[i].row);
        }
    }
    free(q);
    free(rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = size - 1;
    uint8_t *file = malloc(len ? len : 1);
    memcpy(file, data + 1, len);
    if ((data[0] & VL_FUZZ_FIX_CRC) && len >= 4) {
        uint32_t crc = vl_crc32c(0, file, len - 4);
        memcpy(file + len - 4, &crc, 4);
    }
    vl_ivf *ix = NULL;
    vl_error err = {{0}};
    if (vl_ivf_load(file, len, &ix, &err) == VL_OK) {
        uint8_t *again;
        size_t n;
        VL_FUZZ_CHECK(vl_ivf_serialize(ix, &again, &n, &err) == VL_OK);
        VL_FUZZ_CHECK(n == len && memcmp(again, file, len) == 0);
        free(again);
        check_search(ix);
        vl_ivf_free(ix);
    } else {
        VL_FUZZ_CHECK(ix == NULL && err.msg[0] != '\0');
    }
    free(file);
    return 0;
}
