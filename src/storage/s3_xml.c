/*
 * s3_xml.c - element lookup and text decoding for S3's XML answers.
 *
 * Decisions (see s3_xml.h for the model):
 *  1. An element is "<tag>" or "<tag " (attributes ignored) up to the next
 *     "</tag>"; "<tag/>" is an empty element.  Same-name nesting does not
 *     occur in the documents we read and is not supported.
 *  2. Text decoding accepts &amp; &lt; &gt; &quot; &apos; and &#N; / &#xH;
 *     (a Unicode scalar value, written out as UTF-8); a NUL byte, raw or
 *     decoded, is refused so names stay C strings.
 *  3. A list page's keys must be non-empty; sizes are decimal digits that
 *     fit in 64 bits.  A page is all or nothing: on error nothing leaks and
 *     the page is left empty.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "storage/s3_xml.h"
#include "util/error.h"

/* Find the first element named tag in [p, end): its content in
 * [*cs, *ce).  0 found, 1 absent, -1 malformed. */
static int find_element(const char *p, const char *end, const char *tag, const char **cs,
                        const char **ce)
{
    size_t tl = strlen(tag);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt)
            return 1;
        const char *name = lt + 1;
        if ((size_t)(end - name) > tl && memcmp(name, tag, tl) == 0 &&
            (name[tl] == '>' || name[tl] == ' ' || name[tl] == '/')) {
            const char *gt = memchr(name + tl, '>', (size_t)(end - (name + tl)));
            if (!gt)
                return -1;
            if (gt[-1] == '/') { /* <tag/> or <tag a="b"/> */
                *cs = *ce = gt + 1;
                return 0;
            }
            const char *c = gt + 1;
            for (const char *q = c; q < end;) {
                const char *close = memchr(q, '<', (size_t)(end - q));
                if (!close)
                    return -1;
                if ((size_t)(end - close) >= tl + 3 && close[1] == '/' &&
                    memcmp(close + 2, tag, tl) == 0 && close[2 + tl] == '>') {
                    *cs = c;
                    *ce = close;
                    return 0;
                }
                q = close + 1;
            }
            return -1;
        }
        p = name;
    }
    return 1;
}

static size_t put_utf8(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Decode one &...; reference at p (p[0] == '&'), end exclusive.  Writes
 * the bytes to out (room for 4) and returns how many, setting *used to the
 * reference's length; 0 when malformed. */
static size_t decode_ref(const char *p, const char *end, char *out, size_t *used)
{
    static const struct {
        const char *name;
        char ch;
    } named[] = {{"amp;", '&'}, {"lt;", '<'}, {"gt;", '>'}, {"quot;", '"'}, {"apos;", '\''}};
    size_t avail = (size_t)(end - p) - 1;
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++) {
        size_t nl = strlen(named[i].name);
        if (avail >= nl && memcmp(p + 1, named[i].name, nl) == 0) {
            out[0] = named[i].ch;
            *used = nl + 1;
            return 1;
        }
    }
    if (avail < 3 || p[1] != '#')
        return 0;
    const char *q = p + 2;
    int hex = (*q == 'x');
    q += hex;
    uint32_t cp = 0;
    size_t digits = 0;
    for (; q < end && *q != ';'; q++, digits++) {
        int d;
        if (*q >= '0' && *q <= '9')
            d = *q - '0';
        else if (hex && *q >= 'a' && *q <= 'f')
            d = *q - 'a' + 10;
        else if (hex && *q >= 'A' && *q <= 'F')
            d = *q - 'A' + 10;
        else
            return 0;
        if (digits >= 8)
            return 0;
        cp = cp * (hex ? 16u : 10u) + (uint32_t)d;
    }
    if (q >= end || digits == 0 || cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    *used = (size_t)(q + 1 - p);
    return put_utf8(out, cp);
}

/* Decoded copy of [s, e) (malloc'd) or NULL when malformed; *oom set
 * when it failed for memory. */
static char *decode_text(const char *s, const char *e, int *oom)
{
    char *out = malloc((size_t)(e - s) + 1);
    *oom = !out;
    if (!out)
        return NULL;
    size_t n = 0;
    while (s < e) {
        if (*s == '\0' || *s == '<') {
            free(out);
            return NULL;
        }
        if (*s != '&') {
            out[n++] = *s++;
            continue;
        }
        size_t used = 0, w = decode_ref(s, e, out + n, &used);
        if (w == 0) { /* every reference is at least 4 bytes, so room is there */
            free(out);
            return NULL;
        }
        n += w;
        s += used;
    }
    out[n] = '\0';
    return out;
}

vl_status vl_s3_xml_text(const char *xml, size_t len, const char *tag, char **text, vl_error *err)
{
    const char *cs, *ce;
    int rc = find_element(xml, xml + len, tag, &cs, &ce);
    if (rc == 1)
        return vl_fail(err, VL_ERR_NOTFOUND, "S3 answer has no <%s>", tag);
    int oom = 0;
    if (rc < 0 || !(*text = decode_text(cs, ce, &oom)))
        return oom ? vl_fail(err, VL_ERR_NOMEM, "S3 answer: out of memory")
                   : vl_fail(err, VL_ERR_CORRUPT, "S3 answer: malformed <%s>", tag);
    return VL_OK;
}

static int parse_u64(const char *s, uint64_t *out)
{
    uint64_t v = 0;
    if (!*s)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        unsigned d = (unsigned)(*s - '0');
        if (v > (UINT64_MAX - d) / 10)
            return -1;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

/* Parse one <Contents> body into it. */
static vl_status parse_contents(const char *cs, const char *ce, vl_objinfo *it, vl_error *err)
{
    char *size = NULL;
    it->name = NULL;
    vl_status st = vl_s3_xml_text(cs, (size_t)(ce - cs), "Key", &it->name, err);
    if (st == VL_OK && !it->name[0])
        st = vl_fail(err, VL_ERR_CORRUPT, "S3 list answer: empty <Key>");
    if (st == VL_OK)
        st = vl_s3_xml_text(cs, (size_t)(ce - cs), "Size", &size, err);
    if (st == VL_OK && parse_u64(size, &it->size) < 0)
        st = vl_fail(err, VL_ERR_CORRUPT, "S3 list answer: bad <Size>");
    free(size);
    if (st != VL_OK) {
        free(it->name);
        it->name = NULL;
        if (st == VL_ERR_NOTFOUND)
            st = vl_fail(err, VL_ERR_CORRUPT, "S3 list answer: <Contents> without Key or Size");
    }
    return st;
}

vl_status vl_s3_list_parse(const char *xml, size_t len, vl_s3_list_page *page, vl_error *err)
{
    memset(page, 0, sizeof *page);
    const char *p = xml, *end = xml + len, *body, *body_end;
    if (find_element(p, end, "ListBucketResult", &body, &body_end) != 0)
        return vl_fail(err, VL_ERR_CORRUPT, "S3 list answer: no <ListBucketResult>");
    vl_status st = VL_OK;
    size_t cap = 0;
    const char *cs, *ce;
    for (p = body; st == VL_OK; p = ce) {
        int rc = find_element(p, body_end, "Contents", &cs, &ce);
        if (rc == 1)
            break;
        if (rc < 0) {
            st = vl_fail(err, VL_ERR_CORRUPT, "S3 list answer: unterminated <Contents>");
            break;
        }
        if (page->n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            vl_objinfo *items = realloc(page->items, nc * sizeof *items);
            if (!items) {
                st = vl_fail(err, VL_ERR_NOMEM, "S3 list answer: out of memory");
                break;
            }
            page->items = items;
            cap = nc;
        }
        st = parse_contents(cs, ce, &page->items[page->n], err);
        if (st == VL_OK)
            page->n++;
    }
    char *trunc = NULL;
    if (st == VL_OK) {
        vl_status t = vl_s3_xml_text(body, (size_t)(body_end - body), "IsTruncated", &trunc, err);
        if (t == VL_OK)
            page->truncated = strcmp(trunc, "true") == 0;
        else if (t != VL_ERR_NOTFOUND)
            st = t;
        free(trunc);
    }
    if (st == VL_OK && page->truncated) {
        st = vl_s3_xml_text(body, (size_t)(body_end - body), "NextContinuationToken",
                            &page->next_token, err);
        if (st == VL_OK && !page->next_token[0])
            st = vl_fail(err, VL_ERR_CORRUPT, "S3 list answer: empty continuation token");
        else if (st == VL_ERR_NOTFOUND)
            st = vl_fail(err, VL_ERR_CORRUPT, "S3 list answer: truncated without a token");
    }
    if (st != VL_OK)
        vl_s3_list_page_free(page);
    return st;
}

void vl_s3_list_page_free(vl_s3_list_page *page)
{
    vl_objinfo_free(page->items, page->n);
    free(page->next_token);
    memset(page, 0, sizeof *page);
}
