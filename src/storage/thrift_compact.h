/*
 * thrift_compact.h - the Apache Thrift compact protocol, just enough of it
 * for Parquet metadata (FileMetaData in the footer, PageHeader before every
 * page).  Written from the protocol specification.
 *
 * Encoding summary (all multi-byte integers are ULEB128 varints of the
 * zigzag-mapped value; doubles are 8 bytes little-endian):
 *
 *   field header   one byte (delta << 4) | type when the field id is 1..15
 *                  above the previous id of the same struct, else the type
 *                  byte followed by the id as a zigzag varint i16
 *   bool field     the value lives in the type nibble: 1 = true, 2 = false
 *   binary         varint length, then the bytes
 *   list / set     one byte (size << 4) | elem_type when size < 15, else
 *                  0xF0 | elem_type followed by the size as a varint;
 *                  bool elements are one byte each (1 true, 0 or 2 false)
 *   map            varint size; if size > 0 one byte (key << 4) | value
 *   struct         fields, then a stop byte 0
 *
 * The writer appends to a growable vl_buf.  The reader is a bounds-checked
 * cursor over an untrusted buffer: every read checks the remaining length,
 * nesting is capped at VL_TC_MAX_DEPTH, and a list may not claim more
 * elements than there are bytes left (no element is encoded in zero
 * bytes), so no length from the input can make us read out of bounds or
 * allocate out of proportion to the input.  The first failure is sticky:
 * r->err holds a static message and every later call fails too.
 */
#ifndef VL_STORAGE_THRIFT_COMPACT_H
#define VL_STORAGE_THRIFT_COMPACT_H

#include <stddef.h>
#include <stdint.h>

/** Compact protocol type codes (field headers, list element types). */
typedef enum {
    VL_TC_STOP = 0,
    VL_TC_TRUE = 1, /* bool true in a field header; any bool as a list type */
    VL_TC_FALSE = 2,
    VL_TC_BYTE = 3,
    VL_TC_I16 = 4,
    VL_TC_I32 = 5,
    VL_TC_I64 = 6,
    VL_TC_DOUBLE = 7,
    VL_TC_BINARY = 8,
    VL_TC_LIST = 9,
    VL_TC_SET = 10,
    VL_TC_MAP = 11,
    VL_TC_STRUCT = 12,
    VL_TC_UUID = 13
} vl_tc_type;

/** Deepest struct/list/map nesting accepted (Parquet needs 5). */
#define VL_TC_MAX_DEPTH 32

/* ---- growable byte buffer ------------------------------------------------ */

typedef struct {
    uint8_t *data;
    size_t len, cap;
} vl_buf;

void vl_buf_reserve(vl_buf *b, size_t extra);
void vl_buf_put(vl_buf *b, const void *p, size_t n);
void vl_buf_put_byte(vl_buf *b, uint8_t v);
void vl_buf_put_u32le(vl_buf *b, uint32_t v);
void vl_buf_put_varint(vl_buf *b, uint64_t v);
void vl_buf_free(vl_buf *b);

/* ---- writer --------------------------------------------------------------- */

typedef struct {
    vl_buf *out;
    int depth;                        /* open structs */
    int16_t last_id[VL_TC_MAX_DEPTH]; /* previous field id per open struct */
} vl_tc_writer;

void vl_tc_writer_init(vl_tc_writer *w, vl_buf *out);
/** Field header of type t with id; then write the value with the
 *  vl_tc_put_* call of that type. */
void vl_tc_field(vl_tc_writer *w, vl_tc_type t, int16_t id);
/** A complete bool field (the value is in the header). */
void vl_tc_field_bool(vl_tc_writer *w, int16_t id, int v);
void vl_tc_put_byte(vl_tc_writer *w, int8_t v);
void vl_tc_put_i16(vl_tc_writer *w, int16_t v);
void vl_tc_put_i32(vl_tc_writer *w, int32_t v);
void vl_tc_put_i64(vl_tc_writer *w, int64_t v);
void vl_tc_put_double(vl_tc_writer *w, double v);
void vl_tc_put_binary(vl_tc_writer *w, const void *p, size_t n);
/** A bool list element (lists carry bools as whole bytes). */
void vl_tc_put_bool_elem(vl_tc_writer *w, int v);
void vl_tc_list_begin(vl_tc_writer *w, vl_tc_type elem, uint32_t size);
void vl_tc_map_begin(vl_tc_writer *w, vl_tc_type key, vl_tc_type val, uint32_t size);
/** Open a struct: after a struct field header, as a list element, or at top level. */
void vl_tc_struct_begin(vl_tc_writer *w);
/** Write the stop byte and close the innermost struct. */
void vl_tc_struct_end(vl_tc_writer *w);

/* ---- reader --------------------------------------------------------------- */

typedef struct {
    const uint8_t *p, *end;
    int depth;
    int16_t last_id[VL_TC_MAX_DEPTH];
    const char *err; /* NULL while all is well */
} vl_tc_reader;

void vl_tc_reader_init(vl_tc_reader *r, const uint8_t *p, size_t len);
/** Bytes consumed so far from start. */
size_t vl_tc_reader_pos(const vl_tc_reader *r, const uint8_t *start);

/** Enter a struct (the value after a struct field header or a struct list
 *  element, or a top-level struct).  0 on success, -1 on error. */
int vl_tc_struct_enter(vl_tc_reader *r);
/** Next field of the innermost struct: 1 with type and id set, 0 at the stop
 *  byte (the struct is then left), -1 on error.  For bool fields *type is
 *  VL_TC_TRUE or VL_TC_FALSE and no value follows. */
int vl_tc_next_field(vl_tc_reader *r, vl_tc_type *type, int16_t *id);

int vl_tc_get_byte(vl_tc_reader *r, int8_t *v);
int vl_tc_get_i16(vl_tc_reader *r, int16_t *v);
int vl_tc_get_i32(vl_tc_reader *r, int32_t *v);
int vl_tc_get_i64(vl_tc_reader *r, int64_t *v);
int vl_tc_get_double(vl_tc_reader *r, double *v);
/** Binary/string: *p points into the input, valid while it is. */
int vl_tc_get_binary(vl_tc_reader *r, const uint8_t **p, uint32_t *n);
int vl_tc_get_bool_elem(vl_tc_reader *r, int *v);
/** List or set header; *size never exceeds the bytes left. */
int vl_tc_list_begin_read(vl_tc_reader *r, vl_tc_type *elem, uint32_t *size);
int vl_tc_map_begin_read(vl_tc_reader *r, vl_tc_type *key, vl_tc_type *val, uint32_t *size);
/** Skip one value of type t (field type or list element type), recursing
 *  into structs, lists, sets and maps. */
int vl_tc_skip(vl_tc_reader *r, vl_tc_type t);

#endif
