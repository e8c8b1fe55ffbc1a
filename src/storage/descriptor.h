/*
 * descriptor.h - the small per-collection descriptor object.
 *
 * Object "collections/<name>.desc" in the object store records what a
 * collection is (name and metric) so a restart, even under a different
 * --metric, keeps it.  The dimension is not stored here: it is derived from
 * the WAL (the first PUT after creation or the last CLEAR fixes it), so the
 * two can never disagree.  Text format, specified in docs/storage-format.md:
 *
 *     vexlake-collection 1
 *     name default
 *     metric cosine
 *     index hnsw sq8 16 200 0
 *     crc32c 1a2b3c4d
 *
 * The index line (kind, quant, M, ef_construction, IVF lists) is optional:
 * descriptors written before indexes lack it.  The crc line covers every
 * byte before it.
 */
#ifndef VL_STORAGE_DESCRIPTOR_H
#define VL_STORAGE_DESCRIPTOR_H

#include "storage/objstore.h"
#include "vexlake.h"

typedef struct {
    char name[VL_MAX_COLLECTION_NAME + 1];
    vl_metric metric;
    int has_index; /* 0: written before indexes (no index line) */
    vl_index_params index;
} vl_descriptor;

/** Durably write (or replace) the descriptor of d->name. */
vl_status vl_descriptor_write(vl_objstore *s, const vl_descriptor *d, vl_error *err);

/** Remove the descriptor of name; VL_OK if it was already absent. */
vl_status vl_descriptor_remove(vl_objstore *s, const char *name, vl_error *err);

/** Load every descriptor; *out is malloc'd (free it), *n its length.
 *  A damaged descriptor fails with VL_ERR_CORRUPT naming the object. */
vl_status vl_descriptor_load_all(vl_objstore *s, vl_descriptor **out, size_t *n, vl_error *err);

/** Parse / format helpers, exposed for tests. */
vl_status vl_descriptor_parse(const char *text, size_t len, vl_descriptor *d, vl_error *err);
size_t vl_descriptor_format(const vl_descriptor *d, char *buf, size_t cap);

/** 1 when name is a valid collection name ([A-Za-z0-9_.-], 1..64, not "." or ".."). */
int vl_collection_name_valid(const char *name);

#endif
