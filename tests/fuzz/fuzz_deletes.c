/*
 * fuzz_deletes.c - deletion files (vl_deletes_decode).
 *
 * Input: one control byte, then the file.  Bits 1..7 of the control byte
 * scale the segment's row count (0 rows .. all of uint32); with
 * VL_FUZZ_FIX_CRC the harness overwrites the file's last four bytes with
 * the CRC of what precedes them.  A file that decodes lists strictly
 * ascending rows below the row count and encodes back to the same bytes.
 */
#include "fuzz.h"
#include "storage/crc32c.h"
#include "storage/deletes.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = size - 1;
    uint8_t *file = malloc(len ? len : 1);
    memcpy(file, data + 1, len);
    if ((data[0] & VL_FUZZ_FIX_CRC) && len >= 4) {
        uint32_t crc = vl_crc32c(0, file, len - 4);
        memcpy(file + len - 4, &crc, 4);
    }
    unsigned scale = data[0] >> 1;
    uint64_t segment_rows = scale == 127 ? UINT32_MAX : (uint64_t)scale * scale * scale;
    uint32_t *rows = NULL;
    uint64_t count = 0;
    vl_error err = {{0}};
    if (vl_deletes_decode(file, len, segment_rows, "fuzz", &rows, &count, &err) == VL_OK) {
        for (uint64_t i = 0; i < count; i++)
            VL_FUZZ_CHECK(rows[i] < segment_rows && (i == 0 || rows[i] > rows[i - 1]));
        uint8_t *again;
        size_t n;
        vl_deletes_encode(rows, count, &again, &n);
        VL_FUZZ_CHECK(n == len && memcmp(again, file, len) == 0);
        free(again);
        free(rows);
    } else {
        VL_FUZZ_CHECK(rows == NULL && count == 0 && err.msg[0] != '\0');
    }
    free(file);
    return 0;
}
