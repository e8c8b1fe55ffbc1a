/*
 * rle_levels.h - Parquet's RLE / bit-packing hybrid encoding, used for
 * repetition and definition levels and for dictionary indices.
 *
 * The data is a sequence of runs, each starting with a ULEB128 varint
 * header h:
 *   h & 1 == 0   RLE run: h >> 1 repetitions of one value stored in
 *                ceil(bit_width / 8) little-endian bytes;
 *   h & 1 == 1   bit-packed run: (h >> 1) groups of 8 values, each value
 *                bit_width bits, packed from the least significant bit of
 *                the first byte on; (h >> 1) * bit_width bytes.
 * The value count is known from elsewhere (the page header); a final
 * bit-packed group may be padded with values that are ignored.
 *
 * Data pages v1 prefix level data with its byte length (u32 LE); v2 gives
 * the lengths in the page header; dictionary indices are preceded by one
 * byte holding the bit width.  Those framings are the caller's business.
 */
#ifndef VL_STORAGE_RLE_LEVELS_H
#define VL_STORAGE_RLE_LEVELS_H

#include <stddef.h>
#include <stdint.h>

#include "storage/thrift_compact.h"

/** Bits needed to store values 0..max_value (0 for max_value 0). */
int vl_rle_bit_width(uint32_t max_value);

/** Append the hybrid encoding of vals[0..n) (each < 2^bit_width,
 *  bit_width 0..32) to out: RLE runs for repeats of 8 or more, bit-packed
 *  groups otherwise. */
void vl_rle_encode(vl_buf *out, const uint32_t *vals, size_t n, int bit_width);

/** Decode exactly n values from data[0..len) into out.  Returns 0, or -1
 *  with a static message in *why when the data ends early, a run header is
 *  malformed or a value does not fit bit_width.  Never reads outside
 *  data[0..len) nor writes outside out[0..n). */
int vl_rle_decode(const uint8_t *data, size_t len, int bit_width, uint32_t *out, size_t n,
                  const char **why);

#endif
