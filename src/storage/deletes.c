/* deletes.c - deletion files; see deletes.h. */
#include "storage/deletes.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "storage/crc32c.h"
#include "util/alloc.h"
#include "util/error.h"

#define MAGIC "VLDEL001"
#define HEADER (8 + 8)

void vl_deletes_encode(const uint32_t *rows, uint64_t count, uint8_t **out, size_t *len)
{
    size_t n = HEADER + (size_t)count * 4 + 4;
    uint8_t *b = vl_malloc(n);
    memcpy(b, MAGIC, 8);
    memcpy(b + 8, &count, 8); /* little-endian host (asserted in wal.c) */
    if (count)
        memcpy(b + HEADER, rows, (size_t)count * 4);
    uint32_t crc = vl_crc32c(0, b, n - 4);
    memcpy(b + n - 4, &crc, 4);
    *out = b;
    *len = n;
}

vl_status vl_deletes_decode(const uint8_t *buf, size_t len, uint64_t segment_rows, const char *what,
                            uint32_t **rows, uint64_t *count, vl_error *err)
{
    uint64_t n;
    uint32_t crc;
    *rows = NULL;
    *count = 0;
    if (len < HEADER + 4 || memcmp(buf, MAGIC, 8) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: not a deletion file", what);
    memcpy(&n, buf + 8, 8);
    if (n > (len - HEADER - 4) / 4 || HEADER + n * 4 + 4 != len)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: length does not match its row count", what);
    memcpy(&crc, buf + len - 4, 4);
    if (vl_crc32c(0, buf, len - 4) != crc)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: checksum mismatch", what);
    uint32_t *r = vl_malloc((size_t)(n ? n : 1) * 4);
    if (n)
        memcpy(r, buf + HEADER, (size_t)n * 4);
    for (uint64_t i = 0; i < n; i++) {
        if (r[i] >= segment_rows || (i && r[i] <= r[i - 1])) {
            uint32_t bad = r[i];
            free(r);
            return vl_fail(err, VL_ERR_CORRUPT,
                           "%s: row %" PRIu32 " at position %" PRIu64 " is out of order or range",
                           what, bad, i);
        }
    }
    *rows = r;
    *count = n;
    return VL_OK;
}
