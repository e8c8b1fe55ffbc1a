/*
 * le_bytes.h - little-endian fixed-width fields of the index files
 * (hnsw_io.c, ivf_io.c; layouts in docs/storage-format.md).
 *
 * Written byte by byte, so they mean the same on any host; GCC and Clang
 * turn each into one load or store on a little-endian one.  (The two
 * files had one copy each: hnsw_io.c's byte-wise, ivf_io.c's a memcpy in
 * host order, the same bytes on the little-endian hosts ivf_io.c allows.)
 */
#ifndef VL_CORE_INDEX_LE_BYTES_H
#define VL_CORE_INDEX_LE_BYTES_H

#include <stdint.h>
#include <string.h>

static inline void vl_le_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vl_le_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static inline void vl_le_put_f32(uint8_t *p, float f)
{
    uint32_t v;
    memcpy(&v, &f, 4);
    vl_le_put32(p, v);
}

static inline uint32_t vl_le_get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t vl_le_get64(const uint8_t *p)
{
    return (uint64_t)vl_le_get32(p) | (uint64_t)vl_le_get32(p + 4) << 32;
}

static inline float vl_le_get_f32(const uint8_t *p)
{
    uint32_t v = vl_le_get32(p);
    float f;
    memcpy(&f, &v, 4);
    return f;
}

#endif
