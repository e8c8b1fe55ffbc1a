/*
 * manifest.h - versioned manifests: what one committed version of a
 * collection is made of.
 *
 * Object "tables/<coll>/manifests/<version, 20 digits>.json" is written once
 * with put_if_absent: a commit of version N+1 fails cleanly with
 * VL_ERR_CONFLICT when another writer already committed N+1, and a
 * committed manifest is never overwritten.  The newest version is found by
 * listing the manifests prefix.  The JSON layout is specified in
 * docs/storage-format.md; its last member, "crc32c", is the CRC-32C of the
 * document with that member's value written as "00000000", so a flipped
 * byte anywhere is detected while the file stays plain JSON.
 */
#ifndef VL_STORAGE_MANIFEST_H
#define VL_STORAGE_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "storage/objstore.h"
#include "vexlake.h"

#define VL_OBJECT_NAME_MAX 192

/* An index file of one segment, as a manifest lists it. */
typedef struct {
    char name[VL_OBJECT_NAME_MAX]; /* "" when none */
    vl_index_kind kind;            /* hnsw or ivf */
    uint64_t bytes;
    uint32_t crc32c;
} vl_index_file;

typedef struct {
    char name[VL_OBJECT_NAME_MAX]; /* object name, e.g. tables/default/segments/...parquet */
    uint64_t rows;                 /* rows in the file, deleted ones included */
    uint64_t bytes;
    uint32_t crc32c;
    int64_t min_seq, max_seq;
    char del_name[VL_OBJECT_NAME_MAX]; /* deletion file, "" when none */
    uint64_t del_count;
    uint64_t del_bytes;
    uint32_t del_crc32c;
    vl_index_file idx; /* the segment's index file; idx.name "" when none */
} vl_manifest_segment;

typedef struct {
    char collection[VL_MAX_COLLECTION_NAME + 1];
    uint64_t version; /* 1, 2, ... */
    uint64_t parent;  /* version this one was built on, 0 for the first */
    int64_t created_ms;
    uint32_t dim; /* 0 while no dimension is fixed */
    vl_metric metric;
    uint64_t wal_lsn;   /* every change to the collection up to this LSN is in the version */
    uint64_t live_rows; /* rows minus deletions, over all segments */
    vl_manifest_segment *segs;
    size_t nsegs;
} vl_manifest;

/** Serialize m as JSON (*out malloc'd, NUL terminated). */
vl_status vl_manifest_encode(const vl_manifest *m, char **out, size_t *len, vl_error *err);
/** Parse and verify a manifest; what names the object in error messages. */
vl_status vl_manifest_decode(const char *buf, size_t len, const char *what, vl_manifest *m,
                             vl_error *err);
void vl_manifest_free(vl_manifest *m);
/** Deep copy (segments array duplicated). */
void vl_manifest_copy(vl_manifest *dst, const vl_manifest *src);

/** Object name of a collection's manifest version. */
void vl_manifest_object(char *out, size_t cap, const char *coll, uint64_t version);

/** put_if_absent of m's object; VL_ERR_CONFLICT if that version exists. */
vl_status vl_manifest_commit(vl_objstore *s, const vl_manifest *m, vl_error *err);
/** Versions present for coll, ascending (*out malloc'd, may be NULL when n == 0). */
vl_status vl_manifest_versions(vl_objstore *s, const char *coll, uint64_t **out, size_t *n,
                               vl_error *err);
vl_status vl_manifest_load(vl_objstore *s, const char *coll, uint64_t version, vl_manifest *m,
                           vl_error *err);

#endif
