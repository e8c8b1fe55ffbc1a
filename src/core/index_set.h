/*
 * index_set.h - which rows of a row store generation a search reaches
 * through segment indexes, and which it must scan exactly.
 *
 * Decisions:
 *  - A set is immutable once built and reference counted; a snapshot pins
 *    the set current when it opened, so a flush, compaction or index build
 *    that publishes a new set never changes what a running search reads.
 *  - It is built on the owner thread by one pass over the generation's rows
 *    (their segment locations are writer-only state): each live row in an
 *    indexed segment goes into that segment's seg_row -> row map; every
 *    other live row goes into the exact-scan ranges.  Rows dead when the
 *    set is built are in neither: no snapshot that can pin this set sees
 *    them (their deletion LSN is at or below the LSN the set was built at;
 *    dead_lsn is the newest such LSN, for snapshots older than the build).
 *  - Rows appended after the build (rows >= base) are scanned exactly: the
 *    memtable.  The flush thresholds bound it; a flush publishes a new set.
 *  - Every live row below base is in exactly one place, so a search that
 *    uses the set plus the tail covers the snapshot once.
 *  - A set belongs to one generation (rows).  CLEAR and the reclaim of dead
 *    rows replace the generation, and with it the set.
 *  - A set built with keep_lsn below the newest deletion keeps the rows
 *    deleted above it as if live, so a durable snapshot (snapshot.c) that
 *    lags the writer by an fsync can still use it instead of waiting for
 *    the fsync; the search then always filters (deletions UINT64_MAX).
 *    Tail pieces publish a set every few hundred ms under a stream, each
 *    with deletions a moment old, so they build with keep_lsn = durable.
 *  - Tail indexes (tail_index.h) are entries too, after the segments': an
 *    index over a list of rows of the generation instead of a segment's
 *    rows.  Each live row below base not reached through a segment index
 *    goes to the tail index holding it, if any, else to the exact-scan
 *    ranges; so searching entries plus ranges still covers every row once,
 *    and search.c walks both kinds of entry alike.
 */
#ifndef VL_CORE_INDEX_SET_H
#define VL_CORE_INDEX_SET_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "core/index/seg_index.h"
#include "core/rowstore.h"

typedef struct {
    uint32_t seg_id;
    vl_seg_index *ix;
    uint32_t *map;    /* seg_row -> row of the generation, VL_ROW_NONE when not live */
    uint32_t max_row; /* the largest row in map */
    int whole;        /* every seg_row maps to a row live when the set was built */
    int tail;         /* a tail index (tail_index.h), not a segment's */
} vl_index_entry;

/** An index over a list of rows of a generation (a tail index): its row i
 *  is rows[i], VL_ROW_NONE when that row is gone (reclaimed). */
typedef struct {
    vl_seg_index *ix;
    const uint32_t *rows;
} vl_row_index;

typedef struct {
    uint64_t lo, hi;
} vl_row_range;

typedef struct vl_index_set {
    _Atomic uint32_t refs;
    const vl_rowstore *rows; /* identity only: the generation the maps point into */
    uint64_t base;           /* rows [0, base) are classified */
    vl_index_entry *entries;
    size_t n;
    vl_row_range *scan; /* live rows below base outside every index */
    size_t nscan;
    uint64_t dead_lsn;     /* newest deletion among the rows left out: a snapshot
                            * may use the set only at this LSN or later */
    uint64_t deletions;    /* the generation's deletion count when built (rowstore.h);
                            * UINT64_MAX when a dead row was kept (keep_lsn) */
    uint64_t covered;      /* live rows reached through an index (tail ones included) */
    uint64_t unindexed;    /* live rows in scan */
    uint64_t tail_covered; /* live rows reached through a tail index */
    size_t ntails;         /* tail entries (the last ntails of entries) */
} vl_index_set;

/**
 * Classify rows [0, nrows) of rs (writer: the owner thread, or an immutable
 * store).  ids[i] / ixs[i] for i < n: the indexes by segment id (NULL
 * entries are skipped); tails[0..ntails): tail indexes over rows of rs, whose
 * row lists do not overlap.  Rows deleted above keep_lsn are classified as
 * if live (a durable snapshot at keep_lsn still sees them; UINT64_MAX: none
 * is), so the set's dead_lsn stays at or below keep_lsn.  Returns NULL when
 * no index is given (everything is scanned); the set takes references to
 * the indexes it uses.
 */
vl_index_set *vl_index_set_build(const vl_rowstore *rs, uint64_t nrows, const uint32_t *ids,
                                 vl_seg_index *const *ixs, size_t n, const vl_row_index *tails,
                                 size_t ntails, uint64_t keep_lsn);
void vl_index_set_ref(vl_index_set *s);
/** Thread safe; NULL is fine. */
void vl_index_set_unref(vl_index_set *s);
/** Heap bytes of the set and of the indexes it references. */
uint64_t vl_index_set_memory(const vl_index_set *s);

#endif
