/*
 * s3_client.h - signed S3 requests over libcurl, with retries and a
 * connection pool.  Used by objstore_s3.c; knows nothing of objects'
 * meaning.
 *
 * Thread safety: one client may be used from any number of threads at
 * once.  Each request borrows a CURL handle from a small pool (so its
 * keep-alive connection is reused) and gives it back.
 *
 * Credentials are copied in at creation and never printed: error messages
 * name the method, bucket, key, HTTP status and S3 error code only.
 */
#ifndef VL_STORAGE_S3_CLIENT_H
#define VL_STORAGE_S3_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "vexlake.h"

typedef struct {
    const char *endpoint; /**< "http://127.0.0.1:8333"; path-style URLs */
    const char *region;   /**< signing region, e.g. "us-east-1" */
    const char *bucket;
    const char *access_key; /**< from AWS_ACCESS_KEY_ID */
    const char *secret_key; /**< from AWS_SECRET_ACCESS_KEY */
    long timeout_ms;        /**< bound on one call, retries included */
} vl_s3_config;

typedef struct vl_s3_client vl_s3_client;

/** Requests a client has sent since it was made (vl_s3_client_stats).  A
 *  request counts once however often it was retried; a LIST is a GET on
 *  the bucket and counts only as a list. */
typedef struct {
    uint64_t gets;      /**< object GETs, range GETs included */
    uint64_t get_bytes; /**< body bytes those GETs received */
    uint64_t puts;      /**< PUTs and multipart POSTs */
    uint64_t put_bytes;
    uint64_t lists;
    uint64_t other;    /**< HEAD and DELETE */
    uint64_t retries;  /**< attempts beyond the first */
    uint64_t failures; /**< requests that got no final answer (VL_ERR_IO) */
} vl_s3_stats;

typedef struct {
    const char *method;         /**< "GET", "PUT", "POST", "DELETE", "HEAD" */
    const char *key;            /**< object key (unencoded) or NULL for the bucket */
    const char *query;          /**< canonical query string (sorted, encoded) or NULL */
    const char *const *headers; /**< extra "Name: value" lines, NULL-terminated, or NULL */
    const void *body;
    size_t body_len;
} vl_s3_request;

typedef struct {
    long status; /**< HTTP status of the last attempt */
    char *body;  /**< malloc'd, NUL-terminated (len excludes it) */
    size_t len;
    size_t cap; /**< bytes allocated for body */
    char etag[128];
    int attempts; /**< how many times it was sent */
} vl_s3_response;

vl_status vl_s3_client_new(const vl_s3_config *cfg, vl_s3_client **out, vl_error *err);
void vl_s3_client_free(vl_s3_client *c);
const char *vl_s3_client_bucket(const vl_s3_client *c);

/**
 * Send req, retrying with jittered exponential backoff on transport
 * errors (refused, reset, timed out), 5xx and 429 until the client's
 * timeout is spent.  VL_OK with resp filled for any other HTTP status
 * (the caller maps 4xx); VL_ERR_IO when no attempt got a final answer.
 * Free resp with vl_s3_response_free either way.
 */
vl_status vl_s3_perform(vl_s3_client *c, const vl_s3_request *req, vl_s3_response *resp,
                        vl_error *err);
void vl_s3_response_free(vl_s3_response *resp);

/** The counters so far; safe from any thread. */
void vl_s3_client_stats(vl_s3_client *c, vl_s3_stats *out);

/** The S3 error code of an error answer ("NoSuchKey"), or "HTTP <status>"
 *  when the body carries none; written to buf. */
const char *vl_s3_error_code(const vl_s3_response *resp, char *buf, size_t cap);

/** Append the S3 URI encoding of s (unreserved bytes kept, '/' kept when
 *  keep_slash) to out (capacity cap, NUL-terminated); -1 when it does not
 *  fit. */
int vl_s3_uri_encode(const char *s, int keep_slash, char *out, size_t cap);

#endif
