/*
 * parquet_writer.c - encode a segment as one Parquet file in memory.
 *
 * Decisions a reader cannot see from the code:
 *  1. One row group; each column chunk is a run of data pages v1 with PLAIN
 *     values, cut at ~page_bytes of uncompressed values.  Vector pages hold
 *     whole rows, so a row never straddles pages (readers may rely on it).
 *  2. Every page is compressed on its own (ZSTD, or stored), and carries
 *     statistics; the chunk's statistics merge the pages'.  Min/max are
 *     min_value/max_value (fields 5/6) in the column's type-defined order,
 *     declared by writing column_orders = TypeDefinedOrder for each column;
 *     keys compare as unsigned bytes.  Float min/max skip NaN and write a
 *     zero min as -0.0 and a zero max as +0.0, as the spec asks.
 *  3. Levels: the vector column has max repetition and definition level 1;
 *     levels are RLE/bit-packed hybrid with a u32 length prefix.  The key
 *     and seq columns are required and flat, so they have no levels.
 *  4. Zero rows still give one empty page per column, so every reader finds
 *     a page at data_page_offset.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "storage/parquet.h"
#include "storage/parquet_meta.h"
#include "storage/rle_levels.h"
#include "util/alloc.h"
#include "util/error.h"

#define CREATED_BY "vexlake version " VL_VERSION
#define MAX_PAGE_BYTES (1u << 30)
/* Levels of one vector page are built in a scratch array of this many. */
#define MAX_PAGE_VALUES (1u << 24)

void vl_parquet_options_init(vl_parquet_options *o)
{
    o->zstd_level = 1;
    o->page_bytes = 1u << 20;
}

/* Min/max of a page or chunk; fixed-size values are stored in place, key
 * values point into the caller's rows. */
typedef struct {
    int set;
    const uint8_t *kmin, *kmax;
    uint32_t kmin_len, kmax_len;
    union {
        float f;
        int64_t i;
    } min, max;
    uint8_t minb[8], maxb[8];
} minmax;

typedef struct {
    vl_buf *file;
    int level; /* 0: uncompressed */
    vl_buf body, packed;
    /* the chunk being written */
    int64_t start, total_unc, total_comp, num_values;
    minmax chunk;
} writer;

static int key_less(const uint8_t *a, uint32_t an, const uint8_t *b, uint32_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    return c < 0 || (c == 0 && an < bn);
}

static void mm_key(minmax *m, const uint8_t *k, uint32_t n)
{
    if (!m->set || key_less(k, n, m->kmin, m->kmin_len)) {
        m->kmin = k;
        m->kmin_len = n;
    }
    if (!m->set || key_less(m->kmax, m->kmax_len, k, n)) {
        m->kmax = k;
        m->kmax_len = n;
    }
    m->set = 1;
}

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "PLAIN values are copied in host byte order, which must be little-endian");

static void mm_float(minmax *m, float v)
{
    if (v != v)
        return;
    if (!m->set || v < m->min.f)
        m->min.f = v;
    if (!m->set || v > m->max.f)
        m->max.f = v;
    m->set = 1;
}

static void mm_int(minmax *m, int64_t v)
{
    if (!m->set || v < m->min.i)
        m->min.i = v;
    if (!m->set || v > m->max.i)
        m->max.i = v;
    m->set = 1;
}

static void mm_merge(minmax *into, const minmax *m, int type)
{
    if (!m->set)
        return;
    if (type == VL_PQ_BYTE_ARRAY) {
        mm_key(into, m->kmin, m->kmin_len);
        mm_key(into, m->kmax, m->kmax_len);
    } else if (type == VL_PQ_FLOAT) {
        mm_float(into, m->min.f);
        mm_float(into, m->max.f);
    } else {
        mm_int(into, m->min.i);
        mm_int(into, m->max.i);
    }
}

static void put_le(uint8_t *dst, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        dst[i] = (uint8_t)(v >> (8 * i));
}

/* Fill st from m (plain-encoded min/max, null_count 0). */
static void mm_stats(minmax *m, int type, vl_pq_stats *st)
{
    memset(st, 0, sizeof *st);
    st->has_null_count = 1;
    st->has_exact = 1;
    if (!m->set)
        return;
    if (type == VL_PQ_BYTE_ARRAY) {
        st->min_value = (vl_pq_bytes){m->kmin, m->kmin_len};
        st->max_value = (vl_pq_bytes){m->kmax, m->kmax_len};
        return;
    }
    if (type == VL_PQ_FLOAT) {
        float lo = m->min.f == 0.0f ? -0.0f : m->min.f;
        float hi = m->max.f == 0.0f ? 0.0f : m->max.f;
        uint32_t a, b;
        memcpy(&a, &lo, 4);
        memcpy(&b, &hi, 4);
        put_le(m->minb, a, 4);
        put_le(m->maxb, b, 4);
        st->min_value = (vl_pq_bytes){m->minb, 4};
        st->max_value = (vl_pq_bytes){m->maxb, 4};
        return;
    }
    put_le(m->minb, (uint64_t)m->min.i, 8);
    put_le(m->maxb, (uint64_t)m->max.i, 8);
    st->min_value = (vl_pq_bytes){m->minb, 8};
    st->max_value = (vl_pq_bytes){m->maxb, 8};
}

/* Compress w->body and append header + payload as one data page. */
/* Compress body into packed at level (0: no compression); *payload and
 * *plen say what to store. Safe to run on any thread. */
static vl_status compress_body(int level, const vl_buf *body, vl_buf *packed,
                               const uint8_t **payload, size_t *plen)
{
    *payload = body->data;
    *plen = body->len;
    if (!level)
        return VL_OK;
    size_t bound = ZSTD_compressBound(body->len);
    packed->len = 0;
    vl_buf_reserve(packed, bound);
    size_t n = ZSTD_compress(packed->data, bound, body->data, body->len, level);
    if (ZSTD_isError(n))
        return VL_ERR_ARG;
    *payload = packed->data;
    *plen = n;
    return VL_OK;
}

/* Append one data page (header + payload) to the file and the chunk. */
static vl_status append_page(writer *w, int type, int32_t num_values, minmax *mm, size_t body_len,
                             const uint8_t *payload, size_t plen, vl_error *err)
{
    if (body_len > INT32_MAX || plen > INT32_MAX)
        return vl_fail(err, VL_ERR_LIMIT, "parquet page too large (%zu bytes)", body_len);
    vl_pq_page_header h;
    memset(&h, 0, sizeof h);
    h.type = VL_PQ_PAGE_DATA;
    h.uncompressed_size = (int32_t)body_len;
    h.compressed_size = (int32_t)plen;
    h.num_values = num_values;
    h.encoding = VL_PQ_ENC_PLAIN;
    h.def_encoding = h.rep_encoding = VL_PQ_ENC_RLE;
    h.has_stats = 1;
    mm_stats(mm, type, &h.stats);
    size_t before = w->file->len;
    vl_pq_encode_page_header(w->file, &h);
    size_t hlen = w->file->len - before;
    vl_buf_put(w->file, payload, plen);
    w->total_unc += (int64_t)(hlen + body_len);
    w->total_comp += (int64_t)(hlen + plen);
    w->num_values += num_values;
    mm_merge(&w->chunk, mm, type);
    return VL_OK;
}

static vl_status emit_page(writer *w, int type, int32_t num_values, minmax *mm, vl_error *err)
{
    const uint8_t *payload;
    size_t plen;
    if (compress_body(w->level, &w->body, &w->packed, &payload, &plen) != VL_OK)
        return vl_fail(err, VL_ERR_ARG, "zstd compression failed");
    vl_status st = append_page(w, type, num_values, mm, w->body.len, payload, plen, err);
    w->body.len = 0;
    return st;
}

static void chunk_begin(writer *w)
{
    w->start = (int64_t)w->file->len;
    w->total_unc = w->total_comp = w->num_values = 0;
    memset(&w->chunk, 0, sizeof w->chunk);
}

static vl_status write_keys(writer *w, const vl_segment_rows *rows, uint32_t page_bytes,
                            vl_error *err)
{
    uint64_t i = 0;
    do {
        minmax mm = {0};
        int32_t n = 0;
        while (i < rows->nrows && w->body.len < page_bytes && n < INT32_MAX) {
            const uint8_t *k = (const uint8_t *)rows->keys[i];
            vl_buf_put_u32le(&w->body, rows->key_lens[i]);
            vl_buf_put(&w->body, k, rows->key_lens[i]);
            mm_key(&mm, k, rows->key_lens[i]);
            n++, i++;
        }
        vl_status st = emit_page(w, VL_PQ_BYTE_ARRAY, n, &mm, err);
        if (st != VL_OK)
            return st;
    } while (i < rows->nrows);
    return VL_OK;
}

static vl_status write_seqs(writer *w, const vl_segment_rows *rows, uint32_t page_bytes,
                            vl_error *err)
{
    uint64_t i = 0;
    do {
        minmax mm = {0};
        int32_t n = 0;
        while (i < rows->nrows && w->body.len < page_bytes && n < INT32_MAX) {
            uint8_t b[8];
            put_le(b, (uint64_t)rows->seqs[i], 8);
            vl_buf_put(&w->body, b, 8);
            mm_int(&mm, rows->seqs[i]);
            n++, i++;
        }
        vl_status st = emit_page(w, VL_PQ_INT64, n, &mm, err);
        if (st != VL_OK)
            return st;
    } while (i < rows->nrows);
    return VL_OK;
}

/* Levels of nvals values as u32 length + hybrid runs. */
static void put_levels(vl_buf *body, const uint32_t *lv, size_t nvals)
{
    size_t at = body->len;
    vl_buf_put_u32le(body, 0);
    vl_rle_encode(body, lv, nvals, 1);
    put_le(body->data + at, body->len - at - 4, 4);
}

/* Vector pages are built a window at a time and compressed on
 * PAGE_THREADS threads at once: zstd is most of a flush's time, and the
 * pages are independent.  The window bounds the extra memory. */
#define PAGE_THREADS 2
#define PAGE_WINDOW (2 * PAGE_THREADS)

typedef struct {
    vl_buf body, packed;
    minmax mm;
    int32_t nvals;
    const uint8_t *payload;
    size_t plen;
    vl_status st;
} vector_page;

typedef struct {
    vector_page *pages;
    size_t first, n, step;
    int level;
} compress_task;

static void *compress_pages(void *arg)
{
    compress_task *t = arg;
    for (size_t i = t->first; i < t->n; i += t->step) {
        vector_page *p = &t->pages[i];
        p->st = compress_body(t->level, &p->body, &p->packed, &p->payload, &p->plen);
    }
    return NULL;
}

/* Compress pages[0..n) on up to PAGE_THREADS threads (this one included). */
static void compress_window(vector_page *pages, size_t n, int level)
{
    pthread_t th[PAGE_THREADS];
    compress_task tasks[PAGE_THREADS];
    int started[PAGE_THREADS] = {0};
    for (size_t t = 0; t < PAGE_THREADS; t++)
        tasks[t] = (compress_task){pages, t, n, PAGE_THREADS, level};
    for (size_t t = 1; t < PAGE_THREADS && t < n; t++)
        started[t] = pthread_create(&th[t], NULL, compress_pages, &tasks[t]) == 0;
    compress_pages(&tasks[0]);
    for (size_t t = 1; t < PAGE_THREADS && t < n; t++) {
        if (started[t])
            pthread_join(th[t], NULL);
        else
            compress_pages(&tasks[t]); /* no thread: do its share here */
    }
}

/* Levels and PLAIN values of rows [r, r + nr) into p. */
static void build_vector_page(const vl_segment_rows *rows, uint64_t r, uint64_t nr, uint32_t *lv,
                              vector_page *p)
{
    uint32_t dim = rows->dim;
    size_t nv = (size_t)(nr * dim);
    memset(&p->mm, 0, sizeof p->mm);
    p->body.len = 0;
    p->nvals = (int32_t)nv;
    for (size_t k = 0; k < nv; k++)
        lv[k] = k % dim != 0;
    put_levels(&p->body, lv, nv);
    for (size_t k = 0; k < nv; k++)
        lv[k] = 1;
    put_levels(&p->body, lv, nv);
    const float *v = rows->vecs + r * dim;
    vl_buf_put(&p->body, v, nv * 4); /* PLAIN floats are little-endian, as the host */
    for (size_t k = 0; k < nv; k++)
        mm_float(&p->mm, v[k]);
}

static vl_status write_vectors(writer *w, const vl_segment_rows *rows, uint32_t page_bytes,
                               vl_error *err)
{
    uint32_t dim = rows->dim;
    uint64_t per_page = dim ? page_bytes / ((uint64_t)dim * 4) : 1;
    if (per_page < 1)
        per_page = 1;
    if (dim && per_page > MAX_PAGE_VALUES / dim)
        per_page = MAX_PAGE_VALUES / dim;
    uint64_t cap = rows->nrows < per_page ? rows->nrows : per_page;
    uint32_t *lv = vl_malloc((size_t)(cap * dim + 1) * sizeof *lv);
    vector_page pages[PAGE_WINDOW];
    memset(pages, 0, sizeof pages);
    uint64_t r = 0;
    vl_status st = VL_OK;
    do { /* a zero-row segment still gets one (empty) page */
        size_t n = 0;
        for (; n < PAGE_WINDOW && (r < rows->nrows || (r == 0 && n == 0)); n++) {
            uint64_t nr = rows->nrows - r < per_page ? rows->nrows - r : per_page;
            build_vector_page(rows, r, nr, lv, &pages[n]);
            r += nr;
        }
        compress_window(pages, n, w->level);
        for (size_t i = 0; i < n && st == VL_OK; i++) {
            st = pages[i].st != VL_OK
                     ? vl_fail(err, VL_ERR_ARG, "zstd compression failed")
                     : append_page(w, VL_PQ_FLOAT, pages[i].nvals, &pages[i].mm, pages[i].body.len,
                                   pages[i].payload, pages[i].plen, err);
        }
    } while (st == VL_OK && r < rows->nrows);
    for (size_t i = 0; i < PAGE_WINDOW; i++) {
        vl_buf_free(&pages[i].body);
        vl_buf_free(&pages[i].packed);
    }
    free(lv);
    return st;
}

static int utf8_valid(const uint8_t *s, uint32_t n)
{
    uint32_t i = 0;
    while (i < n) {
        uint8_t c = s[i];
        uint32_t len, cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xE0) == 0xC0) {
            len = 2, cp = c & 0x1F;
        } else if ((c & 0xF0) == 0xE0) {
            len = 3, cp = c & 0x0F;
        } else if ((c & 0xF8) == 0xF0) {
            len = 4, cp = c & 0x07;
        } else {
            return 0;
        }
        if (n - i < len)
            return 0;
        for (uint32_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xC0) != 0x80)
                return 0;
            cp = cp << 6 | (s[i + k] & 0x3F);
        }
        static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
        if (cp < min_cp[len] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
            return 0;
        i += len;
    }
    return 1;
}

static vl_status check_rows(const vl_segment_rows *rows, const vl_parquet_options *opt,
                            vl_error *err)
{
    if (rows->dim > VL_MAX_DIM || (rows->dim == 0 && rows->nrows > 0))
        return vl_fail(err, VL_ERR_ARG, "parquet write: bad dimension %u", rows->dim);
    if (rows->nrows > INT64_MAX / 2)
        return vl_fail(err, VL_ERR_ARG, "parquet write: too many rows");
    if (rows->nrows && (!rows->keys || !rows->key_lens || !rows->vecs || !rows->seqs))
        return vl_fail(err, VL_ERR_ARG, "parquet write: missing row arrays");
    for (uint64_t i = 0; i < rows->nrows; i++)
        if (rows->key_lens[i] > VL_MAX_KEY_LEN || (rows->key_lens[i] && !rows->keys[i]))
            return vl_fail(err, VL_ERR_ARG, "parquet write: bad key in row %llu",
                           (unsigned long long)i);
    if (opt->page_bytes == 0 || opt->page_bytes > MAX_PAGE_BYTES)
        return vl_fail(err, VL_ERR_ARG, "parquet write: page_bytes %u out of range",
                       opt->page_bytes);
    if (opt->zstd_level &&
        (opt->zstd_level < ZSTD_minCLevel() || opt->zstd_level > ZSTD_maxCLevel()))
        return vl_fail(err, VL_ERR_ARG, "parquet write: zstd level %d out of range",
                       opt->zstd_level);
    return VL_OK;
}

static vl_pq_schema_elem elem(const char *name, int type, int rep, int children, int ct, int lt)
{
    vl_pq_schema_elem e = {type,     rep, {(const uint8_t *)name, (uint32_t)strlen(name)},
                           children, ct,  lt};
    return e;
}

/* Storage for what a column chunk's metadata points to. */
typedef struct {
    int32_t encodings[2];
    vl_pq_bytes path[3];
    minmax mm;
} column_names;

/* Close the chunk just written into column chunk c. */
static void chunk_end(writer *w, vl_pq_column_chunk *c, int type, const char *const *path,
                      uint32_t npath, int has_levels, column_names *names)
{
    vl_pq_column_meta *m = &c->meta;
    c->file_offset = w->start;
    c->has_meta = 1;
    m->type = type;
    names->encodings[0] = VL_PQ_ENC_PLAIN;
    names->encodings[1] = VL_PQ_ENC_RLE;
    m->encodings = names->encodings;
    m->n_encodings = has_levels ? 2 : 1;
    for (uint32_t i = 0; i < npath; i++)
        names->path[i] = (vl_pq_bytes){(const uint8_t *)path[i], (uint32_t)strlen(path[i])};
    m->path = names->path;
    m->n_path = npath;
    m->codec = w->level ? VL_PQ_CODEC_ZSTD : VL_PQ_CODEC_UNCOMPRESSED;
    m->num_values = w->num_values;
    m->total_uncompressed_size = w->total_unc;
    m->total_compressed_size = w->total_comp;
    m->data_page_offset = w->start;
    m->has_stats = 1;
    names->mm = w->chunk;
    mm_stats(&names->mm, type, &m->stats);
}

vl_status vl_parquet_write_segment(const vl_segment_rows *rows, const vl_parquet_options *opt,
                                   uint8_t **out, size_t *len, vl_error *err)
{
    vl_parquet_options defaults;
    if (!opt) {
        vl_parquet_options_init(&defaults);
        opt = &defaults;
    }
    vl_status st = check_rows(rows, opt, err);
    if (st != VL_OK)
        return st;

    int utf8 = 1;
    for (uint64_t i = 0; i < rows->nrows && utf8; i++)
        utf8 = utf8_valid((const uint8_t *)rows->keys[i], rows->key_lens[i]);

    vl_buf file = {0};
    writer w = {.file = &file, .level = opt->zstd_level};
    vl_pq_column_chunk cols[3];
    column_names names[3];
    memset(cols, 0, sizeof cols);
    vl_buf_put(&file, "PAR1", 4);

    static const char *const key_path[] = {"key"};
    static const char *const vec_path[] = {"vector", "list", "element"};
    static const char *const seq_path[] = {"seq"};
    chunk_begin(&w);
    st = write_keys(&w, rows, opt->page_bytes, err);
    chunk_end(&w, &cols[0], VL_PQ_BYTE_ARRAY, key_path, 1, 0, &names[0]);
    if (st == VL_OK) {
        chunk_begin(&w);
        st = write_vectors(&w, rows, opt->page_bytes, err);
        chunk_end(&w, &cols[1], VL_PQ_FLOAT, vec_path, 3, 1, &names[1]);
    }
    if (st == VL_OK) {
        chunk_begin(&w);
        st = write_seqs(&w, rows, opt->page_bytes, err);
        chunk_end(&w, &cols[2], VL_PQ_INT64, seq_path, 1, 0, &names[2]);
    }
    vl_buf_free(&w.body);
    vl_buf_free(&w.packed);
    if (st != VL_OK) {
        vl_buf_free(&file);
        return st;
    }

    vl_pq_schema_elem schema[6] = {
        elem("schema", -1, -1, 3, -1, 0),
        elem("key", VL_PQ_BYTE_ARRAY, VL_PQ_REQUIRED, -1, utf8 ? VL_PQ_CT_UTF8 : -1,
             utf8 ? VL_PQ_LT_STRING : 0),
        elem("vector", -1, VL_PQ_REQUIRED, 1, VL_PQ_CT_LIST, VL_PQ_LT_LIST),
        elem("list", -1, VL_PQ_REPEATED, 1, -1, 0),
        elem("element", VL_PQ_FLOAT, VL_PQ_REQUIRED, -1, -1, 0),
        elem("seq", VL_PQ_INT64, VL_PQ_REQUIRED, -1, -1, 0),
    };
    vl_pq_row_group rg = {.columns = cols, .n_columns = 3, .num_rows = (int64_t)rows->nrows};
    for (int c = 0; c < 3; c++) {
        rg.total_byte_size += cols[c].meta.total_uncompressed_size;
        rg.total_compressed_size += cols[c].meta.total_compressed_size;
    }
    rg.has_offsets = 1;
    rg.file_offset = 4;
    char dimstr[16];
    snprintf(dimstr, sizeof dimstr, "%u", rows->dim);
    vl_pq_kv kv[2] = {
        {{(const uint8_t *)"vexlake.format_version", 22}, {(const uint8_t *)"1", 1}},
        {{(const uint8_t *)"vexlake.dim", 11}, {(const uint8_t *)dimstr, (uint32_t)strlen(dimstr)}},
    };
    vl_pq_file_meta fm = {
        .version = 2,
        .schema = schema,
        .n_schema = 6,
        .num_rows = (int64_t)rows->nrows,
        .row_groups = &rg,
        .n_row_groups = 1,
        .kv = kv,
        .n_kv = 2,
        .created_by = {(const uint8_t *)CREATED_BY, (uint32_t)strlen(CREATED_BY)},
        .n_column_orders = 3,
    };
    size_t footer_at = file.len;
    vl_pq_encode_file_meta(&file, &fm);
    vl_buf_put_u32le(&file, (uint32_t)(file.len - footer_at));
    vl_buf_put(&file, "PAR1", 4);
    *out = file.data;
    *len = file.len;
    return VL_OK;
}
