/*
 * storage.h - the object store the server's flags ask for (--storage).
 */
#ifndef VL_SERVER_STORAGE_H
#define VL_SERVER_STORAGE_H

#include "server/server.h"
#include "storage/objstore.h"
#include "storage/objstore_cache.h"
#include "storage/s3_client.h"

typedef struct {
    vl_s3_stats s3;       /**< all zero without --storage */
    vl_cache_stats cache; /**< all zero without a cache */
} vl_storage_stats;

/**
 * With --storage s3://bucket/prefix, open that S3 store (credentials from
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY) into *out; without it *out is
 * NULL and the engine uses --dir.  Objects the lake never rewrites are read
 * through the --cache-dir cache unless --cache-size is 0.  The error names
 * the cause (missing bucket, refused credentials, unreachable endpoint) and
 * never a secret.
 */
vl_status vl_server_open_store(const vl_config *cfg, vl_objstore **out, vl_error *err);

/** The counters of the store vl_server_open_store opened (for INFO). */
void vl_server_storage_stats(vl_storage_stats *out);

#endif
