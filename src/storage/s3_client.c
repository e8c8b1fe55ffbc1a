/*
 * s3_client.c - one signed S3 request, retried, over a pooled CURL handle.
 *
 * Decisions:
 *  1. Signing is libcurl's own AWS SigV4 (CURLOPT_AWS_SIGV4
 *     "aws:amz:<region>:s3").  curl 7.88 does not send
 *     x-amz-content-sha256, which S3 requires, so every request carries the
 *     payload's real SHA-256 (OpenSSL), which is also what curl hashes
 *     into the signature for a body given as POSTFIELDS.
 *  2. Path-style URLs (<endpoint>/<bucket>/<key>): what SeaweedFS and
 *     MinIO serve without DNS tricks.  Keys are S3-URI-encoded here (each
 *     byte outside A-Za-z0-9-._~ as %XX, '/' kept) and queries arrive
 *     already sorted and encoded, so the URL is its own canonical form.
 *  3. Pool: up to POOL_MAX idle handles behind a mutex.  A request takes
 *     one (or makes one), curl_easy_reset()s it, which keeps its live
 *     connection, and puts it back.  CURLOPT_NOSIGNAL: safe in threads.
 *  4. Retries: transport errors (refused, reset, timed out, nothing
 *     received), 5xx and 429 are retried after a full-jitter exponential
 *     delay (25 ms doubling to 1 s) until the client's timeout_ms, which
 *     bounds the whole call: each attempt gets only the time that is left.
 *  5. Only http and https are allowed, redirects are not followed, and
 *     credentials never enter an error message.
 *  6. Counters (vl_s3_stats) are relaxed atomics bumped once per call,
 *     after its last attempt: cheap, and exact once the calls are done.
 *  7. curl signs every header given in CURLOPT_HTTPHEADER, including an
 *     empty "Name:" that only removes a header, which the server then
 *     cannot see: so we never pass one (not even "Expect:").
 */
#include <curl/curl.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "storage/s3_client.h"
#include "storage/s3_xml.h"
#include "util/error.h"

#define POOL_MAX 8
#define BACKOFF_FIRST_MS 25
#define BACKOFF_MAX_MS 1000

struct vl_s3_client {
    char *endpoint, *bucket, *access_key, *secret_key;
    char sigv4[96];
    long timeout_ms;
    pthread_mutex_t lock;
    CURL *idle[POOL_MAX];
    int nidle;
    vl_s3_stats stats;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void wipe_free(char *s)
{
    if (s) {
        volatile char *p = s;
        while (*p)
            *p++ = 0;
        free(s);
    }
}

vl_status vl_s3_client_new(const vl_s3_config *cfg, vl_s3_client **out, vl_error *err)
{
    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK)
        return vl_fail(err, VL_ERR_IO, "S3: libcurl init failed: %s",
                       curl_easy_strerror(curl_init_rc));
    if (!cfg->endpoint || !*cfg->endpoint || !cfg->bucket || !*cfg->bucket)
        return vl_fail(err, VL_ERR_ARG, "S3: endpoint and bucket are required");
    if (strncmp(cfg->endpoint, "http://", 7) != 0 && strncmp(cfg->endpoint, "https://", 8) != 0)
        return vl_fail(err, VL_ERR_ARG, "S3 endpoint %s: must start with http:// or https://",
                       cfg->endpoint);
    if (!cfg->access_key || !*cfg->access_key || !cfg->secret_key || !*cfg->secret_key)
        return vl_fail(err, VL_ERR_ARG,
                       "S3: credentials missing: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
    const char *region = cfg->region && *cfg->region ? cfg->region : "us-east-1";
    vl_s3_client *c = calloc(1, sizeof *c);
    if (!c)
        return vl_fail(err, VL_ERR_NOMEM, "S3: out of memory");
    c->endpoint = strdup(cfg->endpoint);
    c->bucket = strdup(cfg->bucket);
    c->access_key = strdup(cfg->access_key);
    c->secret_key = strdup(cfg->secret_key);
    c->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 30000;
    int n = snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:s3", region);
    if (!c->endpoint || !c->bucket || !c->access_key || !c->secret_key ||
        n >= (int)sizeof c->sigv4) {
        vl_s3_client_free(c);
        return vl_fail(err, VL_ERR_NOMEM, "S3: out of memory or region too long");
    }
    size_t el = strlen(c->endpoint);
    while (el > 0 && c->endpoint[el - 1] == '/')
        c->endpoint[--el] = '\0';
    pthread_mutex_init(&c->lock, NULL);
    *out = c;
    return VL_OK;
}

void vl_s3_client_free(vl_s3_client *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    if (c->bucket && c->endpoint) /* fully made: the mutex exists */
        pthread_mutex_destroy(&c->lock);
    free(c->endpoint);
    free(c->bucket);
    wipe_free(c->access_key);
    wipe_free(c->secret_key);
    free(c);
}

const char *vl_s3_client_bucket(const vl_s3_client *c)
{
    return c->bucket;
}

static CURL *pool_take(vl_s3_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->nidle > 0)
        h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->lock);
    return h ? h : curl_easy_init();
}

static void pool_give(vl_s3_client *c, CURL *h)
{
    pthread_mutex_lock(&c->lock);
    if (c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (h)
        curl_easy_cleanup(h);
}

int vl_s3_uri_encode(const char *s, int keep_slash, char *out, size_t cap)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t n = strlen(out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        int plain = (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
                    (keep_slash && *p == '/');
        if (n + (plain ? 1 : 3) >= cap)
            return -1;
        if (plain) {
            out[n++] = (char)*p;
        } else {
            out[n++] = '%';
            out[n++] = hex[*p >> 4];
            out[n++] = hex[*p & 15];
        }
    }
    out[n] = '\0';
    return 0;
}

static long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0)
        ;
}

static long jitter(long cap)
{
    static __thread unsigned seed;
    if (!seed)
        seed = (unsigned)now_ms() ^ (unsigned)(uintptr_t)&seed;
    return cap / 2 + (long)(rand_r(&seed) % (unsigned)(cap / 2 + 1));
}

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *ud)
{
    vl_s3_response *r = ud;
    size_t n = size * nmemb;
    if (r->len + n + 1 > r->cap) { /* grow geometrically: large GETs arrive in 16 KiB pieces */
        size_t cap = r->cap ? r->cap : 4096;
        while (cap < r->len + n + 1)
            cap *= 2;
        char *b = realloc(r->body, cap);
        if (!b)
            return 0; /* curl fails the transfer with CURLE_WRITE_ERROR */
        r->body = b;
        r->cap = cap;
    }
    memcpy(r->body + r->len, ptr, n);
    r->len += n;
    r->body[r->len] = '\0';
    return n;
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *ud)
{
    vl_s3_response *r = ud;
    size_t n = size * nmemb;
    if (n > 5 && strncasecmp(ptr, "etag:", 5) == 0) {
        const char *v = ptr + 5, *e = ptr + n;
        while (v < e && (*v == ' ' || *v == '\t'))
            v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
            e--;
        size_t l = (size_t)(e - v) < sizeof r->etag - 1 ? (size_t)(e - v) : sizeof r->etag - 1;
        memcpy(r->etag, v, l);
        r->etag[l] = '\0';
    }
    return n;
}

static int retryable_curl(CURLcode rc)
{
    return rc == CURLE_COULDNT_CONNECT || rc == CURLE_OPERATION_TIMEDOUT ||
           rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING ||
           rc == CURLE_PARTIAL_FILE || rc == CURLE_SSL_CONNECT_ERROR ||
           rc == CURLE_COULDNT_RESOLVE_HOST;
}

static int retryable_status(long st)
{
    return st == 429 || st >= 500;
}

/* Build the request's URL into url (cap bytes); -1 when too long. */
static int build_url(const vl_s3_client *c, const vl_s3_request *req, char *url, size_t cap)
{
    int n = snprintf(url, cap, "%s/", c->endpoint);
    if (n < 0 || (size_t)n >= cap || vl_s3_uri_encode(c->bucket, 0, url, cap) < 0)
        return -1;
    if (req->key) {
        size_t l = strlen(url);
        if (l + 1 >= cap)
            return -1;
        url[l] = '/';
        url[l + 1] = '\0';
        if (vl_s3_uri_encode(req->key, 1, url, cap) < 0)
            return -1;
    }
    if (req->query && *req->query) {
        size_t l = strlen(url), q = strlen(req->query);
        if (l + q + 2 > cap)
            return -1;
        url[l] = '?';
        memcpy(url + l + 1, req->query, q + 1);
    }
    return 0;
}

static struct curl_slist *build_headers(const vl_s3_request *req)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(req->body_len ? req->body : (const void *)"", req->body_len, md);
    char line[96] = "x-amz-content-sha256: ";
    size_t n = strlen(line);
    for (int i = 0; i < SHA256_DIGEST_LENGTH; i++)
        n += (size_t)snprintf(line + n, sizeof line - n, "%02x", md[i]);
    struct curl_slist *h = curl_slist_append(NULL, line), *t = h;
    if (t && req->body)
        t = curl_slist_append(t, "Content-Type: application/octet-stream");
    for (const char *const *x = req->headers; t && x && *x; x++)
        t = curl_slist_append(t, *x);
    if (!t) {
        curl_slist_free_all(h);
        return NULL;
    }
    return h;
}

static void set_options(vl_s3_client *c, CURL *h, const vl_s3_request *req, const char *url,
                        struct curl_slist *hdrs, vl_s3_response *resp, long budget_ms)
{
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(h, CURLOPT_USERNAME, c->access_key);
    curl_easy_setopt(h, CURLOPT_PASSWORD, c->secret_key);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, budget_ms);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, budget_ms);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    if (strcmp(req->method, "HEAD") == 0) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (strcmp(req->method, "GET") != 0) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
        if (req->body || strcmp(req->method, "DELETE") != 0) {
            curl_easy_setopt(h, CURLOPT_POSTFIELDS, req->body ? req->body : "");
            curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
        }
    }
}

static void reset_response(vl_s3_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = resp->cap = 0;
    resp->status = 0;
    resp->etag[0] = '\0';
}

static void bump(uint64_t *counter, uint64_t by)
{
    __atomic_fetch_add(counter, by, __ATOMIC_RELAXED);
}

static void count(vl_s3_client *c, const vl_s3_request *req, const vl_s3_response *resp,
                  vl_status st)
{
    vl_s3_stats *s = &c->stats;
    if (strcmp(req->method, "GET") == 0 && !req->key) {
        bump(&s->lists, 1);
    } else if (strcmp(req->method, "GET") == 0) {
        bump(&s->gets, 1);
        bump(&s->get_bytes, resp->len);
    } else if (strcmp(req->method, "PUT") == 0 || strcmp(req->method, "POST") == 0) {
        bump(&s->puts, 1);
        bump(&s->put_bytes, req->body_len);
    } else {
        bump(&s->other, 1);
    }
    if (resp->attempts > 1)
        bump(&s->retries, (uint64_t)resp->attempts - 1);
    if (st != VL_OK)
        bump(&s->failures, 1);
}

void vl_s3_client_stats(vl_s3_client *c, vl_s3_stats *out)
{
    const uint64_t *from = (const uint64_t *)(const void *)&c->stats;
    uint64_t *to = (uint64_t *)(void *)out;
    for (size_t i = 0; i < sizeof *out / sizeof(uint64_t); i++)
        to[i] = __atomic_load_n(&from[i], __ATOMIC_RELAXED);
}

vl_status vl_s3_perform(vl_s3_client *c, const vl_s3_request *req, vl_s3_response *resp,
                        vl_error *err)
{
    memset(resp, 0, sizeof *resp);
    const char *what = req->key ? req->key : "";
    char url[4096];
    if (build_url(c, req, url, sizeof url) < 0)
        return vl_fail(err, VL_ERR_ARG, "S3 %s %s/%s: URL too long", req->method, c->bucket, what);
    struct curl_slist *hdrs = build_headers(req);
    CURL *h = hdrs ? pool_take(c) : NULL;
    if (!h) {
        curl_slist_free_all(hdrs);
        return vl_fail(err, VL_ERR_NOMEM, "S3 %s %s/%s: out of memory", req->method, c->bucket,
                       what);
    }
    long deadline = now_ms() + c->timeout_ms, delay = BACKOFF_FIRST_MS;
    CURLcode rc = CURLE_OK;
    vl_status st = VL_OK;
    for (;;) {
        reset_response(resp);
        curl_easy_reset(h);
        long left = deadline - now_ms();
        set_options(c, h, req, url, hdrs, resp, left > 1 ? left : 1);
        resp->attempts++;
        rc = curl_easy_perform(h);
        if (rc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
        int again = rc == CURLE_OK ? retryable_status(resp->status) : retryable_curl(rc);
        if (!again) {
            if (rc != CURLE_OK)
                st = vl_fail(err, rc == CURLE_WRITE_ERROR ? VL_ERR_NOMEM : VL_ERR_IO,
                             "S3 %s %s/%s: %s", req->method, c->bucket, what,
                             curl_easy_strerror(rc));
            break;
        }
        long wait = jitter(delay);
        if (now_ms() + wait >= deadline) {
            char code[64];
            st = rc != CURLE_OK ? vl_fail(err, VL_ERR_IO, "S3 %s %s/%s: %s (%d attempts in %ld ms)",
                                          req->method, c->bucket, what, curl_easy_strerror(rc),
                                          resp->attempts, c->timeout_ms)
                                : vl_fail(err, VL_ERR_IO, "S3 %s %s/%s: %s (%d attempts in %ld ms)",
                                          req->method, c->bucket, what,
                                          vl_s3_error_code(resp, code, sizeof code), resp->attempts,
                                          c->timeout_ms);
            break;
        }
        sleep_ms(wait);
        delay = delay * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : delay * 2;
    }
    count(c, req, resp, st);
    if (rc == CURLE_OK || rc == CURLE_WRITE_ERROR)
        pool_give(c, h);
    else
        curl_easy_cleanup(h); /* its connection is suspect: do not reuse it */
    curl_slist_free_all(hdrs);
    return st;
}

void vl_s3_response_free(vl_s3_response *resp)
{
    free(resp->body);
    resp->body = NULL;
    resp->len = resp->cap = 0;
}

const char *vl_s3_error_code(const vl_s3_response *resp, char *buf, size_t cap)
{
    char *code = NULL;
    vl_error ignored;
    if (resp->body && vl_s3_xml_text(resp->body, resp->len, "Code", &code, &ignored) == VL_OK &&
        *code) {
        snprintf(buf, cap, "%s", code);
    } else {
        snprintf(buf, cap, "HTTP %ld", resp->status);
    }
    free(code);
    return buf;
}
