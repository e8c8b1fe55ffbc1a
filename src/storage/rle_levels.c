/* rle_levels.c - see rle_levels.h. */
#include "storage/rle_levels.h"

#include <string.h>

int vl_rle_bit_width(uint32_t max_value)
{
    int w = 0;
    while (max_value) {
        w++;
        max_value >>= 1;
    }
    return w;
}

static size_t run_length(const uint32_t *vals, size_t n, size_t i)
{
    size_t j = i + 1;
    while (j < n && vals[j] == vals[i])
        j++;
    return j - i;
}

static void put_rle_run(vl_buf *out, uint32_t v, size_t count, int bit_width)
{
    vl_buf_put_varint(out, (uint64_t)count << 1);
    for (int b = 0; b < (bit_width + 7) / 8; b++)
        vl_buf_put_byte(out, (uint8_t)(v >> (8 * b)));
}

/* Bit-pack vals[i..i+groups*8), padding past n with zeros. */
static void put_packed_run(vl_buf *out, const uint32_t *vals, size_t n, size_t i, size_t groups,
                           int bit_width)
{
    vl_buf_put_varint(out, (uint64_t)groups << 1 | 1);
    size_t nbytes = groups * (size_t)bit_width;
    vl_buf_reserve(out, nbytes);
    uint8_t *dst = out->data + out->len;
    memset(dst, 0, nbytes);
    size_t bit = 0;
    for (size_t k = 0; k < groups * 8; k++, bit += (size_t)bit_width) {
        uint64_t v = i + k < n ? vals[i + k] : 0;
        for (int b = 0; b < bit_width; b++)
            if (v >> b & 1)
                dst[(bit + (size_t)b) >> 3] |= (uint8_t)(1u << ((bit + (size_t)b) & 7));
    }
    out->len += nbytes;
}

void vl_rle_encode(vl_buf *out, const uint32_t *vals, size_t n, int bit_width)
{
    size_t i = 0;
    while (i < n) {
        size_t r = run_length(vals, n, i);
        if (r >= 8 || bit_width == 0) {
            put_rle_run(out, vals[i], r, bit_width);
            i += r;
            continue;
        }
        /* Gather short runs up to the next long one, then round up to whole
         * groups of 8 (borrowing from the long run, or padding at the end). */
        size_t j = i;
        while (j < n && (r = run_length(vals, n, j)) < 8)
            j += r;
        size_t groups = (j - i + 7) / 8;
        put_packed_run(out, vals, n, i, groups, bit_width);
        i = i + groups * 8 < n ? i + groups * 8 : n;
    }
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int s = 0; s < 63; s += 7) {
        if (*p >= end)
            return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7F) << s;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

int vl_rle_decode(const uint8_t *data, size_t len, int bit_width, uint32_t *out, size_t n,
                  const char **why)
{
    const uint8_t *p = data, *end = data + len;
    size_t got = 0;
    if (bit_width < 0 || bit_width > 32) {
        *why = "bit width out of range";
        return -1;
    }
    while (got < n) {
        uint64_t h;
        if (get_varint(&p, end, &h) < 0) {
            *why = p >= end ? "level/index data ends early" : "bad run header";
            return -1;
        }
        uint64_t count = h >> 1;
        if (!(h & 1)) {
            size_t vb = (size_t)(bit_width + 7) / 8;
            if ((size_t)(end - p) < vb) {
                *why = "level/index data ends early";
                return -1;
            }
            uint64_t v = 0;
            for (size_t b = 0; b < vb; b++)
                v |= (uint64_t)p[b] << (8 * b);
            p += vb;
            if (bit_width < 32 && v >> bit_width) {
                *why = "run value wider than its bit width";
                return -1;
            }
            size_t take = count < n - got ? (size_t)count : n - got;
            for (size_t k = 0; k < take; k++)
                out[got + k] = (uint32_t)v;
            got += take;
        } else {
            /* count groups of 8 values, bit_width bytes per group */
            uint64_t left = (uint64_t)(end - p);
            if (bit_width && (count > left || count * (uint64_t)bit_width > left)) {
                *why = "level/index data ends early";
                return -1;
            }
            uint64_t vals = count * 8;
            size_t take = vals < n - got ? (size_t)vals : n - got;
            size_t bit = 0;
            for (size_t k = 0; k < take; k++, bit += (size_t)bit_width) {
                uint32_t v = 0;
                for (int b = 0; b < bit_width; b++) {
                    size_t at = bit + (size_t)b;
                    v |= (uint32_t)(p[at >> 3] >> (at & 7) & 1) << b;
                }
                out[got + k] = v;
            }
            got += take;
            p += count * (uint64_t)bit_width;
        }
    }
    return 0;
}
