/*
 * main.c - command-line flags of bin/vexlake-server.
 *
 * Bad flags exit with code 2 and a message naming the flag, so scripts
 * can tell a usage error (2) from a runtime failure (1).
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "util/error.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: vexlake-server [options]\n"
            "\n"
            "A vector database that speaks the Redis protocol.\n"
            "\n"
            "Options:\n"
            "  --port N                       TCP port (default 6379)\n"
            "  --bind ADDR                    address to listen on (default 127.0.0.1)\n"
            "  --dir PATH                     data directory (default ./data)\n"
            "  --metric l2|cosine|ip          metric of collections this server creates\n"
            "                                 (default cosine; stored with the collection)\n"
            "  --appendfsync always|everysec|no\n"
            "                                 when the WAL is fsynced (default always:\n"
            "                                 +OK means the write is on disk)\n"
            "  --threads N                    search worker threads (default: CPU count)\n"
            "  --maxclients N                 connection limit (default 10000)\n"
            "  --help                         show this help\n");
}

static int usage_error(const char *fmt, ...) VL_PRINTF(1, 2);

static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "vexlake-server: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, " (see --help)\n");
    va_end(ap);
    return 2;
}

static int parse_int(const char *s, long lo, long hi, int *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < lo || v > hi)
        return -1;
    *out = (int)v;
    return 0;
}

/* Returns -1 when flags are fine, else the exit code. */
static int parse_flags(int argc, char **argv, vl_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *f = argv[i];
        if (strcmp(f, "--help") == 0 || strcmp(f, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strncmp(f, "--", 2) != 0 ||
            (strcmp(f, "--port") && strcmp(f, "--bind") && strcmp(f, "--dir") &&
             strcmp(f, "--metric") && strcmp(f, "--appendfsync") && strcmp(f, "--threads") &&
             strcmp(f, "--maxclients")))
            return usage_error("unknown option '%s'", f);
        if (i + 1 >= argc)
            return usage_error("option '%s' needs a value", f);
        const char *v = argv[++i];
        if (strcmp(f, "--port") == 0 && parse_int(v, 0, 65535, &cfg->port) != 0)
            return usage_error("--port wants a number from 0 to 65535, got '%s'", v);
        if (strcmp(f, "--threads") == 0 && parse_int(v, 1, 256, &cfg->threads) != 0)
            return usage_error("--threads wants a number from 1 to 256, got '%s'", v);
        if (strcmp(f, "--maxclients") == 0 && parse_int(v, 1, 1000000, &cfg->max_clients) != 0)
            return usage_error("--maxclients wants a number from 1 to 1000000, got '%s'", v);
        if (strcmp(f, "--metric") == 0 && vl_metric_parse(v, &cfg->metric) != VL_OK)
            return usage_error("--metric wants l2, cosine or ip, got '%s'", v);
        if (strcmp(f, "--appendfsync") == 0 && vl_fsync_parse(v, &cfg->fsync) != VL_OK)
            return usage_error("--appendfsync wants always, everysec or no, got '%s'", v);
        if (strcmp(f, "--bind") == 0 &&
            snprintf(cfg->bind, sizeof cfg->bind, "%s", v) >= (int)sizeof cfg->bind)
            return usage_error("--bind address too long: '%s'", v);
        if (strcmp(f, "--dir") == 0 &&
            (!*v || snprintf(cfg->dir, sizeof cfg->dir, "%s", v) >= (int)sizeof cfg->dir))
            return usage_error("--dir wants a directory path, got '%s'", v);
    }
    return -1;
}

int main(int argc, char **argv)
{
    vl_config cfg;
    vl_config_defaults(&cfg);
    int rc = parse_flags(argc, argv, &cfg);
    if (rc >= 0)
        return rc;
    return vl_server_main(&cfg);
}
