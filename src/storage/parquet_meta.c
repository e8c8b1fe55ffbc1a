/* parquet_meta.c - see parquet_meta.h.  Field ids are those of parquet.thrift. */
#include "storage/parquet_meta.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* Caps on list sizes, far above anything a real file holds; they bound
 * what a hostile footer can make us allocate. */
#define MAX_SCHEMA 4096
#define MAX_COLUMNS 4096
#define MAX_ROW_GROUPS (1u << 20)
#define MAX_SMALL_LIST 256
#define MAX_KV 65536

/* ---- decoding helpers ------------------------------------------------------ */

static int bad(vl_tc_reader *r, const char *why)
{
    if (!r->err)
        r->err = why;
    return -1;
}

static int get_i32f(vl_tc_reader *r, vl_tc_type t, int32_t *v)
{
    return t == VL_TC_I32 ? vl_tc_get_i32(r, v) : bad(r, "field has wrong type (want i32)");
}

static int get_i64f(vl_tc_reader *r, vl_tc_type t, int64_t *v)
{
    return t == VL_TC_I64 ? vl_tc_get_i64(r, v) : bad(r, "field has wrong type (want i64)");
}

static int get_enumf(vl_tc_reader *r, vl_tc_type t, int *v)
{
    int32_t x;
    if (get_i32f(r, t, &x) < 0)
        return -1;
    *v = x;
    return 0;
}

static int get_bytesf(vl_tc_reader *r, vl_tc_type t, vl_pq_bytes *b)
{
    if (t != VL_TC_BINARY)
        return bad(r, "field has wrong type (want binary)");
    return vl_tc_get_binary(r, &b->p, &b->n);
}

static int get_boolf(vl_tc_reader *r, vl_tc_type t, int *v)
{
    if (t != VL_TC_TRUE && t != VL_TC_FALSE)
        return bad(r, "field has wrong type (want bool)");
    *v = t == VL_TC_TRUE;
    return 0;
}

static int enter_structf(vl_tc_reader *r, vl_tc_type t)
{
    return t == VL_TC_STRUCT ? vl_tc_struct_enter(r) : bad(r, "field has wrong type (want struct)");
}

/* List field header with element type want and at most cap elements. */
static int list_headerf(vl_tc_reader *r, vl_tc_type t, vl_tc_type want, uint32_t cap, uint32_t *n)
{
    vl_tc_type et;
    if (t != VL_TC_LIST)
        return bad(r, "field has wrong type (want list)");
    if (vl_tc_list_begin_read(r, &et, n) < 0)
        return -1;
    if (*n > 0 && et != want)
        return bad(r, "list has wrong element type");
    if (*n > cap)
        return bad(r, "list too long");
    return 0;
}

/* ---- decoders -------------------------------------------------------------- */

static int decode_stats(vl_tc_reader *r, vl_pq_stats *s)
{
    vl_tc_type t;
    int16_t id;
    int rc, b;
    memset(s, 0, sizeof *s);
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        switch (id) {
        case 3:
            rc = get_i64f(r, t, &s->null_count);
            s->has_null_count = 1;
            break;
        case 5: rc = get_bytesf(r, t, &s->max_value); break;
        case 6: rc = get_bytesf(r, t, &s->min_value); break;
        case 7:
        case 8: rc = get_boolf(r, t, &b); break;
        default: rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    return rc;
}

/* LogicalType is a union: remember which member is set. */
static int decode_logical_type(vl_tc_reader *r, int *lt)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        if (t == VL_TC_STRUCT)
            *lt = id;
        if (vl_tc_skip(r, t) < 0)
            return -1;
    }
    return rc;
}

static int decode_schema_elem(vl_tc_reader *r, vl_pq_schema_elem *e)
{
    vl_tc_type t;
    int16_t id;
    int rc, has_name = 0;
    memset(e, 0, sizeof *e);
    e->type = e->repetition = e->converted_type = -1;
    e->num_children = -1;
    if (vl_tc_struct_enter(r) < 0)
        return -1;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        switch (id) {
        case 1: rc = get_enumf(r, t, &e->type); break;
        case 3: rc = get_enumf(r, t, &e->repetition); break;
        case 4:
            rc = get_bytesf(r, t, &e->name);
            has_name = 1;
            break;
        case 5: rc = get_i32f(r, t, &e->num_children); break;
        case 6: rc = get_enumf(r, t, &e->converted_type); break;
        case 10:
            rc = enter_structf(r, t);
            if (rc == 0)
                rc = decode_logical_type(r, &e->logical_type);
            break;
        default: rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    if (rc == 0 && !has_name)
        return bad(r, "schema element without a name");
    return rc;
}

static int decode_column_meta(vl_tc_reader *r, vl_pq_column_meta *c)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    unsigned seen = 0;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        if (id >= 1 && id <= 12)
            seen |= 1u << id;
        switch (id) {
        case 1: rc = get_enumf(r, t, &c->type); break;
        case 2:
            if (c->encodings ||
                (rc = list_headerf(r, t, VL_TC_I32, MAX_SMALL_LIST, &c->n_encodings)) < 0)
                return bad(r, "bad encodings list");
            c->encodings = vl_calloc(c->n_encodings + 1, sizeof *c->encodings);
            for (uint32_t i = 0; i < c->n_encodings && rc == 0; i++)
                rc = vl_tc_get_i32(r, &c->encodings[i]);
            break;
        case 3:
            if (c->path || (rc = list_headerf(r, t, VL_TC_BINARY, MAX_SMALL_LIST, &c->n_path)) < 0)
                return bad(r, "bad path_in_schema list");
            c->path = vl_calloc(c->n_path + 1, sizeof *c->path);
            for (uint32_t i = 0; i < c->n_path && rc == 0; i++)
                rc = vl_tc_get_binary(r, &c->path[i].p, &c->path[i].n);
            break;
        case 4: rc = get_enumf(r, t, &c->codec); break;
        case 5: rc = get_i64f(r, t, &c->num_values); break;
        case 6: rc = get_i64f(r, t, &c->total_uncompressed_size); break;
        case 7: rc = get_i64f(r, t, &c->total_compressed_size); break;
        case 9: rc = get_i64f(r, t, &c->data_page_offset); break;
        case 11:
            rc = get_i64f(r, t, &c->dictionary_page_offset);
            c->has_dictionary_page_offset = 1;
            break;
        case 12:
            rc = enter_structf(r, t);
            if (rc == 0)
                rc = decode_stats(r, &c->stats);
            c->has_stats = 1;
            break;
        default: rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    const unsigned required = 1u << 1 | 1u << 2 | 1u << 3 | 1u << 4 | 1u << 5 | 1u << 7 | 1u << 9;
    if (rc == 0 && (seen & required) != required)
        return bad(r, "column metadata lacks a required field");
    return rc;
}

static int decode_column_chunk(vl_tc_reader *r, vl_pq_column_chunk *c)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    if (vl_tc_struct_enter(r) < 0)
        return -1;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        switch (id) {
        case 1:
            rc = vl_tc_skip(r, t);
            c->has_file_path = 1;
            break;
        case 2: rc = get_i64f(r, t, &c->file_offset); break;
        case 3:
            if (c->has_meta)
                return bad(r, "duplicate column metadata");
            rc = enter_structf(r, t);
            if (rc == 0)
                rc = decode_column_meta(r, &c->meta);
            c->has_meta = 1;
            break;
        default: rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    return rc;
}

static int decode_row_group(vl_tc_reader *r, vl_pq_row_group *g)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    unsigned seen = 0;
    if (vl_tc_struct_enter(r) < 0)
        return -1;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        switch (id) {
        case 1:
            if (g->columns || list_headerf(r, t, VL_TC_STRUCT, MAX_COLUMNS, &g->n_columns) < 0)
                return bad(r, "bad column chunk list");
            g->columns = vl_calloc(g->n_columns + 1, sizeof *g->columns);
            for (uint32_t i = 0; i < g->n_columns && rc >= 0; i++)
                rc = decode_column_chunk(r, &g->columns[i]);
            seen |= 1;
            break;
        case 2: rc = get_i64f(r, t, &g->total_byte_size); break;
        case 3:
            rc = get_i64f(r, t, &g->num_rows);
            seen |= 2;
            break;
        default: rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    if (rc == 0 && seen != 3)
        return bad(r, "row group lacks columns or num_rows");
    return rc;
}

static int decode_kv(vl_tc_reader *r, vl_pq_kv *kv)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    if (vl_tc_struct_enter(r) < 0)
        return -1;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        if (id == 1)
            rc = get_bytesf(r, t, &kv->key);
        else if (id == 2)
            rc = get_bytesf(r, t, &kv->value);
        else
            rc = vl_tc_skip(r, t);
        if (rc < 0)
            return -1;
    }
    if (rc == 0 && !kv->key.p)
        return bad(r, "key-value entry without a key");
    return rc;
}

static int decode_file_meta_fields(vl_tc_reader *r, vl_pq_file_meta *m)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    unsigned seen = 0;
    if (vl_tc_struct_enter(r) < 0)
        return -1;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        switch (id) {
        case 1:
            rc = get_i32f(r, t, &m->version);
            seen |= 1;
            break;
        case 2:
            if (m->schema || list_headerf(r, t, VL_TC_STRUCT, MAX_SCHEMA, &m->n_schema) < 0)
                return bad(r, "bad schema list");
            m->schema = vl_calloc(m->n_schema + 1, sizeof *m->schema);
            for (uint32_t i = 0; i < m->n_schema && rc >= 0; i++)
                rc = decode_schema_elem(r, &m->schema[i]);
            seen |= 2;
            break;
        case 3:
            rc = get_i64f(r, t, &m->num_rows);
            seen |= 4;
            break;
        case 4:
            if (m->row_groups ||
                list_headerf(r, t, VL_TC_STRUCT, MAX_ROW_GROUPS, &m->n_row_groups) < 0)
                return bad(r, "bad row group list");
            m->row_groups = vl_calloc(m->n_row_groups + 1, sizeof *m->row_groups);
            for (uint32_t i = 0; i < m->n_row_groups && rc >= 0; i++)
                rc = decode_row_group(r, &m->row_groups[i]);
            seen |= 8;
            break;
        case 5:
            if (m->kv || list_headerf(r, t, VL_TC_STRUCT, MAX_KV, &m->n_kv) < 0)
                return bad(r, "bad key-value list");
            m->kv = vl_calloc(m->n_kv + 1, sizeof *m->kv);
            for (uint32_t i = 0; i < m->n_kv && rc >= 0; i++)
                rc = decode_kv(r, &m->kv[i]);
            break;
        case 6: rc = get_bytesf(r, t, &m->created_by); break;
        default: rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    if (rc == 0 && seen != 15)
        return bad(r, "file metadata lacks a required field");
    return rc;
}

int vl_pq_decode_file_meta(const uint8_t *buf, size_t len, vl_pq_file_meta *m, const char **why)
{
    vl_tc_reader r;
    memset(m, 0, sizeof *m);
    vl_tc_reader_init(&r, buf, len);
    if (decode_file_meta_fields(&r, m) < 0 || (r.p != r.end && bad(&r, "trailing bytes") < 0)) {
        *why = r.err ? r.err : "malformed";
        vl_pq_file_meta_free(m);
        return -1;
    }
    return 0;
}

void vl_pq_file_meta_free(vl_pq_file_meta *m)
{
    for (uint32_t i = 0; m->row_groups && i < m->n_row_groups; i++) {
        vl_pq_row_group *g = &m->row_groups[i];
        for (uint32_t j = 0; g->columns && j < g->n_columns; j++) {
            free(g->columns[j].meta.encodings);
            free(g->columns[j].meta.path);
        }
        free(g->columns);
    }
    free(m->row_groups);
    free(m->schema);
    free(m->kv);
    memset(m, 0, sizeof *m);
}

static int decode_data_header(vl_tc_reader *r, vl_pq_page_header *h, int v2)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    unsigned seen = 0;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        if (id >= 1 && id <= 8)
            seen |= 1u << id;
        if (id == 1) {
            rc = get_i32f(r, t, &h->num_values);
        } else if (!v2 && id <= 4 && id >= 2) {
            int32_t *dst[] = {&h->encoding, &h->def_encoding, &h->rep_encoding};
            rc = get_i32f(r, t, dst[id - 2]);
        } else if (v2 && id >= 2 && id <= 6) {
            int32_t *dst[] = {&h->num_nulls, &h->num_rows, &h->encoding, &h->def_bytes,
                              &h->rep_bytes};
            rc = get_i32f(r, t, dst[id - 2]);
        } else if (v2 && id == 7) {
            rc = get_boolf(r, t, &h->is_compressed);
        } else if ((!v2 && id == 5) || (v2 && id == 8)) {
            rc = enter_structf(r, t);
            if (rc == 0)
                rc = decode_stats(r, &h->stats);
            h->has_stats = 1;
        } else {
            rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    unsigned required = v2 ? 0x7Eu : 0x1Eu;
    if (rc == 0 && (seen & required) != required)
        return bad(r, "data page header lacks a required field");
    return rc;
}

static int decode_dict_header(vl_tc_reader *r, vl_pq_page_header *h)
{
    vl_tc_type t;
    int16_t id;
    int rc;
    unsigned seen = 0;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        if (id == 1) {
            rc = get_i32f(r, t, &h->num_values);
            seen |= 1;
        } else if (id == 2) {
            rc = get_i32f(r, t, &h->encoding);
            seen |= 2;
        } else {
            rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    if (rc == 0 && seen != 3)
        return bad(r, "dictionary page header lacks a required field");
    return rc;
}

static int decode_page_header_fields(vl_tc_reader *r, vl_pq_page_header *h)
{
    vl_tc_type t;
    int16_t id;
    int rc, sub = 0;
    unsigned seen = 0;
    if (vl_tc_struct_enter(r) < 0)
        return -1;
    while ((rc = vl_tc_next_field(r, &t, &id)) == 1) {
        switch (id) {
        case 1:
            rc = get_enumf(r, t, &h->type);
            seen |= 1;
            break;
        case 2:
            rc = get_i32f(r, t, &h->uncompressed_size);
            seen |= 2;
            break;
        case 3:
            rc = get_i32f(r, t, &h->compressed_size);
            seen |= 4;
            break;
        case 5:
        case 7:
        case 8:
            if (sub)
                return bad(r, "page header has two page-type headers");
            sub = id;
            rc = enter_structf(r, t);
            if (rc == 0)
                rc = id == 7 ? decode_dict_header(r, h) : decode_data_header(r, h, id == 8);
            break;
        default: rc = vl_tc_skip(r, t);
        }
        if (rc < 0)
            return -1;
    }
    if (rc < 0)
        return -1;
    if (seen != 7)
        return bad(r, "page header lacks type or sizes");
    int want = h->type == VL_PQ_PAGE_DATA         ? 5
               : h->type == VL_PQ_PAGE_DICTIONARY ? 7
               : h->type == VL_PQ_PAGE_DATA_V2    ? 8
                                                  : sub;
    if (sub != want)
        return bad(r, "page header does not match its page type");
    return 0;
}

int vl_pq_decode_page_header(const uint8_t *buf, size_t len, vl_pq_page_header *h, size_t *used,
                             const char **why)
{
    vl_tc_reader r;
    memset(h, 0, sizeof *h);
    h->is_compressed = 1;
    vl_tc_reader_init(&r, buf, len);
    if (decode_page_header_fields(&r, h) < 0) {
        *why = r.err ? r.err : "malformed";
        return -1;
    }
    *used = vl_tc_reader_pos(&r, buf);
    return 0;
}

/* ---- encoders -------------------------------------------------------------- */

static void put_i32_field(vl_tc_writer *w, int16_t id, int32_t v)
{
    vl_tc_field(w, VL_TC_I32, id);
    vl_tc_put_i32(w, v);
}

static void put_i64_field(vl_tc_writer *w, int16_t id, int64_t v)
{
    vl_tc_field(w, VL_TC_I64, id);
    vl_tc_put_i64(w, v);
}

static void put_bytes_field(vl_tc_writer *w, int16_t id, vl_pq_bytes b)
{
    vl_tc_field(w, VL_TC_BINARY, id);
    vl_tc_put_binary(w, b.p, b.n);
}

static void encode_stats(vl_tc_writer *w, int16_t id, const vl_pq_stats *s)
{
    vl_tc_field(w, VL_TC_STRUCT, id);
    vl_tc_struct_begin(w);
    if (s->has_null_count)
        put_i64_field(w, 3, s->null_count);
    if (s->max_value.p)
        put_bytes_field(w, 5, s->max_value);
    if (s->min_value.p)
        put_bytes_field(w, 6, s->min_value);
    if (s->has_exact && s->max_value.p)
        vl_tc_field_bool(w, 7, 1);
    if (s->has_exact && s->min_value.p)
        vl_tc_field_bool(w, 8, 1);
    vl_tc_struct_end(w);
}

static void encode_schema_elem(vl_tc_writer *w, const vl_pq_schema_elem *e)
{
    vl_tc_struct_begin(w);
    if (e->type >= 0)
        put_i32_field(w, 1, e->type);
    if (e->repetition >= 0)
        put_i32_field(w, 3, e->repetition);
    put_bytes_field(w, 4, e->name);
    if (e->num_children >= 0)
        put_i32_field(w, 5, e->num_children);
    if (e->converted_type >= 0)
        put_i32_field(w, 6, e->converted_type);
    if (e->logical_type > 0) {
        vl_tc_field(w, VL_TC_STRUCT, 10);
        vl_tc_struct_begin(w);
        vl_tc_field(w, VL_TC_STRUCT, (int16_t)e->logical_type);
        vl_tc_struct_begin(w);
        vl_tc_struct_end(w);
        vl_tc_struct_end(w);
    }
    vl_tc_struct_end(w);
}

static void encode_column_meta(vl_tc_writer *w, const vl_pq_column_meta *c)
{
    vl_tc_field(w, VL_TC_STRUCT, 3);
    vl_tc_struct_begin(w);
    put_i32_field(w, 1, c->type);
    vl_tc_field(w, VL_TC_LIST, 2);
    vl_tc_list_begin(w, VL_TC_I32, c->n_encodings);
    for (uint32_t i = 0; i < c->n_encodings; i++)
        vl_tc_put_i32(w, c->encodings[i]);
    vl_tc_field(w, VL_TC_LIST, 3);
    vl_tc_list_begin(w, VL_TC_BINARY, c->n_path);
    for (uint32_t i = 0; i < c->n_path; i++)
        vl_tc_put_binary(w, c->path[i].p, c->path[i].n);
    put_i32_field(w, 4, c->codec);
    put_i64_field(w, 5, c->num_values);
    put_i64_field(w, 6, c->total_uncompressed_size);
    put_i64_field(w, 7, c->total_compressed_size);
    put_i64_field(w, 9, c->data_page_offset);
    if (c->has_dictionary_page_offset)
        put_i64_field(w, 11, c->dictionary_page_offset);
    if (c->has_stats)
        encode_stats(w, 12, &c->stats);
    vl_tc_struct_end(w);
}

static void encode_row_group(vl_tc_writer *w, const vl_pq_row_group *g)
{
    vl_tc_struct_begin(w);
    vl_tc_field(w, VL_TC_LIST, 1);
    vl_tc_list_begin(w, VL_TC_STRUCT, g->n_columns);
    for (uint32_t i = 0; i < g->n_columns; i++) {
        vl_tc_struct_begin(w);
        put_i64_field(w, 2, g->columns[i].file_offset);
        if (g->columns[i].has_meta)
            encode_column_meta(w, &g->columns[i].meta);
        vl_tc_struct_end(w);
    }
    put_i64_field(w, 2, g->total_byte_size);
    put_i64_field(w, 3, g->num_rows);
    if (g->has_offsets) {
        put_i64_field(w, 5, g->file_offset);
        put_i64_field(w, 6, g->total_compressed_size);
    }
    vl_tc_struct_end(w);
}

void vl_pq_encode_file_meta(vl_buf *out, const vl_pq_file_meta *m)
{
    vl_tc_writer w;
    vl_tc_writer_init(&w, out);
    vl_tc_struct_begin(&w);
    put_i32_field(&w, 1, m->version);
    vl_tc_field(&w, VL_TC_LIST, 2);
    vl_tc_list_begin(&w, VL_TC_STRUCT, m->n_schema);
    for (uint32_t i = 0; i < m->n_schema; i++)
        encode_schema_elem(&w, &m->schema[i]);
    put_i64_field(&w, 3, m->num_rows);
    vl_tc_field(&w, VL_TC_LIST, 4);
    vl_tc_list_begin(&w, VL_TC_STRUCT, m->n_row_groups);
    for (uint32_t i = 0; i < m->n_row_groups; i++)
        encode_row_group(&w, &m->row_groups[i]);
    if (m->n_kv) {
        vl_tc_field(&w, VL_TC_LIST, 5);
        vl_tc_list_begin(&w, VL_TC_STRUCT, m->n_kv);
        for (uint32_t i = 0; i < m->n_kv; i++) {
            vl_tc_struct_begin(&w);
            put_bytes_field(&w, 1, m->kv[i].key);
            if (m->kv[i].value.p)
                put_bytes_field(&w, 2, m->kv[i].value);
            vl_tc_struct_end(&w);
        }
    }
    if (m->created_by.p)
        put_bytes_field(&w, 6, m->created_by);
    if (m->n_column_orders) {
        /* ColumnOrder is a union; member 1 is TypeDefinedOrder (empty). */
        vl_tc_field(&w, VL_TC_LIST, 7);
        vl_tc_list_begin(&w, VL_TC_STRUCT, m->n_column_orders);
        for (uint32_t i = 0; i < m->n_column_orders; i++) {
            vl_tc_struct_begin(&w);
            vl_tc_field(&w, VL_TC_STRUCT, 1);
            vl_tc_struct_begin(&w);
            vl_tc_struct_end(&w);
            vl_tc_struct_end(&w);
        }
    }
    vl_tc_struct_end(&w);
}

void vl_pq_encode_page_header(vl_buf *out, const vl_pq_page_header *h)
{
    vl_tc_writer w;
    vl_tc_writer_init(&w, out);
    vl_tc_struct_begin(&w);
    put_i32_field(&w, 1, h->type);
    put_i32_field(&w, 2, h->uncompressed_size);
    put_i32_field(&w, 3, h->compressed_size);
    if (h->type == VL_PQ_PAGE_DICTIONARY) {
        vl_tc_field(&w, VL_TC_STRUCT, 7);
        vl_tc_struct_begin(&w);
        put_i32_field(&w, 1, h->num_values);
        put_i32_field(&w, 2, h->encoding);
        vl_tc_struct_end(&w);
    } else if (h->type == VL_PQ_PAGE_DATA_V2) {
        vl_tc_field(&w, VL_TC_STRUCT, 8);
        vl_tc_struct_begin(&w);
        put_i32_field(&w, 1, h->num_values);
        put_i32_field(&w, 2, h->num_nulls);
        put_i32_field(&w, 3, h->num_rows);
        put_i32_field(&w, 4, h->encoding);
        put_i32_field(&w, 5, h->def_bytes);
        put_i32_field(&w, 6, h->rep_bytes);
        vl_tc_field_bool(&w, 7, h->is_compressed);
        if (h->has_stats)
            encode_stats(&w, 8, &h->stats);
        vl_tc_struct_end(&w);
    } else {
        vl_tc_field(&w, VL_TC_STRUCT, 5);
        vl_tc_struct_begin(&w);
        put_i32_field(&w, 1, h->num_values);
        put_i32_field(&w, 2, h->encoding);
        put_i32_field(&w, 3, h->def_encoding);
        put_i32_field(&w, 4, h->rep_encoding);
        if (h->has_stats)
            encode_stats(&w, 5, &h->stats);
        vl_tc_struct_end(&w);
    }
    vl_tc_struct_end(&w);
}
