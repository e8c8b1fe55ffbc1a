/* test_index_lake.c - index files in the lake, through include/vexlake.h:
 * a restart loads them without rebuilding (asserted with the engine's
 * counters), damaged, truncated or missing ones are detected and rebuilt
 * from their segment, time travel searches with the version's indexes,
 * collections from before indexes are upgraded by an index job, and a
 * kill -9 during an index build loses nothing.  Below the engine, the
 * HNSW file's load path (core/index/hnsw.h): version 1 bodies (without
 * codes) still load, to the same index as version 2, a load over a vector
 * source holds no float32 copy, and a lake's version 1 file is written
 * anew as version 2 in the background. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/index/hnsw.h"
#include "storage/crc32c.h"
#include "storage/descriptor.h"
#include "testutil.h"
#include "testutil_index.h"
#include "vexlake.h"

static vl_engine_stats stats(vl_engine *e)
{
    vl_engine_stats st;
    vl_engine_stats_get(e, &st);
    return st;
}

static vl_collection_info describe(vl_engine *e)
{
    vl_collection_info info;
    assert_int_equal(vl_collection_describe(e, IX_COLL, &info), VL_OK);
    return info;
}

static void assert_matches_exact(vl_engine *e)
{
    vl_search_opts wide = {.ef = 1000, .nprobe = VL_MAX_NPROBE};
    for (int q = 0; q < 10; q++) {
        float v[IX_DIM];
        ix_vector(9000 + q, 0, v);
        ix_assert_same(e, v, 10, &wide, 1);
    }
}

/* The one index file of the collection (path into buf), 0 if none. */
static int index_file(const char *dir, char *buf, size_t cap)
{
    char sub[256];
    snprintf(sub, sizeof sub, "%s/tables/%s/indexes", dir, IX_COLL);
    DIR *d = opendir(sub);
    if (!d)
        return 0;
    struct dirent *de;
    int found = 0;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.' && !found) {
            snprintf(buf, cap, "%s/%s", sub, de->d_name);
            found = 1;
        }
    closedir(d);
    return found;
}

static void test_restart_loads_without_rebuilding(void **state)
{
    (void)state;
    vl_index_kind kinds[] = {VL_INDEX_HNSW, VL_INDEX_IVF};
    for (int k = 0; k < 2; k++) {
        vl_test_dir t;
        assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixrs") != NULL);
        vl_options o = ix_options(kinds[k], VL_QUANT_SQ8);
        vl_engine *e = ix_open(t.dir, &o);
        ix_put_range(e, 0, 100, 0);
        ix_save(e);
        ix_index(e);
        assert_int_equal(stats(e).index_builds, 1);
        assert_int_equal(stats(e).index_loads, 0);
        vl_close(e);
        e = ix_open(t.dir, &o);
        assert_int_equal(stats(e).index_loads, 1);
        assert_int_equal(stats(e).index_builds, 0);
        assert_int_equal(describe(e).indexed_rows, 100);
        ix_index(e);
        assert_int_equal(stats(e).index_builds, 0); /* nothing to rebuild */
        assert_matches_exact(e);
        vl_close(e);
        vl_test_rmtree(t.dir);
    }
}

typedef enum { FLIP_HEAD, FLIP_MIDDLE, FLIP_LAST, TRUNCATE, REMOVE } damage;

static void spoil(const char *path, damage how)
{
    FILE *f = fopen(path, "r+b");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    long at = how == FLIP_HEAD ? 3 : how == FLIP_MIDDLE ? size / 2 : size - 1;
    if (how <= FLIP_LAST) {
        fseek(f, at, SEEK_SET);
        int c = fgetc(f);
        fseek(f, at, SEEK_SET);
        fputc(c ^ 0x20, f);
    }
    fclose(f);
    if (how == TRUNCATE)
        assert_int_equal(truncate(path, size - 7), 0);
    if (how == REMOVE)
        assert_int_equal(unlink(path), 0);
}

/* A damaged index file is detected at open (the segment is scanned
 * exactly meanwhile), rebuilt by an index job, and the rebuild is what the
 * next start loads. */
static void test_damaged_index_is_rebuilt(void **state)
{
    (void)state;
    for (damage how = FLIP_HEAD; how <= REMOVE; how++) {
        vl_test_dir t;
        assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixdmg") != NULL);
        vl_options o = ix_options(how % 2 ? VL_INDEX_IVF : VL_INDEX_HNSW, VL_QUANT_SQ8);
        vl_engine *e = ix_open(t.dir, &o);
        ix_put_range(e, 0, 100, 0);
        ix_save(e);
        ix_index(e);
        uint64_t version = vl_current_version(e, IX_COLL);
        vl_close(e);
        char path[512];
        assert_true(index_file(t.dir, path, sizeof path));
        spoil(path, how);
        e = ix_open(t.dir, &o);
        assert_int_equal(stats(e).index_loads, 0);
        assert_int_equal(describe(e).indexed_rows, 0);
        assert_int_equal(describe(e).count, 100);
        assert_matches_exact(e);
        ix_index(e);
        assert_int_equal(stats(e).index_builds, 1);
        assert_int_equal(stats(e).index_rebuilds, 1);
        assert_int_equal(vl_current_version(e, IX_COLL), version + 1);
        assert_int_equal(describe(e).indexed_rows, 100);
        assert_matches_exact(e);
        vl_close(e);
        e = ix_open(t.dir, &o);
        assert_int_equal(stats(e).index_loads, 1);
        assert_int_equal(stats(e).index_builds, 0);
        vl_close(e);
        vl_test_rmtree(t.dir);
    }
}

/* VERSION n searches that version's rows with that version's index files. */
static void test_time_travel_uses_the_version_indexes(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixtt") != NULL);
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 60, 0);
    ix_save(e);
    ix_index(e); /* version 2: version 1 with its segment's index listed */
    uint64_t indexed = vl_current_version(e, IX_COLL);
    ix_put_range(e, 0, 30, 1); /* the next versions overwrite half of it */
    ix_put_range(e, 60, 100, 0);
    ix_save(e);
    ix_index(e);
    uint64_t loads = stats(e).index_loads;
    vl_snapshot *s;
    vl_error err;
    assert_int_equal(vl_snapshot_open_version(e, IX_COLL, indexed, &s, &err), VL_OK);
    assert_int_equal(stats(e).index_loads, loads + 1);
    assert_int_equal(vl_snapshot_count(s), 60);
    for (int i = 0; i < 30; i += 3) {
        float q[IX_DIM];
        ix_vector(i, 0, q); /* version 1's vector of row i: found there, itself */
        vl_search *x;
        vl_hit a[10], b[10];
        uint32_t na, nb;
        vl_search_opts exact = {.exact = 1};
        assert_int_equal(vl_search_new_opts(s, q, IX_DIM, 10, 1, NULL, &x, &err), VL_OK);
        vl_search_run_part(x, 0);
        vl_search_finish(x, a, &na);
        vl_search_free(x);
        assert_int_equal(vl_search_new_opts(s, q, IX_DIM, 10, 1, &exact, &x, &err), VL_OK);
        vl_search_run_part(x, 0);
        vl_search_finish(x, b, &nb);
        vl_search_free(x);
        assert_int_equal(na, nb);
        assert_int_equal(ix_key_num(&a[0]), i);
        assert_true(a[0].score == 0.0);
        for (uint32_t h = 0; h < na; h++) {
            assert_int_equal(ix_key_num(&a[h]), ix_key_num(&b[h]));
            assert_true(ix_key_num(&a[h]) < 60);
        }
    }
    vl_snapshot_close(s);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

/* Write the collection's descriptor as it was before indexes (no index line). */
static void write_old_descriptor(const char *dir)
{
    vl_descriptor d = {.name = IX_COLL, .metric = VL_METRIC_L2};
    char text[256], path[512];
    size_t n = vl_descriptor_format(&d, text, sizeof text);
    snprintf(path, sizeof path, "%s/collections/%s.desc", dir, IX_COLL);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, n, f), n);
    fclose(f);
}

/* A collection from before indexes (descriptor without an index line,
 * manifests without index members) takes the engine's index parameters,
 * and an index job indexes its segments in a new version; a flat
 * collection stays flat whatever the engine's default. */
static void test_old_collection_is_upgraded(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixold") != NULL);
    vl_options flat = ix_options(VL_INDEX_FLAT, VL_QUANT_NONE);
    vl_engine *e = ix_open(t.dir, &flat);
    ix_put_range(e, 0, 100, 0);
    ix_save(e);
    ix_index(e);
    assert_int_equal(stats(e).index_builds, 0);
    vl_close(e);
    char path[512];
    assert_false(index_file(t.dir, path, sizeof path));
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    e = ix_open(t.dir, &o); /* created flat: stays flat */
    ix_index(e);
    assert_int_equal(stats(e).index_builds, 0);
    assert_int_equal(describe(e).index.kind, VL_INDEX_FLAT);
    vl_close(e);
    write_old_descriptor(t.dir);
    e = ix_open(t.dir, &o);
    assert_int_equal(describe(e).index.kind, VL_INDEX_HNSW);
    assert_int_equal(describe(e).indexed_rows, 0);
    uint64_t version = vl_current_version(e, IX_COLL);
    ix_index(e);
    assert_int_equal(stats(e).index_builds, 1);
    assert_int_equal(stats(e).index_rebuilds, 0);
    assert_int_equal(vl_current_version(e, IX_COLL), version + 1);
    assert_int_equal(describe(e).indexed_rows, 100);
    assert_matches_exact(e);
    vl_close(e);
    e = ix_open(t.dir, &flat); /* the upgrade was written down */
    assert_int_equal(describe(e).index.kind, VL_INDEX_HNSW);
    assert_int_equal(stats(e).index_loads, 1);
    vl_close(e);
    vl_test_rmtree(t.dir);
}

enum { KILL_ROWS = 3000 };

/* The child: durable puts, then a SAVE (flush + index build) that the
 * parent kills at some point. */
static void child_builds(const char *dir, int ready_fd)
{
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    o.fsync = VL_FSYNC_ALWAYS;
    vl_engine *e = NULL;
    vl_error err;
    if (vl_open(dir, &o, &e, &err) != VL_OK)
        _exit(2);
    for (int i = 0; i < KILL_ROWS; i++) {
        char key[16];
        float v[IX_DIM];
        ix_vector(i, 0, v);
        int n = ix_key(i, key);
        if (vl_put(e, IX_COLL, key, (size_t)n, v, IX_DIM, &err) != VL_OK)
            _exit(3);
    }
    if (write(ready_fd, "r", 1) != 1)
        _exit(4);
    vl_save(e, IX_COLL, &err);
    ix_index(e);
    for (;;)
        pause();
}

static void test_kill_during_index_build(void **state)
{
    (void)state;
    for (int round = 0; round < 3; round++) {
        vl_test_dir t;
        assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixkill") != NULL);
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_builds(t.dir, fds[1]);
        }
        close(fds[1]);
        char c;
        assert_int_equal(read(fds[0], &c, 1), 1);
        close(fds[0]);
        usleep((useconds_t)(round * 20000)); /* before, during or after the build */
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
        vl_engine *e = ix_open(t.dir, &o);
        assert_int_equal(describe(e).count, KILL_ROWS);
        vl_engine_stats st = stats(e);
        assert_int_equal(st.index_loads, describe(e).indexed_rows ? 1 : 0);
        assert_matches_exact(e);
        ix_save(e); /* a flush that was lost is redone */
        ix_index(e);
        assert_int_equal(describe(e).indexed_rows, KILL_ROWS);
        assert_int_equal(describe(e).unindexed_rows, 0);
        assert_matches_exact(e);
        vl_close(e);
        vl_test_rmtree(t.dir);
    }
}

/* ---- the HNSW file's load path ------------------------------------------ */

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Version 2 body -> the version 1 body of the same graph: the lists end
 * where version 1 puts its CRC (docs/storage-format.md). */
static uint8_t *as_version_1(const uint8_t *b2, size_t len2, size_t *len1)
{
    uint32_t count = rd32(b2 + 48);
    size_t p = 88 + count;
    for (uint32_t r = 0; r < count; r++)
        for (uint32_t lc = 0; lc <= b2[88 + r]; lc++)
            p += 4 * (1 + (size_t)rd32(b2 + p));
    assert_true(p + 4 <= len2);
    uint8_t *b1 = malloc(p + 4);
    memcpy(b1, b2, p);
    wr32(b1 + 8, 1);
    for (int i = 0; i < 8; i++)
        b1[64 + i] = (uint8_t)((uint64_t)(p + 4) >> (8 * i));
    wr32(b1 + p, vl_crc32c(0, b1, p));
    *len1 = p + 4;
    return b1;
}

typedef struct {
    const float *v;
    uint32_t dim;
} rows_ctx;

static const float *row_of(void *ctx, uint32_t r)
{
    const rows_ctx *c = ctx;
    return c->v + (size_t)r * c->dim;
}

static void assert_same_search(const vl_hnsw *a, const vl_hnsw *b, const float *v, uint32_t dim)
{
    for (uint32_t q = 0; q < 20; q++) {
        vl_hnsw_hit ha[10], hb[10];
        uint32_t na, nb;
        vl_error err;
        assert_int_equal(vl_hnsw_search(a, v + (size_t)q * dim, 10, 32, NULL, NULL, ha, &na, &err),
                         VL_OK);
        assert_int_equal(vl_hnsw_search(b, v + (size_t)q * dim, 10, 32, NULL, NULL, hb, &nb, &err),
                         VL_OK);
        assert_int_equal(na, nb);
        for (uint32_t i = 0; i < na; i++)
            assert_int_equal(ha[i].row, hb[i].row);
    }
}

/* An index file of version 1 (no codes: they are encoded at load) loads
 * to the index version 2 gives, which saves back to the version 2 bytes;
 * over a source neither holds a float32 copy, without codes it does. */
static void test_hnsw_file_versions(void **state)
{
    (void)state;
    const uint32_t n = 600, dim = 24;
    float *v = malloc((size_t)n * dim * sizeof *v);
    for (uint32_t i = 0; i < n * dim; i++)
        v[i] = (float)((i * 2654435761u) % 1000) / 250.0f - 2.0f;
    vl_metric metrics[] = {VL_METRIC_L2, VL_METRIC_COSINE, VL_METRIC_IP};
    for (int mi = 0; mi < 3; mi++)
        for (int sq8 = 0; sq8 < 2; sq8++) {
            vl_error err;
            vl_hnsw *h;
            assert_int_equal(vl_hnsw_create(dim, metrics[mi], 8, 40, 5, &h, &err), VL_OK);
            for (uint32_t r = 0; r < n; r++)
                assert_int_equal(vl_hnsw_add(h, r, v + (size_t)r * dim, &err), VL_OK);
            if (sq8)
                assert_int_equal(vl_hnsw_set_quant(h, VL_HNSW_QUANT_SQ8, &err), VL_OK);
            uint8_t *b2, *again;
            size_t len2, len1, alen;
            assert_int_equal(vl_hnsw_save(h, &b2, &len2, &err), VL_OK);
            assert_int_equal(rd32(b2 + 8), 2);
            uint8_t *b1 = as_version_1(b2, len2, &len1);
            assert_true(sq8 ? len1 < len2 : len1 == len2);
            rows_ctx ctx = {v, dim};
            vl_hnsw_vectors src = {row_of, &ctx};
            vl_hnsw *from1, *from2, *copy1;
            assert_int_equal(vl_hnsw_load_over(b1, len1, v, &src, n, dim, &from1, &err), VL_OK);
            assert_int_equal(vl_hnsw_load_over(b2, len2, v, &src, n, dim, &from2, &err), VL_OK);
            assert_int_equal(vl_hnsw_load(b1, len1, v, n, dim, &copy1, &err), VL_OK);
            assert_int_equal(vl_hnsw_vector_bytes(from1), sq8 ? 0 : (size_t)n * dim * 4);
            assert_int_equal(vl_hnsw_vector_bytes(from2), sq8 ? 0 : (size_t)n * dim * 4);
            assert_int_equal(vl_hnsw_vector_bytes(copy1), (size_t)n * dim * 4);
            vl_hnsw *all[] = {from1, from2, copy1};
            for (int k = 0; k < 3; k++) {
                assert_int_equal(vl_hnsw_save(all[k], &again, &alen, &err), VL_OK);
                assert_int_equal(alen, len2);
                assert_memory_equal(again, b2, len2);
                free(again);
                assert_same_search(h, all[k], v, dim);
                vl_hnsw_free(all[k]);
            }
            /* Other vectors are refused on either version and either way. */
            v[7] += 1.0f;
            assert_int_equal(vl_hnsw_load_over(b1, len1, v, &src, n, dim, &from1, &err),
                             VL_ERR_CORRUPT);
            assert_int_equal(vl_hnsw_load_over(b2, len2, v, &src, n, dim, &from2, &err),
                             VL_ERR_CORRUPT);
            assert_non_null(strstr(err.msg, "other vectors"));
            v[7] -= 1.0f;
            free(b1);
            free(b2);
            vl_hnsw_free(h);
        }
    free(v);
}

static uint8_t *read_all(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*len + 1);
    assert_int_equal(fread(b, 1, *len, f), *len);
    b[*len] = 0;
    fclose(f);
    return b;
}

static void write_all(const char *path, const void *b, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, len, f), len);
    fclose(f);
}

/* Rewrite the collection's one HNSW file as version 1 and its newest
 * manifest (the only one listing it) with the new size and CRC-32C, as a
 * lake written before version 2 would hold them (docs/lake.md). */
static void downgrade_index_file(const char *dir, uint64_t version)
{
    char path[512], mpath[512];
    assert_true(index_file(dir, path, sizeof path));
    size_t len2, len1, mlen;
    uint8_t *b2 = read_all(path, &len2);
    uint8_t *b1 = as_version_1(b2, len2, &len1);
    write_all(path, b1, len1);
    snprintf(mpath, sizeof mpath, "%s/tables/%s/manifests/%020llu.json", dir, IX_COLL,
             (unsigned long long)version);
    char *m = (char *)read_all(mpath, &mlen);
    char was[128], now[128];
    snprintf(was, sizeof was, "\"bytes\":%zu,\"crc32c\":\"%08x\"", len2, vl_crc32c(0, b2, len2));
    snprintf(now, sizeof now, "\"bytes\":%zu,\"crc32c\":\"%08x\"", len1, vl_crc32c(0, b1, len1));
    char *at = strstr(m, was);
    assert_non_null(at);
    size_t head = (size_t)(at - m);
    char *out = malloc(mlen + 64);
    int n = snprintf(out, mlen + 64, "%.*s%s%s", (int)head, m, now, at + strlen(was));
    char *crc = strrchr(out, ':'); /* the last member is the manifest's own CRC-32C */
    assert_non_null(crc);
    crc += 2;
    memcpy(crc, "00000000", 8);
    char hex[9];
    snprintf(hex, sizeof hex, "%08x", vl_crc32c(0, out, (size_t)n));
    memcpy(crc, hex, 8);
    write_all(mpath, out, (size_t)n);
    free(out);
    free(m);
    free(b1);
    free(b2);
}

/* A lake whose HNSW file is of version 1 loads it (no rebuild), and the
 * background thread writes it anew as version 2 (not counted as a build),
 * which the next start loads as it is. */
static void test_old_index_file_is_written_anew(void **state)
{
    (void)state;
    vl_test_dir t;
    assert_true(vl_test_tmpdir(t.dir, sizeof t.dir, "ixv1") != NULL);
    vl_options o = ix_options(VL_INDEX_HNSW, VL_QUANT_SQ8);
    vl_engine *e = ix_open(t.dir, &o);
    ix_put_range(e, 0, 300, 0);
    ix_save(e);
    ix_index(e);
    uint64_t version = vl_current_version(e, IX_COLL);
    vl_close(e);
    downgrade_index_file(t.dir, version);
    char path[512];
    size_t len;
    assert_true(index_file(t.dir, path, sizeof path));
    uint8_t *b = read_all(path, &len);
    assert_int_equal(rd32(b + 8), 1);
    free(b);
    e = ix_open(t.dir, &o);
    assert_int_equal(stats(e).index_loads, 1);
    assert_int_equal(describe(e).indexed_rows, 300);
    assert_matches_exact(e);
    ix_index(e);
    assert_int_equal(stats(e).index_builds, 0);
    assert_int_equal(stats(e).index_rebuilds, 0);
    assert_int_equal(vl_current_version(e, IX_COLL), version + 1);
    assert_matches_exact(e);
    vl_close(e);
    e = ix_open(t.dir, &o);
    assert_int_equal(stats(e).index_loads, 1);
    ix_index(e);
    assert_int_equal(stats(e).index_builds, 0);
    assert_int_equal(vl_current_version(e, IX_COLL), version + 1); /* nothing more to write */
    assert_matches_exact(e);
    vl_close(e);
    /* The file the new version lists is version 2 (GC may keep the old one
     * for time travel to the version before). */
    char sub[256], file[600];
    snprintf(sub, sizeof sub, "%s/tables/%s/indexes", t.dir, IX_COLL);
    DIR *d = opendir(sub);
    assert_non_null(d);
    int v2 = 0;
    struct dirent *de;
    while ((de = readdir(d)))
        if (de->d_name[0] != '.') {
            snprintf(file, sizeof file, "%s/%s", sub, de->d_name);
            b = read_all(file, &len);
            v2 += rd32(b + 8) == 2;
            free(b);
        }
    closedir(d);
    assert_int_equal(v2, 1);
    vl_test_rmtree(t.dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_restart_loads_without_rebuilding),
        cmocka_unit_test(test_damaged_index_is_rebuilt),
        cmocka_unit_test(test_time_travel_uses_the_version_indexes),
        cmocka_unit_test(test_old_collection_is_upgraded),
        cmocka_unit_test(test_kill_during_index_build),
        cmocka_unit_test(test_hnsw_file_versions),
        cmocka_unit_test(test_old_index_file_is_written_anew),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
