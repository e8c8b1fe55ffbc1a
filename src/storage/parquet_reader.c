/*
 * parquet_reader.c - decode a segment from a Parquet file in memory.
 *
 * Accepts what we write and what pyarrow writes for the same schema:
 *  - the three top-level columns key (BYTE_ARRAY), vector (3-level LIST of
 *    FLOAT, leaf named "element" or "item") and seq (INT64), in any order;
 *    any of them may be OPTIONAL instead of REQUIRED as long as no value,
 *    list or element is actually null;
 *  - any number of row groups; data pages v1 and v2; PLAIN values and
 *    dictionary pages with PLAIN_DICTIONARY / RLE_DICTIONARY indices;
 *    codecs UNCOMPRESSED, SNAPPY and ZSTD; BYTE_STREAM_SPLIT floats/seqs.
 * Rows are rebuilt from repetition levels (a new row starts at level 0),
 * so a row may straddle data pages (older writers do that).  The dimension
 * comes from the "vexlake.dim" footer entry if present, else from the
 * first row; every row must have exactly that many elements.
 *
 * Vector pages in the layout every writer of this schema produces (PLAIN
 * floats, whole rows of `dim` present elements) are taken a row at a time
 * (take_rows); anything else is read element by element, which is also
 * where every malformed level or row is reported.  Level checks that
 * cannot fail (a maximum level of 2^width - 1: every decoded value is
 * valid) are skipped.  Both were a sixth of a server start's CPU at 1M.
 *
 * Untrusted lengths: every offset and size is checked against the buffer;
 * the value counts the footer declares (which size our output arrays) may
 * not exceed MAX_EXPANSION times the file size plus a small allowance, and
 * no page may decompress to more than that either, so a small hostile file
 * cannot make us allocate gigabytes.
 */
#include <snappy-c.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "storage/parquet.h"
#include "storage/parquet_meta.h"
#include "storage/rle_levels.h"
#include "util/alloc.h"
#include "util/error.h"

/* take_rows copies PLAIN (little-endian) floats as they are: on another
 * host every row goes element by element, through next_float. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#define HOST_LITTLE_ENDIAN 0
#else
#define HOST_LITTLE_ENDIAN 1
#endif

#define MAX_EXPANSION 1024u
#define EXPANSION_ALLOWANCE (1u << 20)
#define MAX_FOOTER (64u << 20)

enum { COL_KEY = 0, COL_VEC = 1, COL_SEQ = 2 };
static const char *const col_names[3] = {"key", "vector", "seq"};

/* One leaf column as the schema describes it. */
typedef struct {
    int kind;  /* COL_* */
    int ptype; /* physical type */
    int max_def, max_rep;
    int list_def; /* vector: definition level of a present but empty list */
    vl_pq_bytes path[3];
    uint32_t npath;
} leaf;

/* A dictionary page's values. */
typedef struct {
    uint32_t n;
    uint8_t *data;        /* byte arrays: the decompressed page, owned */
    const uint8_t **kptr; /* byte arrays: entry i at kptr[i], klen[i] bytes */
    uint32_t *klen;
    float *f;
    int64_t *i64;
} dictionary;

typedef struct {
    const uint8_t *buf;
    size_t len;
    vl_error *err;
    uint64_t limit; /* largest value count / decompressed size we accept */
    vl_pq_file_meta fm;
    leaf leaves[3];
    /* current position, for messages */
    const leaf *lf;
    uint32_t rg;
    int page; /* -1: not inside a page */
    /* output */
    uint64_t nrows; /* declared */
    uint64_t nvals; /* declared vector values */
    uint64_t key_rows, seq_rows, vec_rows, vals;
    uint32_t dim, row_len; /* row_len: elements of the open vector row */
    int dim_known, row_open;
    vl_buf keys;
    uint64_t *key_offs;
    int64_t *seqs;
    float *vecs;
    /* scratch */
    vl_buf scratch;
    vl_buf unsplit; /* BYTE_STREAM_SPLIT values put back in PLAIN order */
    uint32_t *rep, *def, *idx;
    size_t lv_cap, idx_cap;
} reader;

static vl_status rfail(reader *r, const char *fmt, ...) VL_PRINTF(2, 3);

static vl_status rfail(reader *r, const char *fmt, ...)
{
    char msg[192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!r->lf)
        return vl_fail(r->err, VL_ERR_CORRUPT, "parquet: %s", msg);
    const char *name = col_names[r->lf->kind];
    if (r->page < 0)
        return vl_fail(r->err, VL_ERR_CORRUPT, "parquet: column %s: row group %u: %s", name, r->rg,
                       msg);
    return vl_fail(r->err, VL_ERR_CORRUPT, "parquet: column %s: row group %u: page %d: %s", name,
                   r->rg, r->page, msg);
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t le64(const uint8_t *p)
{
    return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32;
}

static int bytes_eq(vl_pq_bytes b, const char *s)
{
    size_t n = strlen(s);
    return b.n == n && memcmp(b.p, s, n) == 0;
}

/* ---- schema ---------------------------------------------------------------- */

static int rep_ok(int rep)
{
    return rep == VL_PQ_REQUIRED || rep == VL_PQ_OPTIONAL;
}

static vl_status check_flat(reader *r, const vl_pq_schema_elem *e, leaf *lf, int kind, int ptype)
{
    if (e->num_children > 0 || e->type != ptype || !rep_ok(e->repetition))
        return rfail(r, "schema: column %s must be a %s %s", col_names[kind],
                     "required or optional", ptype == VL_PQ_INT64 ? "INT64" : "BYTE_ARRAY");
    lf->kind = kind;
    lf->ptype = ptype;
    lf->max_def = e->repetition == VL_PQ_OPTIONAL;
    lf->max_rep = 0;
    lf->path[0] = e->name;
    lf->npath = 1;
    return VL_OK;
}

/* schema[*i] is the vector group; consumes it and its two descendants. */
static vl_status check_vector(reader *r, uint32_t *i, leaf *lf)
{
    if (*i + 2 >= r->fm.n_schema)
        return rfail(r, "schema: column vector is incomplete");
    const vl_pq_schema_elem *g = &r->fm.schema[*i], *l = g + 1, *e = g + 2;
    if (g->num_children != 1 || g->type >= 0 || !rep_ok(g->repetition))
        return rfail(r, "schema: column vector must be a group with one child");
    if (l->num_children != 1 || l->type >= 0 || l->repetition != VL_PQ_REPEATED)
        return rfail(r, "schema: vector.%.*s must be a repeated group with one child",
                     (int)l->name.n, (const char *)l->name.p);
    if (e->num_children > 0 || e->type != VL_PQ_FLOAT || !rep_ok(e->repetition) ||
        !(bytes_eq(e->name, "element") || bytes_eq(e->name, "item")))
        return rfail(r, "schema: the vector list must hold FLOAT leaves named element or item");
    int outer = g->repetition == VL_PQ_OPTIONAL;
    lf->kind = COL_VEC;
    lf->ptype = VL_PQ_FLOAT;
    lf->list_def = outer + 1;
    lf->max_def = outer + 1 + (e->repetition == VL_PQ_OPTIONAL);
    lf->max_rep = 1;
    lf->path[0] = g->name;
    lf->path[1] = l->name;
    lf->path[2] = e->name;
    lf->npath = 3;
    *i += 3;
    return VL_OK;
}

static vl_status check_schema(reader *r)
{
    const vl_pq_file_meta *m = &r->fm;
    if (m->n_schema < 1 || m->schema[0].num_children != 3)
        return rfail(r, "schema: expected 3 top-level columns (key, vector, seq)");
    int seen[3] = {0, 0, 0};
    uint32_t i = 1;
    for (int c = 0; c < 3; c++) {
        if (i >= m->n_schema)
            return rfail(r, "schema: ends before column %d", c);
        const vl_pq_schema_elem *e = &m->schema[i];
        vl_status st;
        int kind;
        if (bytes_eq(e->name, "key")) {
            kind = COL_KEY;
            st = check_flat(r, e, &r->leaves[c], kind, VL_PQ_BYTE_ARRAY);
            i++;
        } else if (bytes_eq(e->name, "seq")) {
            kind = COL_SEQ;
            st = check_flat(r, e, &r->leaves[c], kind, VL_PQ_INT64);
            i++;
        } else if (bytes_eq(e->name, "vector")) {
            kind = COL_VEC;
            st = check_vector(r, &i, &r->leaves[c]);
        } else {
            return rfail(r, "schema: unexpected column \"%.*s\"",
                         (int)(e->name.n > 64 ? 64 : e->name.n), (const char *)e->name.p);
        }
        if (st != VL_OK)
            return st;
        if (seen[kind]++)
            return rfail(r, "schema: column %s appears twice", col_names[kind]);
    }
    if (i != m->n_schema)
        return rfail(r, "schema: unexpected elements after the three columns");
    return VL_OK;
}

/* ---- footer ---------------------------------------------------------------- */

static vl_status parse_dim(reader *r)
{
    for (uint32_t k = 0; k < r->fm.n_kv; k++) {
        const vl_pq_kv *kv = &r->fm.kv[k];
        if (!bytes_eq(kv->key, "vexlake.dim"))
            continue;
        uint64_t d = 0;
        if (!kv->value.p || kv->value.n == 0 || kv->value.n > 6)
            return rfail(r, "metadata vexlake.dim is not a number");
        for (uint32_t j = 0; j < kv->value.n; j++) {
            uint8_t ch = kv->value.p[j];
            if (ch < '0' || ch > '9')
                return rfail(r, "metadata vexlake.dim is not a number");
            d = d * 10 + (ch - '0');
        }
        if (d > VL_MAX_DIM || (d == 0 && r->nrows > 0))
            return rfail(r, "metadata vexlake.dim %llu out of range", (unsigned long long)d);
        r->dim = (uint32_t)d;
        r->dim_known = 1;
    }
    return VL_OK;
}

/* Check the row groups' declared counts and size the output arrays. */
static vl_status check_counts(reader *r)
{
    const vl_pq_file_meta *m = &r->fm;
    uint64_t rows = 0, vals = 0;
    if (m->num_rows < 0)
        return rfail(r, "negative num_rows");
    for (uint32_t g = 0; g < m->n_row_groups; g++) {
        const vl_pq_row_group *rg = &m->row_groups[g];
        r->rg = g;
        if (rg->num_rows < 0 || (uint64_t)rg->num_rows > r->limit)
            return rfail(r, "row group %u: bad num_rows %lld", g, (long long)rg->num_rows);
        if (rg->n_columns != 3)
            return rfail(r, "row group %u: %u column chunks, expected 3", g, rg->n_columns);
        rows += (uint64_t)rg->num_rows;
        for (int c = 0; c < 3; c++) {
            const vl_pq_column_chunk *cc = &rg->columns[c];
            r->lf = &r->leaves[c];
            if (!cc->has_meta || cc->has_file_path)
                return rfail(r, "column chunk has no inline metadata");
            const vl_pq_column_meta *cm = &cc->meta;
            if (cm->type != r->lf->ptype)
                return rfail(r, "column chunk has physical type %d", cm->type);
            int same = cm->n_path == r->lf->npath;
            for (uint32_t k = 0; same && k < cm->n_path; k++)
                same = cm->path[k].n == r->lf->path[k].n &&
                       memcmp(cm->path[k].p, r->lf->path[k].p, cm->path[k].n) == 0;
            if (!same)
                return rfail(r, "column chunk path does not match the schema");
            if (cm->num_values < 0 || (uint64_t)cm->num_values > r->limit)
                return rfail(r, "bad num_values %lld", (long long)cm->num_values);
            if (r->lf->kind == COL_VEC)
                vals += (uint64_t)cm->num_values;
        }
        r->lf = NULL;
        if (rows > r->limit || vals > r->limit)
            return rfail(r, "declared %llu rows / %llu values: too many for a %zu-byte file",
                         (unsigned long long)rows, (unsigned long long)vals, r->len);
    }
    if (rows != (uint64_t)m->num_rows)
        return rfail(r, "num_rows %lld differs from the row groups' total %llu",
                     (long long)m->num_rows, (unsigned long long)rows);
    r->nrows = rows;
    r->nvals = vals;
    r->key_offs = vl_malloc((rows + 1) * sizeof *r->key_offs);
    r->key_offs[0] = 0;
    r->seqs = vl_malloc((rows ? rows : 1) * sizeof *r->seqs);
    r->vecs = vl_aligned_alloc((vals ? vals : 1) * sizeof *r->vecs);
    return VL_OK;
}

static vl_status read_footer(reader *r)
{
    if (r->len < 12 || memcmp(r->buf, "PAR1", 4) != 0)
        return rfail(r, "not a parquet file (no leading PAR1 magic)");
    if (memcmp(r->buf + r->len - 4, "PAR1", 4) != 0)
        return rfail(r, "no trailing PAR1 magic (truncated or encrypted file?)");
    uint32_t flen = le32(r->buf + r->len - 8);
    if (flen == 0 || flen > r->len - 12 || flen > MAX_FOOTER)
        return rfail(r, "footer length %u does not fit the %zu-byte file", flen, r->len);
    const char *why = NULL;
    const uint8_t *footer = r->buf + r->len - 8 - flen;
    if (vl_pq_decode_file_meta(footer, flen, &r->fm, &why) < 0)
        return rfail(r, "footer: %s", why);
    return VL_OK;
}

/* ---- pages ----------------------------------------------------------------- */

static const char *codec_name(int c)
{
    static const char *const names[] = {"UNCOMPRESSED", "SNAPPY", "GZIP", "LZO",
                                        "BROTLI",       "LZ4",    "ZSTD", "LZ4_RAW"};
    return c >= 0 && c < 8 ? names[c] : "unknown";
}

/* Decompress src[0..n) into exactly want bytes; *out points at the result
 * (src itself when stored uncompressed, else r->scratch). */
static vl_status decompress(reader *r, int codec, const uint8_t *src, size_t n, size_t want,
                            const uint8_t **out)
{
    if (codec == VL_PQ_CODEC_UNCOMPRESSED) {
        if (n != want)
            return rfail(r, "stored page is %zu bytes, header says %zu", n, want);
        *out = src;
        return VL_OK;
    }
    if (want > r->limit)
        return rfail(r, "page claims %zu uncompressed bytes", want);
    r->scratch.len = 0;
    vl_buf_reserve(&r->scratch, want + 1);
    if (codec == VL_PQ_CODEC_ZSTD) {
        size_t got = ZSTD_decompress(r->scratch.data, want, src, n);
        if (ZSTD_isError(got))
            return rfail(r, "zstd: %s", ZSTD_getErrorName(got));
        if (got != want)
            return rfail(r, "zstd data is %zu bytes, header says %zu", got, want);
    } else if (codec == VL_PQ_CODEC_SNAPPY) {
        size_t got;
        if (snappy_uncompressed_length((const char *)src, n, &got) != SNAPPY_OK || got != want)
            return rfail(r, "snappy data does not decompress to %zu bytes", want);
        if (snappy_uncompress((const char *)src, n, (char *)r->scratch.data, &got) != SNAPPY_OK ||
            got != want)
            return rfail(r, "snappy data is corrupt");
    } else {
        return rfail(r, "unsupported compression %s", codec_name(codec));
    }
    *out = r->scratch.data;
    return VL_OK;
}

static void dict_free(dictionary *d)
{
    free(d->data);
    free(d->kptr);
    free(d->klen);
    free(d->f);
    free(d->i64);
    memset(d, 0, sizeof *d);
}

static vl_status read_dict(reader *r, const vl_pq_page_header *h, const uint8_t *p, size_t n,
                           dictionary *d)
{
    if (h->encoding != VL_PQ_ENC_PLAIN && h->encoding != VL_PQ_ENC_PLAIN_DICTIONARY)
        return rfail(r, "dictionary page encoding %d unsupported", h->encoding);
    if (h->num_values < 0)
        return rfail(r, "dictionary page has %d values", h->num_values);
    uint32_t nv = (uint32_t)h->num_values;
    int type = r->lf->ptype;
    size_t width = type == VL_PQ_BYTE_ARRAY ? 4 : type == VL_PQ_FLOAT ? 4 : 8;
    if ((uint64_t)nv * width > n)
        return rfail(r, "dictionary page too short for %u values", nv);
    d->n = nv;
    if (type == VL_PQ_FLOAT) {
        d->f = vl_malloc((nv ? nv : 1) * sizeof *d->f);
        for (uint32_t i = 0; i < nv; i++) {
            uint32_t u = le32(p + 4 * i);
            memcpy(&d->f[i], &u, 4);
        }
    } else if (type == VL_PQ_INT64) {
        d->i64 = vl_malloc((nv ? nv : 1) * sizeof *d->i64);
        for (uint32_t i = 0; i < nv; i++)
            d->i64[i] = (int64_t)le64(p + 8 * i);
    } else {
        d->data = vl_malloc(n ? n : 1);
        memcpy(d->data, p, n);
        d->kptr = vl_malloc((nv ? nv : 1) * sizeof *d->kptr);
        d->klen = vl_malloc((nv ? nv : 1) * sizeof *d->klen);
        size_t at = 0;
        for (uint32_t i = 0; i < nv; i++) {
            if (n - at < 4 || le32(d->data + at) > n - at - 4)
                return rfail(r, "dictionary entry %u runs past the page", i);
            d->klen[i] = le32(d->data + at);
            d->kptr[i] = d->data + at + 4;
            at += 4 + (size_t)d->klen[i];
        }
    }
    return VL_OK;
}

/* Where the values of a data page come from. */
typedef struct {
    int dict;
    const uint8_t *p, *end; /* PLAIN */
    const uint32_t *idx;    /* dictionary indices */
    size_t at;
} values;

static vl_status open_values(reader *r, int encoding, const uint8_t *p, size_t n, size_t count,
                             const dictionary *d, values *v)
{
    memset(v, 0, sizeof *v);
    if (encoding == VL_PQ_ENC_PLAIN) {
        v->p = p;
        v->end = p + n;
        return VL_OK;
    }
    if (encoding == VL_PQ_ENC_BYTE_STREAM_SPLIT && r->lf->ptype != VL_PQ_BYTE_ARRAY) {
        /* byte k of value i is at p[k * count + i] */
        size_t width = r->lf->ptype == VL_PQ_FLOAT ? 4 : 8;
        if (n != count * width)
            return rfail(r, "byte-stream-split data is %zu bytes, expected %zu", n, count * width);
        r->unsplit.len = 0;
        vl_buf_reserve(&r->unsplit, n + 1);
        for (size_t i = 0; i < count; i++)
            for (size_t k = 0; k < width; k++)
                r->unsplit.data[i * width + k] = p[k * count + i];
        v->p = r->unsplit.data;
        v->end = v->p + n;
        return VL_OK;
    }
    if (encoding != VL_PQ_ENC_PLAIN_DICTIONARY && encoding != VL_PQ_ENC_RLE_DICTIONARY)
        return rfail(r, "value encoding %d unsupported", encoding);
    if (d->n == 0 && count > 0)
        return rfail(r, "dictionary-encoded page without a (non-empty) dictionary page");
    if (count == 0) {
        v->dict = 1;
        return VL_OK;
    }
    if (n < 1)
        return rfail(r, "dictionary indices missing");
    if (count > r->idx_cap) {
        r->idx = vl_realloc(r->idx, count * sizeof *r->idx);
        r->idx_cap = count;
    }
    const char *why = NULL;
    if (vl_rle_decode(p + 1, n - 1, p[0], r->idx, count, &why) < 0)
        return rfail(r, "dictionary indices: %s", why);
    for (size_t i = 0; i < count; i++)
        if (r->idx[i] >= d->n)
            return rfail(r, "dictionary index %u out of range (%u entries)", r->idx[i], d->n);
    v->dict = 1;
    v->idx = r->idx;
    return VL_OK;
}

static vl_status next_key(reader *r, values *v, const dictionary *d)
{
    const uint8_t *k;
    uint32_t n;
    if (v->dict) {
        uint32_t i = v->idx[v->at++];
        k = d->kptr[i];
        n = d->klen[i];
    } else {
        if (v->end - v->p < 4 || le32(v->p) > (size_t)(v->end - v->p) - 4)
            return rfail(r, "key value %llu runs past the page", (unsigned long long)r->key_rows);
        n = le32(v->p);
        k = v->p + 4;
        v->p += 4 + (size_t)n;
    }
    if (r->key_rows >= r->nrows)
        return rfail(r, "more keys than the declared %llu rows", (unsigned long long)r->nrows);
    if (r->keys.len + n > r->limit)
        return rfail(r, "keys total more than %llu bytes", (unsigned long long)r->limit);
    vl_buf_put(&r->keys, k, n);
    r->key_offs[++r->key_rows] = r->keys.len;
    return VL_OK;
}

static vl_status next_seq(reader *r, values *v, const dictionary *d)
{
    int64_t s;
    if (v->dict) {
        s = d->i64[v->idx[v->at++]];
    } else {
        if (v->end - v->p < 8)
            return rfail(r, "seq values run past the page");
        s = (int64_t)le64(v->p);
        v->p += 8;
    }
    if (r->seq_rows >= r->nrows)
        return rfail(r, "more seqs than the declared %llu rows", (unsigned long long)r->nrows);
    r->seqs[r->seq_rows++] = s;
    return VL_OK;
}

static vl_status next_float(reader *r, values *v, const dictionary *d)
{
    float f;
    if (v->dict) {
        f = d->f[v->idx[v->at++]];
    } else {
        if (v->end - v->p < 4)
            return rfail(r, "float values run past the page");
        uint32_t u = le32(v->p);
        memcpy(&f, &u, 4);
        v->p += 4;
    }
    if (r->vals >= r->nvals)
        return rfail(r, "more vector elements than the declared %llu",
                     (unsigned long long)r->nvals);
    r->vecs[r->vals++] = f;
    return VL_OK;
}

static vl_status close_row(reader *r)
{
    if (!r->row_open)
        return VL_OK;
    r->row_open = 0;
    uint64_t row = r->vec_rows - 1;
    if (!r->dim_known) {
        if (r->row_len == 0)
            return rfail(r, "row %llu: empty vector", (unsigned long long)row);
        r->dim = r->row_len;
        r->dim_known = 1;
    }
    if (r->row_len != r->dim)
        return rfail(r, "row %llu: vector has %u elements, expected %u", (unsigned long long)row,
                     r->row_len, r->dim);
    return VL_OK;
}

static vl_status vector_level(reader *r, uint32_t rep, uint32_t def, values *v, const dictionary *d)
{
    const leaf *lf = r->lf;
    if (rep == 0) {
        vl_status st = close_row(r);
        if (st != VL_OK)
            return st;
        if (r->vec_rows >= r->nrows)
            return rfail(r, "more vectors than the declared %llu rows",
                         (unsigned long long)r->nrows);
        r->vec_rows++;
        r->row_open = 1;
        r->row_len = 0;
    } else if (!r->row_open) {
        return rfail(r, "repetition level %u where a row must start", rep);
    }
    uint64_t row = r->vec_rows - 1;
    if (def < (uint32_t)lf->list_def) {
        if (rep != 0)
            return rfail(r, "row %llu: bad definition level %u", (unsigned long long)row, def);
        if (def + 1 == (uint32_t)lf->list_def)
            return VL_OK; /* empty list: close_row reports the length */
        return rfail(r, "row %llu: vector is null", (unsigned long long)row);
    }
    if (def < (uint32_t)lf->max_def)
        return rfail(r, "row %llu: null vector element", (unsigned long long)row);
    uint32_t cap = r->dim_known ? r->dim : VL_MAX_DIM;
    if (r->row_len >= cap)
        return rfail(r, "row %llu: vector has more than %u elements", (unsigned long long)row, cap);
    r->row_len++;
    return next_float(r, v, d);
}

/* The vector pages every writer of this schema produces: PLAIN floats in
 * rows of exactly dim present elements (repetition 0 then dim - 1 ones,
 * every definition level the maximum).  Takes such rows from the front of
 * the page whole, one memcpy each, in the state vector_level would leave;
 * *taken says how many entries.  It stops at the first entry that is not
 * such a row (the first row before the dimension is known, a row that
 * straddles pages, a null, a dictionary page...), which consume then reads
 * element by element and reports if it is wrong.  At 1M x 384 the
 * element-wise path was a tenth of a server start's CPU. */
static vl_status take_rows(reader *r, size_t n, const uint32_t *rep, const uint32_t *def, values *v,
                           size_t *taken)
{
    const leaf *lf = r->lf;
    *taken = 0;
    if (!HOST_LITTLE_ENDIAN || lf->kind != COL_VEC || v->dict || !r->dim_known || !r->dim ||
        lf->max_rep != 1 || !lf->max_def || !rep || !def)
        return VL_OK; /* no level arrays (a page without entries); dim 0 never advances */
    uint32_t dim = r->dim, top = (uint32_t)lf->max_def;
    size_t i = 0;
    while (n - i >= dim && rep[i] == 0) {
        uint32_t odd = def[i] ^ top;
        for (uint32_t j = 1; j < dim; j++)
            odd |= (rep[i + j] ^ 1) | (def[i + j] ^ top);
        if (odd || (size_t)(v->end - v->p) / 4 < dim || r->nvals - r->vals < dim ||
            r->vec_rows >= r->nrows)
            break;
        vl_status st = close_row(r);
        if (st != VL_OK)
            return st;
        memcpy(r->vecs + r->vals, v->p, (size_t)dim * 4);
        v->p += (size_t)dim * 4;
        r->vals += dim;
        r->vec_rows++;
        r->row_open = 1;
        r->row_len = dim;
        i += dim;
    }
    *taken = i;
    return VL_OK;
}

/* Consume one page's n level/value entries. */
static vl_status consume(reader *r, size_t n, const uint32_t *rep, const uint32_t *def, values *v,
                         const dictionary *d)
{
    const leaf *lf = r->lf;
    size_t fast;
    vl_status st0 = take_rows(r, n, rep, def, v, &fast);
    if (st0 != VL_OK)
        return st0;
    for (size_t i = fast; i < n; i++) {
        uint32_t dl = lf->max_def ? def[i] : 0;
        vl_status st;
        if (lf->kind == COL_VEC) {
            st = vector_level(r, lf->max_rep ? rep[i] : 0, dl, v, d);
        } else if (dl < (uint32_t)lf->max_def) {
            uint64_t row = lf->kind == COL_KEY ? r->key_rows : r->seq_rows;
            return rfail(r, "row %llu: null %s", (unsigned long long)row, col_names[lf->kind]);
        } else {
            st = lf->kind == COL_KEY ? next_key(r, v, d) : next_seq(r, v, d);
        }
        if (st != VL_OK)
            return st;
    }
    return VL_OK;
}

static void levels_reserve(reader *r, size_t n)
{
    if (n <= r->lv_cap)
        return;
    r->rep = vl_realloc(r->rep, n * sizeof *r->rep);
    r->def = vl_realloc(r->def, n * sizeof *r->def);
    r->lv_cap = n;
}

static size_t count_present(const reader *r, size_t n)
{
    if (!r->lf->max_def)
        return n;
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += r->def[i] == (uint32_t)r->lf->max_def;
    return c;
}

static vl_status decode_levels(reader *r, const uint8_t *p, size_t len, int max, uint32_t *out,
                               size_t n, const char *what)
{
    const char *why = NULL;
    int width = vl_rle_bit_width((uint32_t)max);
    if (vl_rle_decode(p, len, width, out, n, &why) < 0)
        return rfail(r, "%s levels: %s", what, why);
    if (width < 32 && (uint32_t)max == (1u << width) - 1)
        return VL_OK;   /* every value that fits the width is a valid level (max 1: the vectors) */
    uint32_t above = 0; /* branch-free, so the check vectorises; the culprit found after */
    for (size_t i = 0; i < n; i++)
        above |= out[i] > (uint32_t)max;
    for (size_t i = 0; above && i < n; i++)
        if (out[i] > (uint32_t)max)
            return rfail(r, "%s level %u above the maximum %d", what, out[i], max);
    return VL_OK;
}

/* v1 level section: u32 length + hybrid data; advances *p. */
static vl_status levels_v1(reader *r, const uint8_t **p, const uint8_t *end, int enc, int max,
                           uint32_t *out, size_t n, const char *what)
{
    if (max == 0)
        return VL_OK;
    if (enc != VL_PQ_ENC_RLE)
        return rfail(r, "%s level encoding %d unsupported", what, enc);
    if (end - *p < 4 || le32(*p) > (size_t)(end - *p) - 4)
        return rfail(r, "%s levels run past the page", what);
    size_t len = le32(*p);
    vl_status st = decode_levels(r, *p + 4, len, max, out, n, what);
    *p += 4 + len;
    return st;
}

static vl_status data_page_v1(reader *r, const vl_pq_page_header *h, int codec,
                              const uint8_t *payload, const dictionary *d)
{
    const uint8_t *body;
    size_t n = (size_t)h->num_values;
    vl_status st = decompress(r, codec, payload, (size_t)h->compressed_size,
                              (size_t)h->uncompressed_size, &body);
    if (st != VL_OK)
        return st;
    const uint8_t *p = body, *end = body + h->uncompressed_size;
    levels_reserve(r, n);
    st = levels_v1(r, &p, end, h->rep_encoding, r->lf->max_rep, r->rep, n, "repetition");
    if (st == VL_OK)
        st = levels_v1(r, &p, end, h->def_encoding, r->lf->max_def, r->def, n, "definition");
    if (st != VL_OK)
        return st;
    values v;
    st = open_values(r, h->encoding, p, (size_t)(end - p), count_present(r, n), d, &v);
    return st == VL_OK ? consume(r, n, r->rep, r->def, &v, d) : st;
}

static vl_status data_page_v2(reader *r, const vl_pq_page_header *h, int codec,
                              const uint8_t *payload, const dictionary *d)
{
    size_t n = (size_t)h->num_values, clen = (size_t)h->compressed_size;
    if (h->rep_bytes < 0 || h->def_bytes < 0 ||
        (uint64_t)h->rep_bytes + (uint64_t)h->def_bytes > clen ||
        (uint64_t)h->rep_bytes + (uint64_t)h->def_bytes > (uint64_t)h->uncompressed_size)
        return rfail(r, "level lengths %d + %d exceed the page", h->rep_bytes, h->def_bytes);
    size_t lb = (size_t)h->rep_bytes + (size_t)h->def_bytes;
    levels_reserve(r, n);
    vl_status st = VL_OK;
    if (r->lf->max_rep)
        st = decode_levels(r, payload, (size_t)h->rep_bytes, r->lf->max_rep, r->rep, n,
                           "repetition");
    if (st == VL_OK && r->lf->max_def)
        st = decode_levels(r, payload + h->rep_bytes, (size_t)h->def_bytes, r->lf->max_def, r->def,
                           n, "definition");
    if (st != VL_OK)
        return st;
    const uint8_t *body;
    size_t want = (size_t)h->uncompressed_size - lb;
    st = decompress(r, h->is_compressed ? codec : VL_PQ_CODEC_UNCOMPRESSED, payload + lb, clen - lb,
                    want, &body);
    if (st != VL_OK)
        return st;
    values v;
    st = open_values(r, h->encoding, body, want, count_present(r, n), d, &v);
    return st == VL_OK ? consume(r, n, r->rep, r->def, &v, d) : st;
}

/* ---- column chunks --------------------------------------------------------- */

static uint64_t *rows_of(reader *r)
{
    return r->lf->kind == COL_KEY   ? &r->key_rows
           : r->lf->kind == COL_SEQ ? &r->seq_rows
                                    : &r->vec_rows;
}

static vl_status read_pages(reader *r, const vl_pq_column_meta *cm, size_t pos, size_t end,
                            dictionary *d)
{
    uint64_t left = (uint64_t)cm->num_values;
    int data_pages = 0;
    for (r->page = 0; left > 0; r->page++) {
        vl_pq_page_header h;
        size_t hlen;
        const char *why = NULL;
        if (pos >= end) {
            r->page = -1;
            return rfail(r, "chunk ends with %llu of %lld values unread", (unsigned long long)left,
                         (long long)cm->num_values);
        }
        if (vl_pq_decode_page_header(r->buf + pos, end - pos, &h, &hlen, &why) < 0)
            return rfail(r, "page header: %s", why);
        if (h.compressed_size < 0 || h.uncompressed_size < 0 ||
            (size_t)h.compressed_size > end - pos - hlen)
            return rfail(r, "page size %d does not fit the column chunk", h.compressed_size);
        const uint8_t *payload = r->buf + pos + hlen;
        pos += hlen + (size_t)h.compressed_size;
        vl_status st = VL_OK;
        if (h.type == VL_PQ_PAGE_DICTIONARY) {
            if (data_pages || d->n || d->data || d->f || d->i64)
                return rfail(r, "dictionary page after data");
            const uint8_t *body;
            st = decompress(r, cm->codec, payload, (size_t)h.compressed_size,
                            (size_t)h.uncompressed_size, &body);
            if (st == VL_OK)
                st = read_dict(r, &h, body, (size_t)h.uncompressed_size, d);
        } else if (h.type == VL_PQ_PAGE_DATA || h.type == VL_PQ_PAGE_DATA_V2) {
            if (h.num_values < 0 || (uint64_t)h.num_values > left)
                return rfail(r, "page has %d values, only %llu left in the chunk", h.num_values,
                             (unsigned long long)left);
            left -= (uint64_t)h.num_values;
            data_pages++;
            st = h.type == VL_PQ_PAGE_DATA ? data_page_v1(r, &h, cm->codec, payload, d)
                                           : data_page_v2(r, &h, cm->codec, payload, d);
        }
        if (st != VL_OK)
            return st;
    }
    r->page = -1;
    return VL_OK;
}

static vl_status read_chunk(reader *r, const vl_pq_row_group *rg, int c)
{
    const vl_pq_column_meta *cm = &rg->columns[c].meta;
    r->lf = &r->leaves[c];
    r->page = -1;
    /* The chunk starts at its dictionary page if it has one; pyarrow writes
     * data_page_offset 0 for an empty chunk that has only a dictionary. */
    int64_t start = cm->data_page_offset;
    if (cm->has_dictionary_page_offset && cm->dictionary_page_offset >= 4 &&
        (cm->dictionary_page_offset < start || start < 4))
        start = cm->dictionary_page_offset;
    size_t data_end = r->len - 8 - le32(r->buf + r->len - 8);
    if (start < 4 || cm->total_compressed_size < 0 || (uint64_t)start > data_end ||
        (uint64_t)cm->total_compressed_size > data_end - (uint64_t)start)
        return rfail(r, "chunk at %lld (+%lld bytes) lies outside the data area", (long long)start,
                     (long long)cm->total_compressed_size);
    uint64_t *rows = rows_of(r), before = *rows;
    dictionary d;
    memset(&d, 0, sizeof d);
    vl_status st = read_pages(r, cm, (size_t)start, (size_t)start + cm->total_compressed_size, &d);
    dict_free(&d);
    if (st == VL_OK && r->lf->kind == COL_VEC)
        st = close_row(r);
    if (st == VL_OK && *rows - before != (uint64_t)rg->num_rows)
        st = rfail(r, "%llu rows, the row group has %lld", (unsigned long long)(*rows - before),
                   (long long)rg->num_rows);
    return st;
}

/* ---- entry points ---------------------------------------------------------- */

static void reader_free(reader *r)
{
    vl_pq_file_meta_free(&r->fm);
    vl_buf_free(&r->keys);
    vl_buf_free(&r->scratch);
    vl_buf_free(&r->unsplit);
    free(r->key_offs);
    free(r->seqs);
    free(r->vecs);
    free(r->rep);
    free(r->def);
    free(r->idx);
}

static vl_status read_all(reader *r)
{
    vl_status st = read_footer(r);
    if (st == VL_OK)
        st = check_schema(r);
    if (st == VL_OK)
        st = check_counts(r);
    if (st == VL_OK)
        st = parse_dim(r);
    for (uint32_t g = 0; st == VL_OK && g < r->fm.n_row_groups; g++) {
        r->rg = g;
        for (int c = 0; st == VL_OK && c < 3; c++)
            st = read_chunk(r, &r->fm.row_groups[g], c);
    }
    r->lf = NULL;
    if (st == VL_OK && r->vals != (uint64_t)r->nrows * r->dim)
        st = rfail(r, "%llu vector elements for %llu rows of dimension %u",
                   (unsigned long long)r->vals, (unsigned long long)r->nrows, r->dim);
    return st;
}

vl_status vl_parquet_read_segment(const uint8_t *buf, size_t len, vl_segment *out, vl_error *err)
{
    reader r;
    memset(&r, 0, sizeof r);
    memset(out, 0, sizeof *out);
    if (!buf && len)
        return vl_fail(err, VL_ERR_ARG, "parquet: no buffer");
    r.buf = buf;
    r.len = len;
    r.err = err;
    r.page = -1;
    r.limit = (uint64_t)len * MAX_EXPANSION + EXPANSION_ALLOWANCE;
    vl_status st = read_all(&r);
    if (st != VL_OK) {
        reader_free(&r);
        return st;
    }
    out->nrows = r.nrows;
    out->dim = r.dim;
    vl_buf_put_byte(&r.keys, 0);
    out->key_data = (char *)r.keys.data;
    out->key_offs = r.key_offs;
    out->vecs = r.vecs;
    out->seqs = r.seqs;
    r.keys.data = NULL;
    r.key_offs = NULL;
    r.vecs = NULL;
    r.seqs = NULL;
    reader_free(&r);
    return VL_OK;
}

void vl_segment_free(vl_segment *s)
{
    if (!s)
        return;
    free(s->key_data);
    free(s->key_offs);
    free(s->vecs);
    free(s->seqs);
    memset(s, 0, sizeof *s);
}
