/*
 * testutil_s3.h - the real S3 store the S3 tests run against (SeaweedFS,
 * scripts/seaweedfs.sh; scripts/run-tests.sh starts it): its endpoint, the
 * client configuration, and a store under a fresh key prefix of its own.
 * Never mocked and never skipped: a test that cannot open it fails.
 * Self-contained: it includes what it uses.
 *
 * VL_S3_ENDPOINT overrides the endpoint (default http://127.0.0.1:8333),
 * AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY the test-only keys.
 */
#ifndef VL_TESTUTIL_S3_H
#define VL_TESTUTIL_S3_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "storage/objstore_s3.h"

#define VL_TEST_S3_BUCKET "vexlake-test"

static inline const char *vl_test_s3_endpoint(void)
{
    const char *e = getenv("VL_S3_ENDPOINT");
    return e && *e ? e : "http://127.0.0.1:8333";
}

/* The client configuration for endpoint and bucket; secret NULL: the
 * test key's own. */
static inline vl_s3_config vl_test_s3_config(const char *endpoint, const char *bucket,
                                             const char *secret)
{
    const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
    vl_s3_config c = {.endpoint = endpoint,
                      .region = "us-east-1",
                      .bucket = bucket,
                      .access_key = ak && *ak ? ak : "vexlake",
                      .secret_key = secret ? secret : (sk && *sk ? sk : "vexlake-secret"),
                      .timeout_ms = 30000};
    return c;
}

/* Open the test bucket under a prefix no other run or test uses,
 * "<tag>-<pid>-<time>-<n>/" (written into prefix), or fail the test. */
static inline vl_objstore *vl_test_s3_open(const char *tag, char *prefix, size_t cap)
{
    static int seq;
    snprintf(prefix, cap, "%s-%ld-%d-%d/", tag, (long)getpid(), (int)time(NULL), ++seq);
    vl_s3_config c = vl_test_s3_config(vl_test_s3_endpoint(), VL_TEST_S3_BUCKET, NULL);
    vl_objstore *s = NULL;
    vl_error err = {{0}};
    if (vl_objstore_s3_open(&c, prefix, &s, &err) != VL_OK)
        fail_msg("S3 store at %s unavailable (run scripts/seaweedfs.sh start): %s",
                 vl_test_s3_endpoint(), err.msg);
    return s;
}

#endif
