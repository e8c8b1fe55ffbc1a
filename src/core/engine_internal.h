/*
 * engine_internal.h - what engine.c and snapshot.c share; not public.
 *
 * A collection is a name, a metric and its current row store generation.
 * The engine keeps collections in a small array: servers hold a handful,
 * and a linear scan of a few names costs less than hashing.
 */
#ifndef VL_CORE_ENGINE_INTERNAL_H
#define VL_CORE_ENGINE_INTERNAL_H

#include "core/rowstore.h"
#include "storage/objstore.h"
#include "storage/wal.h"
#include "vexlake.h"

typedef struct {
    char name[VL_MAX_COLLECTION_NAME + 1];
    vl_metric metric;
    vl_rowstore *rows; /* current generation; CLEAR replaces it */
} vl_collection;

struct vl_engine {
    vl_options opt;
    vl_objstore *store;
    vl_wal *wal;
    vl_collection *colls;
    size_t ncolls, cap_colls;
    uint64_t applied_lsn;       /* LSN of the last change applied in memory */
    uint64_t wal_dropped_bytes; /* torn tail removed at open */
    int failed;                 /* a WAL write failed: refuse changes */
    vl_error failure;           /* why */
};

struct vl_snapshot {
    vl_rowstore *rows; /* NULL: empty snapshot of a missing collection */
    uint64_t nrows;
    uint64_t lsn;
    uint64_t count;
    uint32_t dim;
    vl_metric metric;
};

vl_collection *vl_engine_find(vl_engine *e, const char *name);

#endif
