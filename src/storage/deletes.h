/*
 * deletes.h - deletion files: which rows of one segment are deleted.
 *
 * Segments are immutable, so deleting or overwriting a row that already
 * lives in a segment is recorded in a deletion file that the next manifest
 * links to the segment.  A deletion file holds the complete set for its
 * segment as of its version (not a delta), so reading a version needs one
 * file per segment.  Layout (little-endian), see docs/storage-format.md:
 *
 *     "VLDEL001"  u64 count  count x u32 row  u32 crc32c(all before)
 *
 * Rows are strictly ascending.
 */
#ifndef VL_STORAGE_DELETES_H
#define VL_STORAGE_DELETES_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

/** Encode rows (ascending, unique) into *out (malloc'd). */
void vl_deletes_encode(const uint32_t *rows, uint64_t count, uint8_t **out, size_t *len);
/** Decode; rows must be < segment_rows.  *rows malloc'd. */
vl_status vl_deletes_decode(const uint8_t *buf, size_t len, uint64_t segment_rows, const char *what,
                            uint32_t **rows, uint64_t *count, vl_error *err);

#endif
