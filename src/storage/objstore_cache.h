/*
 * objstore_cache.h - a local-disk cache in front of a remote object store
 * (the S3 store, with --storage): immutable lake objects are read from the
 * store once and from local files afterwards.
 *
 * The cache is itself an object store (a decorator): every verb goes to
 * the inner store, and get / get_range of a cached object are answered
 * locally.  Only objects the lake never rewrites are kept
 * (vl_objstore_cache_keeps); descriptors, listings and the WAL always go
 * to the store.  Which versions exist is always a listing, so the cache
 * can never serve a stale version.
 * Each cached file carries its own CRC-32C; a file that fails it is
 * deleted and fetched again.  Files may be deleted by anyone at any time:
 * that is a miss.  LRU within a byte capacity.
 */
#ifndef VL_STORAGE_OBJSTORE_CACHE_H
#define VL_STORAGE_OBJSTORE_CACHE_H

#include <stdint.h>

#include "storage/objstore.h"

typedef struct {
    uint64_t hits;      /**< get / get_range answered from a cached file */
    uint64_t misses;    /**< reads of a cacheable object that went to the store */
    uint64_t bytes;     /**< bytes of the cached files (their trailers included) */
    uint64_t files;     /**< cached files */
    uint64_t capacity;  /**< the byte limit */
    uint64_t evictions; /**< files removed to stay within capacity */
    uint64_t dropped;   /**< files removed because they failed their checksum */
    uint64_t errors;    /**< copies not made (disk full, permissions): reads still work */
} vl_cache_stats;

/** 1 when name is an object the cache keeps: a segment, deletion file,
 *  index file or manifest ("tables/<collection>/segments/...",
 *  ".../deletes/...", ".../indexes/...", ".../manifests/...").  Segment,
 *  deletion and index file names carry their version, and a manifest is
 *  only ever created with put_if_absent, so the lake never writes one name
 *  with two contents. */
int vl_objstore_cache_keeps(const char *name);

/**
 * Open a cache of at most capacity bytes in dir (created if missing) in
 * front of inner.  Files already in dir are adopted, newest use first (by
 * mtime), and the oldest removed past capacity.  One process per
 * directory: VL_ERR_BUSY, naming the holder's pid, while another has it
 * open.  On VL_OK the cache owns inner (closing the cache closes it); on
 * failure the caller still does.
 */
vl_status vl_objstore_cache_open(vl_objstore *inner, const char *dir, uint64_t capacity,
                                 vl_objstore **out, vl_error *err);

/** The counters of s, a cache (all zero for any other store). */
void vl_objstore_cache_stats(vl_objstore *s, vl_cache_stats *out);

#endif
