/* thrift_compact.c - see thrift_compact.h. */
#include "storage/thrift_compact.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"

/* ---- vl_buf ---------------------------------------------------------------- */

void vl_buf_reserve(vl_buf *b, size_t extra)
{
    if (b->cap - b->len >= extra)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    b->data = vl_realloc(b->data, cap);
    b->cap = cap;
}

void vl_buf_put(vl_buf *b, const void *p, size_t n)
{
    if (!n)
        return;
    vl_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
}

void vl_buf_put_byte(vl_buf *b, uint8_t v)
{
    vl_buf_reserve(b, 1);
    b->data[b->len++] = v;
}

void vl_buf_put_u32le(vl_buf *b, uint32_t v)
{
    uint8_t t[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    vl_buf_put(b, t, 4);
}

void vl_buf_put_varint(vl_buf *b, uint64_t v)
{
    uint8_t t[10];
    size_t n = 0;
    while (v >= 0x80) {
        t[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    t[n++] = (uint8_t)v;
    vl_buf_put(b, t, n);
}

void vl_buf_free(vl_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

/* ---- writer ---------------------------------------------------------------- */

static uint64_t zigzag64(int64_t v)
{
    return ((uint64_t)v << 1) ^ (0 - ((uint64_t)v >> 63));
}

static int64_t unzigzag64(uint64_t v)
{
    return (int64_t)(v >> 1) ^ -(int64_t)(v & 1);
}

void vl_tc_writer_init(vl_tc_writer *w, vl_buf *out)
{
    memset(w, 0, sizeof *w);
    w->out = out;
}

void vl_tc_field(vl_tc_writer *w, vl_tc_type t, int16_t id)
{
    int16_t *last = &w->last_id[w->depth > 0 ? w->depth - 1 : 0];
    int delta = (int)id - (int)*last;
    if (delta > 0 && delta <= 15) {
        vl_buf_put_byte(w->out, (uint8_t)(delta << 4 | (int)t));
    } else {
        vl_buf_put_byte(w->out, (uint8_t)t);
        vl_buf_put_varint(w->out, zigzag64(id));
    }
    *last = id;
}

void vl_tc_field_bool(vl_tc_writer *w, int16_t id, int v)
{
    vl_tc_field(w, v ? VL_TC_TRUE : VL_TC_FALSE, id);
}

void vl_tc_put_byte(vl_tc_writer *w, int8_t v)
{
    vl_buf_put_byte(w->out, (uint8_t)v);
}

void vl_tc_put_i16(vl_tc_writer *w, int16_t v)
{
    vl_buf_put_varint(w->out, zigzag64(v));
}

void vl_tc_put_i32(vl_tc_writer *w, int32_t v)
{
    vl_buf_put_varint(w->out, zigzag64(v));
}

void vl_tc_put_i64(vl_tc_writer *w, int64_t v)
{
    vl_buf_put_varint(w->out, zigzag64(v));
}

void vl_tc_put_double(vl_tc_writer *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, 8);
    uint8_t t[8];
    for (int i = 0; i < 8; i++)
        t[i] = (uint8_t)(u >> (8 * i));
    vl_buf_put(w->out, t, 8);
}

void vl_tc_put_binary(vl_tc_writer *w, const void *p, size_t n)
{
    vl_buf_put_varint(w->out, n);
    vl_buf_put(w->out, p, n);
}

void vl_tc_put_bool_elem(vl_tc_writer *w, int v)
{
    vl_buf_put_byte(w->out, v ? 1 : 2);
}

void vl_tc_list_begin(vl_tc_writer *w, vl_tc_type elem, uint32_t size)
{
    if (size < 15) {
        vl_buf_put_byte(w->out, (uint8_t)(size << 4 | (uint32_t)elem));
    } else {
        vl_buf_put_byte(w->out, (uint8_t)(0xF0 | (int)elem));
        vl_buf_put_varint(w->out, size);
    }
}

void vl_tc_map_begin(vl_tc_writer *w, vl_tc_type key, vl_tc_type val, uint32_t size)
{
    vl_buf_put_varint(w->out, size);
    if (size)
        vl_buf_put_byte(w->out, (uint8_t)((int)key << 4 | (int)val));
}

void vl_tc_struct_begin(vl_tc_writer *w)
{
    if (w->depth < VL_TC_MAX_DEPTH)
        w->last_id[w->depth] = 0;
    w->depth++;
}

void vl_tc_struct_end(vl_tc_writer *w)
{
    vl_buf_put_byte(w->out, VL_TC_STOP);
    if (w->depth > 0)
        w->depth--;
}

/* ---- reader ---------------------------------------------------------------- */

static int fail(vl_tc_reader *r, const char *why)
{
    if (!r->err)
        r->err = why;
    return -1;
}

void vl_tc_reader_init(vl_tc_reader *r, const uint8_t *p, size_t len)
{
    memset(r, 0, sizeof *r);
    r->p = p;
    r->end = p + len;
}

size_t vl_tc_reader_pos(const vl_tc_reader *r, const uint8_t *start)
{
    return (size_t)(r->p - start);
}

static int get_varint(vl_tc_reader *r, uint64_t *out, int max_bytes)
{
    uint64_t v = 0;
    if (r->err)
        return -1;
    for (int i = 0; i < max_bytes; i++) {
        if (r->p >= r->end)
            return fail(r, "truncated varint");
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7F) << (7 * i);
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return fail(r, "varint too long");
}

static int get_zigzag(vl_tc_reader *r, int64_t *v, int bits)
{
    uint64_t u;
    if (get_varint(r, &u, (bits + 6) / 7) < 0)
        return -1;
    if (bits < 64 && (u >> bits) != 0)
        return fail(r, "integer out of range");
    *v = unzigzag64(u);
    return 0;
}

int vl_tc_get_byte(vl_tc_reader *r, int8_t *v)
{
    if (r->err)
        return -1;
    if (r->p >= r->end)
        return fail(r, "truncated byte");
    *v = (int8_t)*r->p++;
    return 0;
}

int vl_tc_get_i16(vl_tc_reader *r, int16_t *v)
{
    int64_t x;
    if (get_zigzag(r, &x, 16) < 0)
        return -1;
    *v = (int16_t)x;
    return 0;
}

int vl_tc_get_i32(vl_tc_reader *r, int32_t *v)
{
    int64_t x;
    if (get_zigzag(r, &x, 32) < 0)
        return -1;
    *v = (int32_t)x;
    return 0;
}

int vl_tc_get_i64(vl_tc_reader *r, int64_t *v)
{
    return get_zigzag(r, v, 64);
}

int vl_tc_get_double(vl_tc_reader *r, double *v)
{
    if (r->err)
        return -1;
    if (r->end - r->p < 8)
        return fail(r, "truncated double");
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u |= (uint64_t)r->p[i] << (8 * i);
    r->p += 8;
    memcpy(v, &u, 8);
    return 0;
}

int vl_tc_get_binary(vl_tc_reader *r, const uint8_t **p, uint32_t *n)
{
    uint64_t len;
    if (get_varint(r, &len, 5) < 0)
        return -1;
    if (len > (uint64_t)(r->end - r->p))
        return fail(r, "binary length beyond end of input");
    *p = r->p;
    *n = (uint32_t)len;
    r->p += len;
    return 0;
}

int vl_tc_get_bool_elem(vl_tc_reader *r, int *v)
{
    int8_t b;
    if (vl_tc_get_byte(r, &b) < 0)
        return -1;
    if (b != 0 && b != 1 && b != 2)
        return fail(r, "bad bool value");
    *v = b == 1;
    return 0;
}

static int valid_elem_type(int t)
{
    return t >= VL_TC_TRUE && t <= VL_TC_UUID;
}

int vl_tc_list_begin_read(vl_tc_reader *r, vl_tc_type *elem, uint32_t *size)
{
    int8_t h;
    if (vl_tc_get_byte(r, &h) < 0)
        return -1;
    uint64_t n = ((uint8_t)h) >> 4;
    int t = h & 0x0F;
    if (n == 15 && get_varint(r, &n, 5) < 0)
        return -1;
    if (n > 0 && !valid_elem_type(t))
        return fail(r, "bad list element type");
    if (n > (uint64_t)(r->end - r->p))
        return fail(r, "list size beyond end of input");
    *elem = (vl_tc_type)t;
    *size = (uint32_t)n;
    return 0;
}

int vl_tc_map_begin_read(vl_tc_reader *r, vl_tc_type *key, vl_tc_type *val, uint32_t *size)
{
    uint64_t n;
    if (get_varint(r, &n, 5) < 0)
        return -1;
    *size = 0;
    *key = *val = VL_TC_STOP;
    if (n == 0)
        return 0;
    int8_t kv;
    if (vl_tc_get_byte(r, &kv) < 0)
        return -1;
    int k = ((uint8_t)kv) >> 4, v = kv & 0x0F;
    if (!valid_elem_type(k) || !valid_elem_type(v))
        return fail(r, "bad map key/value type");
    if (n > (uint64_t)(r->end - r->p) / 2)
        return fail(r, "map size beyond end of input");
    *key = (vl_tc_type)k;
    *val = (vl_tc_type)v;
    *size = (uint32_t)n;
    return 0;
}

int vl_tc_struct_enter(vl_tc_reader *r)
{
    if (r->err)
        return -1;
    if (r->depth >= VL_TC_MAX_DEPTH)
        return fail(r, "nesting too deep");
    r->last_id[r->depth++] = 0;
    return 0;
}

int vl_tc_next_field(vl_tc_reader *r, vl_tc_type *type, int16_t *id)
{
    int8_t h;
    if (r->depth <= 0)
        return fail(r, "field read outside a struct");
    if (vl_tc_get_byte(r, &h) < 0)
        return -1;
    int t = h & 0x0F, delta = ((uint8_t)h) >> 4;
    if (t == VL_TC_STOP) {
        if (delta != 0)
            return fail(r, "bad stop byte");
        r->depth--;
        return 0;
    }
    if (!valid_elem_type(t))
        return fail(r, "bad field type");
    int16_t *last = &r->last_id[r->depth - 1];
    if (delta) {
        int nid = *last + delta;
        if (nid > INT16_MAX)
            return fail(r, "field id out of range");
        *id = (int16_t)nid;
    } else if (vl_tc_get_i16(r, id) < 0) {
        return -1;
    }
    *last = *id;
    *type = (vl_tc_type)t;
    return 1;
}

/* Skip one value; as_elem: inside a list/set/map, where bools take a byte. */
static int skip_value(vl_tc_reader *r, vl_tc_type t, int as_elem)
{
    int8_t b;
    int64_t i;
    double d;
    const uint8_t *p;
    uint32_t n;
    vl_tc_type et, vt;
    switch (t) {
    case VL_TC_TRUE:
    case VL_TC_FALSE: {
        int v;
        return as_elem ? vl_tc_get_bool_elem(r, &v) : 0;
    }
    case VL_TC_BYTE: return vl_tc_get_byte(r, &b);
    case VL_TC_I16:
    case VL_TC_I32:
    case VL_TC_I64: return vl_tc_get_i64(r, &i);
    case VL_TC_DOUBLE: return vl_tc_get_double(r, &d);
    case VL_TC_BINARY: return vl_tc_get_binary(r, &p, &n);
    case VL_TC_UUID:
        if (r->end - r->p < 16)
            return fail(r, "truncated uuid");
        r->p += 16;
        return 0;
    case VL_TC_LIST:
    case VL_TC_SET:
        if (vl_tc_list_begin_read(r, &et, &n) < 0)
            return -1;
        if (r->depth >= VL_TC_MAX_DEPTH)
            return fail(r, "nesting too deep");
        r->depth++;
        for (uint32_t k = 0; k < n; k++)
            if (skip_value(r, et, 1) < 0)
                return -1;
        r->depth--;
        return 0;
    case VL_TC_MAP:
        if (vl_tc_map_begin_read(r, &et, &vt, &n) < 0)
            return -1;
        if (r->depth >= VL_TC_MAX_DEPTH)
            return fail(r, "nesting too deep");
        r->depth++;
        for (uint32_t k = 0; k < n; k++)
            if (skip_value(r, et, 1) < 0 || skip_value(r, vt, 1) < 0)
                return -1;
        r->depth--;
        return 0;
    case VL_TC_STRUCT: {
        vl_tc_type ft;
        int16_t id;
        int rc;
        if (vl_tc_struct_enter(r) < 0)
            return -1;
        while ((rc = vl_tc_next_field(r, &ft, &id)) == 1)
            if (skip_value(r, ft, 0) < 0)
                return -1;
        return rc;
    }
    default: return fail(r, "bad type to skip");
    }
}

int vl_tc_skip(vl_tc_reader *r, vl_tc_type t)
{
    if (r->err)
        return -1;
    return skip_value(r, t, 0);
}
