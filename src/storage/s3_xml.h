/*
 * s3_xml.h - the few S3 XML responses the S3 client reads.
 *
 * Not a general XML parser: S3 answers are flat documents of known
 * elements, so we find an element by its exact tag and decode its text
 * (the five predefined entities and numeric character references).  Text
 * content never holds a raw '<' in well-formed XML, so a tag found by a
 * byte search is a real tag.  Anything unexpected (an unterminated
 * element, a bad entity, a NUL, a size that is not a decimal number)
 * fails with VL_ERR_CORRUPT and never reads outside [xml, xml+len).
 * Fuzzed by tests/fuzz/fuzz_s3_list.c.
 */
#ifndef VL_STORAGE_S3_XML_H
#define VL_STORAGE_S3_XML_H

#include <stddef.h>

#include "storage/objstore.h"

/** One page of a ListObjectsV2 answer. */
typedef struct {
    vl_objinfo *items; /**< full keys as S3 returned them, in document order */
    size_t n;
    int truncated;    /**< IsTruncated was "true" */
    char *next_token; /**< NextContinuationToken (malloc'd) or NULL */
} vl_s3_list_page;

/** Decoded text of the first <tag>...</tag> in xml (malloc'd in *text).
 *  VL_ERR_NOTFOUND when there is no such element, VL_ERR_CORRUPT when it
 *  is malformed. */
vl_status vl_s3_xml_text(const char *xml, size_t len, const char *tag, char **text, vl_error *err);

/** Parse a ListBucketResult page.  Free with vl_s3_list_page_free. */
vl_status vl_s3_list_parse(const char *xml, size_t len, vl_s3_list_page *page, vl_error *err);

void vl_s3_list_page_free(vl_s3_list_page *page);

#endif
