/*
 * rowstore.h - the in-memory rows of one collection generation, readable
 * by searches while the writer appends (MVCC without locks).
 *
 * Decisions:
 *  - Rows are append-only.  An overwrite appends a new row and stamps the
 *    old one with the LSN of the change (del_lsn); a delete only stamps.
 *    A snapshot is (row count, LSN): row r is visible iff r < count and
 *    its del_lsn is 0 or greater than the snapshot's LSN.  Readers never
 *    wait for the writer and never see a half-written row.
 *  - Rows live in fixed-size chunks (VL_CHUNK_ROWS) that never move; the
 *    chunk directory is replaced (copy, then publish with a release store)
 *    when it fills, and old directories are retired, not freed, until the
 *    generation dies, so a reader holding an old directory stays safe.
 *  - The row count is published with a release store after the row is
 *    complete; readers load it with acquire before touching rows.
 *  - A generation is reference counted.  CLEAR starts a new generation;
 *    snapshots keep the old one alive until they close.
 *  - Each row remembers where it lives in the lake: a segment id and its
 *    row number inside that segment file, or VL_SEG_NONE while it exists
 *    only in the WAL (the "memtable").  Only the writer changes these, and
 *    never while a background lake job reads them (see lake.h).
 *  - Dead rows are reclaimed only when the generation is replaced (CLEAR,
 *    or a rebuild after many overwrites).
 */
#ifndef VL_CORE_ROWSTORE_H
#define VL_CORE_ROWSTORE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/keymap.h"
#include "vexlake.h"

#define VL_CHUNK_ROWS 4096u
#define VL_SEG_NONE UINT32_MAX
#define VL_ROW_NONE UINT32_MAX

typedef struct {
    uint32_t len;
    char data[];
} vl_key;

typedef struct {
    float *vecs;                             /* VL_CHUNK_ROWS * dim, 64-byte aligned */
    double *inv_norms;                       /* 1/|v| per row, for cosine: 1 / sqrt(vl_dot_f64) */
    vl_key **keys;                           /* per row, immutable once set */
    uint64_t *put_lsn;                       /* LSN that wrote the row */
    uint32_t *seg_id;                        /* segment holding the row, or VL_SEG_NONE */
    uint32_t *seg_row;                       /* row number inside that segment */
    _Atomic uint64_t del_lsn[VL_CHUNK_ROWS]; /* 0 while live */
} vl_chunk;

typedef struct vl_chunk_dir {
    uint32_t cap;
    struct vl_chunk_dir *retired_next; /* chain of replaced directories */
    vl_chunk *chunks[];
} vl_chunk_dir;

typedef struct {
    _Atomic uint32_t refs;
    uint32_t dim; /* 0 until the first put */
    vl_metric metric;
    _Atomic(vl_chunk_dir *) dir;
    _Atomic uint64_t nrows;
    uint64_t live;      /* writer only */
    uint64_t key_bytes; /* writer only: bytes of the key copies, dead rows' too */
    uint64_t deletions; /* writer only: rows marked deleted so far */
    vl_keymap map;      /* writer only */
    vl_chunk_dir *retired;
    /* Rows dead at or below this LSN may be missing (this generation was
     * rebuilt without them, or started empty at a CLEAR): a snapshot of it
     * is exact only at this LSN or later.  Writer only. */
    uint64_t since_lsn;
} vl_rowstore;

vl_rowstore *vl_rowstore_new(vl_metric metric);
void vl_rowstore_ref(vl_rowstore *rs);
/** Drop a reference; the last one frees everything. Thread safe. */
void vl_rowstore_unref(vl_rowstore *rs);

/** Writer: store key -> vec at lsn (dim already validated), located in
 *  segment seg_id at seg_row (VL_SEG_NONE for a fresh write).  Returns the
 *  row it replaced (now deleted at lsn) or VL_ROW_NONE. */
uint32_t vl_rowstore_put(vl_rowstore *rs, const void *key, size_t keylen, const float *vec,
                         uint32_t dim, uint64_t lsn, uint32_t seg_id, uint32_t seg_row);
/** Writer: delete key at lsn; returns the deleted row or VL_ROW_NONE. */
uint32_t vl_rowstore_delete(vl_rowstore *rs, const void *key, size_t keylen, uint64_t lsn);
/** Writer: the live vector of key, or NULL. */
const float *vl_rowstore_get(const vl_rowstore *rs, const void *key, size_t keylen);
/** The live row of key, or VL_ROW_NONE (writer, or an immutable store). */
uint32_t vl_rowstore_find(const vl_rowstore *rs, const void *key, size_t keylen);

/** Writer: a new generation holding only the rows live now, in the same
 *  order and with the same LSNs and lake locations (reclaims the memory of
 *  overwritten and deleted rows; snapshots keep the old generation).  Its
 *  since_lsn is the newest deletion it left out. */
vl_rowstore *vl_rowstore_compact(const vl_rowstore *rs);

/** Where row lives in the lake. */
void vl_rowstore_location(const vl_rowstore *rs, uint32_t row, uint32_t *seg_id, uint32_t *seg_row);
/** Writer: record that row now lives in segment seg_id at seg_row. */
void vl_rowstore_set_location(vl_rowstore *rs, uint32_t row, uint32_t seg_id, uint32_t seg_row);
/** LSN that deleted row (0 while live). */
uint64_t vl_rowstore_del_lsn(const vl_rowstore *rs, uint32_t row);
/** How many of the first nrows rows were written at or below lsn (any
 *  thread, nrows loaded with acquire).  Rows written above an LSN are
 *  always a suffix: live writes append in LSN order, and every row a
 *  generation starts with (loaded, or kept by a rebuild) is at most the
 *  LSN it was started at. */
uint64_t vl_rowstore_rows_at(const vl_rowstore *rs, uint64_t nrows, uint64_t lsn);

/** What a generation holds, in bytes asked of malloc (allocator overhead
 *  is not counted).  Chunks are counted whole: a chunk's vectors are
 *  allocated for VL_CHUNK_ROWS rows when its first row arrives. */
typedef struct {
    uint64_t vectors; /* vectors and their norms */
    uint64_t keys;    /* key copies */
    uint64_t index;   /* key map, per-row metadata, chunk directories */
} vl_rowstore_mem;

/** Writer (or an immutable store): the bytes rs holds. */
void vl_rowstore_memory(const vl_rowstore *rs, vl_rowstore_mem *m);
/** Writer: the bytes a put of a keylen-byte key of dim floats would add
 *  (its key copy, plus a new chunk, directory or key map when it needs
 *  one); rs NULL means a store not created yet. */
uint64_t vl_rowstore_put_cost(const vl_rowstore *rs, size_t keylen, uint32_t dim);

/* Reader helpers (any thread, given a count loaded with acquire). */
static inline vl_chunk *vl_rowstore_chunk(vl_chunk_dir *dir, uint64_t row)
{
    return dir->chunks[row / VL_CHUNK_ROWS];
}

#endif
