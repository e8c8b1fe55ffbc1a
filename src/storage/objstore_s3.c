/*
 * objstore_s3.c - the object-store interface on an S3 bucket.
 *
 * Decisions:
 *  1. Object "a/b" is key "<prefix>a/b"; names are validated like every
 *     backend's (vl_objstore_name_valid) before any request.
 *  2. put_if_absent is one PUT with If-None-Match: * (412 -> CONFLICT; a
 *     409 "concurrent conditional write" is retried).  If our own earlier
 *     attempt of the same call may have landed (the client retried after
 *     a reset) a 412 is checked by reading the object back: our bytes
 *     there mean we won -- except empty ones, which prove nothing (every
 *     WAL writer claims a number with an empty object), so a retried
 *     empty put that finds the name taken is a conflict: the safe answer
 *     for a fence.  It never uses multipart: the store's commit
 *     objects are small, and a single PUT is atomic up to 5 GB.
 *  3. put of VL_S3_MULTIPART_MIN bytes or more is a multipart upload in
 *     VL_S3_PART_SIZE parts, sent in order; any failure aborts the upload
 *     so no parts linger.  Completion can fail inside a 200 answer, so its
 *     body is checked for <Error>.  The abort often fails for the reason
 *     the upload did (the store is away): such an upload is remembered
 *     and its abort sent again before each later put and at close, until
 *     the store confirms it (204, or 404: already gone).  Only what a
 *     process that dies before that leaves behind stays in the bucket.
 *  4. del and a zero-length get_range HEAD the object first: S3's DELETE
 *     answers 204 for a missing key, and the interface reports
 *     VL_ERR_NOTFOUND.  That check and the delete are two requests.
 *  5. A range past the end is an empty read (416 -> 0 bytes), as for a
 *     file; a server that ignores Range (200) is sliced here.
 *  6. list pages through ListObjectsV2 (1000 keys a page), strips the
 *     prefix, skips keys that are not valid object names, and sorts.
 *  7. Errors name the verb, bucket and key, the HTTP status and S3's error
 *     code.  NoSuchKey is VL_ERR_NOTFOUND; a missing bucket or refused
 *     credentials are VL_ERR_IO at run time and distinct statuses at open.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/objstore_s3.h"
#include "storage/s3_xml.h"
#include "util/error.h"

#define ABORTS_MAX 64 /* uploads whose abort is still owed (decision 3) */

typedef struct {
    char *key, *qid; /* object key and "uploadId=<encoded>" */
} owed_abort;

typedef struct {
    vl_objstore base;
    vl_s3_client *c;
    char *prefix;
    pthread_mutex_t lock; /* guards owed */
    owed_abort owed[ABORTS_MAX];
    size_t nowed;
} s3_store;

static const vl_objstore_ops s3_ops;

static s3_store *as_s3(vl_objstore *s)
{
    return (s3_store *)(void *)s;
}

/* Validate name and make its key (malloc'd). */
static vl_status make_key(s3_store *s, const char *verb, const char *name, char **key,
                          vl_error *err)
{
    if (!vl_objstore_name_valid(name))
        return vl_fail(err, VL_ERR_ARG, "%s: invalid object name \"%s\"", verb, name ? name : "");
    size_t lp = strlen(s->prefix), ln = strlen(name);
    *key = malloc(lp + ln + 1);
    if (!*key)
        return vl_fail(err, VL_ERR_NOMEM, "%s %s: out of memory", verb, name);
    memcpy(*key, s->prefix, lp);
    memcpy(*key + lp, name, ln + 1);
    return VL_OK;
}

/* The error for an answer that is not a success. */
static vl_status answer_fail(s3_store *s, const char *verb, const char *key,
                             const vl_s3_response *r, vl_error *err)
{
    char code[64];
    const char *bucket = vl_s3_client_bucket(s->c);
    vl_s3_error_code(r, code, sizeof code);
    if (r->status == 404 && strcmp(code, "NoSuchBucket") == 0)
        return vl_fail(err, VL_ERR_IO, "%s %s/%s: bucket %s does not exist (NoSuchBucket)", verb,
                       bucket, key, bucket);
    if (r->status == 404)
        return vl_fail(err, VL_ERR_NOTFOUND, "%s %s/%s: no such object", verb, bucket, key);
    if (r->status == 403)
        return vl_fail(err, VL_ERR_IO, "%s %s/%s: HTTP 403 %s: credentials or permissions refused",
                       verb, bucket, key, code);
    return vl_fail(err, VL_ERR_IO, "%s %s/%s: HTTP %ld %s", verb, bucket, key, r->status, code);
}

/* One request: VL_OK when an answer arrived, whatever its status (the
 * caller reads r->status); on a transport failure r is already freed. */
static vl_status call_any(s3_store *s, const vl_s3_request *req, vl_s3_response *r, vl_error *err)
{
    vl_status st = vl_s3_perform(s->c, req, r, err);
    if (st != VL_OK)
        vl_s3_response_free(r);
    return st;
}

/* One request; VL_OK only for a 2xx answer (r then to be freed), any
 * other answer mapped by answer_fail and freed. */
static vl_status call(s3_store *s, const char *verb, const vl_s3_request *req, vl_s3_response *r,
                      vl_error *err)
{
    vl_status st = call_any(s, req, r, err);
    if (st != VL_OK || (r->status >= 200 && r->status < 300))
        return st;
    st = answer_fail(s, verb, req->key ? req->key : "", r, err);
    vl_s3_response_free(r);
    return st;
}

/* ---- writing ------------------------------------------------------------- */

static vl_s3_request put_request(const char *key, const void *data, size_t len,
                                 const char *const *hdrs)
{
    vl_s3_request req = {
        .method = "PUT", .key = key, .headers = hdrs, .body = data ? data : "", .body_len = len};
    return req;
}

/* 1 when the store confirms the upload is gone. */
static int send_abort(s3_store *s, const char *key, const char *qid)
{
    vl_s3_request req = {.method = "DELETE", .key = key, .query = qid};
    vl_s3_response r;
    int gone = vl_s3_perform(s->c, &req, &r, NULL) == VL_OK &&
               ((r.status >= 200 && r.status < 300) || r.status == 404);
    vl_s3_response_free(&r);
    return gone;
}

/* Remember an upload whose abort did not go through (the oldest is
 * forgotten when the list is full). */
static void owe_abort(s3_store *s, const char *key, const char *qid)
{
    char *k = strdup(key), *q = strdup(qid);
    if (!k || !q) {
        free(k);
        free(q);
        return;
    }
    pthread_mutex_lock(&s->lock);
    if (s->nowed == ABORTS_MAX) {
        free(s->owed[0].key);
        free(s->owed[0].qid);
        memmove(s->owed, s->owed + 1, (ABORTS_MAX - 1) * sizeof *s->owed);
        s->nowed--;
    }
    s->owed[s->nowed++] = (owed_abort){k, q};
    pthread_mutex_unlock(&s->lock);
}

static void abort_upload(s3_store *s, const char *key, const char *qid)
{
    if (!send_abort(s, key, qid))
        owe_abort(s, key, qid);
}

/* Send the aborts still owed (decision 3); those that fail stay owed. */
static void settle_aborts(s3_store *s)
{
    owed_abort todo[ABORTS_MAX];
    pthread_mutex_lock(&s->lock);
    size_t n = s->nowed;
    memcpy(todo, s->owed, n * sizeof *todo);
    s->nowed = 0;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < n; i++) {
        abort_upload(s, todo[i].key, todo[i].qid);
        free(todo[i].key);
        free(todo[i].qid);
    }
}

/* Upload parts and build the completion document into *doc. */
static vl_status put_parts(s3_store *s, const char *key, const char *enc_id, const char *data,
                           size_t len, char **doc, vl_error *err)
{
    size_t nparts = (len + VL_S3_PART_SIZE - 1) / VL_S3_PART_SIZE;
    size_t cap = 64 + nparts * 200, n = 0;
    char *d = malloc(cap);
    if (!d)
        return vl_fail(err, VL_ERR_NOMEM, "put %s: out of memory", key);
    n += (size_t)snprintf(d, cap, "<CompleteMultipartUpload>");
    for (size_t i = 0; i < nparts; i++) {
        size_t off = i * VL_S3_PART_SIZE;
        size_t plen = len - off < VL_S3_PART_SIZE ? len - off : VL_S3_PART_SIZE;
        char query[512];
        snprintf(query, sizeof query, "partNumber=%zu&uploadId=%s", i + 1, enc_id);
        vl_s3_request req = {
            .method = "PUT", .key = key, .query = query, .body = data + off, .body_len = plen};
        vl_s3_response r;
        vl_error perr;
        vl_status st = call(s, "put (part)", &req, &r, &perr);
        if (st != VL_OK)
            vl_fail(err, st, "put %s: part %zu of %zu: %s", key, i + 1, nparts, perr.msg);
        else if (!r.etag[0] || strpbrk(r.etag, "<&"))
            st = vl_fail(err, VL_ERR_IO, "put %s: part %zu answered without a usable ETag", key,
                         i + 1);
        if (st == VL_OK)
            n += (size_t)snprintf(d + n, cap - n,
                                  "<Part><PartNumber>%zu</PartNumber><ETag>%s</ETag></Part>", i + 1,
                                  r.etag);
        vl_s3_response_free(&r);
        if (st != VL_OK) {
            free(d);
            return st;
        }
    }
    snprintf(d + n, cap - n, "</CompleteMultipartUpload>");
    *doc = d;
    return VL_OK;
}

static vl_status put_multipart(s3_store *s, const char *key, const void *data, size_t len,
                               vl_error *err)
{
    vl_s3_request req = {
        .method = "POST", .key = key, .query = "uploads=", .body = "", .body_len = 0};
    vl_s3_response r;
    vl_status st = call(s, "put (create upload)", &req, &r, err);
    if (st != VL_OK)
        return st;
    char *id = NULL, enc_id[400] = "", qid[420], *doc = NULL;
    st = vl_s3_xml_text(r.body ? r.body : "", r.len, "UploadId", &id, err);
    vl_s3_response_free(&r);
    if (st != VL_OK)
        return vl_fail(err, VL_ERR_IO, "put %s: multipart upload not started: %s", key, err->msg);
    if (!*id || vl_s3_uri_encode(id, 0, enc_id, sizeof enc_id) < 0) {
        free(id);
        return vl_fail(err, VL_ERR_IO, "put %s: unusable multipart upload id", key);
    }
    free(id);
    snprintf(qid, sizeof qid, "uploadId=%s", enc_id);
    st = put_parts(s, key, enc_id, data, len, &doc, err);
    if (st == VL_OK) {
        vl_s3_request done = {
            .method = "POST", .key = key, .query = qid, .body = doc, .body_len = strlen(doc)};
        st = call(s, "put (complete upload)", &done, &r, err);
        char *e = NULL;
        if (st == VL_OK &&
            vl_s3_xml_text(r.body ? r.body : "", r.len, "Error", &e, NULL) != VL_ERR_NOTFOUND) {
            char code[64];
            st = vl_fail(err, VL_ERR_IO, "put %s/%s: multipart completion failed: %s",
                         vl_s3_client_bucket(s->c), key, vl_s3_error_code(&r, code, sizeof code));
        }
        free(e);
        if (st == VL_OK || r.body)
            vl_s3_response_free(&r);
        free(doc);
    }
    if (st != VL_OK)
        abort_upload(s, key, qid);
    return st;
}

static vl_status s3_put(vl_objstore *os, const char *name, const void *data, size_t len,
                        vl_error *err)
{
    s3_store *s = as_s3(os);
    char *key;
    vl_status st = make_key(s, "put", name, &key, err);
    if (st != VL_OK)
        return st;
    settle_aborts(s);
    if (len >= VL_S3_MULTIPART_MIN) {
        st = put_multipart(s, key, data, len, err);
    } else {
        vl_s3_request req = put_request(key, data, len, NULL);
        vl_s3_response r;
        st = call(s, "put", &req, &r, err);
        if (st == VL_OK)
            vl_s3_response_free(&r);
    }
    free(key);
    return st;
}

/* 1 when key holds exactly data (our own earlier attempt landed). */
static int holds(s3_store *s, const char *key, const void *data, size_t len)
{
    if (len == 0)
        return 0; /* decision 2 */
    vl_s3_request req = {.method = "GET", .key = key};
    vl_s3_response r;
    int same =
        call(s, "get", &req, &r, NULL) == VL_OK && r.len == len && memcmp(r.body, data, len) == 0;
    vl_s3_response_free(&r);
    return same;
}

static vl_status s3_put_if_absent(vl_objstore *os, const char *name, const void *data, size_t len,
                                  vl_error *err)
{
    static const char *const hdrs[] = {"If-None-Match: *", NULL};
    s3_store *s = as_s3(os);
    char *key;
    vl_status st = make_key(s, "put_if_absent", name, &key, err);
    if (st != VL_OK)
        return st;
    for (int tries = 0;; tries++) {
        vl_s3_request req = put_request(key, data, len, hdrs);
        vl_s3_response r;
        st = call_any(s, &req, &r, err);
        if (st != VL_OK)
            break;
        if (r.status >= 200 && r.status < 300) {
            vl_s3_response_free(&r);
            break;
        }
        int retried = r.attempts > 1;
        if (r.status == 409 && tries < 5) {
            vl_s3_response_free(&r);
            continue;
        }
        if (r.status == 412 && retried && holds(s, key, data, len))
            st = VL_OK;
        else if (r.status == 412)
            st = vl_fail(err, VL_ERR_CONFLICT,
                         "put_if_absent %s: object already exists (another writer committed it "
                         "first)",
                         name);
        else
            st = answer_fail(s, "put_if_absent", key, &r, err);
        vl_s3_response_free(&r);
        break;
    }
    free(key);
    return st;
}

/* ---- reading ------------------------------------------------------------- */

static vl_status s3_get(vl_objstore *os, const char *name, void **data, size_t *len, vl_error *err)
{
    s3_store *s = as_s3(os);
    char *key;
    vl_status st = make_key(s, "get", name, &key, err);
    if (st != VL_OK)
        return st;
    vl_s3_request req = {.method = "GET", .key = key};
    vl_s3_response r;
    st = call(s, "get", &req, &r, err);
    if (st == VL_OK && !r.body && !(r.body = malloc(1)))
        st = vl_fail(err, VL_ERR_NOMEM, "get %s: out of memory", name);
    if (st == VL_OK) {
        *data = r.body;
        *len = r.len;
    }
    free(key);
    return st;
}

static vl_status head(s3_store *s, const char *verb, const char *key, vl_error *err)
{
    vl_s3_request req = {.method = "HEAD", .key = key};
    vl_s3_response r;
    vl_status st = call(s, verb, &req, &r, err);
    if (st == VL_OK)
        vl_s3_response_free(&r);
    return st;
}

static vl_status s3_get_range(vl_objstore *os, const char *name, uint64_t offset, size_t len,
                              void *buf, size_t *got, vl_error *err)
{
    s3_store *s = as_s3(os);
    char *key;
    vl_status st = make_key(s, "get_range", name, &key, err);
    if (st != VL_OK)
        return st;
    if (len == 0) {
        st = head(s, "get_range", key, err);
        if (st == VL_OK)
            *got = 0;
        free(key);
        return st;
    }
    uint64_t last = offset + len - 1 < offset ? UINT64_MAX : offset + len - 1;
    char range[80];
    snprintf(range, sizeof range, "Range: bytes=%llu-%llu", (unsigned long long)offset,
             (unsigned long long)last);
    const char *hdrs[] = {range, NULL};
    vl_s3_request req = {.method = "GET", .key = key, .headers = hdrs};
    vl_s3_response r;
    st = call_any(s, &req, &r, err);
    if (st != VL_OK) {
        free(key);
        return st;
    }
    if (r.status == 200 || r.status == 206) {
        const char *src = r.body;
        size_t avail = r.len;
        if (r.status == 200) { /* Range ignored: slice the whole object */
            avail = offset < r.len ? r.len - (size_t)offset : 0;
            src = r.body + (offset < r.len ? offset : 0);
        }
        *got = avail < len ? avail : len;
        if (*got)
            memcpy(buf, src, *got);
    } else if (r.status == 416) {
        *got = 0;
        st = VL_OK;
    } else {
        st = answer_fail(s, "get_range", key, &r, err);
    }
    vl_s3_response_free(&r);
    free(key);
    return st;
}

/* ---- listing ------------------------------------------------------------- */

static int cmp_info(const void *a, const void *b)
{
    return strcmp(((const vl_objinfo *)a)->name, ((const vl_objinfo *)b)->name);
}

/* Move the valid names of page into *all (taking ownership). */
static vl_status take_page(s3_store *s, vl_s3_list_page *page, vl_objinfo **all, size_t *n,
                           size_t *cap)
{
    size_t lp = strlen(s->prefix);
    for (size_t i = 0; i < page->n; i++) {
        char *k = page->items[i].name;
        if (strncmp(k, s->prefix, lp) != 0 || !vl_objstore_name_valid(k + lp))
            continue;
        if (*n == *cap) {
            size_t nc = *cap ? *cap * 2 : 256;
            vl_objinfo *grown = realloc(*all, nc * sizeof *grown);
            if (!grown)
                return VL_ERR_NOMEM;
            *all = grown;
            *cap = nc;
        }
        char *name = strdup(k + lp);
        if (!name)
            return VL_ERR_NOMEM;
        (*all)[*n].name = name;
        (*all)[*n].size = page->items[i].size;
        (*n)++;
    }
    return VL_OK;
}

static vl_status s3_list(vl_objstore *os, const char *prefix, vl_objinfo **out, size_t *n,
                         vl_error *err)
{
    s3_store *s = as_s3(os);
    if (!prefix)
        prefix = "";
    size_t lp = strlen(s->prefix), lq = strlen(prefix);
    char *full = malloc(lp + lq + 1), *enc = NULL, *token = NULL, *query = NULL;
    size_t enc_cap = 3 * (lp + lq) + 1;
    vl_objinfo *all = NULL;
    size_t count = 0, cap = 0;
    vl_status st = VL_OK;
    if (!full || !(enc = calloc(1, enc_cap)))
        st = vl_fail(err, VL_ERR_NOMEM, "list %s: out of memory", prefix);
    if (st == VL_OK) {
        memcpy(full, s->prefix, lp);
        memcpy(full + lp, prefix, lq + 1);
        vl_s3_uri_encode(full, 0, enc, enc_cap);
    }
    while (st == VL_OK) {
        size_t qcap = strlen(enc) + (token ? 3 * strlen(token) : 0) + 64;
        free(query);
        if (!(query = calloc(1, qcap))) {
            st = vl_fail(err, VL_ERR_NOMEM, "list %s: out of memory", prefix);
            break;
        }
        if (token) {
            strcpy(query, "continuation-token=");
            vl_s3_uri_encode(token, 0, query, qcap);
            strcat(query, "&");
        }
        strcat(query, "list-type=2&prefix=");
        strcat(query, enc);
        vl_s3_request req = {.method = "GET", .query = query};
        vl_s3_response r;
        st = call(s, "list", &req, &r, err);
        if (st != VL_OK)
            break;
        vl_s3_list_page page;
        st = vl_s3_list_parse(r.body ? r.body : "", r.len, &page, err);
        vl_s3_response_free(&r);
        if (st != VL_OK)
            break;
        if (take_page(s, &page, &all, &count, &cap) != VL_OK)
            st = vl_fail(err, VL_ERR_NOMEM, "list %s: out of memory", prefix);
        free(token);
        token = page.truncated ? page.next_token : NULL;
        page.next_token = NULL;
        vl_s3_list_page_free(&page);
        if (!token)
            break;
    }
    free(full);
    free(enc);
    free(token);
    free(query);
    if (st != VL_OK) {
        vl_objinfo_free(all, count);
        return st;
    }
    if (count > 1)
        qsort(all, count, sizeof *all, cmp_info);
    *out = all;
    *n = count;
    return VL_OK;
}

/* ---- delete, open, close ------------------------------------------------- */

static vl_status s3_del(vl_objstore *os, const char *name, vl_error *err)
{
    s3_store *s = as_s3(os);
    char *key;
    vl_status st = make_key(s, "del", name, &key, err);
    if (st != VL_OK)
        return st;
    st = head(s, "del", key, err);
    if (st == VL_OK) {
        vl_s3_request req = {.method = "DELETE", .key = key};
        vl_s3_response r;
        st = call(s, "del", &req, &r, err);
        if (st == VL_OK)
            vl_s3_response_free(&r);
    }
    free(key);
    return st;
}

static void s3_close(vl_objstore *os)
{
    s3_store *s = as_s3(os);
    settle_aborts(s); /* a last try; what still fails stays in the bucket */
    for (size_t i = 0; i < s->nowed; i++) {
        free(s->owed[i].key);
        free(s->owed[i].qid);
    }
    pthread_mutex_destroy(&s->lock);
    vl_s3_client_free(s->c);
    free(s->prefix);
    free(s);
}

/* One small listing: are the bucket and the credentials good? */
static vl_status check_bucket(s3_store *s, const char *endpoint, vl_error *err)
{
    const char *bucket = vl_s3_client_bucket(s->c);
    vl_s3_request req = {.method = "GET", .query = "list-type=2&max-keys=1"};
    vl_s3_response r;
    vl_error terr;
    vl_status st = call_any(s, &req, &r, &terr);
    if (st != VL_OK)
        return vl_fail(err, st, "S3 endpoint %s unreachable: %s", endpoint, terr.msg);
    char code[64];
    vl_s3_error_code(&r, code, sizeof code);
    if (r.status >= 200 && r.status < 300)
        st = VL_OK;
    else if (r.status == 404)
        st = vl_fail(err, VL_ERR_NOTFOUND, "S3 bucket %s does not exist at %s (%s)", bucket,
                     endpoint, code);
    else if (r.status == 403 || r.status == 401)
        st = vl_fail(err, VL_ERR_ARG,
                     "S3 bucket %s at %s: credentials refused (%s): check AWS_ACCESS_KEY_ID and "
                     "AWS_SECRET_ACCESS_KEY",
                     bucket, endpoint, code);
    else
        st = vl_fail(err, VL_ERR_IO, "S3 bucket %s at %s: HTTP %ld %s", bucket, endpoint, r.status,
                     code);
    vl_s3_response_free(&r);
    return st;
}

vl_status vl_objstore_s3_open(const vl_s3_config *cfg, const char *prefix, vl_objstore **out,
                              vl_error *err)
{
    if (!prefix)
        prefix = "";
    size_t lp = strlen(prefix);
    if (lp > 0 && prefix[lp - 1] == '/')
        lp--; /* "a/b/" and "a/b" are the same prefix */
    char *bare = strndup(prefix, lp);
    int ok = bare && (lp == 0 || vl_objstore_name_valid(bare));
    free(bare);
    if (!ok)
        return vl_fail(err, VL_ERR_ARG, "S3: invalid prefix \"%s\"", prefix);
    s3_store *s = calloc(1, sizeof *s);
    if (!s || !(s->prefix = malloc(lp + 2))) {
        free(s);
        return vl_fail(err, VL_ERR_NOMEM, "S3: out of memory");
    }
    memcpy(s->prefix, prefix, lp);
    strcpy(s->prefix + lp, lp ? "/" : "");
    s->base.ops = &s3_ops;
    vl_status st = vl_s3_client_new(cfg, &s->c, err);
    if (st == VL_OK)
        st = check_bucket(s, cfg->endpoint, err);
    if (st != VL_OK) {
        vl_s3_client_free(s->c);
        free(s->prefix);
        free(s);
        return st;
    }
    pthread_mutex_init(&s->lock, NULL);
    *out = &s->base;
    return VL_OK;
}

void vl_objstore_s3_stats(vl_objstore *os, vl_s3_stats *out)
{
    memset(out, 0, sizeof *out);
    if (os && os->ops == &s3_ops)
        vl_s3_client_stats(as_s3(os)->c, out);
}

vl_status vl_objstore_s3_parse_url(const char *url, char **bucket, char **prefix, vl_error *err)
{
    if (!url || strncmp(url, "s3://", 5) != 0)
        return vl_fail(err, VL_ERR_ARG, "storage %s: expected s3://bucket/prefix", url ? url : "");
    const char *b = url + 5, *slash = strchr(b, '/');
    size_t bl = slash ? (size_t)(slash - b) : strlen(b);
    if (bl < 3 || bl > 63 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") < bl)
        return vl_fail(err, VL_ERR_ARG,
                       "storage %s: bucket must be 3-63 of a-z 0-9 . - (s3://bucket/prefix)", url);
    *bucket = strndup(b, bl);
    *prefix = strdup(slash ? slash + 1 : "");
    if (!*bucket || !*prefix) {
        free(*bucket);
        free(*prefix);
        return vl_fail(err, VL_ERR_NOMEM, "storage %s: out of memory", url);
    }
    return VL_OK;
}

static const vl_objstore_ops s3_ops = {
    .put = s3_put,
    .put_if_absent = s3_put_if_absent,
    .get = s3_get,
    .get_range = s3_get_range,
    .list = s3_list,
    .del = s3_del,
    .close = s3_close,
};
