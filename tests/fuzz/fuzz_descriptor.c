/*
 * fuzz_descriptor.c - collection descriptors (vl_descriptor_parse).
 *
 * Input: one control byte, then the descriptor text.  With
 * VL_FUZZ_FIX_CRC the harness appends the "crc32c <hex>" line of the text,
 * so mutations of the body reach the line parser.  A descriptor that
 * parses has a valid name and metric, and formats back to text that
 * parses to the same descriptor.
 */
#include "fuzz.h"
#include "storage/crc32c.h"
#include "storage/descriptor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t len = size - 1;
    int fix = data[0] & VL_FUZZ_FIX_CRC;
    char *text = malloc(len + (fix ? 16 : 0) + 1);
    memcpy(text, data + 1, len);
    if (fix) {
        char line[17];
        snprintf(line, sizeof line, "crc32c %08x\n", vl_crc32c(0, text, len));
        memcpy(text + len, line, 16);
        len += 16;
    }
    char *exact = malloc(len ? len : 1); /* no slack after the text for ASan */
    memcpy(exact, text, len);
    free(text);
    vl_descriptor d, back;
    vl_error err = {{0}};
    if (vl_descriptor_parse(exact, len, &d, &err) == VL_OK) {
        VL_FUZZ_CHECK(vl_collection_name_valid(d.name));
        VL_FUZZ_CHECK((unsigned)d.metric <= VL_METRIC_IP);
        char buf[256];
        size_t n = vl_descriptor_format(&d, buf, sizeof buf);
        VL_FUZZ_CHECK(n > 0 && n < sizeof buf);
        VL_FUZZ_CHECK(vl_descriptor_parse(buf, n, &back, &err) == VL_OK);
        VL_FUZZ_CHECK(strcmp(back.name, d.name) == 0 && back.metric == d.metric);
    } else {
        VL_FUZZ_CHECK(err.msg[0] != '\0');
    }
    free(exact);
    return 0;
}
