/*
 * vl_parquet.c - bin/vl-parquet: write, dump and check VexLake segment
 * files (Parquet) from the command line.
 *
 *   vl-parquet write IN.fvecs OUT.parquet [--keys-prefix P] [--zstd-level N]
 *                    [--page-bytes N]
 *       one row per fvecs record: key = P + row number (default P "vec:"),
 *       seq = row number + 1
 *   vl-parquet dump FILE.parquet [--limit N]
 *       one line per row: key TAB seq TAB [v0, v1, ...] with %.9g floats;
 *       in keys, backslash, control bytes and DEL are written as \\, \t,
 *       \n, \r or \xHH, other bytes as they are
 *   vl-parquet check FILE.parquet
 *       decode everything; print "ok: N rows, dim D" or the error (exit 1)
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/parquet.h"

static int usage(void)
{
    fprintf(stderr, "usage: vl-parquet write IN.fvecs OUT.parquet [--keys-prefix P] "
                    "[--zstd-level N] [--page-bytes N]\n"
                    "       vl-parquet dump FILE.parquet [--limit N]\n"
                    "       vl-parquet check FILE.parquet\n");
    return 2;
}

static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        fprintf(stderr, "vl-parquet: %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, n = 0, got;
    uint8_t *buf = malloc(cap);
    while (buf && (got = fread(buf + n, 1, cap - n, fp)) > 0) {
        n += got;
        if (n == cap) {
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
            cap *= 2;
        }
    }
    int bad = !buf || ferror(fp);
    fclose(fp);
    if (bad) {
        fprintf(stderr, "vl-parquet: %s: read failed\n", path);
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "vl-parquet: bad number \"%s\"\n", s);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_write(int argc, char **argv)
{
    const char *prefix = "vec:";
    vl_parquet_options opt;
    vl_parquet_options_init(&opt);
    for (int i = 2; i < argc; i++) {
        long long v;
        if (!strcmp(argv[i], "--keys-prefix") && i + 1 < argc) {
            prefix = argv[++i];
        } else if (!strcmp(argv[i], "--zstd-level") && i + 1 < argc) {
            if (parse_num(argv[++i], -100, 100, &v) < 0)
                return 2;
            opt.zstd_level = (int)v;
        } else if (!strcmp(argv[i], "--page-bytes") && i + 1 < argc) {
            if (parse_num(argv[++i], 1, 1 << 30, &v) < 0)
                return 2;
            opt.page_bytes = (uint32_t)v;
        } else {
            return usage();
        }
    }
    size_t len;
    uint8_t *in = slurp(argv[0], &len);
    if (!in)
        return 1;
    uint32_t dim = 0;
    if (len >= 4)
        memcpy(&dim, in, 4);
    size_t rec = 4 + (size_t)dim * 4;
    if (len > 0 && (dim == 0 || dim > VL_MAX_DIM || len % rec)) {
        fprintf(stderr, "vl-parquet: %s: not an fvecs file\n", argv[0]);
        free(in);
        return 1;
    }
    uint64_t n = len / rec; /* an empty file gives an empty segment of dimension 0 */
    size_t plen = strlen(prefix);
    float *vecs = malloc(n * dim * sizeof *vecs + 1);
    int64_t *seqs = malloc(n * sizeof *seqs + 1);
    uint32_t *klens = malloc(n * sizeof *klens + 1);
    char **keys = malloc(n * sizeof *keys + 1);
    char *kdata = malloc(n * (plen + 21) + 1);
    int rc = 1;
    if (!vecs || !seqs || !klens || !keys || !kdata) {
        fprintf(stderr, "vl-parquet: out of memory\n");
        goto out;
    }
    for (uint64_t i = 0; i < n; i++) {
        uint32_t d;
        memcpy(&d, in + i * rec, 4);
        if (d != dim) {
            fprintf(stderr, "vl-parquet: %s: record %llu has dimension %u, not %u\n", argv[0],
                    (unsigned long long)i, d, dim);
            goto out;
        }
        memcpy(vecs + i * dim, in + i * rec + 4, (size_t)dim * 4);
        seqs[i] = (int64_t)i + 1;
        keys[i] = kdata + i * (plen + 21);
        klens[i] = (uint32_t)snprintf(keys[i], plen + 21, "%s%llu", prefix, (unsigned long long)i);
    }
    vl_segment_rows rows = {n, dim, (const char *const *)keys, klens, vecs, seqs};
    uint8_t *pq;
    size_t pqlen;
    vl_error err;
    if (vl_parquet_write_segment(&rows, &opt, &pq, &pqlen, &err) != VL_OK) {
        fprintf(stderr, "vl-parquet: %s\n", err.msg);
        goto out;
    }
    FILE *fp = fopen(argv[1], "wb");
    int ok = fp != NULL;
    if (ok) {
        ok = fwrite(pq, 1, pqlen, fp) == pqlen;
        ok = fclose(fp) == 0 && ok;
    }
    if (ok)
        rc = 0;
    else
        fprintf(stderr, "vl-parquet: %s: write failed: %s\n", argv[1], strerror(errno));
    free(pq);
out:
    free(in);
    free(vecs);
    free(seqs);
    free(klens);
    free(keys);
    free(kdata);
    return rc;
}

static int load(const char *path, vl_segment *seg)
{
    size_t len;
    uint8_t *buf = slurp(path, &len);
    if (!buf)
        return 1;
    vl_error err;
    vl_status st = vl_parquet_read_segment(buf, len, seg, &err);
    free(buf);
    if (st != VL_OK) {
        fprintf(stderr, "vl-parquet: %s: %s\n", path, err.msg);
        return 1;
    }
    return 0;
}

static void put_key(const char *k, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)k[i];
        if (c == '\\')
            fputs("\\\\", stdout);
        else if (c == '\t')
            fputs("\\t", stdout);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c == '\r')
            fputs("\\r", stdout);
        else if (c < 0x20 || c == 0x7F)
            printf("\\x%02x", c);
        else
            putchar(c);
    }
}

static int cmd_dump(int argc, char **argv)
{
    long long limit = -1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--limit") && i + 1 < argc) {
            if (parse_num(argv[++i], 0, INT64_MAX, &limit) < 0)
                return 2;
        } else {
            return usage();
        }
    }
    vl_segment seg;
    if (load(argv[0], &seg))
        return 1;
    for (uint64_t r = 0; r < seg.nrows && (limit < 0 || r < (uint64_t)limit); r++) {
        put_key(seg.key_data + seg.key_offs[r], seg.key_offs[r + 1] - seg.key_offs[r]);
        printf("\t%lld\t[", (long long)seg.seqs[r]);
        for (uint32_t d = 0; d < seg.dim; d++)
            printf(d ? ", %.9g" : "%.9g", (double)seg.vecs[r * seg.dim + d]);
        fputs("]\n", stdout);
    }
    vl_segment_free(&seg);
    return fflush(stdout) == 0 ? 0 : 1;
}

static int cmd_check(int argc, char **argv)
{
    if (argc != 1)
        return usage();
    vl_segment seg;
    if (load(argv[0], &seg))
        return 1;
    printf("ok: %llu rows, dim %u\n", (unsigned long long)seg.nrows, seg.dim);
    vl_segment_free(&seg);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "write"))
        return cmd_write(argc - 2, argv + 2);
    if (argc >= 3 && !strcmp(argv[1], "dump"))
        return cmd_dump(argc - 2, argv + 2);
    if (argc >= 3 && !strcmp(argv[1], "check"))
        return cmd_check(argc - 2, argv + 2);
    return usage();
}
