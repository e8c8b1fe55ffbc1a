/* keymap.c - see keymap.h. */
#include "core/keymap.h"

#include <stdlib.h>
#include <string.h>

#include "util/alloc.h"
#include "util/siphash.h"

void vl_keymap_init(vl_keymap *m, vl_keymap_key_fn key_of, void *ctx)
{
    memset(m, 0, sizeof *m);
    m->key_of = key_of;
    m->ctx = ctx;
}

void vl_keymap_free(vl_keymap *m)
{
    free(m->hashes);
    free(m->rows);
    m->hashes = NULL;
    m->rows = NULL;
    m->cap = m->count = 0;
}

uint64_t vl_keymap_hash(const void *key, size_t len)
{
    uint64_t h = vl_siphash(key, len, vl_hash_seed());
    return h ? h : 1; /* 0 is reserved for empty slots */
}

static int slot_matches(const vl_keymap *m, size_t i, const void *key, size_t len, uint64_t hash)
{
    if (m->hashes[i] != hash)
        return 0;
    const char *k;
    size_t klen;
    m->key_of(m->ctx, m->rows[i], &k, &klen);
    return klen == len && memcmp(k, key, len) == 0;
}

/* Slot holding key, or the empty slot where it would go. */
static size_t find_slot(const vl_keymap *m, const void *key, size_t len, uint64_t hash)
{
    size_t mask = m->cap - 1, i = hash & mask;
    while (m->hashes[i] && !slot_matches(m, i, key, len, hash))
        i = (i + 1) & mask;
    return i;
}

static void grow(vl_keymap *m)
{
    size_t old_cap = m->cap;
    uint64_t *old_h = m->hashes;
    uint32_t *old_r = m->rows;
    m->cap = old_cap ? old_cap * 2 : 64;
    m->hashes = vl_calloc(m->cap, sizeof *m->hashes);
    m->rows = vl_malloc(m->cap * sizeof *m->rows);
    for (size_t i = 0; i < old_cap; i++) {
        if (!old_h[i])
            continue;
        size_t j = old_h[i] & (m->cap - 1);
        while (m->hashes[j])
            j = (j + 1) & (m->cap - 1);
        m->hashes[j] = old_h[i];
        m->rows[j] = old_r[i];
    }
    free(old_h);
    free(old_r);
}

uint32_t vl_keymap_get(const vl_keymap *m, const void *key, size_t len, uint64_t hash)
{
    if (!m->cap)
        return VL_KEYMAP_NONE;
    size_t i = find_slot(m, key, len, hash);
    return m->hashes[i] ? m->rows[i] : VL_KEYMAP_NONE;
}

uint32_t vl_keymap_set(vl_keymap *m, const void *key, size_t len, uint64_t hash, uint32_t row)
{
    if ((m->count + 1) * 4 > m->cap * 3) /* keep load below 3/4 */
        grow(m);
    size_t i = find_slot(m, key, len, hash);
    uint32_t prev = m->hashes[i] ? m->rows[i] : VL_KEYMAP_NONE;
    if (!m->hashes[i])
        m->count++;
    m->hashes[i] = hash;
    m->rows[i] = row;
    return prev;
}

uint32_t vl_keymap_remove(vl_keymap *m, const void *key, size_t len, uint64_t hash)
{
    if (!m->cap)
        return VL_KEYMAP_NONE;
    size_t mask = m->cap - 1, i = find_slot(m, key, len, hash);
    if (!m->hashes[i])
        return VL_KEYMAP_NONE;
    uint32_t row = m->rows[i];
    /* Backward shift: pull later members of the probe run into the hole
     * whenever the hole lies between their home slot and where they are. */
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->hashes[j])
            break;
        size_t home = m->hashes[j] & mask;
        int movable = (hole <= j) ? (home <= hole || home > j) : (home <= hole && home > j);
        if (movable) {
            m->hashes[hole] = m->hashes[j];
            m->rows[hole] = m->rows[j];
            hole = j;
        }
    }
    m->hashes[hole] = 0;
    m->count--;
    return row;
}
