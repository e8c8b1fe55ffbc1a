/*
 * s3_latency.c - PUT and GET latency of the S3 object store against a
 * running SeaweedFS (scripts/seaweedfs.sh start), one thread, one pooled
 * connection reused.  Prints p50/p99 per operation and object size.
 *
 *   make build/rel/bench/s3_latency && build/rel/bench/s3_latency [N]
 *
 * N requests per operation and size (default 200).  Endpoint from
 * VL_S3_ENDPOINT (default http://127.0.0.1:8333), bucket vexlake-test,
 * the test-only key; objects go under bench-<pid>/.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "storage/objstore_s3.h"

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static void report(const char *op, size_t size, double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    printf("%-4s %8zu B  p50 %8.0f us  p99 %8.0f us\n", op, size, t[n / 2], t[n * 99 / 100]);
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? atoi(argv[1]) : 200;
    if (n < 1)
        n = 200;
    const char *ep = getenv("VL_S3_ENDPOINT");
    vl_s3_config c = {.endpoint = ep && *ep ? ep : "http://127.0.0.1:8333",
                      .region = "us-east-1",
                      .bucket = "vexlake-test",
                      .access_key = "vexlake",
                      .secret_key = "vexlake-secret",
                      .timeout_ms = 30000};
    char prefix[64];
    snprintf(prefix, sizeof prefix, "bench-%ld", (long)getpid());
    vl_objstore *s;
    vl_error err;
    if (vl_objstore_s3_open(&c, prefix, &s, &err) != VL_OK) {
        fprintf(stderr, "s3_latency: %s\n", err.msg);
        return 1;
    }
    const size_t sizes[] = {1024, 65536, 1 << 20};
    double *t = malloc((size_t)n * sizeof *t);
    char *buf = malloc(1 << 20);
    memset(buf, 'x', 1 << 20);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        char name[64];
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "o%zu-%d", sizes[k], i);
            double t0 = now_us();
            if (vl_obj_put(s, name, buf, sizes[k], &err) != VL_OK) {
                fprintf(stderr, "s3_latency: %s\n", err.msg);
                return 1;
            }
            t[i] = now_us() - t0;
        }
        report("PUT", sizes[k], t, n);
        for (int i = 0; i < n; i++) {
            snprintf(name, sizeof name, "o%zu-%d", sizes[k], i);
            void *d;
            size_t len;
            double t0 = now_us();
            if (vl_obj_get(s, name, &d, &len, &err) != VL_OK) {
                fprintf(stderr, "s3_latency: %s\n", err.msg);
                return 1;
            }
            t[i] = now_us() - t0;
            free(d);
        }
        report("GET", sizes[k], t, n);
    }
    free(t);
    free(buf);
    vl_obj_close(s);
    return 0;
}
