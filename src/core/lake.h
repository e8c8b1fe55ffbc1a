/*
 * lake.h - a collection's committed state in the lake, and the background
 * jobs (flush, compaction) that produce new versions.
 *
 * Decisions:
 *  - The head manifest is the last committed version.  Everything newer
 *    lives in memory and the WAL: rows not yet in a segment (the memtable,
 *    VL_SEG_NONE in the row store), deletions of segment rows not yet in a
 *    deletion file (pending), and a CLEAR not yet committed.
 *  - Commits are serialized: one background job at a time, engine-wide.
 *    A job works from inputs captured on the owner thread (a snapshot and
 *    copies of what it needs) and touches no shared state while it runs;
 *    its result is applied on the owner thread when it completes.
 *  - A flush covers exactly the changes up to one LSN F: memtable rows
 *    visible at F, pending deletions with LSN <= F, a CLEAR at or before F.
 *    The WAL is fsynced up to F before the manifest is committed, so a
 *    committed version never covers log records that could be lost.
 *  - Compaction rewrites segments dropping committed deletions only, so the
 *    new version has exactly the content of the old one (same wal_lsn).
 *  - A commit that got no answer (the store timed out or went away) may
 *    have landed.  Its manifest is kept (unsure) and, before the next job
 *    of the collection, read back: if the store holds exactly it, that
 *    version is adopted as retained history and the next commit goes
 *    above it; if the version is absent it is free again.  Without this a
 *    lost answer would make every later commit of that version conflict.
 *  - Segment ids are stable in-memory numbers; rows point at them, so a
 *    compaction only remaps the rows of the segments it replaced.
 */
#ifndef VL_CORE_LAKE_H
#define VL_CORE_LAKE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "storage/manifest.h"
#include "vexlake.h"

typedef struct {
    uint32_t row;
    uint64_t lsn;
} vl_pending_delete;

typedef struct {
    uint32_t id;
    struct vl_seg_index *index; /* loaded or built index, NULL: scanned exactly */
    int index_damaged;          /* its listed file failed to load: rebuild counts as one */
    int index_unlisted;         /* file stored (and in head.segs), not yet committed */
    int index_outdated;         /* loaded from an older file format: written anew */
    vl_index_file file;         /* that file, while unlisted */
    uint32_t *deleted;          /* committed deletions, ascending */
    uint64_t ndeleted;
    vl_pending_delete *pending; /* not yet committed, ascending LSN */
    size_t npending, cap_pending;
} vl_lake_segment;

typedef struct {
    uint64_t version;
    int64_t created_ms;
    uint64_t rows;
} vl_lake_version;

typedef struct {
    vl_manifest head;      /* head.version == 0: nothing committed yet */
    vl_lake_segment *segs; /* parallel to head.segs */
    uint32_t next_seg_id;
    uint64_t cleared_lsn;      /* CLEAR after head.wal_lsn, not committed; 0 if none */
    uint64_t last_change;      /* LSN of the newest change to the collection */
    uint64_t unflushed_puts;   /* puts since the head (auto-flush trigger) */
    int64_t dirty_since_ms;    /* monotonic ms of the oldest change no flush has taken; 0: none */
    vl_lake_version *retained; /* committed versions still readable, ascending */
    size_t nretained;
    uint64_t top_version;  /* highest version number in the store (the next commit is +1) */
    uint64_t stored_bytes; /* segment, deletion and index files in the store, as the last GC listed
                              them */
    char *unsure;          /* manifest of a commit with no answer (it may have landed); or NULL */
    size_t unsure_len;
    uint64_t unsure_version;
} vl_lake;

void vl_lake_init(vl_lake *l, const char *coll, vl_metric metric);
void vl_lake_free(vl_lake *l);

/** Free what a segment's bookkeeping holds (deletions, index). */
void vl_lake_segment_free(vl_lake_segment *g);
/** Index into l->segs of segment id, or -1. */
long vl_lake_find_segment(const vl_lake *l, uint32_t id);
/** Record that row seg_row of segment id was deleted at lsn. */
void vl_lake_pending_delete(vl_lake *l, uint32_t id, uint32_t seg_row, uint64_t lsn);
/** Append a segment (with its committed deletions, taken over) to the
 *  in-memory state; returns its new id. */
uint32_t vl_lake_add_segment(vl_lake *l, uint32_t *deleted, uint64_t ndeleted);
/** 1 when changes exist that no committed version holds. */
int vl_lake_dirty(const vl_lake *l);
/** Remember a committed version as retained. */
void vl_lake_retain(vl_lake *l, const vl_manifest *m);

#endif
