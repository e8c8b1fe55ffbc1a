/*
 * tail_index.h - small in-memory indexes over the rows no segment index
 * covers yet (the "tail": the memtable and segments still waiting for their
 * build), so that a search scans only a few thousand rows exactly however
 * long an insert stream runs.
 *
 * Decisions (measured, bench/results/2026-12-02-tail.md):
 *  - A segment's HNSW build (ef_construction 200) absorbs a few thousand
 *    rows a second on this shared 2-core machine; a 50-client stream writes
 *    15-36k.  No schedule of segment builds keeps up, so the tail is cut
 *    into pieces of tail_index_rows (4096) live rows, each indexed on its
 *    own thread by a cheap HNSW: SQ8 codes, M 16, ef_construction 32
 *    (debian-minilm, 4096 x 384: about 40k rows/s on one core, recall@10
 *    within the piece 0.91 at EF 24; 200 would be 7k rows/s).  Pieces are
 *    built one at a time, beside the segment build, never by a writer:
 *    writes never wait, and rows waiting for a piece are scanned exactly.
 *  - A piece is a list of rows of the collection's current row store
 *    generation, ascending, taken from a cursor that only moves forward:
 *    the first tail_index_rows rows at or after it that are live and not in
 *    an indexed segment.  The builder copies their vectors (the rows never
 *    change once written), so a piece may skip rows and span chunks.  Pieces
 *    therefore never interleave: every row of piece k is below every row of
 *    piece k+1.
 *  - A piece is searched like a segment index (index_set.h): the index set
 *    maps each of its rows that is live and not in an indexed segment when
 *    the set is built; the walk filters by the snapshot as for segments.
 *    So MVCC, deletes and overwrites need nothing new, and a row reached
 *    through a segment index is never reached through a piece too.
 *  - Publishing a finished piece builds a new index set (one pass over the
 *    generation's rows, as every flush and segment build already does),
 *    keeping rows deleted after the durable LSN as if live (index_set.h):
 *    under a stream a piece publishes every few hundred ms, and a set
 *    without those rows would send the durable snapshot of every search in
 *    the next fsync's window back to waiting for that fsync.
 *  - A piece outlives the reclaim of dead rows: the new generation keeps
 *    the live rows in order, so a row's new number is the count of live rows
 *    before it, and the piece's rows are renumbered (a piece in flight too).
 *    CLEAR, or any other replacement of the generation, drops every piece.
 *  - A piece whose rows are all dead or covered by segment indexes is
 *    dropped at the next publish.  Rows it held that a later compaction
 *    uncovers again are scanned exactly until their segment is indexed (the
 *    cursor does not go back).
 *  - If the stream outruns the builder, the rows behind the cursor wait and
 *    are scanned exactly: nothing is lost, results stay exact for them, only
 *    slower; INFO shows unindexed_rows growing.
 *  - Pieces live in memory only; a restart rebuilds them from the rows the
 *    WAL replays (the segment indexes are the persistent ones).
 */
#ifndef VL_CORE_TAIL_INDEX_H
#define VL_CORE_TAIL_INDEX_H

#include "core/engine_internal.h"
#include "core/index_set.h"

/** Owner: start building the next piece of some collection, unless a build
 *  runs or no collection has a full piece of rows waiting. */
void vl_tail_start(vl_engine *e);
/** Owner: adopt a finished piece and publish a new index set (wait: ask a
 *  running build to stop and join it). */
void vl_tail_finish(vl_engine *e, int wait);
/** Owner, before c->rows is replaced by fresh = vl_rowstore_compact(c->rows):
 *  renumber the pieces (and a build in flight) for fresh. */
void vl_tail_rebase(vl_engine *e, vl_collection *c, vl_rowstore *fresh);
/** Owner: forget every piece of c (CLEAR, close). */
void vl_tail_drop(vl_collection *c);
/** Owner: c's pieces for an index set over c->rows (*n of them; the array
 *  lives until the next call on c).  Pieces of another generation are
 *  dropped first. */
const vl_row_index *vl_tail_pieces(vl_collection *c, size_t *n);
/** Owner: forget the pieces set left out (no row of theirs mapped). */
void vl_tail_prune(vl_collection *c, const vl_index_set *set);

#endif
