/*
 * gen_corpus.c - writes the seed corpus of every harness into
 * tests/fuzz/corpus/<name>/ (make fuzz-corpus; run from the repository
 * root).  Seeds of the binary formats are produced by the library's own
 * encoders, so they are real files of the current format; the text seeds
 * are listed here.  Each seed is small: libFuzzer mutates better from
 * many short inputs than from a few large ones.  Inputs of harnesses with
 * a control byte (see fuzz.h) get it prepended.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/index/hnsw.h"
#include "core/index/ivf.h"
#include "storage/deletes.h"
#include "storage/descriptor.h"
#include "storage/manifest.h"
#include "storage/parquet.h"
#include "storage/wal.h"
#include "testutil.h"

static void seed(const char *harness, const char *name, const void *data, size_t len)
{
    char path[256];
    snprintf(path, sizeof path, "tests/fuzz/corpus/%s", harness);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "tests/fuzz/corpus/%s/%s", harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, len, f) != len || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void seed_str(const char *harness, const char *name, const char *s)
{
    seed(harness, name, s, strlen(s));
}

/* A seed with a control byte in front. */
static void seed_ctl(const char *harness, const char *name, uint8_t ctl, const void *data,
                     size_t len)
{
    uint8_t *b = malloc(len + 1);
    b[0] = ctl;
    memcpy(b + 1, data, len);
    seed(harness, name, b, len + 1);
    free(b);
}

static void resp_seeds(void)
{
    static const char fp32[] = "*4\r\n$4\r\nVSET\r\n$1\r\nk\r\n$4\r\nFP32\r\n$8\r\n"
                               "\x00\x00\x80\x3f\x00\x00\x00\x40\r\n";
    seed_str("resp", "ping", "*1\r\n$4\r\nPING\r\n");
    seed_str("resp", "vset", "*3\r\n$4\r\nVSET\r\n$1\r\nk\r\n$9\r\n[1, 2, 3]\r\n");
    seed_str("resp", "pipeline", "*2\r\n$4\r\nVGET\r\n$1\r\na\r\n*1\r\n$6\r\nDBSIZE\r\n*0\r\n");
    seed_str("resp", "hello3",
             "*5\r\n$5\r\nHELLO\r\n$1\r\n3\r\n$4\r\nAUTH\r\n$7\r\ndefault\r\n"
             "$2\r\npw\r\n");
    seed_str("resp", "null_array", "*-1\r\n*1\r\n$0\r\n\r\n");
    seed_str("resp", "bad_bulk", "*1\r\n$-1\r\n");
    seed_str("resp", "bad_prefix", "*1\r\n:3\r\n");
    seed_str("resp", "unterminated", "*1\r\n$3\r\nabcde\r\n");
    seed_str("resp", "inline", "PING\r\nVSET k \"[1, 2]\"\nVGET 'k' \r\n\r\n");
    seed_str("resp", "inline_quotes", "VSEARCH \"[0.5, 0.25]\" 10\r\nECHO 'a b'c\r\n");
    seed_str("resp", "http", "POST / HTTP/1.1\r\nHost: localhost\r\n\r\nCLEAR\r\n");
    seed("resp", "fp32", fp32, sizeof fp32 - 1);
}

static void vector_text_seeds(void)
{
    static const char *const v[] = {"[0.1, 0.2, 0.3]",
                                    "[1]",
                                    " \t[ -1e-3 ,2.5E+2\n,0 ]\r\n",
                                    "[3.4028235e38, -3.4028235e38]",
                                    "[1e-45, 1.17549435e-38]",
                                    "[0x1p3]",
                                    "[nan, inf]",
                                    "[1e39]",
                                    "[1,]",
                                    "[]",
                                    "[1 2]",
                                    "[0.1234567, 89.012345, -0.000001]",
                                    "[1e10,1e-10,123456789]",
                                    "[-0, +0.5, .5, 5.]",
                                    "[1.000000000000000000000000000001]",
                                    "[1] x"};
    char name[16];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        snprintf(name, sizeof name, "v%02zu", i);
        seed_str("vector_text", name, v[i]);
    }
    seed_str("vector_text", "small_cap", "\xc1[1,2,3]");
}

static void vector_args_seeds(void)
{
    static const uint8_t fp32[] = {0, 0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
    static const uint8_t nan32[] = {0, 0, 0, 0xc0, 0x7f};
    seed("vector_args", "fp32", fp32, sizeof fp32);
    seed("vector_args", "fp32_nan", nan32, sizeof nan32);
    seed("vector_args", "fp32_odd", "\x00\x01\x02\x03", 4);
    seed_str("vector_args", "text", "\x01[1.5, -2]");
    seed_str("vector_args", "version",
             "\x02"
             "42");
    seed_str("vector_args", "version_big",
             "\x02"
             "18446744073709551616");
    seed_str("vector_args", "version_sign", "\x02+1");
    seed_str("vector_args", "k",
             "\x03"
             "10");
    seed_str("vector_args", "k_big",
             "\x03"
             "10001");
    seed_str("vector_args", "ef",
             "\x04"
             "64");
    seed_str("vector_args", "ef_big",
             "\x04"
             "100001");
}

static void manifest_seeds(void)
{
    vl_manifest m;
    memset(&m, 0, sizeof m);
    strcpy(m.collection, "default");
    m.version = 3;
    m.parent = 2;
    m.created_ms = 1700000000000;
    m.dim = 4;
    m.metric = VL_METRIC_COSINE;
    m.wal_lsn = 41;
    m.live_rows = 9;
    vl_manifest_segment segs[2];
    memset(segs, 0, sizeof segs);
    strcpy(segs[0].name, "tables/default/segments/00000000000000000001.parquet");
    segs[0].rows = 10;
    segs[0].bytes = 4096;
    segs[0].crc32c = 0x1a2b3c4d;
    segs[0].min_seq = 1;
    segs[0].max_seq = 20;
    strcpy(segs[0].del_name, "tables/default/deletes/00000000000000000001-3.del");
    segs[0].del_count = 2;
    segs[0].del_bytes = 28;
    segs[0].del_crc32c = 0xdeadbeef;
    strcpy(segs[1].name, "tables/default/segments/00000000000000000002.parquet");
    segs[1].rows = 1;
    segs[1].bytes = 900;
    segs[1].crc32c = 0x01020304;
    segs[1].min_seq = 21;
    segs[1].max_seq = 21;
    for (size_t n = 0; n <= 2; n++) {
        char *text, name[16];
        size_t len;
        vl_error err;
        m.segs = segs;
        m.nsegs = n;
        if (vl_manifest_encode(&m, &text, &len, &err) != VL_OK) {
            fprintf(stderr, "manifest: %s\n", err.msg);
            exit(1);
        }
        snprintf(name, sizeof name, "segs%zu", n);
        seed_ctl("manifest", name, 0, text, len);
        snprintf(name, sizeof name, "segs%zu_fix", n);
        seed_ctl("manifest", name, 1, text, len);
        free(text);
    }
}

static void descriptor_seeds(void)
{
    static const char *const names[] = {"default", "a", "my-coll.v2_x"};
    char buf[256], name[16];
    for (int i = 0; i < 3; i++) {
        vl_descriptor d;
        memset(&d, 0, sizeof d);
        strcpy(d.name, names[i]);
        d.metric = (vl_metric)i;
        size_t n = vl_descriptor_format(&d, buf, sizeof buf);
        snprintf(name, sizeof name, "desc%d", i);
        seed_ctl("descriptor", name, 0, buf, n);
        /* without the crc line, which the harness then appends */
        snprintf(name, sizeof name, "desc%d_fix", i);
        seed_ctl("descriptor", name, 1, buf, n - 16);
    }
}

static void deletes_seeds(void)
{
    static const uint32_t rows[] = {0, 3, 4, 99, 1000};
    uint8_t *buf;
    size_t len;
    vl_deletes_encode(rows, 5, &buf, &len);
    seed_ctl("deletes", "five", 2 * 11, buf, len); /* 11^3 = 1331 rows */
    seed_ctl("deletes", "five_fix", 2 * 11 + 1, buf, len);
    seed_ctl("deletes", "five_short", 2 * 9, buf, len); /* 729 rows: out of range */
    free(buf);
    vl_deletes_encode(NULL, 0, &buf, &len);
    seed_ctl("deletes", "empty", 0, buf, len);
    free(buf);
}

/* A small log written by the WAL itself; *out malloc'd. */
static void wal_log(int nrec, uint8_t **out, size_t *len)
{
    char dir[64], path[128];
    vl_wal *w;
    vl_error err;
    if (!vl_test_tmpdir(dir, sizeof dir, "gencorpus") ||
        vl_wal_open(dir, VL_FSYNC_NO, NULL, NULL, &w, NULL, &err) != VL_OK) {
        fprintf(stderr, "wal: %s\n", err.msg);
        exit(1);
    }
    static const float vec[3] = {0.5f, -1.0f, 2.0f};
    for (int i = 0; i < nrec; i++) {
        vl_wal_record r = {.coll = "default", .coll_len = 7, .key = "key", .key_len = 3};
        r.type = i % 5 == 4 ? VL_WAL_CLEAR : i % 3 == 2 ? VL_WAL_DEL : VL_WAL_PUT;
        r.vec = vec;
        r.dim = 1 + (uint32_t)i % 3;
        if (vl_wal_append(w, &r, &err) != VL_OK || vl_wal_flush(w, &err) != VL_OK) {
            fprintf(stderr, "wal: %s\n", err.msg);
            exit(1);
        }
    }
    vl_wal_close(w);
    snprintf(path, sizeof path, "%s/wal/0000000000000001.log", dir);
    FILE *f = fopen(path, "rb");
    *out = malloc(4096);
    *len = fread(*out, 1, 4096, f);
    fclose(f);
    vl_test_rmtree(dir);
}

static void wal_seeds(void)
{
    uint8_t *log, *two;
    size_t len;
    wal_log(6, &log, &len);
    seed_ctl("wal", "six", 0, log, len);
    seed_ctl("wal", "six_fix", 1, log, len);
    seed_ctl("wal", "six_torn", 0, log, len - 5);
    seed_ctl("wal", "six_truncate_damaged", 3, log, len - 5);
    two = malloc(len + 1);
    two[0] = 128; /* split point: half way */
    memcpy(two + 1, log, len);
    seed_ctl("wal", "six_two_files", 4 | 1, two, len + 1);
    free(two);
    free(log);
    wal_log(1, &log, &len);
    seed_ctl("wal", "one", 1, log, len);
    free(log);
    seed_ctl("wal", "empty", 0, "", 0);
}

/* A small segment; *out malloc'd. */
static void segment(uint64_t nrows, uint32_t dim, int zstd, uint32_t page_bytes, int binary_keys,
                    uint8_t **out, size_t *len)
{
    const char *keys[8];
    uint32_t lens[8];
    float vecs[8 * 4];
    int64_t seqs[8];
    static const char *const text[8] = {"a", "bb", "key:3", "", "k5", "six", "7", "eight"};
    static const char bin[] = "\xff\xfe\x00";
    for (uint64_t i = 0; i < nrows; i++) {
        keys[i] = binary_keys && i == 1 ? bin : text[i];
        lens[i] = binary_keys && i == 1 ? 3 : (uint32_t)strlen(text[i]);
        seqs[i] = (int64_t)(i * 7 + 1);
        for (uint32_t j = 0; j < dim; j++)
            vecs[i * dim + j] = (float)i - 0.25f * (float)j;
    }
    vl_segment_rows rows = {nrows, dim, keys, lens, vecs, seqs};
    vl_parquet_options opt = {zstd, page_bytes};
    vl_error err;
    if (vl_parquet_write_segment(&rows, &opt, out, len, &err) != VL_OK) {
        fprintf(stderr, "parquet: %s\n", err.msg);
        exit(1);
    }
}

static void parquet_seeds(void)
{
    uint8_t *f;
    size_t len;
    segment(3, 2, 0, 1 << 20, 0, &f, &len);
    seed("parquet", "plain", f, len);
    /* the Thrift structs inside it: the footer, and the first page header */
    uint32_t flen;
    memcpy(&flen, f + len - 8, 4);
    seed_ctl("thrift", "file_meta", 0, f + len - 8 - flen, flen);
    seed_ctl("thrift", "page_header", 1, f + 4, 64);
    free(f);
    segment(8, 4, 1, 64, 0, &f, &len);
    seed("parquet", "zstd_pages", f, len);
    free(f);
    segment(2, 1, 0, 1 << 20, 1, &f, &len);
    seed("parquet", "binary_keys", f, len);
    free(f);
    segment(0, 0, 0, 1 << 20, 0, &f, &len);
    seed("parquet", "empty", f, len);
    free(f);
}

/* Control byte 0: one line; 2: a whole file. */
static void acl_seeds(void)
{
    static const char *const lines[] = {
        "user alice on >pw ~default +@read +@write -clear",
        "user bob off nopass ~* allcommands -@admin +save",
        "user c on #2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae ~vec:[a-z]*",
        "user d on resetpass allkeys nocommands +acl|whoami +acl -acl|load +ping",
        "user default on nopass ~* +@all",
        "# comment",
        "user e on +@reed",
    };
    char name[16];
    for (size_t i = 0; i < sizeof lines / sizeof lines[0]; i++) {
        snprintf(name, sizeof name, "line%zu", i);
        seed_ctl("acl", name, 0, lines[i], strlen(lines[i]));
    }
    static const char file[] = "# users\nuser default off\nuser admin on >a ~* +@all\r\n\n"
                               "user reader on >r ~default +@read\n";
    seed_ctl("acl", "file", 2, file, sizeof file - 1);
    static const char dup[] = "user a on\nuser a off\n";
    seed_ctl("acl", "file_dup", 2, dup, sizeof dup - 1);
}

/* Index bodies over the vectors fuzz_hnsw.c makes up (same formula). */
static void hnsw_seed(const char *name, uint32_t dim, uint32_t count, vl_metric metric, int sq8)
{
    vl_hnsw *h;
    vl_error err;
    float v[64];
    if (vl_hnsw_create(dim, metric, 4, 16, 7, &h, &err) != VL_OK ||
        (sq8 && count && vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err) != VL_OK)) {
        fprintf(stderr, "hnsw: %s\n", err.msg);
        exit(1);
    }
    for (uint32_t r = 0; r < count; r++) {
        for (uint32_t j = 0; j < dim; j++) {
            uint64_t i = (uint64_t)r * dim + j;
            v[j] = (float)((i * 2654435761u) % 1000) / 100.0f - 5.0f;
        }
        if (vl_hnsw_add(h, r, v, &err) != VL_OK) {
            fprintf(stderr, "hnsw: %s\n", err.msg);
            exit(1);
        }
    }
    uint8_t *body;
    size_t len;
    if (vl_hnsw_save(h, &body, &len, &err) != VL_OK) {
        fprintf(stderr, "hnsw: %s\n", err.msg);
        exit(1);
    }
    char fixed[32];
    snprintf(fixed, sizeof fixed, "%s_fix", name);
    seed_ctl("hnsw", name, 0, body, len);
    seed_ctl("hnsw", fixed, 1, body, len);
    free(body);
    vl_hnsw_free(h);
}

static void hnsw_seeds(void)
{
    hnsw_seed("l2_20x4", 4, 20, VL_METRIC_L2, 0);
    hnsw_seed("cosine_sq8_12x3", 3, 12, VL_METRIC_COSINE, 1);
    hnsw_seed("ip_3x2", 2, 3, VL_METRIC_IP, 0);
    hnsw_seed("empty", 4, 0, VL_METRIC_L2, 0);
}

static void ivf_seeds(void)
{
    static const char *const names[3] = {"none", "sq8", "rabitq"};
    float v[48 * 8];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++)
        v[i] = (float)((i * 2654435761u) % 1000) / 100.0f - 5.0f;
    for (int q = 0; q < 3; q++) {
        vl_ivf_params p = {.dim = 8, .metric = (vl_metric)q, .nlist = 3, .quant = (vl_ivf_quant)q};
        p.seed = 7;
        vl_ivf *ix;
        vl_error err;
        uint8_t *buf;
        size_t len;
        if (vl_ivf_build(&p, v, 48, &ix, &err) != VL_OK ||
            vl_ivf_serialize(ix, &buf, &len, &err) != VL_OK) {
            fprintf(stderr, "ivf: %s\n", err.msg);
            exit(1);
        }
        char name[32];
        snprintf(name, sizeof name, "%s_%s", names[q], q == 0 ? "l2" : q == 1 ? "cosine" : "ip");
        seed_ctl("ivf", name, 0, buf, len);
        snprintf(name, sizeof name, "%s_fix", names[q]);
        seed_ctl("ivf", name, 1, buf, len);
        free(buf);
        vl_ivf_free(ix);
    }
}

int main(void)
{
    mkdir("tests/fuzz/corpus", 0755);
    resp_seeds();
    vector_text_seeds();
    vector_args_seeds();
    manifest_seeds();
    descriptor_seeds();
    deletes_seeds();
    wal_seeds();
    parquet_seeds();
    acl_seeds();
    hnsw_seeds();
    ivf_seeds();
    return 0;
}
