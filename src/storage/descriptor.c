/*
 * descriptor.c - collection descriptors: "collections/<name>.desc".
 *
 * Decisions:
 *  1. The format is four or five '\n'-terminated text lines in a fixed order (see
 *     descriptor.h and docs/storage-format.md); parsing accepts exactly that
 *     and nothing else: no blank lines, no '\r', no extra spaces, no
 *     trailing bytes.  Any deviation is VL_ERR_CORRUPT with the reason.
 *  2. The first line is checked before the checksum so a descriptor written
 *     by a newer format version is reported as such, not as damage.
 *  3. The metric names are spelled out here rather than borrowed from the
 *     core, so the storage layer depends on nothing above it.
 *  4. load_all also checks that the name inside a descriptor matches the
 *     object's name, so a misplaced file cannot silently rename a
 *     collection.
 */
#include "storage/descriptor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "storage/crc32c.h"
#include "util/error.h"

#define DESC_MAGIC "vexlake-collection "
#define DESC_VERSION "1"
#define DESC_PREFIX "collections/"
#define DESC_SUFFIX ".desc"
#define CRC_LINE_LEN 16 /* "crc32c " + 8 hex digits + '\n' */

static const char *const metric_names[] = {"l2", "cosine", "ip"};
#define N_METRICS (sizeof metric_names / sizeof metric_names[0])
static const char *const kind_names[] = {"flat", "hnsw", "ivf"};
static const char *const quant_names[] = {"none", "sq8", "rabitq"};

int vl_collection_name_valid(const char *name)
{
    if (!name)
        return 0;
    size_t n = strlen(name);
    if (n < 1 || n > VL_MAX_COLLECTION_NAME || strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok)
            return 0;
    }
    return 1;
}

/* "index <kind> <quant> <m> <ef_construction> <lists>\n"; 0 when a name is unknown. */
static size_t format_index(const vl_index_params *p, char *buf, size_t cap)
{
    if ((unsigned)p->kind >= 3 || (unsigned)p->quant >= 3)
        return 0;
    int n = snprintf(buf, cap, "index %s %s %u %u %u\n", kind_names[p->kind], quant_names[p->quant],
                     p->hnsw_m, p->hnsw_ef_construction, p->ivf_lists);
    return n < 0 || (size_t)n >= cap ? 0 : (size_t)n;
}

static int name_index(const char *const *names, const char *s)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(names[i], s) == 0)
            return i;
    return -1;
}

size_t vl_descriptor_format(const vl_descriptor *d, char *buf, size_t cap)
{
    const char *metric = (unsigned)d->metric < N_METRICS ? metric_names[d->metric] : "?";
    char body[256];
    int n = snprintf(body, sizeof body, DESC_MAGIC DESC_VERSION "\nname %s\nmetric %s\n", d->name,
                     metric);
    if (n < 0 || (size_t)n >= sizeof body)
        return 0;
    if (d->has_index) {
        size_t k = format_index(&d->index, body + n, sizeof body - (size_t)n);
        if (k == 0)
            return 0;
        n += (int)k;
    }
    uint32_t crc = vl_crc32c(0, body, (size_t)n);
    int m = snprintf(buf, cap, "%scrc32c %08x\n", body, crc);
    return m < 0 ? 0 : (size_t)m;
}

/* ---- parsing ------------------------------------------------------------- */

typedef struct {
    const char *p, *end;
} reader;

/* Next line (without '\n') if it starts with key; NULL otherwise. */
static const char *line_after(reader *r, const char *key, size_t *vlen)
{
    const char *nl = memchr(r->p, '\n', (size_t)(r->end - r->p));
    size_t klen = strlen(key);
    if (!nl || (size_t)(nl - r->p) < klen || memcmp(r->p, key, klen) != 0)
        return NULL;
    const char *v = r->p + klen;
    *vlen = (size_t)(nl - v);
    r->p = nl + 1;
    return v;
}

static vl_status check_version(const char *text, size_t len, vl_error *err)
{
    reader r = {text, text + len};
    size_t n;
    const char *v = line_after(&r, DESC_MAGIC, &n);
    if (!v)
        return vl_fail(err, VL_ERR_CORRUPT, "not a collection descriptor (bad first line)");
    if (n != strlen(DESC_VERSION) || memcmp(v, DESC_VERSION, n) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "unsupported descriptor version \"%.*s\"",
                       (int)(n > 16 ? 16 : n), v);
    return VL_OK;
}

static int parse_hex32(const char *s, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = s[i];
        int dgt = (c >= '0' && c <= '9') ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
        if (dgt < 0)
            return 0;
        v = (v << 4) | (uint32_t)dgt;
    }
    *out = v;
    return 1;
}

/* Verify the final crc32c line; *body_len is the length it covers. */
static vl_status check_crc(const char *text, size_t len, size_t *body_len, vl_error *err)
{
    if (len <= CRC_LINE_LEN)
        return vl_fail(err, VL_ERR_CORRUPT, "missing crc32c line");
    const char *line = text + len - CRC_LINE_LEN;
    uint32_t stored;
    if (line[-1] != '\n' || memcmp(line, "crc32c ", 7) != 0 || line[CRC_LINE_LEN - 1] != '\n' ||
        !parse_hex32(line + 7, &stored))
        return vl_fail(err, VL_ERR_CORRUPT, "missing or malformed crc32c line");
    *body_len = len - CRC_LINE_LEN;
    uint32_t actual = vl_crc32c(0, text, *body_len);
    if (actual != stored)
        return vl_fail(err, VL_ERR_CORRUPT, "checksum mismatch (stored %08x, computed %08x)",
                       stored, actual);
    return VL_OK;
}

static vl_status parse_name(reader *r, vl_descriptor *d, vl_error *err)
{
    size_t n;
    const char *v = line_after(r, "name ", &n);
    if (!v)
        return vl_fail(err, VL_ERR_CORRUPT, "missing name line");
    if (n > VL_MAX_COLLECTION_NAME)
        return vl_fail(err, VL_ERR_CORRUPT, "collection name longer than %d bytes",
                       VL_MAX_COLLECTION_NAME);
    memcpy(d->name, v, n);
    d->name[n] = '\0';
    if (strlen(d->name) != n || !vl_collection_name_valid(d->name))
        return vl_fail(err, VL_ERR_CORRUPT, "invalid collection name \"%.*s\"", (int)n, v);
    return VL_OK;
}

static vl_status parse_metric(reader *r, vl_descriptor *d, vl_error *err)
{
    size_t n;
    const char *v = line_after(r, "metric ", &n);
    if (!v)
        return vl_fail(err, VL_ERR_CORRUPT, "missing metric line");
    for (size_t i = 0; i < N_METRICS; i++) {
        if (strlen(metric_names[i]) == n && memcmp(metric_names[i], v, n) == 0) {
            d->metric = (vl_metric)i;
            return VL_OK;
        }
    }
    return vl_fail(err, VL_ERR_CORRUPT, "unknown metric \"%.*s\"", (int)(n > 16 ? 16 : n), v);
}

/* The optional index line; strict: it must format back to itself. */
static vl_status parse_index(reader *r, vl_descriptor *d, vl_error *err)
{
    size_t n;
    const char *v = line_after(r, "index ", &n);
    if (!v)
        return VL_OK;
    char line[96], kind[16], quant[16];
    unsigned m, efc, lists;
    int used = -1;
    if (n >= sizeof line - 8)
        return vl_fail(err, VL_ERR_CORRUPT, "index line too long");
    snprintf(line, sizeof line, "%.*s", (int)n, v);
    int k, q;
    if (sscanf(line, "%15s %15s %u %u %u%n", kind, quant, &m, &efc, &lists, &used) != 5 ||
        (k = name_index(kind_names, kind)) < 0 || (q = name_index(quant_names, quant)) < 0)
        return vl_fail(err, VL_ERR_CORRUPT, "malformed index line \"%.40s\"", line);
    d->has_index = 1;
    d->index = (vl_index_params){(vl_index_kind)k, (vl_quant)q, m, efc, lists};
    char back[96];
    format_index(&d->index, back, sizeof back);
    if (strlen(back) != n + 7 || memcmp(back + 6, line, n) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "malformed index line \"%.40s\"", line);
    return VL_OK;
}

vl_status vl_descriptor_parse(const char *text, size_t len, vl_descriptor *d, vl_error *err)
{
    size_t body_len = 0;
    vl_status st = check_version(text, len, err);
    if (st == VL_OK)
        st = check_crc(text, len, &body_len, err);
    if (st != VL_OK)
        return st;
    reader r = {text, text + body_len};
    size_t n;
    line_after(&r, DESC_MAGIC, &n);
    vl_descriptor tmp;
    memset(&tmp, 0, sizeof tmp);
    if ((st = parse_name(&r, &tmp, err)) != VL_OK || (st = parse_metric(&r, &tmp, err)) != VL_OK ||
        (st = parse_index(&r, &tmp, err)) != VL_OK)
        return st;
    if (r.p != r.end)
        return vl_fail(err, VL_ERR_CORRUPT, "unexpected line after the %s",
                       tmp.has_index ? "index line" : "metric");
    *d = tmp;
    return VL_OK;
}

/* ---- object store -------------------------------------------------------- */

static void object_name(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, DESC_PREFIX "%s" DESC_SUFFIX, name);
}

vl_status vl_descriptor_write(vl_objstore *s, const vl_descriptor *d, vl_error *err)
{
    if (!vl_collection_name_valid(d->name))
        return vl_fail(err, VL_ERR_ARG, "invalid collection name \"%.*s\"", VL_MAX_COLLECTION_NAME,
                       d->name);
    if ((unsigned)d->metric >= N_METRICS)
        return vl_fail(err, VL_ERR_ARG, "descriptor %s: unknown metric %d", d->name,
                       (int)d->metric);
    char text[384], obj[128];
    size_t len = vl_descriptor_format(d, text, sizeof text);
    object_name(obj, sizeof obj, d->name);
    return vl_obj_put(s, obj, text, len, err);
}

vl_status vl_descriptor_remove(vl_objstore *s, const char *name, vl_error *err)
{
    if (!vl_collection_name_valid(name))
        return vl_fail(err, VL_ERR_ARG, "invalid collection name");
    char obj[128];
    object_name(obj, sizeof obj, name);
    vl_status st = vl_obj_del(s, obj, err);
    return st == VL_ERR_NOTFOUND ? VL_OK : st;
}

/* "collections/<x>.desc" with no further '/': the descriptor's name x. */
static int is_descriptor_object(const char *obj, char *name_out)
{
    size_t lp = strlen(DESC_PREFIX), ls = strlen(DESC_SUFFIX), n = strlen(obj);
    if (n <= lp + ls || strncmp(obj, DESC_PREFIX, lp) != 0 || strcmp(obj + n - ls, DESC_SUFFIX))
        return 0;
    size_t nl = n - lp - ls;
    if (nl > VL_MAX_COLLECTION_NAME || memchr(obj + lp, '/', nl))
        return 0;
    memcpy(name_out, obj + lp, nl);
    name_out[nl] = '\0';
    return 1;
}

static vl_status load_one(vl_objstore *s, const char *obj, const char *expect, vl_descriptor *d,
                          vl_error *err)
{
    void *data;
    size_t len;
    vl_status st = vl_obj_get(s, obj, &data, &len, err);
    if (st != VL_OK)
        return st;
    vl_error perr = {{0}};
    st = vl_descriptor_parse(data, len, d, &perr);
    free(data);
    if (st != VL_OK)
        return vl_fail(err, st, "%s: %s", obj, perr.msg);
    if (strcmp(d->name, expect) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "%s: names collection \"%s\"", obj, d->name);
    return VL_OK;
}

vl_status vl_descriptor_load_all(vl_objstore *s, vl_descriptor **out, size_t *n, vl_error *err)
{
    vl_objinfo *list;
    size_t count;
    vl_status st = vl_obj_list(s, DESC_PREFIX, &list, &count, err);
    if (st != VL_OK)
        return st;
    vl_descriptor *ds = malloc((count ? count : 1) * sizeof *ds);
    size_t k = 0;
    if (!ds)
        st = vl_fail(err, VL_ERR_NOMEM, "loading descriptors: out of memory");
    for (size_t i = 0; st == VL_OK && i < count; i++) {
        char name[VL_MAX_COLLECTION_NAME + 1];
        if (is_descriptor_object(list[i].name, name))
            if ((st = load_one(s, list[i].name, name, &ds[k], err)) == VL_OK)
                k++;
    }
    vl_objinfo_free(list, count);
    if (st != VL_OK) {
        free(ds);
        return st;
    }
    *out = ds;
    *n = k;
    return VL_OK;
}
