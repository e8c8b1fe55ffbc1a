/*
 * main.c - command-line flags of bin/vexlake-server.
 *
 * Bad flags exit with code 2 and a message naming the flag, so scripts
 * can tell a usage error (2) from a runtime failure (1).
 */
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands/commands.h"
#include "server/server.h"
#include "util/error.h"
#include "util/number.h"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: vexlake-server [options]\n"
            "\n"
            "A vector database that speaks the Redis protocol.\n"
            "\n"
            "Options:\n"
            "  --port N                       TCP port (default 6379; 0 = no plain TCP,\n"
            "                                 with --tls-port)\n"
            "  --bind ADDR                    address to listen on (default 127.0.0.1)\n"
            "  --dir PATH                     data directory (default ./data)\n"
            "  --metric l2|cosine|ip          metric of collections this server creates\n"
            "                                 (default cosine; stored with the collection)\n"
            "  --appendfsync always|everysec|no\n"
            "                                 when the WAL is fsynced (default always:\n"
            "                                 +OK means the write is on disk)\n"
            "  --threads N                    search worker threads (default: CPU count)\n"
            "  --maxclients N                 connection limit (default 10000; lowered to\n"
            "                                 what the open files limit allows)\n"
            "  --timeout N                    close a client after N seconds without a\n"
            "                                 complete request (default 0: never)\n"
            "  --flush-rows N                 flush to a Parquet segment after N unflushed\n"
            "                                 writes (default 100000; 0 = never by count)\n"
            "  --flush-mb N                   ... or when the WAL reaches N MiB (default 256)\n"
            "  --flush-seconds N              ... or N seconds after a change (default 300)\n"
            "  --retain-versions N            versions kept for time travel (default 10)\n"
            "  --compact-segments N           merge segments when there are N (default 8)\n"
            "  --open-previous-on-damage      if the newest version is damaged, open the\n"
            "                                 newest older version that is intact\n"
            "  --wal-truncate-damaged         if the last WAL file is damaged before its end,\n"
            "                                 cut it there (drops what follows) instead of\n"
            "                                 refusing to start\n"
            "  --tls-port N                   TLS port (default 0 = no TLS listener)\n"
            "  --tls-cert-file PATH           server certificate chain (PEM), for --tls-port\n"
            "  --tls-key-file PATH            its private key (PEM, unencrypted)\n"
            "  --tls-ca-cert-file PATH        CA certificates (PEM) client certificates must\n"
            "                                 chain to\n"
            "  --tls-auth-clients yes|no|optional\n"
            "                                 require a client certificate (default yes),\n"
            "                                 never ask, or verify one if presented\n"
            "  --requirepass PASS             password of the default user (clients AUTH)\n"
            "  --requirepass-file PATH        ... read from the file's first line, so it is\n"
            "                                 not visible in ps\n"
            "  --aclfile PATH                 users and their rules (ACL LOAD rereads it)\n"
            "  --protected-mode yes|no        with no password, serve loopback clients only\n"
            "                                 (default yes)\n"
            "  --simd auto|avx512|avx2|neon|scalar\n"
            "                                 SIMD path of the distance kernels (default\n"
            "                                 auto: the best this CPU has; a path the CPU\n"
            "                                 lacks is refused)\n"
            "  --maxmemory BYTES              data memory limit: a VSET past it gets -OOM,\n"
            "                                 reads and deletes go on (default 0 = none)\n"
            "  --maxmemory-clients BYTES      all clients' query + output buffers; past it the\n"
            "                                 largest client is evicted (default 1gb; 0 = none;\n"
            "                                 units k, kb, m, mb, g, gb as in Redis)\n"
            "  --client-query-buffer-limit BYTES\n"
            "                                 one client's unfinished request (default 64mb)\n"
            "  --client-output-buffer-limit BYTES\n"
            "                                 one client's unsent replies; past it the client\n"
            "                                 is closed (default 256mb; 0 = no limit)\n"
            "  --storage s3://BUCKET/PREFIX   keep everything durable, the WAL included, in\n"
            "                                 S3 (credentials: AWS_ACCESS_KEY_ID and\n"
            "                                 AWS_SECRET_ACCESS_KEY); fences any other writer\n"
            "                                 on the prefix; --dir keeps only LOCK\n"
            "  --s3-endpoint URL              S3 endpoint, e.g. http://127.0.0.1:8333\n"
            "                                 (default: AWS for --s3-region)\n"
            "  --s3-region NAME               signing region (default us-east-1)\n"
            "  --s3-timeout-ms N              bound on one S3 call, retries included\n"
            "                                 (default 30000)\n"
            "  --cache-dir PATH               with --storage: local copies of segments,\n"
            "                                 deletion and index files and manifests\n"
            "                                 (default <dir>/cache; safe to delete at any\n"
            "                                 time)\n"
            "  --cache-size BYTES             its limit, least recently used out first\n"
            "                                 (default 4gb; 0 = no cache)\n"
            "  --index hnsw|ivf|flat          index of collections this server creates\n"
            "                                 (default hnsw; stored with the collection)\n"
            "  --quant none|sq8|rabitq        codes the index walks before the float32\n"
            "                                 re-rank (default sq8; rabitq: ivf only)\n"
            "  --hnsw-m N                     HNSW links per row, 2..128 (default 16)\n"
            "  --hnsw-ef-construction N       HNSW build beam, 1..4096 (default 200)\n"
            "  --ivf-lists N                  IVF lists per segment, up to 65536 (default\n"
            "                                 0: chosen from the segment's row count)\n"
            "  --tail-index-rows N            rows per in-memory index over rows no segment\n"
            "                                 index covers yet, up to 65536 (default 4096;\n"
            "                                 0: scan them all exactly)\n"
            "  --read-only                    a follower: serve the newest version in\n"
            "                                 --storage plus the writer's WAL, and follow\n"
            "                                 both; writes get -READONLY (--dir is the\n"
            "                                 node's own scratch)\n"
            "  --follow-interval-ms N         how often a follower looks at the store\n"
            "                                 (default 1000; 100..3600000)\n"
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

/* Strict, as integers from clients are (util/number.h): no '+', spaces or
 * leading zeros. */
static int parse_long(const char *s, long lo, long hi, long *out)
{
    long long v;
    if (vl_parse_ll(s, strlen(s), &v) != 0 || v < lo || v > hi)
        return -1;
    *out = (long)v;
    return 0;
}

/* Bytes with Redis' units: k/m/g are powers of 1000, kb/mb/gb of 1024. */
static int parse_bytes(const char *s, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"", 1},           {"b", 1},        {"k", 1000},
                 {"kb", 1024},      {"m", 1000000},  {"mb", 1024 * 1024},
                 {"g", 1000000000}, {"gb", 1u << 30}};
    char *end;
    if (*s < '0' || *s > '9')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(end, units[i].unit) == 0 && v <= UINT64_MAX / units[i].mul) {
            *out = v * units[i].mul;
            return 0;
        }
    }
    return -1;
}

typedef enum {
    INT_FLAG,
    BYTES_FLAG, /* bytes with Redis' units */
    METRIC_FLAG,
    FSYNC_FLAG,
    STRING_FLAG,
    TLS_AUTH_FLAG,
    SECRET_FLAG,      /* a string never echoed in messages */
    SECRET_FILE_FLAG, /* a secret read from a file's first line */
    YESNO_FLAG,
    SIMD_FLAG,
    INDEX_FLAG,
    QUANT_FLAG
} flag_kind;

typedef struct {
    const char *name;
    flag_kind kind;
    long lo, hi;
    size_t offset; /* into vl_config */
    size_t size;   /* of the field */
} flag;

#define FIELD(f) offsetof(vl_config, f), sizeof(((vl_config *)0)->f)

static const flag flags[] = {
    {"--port", INT_FLAG, 0, 65535, FIELD(port)},
    {"--bind", STRING_FLAG, 0, 0, FIELD(bind)},
    {"--dir", STRING_FLAG, 0, 0, FIELD(dir)},
    {"--metric", METRIC_FLAG, 0, 0, FIELD(metric)},
    {"--appendfsync", FSYNC_FLAG, 0, 0, FIELD(fsync)},
    {"--threads", INT_FLAG, 1, 256, FIELD(threads)},
    {"--maxclients", INT_FLAG, 1, 1000000, FIELD(max_clients)},
    {"--timeout", INT_FLAG, 0, 86400 * 365, FIELD(timeout)},
    {"--flush-rows", INT_FLAG, 0, 1000000000, FIELD(flush_rows)},
    {"--flush-mb", INT_FLAG, 0, 1048576, FIELD(flush_mb)},
    {"--flush-seconds", INT_FLAG, 0, 86400 * 365, FIELD(flush_seconds)},
    {"--retain-versions", INT_FLAG, 1, 1000000, FIELD(retain_versions)},
    {"--compact-segments", INT_FLAG, 2, 1000000, FIELD(compact_segments)},
    {"--tls-port", INT_FLAG, 0, 65535, FIELD(tls_port)},
    {"--tls-cert-file", STRING_FLAG, 0, 0, FIELD(tls_cert_file)},
    {"--tls-key-file", STRING_FLAG, 0, 0, FIELD(tls_key_file)},
    {"--tls-ca-cert-file", STRING_FLAG, 0, 0, FIELD(tls_ca_cert_file)},
    {"--tls-auth-clients", TLS_AUTH_FLAG, 0, 0, FIELD(tls_auth_clients)},
    {"--requirepass", SECRET_FLAG, 0, 0, FIELD(requirepass)},
    {"--requirepass-file", SECRET_FILE_FLAG, 0, 0, FIELD(requirepass)},
    {"--aclfile", STRING_FLAG, 0, 0, FIELD(aclfile)},
    {"--protected-mode", YESNO_FLAG, 0, 0, FIELD(protected_mode)},
    {"--simd", SIMD_FLAG, 0, 0, FIELD(simd)},
    {"--maxmemory", BYTES_FLAG, 0, 0, FIELD(maxmemory)},
    {"--maxmemory-clients", BYTES_FLAG, 0, 0, FIELD(maxmemory_clients)},
    {"--client-query-buffer-limit", BYTES_FLAG, 0, 0, FIELD(client_query_buffer_limit)},
    {"--client-output-buffer-limit", BYTES_FLAG, 0, 0, FIELD(client_output_buffer_limit)},
    {"--storage", STRING_FLAG, 0, 0, FIELD(storage)},
    {"--s3-endpoint", STRING_FLAG, 0, 0, FIELD(s3_endpoint)},
    {"--s3-region", STRING_FLAG, 0, 0, FIELD(s3_region)},
    {"--s3-timeout-ms", INT_FLAG, 100, 3600000, FIELD(s3_timeout_ms)},
    {"--cache-dir", STRING_FLAG, 0, 0, FIELD(cache_dir)},
    {"--cache-size", BYTES_FLAG, 0, 0, FIELD(cache_size)},
    {"--index", INDEX_FLAG, 0, 0, FIELD(index.kind)},
    {"--quant", QUANT_FLAG, 0, 0, FIELD(index.quant)},
    {"--hnsw-m", INT_FLAG, 2, 128, FIELD(index.hnsw_m)},
    {"--hnsw-ef-construction", INT_FLAG, 1, 4096, FIELD(index.hnsw_ef_construction)},
    {"--ivf-lists", INT_FLAG, 0, 65536, FIELD(index.ivf_lists)},
    {"--tail-index-rows", INT_FLAG, 0, 65536, FIELD(tail_index_rows)},
    {"--follow-interval-ms", INT_FLAG, 100, 3600000, FIELD(follow_interval_ms)},
};

/* The first line of file `path` (without its line end) into field. */
static int read_secret_file(const flag *f, const char *path, char *field)
{
    FILE *in = fopen(path, "rb");
    if (!in)
        return usage_error("%s: cannot read %s: %s", f->name, path, strerror(errno));
    size_t n = fread(field, 1, f->size, in);
    fclose(in);
    char *nl = memchr(field, '\n', n);
    size_t len = nl ? (size_t)(nl - field) : n;
    if (len && field[len - 1] == '\r')
        len--;
    if (len >= f->size) {
        memset(field, 0, f->size);
        return usage_error("%s: the first line of %s is longer than %zu bytes", f->name, path,
                           f->size - 1);
    }
    field[len] = '\0';
    if (len == 0 || strlen(field) != len) {
        memset(field, 0, f->size);
        return usage_error("%s: the first line of %s is empty or holds a NUL byte", f->name, path);
    }
    return -1;
}

static void store_int(void *field, size_t size, long v)
{
    if (size == sizeof(int))
        *(int *)field = (int)v;
    else
        *(uint64_t *)field = (uint64_t)v;
}

/* Apply one "--flag value"; returns -1 when fine, else the exit code. */
static int apply_flag(const flag *f, const char *v, vl_config *cfg)
{
    void *field = (char *)cfg + f->offset;
    long n;
    switch (f->kind) {
    case INT_FLAG:
        if (parse_long(v, f->lo, f->hi, &n) != 0)
            return usage_error("%s wants a number from %ld to %ld, got '%s'", f->name, f->lo, f->hi,
                               v);
        store_int(field, f->size, n);
        return -1;
    case BYTES_FLAG:
        if (parse_bytes(v, field) != 0)
            return usage_error("%s wants a size in bytes (units k, kb, m, mb, g, gb), got '%s'",
                               f->name, v);
        return -1;
    case METRIC_FLAG:
        if (vl_metric_parse(v, field) != VL_OK)
            return usage_error("%s wants l2, cosine or ip, got '%s'", f->name, v);
        return -1;
    case FSYNC_FLAG:
        if (vl_fsync_parse(v, field) != VL_OK)
            return usage_error("%s wants always, everysec or no, got '%s'", f->name, v);
        return -1;
    case TLS_AUTH_FLAG:
        if (vl_tls_auth_parse(v, field) != 0)
            return usage_error("%s wants yes, no or optional, got '%s'", f->name, v);
        return -1;
    case SIMD_FLAG: {
        vl_error err;
        if (vl_simd_parse(v, field) != VL_OK)
            return usage_error("%s wants auto, avx512, avx2, neon or scalar, got '%s'", f->name, v);
        if (vl_simd_select(*(vl_simd *)field, &err) != VL_OK)
            return usage_error("--simd %s: %s", v, err.msg);
        return -1;
    }
    case STRING_FLAG:
        if (!*v || snprintf(field, f->size, "%s", v) >= (int)f->size)
            return usage_error("%s wants a value of 1 to %zu characters, got '%s'", f->name,
                               f->size - 1, v);
        return -1;
    case SECRET_FLAG:
        if (!*v || snprintf(field, f->size, "%s", v) >= (int)f->size)
            return usage_error("%s wants a value of 1 to %zu characters", f->name, f->size - 1);
        return -1;
    case SECRET_FILE_FLAG: return read_secret_file(f, v, field);
    case YESNO_FLAG:
        if (strcmp(v, "yes") != 0 && strcmp(v, "no") != 0)
            return usage_error("%s wants yes or no, got '%s'", f->name, v);
        *(int *)field = strcmp(v, "yes") == 0;
        return -1;
    case INDEX_FLAG:
        if (vl_index_kind_parse(v, field) != VL_OK)
            return usage_error("%s wants hnsw, ivf or flat, got '%s'", f->name, v);
        return -1;
    case QUANT_FLAG:
        if (vl_quant_parse(v, field) != VL_OK)
            return usage_error("%s wants none, sq8 or rabitq, got '%s'", f->name, v);
        return -1;
    }
    return -1;
}

/* Returns -1 when flags are fine, else the exit code. */
static int parse_flags(int argc, char **argv, vl_config *cfg)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            return 0;
        }
        if (strcmp(a, "--open-previous-on-damage") == 0) {
            cfg->open_previous_on_damage = 1;
            continue;
        }
        if (strcmp(a, "--read-only") == 0) {
            cfg->read_only = 1;
            continue;
        }
        if (strcmp(a, "--wal-truncate-damaged") == 0) {
            cfg->wal_truncate_damaged = 1;
            continue;
        }
        const flag *f = NULL;
        for (size_t k = 0; k < sizeof flags / sizeof flags[0] && !f; k++)
            if (strcmp(a, flags[k].name) == 0)
                f = &flags[k];
        if (!f)
            return usage_error("unknown option '%s'", a);
        if (i + 1 >= argc)
            return usage_error("option '%s' needs a value", a);
        int rc = apply_flag(f, argv[++i], cfg);
        if (rc >= 0)
            return rc;
    }
    return -1;
}

/* Flags that only make sense together; -1 when fine, else the exit code. */
static int check_listeners(const vl_config *cfg)
{
    if (!cfg->port && !cfg->tls_port)
        return usage_error("--port 0 needs --tls-port: nothing to listen on");
    if (!cfg->tls_port)
        return -1;
    if (cfg->tls_port == cfg->port)
        return usage_error("--tls-port %d is also --port", cfg->tls_port);
    if (!cfg->tls_cert_file[0] || !cfg->tls_key_file[0])
        return usage_error("--tls-port needs --tls-cert-file and --tls-key-file");
    if (cfg->tls_auth_clients != VL_TLS_AUTH_NO && !cfg->tls_ca_cert_file[0])
        return usage_error("--tls-auth-clients %s needs --tls-ca-cert-file to verify client "
                           "certificates (or --tls-auth-clients no)",
                           vl_tls_auth_name(cfg->tls_auth_clients));
    return -1;
}

/* The HNSW graph walks float32 or SQ8 codes; RaBitQ codes are IVF's. */
static int check_index(const vl_config *cfg)
{
    if (cfg->index.kind == VL_INDEX_HNSW && cfg->index.quant == VL_QUANT_RABITQ)
        return usage_error("--quant rabitq needs --index ivf (the hnsw graph walks none or "
                           "sq8 codes)");
    return -1;
}

int main(int argc, char **argv)
{
    vl_config cfg;
    vl_config_defaults(&cfg);
    int rc = parse_flags(argc, argv, &cfg);
    if (rc < 0)
        rc = check_listeners(&cfg);
    if (rc < 0)
        rc = check_index(&cfg);
    if (rc < 0 && cfg.read_only && !cfg.storage[0])
        rc = usage_error("--read-only needs --storage: a follower reads the writer's bucket "
                         "(its --dir is its own scratch)");
    if (rc >= 0)
        return rc;
    vl_error err;
    if (vl_auth_configure(cfg.requirepass[0] ? cfg.requirepass : NULL,
                          cfg.aclfile[0] ? cfg.aclfile : NULL, &err) != VL_OK) {
        fprintf(stderr, "vexlake-server: %s\n", err.msg);
        return 2;
    }
    explicit_bzero(cfg.requirepass, sizeof cfg.requirepass); /* only its hash is kept */
    vl_auth_warn_exposure(cfg.bind, cfg.protected_mode);
    /* Blocks of 1 MiB and more (row chunks, segments an index build or a
     * load reads, Parquet pages, index arrays) are mapped on their own and
     * returned when freed.  glibc's default raises this threshold as large
     * blocks are freed, and a build thread's arena then kept what it had
     * read: RSS after an index build was twice the steady state until a
     * restart (bench/results/2026-12-02-memory.md). */
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
    return vl_server_main(&cfg);
}
