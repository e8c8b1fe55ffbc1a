/*
 * storage.c - turning --storage / --s3-* flags into an object store.
 *
 * Decisions:
 *  1. Credentials come only from the environment (AWS_ACCESS_KEY_ID,
 *     AWS_SECRET_ACCESS_KEY), never from flags, so they are not in ps or in
 *     INFO; the S3 client copies them and nothing logs them.
 *  2. Without --s3-endpoint the endpoint is AWS's for --s3-region
 *     (https://s3.<region>.amazonaws.com, path-style).
 *  3. Everything durable goes to the bucket, the WAL included (the engine
 *     keeps it there as objects when given a store: storage/wal_store.c),
 *     so --dir holds only LOCK and the cache, and losing it loses nothing
 *     acknowledged.
 *  4. Objects the lake never rewrites (segments, deletion and index files,
 *     manifests) are read through a cache (storage/objstore_cache.h) in
 *     --cache-dir, default <dir>/cache, of at most --cache-size bytes;
 *     --cache-size 0 reads them from S3 each time.  The cache is only
 *     ever a copy: deleting it loses nothing.
 *  5. The stores stay owned by the engine (vl_close closes them); this
 *     file keeps non-owning pointers to read their counters for INFO,
 *     valid while the engine is open.
 */
#include <stdio.h>
#include <stdlib.h>

#include "server/storage.h"
#include "storage/objstore_cache.h"
#include "storage/objstore_s3.h"
#include "util/error.h"

static vl_objstore *s3_store, *cache_store;

/* Wrap store in the cache --cache-dir / --cache-size ask for. */
static vl_status open_cache(const vl_config *cfg, vl_objstore **store, vl_error *err)
{
    if (!cfg->cache_size)
        return VL_OK;
    char dir[PATH_MAX + 8];
    if (cfg->cache_dir[0])
        snprintf(dir, sizeof dir, "%s", cfg->cache_dir);
    else
        snprintf(dir, sizeof dir, "%s/cache", cfg->dir);
    vl_objstore *c;
    vl_status st = vl_objstore_cache_open(*store, dir, cfg->cache_size, &c, err);
    if (st != VL_OK)
        return st;
    *store = cache_store = c;
    return VL_OK;
}

vl_status vl_server_open_store(const vl_config *cfg, vl_objstore **out, vl_error *err)
{
    *out = NULL;
    if (!cfg->storage[0])
        return VL_OK;
    char *bucket, *prefix, endpoint[1100];
    vl_status st = vl_objstore_s3_parse_url(cfg->storage, &bucket, &prefix, err);
    if (st != VL_OK)
        return st;
    if (cfg->s3_endpoint[0])
        snprintf(endpoint, sizeof endpoint, "%s", cfg->s3_endpoint);
    else
        snprintf(endpoint, sizeof endpoint, "https://s3.%s.amazonaws.com", cfg->s3_region);
    vl_s3_config c = {.endpoint = endpoint,
                      .region = cfg->s3_region,
                      .bucket = bucket,
                      .access_key = getenv("AWS_ACCESS_KEY_ID"),
                      .secret_key = getenv("AWS_SECRET_ACCESS_KEY"),
                      .timeout_ms = cfg->s3_timeout_ms};
    st = vl_objstore_s3_open(&c, prefix, out, err);
    free(bucket);
    free(prefix);
    if (st != VL_OK)
        return st;
    s3_store = *out;
    st = open_cache(cfg, out, err);
    if (st != VL_OK) {
        vl_obj_close(*out);
        *out = s3_store = NULL;
    }
    return st;
}

void vl_server_storage_stats(vl_storage_stats *out)
{
    vl_objstore_s3_stats(s3_store, &out->s3);
    vl_objstore_cache_stats(cache_store, &out->cache);
}
