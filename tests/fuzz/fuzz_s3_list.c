/*
 * fuzz_s3_list.c - S3 ListObjectsV2 answers (vl_s3_list_parse) and element
 * text (vl_s3_xml_text), the XML the S3 client reads from the network.
 *
 * Input: the answer document.  A page that parses must survive being
 * written back as XML (keys escaped) and parsed again unchanged; a
 * failure must leave the page empty with a message.
 */
#include "fuzz.h"
#include "storage/s3_xml.h"

static size_t put_escaped(char *out, const char *s)
{
    size_t n = 0;
    for (; *s; s++) {
        const char *rep = *s == '&' ? "&amp;" : *s == '<' ? "&lt;" : *s == '>' ? "&gt;" : NULL;
        if (rep) {
            memcpy(out + n, rep, strlen(rep));
            n += strlen(rep);
        } else {
            out[n++] = *s;
        }
    }
    return n;
}

static void check_round_trip(const vl_s3_list_page *p)
{
    size_t cap = 128 + (p->next_token ? 5 * strlen(p->next_token) : 0);
    for (size_t i = 0; i < p->n; i++)
        cap += 5 * strlen(p->items[i].name) + 80;
    char *doc = malloc(cap);
    size_t n = (size_t)sprintf(doc, "<ListBucketResult><IsTruncated>%s</IsTruncated>",
                               p->truncated ? "true" : "false");
    for (size_t i = 0; i < p->n; i++) {
        n += (size_t)sprintf(doc + n, "<Contents><Key>");
        n += put_escaped(doc + n, p->items[i].name);
        n += (size_t)sprintf(doc + n, "</Key><Size>%llu</Size></Contents>",
                             (unsigned long long)p->items[i].size);
    }
    if (p->next_token) {
        n += (size_t)sprintf(doc + n, "<NextContinuationToken>");
        n += put_escaped(doc + n, p->next_token);
        n += (size_t)sprintf(doc + n, "</NextContinuationToken>");
    }
    n += (size_t)sprintf(doc + n, "</ListBucketResult>");
    VL_FUZZ_CHECK(n < cap);
    vl_s3_list_page back;
    vl_error err = {{0}};
    VL_FUZZ_CHECK(vl_s3_list_parse(doc, n, &back, &err) == VL_OK);
    VL_FUZZ_CHECK(back.n == p->n && back.truncated == p->truncated);
    for (size_t i = 0; i < p->n; i++) {
        VL_FUZZ_CHECK(strcmp(back.items[i].name, p->items[i].name) == 0);
        VL_FUZZ_CHECK(back.items[i].size == p->items[i].size);
    }
    VL_FUZZ_CHECK(!p->truncated || strcmp(back.next_token, p->next_token) == 0);
    vl_s3_list_page_free(&back);
    free(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *doc = malloc(size ? size : 1); /* exactly size bytes: ASan sees any overread */
    memcpy(doc, data, size);
    vl_s3_list_page page;
    vl_error err = {{0}};
    if (vl_s3_list_parse(doc, size, &page, &err) == VL_OK) {
        for (size_t i = 0; i < page.n; i++)
            VL_FUZZ_CHECK(page.items[i].name[0] != '\0');
        VL_FUZZ_CHECK(!page.truncated || (page.next_token && page.next_token[0]));
        check_round_trip(&page);
        vl_s3_list_page_free(&page);
    } else {
        VL_FUZZ_CHECK(err.msg[0] != '\0' && page.items == NULL && page.n == 0);
    }
    char *text = NULL;
    vl_status st = vl_s3_xml_text(doc, size, "Code", &text, &err);
    VL_FUZZ_CHECK((st == VL_OK) == (text != NULL));
    if (text)
        VL_FUZZ_CHECK(strlen(text) <= size);
    free(text);
    free(doc);
    return 0;
}
