/*
 * reply_bench.c - how long a slow reader takes to drain one large reply.
 *
 * Builds one bulk reply of --mb MiB and consumes it in --step byte sends
 * (a socket taking a little at a time), timing only the consumes: the
 * cost the server pays per partial write.  Wall clock (CLOCK_MONOTONIC),
 * so load on the machine inflates the figure.  Usage:
 *   build/rel/bench/reply_bench [--mb N] [--step BYTES]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "network/reply.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size_t mb = 256, step = 64 * 1024;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--mb") == 0)
            mb = strtoull(argv[i + 1], NULL, 10);
        else if (strcmp(argv[i], "--step") == 0)
            step = strtoull(argv[i + 1], NULL, 10);
    }
    if (!mb || !step) {
        fprintf(stderr, "usage: reply_bench [--mb N] [--step BYTES]\n");
        return 2;
    }
    size_t size = mb << 20;
    char *payload = malloc(size);
    if (!payload) {
        fprintf(stderr, "reply_bench: no memory for %zu MiB\n", mb);
        return 1;
    }
    memset(payload, 'v', size);
    vl_reply r;
    vl_reply_init(&r);
    vl_reply_bulk(&r, payload, size);
    free(payload);
    if (r.failed) {
        fprintf(stderr, "reply_bench: the reply buffer could not grow to %zu MiB\n", mb);
        return 1;
    }
    size_t sends = 0;
    double t0 = now();
    while (r.len) {
        vl_reply_consume(&r, step);
        sends++;
    }
    double t = now() - t0;
    printf("drained a %zu MiB reply in %zu sends of %zu bytes: %.3f s (%.1f us per send)\n", mb,
           sends, step, t, t * 1e6 / (double)sends);
    vl_reply_free(&r);
    return 0;
}
