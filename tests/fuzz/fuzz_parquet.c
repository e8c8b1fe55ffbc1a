/*
 * fuzz_parquet.c - the segment reader (vl_parquet_read_segment): footer,
 * Thrift metadata, schema, pages, levels, dictionaries, codecs.
 *
 * The input is a whole segment file, read from an exact-size heap copy
 * (the reader works on a file in memory; the object store only fetches
 * the bytes).  A file that decodes has consistent arrays, and when our
 * writer accepts its rows (small uncompressed pages, to cross page
 * boundaries), reading that file back gives the same rows bit for bit.
 */
#include "fuzz.h"
#include "storage/parquet.h"

static void check_rewrite(const vl_segment *s)
{
    const char **keys = malloc((s->nrows ? s->nrows : 1) * sizeof *keys);
    uint32_t *lens = malloc((s->nrows ? s->nrows : 1) * sizeof *lens);
    for (uint64_t i = 0; i < s->nrows; i++) {
        VL_FUZZ_CHECK(s->key_offs[i] <= s->key_offs[i + 1]);
        keys[i] = s->key_data + s->key_offs[i];
        lens[i] = (uint32_t)(s->key_offs[i + 1] - s->key_offs[i]);
    }
    vl_segment_rows rows = {s->nrows, s->dim, keys, lens, s->vecs, s->seqs};
    vl_parquet_options opt = {0, 256};
    uint8_t *file;
    size_t len;
    vl_error err;
    if (vl_parquet_write_segment(&rows, &opt, &file, &len, &err) == VL_OK) {
        vl_segment back;
        VL_FUZZ_CHECK(vl_parquet_read_segment(file, len, &back, &err) == VL_OK);
        VL_FUZZ_CHECK(back.nrows == s->nrows && back.dim == s->dim);
        uint64_t kbytes = s->key_offs[s->nrows] - s->key_offs[0];
        VL_FUZZ_CHECK(back.key_offs[back.nrows] - back.key_offs[0] == kbytes);
        VL_FUZZ_CHECK(memcmp(back.key_offs, s->key_offs, (s->nrows + 1) * sizeof *s->key_offs) ==
                      0);
        VL_FUZZ_CHECK(kbytes == 0 || memcmp(back.key_data, s->key_data, kbytes) == 0);
        size_t nv = (size_t)s->nrows * s->dim;
        VL_FUZZ_CHECK(nv == 0 || memcmp(back.vecs, s->vecs, nv * sizeof *s->vecs) == 0);
        VL_FUZZ_CHECK(s->nrows == 0 || memcmp(back.seqs, s->seqs, s->nrows * sizeof *s->seqs) == 0);
        vl_segment_free(&back);
        free(file);
    }
    free(keys);
    free(lens);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    memcpy(copy, data, size);
    vl_segment s;
    vl_error err = {{0}};
    if (vl_parquet_read_segment(copy, size, &s, &err) == VL_OK) {
        check_rewrite(&s);
        vl_segment_free(&s);
    } else {
        VL_FUZZ_CHECK(err.msg[0] != '\0');
    }
    free(copy);
    return 0;
}
