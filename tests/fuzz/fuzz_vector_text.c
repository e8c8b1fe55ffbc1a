/*
 * fuzz_vector_text.c - the text form of a vector, "[0.1, 0.2]".
 *
 * The input is the argument as a client sends it.  The first byte's low
 * bits also pick a small element capacity now and then, so the "too many
 * elements" path is reached; the full input is what gets parsed.  The
 * output array is exactly that capacity on the heap (an overrun is an ASan
 * report).  When the parse succeeds:
 *  - every element equals strtof() of its token (the fast decimal path
 *    must round exactly as the C library does),
 *  - every element is finite,
 *  - formatting fits vl_vector_text_max() and parses back to the same
 *    bits.
 */
#include <math.h>

#include "core/vector_text.h"
#include "fuzz.h"

static int is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Compare element i with strtof() of the i-th token between '[' and ']'. */
static void check_tokens(const char *s, size_t len, const float *v, uint32_t dim)
{
    const char *open = memchr(s, '[', len);
    size_t i = (size_t)(open - s) + 1;
    for (uint32_t k = 0; k < dim; k++) {
        while (is_space(s[i]) || s[i] == ',')
            i++;
        size_t start = i;
        while (s[i] != ',' && s[i] != ']' && !is_space(s[i]))
            i++;
        char tok[80];
        VL_FUZZ_CHECK(i - start < sizeof tok);
        memcpy(tok, s + start, i - start);
        tok[i - start] = '\0';
        float want = strtof(tok, NULL);
        VL_FUZZ_CHECK(memcmp(&want, &v[k], sizeof want) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint32_t cap = VL_MAX_DIM;
    if (size > 0 && (data[0] & 0xc0) == 0xc0)
        cap = 1 + (data[0] & 0x0f);
    float *v = malloc(cap * sizeof *v);
    uint32_t dim = 0;
    vl_error err;
    vl_status st = vl_vector_parse_text((const char *)data, size, v, cap, &dim, &err);
    if (st == VL_OK) {
        VL_FUZZ_CHECK(dim >= 1 && dim <= cap);
        VL_FUZZ_CHECK(vl_vector_check_finite(v, dim, &err) == VL_OK);
        check_tokens((const char *)data, size, v, dim);
        size_t max = vl_vector_text_max(dim);
        char *text = malloc(max);
        size_t n = vl_vector_format_text(v, dim, text);
        VL_FUZZ_CHECK(n < max && text[n] == '\0');
        float *back = malloc(dim * sizeof *back);
        uint32_t dim2 = 0;
        VL_FUZZ_CHECK(vl_vector_parse_text(text, n, back, dim, &dim2, &err) == VL_OK);
        VL_FUZZ_CHECK(dim2 == dim && memcmp(back, v, dim * sizeof *v) == 0);
        free(back);
        free(text);
    } else {
        VL_FUZZ_CHECK(st == VL_ERR_ARG || st == VL_ERR_LIMIT);
        VL_FUZZ_CHECK(err.msg[0] != '\0');
    }
    free(v);
    return 0;
}
