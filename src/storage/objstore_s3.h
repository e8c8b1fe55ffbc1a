/*
 * objstore_s3.h - the object store on an S3 bucket (SeaweedFS, MinIO, AWS).
 *
 * Object "a/b" is key "<prefix>a/b" in the bucket.  Same guarantees as
 * every backend (objstore.h), from S3's own: a PUT is atomic, put_if_absent
 * is a PUT with If-None-Match: * (412 -> VL_ERR_CONFLICT), listings are
 * sorted by S3.  The store may be used from several threads at once.
 */
#ifndef VL_STORAGE_OBJSTORE_S3_H
#define VL_STORAGE_OBJSTORE_S3_H

#include "storage/objstore.h"
#include "storage/s3_client.h"

/** Objects at least this large are uploaded in parts of VL_S3_PART_SIZE. */
#define VL_S3_MULTIPART_MIN ((size_t)16 << 20)
#define VL_S3_PART_SIZE ((size_t)8 << 20)

/**
 * Open the store on cfg's bucket with object names under prefix ("" or
 * "a/b/"; a missing trailing '/' is added).  Checks the bucket and the
 * credentials with one listing: VL_ERR_NOTFOUND names a missing bucket,
 * VL_ERR_ARG refused credentials (with S3's error code), VL_ERR_IO an
 * unreachable endpoint.
 */
vl_status vl_objstore_s3_open(const vl_s3_config *cfg, const char *prefix, vl_objstore **out,
                              vl_error *err);

/** The request counters of s, an S3 store (all zero for any other). */
void vl_objstore_s3_stats(vl_objstore *s, vl_s3_stats *out);

/** Parse "s3://bucket/prefix" into bucket and prefix (both malloc'd). */
vl_status vl_objstore_s3_parse_url(const char *url, char **bucket, char **prefix, vl_error *err);

#endif
