/*
 * keymap.h - key -> row index, open addressing with linear probing.
 *
 * Owned by the engine's writer thread only; searches never touch it (they
 * scan rows), so it needs no locking.  Deletion uses backward shifting, so
 * there are no tombstones and probe lengths stay short under churn.  The
 * map stores hashes beside rows so a probe compares keys only on a hash
 * match.
 */
#ifndef VL_CORE_KEYMAP_H
#define VL_CORE_KEYMAP_H

#include <stddef.h>
#include <stdint.h>

#define VL_KEYMAP_NONE UINT32_MAX

/** Fetch the key bytes of a row (the map does not own keys). */
typedef void (*vl_keymap_key_fn)(void *ctx, uint32_t row, const char **key, size_t *len);

typedef struct {
    uint64_t *hashes; /* 0 marks an empty slot */
    uint32_t *rows;
    size_t cap; /* power of two */
    size_t count;
    vl_keymap_key_fn key_of;
    void *ctx;
} vl_keymap;

void vl_keymap_init(vl_keymap *m, vl_keymap_key_fn key_of, void *ctx);
void vl_keymap_free(vl_keymap *m);
uint64_t vl_keymap_hash(const void *key, size_t len);
/** Row of key, or VL_KEYMAP_NONE. */
uint32_t vl_keymap_get(const vl_keymap *m, const void *key, size_t len, uint64_t hash);
/** Insert or replace; returns the previous row or VL_KEYMAP_NONE. */
uint32_t vl_keymap_set(vl_keymap *m, const void *key, size_t len, uint64_t hash, uint32_t row);
/** Remove key; returns its row or VL_KEYMAP_NONE. */
uint32_t vl_keymap_remove(vl_keymap *m, const void *key, size_t len, uint64_t hash);

#endif
