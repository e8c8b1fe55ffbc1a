/*
 * manifest.c - JSON manifests (see manifest.h), via cJSON.
 *
 * Decisions:
 *  - Integers are JSON numbers; every one we write is below 2^53, so a
 *    double holds it exactly, and the decoder rejects anything that is not
 *    a non-negative integer in that range.
 *  - The checksum trick (value "00000000" while computing) keeps manifests
 *    readable by any JSON tool; the decoder locates the last "crc32c" key,
 *    so the member must stay last, which our encoder guarantees.
 */
#include "storage/manifest.h"

#include <cjson/cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/crc32c.h"
#include "util/alloc.h"
#include "util/error.h"

#define FORMAT_NAME "vexlake-manifest"
#define FORMAT_VERSION 1
#define MAX_EXACT 9007199254740992.0 /* 2^53 */
#define CRC_PLACEHOLDER "\"crc32c\":\"00000000\""

static const char *const metric_names[] = {"l2", "cosine", "ip"};
/* Index kinds with a file (spelled here: storage depends on nothing above). */
static const char *const index_names[] = {"flat", "hnsw", "ivf"};

void vl_manifest_object(char *out, size_t cap, const char *coll, uint64_t version)
{
    snprintf(out, cap, "tables/%s/manifests/%020" PRIu64 ".json", coll, version);
}

static char *hex32(uint32_t v, char buf[9])
{
    snprintf(buf, 9, "%08x", v);
    return buf;
}

static void add_segment(cJSON *arr, const vl_manifest_segment *g)
{
    char hex[9];
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", g->name);
    cJSON_AddNumberToObject(o, "rows", (double)g->rows);
    cJSON_AddNumberToObject(o, "bytes", (double)g->bytes);
    cJSON_AddStringToObject(o, "crc32c", hex32(g->crc32c, hex));
    cJSON_AddNumberToObject(o, "min_seq", (double)g->min_seq);
    cJSON_AddNumberToObject(o, "max_seq", (double)g->max_seq);
    if (g->del_name[0]) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", g->del_name);
        cJSON_AddNumberToObject(d, "count", (double)g->del_count);
        cJSON_AddNumberToObject(d, "bytes", (double)g->del_bytes);
        cJSON_AddStringToObject(d, "crc32c", hex32(g->del_crc32c, hex));
        cJSON_AddItemToObject(o, "deletes", d);
    }
    if (g->idx.name[0]) {
        cJSON *x = cJSON_CreateObject();
        cJSON_AddStringToObject(x, "name", g->idx.name);
        cJSON_AddStringToObject(x, "kind", index_names[g->idx.kind]);
        cJSON_AddNumberToObject(x, "bytes", (double)g->idx.bytes);
        cJSON_AddStringToObject(x, "crc32c", hex32(g->idx.crc32c, hex));
        cJSON_AddItemToObject(o, "index", x);
    }
    cJSON_AddItemToArray(arr, o);
}

vl_status vl_manifest_encode(const vl_manifest *m, char **out, size_t *len, vl_error *err)
{
    cJSON *root = cJSON_CreateObject();
    cJSON_AddStringToObject(root, "format", FORMAT_NAME);
    cJSON_AddNumberToObject(root, "format_version", FORMAT_VERSION);
    cJSON_AddStringToObject(root, "collection", m->collection);
    cJSON_AddNumberToObject(root, "version", (double)m->version);
    cJSON_AddNumberToObject(root, "parent", (double)m->parent);
    cJSON_AddNumberToObject(root, "created_ms", (double)m->created_ms);
    cJSON_AddNumberToObject(root, "dim", m->dim);
    cJSON_AddStringToObject(root, "metric", metric_names[m->metric]);
    cJSON_AddNumberToObject(root, "wal_lsn", (double)m->wal_lsn);
    cJSON_AddNumberToObject(root, "live_rows", (double)m->live_rows);
    cJSON *segs = cJSON_AddArrayToObject(root, "segments");
    for (size_t i = 0; i < m->nsegs; i++)
        add_segment(segs, &m->segs[i]);
    cJSON_AddStringToObject(root, "crc32c", "00000000");
    char *text = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!text)
        return vl_fail(err, VL_ERR_NOMEM, "manifest: cannot serialize");
    size_t n = strlen(text), phlen = strlen(CRC_PLACEHOLDER);
    /* The document's own member ends the text; a segment whose CRC is 0
     * writes the same bytes earlier. */
    char *ph = n >= phlen + 1 ? text + n - phlen - 1 : NULL;
    if (!ph || memcmp(ph, CRC_PLACEHOLDER, phlen) != 0) {
        free(text);
        return vl_fail(err, VL_ERR_ARG, "manifest: checksum member is not last");
    }
    char hex[9];
    uint32_t crc = vl_crc32c(0, text, n);
    memcpy(ph + strlen("\"crc32c\":\""), hex32(crc, hex), 8);
    *out = vl_strndup(text, n);
    *len = n;
    free(text);
    return VL_OK;
}

/* ---- decoding ---- */

static vl_status verify_crc(const char *buf, size_t len, const char *what, vl_error *err)
{
    static const char key[] = "\"crc32c\":\"";
    const char *last = NULL;
    for (const char *p = buf; (p = memmem(p, len - (size_t)(p - buf), key, sizeof key - 1)); p++)
        last = p;
    if (!last || (size_t)(last - buf) + sizeof key - 1 + 8 > len)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: checksum member missing", what);
    const char *hex = last + sizeof key - 1;
    char digits[9];
    memcpy(digits, hex, 8);
    digits[8] = '\0';
    char *end;
    unsigned long want = strtoul(digits, &end, 16);
    if (*end)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: checksum is not hex", what);
    char *copy = vl_malloc(len);
    memcpy(copy, buf, len);
    memset(copy + (hex - buf), '0', 8);
    uint32_t got = vl_crc32c(0, copy, len);
    free(copy);
    if (got != (uint32_t)want)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: checksum mismatch (stored %08lx, computed %08x)",
                       what, want, got);
    return VL_OK;
}

typedef struct {
    const char *what;
    vl_error *err;
    vl_status st;
} ctx;

static uint64_t get_u64(ctx *c, const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (c->st != VL_OK)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble > MAX_EXACT ||
        v->valuedouble != (double)(uint64_t)v->valuedouble) {
        c->st = vl_fail(c->err, VL_ERR_CORRUPT, "%s: \"%s\" missing or not a non-negative integer",
                        c->what, key);
        return 0;
    }
    return (uint64_t)v->valuedouble;
}

static int64_t get_i64(ctx *c, const cJSON *o, const char *key)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (c->st != VL_OK)
        return 0;
    if (!cJSON_IsNumber(v) || v->valuedouble < -MAX_EXACT || v->valuedouble > MAX_EXACT ||
        v->valuedouble != (double)(int64_t)v->valuedouble) {
        c->st =
            vl_fail(c->err, VL_ERR_CORRUPT, "%s: \"%s\" missing or not an integer", c->what, key);
        return 0;
    }
    return (int64_t)v->valuedouble;
}

static void get_str(ctx *c, const cJSON *o, const char *key, char *out, size_t cap)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (c->st != VL_OK)
        return;
    if (!cJSON_IsString(v) || !v->valuestring[0] || strlen(v->valuestring) >= cap) {
        c->st =
            vl_fail(c->err, VL_ERR_CORRUPT, "%s: \"%s\" missing, empty or too long", c->what, key);
        return;
    }
    strcpy(out, v->valuestring);
}

static uint32_t get_hex32(ctx *c, const cJSON *o, const char *key)
{
    char s[16] = "";
    get_str(c, o, key, s, sizeof s);
    char *end;
    unsigned long v = strtoul(s, &end, 16);
    if (c->st == VL_OK && (strlen(s) != 8 || *end))
        c->st = vl_fail(c->err, VL_ERR_CORRUPT, "%s: \"%s\" is not 8 hex digits", c->what, key);
    return (uint32_t)v;
}

/* Optional "index" member (manifests written before indexes have none). */
static void decode_index(ctx *c, const cJSON *x, vl_manifest_segment *g)
{
    char kind[16] = "";
    get_str(c, x, "name", g->idx.name, sizeof g->idx.name);
    get_str(c, x, "kind", kind, sizeof kind);
    g->idx.bytes = get_u64(c, x, "bytes");
    g->idx.crc32c = get_hex32(c, x, "crc32c");
    if (c->st != VL_OK)
        return;
    if (strcmp(kind, "hnsw") == 0)
        g->idx.kind = VL_INDEX_HNSW;
    else if (strcmp(kind, "ivf") == 0)
        g->idx.kind = VL_INDEX_IVF;
    else
        c->st = vl_fail(c->err, VL_ERR_CORRUPT, "%s: segment %s: unknown index kind \"%s\"",
                        c->what, g->name, kind);
}

static void decode_segment(ctx *c, const cJSON *o, vl_manifest_segment *g)
{
    memset(g, 0, sizeof *g);
    get_str(c, o, "name", g->name, sizeof g->name);
    g->rows = get_u64(c, o, "rows");
    g->bytes = get_u64(c, o, "bytes");
    g->crc32c = get_hex32(c, o, "crc32c");
    g->min_seq = get_i64(c, o, "min_seq");
    g->max_seq = get_i64(c, o, "max_seq");
    const cJSON *d = cJSON_GetObjectItemCaseSensitive(o, "deletes");
    if (d && c->st == VL_OK) {
        get_str(c, d, "name", g->del_name, sizeof g->del_name);
        g->del_count = get_u64(c, d, "count");
        g->del_bytes = get_u64(c, d, "bytes");
        g->del_crc32c = get_hex32(c, d, "crc32c");
        if (c->st == VL_OK && g->del_count > g->rows)
            c->st = vl_fail(c->err, VL_ERR_CORRUPT, "%s: segment %s deletes more rows than it has",
                            c->what, g->name);
    }
    const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, "index");
    if (x && c->st == VL_OK)
        decode_index(c, x, g);
}

static void decode_header(ctx *c, const cJSON *root, vl_manifest *m)
{
    char format[32] = "", metric[16] = "";
    get_str(c, root, "format", format, sizeof format);
    if (c->st == VL_OK && strcmp(format, FORMAT_NAME) != 0)
        c->st = vl_fail(c->err, VL_ERR_CORRUPT, "%s: not a VexLake manifest", c->what);
    if (get_u64(c, root, "format_version") != FORMAT_VERSION && c->st == VL_OK)
        c->st =
            vl_fail(c->err, VL_ERR_CORRUPT,
                    "%s: manifest format version is newer than this server understands", c->what);
    get_str(c, root, "collection", m->collection, sizeof m->collection);
    m->version = get_u64(c, root, "version");
    m->parent = get_u64(c, root, "parent");
    m->created_ms = get_i64(c, root, "created_ms");
    uint64_t dim = get_u64(c, root, "dim");
    if (c->st == VL_OK && dim > VL_MAX_DIM)
        c->st =
            vl_fail(c->err, VL_ERR_CORRUPT, "%s: dimension %" PRIu64 " out of range", c->what, dim);
    m->dim = (uint32_t)dim;
    get_str(c, root, "metric", metric, sizeof metric);
    int found = 0;
    for (int i = 0; i < 3; i++)
        if (strcmp(metric, metric_names[i]) == 0)
            m->metric = (vl_metric)i, found = 1;
    if (c->st == VL_OK && !found)
        c->st = vl_fail(c->err, VL_ERR_CORRUPT, "%s: unknown metric \"%s\"", c->what, metric);
    m->wal_lsn = get_u64(c, root, "wal_lsn");
    m->live_rows = get_u64(c, root, "live_rows");
}

vl_status vl_manifest_decode(const char *buf, size_t len, const char *what, vl_manifest *m,
                             vl_error *err)
{
    memset(m, 0, sizeof *m);
    vl_status st = verify_crc(buf, len, what, err);
    if (st != VL_OK)
        return st;
    cJSON *root = cJSON_ParseWithLength(buf, len);
    if (!root)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: not valid JSON", what);
    ctx c = {what, err, VL_OK};
    decode_header(&c, root, m);
    const cJSON *segs = cJSON_GetObjectItemCaseSensitive(root, "segments");
    if (c.st == VL_OK && !cJSON_IsArray(segs))
        c.st = vl_fail(err, VL_ERR_CORRUPT, "%s: \"segments\" missing", what);
    if (c.st == VL_OK) {
        m->nsegs = (size_t)cJSON_GetArraySize(segs);
        m->segs = vl_calloc(m->nsegs ? m->nsegs : 1, sizeof *m->segs);
        size_t i = 0;
        const cJSON *o;
        cJSON_ArrayForEach(o, segs)
        {
            decode_segment(&c, o, &m->segs[i++]);
        }
    }
    cJSON_Delete(root);
    if (c.st != VL_OK)
        vl_manifest_free(m);
    return c.st;
}

void vl_manifest_free(vl_manifest *m)
{
    free(m->segs);
    m->segs = NULL;
    m->nsegs = 0;
}

void vl_manifest_copy(vl_manifest *dst, const vl_manifest *src)
{
    *dst = *src;
    dst->segs = vl_malloc((src->nsegs ? src->nsegs : 1) * sizeof *src->segs);
    if (src->nsegs)
        memcpy(dst->segs, src->segs, src->nsegs * sizeof *src->segs);
}

/* ---- objects ---- */

vl_status vl_manifest_commit(vl_objstore *s, const vl_manifest *m, vl_error *err)
{
    char *text;
    size_t len;
    char name[VL_OBJECT_NAME_MAX];
    vl_status st = vl_manifest_encode(m, &text, &len, err);
    if (st != VL_OK)
        return st;
    vl_manifest_object(name, sizeof name, m->collection, m->version);
    st = vl_obj_put_if_absent(s, name, text, len, err);
    free(text);
    return st;
}

static int parse_version(const char *obj, size_t prefix_len, uint64_t *v)
{
    const char *p = obj + prefix_len;
    if (strlen(p) != 25 || strcmp(p + 20, ".json") != 0)
        return 0;
    uint64_t x = 0;
    for (int i = 0; i < 20; i++) {
        if (p[i] < '0' || p[i] > '9')
            return 0;
        x = x * 10 + (uint64_t)(p[i] - '0');
    }
    *v = x;
    return x > 0;
}

vl_status vl_manifest_versions(vl_objstore *s, const char *coll, uint64_t **out, size_t *n,
                               vl_error *err)
{
    char prefix[VL_OBJECT_NAME_MAX];
    snprintf(prefix, sizeof prefix, "tables/%s/manifests/", coll);
    vl_objinfo *objs;
    size_t nobj;
    *out = NULL;
    *n = 0;
    vl_status st = vl_obj_list(s, prefix, &objs, &nobj, err);
    if (st != VL_OK)
        return st;
    *out = vl_malloc((nobj ? nobj : 1) * sizeof **out);
    for (size_t i = 0; i < nobj; i++) /* names sort like numbers: fixed width */
        if (parse_version(objs[i].name, strlen(prefix), &(*out)[*n]))
            (*n)++;
    vl_objinfo_free(objs, nobj);
    return VL_OK;
}

vl_status vl_manifest_load(vl_objstore *s, const char *coll, uint64_t version, vl_manifest *m,
                           vl_error *err)
{
    char name[VL_OBJECT_NAME_MAX];
    void *data;
    size_t len;
    vl_manifest_object(name, sizeof name, coll, version);
    vl_status st = vl_obj_get(s, name, &data, &len, err);
    if (st != VL_OK)
        return st;
    st = vl_manifest_decode(data, len, name, m, err);
    free(data);
    if (st == VL_OK && (m->version != version || strcmp(m->collection, coll) != 0))
        st = vl_fail(err, VL_ERR_CORRUPT, "%s: holds version %" PRIu64 " of '%s'", name, m->version,
                     m->collection);
    if (st != VL_OK)
        vl_manifest_free(m);
    return st;
}
